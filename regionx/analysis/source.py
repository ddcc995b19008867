"""Reading and parsing a source file, and the line/column of every statement.

libcst is the parser. Statement positions come from CPython's `ast` (a C parser, ~10x faster
than libcst's PositionProvider, which re-generates the whole module's code to count
positions): the two trees have the same statements in the same order, so they are zipped and
each pair's node types are checked. On any disagreement the file falls back to libcst's
PositionProvider, so positions are always libcst-consistent.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from typing import Any, Sequence

import libcst as cst

from regionx.diagnostics import Diagnostic, make

# (line, col, end_line): 1-based first line (first decorator for a def/class), 1-based column, last line.
Pos = tuple[int, int, int]

_SMALL = {
    cst.Assign: ast.Assign, cst.AugAssign: ast.AugAssign, cst.AnnAssign: ast.AnnAssign,
    cst.Expr: ast.Expr, cst.Return: ast.Return, cst.Raise: ast.Raise, cst.Pass: ast.Pass,
    cst.Break: ast.Break, cst.Continue: ast.Continue, cst.Del: ast.Delete,
    cst.Global: ast.Global, cst.Nonlocal: ast.Nonlocal, cst.Import: ast.Import,
    cst.ImportFrom: ast.ImportFrom, cst.Assert: ast.Assert,
}
_COMPOUND: dict[type, tuple[type, ...]] = {
    cst.FunctionDef: (ast.FunctionDef, ast.AsyncFunctionDef), cst.ClassDef: (ast.ClassDef,),
    cst.If: (ast.If,), cst.For: (ast.For, ast.AsyncFor), cst.While: (ast.While,),
    cst.Try: (ast.Try,), cst.With: (ast.With, ast.AsyncWith), cst.Match: (ast.Match,),
}
if hasattr(ast, "TryStar"):
    _COMPOUND[cst.TryStar] = (ast.TryStar,)


@dataclass(frozen=True)
class Parsed:
    """A parsed module: its text lines, libcst tree and statement positions."""

    text: str
    module: cst.Module
    positions: dict[cst.CSTNode, Pos]  # statement (small or compound), except handler, match case -> Pos
    used_fallback: bool  # positions came from libcst's PositionProvider


def read_source(path: str) -> tuple[str | None, list[Diagnostic]]:
    """The UTF-8 text of `path`, or the one diagnostic saying why it cannot be analyzed.

    The one way regionx reads a source file (analysis, sample, train, compile, rewrite, check):
    line endings are kept as written (as ``open(path, newline="")`` would), so region hashes
    agree between stages and a rewrite or revert of a CRLF file keeps its CRLF. A leading
    UTF-8 byte-order mark is dropped.
    """
    if os.path.isdir(path):
        return None, [make("RX002", path, 1, 1)]
    if not os.path.exists(path):
        return None, [make("RX001", path, 1, 1)]
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        return None, [make("RX007", path, 1, 1, detail=exc.strerror or str(exc))]
    if b"\x00" in raw:
        return None, [make("RX003", path, 1, 1, detail="binary file (contains NUL bytes)")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [make("RX003", path, line, 1, detail=f"invalid byte 0x{raw[exc.start]:02x} at line {line}")]
    return text.removeprefix("\ufeff"), []


def parse(text: str, path: str) -> tuple[Parsed | None, list[Diagnostic]]:
    """Parse `text` with libcst (checking syntax with `ast` first for CPython's exact message)."""
    if "\x00" in text:
        return None, [make("RX003", path, 1, 1, detail="binary file (contains NUL bytes)")]
    text = text.removeprefix("\ufeff")
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        line = exc.lineno or 1
        col = exc.offset or 1
        return None, [make("RX004", path, line, max(col, 1), detail=exc.msg or "invalid syntax")]
    except (ValueError, MemoryError, RecursionError) as exc:
        return None, [make("RX004", path, 1, 1, detail=str(exc) or type(exc).__name__)]
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        return None, [make("RX004", path, exc.raw_line, exc.raw_column + 1, detail=exc.message)]
    except (Exception, RecursionError) as exc:  # libcst's own limits (e.g. grammar it does not support)
        return None, [make("RX004", path, 1, 1, detail=f"libcst cannot parse this file: {type(exc).__name__}: {exc}")]
    positions: dict[cst.CSTNode, Pos] = {}
    lines = text.splitlines()
    try:
        _align(_module_items(module), tree.body, positions, lines)
        return Parsed(text, module, positions, False), []
    except _Mismatch:
        return Parsed(text, module, _fallback_positions(module), True), []


class _Mismatch(Exception):
    """The ast and libcst statement lists disagree (then PositionProvider is used)."""


def _module_items(module: cst.Module) -> Sequence[cst.CSTNode]:
    return module.body


def suite_items(suite: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    """The statements of a block; a one-line suite (`if x: a; b`) is one item of small statements."""
    if isinstance(suite, cst.IndentedBlock):
        return suite.body
    return [suite]


def _char_col(lines: list[str], line: int, byte_col: int) -> int:
    """1-based character column from ast's 0-based UTF-8 byte offset."""
    if 0 < line <= len(lines):
        text = lines[line - 1]
        if not text.isascii():
            return len(text.encode("utf-8")[:byte_col].decode("utf-8", errors="replace")) + 1
    return byte_col + 1


def _align(items: Sequence[cst.CSTNode], stmts: list[ast.stmt], out: dict[cst.CSTNode, Pos], lines: list[str]) -> None:
    index = 0
    for item in items:
        if isinstance(item, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            first: Pos | None = None
            last = 0
            for small in item.body:
                if index >= len(stmts):
                    raise _Mismatch()
                node = stmts[index]
                index += 1
                if _SMALL.get(type(small)) is not type(node):
                    raise _Mismatch()
                pos = (node.lineno, _char_col(lines, node.lineno, node.col_offset), node.end_lineno or node.lineno)
                out[small] = pos
                first = first or pos
                last = pos[2]
            if first is None:
                raise _Mismatch()
            out[item] = (first[0], first[1], last)
            continue
        if index >= len(stmts):
            raise _Mismatch()
        node = stmts[index]
        index += 1
        expected = _COMPOUND.get(type(item))
        if expected is None or not isinstance(node, expected):
            raise _Mismatch()
        start = node.lineno
        decorators = getattr(node, "decorator_list", None)
        if decorators:
            start = min(start, min(d.lineno for d in decorators))
        out[item] = (start, _char_col(lines, node.lineno, node.col_offset), node.end_lineno or node.lineno)
        _align_children(item, node, out, lines)
    if index != len(stmts):
        raise _Mismatch()


def _align_else(orelse: Any, stmts: list[ast.stmt], out: dict[cst.CSTNode, Pos], lines: list[str]) -> None:
    if orelse is None:
        if stmts:
            raise _Mismatch()
    elif isinstance(orelse, cst.If):
        _align([orelse], stmts, out, lines)
    else:
        _align(suite_items(orelse.body), stmts, out, lines)


def _align_children(item: cst.CSTNode, node: Any, out: dict[cst.CSTNode, Pos], lines: list[str]) -> None:
    if isinstance(item, (cst.FunctionDef, cst.ClassDef, cst.With)):
        _align(suite_items(item.body), node.body, out, lines)
    elif isinstance(item, (cst.If, cst.For, cst.While)):
        _align(suite_items(item.body), node.body, out, lines)
        _align_else(item.orelse, node.orelse, out, lines)
    elif isinstance(item, (cst.Try, cst.TryStar)):
        _align(suite_items(item.body), node.body, out, lines)
        if len(item.handlers) != len(node.handlers):
            raise _Mismatch()
        handler: Any
        for handler, ast_handler in zip(item.handlers, node.handlers):
            out[handler] = (ast_handler.lineno, _char_col(lines, ast_handler.lineno, ast_handler.col_offset),
                            ast_handler.end_lineno or ast_handler.lineno)
            _align(suite_items(handler.body), ast_handler.body, out, lines)
        _align_else(item.orelse, node.orelse, out, lines)
        if item.finalbody is None:
            if node.finalbody:
                raise _Mismatch()
        else:
            _align(suite_items(item.finalbody.body), node.finalbody, out, lines)
    elif isinstance(item, cst.Match):
        if len(item.cases) != len(node.cases):
            raise _Mismatch()
        for case, ast_case in zip(item.cases, node.cases):
            pattern = ast_case.pattern
            end = ast_case.body[-1].end_lineno if ast_case.body else pattern.end_lineno
            out[case] = (pattern.lineno, 1, end or pattern.lineno)
            _align(suite_items(case.body), ast_case.body, out, lines)


def _fallback_positions(module: cst.Module) -> dict[cst.CSTNode, Pos]:
    """Statement positions from libcst's PositionProvider (slow path, used on any ast mismatch)."""
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    ranges = wrapper.resolve(PositionProvider)
    out: dict[cst.CSTNode, Pos] = {}
    wanted = (cst.BaseSmallStatement, cst.BaseCompoundStatement, cst.SimpleStatementLine,
              cst.SimpleStatementSuite, cst.ExceptHandler, cst.ExceptStarHandler, cst.MatchCase)
    for node, rng in ranges.items():
        if isinstance(node, wanted):
            end = rng.end.line if rng.end.column > 0 or rng.end.line == rng.start.line else rng.end.line - 1
            start, col = rng.start.line, rng.start.column + 1
            decorators = getattr(node, "decorators", ())
            if decorators:
                first = ranges[decorators[0]]
                start = min(start, first.start.line)
            out[node] = (start, col, end)
    return out
