"""regionx.profile: Table I-style time shares of candidate regions in a real run."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

import regionx.profile as profile_mod
from regionx.profile import default_paths, profile_command, table_rows, time_shares
from regionx.types import FileAnalysis

from ast_regions import make_region, simple_regions  # noqa: E402  (tests/ is on sys.path under pytest)

ROOT = Path(__file__).resolve().parent.parent
HOT_APP = "fixtures/hot_app.py"


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


def test_hot_function_ranks_first(hot_result) -> None:  # type: ignore[no-untyped-def]
    assert hot_result.ok, hot_result.diagnostics
    rows = hot_result.data["rows"]
    assert rows[0]["region"] == "hot_kernel"
    assert rows[0]["calls"] == 3000
    assert rows[0]["share"] > 0.5
    assert rows[0]["time_per_call"] == pytest.approx(rows[0]["inclusive_time"] / 3000)
    # pipeline holds hot_kernel and smooth: its inclusive time covers them, its exclusive does not
    by_id = {r["region"]: r for r in rows}
    pipeline = by_id["pipeline"]
    assert pipeline["inclusive_time"] >= by_id["hot_kernel"]["inclusive_time"] + by_id["smooth"]["inclusive_time"]
    assert pipeline["share"] < 0.2
    assert by_id["main"]["inclusive_share"] <= 1.0 + 1e-9


def test_shares_sum_to_at_most_one_and_overhead_is_reported(hot_result) -> None:  # type: ignore[no-untyped-def]
    data = hot_result.data
    shares = [r["share"] for r in data["rows"]]
    assert all(0.0 <= s <= 1.0 for s in shares)
    assert sum(shares) <= 1.0 + 1e-9
    assert data["unattributed"] == pytest.approx(max(0.0, 1.0 - sum(shares)))
    assert data["total_time"] > 0 and data["plain_time"] > 0
    assert isinstance(data["overhead"], float)
    assert data["overhead"] == pytest.approx(data["total_time"] / data["plain_time"] - 1.0)
    assert 0 < data["estimated_time"] <= data["total_time"]
    assert data["shares"]["hot_kernel"] == data["rows"][0]["share"]
    assert "checksum" in data["stdout"]
    # rows are sorted by exclusive time, descending; every candidate region is listed
    times = [r["total_time"] for r in data["rows"]]
    assert times == sorted(times, reverse=True)
    assert {r["region"] for r in data["rows"]} == {r.id for r in ast_analyzer(str(ROOT / HOT_APP)).regions}


def test_top_limits_rows() -> None:
    result = profile_command(["python", HOT_APP, "200"], cwd=str(ROOT), analyzer=ast_analyzer, top=2, baseline=False)
    assert result.ok
    assert len(result.data["rows"]) == 2
    assert result.data["overhead"] is None and result.data["plain_time"] is None
    assert len(result.data["shares"]) > 2  # shares cover every region regardless of top


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
    src = textwrap.dedent('''\
        def work(n):
            s = 0
            for i in range(n):
                s += i * i
            return s

        def tiny():
            return 1

        print(work(200000), tiny())
    ''')
    (tmp_path / "prog.py").write_text(src)
    monkeypatch.setattr(profile_mod, "_default_analyzer", ast_analyzer)
    monkeypatch.chdir(tmp_path)
    shares = time_shares("prog.py", "python prog.py")
    assert set(shares) == {"work", "work:for@3", "tiny"}
    assert shares["work:for@3"] == max(shares.values())
    assert sum(shares.values()) <= 1.0 + 1e-9
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


def test_with_the_real_analysis() -> None:
    """Default analyzer (regionx.analysis): the hot function of hot_app ranks first."""
    result = profile_command(["python", HOT_APP, "1500"], cwd=str(ROOT))
    assert result.ok, result.diagnostics
    rows = result.data["rows"]
    assert rows[0]["region"] == "hot_kernel" and rows[0]["calls"] == 1500
    assert sum(r["share"] for r in rows) <= 1.0 + 1e-9
    shares = time_shares(str(ROOT / HOT_APP), f"python {ROOT / HOT_APP} 500")
    assert max(shares, key=shares.__getitem__) == "hot_kernel"


def test_lj_md_pair_loop_dominates() -> None:
    """The LJ fixture profiles like the paper's Table I: the pair-force loop holds most of the time."""
    result = profile_command(["python", "fixtures/lj_md.py", "--steps", "5", "--cells", "4"], cwd=str(ROOT), baseline=False)
    assert result.ok, result.diagnostics
    by_id = {r["region"]: r for r in result.data["rows"]}
    force_loop = by_id["compute_forces"]
    # ranks, not a fixed share: on a loaded machine every share moves, the order does not
    top = max(result.data["rows"], key=lambda r: r["share"])
    assert top["region"].startswith("compute_forces"), top
    others = [r for r in result.data["rows"] if not r["region"].startswith(("compute_forces", "main", "run"))]
    assert all(force_loop["inclusive_share"] > 2 * r["inclusive_share"] for r in others), others
    assert by_id["lj_pair"]["calls"] > 10000
