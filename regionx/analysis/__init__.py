"""Static analysis of regionx (stub: the real analysis is being written; API is final)."""

from __future__ import annotations

import hashlib

from regionx.types import FileAnalysis, Region


def region_source(text: str, region: Region) -> str:
    """The exact source lines start_line..end_line of `region`, each with its newline."""
    lines = text.splitlines(keepends=True)
    return "".join(lines[region.start_line - 1 : region.end_line])


def region_sha256(text: str, region: Region) -> str:
    """sha256 hex digest of `region_source(text, region)` (UTF-8)."""
    return hashlib.sha256(region_source(text, region).encode("utf-8")).hexdigest()


def analyze_source(text: str, path: str) -> FileAnalysis:
    """Analyze Python source `text` (reported as `path`). Stub: no regions yet."""
    return FileAnalysis(path=path, source_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


def analyze_file(path: str) -> FileAnalysis:
    """Read and analyze `path`. Stub."""
    with open(path, encoding="utf-8") as handle:
        return analyze_source(handle.read(), path)


def find_region(analysis: FileAnalysis, selector: str) -> Region | None:
    """The region whose id or name is `selector`, or the innermost region holding line `selector`."""
    for region in analysis.regions:
        if region.id == selector:
            return region
    for region in analysis.regions:
        if region.name == selector:
            return region
    if selector.strip().isdigit():
        line = int(selector)
        holding = [r for r in analysis.regions if r.start_line <= line <= r.end_line]
        if holding:
            return min(holding, key=lambda r: (r.end_line - r.start_line, -r.start_line))
    return None
