"""Static analysis of regionx: region discovery, CFG, liveness/reaching definitions, purity.

Modules, one concept each:
  source.py    read a file (RX001-RX004), parse with libcst, statement positions
  names.py     def/use extraction of statements and expressions (walrus, comprehensions, mutation)
  cfg.py       scopes and their statement-level CFGs (networkx)
  dataflow.py  liveness and reaching definitions to a fixpoint (bitsets)
  resolve.py   LEGB name resolution over the scope tree
  purity.py    call classification and the module's call graph
  regions.py   regions (functions, loops, pragma blocks) and their interfaces
  locate.py    a region's statements in a libcst tree, for every later stage (extract, rewrite, instrument)

Public API (stable): analyze_source, analyze_file, find_region, region_source, region_sha256;
locate_region, RegionLocator, Located, NotFound (from locate.py, imported on first use so that
`import regionx.analysis` stays free of libcst).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regionx.analysis.locate import Located, NotFound, RegionLocator, locate_region

_LOCATE_NAMES = ("Located", "NotFound", "RegionLocator", "locate_region")


def __getattr__(name: str) -> Any:
    if name in _LOCATE_NAMES:
        from regionx.analysis import locate

        return getattr(locate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


from regionx.diagnostics import Diagnostic, make
from regionx.types import FileAnalysis, Pragma, Region


def region_source(text: str, region: Region) -> str:
    """The exact source lines start_line..end_line of `region`, each with its newline."""
    lines = text.splitlines(keepends=True)
    return "".join(lines[region.start_line - 1 : region.end_line])


def region_sha256(text: str, region: Region) -> str:
    """sha256 hex digest of `region_source(text, region)` (UTF-8) with its line endings as LF, so
    that a checkout with CRLF line endings (git's autocrlf) hashes as the LF file it came from.

    Every stage (sample, train, compile, check, rewrite) hashes a region with this function, of
    text read by `regionx.analysis.source.read_source`.
    """
    source = region_source(text, region).replace("\r\n", "\n").replace("\r", "\n")
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _pragmas(text: str, path: str) -> tuple[list[Pragma], list[Diagnostic]]:
    if "regionx" not in text:  # fast path: tokenizing a file without pragmas costs ~10% of its parse
        return [], []
    try:
        from regionx.pragma import parse_pragmas
    except ImportError:  # pragma support not installed in this tree
        return [], []
    return parse_pragmas(text, path)


def analyze_source(text: str, path: str) -> FileAnalysis:
    """Analyze Python source `text` (reported as `path`): regions, interfaces, diagnostics.

    Never raises on user input: a syntax error is an RX004 diagnostic, bad pragmas RX1xx.
    """
    import gc

    enabled = gc.isenabled()
    gc.disable()  # libcst/ast trees are acyclic: collecting during parsing only burns time
    try:
        return _analyze_source(text, path)
    finally:
        if enabled:
            gc.enable()


def _analyze_source(text: str, path: str) -> FileAnalysis:
    from regionx.analysis.regions import analyze_parsed
    from regionx.analysis.source import parse

    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    parsed, diagnostics = parse(text, path)
    if parsed is None:
        return FileAnalysis(path=path, diagnostics=tuple(diagnostics), source_sha256=digest)
    pragmas, pragma_diagnostics = _pragmas(parsed.text, path)
    try:
        regions, region_diagnostics = analyze_parsed(parsed, path, pragmas)
    except RecursionError:  # pathologically deep nesting of statements: report, do not crash
        return FileAnalysis(path=path, diagnostics=(make("RX004", path, 1, 1, detail="statements nested too deeply to analyze"),),
                            source_sha256=digest)
    all_diagnostics = sorted(pragma_diagnostics + region_diagnostics, key=lambda d: (d.line, d.col, d.code))
    return FileAnalysis(path=path, regions=tuple(regions), diagnostics=tuple(all_diagnostics), source_sha256=digest)


def analyze_file(path: str) -> FileAnalysis:
    """Read and analyze `path`; a missing file (RX001), directory (RX002), binary or non-UTF-8
    file (RX003) or syntax error (RX004, at its real line:col) is a diagnostic, never an exception."""
    from regionx.analysis.source import read_source

    text, diagnostics = read_source(path)
    if text is None:
        return FileAnalysis(path=path, diagnostics=tuple(diagnostics))
    return analyze_source(text, path)


def find_region(analysis: FileAnalysis, selector: str) -> Region | None:
    """The region whose id is `selector`, else whose name is, else (for a number) the innermost
    region holding that line."""
    for region in analysis.regions:
        if region.id == selector:
            return region
    for region in analysis.regions:
        if region.name == selector:
            return region
    text = selector.strip()
    if text.isdigit():
        line = int(text)
        holding = [r for r in analysis.regions if r.start_line <= line <= r.end_line]
        if holding:
            return min(holding, key=lambda r: (r.end_line - r.start_line, -r.start_line, not r.annotated))
    return None


__all__ = ["Located", "NotFound", "RegionLocator", "analyze_file", "analyze_source", "find_region", "locate_region",
           "region_sha256", "region_source"]
