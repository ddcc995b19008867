"""rewrite_source: plan a region's rewrite (target, hoisted loops, profitability) and build it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from regionx.diagnostics import make
from regionx.rewrite.common import EXACT_PREFIX, RewriteError, lines_above, parse_stmts
from regionx.rewrite.emit import Names, batched, dispatcher, guarded, loader_code, min_rows, positional_names
from regionx.rewrite.locate import Target, locate
from regionx.rewrite.maploops import Site, find_sites
from regionx.rewrite.sites import IMPURE_CODES
from regionx.rewrite.markers import attach_header, marker_id, marker_line, revert_source, rewritten_regions, split_pragma
from regionx.rewrite.profit import Profitability, fmt_time, profitability
from regionx.rewrite.splice import Rewriter, loader_position
from regionx.types import Manifest, Region, RewriteResult, StageResult, VarSpec


# --------------------------------------------------------------------------------------------
# public: rewrite_source / revert_source


def returned_tuple_size(fn: cst.FunctionDef) -> int | None:
    """k when every return statement of `fn` returns a tuple display of k plain elements (the
    function's result is a k-tuple of numbers), else None."""
    sizes: set[int | None] = set()

    class Returns(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is fn

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            return False

        def visit_Return(self, node: cst.Return) -> None:
            value = node.value
            ok = isinstance(value, cst.Tuple) and all(isinstance(e, cst.Element) for e in value.elements)
            sizes.add(len(value.elements) if ok else None)  # type: ignore[union-attr]

    fn.visit(Returns())
    return sizes.pop() if len(sizes) == 1 else None


def batch_shape(fn: cst.FunctionDef, inputs: Sequence[VarSpec] | None, outputs: Sequence[VarSpec] | None
                ) -> tuple[int | None, str]:
    """(outputs per row, "") when the function's calls can be batched, else (None, why): scalar
    inputs, and one result that is a number or a tuple of numbers."""
    if inputs is not None and any(v.shape for v in inputs):
        return None, "batching needs scalar inputs"
    k = returned_tuple_size(fn)
    if outputs is None:
        return k or 1, ""
    if len(outputs) != 1:
        return None, "batching needs one result"
    shape = outputs[0].shape
    if not shape:
        return (1, "") if k is None else (None, "the result is one number but the function returns a tuple")
    if len(shape) == 1 and k == shape[0]:
        return k, ""
    return None, "batching needs a result that is a number or a tuple of numbers"


def _purity_of_locals(text: str, path: str) -> Callable[[str], bool]:
    """Whether a function of this module is pure (its calls can be moved): the analysis found no
    effect in it (I/O, randomness, global writes, unknown calls ...) and it changes no argument."""
    cache: dict[str, bool] = {}
    regions: list[Region] = []

    def pure(name: str) -> bool:
        if name not in cache:
            if not regions:
                from regionx.analysis import analyze_source

                regions.extend(r for r in analyze_source(text, path).regions if r.kind == "function")
            found = [r for r in regions if r.qualname == name]
            cache[name] = len(found) == 1 and set(found[0].outputs) <= {"return"} and not any(
                reason.code in IMPURE_CODES for reason in found[0].reasons)
        return cache[name]

    return pure


def _sites(wrapper: MetadataWrapper, fn: cst.FunctionDef, region: Region, text: str, path: str,
           inputs: Sequence[VarSpec] | None, outputs: Sequence[VarSpec] | None
           ) -> tuple[list[Site], list[dict[str, Any]], list[int], int]:
    """Batchable sites of a function region: (sites, skipped, input positions, outputs per row)."""
    pnames = positional_names(fn.params)
    names = [v.name for v in inputs] if inputs is not None else list(region.inputs)
    line = wrapper.resolve(PositionProvider)[fn].start.line
    if fn.params.kwonly_params or any(name not in pnames for name in names):
        return [], [{"line": line, "form": "call", "reason": "batching needs every input as a positional parameter"}], [], 1
    n_out, why = batch_shape(fn, inputs, outputs)
    if n_out is None:
        return [], [{"line": line, "form": "call", "reason": why}], [], 1
    positions = [pnames.index(name) for name in names]
    sites, skipped = find_sites(wrapper, fn, region, len(pnames), positions, n_out, _purity_of_locals(text, path))
    return sites, [s.to_json() for s in skipped], positions, n_out


def hoistable_sites(text: str, region: Region, path: str = "<source>") -> list[Site]:
    """The loops (and comprehensions) that rewriting function `region` would batch (no manifest
    needed), each with its line, form and the per-row cost its form adds (`Site.extra_seconds`:
    a distributed loop's first pass). Empty when `region` is not a function or cannot be located."""
    if region.kind != "function":
        return []
    try:
        wrapper = MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)
        target = locate(wrapper, region)
    except (cst.ParserSyntaxError, RewriteError):
        return []
    fn = target.stmts[0]
    if not isinstance(fn, cst.FunctionDef):
        return []
    return _sites(wrapper, fn, region, text, path, None, None)[0]


def hoistable_loops(text: str, region: Region, path: str = "<source>") -> list[int]:
    """Lines of the loops (and comprehensions) that rewriting function `region` would batch (no
    manifest needed).

    Used before training to decide whether the surrogate will mostly run per call or per batch
    element, so that selection can pick the fastest topology for the path that will run.
    """
    return [s.line for s in hoistable_sites(text, region, path)]


@dataclass
class _Plan:
    """What a rewrite batches: the sites, what stays per call, the shape of a row."""

    sites: list[Site] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    input_positions: list[int] = field(default_factory=list)
    n_out: int = 1
    prof: Profitability | None = None
    rows_min: int = 2  # fewer rows run the code as written


def _plan_batches(wrapper: MetadataWrapper, target: Target, region: Region, manifest: Manifest, text: str, path: str,
                  *, force: bool, hoist: bool) -> _Plan:
    """The sites a function region's rewrite batches: proven independent and profitable."""
    prof = profitability(manifest.topology)
    plan = _Plan(prof=prof, rows_min=min_rows(prof.exact_time_per_call, prof.time_per_element))
    if target.kind != "function":
        return plan
    fn = target.stmts[0]
    assert isinstance(fn, cst.FunctionDef)
    pnames = positional_names(fn.params)
    kwonly = [p.name.value for p in fn.params.kwonly_params]
    missing = [v.name for v in manifest.inputs if v.name not in pnames and v.name not in kwonly]
    if missing:
        raise RewriteError(f"inputs {missing} are not parameters of {fn.name.value}()", line=target.line)
    if hoist:
        plan.sites, plan.skipped, plan.input_positions, plan.n_out = _sites(
            wrapper, fn, region, text, path, manifest.inputs, manifest.outputs)
        slow = [s for s in plan.sites if not prof.batch_pays(s.extra_seconds, force)]
        plan.skipped += [{"line": s.line, "form": s.form, "reason": (
            f"batched {fmt_time(prof.per_row(s.extra_seconds))}/row "
            + (f"(re-running the argument computation ~{fmt_time(s.extra_seconds)}) " if s.extra_seconds else "")
            + f"is not faster than the exact code ({fmt_time(prof.exact_time_per_call)}/call)")} for s in slow]
        plan.sites = [s for s in plan.sites if s not in slow]
    plan.skipped.sort(key=lambda s: s["line"])
    return plan


def _loader(module: cst.Module, parents: Any, names: Names, rel: str, manifest: Manifest, region: Region,
            target: Target, plan: _Plan) -> tuple[list[cst.BaseStatement], cst.BaseStatement | None]:
    """The loader block's statements and the module statement to put them before."""
    loader_text = loader_code(names, rel, manifest, region, with_try=target.kind != "function", sites=plan.sites,
                              input_positions=plan.input_positions, n_out=plan.n_out, rows_min=plan.rows_min)
    # in the file's own line endings: the loader's multi-line docstrings are string contents,
    # which libcst copies as written (a CRLF file stays CRLF throughout)
    stmts = parse_stmts(loader_text.replace("\n", module.default_newline))
    anchors: list[cst.CSTNode] = [target.stmts[0], *[s.stmt for s in plan.sites]]
    before = loader_position(module, anchors, parents)
    # a blank line above the loader, unless it opens the file (the blank would join the header)
    spacer = () if before is module.body[0] else (cst.EmptyLine(),)
    stmts[0] = stmts[0].with_changes(leading_lines=(*spacer, marker_line(region.id, "loader", "begin")))
    return stmts, before


def _replacements(rid: str, target: Target, plan: _Plan, names: Names, manifest: Manifest, parents: Any, *,
                  per_call: bool) -> tuple[dict[int, tuple[Any, cst.EmptyLine]], set[int]]:
    """id(original statement) -> (builder of its replacement, end marker); ids folded into one."""
    replacements: dict[int, tuple[Any, cst.EmptyLine]] = {}
    skip: set[int] = set()
    end = marker_line(rid, None, "end")
    first = target.stmts[0]
    if isinstance(first, cst.FunctionDef):
        shape = manifest.outputs[0].shape if len(manifest.outputs) == 1 else ()
        tuple_result = plan.n_out > 1 or (len(shape) == 1 and returned_tuple_size(first) == shape[0])
        disp = dispatcher(first, names, manifest, not isinstance(parents.get(first), cst.Module),
                          tuple_result=tuple_result, per_call=per_call)

        def build_fn(us: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
            u = us[0]
            assert isinstance(u, cst.FunctionDef)
            head, pragma = split_pragma(lines_above(u))
            exact = u.with_changes(name=cst.Name(EXACT_PREFIX + u.name.value),
                                   leading_lines=(*head, marker_line(rid, None, "begin"), *pragma))
            return [exact, disp]

        replacements[id(first)] = (build_fn, end)
    else:
        def build_block(us: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
            return [guarded(us, names, manifest, rid)]

        replacements[id(first)] = (build_block, end)
        skip.update(id(s) for s in target.stmts[1:])
    fname = first.name.value if isinstance(first, cst.FunctionDef) else ""
    for site in plan.sites:
        def build_site(us: list[cst.BaseStatement], site: Site = site) -> list[cst.BaseStatement]:
            return batched(site, us[0], names, fname, rid, plan.rows_min)

        replacements[id(site.stmt)] = (build_site, marker_line(rid, "batch", "end"))
    return replacements, skip


def unsupported_shape(region: Region, outputs: Sequence[str]) -> str | None:
    """Why the rewrite cannot take `region` with these outputs (None: it can). compile asks
    before sampling, so nothing is trained for a region that could not be rewritten."""
    changed = [name for name in outputs if name != "return"]
    if region.kind == "function" and changed:
        # The dispatcher returns the surrogate's answer; it would also have to write into the
        # caller's objects (and guard against arguments that are one object). Until it does,
        # refuse rather than return a program that leaves the caller's data unchanged.
        return (f"the function changes its argument{'s' if len(changed) > 1 else ''} {', '.join(map(repr, changed))} "
                "in place; regionx does not rewrite such functions yet (annotate the loop or block that does the work instead)")
    return None


def rewrite_source(text: str, path: str, region: Region, manifest: Manifest, *, module_name: str,
                   force: bool = False, hoist: bool = True) -> StageResult[RewriteResult]:
    """Patch `text` so that `region` calls the surrogate module `module_name` (guarded, exact fallback).

    data: 'text' (patched source), 'hoisted' (lines of loops and statements turned into batched
    calls), 'batched' ([{line, form}]), 'path_taken' ('scalar' or 'batch'), 'hoist_skipped'
    ([{line, form, reason}]: what stays per call, and why), 'profitability'.
    Refuses with RX501 (already rewritten), RX502 (not profitable, unless force), RX503
    (manifest problem), RX505 (region shape not supported).
    """
    rid = region.id

    def fail(code: str, line: int = region.start_line, col: int = region.col or 1, **fields: Any) -> StageResult[RewriteResult]:
        return StageResult(status="failed", region_id=rid, diagnostics=(make(code, path, line, col, **fields),))

    if marker_id(rid) in rewritten_regions(text) or marker_id(manifest.region_id) in rewritten_regions(text):
        return fail("RX501", region=rid)
    if manifest.region_id not in (region.id, region.name):
        return fail("RX503", detail=f"manifest is for region {manifest.region_id!r}, not {rid!r}")
    rel = module_name.replace(os.sep, "/")
    rel = rel if rel.endswith(".py") else rel + ".py"
    stem = os.path.splitext(rel.rsplit("/", 1)[-1])[0]
    if not stem.isidentifier() or rel.startswith("/"):
        return fail("RX503", detail=f"module {module_name!r} is not a Python module name or relative .py path")
    if not manifest.outputs or not manifest.inputs:
        return fail("RX505", region=rid, detail="the manifest lists no inputs or no outputs")
    unsupported = unsupported_shape(region, [v.name for v in manifest.outputs])
    if unsupported is not None:
        return fail("RX505", region=rid, detail=unsupported)
    try:
        module = attach_header(cst.parse_module(text))
    except cst.ParserSyntaxError as exc:
        return fail("RX004", line=exc.raw_line, col=exc.raw_column + 1, detail=exc.message)

    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    names = Names.of(region)
    prof = profitability(manifest.topology)
    try:
        target = locate(wrapper, region)
        parents = wrapper.resolve(ParentNodeProvider)
        plan = _plan_batches(wrapper, target, region, manifest, text, path, force=force, hoist=hoist)
        sites, skipped = plan.sites, plan.skipped
        if not force and not (prof.scalar or sites):
            return StageResult(
                status="failed", region_id=rid,
                diagnostics=(make("RX502", path, target.line, target.col, detail=prof.describe(bool(sites), skipped)),),
                value=RewriteResult(profitability=prof.to_json(), hoist_skipped=tuple(skipped)),
            )
        loader = _loader(module, parents, names, rel, manifest, region, target, plan)
        replacements, skip = _replacements(rid, target, plan, names, manifest, parents, per_call=prof.scalar or force)
        new_text = module.visit(Rewriter(replacements, skip, (loader[0], marker_line(rid, "loader", "end")),
                                         loader[1])).code
    except RewriteError as exc:
        fields: dict[str, Any] = {"detail": exc.detail}
        if exc.code == "RX505":
            fields["region"] = rid
        return fail(exc.code, line=exc.line, col=exc.col, **fields)

    # safety nets: the patch compiles, and reverting it gives back the input exactly
    try:
        compile(new_text, path, "exec")
    except SyntaxError as exc:
        return fail("RX505", region=rid, detail=f"internal error: patched code does not compile ({exc.msg})")
    back = revert_source(new_text, path, only=rid)
    if not back.ok or back.payload.text != text:
        return fail("RX505", region=rid, detail="internal error: the patch would not revert exactly")

    return StageResult(
        status="ok", region_id=rid,
        value=RewriteResult(
            text=new_text,
            hoisted=tuple(s.line for s in sites),
            batched=tuple(s.report(prof.exact_time_per_call, prof.time_per_element, plan.rows_min) for s in sites),
            hoist_skipped=tuple(skipped),
            path_taken="batch" if sites else "scalar",
            profitability=prof.to_json(),
            kind=target.kind,
            module=rel,
        ),
    )
