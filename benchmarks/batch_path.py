"""Where the time of a batched map loop goes, per row, next to the floor it cannot go below.

Usage: .venv/bin/python benchmarks/batch_path.py [--quick] [--hidden 16,16] [--activation tanh]

For batch sizes 1k / 10k / 100k and 1-5 input columns, a compiled surrogate (a random dense
network compiled by regionx.compile, float32 batch path) answers a map loop
``for i in range(n): out[i] = f(C1[i], ..., Ck[i])`` over lists of Python floats, as the
patched program runs it (regionx.runtime.batch, the code the rewrite copies into patched files).

The floor is the sum of what no implementation of that loop can skip, each timed on its own:
  conversion  every input column from a list to a float64 array (np.array, which also tells
              numbers from strings, on 4,096-row slices: a whole column's temporaries are fresh
              pages, page-faulted on every batch),
  guard       every column compared with the trained box,
  predict     the compiled network on the whole batch (module.predict),
  store       the answers back into the list (tolist and slice assignments, 4,096 rows at a time).
The whole loop is the rewritten loop end to end (argument checks, the matrix, the exact code's
row 0, the stores). Timings are medians of interleaved rounds (parts and whole side by side in
the same round); only ratios of numbers measured in one run are reported.

Also measured: inputs that already are float arrays (conversion skipped), and an ndarray out.
Writes benchmarks/results/batch_path.{json,md} (with --quick: into --out, default a temp dir).
"""

from __future__ import annotations

import argparse
import os
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
from regionx import compile as rxcompile  # noqa: E402
from regionx import runtime  # noqa: E402
from regionx.types import VarSpec  # noqa: E402

SIZES = (1000, 10000, 100000)
COLUMNS = (1, 2, 3, 4, 5)
QUICK = {"sizes": (1000, 10000), "columns": (1, 3), "rounds": 3, "budget": 0.02}
FULL = {"sizes": SIZES, "columns": COLUMNS, "rounds": 9, "budget": 0.05}


def surrogate(d_in: int, hidden: tuple[int, ...], activation: str, directory: str, seed: int = 0, *,
              d_out: int = 1, lower: Any = None, upper: Any = None) -> Any:
    """A compiled module for a random network d_in -> hidden -> d_out on the box [lower, upper]
    (default [0, 1]^d_in): its predict costs what a trained network of that shape costs."""
    rng = np.random.default_rng(seed)
    widths = [d_in, *hidden, d_out]
    layers = [(rng.normal(size=(widths[i], widths[i + 1])) / np.sqrt(widths[i]), rng.normal(size=widths[i + 1]) * 0.1,
               activation if i < len(widths) - 2 else "linear") for i in range(len(widths) - 1)]
    lo = np.zeros(d_in) if lower is None else np.asarray(lower, dtype=float)
    hi = np.ones(d_in) if upper is None else np.asarray(upper, dtype=float)
    mean, scale = (np.zeros(d_in), np.ones(d_in)) if lower is None else ((lo + hi) / 2, (hi - lo) / 2)
    outputs = (VarSpec("y"),) if d_out == 1 else tuple(VarSpec(f"y{k}") for k in range(d_out))
    path = rxcompile.compile_model(
        layers, mean, scale, np.zeros(d_out), np.ones(d_out), region_name=f"bench{d_in}",
        inputs=tuple(VarSpec(f"x{k}") for k in range(d_in)), outputs=outputs,
        lower=lo, upper=hi, out_dir=os.path.join(directory, f"d{d_in}"),
        scalar_path=False, batch_dtype="float32")
    return rxcompile.load_module(path)


def per_row(fn: Callable[[], Any], n: int, budget: float) -> float:
    """Seconds per row of one call of fn (a call, or as many as fill `budget`)."""
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    loops = max(1, int(budget / max(once, 1e-7)))
    t0 = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - t0) / loops / n


def exact_stub(*args: float) -> float:
    """Row 0's exact call (the batch runs it to learn the element type)."""
    return float(sum(args))


def measure(mod: Any, n: int, d: int, rounds: int, budget: float, seed: int = 1) -> dict[str, float]:
    """Median per-row seconds of every part, the floor, and the whole loop (lists and arrays in)."""
    rng = np.random.default_rng(seed)
    # lists of floats created row by row, as a program builds them in one loop (a column's floats
    # lie apart in memory: converting them costs what it costs in a real program)
    table = rng.uniform(0.0, 1.0, (n, d)).tolist()
    cols = [[row[k] for row in table] for k in range(d)]
    arrays = [np.array(c) for c in cols]
    X = np.empty((n, d), order="F")
    for k, c in enumerate(cols):
        X[:, k] = c
    Y = mod.predict(X)
    row0 = {0: float(Y[0, 0])}  # row 0's exact answer, which the stores type every row after
    out = [0.0] * n
    out_array = np.zeros(n)
    how = ["r"] * d
    inputs = tuple(range(d))

    def conversion() -> None:
        for lo in range(0, n, 4096):  # row blocks: a whole column's temporaries page-fault (runtime.input_matrix)
            for c in cols:
                np.array(c[lo:lo + 4096])

    def guard() -> None:
        runtime.inside_box(mod, X)

    def predict() -> None:
        mod.predict(X)

    def store() -> None:
        runtime.store_list(out, 0, Y[:, 0], row0, 0, 1)  # tolist and slice assignments, 4,096 rows at a time

    def whole() -> None:
        runtime.batch(mod, exact_stub, "range", range(n), cols, how, inputs=inputs, out=out)

    def whole_arrays() -> None:
        runtime.batch(mod, exact_stub, "range", range(n), arrays, how, inputs=inputs, out=out)

    def whole_array_out() -> None:
        runtime.batch(mod, exact_stub, "range", range(n), arrays, how, inputs=inputs, out=out_array)

    parts = {"conversion": conversion, "guard": guard, "predict": predict, "store": store, "whole": whole,
             "whole_arrays": whole_arrays, "whole_array_out": whole_array_out}
    samples: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(rounds):
        for name, fn in parts.items():  # interleaved: every part sees the same machine load
            samples[name].append(per_row(fn, n, budget))
    got = {k: statistics.median(v) for k, v in samples.items()}
    got["floor"] = got["conversion"] + got["guard"] + got["predict"] + got["store"]
    got["floor_arrays"] = got["guard"] + got["predict"] + got["store"]
    return got


def run(cfg: dict[str, Any], out_dir: str, hidden: tuple[int, ...], activation: str) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in cfg["columns"]:
            mod = surrogate(d, hidden, activation, tmp)
            for n in cfg["sizes"]:
                m = measure(mod, n, d, cfg["rounds"], cfg["budget"])
                rows.append({"rows": n, "columns": d, **{k: v for k, v in m.items()},
                             "ratio": m["whole"] / m["floor"], "ratio_arrays": m["whole_arrays"] / m["floor_arrays"]})
                print(f"n={n:6d} cols={d}: conversion {m['conversion'] * 1e9:6.1f}  guard {m['guard'] * 1e9:5.1f}  "
                      f"predict {m['predict'] * 1e9:6.1f}  store {m['store'] * 1e9:5.1f}  = floor "
                      f"{m['floor'] * 1e9:6.1f} ns/row;  whole loop {m['whole'] * 1e9:6.1f} "
                      f"({m['whole'] / m['floor']:.2f}x floor);  arrays in {m['whole_arrays'] * 1e9:6.1f} "
                      f"({m['whole_arrays'] / m['floor_arrays']:.2f}x)", flush=True)
    label = "x".join(map(str, hidden)) + f" {activation}"
    result = {"machine": C.machine(), "network": label, "config": {k: list(v) if isinstance(v, tuple) else v
                                                                     for k, v in cfg.items()}, "rows": rows,
              "worst_ratio": max(r["ratio"] for r in rows), "worst_ratio_arrays": max(r["ratio_arrays"] for r in rows)}
    C.write_json(os.path.join(out_dir, "batch_path.json"), result)
    C.write_text(os.path.join(out_dir, "batch_path.md"), render(result))
    return result


def render(result: dict[str, Any]) -> str:
    head = ["rows", "cols", "conversion", "guard", "predict", "store", "floor", "whole loop", "whole / floor",
            "arrays in", "/ floor w/o conversion", "ndarray out"]
    table = [[f"{r['rows']:,}", r["columns"], *[f"{r[k] * 1e9:.1f}" for k in ("conversion", "guard", "predict", "store",
                                                                              "floor", "whole")],
              f"{r['ratio']:.2f}x", f"{r['whole_arrays'] * 1e9:.1f}", f"{r['ratio_arrays']:.2f}x",
              f"{r['whole_array_out'] * 1e9:.1f}"] for r in result["rows"]]
    m = result["machine"]
    return "\n".join([
        "# The batched map path, per row (ns)",
        "",
        f"Network {result['network']} (float32 batch path), `for i in range(n): out[i] = f(C1[i], ..)` over lists of",
        "floats, answered by `regionx.runtime.batch` as a patched program runs it. Floor = conversion + guard +",
        "predict + store, each timed alone; medians of interleaved rounds, parts and whole side by side.",
        f"Machine: {_cpu(m)}, {m.get('cpus', '?')} cores, Python {m.get('python', '?')}, numpy {m.get('numpy', '?')}, "
        f"load average at start {m.get('loadavg_at_start', '?')}.",
        "Command: `.venv/bin/python benchmarks/batch_path.py`",
        "",
        C.md_table(head, table),
        "",
        f"Worst whole-loop / floor: {result['worst_ratio']:.2f}x (lists in), {result['worst_ratio_arrays']:.2f}x (arrays in).",
        "",
    ])


def _cpu(machine: dict[str, Any]) -> str:
    cpu = machine.get("cpu")
    return str(cpu.get("model", "?")) if isinstance(cpu, dict) else str(cpu or machine.get("machine", "?"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a tiny configuration (smoke test)")
    parser.add_argument("--out", default=None, help="directory for batch_path.{json,md}")
    parser.add_argument("--hidden", default="16,16")
    parser.add_argument("--activation", default="tanh")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    out_dir = args.out or (tempfile.mkdtemp() if args.quick else C.RESULTS)
    run(cfg, out_dir, tuple(int(w) for w in args.hidden.split(",")), args.activation)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
