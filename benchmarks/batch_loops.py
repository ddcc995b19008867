"""Batched loops of the fixtures and kernels: regionx's predicted speedup against the measured one.

Usage: .venv/bin/python benchmarks/batch_loops.py [--quick] [--only NAME[,NAME]] [--rounds R]

For each loop below, the region's surrogate (trained here with regionx's own sample and train
stages, or the committed one for fixtures/ci_repo) is timed as the rewritten loop runs it
(`regionx.compile.time_per_row`: lists in, guard, predict, stores), the exact function is re-timed
beside it, and `regionx.rewrite.rewrite_source` patches the program from those timings. The
rewrite's predicted speedup of the loop (`data["batched"]`) is then compared with the measured one:
the original and the patched loop timed side by side in interleaved rounds, the fastest round of
each (on a shared machine load only ever slows a round down; every round is in the JSON).

  newton       fixtures/newton.py main: roots[i] = newton(a[i], b[i], c[i]) (accept predicate left out)
  inversek2j   benchmarks/kernels/inversek2j.py main: t1[i], t2[i] = inversek2j(xs[i], ys[i]) (tuple store)
  blackscholes benchmarks/kernels/blackscholes.py main: prices[i] = call_price(s[i], ..., t[i]) (5 columns)
  ci_repo      fixtures/ci_repo/src/physics.py main: total += overlap(2t, 3t) + newton_sqrt(..) (distribution)
  lj           fixtures/lj_md.py compute_forces: fpair = pair_force(rsq) in the accumulating neighbour loop
               (distribution; regionx refuses it as unprofitable, so it is patched with force=True)

Writes benchmarks/results/batch_loops.{json,md} (with --quick: into --out, default a temp dir).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import re
import sys
import tempfile
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks import _common as C  # noqa: E402
from regionx import compile as rxcompile  # noqa: E402
from regionx.rewrite import rewrite_source  # noqa: E402
from regionx.types import Manifest  # noqa: E402

KERNELS = os.path.join(ROOT, "benchmarks", "kernels")
CI_REPO = os.path.join(ROOT, "fixtures", "ci_repo")


@dataclasses.dataclass
class Case:
    path: str
    region: str
    hidden: tuple[int, ...]
    activation: str
    n: int  # rows of the timed loop
    tolerance: float  # what "within tolerance" means for the program's outputs (the pragma's)
    metric: str
    samples: int = 20000
    epochs: int = 150
    force: bool = False
    committed: str | None = None  # use these artifacts instead of training


CASES = {
    "newton": Case(C.NEWTON, "newton", (8, 5), "tanh", 10240, 0.01, "rel"),
    "inversek2j": Case(os.path.join(KERNELS, "inversek2j.py"), "inversek2j", (8, 5), "tanh", 20000, 0.02, "abs",
                       samples=30000, epochs=200),
    "blackscholes": Case(os.path.join(KERNELS, "blackscholes.py"), "call_price", (16,), "tanh", 20000, 0.5, "abs"),
    "ci_repo": Case(os.path.join(CI_REPO, "src", "physics.py"), "overlap", (), "", 2000, 0.01, "total rel",
                    committed=os.path.join(CI_REPO, ".regionx", "overlap")),
    "lj": Case(C.LJ, "lj_pair", (5, 8), "tanh", 500, 0.25, "abs", force=True),
}
QUICK = {"samples": 2000, "epochs": 5, "rounds": 2, "scale": 0.1}


def artifacts(name: str, case: Case, cfg: dict[str, Any], root: str) -> str:
    """The region's artifact directory: committed, already trained here, or trained now."""
    if case.committed:
        return case.committed
    label = "x".join(map(str, case.hidden)) + f"_{case.activation}" + ("_quick" if cfg.get("quick") else "")
    out = os.path.join(root, name, label)
    if not os.path.isfile(os.path.join(out, "manifest.json")):
        os.makedirs(out, exist_ok=True)
        dataset = C.sample(case.path, case.region, cfg.get("samples", case.samples), 0)
        C.train_one(dataset, case.hidden, case.activation, out, epochs=cfg.get("epochs", case.epochs), seed=0)
    return out


def exact_args(manifest: Manifest, fn: Callable[..., Any], n: int, seed: int = 5) -> list[tuple[float, ...]]:
    """Call arguments drawn from the trained box that satisfy the pragma's require= and that the
    exact code accepts (what the exact code is re-timed on, and the batch's rows)."""
    rng = np.random.default_rng(seed)
    names = [v.name for v in manifest.inputs]
    out: list[tuple[float, ...]] = []
    while len(out) < n:
        X = rng.uniform(np.asarray(manifest.lower), np.asarray(manifest.upper), size=(n, len(names)))
        for row in X:
            args = tuple(float(v) for v in row)
            if manifest.require and not eval(manifest.require, {"__builtins__": {}}, dict(zip(names, args))):  # noqa: S307
                continue
            try:
                fn(*args)
            except (ArithmeticError, ValueError):
                continue
            out.append(args)
    return out[:n]


def patched_program(case: Case, manifest: Manifest, art: str, out_file: str) -> dict[str, Any]:
    text, region = C.load_region(case.path, case.region)
    rel = os.path.relpath(os.path.join(art, manifest.module), os.path.dirname(out_file))
    res = rewrite_source(text, case.path, region, manifest, module_name=rel, force=case.force)
    if not res.ok:
        raise SystemExit(f"rewrite of {case.region} failed: {[d.message for d in res.diagnostics]}")
    C.write_text(out_file, res.payload.text)
    return res.to_json()


def loop_runner(name: str, module: Any, n: int) -> Callable[[], tuple[float, Any]]:
    """A function timing the case's loop once in `module`: (seconds, what it computed)."""
    if name in ("newton", "inversek2j", "blackscholes"):
        def run() -> tuple[float, Any]:
            value, printed = C.quiet(module.main, n, 2024)
            seconds = float(re.search(r"(?:solve|price) time: ([0-9.]+) s", printed).group(1))  # type: ignore[union-attr]
            return seconds, value
        return run
    if name == "ci_repo":
        def run_main() -> tuple[float, Any]:
            t0 = time.perf_counter()
            value = module.main(n)
            return time.perf_counter() - t0, value
        return run_main
    # lj: compute_forces on the fcc start of the fixture's run (the neighbour lists as run() builds them)
    cells = max(4, round((n / 4) ** (1 / 3)))
    x, y, z, box = module.fcc_lattice(cells)
    neighbors = module.build_neighbors(x, y, z, box)

    def run_forces() -> tuple[float, Any]:
        fx, fy, fz = [0.0] * len(x), [0.0] * len(x), [0.0] * len(x)
        t0 = time.perf_counter()
        module.compute_forces(list(x), list(y), list(z), fx, fy, fz, neighbors, box, True)
        return time.perf_counter() - t0, (fx, fy, fz)
    return run_forces


def calls_per_run(name: str, module: Any, n: int) -> int:
    """How many calls of the region one timed run makes (the batched rows)."""
    if name != "lj":
        return n
    cells = max(4, round((n / 4) ** (1 / 3)))
    x, y, z, box = module.fcc_lattice(cells)
    return sum(len(nl) for nl in module.build_neighbors(x, y, z, box))


def lj_whole_step(lj: Any, surrogate: Any, x: list[float], y: list[float], z: list[float], fx: list[float],
                  fy: list[float], fz: list[float], neighbors: list[list[int]], box: float) -> None:
    """compute_forces (eflag off) distributed by hand over the whole step, not per atom: a first
    pass collects every pair's rsq, one batched call answers them all (regionx.runtime.batch, as
    the patched program runs it), then the loops run as written with the answers. What the
    rewrite would emit if it distributed the outer loop too (it distributes the inner one)."""
    from regionx import runtime

    n = len(x)
    half = 0.5 * box
    rsqs = []
    for i in range(n):
        xi, yi, zi = x[i], y[i], z[i]
        for j in neighbors[i]:
            dx, dy, dz = xi - x[j], yi - y[j], zi - z[j]
            if dx > half:
                dx -= box
            elif dx < -half:
                dx += box
            if dy > half:
                dy -= box
            elif dy < -half:
                dy += box
            if dz > half:
                dz -= box
            elif dz < -half:
                dz += box
            rsqs.append(dx * dx + dy * dy + dz * dz)
    found = runtime.batch(surrogate, lj.pair_force, "zip", (rsqs,), (rsqs,), ("r",), inputs=(0,), store="value")
    assert found is not None
    it = found[0].__iter__().__next__
    for i in range(n):
        fx[i] = fy[i] = fz[i] = 0.0
    for i in range(n):
        xi, yi, zi = x[i], y[i], z[i]
        fxi = fyi = fzi = 0.0
        for j in neighbors[i]:
            dx, dy, dz = xi - x[j], yi - y[j], zi - z[j]
            if dx > half:
                dx -= box
            elif dx < -half:
                dx += box
            if dy > half:
                dy -= box
            elif dy < -half:
                dy += box
            if dz > half:
                dz -= box
            elif dz < -half:
                dz += box
            fpair = it()
            fxi += dx * fpair
            fyi += dy * fpair
            fzi += dz * fpair
            fx[j] -= dx * fpair
            fy[j] -= dy * fpair
            fz[j] -= dz * fpair
        fx[i] += fxi
        fy[i] += fyi
        fz[i] += fzi


def within(got: Any, want: Any, tolerance: float, metric: str) -> float:
    """Share of the program's outputs within tolerance of the exact program's."""
    g, w = np.ravel(np.asarray(got, dtype=float)), np.ravel(np.asarray(want, dtype=float))
    err = np.abs(g - w)
    if metric == "rel":
        err = err / np.maximum(np.abs(w), 1e-3)
    return float(np.mean(err <= tolerance))


def run_case(name: str, case: Case, cfg: dict[str, Any], root: str) -> dict[str, Any]:
    art = artifacts(name, case, cfg, root)
    manifest = C.load_manifest(art)
    module = rxcompile.load_module(os.path.join(art, manifest.module))
    if not case.committed:  # the module as this version generates it (the trained weights are kept)
        module = rxcompile.load_module(rxcompile.regenerate_module(art))
    orig = C.import_file(case.path)
    n = max(50, int(case.n * cfg.get("scale", 1.0)))
    exact_fn = getattr(orig, "pair_force" if name == "lj" else case.region)
    args = exact_args(manifest, exact_fn, 2000)
    X = np.array(args)
    # the two timings the rewrite's verdict and prediction are made of, measured side by side;
    # minima of repeats (a shared machine only ever slows a run down)
    t_exact = min(rxcompile.time_per_call(exact_fn, args, repeats=3) for _ in range(3))
    t_row = min(rxcompile.time_per_row(module, X, rows=n, repeats=3) for _ in range(3))
    t_exact = min(t_exact, *(rxcompile.time_per_call(exact_fn, args, repeats=3) for _ in range(2)))
    topology = dataclasses.replace(manifest.topology, time_per_element=t_row, exact_time_per_call=t_exact,
                                   effective_time_per_element=None, effective_time_per_call=None)
    timed = dataclasses.replace(manifest, topology=topology, accept=None)
    out_file = os.path.join(root, name, f"patched_{os.path.basename(case.path)}")
    data = patched_program(case, timed, art, out_file)
    patched = C.import_file(out_file)
    run_orig, run_patched = loop_runner(name, orig, n), loop_runner(name, patched, n)
    t_orig: list[float] = []
    t_pat: list[float] = []
    for _ in range(cfg.get("rounds", 7)):
        seconds, want = run_orig()
        t_orig.append(seconds)
        seconds, got = run_patched()
        t_pat.append(seconds)
    measured = min(t_orig) / min(t_pat)
    sites = [b for b in data["batched"]]
    # the rewrite predicts what each batched row saves; the loop's other work (other calls, the
    # rest of a distributed body) stays: predicted patched time = original - rows * saved
    rows_batched = calls_per_run(name, patched, n)
    saved = sum(b["saved_per_row"] for b in sites)
    t_o = min(t_orig)
    predicted = t_o / (t_o - rows_batched * saved) if sites and t_o - rows_batched * saved > 0 else None
    accuracy = within(got, want, case.tolerance, case.metric) if name != "ci_repo" else \
        float(abs(got - want) / abs(want) <= 0.01)
    extra: dict[str, Any] = {}
    if name == "lj":
        # the same step distributed over all pairs at once (one batch of every pair), by hand
        cells = max(4, round((n / 4) ** (1 / 3)))
        x, y, z, box = orig.fcc_lattice(cells)
        neighbors = orig.build_neighbors(x, y, z, box)
        whole: list[float] = []
        exact_step: list[float] = []
        for _ in range(cfg.get("rounds", 7)):
            fx, fy, fz = [0.0] * len(x), [0.0] * len(x), [0.0] * len(x)
            t0 = time.perf_counter()
            lj_whole_step(orig, module, x, y, z, fx, fy, fz, neighbors, box)
            whole.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            orig.compute_forces(x, y, z, [0.0] * len(x), [0.0] * len(x), [0.0] * len(x), neighbors, box, False)
            exact_step.append(time.perf_counter() - t0)
        extra = {"whole_step_distribution_speedup": min(exact_step) / min(whole),
                 "pairs": rows_batched, "pairs_per_atom": rows_batched / len(x)}
        print(f"{'':12s} by hand, one batch of all {rows_batched} pairs: {extra['whole_step_distribution_speedup']:.2f}x "
              f"(eflag off)", flush=True)
        shortest = max((b.get("min_rows", 2) for b in sites), default=2)
        if sites and extra["pairs_per_atom"] < shortest:
            # each atom's loop is shorter than the batch's row minimum, so by the rewrite's own rule it
            # runs as written, every call through the per-call dispatcher (the patched pair_force)
            t_call = min(rxcompile.time_per_call(patched.pair_force, args, repeats=3) for _ in range(3))
            predicted = t_o / (t_o + rows_batched * (t_call - t_exact))
            extra.update(min_rows=shortest, dispatcher_per_call=t_call)
    row = {"case": name, "rows": n, "topology": manifest.topology.label if not case.committed else
           manifest.topology.label + " (committed)", "exact_per_call": t_exact, "batched_per_row": t_row,
           "batched": sites, "skipped": data["hoist_skipped"], "predicted_speedup": predicted,
           "measured_speedup": measured, "original_s": min(t_orig), "patched_s": min(t_pat),
           "original_rounds_s": t_orig, "patched_rounds_s": t_pat, "within_tolerance": accuracy, "forced": case.force,
           "validation_accuracy": manifest.topology.accuracy, **extra}
    print(f"{name:12s} n={n:6d} exact {t_exact * 1e9:7.0f} ns/call, batched {t_row * 1e9:6.0f} ns/row: predicted "
          f"{predicted if predicted is None else round(predicted, 2)}x, measured {measured:.2f}x, "
          f"{accuracy:.2%} within {case.tolerance} ({case.metric}) {sites}", flush=True)
    return row


def render(result: dict[str, Any]) -> str:
    head = ["loop", "rows", "surrogate", "exact / call", "batched / row", "form", "rewrite's prediction",
            "from the original's time", "measured", "rewrite / measured", "within tolerance"]
    rows = []
    for r in result["rows"]:
        pred = r["predicted_speedup"]
        own = max((b["predicted_speedup"] for b in r["batched"]), default=None)
        rows.append([r["case"] + (" (forced)" if r["forced"] else ""), f"{r['rows']:,}", r["topology"],
                     f"{r['exact_per_call'] * 1e9:.0f} ns", f"{r['batched_per_row'] * 1e9:.0f} ns",
                     ", ".join(b["form"] for b in r["batched"]) or "-",
                     "-" if own is None else f"{own:.2f}x", "-" if pred is None else f"{pred:.2f}x",
                     f"{r['measured_speedup']:.2f}x", "-" if own is None else f"{own / r['measured_speedup']:.2f}",
                     f"{r['within_tolerance']:.2%}"])
    m = result["machine"]
    return "\n".join([
        "# Batched loops: predicted against measured speedup",
        "",
        "Command: `.venv/bin/python benchmarks/batch_loops.py` (see its docstring for the loops). Predicted: the",
        "rewrite's own figure from the surrogate's batched-loop time (`regionx.compile.time_per_row`) and the exact",
        "time, measured beside each other; measured: original over patched loop, fastest of interleaved rounds.",
        f"Machine: {_cpu(m)}, {m.get('cpus', '?')} cores, Python {m.get('python', '?')}, numpy "
        f"{m.get('numpy', '?')}, load average at start {m.get('loadavg_at_start', '?')}.",
        "\"rewrite's prediction\" is `data['batched'][..]['predicted_speedup']` (it cannot know the cost of other",
        "calls in the loop, such as ci_repo's newton_sqrt); \"from the original's time\" is the measured original",
        "loop minus the rows times the rewrite's `saved_per_row`.",
        "",
        C.md_table(head, rows),
        *[f"lj: the same step distributed by hand over all {r['pairs']:,} pairs in one batch (what distributing the "
          f"outer loop too would give): {r['whole_step_distribution_speedup']:.2f}x; regionx batches per atom "
          f"({r['pairs_per_atom']:.0f} pairs, below the batch's row minimum of {r.get('min_rows', '?')}, so the forced "
          f"patch runs each atom's loop as written, every call through the dispatcher: \"from the original's time\" "
          f"is then the original loop with each call's exact time replaced by the dispatcher's, "
          f"{r.get('dispatcher_per_call', float('nan')) * 1e9:.0f} ns)."
          for r in result["rows"] if "whole_step_distribution_speedup" in r],
        "",
    ])


def _cpu(machine: dict[str, Any]) -> str:
    cpu = machine.get("cpu")
    return str(cpu.get("model", "?")) if isinstance(cpu, dict) else str(cpu or machine.get("machine", "?"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    cfg: dict[str, Any] = dict(QUICK, quick=True) if args.quick else {"rounds": 7}
    if args.rounds:
        cfg["rounds"] = args.rounds
    out_dir = args.out or (tempfile.mkdtemp() if args.quick else C.RESULTS)
    root = os.path.join(out_dir if args.quick else C.RESULTS, "artifacts", "batch")
    names = args.only.split(",") if args.only else list(CASES)
    rows = [run_case(name, CASES[name], cfg, root) for name in names]
    result = {"machine": C.machine(), "rows": rows}
    C.write_json(os.path.join(out_dir, "batch_loops.json"), result)
    C.write_text(os.path.join(out_dir, "batch_loops.md"), render(result))
    return 0


if __name__ == "__main__":
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True) if hasattr(sys.stdout, "buffer") else sys.stdout
    raise SystemExit(main())
