"""compile's summary and progress display (issue 12, item 4): every figure labelled, the path
that runs named, the report pointed to; no progress output unless on a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from regionx import cli
from regionx.train import SearchEvent
from typing import Any

from regionx.types import CompileResult, SampleResult, StageResult, TrainResult

CHOSEN = {"label": "8x5 tanh", "accuracy": 0.666, "effective_accuracy": 1.0, "effective_accuracy_lcb": 0.9986,
          "accuracy_lcb": 0.65, "time_per_call": 7.3e-6, "time_per_element": 5.5e-7, "exact_time_per_call": 1.1e-6,
          "effective_time_per_call": 7.3e-6, "effective_time_per_element": 5.5e-7}


def _train(chosen: dict[str, Any] | None = None, search: dict[str, Any] | None = None,
           criterion: dict[str, Any] | None = None) -> TrainResult:
    return TrainResult(rows=(), chosen=chosen, best=None, tolerance=0.01, metric="rel", criterion=criterion or {},
                       target=0.99, select_by="call", search=search or {})


def _render(table: object) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=400, color_system=None).print(table)
    return buffer.getvalue()


def test_compile_table_labels_every_figure_and_the_path() -> None:
    rewritten = StageResult("ok", "newton", value=CompileResult(
        inputs=(), outputs=(), samples=12000, verdict="rewritten", path_taken="batch",
        batched=({"line": 71, "form": "index"},),
        train=_train(CHOSEN, criterion={"text": "|pred - exact| <= 1e-05 + 0.01 x |exact|"}),
    ), artifacts={"report_md": "out/newton/report.md"})
    refused = StageResult("failed", "lj_pair", value=CompileResult(inputs=(), outputs=(), samples=12000,
                                                                   exact_time_per_call=1.2e-7,
                                                                   verdict="refused before training"))
    text = _render(cli._compile_table([rewritten, refused]))
    assert cli._search_lines(rewritten.region_id, rewritten.payload.train, rewritten.artifacts) == [
        "newton: within tolerance means |pred - exact| <= 1e-05 + 0.01 x |exact|; the target is met by the 95% lower bound",
        "newton: report out/newton/report.md"]
    assert "accuracy 100.0% (raw 66.6%), lower bound 99.86%" in text
    assert "per call 0.15x / batched loop 2.00x" in text
    assert "batched loop (line 71)" in text and "exact code (not rewritten)" in text
    assert "1.1 us per call" in text and "7.3 us per call / 550 ns per row of the batched loop" in text
    assert "refused before training" in text


def test_search_lines_name_the_report_and_what_more_budget_buys() -> None:
    result = StageResult("failed", "cubic", value=_train(search={
        "mode": "fastest-first", "budget_s": 150.0, "spent_nominal_s": 149.0, "spent_wall_s": 160.0, "stopped": "budget spent",
        "candidates": [{"label": "8 tanh", "viable": True, "status": "missed target"},
                       {"label": "16 tanh", "viable": True, "status": "budget spent"},
                       {"label": "32x32 tanh", "viable": False, "status": "not faster than the exact code"}],
        "advice": ["about 40 s more of refinement would likely reach the target"]},
        criterion={"warning": "12.0% of the outputs are smaller than the floor"}),
        artifacts={"report_md": "out/cubic/report.md"})
    lines = cli._search_lines(result.region_id, result.value, result.artifacts)
    assert not any("within tolerance means" in line for line in lines)  # nothing chosen: no rule to explain
    assert lines[0] == ("cubic: search trained 1 of 2 candidate(s) that can beat the exact code (3 timed), 149 s of a "
                        "150 s budget (160 s wall clock); budget spent")
    assert "cubic: more budget: about 40 s more of refinement would likely reach the target" in lines
    assert "cubic: warning: 12.0% of the outputs are smaller than the floor" in lines
    assert lines[-1] == "cubic: report out/cubic/report.md"


def test_no_progress_display_off_a_terminal() -> None:
    # under pytest stdout is not a TTY: the display swallows every callback
    with cli._progress("compiling") as display:
        assert display.bar is None
        display("sample r", 5, 10)
        display(3, 10)
        display.event(SearchEvent("r", "adam", "8 tanh", 1, 10, 150.0, 120.0))
    with cli._progress("compiling", enabled=False) as display:
        assert display.bar is None


def test_progress_display_shows_region_candidate_stage_and_budget() -> None:
    from rich.progress import Progress, TextColumn

    bar = Progress(TextColumn("{task.description}"), TextColumn("{task.fields[budget]}"),
                   console=Console(file=io.StringIO()), auto_refresh=False)
    display = cli._Display(bar, "compiling")
    display.event(SearchEvent("newton", "timing", None, 0, 5, 150.0, 150.0))
    display.event(SearchEvent("newton", "adam", "8x5 tanh", 40, 120, 150.0, 131.4))
    [task] = bar.tasks
    assert task.description == "newton · 8x5 tanh · Adam" and task.completed == 40 and task.total == 120
    assert task.fields["budget"] == "budget 131/150 s left"
    display("sample newton", 10, 100)
    assert len(bar.tasks) == 2 and bar.tasks[1].fields["budget"] == ""


def test_compile_result_json_keeps_the_document_keys_in_order() -> None:
    """compile --json's region objects have the keys (and order) of the dicts they replace."""
    refused = CompileResult(inputs=("x",), outputs=("return",), verdict="not replaceable")
    assert refused.to_json() == {"inputs": ["x"], "outputs": ["return"], "verdict": "not replaceable"}
    failed = CompileResult(inputs=("x",), outputs=("return",), verdict="sampling failed",
                           sample=SampleResult(mode="random", requested=10, kept=0, dropped={"raised": 10}, observed=0,
                                               random=10, first_error="ValueError: x"))
    assert list(failed.to_json()) == ["inputs", "outputs", "mode", "requested", "kept", "dropped", "observed", "random",
                                      "first_error", "verdict"]
    reused = SampleResult(samples_reused=True, samples_file="out/f/data.npz", design="sobol")
    fresh = SampleResult(mode="random", requested=10, kept=10, dropped={}, observed=0, random=10,
                         exact_time_per_call=1e-6, design="sobol", samples_reused=False, samples_file="out/f/data.npz",
                         samples_resampled_because="--resample")
    tail = ["select_by", "hoistable_loops", "loop_extra_seconds", "rows", "chosen", "best", "tolerance", "metric",
            "criterion", "target", "search", "verdict"]
    for sample, keys in ((reused, ["samples_reused", "samples_file", "design"]),
                         (fresh, ["design", "samples_reused", "samples_file", "samples_resampled_because"])):
        trained = CompileResult(inputs=("x",), outputs=("return",), verdict="no topology met the target", sample=sample,
                                samples=10, exact_time_per_call=1e-6, select_by="call", hoistable_loops=(),
                                loop_extra_seconds=0.0, train=_train())
        assert list(trained.to_json()) == ["inputs", "outputs", "samples", "exact_time_per_call", *keys, *tail]
