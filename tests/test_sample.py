"""`regionx sample`: the shared sampler, rejection, failure accounting, time limits, determinism,
observe mode, dataset summaries. Regions are built by hand (the analyzer is tested elsewhere)."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from regionx.extract import extract_region, write_harness
from regionx.pragma import parse_domain, parse_pragmas
from regionx.sample import RequireTooStrict, dataset_info, draw_inputs, sample_region
from regionx.types import Dataset, DomainSpec, Region

ROOT = Path(__file__).resolve().parents[1]
NEWTON = ROOT / "fixtures" / "newton.py"
EXECUTOR = "local:2"


def function_region(text: str, name: str, inputs: tuple[str, ...], outputs: tuple[str, ...] = ("return",),
                    qualname: str | None = None) -> Region:
    """The Region of top-level (or method) function `name` in `text`, with its pragma."""
    tree = ast.parse(text)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    pragmas, diags = parse_pragmas(text, "case.py")
    assert not diags, diags
    pragma = next((p for p in pragmas if p.end_line == start - 1), None)
    rid = pragma.name if pragma is not None and pragma.name else (qualname or name)
    return Region(id=rid, name=rid, kind="function", qualname=qualname or name, start_line=start,
                  end_line=node.end_lineno or start, col=1, annotated=pragma is not None, inputs=inputs,
                  outputs=outputs, internals=(), globals=(), calls=(), replaceable=True, pragma=pragma, params=inputs)


def write_case(tmp_path: Path, source: str, name: str = "case.py") -> tuple[str, str]:
    path = tmp_path / name
    text = textwrap.dedent(source)
    path.write_text(text, encoding="utf-8")
    return str(path), text


def spec(name: str, text: str) -> DomainSpec:
    return parse_domain(name, text)


# -- the shared sampler ------------------------------------------------------------------------------


def test_each_distribution_scalar_bounds_and_moments() -> None:
    specs = [spec("u", "uniform(-2, 3)"), spec("l", "loguniform(0.01, 100)"), spec("g", "normal(5, 2)"),
             spec("k", "integers(-3, 4)"), spec("c", "choice([1, 2, 8])")]
    rows, rejected = draw_inputs(specs, 20000, np.random.default_rng(0))
    assert rejected == 0 and len(rows) == 20000
    u, lg, g, k, c = (np.array(col) for col in zip(*rows))
    assert isinstance(rows[0][0], float) and isinstance(rows[0][3], int) and isinstance(rows[0][4], int)
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.05
    assert lg.min() >= 0.01 and lg.max() <= 100 and abs(np.log10(lg).mean()) < 0.05  # uniform in log space
    assert abs(g.mean() - 5) < 0.05 and abs(g.std() - 2) < 0.05
    assert set(np.unique(k)) == set(range(-3, 5))  # both ends inclusive
    assert set(np.unique(c)) == {1, 2, 8} and abs((c == 8).mean() - 1 / 3) < 0.02


@pytest.mark.parametrize("text, shape", [("uniform(0, 1, shape=(3,))", (3,)), ("normal(0, 1, shape=(2, 3))", (2, 3)),
                                         ("integers(0, 9, shape=4)", (4,)), ("choice([0.5, 1.5], shape=(2,))", (2,))])
def test_array_shapes(text: str, shape: tuple[int, ...]) -> None:
    rows, _ = draw_inputs([spec("v", text), spec("s", "uniform(0, 1)")], 50, np.random.default_rng(1))
    assert all(isinstance(r[0], np.ndarray) and r[0].shape == shape for r in rows)
    assert isinstance(rows[0][1], float)
    assert len({r[0].tobytes() for r in rows}) > 1


def test_require_rejection_and_determinism() -> None:
    specs = [spec("a", "uniform(0.5, 2.0)"), spec("b", "uniform(-10, 10)"), spec("c", "uniform(-10, 10)")]
    require = "b*b - 4*a*c >= 0"
    rows, rejected = draw_inputs(specs, 3000, np.random.default_rng(3), require)
    assert len(rows) == 3000 and rejected > 300  # about a quarter of draws fail
    assert all(b * b - 4 * a * c >= 0 for a, b, c in rows)
    again, rejected_again = draw_inputs(specs, 3000, np.random.default_rng(3), require)
    assert again == rows and rejected_again == rejected
    other, _ = draw_inputs(specs, 3000, np.random.default_rng(4), require)
    assert other != rows


def test_require_may_use_math_and_numpy() -> None:
    rows, _ = draw_inputs([spec("x", "uniform(-1, 1)"), spec("v", "normal(0, 1, shape=(3,))")], 200,
                          np.random.default_rng(0), "math.cos(x) > 0.9 and np.sum(v) > 0 and abs(x) < 1")
    assert all(math.cos(x) > 0.9 and v.sum() > 0 for x, v in rows)


def test_require_too_strict_raises() -> None:
    with pytest.raises(RequireTooStrict) as info:
        draw_inputs([spec("x", "uniform(0, 1)")], 100, np.random.default_rng(0), "x > 0.9999")
    assert info.value.drawn >= 1000 and info.value.accepted < 0.01 * info.value.drawn


@pytest.mark.parametrize("require", ["__import__('os').system('true')", "x.__class__", "[y for y in range(3)]",
                                     "lambda: 1", "open('f')", "x = 1"])
def test_require_must_be_a_plain_expression(require: str) -> None:
    with pytest.raises(ValueError):
        draw_inputs([spec("x", "uniform(0, 1)")], 10, np.random.default_rng(0), require)


# -- sample_region ---------------------------------------------------------------------------------

FLAKY = '''\
import math
import time

# regionx: name=flaky, x=uniform(-1, 1)
def flaky(x):
    if x < 0:
        raise ValueError("negative")
    return math.sqrt(x)


# regionx: name=blowup, x=uniform(-1, 1)
def blowup(x):
    if x < -0.5:
        return float("inf")
    if x > 0.5:
        return float("nan")
    return x * 2.0


# regionx: name=sleepy, x=uniform(0, 1)
def sleepy(x):
    if x > 0.8:
        time.sleep(30)
    return x + 1.0


# regionx: name=stubborn, x=uniform(0, 1)
def stubborn(x):
    # Swallows ordinary exceptions: the time limit must still stop it.
    while x > 0.8:
        try:
            time.sleep(30)
        except Exception:
            pass
    return x


# regionx: name=ragged, x=uniform(0, 1)
def ragged(x):
    return [x] * (2 if x < 0.5 else 3)


# regionx: name=text, x=uniform(0, 1)
def text(x):
    return "not a number"
'''


def test_raising_samples_are_counted_and_dropped(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, FLAKY)
    result, data = sample_region(text, path, function_region(text, "flaky", ("x",)), n=400, seed=0, executor=EXECUTOR)
    assert result.ok and data is not None
    raised = data.meta.dropped["raised"]
    assert 140 < raised < 260  # about half the inputs are negative
    assert data.X.shape == (400 - raised, 1) and np.all(data.X >= 0)
    assert np.array_equal(data.Y[:, 0], np.sqrt(data.X[:, 0]))
    assert result.payload.dropped == data.meta.dropped and result.payload.kept == 400 - raised


def test_nonfinite_outputs_are_dropped(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, FLAKY)
    result, data = sample_region(text, path, function_region(text, "blowup", ("x",)), n=400, seed=1, executor=EXECUTOR)
    assert data is not None
    nonfinite = data.meta.dropped["nonfinite"]
    assert 140 < nonfinite < 260
    assert np.all(np.isfinite(data.Y)) and np.all(np.abs(data.X) <= 0.5)


def assert_timed_out_slow_rows(data: Dataset, rows: list[tuple[float, ...]], slow: float, out_scale: float,
                               out_shift: float) -> None:
    """Every row over `slow` (it sleeps 30 s) was stopped and counted as a timeout, and every kept
    row is a fast one, in draw order, with its output. A fast row may also be stopped, when the
    machine stalls it past the limit (never the other way round), so the count is a lower bound."""
    xs = [x for (x,) in rows]
    n_slow = sum(1 for x in xs if x > slow)
    timeouts = data.meta.dropped["timeout"]
    assert n_slow > 0 and timeouts >= n_slow
    assert sum(data.meta.dropped.values()) == timeouts and len(data.X) == len(xs) - timeouts
    kept = data.X[:, 0].tolist()
    assert kept, "every fast row timed out"
    fast = iter(x for x in xs if x <= slow)
    assert all(any(k == x for x in fast) for k in kept)  # a subsequence of the fast rows
    np.testing.assert_array_equal(data.Y[:, 0], data.X[:, 0] * out_scale + out_shift)


def test_timeouts_are_counted_and_do_not_hang(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, FLAKY)
    for name, shift in (("sleepy", 1.0), ("stubborn", 0.0)):
        region = function_region(text, name, ("x",))
        result, data = sample_region(text, path, region, n=24, seed=5, timeout=0.2, executor=EXECUTOR)
        assert data is not None, result
        rows, _ = draw_inputs(region.pragma.domains, 24, np.random.default_rng(5))  # type: ignore[union-attr]
        assert_timed_out_slow_rows(data, rows, 0.8, 1.0, shift)


def test_output_shape_changes_refuse_the_region_rx308(tmp_path: Path) -> None:
    """Outputs are numbers of a fixed shape (what the analysis claims): a varying one is no drop."""
    path, text = write_case(tmp_path, FLAKY)
    result, data = sample_region(text, path, function_region(text, "ragged", ("x",)), n=100, seed=2, executor=EXECUTOR)
    assert data is None and [d.code for d in result.diagnostics] == ["RX308"]
    message = result.diagnostics[0].message
    assert "output 'return' has no fixed shape" in message and "on sample 0" in message


def test_text_output_is_refused_rx308(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, FLAKY)
    result, data = sample_region(text, path, function_region(text, "text", ("x",)), n=20, seed=0, executor=EXECUTOR)
    assert data is None and result.status == "failed"
    assert [d.code for d in result.diagnostics] == ["RX308"]
    assert "output 'return' is a str ('not a number'), not a number" in result.diagnostics[0].message


def test_all_samples_failing_is_rx305(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, 'import math\n\n# regionx: x=uniform(-2, -1)\ndef neg(x):\n    return math.sqrt(x)\n')
    result, data = sample_region(text, path, function_region(text, "neg", ("x",)), n=20, seed=0, executor=EXECUTOR)
    assert data is None and result.status == "failed"
    assert [d.code for d in result.diagnostics] == ["RX305"]
    assert result.payload.dropped["raised"] == 20


NEWTONISH = '''\
import math

EPS = 1e-12

# regionx: name=root, a=uniform(0.5, 2.0), b=uniform(-10, 10), c=uniform(-10, 10),
# regionx: require="b*b - 4*a*c >= 0"
def root(a, b, c):
    return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a) + EPS


# regionx: name=strict, x=uniform(0, 1), require="x > 0.99999"
def strict(x):
    return x


# regionx: name=partial, a=uniform(0, 1)
def partial(a, b):
    return a * b


# regionx: name=vec, v=normal(0, 1, shape=(3,)), s=uniform(1, 2)
def vec(v, s):
    return v * s


# regionx: name=ragged_tuple, v=normal(0, 1, shape=(3,)), s=uniform(1, 2)
def ragged_tuple(v, s):
    return v * s, float(v.sum())
'''


def test_deterministic_under_seed_whatever_the_executor(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, NEWTONISH)
    region = function_region(text, "root", ("a", "b", "c"))
    _, first = sample_region(text, path, region, n=500, seed=11, executor="local:1")
    _, second = sample_region(text, path, region, n=500, seed=11, executor=EXECUTOR)
    _, other = sample_region(text, path, region, n=500, seed=12, executor=EXECUTOR)
    assert first is not None and second is not None and other is not None
    assert np.array_equal(first.X, second.X) and np.array_equal(first.Y, second.Y)
    assert not np.array_equal(first.X, other.X)
    a, b, c = first.X.T
    assert np.all(b * b - 4 * a * c >= 0) and first.meta.dropped["rejected"] > 0
    meta = first.meta
    assert meta.region_id == "root" and meta.mode == "random" and meta.seed == 11 and meta.requested == 500
    assert [v.name for v in meta.inputs] == ["a", "b", "c"] and [v.name for v in meta.outputs] == ["return"]
    assert meta.domain == {"a": "uniform(0.5, 2.0)", "b": "uniform(-10, 10)", "c": "uniform(-10, 10)"}
    assert meta.exact_time_per_call > 0
    from regionx.analysis import region_sha256

    assert meta.source_sha256 == region_sha256(text, region)


def test_harness_cli_and_sample_region_give_the_same_data(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, NEWTONISH)
    region = function_region(text, "root", ("a", "b", "c"))
    _, data = sample_region(text, path, region, n=300, seed=4, executor=EXECUTOR)
    harness = write_harness(extract_region(text, path, region).payload.harness, str(tmp_path / "h" / "harness.py"))
    out = tmp_path / "h.npz"
    proc = subprocess.run([sys.executable, harness, "--samples", "300", "--seed", "4", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    standalone = Dataset.load(str(out))
    assert data is not None
    assert np.array_equal(standalone.X, data.X) and np.array_equal(standalone.Y, data.Y)
    assert standalone.meta.dropped == data.meta.dropped


def test_array_inputs_and_outputs_are_flattened(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, NEWTONISH)
    region = function_region(text, "vec", ("v", "s"))
    result, data = sample_region(text, path, region, n=50, seed=0, executor=EXECUTOR)
    assert data is not None, result
    assert data.meta.inputs[0].shape == (3,) and data.meta.inputs[1].shape == ()
    assert data.meta.outputs[0].shape == (3,)
    assert data.X.shape == (50, 4) and data.Y.shape == (50, 3)
    assert np.array_equal(data.Y, data.X[:, :3] * data.X[:, 3:4])


def test_ragged_outputs_are_not_numbers_rx308_says_why(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, NEWTONISH)
    result, data = sample_region(text, path, function_region(text, "ragged_tuple", ("v", "s")), n=20,
                                 executor=EXECUTOR)
    assert data is None and [d.code for d in result.diagnostics] == ["RX308"]
    assert "output 'return' is a ragged tuple" in result.diagnostics[0].message


def test_require_too_strict_is_rx302(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, NEWTONISH)
    result, data = sample_region(text, path, function_region(text, "strict", ("x",)), n=100, executor=EXECUTOR)
    assert data is None and [d.code for d in result.diagnostics] == ["RX302"]
    assert result.diagnostics[0].line == 11  # the pragma


def test_missing_domain_is_rx303_and_domain_override_fixes_it(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, NEWTONISH)
    region = function_region(text, "partial", ("a", "b"))
    result, data = sample_region(text, path, region, n=50, executor=EXECUTOR)
    assert data is None and [d.code for d in result.diagnostics] == ["RX303"]
    assert "'b'" in result.diagnostics[0].message
    result, data = sample_region(text, path, region, n=50, executor=EXECUTOR,
                                 domains={"b": spec("b", "integers(2, 3)"), "a": spec("a", "uniform(5, 6)")})
    assert data is not None and result.ok
    assert np.all(data.X[:, 0] >= 5) and set(np.unique(data.X[:, 1])) <= {2.0, 3.0}
    assert data.meta.domain == {"a": "uniform(5, 6)", "b": "integers(2, 3)"}
    result, data = sample_region(text, path, region, n=5, domains={"zz": spec("zz", "uniform(0, 1)")})
    assert data is None and [d.code for d in result.diagnostics] == ["RX304"]


@pytest.mark.parametrize("kwargs, words", [({"n": 0}, "--samples"), ({"timeout": 0.0}, "--timeout"),
                                           ({"mix": 1.5}, "--mix"), ({"executor": "cloud"}, "--executor")])
def test_bad_options_are_rx006(tmp_path: Path, kwargs: dict, words: str) -> None:  # type: ignore[type-arg]
    path, text = write_case(tmp_path, NEWTONISH)
    result, data = sample_region(text, path, function_region(text, "root", ("a", "b", "c")), **kwargs)
    assert data is None and result.diagnostics[0].code == "RX006" and words in result.diagnostics[0].message


def test_progress_callback_reaches_the_total(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, NEWTONISH)
    calls: list[tuple[int, int]] = []
    sample_region(text, path, function_region(text, "root", ("a", "b", "c")), n=300, executor=EXECUTOR,
                  progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (300, 300) and all(t == 300 for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_dataset_info_summarises_a_saved_dataset(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, NEWTONISH)
    _, data = sample_region(text, path, function_region(text, "root", ("a", "b", "c")), n=200, seed=3, executor=EXECUTOR)
    assert data is not None
    target = tmp_path / "root.npz"
    data.save(str(target))
    info = dataset_info(str(target))
    assert info["rows"] == 200 and info["region_id"] == "root" and info["mode"] == "random"
    assert [c["name"] for c in info["inputs"]] == ["a", "b", "c"] and [c["name"] for c in info["outputs"]] == ["return"]
    assert info["inputs"][0]["min"] >= 0.5 and info["inputs"][0]["max"] <= 2.0
    assert info["dropped"]["rejected"] == data.meta.dropped["rejected"]
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises((OSError, ValueError, KeyError)):
        dataset_info(str(tmp_path / "bad.npz"))


# -- observe mode -------------------------------------------------------------------------------------


def _newton_fixture_region() -> tuple[str, Region]:
    text = NEWTON.read_text(encoding="utf-8")
    return text, function_region(text, "newton", ("a", "b", "c"))


def test_observe_records_the_inputs_a_real_run_sees() -> None:
    text, region = _newton_fixture_region()
    before = NEWTON.read_bytes()
    result, data = sample_region(text, str(NEWTON), region, n=80, seed=0, executor=EXECUTOR,
                                 observe=f"{sys.executable} {NEWTON} 300 5")
    assert NEWTON.read_bytes() == before  # the user's file is never touched
    assert data is not None, [d.format() for d in result.diagnostics]
    assert data.meta.mode == "observe" and data.X.shape == (80, 3)
    assert result.payload.observed_calls == 300 and result.payload.observed == 80
    # Every observed row is one of the equations the program really solved.
    sys.path.insert(0, str(NEWTON.parent))
    try:
        import newton as fixture  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(NEWTON.parent))
    solved = set(zip(*fixture.make_equations(300, 5)))
    assert all(tuple(row) in solved for row in data.X.tolist())
    assert len({tuple(r) for r in data.X.tolist()}) == 80
    for row, y in zip(data.X[:10], data.Y[:10, 0]):
        assert fixture.newton(*row) == y


def test_mixed_mode_adds_random_draws() -> None:
    text, region = _newton_fixture_region()
    result, data = sample_region(text, str(NEWTON), region, n=60, seed=1, executor=EXECUTOR, mix=0.25,
                                 observe=f"python {NEWTON} 200 3")
    assert data is not None, result
    assert data.meta.mode == "mixed" and result.payload.observed == 45 and result.payload.random == 15
    assert data.X.shape == (60, 3)


APP = '''\
import sys

import physics


def main(steps):
    total = 0.0
    for k in range(steps):
        total += physics.energy(0.1 * k, k % 4 + 1)
    print(f"total {total:.6f}")


if __name__ == "__main__":
    main(int(sys.argv[1]))
'''

PHYSICS = '''\
import math


# regionx: name=energy, x=uniform(0, 3), n=integers(1, 4)
def energy(x, n):
    return sum(math.sin(x * j) for j in range(n))
'''


def test_observe_a_region_in_an_imported_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "observe_app.py").write_text(APP, encoding="utf-8")
    path, text = write_case(tmp_path, PHYSICS, "physics.py")
    monkeypatch.chdir(tmp_path)
    region = function_region(text, "energy", ("x", "n"))
    result, data = sample_region(text, path, region, n=500, seed=0, executor=EXECUTOR, observe="python observe_app.py 40")
    assert data is not None, [d.format() for d in result.diagnostics]
    assert result.payload.observed_calls == 40  # capped by the real number of calls
    # x = 0.1 k for k < 40 reaches 3.9; the declared domain x=uniform(0, 3) keeps the 31 calls with
    # x <= 3 (those beyond stay with the exact code after a rewrite, so they are not training data).
    inside = [0.1 * k for k in range(40) if 0.1 * k <= 3]
    assert data.X.shape == (len(inside), 2) == (31, 2) and data.meta.dropped["outside_domain"] == 40 - 31
    xs = sorted(data.X[:, 0].tolist())
    assert xs == pytest.approx(inside)
    assert set(np.unique(data.X[:, 1])) == {1.0, 2.0, 3.0, 4.0}
    for (x, n), y in zip(data.X.tolist(), data.Y[:, 0].tolist()):
        assert y == sum(math.sin(x * j) for j in range(int(n)))


def test_observed_inputs_outside_the_domain_or_require_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "observe_app.py").write_text(APP, encoding="utf-8")
    strict = PHYSICS.replace("n=integers(1, 4)", 'n=integers(1, 4), require="x * n < 2"')
    path, text = write_case(tmp_path, strict, "physics.py")
    monkeypatch.chdir(tmp_path)
    region = function_region(text, "energy", ("x", "n"))
    result, data = sample_region(text, path, region, n=500, seed=0, executor=EXECUTOR, observe="python observe_app.py 40")
    assert data is not None, [d.format() for d in result.diagnostics]
    expected = [(0.1 * k, k % 4 + 1) for k in range(40) if 0.1 * k <= 3 and 0.1 * k * (k % 4 + 1) < 2]
    got = sorted(map(tuple, data.X.tolist()))
    assert len(got) == len(expected) and np.allclose(got, sorted(expected))
    assert data.meta.dropped["outside_domain"] == 40 - len(expected) > 9
    # When every observed call is outside, RX305 says so instead of training on nothing.
    narrow = PHYSICS.replace("x=uniform(0, 3)", "x=uniform(5, 6)")
    path, text = write_case(tmp_path, narrow, "physics.py")
    result, data = sample_region(text, path, function_region(text, "energy", ("x", "n")), n=500, seed=0,
                                 executor=EXECUTOR, observe="python observe_app.py 40")
    assert data is None and [d.code for d in result.diagnostics] == ["RX305"]
    assert "all 40 observed inputs lie outside the declared domain (x=uniform(5, 6)" in result.diagnostics[0].message


UNANNOTATED = '''\
import sys


def weighted(xs, n):
    return sum(x * k for k, x in zip(range(n), xs))


def main(count):
    out = 0.0
    for k in range(count):
        out += weighted([0.5 * k, 1.0, 2.0 - k], k % 3 + 1)
    print(out)


if __name__ == "__main__":
    main(int(sys.argv[1]))
'''


def test_observe_without_domains_restores_ints_and_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No pragma at all: observed loop counts come back as ints and lists as lists of the right length."""
    path, text = write_case(tmp_path, UNANNOTATED, "weights.py")
    monkeypatch.chdir(tmp_path)
    region = function_region(text, "weighted", ("xs", "n"))
    assert region.pragma is None
    result, data = sample_region(text, path, region, n=100, seed=0, executor=EXECUTOR, observe="python weights.py 30")
    assert data is not None, [d.format() for d in result.diagnostics]
    assert data.meta.mode == "observe" and data.X.shape == (30, 4) and data.meta.dropped["raised"] == 0
    assert data.meta.inputs[0].shape == (3,) and data.meta.domain == {}
    for row, y in zip(data.X.tolist(), data.Y[:, 0].tolist()):
        xs, n = row[:3], int(row[3])
        assert y == sum(x * k for k, x in zip(range(n), xs))
    # ... and when the program never reaches the region, RX306 says so.
    result, data = sample_region(text, path, region, n=10, observe="python weights.py 0")
    assert data is None and [d.code for d in result.diagnostics] == ["RX306"]
    assert "never entered the region" in result.diagnostics[0].message


def test_observe_failing_program_is_rx306(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "observe_app.py").write_text("raise SystemExit('no input file')\n", encoding="utf-8")
    path, text = write_case(tmp_path, PHYSICS, "physics.py")
    monkeypatch.chdir(tmp_path)
    result, data = sample_region(text, path, function_region(text, "energy", ("x", "n")), n=10,
                                 observe="python observe_app.py")
    assert data is None and [d.code for d in result.diagnostics] == ["RX306"]


def test_observe_with_a_non_python_command_is_rx006(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, PHYSICS, "physics.py")
    result, data = sample_region(text, path, function_region(text, "energy", ("x", "n")), n=10, observe="make run")
    assert data is None and result.diagnostics[0].code == "RX006"


def test_region_replace_keeps_stage_frozen(tmp_path: Path) -> None:
    """sample_region does not mutate the Region it is given (frozen, picklable data in, data out)."""
    path, text = write_case(tmp_path, NEWTONISH)
    region = function_region(text, "root", ("a", "b", "c"))
    copy = replace(region)
    sample_region(text, path, region, n=20, executor="local:1")
    assert region == copy


MUTATOR = '''\
# regionx: name=scale, v=normal(0, 1, shape=(3,)), s=uniform(2, 3)
def scale(v, s):
    for k in range(3):
        v[k] *= s
    return float(v.sum())
'''


def test_inputs_are_recorded_before_the_region_mutates_them(tmp_path: Path) -> None:
    path, text = write_case(tmp_path, MUTATOR)
    region = function_region(text, "scale", ("v", "s"), outputs=("return", "v"))
    result, data = sample_region(text, path, region, n=40, seed=0, executor=EXECUTOR)
    assert data is not None, result
    harness = write_harness(extract_region(text, path, region).payload.harness, str(tmp_path / "h.py"))
    proc = subprocess.run([sys.executable, harness, "--samples", "40", "--seed", "0", "--out", str(tmp_path / "h.npz")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    standalone = Dataset.load(str(tmp_path / "h.npz"))
    for d in (data, standalone):
        assert [v.shape for v in d.meta.outputs] == [(), (3,)]
        v, s = d.X[:, :3], d.X[:, 3:]
        assert np.allclose(d.Y[:, 1:], v * s) and np.allclose(d.Y[:, 0], (v * s).sum(axis=1))
    assert np.array_equal(data.X, standalone.X) and np.array_equal(data.Y, standalone.Y)


# -- the exact code, re-loaded for timing beside the surrogates (train's exact_timer) --------------

POLY = '''\
# regionx: name=poly, x=uniform(0, 1), n=integers(1, 4), w=uniform(-1, 1, shape=(3,))
def poly(x, n, w):
    return sum(w[k] * x ** k for k in range(min(n, 3)))
'''


def test_argument_rows_give_back_the_calls_sampling_made(tmp_path: Path) -> None:
    from regionx.sample import ExactLoadError, argument_rows, exact_harness, exact_timer

    path, text = write_case(tmp_path, POLY, "poly.py")
    region = function_region(text, "poly", ("x", "n", "w"))
    result, data = sample_region(text, path, region, n=200, seed=3, executor="local:1")
    assert data is not None, result
    rows = argument_rows(data.X, data.meta)
    assert all(type(r[0]) is float and type(r[1]) is int and isinstance(r[2], np.ndarray) and r[2].shape == (3,)
               for r in rows)
    with exact_harness(text, path, region) as harness:
        again = np.array([harness.region(*row)[0] for row in rows])
        np.testing.assert_array_equal(again, data.Y[:, 0])  # the very same calls: bit-identical outputs
        timer = exact_timer(harness, rows[:50], budget=0.02)
        assert 0 < timer() < 1e-3
        with pytest.raises(ExactLoadError, match="fails on the dataset's rows"):
            exact_timer(harness, [("x", "n", "w")], budget=0.02)


def test_exact_timer_for_a_dataset_needs_the_unchanged_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from regionx.api import exact_timer_for

    monkeypatch.chdir(tmp_path)
    path, text = write_case(tmp_path, POLY, "poly.py")
    _result, data = sample_region(text, "poly.py", function_region(text, "poly", ("x", "n", "w")), n=100, seed=0,
                                  executor="local:1")
    assert data is not None
    with exact_timer_for(data) as timer:
        assert timer is not None and timer() > 0
    Path(path).write_text(text.replace("min(n, 3)", "min(n, 2)"), encoding="utf-8")  # the region changed
    with exact_timer_for(data) as timer:
        assert timer is None
    Path(path).unlink()  # the source is gone
    with exact_timer_for(data) as timer:
        assert timer is None
