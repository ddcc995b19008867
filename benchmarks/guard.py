"""The learned guard against a hand-written accept= and against networks alone (issue 15, "done when").

Usage: .venv/bin/python benchmarks/guard.py [--quick] [--only NAME[,NAME]] [--repeats R] [--out DIR]

Each configuration is ``regionx compile FILE --out DIR --json [flags]`` in a fresh process with
compile's defaults (12,000 samples, 120 s of search, target 99% by the 95% lower bound):

* newton+accept   fixtures/newton.py as shipped, with its hand-written accept= error bound;
* newton+guard    the same file with the accept= line removed: only the learned guard;
* newton alone    accept= removed and ``--guard off``;
* newton ..., plain 1%   the same two with the region judged by plain 1% relative error
                  (``rtol=0.01, atol=0.0``: no floor, as the accept= bound guarantees);
* pipeflow+guard  benchmarks/kernels/pipeflow.py (two regimes split by a curve, a jump across it),
                  with the default budget and with twice it;
* pipeflow alone  ``--guard off``;
* pipeflow big    ``--guard off --topologies 64,64,64`` (a big network alone).

When the region is rewritten, the exact and the patched program run side by side in this process
(alternating, median of R runs of their own timed loop) on inputs the training never saw, and the
share of the program's results within the region's criterion (and, for Newton, within 1% plain
relative error) is counted. Writes <out>/guard.{md,json}. Full mode: about 15-20 minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks._common import RESULTS, ROOT, machine, machine_line, md_table, write_json, write_text  # noqa: E402
from benchmarks.compile_defaults import compile_program, side_by_side  # noqa: E402

NEWTON = os.path.join(ROOT, "fixtures", "newton.py")
PIPEFLOW = os.path.join(ROOT, "benchmarks", "kernels", "pipeflow.py")
# (name, source, remove accept= (and "plain": judge by plain 1% relative error), extra compile flags)
CONFIGS: list[tuple[str, str, bool | str, list[str]]] = [
    ("newton+accept", NEWTON, False, []),
    ("newton+guard", NEWTON, True, []),
    ("newton alone", NEWTON, True, ["--guard", "off"]),
    ("newton+guard, plain 1%", NEWTON, "plain", []),
    ("newton alone, plain 1%", NEWTON, "plain", ["--guard", "off"]),
    ("pipeflow+guard", PIPEFLOW, False, []),
    ("pipeflow+guard, budget 240", PIPEFLOW, False, ["--budget", "240"]),
    ("pipeflow alone", PIPEFLOW, False, ["--guard", "off"]),
    ("pipeflow big", PIPEFLOW, False, ["--guard", "off", "--topologies", "64,64,64"]),
]


def without_accept(path: str, tmp: str, plain: bool = False) -> str:
    """A copy of `path` whose pragma has no accept= line (the previous line's trailing comma dropped);
    `plain`: its tolerance=0.01, metric="rel" also becomes rtol=0.01, atol=0.0 (plain relative
    error, no floor: the hand-written accept= bound's own standard, near-zero roots included)."""
    lines = open(path, encoding="utf-8").read().splitlines(keepends=True)
    out: list[str] = []
    for line in lines:
        if plain:
            line = line.replace('tolerance=0.01, metric="rel"', "rtol=0.01, atol=0.0")
        if re.match(r"\s*# regionx: accept=", line):
            out[-1] = re.sub(r",\s*$", "\n", out[-1])
            continue
        out.append(line)
    dest = os.path.join(tmp, os.path.basename(path))
    with open(dest, "w", encoding="utf-8") as handle:
        handle.write("".join(out))
    return dest


def plain_relative_share(exact_path: str, patched_path: str) -> float:
    """Share of the patched program's results within 1% plain relative error of the exact ones."""
    from benchmarks._common import import_file
    from benchmarks.compile_defaults import loop_time

    Y, _t = loop_time(import_file(exact_path))
    P, _t = loop_time(import_file(patched_path))
    y, p = np.asarray(Y, dtype=np.float64).ravel(), np.asarray(P, dtype=np.float64).ravel()
    return float(np.mean(np.abs(p - y) <= 0.01 * np.abs(y)))


def run_config(name: str, source: str, strip: bool | str, flags: list[str], tmp: str, repeats: int,
               extra: list[str]) -> dict[str, Any]:
    work = os.path.join(tmp, re.sub(r"[^A-Za-z0-9]+", "_", name))
    os.makedirs(work, exist_ok=True)
    path = without_accept(source, work, plain=strip == "plain") if strip else source
    out = os.path.join(work, "out")
    print(f"{name}: compiling {os.path.relpath(source, ROOT)} {' '.join(flags + extra)} ...", flush=True)
    doc, wall, status = compile_program(path, out, flags + extra)
    [region] = doc["regions"]
    chosen = region.get("chosen") or {}
    best = region.get("best") or {}
    row: dict[str, Any] = {
        "config": name, "flags": flags, "verdict": region.get("verdict"), "exit_status": status,
        "codes": [d["code"] for d in region.get("diagnostics", [])], "compile_wall_s": wall,
        "network": chosen.get("label") or best.get("label"),
        "raw_accuracy": (chosen or best).get("accuracy"),
        "program_accuracy": (chosen or best).get("effective_accuracy"),
        "program_lcb": (chosen or best).get("effective_accuracy_lcb") or (chosen or best).get("accuracy_lcb"),
        "fallback": None if (chosen or best).get("accept_rate") is None else 1.0 - (chosen or best)["accept_rate"],
        "guard": (chosen or best).get("guard"),
        "predicted_speedup": next((b.get("predicted_speedup") for b in region.get("batched") or []), None),
    }
    patched = os.path.join(out, os.path.basename(path))
    if row["verdict"] == "rewritten" and os.path.exists(patched):
        art = os.path.join(out, region["region"])
        measured = side_by_side(path, patched, art, repeats)
        row.update({k: measured[k] for k in ("exact_s", "patched_s", "measured_speedup", "within", "results")})
        if source == NEWTON:
            row["within_1pct"] = plain_relative_share(path, patched)
    print({k: v for k, v in row.items() if k != "guard"}, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke configuration: 2 configs, 3,000 samples, 30 s budget")
    parser.add_argument("--only", default=None, help="comma-separated config names")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()
    info = machine()
    started = time.time()
    names = set(args.only.split(",")) if args.only else None
    configs = [c for c in CONFIGS if names is None or c[0] in names]
    extra = ["--budget", "30", "--samples", "3000"] if args.quick else []
    if args.quick and names is None:
        configs = [c for c in configs if c[0] in ("pipeflow+guard", "pipeflow alone")]
    with tempfile.TemporaryDirectory(prefix="regionx-guard-") as tmp:
        rows = [run_config(n, s, strip, flags, tmp, 1 if args.quick else args.repeats, extra)
                for n, s, strip, flags in configs]

    def pct(v: Any, digits: int = 1) -> str:
        return "-" if v is None else f"{v:.{digits}%}"

    table = md_table(
        ["configuration", "verdict", "network", "network alone (test)", "guard", "program (test, lower bound)",
         "falls back", "predicted speedup", "measured loop speedup", "program within tolerance (fresh)",
         "within 1% (fresh)", "compile"],
        [[r["config"], r["verdict"] + (f" ({', '.join(r['codes'])})" if r["codes"] else ""), r["network"] or "-",
          pct(r["raw_accuracy"]),
          ("x".join(str(h) for h in r["guard"]["hidden"]) + " tanh") if r.get("guard") else "-",
          f"{pct(r['program_accuracy'], 2)} ({pct(r['program_lcb'], 2)})" if r["program_accuracy"] is not None
          else f"- ({pct(r['program_lcb'], 2)})",
          pct(r["fallback"]), f"{r['predicted_speedup']:.2f}x" if r.get("predicted_speedup") else "-",
          f"{r['measured_speedup']:.2f}x" if r.get("measured_speedup") else "-",
          f"{pct(r.get('within'), 2)} of {r['results']}" if r.get("within") is not None else "-",
          pct(r.get("within_1pct"), 2), f"{r['compile_wall_s']:.0f} s"] for r in rows], align="llllllrrrrrr")
    text = ("# Learned guard against accept= and networks alone\n\n"
            f"Command: `.venv/bin/python benchmarks/guard.py{' --quick' if args.quick else ''}`.  \n"
            f"{machine_line(info)} Took {(time.time() - started) / 60:.1f} min.\n\n"
            "Each configuration is one `regionx compile` with the defaults (plus the flags named in the script). "
            "Network alone (test): the chosen (or, without one, the best) network's share of the 2,000 test points "
            "within tolerance. Program: with the accept predicate or the learned guard, the share of answers within "
            "tolerance counting the exact code's answers, and its one-sided 95% lower bound (the target, 99%, is met "
            "by the bound). Measured: the patched program's own timed loop against the original's on inputs the "
            f"training never saw, median of {1 if args.quick else args.repeats} alternating runs in one process; "
            "the share of its results within the region's criterion (and, for Newton, within 1% plain relative "
            "error).\n\n" + table + "\n")
    write_text(os.path.join(args.out, "guard.md"), text)
    write_json(os.path.join(args.out, "guard.json"), {"machine": info, "rows": rows, "quick": args.quick})
    print(text)


if __name__ == "__main__":
    main()
