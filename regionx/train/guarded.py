"""The learned guard step of the search (docs/design.md, "Learned guard"): a network that misses
the target alone is refined under a robust loss, then given a guard (regionx.guard) calibrated so
that the program meets the target."""

from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np

from regionx import compile as rxcompile
from regionx import guard as rxguard
from regionx.criterion import lower_bound
from regionx.train.budget import MEASURE_SECONDS, Ledger
from regionx.train.data import _Context
from regionx.train.measure import _compile_to, _measure, _Trained
from regionx.train.metrics import (BATCH_ROWS, CALL_ROWS, TIE_BAND, _program_time, accept_mask, denormalise, meets,
                                   residual_weights)
from regionx.types import GuardInfo

GUARD_CALL_FIXED, GUARD_CALL_PER_MAC = 0.6e-6, 30e-9  # a-priori guard cost (regionx.compile's cost model)
GUARD_ROW_FIXED, GUARD_ROW_PER_MAC = 0.05e-6, 2e-9
ROBUST_SECONDS = 15.0  # nominal seconds of Cauchy-loss refinement before a guard is learned
MIN_GUARD_GAIN = 1.25  # a guard is learned only if a perfect one would make the program this much faster
GUARD_DOSE = 30.0  # nominal seconds one guard attempt takes (robust refinement + fitting + measuring)
# What fitting, calibrating and timing one guard is charged, in nominal seconds (a constant, not
# the clock, so that the budget left, and what the search does with it, repeats under a seed):
# each score topology's fit (regionx.guard.FIT_SECONDS) plus compiling and timing the guarded module.
GUARD_NOMINAL = rxguard.FIT_SECONDS * len(rxguard.GUARD_TOPOLOGIES) + MEASURE_SECONDS


def perfect_guard_time(ctx: _Context, entry: _Trained) -> float:
    """What one answer would cost with a perfect guard, one sending exactly the network's misses
    to the exact code (network + guard's fixed cost + miss share x exact time): a lower bound."""
    per_call = ctx.select_by == "call"
    base = entry.row.time_per_call if per_call else entry.row.time_per_element
    floor = GUARD_CALL_FIXED if per_call else GUARD_ROW_FIXED
    return base + floor + (1.0 - entry.row.accuracy) * entry.row.exact_time_per_call


def guard_phase(ctx: _Context, trained: list[_Trained], work: str, ledger: Ledger, *, budgeted: bool) -> list[_Trained]:
    """After the candidates are trained: learned guards for those that missed the target, most
    promising first (by `perfect_guard_time`), while one could still beat the fastest program that
    meets the target. Deferred rather than per candidate so that a slower network meeting the
    target alone is found first: on Newton without accept=, guarding each miss as it came spent
    the budget before 16x16 (99.45% alone) was trained, and a guarded 8x5 ran at 3.4x instead.

    Whether a candidate could still beat the best is judged by its network and the guard's fixed
    cost alone (as if the robust refinement and the guard left nothing to the exact code): its
    accuracy before the robust refinement says little (pipeflow's 8x5: 53% of validation rows
    before, 90% after). `budgeted`: with a winner, each attempt needs GUARD_DOSE of the budget;
    without one, attempts go on past the budget (the user gets no surrogate otherwise) until the
    wall-clock limit (`Ledger.over_wall`)."""
    if ctx.guard == "off":
        return trained
    best = min((_program_time(t.row, ctx.select_by) for t in trained if meets(t.row, ctx.target)), default=math.inf)
    missed = sorted((i for i, t in enumerate(trained) if not meets(t.row, ctx.target)),
                    key=lambda i: perfect_guard_time(ctx, trained[i]))
    for i in missed:
        entry = trained[i]
        if _network_time(ctx, entry) >= best * (1.0 - TIE_BAND):
            entry.extra = {**entry.extra, "guard_problem": "could not beat the program that met the target"}
            continue
        if ledger.over_wall() or (budgeted and best < math.inf and ledger.left() < GUARD_DOSE):
            entry.extra = {**entry.extra, "guard_problem": "no budget left for a guard"}
            continue
        entry = _guarded(ctx, entry, os.path.join(work, f"guard_{i}"), ledger)
        trained[i] = entry
        if meets(entry.row, ctx.target):
            entry.candidate.status = "met target with a learned guard"
            ledger.emit("met", entry.candidate.label, detail=f"with a guard, lower bound {entry.row.program_accuracy_lcb:.2%}")
            best = min(best, _program_time(entry.row, ctx.select_by))
    return trained


def _network_time(ctx: _Context, entry: _Trained) -> float:
    """The network's own time per answer plus the guard's fixed cost: what a guarded program costs
    at least."""
    per_call = ctx.select_by == "call"
    base = entry.row.time_per_call if per_call else entry.row.time_per_element
    return base + (GUARD_CALL_FIXED if per_call else GUARD_ROW_FIXED)


def _robust(ctx: _Context, entry: _Trained, sub: str, ledger: Ledger) -> _Trained:
    """`entry` refined under the Cauchy loss (regionx.refine.robust_lm, residuals in units of the
    tolerance) when that puts more validation rows within tolerance: least squares makes a network
    ring around what it cannot follow (a jump, a kink) and miss everywhere; the robust loss lets it
    give up on that band, which the guard then sends to the exact code."""
    from regionx import refine as rxrefine

    t0 = time.perf_counter()
    ledger.emit("robust", entry.candidate.label, detail=f"{ROBUST_SECONDS:.0f} s of Cauchy-loss refinement")
    Xt, Yt = ctx.train_rows()
    w = residual_weights(Yt, ctx.criterion, ctx.transform, ctx.y_scale, absolute=True)
    if w is None:
        return entry
    Xtn, Ytn = ctx.normalised(Xt, Yt)
    layers = entry.result["layers"]
    spec = rxrefine.NetSpec.of(layers)
    iterations = rxrefine.iteration_budget("lm", spec.n_params, Ytn.size, ROBUST_SECONDS)
    with rxrefine.single_threaded_blas():
        theta, info = rxrefine.robust_lm(rxrefine.pack(layers), spec, Xtn, Ytn, w, max_iter=iterations,
                                         deadline=ledger.deadline(ROBUST_SECONDS))
    robust = rxrefine.unpack(theta, spec)

    def val_share(ls: list[tuple[np.ndarray, np.ndarray, str]]) -> float:
        pred = denormalise(rxrefine.predict(rxrefine.pack(ls), spec, ctx.inputs_normalised(ctx.X[ctx.va])),
                           ctx.y_mean, ctx.y_scale, ctx.transform)
        return float(np.mean(ctx.criterion.within(pred, ctx.Y[ctx.va])))

    before, after = val_share(layers), val_share(robust)
    ledger.charge("robust", ROBUST_SECONDS, time.perf_counter() - t0, entry.candidate.label, iterations=info["iterations"],
                  val_accuracy_before=before, val_accuracy_after=after)
    if after <= before:
        return entry
    result = {**entry.result, "layers": robust}
    row, extra = _measure(ctx, robust, result, sub + "_robust", ledger, entry.candidate.label)
    return _Trained(entry.candidate, result, row, extra, doses=[*entry.doses, {
        "stage": "robust", "refine_seconds": ROBUST_SECONDS, "nominal_s": ROBUST_SECONDS, "optimizer": "lm (Cauchy loss)",
        "val_accuracy_before": before, "val_accuracy_after": after, "still_improving": False,
        "test_accuracy": row.accuracy, "test_accuracy_lcb": row.program_accuracy_lcb}], layers_changed=True)


def _guarded(ctx: _Context, entry: _Trained, sub: str, ledger: Ledger) -> _Trained:
    """`entry` with a learned guard (regionx.guard) when it misses the target alone and one can be
    calibrated to meet it; the guard's row replaces the network's (effective accuracy and times:
    an answer is used when the box, accept= and the guard all let it through). Unchanged otherwise,
    with the reason in entry.extra["guard_problem"]."""
    if ctx.guard == "off" or meets(entry.row, ctx.target):
        return entry
    exact = entry.row.exact_time_per_call
    per_call = ctx.select_by == "call"
    base = entry.row.time_per_call if per_call else entry.row.time_per_element
    # if even a perfect guard would not gain MIN_GUARD_GAIN over the exact code, skip (judged before
    # the robust refinement, which costs ROBUST_SECONDS: a network that far off is a poor bet)
    if perfect_guard_time(ctx, entry) * MIN_GUARD_GAIN >= exact:
        entry.extra = {**entry.extra, "guard_problem": f"even a perfect guard would make the program less than "
                       f"{MIN_GUARD_GAIN:g}x faster than the exact code ({1.0 - entry.row.accuracy:.1%} of the answers "
                       "would fall back)"}
        return entry
    meta, label = ctx.meta, entry.candidate.label
    t0 = time.perf_counter()
    entry = _robust(ctx, entry, sub, ledger)
    ledger.emit("guard", label, detail="learning where the network misses")
    layers = entry.result["layers"]
    module = rxcompile.load_module(_compile_to(ctx, layers, sub))
    Xt, Yt = ctx.train_rows()
    X_va, Y_va, X_te, Y_te = ctx.X[ctx.va], ctx.Y[ctx.va], ctx.X[ctx.te], ctx.Y[ctx.te]
    ratio = ctx.criterion.error_ratio
    pred_te = module.predict(X_te)
    good_te = ctx.criterion.within(pred_te, Y_te)
    accepted = np.ones(len(X_te), dtype=bool)
    if meta.accept and entry.extra.get("problem") is None:
        accepted, _vec = accept_mask(meta.accept, X_te, pred_te, meta.inputs, meta.outputs)

    def cost(hidden: tuple[int, ...], answered: float) -> float:
        sizes = (Xt.shape[1], *hidden, 1)
        macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))  # as compile.network_macs counts them
        g = GUARD_CALL_FIXED + GUARD_CALL_PER_MAC * macs if per_call else GUARD_ROW_FIXED + GUARD_ROW_PER_MAC * macs
        return base + g + (1.0 - answered) * exact

    n_fit = min(len(Xt), rxguard.FIT_ROWS)
    fit = rxguard.learn_guard(X_fit=Xt[:n_fit], ratio_fit=ratio(module.predict(Xt[:n_fit]), Yt[:n_fit]),
                              X_sel=X_va, ratio_sel=ratio(module.predict(X_va), Y_va), X_cal=X_te,
                              fine_cal=good_te | ~accepted, target=ctx.target, seed=ctx.seed, cost=cost)
    if isinstance(fit, rxguard.GuardMiss):
        ledger.charge("guard", GUARD_NOMINAL, time.perf_counter() - t0, label, guard=None, problem=fit.reason)
        entry.extra = {**entry.extra, "guard_problem": fit.reason}
        return entry
    guarded = rxcompile.load_module(_compile_to(ctx, layers, sub, fit))
    used = accepted & guarded.guard(X_te)
    t_guard_call = rxcompile.time_per_call(guarded.guard_one, rxcompile.call_args(X_te[:CALL_ROWS], meta.inputs), repeats=5)
    t_guard_row = rxcompile.time_per_element(guarded.guard, X_te, rows=BATCH_ROWS, repeats=5)
    check_call = float(entry.extra.get("accept_time_per_call") or 0.0)
    check_row = float(entry.extra.get("accept_time_per_element") or 0.0)
    fallback = 1.0 - float(np.mean(used))
    program_good = int(np.count_nonzero(~used | good_te))
    info = GuardInfo(hidden=fit.hidden, threshold=fit.threshold, calibration_rows=fit.calibration_rows,
                     guard_rate=float(np.mean(guarded.guard(X_te))), time_per_call=t_guard_call,
                     time_per_element=t_guard_row)
    lcb = lower_bound(program_good, len(X_te))
    row = dataclasses.replace(
        entry.row, accept_rate=float(np.mean(used)), effective_accuracy=program_good / max(len(X_te), 1),
        effective_accuracy_lcb=lcb, meets_target=lcb >= ctx.target, guard=info,
        effective_time_per_call=entry.row.time_per_call + check_call + t_guard_call + fallback * exact,
        effective_time_per_element=entry.row.time_per_element + check_row + t_guard_row + fallback * exact)
    ledger.charge("guard", GUARD_NOMINAL, time.perf_counter() - t0, label, guard=fit.hidden,
                  guard_rate=info.guard_rate, effective_accuracy=row.effective_accuracy, accuracy_lcb=lcb)
    return _Trained(entry.candidate, entry.result, row, {**entry.extra, "guard_fit": fit, "guard": rxguard.describe(fit)},
                    doses=entry.doses, layers_changed=entry.layers_changed)
