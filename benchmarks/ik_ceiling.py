"""How fast a batched inverse-kinematics loop can get: the loop as written against the batched
loop, the batched loop's time split into its parts, and what it would cost with a cheaper
conversion -- measured side by side on the program's own lists.

Usage: .venv/bin/python benchmarks/ik_ceiling.py [--rows 20000] [--rounds 41] [--artifact DIR] [--out DIR]

The program is benchmarks/kernels/inversek2j.py: `for i in range(n): t1[i], t2[i] = inversek2j(xs[i], ys[i])`
over targets made by its own `make_targets` (xs and ys appended side by side, with rejected
draws in between: the memory layout a real program gives the batch). Every timing starts right
after fresh targets are made, as the program's loop does.

Timed, per row:
  original     the loop as written (fresh output lists, as the program makes them);
  patched      the same loop answered by regionx.runtime.batch (what the rewritten file calls),
               and inside it: conversion (runtime.input_matrix: np.array of 4,096-row slices,
               numpy's only conversion that refuses strings, None and other objects as the exact
               code does), box test (runtime.inside_box), predict, store (runtime.store_rows:
               tolist and slice assignments into the two lists), and the rest (argument checks,
               finite test, row 0's exact call, buffers);
  alone        the same conversion on its own, and two conversions no sound batch may use:
               np.fromiter (parses '1.5', turns None into NaN, calls any __float__) and reading
               only (sum() of each list: every float touched once, no array written).
The ceilings: original / (patched - rest) (every overhead gone), and the same with the
conversion's cost replaced by each alternative's (the difference of the two measured alone).
Medians of rounds whose order rotates; page faults (first touches of fresh memory, ~2.7 us each
where this was written) are counted per run.

The network: with --artifact, the compiled surrogate of `regionx compile` (its directory);
else a random 2 -> 8 -> 5 -> 2 tanh network (the topology compile chooses for this kernel) over
the pragma's box: predict costs the same whatever the weights.
Writes benchmarks/results/ik_ceiling.{json,md} (or into --out).
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks import _common as C  # noqa: E402
from benchmarks.batch_path import surrogate  # noqa: E402
from regionx import compile as rxcompile  # noqa: E402
from regionx import runtime  # noqa: E402

KERNEL = os.path.join(ROOT, "benchmarks", "kernels", "inversek2j.py")
RUNS = ("original", "patched", "conversion", "conversion_fromiter", "reading_only")
INSIDE = ("conversion", "box", "predict", "store")  # the parts of the patched loop timed inside it


def load_network(artifact: str | None, directory: str) -> tuple[Any, str]:
    """The surrogate module and a label saying which network it is."""
    if artifact:
        path = sorted(glob.glob(os.path.join(artifact, "surrogate_*.py")))[0]
        module = rxcompile.load_module(path)
        label = "x".join(map(str, module.HIDDEN)) + f" {module.ACTIVATIONS[0]} (trained: {artifact})"
        return module, label
    module = surrogate(2, (8, 5), "tanh", directory, d_out=2, lower=[-1.0, 0.0], upper=[1.0, 1.0])
    return module, "8x5 tanh (random weights, the topology compile chooses here)"


def measure(kernel: Any, sur: Any, n: int, rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds per row of every run and of the patched loop's parts ("in_" + part, and
    "in_rest"), and the runs' median page faults (see the module docstring)."""
    span = (0, n, 0, 0)
    matrix = np.empty(2 * n)
    inside: dict[str, float] = {}  # seconds spent in each part by the current patched run
    real: dict[str, Callable[..., Any]] = {"conversion": runtime.input_matrix, "box": runtime.inside_box,
                                           "store": runtime.store_rows}

    def timed(part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                inside[part] = inside.get(part, 0.0) + time.perf_counter() - t0
        return run

    def original(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        f = kernel.inversek2j
        for i in range(n):
            t1[i], t2[i] = f(xs[i], ys[i])

    def patched(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        got = runtime.batch(timed_sur, kernel.inversek2j, "range", range(n), (xs, ys), ("r", "r"), inputs=(0, 1),
                            out=(t1, t2), n_out=2)
        assert got is not None, "the batch refused the loop"

    def conversion(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        real["conversion"]((xs, ys), ("r", "r"), (0, 1), span, into=matrix)

    def conversion_fromiter(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        XT = matrix.reshape(2, n)
        for lo in range(0, n, 4096):  # in row blocks, as the runtime converts (no fresh pages)
            hi = min(n, lo + 4096)
            XT[0, lo:hi] = np.fromiter(xs[lo:hi], float, hi - lo)
            XT[1, lo:hi] = np.fromiter(ys[lo:hi], float, hi - lo)

    def reading_only(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        sum(xs)
        sum(ys)

    class TimedSurrogate:
        """sur with its predict timed (the runtime reads LOWER, UPPER, PREDICT_INTO, guard)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(sur, name)

        predict = staticmethod(timed("predict", sur.predict))

    timed_sur = TimedSurrogate()
    fns: dict[str, Callable[[list[float], list[float], list[float], list[float]], None]] = {
        "original": original, "patched": patched, "conversion": conversion,
        "conversion_fromiter": conversion_fromiter, "reading_only": reading_only}
    samples: dict[str, list[float]] = {k: [] for k in (*RUNS, *[f"in_{p}" for p in (*INSIDE, "rest")])}
    faults: dict[str, list[int]] = {k: [] for k in RUNS}
    runtime.input_matrix = timed("conversion", real["conversion"])  # type: ignore[assignment]
    runtime.inside_box = timed("box", real["box"])  # type: ignore[assignment]
    runtime.store_rows = timed("store", real["store"])  # type: ignore[assignment]
    try:
        for r in range(rounds):
            order = RUNS[r % len(RUNS):] + RUNS[:r % len(RUNS)]  # rotate: no run always goes first
            for name in order:
                xs, ys = _targets(kernel, n, 1000 * r + len(samples[name]) + 1)
                t1, t2 = [0.0] * n, [0.0] * n
                inside.clear()
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = time.perf_counter()
                fns[name](xs, ys, t1, t2)
                elapsed = time.perf_counter() - t0
                faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
                samples[name].append(elapsed / n)
                if name == "patched":
                    for p in INSIDE:
                        samples[f"in_{p}"].append(inside.get(p, 0.0) / n)
                    samples["in_rest"].append((elapsed - sum(inside.values())) / n)
                del xs, ys, t1, t2
    finally:
        runtime.input_matrix = real["conversion"]  # type: ignore[assignment]
        runtime.inside_box = real["box"]  # type: ignore[assignment]
        runtime.store_rows = real["store"]  # type: ignore[assignment]

    def med(v: list[Any]) -> float:
        return float(statistics.median(v[1:] if len(v) > 2 else v))  # round 0 warms up

    return {k: med(v) for k, v in samples.items()}, {k: med(v) for k, v in faults.items()}


def _targets(kernel: Any, n: int, seed: int) -> tuple[list[float], list[float]]:
    xs, ys = kernel.make_targets(n, seed)
    return xs, ys


def ceilings(m: dict[str, float]) -> dict[str, float]:
    """The original loop's time over the patched loop's without its overheads ("rest"), and the
    same with its conversion replaced by each alternative (their difference measured alone)."""
    parts = m["patched"] - m["in_rest"]
    return {"numpy (sound), no overheads": m["original"] / parts,
            "np.fromiter (unsound)": m["original"] / (parts - m["conversion"] + m["conversion_fromiter"]),
            "reading only": m["original"] / (parts - m["conversion"] + m["reading_only"])}


LABELS = {"original": "original loop", "patched": "patched loop (regionx.runtime.batch)",
          "in_conversion": "- its conversion (np.array of 4,096-row slices)", "in_box": "- its box test",
          "in_predict": "- its predict", "in_store": "- its store (tolist, slice assignments)",
          "in_rest": "- the rest (checks, finite test, row 0's exact call, buffers)",
          "conversion": "conversion alone (as inside)", "conversion_fromiter": "np.fromiter alone (unsound: parses strings)",
          "reading_only": "reading every input float once alone (sum)"}


def render(result: dict[str, Any]) -> str:
    m, pf = result["per_row"], result["page_faults"]
    rows = [[label, f"{m[k] * 1e9:.1f}", f"{pf[k]:.0f}" if k in pf else "",
             f"{m['original'] / m[k]:.2f}x" if k == "patched" else ""] for k, label in LABELS.items()]
    rows += [[f"ceiling: {k}", f"{m['original'] / v * 1e9:.1f}", "", f"{v:.2f}x"] for k, v in result["ceilings"].items()]
    return "\n".join([
        "# How fast the batched inverse-kinematics loop can get",
        "",
        f"`for i in range({result['rows']}): t1[i], t2[i] = inversek2j(xs[i], ys[i])` on the program's own lists",
        f"(benchmarks/kernels/inversek2j.py); network {result['network']}; medians of {result['rounds']} rotated rounds,",
        "every run timed right after fresh targets are made. The patched loop's parts are timed inside it; a",
        "ceiling is the original loop's time over the patched loop's without its overheads, with the conversion",
        "it has or (difference of the runs alone) a cheaper one.",
        C.machine_line(result["machine"]),
        "Command: `.venv/bin/python benchmarks/ik_ceiling.py`",
        "",
        C.md_table(["per row", "ns", "page faults (a run)", "speedup over the original loop"], rows),
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--artifact", default=None, help="a `regionx compile` output directory")
    parser.add_argument("--out", default=None, help="directory for ik_ceiling.{json,md}")
    args = parser.parse_args(argv)
    kernel = C.import_file(KERNEL)
    with tempfile.TemporaryDirectory() as tmp:
        sur, label = load_network(args.artifact, tmp)
        per_row, faults = measure(kernel, sur, args.rows, args.rounds)
    result = {"machine": C.machine(), "network": label, "rows": args.rows, "rounds": args.rounds,
              "per_row": per_row, "page_faults": faults, "ceilings": ceilings(per_row)}
    for k, label in LABELS.items():
        print(f"{label:>62}: {per_row[k] * 1e9:7.1f} ns/row" + (f", {faults[k]:.0f} page faults" if k in faults else ""))
    for k, v in result["ceilings"].items():
        print(f"ceiling, {k}: {v:.2f}x")
    print(f"patched loop: {per_row['original'] / per_row['patched']:.2f}x")
    out_dir = args.out or C.RESULTS
    C.write_json(os.path.join(out_dir, "ik_ceiling.json"), result)
    C.write_text(os.path.join(out_dir, "ik_ceiling.md"), render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
