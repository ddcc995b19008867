"""Run-time checks behind the analysis (issue 11, part 2): while sampling runs the exact region,
every sample is checked against what the analysis claimed — inputs that are not outputs are left
unchanged, outputs are numbers of a fixed shape, the same inputs give the same outputs. A
violation refuses the region with RX308 (exit 1), naming the variable and the evidence, in every
executor path and in a harness run on its own; nothing is trained or rewritten after it.

Most regions are built by hand (so a concurrently improved analysis cannot hide the run-time
check); a few go through the real analysis, the CLI and `compile` for realism.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import regionx.sample as sample_mod
from regionx.extract import extract_region, write_harness
from regionx.pragma import parse_pragmas
from regionx.sample import _rx_changed, _rx_not_number, call_rows, sample_region
from regionx.types import Region

EXECUTOR = "local:1"

SOURCE = '''\
import math
import random

import numpy as np

COUNT = [0]


# regionx: name=halve, rows=uniform(0, 1, shape=(3, 2))
def halve(rows):
    s = 0.0
    for r in rows:
        s += r[0]
        r[0] /= 2.0
    return s


# regionx: name=scale, v=normal(0, 1, shape=(3,)), s=uniform(2, 3)
def scale(v, s):
    v *= s
    return float(v.sum())


# regionx: name=fmt, x=uniform(0, 1)
def fmt(x):
    return "%.3f" % x


# regionx: name=nothing, x=uniform(0, 1)
def nothing(x):
    y = x * 2.0


# regionx: name=table, x=uniform(0, 1)
def table(x):
    return {"x": x}


# regionx: name=cplx, x=uniform(0, 1)
def cplx(x):
    return complex(x, 1.0)


# regionx: name=texts, v=uniform(0, 1, shape=(2,))
def texts(v):
    return [str(t) for t in v]


# regionx: name=counter, x=uniform(0, 1)
def counter(x):
    COUNT[0] += 1
    return x + COUNT[0]


# regionx: name=noisy, x=uniform(0, 1)
def noisy(x):
    return x + random.random()


# regionx: name=root, a=uniform(0.5, 2.0), b=uniform(-10, 10), c=uniform(-10, 10),
# regionx: require="b*b - 4*a*c >= 0"
def root(a, b, c):
    return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)


# regionx: name=vec, v=normal(0, 1, shape=(3,)), s=uniform(1, 2)
def vec(v, s):
    return v * s


# regionx: name=mixed, s=uniform(1, 2)
def mixed(s):
    return [np.float32(s), bool(s > 1.5), int(s), s * 2.0]


# regionx: name=copy_then_scale, v=normal(0, 1, shape=(3,)), s=uniform(1, 2)
def copy_then_scale(v, s):
    w = v.copy()
    w *= s
    return w


def dot(x, w, n):
    acc = 0.0
    # regionx: name=dotloop, x=uniform(0, 1, shape=(4,)), w=uniform(0, 1), n=integers(1, 4), acc=uniform(0, 1)
    for i in range(n):
        acc += x[i] * w
    return acc


def scale_in_place(x, w, n):
    acc = 0.0
    # regionx: x=uniform(0, 1, shape=(4,)), w=uniform(0, 1), n=integers(1, 4), acc=uniform(0, 1)
    for i in range(n):
        x[i] *= w
        acc += x[i]
    return acc, x
'''


def function_region(text: str, name: str, inputs: tuple[str, ...], outputs: tuple[str, ...] = ("return",)) -> Region:
    """The Region of top-level function `name` in `text`, with its pragma — built by hand, with
    exactly the inputs and outputs given (whatever the analysis would say)."""
    node = next(n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef) and n.name == name)
    pragmas, diags = parse_pragmas(text, "case.py")
    assert not diags, diags
    pragma = next(p for p in pragmas if p.end_line == node.lineno - 1)
    return Region(id=name, name=name, kind="function", qualname=name, start_line=node.lineno,
                  end_line=node.end_lineno or node.lineno, col=1, annotated=True, inputs=inputs, outputs=outputs,
                  internals=(), globals=(), calls=(), replaceable=True, pragma=pragma, params=inputs)


def loop_region(text: str, qualname: str, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> Region:
    """The Region of the first `for` loop inside function `qualname`, with its pragma."""
    func = next(n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef) and n.name == qualname)
    loop = next(n for n in ast.walk(func) if isinstance(n, ast.For))
    pragmas, _ = parse_pragmas(text, "case.py")
    pragma = next(p for p in pragmas if p.end_line == loop.lineno - 1)
    rid = pragma.name or f"{qualname}:for@{loop.lineno}"
    return Region(id=rid, name=rid, kind="loop", qualname=qualname, start_line=loop.lineno,
                  end_line=loop.end_lineno or loop.lineno, col=loop.col_offset + 1, annotated=True, inputs=inputs,
                  outputs=outputs, internals=("i",), globals=(), calls=("range",), replaceable=True, pragma=pragma)


@pytest.fixture()
def case(tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "case.py"
    path.write_text(SOURCE, encoding="utf-8")
    return str(path), SOURCE


def refusal(result: Any) -> str:
    """The one RX308 message of a refused sampling run."""
    assert result.status == "failed" and [d.code for d in result.diagnostics] == ["RX308"], result.diagnostics
    return str(result.diagnostics[0].message)


# -- the portable checks, value by value ------------------------------------------------------------


@pytest.mark.parametrize("value, problem", [
    (1.5, None), (3, None), (True, None), (np.float32(2.0), None), (np.int64(7), None), (np.bool_(True), None),
    (np.zeros((2, 3)), None), (np.arange(3), None), ([1.0, 2.0], None), ([[1, 2], [3, 4]], None), ((1.0, 2), None),
    ([], None), ([2 ** 80, 1], None),  # numbers numpy keeps as objects: a number still (overflow is a drop)
    ("1.234", "a str ('1.234')"), (b"1", "a bytes (b'1')"), (None, "None"), ({"x": 1.0}, "a dict ({'x': 1.0})"),
    (1 + 2j, "a complex ((1+2j))"), (np.array([1j]), "an array of complex numbers"),
    (np.array(["a"]), "an array of strings"), ([1.0, "2.0"], "a list holding a str ('2.0')"),
    ([1.0, None], "a list holding None"), ([[1.0], [2.0, 3.0]], "a ragged list"),
    ((np.zeros(3), 1.0), "a ragged tuple"), (object(), "an object ("),
    (np.array([1.0, 2.0], dtype=object), None), (np.array([1.0, None], dtype=object), "an ndarray holding None"),
])
def test_what_counts_as_a_number(value: Any, problem: str | None) -> None:
    found = _rx_not_number(value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found


@pytest.mark.parametrize("before, after, expected", [
    (np.array([1.0, np.nan]), np.array([1.0, np.nan]), None),  # NaN equals NaN
    (np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 0.5]]), ("x[1][1]", "4.0", "0.5")),
    (np.array([1.0, 2.0]), np.array([1, 2]), ("x", "dtype float64", "dtype int64")),
    (np.array([1.0, 2.0]), np.array([[1.0, 2.0]]), ("x", "shape (2,)", "shape (1, 2)")),
    ([[3.0, 1.0], [2.0]], [[0.6, 1.0], [2.0]], ("x[0][0]", "3.0", "0.6")),
    ([1.0, 2.0], [1.0, 2.0, 3.0], ("x", "2 items", "3 items")),
    ([np.zeros(2)], [np.array([0.0, 1.0])], ("x[0][1]", "0.0", "1.0")),  # arrays inside lists
    ({"a": [1.0]}, {"a": [1.0]}, None), ({"a": 1.0}, {"a": 2.0}, ("x['a']", "1.0", "2.0")),
    ({"a": 1.0}, {"a": 1.0, "b": 2.0}, ("x['b']", "(absent)", "2.0")),
    ([float("nan")], [float("nan")], None), ([2.0], [2], ("x[0]", "2.0", "2")),  # a float became an int
])
def test_deep_comparison_finds_the_first_change(before: Any, after: Any, expected: tuple[str, str, str] | None) -> None:
    assert _rx_changed(before, after, "x") == expected


def test_call_rows_in_process_checks_each_call() -> None:
    """The inline path (what check.py and a harness use): statuses per row, evidence per violation."""
    def region(v, s):  # type: ignore[no-untyped-def]
        if s > 1.0:
            v[0] = -1.0
        return (float(v.sum()),)

    rows = [(np.array([1.0, 2.0]), 0.5), (np.array([1.0, 2.0]), 2.0), (np.array([3.0]), 0.1)]
    results = call_rows(region, rows, 1, 5.0, inputs=("v", "s"), outputs=("return",))
    assert [status for status, _ in results] == ["ok", "violation", "ok"]
    what, evidence = results[1][1]
    assert what == "`v` was changed by the region but is not among its outputs" and evidence == "v[0] 1.0 -> -1.0"
    assert np.array_equal(rows[1][0], [1.0, 2.0])  # the region saw a copy
    # Listed among the outputs, the same mutation is what the region is for; without names, no check.
    assert [s for s, _ in call_rows(region, rows, 1, 5.0, inputs=("v", "s"), outputs=("return", "v"))] == ["ok"] * 3
    assert [s for s, _ in call_rows(region, rows, 1, 5.0)] == ["ok"] * 3


def test_recheck_runs_valid_rows_again_in_the_same_process() -> None:
    calls = [0]

    def drifting(x):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return (x + (1e-9 if calls[0] > 3 else 0.0),)  # differs only once it has been called 3 times

    def steady(x):  # type: ignore[no-untyped-def]
        return (np.array([x, 2.0 * x]),)

    rows = [(0.25,), (0.5,), (0.75,)]
    results = call_rows(drifting, rows, 1, 5.0, inputs=("x",), outputs=("y",), recheck=3)
    assert calls[0] == 6 and [s for s, _ in results] == ["violation"] * 3
    assert results[0][1] == ("not deterministic: the same inputs gave y=0.25 then 0.250000001", "")
    assert [s for s, _ in call_rows(steady, rows, 1, 5.0, inputs=("x",), outputs=("y",), recheck=3)] == ["ok"] * 3
    calls[0] = 0
    assert [s for s, _ in call_rows(drifting, rows, 1, 5.0)] == ["ok"] * 3 and calls[0] == 3  # no re-runs by default


# -- sampling refuses the region -------------------------------------------------------------------


REFUSED = [
    # (function, inputs, outputs, words the message must hold)
    ("halve", ("rows",), ("return",),
     ["`rows` was changed by the region but is not among its outputs", "first seen on sample 0: rows[0][0] "]),
    ("scale", ("v", "s"), ("return",), ["`v` was changed by the region", "first seen on sample 0: v[0] "]),
    ("fmt", ("x",), ("return",), ["output 'return' is a str ('", "not a number (first seen on sample 0)"]),
    ("nothing", ("x",), ("return",), ["output 'return' is None, not a number"]),
    ("table", ("x",), ("return",), ["output 'return' is a dict ({'x': "]),
    ("cplx", ("x",), ("return",), ["output 'return' is a complex ("]),
    ("texts", ("v",), ("return",), ["output 'return' is a list holding a str ("]),
    ("counter", ("x",), ("return",), ["not deterministic: the same inputs gave return=", "(first seen on sample "]),
    ("noisy", ("x",), ("return",), ["not deterministic: the same inputs gave return=", "(first seen on sample "]),
]


@pytest.mark.parametrize("name, inputs, outputs, words", REFUSED, ids=[c[0] for c in REFUSED])
def test_violations_refuse_the_region_rx308(case: tuple[str, str], name: str, inputs: tuple[str, ...],
                                            outputs: tuple[str, ...], words: list[str]) -> None:
    path, text = case
    region = function_region(text, name, inputs, outputs)
    result, data = sample_region(text, path, region, n=20, seed=1, executor=EXECUTOR)
    assert data is None
    message = refusal(result)
    assert message.startswith(f"region {name!r} does not behave as analysed: ")
    for word in words:
        assert word in message, message
    diag = result.diagnostics[0]
    assert (diag.line, diag.col) == (region.pragma.line, region.pragma.col)  # type: ignore[union-attr]
    assert diag.format().startswith(f"{path}:{diag.line}:{diag.col}: RX308 region {name!r}")
    assert result.payload.violation in message


PASSING = [
    ("root", ("a", "b", "c"), ("return",)),
    ("vec", ("v", "s"), ("return",)),  # a numeric ndarray
    ("mixed", ("s",), ("return",)),  # a list of a numpy scalar, a bool, an int and a float: numbers
    ("copy_then_scale", ("v", "s"), ("return",)),  # mutates its own copy only
    ("scale", ("v", "s"), ("return", "v")),  # mutates an input that IS an output
    ("halve", ("rows",), ("return", "rows")),
]


@pytest.mark.parametrize("name, inputs, outputs", PASSING, ids=[f"{c[0]}->{','.join(c[2])}" for c in PASSING])
def test_regions_that_behave_as_analysed_pass(case: tuple[str, str], name: str, inputs: tuple[str, ...],
                                              outputs: tuple[str, ...]) -> None:
    path, text = case
    result, data = sample_region(text, path, function_region(text, name, inputs, outputs), n=30, seed=2,
                                 executor=EXECUTOR)
    assert result.ok and data is not None, result.diagnostics
    assert data.X.shape[0] == 30 and result.payload.violation is None


@pytest.mark.parametrize("qualname, outputs, words", [
    ("dot", ("acc",), None),
    ("scale_in_place", ("acc",), "`x` was changed by the region but is not among its outputs (first seen on sample 0: x["),
    ("scale_in_place", ("acc", "x"), None),
])
def test_loop_regions_are_checked_too(case: tuple[str, str], qualname: str, outputs: tuple[str, ...],
                                      words: str | None) -> None:
    """A loop region's harness runs the loop as a function body: the same checks apply."""
    path, text = case
    region = loop_region(text, qualname, ("n", "acc", "x", "w"), outputs)
    result, data = sample_region(text, path, region, n=30, seed=3, executor=EXECUTOR)
    if words is None:
        assert result.ok and data is not None, result.diagnostics
    else:
        assert words in refusal(result)


def test_one_violation_among_many_good_samples_refuses(tmp_path: Path) -> None:
    """A violation on a single sample is a refusal, not a drop, and names that sample."""
    text = textwrap.dedent('''\
        # regionx: name=rare, v=uniform(0, 1, shape=(2,))
        def rare(v):
            if v[0] > 0.97:
                v[1] = 0.0
            return float(v[0] + v[1])
        ''')
    path = tmp_path / "rare.py"
    path.write_text(text, encoding="utf-8")
    result, data = sample_region(text, str(path), function_region(text, "rare", ("v",)), n=300, seed=0,
                                 executor="local:2")
    assert data is None
    message = refusal(result)
    rows, _ = sample_mod.draw_inputs(function_region(text, "rare", ("v",)).pragma.domains, 300,  # type: ignore[union-attr]
                                     np.random.default_rng(0))
    first = next(i for i, (v,) in enumerate(rows) if v[0] > 0.97)
    assert f"first seen on sample {first}: v[1] " in message and first > 0


def test_a_raising_region_is_still_only_dropped(tmp_path: Path) -> None:
    text = 'import math\n\n# regionx: name=half, x=uniform(-1, 1)\ndef half(x):\n    return math.sqrt(x)\n'
    path = tmp_path / "half.py"
    path.write_text(text, encoding="utf-8")
    result, data = sample_region(text, str(path), function_region(text, "half", ("x",)), n=40, seed=0,
                                 executor=EXECUTOR)
    assert result.ok and data is not None and data.meta.dropped["raised"] > 0


# -- every executor path, and the harness on its own -----------------------------------------------


def test_checks_run_in_the_subprocess_path(case: tuple[str, str]) -> None:
    """Where signals cannot be used (a Dask worker thread) a chunk runs in a child interpreter."""
    path, text = case
    for name, inputs, words in [("halve", ("rows",), "`rows` was changed"), ("fmt", ("x",), "is a str")]:
        region = function_region(text, name, inputs)
        harness = extract_region(text, path, region).payload.harness
        rows, _ = sample_mod.draw_inputs(region.pragma.domains, 5, np.random.default_rng(0))  # type: ignore[union-attr]
        chunk = sample_mod._Chunk(harness, (str(Path(path).parent),), rows, 5.0, 1, region.inputs, region.outputs, 3)
        out = sample_mod._run_chunk_subprocess(chunk)
        assert out.error is None and [s for s, _ in out.results] == ["violation"] * 5
        assert words in out.results[0][1][0]


def test_checks_run_on_a_dask_cluster(case: tuple[str, str]) -> None:
    from distributed import LocalCluster

    path, text = case
    with LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        executor = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        mutated, _ = sample_region(text, path, function_region(text, "halve", ("rows",)), n=10, executor=executor)
        text_out, _ = sample_region(text, path, function_region(text, "fmt", ("x",)), n=10, executor=executor)
        good, data = sample_region(text, path, function_region(text, "halve", ("rows",), ("return", "rows")), n=10,
                                   executor=executor)
    assert "`rows` was changed" in refusal(mutated) and "is a str" in refusal(text_out)
    assert good.ok and data is not None


@pytest.mark.parametrize("name, inputs, words", [
    ("halve", ("rows",), "`rows` was changed by the region but is not among its outputs (first seen on sample 0: "),
    ("fmt", ("x",), "output 'return' is a str ("),
    ("counter", ("x",), "not deterministic: the same inputs gave return="),
])
def test_standalone_harness_refuses_too(case: tuple[str, str], tmp_path: Path, name: str, inputs: tuple[str, ...],
                                        words: str) -> None:
    path, text = case
    harness = write_harness(extract_region(text, path, function_region(text, name, inputs)).payload.harness,
                            str(tmp_path / f"harness_{name}.py"))
    out = tmp_path / f"{name}.npz"
    proc = subprocess.run([sys.executable, harness, "--samples", "20", "--out", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and not out.exists()
    assert proc.stderr.startswith(f"error: region {name!r} does not behave as analysed: ") and words in proc.stderr
    assert "Traceback" not in proc.stderr


# -- through the analysis, the CLI and compile ------------------------------------------------------

REAL = '''\
# regionx: name=halve, rows=uniform(0, 1, shape=(3, 2))
def halve(rows):
    s = 0.0
    for r in rows:
        s += r[0]
        r[0] /= 2.0
    return s


# regionx: name=fmt, x=uniform(0, 1), samples=40
def fmt(x):
    return "%.3f" % x
'''


@pytest.fixture()
def real(tmp_path: Path) -> str:
    path = tmp_path / "real.py"
    path.write_text(REAL, encoding="utf-8")
    return str(path)


def test_never_silent_with_the_real_analysis(real: str) -> None:
    """Either the analysis lists `rows` among the outputs (and sampling agrees), or sampling refuses."""
    from regionx.analysis import analyze_file

    regions = {r.id: r for r in analyze_file(real).regions}
    text = Path(real).read_text(encoding="utf-8")
    halve = regions["halve"]
    result, data = sample_region(text, real, halve, n=20, executor=EXECUTOR)
    if "rows" in halve.outputs or not halve.replaceable:
        assert result.ok and data is not None
    else:
        assert "`rows` was changed by the region but is not among its outputs" in refusal(result)
    result, data = sample_region(text, real, regions["fmt"], n=20, executor=EXECUTOR)
    assert "output 'return' is a str (" in refusal(result)


def test_cli_sample_exits_1_with_one_line(real: str, tmp_path: Path) -> None:
    from regionx.cli import cli

    out = tmp_path / "fmt.npz"
    result = CliRunner().invoke(cli, ["sample", real, "--region", "fmt", "-n", "20", "--executor", EXECUTOR,
                                      "-o", str(out)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if "RX308" in line]
    assert len(lines) == 1 and lines[0].startswith(f"{real}:10:1: RX308 region 'fmt' does not behave as analysed: ")
    assert "output 'return' is a str" in lines[0]
    assert "Traceback" not in result.output and not out.exists()


def test_compile_skips_the_region_before_training(real: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """compile samples first: the refusal comes before any training, and nothing is rewritten."""
    import regionx.train
    from regionx import api

    def no_training(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a refused region must not be trained")

    monkeypatch.setattr(regionx.train, "train_dataset", no_training)
    out_dir = tmp_path / "artifacts"
    [result] = api.compile_file(real, ["fmt"], out_dir=str(out_dir), samples=40, executor=EXECUTOR)
    assert result.status == "failed" and [d.code for d in result.diagnostics] == ["RX308"]
    assert "output 'return' is a str" in result.diagnostics[0].message
    assert not (out_dir / "real.py").exists() and "patched" not in result.artifacts
