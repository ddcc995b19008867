"""regionx.instrument: the source rewrite, the line map, and runs of instrumented programs."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from regionx.instrument import CommandError, instrument_source, line_map, parse_command, run_instrumented
from regionx.types import Region

from ast_regions import make_region, simple_regions  # noqa: E402  (tests/ is on sys.path under pytest)

ROOT = Path(__file__).resolve().parent.parent




class FakeHook:
    """Records enter/exit calls when the instrumented code runs in-process."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def enter(self, rid: str) -> str:
        self.events.append(("enter", rid))
        return rid

    def exit(self, rid: str, token: str) -> None:
        assert token == rid
        self.events.append(("exit", rid))


def run_in_process(text: str) -> tuple[dict, FakeHook]:
    hook = FakeHook()
    module = types.ModuleType("_regionx_hook")
    module.enter = hook.enter  # type: ignore[attr-defined]
    module.exit = hook.exit  # type: ignore[attr-defined]
    saved = sys.modules.get("_regionx_hook")
    sys.modules["_regionx_hook"] = module
    try:
        namespace: dict = {"__name__": "prog"}
        exec(compile(text, "prog.py", "exec"), namespace)
    finally:
        if saved is None:
            del sys.modules["_regionx_hook"]
        else:
            sys.modules["_regionx_hook"] = saved
    return namespace, hook


PROGRAM = textwrap.dedent('''\
    """Module docstring."""
    from __future__ import annotations

    import math


    def deco(f):
        return f


    @deco
    def square(x):
        """Square it."""
        return x * x


    def short(x): return x + 1


    class Solver:
        def step(self, v):
            total = 0.0
            for k in range(3):
                total += square(v + k)
            return total


    def countdown(n):
        while n > 0:
            n -= 1
        return n


    acc = []
    for i in range(4):
        acc.append(Solver().step(i) + short(i))
    # regionx: begin
    first = acc[0]
    last = acc[-1]
    # regionx: end
    spread = last - first
''')


def test_instrumented_program_computes_the_same_and_reports_every_region() -> None:
    regions = simple_regions(PROGRAM)
    block = make_region("block", "block", "<module>", 38, 39)
    text = instrument_source(PROGRAM, (*regions, block))
    assert text != PROGRAM
    ast.parse(text)
    plain: dict = {"__name__": "prog"}
    exec(compile(PROGRAM, "prog.py", "exec"), plain)
    namespace, hook = run_in_process(text)
    for name in ("acc", "first", "last", "spread"):
        assert namespace[name] == plain[name]
    assert namespace["square"].__doc__ == "Square it."  # docstring stays first
    assert namespace["countdown"](5) == 0
    entered = [rid for kind, rid in hook.events if kind == "enter"]
    assert entered.count("<module>:for@35") == 1
    assert entered.count("Solver.step") == 4
    assert entered.count("Solver.step:for@23") == 4
    assert entered.count("square") == 12
    assert entered.count("short") == 4
    assert entered.count("block") == 1
    assert entered.count("countdown") == 1 and entered.count("countdown:while@29") == 1
    # properly nested: every exit closes the most recent open enter
    stack: list[str] = []
    for kind, rid in hook.events:
        if kind == "enter":
            stack.append(rid)
        else:
            assert stack.pop() == rid
    assert stack == []


def test_hook_import_goes_after_docstring_and_future_imports() -> None:
    text = instrument_source(PROGRAM, simple_regions(PROGRAM))
    body = ast.parse(text).body
    assert isinstance(body[0], ast.Expr)  # docstring
    assert isinstance(body[1], ast.ImportFrom) and body[1].module == "__future__"
    assert isinstance(body[2], ast.Import) and body[2].names[0].name == "_regionx_hook"


@pytest.mark.parametrize(
    "regions",
    [
        (),
        (make_region("nothing", "function", "nowhere", 900, 910),),
    ],
)
def test_no_matching_region_leaves_text_unchanged(regions: tuple[Region, ...]) -> None:
    assert instrument_source(PROGRAM, regions) == PROGRAM


def test_custom_hook_module_name() -> None:
    text = instrument_source(PROGRAM, simple_regions(PROGRAM)[:1], hook_module="myhook")
    assert "import myhook" in text and "myhook.enter('deco')" in text
    with pytest.raises(ValueError):
        instrument_source(PROGRAM, (), hook_module="not valid")


def test_while_loop_and_pragma_comments_stay_above() -> None:
    src = textwrap.dedent('''\
        def f(n):
            # regionx: name=spin
            while n > 0:
                n -= 1
            return n
    ''')
    text = instrument_source(src, (make_region("spin", "loop", "f", 3, 4),))
    lines = [line.strip() for line in text.splitlines()]
    # the pragma comment is still directly above the region's (wrapped) code
    k = lines.index("# regionx: name=spin")
    assert lines[k + 1] == "try:"
    namespace, hook = run_in_process(text)
    assert namespace["f"](3) == 0
    assert hook.events == [("enter", "spin"), ("exit", "spin")]


def test_block_region_inside_function_chooses_the_outer_body() -> None:
    src = textwrap.dedent('''\
        def f(xs):
            total = 0
            for x in xs:
                total += x
                total *= 2
            return total
    ''')
    # lines 3-5: the loop statement itself (not its body at lines 4-5)
    text = instrument_source(src, (make_region("blk", "block", "f", 3, 5),))
    namespace, hook = run_in_process(text)
    assert namespace["f"]([1, 2, 3]) == 22
    assert hook.events == [("enter", "blk"), ("exit", "blk")]


def test_exception_inside_region_still_exits() -> None:
    src = "def boom(x):\n    raise ValueError(x)\n"
    text = instrument_source(src, (make_region("boom", "function", "boom", 1, 2, ("x",)),))
    namespace, hook = run_in_process(text)
    with pytest.raises(ValueError):
        namespace["boom"](1)
    assert hook.events == [("enter", "boom"), ("exit", "boom")]


def test_line_map_points_back_to_original_lines() -> None:
    regions = simple_regions(PROGRAM)
    text = instrument_source(PROGRAM, regions)
    mapping = line_map(PROGRAM, text)
    original = PROGRAM.splitlines()
    new = text.splitlines()
    assert len(mapping) == len(new)
    for j, (line, shift) in enumerate(mapping):
        if "_regionx" in new[j] or new[j].strip() in ("try:", "finally:"):
            continue
        if new[j].strip() == "def short(x):" or new[j].strip() == "return x + 1":
            # the one-line def became two lines: both map to it
            assert original[line - 1].strip() == "def short(x): return x + 1"
            continue
        assert new[j].strip() == original[line - 1].strip()
        assert shift in (0, 4, 8)


@pytest.mark.parametrize(
    "command, expected",
    [
        (["python", "app.py", "1", "-v"], ("app.py", None, ["1", "-v"])),
        ("python -u -X dev app.py --n 3", ("app.py", None, ["--n", "3"])),
        (["python3", "-m", "pkg.mod", "x"], (None, "pkg.mod", ["x"])),
        (["app.py", "x"], ("app.py", None, ["x"])),
        ([sys.executable, "-O", "app.py"], ("app.py", None, [])),
    ],
)
def test_parse_command(command: list[str] | str, expected: tuple) -> None:
    interp, script, module, args = parse_command(command)
    assert (script, module, args) == expected
    assert interp and os.path.basename(interp[0]).startswith("python")


@pytest.mark.parametrize("command", [[], ["ls", "-l"], ["python", "-c", "print(1)"], ["python"], ["python", "-m"]])
def test_parse_command_rejects(command: list[str]) -> None:
    with pytest.raises(CommandError):
        parse_command(command)


APP = textwrap.dedent('''\
    import os
    import sys

    import helper


    def leaf(x):
        return x * 2.0


    def inner(x):
        s = 0.0
        for k in range(50):
            s += leaf(x + k)
        return s


    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)


    def main():
        out = [inner(i) for i in range(200)]
        print("argv", sys.argv)
        print("file", __file__)
        print("path0", sys.path[0])
        print("name", __name__)
        print("sum", sum(out), fact(6), helper.twice(21))
        if len(sys.argv) > 1 and sys.argv[1] == "fail":
            raise RuntimeError("asked to fail")


    main()
''')

HELPER = textwrap.dedent('''\
    def twice(v):
        """Doubles."""
        return 2 * v
''')


@pytest.fixture()
def app(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "helper.py").write_text(HELPER)
    return tmp_path


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_profile_run_records_calls_and_nested_times(app: Path) -> None:
    before = _digest(app)
    files = {"app.py": simple_regions(APP), "helper.py": simple_regions(HELPER)}
    run = run_instrumented(["python", "app.py"], files, mode="profile", cwd=str(app), timeout=120)
    assert run.ok, run.stderr
    assert _digest(app) == before  # user's files untouched, no __pycache__ written next to them
    recs = run.regions
    assert recs["leaf"]["calls"] == 200 * 50
    assert recs["inner"]["calls"] == 200
    assert recs["inner:for@13"]["calls"] == 200
    assert recs["fact"]["calls"] == 6
    assert recs["twice"]["calls"] == 1  # the imported module was instrumented too
    assert recs["main"]["calls"] == 1
    for rec in recs.values():
        assert 0.0 <= rec["exclusive"] <= rec["inclusive"] + 1e-9
        assert rec["raw_exclusive"] <= rec["raw_inclusive"] + 1e-9
    # recursion: inclusive counts the outermost activation only
    assert recs["fact"]["raw_inclusive"] <= recs["main"]["raw_inclusive"]
    # nested regions are not double counted: exclusive times add up to at most the run time
    assert sum(r["raw_exclusive"] for r in recs.values()) <= run.total_time  # type: ignore[operator]
    assert run.corrected_total_time is not None and 0 < run.corrected_total_time <= run.total_time  # type: ignore[operator]
    assert recs["main"]["raw_inclusive"] >= recs["inner"]["raw_inclusive"]


def test_program_sees_the_same_file_argv_and_path_as_a_plain_run(app: Path) -> None:
    plain = subprocess.run([sys.executable, "app.py", "a", "b"], cwd=app, capture_output=True, text=True, timeout=60)
    files = {"app.py": simple_regions(APP)}
    for mode in ("profile", "observe", "plain"):
        run = run_instrumented(["python", "app.py", "a", "b"], files, mode=mode, cwd=str(app), timeout=120)
        assert run.ok, run.stderr
        assert run.stdout == plain.stdout
        assert run.total_time is not None and run.total_time > 0
        assert run.wall_time >= run.total_time


def test_failing_program_has_the_users_traceback(app: Path) -> None:
    plain = subprocess.run([sys.executable, "app.py", "fail"], cwd=app, capture_output=True, text=True, timeout=60)
    run = run_instrumented(["python", "app.py", "fail"], {"app.py": simple_regions(APP)}, mode="profile", cwd=str(app), timeout=120)
    assert plain.returncode == 1 and run.returncode == 1
    assert not run.ok
    assert run.error == "RuntimeError: asked to fail"
    assert run.stderr == plain.stderr  # same file names and line numbers as the plain run
    assert run.regions["main"]["calls"] == 1  # records are still written


def test_sys_exit_status_is_kept(tmp_path: Path) -> None:
    (tmp_path / "quit.py").write_text("import sys\n\ndef f():\n    sys.exit(3)\n\nf()\n")
    run = run_instrumented(["python", "quit.py"], {"quit.py": (make_region("f", "function", "f", 3, 4),)}, mode="profile", cwd=str(tmp_path))
    assert run.returncode == 3
    assert run.regions["f"]["calls"] == 1


def test_observe_mode_records_inputs_with_a_cap(tmp_path: Path) -> None:
    src = textwrap.dedent('''\
        import numpy as np

        def kernel(a, b, v):
            return a * b + float(v.sum())

        def walk(n):
            total = 0.0
            for i in range(n):
                total += kernel(float(i), 2, np.arange(3.0) + i)
            return total

        print(walk(500))
    ''')
    (tmp_path / "obs.py").write_text(src)
    regions = (
        make_region("kernel", "function", "kernel", 3, 4, ("a", "b", "v")),
        make_region("walk:for@8", "loop", "walk", 8, 9, ("n", "total", "missing")),
    )
    run = run_instrumented(["python", "obs.py"], {"obs.py": regions}, mode="observe", cwd=str(tmp_path), extra={"cap": 40, "seed": 1})
    assert run.ok, run.stderr
    rec = run.regions["kernel"]
    assert rec["calls"] == 500 and rec["recorded"] == 40
    samples = rec["samples"]
    json.dumps(samples)
    for s in samples:
        assert set(s) == {"a", "b", "v"}
        assert s["b"] == 2.0 and s["v"] == [s["a"], s["a"] + 1, s["a"] + 2]
    # a reservoir over all 500 calls, not just the first 40
    assert max(s["a"] for s in samples) > 100
    # an input that is unbound at entry makes the record unconvertible, not a crash
    assert run.regions["walk:for@8"]["unconvertible"] == 1


def test_module_command_runs_instrumented(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "work.py").write_text("import sys\n\ndef f(x):\n    return x + 1\n\nprint(sum(f(i) for i in range(10)), sys.argv[1:])\n")
    run = run_instrumented(["python", "-m", "pkg.work", "z"], {"pkg/work.py": (make_region("f", "function", "f", 3, 4, ("x",)),)},
                           mode="profile", cwd=str(tmp_path))
    assert run.ok, run.stderr
    assert run.stdout.strip() == "55 ['z']"
    assert run.regions["f"]["calls"] == 10


@pytest.mark.parametrize(
    "command, code",
    [
        (["ls"], "RX006"),
        (["python", "-c", "pass"], "RX006"),
        (["python", "missing.py"], "RX001"),
    ],
)
def test_bad_commands_are_diagnostics(tmp_path: Path, command: list[str], code: str) -> None:
    run = run_instrumented(command, {}, mode="plain", cwd=str(tmp_path))
    assert not run.ok and [d.code for d in run.diagnostics] == [code]


def test_syntax_error_in_target_is_rx004(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("print(1)\n")
    (tmp_path / "bad.py").write_text("def f(:\n")
    run = run_instrumented(["python", "ok.py"], {"bad.py": (make_region("f", "function", "f", 1, 1),)}, mode="profile", cwd=str(tmp_path))
    assert [d.code for d in run.diagnostics] == ["RX004"]


def test_timeout(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(30)\n")
    run = run_instrumented(["python", "slow.py"], {}, mode="plain", cwd=str(tmp_path), timeout=1.0)
    assert run.timed_out and not run.ok


def test_invalid_mode() -> None:
    with pytest.raises(ValueError):
        run_instrumented(["python", "x.py"], {}, mode="trace")


def test_newton_fixture_under_profile() -> None:
    text = (ROOT / "fixtures" / "newton.py").read_text()
    regions = simple_regions(text)
    run = run_instrumented(["python", "fixtures/newton.py", "300"], {"fixtures/newton.py": regions}, mode="profile", cwd=str(ROOT))
    assert run.ok, run.stderr
    assert run.regions["newton"]["calls"] == 300
    assert "equations: 300" in run.stdout
