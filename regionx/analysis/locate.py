"""Which statements are region X: the one region locator every stage uses.

Every stage after analysis (extract, rewrite, instrument) re-finds its region in a fresh libcst
tree from the region's kind, qualname and lines (docs/design.md: stages pass no CST nodes). This
module is the only place that does it, so "which statements are region X" has one answer.

    located = locate_region(wrapper, region)        # a libcst MetadataWrapper, or a Module
    if isinstance(located, NotFound): ... located.reason, located.line
    located.statements   # the def, the loop, or the block's statements (nodes of the wrapper's module)
    located.stack        # enclosing ClassDef/FunctionDef nodes, outermost first
    located.body, located.index   # statements == body.body[index : index + len(statements)]

`RegionLocator(wrapper)` walks the tree once and then locates any number of regions (instrument
locates every region of a file).

Matching, by libcst's PositionProvider lines and by qualnames as the analysis computes them
(dotted names of the enclosing classes and functions, `<module>` at module level):

- **function**: the ``def`` whose qualname is the region's qualname and whose first decorator
  line or ``def`` line is the region's start line.
- **loop**: the ``for``/``while`` (async too) starting on the region's start line.
- **block**: the outermost statements lying wholly inside [start_line, end_line] (those not
  inside another such statement); they must be a consecutive run of one body (a module or an
  indented block).

Loops and blocks are matched by their lines alone: two loops cannot start on one line, and a
block's lines fix its statements. Their qualname (the enclosing scope's) is not checked, since
callers build such regions by hand with a placeholder qualname (a module-level loop given
``qualname="g"`` in the rewrite's tests); `Located.scope_qualname` gives the scope found, for a
caller that wants to compare. A loop that moved onto the start line of another loop is therefore
taken for it; a function that moved is not found.

There are no fallbacks: no "the only function with that name" (the old rewrite's), no "the first
loop inside the lines" (the old rewrite's), no "a def of that name somewhere in the lines" (the
old extract's), no "any def starting on that line" (the old instrument's). The analysis gives
every region these exact coordinates, and every stage gets its region from an analysis of the
very text it works on, so a region that does not match exactly was analysed from other text (the
file changed since, or a stale Region was built by hand): a guess would extract, time or patch
different code under the region's id. The answer is then `NotFound` with a reason, and each
stage reports it its own way (extract: RX301; rewrite: RX505; instrument leaves the region out).
The column is not checked (hand-built regions in tests give col=1); nor, for a block, that its
first and last statements start and end exactly on its lines: the run is the outermost one the
lines hold, as all three stages did before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from regionx.types import Region, RegionKind

Scope = cst.ClassDef | cst.FunctionDef
Body = cst.Module | cst.IndentedBlock


@dataclass(frozen=True, eq=False)
class Located:
    """Where a region is: its statements (by node identity) and what holds them."""

    region: Region
    statements: tuple[cst.BaseStatement, ...]  # the FunctionDef, the For/While, or the block's run
    stack: tuple[Scope, ...]  # enclosing classes and functions, outermost first (not the def itself)
    body: Body  # the module or indented block whose `body` holds the statements
    index: int  # statements == body.body[index : index + len(statements)]
    line: int  # first line of the first statement (a def's own line, not its decorator's)
    col: int  # its column, 1-based
    end_line: int  # last line of the last statement

    found = True

    @property
    def kind(self) -> RegionKind:
        return self.region.kind

    @property
    def node(self) -> cst.BaseStatement:
        """The first statement: the def or the loop for function and loop regions."""
        return self.statements[0]

    @property
    def scope_qualname(self) -> str:
        """Qualname of the innermost enclosing class or function, `<module>` at module level."""
        return ".".join(s.name.value for s in self.stack) or "<module>"

    @property
    def in_class(self) -> bool:
        """The innermost enclosing scope is a class (a function region is then a method)."""
        return bool(self.stack) and isinstance(self.stack[-1], cst.ClassDef)


@dataclass(frozen=True)
class NotFound:
    """The region matches nothing in this tree, and why."""

    region: Region
    reason: str
    line: int  # the line the reason is about (the region's start line)

    found = False


@dataclass(frozen=True, eq=False)
class _Entry:
    """One statement of a body, as the walk met it."""

    node: cst.BaseStatement
    body: Body
    index: int
    stack: tuple[Scope, ...]
    outer: _Entry | None  # the nearest body statement holding this one


class _Walk(cst.CSTVisitor):
    """Records every statement of every body with its body, position in it and enclosing scopes."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[_Entry] = []
        self._slots: dict[int, tuple[Body, int]] = {}
        self._stack: list[Scope] = []
        self._open: list[_Entry] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.Module, cst.IndentedBlock)):
            for index, stmt in enumerate(node.body):
                self._slots[id(stmt)] = (node, index)
        slot = self._slots.get(id(node))
        if slot is not None:
            assert isinstance(node, cst.BaseStatement)
            entry = _Entry(node, slot[0], slot[1], tuple(self._stack), self._open[-1] if self._open else None)
            self.entries.append(entry)
            self._open.append(entry)
        if isinstance(node, (cst.ClassDef, cst.FunctionDef)):
            self._stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, (cst.ClassDef, cst.FunctionDef)):
            self._stack.pop()
        if self._open and self._open[-1].node is original_node:
            self._open.pop()


def _wrap(source: MetadataWrapper | cst.Module) -> MetadataWrapper:
    if isinstance(source, MetadataWrapper):
        return source
    return MetadataWrapper(source, unsafe_skip_copy=True)  # the module's own nodes, not a copy's


class RegionLocator:
    """One walk of a module's tree; `locate` then finds any region in it (see the module docstring).

    Nodes are those of ``wrapper.module`` (for a Module passed in: that module itself).
    """

    def __init__(self, source: MetadataWrapper | cst.Module) -> None:
        self.wrapper = _wrap(source)
        self.module = self.wrapper.module
        self.positions: Mapping[cst.CSTNode, CodeRange] = self.wrapper.resolve(PositionProvider)
        walk = _Walk()
        self.module.visit(walk)
        self._entries = walk.entries
        self._functions = [e for e in walk.entries if isinstance(e.node, cst.FunctionDef)]
        self._loops = [e for e in walk.entries if isinstance(e.node, (cst.For, cst.While))]

    # -- positions --------------------------------------------------------------------------
    def start(self, node: cst.CSTNode) -> int:
        """First line of `node` (a def's or class's own line, not its first decorator's)."""
        return self.positions[node].start.line

    def end(self, node: cst.CSTNode) -> int:
        return self.positions[node].end.line

    def first_line(self, node: cst.CSTNode) -> int:
        """First line of `node` counting its decorators."""
        decorators: Sequence[cst.Decorator] = getattr(node, "decorators", ())
        return min([self.start(node), *(self.start(d) for d in decorators)])

    @staticmethod
    def qualname(entry_stack: Sequence[Scope], node: cst.FunctionDef | cst.ClassDef) -> str:
        return ".".join([*(s.name.value for s in entry_stack), node.name.value])

    def _located(self, region: Region, entries: Sequence[_Entry]) -> Located:
        first, last = entries[0], entries[-1]
        pos = self.positions[first.node]
        return Located(region=region, statements=tuple(e.node for e in entries), stack=first.stack, body=first.body,
                       index=first.index, line=pos.start.line, col=pos.start.column + 1, end_line=self.end(last.node))

    # -- locating ---------------------------------------------------------------------------
    def locate(self, region: Region) -> Located | NotFound:
        """The statements of `region` in this tree, or why there are none."""
        if region.kind == "function":
            return self._function(region)
        if region.kind == "loop":
            return self._loop(region)
        return self._block(region)

    def _function(self, region: Region) -> Located | NotFound:
        wanted = region.qualname or region.name
        line = region.start_line
        named: list[_Entry] = []
        for entry in self._functions:
            node = entry.node
            assert isinstance(node, cst.FunctionDef)
            if self.qualname(entry.stack, node) != wanted:
                continue
            if line in (self.first_line(node), self.start(node)):
                return self._located(region, [entry])
            named.append(entry)
        where = f" (there is one at line {', '.join(str(self.first_line(e.node)) for e in named)})" if named else ""
        return NotFound(region, f"no function {wanted} at line {line}{where}", line)

    def _loop(self, region: Region) -> Located | NotFound:
        line = region.start_line
        for entry in self._loops:
            if self.start(entry.node) == line:
                return self._located(region, [entry])
        return NotFound(region, f"no loop at line {line}", line)

    def _block(self, region: Region) -> Located | NotFound:
        lo, hi = region.start_line, region.end_line
        inside = {id(e.node) for e in self._entries if lo <= self.start(e.node) and self.end(e.node) <= hi}
        top = [e for e in self._entries if id(e.node) in inside and (e.outer is None or id(e.outer.node) not in inside)]
        if not top:
            return NotFound(region, f"no whole statements between lines {lo} and {hi}", lo)
        if any(e.body is not top[0].body for e in top):
            return NotFound(region, f"the statements between lines {lo} and {hi} are not in one block", lo)
        indexes = [e.index for e in top]
        if indexes != list(range(indexes[0], indexes[-1] + 1)):  # cannot happen in a body ordered by lines
            return NotFound(region, f"the statements between lines {lo} and {hi} are not consecutive", lo)
        return self._located(region, top)


def locate_region(source: MetadataWrapper | cst.Module, region: Region) -> Located | NotFound:
    """Where `region` is in `source` (a MetadataWrapper, or a Module, whose own nodes are returned)."""
    return RegionLocator(source).locate(region)


__all__ = ["Located", "NotFound", "RegionLocator", "locate_region"]
