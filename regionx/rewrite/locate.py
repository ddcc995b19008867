"""Finding the region's statements in the module (function, loop, or a block of statements)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from regionx.rewrite.common import RewriteError
from regionx.types import Region


# --------------------------------------------------------------------------------------------
# locating the region


@dataclass
class Target:
    """What to replace: statements of one body (by identity), and what kind of replacement."""

    kind: str  # function | loop | block
    stmts: list[cst.BaseStatement]
    line: int
    col: int


def _body_of(node: cst.CSTNode) -> Sequence[cst.BaseStatement] | None:
    if isinstance(node, cst.Module):
        return node.body
    if isinstance(node, cst.IndentedBlock):
        return node.body
    return None


class _Locator(cst.CSTVisitor):
    """Collects statements with positions and parents so the region can be found by line."""

    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider)

    def __init__(self) -> None:
        self.functions: list[cst.FunctionDef] = []
        self.loops: list[cst.CSTNode] = []
        self.statements: list[cst.BaseStatement] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)

    def visit_For(self, node: cst.For) -> None:
        self.loops.append(node)

    def visit_While(self, node: cst.While) -> None:
        self.loops.append(node)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self.statements.append(node)
        return super().on_visit(node)


def locate(wrapper: MetadataWrapper, region: Region) -> Target:
    loc = _Locator()
    wrapper.visit(loc)
    pos = wrapper.resolve(PositionProvider)
    parents = wrapper.resolve(ParentNodeProvider)

    def start(node: cst.CSTNode) -> int:
        return pos[node].start.line

    def first_line(node: cst.CSTNode) -> int:
        if isinstance(node, cst.FunctionDef) and node.decorators:
            return min(start(d) for d in node.decorators)
        return start(node)

    if region.kind == "function":
        short = region.qualname.split(".")[-1] if region.qualname else region.name
        cands = [f for f in loc.functions if f.name.value == short]
        exact = [f for f in cands if first_line(f) == region.start_line or start(f) == region.start_line]
        chosen = exact or (cands if len(cands) == 1 else [])
        if not chosen:
            raise RewriteError(f"no function {short!r} at line {region.start_line}", line=region.start_line)
        fn = chosen[0]
        parent = parents[fn]
        if isinstance(parent, cst.IndentedBlock) and isinstance(parents.get(parent), cst.ClassDef):
            raise RewriteError("methods are not supported yet; rewrite a module-level or nested function",
                                line=start(fn))
        if fn.asynchronous is not None:
            raise RewriteError("async functions cannot be replaced", line=start(fn))
        return Target("function", [fn], start(fn), pos[fn].start.column + 1)

    if region.kind == "loop":
        loops: list[cst.CSTNode] = [n for n in loc.loops if start(n) == region.start_line]
        if not loops:
            loops = sorted((n for n in loc.loops if region.start_line <= start(n) <= region.end_line), key=start)
        if not loops:
            raise RewriteError(f"no loop at line {region.start_line}", line=region.start_line)
        node = loops[0]
        return Target("loop", [node], start(node), pos[node].start.column + 1)  # type: ignore[list-item]

    # block: consecutive statements of one body inside [start_line, end_line]
    inside = [
        s for s in loc.statements
        if pos[s].start.line >= region.start_line and pos[s].end.line <= region.end_line
    ]
    if not inside:
        raise RewriteError(f"no statements between lines {region.start_line} and {region.end_line}",
                            line=region.start_line)
    # the outermost ones: those whose parent body is not itself inside the range
    top = [s for s in inside if not any(_contains(pos, o, s) for o in inside if o is not s)]
    bodies = {id(parents[s]) for s in top}
    if len(bodies) != 1:
        raise RewriteError("block statements are not in one block", line=region.start_line)
    body = _body_of(parents[top[0]])
    assert body is not None
    idx = [i for i, s in enumerate(body) if any(s is t for t in top)]
    if idx != list(range(idx[0], idx[-1] + 1)):
        raise RewriteError("block statements are not consecutive", line=region.start_line)
    return Target("block", list(body[idx[0]: idx[-1] + 1]), start(top[0]), pos[top[0]].start.column + 1)


def _contains(pos: Any, outer: cst.CSTNode, inner: cst.CSTNode) -> bool:
    a, b = pos[outer], pos[inner]
    return (a.start.line, a.start.column) <= (b.start.line, b.start.column) and (b.end.line, b.end.column) <= (
        a.end.line, a.end.column)
