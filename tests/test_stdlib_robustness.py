"""The analysis never crashes on valid Python: every .py file of the standard library.

Runs `analyze_file` over every .py file under sysconfig's stdlib directory (recursively; only
site-packages/dist-packages directories are skipped), in 2 worker processes. Every file must give
either regions (possibly none, e.g. an empty __init__.py) with no error, or a clean RX003/RX004
diagnostic (Python 2 test data, deliberately broken test files, non-UTF-8 files).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback

from regionx.analysis import analyze_file

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.analyze_speed import stdlib_files  # noqa: E402  (the benchmark times the same files)


def check(path: str) -> tuple[str, str | None]:
    """(path, problem or None) for one file; never raises."""
    try:
        fa = analyze_file(path)
        errors = [d for d in fa.diagnostics if d.severity == "error"]
        if errors:
            bad = [d.format() for d in errors if d.code not in ("RX003", "RX004") or d.line < 1 or d.col < 1]
            return path, (f"unexpected diagnostics: {bad}" if bad else None)
        with open(path, encoding="utf-8-sig") as handle:
            n_lines = handle.read().count("\n") + 1
        ids = [r.id for r in fa.regions]
        if len(ids) != len(set(ids)):
            return path, "duplicate region ids"
        for r in fa.regions:
            if not 1 <= r.start_line <= r.end_line <= n_lines or r.col < 1:
                return path, f"region {r.id} has bad lines {r.start_line}-{r.end_line} col {r.col}"
        if [r.start_line for r in fa.regions] != sorted(r.start_line for r in fa.regions):
            return path, "regions not ordered by start line"
        return path, None
    except BaseException:  # noqa: BLE001 - the point of the test is to catch anything
        return path, traceback.format_exc()


def test_every_stdlib_file_is_analyzed_without_crashing():
    files = stdlib_files()
    assert len(files) > 500
    ctx = multiprocessing.get_context("spawn")  # no fork of a test process that may hold threads
    with ctx.Pool(2) as pool:
        results = pool.map(check, files, chunksize=8)
    problems = [(p, why) for p, why in results if why is not None]
    assert not problems, "\n\n".join(f"{p}:\n{why}" for p, why in problems[:5])
    assert len(results) == len(files)
