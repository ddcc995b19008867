"""Map-loop detection: where the replaced function is called once per independent row.

Every statement outside the function that calls it is examined, outermost first, as one of the
forms a batched predict can answer (`Site.form`):

* ``index``/``tuple``/``add``/``append``: a ``for`` loop whose one statement stores the call's
  result (``out[i] = f(..)``, ``a[i], b[i] = f(..)``, ``out[i] += f(..)``, ``res.append(f(..))``);
* ``grid``: two nested ``for`` loops over ranges storing ``out[i][j]`` / ``out[i, j]``;
* ``comprehension`` / ``map``: a list, set or dict comprehension, or a generator expression or
  ``map(f, ...)`` consumed at once by list/tuple/set/sorted/sum/min/max/np.array/np.fromiter;
* ``general``: any other one-statement loop (or loop nest, or comprehension) whose calls are
  independent: the argument rows are computed first, the loop then runs as written;
* ``distributed``: a loop that also does serial work (``rsq = ..; fpair = f(rsq); fx += ..``):
  a first pass computes every argument, the loop then runs with the answers (loop distribution).

The column-wise forms (all but general and distributed) read each argument as a whole column
(`regionx.runtime.batch`); their arguments are row reads ``S[i]``, elements of what
zip/enumerate/for walk, items of 2-D rows (``S[i][c]``, ``S[i, c]``, ``row[c]``, unpacked rows)
or loop-invariant values.

The proof of independence is a def-use check with the analysis' own facts
(`regionx.analysis.names`): what the loop writes (names bound, containers mutated) must not be
read by the call's arguments, by the sequences it walks, or by the function itself (its
globals); every other call in the loop must be pure (`regionx.analysis.purity`). A loop that is
not proven independent stays per call, with the reason and the form that blocked it
(`Skipped`). Aliasing the static check cannot see (two names for one list) is checked when the
patched loop runs: `regionx.runtime.distinct`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper

from regionx.analysis.names import small_statement_facts
from regionx.rewrite.common import source_of, tuple_code
from regionx.rewrite.columns import Header, column_of, header
from regionx.rewrite.comprehensions import expression_site
from regionx.rewrite.defuse import (Context, body_of, calls_of, check_independent, containers, expr_facts,
                                    index_of, single_call, stmt_facts, target_names, walk_names)
from regionx.rewrite.distribute import distributed_site
from regionx.rewrite.sites import ITER_SECONDS, OP_SECONDS, Columns, NotBatchable, Site, Skipped, count_ops
from regionx.types import Region

__all__ = ["Columns", "Site", "Skipped", "find_sites"]


# --------------------------------------------------------------------------------------------
# loops


def _store_form(ctx: Context, stmt: cst.BaseSmallStatement, call: cst.Call, heads: Sequence[Header],
                loop_names: set[str], n_out: int) -> tuple[str, str, str] | None:
    """(form, runtime store kind, out code) of the one statement of a column-wise loop, or None."""
    outer = heads[0]
    inner = heads[1] if len(heads) > 1 else None

    def indexed(node: cst.BaseExpression) -> tuple[str, str] | None:
        """("out", kind) for out[i] (kind "index"), out[i][j] ("grid") or out[i, j] ("grid,")."""
        idx = index_of(node)
        if idx is None or not isinstance(node, cst.Subscript):
            return None
        base = node.value
        if inner is None:
            if len(idx) == 1 and isinstance(base, cst.Name) and base.value not in loop_names \
                    and isinstance(idx[0], cst.Name) and idx[0].value == outer.index:
                return base.value, "index"
            return None
        if len(idx) == 2 and isinstance(base, cst.Name) and base.value not in loop_names \
                and isinstance(idx[0], cst.Name) and idx[0].value == outer.index \
                and isinstance(idx[1], cst.Name) and idx[1].value == inner.index:
            return base.value, "grid,"
        base_idx = index_of(base)
        if len(idx) == 1 and base_idx is not None and len(base_idx) == 1 and isinstance(base, cst.Subscript) \
                and isinstance(base.value, cst.Name) and base.value.value not in loop_names \
                and isinstance(base_idx[0], cst.Name) and base_idx[0].value == outer.index \
                and isinstance(idx[0], cst.Name) and idx[0].value == inner.index:
            return base.value.value, "grid"
        return None

    if isinstance(stmt, cst.Assign) and len(stmt.targets) == 1 and stmt.value is call:
        target = stmt.targets[0].target
        if isinstance(target, cst.Tuple) and inner is None:
            outs = [indexed(e.value) for e in target.elements if isinstance(e, cst.Element)]
            if len(outs) == len(target.elements) == n_out > 1 and all(o is not None and o[1] == "index" for o in outs):
                return "tuple", "index", tuple_code([o[0] for o in outs if o is not None])
            return None
        found = indexed(target)
        if found is None or n_out != 1:
            return None
        out, kind = found
        return ("grid" if inner else "index"), kind, out
    if isinstance(stmt, cst.AugAssign) and isinstance(stmt.operator, cst.AddAssign) and stmt.value is call \
            and inner is None and n_out == 1:
        found = indexed(stmt.target)
        if found is not None and found[1] == "index":
            return "add", "add", found[0]
        return None
    if isinstance(stmt, cst.Expr) and isinstance(stmt.value, cst.Call) and isinstance(stmt.value.func, cst.Attribute) \
            and stmt.value.func.attr.value == "append" and isinstance(stmt.value.func.value, cst.Name) \
            and len(stmt.value.args) == 1 and stmt.value.args[0].value is call \
            and stmt.value.args[0].keyword is None and not stmt.value.args[0].star \
            and stmt.value.func.value.value not in loop_names:
        return "append", "append", stmt.value.func.value.value
    return None


def _one_statement(loop: cst.For) -> cst.BaseSmallStatement | None:
    body = body_of(loop)
    if isinstance(loop.body, cst.SimpleStatementSuite):
        return body[0] if len(body) == 1 else None  # type: ignore[return-value]
    if len(body) != 1 or not isinstance(body[0], cst.SimpleStatementLine) or len(body[0].body) != 1:
        return None
    return body[0].body[0]


def _nest(loop: cst.For) -> list[cst.For]:
    """The loops of a perfect nest (each body holding only the next loop), outermost first."""
    loops = [loop]
    while True:
        body = body_of(loops[-1])
        if len(body) == 1 and isinstance(body[0], cst.For):
            loops.append(body[0])
        else:
            return loops


def loop_site(ctx: Context, loop: cst.For, n_out: int) -> Site:
    """A `for` loop (or perfect nest of two) as a column-wise, general or distributed site."""
    if loop.asynchronous is not None or loop.orelse is not None:
        raise NotBatchable("loop", "async for" if loop.asynchronous is not None else "the loop has an else clause")
    loops = _nest(loop)
    if len(loops) > 2 or any(lp.orelse is not None or lp.asynchronous is not None for lp in loops):
        raise NotBatchable("nested", "more than two nested loops, or one with an else clause")
    stmt = _one_statement(loops[-1])
    binds = stmt is not None and bool(small_statement_facts(stmt, 0).defs)
    if stmt is None or binds:
        # serial work beside the call (several statements, or a value carried between iterations
        # such as total += f(..)): the calls may still be independent of it (loop distribution)
        if len(loops) == 1:
            return distributed_site(ctx, loop, n_out)
        raise NotBatchable("nested", "the inner loop's body is not a single statement storing the result")
    form = "loop" if len(loops) == 1 else "nested"
    call = single_call(ctx, form, [stmt])
    body = stmt_facts(loop)
    assert body is not None
    targets: set[str] = set()
    iter_reads: set[str] = set()
    for lp in loops:
        targets |= set(target_names(lp.target) or [])
        iter_reads |= set(expr_facts(lp.iter).uses) - targets
    for lp in loops[1:]:
        if set(expr_facts(lp.iter).uses) & set(target_names(loops[0].target) or []):
            form = "nested"
    why = ctx.impure([stmt, *[lp.iter for lp in loops]], allowed=[call])
    if why:
        raise NotBatchable(form, f"the loop {why}")
    call_args = expr_facts(*[a.value for a in call.args])
    check_independent(ctx, form, call, body, call_args, iter_reads, targets, ctx.module_level(loop))
    line = ctx.line(loop)
    loop_cost = ITER_SECONDS + OP_SECONDS * count_ops(stmt)
    columns = _columnwise(ctx, loops, stmt, call, n_out, targets)
    if columns is not None:
        store_form = {"index": "index", "add": "add", "append": "append", "grid": "grid", "grid,": "grid"}
        kind = "tuple" if columns.store == "index" and n_out > 1 else store_form[columns.store]
        return Site(loop, line, kind, call, columns=columns, loop_seconds=loop_cost)
    # the general form: argument rows first, then the loop as written
    walked = []
    for lp in loops:
        if isinstance(lp.iter, cst.Name):
            walked.append(lp.iter.value)
        elif walk_names(ctx, lp.iter) is None:
            raise NotBatchable(form, f"the loop walks {source_of(lp.iter)}, which may not be walkable twice")
        else:
            walked.extend(walk_names(ctx, lp.iter) or [])
    args = tuple_code([source_of(a.value) for a in call.args])
    clauses = " ".join(f"for {source_of(lp.target)} in {source_of(lp.iter)}" for lp in loops)
    return Site(loop, line, "general", call, rows=f"[{args} {clauses}]", seqs=walked,
                reads=sorted(set(containers(call, targets)) | set(walked)), writes=sorted(body.mods),
                loop_seconds=loop_cost)


def _columnwise(ctx: Context, loops: Sequence[cst.For], stmt: cst.BaseSmallStatement, call: cst.Call,
                n_out: int, loop_names: set[str]) -> Columns | None:
    try:
        heads = [header(ctx, lp) for lp in loops]
    except NotBatchable:
        return None
    if len(heads) == 2 and (heads[0].loop != "range" or heads[1].loop != "range"):
        return None
    if len(heads) == 2 and set(expr_facts(loops[1].iter).uses) & heads[0].names:
        return None  # the inner range depends on the outer index: not a rectangle
    store = _store_form(ctx, stmt, call, heads, loop_names, n_out)
    if store is None:
        return None
    cols = [column_of(a.value, heads, loop_names) for a in call.args]
    if any(c is None for c in cols):
        return None
    _form, kind, out = store
    if kind in ("index", "add") and heads[0].index is None:
        return None
    rows = heads[0].rows if len(heads) == 1 else tuple_code([heads[0].rows, heads[1].rows])
    target = heads[0].target if len(heads) == 1 else f"{heads[0].target}, {heads[1].target}"
    return Columns(loop="grid" if len(heads) == 2 else heads[0].loop, rows=rows,
                   columns=[c[0] for c in cols if c is not None], how=[c[1] for c in cols if c is not None],
                   store=kind, out=out, target=target)


def find_sites(wrapper: MetadataWrapper, fn: cst.FunctionDef, region: Region, n_params: int,
               input_positions: list[int], n_out: int,
               local_purity: Callable[[str], bool] = lambda name: False) -> tuple[list[Site], list[Skipped]]:
    """Batchable sites calling the replaced function `fn`, and the loops or expressions that stay
    per call (with the form that blocked them and why)."""
    ctx = Context(wrapper, fn, region, local_purity)
    sites: list[Site] = []
    skipped: list[Skipped] = []
    taken: list[cst.CSTNode] = []

    def inside(node: cst.CSTNode, ancestors: Sequence[cst.CSTNode]) -> bool:
        cur: cst.CSTNode | None = node
        while cur is not None:
            if any(cur is a for a in ancestors):
                return True
            cur = ctx.parents.get(cur)
        return False

    candidates: list[cst.BaseStatement] = []

    class Walk(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is not fn

        def visit_For(self, node: cst.For) -> None:
            candidates.append(node)

        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
            candidates.append(node)

    wrapper.module.visit(Walk())
    for stmt in candidates:  # outermost first (pre-order)
        if inside(stmt, taken):
            continue
        uses = calls_of(ctx, stmt)
        if not uses.calls and not uses.refs:
            if uses.shadowed and isinstance(stmt, cst.For):
                skipped.append(Skipped(ctx.line(stmt), "loop", f"{ctx.fname} does not refer to the replaced function here"))
            continue
        try:
            if not isinstance(ctx.parents.get(stmt), (cst.IndentedBlock, cst.Module)):
                raise NotBatchable("loop", "the statement is not in a block")
            if ctx.in_class_body(stmt):
                raise NotBatchable("loop", "the statement is in a class body")
            site = loop_site(ctx, stmt, n_out) if isinstance(stmt, cst.For) else \
                expression_site(ctx, stmt, n_out)  # type: ignore[arg-type]
            if site is None:
                continue
            _check_call_arity(site, n_params, input_positions)
        except NotBatchable as exc:
            skipped.append(Skipped(ctx.line(stmt), exc.form, exc.reason))
            continue
        sites.append(site)
        taken.append(stmt)
    # a loop whose calls are batched further in is not a loop that stayed per call
    kept = [s for s in skipped if not any(_holds(ctx, s.line, site) for site in sites)]
    return sites, kept


def _holds(ctx: Context, line: int, site: Site) -> bool:
    """Whether a skipped loop starting at `line` encloses `site` (so its calls are batched there)."""
    cur: cst.CSTNode | None = site.stmt
    while cur is not None:
        if isinstance(cur, cst.For) and ctx.line(cur) == line and cur is not site.stmt:
            return True
        cur = ctx.parents.get(cur)
    return False


def _check_call_arity(site: Site, n_params: int, input_positions: list[int]) -> None:
    n_args = len(site.columns.columns) if site.columns is not None and site.call is None else \
        len(site.call.args) if site.call is not None else 0
    if n_args > n_params or (input_positions and max(input_positions) >= n_args):
        raise NotBatchable(site.form, "the call does not pass every input positionally")
