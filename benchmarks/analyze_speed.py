"""Throughput of `regionx.analysis.analyze_file` next to libcst's bare parse, on the stdlib.

Usage: python benchmarks/analyze_speed.py [--every N] [--repeat R] [PATH ...]

For each file (every N-th .py file of the stdlib by default, site-packages excluded), in the
same run and interleaved file by file so machine load hits both equally:
  * bare parse: ``libcst.parse_module(text)``
  * analysis:   ``analyze_file(path)`` (read, syntax check, parse, positions, CFGs, dataflow,
                purity, regions)
Prints lines/second of each and the ratio analysis/parse (target: >= 50%, i.e. the analysis
costs no more than its parse). Each timing is the best of R repeats.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import time

import libcst

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from regionx.analysis import analyze_file  # noqa: E402


def stdlib_files() -> list[str]:
    """Every .py file of the stdlib, recursively, site-packages directories excluded."""
    root = sysconfig.get_paths()["stdlib"]
    out: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "dist-packages"))
        out.extend(os.path.join(directory, f) for f in sorted(files) if f.endswith(".py"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--every", type=int, default=10, help="use every N-th stdlib file (default 10)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = args.paths or stdlib_files()[:: args.every]
    import gc

    lines = 0
    nogc_time = 0.0
    parse_time = 0.0
    analyze_time = 0.0
    parsed_files = 0
    for path in files:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            libcst.parse_module(text)
        except Exception:
            continue  # not parseable by libcst (non-UTF-8, Python 2 test data ...): not comparable
        best_parse = best_analyze = best_nogc = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            libcst.parse_module(text)
            t1 = time.perf_counter()
            analyze_file(path)
            t2 = time.perf_counter()
            gc.disable()  # the analysis parses with the cyclic GC paused: show that parse too
            try:
                t3 = time.perf_counter()
                libcst.parse_module(text)
                t4 = time.perf_counter()
            finally:
                gc.enable()
            best_parse = min(best_parse, t1 - t0)
            best_analyze = min(best_analyze, t2 - t1)
            best_nogc = min(best_nogc, t4 - t3)
        nogc_time += best_nogc
        lines += text.count("\n") + 1
        parse_time += best_parse
        analyze_time += best_analyze
        parsed_files += 1
    parse_rate = lines / parse_time
    analyze_rate = lines / analyze_time
    print(f"files: {parsed_files}  lines: {lines}")
    print(f"libcst.parse_module: {parse_rate:10.0f} lines/s  ({parse_time:.2f} s)")
    print(f"  (gc paused:        {lines / nogc_time:10.0f} lines/s  ({nogc_time:.2f} s))")
    print(f"analyze_file:        {analyze_rate:10.0f} lines/s  ({analyze_time:.2f} s)")
    print(f"ratio analysis/parse throughput: {analyze_rate / parse_rate:.0%} (target >= 50%)")
    print(f"ratio analysis/parse throughput, both with gc paused: {nogc_time / analyze_time:.0%}")


if __name__ == "__main__":
    main()
