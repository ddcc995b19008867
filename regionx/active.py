"""Sequential design: sample an expensive region in rounds, placing each round's new inputs where
the surrogate trained on the samples so far is least accurate (issue 14, "fewer samples").

Round 0 draws a quarter, an eighth ... of the budget from the chosen design (regionx.sample
DESIGNS); every later round doubles the samples taken so far. Before a round, a surrogate is fitted
to the samples so far (`fit`: in compile, one topology trained by regionx.train) and its error is
measured on each of them, in units of the tolerance (`Criterion.error_ratio` of `dataset_criterion`: 1.0 is at the tolerance). The
new inputs are chosen from a pool of candidates drawn from the same design (so require= holds and
the box stays covered): a share `explore` in the design's own order (whatever the errors say, so
a region the first rounds missed is still found), the rest by weighted sampling without
replacement, weight = the mean error ratio of the candidate's nearest sampled neighbours. The
rows chosen are then run like any others (regionx.sample.sample_region with `rows=`), on one
pool of workers kept across rounds.

Why nearest neighbours of the training residuals rather than a held-out split: the networks
regionx trains are small and underfit rather than overfit, so the residual map shows where the
function is hard; and every sample counts towards the next round.

Whether this pays is measured, not assumed: benchmarks/sampling.py compares samples-to-target of
uniform, space-filling and active sampling on fixtures/projectile.py (benchmarks/results/sampling.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from regionx.criterion import Criterion
from regionx.types import Dataset, DomainSpec, Region, SampleResult, StageResult

# Share of each round's new samples placed by the design alone (exploration).
EXPLORE = 0.25
# Candidates drawn per new sample of a round.
CANDIDATES = 16
# Sampled points whose errors predict a candidate's.
NEIGHBOURS = 8

Predictor = Callable[[np.ndarray], np.ndarray]
Fitter = Callable[[Dataset], Predictor]


def round_sizes(n: int, rounds: int) -> list[int]:
    """New samples per round: the first round n / 2**(rounds-1), then each round doubles the total
    (e.g. n=4000, rounds=4: 500, 500, 1000, 2000). Fewer rounds when n is too small for them."""
    rounds = max(1, min(rounds, int(math.log2(max(1, n // 16))) + 1))
    first = max(1, n >> (rounds - 1))
    totals = [min(n, first << k) for k in range(rounds - 1)] + [n]
    return [b - a for a, b in zip([0] + totals[:-1], totals) if b > a]


def dataset_criterion(dataset: Dataset) -> Criterion:
    """The criterion training will judge the dataset's region by (regionx.criterion): the pragma's
    rtol/atol when given, else its tolerance + metric, a relative one with its floor from the
    outputs' own scale."""
    meta = dataset.meta
    if meta.rtol is not None or meta.atol is not None:
        return Criterion.resolve(reference=dataset.Y, rtol=meta.rtol, atol=meta.atol)
    return Criterion.resolve(reference=dataset.Y, tolerance=meta.tolerance, metric=meta.metric)


def unit_columns(X: np.ndarray, specs: Sequence[DomainSpec]) -> np.ndarray:
    """Flattened inputs as coordinates of about [0, 1] per column, by each input's declared domain
    (loguniform in log space, normal within 4 standard deviations), so that distances between
    inputs weigh every dimension alike."""
    X = np.asarray(X, dtype=np.float64)
    out = np.empty_like(X)
    k = 0
    for spec in specs:
        size = int(math.prod(spec.shape)) if spec.shape else 1
        block = X[:, k:k + size]
        if spec.dist == "loguniform":
            lo, hi = math.log(float(spec.args[0])), math.log(float(spec.args[1]))
            block = np.log(np.maximum(block, 1e-300))
        elif spec.dist == "normal":
            lo, hi = float(spec.args[0]) - 4 * float(spec.args[1]), float(spec.args[0]) + 4 * float(spec.args[1])
        elif spec.dist == "choice":
            values = np.asarray(spec.args[0], dtype=np.float64)
            lo, hi = float(values.min()), float(values.max())
        else:  # uniform, integers
            lo, hi = float(spec.args[0]), float(spec.args[1])
        out[:, k:k + size] = (block - lo) / (hi - lo if hi > lo else 1.0)
        k += size
    return out


def neighbour_error(points: np.ndarray, errors: np.ndarray, queries: np.ndarray, k: int = NEIGHBOURS,
                    block: int = 1024) -> np.ndarray:
    """For each query, the mean error of its `k` nearest `points` (brute force, in blocks of queries)."""
    k = max(1, min(k, len(points)))
    squared = (points * points).sum(axis=1)
    out = np.empty(len(queries))
    for start in range(0, len(queries), block):
        q = queries[start:start + block]
        d2 = (q * q).sum(axis=1)[:, None] - 2.0 * q @ points.T + squared[None, :]
        nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]
        out[start:start + block] = errors[nearest].mean(axis=1)
    return out


def choose(predicted: np.ndarray, m: int, rng: np.random.Generator, explore: float = EXPLORE) -> np.ndarray:
    """Indices of `m` candidates: the first round(m * explore) in design order, the rest drawn
    without replacement with probability proportional to `predicted` error (Efraimidis-Spirakis)."""
    m = min(m, len(predicted))
    n_explore = min(m, int(round(m * explore)))
    picked = list(range(n_explore))
    rest = np.arange(n_explore, len(predicted))
    if m > n_explore:
        weights = np.maximum(predicted[rest], 1e-12)
        keys = np.log(rng.random(len(rest))) / weights  # larger is better: u ** (1 / w)
        picked += rest[np.argsort(-keys)[:m - n_explore]].tolist()
    return np.array(sorted(picked), dtype=np.int64)


def flatten_rows(rows: Sequence[tuple[Any, ...]]) -> np.ndarray:
    """Argument rows as one float matrix, array arguments flattened into their columns."""
    return np.array([np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in row]) for row in rows])


def sample_active(text: str, path: str, region: Region, *, n: int, seed: int, design: str, rounds: int, fit: Fitter,
                  executor: str = "local", timeout: float = 10.0, explore: float = EXPLORE,
                  progress: Callable[[int, int], None] | None = None,
                  totals: Sequence[int] | None = None) -> tuple[StageResult[SampleResult], Dataset | None]:
    """`n` samples of `region` taken in `rounds` (see the module docstring), or with the sample
    counts after each round given as `totals` (increasing, the last one `n`); `fit(dataset)` returns
    a predictor X -> Y of a surrogate trained on the samples so far. Returns what
    regionx.sample.sample_region returns for the whole: one Dataset (meta.design
    ``"<design>+active"``, dropped counts summed over the rounds), and value.rounds listing each
    round's sample count and the fitted surrogate's share of samples within tolerance."""
    from regionx.sample import DESIGNS, SamplingPool, draw_inputs, sample_region

    if design not in DESIGNS:
        return sample_region(text, path, region, n=n, seed=seed, design=design)  # its RX006
    if totals:
        if list(totals) != sorted(set(totals)) or totals[-1] != n or totals[0] < 1:
            raise ValueError(f"totals must increase from at least 1 to n={n}: {list(totals)}")
        sizes = [b - a for a, b in zip([0, *totals[:-1]], totals)]
    else:
        sizes = round_sizes(n, rounds)
    specs = [region.pragma.domain(name) if region.pragma is not None else None for name in region.inputs]
    done = 0

    def step(offset: int) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda d, _t: progress(offset + d, n))

    with SamplingPool(executor) as pool:
        result, dataset = sample_region(text, path, region, n=sizes[0], seed=seed, executor=executor, timeout=timeout,
                                        design=design, pool=pool, progress=step(0))
        if dataset is None or not result.ok:
            return result, None
        done = sizes[0]
        history: list[dict[str, Any]] = []
        ordered = [s for s in specs if s is not None]
        require = region.pragma.require if region.pragma is not None else None
        for k, m in enumerate(sizes[1:], start=1):
            predict = fit(dataset)
            errors = dataset_criterion(dataset).error_ratio(predict(dataset.X), dataset.Y)
            history.append({"samples": int(len(dataset.X)), "fit_within_tolerance": float(np.mean(errors <= 1.0))})
            # Candidates: the same design, another stream per round (seeded: rounds are reproducible).
            rng = np.random.default_rng([seed, k])
            candidates, _ = draw_inputs(ordered, CANDIDATES * m, rng, require, design)
            predicted = neighbour_error(unit_columns(dataset.X, ordered), errors,
                                        unit_columns(flatten_rows(candidates), ordered))
            chosen = [candidates[i] for i in choose(predicted, m, rng, explore)]
            more, extra = sample_region(text, path, region, n=m, seed=seed, executor=executor, timeout=timeout,
                                        design=design, pool=pool, rows=chosen, time_exact=False, progress=step(done))
            if extra is None or not more.ok:
                return more, None
            done += m
            dropped = {key: dataset.meta.dropped.get(key, 0) + extra.meta.dropped.get(key, 0)
                       for key in {**dataset.meta.dropped, **extra.meta.dropped}}
            dataset = Dataset(X=np.vstack([dataset.X, extra.X]), Y=np.vstack([dataset.Y, extra.Y]),
                              meta=replace(dataset.meta, dropped=dropped))
    meta = replace(dataset.meta, requested=n, design=f"{design}+active")
    value = replace(result.payload, requested=n, kept=int(len(dataset.X)), dropped=dict(meta.dropped),
                    design=meta.design, rounds=tuple(history + [{"samples": int(len(dataset.X))}]))
    return replace(result, value=value), Dataset(X=dataset.X, Y=dataset.Y, meta=meta)


class KerasFitter:
    """A `fit` for `sample_active`: regionx.train with one topology (artifacts in `work_dir`,
    overwritten each round), whose generated numpy module predicts. With a `budget` (nominal
    seconds per round, regionx.train.budget's cost model) each round's training is a
    fastest-first search of that one topology within it; `spent` sums the nominal seconds all
    rounds used, so that compile can charge them to the region's budget. A network with no sample
    at all within tolerance is no model (train keeps none): its predictor gives NaN, an equal and
    maximal error everywhere, so that round's candidates are chosen as the design alone would."""

    def __init__(self, hidden: tuple[int, ...], activation: str, epochs: int, seed: int, work_dir: str,
                 budget: float | None = None) -> None:
        self.topology = (tuple(hidden), activation)
        self.epochs = epochs
        self.seed = seed
        self.work_dir = work_dir
        self.budget = budget
        self.spent = 0.0  # nominal seconds of training over all rounds so far

    def __call__(self, dataset: Dataset) -> Predictor:
        from regionx.compile import load_module
        from regionx.train import train_dataset

        # No exact timer and keep_unprofitable: a fit for placing samples is never refused as slow.
        result = train_dataset(dataset, self.work_dir, topologies=[self.topology], epochs=self.epochs, seed=self.seed,
                               target=1e-9, select_by="batch", guard="off", keep_unprofitable=True,
                               search="all" if self.budget is None else "fastest-first", budget=self.budget)
        search = result.payload.search if result.value is not None else {}
        self.spent += float(search.get("spent_nominal_s") or 0.0)
        if not result.ok or "module" not in result.artifacts:
            width = dataset.Y.shape[1]
            return lambda X: np.full((len(X), width), np.nan)
        module = load_module(result.artifacts["module"])
        return lambda X: np.asarray(module.predict(np.asarray(X, dtype=np.float64)), dtype=np.float64)


def keras_fitter(hidden: tuple[int, ...], activation: str, epochs: int, seed: int, work_dir: str,
                 budget: float | None = None) -> KerasFitter:
    """A `KerasFitter` (kept as the name the benchmarks and tests call)."""
    return KerasFitter(hidden, activation, epochs, seed, work_dir, budget)
