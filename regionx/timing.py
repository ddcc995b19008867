"""Timing of generated surrogate modules: per call of predict_one, per row of predict, per row of
the batched map loop the rewrite runs (`time_per_row`, through regionx.runtime). Best of a few
repeats, each long enough to average out the clock; used by the search (regionx.train) and the
rewrite's profitability check."""

from __future__ import annotations

import math
import random
import time
from typing import Any, Sequence

import numpy as np

from regionx.types import VarSpec


def call_args(X: np.ndarray, inputs: Sequence[VarSpec]) -> list[tuple[Any, ...]]:
    """Split flattened rows into predict_one argument tuples: Python floats for scalars,
    arrays of the declared shape for array inputs."""
    rows: list[tuple[Any, ...]] = []
    X = np.asarray(X, dtype=np.float64)
    for r in X:
        args: list[Any] = []
        k = 0
        for v in inputs:
            if not v.shape:
                args.append(float(r[k]))
            else:
                args.append(r[k:k + v.size].reshape(v.shape).copy())
            k += v.size
        rows.append(tuple(args))
    return rows


def time_per_call(fn: Any, args: Sequence[tuple[Any, ...]], *, repeats: int = 7, budget: float = 0.02) -> float:
    """Median seconds per call of ``fn(*a)`` over `args` (cycled), `repeats` timed runs of about
    `budget` seconds each (time.perf_counter)."""
    import time

    n_args = len(args)
    # calibrate the number of calls per run
    calls = n_args
    while True:
        t0 = time.perf_counter()
        for i in range(calls):
            fn(*args[i % n_args])
        dt = time.perf_counter() - t0
        if dt >= budget / 4 or calls >= 1 << 22:
            break
        calls *= 4
    calls = max(n_args, int(calls * budget / max(dt, 1e-9)))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(calls):
            fn(*args[i % n_args])
        samples.append((time.perf_counter() - t0) / calls)
    return float(np.median(samples))


def time_per_element(fn: Any, X: np.ndarray, *, rows: int = 4096, repeats: int = 7, budget: float = 0.02) -> float:
    """Median seconds per row of ``fn(X)`` on a batch of `rows` rows (X tiled or cut to size)."""
    import time

    X = np.asarray(X, dtype=np.float64)
    reps = int(math.ceil(rows / max(len(X), 1)))
    batch = np.ascontiguousarray(np.tile(X, (reps, 1))[:rows])
    t0 = time.perf_counter()
    fn(batch)
    dt = max(time.perf_counter() - t0, 1e-9)
    loops = max(1, int(budget / dt))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _i in range(loops):
            fn(batch)
        samples.append((time.perf_counter() - t0) / (loops * rows))
    return float(np.median(samples))


def time_per_row(module: Any, X: np.ndarray, *, rows: int = 4096, repeats: int = 7, budget: float = 0.02) -> float:
    """Median seconds per row of the batched map loop a rewritten program runs (`regionx.runtime.batch`,
    the code the rewrite copies into patched files): ``for i in range(rows): out[i] = f(C1[i], ..)``
    over lists of Python floats (X's rows, tiled or cut to `rows`), so the time counts converting
    every column, the guard, the predict, the exact code's row 0 and the stores into a list; not
    a bare predict. A result of shape (k,) is a k-tuple stored into k lists; a module with
    array-shaped inputs (or other outputs) is timed by its predict alone."""
    import time

    from regionx import runtime

    X = np.asarray(X, dtype=np.float64)
    outputs = tuple(getattr(module, "OUTPUT_SHAPES", ((),)))
    if any(s for s in getattr(module, "INPUT_SHAPES", ())) or len(outputs) != 1 or len(outputs[0]) > 1:
        return time_per_element(module.predict, X, rows=rows, repeats=repeats, budget=budget)
    reps = int(math.ceil(rows / max(len(X), 1)))
    batch = np.tile(X, (reps, 1))[:rows]
    n_out = int(outputs[0][0]) if outputs[0] else 1  # a tuple result: one column per element
    how = ["r"] * batch.shape[1]
    inputs = tuple(range(batch.shape[1]))

    def exact(*args: Any) -> Any:
        return 0.0 if n_out == 1 else (0.0,) * n_out

    draw = random.Random(0).random

    def fresh() -> tuple[list[list[float]], Any]:
        """New lists, as a program has them: floats created row by row by arithmetic (as
        ``rng.uniform(lo, hi)`` makes them: temporaries freed between them, so a column's elements
        lie apart in memory; lists from ``tolist`` lie closer and convert ~25% faster than a
        program's), not yet read by anything, and new output lists."""
        columns: list[list[float]] = [[] for _ in range(batch.shape[1])]
        for row in batch.tolist():
            for column, value in zip(columns, row):
                column.append(value + 0.0 * draw())
        targets: Any = [0.0] * rows if n_out == 1 else tuple([0.0] * rows for _ in range(n_out))
        return columns, targets

    # every timed call runs on fresh data: a loop in a program batches each list once, so a
    # warm cache from repeating the same call would flatter the batch (by ~1.5x, measured)
    samples = []
    for _ in range(max(repeats, 1) * 3):
        columns, targets = fresh()
        t0 = time.perf_counter()
        runtime.batch(module, exact, "range", range(rows), columns, how, inputs=inputs, out=targets, n_out=n_out)
        samples.append((time.perf_counter() - t0) / rows)
    return float(np.median(samples))
