"""Aliasing: a write through any name that may share an input's object makes that input an output.

Each MUTATING case changes the caller's (or the region's entry) object through an alias; the
analysis must list the container among the outputs, or refuse the region with the given code.
Each CONTROL writes only into fresh objects (copies, new arrays, rebinding); it must stay
replaceable with exactly the outputs given. The cases come from the forms seen in real code
(pyperformance's nbody and scimark, row normalisation, numpy views) and were checked by hand.
"""

from __future__ import annotations

import textwrap

import pytest

from regionx.analysis import analyze_source, find_region
from regionx.types import Region


def region_of(source: str, selector: str) -> Region:
    fa = analyze_source(textwrap.dedent(source).lstrip("\n"), "case.py")
    errors = [d.format() for d in fa.diagnostics if d.severity == "error"]
    assert not errors, errors
    region = find_region(fa, selector)
    assert region is not None, f"no region {selector!r}; have {[r.id for r in fa.regions]}"
    return region


# (id, source, region, container that must be an output)
MUTATING = [
    ("loop variable over rows, item write", """
        def normalise(rows):
            s = 0.0
            for r in rows:
                s += r[0]
                r[0] /= s
            return s
        """, "normalise", "rows"),
    ("loop variable over a 2-D array, in-place divide", """
        def scale(m, s):
            for r in m:
                r /= s
            return s * 2.0
        """, "scale", "m"),
    ("row alias then item store", """
        def f(m):
            r = m[0]
            r[1] = 5.0
            return r[0]
        """, "f", "m"),
    ("column view then in-place multiply", """
        def f(m):
            c = m[:, 0]
            c *= 2
            return c.sum()
        """, "f", "m"),
    ("augmented assignment on an array parameter", """
        def f(a):
            a += 1.0
            return a.sum()
        """, "f", "a"),
    ("alias then sort()", """
        def f(m):
            last = m[2]
            last.sort()
            return last[0]
        """, "f", "m"),
    ("tuple unpacking then item store", """
        def f(m):
            top, bottom = m
            bottom[0] = 1.0
            return top[0]
        """, "f", "m"),
    ("nbody-style nested unpacking in a for target", """
        def advance(dt, bodies):
            for ([x, y], v, mass) in bodies:
                v[0] -= dt * x * mass
                v[1] -= dt * y * mass
            return dt
        """, "advance", "bodies"),
    ("enumerate target", """
        def f(m):
            for i, r in enumerate(m):
                r[0] = float(i)
            return 0.0
        """, "f", "m"),
    ("zip target", """
        def f(xs, ys):
            for a, b in zip(xs, ys):
                a[0] = b[0]
            return 0.0
        """, "f", "xs"),
    ("np.asarray view", """
        import numpy as np
        def f(m):
            v = np.asarray(m)
            v[0] = 1.0
            return 0.0
        """, "f", "m"),
    ("reshape view", """
        def f(m):
            v = m.reshape(-1)
            v[0] = 0.0
            return 1.0
        """, "f", "m"),
    ("transpose attribute", """
        def f(m):
            t = m.T
            t[0, 0] = 1.0
            return 1.0
        """, "f", "m"),
    ("np.copyto", """
        import numpy as np
        def f(m, x):
            np.copyto(m, x)
            return x.sum()
        """, "f", "m"),
    ("np.fill_diagonal through an alias", """
        import numpy as np
        def f(m):
            a = m
            np.fill_diagonal(a, 0.0)
            return 1.0
        """, "f", "m"),
    ("out= argument", """
        import numpy as np
        def f(a, k):
            np.multiply(a, k, out=a)
            return k
        """, "f", "a"),
    ("same-module helper returning part of its argument", """
        def first(m):
            return m[0]
        def f(m):
            r = first(m)
            r[0] = 1.0
            return 0.0
        """, "f", "m"),
    ("same-module helper that changes its argument", """
        def scale(v, s):
            for i in range(len(v)):
                v[i] *= s
        def f(m, s):
            scale(m, s)
            return s
        """, "f", "m"),
    ("write inside a comprehension", """
        def f(m):
            [r.fill(0.0) for r in m]
            return 0.0
        """, "f", "m"),
    ("dict values", """
        def f(d):
            for row in d.values():
                row[0] = 0.0
            return 0.0
        """, "f", "d"),
    ("walrus alias", """
        def f(m):
            if (r := m[0]) is not None:
                r[0] = 1.0
            return 0.0
        """, "f", "m"),
    ("list display then write into an element", """
        def f(a, b):
            pair = [a, b]
            pair[0][0] = 1.0
            return 0.0
        """, "f", "a"),
    ("conditional expression alias", """
        def f(a, b, flag):
            r = a if flag else b
            r[0] = 1.0
            return 0.0
        """, "f", "b"),
    ("heapq.heappush", """
        import heapq
        def f(h, x):
            heapq.heappush(h, x)
            return x
        """, "f", "h"),
    ("del through an alias", """
        def f(m):
            r = m[1]
            del r[0]
            return 0.0
        """, "f", "m"),
    ("alias made before a loop region, written inside it", """
        def f(m):
            r = m[0]
            for i in range(3):
                r[i] = i * 2.0
            return 1.0
        """, "f:for@3", "r"),
    ("loop region writing a parameter's row through its loop variable", """
        def f(m, s):
            for r in m:
                r[0] = r[0] / s
            return s
        """, "f:for@2", "m"),
    ("scimark-style SOR sweep through row aliases", """
        def sor(omega, G, n):
            for i in range(1, n - 1):
                Gi = G[i]
                Gim1 = G[i - 1]
                Gip1 = G[i + 1]
                for j in range(1, n - 1):
                    Gi[j] = omega * 0.25 * (Gim1[j] + Gip1[j] + Gi[j - 1] + Gi[j + 1]) + (1.0 - omega) * Gi[j]
            return omega
        """, "sor", "G"),
    ("shallow copy of a list of rows, then a write into a row", """
        def f(rows):
            tmp = list(rows)
            tmp[0][0] = 9.0
            return 0.0
        """, "f", "rows"),
]


@pytest.mark.parametrize("case_id, source, selector, container", MUTATING, ids=[c[0] for c in MUTATING])
def test_write_through_alias_makes_the_input_an_output(case_id: str, source: str, selector: str, container: str) -> None:
    region = region_of(source, selector)
    assert container in region.outputs, f"{case_id}: outputs {region.outputs} miss {container!r}"
    assert container in region.inputs, f"{case_id}: inputs {region.inputs} miss {container!r}"


def test_augmented_assignment_in_place_on_a_declared_array() -> None:
    source = """
        # regionx: a=uniform(0, 1, shape=(3,)), k=uniform(0, 1)
        def f(a, k):
            a += k
            return k * 2.0
        """
    assert region_of(source, "f").outputs == ("return", "a")


# (id, source, region, exact outputs) — writes into fresh objects only
CONTROLS = [
    ("copy of a row", """
        def f(m):
            r = m[0].copy()
            r[1] = 5.0
            return r.sum()
        """, "f", ("return",)),
    ("rebinding with arithmetic is not in place", """
        def f(x):
            x = x + 1.0
            return x.sum()
        """, "f", ("return",)),
    ("augmented assignment on a scalar is a rebinding", """
        def f(n, x):
            n += 1
            return n * x
        """, "f", ("return",)),
    ("new array filled and returned", """
        import numpy as np
        def f(a):
            out = np.zeros(3)
            out[0] = a
            return out
        """, "f", ("return",)),
    ("shallow copy appended to", """
        def f(rows):
            tmp = list(rows)
            tmp.append(1.0)
            return tmp[0]
        """, "f", ("return",)),
    ("sorted copy written", """
        def f(xs):
            s = sorted(xs)
            s[0] = 0.0
            return s[-1]
        """, "f", ("return",)),
    ("read-only iteration over rows", """
        def f(m):
            total = 0.0
            for r in m:
                total += r[0]
            return total
        """, "f", ("return",)),
    ("astype copy written", """
        def f(a):
            b = a.astype(float)
            b[0] = 1.0
            return b[0]
        """, "f", ("return",)),
    ("ufunc result written", """
        import numpy as np
        def f(x):
            y = np.sqrt(x)
            y[0] = 0.0
            return y[1]
        """, "f", ("return",)),
    ("same-module helper returning a new array", """
        import numpy as np
        def make(n):
            return np.zeros(n)
        def f(x):
            r = make(3)
            r[0] = x
            return r[0]
        """, "f", ("return",)),
    ("loop filling a fresh buffer that is read after", """
        import numpy as np
        def f(x):
            buf = np.zeros(3)
            for i in range(3):
                buf[i] = x * i
            return buf.sum()
        """, "f:for@4", ("buf",)),
    ("alias rebound to a fresh object before the write", """
        import numpy as np
        def f(m):
            r = m[0]
            r = np.zeros(3)
            r[0] = 1.0
            return r[0] + m[0][0]
        """, "f", ("return",)),
]


@pytest.mark.parametrize("case_id, source, selector, outputs", CONTROLS, ids=[c[0] for c in CONTROLS])
def test_writes_into_fresh_objects_change_no_input(case_id: str, source: str, selector: str, outputs: tuple[str, ...]) -> None:
    region = region_of(source, selector)
    assert region.outputs == outputs, f"{case_id}: outputs {region.outputs}, want {outputs}"
    assert region.replaceable, f"{case_id}: {region.reasons}"


# (id, source, region, reason code) — refusals
REFUSED = [
    ("write into a global through an alias", """
        G = [1.0, 2.0]
        def f(x):
            g = G
            g[0] = x
            return x
        """, "f", "RX203"),
    ("write through the result of a computed call", """
        def f(m):
            r = (lambda z: z)(m)
            r[0] = 1.0
            return 0.0
        """, "f", "RX211"),
    ("write through a match capture", """
        def f(m):
            match m:
                case [first, *rest]:
                    first[0] = 1.0
            return 0.0
        """, "f", "RX211"),
    ("a method of an object", """
        class Body:
            def energy(self, k):
                return k * self.mass
        """, "Body.energy", "RX210"),
    ("a loop reading self", """
        class Body:
            def step(self, n):
                s = 0.0
                for i in range(n):
                    s += self.mass * i
                return s
        """, "Body.step:for@4", "RX210"),
    ("an operator that calls an impure __add__", """
        class Vec:
            def __init__(self, x):
                self.x = x
            def __add__(self, other):
                print("adding")
                return Vec(self.x + other.x)
        def total(a, b):
            return a + b
        """, "total", "RX209"),
    ("x.m() where a module class defines an impure m", """
        class Vec:
            def dot(self, other):
                print(other)
                return 0.0
        def f(a, b):
            return a.dot(b)
        """, "f", "RX209"),
    ("a helper changing its default argument", """
        STATE = [0.0]
        def bump(x, acc=STATE):
            acc[0] += x
            return x
        """, "bump", "RX203"),
    ("a caller of that helper", """
        STATE = [0.0]
        def bump(x, acc=STATE):
            acc[0] += x
            return x
        def run(x):
            return bump(x) * 2.0
        """, "run", "RX203"),
    ("a caller passing its own accumulator is fine", """
        STATE = [0.0]
        def bump(x, acc=STATE):
            acc[0] += x
            return x
        def run(x, acc):
            return bump(x, acc) * 2.0
        """, "run", None),
]


@pytest.mark.parametrize("case_id, source, selector, code", REFUSED, ids=[c[0] for c in REFUSED])
def test_unsafe_writes_are_refused(case_id: str, source: str, selector: str, code: str | None) -> None:
    region = region_of(source, selector)
    if code is None:  # the control of the case before it
        assert region.replaceable and "acc" in region.outputs, region.reasons
        return
    assert not region.replaceable
    codes = [r.code for r in region.reasons]
    assert code in codes, f"{case_id}: reasons {[(r.code, r.message) for r in region.reasons]}"


def test_refusal_names_the_line_and_the_alias() -> None:
    region = region_of("""
        def f(m):
            r = (lambda z: z)(m)
            r[0] = 1.0
            return 0.0
        """, "f")
    rx211 = next(r for r in region.reasons if r.code == "RX211")
    assert rx211.line == 3 and "'r'" in rx211.message


def test_callee_and_caller_agree_on_a_mutated_argument() -> None:
    """A helper that changes its argument is replaceable with that argument as an output, and a
    caller passing its own input lists that input as an output too (not an impurity)."""
    source = """
        def scale(v, s):
            for i in range(len(v)):
                v[i] *= s
            return s
        def f(m, s):
            return scale(m, s) + 1.0
        """
    helper = region_of(source, "scale")
    caller = region_of(source, "f")
    assert helper.outputs == ("return", "v") and helper.replaceable
    assert caller.outputs == ("return", "m") and caller.replaceable


def test_pragma_name_wins_over_an_unannotated_function() -> None:
    fa = analyze_source(textwrap.dedent("""
        def swap_loop(xs, ys):
            # regionx: name=swap_loop, x=uniform(0, 1)
            for i in range(len(xs)):
                ys[i] = xs[i] * 2.0
            return ys
        """).lstrip("\n"), "case.py")
    ids = {r.id: r for r in fa.regions}
    assert ids["swap_loop"].kind == "loop" and ids["swap_loop"].annotated
    assert ids["swap_loop@1"].kind == "function"


# Forms the differential test (tests/test_differential.py) found missed or over-reported.
MORE_MUTATING = [
    ("in-place multiply through an alias of a container", """
        def f(m, x):
            r = m[0]
            r *= 0.5
            return x
        """, "f", "m"),
    ("positional out of a binary ufunc", """
        import numpy as np
        def f(r, a):
            np.multiply(r, a, r)
            return a
        """, "f", "r"),
    ("positional out of a unary ufunc", """
        import numpy as np
        def f(x):
            np.negative(x, x)
            return 1.0
        """, "f", "x"),
    ("astype without a copy", """
        def f(x):
            y = x.astype(float, copy=False)
            y[0] = 1.0
            return 1.0
        """, "f", "x"),
    ("np.array without a copy", """
        import numpy as np
        def f(x):
            y = np.array(x, copy=None)
            y[0] = 1.0
            return 1.0
        """, "f", "x"),
]


@pytest.mark.parametrize("case_id, source, selector, container", MORE_MUTATING, ids=[c[0] for c in MORE_MUTATING])
def test_more_writes_through_aliases(case_id: str, source: str, selector: str, container: str) -> None:
    region = region_of(source, selector)
    assert container in region.outputs, f"{case_id}: outputs {region.outputs} miss {container!r}"


def test_in_place_multiply_through_an_alias_of_a_global_array_is_refused() -> None:
    region = region_of("""
        import numpy as np
        G = np.array([[0.8, 0.4], [0.6, 0.2]])
        def f(x):
            r = G[0]
            r *= 0.5
            return 0.5 * x
        """, "f")
    assert "RX203" in [r.code for r in region.reasons]


@pytest.mark.parametrize("call", ["np.sort(x)", "np.append(x, 1.0)", "np.insert(x, 0, 1.0)", "np.add(x, 1.0)"])
def test_numpy_functions_named_like_list_methods_write_nothing(call: str) -> None:
    region = region_of(f"""
        import numpy as np
        def f(x):
            y = {call}
            return y[0]
        """, "f")
    assert region.replaceable and region.outputs == ("return",), region.reasons


@pytest.mark.parametrize("setup", ["a = m\n    b = m", "a = np.zeros(3)\n    b = a", "a = m\n    b = a[:]"])
def test_a_loop_writing_one_of_two_names_for_the_same_object_is_refused(setup: str) -> None:
    """Sampling would draw a and b separately; the loop's result depends on their being one object."""
    region = region_of(f"""
        import numpy as np
        def f(m):
            {setup}
            for i in range(1, 3):
                a[i] = b[i - 1] + 1.0
            return a
        """.replace("\n    b", "\n            b"), "f:for@5")
    assert "RX212" in [r.code for r in region.reasons], region.reasons


def test_two_separate_new_objects_do_not_alias() -> None:
    region = region_of("""
        import numpy as np
        def f(x):
            a = np.zeros(3)
            b = np.ones(3) * x
            for i in range(1, 3):
                a[i] = b[i - 1] + 1.0
            return a
        """, "f:for@5")
    assert region.replaceable, region.reasons
    assert region.outputs == ("a",)


# A module-level iterator is state: next(), a for loop or a consuming call advances it for every
# later reader (regionx.analysis.purity.iterator_globals). (id, source, region, refused?)
ITERATORS = [
    ("next on a global iter()", "NOISE = iter([0.1, 0.2] * 10)\ndef f(x):\n    return x + next(NOISE)\n", "f", True),
    ("next on itertools.count, result unused", "import itertools\nCOUNTER = itertools.count()\n"
     "def f(x):\n    k = next(COUNTER)\n    return x + 0 * k\n", "f", True),
    ("from-imported cycle", "from itertools import cycle\nW = cycle([1.0, 2.0])\ndef f(x):\n    return x * next(W)\n",
     "f", True),
    ("for loop over a global generator expression", "G = (v * 2.0 for v in range(100))\n"
     "def f(x):\n    for v in G:\n        return x + v\n    return x\n", "f", True),
    ("sum of islice of a global map()", "import itertools\nM = map(float, range(100))\n"
     "def f(x):\n    return x + sum(itertools.islice(M, 2))\n", "f", True),
    ("a module generator function's generator, through an alias",
     "def ticks():\n    while True:\n        yield 1.0\nT = ticks()\nU = T\ndef f(x):\n    return x + next(U)\n", "f", True),
    ("a comprehension over a global zip()", "Z = zip([1.0, 2.0], [3.0, 4.0])\n"
     "def f(x):\n    return x + sum(a * b for a, b in Z)\n", "f", True),
    ("a caller of a function advancing a global iterator", "W = iter([1.0] * 10)\n"
     "def step(x):\n    return x + next(W)\ndef f(x):\n    return step(x) * 2.0\n", "f", True),
    # controls
    ("sum of a global list", "TABLE = [1.0, 2.0]\ndef f(x):\n    return x + sum(TABLE)\n", "f", False),
    ("next on a fresh local iterator", "def f(x):\n    it = iter((x, 2.0))\n    return next(it) + next(it)\n", "f", False),
    ("a local shadowing a global iterator", "N = iter([1.0])\ndef f(x):\n    N = iter([x])\n    return next(N)\n",
     "f", False),
    ("a global list built from map() (not an iterator)", "L = list(map(float, range(3)))\n"
     "def f(x):\n    return x + sum(L)\n", "f", False),
]


@pytest.mark.parametrize("case_id, source, selector, refused", ITERATORS, ids=[c[0] for c in ITERATORS])
def test_reading_a_global_iterator_is_a_write(case_id: str, source: str, selector: str, refused: bool) -> None:
    region = region_of(source, selector)
    if not refused:
        assert region.replaceable, region.reasons
        return
    assert not region.replaceable
    assert {r.code for r in region.reasons} & {"RX203", "RX209"}, [(r.code, r.message) for r in region.reasons]
