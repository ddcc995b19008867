"""The purity model for numerical libraries: which library calls a region may make.

Library calls are pure when the library computes a new value (math, numpy without out=, scipy's
special functions, integrators, root finders, minimisers, interpolators), and the functions
passed to them (integrands, right-hand sides, objectives, key=) are pure by the same analysis.
`pure=True` in a pragma vouches for calls the model does not know; it does not hide known I/O,
randomness or impure functions of the module, and sampling's run-time checks still apply.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from regionx.analysis import analyze_source, find_region
from regionx.types import Region


def join(*parts: str) -> str:
    """Source pieces, each dedented on its own, as one module."""
    return "\n".join(textwrap.dedent(p).strip("\n") for p in parts) + "\n"


def region_of(source: str, selector: str) -> Region:
    fa = analyze_source(textwrap.dedent(source).lstrip("\n"), "case.py")
    errors = [d.format() for d in fa.diagnostics if d.severity == "error"]
    assert not errors, errors
    region = find_region(fa, selector)
    assert region is not None, f"no region {selector!r}; have {[r.id for r in fa.regions]}"
    return region


PURE_RHS = """
    def rhs(t, y, k):
        return [y[1], -k * y[1] * abs(y[1]) - 9.81]
    """
PRINTING_RHS = """
    def rhs(t, y, k):
        print(t)
        return [y[1], -k * y[1]]
    """
LOGGING_RHS = """
    TRACE = []
    def rhs(t, y, k):
        TRACE.append(t)
        return [y[1], -k * y[1]]
    """

# (id, source, region, expected reason code or None for replaceable)
CASES = [
    ("quad of a pure integrand", """
        from scipy.integrate import quad
        def f(t, a):
            return a * t * t
        def area(a, x):
            return quad(f, 0.0, x, args=(a,))[0]
        """, "area", None),
    ("solve_ivp of a pure right-hand side", join(PURE_RHS, """
        import scipy.integrate
        def fly(v, k):
            sol = scipy.integrate.solve_ivp(rhs, (0.0, 10.0), [0.0, v], args=(k,))
            return sol.y[0][-1]
        """), "fly", None),
    ("brentq of a lambda", """
        from scipy.optimize import brentq
        def root(c):
            return brentq(lambda v: v * v * v - c, 0.0, 10.0)
        """, "root", None),
    ("minimize_scalar of a pure objective", """
        import scipy.optimize as opt
        def cost(x, a):
            return (x - a) ** 2
        def best(a):
            return opt.minimize_scalar(cost, args=(a,)).x
        """, "best", None),
    ("numpy functions outside the old list", """
        import numpy as np
        def fit(xs, ys):
            coef = np.polyfit(xs, ys, 2)
            return np.polyval(coef, 0.5) + np.nanpercentile(ys, 50) + np.add.reduce(xs)
        """, "fit", None),
    ("scipy.special and scipy.stats cdf", """
        from scipy import special, stats
        def g(x):
            return special.erf(x) + stats.norm.cdf(x)
        """, "g", None),
    ("sorted with a pure key", """
        def key(v):
            return -v
        def top(xs):
            return sorted(xs, key=key)[0]
        """, "top", None),
    ("solve_ivp of a printing right-hand side", join(PRINTING_RHS, """
        from scipy.integrate import solve_ivp
        def fly(v, k):
            return solve_ivp(rhs, (0.0, 1.0), [0.0, v], args=(k,)).y[0][-1]
        """), "fly", "RX209"),
    ("quad of an integrand writing a global", join(LOGGING_RHS, """
        from scipy.integrate import quad
        def area(k):
            return quad(lambda t: rhs(t, [0.0, t], k)[1], 0.0, 1.0)[0]
        """), "area", "RX209"),
    ("numpy random", """
        import numpy as np
        def noisy(x):
            return x + np.random.normal()
        """, "noisy", "RX202"),
    ("scipy.stats rvs", """
        from scipy import stats
        def draw(x):
            return stats.norm.rvs(loc=x)
        """, "draw", "RX202"),
    ("numpy save", """
        import numpy as np
        def dump(x):
            np.save("x.npy", x)
            return x
        """, "dump", "RX201"),
    ("numpy seterr changes process state", """
        import numpy as np
        def quiet(x):
            np.seterr(all="ignore")
            return 1.0 / x
        """, "quiet", "RX209"),
    ("an unknown library", """
        import somelib
        def g(x):
            return somelib.compute(x)
        """, "g", "RX209"),
    ("an unknown library vouched for", """
        import somelib
        # regionx: pure=True, x=uniform(0, 1)
        def g(x):
            return somelib.compute(x)
        """, "g", None),
    ("pure=True does not hide I/O", """
        import somelib
        # regionx: pure=True, x=uniform(0, 1)
        def g(x):
            print(x)
            return somelib.compute(x)
        """, "g", "RX201"),
    ("pure=True does not hide an impure function of the module", join(PRINTING_RHS, """
        from scipy.integrate import solve_ivp
        # regionx: pure=True, v=uniform(0, 1), k=uniform(0, 1)
        def fly(v, k):
            return solve_ivp(rhs, (0.0, 1.0), [0.0, v], args=(k,)).y[0][-1]
        """), "fly", "RX209"),
]


@pytest.mark.parametrize("case_id, source, selector, code", CASES, ids=[c[0] for c in CASES])
def test_library_purity(case_id: str, source: str, selector: str, code: str | None) -> None:
    region = region_of(source, selector)
    codes = [r.code for r in region.reasons]
    if code is None:
        assert region.replaceable, f"{case_id}: {[(r.code, r.message) for r in region.reasons]}"
    else:
        assert code in codes, f"{case_id}: {[(r.code, r.message) for r in region.reasons]}"


def test_passing_an_impure_function_names_it() -> None:
    region = region_of(join(PRINTING_RHS, """
        from scipy.integrate import solve_ivp
        def fly(v, k):
            return solve_ivp(rhs, (0.0, 1.0), [0.0, v], args=(k,)).y[0][-1]
        """), "fly")
    message = next(r.message for r in region.reasons if r.code == "RX209")
    assert "passes rhs to solve_ivp()" in message and "RX201" in message


def test_a_vouched_lie_is_refused_at_sampling(tmp_path: Path) -> None:
    """pure=True lets a stateful library call through the analysis; the run-time check refuses it."""
    from regionx.sample import sample_region

    (tmp_path / "statelib.py").write_text("_calls = [0]\n\ndef step(x):\n    _calls[0] += 1\n    return x + _calls[0]\n")
    source = textwrap.dedent("""
        import statelib
        # regionx: name=g, pure=True, x=uniform(0, 1)
        def g(x):
            return statelib.step(x)
        """).lstrip("\n")
    path = tmp_path / "app.py"
    path.write_text(source)
    fa = analyze_source(source, str(path))
    region = find_region(fa, "g")
    assert region is not None and region.replaceable, region and region.reasons
    result, dataset = sample_region(source, str(path), region, n=50, seed=0)
    assert dataset is None
    assert [d.code for d in result.diagnostics] == ["RX308"]
    assert "deterministic" in result.diagnostics[0].message
