"""`regionx extract`: harnesses are self-contained and compute exactly what the original code does.

Regions are built by hand here (the analyzer is tested elsewhere): each case gives the source,
the region's kind, span and interface, and a way to run the *original* code on the same inputs
(exec'ing the source and calling the function, or running the loop in a function). The harness
must give bit-identical outputs on random inputs.
"""

from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from regionx.extract import extract_region, load_harness, write_harness
from regionx.pragma import parse_pragmas
from regionx.types import Dataset, Reason, Region

ROOT = Path(__file__).resolve().parents[1]


def span(text: str, marker: str) -> tuple[int, int, int]:
    """(first line, last line, column) of the statement whose first line contains `marker`.

    A decorated def starts at its first decorator, as regionx.types.Region requires.
    """
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            line = text.splitlines()[node.lineno - 1]
            if marker in line:
                start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                return start, node.end_lineno or node.lineno, node.col_offset + 1
    raise AssertionError(f"no statement with {marker!r}")


def make_region(text: str, kind: str, marker: str, inputs: tuple[str, ...], outputs: tuple[str, ...], *,
                qualname: str = "<module>", name: str | None = None, end_marker: str | None = None,
                reasons: tuple[Reason, ...] = ()) -> Region:
    """A Region for the statement at `marker` (to the statement at `end_marker` for a block)."""
    start, end, col = span(text, marker)
    if end_marker is not None:
        end = span(text, end_marker)[1]
    pragmas, diags = parse_pragmas(text, "case.py")
    assert not diags, diags
    pragma = next((p for p in pragmas if p.end_line < start and start - p.end_line <= 1), None)
    rid = name or (qualname if kind == "function" else f"{qualname}:{kind}@{start}")
    return Region(id=rid, name=name or rid, kind=kind, qualname=qualname, start_line=start, end_line=end, col=col,  # type: ignore[arg-type]
                  annotated=pragma is not None, inputs=inputs, outputs=outputs, internals=(), globals=(), calls=(),
                  replaceable=not reasons, reasons=reasons, pragma=pragma, params=inputs if kind == "function" else ())


def run_source(text: str) -> dict[str, Any]:
    """Execute the original module (as an imported module, not as __main__) and return its namespace."""
    # `profile` as kernprof injects it (the harness drops that decorator: it does not resolve).
    namespace: dict[str, Any] = {"__name__": "original_case", "profile": lambda func: func}
    exec(compile(text, "case.py", "exec"), namespace)
    return namespace


@dataclass
class Case:
    id: str
    source: str
    kind: str
    marker: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    draw: Callable[[np.random.Generator], tuple[Any, ...]]  # one random input row
    original: Callable[[dict[str, Any], tuple[Any, ...]], tuple[Any, ...]]  # run the original code
    qualname: str = "<module>"
    end_marker: str | None = None
    absent: tuple[str, ...] = ()  # text that must not be copied into the harness
    present: tuple[str, ...] = ()  # text that must be


FUNCTION_HELPERS = textwrap.dedent('''\
    """A module whose region needs helpers, constants and imports, transitively."""
    from __future__ import annotations

    import math
    import os
    from functools import reduce as fold

    SCALE = 2.0
    OFFSET = math.pi / 4
    TABLE = [1.0, 0.5, 0.25]
    TABLE.append(0.125)
    UNUSED = os.getcwd()


    def _poly(x: float) -> float:
        return fold(lambda acc, c: acc * x + c, TABLE, 0.0)


    class Shape:
        def __init__(self, k: float) -> None:
            self.k = k

        def area(self, r: float) -> float:
            return self.k * r * r * SCALE


    def helper(x: float, y: float) -> float:
        return math.sin(x) * SCALE + _poly(y) + OFFSET + Shape(0.5).area(x)


    def unrelated() -> str:
        return os.getcwd()


    # regionx: name=target, x=uniform(-2, 2), y=uniform(-2, 2)
    def target(x: float, y: float) -> float:
        """Docstring kept."""
        return helper(x, y) / (1.0 + y * y)


    if __name__ == "__main__":
        print(target(1.0, 2.0))
''')

LOOP_IN_FUNCTION = textwrap.dedent('''\
    import math

    K = 3


    def step(v):
        return v * 0.5 + K


    def simulate(x, n):
        total = 0.0
        # regionx: name=acc, x=uniform(0, 1), n=integers(1, 20), total=normal(0, 1)
        for i in range(n):
            total += step(x) * math.log1p(i)
            x = x * 0.9
        return total, x
''')

BLOCK = textwrap.dedent('''\
    import math


    def kernel(a, b):
        c = a + b
        # regionx: begin name=blk
        d = math.sqrt(c * c + 1.0)
        e = d * a - b
        if e > 0:
            e = math.log(e + 1.0)
        # regionx: end
        return d, e
''')

MODULE_LOOP = textwrap.dedent('''\
    import math

    N = 5
    acc = 0.0
    x = 0.3
    for k in range(N):
        acc += math.cos(x * k)
    print("done")
''')

ARRAYS = textwrap.dedent('''\
    import numpy as np

    W = np.linspace(0.0, 1.0, 4)


    def proj(v, s):
        return np.tanh(v * W) * s
''')

WHILE_LOOP = textwrap.dedent('''\
    def collatz_steps(m):
        steps = 0
        while m != 1:
            m = m // 2 if m % 2 == 0 else 3 * m + 1
            steps += 1
        return steps
''')

METHODS = textwrap.dedent('''\
    import math

    class Solver:
        RATE = 0.5

        @staticmethod
        def relax(x, y):
            return math.exp(-Solver.RATE * x) * y

        @classmethod
        def scaled(cls, x):
            return cls.RATE * x
''')

NESTED = textwrap.dedent('''\
    import math

    C = 1.5


    def outer(values):
        def inner(u, w):
            return math.hypot(u, w) * C
        return [inner(v, v) for v in values]
''')

DECORATED = textwrap.dedent('''\
    import functools


    @profile
    @functools.lru_cache(maxsize=None)
    def f(a, b):
        return a * b + 1.0
''')

MUTATING = textwrap.dedent('''\
    def fill(buf, s):
        for k in range(len(buf)):
            buf[k] = buf[k] * s + k
        return float(sum(buf))
''')


def _u(rng: np.random.Generator, lo: float = -1.0, hi: float = 1.0) -> float:
    return float(rng.uniform(lo, hi))


CASES = [
    Case("function-helpers-transitive", FUNCTION_HELPERS, "function", "def target", ("x", "y"), ("return",),
         lambda r: (_u(r, -2, 2), _u(r, -2, 2)), lambda ns, a: (ns["target"](*a),), qualname="target",
         absent=("def unrelated", "UNUSED", "import os", "__main__\":\n    print"),
         present=("from __future__ import annotations", "TABLE.append(0.125)", "class Shape", "import math",
                  "from functools import reduce as fold", "_RX_EXACT = target")),
    Case("loop-in-function", LOOP_IN_FUNCTION, "loop", "for i in range(n)", ("n", "total", "x"), ("total", "x"),
         lambda r: (int(r.integers(1, 20)), 0.0, _u(r, 0, 1)),
         lambda ns, a: ns["simulate"](a[2], a[0]), qualname="simulate",
         absent=("def simulate",), present=("def step", "K = 3")),
    Case("block", BLOCK, "block", "d = math.sqrt", ("a", "b", "c"), ("d", "e"),
         lambda r: (lambda a, b: (a, b, a + b))(_u(r), _u(r)),
         lambda ns, a: ns["kernel"](a[0], a[1]), qualname="kernel", end_marker="if e > 0",
         absent=("def kernel",)),
    Case("module-level-loop", MODULE_LOOP, "loop", "for k in range(N)", ("acc", "x"), ("acc",),
         lambda r: (_u(r), _u(r)),
         lambda ns, a: (lambda g: (exec("for k in range(N):\n    acc += math.cos(x * k)\n", g), (g["acc"],))[1])(
             {**ns, "acc": a[0], "x": a[1]}),
         absent=("print(",), present=("N = 5",)),
    Case("arrays", ARRAYS, "function", "def proj", ("v", "s"), ("return",),
         lambda r: (r.normal(size=4), _u(r)), lambda ns, a: (ns["proj"](*a),), qualname="proj",
         present=("W = np.linspace",)),
    Case("while-loop", WHILE_LOOP, "loop", "while m != 1", ("m", "steps"), ("m", "steps"),
         lambda r: (int(r.integers(1, 500)), 0), lambda ns, a: (1, ns["collatz_steps"](a[0])), qualname="collatz_steps"),
    Case("staticmethod", METHODS, "function", "def relax", ("x", "y"), ("return",),
         lambda r: (_u(r), _u(r)), lambda ns, a: (ns["Solver"].relax(*a),), qualname="Solver.relax",
         present=("class Solver",)),
    Case("classmethod", METHODS, "function", "def scaled", ("x",), ("return",),
         lambda r: (_u(r),), lambda ns, a: (ns["Solver"].scaled(*a),), qualname="Solver.scaled"),
    Case("nested-function", NESTED, "function", "def inner", ("u", "w"), ("return",),
         lambda r: (_u(r), _u(r)), lambda ns, a: (math.hypot(*a) * 1.5,), qualname="outer.inner",
         absent=("def outer",)),
    Case("unresolvable-decorator-dropped", DECORATED, "function", "def f", ("a", "b"), ("return",),
         lambda r: (_u(r), _u(r)), lambda ns, a: (a[0] * a[1] + 1.0,), qualname="f",
         absent=("@profile",), present=("@functools.lru_cache(maxsize=None)",)),
    Case("mutated-parameter-output", MUTATING, "function", "def fill", ("buf", "s"), ("return", "buf"),
         lambda r: (r.normal(size=3), _u(r)),
         lambda ns, a: (lambda b: (ns["fill"](b, a[1]), b))(a[0].copy()), qualname="fill"),
]


def _extract(case: Case) -> tuple[Region, str]:
    region = make_region(case.source, case.kind, case.marker, case.inputs, case.outputs, qualname=case.qualname,
                         end_marker=case.end_marker)
    result = extract_region(case.source, "case.py", region)
    assert result.ok, [d.format() for d in result.diagnostics]
    return region, result.payload.harness


def _same(a: Any, b: Any) -> bool:
    """Bit-identical: equal values of equal type, arrays equal element for element."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b)) and np.asarray(a).dtype == np.asarray(b).dtype
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_harness_matches_original_bit_for_bit(case: Case) -> None:
    region, harness = _extract(case)
    for text in case.absent:
        assert text not in harness.split("# --- the region")[0], f"{text!r} was copied"
    for text in case.present:
        assert text in harness, f"{text!r} is missing"
    module = load_harness(harness)
    assert module.INPUTS == case.inputs and module.OUTPUTS == case.outputs
    original = run_source(case.source)
    rng = np.random.default_rng(7)
    for _ in range(50):
        row = case.draw(rng)
        copies = tuple(v.copy() if isinstance(v, np.ndarray) else v for v in row)
        got = module.region(*row)
        want = case.original(original, copies)
        assert isinstance(got, tuple) and len(got) == len(case.outputs)
        assert _same(tuple(got), tuple(want)), (row, got, want)


def test_harness_constants_and_domain_from_pragma() -> None:
    case = CASES[0]
    _, harness = _extract(case)
    module = load_harness(harness)
    assert module.DOMAIN == {"x": "uniform(-2, 2)", "y": "uniform(-2, 2)"}
    assert module.REQUIRE is None
    assert module.REGION_ID == "target"
    assert module._RX_SPECS == (("x", "uniform", (-2, 2), ()), ("y", "uniform", (-2, 2), ()))


def test_loaded_harnesses_are_independent_modules() -> None:
    _, harness = _extract(CASES[0])
    first, second = load_harness(harness), load_harness(harness)
    assert first is not second and first.__name__ != second.__name__
    first.TABLE.append(99.0)
    assert second.TABLE == [1.0, 0.5, 0.25, 0.125]


NEWTON = ROOT / "fixtures" / "newton.py"


def _newton_region() -> tuple[str, Region]:
    text = NEWTON.read_text(encoding="utf-8")
    return text, make_region(text, "function", "def newton", ("a", "b", "c"), ("return",), qualname="newton", name="newton")


def test_newton_fixture_harness_runs_standalone(tmp_path: Path) -> None:
    """The harness works from another directory with only its own imports, and writes a Dataset file."""
    text, region = _newton_region()
    result = extract_region(text, str(NEWTON), region)
    assert result.ok
    harness = result.payload.harness
    assert "import random" not in harness and "def make_equations" not in harness and "def main" not in harness
    target = tmp_path / "elsewhere" / "harness_newton.py"
    written = write_harness(harness, str(target))
    assert written == str(target) and target.read_text(encoding="utf-8") == harness
    out = tmp_path / "data.npz"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-I", str(target), "--samples", "300", "--seed", "1", "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = Dataset.load(str(out))
    assert data.X.shape == (300, 3) and data.Y.shape == (300, 1)
    a, b, c = data.X.T
    assert np.all(b * b - 4 * a * c >= 0)  # REQUIRE held
    module = load_harness(str(target))
    for row, y in zip(data.X[:20], data.Y[:20, 0]):
        assert module.newton(*row) == y
    assert data.meta.region_id == "newton" and data.meta.exact_time_per_call > 0


def test_harness_cli_fails_cleanly_on_too_strict_require(tmp_path: Path) -> None:
    source = textwrap.dedent('''\
        # regionx: x=uniform(0, 1), require="x > 0.9999"
        def f(x):
            return x * 2.0
    ''')
    region = make_region(source, "function", "def f", ("x",), ("return",), qualname="f")
    result = extract_region(source, "case.py", region)
    path = write_harness(result.payload.harness, str(tmp_path / "h.py"))
    proc = subprocess.run([sys.executable, path, "--samples", "10", "--out", str(tmp_path / "d.npz")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "(< 1%)" in proc.stderr
    assert not (tmp_path / "d.npz").exists()


# -- regions that cannot be extracted: RX301 naming the line ---------------------------------------

ESCAPE = textwrap.dedent('''\
    def find(xs, t):
        for i in range(len(xs)):
            if xs[i] > t:
                return i
        return -1
''')

LOCAL_HELPER = textwrap.dedent('''\
    def outer(x):
        def sq(v):
            return v * v
        y = 0.0
        for k in range(3):
            y += sq(x) + k
        return y
''')

CLOSURE = textwrap.dedent('''\
    def outer(x):
        scale = 2.0
        def inner(v):
            return v * scale
        return inner(x)
''')

UNDEFINED = textwrap.dedent('''\
    def helper(v):
        return v * NOT_DEFINED_ANYWHERE


    def f(x):
        return helper(x) + 1.0
''')

RESERVED_NAME = textwrap.dedent('''\
    region = 3.0


    def f(x):
        return x * region
''')

BREAK_OUT = textwrap.dedent('''\
    def g(xs):
        total = 0.0
        for x in xs:
            # regionx: begin name=b
            total += x
            if total > 10:
                break
            # regionx: end
        return total
''')


@pytest.mark.parametrize(
    "source, kind, marker, inputs, outputs, qualname, end_marker, reasons, line, words",
    [
        (ESCAPE, "loop", "for i in range", ("t", "xs"), ("i",), "find", None, (), 4, "'return' leaves the region"),
        (ESCAPE, "loop", "for i in range", ("t", "xs"), ("i",), "find", None,
         (Reason("RX205", 4, "return leaves the loop"),), 4, "return leaves the loop"),
        (LOCAL_HELPER, "loop", "for k in range", ("x", "y"), ("y",), "outer", None, (), 6, "'sq'"),
        (CLOSURE, "function", "def inner", ("v",), ("return",), "outer.inner", None, (), 4, "'scale'"),
        (UNDEFINED, "function", "def f", ("x",), ("return",), "f", None, (), 2, "'NOT_DEFINED_ANYWHERE'"),
        (RESERVED_NAME, "function", "def f", ("x",), ("return",), "f", None, (), 1, "'region'"),
        (BREAK_OUT, "block", "total += x", ("total", "x"), ("total",), "g", "if total > 10", (), 7, "'break'"),
    ],
    ids=["return-in-loop", "rx205-reason", "local-helper", "closure-variable", "undefined-in-dependency",
         "reserved-name", "break-out-of-block"],
)
def test_unextractable_regions_are_rx301(source: str, kind: str, marker: str, inputs: tuple[str, ...],
                                         outputs: tuple[str, ...], qualname: str, end_marker: str | None,
                                         reasons: tuple[Reason, ...], line: int, words: str) -> None:
    region = make_region(source, kind, marker, inputs, outputs, qualname=qualname, end_marker=end_marker,
                         reasons=reasons)
    result = extract_region(source, "case.py", region)
    assert result.status == "failed"
    [diag] = result.diagnostics
    assert diag.code == "RX301" and diag.line == line, diag.format()
    assert words in diag.message
    assert diag.format().startswith(f"case.py:{line}:")


def test_stale_region_lines_are_rx301() -> None:
    region = make_region(WHILE_LOOP, "loop", "while m != 1", ("m", "steps"), ("m", "steps"), qualname="collatz_steps")
    from dataclasses import replace

    moved = replace(region, start_line=region.start_line + 1)
    result = extract_region(WHILE_LOOP, "case.py", moved)
    assert result.status == "failed" and result.diagnostics[0].code == "RX301"


# -- with the real analyzer --------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["newton.py", "lj_md.py"])
def test_every_region_of_the_fixtures_extracts_or_says_why(fixture: str) -> None:
    from regionx.analysis import analyze_file

    path = str(ROOT / "fixtures" / fixture)
    text = Path(path).read_text(encoding="utf-8")
    analysis = analyze_file(path)
    assert analysis.ok and analysis.regions
    extracted = 0
    for region in analysis.regions:
        result = extract_region(text, path, region)
        if result.ok:
            module = load_harness(result.payload.harness)
            assert module.INPUTS == region.inputs and module.OUTPUTS == region.outputs
            extracted += 1
        else:
            [diag] = result.diagnostics
            # Only regions that control flow leaves are refused here.
            assert diag.code == "RX301" and region.start_line <= diag.line <= region.end_line, diag.format()
            assert any(r.code == "RX205" for r in region.reasons) or "leaves the region" in diag.message
    assert extracted >= len(analysis.regions) - 2


# -- the dependency closure: what staleness covers beyond the region's own lines ---------------------

CLOSURE_BASE = """\
import math

SCALE = 2.0
UNUSED = 1
TABLE = [1.0, 2.0]
TABLE.append(3.0)


def inner(x):
    return x * SCALE


def helper(x):
    return inner(x) + math.sqrt(abs(x))


class Box:
    K = 3.0

    def area(self, w):
        return w * self.K


def f(a):
    return helper(a) + TABLE[0] + Box.K
"""

# (edits applied to CLOSURE_BASE, what closure_changes says; [] = the same closure_sha256)
CLOSURE_CASES: list[tuple[str, list[tuple[str, str]], list[str]]] = [
    ("constant", [("SCALE = 2.0", "SCALE = 3.0")], ["module constant SCALE changed"]),  # read by a helper's helper
    ("helper-of-helper", [("return x * SCALE", "return x * SCALE * 1.0")], ["helper function inner changed"]),
    ("helper", [("+ math.sqrt(abs(x))", "- math.sqrt(abs(x))")], ["helper function helper changed"]),
    ("import", [("import math", "import cmath as math")], ["import of math changed"]),
    ("in-place update", [("TABLE.append(3.0)", "TABLE.append(4.0)")], ["in-place update of TABLE changed"]),
    ("class attribute", [("K = 3.0", "K = 4.0")], ["class Box changed"]),
    ("new dependency", [("def inner(x):", "OFFSET = 1.0\n\n\ndef inner(x):"), ("x * SCALE", "x * SCALE + OFFSET")],
     ["new dependency: module constant OFFSET", "helper function inner changed"]),
    ("dropped dependency", [(" + TABLE[0] + Box.K", "")],
     ["module constant TABLE is no longer a dependency", "in-place update of TABLE is no longer a dependency",
      "class Box is no longer a dependency"]),
    ("gone", [("SCALE = 2.0\n", "")], ["its dependencies cannot be collected any more"]),
    ("unrelated constant", [("UNUSED = 1", "UNUSED = 2")], []),
    ("comments and blank lines", [("SCALE = 2.0", "# the scale\nSCALE = 2.0  # two\n\n")], []),
    ("reordered", [("SCALE = 2.0\nUNUSED = 1\n", "UNUSED = 1\nSCALE = 2.0\n")], []),
    ("crlf", [("\n", "\r\n")], []),
    ("the region's own lines", [("+ Box.K\n", "+ Box.K + 0.0\n")], []),  # source_sha256's business
]


def _closure_region(text: str) -> Region:
    return make_region(text, "function", "def f", ("a",), ("return",), qualname="f", name="f")


@pytest.mark.parametrize("name,edits,said", CLOSURE_CASES, ids=[c[0] for c in CLOSURE_CASES])
def test_closure_changes(name: str, edits: list[tuple[str, str]], said: list[str]) -> None:
    from regionx.extract import closure_changes, region_closure

    before = region_closure(CLOSURE_BASE, "case.py", _closure_region(CLOSURE_BASE))
    assert before.problem is None
    assert [(d.name, d.kind) for d in before.dependencies] == [
        ("math", "import"), ("SCALE", "constant"), ("TABLE", "constant"), ("TABLE", "update"), ("inner", "function"),
        ("helper", "function"), ("Box", "class")]
    text = CLOSURE_BASE
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    after = region_closure(text, "case.py", _closure_region(text.replace("\r\n", "\n")))
    changes = closure_changes(before.dependencies, after)
    assert (after.sha256 == before.sha256) == (not said)
    if name == "gone":
        [only] = changes
        assert only.startswith(said[0]) and "'SCALE'" in only
    else:
        assert sorted(changes) == sorted(said)


def test_harness_and_region_closure_agree() -> None:
    from regionx.extract import Closure, region_closure

    region = _closure_region(CLOSURE_BASE)
    extracted = extract_region(CLOSURE_BASE, "case.py", region)
    assert extracted.payload.closure == region_closure(CLOSURE_BASE, "case.py", region)


def test_source_changes_names_the_region_and_its_dependencies() -> None:
    from regionx.analysis import region_sha256
    from regionx.extract import region_closure, source_changes

    region = _closure_region(CLOSURE_BASE)
    closure = region_closure(CLOSURE_BASE, "case.py", region)
    sha = region_sha256(CLOSURE_BASE, region)
    assert source_changes(CLOSURE_BASE, "case.py", region, sha, closure.sha256, closure.dependencies) == []
    text = CLOSURE_BASE.replace("SCALE = 2.0", "SCALE = 3.0").replace("+ Box.K\n", "+ Box.K + 1.0\n")
    assert source_changes(text, "case.py", _closure_region(text), sha, closure.sha256, closure.dependencies) == [
        "its code changed", "module constant SCALE changed"]
    # artifacts written before the closure was recorded are judged by their own lines only
    assert source_changes(text, "case.py", _closure_region(text), sha) == ["its code changed"]
    assert source_changes(text, "case.py", _closure_region(text), "", "", ()) == []
