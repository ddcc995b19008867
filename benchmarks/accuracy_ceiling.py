"""What accuracy is reachable at all on the Newton-Raphson region: a large network trained long,
with and without the asinh target transform, through regionx's own sampler and trainer.

Usage: .venv/bin/python benchmarks/accuracy_ceiling.py [--quick] [--epochs E] [--out DIR]

Writes <out>/accuracy_ceiling.{md,json}: per configuration the share of held-out test equations
within 1%, 2%, 5% and 10% of the exact root (metric "rel", floor 1e-3), where the misses lie
(near-zero roots |y| < 0.1, or near the double-root boundary b^2 - 4ac < 5), and the compiled
module's cost per scalar call and per batch element. Full mode: about 6-8 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import _common as C  # noqa: E402

import numpy as np  # noqa: E402

FULL: dict[str, Any] = {"samples": 102400, "epochs": 200, "hidden": (64, 64, 64), "transforms": ("none", "asinh")}
QUICK: dict[str, Any] = {"samples": 2000, "epochs": 3, "hidden": (8,), "transforms": ("none", "asinh")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default=C.RESULTS)
    args = parser.parse_args(argv)
    cfg: dict[str, Any] = dict(QUICK if args.quick else FULL)
    if args.epochs:
        cfg["epochs"] = args.epochs
    from regionx.train import _split, train_dataset

    ds = C.sample(C.NEWTON, "newton", cfg["samples"], 0)
    _tr, _va, te = _split(ds.X.shape[0], 0)
    Xte, Yte = ds.X[te], ds.Y[te, 0]
    disc = Xte[:, 1] ** 2 - 4 * Xte[:, 0] * Xte[:, 2]
    rows: list[dict[str, Any]] = []
    for tt in cfg["transforms"]:
        art = os.path.join(args.out, "artifacts", "ceiling", f"{'x'.join(map(str, cfg['hidden']))}_{tt}")
        t0 = time.perf_counter()
        res = train_dataset(ds, art, topologies=[(tuple(cfg["hidden"]), "tanh")], epochs=cfg["epochs"], seed=0,
                            target=1e-9, select_by="batch", target_transform=tt)
        row = dict(res.payload.rows[0])
        mod = C.import_file(os.path.join(art, C.load_manifest(art).module))
        err = C.rel_errors(mod.predict(Xte)[:, 0], Yte)
        bad = err > 0.01
        row.update({"target_transform": tt, "wall_s": time.perf_counter() - t0,
                    **{f"within_{t}": float(np.mean(err <= t)) for t in (0.01, 0.02, 0.05, 0.1)},
                    "misses_near_zero_root": float(np.mean(np.abs(Yte[bad]) < 0.1)) if bad.any() else 0.0,
                    "misses_near_double_root": float(np.mean(disc[bad] < 5)) if bad.any() else 0.0,
                    "share_near_zero_root": float(np.mean(np.abs(Yte) < 0.1)), "share_near_double_root": float(np.mean(disc < 5))})
        rows.append(row)
        print(f"{tt}: within 1% {row['within_0.01']:.1%}, 2% {row['within_0.02']:.1%}, 5% {row['within_0.05']:.1%}", flush=True)
    info = C.machine()
    result = {"config": {**cfg, "hidden": list(cfg["hidden"])}, "samples": int(ds.X.shape[0]), "rows": rows, "machine": info}
    C.write_json(os.path.join(args.out, "accuracy_ceiling.json"), result)
    label = "x".join(map(str, (3, *cfg["hidden"], 1)))
    table = C.md_table(
        ["target transform", "epochs run", "train (s)", "within 1%", "within 2%", "within 5%", "within 10%",
         "misses with abs(root) < 0.1", "misses with b²-4ac < 5", "us/call", "us/element"],
        [[r["target_transform"], r["epochs"], f"{r['train_time']:.0f}", f"**{r['within_0.01']:.1%}**", f"{r['within_0.02']:.1%}",
          f"{r['within_0.05']:.1%}", f"{r['within_0.1']:.1%}",
          f"{r['misses_near_zero_root']:.0%} (share of all: {r['share_near_zero_root']:.1%})",
          f"{r['misses_near_double_root']:.0%} (share of all: {r['share_near_double_root']:.1%})",
          f"{r['time_per_call'] * 1e6:.1f}", f"{r['time_per_element'] * 1e6:.3f}"] for r in rows])
    md = (f"# Accuracy ceiling — Newton-Raphson, {label} tanh, {cfg['epochs']} epochs max, {result['samples']:,} samples\n\n"
          + table + "\nReproduce: `.venv/bin/python benchmarks/accuracy_ceiling.py`  \n"
          + C.machine_line(info) + "\n")
    C.write_text(os.path.join(args.out, "accuracy_ceiling.md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
