"""`regionx sample`: valid inputs for a region, the exact region run on them, a Dataset.

Random mode draws inputs from the region's declared domains (pragma, or ``--domain`` overrides),
with rejection sampling on ``require=``, placed by a design (regionx.sampling.draw: independent
uniform draws, or the points of a scrambled Sobol' sequence or a Latin hypercube). Observe mode
records the inputs a real run of the user's program passes to the region
(regionx.sampling.observe), optionally mixed with random ones. Either way the outputs come from
running the extracted harness (regionx.extract) in worker processes of a concurrent.futures
Executor (regionx.sampling.workers; regionx.executors: local processes or Dask), in chunks, with a
per-sample time limit. A sample that raises, gives NaN/inf or runs past the limit is dropped and
counted, never a crash.

Drop kinds (DatasetMeta.dropped): ``rejected`` (draws refused by require=), ``raised`` (the
region raised), ``nonfinite`` (NaN or inf in an output), ``timeout`` (ran past the limit),
``shape`` (an observed input whose shape differs from the first valid sample's / the declared
shape), ``outside_domain`` (an observed input outside its declared domain, or failing require=:
the declared domain is where the surrogate is trained and trusted, so such calls stay with the
exact code).

Every sample is checked against what the analysis claimed (regionx.sampling.calls: inputs that
are not outputs unchanged, outputs numbers of a fixed shape, the same inputs giving the same
outputs). A violation is never a dropped sample: one refuses the region (RX308, exit 1) with the
variable and the evidence, e.g. "`rows` was changed by the region but is not among its outputs
(first seen on sample 0: rows[0][0] 0.93 -> 0.465)", so nothing is trained, compiled or rewritten
from it.

This module is the driver, `sample_region`, one helper per step; the stages live in the
regionx.sampling package. Their public names are re-exported here, so callers may keep importing
them from regionx.sample.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from regionx import __version__
from regionx import diagnostics as dx
from regionx.closure import Closure
# _rx_changed, _rx_not_number, _Chunk and _run_chunk_subprocess: internals tests reach through this module.
from regionx.sampling.calls import RECHECK_ROWS, _rx_assemble, _rx_changed, _rx_not_number, _rx_time_per_call, call_rows
from regionx.sampling.datasets import dataset_info, reusable_dataset
from regionx.sampling.draw import (
    DEFAULT_DESIGN,
    DESIGNS,
    MIN_ACCEPT_RATE,
    MIN_JUDGED_DRAWS,
    DesignUnavailable,
    RequireTooStrict,
    check_design,
    draw_inputs,
)
from regionx.sampling.exact import ExactLoadError, argument_rows, exact_harness, exact_timer
from regionx.sampling.harness import PORTABLE, exec_module, portable_source
from regionx.sampling.observe import observed_rows, within_domain
from regionx.sampling.workers import SamplingPool, _Chunk, _run_chunk_subprocess, run_rows
from regionx.types import (
    DEFAULT_METRIC,
    DEFAULT_TOLERANCE,
    Dataset,
    DatasetMeta,
    DomainSpec,
    Region,
    SampleResult,
    StageResult,
    VarSpec,
)

__all__ = [
    "DEFAULT_DESIGN", "DESIGNS", "MIN_ACCEPT_RATE", "MIN_JUDGED_DRAWS", "PORTABLE", "RECHECK_ROWS",
    "DesignUnavailable", "ExactLoadError", "RequireTooStrict", "SamplingPool",
    "argument_rows", "call_rows", "check_design", "dataset_info", "draw_inputs", "exact_harness",
    "exact_timer", "exec_module", "portable_source", "reusable_dataset", "run_rows", "sample_region",
    "within_domain",
]


class _Refused(Exception):
    """A step of `sample_region` refused: its diagnostics, and the run's data gathered so far."""

    def __init__(self, *diagnostics: dx.Diagnostic, data: dict[str, Any] | None = None) -> None:
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = diagnostics
        self.data = data or {}


def sample_region(text: str, path: str, region: Region, *, n: int = 10000, seed: int = 0,
                  domains: dict[str, DomainSpec] | None = None, timeout: float = 10.0, executor: str = "local",
                  observe: str | None = None, mix: float = 0.0,
                  progress: Callable[[int, int], None] | None = None, design: str = DEFAULT_DESIGN,
                  pool: "SamplingPool | None" = None, rows: Sequence[tuple[Any, ...]] | None = None,
                  time_exact: bool = True) -> tuple[StageResult[SampleResult], Dataset | None]:
    """Sample input/output pairs of `region` (of source `text` at `path`) into a Dataset.

    Inputs: `n` random draws from the pragma's domains (`domains` overrides them by input name),
    rejection-sampled on require=; or, with `observe` (a command line such as
    ``"python app.py args"``), the input values a real run of the program passes to the region
    (at most n), of which a fraction `mix` is replaced by random draws. Outputs: the extracted
    harness run in `executor` worker processes with a per-sample `timeout` (or in `pool`, workers
    kept open by the caller across several calls). `design` places the random draws in the box
    (DESIGNS). Deterministic for a given seed and design. The dataset is returned, not saved
    (``Dataset.save`` writes it atomically). `rows` gives the random inputs instead of drawing
    `n` (already drawn from the domain, e.g. by a round of regionx.active); `time_exact` False
    skips timing the exact code (exact_time_per_call 0: a later round times it once).

    Diagnostics: RX006 bad option, RX108 invalid require=, RX301 region cannot be extracted,
    RX302 require= too strict, RX303 an input without a domain, RX304 a --domain for a name that
    is not an input, RX305 no valid samples, RX306 the observed run failed, RX308 the region does
    not behave as analysed (the run-time checks of regionx.sampling.calls).
    """
    from regionx.extract import extract_region

    position = _position(region)
    require = region.pragma.require if region.pragma is not None else None
    data: dict[str, Any] = {}
    try:
        _check_options(path, n, timeout, mix, executor, design)
        extracted = extract_region(text, path, region)
        if not extracted.ok:
            raise _Refused(*extracted.diagnostics)
        harness = extracted.payload.harness
        specs = _domain_specs(path, region, domains, position)
        n_random, n_observed, data["mode"] = _counts(n, mix, observe, rows)
        random_rows, rejected = _random_inputs(path, region, specs, n_random, seed, require, design, rows, position)
        observed: list[tuple[Any, ...]] = []
        outside = 0  # observed rows left out: outside the declared domain or failing require=
        if n_observed > 0:
            assert observe is not None
            observed, outside = _observed_inputs(path, region, observe, n_observed, seed, specs, require, position,
                                                 bool(random_rows), data)
        all_rows = observed + random_rows
        source_dir = os.path.dirname(os.path.abspath(path))
        results, error = run_rows(harness, all_rows, len(region.outputs), timeout=timeout, executor=executor,
                                  sys_path=(source_dir,), progress=progress, inputs=region.inputs,
                                  outputs=region.outputs + region.scratch, recheck=RECHECK_ROWS, pool=pool)
        if error is not None:
            raise _Refused(dx.make("RX301", path, *position, region=region.id, detail=error))
        declared = [specs[name].shape if name in specs else None for name in region.inputs]
        X, Y, in_shapes, out_shapes, dropped, kept, violation = _rx_assemble(all_rows, results, declared,
                                                                             list(region.outputs))
        dropped = {"rejected": rejected, **dropped}
        if n_observed > 0:
            dropped["outside_domain"] = outside
        data.update({"requested": n, "kept": len(kept), "dropped": dict(dropped), "observed": len(observed),
                     "random": len(random_rows)})
        _refuse_unusable(path, region, results, violation, len(kept), len(all_rows), dropped, data, position)
    except _Refused as refused:
        return StageResult(status="failed", region_id=region.id, diagnostics=tuple(refused.diagnostics),
                           value=SampleResult(**refused.data)), None

    # The exact region's cost per call, in this process, on valid inputs.
    per_call = _exact_time_per_call(harness, source_dir, [all_rows[i] for i in kept]) if time_exact else 0.0
    data["exact_time_per_call"] = per_call
    meta = _dataset_meta(text, path, region, extracted.payload.closure, specs, in_shapes, out_shapes,
                         seed=seed, n=n, dropped=dropped, per_call=per_call, mode=data["mode"], design=design)
    data["design"] = design
    return StageResult(status="ok", region_id=region.id, value=SampleResult(**data)), Dataset(X=X, Y=Y, meta=meta)


# -- the steps of sample_region ------------------------------------------------------------------


def _position(region: Region) -> tuple[int, int]:
    """(line, col) that sampling's diagnostics point at: the pragma's, else the region's start."""
    if region.pragma is not None:
        return region.pragma.line, region.pragma.col
    return region.start_line, max(1, region.col)


def _check_options(path: str, n: int, timeout: float, mix: float, executor: str, design: str) -> None:
    """Refuse (RX006) a bad sample count, time limit, mix, executor spec or design."""
    from regionx.executors import ExecutorError, executor_workers

    if n < 1:
        raise _Refused(dx.make("RX006", path, detail=f"--samples must be at least 1, got {n}"))
    if not (timeout > 0 and math.isfinite(timeout)):
        raise _Refused(dx.make("RX006", path, detail=f"--timeout must be a positive number of seconds, got {timeout}"))
    if not 0.0 <= mix <= 1.0:
        raise _Refused(dx.make("RX006", path, detail=f"--mix must be between 0 and 1, got {mix}"))
    try:
        executor_workers(executor)
    except ExecutorError as exc:
        raise _Refused(dx.make("RX006", path, detail=str(exc))) from None
    try:
        check_design(design)
    except (ValueError, DesignUnavailable) as exc:
        raise _Refused(dx.make("RX006", path, detail=str(exc))) from None


def _domain_specs(path: str, region: Region, domains: dict[str, DomainSpec] | None,
                  position: tuple[int, int]) -> dict[str, DomainSpec]:
    """The domain of each input that has one: the pragma's, replaced by `domains` (--domain)
    overrides; an override for a name that is not an input is RX304."""
    overrides = dict(domains or {})
    for name in overrides:
        if name not in region.inputs:
            raise _Refused(dx.make("RX304", path, *position, spec=f"{name}={overrides[name].text}",
                                   detail=f"{name!r} is not an input of region {region.id!r} "
                                          f"(inputs: {', '.join(region.inputs)})"))
    specs: dict[str, DomainSpec] = {}
    for name in region.inputs:
        spec = overrides.get(name) or (region.pragma.domain(name) if region.pragma is not None else None)
        if spec is not None:
            specs[name] = spec
    return specs


def _counts(n: int, mix: float, observe: str | None, rows: Sequence[tuple[Any, ...]] | None) -> tuple[int, int, str]:
    """(random rows, observed rows, mode): given `rows` are all random; observe mode replaces a
    fraction `mix` of the observed rows by random ones."""
    if rows is not None:
        return len(rows), 0, "random"
    if observe is not None and mix < 1.0:
        n_random = int(round(n * mix))
        return n_random, n - n_random, "mixed" if n_random > 0 else "observe"
    return n, 0, "random"


def _random_inputs(path: str, region: Region, specs: dict[str, DomainSpec], n_random: int, seed: int,
                   require: str | None, design: str, rows: Sequence[tuple[Any, ...]] | None,
                   position: tuple[int, int]) -> tuple[list[tuple[Any, ...]], int]:
    """(rows, draws rejected by require=): `n_random` rows drawn from `specs` by `design`, or the
    given `rows`. Every input needs a domain (RX303); require= must be valid (RX108) and not too
    strict (RX302)."""
    if n_random <= 0:
        return [], 0
    for name in region.inputs:
        if name not in specs:
            raise _Refused(dx.make("RX303", path, *position, name=name, region=region.id))
    if rows is not None:
        return list(rows), 0
    ordered = [specs[name] for name in region.inputs]
    try:
        return draw_inputs(ordered, n_random, np.random.default_rng(seed), require, design)
    except RequireTooStrict as exc:
        raise _Refused(dx.make("RX302", path, *position, require=require, accepted=exc.accepted,
                               drawn=exc.drawn)) from None
    except ValueError as exc:
        raise _Refused(dx.make("RX108", path, *position, key="require", detail=str(exc))) from None


def _observed_inputs(path: str, region: Region, command: str, n_observed: int, seed: int,
                     specs: dict[str, DomainSpec], require: str | None, position: tuple[int, int],
                     have_random: bool, data: dict[str, Any]) -> tuple[list[tuple[Any, ...]], int]:
    """(rows, rows left out): at most `n_observed` inputs observed in a run of `command` that lie
    in the declared domain and satisfy require=. `data` gets the run's counts. A failed run is
    RX306; no row left (and no random ones, `have_random`) is RX305."""
    observed, diags, info = observed_rows(path, region, command, n_observed, seed, specs, position)
    data.update(info)
    if diags:
        raise _Refused(*diags, data=data)
    try:
        observed, outside = within_domain(observed, region.inputs, specs, require)
    except ValueError as exc:
        raise _Refused(dx.make("RX108", path, *position, key="require", detail=str(exc))) from None
    if not observed and not have_random:
        domain_text = ", ".join(f"{name}={spec.text}" for name, spec in specs.items())
        raise _Refused(dx.make("RX305", path, *position, detail=(
            f"all {outside} observed inputs lie outside the declared domain ({domain_text}"
            + (f", require={require!r}" if require else "") + ")")), data=data)
    return observed, outside


def _refuse_unusable(path: str, region: Region, results: Sequence[tuple[str, Any]], violation: str | None,
                     kept: int, total: int, dropped: dict[str, int], data: dict[str, Any],
                     position: tuple[int, int]) -> None:
    """Refuse a run that showed the region does not behave as analysed (RX308) or kept no sample
    (RX305); `data` gets the first error a sample raised."""
    first_error = next((out for status, out in results if status == "raised" and isinstance(out, str)), None)
    if first_error is not None:
        data["first_error"] = first_error
    if violation is not None:  # one violation refuses the region: nothing is trained or rewritten
        raise _Refused(dx.make("RX308", path, *position, region=region.id, detail=violation),
                       data={**data, "violation": violation})
    if not kept:
        detail = f"all {total} samples were dropped ({', '.join(f'{k}: {v}' for k, v in dropped.items() if v)})"
        if first_error is not None:
            detail += f"; first error: {first_error}"
        raise _Refused(dx.make("RX305", path, *position, detail=detail), data=data)


def _exact_time_per_call(harness: str, source_dir: str, rows: Sequence[tuple[Any, ...]]) -> float:
    """Seconds per call of the exact region on `rows`, measured in this process."""
    module = exec_module(harness, f"regionx_timing_{hashlib.sha256(harness.encode()).hexdigest()[:16]}",
                         "<regionx harness>", (source_dir,))
    exact = getattr(module, "_RX_EXACT", module.region)
    per_call = _rx_time_per_call(exact, list(rows))
    sys.modules.pop(module.__name__, None)
    return float(per_call)


def _dataset_meta(text: str, path: str, region: Region, closure: Closure, specs: dict[str, DomainSpec],
                  in_shapes: Sequence[Sequence[int]], out_shapes: Sequence[Sequence[int]], *, seed: int, n: int,
                  dropped: dict[str, int], per_call: float, mode: str, design: str) -> DatasetMeta:
    """The dataset's metadata: the region, its interface with the sampled shapes, the domain, the
    sampling settings and what was dropped, the pragma's criterion, the dependency `closure`
    (as regionx.extract.region_closure gives it, from this very extraction)."""
    from regionx.analysis import region_sha256

    pragma = region.pragma
    return DatasetMeta(
        region_id=region.id,
        region_name=region.name,
        source_path=path,
        source_sha256=region_sha256(text, region),
        inputs=tuple(VarSpec(name, tuple(shape)) for name, shape in zip(region.inputs, in_shapes)),
        outputs=tuple(VarSpec(name, tuple(shape)) for name, shape in zip(region.outputs, out_shapes)),
        domain={name: spec.text for name, spec in specs.items()},
        seed=seed,
        requested=n,
        dropped=dict(dropped),
        exact_time_per_call=per_call,
        tolerance=pragma.tolerance if pragma is not None and pragma.tolerance is not None else DEFAULT_TOLERANCE,
        metric=pragma.metric if pragma is not None and pragma.metric is not None else DEFAULT_METRIC,
        accept=pragma.accept if pragma is not None else None,
        mode=mode,
        regionx_version=__version__,
        closure_sha256=closure.sha256,
        closure=closure.dependencies,
        require=pragma.require if pragma is not None else None,
        line=region.start_line,
        col=max(1, region.col),
        design=design,
    )
