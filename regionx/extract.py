"""`regionx extract`: a region as one self-contained Python module (the paper's standalone app).

The harness holds, in source order, every module-level statement of the region's file that the
region needs — imports, constants, helper functions and classes — followed transitively through
the module's name-dependency graph (networkx), then ``def region(<inputs>)`` returning the
region's outputs as a tuple in interface order, the constants ``INPUTS``, ``OUTPUTS``, ``DOMAIN``
and ``REQUIRE``, and the portable sampler/runner (regionx.sampling.harness), so that::

    python harness.py --samples 1000 --seed 1 --out data.npz

works with nothing but the harness's own imports (numpy and the standard library, plus whatever
the region itself imports) and gives the same data as ``regionx sample`` with that seed.

- A function region is copied verbatim (decorators that do not resolve are dropped) and called:
  ``def region(a, b, c): return (newton(a, b, c),)``. A method of a module-level class is called
  through its class; a function nested in another is copied out of it if it uses no closure
  variable.
- A loop or block region becomes the body of ``region``, whose parameters are its inputs and
  which returns its outputs.

Name resolution is Python's own (symtable): a name the region or a dependency reads that is
neither bound in it, nor bound by a module-level statement, nor a builtin is unresolvable.
That, and control flow leaving the region (return/break/continue/yield, RX205), make the region
impossible to extract: diagnostic RX301 naming the line.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import itertools
import os
import symtable
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import libcst as cst
import networkx as nx
from libcst.metadata import CodeRange

from regionx import __version__
from regionx import diagnostics as dx
from regionx.analysis.locate import Located, NotFound, RegionLocator
from regionx.closure import Closure, closure_changes, closure_sha256
from regionx.sampling.harness import exec_module, portable_source
from regionx.types import DEFAULT_METRIC, DEFAULT_TOLERANCE, Dependency, ExtractResult, Region, StageResult

# Names the harness itself defines at module level: a source module binding one of them cannot
# be extracted as is (its helpers would see the harness's object instead of their own).
RESERVED = frozenset({
    "region", "INPUTS", "OUTPUTS", "SCRATCH", "DOMAIN", "REQUIRE", "REGION_ID", "REGION_NAME", "SOURCE_PATH",
    "SOURCE_SHA256", "TOLERANCE", "METRIC", "ACCEPT", "REGIONX_VERSION",
})
# Module attributes that exist in every module (a harness has its own).
MODULE_DUNDERS = frozenset({
    "__name__", "__file__", "__doc__", "__spec__", "__loader__", "__package__", "__builtins__",
    "__annotations__", "__dict__", "__cached__",
})
BUILTINS = frozenset(dir(builtins))

_load_counter = itertools.count()


class ExtractError(Exception):
    """Why a region cannot be extracted, at a line (becomes RX301)."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(detail)
        self.line = line
        self.detail = detail


@dataclass
class _Stmt:
    """One module-level statement of the source, with the names it binds and reads."""

    index: int
    node: cst.BaseStatement
    start: int  # first line (a decorator's for a decorated def/class)
    end: int
    code: str
    binds: frozenset[str] = frozenset()
    uses_now: frozenset[str] = frozenset()  # read when the statement runs
    uses_later: frozenset[str] = frozenset()  # read by functions/classes it defines, when called
    touches: frozenset[str] = frozenset()  # variables it mutates in place (X.append(..), X[k] = ..)
    is_import: bool = False
    is_future: bool = False
    is_star: bool = False
    is_main_guard: bool = False


# -- name analysis -----------------------------------------------------------------------------


def _symbols(code: str) -> tuple[set[str], set[str], set[str]]:
    """(binds, reads-now, reads-later) of a module-level code snippet, by Python's own scoping rules."""
    table = symtable.symtable(code, "<regionx>", "exec")
    binds: set[str] = set()
    now: set[str] = set()
    later: set[str] = set()
    for sym in table.get_symbols():
        name = sym.get_name()
        if sym.is_assigned() or sym.is_imported() or sym.is_namespace():
            binds.add(name)
        if sym.is_referenced():
            now.add(name)

    def walk(parent: symtable.SymbolTable) -> None:
        for child in parent.get_children():
            for sym in child.get_symbols():
                if sym.is_global() and sym.is_referenced():
                    later.add(sym.get_name())
            walk(child)

    walk(table)
    return binds, now, later


def _root_name(expr: ast.expr) -> str | None:
    while isinstance(expr, (ast.Attribute, ast.Subscript, ast.Call)):
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _touched(code: str) -> set[str]:
    """Variables a module-level statement mutates in place: ``T.append(1)``, ``T[0] = 1``, ``del T[0]``."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for stmt in tree.body:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Attribute):
            targets = [stmt.value.func]
        elif isinstance(stmt, ast.Assign):
            targets = list(stmt.targets)
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
            targets = [stmt.target]
        elif isinstance(stmt, ast.Delete):
            targets = list(stmt.targets)
        for target in targets:
            if isinstance(target, (ast.Attribute, ast.Subscript)):
                root = _root_name(target)
                if root is not None:
                    names.add(root)
    return names


def _is_main_guard(node: cst.BaseStatement) -> bool:
    if not isinstance(node, cst.If):
        return False
    test = node.test
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    sides = [test.left, test.comparisons[0].comparator]
    names = {s.value for s in sides if isinstance(s, cst.Name)}
    strings = {s.evaluated_value for s in sides if isinstance(s, cst.SimpleString)}
    return names == {"__name__"} and strings == {"__main__"}


def _module_statements(module: cst.Module, positions: Mapping[cst.CSTNode, CodeRange]) -> list[_Stmt]:
    stmts = []
    for index, node in enumerate(module.body):
        start = positions[node].start.line
        for decorator in getattr(node, "decorators", ()):
            start = min(start, positions[decorator].start.line)
        code = module.code_for_node(node)
        stmt = _Stmt(index=index, node=node, start=start, end=positions[node].end.line, code=code)
        try:
            binds, now, later = _symbols(code)
        except SyntaxError:
            binds, now, later = set(), set(), set()
        stmt.binds, stmt.uses_now, stmt.uses_later = frozenset(binds), frozenset(now), frozenset(later)
        stmt.touches = frozenset(_touched(code))
        if isinstance(node, cst.SimpleStatementLine):
            imports = [s for s in node.body if isinstance(s, (cst.Import, cst.ImportFrom))]
            stmt.is_import = bool(imports) and len(imports) == len(node.body)
            for s in imports:
                if isinstance(s, cst.ImportFrom):
                    if isinstance(s.module, cst.Name) and s.module.value == "__future__":
                        stmt.is_future = True
                    if isinstance(s.names, cst.ImportStar):
                        stmt.is_star = True
        stmt.is_main_guard = _is_main_guard(node)
        stmts.append(stmt)
    return stmts


# -- control flow check ---------------------------------------------------------------------------


def _escapes(code: str, first_line: int) -> tuple[int, str] | None:
    """(line, what) of a return/break/continue/yield/await that leaves region code, if any."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return (first_line + (exc.lineno or 1) - 1, f"cannot parse the region: {exc.msg}")

    def visit(node: ast.AST, in_loop: bool) -> tuple[int, str] | None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return None
        line = first_line + getattr(node, "lineno", 1) - 1
        if isinstance(node, ast.Return):
            return line, "'return' leaves the region"
        if isinstance(node, (ast.Break, ast.Continue)) and not in_loop:
            return line, f"'{type(node).__name__.lower()}' leaves the region"
        if isinstance(node, (ast.Yield, ast.YieldFrom, ast.Await)):
            return line, f"'{type(node).__name__.lower()}' makes the region a generator or coroutine"
        for child in ast.iter_child_nodes(node):
            loop_body = isinstance(node, (ast.For, ast.AsyncFor, ast.While)) and child not in getattr(node, "orelse", [])
            found = visit(child, in_loop or loop_body)
            if found:
                return found
        return None

    for stmt in tree.body:
        found = visit(stmt, False)
        if found:
            return found
    return None


# -- building the harness -------------------------------------------------------------------------


def _call_arguments(func: cst.FunctionDef, inputs: Sequence[str], skip_first: bool) -> tuple[list[str], bool]:
    """The call of `func` from ``region(<inputs>)``: argument texts, and whether it is a plain
    positional call with exactly the inputs in order (then the function can be timed directly)."""
    params = func.params
    positional = list(params.posonly_params) + list(params.params)
    if skip_first and positional:
        positional = positional[1:]
    args: list[str] = []
    keywords = False
    plain = True
    posonly = {id(p) for p in params.posonly_params}
    for p in positional:
        name = p.name.value
        if name in inputs:
            if keywords:
                if id(p) in posonly:
                    raise ExtractError(0, f"cannot call {func.name.value}(): positional-only parameter {name!r} follows a skipped one")
                args.append(f"{name}={name}")
            else:
                args.append(name)
        elif p.default is not None:
            keywords = True  # leave the default; later inputs go by keyword
            plain = False
        else:
            args.append("None")  # never read by the function (it is not an input)
            plain = False
    star = params.star_arg
    if isinstance(star, cst.Param):
        if star.name.value in inputs:
            args.append(f"*{star.name.value}")
        plain = False
    for p in params.kwonly_params:
        if p.name.value in inputs:
            args.append(f"{p.name.value}={p.name.value}")
        elif p.default is None:
            args.append(f"{p.name.value}=None")
        plain = False
    if params.star_kwarg is not None:
        if params.star_kwarg.name.value in inputs:
            args.append(f"**{params.star_kwarg.name.value}")
        plain = False
    names = [a for a in args]
    plain = plain and names == list(inputs)
    return args, plain


def _decorator_names(func: cst.FunctionDef) -> set[str]:
    return {d.decorator.value for d in func.decorators if isinstance(d.decorator, cst.Name)}


def _first_use(tree: ast.Module, name: str, lo: int, hi: int) -> int:
    """The first line in [lo, hi] where `name` is read; `lo` if none is found."""
    lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name and lo <= n.lineno <= hi]
    return min(lines) if lines else lo


def _fmt_tuple(names: Sequence[str]) -> str:
    return repr(tuple(names))


def extract_region(text: str, path: str, region: Region) -> StageResult[ExtractResult]:
    """Build the standalone harness module of `region` (of source `text` at `path`).

    Returns an ok StageResult whose value (ExtractResult) has the module's source text as
    ``harness`` (plus its dependencies, dropped decorators, inputs, outputs, closure), or a failed one with
    RX301 (control flow leaves the region, an unresolvable name, a name the harness reserves)
    or RX004 (the source does not parse).
    """
    line0 = region.start_line
    col0 = max(1, region.col)

    def fail(line: int, detail: str) -> StageResult[ExtractResult]:
        diag = dx.make("RX301", path, line or line0, col0 if (line or line0) == line0 else 1, region=region.id, detail=detail)
        return StageResult(status="failed", region_id=region.id, diagnostics=(diag,))

    for reason in region.reasons:
        if reason.code == "RX205":
            return fail(reason.line, reason.message)
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        diag = dx.make("RX004", path, exc.raw_line, exc.raw_column + 1, detail=exc.message)
        return StageResult(status="failed", region_id=region.id, diagnostics=(diag,))
    try:
        built = _build(text, path, region, module)
    except ExtractError as exc:
        return fail(exc.line, exc.detail)
    try:
        compile(built.harness, "<regionx harness>", "exec")
    except SyntaxError as exc:
        return fail(line0, f"the harness does not compile: {exc.msg}")
    return StageResult(status="ok", region_id=region.id, value=built)


# -- the dependency closure, hashed (staleness beyond the region's own lines; regionx.closure) ------


def _dependency(s: _Stmt) -> Dependency:
    """One closure statement as a Dependency: what it binds, its kind, the sha256 of its syntax tree."""
    try:
        digest_text = ast.dump(ast.parse(s.code))  # comments, blank lines and line endings do not count
    except SyntaxError:
        digest_text = s.code.replace("\r\n", "\n")
    digest = hashlib.sha256(digest_text.encode("utf-8")).hexdigest()
    node = s.node
    if isinstance(node, cst.FunctionDef):
        kind = "function"
    elif isinstance(node, cst.ClassDef):
        kind = "class"
    elif s.is_import:
        kind = "import"
    elif s.binds and isinstance(node, cst.SimpleStatementLine) and all(
            isinstance(small, (cst.Assign, cst.AnnAssign, cst.AugAssign)) for small in node.body):
        kind = "constant" if all(n.isupper() for n in s.binds) else "variable"
    elif not s.binds and s.touches:
        kind = "update"
    else:
        kind = "statement"
    # a statement that binds and updates nothing (``from m import *``) is named by its first line
    # (never by its line number, which moves when lines are added above it)
    first = next((line.strip() for line in s.code.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    name = ", ".join(sorted(s.binds)) or ", ".join(sorted(s.touches)) or first[:60]
    return Dependency(name=name, kind=kind, sha256=digest)


def _closure_of(stmts: Sequence[_Stmt], region: Region) -> Closure:
    """The closure of the statements a harness copies, minus the region's own lines (its own
    source_sha256 covers them)."""
    deps = tuple(_dependency(s) for s in stmts
                 if not (region.start_line <= s.start and s.end <= region.end_line))
    return Closure(sha256=closure_sha256(deps), dependencies=deps)


def region_closure(text: str, path: str, region: Region) -> Closure:
    """The hashed dependency closure of `region` in source `text`: the globals, constants, imports
    and same-module helpers its extracted harness copies (transitively). Sampling records it
    (DatasetMeta), training copies it into the manifest, and check/rewrite/train compare against it.
    """
    extracted = extract_region(text, path, region)
    if not extracted.ok:
        problem = "; ".join(d.message for d in extracted.diagnostics) or "the region cannot be extracted"
        return Closure(sha256="", problem=problem)
    return extracted.payload.closure


def source_changes(text: str, path: str, region: Region, source_sha256: str, closure_sha256: str = "",
                   closure: Sequence[Dependency] = ()) -> list[str]:
    """What changed in the code behind `region` since a surrogate was trained on it, one phrase each
    (empty: nothing): its own lines (against `source_sha256`, skipped when "") and its dependency
    closure (against `closure_sha256`/`closure`, skipped when "": artifacts that predate it).
    check (RX602), rewrite (RX503) and train's re-timing of the exact code all judge by this."""
    from regionx.analysis import region_sha256

    changes: list[str] = []
    if source_sha256 and region_sha256(text, region) != source_sha256:
        changes.append("its code changed")
    if closure_sha256:
        current = region_closure(text, path, region)
        if current.sha256 != closure_sha256:
            changes += closure_changes(closure, current) or [
                "a global or helper it depends on changed: " + ", ".join(d.name for d in current.dependencies)]
    return changes


# -- the harness, step by step ---------------------------------------------------------------


def _build(text: str, path: str, region: Region, module: cst.Module) -> ExtractResult:
    """The harness of `region` and what `extract_region` returns with it; ExtractError when the
    region cannot be extracted."""
    locator = RegionLocator(module)
    located = locator.locate(region)
    if isinstance(located, NotFound):
        raise ExtractError(region.start_line, f"no {region.kind} found at lines {region.start_line}-{region.end_line} (source changed?)")
    stmts = _module_statements(module, locator.positions)
    tree = ast.parse(text)
    inputs = list(region.inputs)
    outputs = list(region.outputs)
    for name in inputs:
        if not name.isidentifier():
            raise ExtractError(region.start_line, f"input {name!r} is not a plain variable name")
    module_level = region.kind != "function" and not located.stack
    names = _module_names(stmts, region, module_level)
    if region.kind == "function":
        wrapper = _function_wrapper(region, located, module, stmts, names, inputs, outputs)
    else:
        wrapper = _block_wrapper(located, inputs, outputs)
    roots = _wrapper_free_names(wrapper, region, located) | wrapper.extra_free
    closure = _closure_indices(stmts, names, wrapper.special, roots, tree, region)
    futures = [s for s in stmts if s.is_future]
    body_stmts = [stmts[i] for i in closure if not stmts[i].is_future]
    harness = _harness_text(text, path, region, futures, body_stmts, wrapper, inputs, outputs)
    return ExtractResult(
        harness=harness, region_id=region.id, kind=region.kind, inputs=tuple(inputs), outputs=tuple(outputs),
        dependencies=tuple({"line": s.start, "binds": sorted(s.binds)} for s in futures + body_stmts),
        dropped_decorators=tuple(wrapper.dropped_decorators), closure=_closure_of(body_stmts, region))


@dataclass
class _ModuleNames:
    """Which module-level statements bind, or change in place, each name."""

    binders: dict[str, list[int]]
    touchers: dict[str, list[int]]
    stars: list[int]  # ``from m import *`` statements: any unknown name may come from them
    variables: set[str]  # names bound by a statement other than an import

    def resolve(self, name: str, before: int | None) -> list[int] | None:
        """The statements `name` needs (its binders before statement `before`, if any, and for a
        variable the statements that change it in place); [] for a builtin; None if unresolvable."""
        idx = self.binders.get(name)
        if idx:
            chosen = [i for i in idx if before is None or i < before] or idx
            extra = self.touchers.get(name, []) if name in self.variables else []
            return chosen + [i for i in extra if i not in chosen]
        if name in BUILTINS or name in MODULE_DUNDERS:
            return []
        if self.stars:
            return self.stars
        return None


def _module_names(stmts: Sequence[_Stmt], region: Region, module_level: bool) -> _ModuleNames:
    """The binders of every module-level name. The __main__ guard only runs as a script, and a
    module-level loop/block region is not its own dependency: neither binds anything here."""
    def overlaps(s: _Stmt) -> bool:
        return not (s.end < region.start_line or s.start > region.end_line)

    binders: dict[str, list[int]] = {}
    touchers: dict[str, list[int]] = {}
    for s in stmts:
        if s.is_main_guard or (module_level and overlaps(s)):
            continue
        for name in s.binds:
            binders.setdefault(name, []).append(s.index)
        for name in s.touches:
            touchers.setdefault(name, []).append(s.index)
    stars = [s.index for s in stmts if s.is_star and not s.is_main_guard]
    variables = {name for name, idx in binders.items() if any(not stmts[i].is_import for i in idx)}
    return _ModuleNames(binders, touchers, stars, variables)


@dataclass
class _Wrapper:
    """The harness's ``def region(<inputs>)`` and what it brings along."""

    code: str = ""
    exact: str = "region"  # the callable whose cost a surrogate call replaces (timed by the sampler)
    extra_code: str = ""  # a nested function region, copied out to module level
    extra_free: set[str] = field(default_factory=set)  # the names extra_code reads
    special: dict[str, list[int]] = field(default_factory=dict)  # a name `region` reads -> the statements it means
    dropped_decorators: list[str] = field(default_factory=list)


def _function_wrapper(region: Region, located: Located, module: cst.Module, stmts: list[_Stmt],
                      names: _ModuleNames, inputs: list[str], outputs: list[str]) -> _Wrapper:
    """``region`` calling a function region: ``def region(a, b): return (f(a, b),)``."""
    func = located.statements[0]
    assert isinstance(func, cst.FunctionDef)
    wrapper = _Wrapper()
    # Decorators that do not resolve at module level are dropped (e.g. kernprof's @profile).
    kept = []
    for decorator in func.decorators:
        code = module.code_for_node(decorator.decorator)
        try:
            _b, now, _l = _symbols(f"({code})\n")
        except SyntaxError:
            now = set()
        if all(names.resolve(n, None) is not None for n in now):
            kept.append(decorator)
        else:
            wrapper.dropped_decorators.append(code)
    target, skip_first = _call_target(region, func, located.stack, kept, module, stmts, names, wrapper)
    call_args, plain = _call_arguments(func, inputs, skip_first)
    params = [p.name.value for p in list(func.params.posonly_params) + list(func.params.params)]
    params += [p.name.value for p in func.params.kwonly_params]
    for extra in (func.params.star_arg, func.params.star_kwarg):
        if isinstance(extra, cst.Param):
            params.append(extra.name.value)
    for output in outputs:
        if output != "return" and output not in params:
            raise ExtractError(region.start_line, f"output {output!r} of a function region is neither 'return' nor a parameter")
    call = f"{target}({', '.join(call_args)})"
    if outputs == ["return"]:
        body = f"    return ({call},)\n"
    else:
        results = ", ".join("_rx_result" if o == "return" else o for o in outputs)
        body = f"    _rx_result = {call}\n    return ({results}{',' if len(outputs) == 1 else ''})\n"
    wrapper.code = f"def region({', '.join(inputs)}):\n{body}"
    if plain and outputs == ["return"]:
        wrapper.exact = target
    return wrapper


def _call_target(region: Region, func: cst.FunctionDef, parents: Sequence[cst.CSTNode], kept: list[cst.Decorator],
                 module: cst.Module, stmts: list[_Stmt], names: _ModuleNames, wrapper: _Wrapper) -> tuple[str, bool]:
    """(what ``region`` calls, whether the first parameter is skipped): a module-level function by
    name, a method as ``Class.method`` (a classmethod's ``cls`` skipped), a nested function by name
    after copying it out to module level (`wrapper.extra_code`). A function keeps only its `kept`
    decorators."""
    fname = func.name.value
    if any(isinstance(p, cst.FunctionDef) for p in parents):
        if any(isinstance(p, cst.ClassDef) for p in parents):
            raise ExtractError(region.start_line, f"{region.qualname} is a method of a class defined inside a function")
        node = func.with_changes(decorators=kept, leading_lines=())
        wrapper.extra_code = cst.Module(body=[node]).code
        try:
            _b, now, later = _symbols(wrapper.extra_code)
        except SyntaxError as exc:
            raise ExtractError(region.start_line, f"cannot copy the nested function: {exc.msg}") from None
        wrapper.extra_free = set(now) | set(later)
        wrapper.extra_free.discard(fname)
        # The nested function is re-defined at module level; its own name must not clash.
        if fname in names.binders:
            raise ExtractError(region.start_line, f"nested function {fname!r} has the name of a module-level object")
        return fname, False
    if parents:
        if len(parents) != 1 or not isinstance(parents[0], cst.ClassDef):
            raise ExtractError(region.start_line, f"cannot reach {region.qualname} from module level")
        return f"{parents[0].name.value}.{fname}", "classmethod" in _decorator_names(func)
    index = next((s.index for s in stmts if s.node is func), None)
    if index is None:
        raise ExtractError(region.start_line, f"cannot find the definition of {fname}")
    wrapper.special[fname] = [index]
    if wrapper.dropped_decorators:
        stmt = stmts[index]
        stmt.code = module.code_for_node(func.with_changes(decorators=kept))
        binds, now, later = _symbols(stmt.code)
        stmt.binds, stmt.uses_now, stmt.uses_later = frozenset(binds), frozenset(now), frozenset(later)
    return fname, False


def _block_wrapper(located: Located, inputs: list[str], outputs: list[str]) -> _Wrapper:
    """``region`` holding a loop or block region's statements, returning its outputs."""
    nodes = list(located.statements)
    first = nodes[0]
    nodes[0] = first.with_changes(leading_lines=())
    region_code = cst.Module(body=nodes).code  # type: ignore[arg-type]  # statements of one body
    escape = _escapes(region_code, located.line)
    if escape is not None:
        raise ExtractError(*escape)
    ret = ", ".join(outputs)
    template = cst.parse_module(
        f"def region({', '.join(inputs)}):\n    pass\n    return ({ret}{',' if len(outputs) == 1 else ''})\n"
    )
    func_t = template.body[0]
    assert isinstance(func_t, cst.FunctionDef) and isinstance(func_t.body, cst.IndentedBlock)
    ret_stmt = func_t.body.body[1]
    func_t = func_t.with_changes(body=func_t.body.with_changes(body=[*nodes, ret_stmt]))
    return _Wrapper(code=template.with_changes(body=[func_t]).code)


def _wrapper_free_names(wrapper: _Wrapper, region: Region, located: Located) -> set[str]:
    """The module-level names ``region`` reads (a nested function copied out defines its own)."""
    try:
        _b, _now, wrapper_free = _symbols(wrapper.code)
    except SyntaxError as exc:
        raise ExtractError(region.start_line, f"the region cannot run inside a function: {exc.msg}") from None
    wrapper_free = set(wrapper_free)
    if wrapper.extra_code and region.kind == "function":
        wrapper_free.discard(located.statements[0].name.value)  # type: ignore[attr-defined]  # defined by extra_code
    return wrapper_free


def _closure_indices(stmts: list[_Stmt], names: _ModuleNames, special: dict[str, list[int]], roots: set[str],
                     tree: ast.Module, region: Region) -> list[int]:
    """The module-level statements the region needs, transitively (a networkx graph "region" ->
    statements -> statements they need ...), in source order. A name no statement binds, or a
    statement binding a name the harness reserves, is an ExtractError."""
    graph = nx.DiGraph()
    graph.add_node("region")
    unresolved: dict[object, set[str]] = {}

    def add_edges(node: object, wanted: set[str], before: int | None) -> list[int]:
        new = []
        for name in sorted(wanted):
            targets = special.get(name) if node == "region" else None
            if targets is None:
                targets = names.resolve(name, before)
            if targets is None:
                unresolved.setdefault(node, set()).add(name)
                continue
            for t in targets:
                if not graph.has_node(t):
                    new.append(t)
                graph.add_edge(node, t)
        return new

    queue = add_edges("region", roots, None)
    seen: set[int] = set()
    while queue:
        i = queue.pop()
        if i in seen:
            continue
        seen.add(i)
        s = stmts[i]
        queue.extend(add_edges(i, set(s.uses_now), i))
        queue.extend(add_edges(i, set(s.uses_later), None))
    closure = sorted(n for n in nx.descendants(graph, "region") if isinstance(n, int))

    if "region" in unresolved:
        name = sorted(unresolved["region"])[0]
        line = _first_use(tree, name, region.start_line, region.end_line)
        raise ExtractError(line, f"{name!r} is neither local, module-level nor builtin")
    for i in closure:
        if i in unresolved:
            name = sorted(unresolved[i])[0]
            line = _first_use(tree, name, stmts[i].start, stmts[i].end)
            raise ExtractError(line, f"{name!r}, used by a dependency, is neither local, module-level nor builtin")
    for i in closure:
        clash = sorted(n for n in stmts[i].binds if n in RESERVED or n.startswith(("_rx_", "_RX_")))
        if clash:
            raise ExtractError(stmts[i].start, f"the module defines {clash[0]!r}, a name the harness reserves")
    return closure


def _harness_text(text: str, path: str, region: Region, futures: Sequence[_Stmt], body_stmts: Sequence[_Stmt],
                  wrapper: _Wrapper, inputs: list[str], outputs: list[str]) -> str:
    """The harness module: docstring, ``__future__`` imports, the statements the region needs,
    ``region``, the constants describing it, and the portable sampler and runner."""
    pragma = region.pragma
    domain = {d.name: d.text for d in pragma.domains if d.name in inputs} if pragma is not None else {}
    specs = tuple((d.name, d.dist, tuple(d.args), tuple(d.shape)) for d in (pragma.domains if pragma else ()) if d.name in inputs)
    try:
        from regionx.analysis import region_sha256

        sha = region_sha256(text, region)
    except ImportError:  # pragma: no cover - the analysis package is part of regionx
        sha = ""
    tolerance = pragma.tolerance if pragma is not None and pragma.tolerance is not None else DEFAULT_TOLERANCE
    metric = pragma.metric if pragma is not None and pragma.metric is not None else DEFAULT_METRIC

    out: list[str] = []
    out.append(
        f'"""regionx harness: region {region.id!r} ({region.kind}) of {os.path.basename(path)}, '
        f"lines {region.start_line}-{region.end_line}.\n\n"
        f"Generated by regionx {__version__} from {path}. Self-contained: the region's code, the module-level\n"
        "statements it needs (copied verbatim, in source order), and a sampler. Run it as\n\n"
        "    python harness.py --samples 1000 --seed 1 --out data.npz\n\n"
        'to write input/output pairs drawn from DOMAIN (rejecting draws that fail REQUIRE).\n"""\n'
    )
    for s in futures:
        out.append(s.code.lstrip("\n"))
    out.append("\n# --- copied from the source: what the region needs -------------------------------------\n")
    for s in body_stmts:
        out.append(s.code)
    if wrapper.extra_code:
        out.append("\n\n# --- the nested function of the region, copied out of its enclosing function ---------\n")
        out.append(wrapper.extra_code)
    out.append("\n\n# --- the region -----------------------------------------------------------------------\n\n")
    out.append(wrapper.code)
    out.append("\n\n")
    out.append(f"INPUTS = {_fmt_tuple(inputs)}\n")
    out.append(f"OUTPUTS = {_fmt_tuple(outputs)}\n")
    out.append(f"SCRATCH = {_fmt_tuple(list(region.scratch))}  # changed in place, seen by nobody after\n")
    out.append(f"DOMAIN = {domain!r}\n")
    out.append(f"REQUIRE = {pragma.require if pragma is not None else None!r}\n")
    out.append(f"REGION_ID = {region.id!r}\n")
    out.append(f"REGION_NAME = {region.name!r}\n")
    out.append(f"SOURCE_PATH = {path!r}\n")
    out.append(f"SOURCE_SHA256 = {sha!r}\n")
    out.append(f"TOLERANCE = {tolerance!r}\n")
    out.append(f"METRIC = {metric!r}\n")
    out.append(f"ACCEPT = {pragma.accept if pragma is not None else None!r}\n")
    out.append(f"REGIONX_VERSION = {__version__!r}\n")
    out.append(f"_RX_SPECS = {specs!r}\n")
    out.append("# The callable whose cost a surrogate call replaces (timed by the sampler).\n")
    out.append(f"_RX_EXACT = {wrapper.exact}\n")
    out.append("\n\n# --- regionx sampler and runner (regionx.sampling; shared, so data match `regionx sample`) ---\n\n")
    out.append(portable_source())
    out.append('\n\nif __name__ == "__main__":\n    import sys as _rx_sys\n\n    _rx_sys.exit(_rx_main(globals()))\n')
    return "".join(out)


def write_harness(source: str, path: str) -> str:
    """Write a harness module atomically (temporary file + rename); return the absolute path."""
    from regionx.fsutil import atomic_write_text

    atomic_write_text(path, source)
    return os.path.abspath(path)


def load_harness(path_or_source: str, sys_path: Sequence[str] = ()) -> types.ModuleType:
    """Import a harness (a file path, or the module's source text) as a fresh module and return it.

    Each call gives a new module under a unique name (``regionx_harness_<sha>_<n>``), so two
    harnesses never share state. `sys_path` entries are added to sys.path first (e.g. the source
    file's directory, for a region that imports sibling modules); a harness loaded from a file
    gets that file's directory.
    """
    if "\n" not in path_or_source and os.path.isfile(path_or_source):
        from regionx.analysis.source import read_source

        text, problems = read_source(path_or_source)
        if text is None:
            raise OSError(problems[0].message)
        source = text
        filename = os.path.abspath(path_or_source)
        sys_path = (*sys_path, os.path.dirname(filename))
    else:
        source = path_or_source
        filename = None
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    name = f"regionx_harness_{digest}_{next(_load_counter)}"
    return exec_module(source, name, filename, sys_path)
