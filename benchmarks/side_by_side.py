"""The exact program and its patched copy, side by side: speedup and share of results within tolerance.

Usage: .venv/bin/python benchmarks/side_by_side.py EXACT.py PATCHED.py --artifact DIR [--repeats R]

Both programs must define ``main()`` returning the list of results the region computed and
printing ``solve time: SECONDS s`` (fixtures/newton.py, benchmarks/kernels/*.py). Each is imported
in this process (the patched one finds its surrogate by its own path) and run `repeats` times,
alternating, with its own output hidden; the solve times are medians. The results are compared
with the criterion recorded in DIR/manifest.json (regionx.criterion: what the surrogate was
validated with). `make demo` ends with this table.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks._common import import_file, load_manifest, quiet  # noqa: E402
from regionx.check import manifest_criterion  # noqa: E402

SOLVE_TIME = re.compile(r"solve time:\s*([0-9.eE+-]+)\s*s")


def run(module: Any) -> tuple[list[float], float]:
    """One run of module.main(): its results and the solve time it printed."""
    results, printed = quiet(module.main)
    match = SOLVE_TIME.search(printed)
    if match is None:
        raise SystemExit(f"{module.__file__}: main() printed no 'solve time: ... s' line")
    return [float(v) for v in results], float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exact")
    parser.add_argument("patched")
    parser.add_argument("--artifact", required=True, help="the region's artifact directory (manifest.json)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    criterion = manifest_criterion(load_manifest(args.artifact))
    exact_mod, patched_mod = import_file(args.exact), import_file(args.patched)
    times: dict[str, list[float]] = {"exact": [], "patched": []}
    exact_results: list[float] = []
    patched_results: list[float] = []
    for _ in range(max(1, args.repeats)):  # alternate, so a busy moment hits both
        exact_results, t = run(exact_mod)
        times["exact"].append(t)
        patched_results, t = run(patched_mod)
        times["patched"].append(t)
    Y = np.asarray(exact_results, dtype=np.float64)[:, None]
    P = np.asarray(patched_results, dtype=np.float64)[:, None]
    within = criterion.within(P, Y)
    t_exact, t_patched = statistics.median(times["exact"]), statistics.median(times["patched"])
    n = len(exact_results)
    print(f"--- side by side: {n:,} results, median solve time of {args.repeats} alternating runs; "
          f"within tolerance: {criterion.describe()}")
    print(f"{'program':<44} {'solve time':>12} {'speedup':>9}   within tolerance")
    print(f"{'exact    ' + args.exact:<44} {t_exact * 1e3:>9.2f} ms {1.0:>8.2f}x   100% (the reference)")
    print(f"{'patched  ' + args.patched:<44} {t_patched * 1e3:>9.2f} ms {t_exact / t_patched:>8.2f}x   "
          f"{np.mean(within):.2%} ({int(within.sum()):,} of {n:,})")


if __name__ == "__main__":
    main()
