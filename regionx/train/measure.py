"""A network compiled to the module that will run, and measured: with random weights before
training (what each candidate costs), and trained (accuracy on the test split, times, the exact
code re-timed beside them)."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from regionx import compile as rxcompile
from regionx import guard as rxguard
from regionx.train.budget import TIMING_ROUNDS, TIMING_SECONDS, Candidate, Ledger
from regionx.train.data import _Context
from regionx.train.metrics import accept_metrics, error_metrics
from regionx.types import TopologyResult

# The generated predict() runs hidden layers in float32: 2-4x faster on 10k-row batches (numpy's
# float32 tanh is SIMD-vectorised), relative deviation from float64 ~2e-5, far below any tolerance;
# accuracy is always measured on the compiled module, so it includes this.
BATCH_DTYPE = "float32"


@dataclass
class _Trained:
    """A trained candidate: its training result (regionx.train.fit._train_topology), its measured row,
    and what the search did with it."""

    candidate: Candidate
    result: dict[str, Any]
    row: TopologyResult
    extra: dict[str, Any]
    doses: list[dict[str, Any]] = field(default_factory=list)
    layers_changed: bool = False  # refined after Keras saved its model (model.keras is rebuilt)


def _compile_to(ctx: _Context, layers: list[tuple[np.ndarray, np.ndarray, str]], out: str,
                guard: rxguard.GuardFit | None = None) -> str:
    """`layers` compiled into `out` with the search's scaling, input box and output transform (and
    `guard`, a learned guard, beside it); the generated module's path."""
    meta = ctx.meta
    return rxcompile.compile_model(layers, ctx.x_mean, ctx.x_scale, ctx.y_mean, ctx.y_scale, region_name=meta.region_name,
                                   inputs=meta.inputs, outputs=meta.outputs, lower=ctx.lower, upper=ctx.upper, out_dir=out,
                                   out_transform=ctx.transform, batch_dtype=BATCH_DTYPE, log_columns=ctx.log_cols,
                                   guard=None if guard is None else (rxguard.folded(guard), guard.threshold))


def _random_layers(hidden: tuple[int, ...], activation: str, d_in: int, d_out: int,
                   rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """A network of this shape with random weights: what it costs to run does not depend on them."""
    sizes = [d_in, *hidden, d_out]
    return [(rng.normal(size=(a, b)) / math.sqrt(a), rng.normal(size=b) * 0.1, activation if k < len(sizes) - 2 else "linear")
            for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]


def _time_candidates(ctx: _Context, candidates: list[Candidate], form: str, work: str, ledger: Ledger) -> float:
    """Time every candidate's compiled module with random weights (per call, and per row of the
    batched loop when that is the form that runs) and the exact code around them; returns the
    exact code's seconds per call.

    Measured in TIMING_ROUNDS rotating round-robin rounds, keeping each candidate's fastest: a burst of
    load from other work then slows one round of every candidate, not all rounds of one (on this
    project's shared 2-core machine single measurements of the same module differed by up to 40%
    between runs; the fastest of three interleaved rounds by a few percent)."""
    rng = np.random.default_rng(ctx.seed)
    d_in, d_out = ctx.X.shape[1], ctx.Y.shape[1]
    rows = ctx.X[ctx.te]
    modules = []
    for k, c in enumerate(candidates):
        path = _compile_to(ctx, _random_layers(c.hidden, c.activation, d_in, d_out, rng), os.path.join(work, f"timing_{k}"))
        modules.append(rxcompile.load_module(path))
    walls = [0.0] * len(candidates)
    exact_before = ctx.exact_settled()
    if modules:  # a first measurement in a process reads slow (caches, allocator): not a candidate's
        ctx.timer(modules[0], rows, "loop" if form == "loop" else "call")
    for r in range(TIMING_ROUNDS):
        # each round starts one candidate later: the first timing of a round reads slow (the 8-tanh
        # module, always first, timed 20-30% slower than 16 and 8x5 there, level with them rotated)
        for j in range(len(candidates)):
            k = (r + j) % len(candidates)
            c, module = candidates[k], modules[k]
            ledger.emit("timing", c.label, r * len(candidates) + j, TIMING_ROUNDS * len(candidates))
            t0 = time.perf_counter()
            t_call = float(ctx.timer(module, rows, "call"))
            c.time_per_call = t_call if c.time_per_call is None else min(c.time_per_call, t_call)
            if form == "loop":
                t_row = float(ctx.timer(module, rows, "loop"))
                c.time_per_row = t_row if c.time_per_row is None else min(c.time_per_row, t_row)
            walls[k] += time.perf_counter() - t0
    for c, wall in zip(candidates, walls):
        ledger.charge("timing", TIMING_SECONDS, wall, c.label, time_per_call=c.time_per_call, time_per_row=c.time_per_row)
    ledger.emit("timing", None, TIMING_ROUNDS * len(candidates), TIMING_ROUNDS * len(candidates))
    return 0.5 * (exact_before + ctx.exact_now()) if ctx.exact_timer is not None else exact_before


def _measure(ctx: _Context, layers: list[tuple[np.ndarray, np.ndarray, str]], res: dict[str, Any], sub: str,
             ledger: Ledger, label: str) -> tuple[TopologyResult, dict[str, Any]]:
    """Compile `layers` and measure the module that will run: accuracy on the test split by the
    criterion (with its lower bound), time per call and per row of the batched loop, the exact
    code re-timed around them, and with accept the program's effective values."""
    meta = ctx.meta
    module = rxcompile.load_module(_compile_to(ctx, layers, sub))
    X_te, Y_te = ctx.X[ctx.te], ctx.Y[ctx.te]
    pred = module.predict(X_te)
    m = error_metrics(pred, Y_te, ctx.criterion)
    exact_before = ctx.exact_settled()
    t_call = float(ctx.timer(module, X_te, "call"))
    t_elem = float(ctx.timer(module, X_te, "loop"))
    t_exact = 0.5 * (exact_before + ctx.exact_now()) if ctx.exact_timer is not None else exact_before
    am: dict[str, Any] = {}
    if meta.accept:
        am = accept_metrics(meta.accept, X_te, pred, Y_te, meta.inputs, meta.outputs, ctx.criterion,
                            exact_time_per_call=t_exact, time_per_call=t_call, time_per_element=t_elem)
    program_lcb = m["accuracy_lcb"] if am.get("effective_accuracy") is None else am["effective_accuracy_lcb"]
    row = TopologyResult(
        hidden=tuple(res["hidden"]), activation=res["activation"], train_time=float(res["train_time"]),
        steps=int(res["steps"]), epochs=int(res["epochs"]), loss=m["loss"], mean_error=m["mean_error"],
        max_error=m["max_error"], accuracy=m["accuracy"], time_per_call=t_call, time_per_element=t_elem,
        exact_time_per_call=t_exact, meets_target=program_lcb >= ctx.target,
        accept_rate=am.get("accept_rate"), effective_accuracy=am.get("effective_accuracy"),
        effective_time_per_call=am.get("effective_time_per_call"),
        effective_time_per_element=am.get("effective_time_per_element"),
        n_test=int(m["n"]), accuracy_lcb=m["accuracy_lcb"], effective_accuracy_lcb=am.get("effective_accuracy_lcb"),
    )
    return row, am
