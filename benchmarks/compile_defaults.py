"""`regionx compile` with its defaults on every fixture region and the AxBench-style kernels (issue 12, "done when").

Usage: .venv/bin/python benchmarks/compile_defaults.py [--quick] [--only NAME[,NAME]] [--repeats R] [--out DIR]

For each program: ``regionx compile FILE --out DIR --json`` in a fresh process with nothing but
the defaults (budget, samples, candidates, target 99% by the 95% lower confidence bound), its
wall time, and per region the verdict, the chosen network, the share of test points within
tolerance and its lower bound, what the search did (candidates timed and trained, nominal and
wall seconds). When the program was patched, the exact and the patched program are then run
side by side in this process (alternating, median of R runs of their own timed loop) and the
measured speedup is set against the one the report predicted for the path that runs (per row of
the batched loop, or per call). Writes <out>/compile_defaults.{md,json}. Full mode: about
15-25 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks._common import (RESULTS, ROOT, import_file, load_manifest, machine, machine_line, md_table,  # noqa: E402
                                quiet, write_json, write_text)
from regionx.check import manifest_criterion  # noqa: E402

# (name, file, whether main() returns the region's results and prints its loop time)
PROGRAMS = [
    ("newton", "fixtures/newton.py", True),
    ("lj_md", "fixtures/lj_md.py", False),
    ("physics", "fixtures/ci_repo/src/physics.py", False),
    ("projectile", "fixtures/projectile.py", True),
    ("cubic", "benchmarks/kernels/cubic.py", True),
    ("blackscholes", "benchmarks/kernels/blackscholes.py", True),
    ("inversek2j", "benchmarks/kernels/inversek2j.py", True),
]
LOOP_TIME = re.compile(r"^(?:solve |price )?time:\s*([0-9.eE+-]+)\s*s\s*$", re.M)


def compile_program(path: str, out: str, extra: list[str]) -> tuple[dict[str, Any], float, int]:
    """`regionx compile` with its defaults in a fresh process: (its --json document, wall seconds, exit status)."""
    cmd = [sys.executable, "-m", "regionx", "compile", path, "--out", out, "--json", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"{path}: compile printed no JSON (exit {proc.returncode}):\n{proc.stderr[-2000:]}") from None
    return doc, wall, proc.returncode


def loop_time(module: Any) -> tuple[list[list[float]], float]:
    """One run of module.main(): the region's results (flattened) and the loop time it printed."""
    results, printed = quiet(module.main)
    match = LOOP_TIME.search(printed)
    if match is None:
        raise SystemExit(f"{module.__file__}: main() printed no loop time")
    flat = np.asarray(results, dtype=np.float64)
    flat = flat.T if flat.ndim == 2 and flat.shape[0] < flat.shape[1] else flat  # (t1, t2) lists -> rows
    return flat.reshape(len(flat), -1).tolist(), float(match.group(1))


def side_by_side(exact_path: str, patched_path: str, artifact: str, repeats: int) -> dict[str, Any]:
    """Median loop times of the exact and the patched program (alternating runs) and the share of
    the patched program's results within the manifest's criterion."""
    criterion = manifest_criterion(load_manifest(artifact))
    exact_mod, patched_mod = import_file(exact_path), import_file(patched_path)
    te, tp = [], []
    Y: list[list[float]] = []
    P: list[list[float]] = []
    for _ in range(repeats):
        Y, t = loop_time(exact_mod)
        te.append(t)
        P, t = loop_time(patched_mod)
        tp.append(t)
    within = criterion.within(np.asarray(P), np.asarray(Y))
    return {"exact_s": statistics.median(te), "patched_s": statistics.median(tp),
            "measured_speedup": statistics.median(te) / statistics.median(tp), "within": float(np.mean(within)),
            "results": len(Y), "exact_runs": te, "patched_runs": tp, "first_run_speedup": te[0] / tp[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny configuration (smoke test): 2 programs, small budget")
    parser.add_argument("--only", default=None, help="comma-separated program names")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()
    info = machine()
    started = time.time()
    names = set(args.only.split(",")) if args.only else None
    programs = [p for p in PROGRAMS if names is None or p[0] in names]
    extra = ["--budget", "20", "--samples", "2000"] if args.quick else []
    if args.quick and names is None:
        programs = [p for p in programs if p[0] in ("lj_md", "inversek2j")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="regionx-bench-") as tmp:
        for name, rel, runnable in programs:
            path = os.path.join(ROOT, rel)
            out = os.path.join(tmp, name)
            print(f"compiling {rel} ...", flush=True)
            doc, wall, status = compile_program(path, out, extra)
            patched = os.path.join(out, os.path.basename(rel))
            for region in doc["regions"]:
                chosen = region.get("chosen") or {}
                search = region.get("search") or {}
                trained = [c["label"] for c in search.get("candidates", []) if c["status"] in ("met target", "missed target")]
                row: dict[str, Any] = {
                    "program": name, "file": rel, "region": region["region"], "verdict": region.get("verdict"),
                    "codes": [d["code"] for d in region.get("diagnostics", [])],
                    "message": next((d["message"] for d in region.get("diagnostics", [])), None),
                    "chosen": chosen.get("label"), "criterion": (region.get("criterion") or {}).get("text"),
                    "accuracy": chosen.get("effective_accuracy") or chosen.get("accuracy"),
                    "raw_accuracy": chosen.get("accuracy"),
                    "lcb": chosen.get("effective_accuracy_lcb") if chosen.get("effective_accuracy") is not None
                    else chosen.get("accuracy_lcb"),
                    "n_test": chosen.get("n_test"), "timed": len(search.get("candidates", [])), "trained": trained,
                    "stopped": search.get("stopped"), "search_nominal_s": search.get("spent_nominal_s"),
                    "search_wall_s": search.get("spent_wall_s"), "budget_s": search.get("budget_s"),
                    "advice": search.get("advice"), "path_taken": region.get("path_taken"),
                    "compile_wall_s": wall, "exit_status": status, "samples": region.get("samples"),
                }
                if region.get("verdict") == "rewritten":
                    batched = region.get("batched") or []
                    if region.get("path_taken") == "batch" and batched:
                        row["predicted_speedup"] = batched[0].get("predicted_speedup")
                        row["batched_site"] = batched[0]
                    else:
                        row["predicted_speedup"] = chosen.get("speedup_call")
                rows.append(row)
            singles = [r for r in rows if r["program"] == name]
            if runnable and os.path.exists(patched) and len(singles) == 1 and singles[0]["verdict"] == "rewritten":
                art = os.path.join(out, singles[0]["region"])
                measured = side_by_side(path, patched, art, 1 if args.quick else args.repeats)
                singles[0].update(measured)
                site = singles[0].get("batched_site")
                if site and site.get("per_batch_seconds") is not None:
                    # the rewrite's figures for a loop of this many rows: one batch, its fixed cost
                    # (the call, row 0 answered exactly) beside the rows'
                    n = measured["results"]
                    singles[0]["predicted_speedup"] = n * site["original_per_row_seconds"] / (
                        n * site["per_row_seconds"] + site["per_batch_seconds"])
                pred = singles[0].get("predicted_speedup")
                if pred:
                    singles[0]["prediction_error"] = measured["measured_speedup"] / pred - 1.0
            print(json.dumps({k: v for k, v in singles[-1].items() if k not in ("exact_runs", "patched_runs")},
                             default=str), flush=True)

    def pct(v: Any) -> str:
        return "-" if v is None else f"{v:.2%}"

    table = md_table(
        ["program", "region", "verdict", "network", "within tolerance (lower bound)", "search: timed / trained, nominal s (wall s)",
         "path", "predicted speedup", "measured speedup", "first run", "results within tolerance", "compile wall time"],
        [[r["program"], r["region"], r["verdict"] + (f" ({', '.join(r['codes'])})" if r["codes"] else ""), r["chosen"] or "-",
          f"{pct(r['accuracy'])} ({pct(r['lcb'])} of {r['n_test']})" if r["accuracy"] is not None else "-",
          f"{r['timed']} / {len(r['trained'])}, {r['search_nominal_s'] or 0:.0f} ({r['search_wall_s'] or 0:.0f})",
          r["path_taken"] or "-", f"{r['predicted_speedup']:.2f}x" if r.get("predicted_speedup") else "-",
          f"{r['measured_speedup']:.2f}x ({r['prediction_error']:+.0%})" if r.get("prediction_error") is not None
          else (f"{r['measured_speedup']:.2f}x" if r.get("measured_speedup") else "-"),
          f"{r['first_run_speedup']:.2f}x" if r.get("first_run_speedup") else "-",
          pct(r.get("within")), f"{r['compile_wall_s']:.0f} s"] for r in rows], align="lllllllrrrrr")
    notes = [f"- {r['program']}/{r['region']}: {r['message']}" for r in rows if r["message"]]
    notes += [f"- {r['program']}/{r['region']}: more budget: {a}" for r in rows for a in (r["advice"] or [])]
    text = ("# `regionx compile` with its defaults\n\n"
            f"Command: `.venv/bin/python benchmarks/compile_defaults.py{' --quick' if args.quick else ''}` (each program: "
            f"`regionx compile FILE --out DIR --json{(' ' + ' '.join(extra)) if extra else ''}`).  \n"
            f"{machine_line(info)} Took {(time.time() - started) / 60:.1f} min.\n\n"
            "Within tolerance: share of the test split (with accept=: the program's answers), its one-sided 95% lower "
            "bound and the number of test points; the target is met by the bound. Search: candidates timed before "
            "training / trained, and the search's nominal seconds (the budget's currency) beside the wall clock. "
            "Predicted speedup: the rewrite's prediction for the path that runs (batched: for a loop of the rows the "
            "program runs, n x original per row / (n x batched per row + one batch's fixed cost: the call and row 0, "
            "which the exact code answers); else per call); measured: the patched program's own timed loop against the original's, median of "
            f"{1 if args.quick else args.repeats} alternating runs in one process (the difference in parentheses); first "
            "run: the two programs' first runs in the process (what a program that runs its loop once sees: the "
            "first batch touches fresh memory and calls numpy's routines for the first time).\n\n"
            + table + ("\n" + "\n".join(notes) + "\n" if notes else ""))
    write_text(os.path.join(args.out, "compile_defaults.md"), text)
    write_json(os.path.join(args.out, "compile_defaults.json"), {"machine": info, "rows": rows, "quick": args.quick})
    print(text)


if __name__ == "__main__":
    main()
