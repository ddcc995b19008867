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


def test_kernels_compute_what_they_claim() -> None:
    """benchmarks/kernels/: Black-Scholes against the erf-based CDF, inverse kinematics against the
    forward kinematics, the cubic's root against its residual; each region is replaceable."""
    from benchmarks import optimizers
    from regionx.analysis import analyze_file, find_region

    kernels = {name: speedup.C.import_file(path) for name, path in optimizers.REGIONS if "kernels" in path}
    bs = kernels["call_price"]

    def phi(x: float) -> float:
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    for s, k, r, v, t in [(40.0, 35.0, 0.05, 0.3, 1.0), (25.0, 55.0, 0.02, 0.6, 0.2)]:
        d1 = (math.log(s / k) + (r + 0.5 * v * v) * t) / (v * math.sqrt(t))
        exact = s * phi(d1) - k * math.exp(-r * t) * phi(d1 - v * math.sqrt(t))
        assert abs(bs.call_price(s, k, r, v, t) - exact) < 1e-5
    ik = kernels["inversek2j"]
    for x, y in [(0.3, 0.6), (-0.7, 0.2)]:
        t1, t2 = ik.inversek2j(x, y)
        assert math.isclose(ik.L1 * math.cos(t1) + ik.L2 * math.cos(t1 + t2), x, abs_tol=1e-12)
        assert math.isclose(ik.L1 * math.sin(t1) + ik.L2 * math.sin(t1 + t2), y, abs_tol=1e-12)
    cubic = kernels["cubic_root"]
    for p, q in [(0.0, 3.0), (2.0, -4.0), (4.0, 0.0)]:
        x = cubic.cubic_root(p, q)
        assert abs(x ** 3 + p * x + q) < 1e-12
    for name, path in optimizers.REGIONS:
        region = find_region(analyze_file(path), name)
        assert region is not None and region.replaceable, name


def test_optimizers_quick(tmp_path) -> None:
    from benchmarks import optimizers

    assert optimizers.main(["--quick", "--only", "cubic_root", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "optimizers.json").read_text())
    rows = data["rows"]
    assert [r["variant"] for r in rows] == ["adam", "lm", "lbfgs"] and data["machine"]["cpus"] >= 1
    for r in rows:
        assert 0.0 <= r["lower_bound"] <= r["accuracy"] <= 1.0 and r["val_after"] <= r["val_before"]
    assert sum(optimizers._is_auto(r) for r in rows) == 1
    md = (tmp_path / "optimizers.md").read_text()
    assert md.startswith("# Refinement after Adam") and "Command: `benchmarks/optimizers.py --quick" in md
    assert "| cubic_root (0.01 rel) | 2x5x1 | 21 | **lm** (auto) |" in md


def test_batch_path_and_batch_loops_tiny(tmp_path) -> None:
    """benchmarks/batch_path.py and batch_loops.py --quick: the per-row breakdown and the
    predicted-vs-measured table are written (structure only: no timing is asserted)."""
    from benchmarks import batch_loops, batch_path

    assert batch_path.main(["--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "batch_path.json").read_text())
    assert {(r["rows"], r["columns"]) for r in report["rows"]} == {(1000, 1), (10000, 1), (1000, 3), (10000, 3)}
    for row in report["rows"]:
        parts = row["conversion"] + row["guard"] + row["predict"] + row["store"]
        assert row["floor"] == parts and row["whole"] > 0
    assert "whole loop" in (tmp_path / "batch_path.md").read_text()
    assert batch_loops.main(["--quick", "--only", "ci_repo", "--out", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "batch_loops.json").read_text())["rows"]
    assert [b["form"] for b in row["batched"]] == ["distributed"] and row["within_tolerance"] == 1.0


def test_ik_ceiling_tiny(tmp_path) -> None:
    """benchmarks/ik_ceiling.py on 2,000 rows: every run and part timed, the batch answered the loop
    (the script asserts it), the parts inside add up to the patched loop, and each ceiling is the
    original loop over the patched loop without its overheads (the conversion swapped for two)."""
    from benchmarks import ik_ceiling

    assert ik_ceiling.main(["--rows", "2000", "--rounds", "3", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "ik_ceiling.json").read_text())
    m = report["per_row"]
    assert set(m) == set(ik_ceiling.LABELS) and all(m[k] > 0 for k in ik_ceiling.RUNS)
    assert all(m[f"in_{p}"] > 0 for p in ik_ceiling.INSIDE)
    parts = m["patched"] - m["in_rest"]
    assert report["ceilings"]["numpy (sound), no overheads"] == m["original"] / parts
    assert report["ceilings"]["reading only"] == m["original"] / (parts - m["conversion"] + m["reading_only"])
    assert "ceiling: numpy (sound), no overheads" in (tmp_path / "ik_ceiling.md").read_text()


def test_pipeflow_kernel_has_two_regimes_and_a_jump() -> None:
    """benchmarks/kernels/pipeflow.py (the learned guard's benchmark): Hausen's laminar Nusselt number
    below Re 2300, Gnielinski's with Colebrook's friction factor above, so the coefficient jumps
    across v*d = 2300*NU; the region is replaceable."""
    from regionx.analysis import analyze_file, find_region

    path = os.path.join(ROOT, "benchmarks", "kernels", "pipeflow.py")
    pf = speedup.C.import_file(path)
    d = 0.005
    v = pf.RE_CRITICAL * pf.NU / d
    below, above = pf.heat_transfer(v * 0.999, d), pf.heat_transfer(v * 1.001, d)
    assert above > 1.5 * below  # the jump
    # laminar, fully developed limit (Graetz number -> 0): Nu = 3.66
    assert math.isclose(pf.heat_transfer(1e-9, d), 3.66 * pf.K / d, rel_tol=1e-6)
    # turbulent: the friction factor satisfies Colebrook's equation (checked through Nu)
    re = 1e5
    f = 1.0 / (2.0 * math.log10(2.51 / (re * math.sqrt(0.018)))) ** 2
    for _ in range(100):
        f = 1.0 / (-2.0 * math.log10(2.51 / (re * math.sqrt(f)))) ** 2
    nu = (f / 8) * (re - 1000) * pf.PR / (1 + 12.7 * math.sqrt(f / 8) * (pf.PR ** (2 / 3) - 1))
    assert math.isclose(pf.heat_transfer(re * pf.NU / d, d), nu * pf.K / d, rel_tol=1e-5)
    region = find_region(analyze_file(path), "heat_transfer")
    assert region is not None and region.replaceable


def test_guard_benchmark_strips_only_the_accept_line(tmp_path) -> None:
    from benchmarks import guard as guard_bench

    stripped = open(guard_bench.without_accept(guard_bench.NEWTON, str(tmp_path)), encoding="utf-8").read()
    original = open(guard_bench.NEWTON, encoding="utf-8").read()
    assert "accept=" in original and "# regionx: accept=" not in stripped
    assert '# regionx: require="b*b - 4*a*c >= 0"\n' in stripped
    assert len(stripped.splitlines()) == len(original.splitlines()) - 1
