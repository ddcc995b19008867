"""Markers around rewritten code, and the revert that removes them (byte for byte).

What a rewrite changes is bracketed by ``# regionx-rewritten: <id> [loader|batch] begin|end``
comment lines; the original code is kept inside, so `revert_source` restores the text exactly.
"""

from __future__ import annotations

import re
from typing import Sequence

import libcst as cst

from regionx.diagnostics import make
from regionx.rewrite.common import EXACT_PREFIX, lines_above
from regionx.types import RewriteResult, StageResult


# `# regionx-rewritten: <id> [loader|batch] begin|end`
MARKER_RE = re.compile(
    r"^#\s*regionx-rewritten:\s*(?P<id>\S+)(?:\s+(?P<kind>loader|batch))?\s+(?P<edge>begin|end)\b"
)
_PRAGMA_RE = re.compile(r"^#\s*regionx:")


# --------------------------------------------------------------------------------------------
# markers


def marker_id(region_id: str) -> str:
    """A region id as written in a marker (no whitespace, so the marker parses back)."""
    return re.sub(r"\s+", "_", region_id) or "region"


def marker_line(region_id: str, kind: str | None, edge: str) -> cst.EmptyLine:
    kind_text = f" {kind}" if kind else ""
    return cst.EmptyLine(
        indent=True, comment=cst.Comment(f"# regionx-rewritten: {marker_id(region_id)}{kind_text} {edge}")
    )


def split_pragma(lines: Sequence[cst.EmptyLine]) -> tuple[tuple[cst.EmptyLine, ...], tuple[cst.EmptyLine, ...]]:
    """(lines above the pragma, the pragma run directly above the statement)."""
    k = len(lines)
    while k > 0:
        comment = lines[k - 1].comment
        if comment is None or not _PRAGMA_RE.match(comment.value):
            break
        k -= 1
    return tuple(lines[:k]), tuple(lines[k:])


def parse_marker(line: cst.EmptyLine) -> tuple[str, str | None, str] | None:
    if line.comment is None:
        return None
    m = MARKER_RE.match(line.comment.value)
    if m is None:
        return None
    return m.group("id"), m.group("kind"), m.group("edge")


def rewritten_regions(text: str) -> list[str]:
    """Region ids (as written in markers) that `text` holds a rewrite of, in file order."""
    seen: list[str] = []
    for raw in text.splitlines():
        m = MARKER_RE.match(raw.strip())
        if m and m.group("edge") == "begin" and m.group("kind") is None and m.group("id") not in seen:
            seen.append(m.group("id"))
    return seen


def attach_header(module: cst.Module) -> cst.Module:
    """Give the first statement the comment lines directly above it (a pragma, a marker).

    libcst parses every line above the first statement into Module.header; moving the trailing
    run of comment lines (after the last blank line, never a shebang or coding line) onto the
    statement renders the very same text, and lets the region keep its pragma and markers.
    """
    if not module.body or not module.header:
        return module
    header = list(module.header)
    k = len(header)
    while k > 0 and header[k - 1].comment is not None:
        k -= 1
    while k < len(header) and k < 2:
        comment = header[k].comment
        if comment is None or not (comment.value.startswith("#!") or re.match(r"^#.*coding[:=]", comment.value)):
            break
        k += 1
    if k == len(header):
        return module
    first = module.body[0]
    moved = first.with_changes(leading_lines=(*header[k:], *first.leading_lines))
    return module.with_changes(header=header[:k], body=[moved, *module.body[1:]])


class _RevertError(Exception):
    pass


class _Reverter(cst.CSTTransformer):
    """Undo every marked span (or only those of one region id), innermost first."""

    def __init__(self, only: str | None) -> None:
        self.only = only
        self.count = 0

    def _wanted(self, mid: str) -> bool:
        return self.only is None or mid == self.only

    def _revert(self, stmts: Sequence[cst.BaseStatement], footer: Sequence[cst.EmptyLine]
                ) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
        body = list(stmts)
        foot = list(footer)
        out: list[cst.BaseStatement] = []
        i = 0
        while i < len(body):
            s = body[i]
            begin_at = None
            for k, ln in enumerate(lines_above(s)):
                m = parse_marker(ln)
                if m and m[2] == "begin" and self._wanted(m[0]):
                    begin_at = (k, m[0], m[1])
                    break
            if begin_at is None:
                out.append(s)
                i += 1
                continue
            k, mid, kind = begin_at
            # the end marker: on a later statement of this body, or in its footer
            j = i + 1
            end_idx: tuple[str, int] | None = None
            while j < len(body):
                hit = self._end_in(lines_above(body[j]), mid, kind)
                if hit is not None:
                    end_idx = ("stmt", hit)
                    break
                j += 1
            if end_idx is None:
                hit = self._end_in(foot, mid, kind)
                if hit is None:
                    raise _RevertError(f"marker 'regionx-rewritten: {mid} begin' has no matching end")
                end_idx = ("footer", hit)
            span = body[i:j]
            lead = list(lines_above(s))
            before, after = lead[:k], lead[k + 1:]
            restored = self._restore(span, kind, before + after)
            if end_idx[0] == "stmt":
                nxt = body[j]
                ll = list(lines_above(nxt))
                del ll[end_idx[1]]
                if kind == "loader":
                    # the loader's own lines are generated; only markers of other rewrites move on
                    ll = [ln for ln in before if parse_marker(ln)] + ll
                body[j] = nxt.with_changes(leading_lines=ll)
            else:
                del foot[end_idx[1]]
                if kind == "loader":
                    foot = [ln for ln in before if parse_marker(ln)] + foot
            out.extend(restored)
            self.count += 1
            i = j
        return out, foot

    @staticmethod
    def _end_in(lines: Sequence[cst.EmptyLine], mid: str, kind: str | None) -> int | None:
        for k, ln in enumerate(lines):
            m = parse_marker(ln)
            if m and m[0] == mid and m[1] == kind and m[2] == "end":
                return k
        return None

    @staticmethod
    def _restore(span: list[cst.BaseStatement], kind: str | None, lead: list[cst.EmptyLine]) -> list[cst.BaseStatement]:
        if kind == "loader":
            return []
        # a batch span may open with generated statements (a distributed loop's first pass); the
        # original is always the else branch of its last statement
        last = span[-1] if span else None
        if isinstance(last, cst.If) and isinstance(last.orelse, cst.Else) and (len(span) == 1 or kind == "batch"):
            orig: list[cst.BaseStatement] = list(last.orelse.body.body)  # type: ignore[arg-type]
            if not orig:
                raise _RevertError("rewritten block has no original code")
            orig[0] = orig[0].with_changes(leading_lines=(*lead, *lines_above(orig[0])))
            return orig
        if (len(span) == 2 and isinstance(span[0], cst.FunctionDef) and isinstance(span[1], cst.FunctionDef)
                and span[0].name.value == EXACT_PREFIX + span[1].name.value):
            return [span[0].with_changes(name=cst.Name(span[1].name.value), leading_lines=lead)]
        raise _RevertError("the rewritten code was edited; cannot find the original inside the markers")

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        body, foot = self._revert(updated_node.body, updated_node.footer)
        return updated_node.with_changes(body=body, footer=foot)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        body, foot = self._revert(updated_node.body, updated_node.footer)
        return updated_node.with_changes(body=body, footer=foot)


def revert_source(text: str, path: str, *, only: str | None = None) -> StageResult[RewriteResult]:
    """Undo regionx rewrites in `text` (all of them, or those of region id `only`).

    data['text'] is the original text, exactly; data['reverted'] the number of marked spans undone.
    RX504 when there is nothing to revert; RX505 when the markers were damaged by hand edits.
    """
    wanted = None if only is None else marker_id(only)
    present = [
        m for m in (MARKER_RE.match(raw.strip()) for raw in text.splitlines())
        if m and (wanted is None or m.group("id") == wanted)
    ]
    if not present:
        return StageResult(status="failed", region_id=only or "", diagnostics=(make("RX504", path),))
    try:
        module = attach_header(cst.parse_module(text))
    except cst.ParserSyntaxError as exc:
        return StageResult(status="failed", region_id=only or "",
                           diagnostics=(make("RX004", path, exc.raw_line, exc.raw_column + 1, detail=exc.message),))
    reverter = _Reverter(wanted)
    try:
        back = module.visit(reverter)
    except _RevertError as exc:
        return StageResult(status="failed", region_id=only or "",
                           diagnostics=(make("RX505", path, region=only or "*", detail=str(exc)),))
    if reverter.count == 0:
        return StageResult(status="failed", region_id=only or "", diagnostics=(make("RX504", path),))
    return StageResult(status="ok", region_id=only or "", value=RewriteResult(text=back.code, reverted=reverter.count))
