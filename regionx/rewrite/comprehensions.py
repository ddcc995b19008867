"""Comprehensions, generator expressions and map() over the replaced function.

A comprehension (or a generator expression or ``map(f, ..)`` consumed at once) in a simple
statement is batched column-wise when it has one plain for clause and its element is the call;
otherwise by argument rows, the comprehension then running as written.
"""

from __future__ import annotations

from typing import Any

import libcst as cst

from regionx.analysis.names import COMPREHENSIONS
from regionx.rewrite.common import source_of, tuple_code
from regionx.rewrite.columns import column_of, header
from regionx.rewrite.defuse import Context, calls_of, containers, expr_facts, target_names, walk_names
from regionx.rewrite.sites import CONSUMERS, ITER_SECONDS, OP_SECONDS, Columns, NotBatchable, Site, count_ops


def expression_site(ctx: Context, stmt: cst.SimpleStatementLine, n_out: int) -> Site | None:
    """A simple statement holding a comprehension, a consumed generator expression or map()
    over the function; None when it holds none (its plain calls stay per call)."""
    found: list[cst.BaseExpression] = []

    class Finder(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, COMPREHENSIONS) and (calls_of(ctx, node).calls or calls_of(ctx, node).refs):
                found.append(node)
                return False
            if isinstance(node, cst.Call) and ctx.dotted(node.func) == "builtins.map" and node.args \
                    and ctx.is_fn(node.args[0].value):
                found.append(node)
                return False
            return not isinstance(node, cst.Lambda)

    stmt.visit(Finder())
    if not found:
        return None
    line = ctx.line(stmt)
    if len(found) > 1:
        raise NotBatchable("comprehension", "the statement holds more than one comprehension or map() over the function")
    expr = found[0]
    form = "map" if isinstance(expr, cst.Call) else "comprehension"
    if len(stmt.body) != 1 or not isinstance(stmt.body[0], (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.Return,
                                                             cst.Expr)):
        raise NotBatchable(form, "the statement is not an assignment, return or expression statement")
    outside = ctx.impure([stmt], allowed=ctx.calls_in(expr))
    if outside:
        raise NotBatchable(form, f"the rest of the statement {outside} (its order with the batch would change)")
    consumer = _consumer(ctx, expr)
    if isinstance(expr, (cst.GeneratorExp, cst.Call)) and consumer is None:
        raise NotBatchable(form, "the generator or map() is not consumed at once by list, tuple, set, sorted, "
                                  "sum, min, max, np.array or np.fromiter")
    store = "array" if consumer in ("numpy.array", "numpy.asarray", "numpy.fromiter") else "value"
    if isinstance(expr, cst.Call):
        return _map_site(ctx, stmt, expr, store, line)
    return _comprehension_site(ctx, stmt, expr, store, line, n_out)


def _consumer(ctx: Context, expr: cst.BaseExpression) -> str | None:
    """What consumes `expr` when it is the first positional argument of a consuming call."""
    arg = ctx.parents.get(expr)
    call = ctx.parents.get(arg) if isinstance(arg, cst.Arg) else None
    if not isinstance(call, cst.Call) or not call.args or call.args[0] is not arg or arg.keyword is not None:
        return None
    kind = ctx.dotted(call.func)
    return kind if kind in CONSUMERS else None


def _map_site(ctx: Context, stmt: cst.SimpleStatementLine, expr: cst.Call, store: str, line: int) -> Site:
    seqs = expr.args[1:]
    if not seqs or not all(isinstance(a.value, cst.Name) and a.keyword is None and not a.star for a in seqs):
        raise NotBatchable("map", "map() walks something other than names")
    names = [a.value.value for a in seqs]  # type: ignore[attr-defined]
    if len(names) == 1:
        loop, rows = "for", tuple_code(names)
    else:
        loop, rows = "zip", tuple_code(names)
    columns = Columns(loop=loop, rows=rows, columns=names, how=["r"] * len(names), store=store, out=None, target=None)
    return Site(stmt, line, "map", None, expr=expr, columns=columns,
                loop_seconds=ITER_SECONDS + OP_SECONDS * (len(names) + 2))


def _comprehension_site(ctx: Context, stmt: cst.SimpleStatementLine, expr: cst.BaseExpression, store: str,
                        line: int, n_out: int) -> Site:
    form = "comprehension"
    comp: Any = expr
    call = _single_call_in_comprehension(ctx, comp)
    clauses: list[cst.CompFor] = []
    clause: cst.CompFor | None = comp.for_in
    while clause is not None:
        if clause.asynchronous is not None:
            raise NotBatchable(form, "async comprehension")
        clauses.append(clause)
        clause = clause.inner_for_in
    bound = {n for c in clauses for n in (target_names(c.target) or [])}
    why = ctx.impure([expr], allowed=[call])
    if why:
        raise NotBatchable(form, f"the comprehension {why}")
    call_args = expr_facts(*[a.value for a in call.args])
    if call_args.defs or call_args.comp_vars or any(a.keyword is not None or a.star for a in call.args):
        raise NotBatchable(form, "the arguments bind names or use keyword or starred arguments")
    simple = (len(clauses) == 1 and not clauses[0].ifs and not isinstance(comp, cst.DictComp)
              and comp.elt is call)
    if simple:
        try:
            head = header(ctx, clauses[0])
        except NotBatchable:
            head = None
        if head is not None:
            cols = [column_of(a.value, [head], bound) for a in call.args]
            if all(c is not None for c in cols):
                kind = "set" if isinstance(comp, cst.SetComp) else store
                columns = Columns(loop=head.loop, rows=head.rows, columns=[c[0] for c in cols if c is not None],
                                  how=[c[1] for c in cols if c is not None], store=kind, out=None, target=None)
                return Site(stmt, line, form, call, expr=expr, columns=columns,
                            loop_seconds=ITER_SECONDS + OP_SECONDS * count_ops(comp.elt))
    # the general form: the argument rows by the same clauses, then the comprehension as written
    walked: list[str] = []
    for c in clauses:
        if isinstance(c.iter, cst.Name):
            if c.iter.value in bound:
                raise NotBatchable(form, f"a for clause walks {c.iter.value}, an element of an earlier one")
            walked.append(c.iter.value)
            continue
        names = walk_names(ctx, c.iter)
        if names is None or set(expr_facts(c.iter).uses) & bound:
            raise NotBatchable(form, f"a for clause walks {source_of(c.iter)}, which may not be walkable twice")
        walked.extend(names)
    args = tuple_code([source_of(a.value) for a in call.args])
    clauses_code = " ".join(
        f"for {source_of(c.target)} in {source_of(c.iter)}" + "".join(f" if {source_of(i.test)}" for i in c.ifs)
        for c in clauses)
    return Site(stmt, line, "comprehension", call, expr=expr, rows=f"[{args} {clauses_code}]", seqs=walked,
                reads=containers(call, bound), loop_seconds=ITER_SECONDS + OP_SECONDS * count_ops(call))


def _single_call_in_comprehension(ctx: Context, comp: Any) -> cst.Call:
    """The one call of the function in a comprehension's element, evaluated once per element."""
    elt = [comp.key, comp.value] if isinstance(comp, cst.DictComp) else [comp.elt]
    found = calls_of(ctx, *elt)
    in_clauses = calls_of(ctx, comp.for_in)
    if found.refs or in_clauses.calls or in_clauses.refs:
        raise NotBatchable("comprehension", f"{ctx.fname} is used in a for or if clause, or passed as a value")
    if len(found.calls) != 1:
        raise NotBatchable("comprehension", f"{ctx.fname}() is not called exactly once per element")
    call, conditional = found.calls[0]
    if conditional:
        raise NotBatchable("comprehension", f"{ctx.fname}() is called conditionally")
    return call
