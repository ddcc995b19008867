"""The search's cost model: candidates timed before training, the order they are trained in, the
budget in nominal seconds (`Ledger`), how a dose of it is split between Adam and refinement, and
the events a progress display follows (docs/design.md, "Surrogate search and budget")."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from regionx import compile as rxcompile
from regionx.train.metrics import BATCH_ROWS, CALL_ROWS
from regionx.train.topologies import topology_label

# `--budget` (seconds per region) is spent in nominal seconds of a cost model, not by the clock, so
# that a fixed seed gives the same search on a busy machine: Adam costs ADAM_FIXED_SECONDS per
# network (building and tracing the Keras model) plus ADAM_STEP_SECONDS per optimizer step
# (measured on this project's 2-core machine: 0.40-0.51 ms per step for 2x8x1 .. 3x32x32x1 on
# 2,800-20,000 rows at batch 32-64, ~0.8 s per network besides); refinement costs what its own
# cost model says (regionx.refine.iteration_budget) for the iterations it used; compiling and
# measuring a trained network MEASURE_SECONDS; timing one candidate before training (its module
# with random weights, in TIMING_ROUNDS interleaved rounds) TIMING_SECONDS. The wall clock only
# stops a search that runs over WALL_FACTOR x the budget (a much slower machine than the
# model's); the report says when it did.
#
# DEFAULT_BUDGET is per region. Measured (benchmarks/results/compile_defaults.md) the wall clock ran 1.0-1.8x the
# nominal seconds on the shared, loaded 2-core machine, so a 3-region file searches for 6-10 min
# at worst, sampling aside; most regions meet the target well within it.
DEFAULT_BUDGET = 120.0
ADAM_FIXED_SECONDS = 1.0
ADAM_STEP_SECONDS = 4.5e-4
MEASURE_SECONDS = 2.0
TIMING_SECONDS = 1.0
TIMING_ROUNDS = 3
WALL_FACTOR = 1.5
# Each candidate's first dose is the budget left over min(SPREAD, candidates left): the search
# plans to try about three networks. Adam gets up to ADAM_SHARE of a dose, refinement the rest.
# A candidate still improving at the end of its dose (refinement stopped by its iteration budget,
# not a plateau, and validation accuracy up by at least IMPROVING) is refined again with
# EXTEND_FACTOR x the last dose, up to twice its share, while the budget lasts (MAX_ROUNDS).
SPREAD = 3
# A-priori times within this share of each other are a tie in the training order, broken by fewer
# weights: small networks' times differ by less than the timer's noise on a shared machine, and
# an order that flips from run to run would make the search's choice depend on the moment. 10%
# was too narrow: the same 8-tanh module's batched-loop time read 72-103 ns between rounds of one
# process, and ci_repo's overlap region trained 8x5 first in one compile_defaults run, 8 in others.
ORDER_TIE_BAND = 0.20
ADAM_SHARE = 0.4
MIN_EPOCHS = 5
MIN_DOSE = 6.0  # nominal seconds: below this no further candidate is started
EXTEND_FACTOR = 2.0
MAX_ROUNDS = 3
IMPROVING = 0.002
# More data: when a candidate misses its target, fits its training split better than its
# validation split by GROW_GAP or more (it would generalise better from more samples), fits its
# training split well enough to meet the target (more samples add no capacity) and the
# caller can sample (`grow`), the training split is doubled (up to GROW_MAX_ROWS rows) and the
# network refined on it. The test split never changes.
GROW_GAP = 0.01
GROW_MAX_ROWS = 200_000
# Nominal cost of sampling one more row: the exact code's time per call (from the dataset, so the
# charge is deterministic) times this estimate of the sampler's overhead (harness call, run-time
# checks, worker hand-off).
GROW_SAMPLE_FACTOR = 1.5

# seconds per call ("call") or per row of the batched loop ("loop") of a compiled module on rows X
SurrogateTimer = Callable[[Any, np.ndarray, str], float]
# What the search asks of its caller for more data: grow(n, weigh) -> n more samples as (X, Y), or
# None; `weigh` maps candidate inputs (rows of X) to how much the network errs near each, so the
# caller can place most new samples where the validation error is largest (api._grower).
Weigh = Callable[[np.ndarray], np.ndarray]
Grow = Callable[[int, "Weigh | None"], "tuple[np.ndarray, np.ndarray] | None"]


@dataclass(frozen=True)
class SearchEvent:
    """What the search is doing, for a progress display (the CLI draws it; nothing here prints).

    `stage` is one of "timing" (candidates timed with random weights), "adam" (done/total
    epochs), "refine", "extend" (refining longer), "grow" (sampling more), "measure", "met"
    (a candidate met the target), "refused" (no candidate can beat the exact code), "done".
    `budget_left` is in nominal seconds (None: no budget).
    """

    region: str
    stage: str
    candidate: str | None = None
    done: int = 0
    total: int = 0
    budget: float | None = None
    budget_left: float | None = None
    detail: str = ""


EventFn = Callable[[SearchEvent], None]


def hoisted_loop_cost(text: str, region: Any, path: str = "<source>") -> tuple[list[int], float]:
    """(lines of the loops the rewrite would batch for `region`, the least per-row cost their form
    adds to the batched predict: a distributed loop's first pass, regionx.rewrite's cost model).

    Asks the rewrite package: `hoistable_sites` for the sites, each with its own cost estimate
    (`extra_seconds`), as the rewrite's profitability uses them."""
    from regionx.rewrite.patch import hoistable_sites

    sites = hoistable_sites(text, region, path)
    if not sites:
        return [], 0.0
    return [site.line for site in sites], min(float(site.extra_seconds or 0.0) for site in sites)


def default_surrogate_timer(module: Any, X: np.ndarray, form: str) -> float:
    """Seconds per call of `module.predict_one` ("call") or per row of the batched map loop the
    rewrite runs (`regionx.compile.time_per_row`, the batching helper's own timing: list columns
    in, guard, predict, stores; "loop") on rows of X. The hook train_dataset's `surrogate_timer`
    replaces (tests inject fake timings through it)."""
    if form == "call":
        from regionx.types import VarSpec

        inputs = [VarSpec(str(n), tuple(sh)) for n, sh in zip(module.INPUTS, module.INPUT_SHAPES)]
        return rxcompile.time_per_call(module.predict_one, rxcompile.call_args(X[:CALL_ROWS], inputs), repeats=5)
    if form == "loop":
        return rxcompile.time_per_row(module, X, rows=BATCH_ROWS, repeats=5)
    raise ValueError(f"form must be 'call' or 'loop', not {form!r}")


@dataclass
class Candidate:
    """One topology of the search: its a-priori cost (random weights, the form it will run in)
    and, once trained, its state."""

    index: int  # position in the topology list given
    hidden: tuple[int, ...]
    activation: str
    n_weights: int
    time_per_call: float | None = None
    time_per_row: float | None = None
    viable: bool = True
    order: int | None = None  # position in the training order (None: not to be trained)
    status: str = "not tried"  # not tried | met target | missed target | not faster than the exact code | budget spent

    @property
    def label(self) -> str:
        return topology_label(self.hidden, self.activation)

    def cost(self, form: str) -> float:
        """Its measured time in `form` ("call" or "loop"), inf when not measured."""
        t = self.time_per_call if form == "call" else self.time_per_row
        return float("inf") if t is None else float(t)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "hidden": list(self.hidden), "activation": self.activation,
                "weights": self.n_weights, "time_per_call": self.time_per_call, "time_per_row": self.time_per_row,
                "viable": self.viable, "order": self.order, "status": self.status}


def training_order(candidates: Sequence[Candidate], form: str, exact_time: float, extra: float = 0.0,
                   tie_band: float = ORDER_TIE_BAND) -> list[Candidate]:
    """The viable candidates, fastest first; marks the others not viable.

    A candidate is viable when its a-priori time in `form`, plus `extra` seconds per row that the
    loop's form adds (a distributed loop's first pass), is below `exact_time`: at perfect accuracy
    it would still be faster than the exact code. Times within `tie_band` of each other are a tie
    (timer noise), broken by fewer weights, then by the position in the list given, so the same
    timings always give the same order."""
    for c in candidates:
        c.viable = c.cost(form) + extra < exact_time
        if not c.viable:
            c.status = "not faster than the exact code"
    viable = [c for c in candidates if c.viable]
    ordered: list[Candidate] = []
    rest = sorted(viable, key=lambda c: (c.cost(form), c.n_weights, c.index))
    while rest:
        # the fastest left and everything within the band of it, by (weights, index)
        band = [c for c in rest if c.cost(form) <= rest[0].cost(form) * (1.0 + tie_band)]
        band.sort(key=lambda c: (c.n_weights, c.index))
        ordered.append(band[0])
        rest.remove(band[0])
    for k, c in enumerate(ordered):
        c.order = k
    return ordered


class Ledger:
    """The budget in nominal seconds, what was charged for what, and the wall clock beside it."""

    def __init__(self, seconds: float | None, region: str, events: EventFn | None) -> None:
        self.seconds = seconds
        self.spent = 0.0
        self.wall0 = time.perf_counter()
        self.log: list[dict[str, Any]] = []
        self.region = region
        self.events = events

    def left(self) -> float:
        return math.inf if self.seconds is None else max(0.0, self.seconds - self.spent)

    def wall(self) -> float:
        return time.perf_counter() - self.wall0

    def over_wall(self) -> bool:
        """The hard stop: the wall clock past WALL_FACTOR x the budget."""
        return self.seconds is not None and self.wall() > WALL_FACTOR * self.seconds

    @staticmethod
    def deadline(nominal: float) -> float:
        """The perf_counter time by which a step of `nominal` seconds is stopped: WALL_FACTOR x
        its nominal seconds from now."""
        return time.perf_counter() + WALL_FACTOR * nominal

    def charge(self, stage: str, nominal: float, wall: float, candidate: str | None = None, **info: Any) -> None:
        self.spent += nominal
        self.log.append({"stage": stage, "candidate": candidate, "nominal_s": round(nominal, 3),
                         "wall_s": round(wall, 3), "budget_left_s": None if self.seconds is None else round(self.left(), 3),
                         **info})

    def emit(self, stage: str, candidate: str | None = None, done: int = 0, total: int = 0, detail: str = "") -> None:
        if self.events is not None:
            left = None if self.seconds is None else self.left()
            self.events(SearchEvent(self.region, stage, candidate, done, total, self.seconds, left, detail))


def plan_dose(dose: float, n_train: int, batch: int, max_epochs: int, max_refine: float, refine: str) -> tuple[int, float]:
    """(Adam epochs, refinement seconds) that a dose of `dose` nominal seconds buys for a network
    on `n_train` rows at mini-batch `batch`: Adam up to ADAM_SHARE of the dose (at least
    MIN_EPOCHS epochs, at most `max_epochs`), refinement what is left (at most `max_refine`)."""
    if not math.isfinite(dose):
        return max_epochs, (max_refine if refine != "none" else 0.0)
    per_epoch = math.ceil(n_train / batch) * ADAM_STEP_SECONDS
    usable = max(0.0, dose - MEASURE_SECONDS - ADAM_FIXED_SECONDS)
    adam = usable * (ADAM_SHARE if refine != "none" else 1.0)
    epochs = int(min(max_epochs, max(min(MIN_EPOCHS, max_epochs), adam // max(per_epoch, 1e-9))))
    rest = usable - epochs * per_epoch
    return epochs, (0.0 if refine == "none" else float(min(max_refine, max(0.0, rest))))


def adam_nominal(steps: int) -> float:
    """Nominal seconds of an Adam run of `steps` optimizer steps."""
    return ADAM_FIXED_SECONDS + steps * ADAM_STEP_SECONDS


def refine_nominal(summary: dict[str, Any], n_weights: int, n_residuals: int) -> float:
    """Nominal seconds of a refinement: its nominal time x the share of its iteration budget used."""
    from regionx import refine as rxrefine

    seconds = float(summary.get("nominal_seconds", 0.0) or 0.0)
    attempts = summary.get("attempts") or []
    if seconds <= 0 or not attempts:
        return 0.0
    method = str(attempts[0].get("optimizer", "lm"))
    total = rxrefine.iteration_budget(method, n_weights, n_residuals, seconds)
    used = sum(int(a.get("iterations" if method == "lm" else "nfev", 0) or 0) for a in attempts)
    return seconds * min(1.0, used / max(total, 1))


def still_improving(summary: dict[str, Any]) -> bool:
    """Whether a refinement ended because its iteration budget ran out while the validation
    accuracy was still rising (not on a plateau, converged or at the deadline)."""
    attempts = summary.get("attempts") or []
    before, after = summary.get("val_accuracy_before"), summary.get("val_accuracy_after")
    gain = (after - before) if before is not None and after is not None else 0.0
    return bool(attempts) and any(a.get("status") == "max_iter" for a in attempts) and gain >= IMPROVING
