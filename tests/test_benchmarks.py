"""Smoke test of the benchmark scripts (benchmarks/paper_tables.py, speedup.py, baselines.py) in a tiny configuration."""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import baselines as B  # noqa: E402
from benchmarks import paper_tables, speedup  # noqa: E402


def test_baselines_match_the_exact_fixtures() -> None:
    lj = speedup.C.import_file(speedup.C.LJ)
    import io

    exact = lj.run(4, 4, out=io.StringIO())
    for fn in (None, B.lj_forces_numba()):
        rows = B.lj_run_vectorised(4, 4, forces_fn=fn)
        assert [r[0] for r in rows] == [r[0] for r in exact]
        np.testing.assert_allclose(np.array(rows)[:, 1:], np.array(exact)[:, 1:], rtol=1e-9)
    nw = speedup.C.import_file(speedup.C.NEWTON)
    a, b, c = nw.make_equations(300, 5)
    want = [nw.newton(*t) for t in zip(a, b, c)]
    np.testing.assert_allclose(B.newton_numpy(np.array(a), np.array(b), np.array(c)), want, rtol=1e-12)
    solve = B.newton_numba()
    assert solve is not None
    np.testing.assert_allclose(solve(np.array(a), np.array(b), np.array(c)), want, rtol=1e-12)


def test_tables_and_figures_tiny(tmp_path) -> None:
    out = str(tmp_path)
    cfg = {**paper_tables.QUICK, "newton_samples": 2000, "newton_epochs": 10, "lj_samples": 600, "lj_epochs": 4, "lj_steps": 2}
    t2 = paper_tables.newton_table(cfg, out, 0, topologies=[(5, 3)])
    t3 = paper_tables.lj_table(cfg, out, 0, topologies=[(5,)])
    assert [r["hidden"] for r in t2["rows"]] == [[5, 3]] and t2["rows"][0]["paper"] == paper_tables.PAPER_TABLE2[(5, 3)]
    assert 0.0 <= t2["rows"][0]["within_0.01"] <= t2["rows"][0]["within_0.05"] <= 1.0
    assert math.isfinite(t3["rows"][0]["scaled_mae_visited"]) and t3["visited_pairs_recorded"] > 0
    md2 = (tmp_path / "table2_newton.md").read_text()
    assert "| 3x5x3x1 | 66.18 | 5,000 | 0.032 | 5,922 | 89% |" in md2
    assert "| 1x5x1 | 49.92 |" in (tmp_path / "table3_lj.md").read_text()

    scfg = {**speedup.QUICK, "sizes": [200, 400], "repeats": 1, "lj_steps": 2}
    f3 = speedup.newton_fig(scfg, out)  # reuses the artifacts the tables left behind: no training here
    assert set(f3["median_s"]) == {"exact", "3x5x3x1 scalar", "3x5x3x1 hoisted", "numpy", "numba"}
    assert f3["accuracy_at_max_n"]["numpy"]["within_0.01"] == 1.0
    assert f3["rewrite"]["3x5x3x1 scalar"]["path_taken"] == "scalar"
    f5 = speedup.lj_fig(scfg, out)
    assert f5["thermo_last_step"]["exact"]["TotEng_rel_diff"] == 0.0
    assert f5["thermo_last_step"]["numpy"]["TotEng_rel_diff"] < 1e-9
    for name in ("fig3_newton", "fig5_lj"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
        assert json.loads((tmp_path / f"{name}.json").read_text())["machine"]["cpus"] >= 1
