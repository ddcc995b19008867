"""The data one search works on: the seeded train / validation / test split, normalisation, the
output transform, and `_Context`, what every step of the search shares."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from regionx.compile import input_features
from regionx.criterion import Criterion
from regionx.train.budget import SurrogateTimer
from regionx.train.metrics import residual_weights
from regionx.types import REL_FLOOR, Dataset, DomainSpec

SPLIT = (0.70, 0.15, 0.15)  # train / validation / test (the test share is raised to TEST_POINTS rows; `_split`)
# Accuracy is judged by its one-sided 95% lower confidence bound (regionx.criterion.lower_bound), so
# the test split needs enough rows for the bound to tell a good network from a target-grazing one:
# with 2,000 rows a network with 99.5% of its answers within tolerance has a bound of 99.17% and
# meets a 99% target; with 600 (15% of 4,000) its bound is 98.76% and it does not.
TEST_POINTS = 2000
TEST_MAX_SHARE = 0.25
MIN_SAMPLES = 20
# The box the surrogate answers in is the training inputs' range, widened to the declared
# domain's bound on each side the samples come within BOX_REACH x its width of: the gap there is
# sampling's (about width / n), not a region the network has not learnt, and without widening a
# program drawing from the declared domain sends its few rows in that gap to the exact code
# (fixtures/projectile.py: 5 of 10,000 launches, each 0.7 ms).
BOX_REACH = 0.01
# Mini-batch size when none is given: about 1/256 of the training rows, a power of two in [32, 512].
# (Measured on the Newton region, 100k samples, 3x32x32x1 tanh, 60 epochs: batch 256 + cosine decay
# reaches 75% of test points within 1% where batch 64 + plateau halving on 4k samples reached 30-57%.)
AUTO_BATCH_MIN, AUTO_BATCH_MAX, AUTO_BATCH_ROWS = 32, 512, 256
# Metric "rel": train on t = asinh(y / s) rather than y. For |y| >> s an absolute error in t is the
# relative error in y, so MSE on t weighs points the way the metric does; s keeps small |y| from
# dominating. s = max(REL_FLOOR, REL_TRANSFORM_FRACTION * median |y|). Measured on the Newton region
# (3x32x32x1, 100k samples, 60 epochs): 79% vs 75% within 1%, 98.7% vs 95.0% within 5%; but with
# smaller budgets/networks it lowers the share within 1% (30k samples, 40 epochs: 5x3 11% vs 27%,
# 8x5 19% vs 42%, 32x32 51% vs 61%) while still halving the mean error. So "auto" uses it only
# when the outputs span orders of magnitude (REL_TRANSFORM_SPAN), where plain MSE cannot see
# the small ones at all.
REL_TRANSFORM_FRACTION = 0.05
REL_TRANSFORM_SPAN = 100.0  # quantile(|y|, 0.9) / max(quantile(|y|, 0.1), REL_FLOOR) above this: asinh
TARGET_TRANSFORMS = ("auto", "asinh", "none")


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded train / validation / test index split: 15% validation; 15% test, raised to
    TEST_POINTS rows when that takes at most TEST_MAX_SHARE of the data (so the accuracy's lower
    confidence bound can tell 99.5% from 99%); at least one row in each of validation and test."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * SPLIT[1])))
    n_test = max(1, int(round(n * SPLIT[2])), min(TEST_POINTS, int(n * TEST_MAX_SHARE)))
    n_train = n - n_val - n_test
    return perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]


def _scale(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = a.mean(axis=0)
    std = a.std(axis=0)
    std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)  # constant column: identity scale
    return mean, std


def auto_batch_size(n_train: int) -> int:
    """Default mini-batch size for `n_train` training rows (see AUTO_BATCH_ROWS)."""
    want = max(1.0, n_train / AUTO_BATCH_ROWS)
    return int(min(AUTO_BATCH_MAX, max(AUTO_BATCH_MIN, 2 ** round(math.log2(want)))))


def target_transform_for(Y: np.ndarray, metric: str, kind: str = "auto") -> tuple[str, float] | None:
    """The output transform to train through: ("asinh", s) or None (train on y itself).

    "auto" is asinh for metric "rel" when the outputs span more than REL_TRANSFORM_SPAN (ratio of
    the 90th to the 10th percentile of |y|), else none; s = max(REL_FLOOR, REL_TRANSFORM_FRACTION
    * median |y|) over the training outputs.
    """
    if kind not in TARGET_TRANSFORMS:
        raise ValueError(f"target_transform must be one of {', '.join(TARGET_TRANSFORMS)}, not {kind!r}")
    if kind == "none" or (kind == "auto" and metric != "rel") or not Y.size:
        return None
    mag = np.abs(Y)
    if kind == "auto" and float(np.quantile(mag, 0.9)) <= REL_TRANSFORM_SPAN * max(float(np.quantile(mag, 0.1)), REL_FLOOR):
        return None
    med = float(np.median(mag))
    return ("asinh", max(REL_FLOOR, REL_TRANSFORM_FRACTION * med))


@dataclass
class _Context:
    """What every step of one search shares: the data, its split and scaling, the criterion."""

    dataset: Dataset
    X: np.ndarray
    Y: np.ndarray
    tr: np.ndarray
    va: np.ndarray
    te: np.ndarray
    criterion: Criterion
    transform: tuple[str, float] | None
    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    target: float
    exact_timer: Callable[[], float] | None
    timer: SurrogateTimer
    select_by: str
    refine: str
    seed: int
    loop_extra: float = 0.0  # seconds per row the batched loop's form adds beside the predict
    guard: str = "auto"  # regionx.guard.GUARD_MODES
    # training rows added by `grow` (original units), beside X[tr]
    X_more: np.ndarray | None = None
    Y_more: np.ndarray | None = None
    log_cols: tuple[int, ...] = ()  # input columns the network sees as their log (`log_columns`)

    @classmethod
    def prepare(cls, dataset: Dataset, X: np.ndarray, Y: np.ndarray, split: tuple[np.ndarray, np.ndarray, np.ndarray],
                criterion: Criterion, target_transform: str, *, target: float, exact_timer: Callable[[], float] | None,
                timer: SurrogateTimer, select_by: str, refine: str, seed: int, loop_extra: float, guard: str) -> _Context:
        """The context of a search on `dataset` (X, Y: its rows as float64) split into `split`: inputs
        and outputs scaled, and the trained input box taken, on the training split; the output
        transform (`target_transform_for`) chosen for the criterion's metric."""
        tr, va, te = split
        log_cols = log_columns(dataset, X)
        x_mean, x_scale = _scale(input_features(X[tr], log_cols))
        lower, upper = trained_box(dataset, X[tr])
        transform = target_transform_for(Y[tr], criterion.metric, target_transform)
        y_mean, y_scale = _scale((Y if transform is None else np.arcsinh(Y / transform[1]))[tr])
        return cls(dataset=dataset, X=X, Y=Y, tr=tr, va=va, te=te, criterion=criterion, transform=transform,
                   x_mean=x_mean, x_scale=x_scale, y_mean=y_mean, y_scale=y_scale, lower=lower, upper=upper,
                   target=target, exact_timer=exact_timer, timer=timer, select_by=select_by, refine=refine, seed=seed,
                   loop_extra=loop_extra, guard=guard, log_cols=log_cols)

    @property
    def meta(self) -> Any:
        return self.dataset.meta

    def train_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The training split in original units, grown rows included."""
        if self.X_more is None or self.Y_more is None:
            return self.X[self.tr], self.Y[self.tr]
        return np.vstack([self.X[self.tr], self.X_more]), np.vstack([self.Y[self.tr], self.Y_more])

    def inputs_normalised(self, X: np.ndarray) -> np.ndarray:
        """Inputs in original units as the network sees them: log columns, then standardised."""
        return (input_features(X, self.log_cols) - self.x_mean) / self.x_scale

    def normalised(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        T = Y if self.transform is None else np.arcsinh(Y / self.transform[1])
        return self.inputs_normalised(X), (T - self.y_mean) / self.y_scale

    def task(self, hidden: tuple[int, ...], activation: str, epochs: int, batch_size: int, learning_rate: float,
             patience: int, refine_seconds: float, restarts: int | None = None) -> dict[str, Any]:
        """A picklable training task (regionx.train.fit._train_topology) on the current training split."""
        Xt, Yt = self.train_rows()
        Xtn, Ytn = self.normalised(Xt, Yt)
        Xvn, Yvn = self.normalised(self.X[self.va], self.Y[self.va])
        weights_tr = weights_va = None
        if self.refine != "none":
            weights_tr = residual_weights(Yt, self.criterion, self.transform, self.y_scale)
            weights_va = residual_weights(self.Y[self.va], self.criterion, self.transform, self.y_scale)
            if weights_tr is None or weights_va is None:
                weights_tr = weights_va = None
        return {
            "hidden": hidden, "activation": activation, "seed": self.seed, "epochs": epochs,
            "batch_size": batch_size, "learning_rate": learning_rate, "patience": patience,
            # float64: Keras gets float32 copies, the refinement works in float64
            "Xtr": Xtn, "Ytr": Ytn, "Xva": Xvn, "Yva": Yvn, "Wtr": weights_tr, "Wva": weights_va,
            "refine": self.refine, "refine_seconds": refine_seconds, "restarts": restarts,
            # so refinement can judge its attempts by the share of validation rows within tolerance
            "val_exact": self.Y[self.va], "y_mean": self.y_mean, "y_scale": self.y_scale, "transform": self.transform,
            "criterion": self.criterion,
        }

    def exact_now(self) -> float:
        return self.exact_timer() if self.exact_timer is not None else float(self.meta.exact_time_per_call)

    def exact_settled(self, tries: int = 6, agree: float = 0.1) -> float:
        """The exact code's seconds per call once two readings in a row agree within `agree` (at
        most `tries` readings). Right after TensorFlow trains, its threads keep the cores busy for a
        few tenths of a second: the cubic's exact call read 2.27 us there, 1.40 us half a second
        later, and every speedup predicted from the first reading came out a third too high."""
        if self.exact_timer is None:
            return float(self.meta.exact_time_per_call)
        last = self.exact_timer()
        for _ in range(tries - 1):
            now = self.exact_timer()
            if abs(now - last) <= agree * min(now, last):
                return min(now, last)
            last = now
        return last


@dataclass(frozen=True)
class _Settings:
    """One search's training settings as resolved (`batch_size` never None) and regionx's version,
    passed from step to step."""

    epochs: int  # the most any candidate is trained for
    batch_size: int
    learning_rate: float
    patience: int
    refine_seconds: float  # the first dose of refinement per candidate
    version: str


def _declared_inputs(dataset: Dataset) -> list[tuple[DomainSpec | None, int, int]]:
    """Per input of `dataset`: (its declared domain, None when it has no parseable one; its first
    flattened column; its number of columns)."""
    from regionx.pragma import PragmaError, parse_domain

    out: list[tuple[DomainSpec | None, int, int]] = []
    k = 0
    for var in dataset.meta.inputs:
        size = int(math.prod(var.shape)) if var.shape else 1
        text = dataset.meta.domain.get(var.name)
        try:
            spec = parse_domain(var.name, text) if text is not None else None
        except PragmaError:
            spec = None
        out.append((spec, k, size))
        k += size
    return out


def log_columns(dataset: Dataset, X: np.ndarray) -> tuple[int, ...]:
    """Flattened input columns declared loguniform (and positive in every row): the network sees
    their log. A loguniform input spans decades, and a function of it is usually smooth in its log
    (benchmarks/kernels/pipeflow.py, 8x5 tanh, 12,000 samples: 50.5% of test points within 1% on
    the raw inputs, 99.9% on their logs)."""
    cols: list[int] = []
    for spec, k, size in _declared_inputs(dataset):
        positive = k + size <= X.shape[1] and bool(np.all(X[:, k:k + size] > 0))
        if spec is not None and spec.dist == "loguniform" and positive:
            cols += range(k, k + size)  # an input's columns all or none (its predict_one takes its log)
    return tuple(cols)


def declared_bounds(dataset: Dataset) -> tuple[np.ndarray, np.ndarray] | None:
    """Per flattened input column, the (lower, upper) of its declared continuous box (the
    pragma's uniform/loguniform; NaN for other distributions), or None when an input has no
    parseable domain."""
    lows: list[float] = []
    highs: list[float] = []
    for spec, _k, size in _declared_inputs(dataset):
        if spec is None:
            return None
        if spec.dist in ("uniform", "loguniform"):
            lo, hi = float(spec.args[0]), float(spec.args[1])
        else:  # normal: unbounded; integers, choice: discrete, their gaps are not sampling's
            lo, hi = math.nan, math.nan
        lows += [lo] * size
        highs += [hi] * size
    return np.array(lows), np.array(highs)


def trained_box(dataset: Dataset, X_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The input box the surrogate answers in (see BOX_REACH): the training rows' range, each
    side moved out to the declared bound when the rows come that close to it."""
    lower = X_train.min(axis=0)
    upper = X_train.max(axis=0)
    declared = declared_bounds(dataset)
    if declared is None or len(declared[0]) != X_train.shape[1]:
        return lower, upper
    lo, hi = declared
    width = hi - lo
    finite = np.isfinite(width) & (width > 0)
    reach = np.where(finite, BOX_REACH * np.where(finite, width, 0.0), 0.0)
    widen_low = finite & (lower >= lo) & (lower - lo <= reach)
    widen_high = finite & (upper <= hi) & (hi - upper <= reach)
    return np.where(widen_low, lo, lower), np.where(widen_high, hi, upper)
