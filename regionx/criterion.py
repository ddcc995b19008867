"""The accuracy criterion: when is a surrogate's answer "within tolerance" (docs/design.md, Accuracy).

One implementation, used by training (selection, refinement weights, the accept predicate's
effective accuracy), by `check` and by the benchmarks. It follows numpy.isclose's convention: a
predicted output p of an exact output y is within tolerance when

    |p - y| <= atol + rtol * |y|

and a row (one call of the region) is within tolerance when every one of its outputs is; a NaN or
infinite prediction never is. The pragma's ``rtol=`` / ``atol=`` set the two numbers directly;
``tolerance=`` + ``metric=`` are shorthand:

* ``metric="abs"``: rtol = 0, atol = tolerance;
* ``metric="rel"``: rtol = tolerance, atol = rtol * floor, where the floor is an output scale below
  which a relative error stops meaning anything (an output near 0). Without ``atol=`` the floor
  comes from the output's own scale: FLOOR_FRACTION x the median |y| of the training outputs, per
  output column. It is recorded in the manifest and the report, with the share of outputs below
  it (a warning when that share exceeds FLOOR_WARN_SHARE).

Manifests written before this criterion existed carry only tolerance + metric; their "rel" used
a fixed floor of REL_FLOOR (1e-3), so they are read as rtol = tolerance, atol = tolerance * 1e-3
(`Criterion.legacy`).

Accuracy on a finite test split is an estimate: selection and targets use its one-sided 95% lower
confidence bound (`lower_bound`, Wilson's score interval), so a claimed 99% is 99% with 95%
confidence, not a lucky draw of 600 points. numpy only: ``regionx check`` needs no scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from regionx.types import REL_FLOOR

# The floor of "rel" as a share of the median |y| (per output column). Measured on the
# relative-tolerance regions of the fixtures and kernels (benchmarks/criterion_floor.py ->
# benchmarks/results/criterion_floor.md; one 8x5 network each, 2,000 test points, rtol 0.01): the
# share of outputs below the floor grows about linearly with the fraction — newton 0.6% / 2.9% /
# 6.3% / 12.2% and cubic_root 0.4% / 1.9% / 4.2% / 8.1% for 0.01 / 0.05 / 0.1 / 0.2 — and so does
# the accuracy it buys by excusing them (newton 91.4% / 93.4% / 94.7% / 96.3%). With 0.05 the
# relative tolerance still judges 97-98% of the outputs, and outputs over three decades
# (1e-7..1e-4) that are 2% off everywhere are rejected as they should be (0.95% pass; 5.2% with
# 0.1; 100% with the old fixed floor of 1e-3, the complaint).
FLOOR_FRACTION = 0.05
# Warn when more than this share of the outputs sit below the floor (judged by atol, not rtol):
# about twice what the measured regions show with FLOOR_FRACTION (1.9-2.9%).
FLOOR_WARN_SHARE = 0.05
# One-sided 95% normal quantile (Wilson's lower bound).
Z_95 = 1.6448536269514722
CONFIDENCE = 0.95

SOURCES = ("abs", "atol", "floor", "legacy")


@dataclass(frozen=True)
class Criterion:
    """|pred - exact| <= atol + rtol * |exact| per output; a row passes when all its outputs do.

    `atol` holds one value per output column (a single value broadcasts). `floor` is the output
    scale the atol came from (atol = rtol * floor) when it was derived rather than given, and
    `below_floor` the share of the reference outputs below it. `source` says where the numbers
    came from: "abs" (metric="abs"), "atol" (given), "floor" (rel, floor from the outputs' scale)
    or "legacy" (an old manifest: rel with the fixed 1e-3 floor).
    """

    rtol: float
    atol: tuple[float, ...]
    source: str = "atol"
    floor: tuple[float, ...] | None = None
    floor_fraction: float | None = None
    below_floor: float | None = None

    # ---------------------------------------------------------------- construction

    @classmethod
    def legacy(cls, metric: str, tolerance: float) -> "Criterion":
        """The criterion of regionx's old metrics: "abs" as is, "rel" with the fixed REL_FLOOR."""
        if metric == "abs":
            return cls(0.0, (float(tolerance),), "abs")
        if metric != "rel":
            raise ValueError(f"metric must be 'rel' or 'abs', not {metric!r}")
        return cls(float(tolerance), (float(tolerance) * REL_FLOOR,), "legacy", floor=(REL_FLOOR,))

    @classmethod
    def resolve(cls, *, reference: np.ndarray, tolerance: float | None = None, metric: str | None = None,
                rtol: float | None = None, atol: float | Sequence[float] | None = None,
                floor_fraction: float = FLOOR_FRACTION) -> "Criterion":
        """The criterion a region asks for. `rtol`/`atol` (either may be None) win over the
        shorthand `tolerance`/`metric`; a relative tolerance without an atol gets the floor from
        `reference` (the training outputs, n x d_out). Raises ValueError for impossible values."""
        ref = np.abs(np.asarray(reference, dtype=np.float64))
        ref = ref.reshape(len(ref), -1) if ref.ndim != 2 else ref
        if rtol is None and atol is None:
            if tolerance is None or metric is None:
                raise ValueError("give tolerance and metric, or rtol/atol")
            if not (tolerance > 0 and math.isfinite(tolerance)):
                raise ValueError(f"tolerance must be positive, not {tolerance!r}")
            if metric == "abs":
                return cls(0.0, (float(tolerance),), "abs", below_floor=None)
            if metric != "rel":
                raise ValueError(f"metric must be 'rel' or 'abs', not {metric!r}")
            rtol = float(tolerance)
        r = 0.0 if rtol is None else float(rtol)
        if not (r >= 0 and math.isfinite(r)):
            raise ValueError(f"rtol must be >= 0, not {rtol!r}")
        if atol is not None:
            values = tuple(float(a) for a in (atol if isinstance(atol, (list, tuple)) else (atol,)))
            if not all(a >= 0 and math.isfinite(a) for a in values) or (r == 0 and not any(a > 0 for a in values)):
                raise ValueError(f"atol must be >= 0 (and > 0 when rtol is 0), not {atol!r}")
            floor = tuple(a / r for a in values) if r > 0 else None
            return cls(r, values, "atol", floor=floor, below_floor=_below(ref, floor))
        if r == 0:
            raise ValueError("rtol must be > 0 when no atol is given")
        floor = derived_floor(ref, floor_fraction)
        return cls(r, tuple(r * f for f in floor), "floor", floor=floor, floor_fraction=floor_fraction,
                   below_floor=_below(ref, floor))

    # ---------------------------------------------------------------- judging

    def allowed(self, exact: np.ndarray) -> np.ndarray:
        """The largest error allowed at each exact output: atol + rtol * |exact| (same shape)."""
        exact = np.asarray(exact, dtype=np.float64)
        atol = np.asarray(self.atol, dtype=np.float64)
        if exact.ndim == 2 and atol.size not in (1, exact.shape[1]):
            raise ValueError(f"criterion has {atol.size} atol values for {exact.shape[1]} outputs")
        return atol + self.rtol * np.abs(exact)

    def error_ratio(self, pred: np.ndarray, exact: np.ndarray) -> np.ndarray:
        """Per row, the largest |pred - exact| / allowed of its outputs (<= 1: within tolerance;
        inf for a NaN or infinite prediction)."""
        exact = _2d(exact)
        pred = np.asarray(pred, dtype=np.float64).reshape(exact.shape)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            ratio = np.abs(pred - exact) / self.allowed(exact)
        ratio = np.where(np.isfinite(ratio) | (np.abs(pred - exact) == 0), ratio, np.inf)
        ratio = np.nan_to_num(ratio, nan=0.0, posinf=np.inf)  # 0/0: exact answer where nothing is allowed
        return ratio.max(axis=1) if ratio.size else np.zeros(len(exact))

    def within(self, pred: np.ndarray, exact: np.ndarray) -> np.ndarray:
        """Per row: is every output within tolerance? (numpy.isclose's rule, NaN never is.)"""
        exact = _2d(exact)
        pred = np.asarray(pred, dtype=np.float64).reshape(exact.shape)
        with np.errstate(invalid="ignore", over="ignore"):
            ok = np.abs(pred - exact) <= self.allowed(exact)
        return np.all(ok & np.isfinite(pred), axis=1)

    def errors(self, pred: np.ndarray, exact: np.ndarray) -> np.ndarray:
        """Per output, the error in the criterion's own unit: |p - y| / (floor + |y|) when it is
        relative (the relative error, softened near zero by the floor), else |p - y|; inf for
        a non-finite prediction."""
        exact = _2d(exact)
        pred = np.asarray(pred, dtype=np.float64).reshape(exact.shape)
        diff = np.abs(pred - exact)
        if self.rtol > 0:
            scale = np.asarray(self.atol, dtype=np.float64) / self.rtol + np.abs(exact)
            with np.errstate(invalid="ignore", divide="ignore"):
                diff = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), np.where(diff == 0, 0.0, np.inf))
        return np.where(np.isfinite(diff), diff, np.inf)

    # ---------------------------------------------------------------- text and JSON

    @property
    def metric(self) -> str:
        """The shorthand metric this criterion corresponds to ("rel" when rtol > 0)."""
        return "rel" if self.rtol > 0 else "abs"

    @property
    def tolerance(self) -> float:
        """The shorthand tolerance: rtol when relative, else the (largest) atol."""
        return self.rtol if self.rtol > 0 else max(self.atol)

    def describe(self) -> str:
        """One line for reports and messages, e.g. ``|pred - exact| <= 0.00012 + 0.01 x |exact|
        (atol = rtol x floor, floor 0.05 x median |y| = 0.24)``."""
        atol = ", ".join(f"{a:.3g}" for a in self.atol)
        atol = atol if len(self.atol) == 1 else f"[{atol}]"
        text = f"|pred - exact| <= {atol}" + (f" + {self.rtol:g} x |exact|" if self.rtol > 0 else "")
        if self.source == "floor" and self.floor is not None:
            floors = ", ".join(f"{f:.3g}" for f in self.floor)
            text += f" (atol = rtol x floor; floor {self.floor_fraction:g} x median |y| = {floors})"
        elif self.source == "legacy":
            text += f" (rel with the fixed floor {REL_FLOOR:g})"
        return text

    def floor_warning(self) -> str | None:
        """A sentence when many reference outputs sit below the floor (they are judged by atol)."""
        if self.below_floor is None or self.floor is None or self.below_floor <= FLOOR_WARN_SHARE:
            return None
        return (f"{self.below_floor:.1%} of the outputs are smaller than the floor "
                f"{', '.join(f'{f:.3g}' for f in self.floor)}, where the absolute tolerance "
                f"{', '.join(f'{a:.3g}' for a in self.atol)} judges them instead of the relative one; "
                "give atol= in the pragma if that is not what you want")

    def to_json(self) -> dict[str, Any]:
        return {"rtol": self.rtol, "atol": list(self.atol), "source": self.source,
                "floor": None if self.floor is None else list(self.floor), "floor_fraction": self.floor_fraction,
                "below_floor": self.below_floor, "rule": "|pred - exact| <= atol + rtol * |exact|"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Criterion":
        floor = data.get("floor")
        return cls(rtol=float(data["rtol"]), atol=tuple(float(a) for a in data["atol"]),
                   source=str(data.get("source", "atol")), floor=None if floor is None else tuple(float(f) for f in floor),
                   floor_fraction=_float_or_none(data.get("floor_fraction")),
                   below_floor=_float_or_none(data.get("below_floor")))


def derived_floor(reference: np.ndarray, fraction: float = FLOOR_FRACTION) -> tuple[float, ...]:
    """Per output column: `fraction` x the median |y| of `reference` (n x d_out); a column whose
    median is 0 (mostly zeros) uses its mean |y|, and an all-zero column REL_FLOOR."""
    ref = np.abs(np.asarray(reference, dtype=np.float64))
    ref = ref.reshape(len(ref), -1) if ref.ndim != 2 else ref
    floors = []
    for k in range(ref.shape[1]):
        col = ref[:, k][np.isfinite(ref[:, k])]
        scale = float(np.median(col)) if col.size else 0.0
        if scale <= 0 and col.size:
            scale = float(np.mean(col))
        floors.append(fraction * scale if scale > 0 else REL_FLOOR)
    return tuple(floors)


def _below(ref: np.ndarray, floor: tuple[float, ...] | None) -> float | None:
    """Share of reference outputs (all columns) with |y| below the floor."""
    if floor is None or ref.size == 0:
        return None
    return float(np.mean(ref < np.asarray(floor, dtype=np.float64)))


def _2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(len(a), -1) if a.ndim != 2 else a


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


# --------------------------------------------------------------------------- confidence bound


def lower_bound(successes: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided lower confidence bound of a share from `successes` of `n` (Wilson's score
    interval; 0 when n is 0). With confidence 0.95: 600 of 600 -> 0.99552, 1980 of 2000 -> 0.98571.

    Wilson rather than Clopper-Pearson: it needs no scipy (``regionx check`` runs on numpy
    alone) and is close to exact coverage where it matters here (shares near 1 with n in the
    thousands: 2000 of 2000 gives 0.99865 against Clopper-Pearson's 0.99850).
    """
    if n <= 0:
        return 0.0
    z = Z_95 if confidence == CONFIDENCE else _normal_quantile(confidence)
    p = min(max(successes / n, 0.0), 1.0)
    denom = 1.0 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denom)


def upper_bound(successes: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided upper confidence bound of a share (Wilson's, as `lower_bound`; 1 when n is 0):
    below a target, there is evidence at `confidence` that the share is below it."""
    return 1.0 - lower_bound(n - successes, n, confidence) if n > 0 else 1.0


def _normal_quantile(q: float) -> float:
    """Standard normal quantile by bisection on erf (only for non-default confidences)."""
    lo, hi = -10.0, 10.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def points_needed(target: float, confidence: float = CONFIDENCE) -> int:
    """The fewest test points whose perfect score clears `target` by the lower bound (how many
    points a bound needs to be able to say "meets the target" at all)."""
    n = 1
    while lower_bound(n, n, confidence) < target and n < 10**7:
        n *= 2
    lo, hi = n // 2, n
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if lower_bound(mid, mid, confidence) >= target:
            hi = mid
        else:
            lo = mid
    return hi
