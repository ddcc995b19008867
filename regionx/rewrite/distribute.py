"""Loop distribution: a loop whose calls' arguments come from a pure slice of its body.

``for j in neigh: rsq = ..; fpair = f(rsq); fx += dx * fpair``: a first pass runs the slice that
computes the arguments for every row, one batched predict answers them, then the loop runs as
written with the answers. Proven when the slice is pure, reads only this iteration's values and
loop-invariant ones, and nothing the loop writes.
"""

from __future__ import annotations

from typing import Sequence

import libcst as cst

from regionx.analysis.names import small_statement_facts
from regionx.rewrite.common import source_of, tuple_code
from regionx.rewrite.defuse import (Context, body_of, calls_of, check_independent, containers, expr_facts,
                                    leaves_loop, plain_item, single_call, stmt_facts, subscripted, target_names,
                                    walk_names)
from regionx.analysis.names import Facts
from regionx.rewrite.sites import ITER_SECONDS, OP_SECONDS, PASS_SECONDS, NotBatchable, Site, count_ops


def distributed_site(ctx: Context, loop: cst.For, n_out: int) -> Site:
    """Loop distribution: a loop whose call's arguments come from a pure slice of its body, the
    rest of the body doing serial work with the answer (accumulation, stores)."""
    form = "distributed"
    body = list(body_of(loop))
    leaves = leaves_loop(body)
    if leaves:
        raise NotBatchable(form, f"the loop body has {leaves}, which a batched loop cannot reproduce")
    at = [k for k, s in enumerate(body) if calls_of(ctx, s).calls or calls_of(ctx, s).refs]
    if len(at) != 1 or not isinstance(body[at[0]], cst.SimpleStatementLine):
        raise NotBatchable(form, f"{ctx.fname}() is not called in exactly one top-level statement of the loop")
    k = at[0]
    call = single_call(ctx, form, [body[k]])
    facts = stmt_facts(loop)
    if facts is None:
        raise NotBatchable(form, "the loop body holds a statement regionx does not model (try, with, def ...)")
    why = ctx.impure([loop.iter, *body], allowed=[call])
    if why:
        raise NotBatchable(form, f"the loop {why}")
    targets = set(target_names(loop.target) or [])
    if not targets:
        raise NotBatchable(form, "the loop target is not a name or tuple of names")
    iter_facts = expr_facts(loop.iter)
    if isinstance(loop.iter, cst.Name):
        walked = [loop.iter.value]
    elif walk_names(ctx, loop.iter) is not None:
        walked = walk_names(ctx, loop.iter) or []
    elif plain_item(loop.iter):
        walked = [source_of(loop.iter)]  # neighbors[i]: the same list each time it is evaluated
    else:
        raise NotBatchable(form, f"the loop walks {source_of(loop.iter)}, which may not be walkable twice")
    call_args = expr_facts(*[a.value for a in call.args])
    check_independent(ctx, form, call, facts, call_args, set(iter_facts.uses) - targets, targets,
                      ctx.module_level(loop))
    # the backward slice of the arguments among the statements before the call
    needed = set(call_args.uses)
    chosen: list[int] = []
    for j in range(k - 1, -1, -1):
        sf = stmt_facts(body[j])
        assert sf is not None
        if sf.defs & needed:
            if sf.mods:
                raise NotBatchable(form, f"line {ctx.line(body[j])} computes an argument and writes a container")
            chosen.append(j)
            needed |= set(sf.uses)
    chosen.reverse()
    slice_stmts: list[cst.BaseStatement] = []
    for j in chosen:
        s = body[j]
        if not isinstance(s, (cst.SimpleStatementLine, cst.If)):
            raise NotBatchable(form, f"line {ctx.line(s)} computes an argument with a {type(s).__name__.lower()} statement")
        slice_stmts.append(s)
    _check_slice(ctx, form, slice_stmts, call, facts, targets)
    reads = sorted({n for s in slice_stmts for n in subscripted(s)} | set(containers(call, targets)))
    ops = sum(count_ops(s) for s in slice_stmts) + sum(count_ops(a.value) for a in call.args)
    line = ctx.line(loop)
    rest = sum(count_ops(s) for s in body) - count_ops(call)
    counted = [source_of(loop.iter)] if not walked and isinstance(loop.iter, cst.Call) \
        and ctx.dotted(loop.iter.func) == "builtins.range" else []
    return Site(loop, line, form, call, rows=tuple_code([source_of(a.value) for a in call.args]),
                seqs=walked, counted=counted, reads=reads, writes=sorted(facts.mods),
                first_pass=slice_stmts, extra_seconds=PASS_SECONDS + OP_SECONDS * ops,
                loop_seconds=ITER_SECONDS + OP_SECONDS * rest)


def _check_slice(ctx: Context, form: str, stmts: Sequence[cst.CSTNode], call: cst.Call, loop: Facts,
                 targets: set[str]) -> None:
    """Every name the slice (and the arguments) read has this iteration's value when the first
    pass runs it: a loop target, a loop-invariant name, or one the slice assigned before on
    every path. Containers the slice reads are not written by the loop."""
    assigned = loop.defs | loop.mods
    surely: set[str] = set()

    def ok(name: str) -> bool:
        return name in targets or name in surely or name not in assigned

    def visit(block: Sequence[cst.CSTNode], top: bool) -> None:
        for s in block:
            if isinstance(s, cst.If):
                bad = [n for n in expr_facts(s.test).uses if not ok(n)]
                if bad:
                    raise NotBatchable(form, f"line {ctx.line(s)} reads {bad[0]} before the iteration assigns it")
                visit(body_of(s), False)
                orelse = s.orelse
                while orelse is not None:
                    if isinstance(orelse, cst.If):
                        bad = [n for n in expr_facts(orelse.test).uses if not ok(n)]
                        if bad:
                            raise NotBatchable(form, f"line {ctx.line(orelse)} reads {bad[0]} before the iteration assigns it")
                        visit(body_of(orelse), False)
                        orelse = orelse.orelse
                    else:
                        visit(orelse.body.body, False)
                        orelse = None
                continue
            if not isinstance(s, cst.SimpleStatementLine):
                raise NotBatchable(form, f"line {ctx.line(s)} computes an argument with a compound statement")
            for small in s.body:
                sf = small_statement_facts(small, 0)
                if sf.mods:
                    raise NotBatchable(form, f"line {ctx.line(s)} computes an argument and writes a container")
                bad = [n for n in sf.uses if not ok(n)]
                if bad:
                    raise NotBatchable(form, f"loop-carried dependence: line {ctx.line(s)} reads {bad[0]}, which an "
                                              "earlier iteration assigns")
                if top:
                    surely.update(sf.defs)

    visit(stmts, True)
    bad = [n for n in expr_facts(*[a.value for a in call.args]).uses if not ok(n)]
    if bad:
        raise NotBatchable(form, f"loop-carried dependence: the arguments read {bad[0]}, which an earlier "
                                  "iteration assigns")
    read = {n for s in stmts for n in subscripted(s)}
    if read & loop.mods:
        raise NotBatchable(form, f"the arguments read {sorted(read & loop.mods)}, which the loop writes")
