"""The learned guard: a small network that predicts, per input, whether the surrogate's answer
will be out of tolerance, and a threshold calibrated so the program meets its accuracy target.

Where a smooth network cannot follow the region (a jump between regimes, a kink, a near-singular
corner) it plateaus at 95-98% of points within tolerance however it is trained, while the bad
inputs sit in a small part of the domain. MITHRA and Rumba learn that part; so does this module:

1. **score** (`fit_score`): a dense tanh network regressing log10 of the surrogate's error ratio
   (|pred - exact| / allowed, `regionx.criterion.Criterion.error_ratio`), clipped to SCORE_CLIP,
   fitted by Levenberg-Marquardt (`regionx.refine`) on the training split's residuals. Inputs only:
   it runs before the exact code would.
2. **selection** (`learn_guard`): of GUARD_TOPOLOGIES, the one whose guarded program is cheapest on
   the validation split (rows it sends to the exact code cost the exact time).
3. **calibration** (`calibrate`): on the test split, which neither the network nor the guard saw,
   Learn-then-Test (MAPIE's BinaryClassificationController, fixed-sequence testing from the most
   conservative threshold, binomial Hoeffding-Bentkus p-values) picks the most permissive
   threshold for which, with 95% confidence, the share of *program* answers within tolerance —
   accepted surrogate answers that are good, plus every row the exact code answers — is at least
   the target. No threshold qualifies: no guard (the candidate misses the target).

The chosen guard is compiled next to the surrogate (``guard_<name>.py``, numpy only, the same
generator as the surrogate: `regionx.compile.generate_source`), and the surrogate module exposes
``guard(X)`` / ``guard_one(...)``: True where the network's answer is used. TensorFlow is never
needed; MAPIE (and scikit-learn) only here, at training time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from regionx import refine as rxrefine

Layer = tuple[np.ndarray, np.ndarray, str]

# Score networks tried, cheapest first. Measured on a 16x16 network fitted to a jump across a circle
# (8,000 fitting rows, tolerance 0.01): guards 16 / 16x16 / 32x32 let it answer 68% / 46-51% / 22%
# of the calibration rows at 99% — the larger ones overfit the fitting rows.
GUARD_TOPOLOGIES: tuple[tuple[int, ...], ...] = ((8,), (16,))
SCORE_CLIP = (-2.0, 2.0)  # log10 error ratio: 1% of the tolerance .. 100x it; beyond, the ranking is all that matters
CONFIDENCE = 0.95  # with this confidence the calibrated program meets its target
FIT_ROWS = 20_000  # residuals the score network is fitted on (the training split's first rows)
FIT_SECONDS = 3.0  # nominal seconds of Levenberg-Marquardt per guard topology (regionx.refine.iteration_budget)
GRID = 200  # thresholds tested, from quantiles of the validation split's scores
GUARD_MODES = ("auto", "off")


@dataclass(frozen=True)
class GuardFit:
    """A calibrated guard: the score network (normalised units and its scaling), the threshold
    (accept a row when its score <= threshold) and what calibration measured."""

    hidden: tuple[int, ...]
    layers: tuple[Layer, ...]
    x_mean: np.ndarray
    x_scale: np.ndarray
    threshold: float  # on the score (predicted log10 error ratio)
    calibration_rows: int
    accept_rate: float  # share of calibration rows the guard lets the network answer
    program_accuracy: float  # on the calibration rows, guard applied


@dataclass(frozen=True)
class GuardMiss:
    """Why no guard was made for a candidate."""

    reason: str


def score(layers: Sequence[Layer], x_mean: np.ndarray, x_scale: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The score network's predictions (n,) on raw inputs X (float64 reference pass)."""
    from regionx.compile import forward

    return forward(layers, (np.asarray(X, dtype=np.float64) - x_mean) / x_scale)[:, 0]


def log_ratio(ratio: np.ndarray) -> np.ndarray:
    """The score network's target: log10 of the error ratio, clipped to SCORE_CLIP."""
    with np.errstate(divide="ignore"):
        return np.clip(np.log10(np.maximum(ratio, 1e-300)), *SCORE_CLIP)


def fit_score(X: np.ndarray, ratio: np.ndarray, hidden: tuple[int, ...], seed: int,
              seconds: float = FIT_SECONDS) -> tuple[list[Layer], np.ndarray, np.ndarray]:
    """Fit a tanh network X -> log_ratio(ratio) by Levenberg-Marquardt; (layers, x_mean, x_scale)."""
    X = np.asarray(X, dtype=np.float64)
    x_mean = X.mean(axis=0)
    x_scale = X.std(axis=0)
    x_scale = np.where(x_scale > 0, x_scale, 1.0)
    Xn = (X - x_mean) / x_scale
    T = log_ratio(np.asarray(ratio, dtype=np.float64)).reshape(-1, 1)
    spec = rxrefine.NetSpec((X.shape[1], *hidden, 1), tuple(["tanh"] * len(hidden) + ["linear"]))
    theta0 = rxrefine.init_params(spec, np.random.default_rng(seed))
    # an iteration count from the cost model, not a clock, so a fixed seed gives the same guard on a
    # busy machine; the deadline only stops a runaway (as regionx.refine.refine does)
    iterations = min(200, rxrefine.iteration_budget("lm", spec.n_params, T.size, seconds))
    theta, _info = rxrefine.levenberg_marquardt(
        theta0, spec, Xn, T, deadline=time.perf_counter() + rxrefine.DEADLINE_FACTOR * seconds, max_iter=iterations)
    return rxrefine.unpack(theta, spec), x_mean, x_scale


def calibrate(scores: np.ndarray, fine: np.ndarray, grid: np.ndarray, target: float,
              confidence: float = CONFIDENCE) -> float | None:
    """The most permissive threshold of `grid` (accept a row when score <= threshold) for which,
    with `confidence`, the program's share of good answers is >= `target`: Learn-then-Test on
    these calibration rows (MAPIE). `fine[i]`: row i cannot make the program wrong (the network is
    within tolerance there, or another guard already sends it to the exact code). None when no
    threshold qualifies."""
    import warnings

    from mapie.risk_control import BinaryClassificationController, BinaryRisk

    program_good = BinaryRisk(  # a row is good when the exact code answers it (y_pred 0) or it is fine
        risk_occurrence=lambda y_true, y_pred: (y_pred == 0) | (y_true == 1),
        risk_condition=lambda y_true, y_pred: np.repeat(True, len(y_true)),
        higher_is_better=True)
    answered = BinaryRisk(  # secondary objective: as many rows answered by the network as possible
        risk_occurrence=lambda y_true, y_pred: y_pred == 1,
        risk_condition=lambda y_true, y_pred: np.repeat(True, len(y_true)),
        higher_is_better=True)
    thresholds = np.sort(np.unique(np.asarray(grid, dtype=np.float64)))
    if not len(thresholds):
        return None
    # MAPIE thresholds probabilities: a row is answered by the network when sigmoid(-score) >= lambda;
    # the sequence runs from the most conservative lambda (fewest rows answered) to the most permissive
    lambdas = _sigmoid(-thresholds)

    def predict(s: np.ndarray) -> np.ndarray:
        p = _sigmoid(-s[:, 0])
        return np.column_stack([1.0 - p, p])

    controller = BinaryClassificationController(
        predict_function=predict, risk=program_good, target_level=float(target), confidence_level=float(confidence),
        best_predict_param_choice=answered, list_predict_params=lambdas, fwer_method="fixed_sequence")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        controller.calibrate(np.asarray(scores, dtype=np.float64).reshape(-1, 1), np.asarray(fine, dtype=int))
    valid = np.asarray(controller.valid_predict_params).reshape(-1)
    if not len(valid):
        return None
    return float(thresholds[int(np.argmin(np.abs(lambdas - valid.min())))])


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * np.asarray(v, dtype=np.float64)) + 0.5



def learn_guard(*, X_fit: np.ndarray, ratio_fit: np.ndarray, X_sel: np.ndarray, ratio_sel: np.ndarray,
                X_cal: np.ndarray, fine_cal: np.ndarray, target: float, seed: int,
                cost: Callable[[tuple[int, ...], float], float],
                topologies: Sequence[tuple[int, ...]] = GUARD_TOPOLOGIES) -> GuardFit | GuardMiss:
    """Fit a score network per topology on (X_fit, ratio_fit), keep the one whose guarded program
    costs least on the selection rows (`cost(hidden, answered share)`: seconds per answer), then
    calibrate its threshold on (X_cal, fine_cal) (`calibrate`)."""
    X_fit, ratio_fit = X_fit[:FIT_ROWS], ratio_fit[:FIT_ROWS]
    if int(np.count_nonzero(ratio_fit > 1.0)) < 5:
        return GuardMiss("fewer than 5 training rows out of tolerance: nothing to learn")
    best: tuple[float, tuple[int, ...], list[Layer], np.ndarray, np.ndarray, np.ndarray] | None = None
    good_sel = ratio_sel <= 1.0
    for hidden in topologies:
        layers, x_mean, x_scale = fit_score(X_fit, ratio_fit, hidden, seed)
        s = score(layers, x_mean, x_scale, X_sel)
        # the empirical threshold on the selection rows: accept the lowest scores while the share of
        # good program answers stays >= target
        order = np.argsort(s, kind="stable")
        misses = np.cumsum(~good_sel[order])
        ok = np.flatnonzero(misses <= (1.0 - target) * len(s))
        answered = (ok.max() + 1) / len(s) if len(ok) else 0.0
        c = cost(hidden, answered)
        if best is None or c < best[0]:
            best = (c, hidden, layers, x_mean, x_scale, s)
    assert best is not None
    _c, hidden, layers, x_mean, x_scale, s_sel = best
    grid = np.quantile(s_sel, np.linspace(0.0, 1.0, GRID))
    s_cal = score(layers, x_mean, x_scale, X_cal)
    threshold = calibrate(s_cal, fine_cal, grid, target)
    if threshold is None:
        return GuardMiss(f"no threshold of the {hidden} guard gives >= {target:.1%} with {CONFIDENCE:.0%} "
                         f"confidence on {len(s_cal)} calibration rows")
    used = s_cal <= threshold
    return GuardFit(hidden=hidden, layers=tuple(layers), x_mean=x_mean, x_scale=x_scale, threshold=threshold,
                    calibration_rows=len(s_cal), accept_rate=float(np.mean(used)),
                    program_accuracy=float(np.mean(~used | fine_cal.astype(bool))))


def folded(fit: GuardFit) -> list[Layer]:
    """The guard's layers with its input scaling folded into the first one (raw inputs in)."""
    from regionx.compile import fold_normalisation

    layers, _s, _m = fold_normalisation(list(fit.layers), fit.x_mean, fit.x_scale, np.zeros(1), np.ones(1))
    return layers


def describe(fit: GuardFit) -> str:
    """One line for reports."""
    width = "x".join(str(h) for h in fit.hidden)
    return (f"learned guard {width} tanh: network answers {fit.accept_rate:.1%} of calibration rows, "
            f"program {fit.program_accuracy:.1%} within tolerance (threshold {fit.threshold:.3g}, "
            f"{fit.calibration_rows} rows, {CONFIDENCE:.0%} confidence)")
