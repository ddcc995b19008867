"""Accuracy, timing and selection: the criterion applied to a network's answers, the cost of an
`accept` predicate, and the performance-driven choice among measured topologies."""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from regionx.criterion import Criterion, lower_bound
from regionx.types import TopologyResult

# Rows of the batch used to time the batched loop: loops worth batching are long, and 4,096 rows
# stay in cache where 20,000 do not (benchmarks/kernels/cubic.py's surrogate: 73-85 ns a row at
# 4,096 rows, 86-94 at 20,000; with lists made as programs make them, 78-85 and 108-110 against
# the program's own loop at 105-125: compile predicted 19x where the loop ran 14x).
BATCH_ROWS = 16384
CALL_ROWS = 256  # distinct test rows cycled through when timing predict_one()
# Timings within this share of the fastest are a tie (timer noise), going to the most accurate,
# then to the earlier topology in the list (`select_topology`).
TIE_BAND = 0.05


# --------------------------------------------------------------------------- the network's units

# With metric "rel", refinement weighs each residual by 1 / (tolerance * max(|y|, floor)), floor =
# REFINE_REL_FRACTION * median |y| (see residual_weights). On the cubic's root (2x8x5x1, 20k
# samples, 30 s of LM from the same Adam start) the share of test points within 1% was 94.4%
# unweighted, and 96.7% / 98.3% / 98.6% / 95.5% with floors of 0.0013 / 0.013 / 0.065 / 0.26 x
# median |y|.
REFINE_REL_FRACTION = 0.05


def denormalise(pred: np.ndarray, y_mean: np.ndarray, y_scale: np.ndarray, transform: tuple[str, float] | None) -> np.ndarray:
    """The network's normalised output back in the region's units (what the compiled module returns)."""
    t = pred * y_scale + y_mean
    with np.errstate(over="ignore", invalid="ignore"):
        return t if transform is None else transform[1] * np.sinh(t)


def residual_weights(Y: np.ndarray, criterion: Criterion, transform: tuple[str, float] | None,
                     y_scale: np.ndarray, *, absolute: bool = False) -> np.ndarray | None:
    """Per-entry weights (n x d_out) that make the refinement's least squares count errors as the
    accuracy criterion does: residual x weight ~ (error in y) / (error allowed at y).

    The network's residual is in normalised units t_n = (t - mean) / y_scale with t = y or
    asinh(y / s), so an error e_n in t_n is e_n * y_scale * dy/dt in y (dy/dt = sqrt(s^2 + y^2)
    for asinh). The error allowed is the criterion's atol + rtol * |y| (regionx.criterion): for a
    relative tolerance its floor is a share of the median |y| (FLOOR_FRACTION = 0.05, the fraction
    this weighting was first measured with: on the cubic's root, 2x8x5x1, 20k samples, 30 s of LM
    from the same Adam start, 94.4% of test points within 1% unweighted and 96.7% / 98.3% / 98.6% /
    95.5% with floors of 0.0013 / 0.013 / 0.065 / 0.26 x median |y|). Weights are scaled to mean
    square 1, so the loss stays comparable to plain mse. None when every weight is the same.
    `absolute`: unscaled, so a weighted residual of 1 is an error at the tolerance (the robust
    loss's scale, `regionx.refine.robust_lm`); never None then, unless a weight is not finite.
    """
    Y = np.asarray(Y, dtype=np.float64)
    dy = np.broadcast_to(np.asarray(y_scale, dtype=np.float64), Y.shape)
    if transform is not None:
        dy = dy * np.sqrt(transform[1] ** 2 + Y * Y)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = dy / criterion.allowed(Y)
    if absolute:
        return np.asarray(w) if np.all(np.isfinite(w)) else None
    if not np.all(np.isfinite(w)) or float(np.ptp(w)) <= 1e-12 * float(np.max(w)):
        return None
    return np.asarray(w / math.sqrt(float(np.mean(w * w))))


# --------------------------------------------------------------------------- metrics and selection


def as_criterion(criterion: Criterion | str, tolerance: float | None = None) -> Criterion:
    """`criterion` itself, or the old (metric, tolerance) pair read as regionx.criterion.Criterion.legacy."""
    if isinstance(criterion, Criterion):
        return criterion
    if tolerance is None:
        raise TypeError("a metric name needs a tolerance")
    return Criterion.legacy(criterion, float(tolerance))


def error_metrics(pred: np.ndarray, exact: np.ndarray, criterion: Criterion | str,
                  tolerance: float | None = None) -> dict[str, float]:
    """L2 loss (MSE, original units), mean/max error (`Criterion.errors`), the share of rows within
    tolerance (`Criterion.within`), how many that is of how many rows, and the share's one-sided
    95% lower confidence bound. `criterion` may be the old metric name with its `tolerance`."""
    crit = as_criterion(criterion, tolerance)
    exact = np.asarray(exact, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64).reshape(exact.shape)
    err = crit.errors(pred, exact)
    good = int(np.count_nonzero(crit.within(pred, exact))) if exact.size else 0
    n = int(exact.shape[0]) if exact.size else 0
    with np.errstate(over="ignore", invalid="ignore"):
        mse = float(np.mean((pred - exact) ** 2)) if exact.size else float("nan")
    return {
        "loss": mse if math.isfinite(mse) else float("inf"),
        "mean_error": float(np.mean(err)) if err.size else float("nan"),
        "max_error": float(np.max(err)) if err.size else float("nan"),
        "accuracy": good / n if n else 0.0,
        "within": good,
        "n": n,
        "accuracy_lcb": lower_bound(good, n),
    }


def within_tolerance(pred: np.ndarray, exact: np.ndarray, criterion: Criterion | str,
                     tolerance: float | None = None) -> np.ndarray:
    """Per row: is every output within tolerance (`Criterion.within`, as `error_metrics` counts it)?"""
    exact = np.asarray(exact, dtype=np.float64)
    return as_criterion(criterion, tolerance).within(np.asarray(pred, dtype=np.float64).reshape(exact.shape), exact)


def accept_mask(accept: str, X: np.ndarray, pred: np.ndarray, inputs: Sequence[Any], outputs: Sequence[Any],
                is_function: bool = True) -> tuple[np.ndarray, bool]:
    """(rows the accept predicate accepts, whether it was vectorised). Raises ValueError/SyntaxError
    or the predicate's own NameError ... when it cannot be evaluated on these columns."""
    from regionx import accept as rxaccept

    cols = rxaccept.columns_for(inputs, outputs, X, np.asarray(pred, dtype=np.float64).reshape(len(X), -1), is_function)
    try:
        return rxaccept.evaluate(accept, cols), True
    except ValueError:
        params = list(cols)
        scalar = rxaccept.scalar_function(accept, params)
        return np.array([scalar(*(float(cols[p][i]) for p in params)) for i in range(len(X))], dtype=bool), False


def accept_metrics(accept: str, X: np.ndarray, pred: np.ndarray, exact: np.ndarray, inputs: Sequence[Any],
                   outputs: Sequence[Any], metric: Criterion | str, tolerance: float | None = None, *,
                   exact_time_per_call: float, time_per_call: float, time_per_element: float,
                   repeats: int = 5) -> dict[str, Any]:
    """What the program gets with `accept` checking the surrogate's answers (rejected rows run exact).

    Returns accept_rate (share of rows accepted), effective_accuracy (a row is good when it is
    rejected, or accepted and within tolerance: `metric` is the criterion, or the old metric name
    with its `tolerance`), effective_accuracy_lcb (its lower confidence bound), accepted_accuracy (accuracy among the accepted
    rows), the measured cost of the check (accept_time_per_call: the scalar predicate as the
    dispatcher runs it; accept_time_per_element: the vectorised predicate as a hoisted loop runs
    it, or the scalar cost when it cannot be vectorised), and effective_time_per_call/element =
    surrogate time + accept cost + (1 - accept_rate) x exact time per call. `problem` says why the
    predicate could not be evaluated (then every other value is None).
    """
    from regionx import accept as rxaccept

    out: dict[str, Any] = {"accept_rate": None, "effective_accuracy": None, "effective_accuracy_lcb": None,
                           "accepted_accuracy": None,
                           "accept_time_per_call": None, "accept_time_per_element": None,
                           "effective_time_per_call": None, "effective_time_per_element": None,
                           "vectorised": False, "problem": None}
    pred = np.asarray(pred, dtype=np.float64).reshape(exact.shape)
    cols = rxaccept.columns_for(inputs, outputs, X, pred)
    params = list(cols)
    try:
        scalar = rxaccept.scalar_function(accept, params)
    except SyntaxError as exc:
        out["problem"] = f"accept predicate {accept!r} is not a Python expression: {exc.msg}"
        return out
    rows = [tuple(float(cols[p][i]) for p in params) for i in range(min(len(X), CALL_ROWS))]
    try:
        mask = rxaccept.evaluate(accept, cols)
        out["vectorised"] = True
    except ValueError:
        try:  # cannot be vectorised: the patched program checks it row by row, and so do we
            mask = np.array([scalar(*(float(cols[p][i]) for p in params)) for i in range(len(X))], dtype=bool)
        except Exception as exc:  # a name the predicate reads that is neither input nor output ...
            out["problem"] = f"cannot evaluate accept predicate {accept!r}: {type(exc).__name__}: {exc}"
            return out
    m = error_metrics(pred, exact, metric, tolerance)
    good = within_tolerance(pred, exact, metric, tolerance)
    n = max(1, len(mask))
    out["accept_rate"] = float(np.count_nonzero(mask)) / n
    out["effective_accuracy"] = float(np.mean(~mask | good)) if len(mask) else m["accuracy"]
    out["effective_accuracy_lcb"] = lower_bound(int(np.count_nonzero(~mask | good)), len(mask)) if len(mask) else m["accuracy_lcb"]
    out["accepted_accuracy"] = float(np.mean(good[mask])) if mask.any() else None
    # cost of the check: best of `repeats`
    t_call = min(_time_rows(scalar, rows) for _ in range(repeats)) if rows else 0.0
    if out["vectorised"]:
        t_elem = min(_time_once(lambda: rxaccept.evaluate(accept, cols)) for _ in range(repeats)) / n
    else:
        t_elem = t_call
    rejected = 1.0 - out["accept_rate"]
    out["accept_time_per_call"] = t_call
    out["accept_time_per_element"] = t_elem
    out["effective_time_per_call"] = time_per_call + t_call + rejected * exact_time_per_call
    out["effective_time_per_element"] = time_per_element + t_elem + rejected * exact_time_per_call
    return out


def _time_once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _time_rows(fn: Callable[..., Any], rows: Sequence[tuple[float, ...]]) -> float:
    """Seconds per call of fn over `rows`."""
    t0 = time.perf_counter()
    for r in rows:
        fn(*r)
    return (time.perf_counter() - t0) / len(rows)


def select_topology(rows: Sequence[TopologyResult], target: float, *, by: str = "call",
                    tie_band: float = TIE_BAND) -> int | None:
    """Index of the fastest row that meets `target` (None if there is none).

    A row meets the target when the lower confidence bound of its accuracy does
    (`TopologyResult.program_accuracy_lcb`; rows without a recorded bound: the accuracy itself).
    `by` is "call" (time_per_call) or "batch" (time_per_element). Rows within `tie_band` of the
    fastest time are tied; a tie goes to the higher accuracy, then to the lower index. Rows measured
    with an accept predicate are judged by their effective accuracy and time (see `accept_metrics`).
    """
    if by not in ("call", "batch"):
        raise ValueError(f"select_by must be 'call' or 'batch', not {by!r}")
    # with an accept predicate these are the effective accuracy and time (TopologyResult.program_*)
    ok = [i for i, r in enumerate(rows) if meets(r, target)]
    if not ok:
        return None

    def t(i: int) -> float:
        return rows[i].program_time_per_call if by == "call" else rows[i].program_time_per_element

    fastest = min(t(i) for i in ok)
    tied = [i for i in ok if t(i) <= fastest * (1.0 + tie_band)]
    return min(tied, key=lambda i: (-rows[i].program_accuracy, i))


def meets(row: TopologyResult, target: float) -> bool:
    """Whether `row` meets `target`: by the lower confidence bound when it was recorded."""
    bound = row.program_accuracy_lcb
    return (row.program_accuracy if bound is None else bound) >= target


def best_row(rows: Sequence[TopologyResult]) -> int | None:
    """Index of the most accurate row (ties: lower loss, then earlier)."""
    if not rows:
        return None
    return min(range(len(rows)), key=lambda i: (-rows[i].program_accuracy, rows[i].loss, i))


def form_of(select_by: str) -> str:
    """The form a surrogate runs in for a selection mode: "loop" for "batch", else "call"."""
    return "loop" if select_by == "batch" else "call"


def _program_time(row: TopologyResult, select_by: str) -> float:
    """What one answer costs the program in the form that runs (with accept: check and fallback included)."""
    return row.program_time_per_call if select_by == "call" else row.program_time_per_element
