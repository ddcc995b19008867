"""The search itself (`train_dataset`): options and data checked, the candidates timed and ordered,
trained fastest first within the budget (or all of them), the winner selected and written.

Names that tests replace are looked up on the module that defines them (`rxfit._train_topology`,
`rxfit._import_keras`, `rxbudget.default_surrogate_timer`; `_fit_shares` is defined here), so a
test's monkeypatch of that module reaches every caller."""

from __future__ import annotations

import concurrent.futures
import math
import os
import shutil
import tempfile
import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from regionx import compile as rxcompile
from regionx import guard as rxguard
from regionx.criterion import Criterion
from regionx.diagnostics import Diagnostic, make
from regionx.refine import REFINE_METHODS
import regionx.train.budget as rxbudget
import regionx.train.fit as rxfit
from regionx.train.budget import (EXTEND_FACTOR, GROW_GAP, GROW_MAX_ROWS, GROW_SAMPLE_FACTOR, IMPROVING, MAX_ROUNDS,
                                  Grow,
                                  MEASURE_SECONDS,
                                  MIN_DOSE, SPREAD, Candidate, EventFn, Ledger, SurrogateTimer, adam_nominal, plan_dose,
                                  refine_nominal, still_improving, training_order)
from regionx.train.data import MIN_SAMPLES, TARGET_TRANSFORMS, _Context, _Settings, _split, auto_batch_size
from regionx.train.fit import EARLY_STOP_PATIENCE, LEARNING_RATE, REFINE_SECONDS, ProgressFn, _refine_layers
from regionx.train.guarded import guard_phase
from regionx.train.measure import _compile_to, _measure, _time_candidates, _Trained
from regionx.train.metrics import TIE_BAND, _program_time, best_row, denormalise, form_of, meets, select_topology
from regionx.train.report import _data, _fmt_time, _report, _write_json, _write_reports
from regionx.train.topologies import DEFAULT_TOPOLOGIES, HIDDEN_ACTIVATIONS, Topology, _n_weights, topology_label
from regionx.types import Dataset, Manifest, StageResult, TopologyResult, TrainResult

SEARCHES = ("fastest-first", "all")


def train_dataset(dataset: Dataset, out_dir: str, *, topologies: list[Topology] | None = None,
                  tolerance: float | None = None, metric: str | None = None, rtol: float | None = None,
                  atol: float | None = None, target: float = 0.99, epochs: int = 200, seed: int = 0,
                  batch_size: int | None = None, executor: concurrent.futures.Executor | None = None,
                  progress: ProgressFn | None = None, select_by: str = "call", learning_rate: float = LEARNING_RATE,
                  patience: int = EARLY_STOP_PATIENCE, target_transform: str = "auto",
                  exact_timer: Callable[[], float] | None = None, refine: str = "auto",
                  refine_seconds: float = REFINE_SECONDS, search: str = "all", budget: float | None = None,
                  surrogate_timer: SurrogateTimer | None = None,
                  grow: Grow | None = None,
                  events: EventFn | None = None, loop_extra_seconds: float = 0.0, keep_unprofitable: bool = False,
                  guard: str = "auto") -> StageResult[TrainResult]:
    """Search the topologies for the fastest compiled surrogate that meets the accuracy target.

    The criterion (regionx.criterion) is `rtol`/`atol` when either is given, else `tolerance` +
    `metric`, else the dataset's (the region pragma's); a relative tolerance without an atol gets
    its floor from the training outputs' scale. A topology meets `target` when the one-sided 95%
    lower confidence bound of its share of test rows within tolerance does (with an `accept`
    predicate: of the program's share, rejected rows answered by the exact code).

    `search`:

    * "fastest-first" (compile and ``regionx train``): before any training every candidate's
      compiled module is timed with random weights in the form it will run (`select_by` "call":
      per predict_one call; "batch": per row of the batched map loop) by `surrogate_timer`
      (default `default_surrogate_timer`), plus `loop_extra_seconds` per row that the batched
      loop's form adds (`hoisted_loop_cost`). Candidates not faster than the exact code even at
      perfect accuracy are dropped; when none is left the stage fails at once with RX502 and the
      measured numbers, before TensorFlow is even imported (unless `keep_unprofitable`: compile's
      --force, which then trains them fastest first all the same). The rest are trained fastest first
      (`training_order`) within `budget` nominal seconds (see DEFAULT_BUDGET; None: no limit);
      the first that meets the target wins, since every later one is slower. A candidate still
      improving is refined longer, and with `grow(n, weigh)` (n more samples as (X, Y), or None) its
      training split may be doubled (GROW_GAP); when the budget runs out the report says what
      more budget would likely buy.
    * "all": every topology is trained with `epochs` and `refine_seconds` (with an `executor`,
      in parallel), and the fastest that meets the target is chosen (benchmarks' tables).

    Writes into `out_dir`: report.json and report.md (always: every candidate, the search's
    choices and time), and on success manifest.json, model.keras, surrogate_<name>.py and
    weights.npz of the chosen topology. `progress(label, done, total)` is called after every
    epoch (and with done == total when a topology finishes); `events(SearchEvent)` follows the
    search stage by stage. `exact_timer` (seconds per call of the exact region, measured now)
    re-times the exact code beside each surrogate's timings; without it the dataset's time
    (measured while sampling) is used. `refine` picks the second-order refinement after Adam
    (regionx.refine; `refine_seconds` is its first dose per topology). `guard` "auto": once the
    candidates are trained, those that missed the target alone may get a learned guard
    (regionx.guard, `guarded.guard_phase`) calibrated so the program — its accepted answers plus
    the exact code's — meets it; its effective time (predict + guard + fallback share x exact
    time) then decides, as an accept predicate's does. "off": no guard.

    Returns StageResult: "ok" with artifacts {'manifest', 'module', 'report_md', 'report_json',
    'model', 'weights'}; "failed" with RX401 (no topology met `target`; reports still written),
    RX502 (no candidate can be faster than the exact code), RX307 (unusable dataset), RX402
    (TensorFlow unavailable), RX403 (bad topology list) or RX006 (bad option).
    value = TrainResult(rows, chosen row or None, best row or None, search summary, criterion, ...; manifest when ok).
    """
    from regionx import __version__

    meta = dataset.meta
    # precedence: rtol/atol given > tolerance/metric given > the pragma's rtol/atol > its tolerance/metric
    if rtol is None and atol is None and tolerance is None and metric is None:
        rtol, atol = meta.rtol, meta.atol
    shorthand = rtol is None and atol is None
    tolerance = float(meta.tolerance if tolerance is None else tolerance)
    metric = meta.metric if metric is None else metric
    topologies = list(DEFAULT_TOPOLOGIES if topologies is None else topologies)
    failed = (_bad_option(meta, shorthand, metric, tolerance, target, target_transform, epochs, batch_size, refine,
                          refine_seconds, select_by, search, guard, budget) or _bad_topologies(meta, topologies))
    if failed is not None:
        return failed
    X = np.asarray(dataset.X, dtype=np.float64)
    Y = np.asarray(dataset.Y, dtype=np.float64)
    failed = _bad_data(meta, X, Y)
    if failed is not None:
        return failed
    # ---- split, criterion, normalisation ----
    tr, va, te = _split(X.shape[0], seed)
    try:
        criterion = Criterion.resolve(reference=Y[tr], tolerance=tolerance if shorthand else None,
                                      metric=metric if shorthand else None, rtol=rtol, atol=atol)
    except ValueError as exc:
        return _failed(meta, make("RX006", _src(meta), detail=str(exc)))
    ctx = _Context.prepare(dataset, X, Y, (tr, va, te), criterion, target_transform, target=target,
                           exact_timer=exact_timer, timer=surrogate_timer or rxbudget.default_surrogate_timer,
                           select_by=select_by, refine=refine, seed=seed, loop_extra=float(loop_extra_seconds), guard=guard)
    settings = _Settings(epochs, auto_batch_size(len(tr)) if batch_size is None else batch_size, learning_rate, patience,
                         refine_seconds, __version__)
    ledger = Ledger(budget if search == "fastest-first" else None, meta.region_id, events)
    d_in, d_out = X.shape[1], Y.shape[1]
    candidates = [Candidate(i, tuple(int(w) for w in h), a, _n_weights(h, d_in, d_out)) for i, (h, a) in enumerate(topologies)]
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".regionx-train-", dir=out_dir)
    try:
        return _search(ctx, settings, candidates, ledger, search, keep_unprofitable, executor, progress, grow, work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- checks


def _src(meta: Any) -> str:
    return meta.source_path or "<dataset>"


def _failed(meta: Any, diag: Diagnostic) -> StageResult[TrainResult]:
    return StageResult("failed", meta.region_id, (diag,))


def _bad_option(meta: Any, shorthand: bool, metric: str, tolerance: float, target: float, target_transform: str,
                epochs: int, batch_size: int | None, refine: str, refine_seconds: float, select_by: str, search: str,
                guard: str, budget: float | None) -> StageResult[TrainResult] | None:
    """RX006 for the first option out of range (user errors become diagnostics), None when all are fine."""
    problem = None
    if shorthand and metric not in ("rel", "abs"):
        problem = f"metric must be 'rel' or 'abs', not {metric!r}"
    elif shorthand and not (tolerance > 0 and math.isfinite(tolerance)):
        problem = f"tolerance must be positive, not {tolerance!r}"
    elif not (0.0 < target <= 1.0):
        problem = f"target must be in (0, 1], not {target!r}"
    elif target_transform not in TARGET_TRANSFORMS:
        problem = f"target_transform must be one of {', '.join(TARGET_TRANSFORMS)}"
    elif epochs < 1 or (batch_size is not None and batch_size < 1):
        problem = "epochs and batch size must be at least 1"
    elif refine not in REFINE_METHODS or not refine_seconds >= 0:
        problem = (f"refine must be one of {', '.join(REFINE_METHODS)} with refine_seconds >= 0, "
                   f"not {refine!r}, {refine_seconds!r}")
    elif select_by not in ("call", "batch"):
        problem = f"select_by must be 'call' or 'batch', not {select_by!r}"
    elif search not in SEARCHES:
        problem = f"search must be one of {', '.join(SEARCHES)}, not {search!r}"
    elif guard not in rxguard.GUARD_MODES:
        problem = f"guard must be one of {', '.join(rxguard.GUARD_MODES)}, not {guard!r}"
    elif budget is not None and not (budget > 0 and math.isfinite(budget)):
        problem = f"budget must be a positive number of seconds, not {budget!r}"
    return None if problem is None else _failed(meta, make("RX006", _src(meta), detail=problem))


def _bad_topologies(meta: Any, topologies: list[Topology]) -> StageResult[TrainResult] | None:
    """RX403 for an empty topology list or the first malformed topology, else None."""
    if not topologies:
        return _failed(meta, make("RX403", _src(meta), spec="", detail="no topologies given"))
    for hidden, act in topologies:
        if not hidden or any(int(w) < 1 for w in hidden) or act not in HIDDEN_ACTIVATIONS:
            return _failed(meta, make("RX403", _src(meta), spec=topology_label(hidden, act),
                                      detail=f"widths must be >= 1 and activation one of {', '.join(HIDDEN_ACTIVATIONS)}"))
    return None


def _bad_data(meta: Any, X: np.ndarray, Y: np.ndarray) -> StageResult[TrainResult] | None:
    """RX307 when the dataset cannot be trained on (shapes, too few rows, values not finite), else None."""
    d_in = sum(v.size for v in meta.inputs)
    d_out = sum(v.size for v in meta.outputs)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        return _invalid(_src(meta), meta.region_id, f"X {X.shape} and Y {Y.shape} must be 2-D with the same number of rows")
    if X.shape[1] != d_in or Y.shape[1] != d_out:
        return _invalid(_src(meta), meta.region_id, f"X/Y have {X.shape[1]}/{Y.shape[1]} columns but the interface has {d_in}/{d_out}")
    if X.shape[0] < MIN_SAMPLES:
        return _invalid(_src(meta), meta.region_id, f"{X.shape[0]} samples; at least {MIN_SAMPLES} are needed to train and test")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        return _invalid(_src(meta), meta.region_id, "X or Y holds NaN or infinite values")
    return None


def _invalid(dataset_path: str, region_id: str, detail: str) -> StageResult[TrainResult]:
    return StageResult(status="failed", region_id=region_id, diagnostics=(make("RX307", dataset_path, detail=detail),))


def _keras_missing(executor: concurrent.futures.Executor | None, meta: Any) -> StageResult[TrainResult] | None:
    """RX402 when TensorFlow/Keras cannot be imported here (or, with an executor, are not installed)."""
    if executor is None:
        try:
            rxfit._import_keras()
        except ImportError as exc:
            return _failed(meta, make("RX402", _src(meta), detail=f"{exc}; install regionx[train]"))
    else:
        import importlib.util

        if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
            return _failed(meta, make("RX402", _src(meta), detail="tensorflow/keras not installed; install regionx[train]"))
    return None


# --------------------------------------------------------------------------- the search


def _search(ctx: _Context, settings: _Settings, candidates: list[Candidate], ledger: Ledger, search: str,
            keep_unprofitable: bool, executor: concurrent.futures.Executor | None, progress: ProgressFn | None,
            grow: Grow | None, work: str, out_dir: str) -> StageResult[TrainResult]:
    """Time and order the candidates (fastest-first: RX502 at once when none can win), train them
    (`work`: scratch space), select and write the reports and artifacts into `out_dir`."""
    meta = ctx.meta
    form = form_of(ctx.select_by)
    # ---- before any training: what each candidate costs in the form it will run ----
    exact_time = float(meta.exact_time_per_call)
    if search == "fastest-first":
        exact_time = _time_candidates(ctx, candidates, form, work, ledger)
        extra = ctx.loop_extra if form == "loop" else 0.0
        order = training_order(candidates, form, exact_time, extra)
        if not order and keep_unprofitable:  # --force: the user wants a surrogate anyway
            order = training_order(candidates, form, math.inf)
        if not order:
            return _refused(ctx, settings, candidates, form, exact_time, extra, ledger, out_dir)
    else:
        order = list(candidates)
        for k, c in enumerate(order):
            c.order = k
    missing = _keras_missing(executor, meta)
    if missing is not None:
        return missing
    try:
        if search == "all":
            trained = _train_all(ctx, settings, order, executor, progress, ledger, work)
        else:
            trained = _train_fastest_first(ctx, settings, order, executor, progress, ledger, work, grow)
    except ImportError as exc:
        return _failed(meta, make("RX402", _src(meta), detail=str(exc)))
    return _finish(ctx, settings, candidates, trained, form, exact_time, ledger, search, out_dir)


def _refused(ctx: _Context, settings: _Settings, candidates: list[Candidate], form: str, exact_time: float, extra: float,
             ledger: Ledger, out_dir: str) -> StageResult[TrainResult]:
    """RX502 before any training: no candidate can beat the exact code even at perfect accuracy."""
    meta = ctx.meta
    by_cost = sorted(candidates, key=lambda c: (c.cost(form), c.n_weights, c.index))
    fastest = by_cost[0]
    where = "per row of the batched loop" if form == "loop" else "per call"
    listing = ", ".join(f"{c.label} {_fmt_time(c.cost(form))}" for c in by_cost[:4])
    plus = f" + {_fmt_time(extra)} per row for the loop's first pass" if extra else ""
    detail = (f"no candidate network can be faster than the exact code even at perfect accuracy, so none was trained: "
              f"exact code {_fmt_time(exact_time)} per call; fastest surrogate {fastest.label} {_fmt_time(fastest.cost(form))} "
              f"{where}{plus} (timed with random weights; {listing})")
    if form == "call":
        detail += "; no call site is a loop regionx can batch"
    ledger.emit("refused", None, detail=detail)
    diag = make("RX502", meta.source_path or "<dataset>", meta.line or 1, meta.col or 1, detail=detail)
    report = _report(ctx, settings, candidates, [], None, form, exact_time, ledger, "fastest-first", "refused", advice=[])
    artifacts = _write_reports(out_dir, report)
    data = replace(_data(report), verdict="refused before training")
    return StageResult("failed", meta.region_id, (diag,), artifacts=artifacts, value=data)


def _run_task(task: dict[str, Any], executor: concurrent.futures.Executor | None, progress: ProgressFn | None,
              ledger: Ledger, label: str) -> dict[str, Any]:
    """Train one task here or on `executor`; epoch progress goes to `progress` and the ledger's events."""
    def step(lbl: str, done: int, total: int) -> None:
        if progress is not None:
            progress(lbl, done, total)
        stage = "refine" if " refine " in lbl else "adam"
        ledger.emit(stage, label, done, total, detail=lbl.split(" refine ", 1)[1] if stage == "refine" else "")

    if executor is None:
        return rxfit._train_topology(task, step)
    result = executor.submit(rxfit._train_topology, task).result()
    step(label, int(task["epochs"]), int(task["epochs"]))
    return result


def _train_all(ctx: _Context, settings: _Settings, order: list[Candidate], executor: concurrent.futures.Executor | None,
               progress: ProgressFn | None, ledger: Ledger, work: str) -> list[_Trained]:
    """search="all": train every candidate (in parallel on an executor), then measure each."""
    epochs = settings.epochs
    tasks = [ctx.task(c.hidden, c.activation, epochs, settings.batch_size, settings.learning_rate, settings.patience,
                      settings.refine_seconds) for c in order]
    results: list[dict[str, Any]] = []
    if executor is None:
        for c, task in zip(order, tasks):
            results.append(_run_task(task, None, progress, ledger, c.label))
    else:
        futures = [executor.submit(rxfit._train_topology, task) for task in tasks]
        for c, fut in zip(order, futures):
            results.append(fut.result())
            if progress is not None:
                progress(c.label, epochs, epochs)
            ledger.emit("adam", c.label, epochs, epochs)
    trained = []
    for k, (c, res) in enumerate(zip(order, results)):
        t0 = time.perf_counter()
        n_res = ctx.train_rows()[1].size
        ledger.charge("train", adam_nominal(int(res["steps"])) + refine_nominal(res.get("refine") or {}, c.n_weights, n_res),
                      float(res["train_time"]), c.label, epochs=int(res["epochs"]), steps=int(res["steps"]))
        row, extra = _measure(ctx, res["layers"], res, os.path.join(work, f"topology_{k}"), ledger, c.label)
        ledger.charge("measure", MEASURE_SECONDS, time.perf_counter() - t0, c.label, accuracy=row.accuracy,
                      effective_accuracy=row.effective_accuracy, accuracy_lcb=row.program_accuracy_lcb)
        c.status = "met target" if meets(row, ctx.target) else "missed target"
        trained.append(_Trained(c, res, row, extra))
    return guard_phase(ctx, trained, work, ledger, budgeted=False)


def _train_fastest_first(ctx: _Context, settings: _Settings, order: list[Candidate],
                         executor: concurrent.futures.Executor | None, progress: ProgressFn | None, ledger: Ledger,
                         work: str, grow: Grow | None) -> list[_Trained]:
    """search="fastest-first": train the viable candidates fastest first until one meets the target
    or the budget is spent; refine a candidate longer while it still improves; grow the data when
    it generalises worse than it fits."""
    trained: list[_Trained] = []
    best: _Trained | None = None  # the fastest (in the form that runs) of those meeting the target
    for k, c in enumerate(order):
        if best is not None and not _can_beat(ctx, c, best):
            # even at perfect accuracy (no guard, no fallback) it could not beat `best`
            for rest in order[k:]:
                rest.status = f"not needed (cannot beat {best.candidate.label}, which met the target)"
            break
        left = ledger.left()
        # an equal share for the next few candidates; never less than MIN_DOSE while that much is left
        dose = max(left / min(SPREAD, len(order) - k), min(left, MIN_DOSE))
        if trained and (left < MIN_DOSE or ledger.over_wall()):
            for rest in order[k:]:
                rest.status = "budget spent"
            break
        entry = _first_dose(ctx, settings, c, os.path.join(work, f"topology_{k}"), dose, executor, progress, ledger)
        # a candidate still improving may take up to twice its share
        entry = _more_doses(ctx, settings, entry, f"topology_{k}", work, max(dose, min(2 * dose, left)), ledger, grow)
        trained.append(entry)
        if meets(entry.row, ctx.target):
            c.status = "met target"
            ledger.emit("met", c.label, detail=f"lower bound {entry.row.program_accuracy_lcb:.2%}")
            # every later candidate is slower: the first to meet the target wins, unless this one pays
            # for the rows its accept= rejects, which a slower but more accurate one may not
            if not ctx.meta.accept:
                for rest in order[k + 1:]:
                    rest.status = f"not needed ({c.label}, faster, met the target)"
                break
            if best is None or _program_time(entry.row, ctx.select_by) < _program_time(best.row, ctx.select_by):
                best = entry
            continue
        c.status = "missed target"
    # the misses that a guard could make faster than the winner (or give a winner at all)
    return guard_phase(ctx, trained, work, ledger, budgeted=True)


def _can_beat(ctx: _Context, c: Candidate, best: _Trained) -> bool:
    """Whether candidate `c` could still beat `best` (which met the target) at perfect accuracy.

    Without an accept predicate the next candidate is slower than `best` by construction; with
    one, `best` also pays for the rows its accept rejects, so a later candidate may still beat it:
    train on only while one can, even at perfect accuracy."""
    best_time = _program_time(best.row, ctx.select_by)
    # the accept check costs every candidate the same: count it in (measured on `best`)
    check = best.extra.get("accept_time_per_call" if ctx.select_by == "call" else "accept_time_per_element")
    return not (c.cost(form_of(ctx.select_by)) + float(check or 0.0) >= best_time * (1.0 - TIE_BAND))


def _first_dose(ctx: _Context, settings: _Settings, c: Candidate, sub: str, dose: float,
                executor: concurrent.futures.Executor | None, progress: ProgressFn | None, ledger: Ledger) -> _Trained:
    """Train candidate `c` with what `dose` nominal seconds buy (Adam, then refinement: `plan_dose`)
    and measure it (compiled into `sub`); its first dose is recorded in `doses`."""
    n_train = len(ctx.train_rows()[0])
    batch = settings.batch_size
    epochs, first_refine = plan_dose(dose, n_train, batch, settings.epochs, settings.refine_seconds, ctx.refine)
    ledger.emit("adam", c.label, 0, epochs)
    task = ctx.task(c.hidden, c.activation, epochs, batch, settings.learning_rate, settings.patience, first_refine)
    t0 = time.perf_counter()
    res = _run_task(task, executor, progress, ledger, c.label)
    spent = adam_nominal(int(res["steps"])) + refine_nominal(res.get("refine") or {}, c.n_weights, task["Ytr"].size)
    ledger.charge("train", spent, time.perf_counter() - t0, c.label, epochs=int(res["epochs"]), planned_epochs=epochs,
                  steps=int(res["steps"]), refine_seconds=first_refine, optimizer=(res.get("refine") or {}).get("method"))
    ledger.emit("measure", c.label)
    row, extra = _measured(ctx, res["layers"], res, sub, ledger, c.label)
    return _Trained(c, res, row, extra, doses=[{"stage": "train", "epochs": int(res["epochs"]),
                                                "refine_seconds": first_refine, "nominal_s": spent,
                                                **_dose_summary(res.get("refine") or {}, row)}])


def _more_doses(ctx: _Context, settings: _Settings, entry: _Trained, name: str, work: str, cap: float, ledger: Ledger,
                grow: Grow | None) -> _Trained:
    """`entry`, which missed the target after its first dose, refined again (up to MAX_ROUNDS times,
    within `cap` nominal seconds in all): on twice the training rows when it fits them better than
    unseen rows and `grow` can sample ("grow"), or for longer while it still improves ("extend")."""
    first = entry.doses[0]  # the first dose, as _first_dose recorded it
    used = first["nominal_s"] + MEASURE_SECONDS
    last_seconds = first["refine_seconds"]
    summary = entry.result.get("refine") or {}
    for _round in range(MAX_ROUNDS):
        if meets(entry.row, ctx.target) or ledger.over_wall():
            break
        more_data, overfit = _more_data_may_reach(ctx, entry)
        rows = len(ctx.train_rows()[0])
        if grow is not None and more_data and rows < GROW_MAX_ROWS:
            stage, more = "grow", min(rows, GROW_MAX_ROWS - rows)
        elif still_improving(summary) and ctx.refine != "none" and _may_reach(ctx, summary, last_seconds, cap - used):
            stage, more = "extend", 0
        else:
            break
        seconds = min(max(last_seconds, 1.0) * EXTEND_FACTOR, cap - used - MEASURE_SECONDS, ledger.left() - MEASURE_SECONDS)
        if seconds < 1.0:
            break
        t0 = time.perf_counter()
        if stage == "grow" and not _grow_rows(ctx, grow, more, entry.candidate.label, overfit, ledger, entry):
            break
        summary, nominal, kept = _refine_again(ctx, settings, entry, stage, more, seconds, t0, ledger,
                                               os.path.join(work, f"{name}_{_round}"))
        used += nominal + MEASURE_SECONDS
        last_seconds = seconds
        if not kept and stage == "extend":
            break  # refining further did not help
        before, after = summary.get("val_accuracy_before"), summary.get("val_accuracy_after")
        if stage == "grow" and before is not None and after is not None and after - before < IMPROVING:
            # more rows did not help: doubling again would not either (Newton, 16 tanh, 45% on
            # validation: three doublings to 65,600 rows, 13 s of the budget, still 45.0%)
            break
    return entry


def _may_reach(ctx: _Context, summary: dict[str, Any], seconds: float, allowance: float) -> bool:
    """Whether refining on at the last dose's rate (validation share gained per second, a linear
    extrapolation: optimistic, as gains shrink) could reach the target within `allowance` nominal
    seconds: extending a network far from the target spends the budget the next candidates need."""
    before, after = summary.get("val_accuracy_before"), summary.get("val_accuracy_after")
    if before is None or after is None or after <= before:
        return True  # no measure of the rate: still_improving decides alone
    rate = (after - before) / max(seconds, 1.0)
    return (ctx.target - after) / rate <= allowance


def _grow_rows(ctx: _Context, grow: Grow | None, more: int, label: str, overfit: float, ledger: Ledger,
               entry: _Trained) -> bool:
    """Sample `more` training rows by `grow`, placed mostly where `entry` errs on the validation
    rows (`_validation_errors`), and add the finite ones to `ctx`; False when none came."""
    ledger.emit("grow", label, detail=f"{more} more samples (train/validation gap {overfit:.1%})")
    got = grow(more, _validation_errors(ctx, entry)) if grow is not None else None
    if got is None or len(got[0]) == 0:
        return False
    Xn, Yn = np.asarray(got[0], dtype=np.float64), np.asarray(got[1], dtype=np.float64)
    keep = np.all(np.isfinite(Xn), axis=1) & np.all(np.isfinite(Yn), axis=1)
    ctx.X_more = Xn[keep] if ctx.X_more is None else np.vstack([ctx.X_more, Xn[keep]])
    ctx.Y_more = Yn[keep] if ctx.Y_more is None else np.vstack([ctx.Y_more, Yn[keep]])
    return True


def _validation_errors(ctx: _Context, entry: _Trained) -> Callable[[np.ndarray], np.ndarray]:
    """Inputs -> the mean error ratio of `entry`'s nearest validation rows (regionx.active's
    neighbour_error, in the inputs' standardised units): where more samples would help most."""
    from regionx import refine as rxrefine
    from regionx.active import neighbour_error

    layers = entry.result["layers"]
    spec, theta = rxrefine.NetSpec.of(layers), rxrefine.pack(layers)
    points = ctx.inputs_normalised(ctx.X[ctx.va])
    pred = denormalise(rxrefine.predict(theta, spec, points), ctx.y_mean, ctx.y_scale, ctx.transform)
    errors = np.minimum(ctx.criterion.error_ratio(pred, ctx.Y[ctx.va]), 1e6)

    def weigh(X: np.ndarray) -> np.ndarray:
        return neighbour_error(points, errors, ctx.inputs_normalised(np.asarray(X, dtype=np.float64)))

    return weigh


def _refine_again(ctx: _Context, settings: _Settings, entry: _Trained, stage: str, more: int, seconds: float, t0: float,
                  ledger: Ledger, sub: str) -> tuple[dict[str, Any], float, bool]:
    """One more dose of `seconds` of refinement for `entry` on the current training rows, charged
    from `t0` (with "grow", the `more` rows just sampled are charged too), then measured (compiled
    into `sub`); `entry` is updated. Returns (the refinement's summary, the nominal seconds charged,
    whether the refinement was kept)."""
    c = entry.candidate
    ledger.emit("extend" if stage == "extend" else "refine", c.label, detail=f"{seconds:.0f} s more refinement")
    task = ctx.task(c.hidden, c.activation, 1, settings.batch_size, settings.learning_rate, settings.patience, seconds,
                    restarts=0)
    refined = _refine_layers(task, entry.result["layers"], ctx.seed, None)
    summary = refined.summary()
    summary["nominal_seconds"] = seconds
    nominal = refine_nominal(summary, c.n_weights, task["Ytr"].size)
    if refined.method != "adam":
        entry.result = {**entry.result, "layers": refined.layers,
                        "train_time": float(entry.result["train_time"]) + refined.seconds}
        entry.layers_changed = True
    if stage == "grow":  # sampling: the exact code on every new row, and the sampler's own work
        nominal += more * float(ctx.meta.exact_time_per_call) * GROW_SAMPLE_FACTOR
    ledger.charge(stage, nominal, time.perf_counter() - t0, c.label, refine_seconds=seconds,
                  rows=len(ctx.train_rows()[0]), val_accuracy_before=summary.get("val_accuracy_before"),
                  val_accuracy_after=summary.get("val_accuracy_after"))
    entry.row, entry.extra = _measured(ctx, entry.result["layers"], entry.result, sub, ledger, c.label)
    entry.doses.append({"stage": stage, "refine_seconds": seconds, "nominal_s": nominal,
                        "rows": len(ctx.train_rows()[0]), **_dose_summary(summary, entry.row)})
    return summary, nominal, refined.method != "adam"


def _measured(ctx: _Context, layers: list[tuple[np.ndarray, np.ndarray, str]], res: dict[str, Any], sub: str,
              ledger: Ledger, label: str) -> tuple[TopologyResult, dict[str, Any]]:
    """`_measure`, charged to the ledger (MEASURE_SECONDS nominal, and the wall clock it took)."""
    t0 = time.perf_counter()
    row, extra = _measure(ctx, layers, res, sub, ledger, label)
    ledger.charge("measure", MEASURE_SECONDS, time.perf_counter() - t0, label, accuracy=row.accuracy,
                  effective_accuracy=row.effective_accuracy, accuracy_lcb=row.program_accuracy_lcb)
    return row, extra


def _dose_summary(summary: dict[str, Any], row: TopologyResult) -> dict[str, Any]:
    return {"optimizer": summary.get("method", "adam"), "val_accuracy_before": summary.get("val_accuracy_before"),
            "val_accuracy_after": summary.get("val_accuracy_after"),
            "still_improving": still_improving(summary), "test_accuracy": row.accuracy,
            "test_accuracy_lcb": row.program_accuracy_lcb}


def _more_data_may_reach(ctx: _Context, entry: _Trained) -> tuple[bool, float]:
    """(Whether more samples could make `entry` meet the target, its train/validation gap): it
    fits its training rows better than unseen ones by GROW_GAP or more, and fits them well enough
    to meet the target. More data closes the gap at best; it does not add capacity (fixtures/
    projectile.py, 8 tanh: 46% of training rows within tolerance, three doublings to 65,600 rows
    took the whole budget to move validation from 43.4% to 45.0%)."""
    train, validation = _fit_shares(ctx, entry)
    return train - validation >= GROW_GAP and train >= ctx.target, train - validation


def _fit_shares(ctx: _Context, entry: _Trained) -> tuple[float, float]:
    """The network's shares within tolerance of (up to 5,000 rows of) its training split and of
    the validation split."""
    from regionx import refine as rxrefine

    layers = entry.result["layers"]
    spec = rxrefine.NetSpec.of(layers)
    theta = rxrefine.pack(layers)
    Xt, Yt = ctx.train_rows()
    Xt, Yt = Xt[:5000], Yt[:5000]

    def share(Xs: np.ndarray, Ys: np.ndarray) -> float:
        pred = denormalise(rxrefine.predict(theta, spec, ctx.inputs_normalised(Xs)), ctx.y_mean, ctx.y_scale, ctx.transform)
        return float(np.mean(ctx.criterion.within(pred, Ys))) if len(Ys) else 0.0

    return share(Xt, Yt), share(ctx.X[ctx.va], ctx.Y[ctx.va])


# --------------------------------------------------------------------------- the outcome


def _advice(ctx: _Context, candidates: list[Candidate], trained: list[_Trained], chosen: _Trained | None,
            ledger: Ledger) -> list[str]:
    """What more budget would likely buy, when the search ended without a network meeting the target."""
    if chosen is not None or not trained:
        return []
    notes: list[str] = []
    best = max(trained, key=lambda t: ((t.row.program_accuracy_lcb or 0.0), -t.candidate.index))
    lcb = best.row.program_accuracy_lcb or 0.0
    last = best.doses[-1] if best.doses else {}
    before, after = last.get("val_accuracy_before"), last.get("val_accuracy_after")
    if last.get("still_improving") and before is not None and after is not None and after > before:
        slope = (after - before) / max(float(last.get("refine_seconds") or 0.0), 1.0)
        need = max(0.0, ctx.target + 0.005 - after) / slope
        notes.append(f"{best.candidate.label} was still improving when its refinement stopped (validation "
                     f"{before:.1%} -> {after:.1%} in {last.get('refine_seconds', 0):.0f} s): about "
                     f"{min(need, 3600):.0f} s more of refinement would likely reach the target")
    more_data, gap = _more_data_may_reach(ctx, best)
    if more_data:
        notes.append(f"{best.candidate.label} fits its training rows {gap:.1%} better than unseen ones: more samples "
                     f"(-n {2 * len(ctx.X)}) would likely help")
    untried = sorted((c for c in candidates if c.viable and c.status == "budget spent"), key=lambda c: c.order or 0)
    if untried:
        # what one candidate cost so far (training, refining, measuring), in nominal seconds
        spent = sum(e["nominal_s"] for e in ledger.log if e["stage"] != "timing")
        each = max(MIN_DOSE, spent / max(1, len(trained)))
        notes.append(f"{len(untried)} slower candidate{'s' if len(untried) != 1 else ''} not tried for lack of budget "
                     f"({', '.join(c.label for c in untried)}); each needs about {each:.0f} s (--budget "
                     f"{(ledger.seconds or 0) + each * len(untried):.0f} would try them all)")
    if not notes:
        notes.append(f"best lower bound {lcb:.1%} with {best.candidate.label}; no candidate was still improving: a larger "
                     "network, a looser tolerance or an accept= predicate is more likely to help than more budget")
    return notes


def _finish(ctx: _Context, settings: _Settings, candidates: list[Candidate], trained: list[_Trained], form: str,
            exact_time: float, ledger: Ledger, search: str, out_dir: str) -> StageResult[TrainResult]:
    """Select among the trained candidates, write the reports and (on success) the artifacts."""
    meta = ctx.meta
    rows = [t.row for t in trained]
    chosen_i = select_topology(rows, ctx.target, by=ctx.select_by)
    chosen = trained[chosen_i] if chosen_i is not None else None
    advice = _advice(ctx, candidates, trained, chosen, ledger)
    if search == "fastest-first":
        stopped = ("met target" if chosen is not None else
                   "budget spent" if any(c.status == "budget spent" for c in candidates) or ledger.over_wall()
                   else "every candidate tried")
    else:
        stopped = "every candidate trained"
    ledger.emit("done", chosen.candidate.label if chosen else None, detail=stopped)
    report = _report(ctx, settings, candidates, trained, chosen_i, form, exact_time, ledger, search, stopped, advice)
    artifacts = _write_reports(out_dir, report)
    data = _data(report)
    src = meta.source_path or "<dataset>"
    if chosen is None:
        bi = best_row(rows)
        b = rows[bi] if bi is not None else None
        if b is None:
            best_text = "none"
        elif b.effective_accuracy is not None:
            best_text = (f"{b.label} at {b.effective_accuracy:.1%} effective with accept (lower bound "
                         f"{b.program_accuracy_lcb or 0:.1%}; {b.accuracy:.1%} raw)")
        else:
            best_text = f"{b.label} at {b.accuracy:.1%} (lower bound {b.program_accuracy_lcb or 0:.1%} of {b.n_test} test points)"
        if advice:
            best_text += "; " + advice[0]
        diag: Diagnostic = make("RX401", src, meta.line or 1, meta.col or 1, target=ctx.target, tolerance=ctx.criterion.tolerance,
                                metric=f"{ctx.criterion.metric}: {ctx.criterion.describe()}",
                                best=best_text)  # at the region (1:1 for older datasets)
        return StageResult("failed", meta.region_id, (diag,), artifacts=artifacts, value=data)

    # ---- write the chosen surrogate's artifacts ----
    res = chosen.result
    module_path = _compile_to(ctx, res["layers"], out_dir, chosen.extra.get("guard_fit"))
    model_path = os.path.join(out_dir, "model.keras")
    model_bytes = rxfit._model_bytes_with(res["model_bytes"], res["layers"]) if chosen.layers_changed else res["model_bytes"]
    rxcompile.atomic_write_bytes(model_path, model_bytes)
    manifest = Manifest(
        region_id=meta.region_id, region_name=meta.region_name, source_path=meta.source_path,
        source_sha256=meta.source_sha256, inputs=meta.inputs, outputs=meta.outputs, domain=dict(meta.domain),
        tolerance=ctx.criterion.tolerance, metric=ctx.criterion.metric,  # type: ignore[arg-type]
        target=ctx.target, accept=meta.accept, topology=chosen.row,
        module=os.path.basename(module_path), lower=tuple(float(v) for v in ctx.lower),
        upper=tuple(float(v) for v in ctx.upper), seed=ctx.seed, regionx_version=settings.version,
        closure_sha256=meta.closure_sha256, closure=meta.closure, pragma_tolerance=meta.tolerance,
        pragma_metric=meta.metric, require=meta.require, criterion=ctx.criterion.to_json(),
        pragma_rtol=meta.rtol, pragma_atol=meta.atol,
    )
    manifest_path = os.path.join(out_dir, "manifest.json")
    _write_json(manifest_path, manifest.to_json())  # last: its presence means the artifacts are complete
    artifacts.update(manifest=manifest_path, module=module_path, model=model_path, weights=os.path.join(out_dir, "weights.npz"))
    return StageResult("ok", meta.region_id, (), artifacts=artifacts, value=replace(data, manifest=manifest))
