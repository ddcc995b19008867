"""Def-use facts of loops and what names refer to: the proof that a loop's calls are independent.

Built on the analysis' own per-statement facts (`regionx.analysis.names`) and purity tables
(`regionx.analysis.purity`); libcst scopes say what a name refers to (the replaced function, a
builtin, an import, a function of this module).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import libcst as cst
from libcst.metadata import (BuiltinAssignment, GlobalScope, ImportAssignment, MetadataWrapper, ParentNodeProvider,
                             PositionProvider, ScopeProvider)

from regionx.analysis.names import (COMPREHENSIONS, MUTATING_METHODS, ExprWalker, Facts, bind_target,
                                    small_statement_facts)
from regionx.analysis.purity import PURE_BUILTINS, PURE_METHODS, classify_path
from regionx.rewrite.common import source_of
from regionx.rewrite.sites import NotBatchable
from regionx.types import Region


def expr_facts(*nodes: cst.CSTNode | None) -> Facts:
    """Reads, walrus binds, calls and nested-scope facts of expressions."""
    facts = Facts()
    walker = ExprWalker(facts)
    for node in nodes:
        walker.walk(node)
    return facts


def union(into: Facts, other: Facts) -> None:
    into.uses.extend(other.uses)
    into.defs |= other.defs
    into.mods |= other.mods
    into.calls.extend(other.calls)
    into.comp_vars |= other.comp_vars
    into.yields = into.yields or other.yields
    into.awaits = into.awaits or other.awaits


def inner_blocks(stmt: cst.CSTNode) -> list[Sequence[cst.CSTNode]]:
    """The statement lists inside a compound statement: its body and every else/elif body (a
    one-line body is a list of small statements)."""
    blocks: list[Sequence[cst.CSTNode]] = []
    parts: list[Any] = [getattr(stmt, "body", None)]
    orelse = getattr(stmt, "orelse", None)
    while orelse is not None:
        if isinstance(orelse, cst.If):
            parts.append(orelse.body)
            orelse = orelse.orelse
        else:
            parts.append(orelse.body)
            orelse = None
    for part in parts:
        if isinstance(part, (cst.IndentedBlock, cst.SimpleStatementSuite)):
            blocks.append(part.body)
    return blocks


def stmt_facts(stmt: cst.CSTNode) -> Facts | None:
    """Every read, bind, mutation and call of a statement and the statements inside it (a
    union, not a flow analysis); None for statements it does not model (try, with, def ...)."""
    facts = Facts()
    if isinstance(stmt, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
        for small in stmt.body:
            if isinstance(small, (cst.Global, cst.Nonlocal)):
                return None
            union(facts, small_statement_facts(small, 0))
        return facts
    if isinstance(stmt, cst.BaseSmallStatement):
        union(facts, small_statement_facts(stmt, 0))
        return facts
    if isinstance(stmt, cst.If):
        union(facts, expr_facts(stmt.test))
        orelse = stmt.orelse
        while isinstance(orelse, cst.If):
            union(facts, expr_facts(orelse.test))
            orelse = orelse.orelse
    elif isinstance(stmt, cst.While):
        union(facts, expr_facts(stmt.test))
    elif isinstance(stmt, cst.For) and stmt.asynchronous is None:
        header_facts = Facts()
        walker = ExprWalker(header_facts)
        walker.walk(stmt.iter)
        bind_target(stmt.target, header_facts, walker)
        union(facts, header_facts)
    else:
        return None
    for block in inner_blocks(stmt):
        for s in block:
            sub = stmt_facts(s)
            if sub is None:
                return None
            union(facts, sub)
    return facts


def body_of(stmt: cst.For | cst.While | cst.If) -> Sequence[cst.CSTNode]:
    return stmt.body.body


def leaves_loop(stmts: Iterable[cst.CSTNode]) -> str | None:
    """A statement that ends the iteration or the loop early (break, continue, return, raise,
    yield), which a batched loop cannot reproduce, or None."""
    found: list[str] = []

    class Finder(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return False

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def visit_Break(self, node: cst.Break) -> None:
            found.append("break")

        def visit_Continue(self, node: cst.Continue) -> None:
            found.append("continue")

        def visit_Return(self, node: cst.Return) -> None:
            found.append("return")

        def visit_Raise(self, node: cst.Raise) -> None:
            found.append("raise")

        def visit_Yield(self, node: cst.Yield) -> None:
            found.append("yield")

    for s in stmts:
        s.visit(Finder())
    return found[0] if found else None


class Context:
    """What the module's names refer to (libcst scopes) and which calls are pure."""

    def __init__(self, wrapper: MetadataWrapper, fn: cst.FunctionDef, region: Region,
                 local_purity: Callable[[str], bool]) -> None:
        self.scopes = wrapper.resolve(ScopeProvider)
        self.pos = wrapper.resolve(PositionProvider)
        self.parents = wrapper.resolve(ParentNodeProvider)
        self.fn = fn
        self.fname = fn.name.value
        self.region = region
        self.local_purity = local_purity

    def line(self, node: cst.CSTNode) -> int:
        return self.pos[node].start.line

    def module_level(self, node: cst.CSTNode) -> bool:
        return isinstance(self.scopes.get(node), GlobalScope)

    def in_class_body(self, node: cst.CSTNode) -> bool:
        """Whether a statement runs in a class body (whose names comprehensions cannot see)."""
        cur = self.parents.get(node)
        while cur is not None and not isinstance(cur, (cst.FunctionDef, cst.Module)):
            if isinstance(cur, cst.ClassDef):
                return True
            cur = self.parents.get(cur)
        return False

    def is_fn(self, node: cst.BaseExpression) -> bool:
        """`node` is a name that refers to the replaced function (not a local of the same name)."""
        if not isinstance(node, cst.Name) or node.value != self.fname:
            return False
        scope = self.scopes.get(node)
        found = list(scope[self.fname]) if scope is not None else []
        return bool(found) and all(getattr(a, "node", None) is self.fn for a in found)

    def dotted(self, node: cst.BaseExpression) -> str | None:
        """What a name or attribute chain refers to: "builtins.len", "numpy.array", "math.sqrt",
        "local.g" (a function of this module), or None when it cannot be told."""
        parts: list[str] = []
        while isinstance(node, cst.Attribute):
            parts.append(node.attr.value)
            node = node.value
        if not isinstance(node, cst.Name):
            return None
        scope = self.scopes.get(node)
        found = list(scope[node.value]) if scope is not None else []
        if not found:
            return None
        rest = list(reversed(parts))
        if all(isinstance(a, BuiltinAssignment) for a in found):
            return ".".join(["builtins", node.value, *rest])
        if all(isinstance(a, ImportAssignment) for a in found):
            bases = {import_base(getattr(a, "node", None), node.value) for a in found}
            base = bases.pop() if len(bases) == 1 else None
            return ".".join([base, *rest]) if base else None
        if all(isinstance(getattr(a, "node", None), cst.FunctionDef) for a in found) and not rest:
            return f"local.{node.value}"
        return None

    def impure_call(self, call: cst.Call) -> str | None:
        """Why a call (other than of the replaced function) may have an effect, or None if pure.
        A mutating method of a variable (``res.append``) is a write the def-use check tracks."""
        func = call.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and self.dotted(func.value) is None:
            if func.attr.value in MUTATING_METHODS or func.attr.value in PURE_METHODS:
                return None
            return f"calls the method {source_of(func)}(), not shown pure"
        full = self.dotted(call.func)
        if full is not None and full.startswith("builtins.") and full.count(".") == 1:
            return None if full[len("builtins."):] in PURE_BUILTINS else f"calls {source_of(call.func)}()"
        if full is not None and full.startswith("local."):
            return None if self.local_purity(full[len("local."):]) else f"calls {full[6:]}(), which is not pure"
        if full is not None and classify_path(full) == "pure":
            return None
        return f"calls {source_of(call.func)}(), not shown pure"

    def calls_in(self, *nodes: cst.CSTNode | None) -> list[cst.Call]:
        found: list[cst.Call] = []

        class Calls(cst.CSTVisitor):
            def visit_Call(self, node: cst.Call) -> None:
                found.append(node)

        for node in nodes:
            if node is not None:
                node.visit(Calls())
        return found

    def impure(self, nodes: Sequence[cst.CSTNode | None], allowed: Sequence[cst.CSTNode] = ()) -> str | None:
        """The first reason a call in `nodes` (other than `allowed` ones and calls of the function)
        may have an effect, or None."""
        for call in self.calls_in(*nodes):
            if any(call is a for a in allowed) or self.is_fn(call.func):
                continue
            why = self.impure_call(call)
            if why is not None:
                return why
        return None


def import_base(node: Any, name: str) -> str | None:
    """The dotted thing `name` is imported as by an Import/ImportFrom statement."""
    from regionx.analysis.names import import_binding, module_name

    if isinstance(node, cst.Import):
        for alias in node.names:
            bound, full = import_binding(alias, None)
            if bound == name:
                return full
    elif isinstance(node, cst.ImportFrom) and not isinstance(node.names, cst.ImportStar):
        for alias in node.names:
            bound, full = import_binding(alias, module_name(node))
            if bound == name:
                return full
    return None


class CallFinder(cst.CSTVisitor):
    """Calls of the function in a subtree, and whether each is evaluated conditionally (under an
    if-expression, and/or, lambda or comprehension)."""

    CONDITIONAL = (cst.IfExp, cst.BooleanOperation, cst.Lambda, *COMPREHENSIONS)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.calls: list[tuple[cst.Call, bool]] = []
        self.refs: list[cst.Name] = []  # the function's name used other than as a callee (map(f, ..))
        self.shadowed = False  # a call of another thing of the same name (a local, a parameter)
        self._cond = 0

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, self.CONDITIONAL):
            self._cond += 1
        if isinstance(node, cst.Call) and self.ctx.is_fn(node.func):
            self.calls.append((node, self._cond > 0))
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == self.ctx.fname:
            self.shadowed = True
        elif isinstance(node, cst.Arg) and self.ctx.is_fn(node.value):
            self.refs.append(node.value)  # type: ignore[arg-type]
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, self.CONDITIONAL):
            self._cond -= 1


def calls_of(ctx: Context, *nodes: cst.CSTNode | None) -> CallFinder:
    finder = CallFinder(ctx)
    for node in nodes:
        if node is not None:
            node.visit(finder)
    return finder


def target_names(target: cst.BaseExpression) -> list[str] | None:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)) and all(isinstance(e, cst.Element) and isinstance(e.value, cst.Name)
                                                          for e in target.elements):
        return [e.value.value for e in target.elements]  # type: ignore[attr-defined]
    return None


def reads_calls_or_items(nodes: Sequence[cst.CSTNode]) -> bool:
    """Whether expressions read through subscripts or attributes (a container another name may
    change: not a loop-invariant value), or contain lambdas, comprehensions or walrus."""
    found: list[bool] = []

    class Finder(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, (cst.Subscript, cst.Attribute, cst.Lambda, cst.NamedExpr, *COMPREHENSIONS)):
                found.append(True)
                return False
            return True

    for node in nodes:
        node.visit(Finder())
    return bool(found)


def int_literal(node: cst.BaseExpression) -> int | None:
    if isinstance(node, cst.Integer):
        return int(node.value)
    return None


def index_of(node: cst.BaseExpression) -> list[cst.BaseExpression] | None:
    """The index expressions of `S[...]` (one per comma-separated part), or None."""
    if not isinstance(node, cst.Subscript):
        return None
    out: list[cst.BaseExpression] = []
    for element in node.slice:
        if not isinstance(element.slice, cst.Index) or element.slice.star is not None:
            return None
        out.append(element.slice.value)
    return out


def invariant(node: cst.BaseExpression, loop_names: set[str]) -> bool:
    """A loop-invariant argument the batch may evaluate once, before the loop: names the loop
    does not bind, number literals, and + - * of them (nothing that can raise, so evaluating
    it even for a loop of no rows changes nothing)."""
    if isinstance(node, cst.Name):
        return node.value not in loop_names
    if isinstance(node, (cst.Integer, cst.Float)):
        return True
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
        return invariant(node.expression, loop_names)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, (cst.Add, cst.Subtract, cst.Multiply)):
        return invariant(node.left, loop_names) and invariant(node.right, loop_names)
    return False


def containers(call: cst.Call, loop_names: set[str]) -> list[str]:
    """Names the arguments read through subscripts (the containers a store may alias)."""
    out: list[str] = []

    class Finder(cst.CSTVisitor):
        def visit_Subscript(self, node: cst.Subscript) -> None:
            root: cst.BaseExpression = node
            while isinstance(root, (cst.Subscript, cst.Attribute)):
                root = root.value
            if isinstance(root, cst.Name) and root.value not in loop_names and root.value not in out:
                out.append(root.value)

    for a in call.args:
        a.value.visit(Finder())
    return out


def walk_names(ctx: Context, it: cst.BaseExpression) -> list[str] | None:
    """Sequences an iterable walks when it is range(..), zip(names) or enumerate(name) (a fresh
    iterator each time it is evaluated), else None."""
    if isinstance(it, cst.Call) and all(a.keyword is None and not a.star for a in it.args):
        kind = ctx.dotted(it.func)
        args = [a.value for a in it.args]
        if kind == "builtins.range" and not ctx.impure(args) and not reads_calls_or_items(args):
            return []
        if kind in ("builtins.zip", "builtins.enumerate") and args:
            names: list[str] = []
            for a in args:
                inner = [a.value] if isinstance(a, cst.Name) else walk_names(ctx, a)
                if inner is None or (isinstance(a, cst.Call) and ctx.dotted(a.func) != "builtins.range"):
                    return None
                names.extend(inner)
            return names
    return None


def plain_item(node: cst.BaseExpression) -> bool:
    """`S[i]`, `S[i][k]`, `obj.attr`: names subscripted by names or integers (pure to evaluate again)."""
    if isinstance(node, cst.Name):
        return True
    if isinstance(node, cst.Attribute):
        return plain_item(node.value)
    idx = index_of(node)
    if idx is None or not isinstance(node, cst.Subscript):
        return False
    return all(isinstance(i, (cst.Name, cst.Integer)) for i in idx) and plain_item(node.value)


def subscripted(node: cst.CSTNode) -> list[str]:
    out: list[str] = []

    class Finder(cst.CSTVisitor):
        def visit_Subscript(self, n: cst.Subscript) -> None:
            root: cst.BaseExpression = n
            while isinstance(root, (cst.Subscript, cst.Attribute)):
                root = root.value
            if isinstance(root, cst.Name):
                out.append(root.value)

    node.visit(Finder())
    return out


def check_independent(ctx: Context, form: str, call: cst.Call, body: Facts, call_args: Facts,
                      iter_reads: set[str], targets: set[str], module_level: bool) -> None:
    """The def-use proof that the call's rows are independent of what the loop does; raises
    NotBatchable with the first dependence found."""
    fname = ctx.fname
    if body.yields or body.awaits:
        raise NotBatchable(form, "the loop yields or awaits")
    if fname in body.defs or fname in body.mods:
        raise NotBatchable(form, f"the loop rebinds {fname}")
    if any(a.keyword is not None or a.star for a in call.args):
        raise NotBatchable(form, "the call uses keyword or starred arguments")
    if call_args.defs or call_args.comp_vars:
        raise NotBatchable(form, "the arguments bind names (walrus, comprehension or lambda)")
    written = body.mods
    flow = set(call_args.uses) & written
    if flow:
        raise NotBatchable(form, f"loop-carried dependence: the arguments read {sorted(flow)}, which the loop writes")
    carried = iter_reads & (written | (body.defs - targets))
    if carried:
        raise NotBatchable(form, f"the loop writes {sorted(carried)}, which it iterates over")
    # a rebinding matters to the function only at module level, where its globals live
    shared = set(ctx.region.globals) & (written | (body.defs if module_level else set()))
    if shared:
        raise NotBatchable(form, f"the loop writes {sorted(shared)}, which {fname}() reads")
    if targets & written:
        raise NotBatchable(form, "the loop mutates its own loop variable")


def single_call(ctx: Context, form: str, nodes: Sequence[cst.CSTNode]) -> cst.Call:
    found = calls_of(ctx, *nodes)
    if found.refs:
        raise NotBatchable(form, f"{ctx.fname} is passed as a value")
    if len(found.calls) != 1:
        raise NotBatchable(form, f"{ctx.fname}() is not called exactly once per iteration")
    call, conditional = found.calls[0]
    if conditional:
        raise NotBatchable(form, f"{ctx.fname}() is called conditionally")
    return call
