"""regionx.profile: Table I-style time shares of candidate regions in a real run."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import pytest

import regionx.profile as profile_mod
from regionx.profile import default_paths, profile_command, table_rows, time_shares
from regionx.types import FileAnalysis

from ast_regions import make_region, simple_regions  # noqa: E402  (tests/ is on sys.path under pytest)

ROOT = Path(__file__).resolve().parent.parent
HOT_APP = "fixtures/hot_app.py"  # relative to cwd=ROOT, which every run below passes

# Programs on a virtual clock: the profiler's hook (regionx/_regionx_hook.py, loaded by the bootstrap
# before the program runs) reads time through its module-level `_clock`; these programs replace it
# with a clock that only moves when the program says so (`NOW[0] += seconds`), and zero the hook's
# calibration (the virtual clock does not see the hook's own cost). Every share is then exact,
# whatever the machine's load; only the hook's start reading, taken just before the program began,
# is real (milliseconds against tens of virtual seconds).
VIRTUAL_CLOCK = """\
import sys
import time

try:
    import _regionx_hook as _hook  # present when the program runs under regionx
except ImportError:
    _hook = None
NOW = [time.perf_counter()]  # continues the real clock the hook's start reading came from
if _hook is not None:
    _hook._clock = lambda: NOW[0]
    _hook._CALIBRATION = (0.0, 0.0)
"""

# hot_app's shape (a hot kernel called from a loop of `pipeline`, a cheap `smooth` with a loop of
# its own, `main` around them) with set costs: with N = 20 calls, hot_kernel 20 s, smooth 10 s +
# 2 s in its loop, pipeline 5 s, main 1 s; 38 s in all.
VIRTUAL_APP = VIRTUAL_CLOCK + """\


def hot_kernel(x):
    NOW[0] += 1.0
    return 2.0 * x


def smooth(values):
    NOW[0] += 10.0
    out = []
    for v in values:
        NOW[0] += 0.1
        out.append(v + 1.0)
    return out


def pipeline(n):
    NOW[0] += 5.0
    values = []
    for i in range(n):
        values.append(hot_kernel(i))
    return smooth(values)


def main(n):
    NOW[0] += 1.0
    print("checksum:", sum(pipeline(n)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
"""
VIRTUAL_TOTAL = 38.0


def loop_id(text: str, qualname: str, header: str) -> str:
    """The id of the loop region whose header line is `header` (ids carry their line)."""
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip() == header)
    return f"{qualname}:for@{line}"


def ast_analyzer(path: str) -> FileAnalysis:
    """Function and loop regions found with ast: a stand-in for regionx.analysis.analyze_file."""
    return FileAnalysis(path=path, regions=simple_regions(Path(path).read_text()))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def hot_result():  # type: ignore[no-untyped-def]
    before = _sha(ROOT / HOT_APP)
    result = profile_command(["python", HOT_APP, "3000"], cwd=str(ROOT), analyzer=ast_analyzer, timeout=300)
    assert _sha(ROOT / HOT_APP) == before  # the user's file is byte-identical after the run
    return result


def test_real_run_counts_calls_and_nests_times(hot_result) -> None:  # type: ignore[no-untyped-def]
    """A real run on the real clock: what does not depend on the machine's speed or load."""
    assert hot_result.ok, hot_result.diagnostics
    rows = hot_result.payload.rows
    by_id = {r["region"]: r for r in rows}
    assert by_id["hot_kernel"]["calls"] == 3000
    assert by_id["pipeline"]["calls"] == by_id["smooth"]["calls"] == by_id["main"]["calls"] == 1
    assert by_id["hot_kernel"]["time_per_call"] == pytest.approx(by_id["hot_kernel"]["inclusive_time"] / 3000)
    for r in rows:
        assert 0.0 <= r["total_time"] <= r["inclusive_time"], r  # exclusive never exceeds inclusive
        assert r["inclusive_share"] <= 1.0 + 1e-9
        assert r["share"] == pytest.approx(r["total_time"] / hot_result.payload.estimated_time)
    # every loop region of hot_app ran
    loops = [r for r in rows if r["kind"] == "loop"]
    assert loops and all(r["calls"] >= 1 for r in loops)


def test_shares_sum_to_at_most_one_and_overhead_is_reported(hot_result) -> None:  # type: ignore[no-untyped-def]
    data = hot_result.payload.to_json()
    shares = [r["share"] for r in data["rows"]]
    assert all(0.0 <= s <= 1.0 for s in shares)
    assert sum(shares) <= 1.0 + 1e-9
    assert data["unattributed"] == pytest.approx(max(0.0, 1.0 - sum(shares)))
    assert data["total_time"] > 0 and data["plain_time"] > 0
    assert isinstance(data["overhead"], float)
    assert data["overhead"] == pytest.approx(data["total_time"] / data["plain_time"] - 1.0)
    assert 0 < data["estimated_time"] <= data["total_time"]
    assert data["shares"] == {r["region"]: r["share"] for r in data["rows"]}
    assert "checksum" in data["stdout"]
    # rows are sorted by exclusive time, descending; every candidate region is listed
    times = [r["total_time"] for r in data["rows"]]
    assert times == sorted(times, reverse=True)
    assert {r["region"] for r in data["rows"]} == {r.id for r in ast_analyzer(str(ROOT / HOT_APP)).regions}


@pytest.fixture(scope="module")
def virtual_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("virtual")
    (work / "app.py").write_text(VIRTUAL_APP)
    result = profile_command([sys.executable, "app.py", "20"], cwd=str(work), analyzer=ast_analyzer, timeout=300)
    assert result.ok, result.diagnostics
    return result


def test_hot_function_ranks_first_with_its_exact_share(virtual_run) -> None:  # type: ignore[no-untyped-def]
    """Shares on the virtual clock: exact, so a loaded machine cannot move them."""
    data = virtual_run.payload.to_json()
    # the only real part: the hook's start reading, taken before the program set its clock going
    assert VIRTUAL_TOTAL - 1e-6 <= data["total_time"] < VIRTUAL_TOTAL + 30.0
    total = data["estimated_time"]
    assert total == data["total_time"]  # calibration zeroed: nothing subtracted
    smooth_loop = loop_id(VIRTUAL_APP, "smooth", "for v in values:")
    pipeline_loop = loop_id(VIRTUAL_APP, "pipeline", "for i in range(n):")
    rows = data["rows"]
    by_id = {r["region"]: r for r in rows}
    assert [r["region"] for r in rows] == ["hot_kernel", "smooth", "pipeline", smooth_loop, "main", pipeline_loop]
    expected = {  # region: (calls, exclusive, inclusive) in virtual seconds
        "hot_kernel": (20, 20.0, 20.0), "smooth": (1, 10.0, 12.0), smooth_loop: (1, 2.0, 2.0),
        "pipeline": (1, 5.0, 37.0), pipeline_loop: (1, 0.0, 20.0), "main": (1, 1.0, 38.0),
    }
    for region, (calls, exclusive, inclusive) in expected.items():
        row = by_id[region]
        assert row["calls"] == calls, region
        assert row["total_time"] == pytest.approx(exclusive, abs=1e-6), region
        assert row["inclusive_time"] == pytest.approx(inclusive, abs=1e-6), region
        assert row["share"] == pytest.approx(exclusive / total, rel=1e-9, abs=1e-12), region
        assert row["inclusive_share"] == pytest.approx(inclusive / total, rel=1e-9), region
    assert by_id["hot_kernel"]["time_per_call"] == pytest.approx(1.0, abs=1e-6)
    # pipeline holds hot_kernel and smooth: its inclusive time covers them, its exclusive does not
    assert by_id["pipeline"]["inclusive_time"] == pytest.approx(
        by_id["pipeline"]["total_time"] + by_id[pipeline_loop]["inclusive_time"] + by_id["smooth"]["inclusive_time"], abs=1e-6)
    assert data["unattributed"] == pytest.approx(1.0 - 38.0 / total, abs=1e-9)
    assert "checksum: 400.0" in data["stdout"]  # sum(2 i + 1 for i < 20): the program ran as written


def test_top_limits_rows() -> None:
    result = profile_command(["python", HOT_APP, "200"], cwd=str(ROOT), analyzer=ast_analyzer, top=2, baseline=False)
    assert result.ok
    assert len(result.payload.rows) == 2
    assert result.payload.overhead is None and result.payload.plain_time is None
    assert len(result.payload.shares) > 2  # shares cover every region regardless of top


def test_failing_program_is_rx605(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def f(x):\n    return 1 / x\n\nf(0)\n")
    before = _sha(tmp_path / "bad.py")
    result = profile_command(["python", "bad.py"], cwd=str(tmp_path), analyzer=ast_analyzer)
    assert not result.ok
    assert [d.code for d in result.diagnostics] == ["RX605"]
    assert "ZeroDivisionError" in result.diagnostics[0].message
    assert _sha(tmp_path / "bad.py") == before


def test_program_failing_only_when_instrumented_is_still_rx605(tmp_path: Path) -> None:
    # exits non-zero without a Python exception: the status is the detail
    (tmp_path / "quit.py").write_text("import sys\nsys.stderr.write('bye\\n')\nsys.exit(4)\n")
    result = profile_command(["python", "quit.py"], cwd=str(tmp_path), analyzer=ast_analyzer)
    assert [d.code for d in result.diagnostics] == ["RX605"]
    assert "exit status 4" in result.diagnostics[0].message and "bye" in result.diagnostics[0].message


@pytest.mark.parametrize(
    "command, code",
    [(["make", "all"], "RX006"), (["python", "-c", "1"], "RX006"), (["python", "no_such_file.py"], "RX001"), (["python", "tests"], "RX002")],
)
def test_not_a_python_program(command: list[str], code: str) -> None:
    result = profile_command(command, analyzer=ast_analyzer, cwd=str(ROOT))
    assert [d.code for d in result.diagnostics] == [code]


def test_analysis_errors_are_returned(tmp_path: Path) -> None:
    from regionx.diagnostics import make

    (tmp_path / "app.py").write_text("print(1)\n")

    def broken(path: str) -> FileAnalysis:
        return FileAnalysis(path=path, diagnostics=(make("RX004", path, 1, 1, detail="bad"),))

    result = profile_command(["python", "app.py"], cwd=str(tmp_path), analyzer=broken)
    assert [d.code for d in result.diagnostics] == ["RX004"]


def test_default_paths(tmp_path: Path) -> None:
    (tmp_path / "tool").mkdir()
    (tmp_path / "tool" / "__main__.py").write_text("")
    (tmp_path / "mod.py").write_text("")
    assert default_paths(["python", "app.py", "x"]) == ["app.py"]
    assert default_paths(["python", "-m", "mod"], str(tmp_path)) == ["mod.py"]
    assert default_paths(["python", "-m", "tool"], str(tmp_path)) == [f"tool{'/'}__main__.py"]
    assert default_paths(["python", "-m", "absent"], str(tmp_path)) == []


def test_time_shares(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    src = VIRTUAL_CLOCK + textwrap.dedent('''\
        def work(n):
            s = 0
            NOW[0] += 100.0
            for i in range(n):
                s += i * i
                NOW[0] += 1.0
            return s

        def tiny():
            return 1

        print(work(200), tiny())
    ''')
    (tmp_path / "prog.py").write_text(src)
    monkeypatch.setattr(profile_mod, "_default_analyzer", ast_analyzer)
    monkeypatch.chdir(tmp_path)
    shares = time_shares("prog.py", f"{sys.executable} prog.py")
    work_loop = loop_id(src, "work", "for i in range(n):")
    assert set(shares) == {"work", work_loop, "tiny"}
    # 100 s in work itself, 200 x 1 s in its loop, none in tiny: about all of the 300 s run (the
    # rest is the real time before the program set its clock going)
    assert shares[work_loop] / shares["work"] == pytest.approx(2.0, rel=1e-9)
    assert shares["tiny"] == 0.0
    assert 0.5 < sum(shares.values()) <= 1.0 + 1e-9
    (tmp_path / "prog.py").write_text("raise SystemExit(2)\n")
    assert time_shares("prog.py", "python prog.py") == {}


def test_table_rows_of_records() -> None:
    regions = (make_region("a", "function", "a", 1, 5), make_region("b", "loop", "a", 2, 4), make_region("never", "function", "never", 7, 8))
    records = {"a": {"calls": 2, "inclusive": 1.0, "exclusive": 0.25}, "b": {"calls": 2, "inclusive": 0.75, "exclusive": 0.75}}
    rows = table_rows({"f.py": regions}, records, total=2.0)
    assert [r["region"] for r in rows] == ["b", "a", "never"]
    assert rows[0]["share"] == pytest.approx(0.375) and rows[1]["share"] == pytest.approx(0.125)
    assert rows[1]["inclusive_share"] == pytest.approx(0.5)
    assert rows[1]["time_per_call"] == pytest.approx(0.5)
    assert rows[2]["calls"] == 0 and rows[2]["time_per_call"] is None and rows[2]["share"] == 0.0


def test_with_the_real_analysis(tmp_path: Path) -> None:
    """Default analyzer (regionx.analysis): its regions of hot_app are the ones profiled, and on the
    virtual clock the hot function ranks first."""
    from regionx.analysis import analyze_file

    result = profile_command(["python", HOT_APP, "1500"], cwd=str(ROOT))
    assert result.ok, result.diagnostics
    rows = result.payload.rows
    assert {r["region"] for r in rows} == {r.id for r in analyze_file(str(ROOT / HOT_APP)).regions}
    by_id = {r["region"]: r for r in rows}
    assert by_id["hot_kernel"]["calls"] == 1500 and by_id["pipeline"]["calls"] == 1
    assert sum(r["share"] for r in rows) <= 1.0 + 1e-9
    (tmp_path / "app.py").write_text(VIRTUAL_APP)
    shares = time_shares(str(tmp_path / "app.py"), f"{sys.executable} {tmp_path / 'app.py'} 20")
    assert max(shares, key=shares.__getitem__) == "hot_kernel"
    assert shares["hot_kernel"] / shares["smooth"] == pytest.approx(20.0 / 10.0, rel=1e-9)


# Runs fixtures/lj_md.py as __main__ with the profiler's clock reading this process's CPU time
# (continuing the real clock where it takes over): time the process spends waiting for a core
# while other work runs does not count, so a loaded machine cannot change which region dominates.
CPU_CLOCK_RUNNER = """\
import runpy
import sys
import time

import _regionx_hook as hook

base = time.perf_counter() - time.process_time()
hook._clock = lambda: base + time.process_time()
hook._CALIBRATION = hook.calibrate(repeats=3, calls=5000)  # the hook's own cost, on this clock
sys.path.insert(0, {fixtures!r})
sys.argv = ["lj_md.py", *sys.argv[1:]]
runpy.run_module("lj_md", run_name="__main__", alter_sys=True)
"""


def test_lj_md_pair_loop_dominates(tmp_path: Path) -> None:
    """The LJ fixture profiles like the paper's Table I: the pair-force loop holds most of the time
    (CPU time of the program, not wall time)."""
    runner = tmp_path / "run_lj.py"
    runner.write_text(CPU_CLOCK_RUNNER.format(fixtures=str(ROOT / "fixtures")))
    result = profile_command([sys.executable, str(runner), "--steps", "5", "--cells", "4"],
                             paths=[str(ROOT / "fixtures" / "lj_md.py")], cwd=str(tmp_path), baseline=False)
    assert result.ok, result.diagnostics
    assert "Loop time" in result.payload.stdout
    by_id = {r["region"]: r for r in result.payload.rows}
    force_loop = by_id["compute_forces"]
    assert force_loop["calls"] == 6  # once before the first step, then once per step
    assert by_id["lj_pair"]["calls"] > 10000
    # ranks, not a fixed share: on a slower machine every share moves, the order does not
    top = max(result.payload.rows, key=lambda r: r["total_time"])
    assert top["region"].startswith("compute_forces"), top
    others = [r for r in result.payload.rows if not r["region"].startswith(("compute_forces", "main", "run"))]
    assert others and all(force_loop["inclusive_time"] > 2 * r["inclusive_time"] for r in others), others
