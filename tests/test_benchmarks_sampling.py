"""Smoke tests of issue 14's benchmark scripts (benchmarks/sampling.py, benchmarks/showcase.py) in
their --quick configurations: they run end to end and write what their reports promise."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

pytest.importorskip("scipy")

from benchmarks import sampling, showcase  # noqa: E402


def test_sampling_benchmark_quick(tmp_path: Path) -> None:
    assert sampling.main(["--quick", "--out", str(tmp_path)]) == 0
    table = json.loads((tmp_path / "sampling_throughput.json").read_text())["throughput"]["table"]
    assert {"local:1", "local:2", "bare region, 1 process (ceiling)", "bare region, 2 processes (ceiling)"} <= set(table)
    assert all(row["samples_per_s"] > 0 and row["worker_cpu_s"] >= 0 for row in table.values())
    designs = json.loads((tmp_path / "sampling_designs.json").read_text())["designs"]
    assert set(designs["accuracy"]) == {"uniform", "sobol", "sobol+active"}
    for design, by_n in designs["accuracy"].items():
        assert sorted(int(n) for n in by_n) == sampling.QUICK["ladder"], design
        assert all(0.0 <= a <= 1.0 for scores in by_n.values() for a in scores)
        assert len(designs["samples_to_target"][design]) == len(sampling.QUICK["seeds"])
    assert "## Throughput" in (tmp_path / "sampling_throughput.md").read_text()
    text = (tmp_path / "sampling_designs.md").read_text()
    assert "## Samples to target" in text and "| sobol+active |" in text


def test_showcase_benchmark_quick(tmp_path: Path) -> None:
    assert showcase.main(["--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "showcase.json").read_text())
    first, second = report["compile"]["runs"]
    assert first["samples_reused"] is False and second["samples_reused"] is True
    assert first["verdict"] == "rewritten" and os.path.isfile(report["compile"]["patched"])
    [table] = report["programs"]["sizes"].values()
    original = table["original (solve_ivp per launch)"]
    assert original["within_tolerance"] == 1.0 and original["speedup"] == 1.0
    rk4 = next(row for name, row in table.items() if name.startswith("numpy RK4 rewrite"))
    assert rk4["within_tolerance"] >= 0.9  # calibrated to the target on other launches
    assert any(name.startswith("patched by regionx") for name in table)
    assert "## Programs" in (tmp_path / "showcase.md").read_text()
