"""`regionx profile`: the time share of each candidate region in one real run (the paper's Table I).

The program runs twice: once plain (the baseline) and once with every candidate region of the
profiled files instrumented (regionx.instrument, mode "profile"). Each row reports a region's
calls, its exclusive time (time in nested regions subtracted, so shares are not double counted),
time per call, share of the instrumented program's run time, and its inclusive time.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from regionx import diagnostics as dx
from regionx.diagnostics import Diagnostic
from regionx.instrument import CommandError, parse_command, run_instrumented
from regionx.types import FileAnalysis, InstrumentedRun, ProfileResult, Region, StageResult

Analyzer = Callable[[str], FileAnalysis]


def _default_analyzer(path: str) -> FileAnalysis:
    from regionx.analysis import analyze_file

    return analyze_file(path)


def _failure_detail(run: InstrumentedRun) -> str:
    """One line on why a run failed: the exception, else the last stderr line, else the status."""
    if run.timed_out:
        return "timed out"
    if run.error:
        return run.error
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    tail = f": {lines[-1].strip()}" if lines else ""
    return f"exit status {run.returncode}{tail}"


def default_paths(command: Sequence[str], cwd: str | None = None) -> list[str]:
    """The files to profile when none are given: the script of ``python SCRIPT ...``, or the
    file of ``python -m MODULE`` when it is a module or package found under `cwd`."""
    _interp, script, module, _args = parse_command(list(command))
    if script is not None:
        return [script]
    base = os.path.abspath(cwd or os.getcwd())
    rel = (module or "").replace(".", os.sep)
    for candidate in (rel + ".py", os.path.join(rel, "__main__.py")):
        if os.path.isfile(os.path.join(base, candidate)):
            return [candidate]
    return []


def profile_command(
    command: list[str],
    *,
    paths: Sequence[str] | None = None,
    top: int | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    baseline: bool = True,
    analyzer: Analyzer | None = None,
) -> StageResult[ProfileResult]:
    """Run `command` with the candidate regions of `paths` (default: its script) instrumented.

    Returns a StageResult whose value (ProfileResult) holds ``rows`` (hottest first by exclusive time; at most
    `top`), ``total_time`` (the instrumented run, seconds), ``plain_time`` and ``overhead``
    (instrumented / plain - 1; None without `baseline`), ``shares`` (region id -> share) and
    ``unattributed`` (the share of time outside every region). Each row has: region, name, kind,
    path, line, calls, total_time (exclusive seconds), inclusive_time, time_per_call (inclusive /
    calls), share (exclusive / total_time) and inclusive_share. A failing program gives RX605;
    a command that is not ``python SCRIPT|-m MODULE`` gives RX006; unreadable files their
    analysis diagnostics.
    """
    analyze = analyzer or _default_analyzer
    argv = list(command)
    try:
        targets = list(paths) if paths is not None else default_paths(argv, cwd)
    except CommandError as error:
        return StageResult(status="failed", diagnostics=(dx.make("RX006", "<command>", detail=str(error)),))
    files: dict[str, Sequence[Region]] = {}
    diagnostics: list[Diagnostic] = []
    for path in targets:
        full = os.path.join(cwd, path) if cwd and not os.path.isabs(path) else path
        if not os.path.exists(full):
            diagnostics.append(dx.make("RX001", path))
            continue
        if os.path.isdir(full):
            diagnostics.append(dx.make("RX002", path))
            continue
        analysis = analyze(full)
        if not analysis.ok:
            diagnostics.extend(analysis.diagnostics)
            continue
        files[path] = analysis.regions
    if diagnostics:
        return StageResult(status="failed", diagnostics=tuple(diagnostics))

    shown = shlex.join(argv)
    plain: InstrumentedRun | None = None
    if baseline:
        plain = run_instrumented(argv, {}, mode="plain", cwd=cwd, timeout=timeout)
        if plain.diagnostics:
            return StageResult(status="failed", diagnostics=plain.diagnostics)
        if not plain.ok:
            return StageResult(status="failed", diagnostics=(dx.make("RX605", shown, detail=_failure_detail(plain)),),
                               value=ProfileResult(stderr=plain.stderr, returncode=plain.returncode))
    run = run_instrumented(argv, files, mode="profile", cwd=cwd, timeout=timeout)
    if run.diagnostics:
        return StageResult(status="failed", diagnostics=run.diagnostics)
    if not run.ok or run.total_time is None:
        return StageResult(status="failed", diagnostics=(dx.make("RX605", shown, detail=_failure_detail(run)),),
                           value=ProfileResult(stderr=run.stderr, returncode=run.returncode))

    # Shares and times are corrected for the hook's calibrated per-call overhead, so they
    # estimate the uninstrumented run; total_time stays the measured instrumented run.
    total = run.corrected_total_time if run.corrected_total_time else run.total_time
    rows = table_rows(files, run.regions, total)
    shares = {row["region"]: row["share"] for row in rows}
    plain_time = plain.total_time if plain is not None else None
    overhead = (run.total_time / plain_time - 1.0) if plain_time else None
    data = ProfileResult(
        command=tuple(argv),
        paths=tuple(files),
        rows=tuple(rows[:top] if top is not None and top >= 0 else rows),
        total_time=run.total_time,
        estimated_time=total,
        plain_time=plain_time,
        overhead=overhead,
        shares=shares,
        unattributed=max(0.0, 1.0 - sum(shares.values())),
        stdout=run.stdout,
    )
    return StageResult(status="ok", value=data)


def table_rows(files: Mapping[str, Sequence[Region]], records: dict[str, dict[str, Any]], total: float) -> list[dict[str, Any]]:
    """Rows of the profile table, hottest (largest exclusive time) first; regions never entered
    have zero calls and times."""
    rows: list[dict[str, Any]] = []
    for path, regions in files.items():
        for region in regions:
            rec = records.get(region.id, {})
            calls = int(rec.get("calls", 0))
            exclusive = max(0.0, float(rec.get("exclusive", 0.0)))
            inclusive = max(0.0, float(rec.get("inclusive", 0.0)))
            rows.append({
                "region": region.id,
                "name": region.name,
                "kind": region.kind,
                "path": path,
                "line": region.start_line,
                "calls": calls,
                "total_time": exclusive,
                "inclusive_time": inclusive,
                "time_per_call": inclusive / calls if calls else None,
                "share": exclusive / total if total > 0 else 0.0,
                "inclusive_share": inclusive / total if total > 0 else 0.0,
            })
    rows.sort(key=lambda r: (-r["total_time"], -r["inclusive_time"], r["path"], r["line"]))
    return rows


def time_shares(file: str, command: str) -> dict[str, float]:
    """Region id -> share of the run time of `command` (a shell-style string) spent in each
    candidate region of `file` (exclusive time). Empty if the program or the analysis fails;
    call `profile_command` to get the diagnostics."""
    result = profile_command(shlex.split(command), paths=[file], baseline=False)
    if not result.ok:
        return {}
    return dict(result.payload.shares)
