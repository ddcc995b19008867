"""report.json and report.md: every candidate, the search's choices and time, the criterion and
the dataset; the tables are shaped like the paper's Tables II/III."""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any

from regionx import compile as rxcompile
import regionx.train.budget as rxbudget
from regionx.train.budget import ADAM_FIXED_SECONDS, ADAM_STEP_SECONDS, MEASURE_SECONDS, TIMING_SECONDS
from regionx.train.data import SPLIT, TEST_POINTS
from regionx.train.fit import LR_FLOOR
from regionx.train.metrics import best_row
from regionx.types import TrainResult

if TYPE_CHECKING:
    from regionx.train.budget import Candidate, Ledger
    from regionx.train.data import _Context
    from regionx.train.measure import _Trained
    from regionx.train.data import _Settings

# WALL_FACTOR is read as rxbudget.WALL_FACTOR, on the module whose Ledger stops the search by it
# (tests replace it there), so the report states the factor that applied.


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def _fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.3g}" if seconds > 0 else "-"


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


# --------------------------------------------------------------------------- report.md


def render_report_md(report: dict[str, Any]) -> str:
    """report.md: a table shaped like the paper's Tables II/III plus the dataset and the choice."""
    ds = report["dataset"]
    d_in, d_out = ds["d_in"], ds["d_out"]
    lines = _header_md(report)
    lines += _search_md(report)
    lines += _rows_md(report, d_in, d_out)
    if any(row.get("refine", {}).get("requested") not in (None, "none") for row in report["rows"]):
        lines += _refine_md(report, d_in, d_out)
    if any(row.get("guard") or row.get("guard_problem") for row in report["rows"]):
        lines += _guard_md(report, d_in, d_out)
    if report.get("accept"):
        lines += _accept_md(report, d_in, d_out)
    lines += _outcome_md(report)
    return "\n".join(lines)


def _header_md(report: dict[str, Any]) -> list[str]:
    """report.md's title and opening paragraph: the dataset, the criterion, the target, the selection."""
    ds = report["dataset"]
    crit = report.get("criterion") or {}
    crit_text = crit.get("text") or f"{report['tolerance']:g} ({report['metric']})"
    grown = f", {ds['n_grown']} more training rows sampled during the search" if ds.get("n_grown") else ""
    lines = [
        f"# regionx train: {report['region_name']}",
        "",
        f"Region `{report['region_id']}` of `{ds['source_path']}`; {ds['n']} samples "
        f"(train/validation/test {ds['n_train']}/{ds['n_val']}/{ds['n_test']}{grown}), inputs "
        f"{', '.join(ds['input_columns'])} -> outputs {', '.join(ds['output_columns'])}.",
        f"Within tolerance: {crit_text}"
        + (f" — {crit['below_floor']:.1%} of the training outputs are below the floor" if crit.get("below_floor") is not None else "")
        + f". Target: {report['target']:.1%} of test points, met by the one-sided 95% lower confidence bound "
        "(column Lower bound); "
        f"exact region {_fmt_us(ds['exact_time_per_call'])} us per call while sampling"
        + (", re-timed beside each topology (column Exact)" if report.get("exact_timing") == "interleaved" else "")
        + f"; seed {report['seed']}; "
        f"selection: fastest {'per call' if report['select_by'] == 'call' else 'per row of the batched loop'} among "
        "topologies meeting the target.",
        "",
    ]
    if crit.get("warning"):
        lines += [f"**Warning:** {crit['warning']}.", ""]
    return lines


def _rows_md(report: dict[str, Any], d_in: int, d_out: int) -> list[str]:
    """report.md's main table: per trained topology its training, loss, times, errors, accuracy and speedups."""
    lines = [
        "| Model topology | Activation | Training time (s) | Training steps | Epochs | L2 loss | "
        "Time per call (us) | Time per row, batched loop (us) | Exact (us) | Mean error | Max error | "
        "Accuracy within tolerance | Lower bound | Speedup per call | Speedup batched loop | |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ] if report["rows"] else []
    for row in report["rows"]:
        topo = "x".join(str(v) for v in [d_in, *row["hidden"], d_out])
        mark = "**chosen**" if row.get("chosen") else ("meets target" if row["meets_target"] else "")
        lcb = row.get("accuracy_lcb")
        lines.append(
            f"| {topo} | {row['activation']} | {row['train_time']:.2f} | {row['steps']:,} | {row['epochs']} | "
            f"{row['loss']:.3g} | {_fmt_us(row['time_per_call'])} | {_fmt_us(row['time_per_element'])} | "
            f"{_fmt_us(row['exact_time_per_call'])} | {row['mean_error']:.3g} | {row['max_error']:.3g} | {row['accuracy']:.1%} | "
            f"{'-' if lcb is None else f'{lcb:.2%}'} | {row['speedup_call']:.2f}x | {row['speedup_batch']:.2f}x | {mark} |"
        )
    lines.append("")
    return lines


def _accept_md(report: dict[str, Any], d_in: int, d_out: int) -> list[str]:
    """report.md's accept table: per topology the accept rate, raw and effective accuracy, the check's
    cost and the effective times and speedups."""
    lines = [
        f"With the accept predicate `{report['accept']}` the exact code answers every row it rejects, so the "
        "program's (effective) accuracy counts those rows as good; effective time = surrogate + accept check + "
        "rejection rate x exact time. Selection and the target use the effective values.",
        "",
        "| Model topology | Accept rate | Raw accuracy | Accuracy of accepted rows | Effective accuracy | "
        "Accept check per call (us) | Accept check per element (us) | Effective time per call (us) | "
        "Effective time per element (us) | Effective speedup per call | Effective speedup batch | Note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["rows"]:
        topo = "x".join(str(v) for v in [d_in, *row["hidden"], d_out])
        if row.get("effective_accuracy") is None:
            lines.append(f"| {topo} {row['activation']} | - | {row['accuracy']:.1%} | - | - | - | - | - | - | - | - | "
                         f"{row.get('accept_problem') or 'not evaluated'} |")
            continue
        acc_ok = row.get("accepted_accuracy")
        lines.append(
            f"| {topo} {row['activation']} | {row['accept_rate']:.1%} | {row['accuracy']:.1%} | "
            f"{'-' if acc_ok is None else f'{acc_ok:.1%}'} | {row['effective_accuracy']:.1%}"
            + ("" if row.get("effective_accuracy_lcb") is None else f" (lower bound {row['effective_accuracy_lcb']:.2%})")
            + " | "
            f"{_fmt_us(row['accept_time_per_call'])} | {_fmt_us(row['accept_time_per_element'])} | "
            f"{_fmt_us(row['effective_time_per_call'])} | {_fmt_us(row['effective_time_per_element'])} | "
            f"{row['effective_speedup_call']:.2f}x | {row['effective_speedup_batch']:.2f}x | "
            f"{'' if row.get('accept_vectorised') else 'checked row by row (not vectorisable)'} |")
    lines.append("")
    return lines


def _outcome_md(report: dict[str, Any]) -> list[str]:
    """report.md's closing lines: the chosen topology, or why there is none."""
    lines: list[str] = []
    chosen = report.get("chosen")
    if chosen:
        lcb = chosen.get("accuracy_lcb")
        lines.append(f"Chosen: **{chosen['label']}** — accuracy {chosen['accuracy']:.1%}"
                     + ("" if lcb is None else f" (lower bound {lcb:.2%} of {chosen.get('n_test', 0)} test points)")
                     + f", {_fmt_us(chosen['time_per_call'])} us per call ({chosen['speedup_call']:.2f}x), "
                     f"{_fmt_us(chosen['time_per_element'])} us per row of the batched loop ({chosen['speedup_batch']:.2f}x).")
        if chosen.get("effective_accuracy") is not None:
            guards = " and ".join(g for g, on in (("accept", report.get("accept")), ("its learned guard", chosen.get("guard"))) if on)
            lines.append(f"With {guards}: the network answers {chosen['accept_rate']:.1%} of rows, program accuracy "
                         f"{chosen['effective_accuracy']:.1%}, {_fmt_us(chosen['effective_time_per_call'])} us per call "
                         f"({chosen['effective_speedup_call']:.2f}x), {_fmt_us(chosen['effective_time_per_element'])} us per "
                         f"batch element ({chosen['effective_speedup_batch']:.2f}x).")
    elif report.get("status") == "refused":
        lines.append("Refused before training: no candidate network can be faster than the exact code, even at "
                     "perfect accuracy (RX502).")
    else:
        best = report.get("best")
        if best and best.get("effective_accuracy") is not None:
            lines.append(f"No topology reached the target. Best: {best['label']} with effective accuracy "
                         f"{best['effective_accuracy']:.1%} (raw {best['accuracy']:.1%}, {best['accept_rate']:.1%} accepted).")
        else:
            lines.append(f"No topology reached the target. Best: {best['label']} with accuracy {best['accuracy']:.1%}."
                         if best else "No topology was trained.")
    lines.append("")
    return lines


def _guard_md(report: dict[str, Any], d_in: int, d_out: int) -> list[str]:
    """report.md's learned-guard table: raw accuracy, guarded (program) accuracy, fallback share and
    effective speedups of every network that needed a guard (regionx.guard)."""
    lines = [
        "Learned guard (regionx.guard): a network that missed the target alone got a small score network "
        "predicting its error per input, its threshold calibrated on the test rows (Learn-then-Test, 95% "
        "confidence) so that the program's answers — the network's where the guard trusts it, the exact "
        "code's elsewhere — meet the target. Effective time = network + guard + fallback share x exact time.",
        "",
        "| Model topology | Raw accuracy | Guard | Guarded (program) accuracy | Fallback share | Guard per call (us) | "
        "Guard per row (us) | Effective speedup per call | Effective speedup batch | Note |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["rows"]:
        topo = "x".join(str(v) for v in [d_in, *row["hidden"], d_out])
        g = row.get("guard")
        if not g:
            note = row.get("guard_problem") or "met the target without a guard"
            lines.append(f"| {topo} {row['activation']} | {row['accuracy']:.1%} | - | - | - | - | - | - | - | {note} |")
            continue
        lcb = row.get("effective_accuracy_lcb")
        lines.append(
            f"| {topo} {row['activation']} | {row['accuracy']:.1%} | {'x'.join(str(h) for h in g['hidden'])} tanh | "
            f"{row['effective_accuracy']:.2%}" + ("" if lcb is None else f" (lower bound {lcb:.2%})") + " | "
            f"{1.0 - row['accept_rate']:.1%} | {_fmt_us(g['time_per_call'])} | {_fmt_us(g['time_per_element'])} | "
            f"{row['effective_speedup_call']:.2f}x | {row['effective_speedup_batch']:.2f}x | |")
    lines.append("")
    return lines


def _search_md(report: dict[str, Any]) -> list[str]:
    """report.md's account of the search: each candidate's a-priori cost and fate, the time spent,
    how it stopped and (without a winner) what more budget would likely buy."""
    search = report.get("search")
    if not search:
        return []
    form = "per row of the batched loop" if search.get("form") == "loop" else "per call"
    budget = search.get("budget_s")
    lines = [
        f"Search: {search['mode']}; {('budget ' + format(budget, 'g') + ' s nominal, ') if budget else 'no budget, '}"
        f"spent {search['spent_nominal_s']:.1f} s nominal ({search['spent_wall_s']:.1f} s wall clock"
        + (f"; stopped by the wall clock at {rxbudget.WALL_FACTOR:g} x the budget" if search.get("over_wall_clock") else "")
        + f"); stopped: {search['stopped']}.",
        "",
    ]
    cands = search.get("candidates") or []
    if search["mode"] == "fastest-first" and cands:
        lines += [
            f"Candidates timed before training with random weights, in the form that will run ({form}"
            + (f", plus {_fmt_us(search['loop_extra_seconds'])} us per row for the loop's first pass"
               if search.get("loop_extra_seconds") else "")
            + f"), against the exact code's {_fmt_us(search['exact_time_per_call'])} us per call; trained fastest first:",
            "",
            "| Order | Candidate | Weights | Time per call (us) | Time per row, batched loop (us) | Can beat the exact code | Outcome |",
            "|---:|---|---:|---:|---:|---|---|",
        ]
        for c in cands:
            lines.append(f"| {'-' if c['order'] is None else c['order'] + 1} | {c['label']} | {c['weights']} | "
                         f"{_fmt_us(c['time_per_call'] or 0)} | {_fmt_us(c['time_per_row'] or 0)} | "
                         f"{'yes' if c['viable'] else 'no'} | {c['status']} |")
        lines.append("")
    steps = [e for e in search.get("log", []) if e["stage"] != "timing"]
    if steps:
        lines += ["| Step | Candidate | Nominal (s) | Wall (s) | Budget left (s) | Result |", "|---|---|---:|---:|---:|---|"]
        for e in steps:
            result = ""
            if e["stage"] == "measure":
                lcb = e.get("accuracy_lcb")
                eff = e.get("effective_accuracy")
                result = (f"test {e.get('accuracy', 0):.2%}" + ("" if eff is None else f", with accept {eff:.2%}")
                          + ("" if lcb is None else f", lower bound {lcb:.2%}"))
            elif e["stage"] == "train":
                kept = e.get("optimizer") or "adam"
                result = (f"{e.get('epochs')} epochs, refinement {e.get('refine_seconds', 0):.0f} s "
                          + ("(did not beat Adam)" if kept == "adam" else f"({kept} kept)"))
            elif e["stage"] in ("extend", "grow"):
                result = (f"{e.get('refine_seconds', 0):.0f} s more refinement on {e.get('rows')} rows: validation "
                          f"{_pct(e.get('val_accuracy_before'))} -> {_pct(e.get('val_accuracy_after'))}")
            elif e["stage"] == "robust":
                before, after = e.get("val_accuracy_before"), e.get("val_accuracy_after")
                result = (f"Cauchy loss, {e.get('iterations')} iterations: validation {_pct(before)} -> {_pct(after)}"
                          + (" (kept)" if (after or 0) > (before or 0) else " (dropped)"))
            elif e["stage"] == "guard":
                result = (f"no guard: {e['problem']}" if e.get("problem") else
                          f"{'x'.join(str(h) for h in e.get('guard') or ())} tanh guard lets the network answer "
                          f"{_pct(e.get('guard_rate'))}; program {_pct(e.get('effective_accuracy'))}, lower bound "
                          f"{_pct(e.get('accuracy_lcb'))}")
            left = e.get("budget_left_s")
            lines.append(f"| {e['stage']} | {e.get('candidate') or '-'} | {e['nominal_s']:.1f} | {e['wall_s']:.1f} | "
                         f"{'-' if left is None else f'{left:.0f}'} | {result} |")
        lines.append("")
    for note in search.get("advice") or []:
        lines.append(f"- More budget: {note}.")
    if search.get("advice"):
        lines.append("")
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _refine_md(report: dict[str, Any], d_in: int, d_out: int) -> list[str]:
    """report.md's refinement table: per topology the optimizer kept, its time and the losses."""
    training = report.get("training", {})
    lines = [
        f"Refinement after Adam: `{training.get('refine', '?')}`, {training.get('refine_seconds', 0):g} s nominal per topology "
        "(an iteration budget, so the result does not depend on the machine's load), "
        f"on the full training split; loss: {training.get('refine_loss', 'mse (normalised)')}. Attempts are judged on the "
        "validation split by the share of rows within tolerance, then by the loss; a refinement that does not beat "
        "Adam's weights is dropped (optimizer `adam`).",
        "",
        "| Model topology | Activation | Optimizer | Adam time (s) | Refinement time (s) | Attempts | "
        "Val accuracy before | Val accuracy after | Val loss before | Val loss after |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        ref = row.get("refine") or {}
        topo = "x".join(str(v) for v in [d_in, *row["hidden"], d_out])
        attempts = "; ".join(f"{a['optimizer']} from {a['start']}: {_pct(a.get('val_accuracy'))}, loss {a['val_loss']:.3g} "
                             f"({a.get('iterations', 0)} it, {a['seconds']:.1f} s, {a['status']})"
                             for a in ref.get("attempts", [])) or "-"
        lines.append(f"| {topo} | {row['activation']} | {row.get('optimizer', 'adam')} | {row.get('adam_time', row['train_time']):.2f} | "
                     f"{ref.get('seconds', 0.0):.2f} | {attempts} | {_pct(ref.get('val_accuracy_before'))} | "
                     f"{_pct(ref.get('val_accuracy_after'))} | {ref.get('val_loss_before', float('nan')):.3g} | "
                     f"{ref.get('val_loss_after', float('nan')):.3g} |")
    lines.append("")
    return lines


# --------------------------------------------------------------------------- report.json and the stage's data


def _write_json(path: str, data: Any) -> None:
    rxcompile.atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def _report(ctx: _Context, settings: _Settings, candidates: list[Candidate], trained: list[_Trained], chosen_i: int | None,
            form: str, exact_time: float, ledger: Ledger, search: str, stopped: str, advice: list[str]) -> dict[str, Any]:
    """report.json's document: every trained row, every candidate's a-priori cost, the search's
    choices and time, the criterion, the dataset."""
    meta, X, criterion = ctx.meta, ctx.X, ctx.criterion
    rows = [t.row for t in trained]
    best_i = best_row(rows)
    row_dicts = []
    for i, t in enumerate(trained):
        r = t.row
        d = r.to_json()
        d["chosen"] = i == chosen_i
        d["predict_one_path"] = "scalar" if rxcompile.use_scalar_path(t.result["layers"]) else "numpy"
        d["best_val_loss"] = t.result.get("best_val_loss")
        ref = t.result.get("refine") or {}
        kept = [dose.get("optimizer") for dose in t.doses if dose.get("optimizer") not in (None, "adam")]
        method = ref.get("method", "adam") if not kept else kept[-1]
        d["optimizer"] = "adam" if method == "adam" else f"adam+{method}"
        d["adam_time"] = t.result.get("adam_time", r.train_time)
        d["refine"] = ref
        d["doses"] = t.doses
        d["weights"] = t.candidate.n_weights
        d["order"] = t.candidate.order
        if t.extra.get("guard") or t.extra.get("guard_problem"):
            d["guard_text"] = t.extra.get("guard")
            d["guard_problem"] = t.extra.get("guard_problem")
        if meta.accept and t.extra:
            a = t.extra
            d.update({k: a[k] for k in ("accepted_accuracy", "accept_time_per_call", "accept_time_per_element")})
            d["accept_vectorised"] = a["vectorised"]
            d["accept_problem"] = a["problem"]
        if r.effective_time_per_call is not None:
            d["effective_speedup_call"] = _ratio(r.exact_time_per_call, r.program_time_per_call)
            d["effective_speedup_batch"] = _ratio(r.exact_time_per_call, r.program_time_per_element)
        row_dicts.append(d)
    n_train = len(ctx.train_rows()[0])
    return {
        "version": 2,
        "status": "ok" if chosen_i is not None else ("refused" if stopped == "refused" else "failed"),
        "region_id": meta.region_id,
        "region_name": meta.region_name,
        "tolerance": criterion.tolerance,
        "metric": criterion.metric,
        "criterion": {**criterion.to_json(), "text": criterion.describe(), "warning": criterion.floor_warning()},
        "target": ctx.target,
        "target_by": "one-sided 95% lower confidence bound (Wilson) of the share of test rows within tolerance",
        "seed": ctx.seed,
        "select_by": ctx.select_by,
        # where each row's exact_time_per_call comes from
        "exact_timing": "interleaved" if ctx.exact_timer is not None else "sampling",
        "accept": meta.accept,
        "search": {
            "mode": search, "form": form, "budget_s": ledger.seconds, "spent_nominal_s": round(ledger.spent, 3),
            "spent_wall_s": round(ledger.wall(), 3), "stopped": stopped, "exact_time_per_call": exact_time,
            "loop_extra_seconds": ctx.loop_extra,
            "over_wall_clock": ledger.over_wall(),
            "candidates": [c.to_json() for c in sorted(candidates, key=lambda c: (c.order is None, c.order or 0, c.index))],
            "log": ledger.log, "advice": advice,
            "cost_model": {"adam_fixed_s": ADAM_FIXED_SECONDS, "adam_step_s": ADAM_STEP_SECONDS,
                           "measure_s": MEASURE_SECONDS, "timing_s": TIMING_SECONDS, "wall_factor": rxbudget.WALL_FACTOR},
        },
        "training": {"epochs": settings.epochs, "batch_size": settings.batch_size, "learning_rate": settings.learning_rate,
                     "early_stopping_patience": settings.patience, "optimizer": "adam",
                     "schedule": f"cosine decay to {LR_FLOOR:g} x peak", "loss": "mse (normalised)",
                     "target_transform": None if ctx.transform is None else f"{ctx.transform[0]}(y / {ctx.transform[1]:.6g})",
                     "split": list(SPLIT), "test_points_min": TEST_POINTS, "refine": ctx.refine,
                     "refine_seconds": settings.refine_seconds,
                     "refine_loss": ("mse (normalised)" if ctx.refine == "none" else
                                     "mse of residuals weighted by 1 / allowed error (train.residual_weights)")},
        "dataset": {
            "source_path": meta.source_path, "source_sha256": meta.source_sha256, "mode": meta.mode,
            "n": int(X.shape[0]), "n_train": int(len(ctx.tr)), "n_val": int(len(ctx.va)), "n_test": int(len(ctx.te)),
            "n_grown": n_train - int(len(ctx.tr)),
            "d_in": int(X.shape[1]), "d_out": int(ctx.Y.shape[1]),
            "input_columns": [c for v in meta.inputs for c in v.columns()],
            "output_columns": [c for v in meta.outputs for c in v.columns()],
            "seed": meta.seed, "requested": meta.requested, "dropped": dict(meta.dropped),
            "exact_time_per_call": float(meta.exact_time_per_call),
            "lower": [float(v) for v in ctx.lower], "upper": [float(v) for v in ctx.upper],
        },
        "rows": row_dicts,
        "chosen": row_dicts[chosen_i] if chosen_i is not None else None,
        "best": row_dicts[best_i] if best_i is not None else None,
        "regionx_version": settings.version,
    }


def _write_reports(out_dir: str, report: dict[str, Any]) -> dict[str, str]:
    report_json = os.path.join(out_dir, "report.json")
    report_md = os.path.join(out_dir, "report.md")
    _write_json(report_json, report)
    rxcompile.atomic_write_text(report_md, render_report_md(report))
    return {"report_json": report_json, "report_md": report_md}


def _data(report: dict[str, Any]) -> TrainResult:
    """The stage's payload: the report's parts the CLI and --json show."""
    return TrainResult(rows=tuple(report["rows"]), chosen=report["chosen"], best=report["best"],
                       tolerance=report["tolerance"], metric=report["metric"], criterion=report["criterion"],
                       target=report["target"], select_by=report["select_by"],
                       search={k: v for k, v in report["search"].items() if k != "log"})
