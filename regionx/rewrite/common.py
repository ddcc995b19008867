"""Shared pieces of the rewrite: generated names, the rewrite error, small libcst helpers."""

from __future__ import annotations

from typing import Any, Sequence

import libcst as cst


EXACT_PREFIX = "_regionx_exact_"


PREFIX = "_regionx_"


class RewriteError(Exception):
    """A region that cannot be rewritten (becomes RX505) or an artifact problem (RX503)."""

    def __init__(self, detail: str, code: str = "RX505", line: int = 1, col: int = 1) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.line = line
        self.col = col


def lines_above(stmt: cst.CSTNode) -> tuple[cst.EmptyLine, ...]:
    """The comment/blank lines owned by a statement, above it."""
    return tuple(getattr(stmt, "leading_lines", ()))


class _NormalizeIndent(cst.CSTTransformer):
    """Generated blocks use the module's own indentation unit (tabs stay tabs)."""

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        return updated_node.with_changes(indent=None)


def parse_stmts(code: str) -> list[cst.BaseStatement]:
    module = cst.parse_module(code)
    return [s.visit(_NormalizeIndent()) for s in module.body]  # type: ignore[misc]


def source_of(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def safe_name(name: str) -> str:
    text = "".join(ch if (ch.isalnum() or ch == "_") else "_" for ch in name).strip("_")
    return text or "region"


class ReplaceNode(cst.CSTTransformer):
    def __init__(self, target: cst.CSTNode, replacement: cst.BaseExpression) -> None:
        self.target = target
        self.replacement = replacement

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        if original_node is self.target:
            return self.replacement
        return updated_node


def replace_call(node: cst.CSTNode, call: cst.Call, replacement: str = "None") -> cst.CSTNode:
    out = node.visit(ReplaceNode(call, cst.parse_expression(replacement)))
    assert isinstance(out, cst.CSTNode)
    return out


def tuple_code(items: Sequence[str]) -> str:
    """A tuple display of expressions: `(a,)` or `(a, b)`."""
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"  # () when empty
