"""Splicing: a libcst transformer that puts generated statements in place of original ones."""

from __future__ import annotations

from typing import Any, Sequence

import libcst as cst

from regionx.rewrite.common import lines_above
from regionx.rewrite.markers import parse_marker


# --------------------------------------------------------------------------------------------
# the transformer


class Rewriter(cst.CSTTransformer):
    """Splices replacements into bodies. Plans refer to original nodes; output is built on updated ones."""

    def __init__(self, replacements: dict[int, tuple[Any, cst.EmptyLine]], skip: set[int],
                 loader: tuple[list[cst.BaseStatement], cst.EmptyLine] | None,
                 loader_before: cst.BaseStatement | None) -> None:
        # id(original first stmt) -> (builder(updated stmts) -> new stmts, end marker)
        self.replacements = replacements
        self.skip = skip  # ids of original statements folded into a replacement (block regions)
        self.loader = loader
        self.loader_before = loader_before

    def _splice(self, orig_body: Sequence[cst.BaseStatement], new_body: Sequence[cst.BaseStatement],
                footer: Sequence[cst.EmptyLine], is_module: bool
                ) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
        out: list[cst.BaseStatement] = []
        pending: list[cst.EmptyLine] = []  # end markers for the next statement kept as is
        i = 0
        orig = list(orig_body)
        new = list(new_body)
        while i < len(orig):
            o, u = orig[i], new[i]
            if is_module and self.loader is not None and o is self.loader_before:
                stmts, end = self.loader
                lead = list(lines_above(u))
                n_end = 0
                while n_end < len(lead) and (parse_marker(lead[n_end]) or ("", "", ""))[2] == "end":
                    n_end += 1
                # end markers of earlier rewrites close before our loader begins
                first = stmts[0].with_changes(leading_lines=(*lead[:n_end], *lines_above(stmts[0])))
                out.extend([first, *stmts[1:]])
                u = u.with_changes(leading_lines=lead[n_end:])
                pending.insert(0, end)
            if id(o) in self.replacements:
                builder, end = self.replacements[id(o)]
                j = i + 1
                while j < len(orig) and id(orig[j]) in self.skip:
                    j += 1
                if pending:
                    u = u.with_changes(leading_lines=(*pending, *lines_above(u)))
                    pending = []
                out.extend(builder([u, *new[i + 1: j]]))
                pending.append(end)
                i = j
                continue
            if pending:
                u = u.with_changes(leading_lines=(*pending, *lines_above(u)))
                pending = []
            out.append(u)
            i += 1
        foot = list(footer)
        if is_module and self.loader is not None and self.loader_before is None:
            stmts, end = self.loader
            out.extend(stmts)
            pending.append(end)
        if pending:
            foot = [*pending, *foot]
        return out, foot

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        body, foot = self._splice(original_node.body, updated_node.body, updated_node.footer, False)
        return updated_node.with_changes(body=body, footer=foot)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        body, foot = self._splice(original_node.body, updated_node.body, updated_node.footer, True)
        return updated_node.with_changes(body=body, footer=foot)


def loader_position(module: cst.Module, anchors: list[cst.CSTNode], parents: Any) -> cst.BaseStatement | None:
    """The module statement to insert the loader before: after the leading docstring and imports,
    and before any module statement holding rewritten code. None means at the end."""
    top_ids: set[int] = set()
    for a in anchors:
        cur: cst.CSTNode = a
        while not isinstance(parents.get(cur), cst.Module):
            cur = parents[cur]
        top_ids.add(id(cur))
    open_span: tuple[str, str | None] | None = None  # an earlier rewrite's marked span: never split it
    for i, stmt in enumerate(module.body):
        marks = [m for m in (parse_marker(ln) for ln in stmt.leading_lines) if m]
        for mid, kind, edge in marks:
            if open_span is not None and edge == "end" and (mid, kind) == open_span:
                open_span = None
            elif open_span is None and edge == "begin":
                open_span = (mid, kind)
        if open_span is not None:
            continue
        if id(stmt) in top_ids:
            return stmt
        is_prefix = False
        if isinstance(stmt, cst.SimpleStatementLine):
            is_prefix = all(
                isinstance(s, (cst.Import, cst.ImportFrom))
                or (i == 0 and isinstance(s, cst.Expr) and isinstance(s.value, (cst.SimpleString, cst.ConcatenatedString)))
                for s in stmt.body
            )
        if not is_prefix:
            return stmt
    return None
