"""The command line's contracts: JSON schema, exit codes, one-line errors, no TensorFlow on fast paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from regionx.cli import cli

ROOT = Path(__file__).resolve().parents[1]
NEWTON = str(ROOT / "fixtures" / "newton.py")


def run(*args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_analyze_json_document_schema() -> None:
    code, stdout, _ = run("analyze", "--json", NEWTON)
    assert code == 0
    doc = json.loads(stdout)
    assert doc["version"] == 1
    [entry] = doc["files"]
    assert entry["path"] == NEWTON
    regions = {r["id"]: r for r in entry["regions"]}
    newton = regions["newton"]
    keys = {"id", "name", "kind", "qualname", "start_line", "end_line", "annotated", "inputs", "outputs",
            "internals", "globals", "calls", "replaceable", "reasons", "domain", "time_share"}
    assert keys <= set(newton)
    assert newton["kind"] == "function" and newton["annotated"] is True
    assert newton["inputs"] == ["a", "b", "c"]
    assert newton["outputs"] == ["return"]
    assert newton["replaceable"] is True
    assert set(newton["domain"]) == {"a", "b", "c"}
    assert entry["diagnostics"] == []


def test_analyze_table_lists_regions() -> None:
    """One table row per region (id, kind, lines, verdict), as the JSON document has them; the file
    name alone ("newton.py") does not pass this."""
    code, stdout, _ = run("analyze", NEWTON)
    assert code == 0
    regions = json.loads(run("analyze", "--json", NEWTON)[1])["files"][0]["regions"]
    cells = [[c.strip() for c in line.split("\u2502")[1:-1]] for line in stdout.splitlines() if line.startswith("\u2502")]
    rows = [r for r in cells if r[0]]  # a row's first line (a folded cell continues on lines with an empty id)
    assert [r[0] for r in rows] == [r["id"] + (" *" if r["annotated"] else "") for r in regions]
    assert {"newton *", "newton:for@37", "main", "main:for@71"} <= {r[0] for r in rows}
    assert [r[1] for r in rows] == [r["kind"] for r in regions]
    assert [r[3] for r in rows] == [f"{r['start_line']}-{r['end_line']}" for r in regions]
    assert [r[-1] == "yes" for r in rows] == [r["replaceable"] for r in regions]
    # each refusal is listed under the table with its place, code and region
    assert f"{NEWTON}:46:13: RX205 newton:for@37 control flow leaves the region" in stdout.replace("\n", " ")


@pytest.mark.parametrize(
    "make_input, code",
    [
        (lambda d: str(d / "missing.py"), "RX001"),
        (lambda d: str(d), "RX002"),
        (lambda d: (d / "bin.py").write_bytes(b"\x00\xff\xfe") and str(d / "bin.py"), "RX003"),
        (lambda d: (d / "bad.py").write_text("def f(:\n") and str(d / "bad.py"), "RX004"),
        (lambda d: (d / "prag.py").write_text("# regionx: a=gauss(0, 1)\ndef f(a):\n    return a\n") and str(d / "prag.py"), "RX102"),
    ],
    ids=["missing", "directory", "binary", "syntax", "bad-pragma"],
)
def test_input_errors_are_one_line_with_exit_2(tmp_path: Path, make_input, code: str) -> None:
    target = make_input(tmp_path)
    status, stdout, stderr = run("analyze", target, NEWTON)
    assert status == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f": {code} " in lines[0]
    assert lines[0].startswith(target + ":")
    assert "Traceback" not in stderr
    # the other file on the command line is still analyzed
    assert "newton" in stdout


def test_unknown_region_is_exit_2(tmp_path: Path) -> None:
    status, _, stderr = run("extract", NEWTON, "--region", "no_such_region", "-o", str(tmp_path / "h.py"))
    assert status == 2
    assert "RX005" in stderr


def test_python_dash_m_and_no_tensorflow_on_fast_paths() -> None:
    probe = textwrap.dedent(
        f"""
        import sys, runpy
        sys.argv = ["regionx", "analyze", "--json", {NEWTON!r}]
        import regionx, regionx.cli, regionx.api
        try:
            runpy.run_module("regionx", run_name="__main__")
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        assert not heavy, heavy
        """
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["version"] == 1


def test_compile_says_what_a_batched_loop_gains_at_its_length() -> None:
    """Each batched loop: the long-loop figure and loops of 1,000 / 10,000 rows, whose batch also
    pays the call and the exact code's row 0 (an expensive region: 1 ms a call)."""
    from regionx.cli import _batch_lines

    site = {"line": 7, "form": "index", "predicted_speedup": 10000.0, "original_per_row_seconds": 1e-3,
            "per_row_seconds": 1e-7, "per_batch_seconds": 1.03e-3}
    (line,) = _batch_lines("flight", [site])
    assert line == ("flight: loop at line 7 batched (index): predicted 10000.0x for a long loop; each batch also costs "
                    "1.03 ms (the call, and row 0 by the exact code): 885.0x at 1,000 rows, 4926.1x at 10,000 rows")
    assert _batch_lines("flight", [{**site, "per_batch_seconds": None}]) == []  # an older rewrite's report
    # a loop too short to pay for its batch runs as written: no figure for a length below that
    (line,) = _batch_lines("lj", [{**site, "min_rows": 1409}])
    assert line.endswith("exact code): 4926.1x at 10,000 rows; a loop of fewer than 1,409 rows runs as written, "
                         "one call at a time")
