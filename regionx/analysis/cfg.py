"""Scopes and their statement-level control-flow graphs (networkx.DiGraph).

One `Scope` per module, class body and function (methods and nested defs included). Each has a
CFG whose nodes are simple statements and compound-statement headers, numbered in source order:
every statement's nodes form a contiguous id range (`Scope.stmt_range`), so a region (a
function body, a loop, a run of statements) is an id interval and "inside the region" is a
range check. Node 0 is the entry (it binds a function's parameters), node 1 the exit.

Edges: if/elif/else, while and for (header, back edge, else clause, break, continue),
try/except/else/finally (every node of a try body may jump to each handler; return, break and
continue leave through the finally block), with, match (cases tried in order), return and raise.
Implicit exceptions outside a try are not edges (standard practice: they would make every
variable live everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import libcst as cst
import networkx as nx

from regionx.analysis.names import (
    ELEMENT, ExprWalker, Facts, bind_target, import_binding, module_name, param_defaults, param_names,
    pattern_facts, small_statement_facts, comprehension_sources,
)
from regionx.analysis.source import Pos, suite_items

ENTRY, EXIT = 0, 1


class Node:
    """One CFG node: a simple statement or a compound statement's header."""

    __slots__ = ("id", "kind", "line", "facts", "target")

    def __init__(self, node_id: int, kind: str, line: int, facts: Facts) -> None:
        self.id = node_id
        self.kind = kind  # entry, exit, stmt, if, while, for-iter, for, for-target, with, try, except, finally, match, case, def, class, return, break, continue, raise
        self.line = line
        self.facts = facts
        self.target = -1  # break/continue: the header id of the loop they leave or restart

    def __repr__(self) -> str:
        return f"Node({self.id}, {self.kind}, line {self.line})"


@dataclass
class Loop:
    """A for/while statement of a scope: its CFG id range and where it is in the source."""

    stmt: cst.CSTNode
    kind: str  # "for" | "while"
    lo: int  # first node id (for: the node evaluating the iterable; while: the header)
    hi: int  # last node id of the statement (else clause included)
    header: int  # target of back edges and `continue`
    line: int
    col: int
    end_line: int
    is_async: bool


@dataclass
class Return:
    """A `return` statement of a function scope."""

    node: int
    line: int
    value: cst.BaseExpression | None


@dataclass
class Scope:
    """A module, class body or function, with its CFG and its name bindings."""

    kind: str  # "module" | "class" | "function"
    name: str
    qualname: str  # "<module>", "Solver", "Solver.step", "outer.inner"
    cst_node: cst.CSTNode | None
    parent: "Scope | None"
    pos: Pos = (1, 1, 1)
    nodes: list[Node] = field(default_factory=list)
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)
    children: list["Scope"] = field(default_factory=list)
    bind_kinds: dict[str, set[str]] = field(default_factory=dict)  # name -> {"var","param","import","def","class"}
    global_decl: set[str] = field(default_factory=set)
    nonlocal_decl: set[str] = field(default_factory=set)
    imports: dict[str, str] = field(default_factory=dict)  # bound name -> dotted module/object path
    params: list[str] = field(default_factory=list)
    passthrough: set[str] = field(default_factory=set)  # class body: free names of its methods (not resolved in the class)
    free: set[str] = field(default_factory=set)  # names read here or in nested scopes that this scope does not bind
    stmt_range: dict[cst.CSTNode, tuple[int, int]] = field(default_factory=dict)
    loops: list[Loop] = field(default_factory=list)
    returns: list[Return] = field(default_factory=list)
    suites: list[Sequence[cst.CSTNode]] = field(default_factory=list)  # every statement list (for begin/end blocks)
    defs: dict[str, list["Scope"]] = field(default_factory=dict)  # def/class name bound here -> its scopes
    is_async: bool = False
    has_yield: bool = False

    @property
    def locals(self) -> set[str]:
        """Names local to this scope (bound here, not declared global/nonlocal)."""
        return {n for n in self.bind_kinds if n not in self.global_decl and n not in self.nonlocal_decl}

    def variables(self) -> list[str]:
        """Local names that are variables (not only imports, defs or classes), in first-bound order."""
        skip = self.global_decl | self.nonlocal_decl
        return [n for n, kinds in self.bind_kinds.items() if n not in skip and ("var" in kinds or "param" in kinds)]

    def dump(self) -> str:
        """One line per CFG node: `id kind @line -> successors` (golden tests compare this)."""
        lines = []
        for node in self.nodes:
            succ = sorted(self.graph.successors(node.id))
            lines.append(f"{node.id} {node.kind} @{node.line} -> {', '.join(map(str, succ)) or '-'}")
        return "\n".join(lines)

    def walk(self) -> "list[Scope]":
        """This scope and every scope nested in it, parents first."""
        out, stack = [], [self]
        while stack:
            scope = stack.pop()
            out.append(scope)
            stack.extend(reversed(scope.children))
        return out


@dataclass
class _LoopFrame:
    header: int
    breaks: list[int]
    finally_depth: int  # len(builder.finally_frames) when the loop began


@dataclass
class _FinallyFrame:
    pending: list[tuple[int, str, "_LoopFrame | None"]] = field(default_factory=list)  # (node, kind, loop) jumps through it


class Builder:
    """Builds the CFG of one scope (recursing into nested defs and classes)."""

    def __init__(self, scope: Scope, positions: dict[cst.CSTNode, Pos], strict: bool = False) -> None:
        self.scope = scope  # the scope being built
        self.positions = positions  # statement -> (line, col, end_line)
        self.strict = strict  # raise on a statement kind the builder does not model (tests), instead of one opaque node
        self.loop_frames: list[_LoopFrame] = []  # enclosing loops, innermost last
        self.finally_frames: list[_FinallyFrame] = []  # enclosing try/finally blocks, innermost last
        self.graph = scope.graph  # edges are added here
        self.nodes = scope.nodes  # nodes by id
        self.built: dict[cst.CSTNode, Scope] = {}  # def/class statement -> its scope (a finally body is built twice)

    # -- helpers -------------------------------------------------------------------------
    def line(self, node: cst.CSTNode) -> int:
        pos = self.positions.get(node)
        return pos[0] if pos is not None else 0

    def new(self, kind: str, line: int, facts: Facts | None = None) -> int:
        node_id = len(self.nodes)
        facts = facts if facts is not None else Facts(line)
        facts.line = line
        for call in facts.calls:
            if call.line == 0:
                object.__setattr__(call, "line", line)
        self.nodes.append(Node(node_id, kind, line, facts))
        self.graph.add_node(node_id)
        if facts.yields:
            self.scope.has_yield = True
        kinds = self.scope.bind_kinds
        bind_kind = "var" if kind not in ("def", "class", "import") else kind
        for name in facts.defs:
            kinds.setdefault(name, set()).add(bind_kind)
        return node_id

    def connect(self, preds: Sequence[int], target: int) -> None:
        for p in preds:
            self.graph.add_edge(p, target)

    # -- scope entry ---------------------------------------------------------------------
    def build_scope(self, body: Sequence[cst.CSTNode]) -> None:
        scope = self.scope
        entry = Facts(scope.pos[0])
        for name in scope.params:
            entry.bind(name)
            scope.bind_kinds.setdefault(name, set()).add("param")
        self.new("entry", scope.pos[0], entry)
        self.new("exit", scope.pos[2])
        dangling = self.block(body, [ENTRY])
        self.connect(dangling, EXIT)
        self._finish_free()

    def _finish_free(self) -> None:
        scope = self.scope
        local = scope.locals
        free: set[str] = set()
        for node in self.nodes:
            for name in node.facts.uses:
                if name not in local:
                    free.add(name)
            for name in node.facts.mods:
                if name not in local:
                    free.add(name)
        free |= {n for n in scope.passthrough if n not in scope.nonlocal_decl}
        if scope.kind == "function":
            free |= scope.nonlocal_decl
            free -= scope.global_decl
        scope.free = free

    # -- statements ----------------------------------------------------------------------
    def block(self, items: Sequence[cst.CSTNode], preds: list[int]) -> list[int]:
        """Build a statement list; return the nodes that fall through to what follows."""
        self.scope.suites.append(items)
        for item in items:
            lo = len(self.nodes)
            preds = self.statement(item, preds)
            self.scope.stmt_range[item] = (lo, len(self.nodes) - 1)
        return preds

    def statement(self, item: cst.CSTNode, preds: list[int]) -> list[int]:
        if isinstance(item, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            for small in item.body:
                lo = len(self.nodes)
                preds = self.small(small, preds)
                self.scope.stmt_range[small] = (lo, len(self.nodes) - 1)
            return preds
        method = getattr(self, "_" + type(item).__name__, None)
        if method is None:  # a statement kind this version of regionx does not model: one opaque node
            if self.strict:
                raise NotImplementedError(f"CFG builder does not model {type(item).__name__} (line {self.line(item)})")
            node = self.new("stmt", self.line(item))
            self.connect(preds, node)
            return [node]
        return method(item, preds)

    def small(self, stmt: cst.BaseSmallStatement, preds: list[int]) -> list[int]:
        line = self.line(stmt)
        scope = self.scope
        if isinstance(stmt, cst.Global):
            scope.global_decl.update(n.name.value for n in stmt.names)
        elif isinstance(stmt, cst.Nonlocal):
            scope.nonlocal_decl.update(n.name.value for n in stmt.names)
        elif isinstance(stmt, cst.AnnAssign) and stmt.value is None and isinstance(stmt.target, cst.Name):
            scope.bind_kinds.setdefault(stmt.target.value, set()).add("var")  # `x: int` makes x local
        kind = "stmt"
        if isinstance(stmt, (cst.Import, cst.ImportFrom)):
            kind = "import"
            self._record_imports(stmt)
        node = self.new(kind, line, small_statement_facts(stmt, line))
        self.connect(preds, node)
        if isinstance(stmt, cst.Return):
            self.nodes[node].kind = "return"
            scope.returns.append(Return(node, line, stmt.value))
            self.jump(node, "return", None)
            return []
        if isinstance(stmt, cst.Raise):
            self.nodes[node].kind = "raise"
            self.jump(node, "raise", None)
            return []
        if isinstance(stmt, (cst.Break, cst.Continue)):
            kind = "break" if isinstance(stmt, cst.Break) else "continue"
            self.nodes[node].kind = kind
            if not self.loop_frames:  # a syntax error CPython already rejects; keep going
                return [node]
            frame = self.loop_frames[-1]
            self.nodes[node].target = frame.header
            self.jump(node, kind, frame)
            return []
        return [node]

    def _record_imports(self, stmt: cst.Import | cst.ImportFrom) -> None:
        if isinstance(stmt, cst.Import):
            for alias in stmt.names:
                bound, target = import_binding(alias, None)
                self.scope.imports[bound] = target
        elif not isinstance(stmt.names, cst.ImportStar):
            source = module_name(stmt)
            for alias in stmt.names:
                bound, target = import_binding(alias, source)
                self.scope.imports[bound] = target

    def jump(self, node: int, kind: str, loop: _LoopFrame | None, depth: int | None = None) -> None:
        """Connect a return/raise/break/continue (or a finally block re-raising it) to its target."""
        frames = self.finally_frames if depth is None else self.finally_frames[:depth]
        inner_limit = loop.finally_depth if loop is not None else 0
        if kind in ("return", "raise"):
            inner_limit = 0
        if len(frames) > inner_limit:
            frames[-1].pending.append((node, kind, loop))
            return
        if kind in ("return", "raise"):
            self.graph.add_edge(node, EXIT)
        elif kind == "break":
            assert loop is not None
            loop.breaks.append(node)
        else:
            assert loop is not None
            self.graph.add_edge(node, loop.header)

    def _If(self, item: cst.If, preds: list[int]) -> list[int]:
        line = self.line(item)
        test = self.new("if", line, _expr_facts([item.test], line))
        self.connect(preds, test)
        out = self.block(suite_items(item.body), [test])
        orelse = item.orelse
        if isinstance(orelse, cst.If):
            lo = len(self.nodes)
            out += self._If(orelse, [test])
            self.scope.stmt_range[orelse] = (lo, len(self.nodes) - 1)
        elif isinstance(orelse, cst.Else):
            out += self.block(suite_items(orelse.body), [test])
        else:
            out.append(test)
        return out

    def _While(self, item: cst.While, preds: list[int]) -> list[int]:
        line = self.line(item)
        header = self.new("while", line, _expr_facts([item.test], line))
        self.connect(preds, header)
        frame = _LoopFrame(header, [], len(self.finally_frames))
        self.loop_frames.append(frame)
        body = self.block(suite_items(item.body), [header])
        self.loop_frames.pop()
        self.connect(body, header)
        exits = [] if _always_true(item.test) else [header]
        if item.orelse is not None:
            exits = self.block(suite_items(item.orelse.body), exits)
        self._add_loop(item, "while", header, header)
        return exits + frame.breaks

    def _For(self, item: cst.For, preds: list[int]) -> list[int]:
        line = self.line(item)
        facts = _expr_facts([item.iter], line)
        if isinstance(item.iter, cst.Name):
            facts.bases.add(item.iter.value)  # iterated: a container
        if item.asynchronous is not None:
            facts.awaits = True
        start = self.new("for-iter", line, facts)
        self.connect(preds, start)
        header = self.new("for", line)
        self.graph.add_edge(start, header)
        target_facts = Facts(line)
        bind_target(item.target, target_facts, ExprWalker(target_facts), item.iter, ELEMENT)
        target = self.new("for-target", line, target_facts)
        self.graph.add_edge(header, target)
        frame = _LoopFrame(header, [], len(self.finally_frames))
        self.loop_frames.append(frame)
        body = self.block(suite_items(item.body), [target])
        self.loop_frames.pop()
        self.connect(body, header)
        exits = [header]
        if item.orelse is not None:
            exits = self.block(suite_items(item.orelse.body), exits)
        self._add_loop(item, "for", start, header)
        return exits + frame.breaks

    def _add_loop(self, item: cst.For | cst.While, kind: str, lo: int, header: int) -> None:
        line, col, end = self.positions.get(item, (0, 1, 0))
        is_async = isinstance(item, cst.For) and item.asynchronous is not None
        # a loop in a finally body is built twice: the last (normal-completion) copy is the region
        self.scope.loops = [loop for loop in self.scope.loops if loop.stmt is not item]
        self.scope.loops.append(Loop(item, kind, lo, len(self.nodes) - 1, header, line, col, end, is_async))

    def _With(self, item: cst.With, preds: list[int]) -> list[int]:
        line = self.line(item)
        facts = Facts(line)
        walker = ExprWalker(facts)
        for with_item in item.items:
            walker.walk(with_item.item)
            if with_item.asname is not None:
                bind_target(with_item.asname.name, facts, walker, with_item.item)  # __enter__ often returns self
        if item.asynchronous is not None:
            facts.awaits = True
        node = self.new("with", line, facts)
        self.connect(preds, node)
        return self.block(suite_items(item.body), [node])

    def _Try(self, item: Any, preds: list[int]) -> list[int]:
        line = self.line(item)
        start = self.new("try", line)
        self.connect(preds, start)
        frame = _FinallyFrame() if item.finalbody is not None else None
        if frame is not None:
            self.finally_frames.append(frame)
        body_lo = len(self.nodes)
        out = self.block(suite_items(item.body), [start])
        body_hi = len(self.nodes) - 1
        raisers = [start] + list(range(body_lo, body_hi + 1))
        handler_out: list[int] = []
        for handler in item.handlers:
            hline = self.line(handler) or line
            facts = _expr_facts([handler.type], hline)
            if handler.name is not None:
                bind_target(handler.name.name, facts, ExprWalker(facts), fresh=True)
            head = self.new("except", hline, facts)
            self.connect(raisers, head)
            handler_out += self.block(suite_items(handler.body), [head])
        if item.orelse is not None:
            out = self.block(suite_items(item.orelse.body), out)
        out += handler_out
        if frame is None:
            return out
        self.finally_frames.pop()
        depth = len(self.finally_frames)
        # The finally block is built twice, as CPython compiles it: one copy for exceptions and
        # pending return/break/continue (it ends by re-raising or jumping on), one for normal completion
        # (it falls through). One shared copy would let an exception path reach the next statement.
        abrupt = self.new("finally", line)
        self.connect(list(range(start, abrupt)), abrupt)  # any node of the try statement may raise
        self.connect([node for node, _, _ in frame.pending], abrupt)
        abrupt_out = self.block(suite_items(item.finalbody.body), [abrupt])
        for node, kind, loop in frame.pending:
            for src in abrupt_out:
                self.jump(src, kind, loop, depth)
        for src in abrupt_out:
            self.jump(src, "raise", None, depth)
        fin = self.new("finally", line)
        self.connect(out, fin)
        return self.block(suite_items(item.finalbody.body), [fin])

    _TryStar = _Try

    def _Match(self, item: cst.Match, preds: list[int]) -> list[int]:
        line = self.line(item)
        subject = self.new("match", line, _expr_facts([item.subject], line))
        self.connect(preds, subject)
        out: list[int] = []
        previous = [subject]
        for case in item.cases:
            cline = self.line(case) or line
            head = self.new("case", cline, pattern_facts(case, cline))
            self.connect(previous, head)
            out += self.block(suite_items(case.body), [head])
            previous = [head]
            if case.guard is None and isinstance(case.pattern, cst.MatchAs) and case.pattern.pattern is None:
                previous = []  # `case _:` or a bare capture matches everything
        return out + previous

    def _FunctionDef(self, item: cst.FunctionDef, preds: list[int]) -> list[int]:
        return self._definition(item, [d.decorator for d in item.decorators] + param_defaults(item.params), preds)

    def _ClassDef(self, item: cst.ClassDef, preds: list[int]) -> list[int]:
        exprs: list[cst.CSTNode | None] = [d.decorator for d in item.decorators]
        exprs += [a.value for a in item.bases] + [k.value for k in item.keywords]
        return self._definition(item, exprs, preds)

    def _definition(self, item: cst.FunctionDef | cst.ClassDef, exprs: Sequence[cst.CSTNode | None],
                    preds: list[int]) -> list[int]:
        """A def or class statement: evaluates `exprs` (decorators, defaults / bases), binds the
        name, and builds the nested scope (once per node) whose free names it reads."""
        is_function = isinstance(item, cst.FunctionDef)
        line, col, end = self.positions.get(item, (0, 1, 0))
        facts = _expr_facts(exprs, line)
        name = item.name.value
        parent = self.scope
        child = self.built.get(item)
        if child is None:
            qual = name if parent.kind == "module" else f"{parent.qualname}.{name}"
            child = Scope("function" if is_function else "class", name, qual, item, parent, pos=(line, col, end))
            if isinstance(item, cst.FunctionDef):
                child.params = param_names(item.params)
                child.is_async = item.asynchronous is not None
            parent.children.append(child)
            parent.defs.setdefault(name, []).append(child)
            Builder(child, self.positions, self.strict).build_scope(suite_items(item.body))
            self.built[item] = child
        if parent.kind == "class":
            parent.passthrough |= child.free  # methods and nested classes do not see class-level names
        else:
            for free_name in sorted(child.free):
                facts.use(free_name)  # a closure reads its free variables at the def point; a class body runs now
        facts.bind(name)
        node = self.new("def" if is_function else "class", line, facts)
        self.connect(preds, node)
        return [node]


def _expr_facts(exprs: Sequence[cst.CSTNode | None], line: int) -> Facts:
    facts = Facts(line)
    walker = ExprWalker(facts)
    for expr in exprs:
        walker.walk(expr)
    return facts


def _always_true(test: cst.BaseExpression) -> bool:
    if isinstance(test, cst.Name):
        return test.value == "True"
    if isinstance(test, cst.Integer):
        try:
            return int(test.value.replace("_", ""), 0) != 0
        except ValueError:
            return False
    return False


def build_module(module: cst.Module, positions: dict[cst.CSTNode, Pos], n_lines: int, strict: bool = False) -> Scope:
    """The module scope, with every nested scope and its CFG built. `strict` (tests) raises
    NotImplementedError on a statement kind the builder does not model."""
    scope = Scope("module", "<module>", "<module>", module, None, pos=(1, 1, max(n_lines, 1)))
    Builder(scope, positions, strict).build_scope(module.body)
    return scope


__all__ = ["ENTRY", "EXIT", "Loop", "Node", "Return", "Scope", "build_module", "comprehension_sources"]
