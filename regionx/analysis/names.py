"""Def/use extraction: what one statement (one CFG node) reads, binds, mutates and calls.

libcst's ScopeProvider is order-based and treats ``x += 1`` as a store only, so regionx walks
expressions itself. The walker is iterative (an explicit stack), so deeply nested expressions in
real code never hit Python's recursion limit; only nested scopes (lambda, comprehension) recurse.

Events are recorded in evaluation order: a name read after a walrus binds it in the same node is
not an upward-exposed use of that node.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import libcst as cst

# Methods that change a container in place: a call `x.m(...)` mutates `x` (input, output if live).
MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "popitem",
    "add", "discard", "sort", "reverse", "fill", "resize", "put", "itemset", "__setitem__",
    "__delitem__", "__iadd__", "__isub__", "__imul__", "appendleft", "extendleft", "popleft",
    "rotate", "intersection_update", "difference_update", "symmetric_difference_update",
    "partition", "setflags", "byteswap",
})
# The subset that changes the container's size (an output built this way in a loop varies in size: RX208).
RESIZING_METHODS = frozenset({
    "append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "popitem",
    "add", "discard", "resize", "appendleft", "extendleft", "popleft", "intersection_update",
    "difference_update", "symmetric_difference_update", "__delitem__",
})
KEYWORD_NAMES = frozenset({"True", "False", "None", "__debug__"})
COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)

# Field names of libcst nodes that never hold code (whitespace, punctuation, operators).
_SKIP_FIELD_PARTS = ("whitespace", "lpar", "rpar", "comma", "semicolon", "colon", "operator",
                     "lbracket", "rbracket", "lbrace", "rbrace", "equal", "arrow", "leading_lines",
                     "trailing_whitespace", "lines_after_decorators", "header", "footer", "dot",
                     "asynchronous", "star", "prefix", "quote")
_FIELDS: dict[type, tuple[str, ...]] = {}  # node type -> names of fields that may hold code (cache)


def _code_fields(kind: type) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(kind)
                      if not any(part in f.name for part in _SKIP_FIELD_PARTS) or f.name == "starred")
        _FIELDS[kind] = names
    return names


@dataclasses.dataclass(frozen=True)
class CallSite:
    """One call in the source: the callee as dotted parts (() when it is not a plain name chain)."""

    parts: tuple[str, ...]  # ("np", "sqrt") for np.sqrt(x); ("x", "append") for x.append(1)
    line: int
    root: str | None = None  # a method call on a computed object (d.setdefault(k, []).append): its root name
    method: str | None = None  # ... and the method called
    node: cst.Call | None = dataclasses.field(default=None, compare=False, hash=False)  # the call itself (alias analysis)

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


# Where a bound name's object may come from: (expression, level shifts applied to its objects).
# The expression None means "cannot tell" (a lambda parameter, a match capture). A shift of -1
# is "an element or part of" (subscript, attribute, iteration, unpacking), +1 "a container
# holding" (a list display). See regionx/analysis/alias.py.
Source = tuple["cst.BaseExpression | None", tuple[int, ...]]
ELEMENT: tuple[int, ...] = (-1,)


@dataclasses.dataclass(frozen=True)
class Mutated:
    """An object changed in place: `expr`'s object (x for x[i] = v, x.append(v), np.copyto(x, v))."""

    expr: cst.BaseExpression
    line: int
    augmented: bool = False  # `x += v` on a plain name: in place only when x holds an array


class Facts:
    """What one CFG node reads, binds, mutates and calls (each field one set or list)."""

    __slots__ = ("uses", "defs", "mods", "resize", "calls", "comp_vars", "comp_sources",
                 "yields", "awaits", "dels", "line", "sources", "mutated", "comp_env", "operators", "bases")

    def __init__(self, line: int = 0) -> None:
        self.uses: list[str] = []  # names read before this node binds them, in order (may repeat)
        self.defs: set[str] = set()  # names (re)bound: kill their earlier values
        self.mods: set[str] = set()  # root names of containers mutated in place (use + non-killing def)
        self.resize: set[str] = set()  # names whose size changes in place (append, del x[i] ...)
        self.calls: list[CallSite] = []  # every call evaluated here, including in lambdas/comprehensions
        self.comp_vars: set[str] = set()  # names bound inside comprehensions and lambdas here (internal)
        self.comp_sources: dict[str, set[str]] = {}  # v -> names iterated by the comprehension assigned to v
        self.yields = False  # a yield/yield from expression
        self.awaits = False  # an await expression (or async for/with)
        self.dels: set[str] = set()  # names unbound by `del`
        self.line = line
        self.sources: dict[str, list[Source]] = {}  # bound name -> where its object may come from (absent: fresh)
        self.mutated: list[Mutated] = []  # objects changed in place here, as expressions
        self.comp_env: dict[str, list[Source]] = {}  # comprehension/lambda variable -> what it iterates over
        self.operators: set[str] = set()  # operator node types evaluated here ("Add", "Subscript" ...): dunder calls
        self.bases: set[str] = set()  # names used like containers here: x[...], x.attr, iterated (alias.container_like)

    def use(self, name: str) -> None:
        if name not in self.defs and name not in KEYWORD_NAMES:
            self.uses.append(name)

    def bind(self, name: str, source: Source | None = None) -> None:
        """Bind `name`; `source` says where its object may come from (None: a fresh object)."""
        self.defs.add(name)
        if source is not None:
            self.sources.setdefault(name, []).append(source)

    def merge_nested(self, inner: "Facts", bound: set[str]) -> None:
        """Fold a nested scope's facts (lambda/comprehension body) in: its free names are reads here."""
        for name in inner.uses:
            if name not in bound:
                self.use(name)
        for name in inner.mods:
            if name not in bound:
                self.mods.add(name)
                self.use(name)
        self.resize |= inner.resize - bound
        self.calls.extend(inner.calls)
        self.mutated.extend(inner.mutated)  # may name comprehension variables: comp_env resolves them
        for name, sources in inner.comp_env.items():
            self.comp_env.setdefault(name, []).extend(sources)
        for name, sources in inner.sources.items():  # walrus targets
            self.sources.setdefault(name, []).extend(sources)
        self.operators |= inner.operators
        self.bases |= inner.bases
        self.comp_vars |= bound | inner.comp_vars
        self.defs |= inner.defs  # walrus targets inside a comprehension bind in this scope
        self.yields = self.yields or inner.yields
        self.awaits = self.awaits or inner.awaits


def dotted_parts(node: cst.BaseExpression) -> tuple[str, ...]:
    """("a", "b", "c") for the expression a.b.c, () for anything else."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return tuple(reversed(parts))
    return ()


def target_names(node: cst.BaseExpression) -> list[str]:
    """Plain names bound by an assignment target (tuple/list/star unpacking included)."""
    out: list[str] = []
    stack: list[Any] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, cst.Name):
            out.append(item.value)
        elif isinstance(item, (cst.Tuple, cst.List)):
            stack.extend(el.value for el in reversed(item.elements))
        elif isinstance(item, cst.StarredElement):
            stack.append(item.value)
    return out


def target_shifts(node: cst.BaseExpression, shifts: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shifts) for each name an assignment target binds, when the whole target is bound to
    an object reached by `shifts`: unpacking takes an element (-1) per level; a starred name is a
    new list holding elements (-1, +1)."""
    out: list[tuple[str, tuple[int, ...]]] = []
    stack: list[tuple[Any, tuple[int, ...]]] = [(node, shifts)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, cst.Name):
            out.append((item.value, at))
        elif isinstance(item, (cst.Tuple, cst.List)):
            stack.extend((el.value if isinstance(el, cst.StarredElement) else el, at + ELEMENT) for el in item.elements)
        elif isinstance(item, cst.StarredElement):
            stack.append((item.value, at + (1,)))
        elif isinstance(item, cst.Element):
            stack.append((item.value, at))
    return out


class ExprWalker:
    """Records the reads, walrus binds, calls and nested-scope free names of expressions into Facts."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts  # where events go

    def walk(self, root: cst.CSTNode | None) -> None:
        """Walk `root` (an expression or any code-holding node) in evaluation order."""
        if root is None:
            return
        facts = self.facts
        stack: list[Any] = [root]
        while stack:
            node = stack.pop()
            if node is None:
                continue
            if isinstance(node, tuple):  # ("bind", name, value) marker: a walrus target, bound after its value
                facts.bind(node[1], (node[2], ()))
                continue
            kind = type(node)
            if kind is cst.Name:
                facts.use(node.value)
            elif kind is cst.Attribute:
                if type(node.value) is cst.Name:
                    facts.bases.add(node.value.value)
                stack.append(node.value)
            elif kind is cst.Call:
                self._call(node, stack)
            elif kind is cst.Arg:
                stack.append(node.value)
            elif kind is cst.NamedExpr:
                if isinstance(node.target, cst.Name):
                    stack.append(("bind", node.target.value, node.value))
                stack.append(node.value)
            elif kind is cst.Lambda:
                self._lambda(node, stack)
            elif kind in COMPREHENSIONS:
                self._comprehension(node, stack)
            elif kind is cst.Yield:
                facts.yields = True
                stack.append(node.value)
            elif kind is cst.Await:
                facts.awaits = True
                stack.append(node.expression)
            elif kind in (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.Ellipsis):
                continue
            else:
                if kind is cst.BinaryOperation or kind is cst.UnaryOperation:
                    facts.operators.add(type(node.operator).__name__)
                elif kind is cst.Subscript:
                    facts.operators.add("Subscript")
                    if type(node.value) is cst.Name:
                        facts.bases.add(node.value.value)
                children: list[Any] = []
                for field in _code_fields(kind):
                    value = getattr(node, field)
                    if isinstance(value, cst.CSTNode):
                        children.append(value)
                    elif isinstance(value, (list, tuple)):
                        children.extend(v for v in value if isinstance(v, cst.CSTNode))
                stack.extend(reversed(children))

    def _call(self, node: cst.Call, stack: list[Any]) -> None:
        parts = dotted_parts(node.func)
        func = node.func
        if not parts and isinstance(func, cst.Attribute):
            self.facts.calls.append(CallSite(parts, self.facts.line, _root_name(func.value), func.attr.value, node=node))
        else:
            self.facts.calls.append(CallSite(parts, self.facts.line, node=node))
        if isinstance(func, cst.Attribute) and func.attr.value in MUTATING_METHODS:
            self.facts.mutated.append(Mutated(func.value, self.facts.line))
            root = _root_name(func.value)
            if root is not None:
                self.facts.mods.add(root)
                if func.attr.value in RESIZING_METHODS and isinstance(func.value, cst.Name):
                    self.facts.resize.add(root)
        # arguments are evaluated after the callee
        stack.extend(reversed([a.value for a in node.args]))
        stack.append(func)

    def _lambda(self, node: cst.Lambda, stack: list[Any]) -> None:
        params = node.params
        bound = set(param_names(params))
        inner = Facts(self.facts.line)
        for name in bound:
            inner.comp_env[name] = [(None, ())]  # a lambda's parameters: whatever it is called with
        ExprWalker(inner).walk(node.body)
        self.facts.merge_nested(inner, bound)
        # defaults are evaluated here, in the enclosing scope
        stack.extend(p.default for p in _all_params(params) if p.default is not None)

    def _comprehension(self, node: Any, stack: list[Any]) -> None:
        first: cst.CompFor = node.for_in
        inner = Facts(self.facts.line)
        walker = ExprWalker(inner)
        bound: set[str] = set()
        comp: cst.CompFor | None = first
        while comp is not None:
            if comp is not first:
                walker.walk(comp.iter)
            bound.update(target_names(comp.target))
            for name, shifts in target_shifts(comp.target, ELEMENT):
                inner.comp_env.setdefault(name, []).append((comp.iter, shifts))
            for cond in comp.ifs:
                walker.walk(cond.test)
            comp = comp.inner_for_in
        if isinstance(node, cst.DictComp):
            walker.walk(node.key)
            walker.walk(node.value)
        else:
            walker.walk(node.elt)
        inner.uses = [n for n in inner.uses if n not in bound]
        self.facts.merge_nested(inner, bound)
        # only the first iterable is evaluated in the enclosing scope (before the body)
        if isinstance(first.iter, cst.Name):
            self.facts.bases.add(first.iter.value)
        stack.append(first.iter)


def _root_name(node: cst.BaseExpression) -> str | None:
    """The variable at the bottom of x.a[i].b(...).c, or None."""
    while isinstance(node, (cst.Attribute, cst.Subscript, cst.Call)):
        node = node.func if isinstance(node, cst.Call) else node.value
    return node.value if isinstance(node, cst.Name) else None


def _all_params(params: cst.Parameters) -> list[cst.Param]:
    out = list(params.posonly_params) + list(params.params)
    if isinstance(params.star_arg, cst.Param):
        out.append(params.star_arg)
    out.extend(params.kwonly_params)
    if params.star_kwarg is not None:
        out.append(params.star_kwarg)
    return out


def param_names(params: cst.Parameters) -> list[str]:
    """Parameter names in declaration order (positional-only, normal, *args, keyword-only, **kwargs)."""
    return [p.name.value for p in _all_params(params)]


def param_defaults(params: cst.Parameters) -> list[cst.BaseExpression]:
    """Default value expressions (evaluated at the def statement, in the enclosing scope)."""
    return [p.default for p in _all_params(params) if p.default is not None]


def comprehension_sources(value: cst.BaseExpression) -> set[str] | None:
    """Names read by the iterables of a comprehension `value`, or None if it is not one."""
    if not isinstance(value, COMPREHENSIONS):
        return None
    facts = Facts()
    walker = ExprWalker(facts)
    comp: cst.CompFor | None = value.for_in
    while comp is not None:
        walker.walk(comp.iter)
        comp = comp.inner_for_in
    return set(facts.uses)


def bind_target(target: cst.BaseExpression, facts: Facts, walker: ExprWalker,
                value: cst.BaseExpression | None = None, shifts: tuple[int, ...] = (), fresh: bool = False) -> None:
    """Record an assignment of `value` (reached by `shifts`) to `target`: names are bound (with
    where their object may come from), subscripts/attributes mutate their root. `value` None
    with `fresh` False means the object's origin is unknown."""
    if not fresh:
        for name, at in target_shifts(target, shifts):
            facts.sources.setdefault(name, []).append((value, at))
    stack: list[Any] = [target]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            facts.bind(node.value)
        elif isinstance(node, (cst.Tuple, cst.List)):
            stack.extend(el.value for el in reversed(node.elements))
        elif isinstance(node, cst.StarredElement):
            stack.append(node.value)
        elif isinstance(node, (cst.Subscript, cst.Attribute)):
            mutate(node, facts, walker)
        else:
            walker.walk(node)


def mutate(node: cst.BaseExpression, facts: Facts, walker: ExprWalker, resize: bool = False) -> None:
    """A store into `node` (x[i], x.a, x.a[i]...): read its indexes, mutate its root name."""
    inner = node
    while isinstance(inner, (cst.Attribute, cst.Subscript)):
        if isinstance(inner, cst.Subscript):
            for element in inner.slice:
                walker.walk(element.slice)
        inner = inner.value
    if isinstance(node, (cst.Attribute, cst.Subscript)):
        facts.mutated.append(Mutated(node.value, facts.line))
        if isinstance(node.value, cst.Name):
            facts.bases.add(node.value.value)
    if isinstance(inner, cst.Name):
        facts.use(inner.value)
        facts.mods.add(inner.value)
        if resize and isinstance(node, cst.Subscript) and node.value is inner:
            facts.resize.add(inner.value)
    else:
        walker.walk(inner)


def small_statement_facts(stmt: cst.BaseSmallStatement, line: int) -> Facts:
    """Facts of one simple statement (Assign, AugAssign, Expr, Return, Del ...)."""
    facts = Facts(line)
    walker = ExprWalker(facts)
    if isinstance(stmt, cst.Assign):
        walker.walk(stmt.value)
        sources = comprehension_sources(stmt.value)
        for t in stmt.targets:
            bind_target(t.target, facts, walker, stmt.value)
            if sources is not None and isinstance(t.target, cst.Name):
                facts.comp_sources[t.target.value] = sources
    elif isinstance(stmt, cst.AugAssign):
        target = stmt.target
        if isinstance(target, cst.Name):
            facts.use(target.value)
            walker.walk(stmt.value)
            facts.bind(target.value, (target, ()))  # in place on an array or list: the same object
            facts.mutated.append(Mutated(target, facts.line, augmented=True))
        else:
            walker.walk(stmt.value)
            mutate(target, facts, walker)
    elif isinstance(stmt, cst.AnnAssign):
        if stmt.value is not None:
            walker.walk(stmt.value)
            bind_target(stmt.target, facts, walker, stmt.value)
            sources = comprehension_sources(stmt.value)
            if sources is not None and isinstance(stmt.target, cst.Name):
                facts.comp_sources[stmt.target.value] = sources
        elif not isinstance(stmt.target, cst.Name):
            walker.walk(stmt.target)
    elif isinstance(stmt, cst.Expr):
        walker.walk(stmt.value)
    elif isinstance(stmt, cst.Return):
        walker.walk(stmt.value)
    elif isinstance(stmt, cst.Del):
        _delete(stmt.target, facts, walker)
    elif isinstance(stmt, cst.Raise):
        walker.walk(stmt.exc)
        if stmt.cause is not None:
            walker.walk(stmt.cause.item)
    elif isinstance(stmt, cst.Assert):
        walker.walk(stmt.test)
        walker.walk(stmt.msg)
    elif isinstance(stmt, cst.Import):
        for alias in stmt.names:
            facts.bind(import_binding(alias, None)[0])
    elif isinstance(stmt, cst.ImportFrom):
        if not isinstance(stmt.names, cst.ImportStar):
            for alias in stmt.names:
                facts.bind(import_binding(alias, module_name(stmt))[0])
    # Pass, Break, Continue, Global, Nonlocal, TypeAlias: nothing to read or bind here
    return facts


def _delete(target: cst.BaseExpression, facts: Facts, walker: ExprWalker) -> None:
    stack: list[Any] = [target]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            facts.bind(node.value)
            facts.dels.add(node.value)
        elif isinstance(node, (cst.Tuple, cst.List)):
            stack.extend(el.value for el in reversed(node.elements))
        elif isinstance(node, (cst.Subscript, cst.Attribute)):
            mutate(node, facts, walker, resize=True)
        else:
            walker.walk(node)


def import_binding(alias: cst.ImportAlias, from_module: str | None) -> tuple[str, str]:
    """(bound name, dotted thing it refers to) of one import alias.

    ``import a.b`` binds a -> "a"; ``import a.b as m`` binds m -> "a.b";
    ``from mod import x as y`` binds y -> "mod.x" (`from_module` is "mod", dots kept if relative).
    """
    full = _dotted_text(alias.name)
    asname = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else None
    if from_module is None:
        if asname is not None:
            return asname, full
        first = full.split(".", 1)[0]
        return first, first
    return (asname or full), f"{from_module}.{full}" if from_module else full


def _dotted_text(node: cst.BaseExpression) -> str:
    parts = dotted_parts(node)
    return ".".join(parts)


def module_name(stmt: cst.ImportFrom) -> str:
    """The module text of a from-import, dots included for relative imports ('..pkg')."""
    dots = "." * len(stmt.relative)
    return dots + (_dotted_text(stmt.module) if stmt.module is not None else "")


def pattern_facts(case: cst.MatchCase, line: int) -> Facts:
    """Facts of a match case: value patterns are reads, captures are binds, then the guard."""
    facts = Facts(line)
    walker = ExprWalker(facts)
    captures: list[str] = []
    stack: list[Any] = [case.pattern]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.MatchAs):
            if node.pattern is not None:
                stack.append(node.pattern)
            if node.name is not None:
                captures.append(node.name.value)
        elif isinstance(node, cst.MatchStar):
            if node.name is not None:
                captures.append(node.name.value)
        elif isinstance(node, cst.MatchValue):
            walker.walk(node.value)
        elif isinstance(node, cst.MatchSingleton):
            continue
        elif isinstance(node, (cst.MatchSequence, cst.MatchList, cst.MatchTuple)):
            stack.extend(el if isinstance(el, cst.MatchStar) else el.value for el in node.patterns)
        elif isinstance(node, cst.MatchMapping):
            for el in node.elements:
                walker.walk(el.key)
                stack.append(el.pattern)
            if node.rest is not None:
                captures.append(node.rest.value)
        elif isinstance(node, cst.MatchClass):
            walker.walk(node.cls)
            stack.extend(el.value for el in node.patterns)
            stack.extend(kw.pattern for kw in node.kwds)
        elif isinstance(node, cst.MatchOr):
            stack.extend(el.pattern for el in node.patterns)
        elif isinstance(node, cst.CSTNode):
            walker.walk(node)
    for name in captures:
        facts.bind(name, (None, ()))  # part of the subject, or a new object: not resolved
    if case.guard is not None:
        walker.walk(case.guard)
    return facts
