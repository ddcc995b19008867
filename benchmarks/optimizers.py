"""Optimizer x topology x accuracy x training time on the fixture regions and the AxBench-style kernels.

Usage: .venv/bin/python benchmarks/optimizers.py [--quick] [--only NAME[,NAME]] [--samples N]
                                                  [--epochs E] [--seconds S] [--out DIR]

For every region (fixtures/newton.py's newton, fixtures/ci_repo/src/physics.py's overlap and
newton_sqrt, fixtures/lj_md.py's lj_pair, and benchmarks/kernels/'s call_price, inversek2j and
cubic_root) the pragma's domain is sampled with regionx's sampler, and every topology is trained
once with Adam exactly as `regionx train` does (regionx.train._train_topology: same split,
normalisation, target transform, schedule and early stopping). From those Adam weights each
refinement variant runs (regionx.refine.refine) with the same nominal time:

* ``adam``: no refinement (what regionx did before);
* ``lm``: Levenberg-Marquardt on the normal equations, with the random restarts "auto" adds for
  the smallest networks (regionx.refine.restarts_for);
* ``lm-1``: LM from the Adam weights only (no restarts), where ``lm`` has restarts;
* ``lbfgs``: L-BFGS with the analytic gradient;
* ``minpack``: scipy.optimize.least_squares(method="lm") with the same analytic Jacobian, for the
  networks up to 60 weights (its column-pivoted QR is too slow above that).

Each variant's weights are compiled to the numpy module regionx ships (regionx.compile) and that
module is measured on the held-out test split: share within the region's tolerance, its one-sided
95% Wilson lower bound, mean error; beside it the time Adam and the refinement took and the
validation loss before and after (in the units refinement minimises: the mse of residuals
weighted by 1 / allowed error for metric "rel", else the normalised mse). `auto` marks the
variant regionx's default (refine="auto") picks.

Writes <out>/optimizers.{md,json} (default out: benchmarks/results). Full mode: 10,000 samples,
150 epochs (compile's default), 30 s nominal refinement, topologies 8, 16, 8x5, 16x16, 32x32
(compile's default grid): about 40 minutes on 2 shared cores, plus ~10 for the minpack rows.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from typing import Any, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import _common as C  # noqa: E402

import numpy as np  # noqa: E402

KERNELS = os.path.join(C.ROOT, "benchmarks", "kernels")
PHYSICS = os.path.join(C.ROOT, "fixtures", "ci_repo", "src", "physics.py")
# (name, file): the fixture regions, then this directory's kernels.
REGIONS: list[tuple[str, str]] = [
    ("newton", C.NEWTON), ("overlap", PHYSICS), ("newton_sqrt", PHYSICS), ("lj_pair", C.LJ),
    ("call_price", os.path.join(KERNELS, "blackscholes.py")), ("inversek2j", os.path.join(KERNELS, "inversek2j.py")),
    ("cubic_root", os.path.join(KERNELS, "cubic.py")),
]
VARIANTS = ("adam", "lm", "lm-1", "lbfgs", "minpack")
MINPACK_MAX_WEIGHTS = 60
FULL: dict[str, Any] = {"samples": 10000, "epochs": 150, "seconds": 30.0, "topologies": [(8,), (16,), (8, 5), (16, 16), (32, 32)],
                        "variants": VARIANTS}
QUICK: dict[str, Any] = {"samples": 600, "epochs": 3, "seconds": 0.5, "topologies": [(5,)], "variants": ("adam", "lm", "lbfgs")}


def wilson_lower(successes: int, n: int, z: float = 1.6448536269514722) -> float:
    """One-sided 95% Wilson lower confidence bound of a binomial proportion."""
    if n <= 0:
        return 0.0
    p = successes / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z * z / n))


def prepare(ds: Any, seed: int) -> dict[str, Any]:
    """Split, normalise and weight a dataset exactly as regionx.train.train_dataset does."""
    from regionx import train as T

    X, Y = np.asarray(ds.X, dtype=np.float64), np.asarray(ds.Y, dtype=np.float64)
    meta = ds.meta
    tr, va, te = T._split(X.shape[0], seed)
    x_mean, x_scale = T._scale(X[tr])
    transform = T.target_transform_for(Y[tr], meta.metric, "auto")
    Tt = Y if transform is None else np.arcsinh(Y / transform[1])
    y_mean, y_scale = T._scale(Tt[tr])
    Xn, Yn = (X - x_mean) / x_scale, (Tt - y_mean) / y_scale
    from regionx.criterion import Criterion

    # the region's criterion as training derives it (regionx.criterion: the floor from the training outputs)
    criterion = Criterion.resolve(reference=Y[tr], tolerance=meta.tolerance, metric=meta.metric)
    weights = T.residual_weights(Y, criterion, transform, y_scale)
    return {"X": X, "Y": Y, "tr": tr, "va": va, "te": te, "Xn": Xn, "Yn": Yn, "x_mean": x_mean, "x_scale": x_scale,
            "criterion": criterion,
            "y_mean": y_mean, "y_scale": y_scale, "transform": transform, "weights": weights,
            "lower": X[tr].min(axis=0), "upper": X[tr].max(axis=0)}


def measure(layers: Any, d: dict[str, Any], meta: Any, work: str) -> dict[str, float]:
    """Compile `layers` into regionx's numpy module and score it on the test split."""
    from regionx import compile as rxcompile
    from regionx import train as T

    path = rxcompile.compile_model(layers, d["x_mean"], d["x_scale"], d["y_mean"], d["y_scale"], region_name=meta.region_name,
                                   inputs=meta.inputs, outputs=meta.outputs, lower=d["lower"], upper=d["upper"], out_dir=work,
                                   out_transform=d["transform"], batch_dtype=T.BATCH_DTYPE)
    module = rxcompile.load_module(path)
    te = d["te"]
    pred = module.predict(d["X"][te])
    m = T.error_metrics(pred, d["Y"][te], d["criterion"])
    good = int(np.count_nonzero(T.within_tolerance(pred, d["Y"][te], d["criterion"])))
    return {"accuracy": m["accuracy"], "lower_bound": wilson_lower(good, len(te)), "mean_error": m["mean_error"],
            "max_error": m["max_error"], "n_test": len(te)}


def _variants_for(variants: Sequence[str], n_weights: int) -> list[str]:
    """The variants that apply to a network of `n_weights` weights."""
    from regionx import refine as R

    return [v for v in variants
            if not (v == "lm-1" and R.restarts_for(n_weights, "lm") == 0)  # then the same as "lm"
            and not (v == "minpack" and n_weights > MINPACK_MAX_WEIGHTS)]


def run_region(name: str, path: str, cfg: dict[str, Any], seed: int, log: Any = print) -> list[dict[str, Any]]:
    """Every topology x variant of one region; returns the table rows."""
    from regionx import refine as R
    from regionx import train as T

    ds = C.sample(path, name, cfg["samples"], seed)
    meta = ds.meta
    d = prepare(ds, seed)
    tr, va = d["tr"], d["va"]
    w = d["weights"]
    wtr, wva = (None, None) if w is None else (w[tr], w[va])
    val_accuracy = T._val_accuracy({"val_exact": d["Y"][va], "y_mean": d["y_mean"], "y_scale": d["y_scale"],
                                    "transform": d["transform"], "criterion": d["criterion"]})
    assert val_accuracy is not None
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rx-opt-") as work:
        for hidden in cfg["topologies"]:
            if not _variants_for(cfg["variants"], R.n_params(hidden, d["X"].shape[1], d["Y"].shape[1])):
                continue  # e.g. a minpack-only run on a network too big for it: no Adam run either
            task = {"hidden": tuple(hidden), "activation": "tanh", "seed": seed, "epochs": cfg["epochs"],
                    "batch_size": T.auto_batch_size(len(tr)), "learning_rate": T.LEARNING_RATE, "patience": T.EARLY_STOP_PATIENCE,
                    "Xtr": d["Xn"][tr], "Ytr": d["Yn"][tr], "Xva": d["Xn"][va], "Yva": d["Yn"][va], "refine": "none"}
            adam = T._train_topology(task)
            layers = adam["layers"]
            n_weights = R.NetSpec.of(layers).n_params
            auto = R.choose_method("auto", n_weights, d["Yn"][tr].size)
            auto_variant = "adam" if auto == "none" else auto
            for variant in _variants_for(cfg["variants"], n_weights):
                t0 = time.perf_counter()
                info: dict[str, Any]
                if variant == "adam":
                    kept, info = layers, {"method": "adam", "val_loss_before": R.mse(R.pack(layers), R.NetSpec.of(layers),
                                                                                     d["Xn"][va], d["Yn"][va], wva)}
                    info["val_loss_after"] = info["val_loss_before"]
                elif variant == "minpack":
                    spec = R.NetSpec.of(layers)
                    theta0 = R.pack(layers)
                    with R.single_threaded_blas():
                        theta, st = R.minpack_lm(theta0, spec, d["Xn"][tr], d["Yn"][tr], wtr,
                                                     deadline=time.perf_counter() + cfg["seconds"])
                    before = R.mse(theta0, spec, d["Xn"][va], d["Yn"][va], wva)
                    after = R.mse(theta, spec, d["Xn"][va], d["Yn"][va], wva)
                    # kept as refine() keeps: higher validation accuracy first, then lower loss
                    better = ((-val_accuracy(R.predict(theta, spec, d["Xn"][va])), after)
                              < (-val_accuracy(R.predict(theta0, spec, d["Xn"][va])), before))
                    kept = R.unpack(theta, spec) if better else layers
                    info = {"method": "minpack" if better else "adam", "val_loss_before": before,
                            "val_loss_after": after if better else before, "status": st["status"]}
                else:
                    res = R.refine(layers, d["Xn"][tr], d["Yn"][tr], d["Xn"][va], d["Yn"][va], wtr=wtr, wva=wva, seed=seed,
                                   method=variant.split("-")[0], seconds=cfg["seconds"],
                                   restarts=0 if variant == "lm-1" else None, val_accuracy=val_accuracy)
                    kept = res.layers
                    info = res.summary()
                    info["status"] = ", ".join(str(a["status"]) for a in res.attempts)
                refine_s = time.perf_counter() - t0 if variant != "adam" else 0.0
                score = measure(kept, d, meta, os.path.join(work, f"{'x'.join(map(str, hidden))}_{variant}"))
                row = {"region": name, "metric": meta.metric, "tolerance": meta.tolerance, "n_samples": int(ds.X.shape[0]),
                       "hidden": list(hidden), "topology": "x".join(map(str, (d["X"].shape[1], *hidden, d["Y"].shape[1]))),
                       "weights": n_weights, "n_residuals": int(d["Yn"][tr].size), "variant": variant,
                       "auto": variant == auto_variant,
                       "adam_s": float(adam["adam_time"]), "adam_epochs": int(adam["epochs"]), "refine_s": refine_s,
                       "kept": info.get("method"), "val_before": info.get("val_loss_before"), "val_after": info.get("val_loss_after"),
                       "status": info.get("status", ""), **score}
                rows.append(row)
                log(f"{name:12s} {row['topology']:>9s} {variant:8s} acc {score['accuracy']:.2%} (lcb {score['lower_bound']:.2%}) "
                    f"adam {row['adam_s']:.1f}s refine {refine_s:.1f}s val {row['val_before']:.3g}->{row['val_after']:.3g}")
    return rows


def _is_auto(row: dict[str, Any]) -> bool:
    """Is this row's variant what refine="auto" runs now (re-evaluated, so --from-json follows rule changes)?"""
    from regionx import refine as R

    auto = R.choose_method("auto", int(row["weights"]), int(row["n_residuals"]))
    if auto == "lm" and row["variant"] == "lm-1":
        return False
    return row["variant"] == (auto if auto != "none" else "adam")


def render(result: dict[str, Any]) -> str:
    """The markdown table, command line and machine first."""
    cfg = result["config"]
    m = result["machine"]
    lines = [
        "# Refinement after Adam: optimizer x topology x accuracy x training time",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {m.get('cpu', '?')}, {m['cpus']} CPUs, {m['platform']}, Python {m['python']}, numpy {m['numpy']}, "
        f"load average at start {' '.join(m.get('loadavg_at_start', []))}; started {result['started']}, "
        f"{result['wall_s'] / 60:.0f} min in all.",
        "",
        f"{cfg['samples']:,} samples per region (70/15/15 split), Adam {cfg['epochs']} epochs (compile's schedule), "
        f"tanh hidden layers; each refinement gets {cfg['seconds']:g} s nominal (a deterministic iteration budget). "
        "Accuracy is the share of held-out test points within the region's tolerance, measured on the compiled "
        "numpy module; LCB is its one-sided 95% Wilson lower bound. Val loss: the loss refinement minimises, on the "
        "validation split, before -> after. **auto** marks what `refine=\"auto\"` (the default) runs.",
        "",
    ]
    header = ["region (tolerance)", "topology", "weights", "optimizer", "accuracy", "LCB", "mean error", "Adam (s)",
              "refine (s)", "val loss before -> after", "stopped by"]
    table = []
    for r in result["rows"]:
        label = f"**{r['variant']}** (auto)" if _is_auto(r) else r["variant"]
        table.append([f"{r['region']} ({r['tolerance']:g} {r['metric']})", r["topology"], r["weights"], label,
                      f"{r['accuracy']:.2%}", f"{r['lower_bound']:.2%}", f"{r['mean_error']:.3g}", f"{r['adam_s']:.1f}",
                      f"{r['refine_s']:.1f}", f"{r['val_before']:.3g} -> {r['val_after']:.3g}", r["status"] or "-"])
    lines.append(C.md_table(header, table, "llrlrrrrrll"))
    lines += [f"{note}\n" for note in result.get("notes", [])]
    for extra in result.get("merged", []):
        lines.append(f"Rows replaced or added by `{extra['command']}` (started {extra['started']}, {extra['rows']} rows, "
                     f"load average at start {' '.join(extra['machine'].get('loadavg_at_start', []))}).")
    return "\n".join(lines) + "\n"


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform.processor())."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny configuration (smoke test, under a minute per region)")
    parser.add_argument("--only", default=None, help="comma-separated region names")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="nominal refinement time per variant")
    parser.add_argument("--out", default=C.RESULTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=None, help=f"comma-separated subset of {', '.join(VARIANTS)}")
    parser.add_argument("--merge", default=None, metavar="JSON",
                        help="add this run's rows to an earlier run's JSON (same region, topology and variant replaced)")
    parser.add_argument("--from-json", default=None, metavar="JSON", help="only re-render the table of an earlier run")
    args = parser.parse_args(argv)
    if args.from_json:
        import json

        with open(args.from_json, encoding="utf-8") as handle:
            C.write_text(os.path.join(args.out, "optimizers.md"), render(json.load(handle)))
        return 0
    cfg: dict[str, Any] = dict(QUICK if args.quick else FULL)
    for key in ("samples", "epochs", "seconds"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.variants:
        cfg["variants"] = tuple(v for v in args.variants.split(",") if v)
        if not set(cfg["variants"]) <= set(VARIANTS):
            parser.error(f"unknown variant(s) in {args.variants!r}")
    names = args.only.split(",") if args.only else [n for n, _p in REGIONS]
    unknown = sorted(set(names) - {n for n, _p in REGIONS})
    if unknown:
        parser.error(f"unknown region(s) {', '.join(unknown)}")
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    machine = {**C.machine(), "cpu": cpu_model()}
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for name, path in REGIONS:
        if name in names:
            rows += run_region(name, path, cfg, args.seed, log=lambda text: print(text, flush=True))
    command = "benchmarks/optimizers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result: dict[str, Any] = {"command": command.strip(), "config": {**cfg, "topologies": [list(t) for t in cfg["topologies"]],
                                                                     "variants": list(cfg["variants"])},
                              "started": started, "wall_s": time.perf_counter() - t0, "machine": machine, "rows": rows}
    if args.merge:
        import json

        with open(args.merge, encoding="utf-8") as handle:
            base = json.load(handle)
        ident = ("region", "topology", "variant")
        new = {tuple(r[k] for k in ident): r for r in rows}
        merged = [new.pop(tuple(r[k] for k in ident), r) for r in base["rows"]]
        base["rows"] = merged + list(new.values())
        base.setdefault("merged", []).append({"command": result["command"], "started": started, "wall_s": result["wall_s"],
                                              "rows": len(rows), "machine": machine})
        result = base
    C.write_json(os.path.join(args.out, "optimizers.json"), result)
    C.write_text(os.path.join(args.out, "optimizers.md"), render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
