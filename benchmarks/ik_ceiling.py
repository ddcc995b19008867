"""How fast a batched inverse-kinematics loop can get: the loop as written against the parts every
batched answer of it must pay, measured side by side on the program's own lists.

Usage: .venv/bin/python benchmarks/ik_ceiling.py [--rows 20000] [--rounds 41] [--artifact DIR] [--out DIR]

The program is benchmarks/kernels/inversek2j.py: `for i in range(n): t1[i], t2[i] = inversek2j(xs[i], ys[i])`
over targets made by its own `make_targets` (xs and ys appended side by side, with rejected
draws in between: the memory layout a real program gives the batch). Every timing starts right
after fresh targets are made, as the program's loop does.

Timed, per row:
  original     the loop as written (fresh output lists, as the program makes them);
  patched      the same loop answered by regionx.runtime.batch (what the rewritten file calls);
  conversion   the two input lists into a float64 matrix, as the runtime does it (np.array: numpy's
               only conversion that refuses strings, None and other objects, as the exact code
               does) -- and, for reference, two conversions no sound batch may use:
               np.fromiter (parses '1.5', turns None into NaN, calls any __float__) and
               reading only (sum() of each list: every float touched once, no array written);
  store        the two output columns back into fresh lists, as the runtime does it (tolist and
               slice assignments);
  predict      the compiled network on the whole batch;
  guard        the trained-box test and the finite test of both outputs.
The ceiling of a batched loop is original / (conversion + store + predict + guard): a batch
cannot be faster than its unavoidable parts. Medians of rounds whose order rotates.

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
PARTS = ("original", "patched", "conversion", "conversion_fromiter", "reading_only", "store", "predict", "guard")


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
    """Median seconds per row of every part (see the module docstring), and its median page
    faults (first touches of fresh memory, ~2.7 us each where this was written)."""
    span = (0, n, 0, 0)
    matrix = np.empty(2 * n)
    predictions = np.empty((n, 2))
    X = runtime.input_matrix(_targets(kernel, n, 0), ("r", "r"), (0, 1), span)
    assert X is not None
    Y = sur.predict(X)
    row0 = {0: tuple(Y[0].tolist())}  # the exact answer of row 0, which the batch stores too

    def original(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        f = kernel.inversek2j
        for i in range(n):
            t1[i], t2[i] = f(xs[i], ys[i])

    def patched(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        got = runtime.batch(sur, kernel.inversek2j, "range", range(n), (xs, ys), ("r", "r"), inputs=(0, 1),
                            out=(t1, t2), n_out=2)
        assert got is not None, "the batch refused the loop"

    def conversion(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        runtime.input_matrix((xs, ys), ("r", "r"), (0, 1), span, into=matrix)

    def conversion_fromiter(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        XT = matrix.reshape(2, n)
        for lo in range(0, n, 4096):  # in row blocks, as the runtime converts (no fresh pages)
            hi = min(n, lo + 4096)
            XT[0, lo:hi] = np.fromiter(xs[lo:hi], float, hi - lo)
            XT[1, lo:hi] = np.fromiter(ys[lo:hi], float, hi - lo)

    def reading_only(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        sum(xs)
        sum(ys)

    def store(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        runtime.store_rows((t1, t2), "index", span, Y, row0, 2)

    def predict(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        sur.predict(X, out=predictions)

    def guard(xs: list[float], ys: list[float], t1: list[float], t2: list[float]) -> None:
        good = runtime.inside_box(sur, X)
        good &= np.isfinite(Y[:, 0])
        good &= np.isfinite(Y[:, 1])

    fns: dict[str, Callable[[list[float], list[float], list[float], list[float]], None]] = {
        "original": original, "patched": patched, "conversion": conversion,
        "conversion_fromiter": conversion_fromiter, "reading_only": reading_only, "store": store,
        "predict": predict, "guard": guard}
    samples: dict[str, list[float]] = {k: [] for k in PARTS}
    faults: dict[str, list[int]] = {k: [] for k in PARTS}  # page faults (first touches of fresh memory)
    for r in range(rounds):
        order = PARTS[r % len(PARTS):] + PARTS[:r % len(PARTS)]  # rotate: no part always runs first
        for name in order:
            xs, ys = _targets(kernel, n, 1000 * r + len(samples[name]) + 1)
            t1, t2 = [0.0] * n, [0.0] * n
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            fns[name](xs, ys, t1, t2)
            samples[name].append((time.perf_counter() - t0) / n)
            faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            del xs, ys, t1, t2
    def med(v: list[Any]) -> float:
        return float(statistics.median(v[1:] if len(v) > 2 else v))  # round 0 warms up

    return {k: med(v) for k, v in samples.items()}, {k: med(v) for k, v in faults.items()}


def _targets(kernel: Any, n: int, seed: int) -> tuple[list[float], list[float]]:
    xs, ys = kernel.make_targets(n, seed)
    return xs, ys


def ceilings(m: dict[str, float]) -> dict[str, float]:
    """original / (conversion + store + predict + guard), for each way of converting."""
    rest = m["store"] + m["predict"] + m["guard"]
    return {"numpy (sound)": m["original"] / (m["conversion"] + rest),
            "np.fromiter (unsound)": m["original"] / (m["conversion_fromiter"] + rest),
            "reading only": m["original"] / (m["reading_only"] + rest)}


def render(result: dict[str, Any]) -> str:
    m, pf = result["per_row"], result["page_faults"]
    ns = {k: f"{v * 1e9:.1f}" for k, v in m.items()}
    rows = [[label, ns[k], f"{pf[k]:.0f}", speed] for k, label, speed in (
        ("original", "original loop", "-"),
        ("patched", "patched loop (regionx.runtime.batch)", f"{m['original'] / m['patched']:.2f}x"),
        ("conversion", "conversion, as the runtime does it (np.array)", ""),
        ("conversion_fromiter", "conversion by np.fromiter (unsound: parses strings)", ""),
        ("reading_only", "reading every input float once (sum)", ""),
        ("store", "store, as the runtime does it (tolist, slice assignments)", ""),
        ("predict", "predict", ""),
        ("guard", "guard (box, finite)", ""))]
    rows += [[f"ceiling, conversion {k}", f"{m['original'] / v * 1e9:.1f}", "", f"{v:.2f}x"]
             for k, v in result["ceilings"].items()]
    mach = result["machine"]
    return "\n".join([
        "# How fast the batched inverse-kinematics loop can get",
        "",
        f"`for i in range({result['rows']}): t1[i], t2[i] = inversek2j(xs[i], ys[i])` on the program's own lists",
        f"(benchmarks/kernels/inversek2j.py); network {result['network']}; medians of {result['rounds']} rotated rounds,",
        "every part timed right after fresh targets are made. A ceiling is the original loop's time over the sum",
        "of the parts a batch cannot skip (conversion + store + predict + guard).",
        C.machine_line(mach),
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
    for k, v in per_row.items():
        print(f"{k:>20}: {v * 1e9:7.1f} ns/row, {faults[k]:.0f} page faults")
    for k, v in result["ceilings"].items():
        print(f"ceiling with conversion {k}: {v:.2f}x")
    print(f"patched loop: {per_row['original'] / per_row['patched']:.2f}x")
    out_dir = args.out or C.RESULTS
    C.write_json(os.path.join(out_dir, "ik_ceiling.json"), result)
    C.write_text(os.path.join(out_dir, "ik_ceiling.md"), render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
