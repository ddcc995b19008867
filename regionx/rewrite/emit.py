"""Code emission: the module-level loader and helpers, the dispatcher, guarded and batched code.

The loader block is generated text (a few lines per region: load the surrogate, the accept
predicate, the per-call try of a loop or block region, and two one-line bindings of the run-time
helpers to this region's surrogate and guard); the helpers themselves are real functions
(`regionx.runtime`, copied by `regionx.rewrite.portable`). The statements spliced in place of
the original code are built from small templates (`libcst.helpers.parse_template_statement`)
whose holes are expressions of the original program.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Sequence

import libcst as cst
from libcst.helpers import parse_template_statement

from regionx.rewrite.common import (EXACT_PREFIX, PREFIX, ReplaceNode, RewriteError, lines_above, parse_stmts, safe_name,
                                    source_of, tuple_code)
from regionx.rewrite.maploops import Site
from regionx.rewrite.sites import BATCH_FIXED_SECONDS
from regionx.rewrite.markers import marker_line, split_pragma
from regionx.rewrite.portable import helper_name, runtime_source
from regionx.types import Manifest, Region


def _accept_expr(accept: str, is_function: bool) -> str:
    """The accept predicate as a Python expression; a function's output 'return' is spelled `result`."""
    text = accept.strip()
    if is_function:
        text = re.sub(r"\breturn\b", "result", text)
    try:
        cst.parse_expression(text)
    except cst.ParserSyntaxError as exc:
        raise RewriteError(f"accept predicate {accept!r} is not a Python expression ({exc.message})", "RX503") from exc
    return text


def _accept_vectorized(manifest: Manifest, is_function: bool) -> str | None:
    """The accept predicate as one elementwise numpy expression (regionx.accept.vectorize), or None
    when it has none or it cannot be vectorised (then batched loops check it row by row)."""
    if not manifest.accept:
        return None
    from regionx.accept import vectorize

    try:
        return vectorize(_accept_expr(manifest.accept, is_function), f"{PREFIX}np")
    except ValueError:
        return None


@dataclass
class Names:
    """Names of the generated helpers for one region."""

    mod: str  # the loaded surrogate module object
    loader: str
    accept: str
    try_: str
    batch: str  # regionx.runtime.batch bound to this region's surrogate and guard
    map_: str  # regionx.runtime.map_rows, likewise

    @classmethod
    def of(cls, region: Region) -> "Names":
        base = PREFIX + safe_name(region.display_name)
        return cls(mod=base, loader=f"{PREFIX}load_{safe_name(region.display_name)}", accept=f"{base}_accept",
                   try_=f"{base}_try", batch=f"{base}_batch", map_=f"{base}_map")


def min_rows(exact_seconds: float, per_row_seconds: float) -> int:
    """Fewest rows for which one batched call beats the loop as written (at least 2): the call's
    fixed cost over the per-row gain (row 0, answered exactly, costs what the loop's row 0 did)."""
    gain = exact_seconds - per_row_seconds
    if gain <= 0:
        return 2
    return max(2, int(math.ceil(BATCH_FIXED_SECONDS / gain)))


# --------------------------------------------------------------------------------------------
# the loader block


def loader_code(names: Names, rel: str, manifest: Manifest, region: Region, *, with_try: bool,
                sites: Sequence[Site] = (), input_positions: Sequence[int] = (), n_out: int = 1,
                rows_min: int = 2) -> str:
    """Module-level statements: load the surrogate (`rel`, relative to this file), and the guard
    and batch helpers the patched code calls."""
    is_function = region.kind == "function"
    parts = [_load_code(names, rel)]
    helpers: list[str] = []
    vec = None
    if manifest.accept:
        parts.append(_accept_code(names, manifest, is_function))
        vec = _accept_vectorized(manifest, is_function) if sites else None
        if vec is not None:
            parts.append(_accept_columns_code(names, manifest, is_function, vec))
    if with_try:
        parts.append(_try_code(names, manifest, region))
        if any(spec.shape and spec.name in {v.name for v in manifest.inputs} for spec in manifest.outputs):
            helpers.append("store_into")
    with_map = any(s.columns is None and s.form != "distributed" for s in sites)
    if sites:
        helpers.append("batch")
        if with_map:
            helpers.append("map_rows")
        if any(s.columns is None for s in sites):
            helpers += ["traversable", "distinct"]
    if helpers:
        parts.append("\n\n" + runtime_source(helpers))
    if sites:
        parts.append(_bindings_code(names, manifest, input_positions, n_out, rows_min,
                                    vec is not None, bool(manifest.accept) and vec is None,
                                    with_map=with_map))
    return "".join(parts)


def _load_code(names: Names, rel: str) -> str:
    stem = os.path.splitext(rel.rsplit("/", 1)[-1])[0]
    where = ", ".join(repr(part) for part in rel.split("/"))
    return (
        f"import numpy as {PREFIX}np\n\n\n"
        f"def {names.loader}():\n"
        f'    """Load {rel} from the directory of this file (written by regionx rewrite)."""\n'
        f"    import importlib.util\n"
        f"    import os\n"
        f'    here = globals().get("__file__")\n'
        f"    here = os.path.dirname(os.path.abspath(here)) if here else os.getcwd()\n"
        f"    spec = importlib.util.spec_from_file_location({stem!r}, os.path.join(here, {where}))\n"
        f"    module = importlib.util.module_from_spec(spec)\n"
        f"    spec.loader.exec_module(module)\n"
        f"    return module\n\n\n"
        f"{names.mod} = {names.loader}()\n"
    )


def _accept_params(manifest: Manifest, is_function: bool) -> list[str]:
    ins = [v.name for v in manifest.inputs]
    out_params = ["result"] if is_function else [v.name for v in manifest.outputs]
    return [n for n in ins if n not in out_params] + out_params


def _accept_code(names: Names, manifest: Manifest, is_function: bool) -> str:
    assert manifest.accept
    expr = _accept_expr(manifest.accept, is_function)
    return (
        f"\n\ndef {names.accept}({', '.join(_accept_params(manifest, is_function))}):\n"
        f'    """The accept predicate {manifest.accept!r}: when false (or when it raises an\n'
        f'    arithmetic error, as for a division by zero), the exact code runs."""\n'
        f"    try:\n"
        f"        return bool({expr})\n"
        f"    except (ArithmeticError, ValueError):\n"
        f"        return False\n"
    )


def _accept_columns_code(names: Names, manifest: Manifest, is_function: bool, vec: str) -> str:
    return (
        f"\n\ndef {names.accept}_columns({', '.join(_accept_params(manifest, is_function))}):\n"
        f'    """The accept predicate over whole columns (numpy arrays), for batched loops."""\n'
        f"    return {vec}\n"
    )


def _try_code(names: Names, manifest: Manifest, region: Region) -> str:
    """The per-call surrogate of a loop or block region: its outputs, or None (the exact code runs)."""
    ins = [v.name for v in manifest.inputs]
    outs = [v.name for v in manifest.outputs]
    arglist = ", ".join(ins)
    body = [
        f"\n\ndef {names.try_}({arglist}):\n",
        f'    """Surrogate of region {region.id}: its outputs {tuple(outs)}, or None when the exact code must run."""\n',
        f"    if not ({trusted(names, manifest, arglist)}):\n",
        "        return None\n",
        f"    y = {names.mod}.predict_one({arglist})\n",
    ]
    if len(outs) == 1:
        body.append("    y = (y,)\n")
    if manifest.accept:
        keep = [n for n in ins if n not in outs]
        body.append(f"    if not {names.accept}({', '.join(keep + ['*y'])}):\n        return None\n")
    for k, spec in enumerate(manifest.outputs):
        if spec.name in ins and spec.shape:
            # a container changed in place: store into its very objects (inner lists included),
            # so that every alias the caller holds sees the new values, as with the exact code
            body.append(f"    {helper_name('store_into')}({spec.name}, y[{k}])\n")
    body.append("    return y\n")
    return "".join(body)


def _bindings_code(names: Names, manifest: Manifest, input_positions: Sequence[int], n_out: int, rows_min: int,
                   vectorised: bool, row_accept: bool, with_map: bool) -> str:
    """The run-time helpers bound to this region: its surrogate, inputs and guard."""
    kw = f"inputs={tuple_code([str(k) for k in input_positions])}, n_out={n_out}, min_rows={rows_min}"
    if vectorised:
        kw += f", accept={names.accept}_columns"
    elif row_accept:
        kw += f", accept_row={names.accept}"
    parts = [
        f"\n\ndef {names.batch}(exact, loop, rows, columns, how, **store):\n"
        f'    """A batched map loop of this region (regionx.runtime.batch), or None: run the loop as written."""\n'
        f"    return {helper_name('batch')}({names.mod}, exact, loop, rows, columns, how, {kw}, **store)\n"
    ]
    if with_map:
        parts.append(
            f"\n\ndef {names.map_}(exact, rows):\n"
            f'    """The answers for argument rows (regionx.runtime.map_rows), or None: run the loop as written."""\n'
            f"    return {helper_name('map_rows')}({names.mod}, exact, rows, {kw})\n"
        )
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# the region itself


def trusted(names: Names, manifest: Manifest, args: str) -> str:
    """The condition under which one call may use the surrogate: its inputs inside the trained box
    and, when the network has a learned guard (regionx.guard), the guard trusting them."""
    cond = f"{names.mod}.in_domain_one({args})"
    if manifest.topology.guard is not None:
        cond += f" and {names.mod}.guard_one({args})"
    return cond


def forward_args(params: cst.Parameters) -> str:
    """Arguments that forward every parameter of `params` unchanged."""
    out: list[str] = [p.name.value for p in params.posonly_params]
    out += [p.name.value for p in params.params]
    if isinstance(params.star_arg, cst.Param):
        out.append("*" + params.star_arg.name.value)
    out += [f"{p.name.value}={p.name.value}" for p in params.kwonly_params]
    if params.star_kwarg is not None:
        out.append("**" + params.star_kwarg.name.value)
    return ", ".join(out)


def positional_names(params: cst.Parameters) -> list[str]:
    return [p.name.value for p in (*params.posonly_params, *params.params)]


def dispatcher(fn: cst.FunctionDef, names: Names, manifest: Manifest, nested: bool, tuple_result: bool = False,
               per_call: bool = True) -> cst.FunctionDef:
    """The function's new body: the surrogate inside its trained domain, else the exact function.
    `tuple_result`: the exact function returns a tuple of numbers, so the surrogate's does too.
    Without `per_call` (one call of the surrogate is slower than the exact code; only batched
    loops pay) every call the batch does not take runs the exact function."""
    fname = fn.name.value
    exact = EXACT_PREFIX + fname
    if not per_call:
        code = (
            f"def {fname}():\n"
            f'    """regionx dispatcher: one call runs {exact} (batched loops call the surrogate)."""\n'
            f"    return {exact}({forward_args(fn.params)})\n"
        )
        return _in_place_of(fn, code, nested)
    ins = ", ".join(v.name for v in manifest.inputs)
    predicted = f"{names.mod}.predict_one({ins})"
    if tuple_result:
        predicted = f"tuple({predicted}.tolist())"
    if manifest.accept:
        keep = [v.name for v in manifest.inputs]
        hit = (
            f"        {PREFIX}y = {predicted}\n"
            f"        if {names.accept}({', '.join(keep + [f'{PREFIX}y'])}):\n"
            f"            return {PREFIX}y\n"
        )
    else:
        hit = f"        return {predicted}\n"
    code = (
        f"def {fname}():\n"
        f'    """regionx dispatcher: the surrogate inside its trained domain, else {exact}."""\n'
        f"    if {trusted(names, manifest, ins)}:\n"
        f"{hit}"
        f"    return {exact}({forward_args(fn.params)})\n"
    )
    return _in_place_of(fn, code, nested)


def _in_place_of(fn: cst.FunctionDef, code: str, nested: bool) -> cst.FunctionDef:
    """The dispatcher parsed from `code`, with `fn`'s own signature and the blank lines its place wants."""
    (disp,) = parse_stmts(code)
    assert isinstance(disp, cst.FunctionDef)
    blank = (cst.EmptyLine(),) if nested else (cst.EmptyLine(), cst.EmptyLine())
    return disp.with_changes(params=fn.params, returns=fn.returns, leading_lines=blank)


def guarded(stmts: list[cst.BaseStatement], names: Names, manifest: Manifest, region_id: str) -> cst.If:
    """`if (y := try(inputs)) is not None: outputs = y else: <original statements>`."""
    ins = [v.name for v in manifest.inputs]
    assigns = [
        f"    {spec.name} = {PREFIX}y[{k}]\n"
        for k, spec in enumerate(manifest.outputs)
        if not (spec.name in ins and spec.shape)
    ] or ["    pass\n"]
    code = (
        f"if ({PREFIX}y := {names.try_}({', '.join(ins)})) is not None:\n"
        + "".join(assigns)
        + "else:\n    pass\n"
    )
    (node,) = parse_stmts(code)
    assert isinstance(node, cst.If) and node.orelse is not None
    head, pragma = split_pragma(lines_above(stmts[0]))
    lead = head + (marker_line(region_id, None, "begin"),)
    first = stmts[0].with_changes(leading_lines=pragma)
    else_body = node.orelse.body.with_changes(body=[first, *stmts[1:]])
    return node.with_changes(leading_lines=lead, orelse=node.orelse.with_changes(body=else_body))


# --------------------------------------------------------------------------------------------
# batched sites


def _expr(code: str) -> cst.BaseExpression:
    return cst.parse_expression(code)


def _then_else(test: cst.BaseExpression, then: Sequence[cst.BaseStatement], original: cst.BaseStatement,
               lead: Sequence[cst.EmptyLine]) -> cst.If:
    """`if <test>: <then> else: <original>` with `lead` above it."""
    node = parse_template_statement("if {test}:\n    pass\nelse:\n    pass\n", test=test)
    assert isinstance(node, cst.If) and isinstance(node.body, cst.IndentedBlock) and isinstance(node.orelse, cst.Else)
    assert isinstance(node.orelse.body, cst.IndentedBlock)
    return node.with_changes(
        leading_lines=tuple(lead), body=node.body.with_changes(body=list(then)),
        orelse=node.orelse.with_changes(body=node.orelse.body.with_changes(body=[original])))


def _replaced(stmt: cst.BaseStatement, old: cst.CSTNode, new: str) -> cst.BaseStatement:
    """A copy of `stmt` (without the lines above it) with `old` replaced by the expression `new`."""
    out = stmt.visit(ReplaceNode(old, _expr(new)))
    assert isinstance(out, cst.BaseStatement)
    return out.with_changes(leading_lines=())


def batched(site: Site, updated: cst.BaseStatement, names: Names, fname: str, region_id: str, rows_min: int = 2
            ) -> list[cst.BaseStatement]:
    """The statements put in place of a batched site; the last one is an If whose else branch is
    the original statement (what `revert` restores), with the region's batch marker above."""
    head, pragma = split_pragma(lines_above(updated))
    original = updated.with_changes(leading_lines=pragma)
    lead = (*head, marker_line(region_id, "batch", "begin"))
    exact = EXACT_PREFIX + fname
    b, v, it = f"{PREFIX}b", f"{PREFIX}v", f"{PREFIX}it"
    if site.columns is not None:
        c = site.columns
        how = tuple_code([f'"{h}"' for h in c.how])
        call = f'{names.batch}({exact}, "{c.loop}", {c.rows}, {tuple_code(c.columns)}, {how}'
        if c.out is not None:
            call += f", out={c.out}"
        if c.store != "index":
            call += f', store="{c.store}"'
        test = _expr(f"({b} := {call})) is not None")
        if c.target is not None:
            then: list[cst.BaseStatement] = [parse_template_statement(f"{c.target} = {b}[1]\n")]
        else:
            assert site.expr is not None
            then = [_replaced(site.stmt, site.expr, f"{b}[0]")]
        return [_then_else(test, then, original, lead)]
    assert site.call is not None
    walked = site.seqs or site.counted
    checks = [f"{helper_name('traversable')}({', '.join(walked)}, min_rows={rows_min})"] if walked else []
    if site.reads and site.writes:
        checks.append(f"{helper_name('distinct')}({tuple_code(site.reads)}, {tuple_code(site.writes)})")
    guard = " and ".join(checks)
    rerun = _replaced(site.stmt, site.call, f"{it}()")
    if site.form != "distributed":
        feed = parse_template_statement(f"{it} = {v}.__iter__().__next__\n")
        test = _expr(" and ".join([*checks, f"({v} := {names.map_}({exact}, {site.rows})) is not None"]))
        return [_then_else(test, [feed, rerun], original, lead)]
    return _distributed(site, original, lead, guard, names, exact, rerun)


def _distributed(site: Site, original: cst.BaseStatement, lead: Sequence[cst.EmptyLine], guard: str, names: Names,
                 exact: str, rerun: cst.BaseStatement) -> list[cst.BaseStatement]:
    """Loop distribution: a first pass collecting every call's arguments (the slice of the body
    that computes them, which is pure), one batched call, then the loop as written with the
    answers; any exception in the first pass runs the original loop instead."""
    assert isinstance(site.stmt, cst.For) and site.call is not None
    v, a, it = f"{PREFIX}v", f"{PREFIX}a", f"{PREFIX}it"
    cols = [f"{a}{k}" for k in range(len(site.call.args))]
    appends = [f"{col}.append({source_of(arg.value)})\n" for col, arg in zip(cols, site.call.args)]
    collect: list[cst.BaseStatement] = [s.with_changes(leading_lines=()) for s in site.first_pass]
    collect += [parse_template_statement(x) for x in appends]
    first_loop = site.stmt.with_changes(leading_lines=(), body=cst.IndentedBlock(body=collect))
    columns = tuple_code(cols)
    kinds = tuple_code(['"r"'] * len(cols))
    indent = "    " if guard else ""
    prelude = parse_stmts(
        f"{v} = None\n"
        + (f"if {guard}:\n" if guard else "")
        + "".join(f"{indent}{col} = []\n" for col in cols)
        + f"{indent}try:\n"
        f"{indent}    pass\n"
        f'{indent}    {v} = {names.batch}({exact}, "zip", {columns}, {columns}, {kinds}, store="value")\n'
        f"{indent}except Exception:\n"
        f"{indent}    {v} = None\n"
    )
    assign, rest = prelude[0], prelude[1:]

    def with_first_pass(attempt: cst.BaseStatement) -> cst.BaseStatement:
        assert isinstance(attempt, cst.Try) and isinstance(attempt.body, cst.IndentedBlock)
        return attempt.with_changes(body=attempt.body.with_changes(body=[first_loop, attempt.body.body[1]]))

    if guard:
        (checked,) = rest
        assert isinstance(checked, cst.If) and isinstance(checked.body, cst.IndentedBlock)
        inner = list(checked.body.body)
        rest = [checked.with_changes(body=checked.body.with_changes(body=[*inner[:-1], with_first_pass(inner[-1])]))]
    else:
        rest = [*rest[:-1], with_first_pass(rest[-1])]
    feed = parse_template_statement(f"{it} = {v}[0].__iter__().__next__\n")
    final = _then_else(_expr(f"{v} is not None"), [feed, rerun], original, ())
    return [assign.with_changes(leading_lines=tuple(lead)), *rest, final]
