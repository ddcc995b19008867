"""Smoke tests of the search's benchmark scripts (issue 12): they run in a tiny configuration and
write their tables with the machine they ran on. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


def test_machine_record_names_cpu_blas_and_threads() -> None:
    from benchmarks._common import machine, machine_line

    info = machine()
    assert info["cpus"] >= 1 and "numpy" in info and "thread_env" in info
    assert isinstance(info["cpu"], dict) and isinstance(info["blas"], list)
    line = machine_line(info)
    assert line.startswith("Machine: ") and f"numpy {info['numpy']}" in line and "BLAS" in line
    assert machine_line({**info, "cpu": "Some CPU"}).startswith("Machine: Some CPU")  # older records


def test_criterion_floor_quick(tmp_path: Path) -> None:
    proc = _run("criterion_floor.py", "--quick", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "criterion_floor.md").read_text()
    assert "| newton | 0.05 x median abs(y) |" in md and "fixed 1e-3 (old)" in md and "Machine: " in md
    rows = json.loads((tmp_path / "criterion_floor.json").read_text())["rows"]
    synthetic = [r for r in rows if r["region"].startswith("1e-7..1e-4")]
    old = next(r for r in synthetic if r["floor"].startswith("fixed"))
    new = next(r for r in synthetic if r["floor"].startswith("0.05 "))
    assert old["accuracy"] == 1.0 and new["accuracy"] < 0.05  # 2% off everywhere: only the new floor says so


def test_compile_defaults_quick_on_a_refused_region(tmp_path: Path) -> None:
    proc = _run("compile_defaults.py", "--quick", "--only", "lj_md", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "compile_defaults.json").read_text())
    [row] = doc["rows"]
    assert row["region"] == "lj_pair" and row["timed"] == 5 and row["verdict"]
    assert "| lj_md | lj_pair |" in (tmp_path / "compile_defaults.md").read_text()
