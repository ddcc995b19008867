"""End to end: `regionx compile` gives a region with a jump between two regimes a learned guard,
and the patched program keeps the target on inputs the training never saw (issue 15)."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from regionx.cli import cli
from regionx.compile import load_module

PROGRAM = textwrap.dedent('''
    import math
    import random


    # regionx: name=regimes, tolerance=0.02, metric="abs",
    # regionx: x=uniform(-1, 1), y=uniform(-1, 1)
    def regimes(x, y):
        # two smooth regimes split by a circle, each reached by a fixed-point iteration (~5 us)
        if x * x + y * y < 0.5:
            target = math.sin(3.0 * x) + y
        else:
            target = 1.0 - x + 0.5 * math.cos(2.0 * y)
        v = 0.0
        for _ in range(60):
            v = 0.5 * (v + target)
        return v


    def main(n=3000, seed=7):
        rng = random.Random(seed)
        xs = [rng.uniform(-1, 1) for _ in range(n)]
        ys = [rng.uniform(-1, 1) for _ in range(n)]
        out = [0.0] * n
        for i in range(n):
            out[i] = regimes(xs[i], ys[i])
        return xs, ys, out
''')


def _exact(x: float, y: float) -> float:
    return math.sin(3.0 * x) + y if x * x + y * y < 0.5 else 1.0 - x + 0.5 * math.cos(2.0 * y)


def test_compile_learns_a_guard_for_a_jump_and_the_patched_program_keeps_the_target(tmp_path: Path) -> None:
    src = tmp_path / "regimes.py"
    src.write_text(PROGRAM)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["compile", str(src), "--out", str(out), "--json", "--samples", "6000",
                                   "--budget", "60", "--topologies", "16,16"])
    assert res.exit_code == 0, res.output
    [region] = json.loads(res.output)["regions"]
    assert region["verdict"] == "rewritten", region["diagnostics"]
    chosen = region["chosen"]
    # the network alone misses the target; with its guard the program meets it
    assert chosen["guard"] is not None and chosen["accuracy"] < 0.99 <= chosen["effective_accuracy_lcb"]
    assert 0.0 < chosen["accept_rate"] < 1.0
    art = out / "regimes"
    assert (art / "guard_regimes.py").exists()
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["topology"]["guard"]["hidden"] in ([8], [16])
    report = (art / "report.md").read_text()
    assert "Learned guard" in report and "Fallback share" in report

    # the patched program on inputs the training never saw: within tolerance at the program level,
    # and the surrogate did answer (its answers are not bit-exact: some results differ from the exact code's)
    module = load_module(str(out / "regimes.py"))
    xs, ys, got = module.main(n=4000, seed=123)
    exact = np.array([_exact(x, y) for x, y in zip(xs, ys)])
    got = np.asarray(got)
    assert np.mean(np.abs(got - exact) <= 0.02) >= 0.99
    assert np.count_nonzero(np.abs(got - exact) > 1e-12) > 1000

    # the guard refuses the band around the circle more than the rest
    sur = load_module(str(art / "surrogate_regimes.py"))
    X = np.column_stack([xs, ys])
    r = np.hypot(X[:, 0], X[:, 1])
    near = np.abs(r - math.sqrt(0.5)) < 0.05
    trusted = sur.guard(X)
    assert trusted[~near].mean() > trusted[near].mean() + 0.2

    # regionx check re-validates the guarded program on fresh samples
    chk = CliRunner().invoke(cli, ["check", str(src), "--artifacts", str(out), "--format", "json", "--samples", "400"])
    doc = json.loads(chk.output)
    [row] = [r for r in doc["regions"] if r["id"] == "regimes"]
    assert row["status"] == "ok", row
    assert "learned guard: network answers" in row["note"]
