"""One function per command, returning the stages' result types (for library use and the CLI).

Nothing here prints or exits; heavy stages (training, TensorFlow) are imported inside functions
so that `import regionx.api` stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from regionx.analysis import analyze_file, analyze_source, find_region
from regionx.diagnostics import Diagnostic, make
from regionx.types import (
    CheckReport,
    CompileResult,
    Dataset,
    ExtractResult,
    FileAnalysis,
    Manifest,
    ProfileResult,
    Region,
    RewriteResult,
    SampleResult,
    StageResult,
    TrainResult,
)

if TYPE_CHECKING:
    import numpy as np

    from regionx.train import Topology
    from regionx.train.budget import Grow, Weigh


@dataclass(frozen=True)
class LoadedRegion:
    """A region found in a file, with the file's text and analysis (or why it was not found)."""

    path: str
    text: str
    analysis: FileAnalysis
    region: Region | None
    diagnostics: tuple[Diagnostic, ...]


def analyze(paths: Sequence[str], *, profile: str | None = None) -> list[FileAnalysis]:
    """Analyze each file; a file that cannot be read or parsed yields its diagnostics, the rest go on.

    With `profile` (a command line such as ``"python app.py"``), each region's `time_share` is
    filled from one instrumented run of that command.
    """
    results = [analyze_file(p) for p in paths]
    if profile is None:
        return results
    from regionx.profile import time_shares

    filled = []
    for fa in results:
        if not fa.ok:
            filled.append(fa)
            continue
        shares = time_shares(fa.path, profile)
        regions = tuple(replace(r, time_share=shares.get(r.id)) for r in fa.regions)
        filled.append(replace(fa, regions=regions))
    return filled


def read_and_analyze(path: str) -> tuple[str, FileAnalysis]:
    """The text of `path` (read once, by `read_source`: line endings as written) and its analysis;
    a file that cannot be read gives "" and an analysis holding the reason."""
    from regionx.analysis.source import read_source

    text, problems = read_source(path)
    if text is None:
        return "", FileAnalysis(path=path, diagnostics=tuple(problems))
    return text, analyze_source(text, path)


def load_region(path: str, selector: str) -> LoadedRegion:
    """Analyze `path` and find the region named by `selector` (id, name or line number)."""
    text, analysis = read_and_analyze(path)
    errors = tuple(d for d in analysis.diagnostics if d.severity == "error")
    if errors:
        return LoadedRegion(path, text, analysis, None, errors)
    region = find_region(analysis, selector)
    if region is None:
        known = ", ".join(r.id for r in analysis.regions) or "(none)"
        diag = make("RX005", path, 1, 1, region=selector, known=known)
        return LoadedRegion(path, text, analysis, None, (diag,))
    return LoadedRegion(path, text, analysis, region, ())


def annotated_regions(analysis: FileAnalysis, selectors: Sequence[str] = ()) -> tuple[list[Region], list[Diagnostic]]:
    """The annotated regions of a file, or the ones named by `selectors`."""
    if not selectors:
        return [r for r in analysis.regions if r.annotated], []
    regions, diagnostics = [], []
    for selector in selectors:
        region = find_region(analysis, selector)
        if region is None:
            known = ", ".join(r.id for r in analysis.regions) or "(none)"
            diagnostics.append(make("RX005", analysis.path, 1, 1, region=selector, known=known))
        else:
            regions.append(region)
    return regions, diagnostics


def failed(path: str, diagnostics: Sequence[Diagnostic], region_id: str = "") -> StageResult[Any]:
    """A failed stage result carrying `diagnostics`."""
    return StageResult(status="failed", region_id=region_id, diagnostics=tuple(diagnostics))


def extract(path: str, selector: str, out: str | None = None) -> StageResult[ExtractResult]:
    """`regionx extract`: write the region's standalone harness module."""
    from regionx.extract import extract_region, write_harness

    loaded = load_region(path, selector)
    if loaded.region is None:
        return failed(path, loaded.diagnostics)
    result = extract_region(loaded.text, path, loaded.region)
    if not result.ok:
        return result
    target = out or f"harness_{loaded.region.display_name}.py"
    write_harness(result.payload.harness, target)
    return replace(result, artifacts={**result.artifacts, "harness": target})


def default_out_dir() -> str:
    """The artifact directory used when none is given: `[tool.regionx] artifacts`, else `.regionx`."""
    from regionx.config import load_config

    return load_config(os.getcwd()).artifacts


def default_design() -> str:
    """The design of random inputs used when none is given: `[tool.regionx] design`, else
    regionx.sampling.draw.DEFAULT_DESIGN (chosen by benchmarks/results/sampling.md)."""
    from regionx.config import load_config
    from regionx.sampling.draw import DEFAULT_DESIGN

    return load_config(os.getcwd()).design or DEFAULT_DESIGN


ProgressFn = Callable[..., None]


# --------------------------------------------------------------------------- sample


def sample(path: str, selector: str, *, n: int | None = None, seed: int | None = None, out: str | None = None,
           domains: Sequence[str] = (), timeout: float = 10.0, executor: str = "local", observe: str | None = None,
           mix: float = 0.0, progress: ProgressFn | None = None, design: str | None = None) -> StageResult[SampleResult]:
    """`regionx sample`: draw valid inputs, run the exact region, save the dataset (.npz); `design`
    places random inputs (default: `default_design`)."""
    from regionx.pragma import PragmaError, parse_domain
    from regionx.sample import sample_region

    loaded = load_region(path, selector)
    if loaded.region is None:
        return failed(path, loaded.diagnostics)
    region = loaded.region
    overrides = {}
    for item in domains:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip().isidentifier():
            return failed(path, [make("RX304", path, spec=item, detail="expected NAME=SPEC, e.g. a='uniform(0, 1)'")])
        try:
            overrides[name.strip()] = parse_domain(name.strip(), spec)
        except PragmaError as exc:
            detail = exc.diagnostic(path, 1, 1).message
            return failed(path, [make("RX304", path, spec=item, detail=detail)])
    pragma = region.pragma
    n = n if n is not None else (pragma.samples if pragma and pragma.samples else 10000)
    seed = seed if seed is not None else (pragma.seed if pragma and pragma.seed is not None else 0)
    result, dataset = sample_region(loaded.text, path, region, n=n, seed=seed, domains=overrides, timeout=timeout,
                                    executor=executor, observe=observe, mix=mix, progress=progress,
                                    design=design or default_design())
    if dataset is None or not result.ok:
        return result
    target = out or f"{region.display_name}.npz"
    dataset.save(target)
    return replace(result, artifacts={**result.artifacts, "dataset": target})


def sample_info(data_path: str) -> StageResult[dict[str, Any]]:
    """`regionx sample --info`: summarise a dataset."""
    from regionx.sampling.datasets import dataset_info

    try:
        info = dataset_info(data_path)
    except FileNotFoundError:
        return failed(data_path, [make("RX001", data_path)])
    except (OSError, KeyError, ValueError) as exc:
        return failed(data_path, [make("RX307", data_path, detail=_dataset_problem(exc))])
    return StageResult(status="ok", value=info)  # the dataset's meta as saved (JSON read from disk)


def _dataset_problem(exc: Exception) -> str:
    """One line for why a dataset cannot be used (Dataset.load's ValueError says it already)."""
    if isinstance(exc, OSError):
        return f"cannot read it: {exc.strerror or exc}"
    return str(exc)


# --------------------------------------------------------------------------- train


# Dataset rows the exact code is re-timed on beside each trained topology (sampling times up to 300).
RETIME_ROWS = 300


@contextlib.contextmanager
def exact_timer_for(dataset: Dataset, text: str | None = None, path: str | None = None,
                    region: Region | None = None) -> Iterator[Callable[[], float] | None]:
    """A timer of the exact region behind `dataset` (regionx.sampling.exact.exact_timer), for training to
    re-time the exact code beside each surrogate; None when it cannot be had: the source file is
    gone, or the region or what it depends on changed since sampling (regionx.extract.source_changes),
    or its code fails to load.

    `text`/`path`/`region` are the source and region when the caller has them (compile); else
    they are found from the dataset's source path and region id (`regionx train DATA.npz`).
    """
    from regionx.extract import source_changes
    from regionx.sampling.exact import ExactLoadError, argument_rows, exact_harness, exact_timer

    meta = dataset.meta
    if text is None or path is None or region is None:
        path = meta.source_path
        text, analysis = read_and_analyze(path)
        region = find_region(analysis, meta.region_id) if analysis.ok else None
    # its own lines and what it depends on (a changed constant changes the exact code's cost)
    if region is None or source_changes(text, path, region, meta.source_sha256, meta.closure_sha256, meta.closure):
        yield None
        return
    with contextlib.ExitStack() as stack:
        try:
            harness = stack.enter_context(exact_harness(text, path, region))
            timer: Callable[[], float] | None = exact_timer(harness, argument_rows(dataset.X[:RETIME_ROWS], meta))
        except ExactLoadError:
            timer = None
        yield timer


def default_budget() -> float:
    """Seconds of search per region when none is given: `[tool.regionx] budget`, else
    regionx.train.DEFAULT_BUDGET."""
    from regionx.config import load_config
    from regionx.train import DEFAULT_BUDGET

    return load_config(os.getcwd()).budget or DEFAULT_BUDGET


def train(data_path: str, *, out: str | None = None, topologies: str | None = None, tolerance: float | None = None,
          metric: str | None = None, target: float = 0.99, epochs: int = 200, seed: int = 0,
          executor: str | None = None, progress: ProgressFn | None = None, refine: str = "auto",
          budget: float | None = None, search: str = "fastest-first", rtol: float | None = None,
          atol: float | None = None, events: Callable[..., None] | None = None, guard: str = "auto") -> StageResult[TrainResult]:
    """`regionx train`: topology search on a dataset; writes the region's artifacts (`refine`: the
    optimizer after Adam, regionx.train.REFINE_METHODS; `budget`: seconds of search, default
    `default_budget`; `search`: "fastest-first" or "all", regionx.train.train_dataset; `events`:
    regionx.train.SearchEvent callback). The region's pragma, when its source is at hand, adds its
    rtol=/atol= to the dataset's criterion."""
    from regionx.train import parse_topologies, train_dataset
    from regionx.types import Dataset

    try:
        dataset = Dataset.load(data_path)
    except FileNotFoundError:
        return failed(data_path, [make("RX001", data_path)])
    except (OSError, KeyError, ValueError) as exc:
        return failed(data_path, [make("RX307", data_path, detail=_dataset_problem(exc))])
    try:
        grid = parse_topologies(topologies) if topologies else None
    except ValueError as exc:
        return failed(data_path, [make("RX403", data_path, spec=topologies, detail=str(exc))])
    out_dir = out or os.path.join(default_out_dir(), dataset.meta.region_name)
    pool = None
    if executor:
        from regionx.executors import make_executor

        pool = make_executor(executor)
    try:
        dataset = _with_pragma_criterion(dataset, None)
        with exact_timer_for(dataset) as timer:
            return train_dataset(dataset, out_dir, topologies=grid, tolerance=tolerance, metric=metric, rtol=rtol,
                                 atol=atol, target=target, epochs=epochs, seed=seed, executor=pool, progress=progress,
                                 exact_timer=timer, refine=refine, search=search, guard=guard,
                                 budget=budget if budget is not None else default_budget(), events=events)
    finally:
        if pool is not None:
            pool.shutdown()


# --------------------------------------------------------------------------- rewrite


def rewrite(path: str, selector: str | None, artifact: str | None, *, out: str | None = None, in_place: bool = False,
            diff: bool = False, force: bool = False, revert: bool = False) -> StageResult[RewriteResult]:
    """`regionx rewrite`: patch one region to call its surrogate (or `revert` a patched file)."""
    from regionx.rewrite import revert_file, rewrite_file

    if revert:
        return revert_file(path, out=out, in_place=in_place, diff=diff)
    assert artifact is not None
    return rewrite_file(path, selector, artifact, out=out, in_place=in_place, diff=diff, force=force)


# --------------------------------------------------------------------------- compile (end to end)


def compile_samples(text: str, path: str, region: Region, region_dir: str, *, n: int, seed: int, design: str,
                    executor: str = "local", resample: bool = False,
                    progress: Callable[[int, int], None] | None = None, rounds: int = 1,
                    fit: Any = None) -> tuple[StageResult[SampleResult], Dataset | None]:
    """compile's sampling step: the samples saved in `region_dir` by an earlier compile when they
    still stand for the region (regionx.sampling.datasets.reusable_dataset: same code and dependencies,
    domain, require=, count, seed and design), else new ones, saved there as ``data.npz``. With
    `rounds` > 1 they are taken in rounds, each placed where `fit`'s surrogate of the samples so
    far errs most (regionx.active; design ``<design>+active``).

    The result's data says which: ``samples_reused`` (bool), ``samples_file`` and, when it
    resampled although samples were saved, ``samples_resampled_because``.
    """
    from regionx.sample import sample_region
    from regionx.sampling.datasets import reusable_dataset

    data_path = os.path.join(region_dir, "data.npz")
    why = "--resample"
    active = rounds > 1 and fit is not None
    if not resample:
        dataset, why = reusable_dataset(data_path, text, path, region, n=n, seed=seed,
                                        design=f"{design}+active" if active else design)
        if dataset is not None:
            return StageResult("ok", region.id, value=SampleResult(samples_reused=True, samples_file=data_path,
                                                                   design=dataset.meta.design)), dataset
    if active:
        from regionx.active import sample_active

        result, dataset = sample_active(text, path, region, n=n, seed=seed, design=design, rounds=rounds, fit=fit,
                                        executor=executor, progress=progress)
    else:
        result, dataset = sample_region(text, path, region, n=n, seed=seed, executor=executor, progress=progress,
                                        design=design)
    if dataset is None or not result.ok:
        return result, None
    dataset.save(data_path)
    value = replace(result.value or SampleResult(), samples_reused=False, samples_file=data_path,
                    samples_resampled_because=why if why != "no saved samples" else None)
    return replace(result, value=value), dataset



def _with_pragma_criterion(dataset: Dataset, region: Region | None) -> Dataset:
    """`dataset` with its meta's rtol/atol taken from the region's pragma (found from the dataset's
    source when `region` is None): sampling records tolerance/metric, the criterion's shorthand;
    rtol=/atol= state it directly (regionx.criterion)."""
    if region is None:
        text, analysis = read_and_analyze(dataset.meta.source_path)
        region = find_region(analysis, dataset.meta.region_id) if analysis.ok and text else None
    pragma = region.pragma if region is not None else None
    if pragma is None or (pragma.rtol is None and pragma.atol is None):
        return dataset
    return Dataset(dataset.X, dataset.Y, replace(dataset.meta, rtol=pragma.rtol, atol=pragma.atol))


def _grower(text: str, path: str, region: Region, seed: int, design: str, executor: str) -> Grow:
    """compile's `grow` for the search (regionx.train.train_dataset): `n` more samples of the
    region, each call with a new seed (so a fixed --seed still gives the same rows). With `weigh`
    (how much the network errs near an input), they are chosen as regionx.active chooses a round's:
    from active.CANDIDATES x n candidates of the design, a quarter in the design's order and the
    rest weighted by `weigh`, so most land where the validation error is largest."""
    import numpy as np

    from regionx.active import CANDIDATES, choose, flatten_rows
    from regionx.sample import draw_inputs, sample_region

    calls = [0]
    specs = [region.pragma.domain(name) for name in region.inputs] if region.pragma is not None else []
    require = region.pragma.require if region.pragma is not None else None

    def grow(n: int, weigh: Weigh | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        calls[0] += 1
        grow_seed = seed + GROW_SEED_STEP * calls[0]
        rows = None
        if weigh is not None and specs and all(s is not None for s in specs):
            rng = np.random.default_rng([grow_seed, 1])
            candidates, _ = draw_inputs([s for s in specs if s is not None], CANDIDATES * n, rng, require, design)
            if len(candidates) >= n:
                rows = [candidates[i] for i in choose(weigh(flatten_rows(candidates)), n, rng)]
        result, more = sample_region(text, path, region, n=n, seed=grow_seed, executor=executor, design=design,
                                     time_exact=False, rows=rows)
        return (more.X, more.Y) if more is not None and result.ok else None

    return grow


# Seeds of the samples the search adds (seed + k x this prime): never the first draw's.
GROW_SEED_STEP = 7919
# Default samples per region: the test split then holds 2,000 rows (regionx.train.TEST_POINTS), enough
# for the accuracy's lower confidence bound to tell 99.5% from 99%, and 8,200 train the networks.
COMPILE_SAMPLES = 12000
COMPILE_EPOCHS = 150
# With --rounds, the share of a region's --budget its active rounds' fits may spend (the search
# gets the rest): placing samples is worth some search time, not most of it.
ACTIVE_SHARE = 0.25
COMPILE_TOPOLOGIES = "8;16;8,5;16,16;32,32"  # a short grid: users run compile with no flags first


@dataclass(frozen=True)
class _CompileRun:
    """What every region of one `compile_file` call shares: the file, its text, the output
    directory, the topology grid, and the caller's settings."""

    path: str
    original: str  # the file's text, line endings as written
    out_dir: str
    grid: list[Topology]
    samples: int | None
    seed: int
    epochs: int | None
    target: float
    tolerance: float | None
    metric: str | None
    executor: str
    force: bool
    progress: ProgressFn | None
    refine: str
    design: str | None
    resample: bool
    rounds: int
    budget: float | None
    events: Callable[..., None] | None
    guard: str


def compile_file(path: str, selectors: Sequence[str] = (), *, out_dir: str | None = None, samples: int | None = None,
                 seed: int = 0, epochs: int | None = None, topologies: str | None = None, target: float = 0.99,
                 tolerance: float | None = None, metric: str | None = None, executor: str = "local",
                 force: bool = False, progress: ProgressFn | None = None, refine: str = "auto",
                 design: str | None = None, resample: bool = False, rounds: int = 1, budget: float | None = None,
                 events: Callable[..., None] | None = None, guard: str = "auto") -> list[StageResult[CompileResult]]:
    """`regionx compile`: extract -> sample -> train -> rewrite every annotated (or named) region of `path`.

    Writes ``out_dir/<region-name>/`` artifacts and ``out_dir/<file>.py`` (patched with every region
    that succeeded). A region that fails is reported with its reason; the others still go ahead.
    A region's saved samples (``<region-name>/data.npz``) are reused when nothing they depend on
    changed, unless `resample` (`compile_samples`). `design` places random inputs (default:
    `default_design`); `rounds` > 1 takes them in active rounds (regionx.active; off by default:
    benchmarks/results/sampling.md). Each region's search (regionx.train.train_dataset, "fastest-first") gets
    `budget` seconds (default `default_budget`) and reports to `events` (SearchEvent); `guard`
    "auto" lets a network that misses the target alone get a learned guard (regionx.guard).

    The steps: read and analyze the file, pick its regions and parse the grid; then per region
    `_compile_region` (`_refusal`, `_compile_sample_step`, `_compile_train_step`); then
    `_rewrite_trained` (one patched copy) and `_write_patched`.
    """
    from regionx.train import parse_topologies

    original, analysis = read_and_analyze(path)  # line endings as written: the patched copy keeps them
    if not analysis.ok:
        return [failed(path, analysis.diagnostics)]
    regions, diagnostics = annotated_regions(analysis, selectors)
    if diagnostics:
        return [failed(path, diagnostics)]
    if not regions:
        return [failed(path, [make("RX008", path, 1, 1)])]
    out_dir = out_dir or default_out_dir()
    try:
        grid = parse_topologies(topologies or COMPILE_TOPOLOGIES)
    except ValueError as exc:
        return [failed(path, [make("RX403", path, spec=topologies, detail=str(exc))])]
    run = _CompileRun(path=path, original=original, out_dir=out_dir, grid=grid, samples=samples, seed=seed,
                      epochs=epochs, target=target, tolerance=tolerance, metric=metric, executor=executor, force=force,
                      progress=progress, refine=refine, design=design, resample=resample, rounds=rounds,
                      budget=budget, events=events, guard=guard)
    results: list[StageResult[CompileResult]] = []
    trained: list[tuple[Region, Manifest, str]] = []  # region, manifest, artifact dir
    for region in regions:
        result, done = _compile_region(run, region)
        results.append(result)
        if done is not None:
            trained.append(done)
    patched = _rewrite_trained(run, trained, results)
    if patched is not None:
        results = _write_patched(run, patched, results)
    return results


def _compile_region(run: _CompileRun, region: Region) -> tuple[StageResult[CompileResult], tuple[Region, Manifest, str] | None]:
    """One region through sampling and training: (its result, and when it was trained: the
    region, its manifest and its artifact directory)."""
    summary = CompileResult(inputs=region.inputs, outputs=region.outputs)
    refused = _refusal(run.path, region, summary)
    if refused is not None:
        return refused, None
    region_dir = os.path.join(run.out_dir, region.display_name)
    pragma = region.pragma
    region_seed = pragma.seed if pragma and pragma.seed is not None else run.seed
    budget = run.budget if run.budget is not None else default_budget()
    sampled, dataset, rounds_spent = _compile_sample_step(run, region, region_dir, region_seed, budget)
    if dataset is None or not sampled.ok:
        return _as_compile(sampled, region.id, replace(summary, sample=sampled.value, verdict="sampling failed")), None
    summary = replace(summary, sample=sampled.value, samples=int(dataset.X.shape[0]),
                      exact_time_per_call=dataset.meta.exact_time_per_call)
    # The active rounds' fits are charged to the region's budget; the search gets what is left.
    search_budget = budget - min(rounds_spent, ACTIVE_SHARE * budget)
    trained_result, summary = _compile_train_step(run, region, dataset, region_dir, region_seed, summary, search_budget)
    data = replace(summary, train=trained_result.value)
    if not trained_result.ok:
        verdict = ("refused before training" if any(d.code == "RX502" for d in trained_result.diagnostics)
                   else "no topology met the target")
        return _as_compile(trained_result, region.id, replace(data, verdict=verdict)), None
    manifest = trained_result.payload.manifest
    assert manifest is not None  # an ok search wrote (and returns) the chosen surrogate's manifest
    return _as_compile(trained_result, region.id, replace(data, verdict="trained")), (region, manifest, region_dir)


def _as_compile(result: StageResult[Any], region_id: str, value: CompileResult) -> StageResult[CompileResult]:
    """`result`'s envelope (status, diagnostics, artifacts) carrying compile's payload `value`."""
    return StageResult(result.status, region_id, result.diagnostics, result.artifacts, value)


def _refusal(path: str, region: Region, summary: CompileResult) -> StageResult[CompileResult] | None:
    """The failed result of a region refused before any sampling or training (not replaceable, or
    outputs the rewrite cannot store), else None."""
    from regionx.rewrite import unsupported_shape

    if not region.replaceable:
        reasons = tuple(make("RX505", path, r.line, 1, region=region.id, detail=f"{r.code} {r.message}") for r in region.reasons)
        return StageResult("failed", region.id, reasons, value=replace(summary, verdict="not replaceable"))
    unsupported = unsupported_shape(region, region.outputs)
    if unsupported is not None:
        return StageResult("failed", region.id, (make("RX505", path, region.start_line, region.col or 1, region=region.id,
                                                      detail=unsupported),), value=replace(summary, verdict="rewrite failed"))
    return None


def _compile_sample_step(run: _CompileRun, region: Region, region_dir: str, region_seed: int,
                         budget: float) -> tuple[StageResult[SampleResult], Dataset | None, float]:
    """compile's samples of `region` (`compile_samples`): (the result, the data, the nominal
    seconds the active rounds' fits spent). With active rounds each fit is the grid's largest
    topology (its residuals show where the region is hard) within an equal part of ACTIVE_SHARE
    of the region's `budget`."""
    pragma = region.pragma
    n = run.samples or (pragma.samples if pragma and pragma.samples else COMPILE_SAMPLES)
    progress = run.progress
    step: ProgressFn | None = (lambda done, total, _id=region.id: progress(f"sample {_id}", done, total)) if progress else None
    fit = None
    if run.rounds > 1:
        from regionx.active import keras_fitter

        hidden, activation = max(run.grid, key=lambda t: sum(t[0]))
        fit = keras_fitter(tuple(hidden), activation, run.epochs or COMPILE_EPOCHS, region_seed,
                           os.path.join(region_dir, "rounds"), budget=budget * ACTIVE_SHARE / (run.rounds - 1))
    sampled, dataset = compile_samples(run.original, run.path, region, region_dir, n=n, seed=region_seed,
                                       design=run.design or default_design(), executor=run.executor,
                                       resample=run.resample, progress=step, rounds=run.rounds, fit=fit)
    return sampled, dataset, (fit.spent if fit is not None else 0.0)


def _compile_train_step(run: _CompileRun, region: Region, dataset: Dataset, region_dir: str, region_seed: int,
                        summary: CompileResult, budget: float) -> tuple[StageResult[TrainResult], CompileResult]:
    """compile's topology search for `region` (regionx.train.train_dataset): (its result, `summary`
    with how the topology is selected: ``select_by``, ``hoistable_loops``, ``loop_extra_seconds``)."""
    from regionx.train import hoisted_loop_cost, train_dataset

    progress = run.progress
    train_step: ProgressFn | None = (
        (lambda label, done, total, _id=region.id: progress(f"train {_id} {label}", done, total)) if progress else None)
    # Pick the fastest topology for the path that will run: per batch element when the
    # rewriter will hoist a map loop calling this region, else per scalar call.
    hoisted_lines, loop_extra = hoisted_loop_cost(run.original, region, run.path)
    select_by = "batch" if hoisted_lines else "call"
    summary = replace(summary, select_by=select_by, hoistable_loops=tuple(hoisted_lines), loop_extra_seconds=loop_extra)
    dataset = _with_pragma_criterion(dataset, region)
    with exact_timer_for(dataset, run.original, run.path, region) as timer:
        trained_result = train_dataset(
            dataset, region_dir, topologies=run.grid, target=run.target, tolerance=run.tolerance, metric=run.metric,
            epochs=run.epochs or COMPILE_EPOCHS, seed=region_seed, select_by=select_by,
            progress=train_step if run.events is None else None,  # the events show the epochs then
            exact_timer=timer, refine=run.refine, search="fastest-first",
            budget=budget, loop_extra_seconds=loop_extra,
            keep_unprofitable=run.force, guard=run.guard,
            grow=_grower(run.original, run.path, region, region_seed, run.design or default_design(), run.executor),
            events=run.events)
    return trained_result, summary


def _rewrite_trained(run: _CompileRun, trained: Sequence[tuple[Region, Manifest, str]],
                     results: list[StageResult[CompileResult]]) -> str | None:
    """Rewrite every trained region into one patched copy of the file, re-analyzing after each
    patch since lines move; each region's entry of `results` is updated in place. Returns the
    patched text, or None when no region was rewritten."""
    patched = run.original
    patched_any = False
    for region, manifest, region_dir in trained:
        index = next(i for i, r in enumerate(results) if r.region_id == region.id)
        results[index], text = _rewrite_region(run, patched, region, manifest, region_dir, results[index])
        if text is not None:
            patched = text
            patched_any = True
    return patched if patched_any else None


def _rewrite_region(run: _CompileRun, patched: str, region: Region, manifest: Manifest, region_dir: str,
                    result: StageResult[CompileResult]) -> tuple[StageResult[CompileResult], str | None]:
    """Rewrite one trained region in the text patched so far: (its updated result, the new text,
    or None when the region could not be rewritten)."""
    from regionx.rewrite import rewrite_source

    current = find_region(analyze_source(patched, run.path), region.id)
    if current is None:
        return replace(result, status="failed", diagnostics=(
            make("RX505", run.path, region.start_line, 1, region=region.id,
                 detail="region not found after earlier rewrites"),)), None
    module_path = os.path.relpath(os.path.join(region_dir, manifest.module), run.out_dir)
    rewritten = rewrite_source(patched, run.path, current, manifest, module_name=module_path, force=run.force)
    if not rewritten.ok:
        return replace(result, status="failed", diagnostics=rewritten.diagnostics,
                       value=replace(result.payload, verdict="not profitable" if any(
                           d.code == "RX502" for d in rewritten.diagnostics) else "rewrite failed")), None
    done = rewritten.payload
    return replace(result, value=replace(result.payload, verdict="rewritten", path_taken=done.path_taken,
                                         batched=done.batched or ())), done.text


def _write_patched(run: _CompileRun, patched: str, results: Sequence[StageResult[CompileResult]]) -> list[StageResult[CompileResult]]:
    """Write the patched copy as ``out_dir/<file>.py``; every successful result gets it as its
    ``patched`` artifact."""
    from regionx.fsutil import atomic_write_text

    target_file = os.path.join(run.out_dir, os.path.basename(run.path))
    atomic_write_text(target_file, patched)
    return [replace(r, artifacts={**r.artifacts, "patched": target_file}) if r.ok else r for r in results]


# --------------------------------------------------------------------------- check / profile


def check(paths: Sequence[str] = (), *, artifacts: str | None = None, samples: int | None = None) -> "CheckReport":
    """`regionx check`: verify the committed surrogates of every annotated region under `paths`."""
    from regionx.check import check_paths

    return check_paths(paths, artifacts=artifacts, samples=samples)


def profile(command: list[str], *, top: int | None = None) -> StageResult[ProfileResult]:
    """`regionx profile -- CMD`: time share of each candidate region in one real run."""
    from regionx.profile import profile_command

    return profile_command(command, top=top)
