"""Which floor should a relative tolerance have? (issue 12, item 3; regionx.criterion.FLOOR_FRACTION)

A relative tolerance means nothing for an output near 0, so "rel" gets an absolute part:
|pred - exact| <= rtol * (floor + |exact|), with floor = f x the median |y| of the training
outputs. This script measures, for the relative-tolerance regions of the fixtures and kernels
(plus outputs spread over three decades, the issue's 1e-7..1e-4 case), how f decides

* the share of outputs below the floor (judged by the absolute part, not the relative one), and
* the share of held-out test points within tolerance of one trained surrogate per region,

for f in FRACTIONS and for the old fixed floor of 1e-3. Each region: 12,000 samples (seed 0),
one 8x5 tanh network trained as ``regionx compile`` trains it (Adam, then Levenberg-Marquardt
with residuals weighted by the default criterion), evaluated on its 2,000-point test split.

Usage: .venv/bin/python benchmarks/criterion_floor.py [--quick] [--out DIR]
Writes benchmarks/results/criterion_floor.{md,json}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks._common import RESULTS, ROOT, machine, machine_line, md_table, sample, write_json, write_text  # noqa: E402
from regionx.criterion import Criterion, lower_bound  # noqa: E402

FRACTIONS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
REGIONS = [  # (file, region name)
    (os.path.join(ROOT, "fixtures", "newton.py"), "newton"),
    (os.path.join(ROOT, "benchmarks", "kernels", "cubic.py"), "cubic_root"),
    (os.path.join(ROOT, "fixtures", "projectile.py"), "flight_range"),
]


def decades(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Outputs spread over three decades (1e-7..1e-4): y = 1e-7 * 1000**u, u = (a + b) / 2."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, size=(n, 2))
    return X, (1e-7 * 1000.0 ** (0.5 * (X[:, 0] + X[:, 1])))[:, None]


def evaluate(name: str, Y_train: np.ndarray, Y_test: np.ndarray, pred: np.ndarray, rtol: float) -> list[dict[str, Any]]:
    """One row per floor: its value, the share of outputs below it, the test accuracy and its bound."""
    rows = []
    crits = [(f"{f:g} x median abs(y)", Criterion.resolve(reference=Y_train, rtol=rtol, floor_fraction=f)) for f in FRACTIONS]
    crits.append(("fixed 1e-3 (old)", Criterion.legacy("rel", rtol)))
    for label, crit in crits:
        floor = crit.floor or (0.0,)
        within = crit.within(pred, Y_test)
        rows.append({"region": name, "floor": label, "floor_value": float(floor[0]),
                     "below_floor": float(np.mean(np.abs(Y_test) < floor[0])),
                     "accuracy": float(np.mean(within)), "lcb": lower_bound(int(within.sum()), len(within))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke configuration (tests)")
    parser.add_argument("--out", default=RESULTS, help="directory for criterion_floor.{md,json}")
    args = parser.parse_args()
    n, epochs, refine_s = (1500, 5, 1.0) if args.quick else (12000, 150, 30.0)
    info = machine()
    started = time.time()
    from regionx.train import TEST_POINTS, _split, train_dataset
    from regionx.types import Dataset

    rows: list[dict[str, Any]] = []
    for path, name in REGIONS[:1] if args.quick else REGIONS:
        dataset = sample(path, name, n, 0)
        with tempfile.TemporaryDirectory() as tmp:
            res = train_dataset(dataset, tmp, topologies=[((8, 5), "tanh")], epochs=epochs, seed=0, target=1e-9,
                                select_by="batch", refine_seconds=refine_s)
            if not res.ok:
                raise SystemExit(f"{name}: {[d.message for d in res.diagnostics]}")
            from regionx.compile import load_module

            module = load_module(res.artifacts["module"])
            tr, _va, te = _split(len(dataset.X), 0)
            pred = module.predict(dataset.X[te])
        rows += evaluate(name, dataset.Y[tr], dataset.Y[te], pred, dataset.meta.tolerance)
    # the case: outputs over three decades, a surrogate 2% off everywhere
    X, Y = decades(n, 0)
    tr, _va, te = _split(len(X), 0)
    rows += evaluate("1e-7..1e-4, 2% off everywhere", Y[tr], Y[te], Y[te] * 1.02, 0.01)
    table = md_table(["region (rtol 0.01)", "floor", "floor value", "outputs below the floor", "test points within tolerance",
                      "lower bound (95%)"],
                     [[r["region"], r["floor"], f"{r['floor_value']:.3g}", f"{r['below_floor']:.1%}", f"{r['accuracy']:.2%}",
                       f"{r['lcb']:.2%}"] for r in rows], align="llrrrr")
    text = (
        "# The floor of a relative tolerance\n\n"
        f"Command: `.venv/bin/python benchmarks/criterion_floor.py`{' --quick' if args.quick else ''}  \n"
        f"{machine_line(info)} Took {time.time() - started:.0f} s.\n\n"
        "Within tolerance: |pred - exact| <= rtol x (floor + |exact|) (numpy.isclose with atol = rtol x floor). "
        f"Each region: {n:,} samples, one 8x5 tanh network (Adam {epochs} epochs + LM {refine_s:g} s, residuals weighted "
        f"by the default criterion), judged on its {min(TEST_POINTS, n // 4):,}-point test split under each floor. "
        "The last region is synthetic: outputs over three decades and a 'surrogate' 2% off everywhere, which a 1% "
        "relative tolerance must reject.\n\n" + table
    )
    write_text(os.path.join(args.out, "criterion_floor.md"), text)
    write_json(os.path.join(args.out, "criterion_floor.json"), {"machine": info, "rows": rows, "samples": n,
                                                                "quick": args.quick})
    print(text)


if __name__ == "__main__":
    main()
