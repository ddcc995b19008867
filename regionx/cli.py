"""The `regionx` command line: the only module that prints or picks exit codes.

Exit statuses (docs/design.md, "Exit statuses and messages"; EXIT_STATUSES below, shown by
``regionx --help`` and in the README): 0 success; 1 findings; 2 usage or input error; 3 internal
error; 130 interrupted. Messages are ``path:line:col: RXnnn text``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import click
from rich.console import Console
from rich.table import Table

from regionx import __version__, api
from regionx.diagnostics import Diagnostic, exit_status
from regionx.sampling.draw import DEFAULT_DESIGN, DESIGNS
from regionx.types import CompileResult, FileAnalysis, StageResult, TrainResult

# Piped output (CI logs, tests) gets a wide table instead of rich's 80-column default.
console = Console(highlight=False, width=None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160")))
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


BUDGET_HELP = ("Seconds of surrogate search per region (timing, training, refinement; nominal seconds of a cost "
               "model, so a fixed --seed gives the same search). Default: [tool.regionx] budget, else 120.")
DESIGN_HELP = (f"How random inputs fill the box: independent uniform draws, a scrambled Sobol' sequence or a "
               f"Latin hypercube (sobol/lhs need scipy). Default: [tool.regionx] design, else {DEFAULT_DESIGN}.")

# Every exit status regionx uses (README.md "Exit status" lists the same).
EXIT_STATUSES = (
    (0, "success"),
    (1, "findings: check failed, not replaceable, no topology met the tolerance, not profitable"),
    (2, "usage or input error: option, file, syntax, region, pragma, domain, dataset"),
    (3, "internal error (a bug; REGIONX_DEBUG=1 prints the traceback)"),
    (130, "interrupted (Ctrl-C)"),
)
EXIT_STATUS_HELP = "\b\nExit status:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_STATUSES)


def _print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    for d in diagnostics:
        click.echo(d.format(), err=True)


def _finish(results: Sequence[StageResult]) -> None:
    """Print every diagnostic of `results` and exit with the status they call for."""
    diagnostics = [d for r in results for d in r.diagnostics]
    _print_diagnostics(diagnostics)
    status = exit_status(diagnostics)
    if status == 0 and any(r.status == "failed" for r in results):
        status = 1
    sys.exit(status)


def _rate_column() -> Any:
    """A rich column showing a task's rate: items (samples, epochs) per second."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            if not speed:
                return Text("-/s")
            return Text(f"{speed:,.0f}/s" if speed >= 10 else f"{speed:.2g}/s")

    return RateColumn()


class _Display:
    """The progress callbacks of one command: called as ``display(done, total)`` or
    ``display(label, done, total)`` it moves a bar; ``display.event(SearchEvent)`` shows the
    surrogate search of a region (candidate, stage, budget left: regionx.train.SearchEvent).
    Without a bar (no terminal, --json) both do nothing."""

    def __init__(self, bar: Any = None, label: str = "") -> None:
        self.bar, self.label = bar, label
        self.tasks: dict[str, Any] = {}

    def __call__(self, *args: Any) -> None:
        if self.bar is None:
            return
        name, done, total = (self.label, *args) if len(args) == 2 else args
        if name not in self.tasks:
            self.tasks[name] = self.bar.add_task(str(name), total=total, budget="")
        self.bar.update(self.tasks[name], completed=done, total=total)

    def event(self, ev: Any) -> None:
        if self.bar is None:
            return
        key = f"search {ev.region}"
        stage = {"timing": "timing", "adam": "Adam", "refine": f"refining ({ev.detail})",
                 "extend": f"refining longer ({ev.detail})", "grow": f"sampling more ({ev.detail})",
                 "measure": "measuring", "guard": "learning a guard", "met": f"met the target ({ev.detail})", "refused": "refused: no network can be faster",
                 "done": f"done: {ev.detail}"}.get(ev.stage, ev.stage)
        what = f"{ev.region} · {ev.candidate} · {stage}" if ev.candidate else f"{ev.region} · {stage}"
        left = "" if ev.budget_left is None else f"budget {ev.budget_left:.0f}/{ev.budget:.0f} s left"
        total = ev.total if ev.total else None
        if key not in self.tasks:
            self.tasks[key] = self.bar.add_task(what, total=total, budget=left)
        self.bar.update(self.tasks[key], description=what, completed=ev.done, total=total, budget=left)


@contextmanager
def _progress(label: str, enabled: bool = True) -> Iterator[_Display]:
    """A rich progress display on a terminal (stdout and stderr both; nothing when either is
    piped, or when `enabled` is false, e.g. under --json), fed by `_Display`'s callbacks."""
    if not enabled or not err_console.is_terminal or not sys.stdout.isatty():
        yield _Display()
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    # Rate and time left: sampling a costly region can take minutes (issue 14); the search's
    # budget left in nominal seconds (regionx.train.Ledger).
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _rate_column(),
                  TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), TextColumn("{task.fields[budget]}"),
                  console=err_console, transient=True) as bar:
        yield _Display(bar, label)


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_STATUS_HELP)
@click.version_option(__version__, prog_name="regionx")
def cli() -> None:
    """Replace slow, approximation-tolerant regions of numerical Python code with small neural networks."""


# --------------------------------------------------------------------------- analyze


def _analysis_table(fa: FileAnalysis) -> Table:
    table = Table(title=fa.path, title_justify="left", show_lines=False)
    for col in ("id", "kind", "at", "lines", "inputs", "outputs", "internals", "globals", "replaceable"):
        table.add_column(col, overflow="fold")
    for r in fa.regions:
        verdict = "yes" if r.replaceable else "no: " + ", ".join(x.code for x in r.reasons)
        if r.time_share is not None:
            verdict += f" [{r.time_share:.1%} of run]"
        table.add_row(
            r.id + (" *" if r.annotated else ""), r.kind, f"{r.start_line}:{r.col}", f"{r.start_line}-{r.end_line}",
            ", ".join(r.inputs), ", ".join(r.outputs), ", ".join(r.internals), ", ".join(r.globals), verdict,
        )
    return table


def _first_columns(path: str) -> dict[int, int]:
    """1-based column of each line's first non-blank character (where a reason's statement starts)."""
    from regionx.analysis.source import read_source

    text, _ = read_source(path)
    lines = (text or "").splitlines()
    return {i: len(line) - len(line.lstrip()) + 1 for i, line in enumerate(lines, 1)}


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (schema: docs/design.md).")
@click.option("--profile", "profile_cmd", metavar="CMD", help='Fill time_share from one run of CMD, e.g. "python app.py".')
def analyze(files: tuple[str, ...], as_json: bool, profile_cmd: str | None) -> None:
    """Find candidate regions and their inputs, outputs and replaceability."""
    results = api.analyze(files, profile=profile_cmd)
    if as_json:
        click.echo(json.dumps({"version": 1, "files": [fa.to_json() for fa in results]}, indent=2))
    else:
        for fa in results:
            if fa.ok:
                console.print(_analysis_table(fa))
                columns = _first_columns(fa.path) if any(r.reasons for r in fa.regions) else {}
                for r in fa.regions:
                    for reason in r.reasons:
                        console.print(f"  {fa.path}:{reason.line}:{columns.get(reason.line, 1)}: {reason.code} {r.id} "
                                      f"{reason.message}", soft_wrap=True)
    diagnostics = [d for fa in results for d in fa.diagnostics]
    _print_diagnostics(diagnostics)
    sys.exit(exit_status(diagnostics))


# --------------------------------------------------------------------------- extract / sample


@cli.command()
@click.argument("file")
@click.option("--region", "selector", required=True, help="Region id, name or line number.")
@click.option("-o", "--out", default=None, help="Harness file to write (default harness_<name>.py).")
def extract(file: str, selector: str, out: str | None) -> None:
    """Write a region as a standalone harness module."""
    result = api.extract(file, selector, out)
    if result.ok:
        click.echo(f"wrote {result.artifacts['harness']}")
    _finish([result])


@cli.command()
@click.argument("file", required=False)
@click.option("--region", "selector", help="Region id, name or line number.")
@click.option("-n", "--samples", "n", type=int, default=None, help="Number of samples (default: pragma's samples, else 10000).")
@click.option("--seed", type=int, default=None, help="Random seed (default: pragma's seed, else 0).")
@click.option("-o", "--out", default=None, help="Dataset to write (default <name>.npz).")
@click.option("--domain", "domains", multiple=True, metavar="NAME=SPEC", help="Override an input's domain, e.g. a='uniform(0, 1)'.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds one sample may run.")
@click.option("--executor", default="local", show_default=True, help="local, local:K or dask://HOST:PORT.")
@click.option("--observe", metavar="CMD", default=None, help='Record the inputs a real run of CMD sees, e.g. "python app.py".')
@click.option("--mix", type=float, default=0.0, help="With --observe: fraction of random samples mixed in.")
@click.option("--info", "info", metavar="DATA", default=None, help="Summarise an existing dataset and exit.")
@click.option("--design", type=click.Choice(DESIGNS), default=None, help=DESIGN_HELP)
def sample(file: str | None, selector: str | None, n: int | None, seed: int | None, out: str | None,
           domains: tuple[str, ...], timeout: float, executor: str, observe: str | None, mix: float,
           info: str | None, design: str | None) -> None:
    """Sample valid inputs of a region and record its outputs."""
    if info is not None:
        result = api.sample_info(info)
        if result.ok:
            click.echo(json.dumps(result.to_json(), indent=2))
        _finish([result])
    if file is None or selector is None:
        raise click.UsageError("FILE and --region are required (or use --info DATA)")
    with _progress("sampling") as progress:
        sampled = api.sample(file, selector, n=n, seed=seed, out=out, domains=domains, timeout=timeout,
                            executor=executor, observe=observe, mix=mix, progress=progress, design=design)
    if sampled.ok:
        d = sampled.payload
        click.echo(f"wrote {sampled.artifacts.get('dataset')}: {d.kept} samples kept; dropped {d.dropped}; "
                   f"exact region {_fmt_time(d.exact_time_per_call)} per call")
    _finish([sampled])


# --------------------------------------------------------------------------- train


def _program_view(row: dict[str, Any]) -> dict[str, Any]:
    """What the patched program gets from a topology row: with an `accept` predicate, the effective
    accuracy and times (rejected rows run the exact code), else the network's own."""
    accuracy = row.get("effective_accuracy")
    per_call = row.get("effective_time_per_call") or row["time_per_call"]
    per_elem = row.get("effective_time_per_element") or row["time_per_element"]
    exact = row["exact_time_per_call"]
    shown = f"{row['accuracy']:.1%}" if accuracy is None else f"{accuracy:.1%} (raw {row['accuracy']:.1%})"
    lcb = row.get("effective_accuracy_lcb") if accuracy is not None else row.get("accuracy_lcb")
    return {"accuracy": shown, "lcb": "-" if lcb is None else f"{lcb:.2%}", "per_call": per_call, "per_elem": per_elem,
            "speedup_call": exact / per_call if per_call else 0.0, "speedup_batch": exact / per_elem if per_elem else 0.0}


def _topology_table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("topology", "train time", "steps", "L2 loss", "within tolerance", "lower bound (95%)", "per call",
                "per row, batched loop", "speedup per call", "speedup batched loop", ""):
        table.add_column(col)
    for row in rows:
        view = _program_view(row)
        table.add_row(
            row["label"], f"{row['train_time']:.1f} s", str(row["steps"]), f"{row['loss']:.3g}", view["accuracy"],
            view["lcb"],
            _fmt_time(view["per_call"]), _fmt_time(view["per_elem"]),
            f"{view['speedup_call']:.2f}x", f"{view['speedup_batch']:.2f}x",
            ("chosen" if row.get("chosen") else ("meets target" if row["meets_target"] else "")),
        )
    return table


@cli.command()
@click.argument("data")
@click.option("-o", "--out", default=None, help="Artifact directory (default .regionx/<region-name>).")
@click.option("--topologies", default=None, help='Hidden layers to try, e.g. "5,3;8,5" or "8,5:relu".')
@click.option("--tolerance", type=float, default=None, help="Accuracy tolerance (default: the region's).")
@click.option("--metric", type=click.Choice(["rel", "abs"]), default=None)
@click.option("--target", type=float, default=0.99, show_default=True, help="Fraction of test points within tolerance.")
@click.option("--epochs", type=int, default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--executor", default=None, help="Train topologies in parallel: local:K or dask://HOST:PORT.")
@click.option("--refine", type=click.Choice(["auto", "lm", "lbfgs", "none"]), default="auto", show_default=True,
              help="Second-order refinement after Adam: Levenberg-Marquardt, L-BFGS, or auto (LM for small nets).")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help=BUDGET_HELP)
@click.option("--all", "train_all", is_flag=True,
              help="Train every topology (no a-priori timing, no budget) instead of the fastest first.")
@click.option("--rtol", type=click.FloatRange(min=0), default=None, help="Relative tolerance (numpy.isclose's rtol).")
@click.option("--atol", type=click.FloatRange(min=0), default=None, help="Absolute tolerance (numpy.isclose's atol).")
@click.option("--guard", type=click.Choice(["auto", "off"]), default="auto", show_default=True,
              help="A network that misses the target alone may get a learned guard that sends the inputs it "
                   "would get wrong to the exact code (auto), or never (off).")
def train(data: str, out: str | None, topologies: str | None, tolerance: float | None, metric: str | None,
          target: float, epochs: int, seed: int, executor: str | None, refine: str, budget: float | None,
          train_all: bool, rtol: float | None, atol: float | None, guard: str) -> None:
    """Time the topologies, then train the fastest first until one meets the tolerance."""
    with _progress("training") as display:
        result = api.train(data, out=out, topologies=topologies, tolerance=tolerance, metric=metric, target=target,
                           epochs=epochs, seed=seed, executor=executor, progress=display, refine=refine,
                           budget=budget, search="all" if train_all else "fastest-first", rtol=rtol, atol=atol,
                           events=display.event, guard=guard)
    rows = result.value.rows if result.value is not None else ()
    if rows:
        console.print(_topology_table(rows, f"topologies for {result.region_id}"))
    for line in _search_lines(result.region_id, result.value, result.artifacts):
        click.echo(line)
    if result.ok:
        click.echo(f"chose {(result.payload.chosen or {}).get('label')}; artifacts in {os.path.dirname(result.artifacts['manifest'])}")
    _finish([result])


# --------------------------------------------------------------------------- rewrite / compile


@cli.command()
@click.argument("file")
@click.option("--region", "selector", default=None,
              help="Region id, name or line number (default: the region the artifact was trained for).")
@click.option("--artifact", default=None, help="The region's artifact directory (with manifest.json).")
@click.option("-o", "--out", default=None, help="Output directory for the patched file and its surrogate module.")
@click.option("--in-place", is_flag=True, help="Rewrite FILE itself (atomically).")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff instead of writing.")
@click.option("--force", is_flag=True, help="Rewrite even when the surrogate is not faster.")
@click.option("--revert", is_flag=True, help="Give back the original text of a rewritten FILE.")
def rewrite(file: str, selector: str | None, artifact: str | None, out: str | None, in_place: bool,
            show_diff: bool, force: bool, revert: bool) -> None:
    """Patch a region to call its trained surrogate, keeping the exact code as fallback."""
    if sum(map(bool, (out, in_place, show_diff))) > 1:
        raise click.UsageError("use only one of -o/--out, --in-place and --diff")
    if not revert and artifact is None:
        raise click.UsageError("--artifact is required (or use --revert)")
    result = api.rewrite(file, selector, artifact, out=out, in_place=in_place, diff=show_diff, force=force, revert=revert)
    if result.ok:
        if show_diff:
            click.echo(result.payload.diff or "", nl=False)
        elif "patched" in result.artifacts:
            click.echo(f"wrote {result.artifacts['patched']}")
        else:
            click.echo(result.payload.text, nl=False)
    _finish([result])


def _path_runs(d: CompileResult) -> str:
    """Which code answers the region's calls in the patched program."""
    if d.verdict != "rewritten":
        return "exact code (not rewritten)"
    batched = d.batched or ()
    if d.path_taken == "batch" and batched:
        lines = ", ".join(str(b["line"]) for b in batched)
        return f"batched loop (line{'s' if len(batched) > 1 else ''} {lines})"
    return "per call"


def _compile_table(results: Sequence[StageResult[CompileResult]]) -> Table:
    """compile's summary: one row per region, every figure labelled (issue 12 item 4)."""
    table = Table(title="regionx compile", title_justify="left")
    for col in ("region", "samples", "network", "accuracy (test points within tolerance)", "exact code",
                "surrogate", "speedup", "path that runs", "verdict"):
        table.add_column(col, overflow="fold")
    for r in results:
        d = r.value if r.value is not None else CompileResult(inputs=(), outputs=())
        chosen = d.chosen or {}
        view = _program_view(chosen) if chosen else {}
        accuracy = f"accuracy {view['accuracy']}, lower bound {view['lcb']}" if chosen else "-"
        exact = chosen.get("exact_time_per_call", d.exact_time_per_call)
        table.add_row(
            r.region_id,
            ("-" if d.samples is None else str(d.samples)) + (" (reused)" if d.sample and d.sample.samples_reused else ""),
            chosen.get("label", "-"), accuracy,
            f"{_fmt_time(exact)} per call" if exact else "-",
            f"{_fmt_time(view['per_call'])} per call / {_fmt_time(view['per_elem'])} per row of the batched loop" if chosen else "-",
            f"per call {view['speedup_call']:.2f}x / batched loop {view['speedup_batch']:.2f}x" if chosen else "-",
            _path_runs(d), d.verdict or r.status,
        )
    return table


def _batch_lines(region_id: str, batched: Sequence[dict[str, Any]] | None) -> list[str]:
    """For each batched loop, the predicted speedup of a long loop and of loops of 1,000 and
    10,000 rows: a batch also costs the call and row 0, answered by the exact code (rewrite.sites)."""
    lines = []
    for site in batched or ():
        orig, row, fixed = (site.get(k) for k in ("original_per_row_seconds", "per_row_seconds", "per_batch_seconds"))
        if not (orig and row and fixed):
            continue
        at = {n: n * orig / (n * row + fixed) for n in (1000, 10000)}
        shorter = int(site.get("min_rows", 2))  # fewer rows: the loop runs as written
        sizes = [f"{at[n]:.1f}x at {n:,} rows" for n in (1000, 10000) if n >= shorter]
        line = (f"{region_id}: loop at line {site['line']} batched ({site['form']}): predicted "
                f"{site['predicted_speedup']:.1f}x for a long loop; each batch also costs {_fmt_time(fixed)} "
                f"(the call, and row 0 by the exact code)")
        if sizes:
            line += ": " + ", ".join(sizes)
        if shorter > 2:
            line += f"; a loop of fewer than {shorter:,} rows runs as written, one call at a time"
        lines.append(line)
    return lines


def _search_lines(region_id: str, trained: TrainResult | None, artifacts: dict[str, str]) -> list[str]:
    """What the search did for one region, where its report is, and (when it failed) what more
    budget would likely buy."""
    search = trained.search if trained is not None else {}
    lines: list[str] = []
    if search.get("mode") == "fastest-first":
        cands = search.get("candidates") or []
        tried = sum(1 for c in cands if c.get("status") in ("met target", "missed target"))
        viable = sum(1 for c in cands if c.get("viable"))
        budget = search.get("budget_s")
        lines.append(f"{region_id}: search trained {tried} of {viable} candidate(s) that can beat the exact code "
                     f"({len(cands)} timed), {search.get('spent_nominal_s', 0):.0f} s of a {budget or 0:.0f} s budget "
                     f"({search.get('spent_wall_s', 0):.0f} s wall clock); {search.get('stopped', '')}")
    for note in search.get("advice") or []:
        lines.append(f"{region_id}: more budget: {note}")
    criterion = (trained.criterion if trained is not None else None) or {}
    rule = criterion.get("text")
    if rule and trained is not None and trained.chosen:
        lines.append(f"{region_id}: within tolerance means {rule}; the target is met by the 95% lower bound")
    warning = criterion.get("warning")
    if warning:
        lines.append(f"{region_id}: warning: {warning}")
    if artifacts.get("report_md"):
        lines.append(f"{region_id}: report {artifacts['report_md']}")
    return lines


@cli.command(name="compile")
@click.argument("file")
@click.option("--region", "selectors", multiple=True, help="Regions to compile (default: every annotated region).")
@click.option("--out", "out_dir", default=None, help="Output directory (default [tool.regionx] artifacts, else .regionx/).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON document.")
@click.option("-n", "--samples", type=int, default=None, help="Samples per region (default: pragma's, else 12000).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=int, default=None, help="Most Adam epochs per network (default 150; the budget may give fewer).")
@click.option("--topologies", default=None, help='Hidden layers to try, e.g. "5,3;8,5".')
@click.option("--target", type=float, default=0.99, show_default=True)
@click.option("--tolerance", type=float, default=None, help="Override the regions' tolerance.")
@click.option("--metric", type=click.Choice(["rel", "abs"]), default=None, help="Override the regions' metric.")
@click.option("--executor", default="local", show_default=True)
@click.option("--force", is_flag=True, help="Rewrite even when the surrogate is not faster.")
@click.option("--refine", type=click.Choice(["auto", "lm", "lbfgs", "none"]), default="auto", show_default=True,
              help="Second-order refinement after Adam: Levenberg-Marquardt, L-BFGS, or auto (LM for small nets).")
@click.option("--design", type=click.Choice(DESIGNS), default=None, help=DESIGN_HELP)
@click.option("--resample", is_flag=True, help="Sample again even when the saved samples still stand for the region.")
@click.option("--rounds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Take the samples in R active rounds, each placed where a surrogate of the samples so far errs "
                   "most (for regions of seconds per call; each round trains a network).")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help=BUDGET_HELP)
@click.option("--guard", type=click.Choice(["auto", "off"]), default="auto", show_default=True,
              help="A network that misses the target alone may get a learned guard that sends the inputs it "
                   "would get wrong to the exact code (auto), or never (off).")
def compile_(file: str, selectors: tuple[str, ...], out_dir: str | None, as_json: bool, samples: int | None, seed: int,
             epochs: int | None, topologies: str | None, target: float, tolerance: float | None, metric: str | None,
             executor: str, force: bool, refine: str, design: str | None, resample: bool, rounds: int,
             budget: float | None, guard: str) -> None:
    """Extract, sample, train and rewrite every annotated region of FILE."""
    with _progress("compiling", enabled=not as_json) as display:
        results = api.compile_file(file, selectors, out_dir=out_dir, samples=samples, seed=seed, epochs=epochs,
                                   topologies=topologies, target=target, tolerance=tolerance, metric=metric,
                                   executor=executor, force=force, progress=display, refine=refine, design=design,
                                   resample=resample, rounds=rounds, budget=budget, events=display.event, guard=guard)
    if as_json:
        click.echo(json.dumps({"version": 1, "file": file, "regions": [
            {"region": r.region_id, "status": r.status, **r.to_json(), "artifacts": r.artifacts,
             "diagnostics": [d.to_json() for d in r.diagnostics]} for r in results]}, indent=2, default=str))
    elif results:
        console.print(_compile_table(results))
        for r in results:  # sampling is the costly stage of an expensive region: say when it was skipped
            sampled = r.value.sample if r.value is not None else None
            if sampled is not None and sampled.samples_reused:
                click.echo(f"{r.region_id}: reused the samples in {sampled.samples_file} "
                           "(the region and what it depends on are unchanged)")
            elif sampled is not None and sampled.samples_resampled_because:
                click.echo(f"{r.region_id}: sampled again ({sampled.samples_resampled_because})")
        for r in results:
            for line in _search_lines(r.region_id, r.value.train if r.value is not None else None, r.artifacts):
                click.echo(line)
            for line in _batch_lines(r.region_id, r.value.batched if r.value is not None else None):
                click.echo(line)
        for r in results:
            if "patched" in r.artifacts:
                click.echo(f"patched program: {r.artifacts['patched']}")
                break
    _finish(results)


# --------------------------------------------------------------------------- check / profile


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--artifacts", default=None, help="Artifact directory (default [tool.regionx] artifacts, else .regionx/).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "sarif"]), default="text", show_default=True)
@click.option("--samples", type=int, default=None, help="Fresh samples per region for the accuracy check.")
def check(paths: tuple[str, ...], artifacts: str | None, fmt: str, samples: int | None) -> None:
    """Verify committed surrogates: present, not stale, still accurate."""
    from regionx import check as check_mod

    report = api.check(paths, artifacts=artifacts, samples=samples)
    click.echo(check_mod.render(report, fmt), nl=False)
    sys.exit(report.exit_status)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--json", "as_json", is_flag=True)
@click.option("--top", type=int, default=None, help="Show only the N hottest regions.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def profile(as_json: bool, top: int | None, command: tuple[str, ...]) -> None:
    """Time each candidate region in a real run: regionx profile -- python app.py args."""
    result = api.profile(list(command), top=top)
    if result.ok:
        if as_json:
            click.echo(json.dumps(result.to_json(), indent=2))
        else:
            table = Table(title=f"profile of {shlex.join(command)}", title_justify="left")
            for col in ("region", "calls", "total", "per call", "share", "inclusive"):
                table.add_column(col)
            profiled = result.payload
            for row in profiled.rows:
                table.add_row(row["region"], str(row["calls"]), _fmt_time(row["total_time"]), _fmt_time(row["time_per_call"]),
                              f"{row['share']:.2%}", _fmt_time(row.get("inclusive_time")))
            console.print(table)
            click.echo(f"program time {_fmt_time(profiled.total_time)}; "
                       f"instrumentation overhead {profiled.overhead or 0:.1%}")
    _finish([result])


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI and exit with one of EXIT_STATUSES; an unexpected internal error is
    one line, not a traceback. (Not click's standalone mode: it turns Ctrl-C into "Aborted!" and 1.)"""
    try:
        status = cli.main(args=list(argv) if argv is not None else None, prog_name="regionx", standalone_mode=False)
    except SystemExit:
        raise
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("regionx: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # a usage error: click's message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # an internal bug: say so in one line, traceback only on request
        if os.environ.get("REGIONX_DEBUG"):
            traceback.print_exc()
        click.echo(f"regionx: internal error: {type(exc).__name__}: {exc} (set REGIONX_DEBUG=1 for the traceback)", err=True)
        sys.exit(3)
    sys.exit(status if isinstance(status, int) else 0)  # --help, --version
