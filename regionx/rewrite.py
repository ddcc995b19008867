"""Rewrite a region to call its trained surrogate, keeping the exact code as a guarded fallback.

A libcst transformer splices generated code into the module; everything outside the region is
left byte-for-byte as it was. What the rewrite changes is bracketed by comment markers

    # regionx-rewritten: <region-id> begin          (the region itself)
    # regionx-rewritten: <region-id> loader begin   (module-level loading of the surrogate)
    # regionx-rewritten: <region-id> batch begin    (a map loop hoisted into one batched predict)
    ... matching '... end' lines

(not '# regionx:' lines, so the pragma parser never mistakes them for pragmas; a region's pragma
lines stay directly above the original code they annotate, inside the marked span)

and the original code is kept inside, verbatim apart from one thing per kind (a function's name,
or one level of block nesting under ``else:``), so that `revert_source` restores the original
text exactly.

Shapes of the patched code:

* function region: ``def _regionx_exact_<name>`` (the original def, renamed) followed by a
  dispatcher ``def <name>`` with the same signature: inside the trained domain box (and the
  manifest's ``accept`` predicate) the surrogate answers, otherwise the exact function does.
* loop or block region: ``if (_regionx_y := <try>(inputs)) is not None: <outputs> = ...``
  ``else: <original code>``.
* batch hoisting (function regions): a ``for`` loop that maps the function over rows, proven free
  of loop-carried dependences by a def-use check over its body, becomes, in the column-wise form
  (arguments ``S[i]`` / zip, enumerate or for elements / loop-invariant values; ``out[i] = f(...)``
  or ``res.append(f(...))``)
  ``if (b := <batch>(exact, kind, rows, columns, out=...)) is not None: out[start:stop] = b[0];
  <loop target> = b[1] else: <original loop>`` — numpy over whole columns, one slice store; the
  helper answers None (run the original loop) for generators, short containers, no rows ...;
  any other map loop gets the general form
  ``if <sequences can be traversed twice>: <one batched predict, then the same loop storing the
  precomputed results> else: <original loop>``.

The patched program needs numpy only; it loads ``<module_name>.py`` from its own directory.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider, ScopeProvider

from regionx.diagnostics import Diagnostic, make
from regionx.fsutil import atomic_copy, atomic_write_text
from regionx.types import Manifest, Region, StageResult, TopologyResult

__all__ = [
    "MARKER_RE",
    "Profitability",
    "profitability",
    "rewritten_regions",
    "rewrite_source",
    "revert_source",
    "rewrite_file",
    "revert_file",
]

# `# regionx-rewritten: <id> [loader|batch] begin|end`
MARKER_RE = re.compile(
    r"^#\s*regionx-rewritten:\s*(?P<id>\S+)(?:\s+(?P<kind>loader|batch))?\s+(?P<edge>begin|end)\b"
)
_PRAGMA_RE = re.compile(r"^#\s*regionx:")

# Builtins that are pure for numeric arguments: allowed inside a hoisted loop's statement.
_PURE_BUILTINS = frozenset({"abs", "float", "int", "len", "min", "max", "round", "complex", "bool", "pow"})
_EXACT_PREFIX = "_regionx_exact_"
# Rows per predict() call of a hoisted loop: about 2**19 / (the largest fan_in * fan_out of a layer),
# within [256, 4096]. Big enough to amortise the call; small enough that the hidden activations stay
# in cache and OpenBLAS does not wake its threads for a tiny GEMM (measured on the newton fixture,
# n=10240: 32x32 relu 169 ns/row in chunks of 512 vs 340-370 in chunks of 2048 or one call;
# 16 relu 72 ns/row in chunks of 2048-4096 vs 81 in chunks of 512).
_CHUNK_WORK = 2 ** 19
_PREFIX = "_regionx_"


class _RewriteError(Exception):
    """A region that cannot be rewritten (becomes RX505) or an artifact problem (RX503)."""

    def __init__(self, detail: str, code: str = "RX505", line: int = 1, col: int = 1) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.line = line
        self.col = col


# --------------------------------------------------------------------------------------------
# markers


def _marker_id(region_id: str) -> str:
    """A region id as written in a marker (no whitespace, so the marker parses back)."""
    return re.sub(r"\s+", "_", region_id) or "region"


def _marker_line(region_id: str, kind: str | None, edge: str) -> cst.EmptyLine:
    kind_text = f" {kind}" if kind else ""
    return cst.EmptyLine(
        indent=True, comment=cst.Comment(f"# regionx-rewritten: {_marker_id(region_id)}{kind_text} {edge}")
    )


def _lead(stmt: cst.CSTNode) -> tuple[cst.EmptyLine, ...]:
    """The comment/blank lines owned by a statement, above it."""
    return tuple(getattr(stmt, "leading_lines", ()))


def _split_pragma(lines: Sequence[cst.EmptyLine]) -> tuple[tuple[cst.EmptyLine, ...], tuple[cst.EmptyLine, ...]]:
    """(lines above the pragma, the pragma run directly above the statement)."""
    k = len(lines)
    while k > 0:
        comment = lines[k - 1].comment
        if comment is None or not _PRAGMA_RE.match(comment.value):
            break
        k -= 1
    return tuple(lines[:k]), tuple(lines[k:])


def _parse_marker(line: cst.EmptyLine) -> tuple[str, str | None, str] | None:
    if line.comment is None:
        return None
    m = MARKER_RE.match(line.comment.value)
    if m is None:
        return None
    return m.group("id"), m.group("kind"), m.group("edge")


def rewritten_regions(text: str) -> list[str]:
    """Region ids (as written in markers) that `text` holds a rewrite of, in file order."""
    seen: list[str] = []
    for raw in text.splitlines():
        m = MARKER_RE.match(raw.strip())
        if m and m.group("edge") == "begin" and m.group("kind") is None and m.group("id") not in seen:
            seen.append(m.group("id"))
    return seen


def _has_markers(text: str) -> bool:
    return any(MARKER_RE.match(raw.strip()) for raw in text.splitlines())


# --------------------------------------------------------------------------------------------
# profitability


@dataclass(frozen=True)
class Profitability:
    """Whether each surrogate path beats the exact code, from the manifest's measured timings."""

    exact_time_per_call: float
    time_per_call: float
    time_per_element: float

    @property
    def scalar(self) -> bool:
        return 0 < self.time_per_call < self.exact_time_per_call

    @property
    def batch(self) -> bool:
        return 0 < self.time_per_element < self.exact_time_per_call

    def describe(self, batch_used: bool) -> str:
        """The numbers, as the RX502 message shows them."""
        parts = [
            f"exact code {_fmt_time(self.exact_time_per_call)}/call",
            f"surrogate {_fmt_time(self.time_per_call)}/call",
            f"batched {_fmt_time(self.time_per_element)}/element"
            + ("" if batch_used else " (no loop to batch)"),
        ]
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "exact_time_per_call": self.exact_time_per_call,
            "time_per_call": self.time_per_call,
            "time_per_element": self.time_per_element,
            "scalar_profitable": self.scalar,
            "batch_profitable": self.batch,
        }


def profitability(topology: TopologyResult) -> Profitability:
    """Profitability of the chosen topology: scalar if time_per_call < exact, batch if time_per_element < exact
    (the effective times when it was measured with an accept predicate)."""
    # with an accept predicate: the effective times (check + rejected rows' exact runs included)
    return Profitability(
        exact_time_per_call=float(topology.exact_time_per_call),
        time_per_call=float(topology.program_time_per_call),
        time_per_element=float(topology.program_time_per_element),
    )


def _fmt_time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3g} us"
    return f"{seconds * 1e9:.3g} ns"


# --------------------------------------------------------------------------------------------
# code generation helpers


class _NormalizeIndent(cst.CSTTransformer):
    """Generated blocks use the module's own indentation unit (tabs stay tabs)."""

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        return updated_node.with_changes(indent=None)


def _parse_stmts(code: str) -> list[cst.BaseStatement]:
    module = cst.parse_module(code)
    return [s.visit(_NormalizeIndent()) for s in module.body]  # type: ignore[misc]


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _safe(name: str) -> str:
    text = "".join(ch if (ch.isalnum() or ch == "_") else "_" for ch in name).strip("_")
    return text or "region"


def _accept_expr(accept: str, is_function: bool) -> str:
    """The accept predicate as a Python expression; a function's output 'return' is spelled `result`."""
    text = accept.strip()
    if is_function:
        text = re.sub(r"\breturn\b", "result", text)
    try:
        cst.parse_expression(text)
    except cst.ParserSyntaxError as exc:
        raise _RewriteError(f"accept predicate {accept!r} is not a Python expression ({exc.message})", "RX503") from exc
    return text


def _accept_vectorized(manifest: Manifest, is_function: bool) -> str | None:
    """The accept predicate as one elementwise numpy expression (regionx.accept.vectorize), or None
    when it has none or it cannot be vectorised (then hoisted loops check it row by row)."""
    if not manifest.accept:
        return None
    from regionx.accept import vectorize

    try:
        return vectorize(_accept_expr(manifest.accept, is_function), f"{_PREFIX}np")
    except ValueError:
        return None


@dataclass
class _Names:
    """Names of the generated helpers for one region."""

    mod: str  # the loaded surrogate module object
    loader: str
    accept: str
    try_: str
    map_: str
    batchable: str
    batch: str

    @classmethod
    def of(cls, region: Region) -> "_Names":
        base = _PREFIX + _safe(region.display_name)
        return cls(
            mod=base,
            loader=f"{_PREFIX}load_{_safe(region.display_name)}",
            accept=f"{base}_accept",
            try_=f"{base}_try",
            map_=f"{base}_map",
            batchable=f"{base}_batchable",
            batch=f"{base}_batch",
        )


# --------------------------------------------------------------------------------------------
# locating the region


@dataclass
class _Target:
    """What to replace: statements of one body (by identity), and what kind of replacement."""

    kind: str  # function | loop | block
    stmts: list[cst.BaseStatement]
    line: int
    col: int


@dataclass
class _Hoist:
    """A map loop over the replaced function, proven dependence-free."""

    loop: cst.For
    call: cst.Call
    line: int
    seqs: list[str]  # sequence names the loop iterates over (checked at run time)
    fast: "_Fast | None" = None  # the column-wise form, when the loop has one


@dataclass(frozen=True)
class _Fast:
    """A map loop simple enough for the column-wise batch: every call argument is a sequence read at
    the row (``S[i]``, or an element of what zip/enumerate/for walks) or a loop-invariant value, and
    the result goes to ``out[i] = f(...)`` or ``res.append(f(...))``."""

    kind: str  # "range" | "zip" | "enumerate" | "for"
    rows: str  # code: the loop's range(...) call, or a tuple of the sequences the loop walks
    columns: list[str]  # code, per call argument: the sequence it reads row by row, or the invariant value
    fixed: list[int]  # positions of loop-invariant arguments
    out: str  # the container stored into / appended to (a name)
    append: bool
    store_slice: str  # code of the slice `out[...]` covers, for index stores ("" for append)
    target: str  # code of the loop target (assigned its final value after the batch)


@dataclass
class _Plan:
    target: _Target
    hoists: list[_Hoist] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    loader_before: cst.BaseStatement | None = None  # insert the loader before this module statement
    loader_at_end: bool = False


def _body_of(node: cst.CSTNode) -> Sequence[cst.BaseStatement] | None:
    if isinstance(node, cst.Module):
        return node.body
    if isinstance(node, cst.IndentedBlock):
        return node.body
    return None


class _Locator(cst.CSTVisitor):
    """Collects statements with positions and parents so the region can be found by line."""

    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider)

    def __init__(self) -> None:
        self.functions: list[cst.FunctionDef] = []
        self.loops: list[cst.CSTNode] = []
        self.statements: list[cst.BaseStatement] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)

    def visit_For(self, node: cst.For) -> None:
        self.loops.append(node)

    def visit_While(self, node: cst.While) -> None:
        self.loops.append(node)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self.statements.append(node)  # type: ignore[arg-type]
        return super().on_visit(node)


def _locate(wrapper: MetadataWrapper, region: Region) -> _Target:
    loc = _Locator()
    wrapper.visit(loc)
    pos = wrapper.resolve(PositionProvider)
    parents = wrapper.resolve(ParentNodeProvider)

    def start(node: cst.CSTNode) -> int:
        return pos[node].start.line

    def first_line(node: cst.CSTNode) -> int:
        if isinstance(node, cst.FunctionDef) and node.decorators:
            return min(start(d) for d in node.decorators)
        return start(node)

    if region.kind == "function":
        short = region.qualname.split(".")[-1] if region.qualname else region.name
        cands = [f for f in loc.functions if f.name.value == short]
        exact = [f for f in cands if first_line(f) == region.start_line or start(f) == region.start_line]
        chosen = exact or (cands if len(cands) == 1 else [])
        if not chosen:
            raise _RewriteError(f"no function {short!r} at line {region.start_line}", line=region.start_line)
        fn = chosen[0]
        parent = parents[fn]
        if isinstance(parent, cst.IndentedBlock) and isinstance(parents.get(parent), cst.ClassDef):
            raise _RewriteError("methods are not supported yet; rewrite a module-level or nested function",
                                line=start(fn))
        if fn.asynchronous is not None:
            raise _RewriteError("async functions cannot be replaced", line=start(fn))
        return _Target("function", [fn], start(fn), pos[fn].start.column + 1)

    if region.kind == "loop":
        loops: list[cst.CSTNode] = [n for n in loc.loops if start(n) == region.start_line]
        if not loops:
            loops = sorted((n for n in loc.loops if region.start_line <= start(n) <= region.end_line), key=start)
        if not loops:
            raise _RewriteError(f"no loop at line {region.start_line}", line=region.start_line)
        node = loops[0]
        return _Target("loop", [node], start(node), pos[node].start.column + 1)  # type: ignore[list-item]

    # block: consecutive statements of one body inside [start_line, end_line]
    inside = [
        s for s in loc.statements
        if pos[s].start.line >= region.start_line and pos[s].end.line <= region.end_line
    ]
    if not inside:
        raise _RewriteError(f"no statements between lines {region.start_line} and {region.end_line}",
                            line=region.start_line)
    # the outermost ones: those whose parent body is not itself inside the range
    top = [s for s in inside if not any(_contains(pos, o, s) for o in inside if o is not s)]
    bodies = {id(parents[s]) for s in top}
    if len(bodies) != 1:
        raise _RewriteError("block statements are not in one block", line=region.start_line)
    body = _body_of(parents[top[0]])
    assert body is not None
    idx = [i for i, s in enumerate(body) if any(s is t for t in top)]
    if idx != list(range(idx[0], idx[-1] + 1)):
        raise _RewriteError("block statements are not consecutive", line=region.start_line)
    return _Target("block", list(body[idx[0]: idx[-1] + 1]), start(top[0]), pos[top[0]].start.column + 1)


def _contains(pos: Any, outer: cst.CSTNode, inner: cst.CSTNode) -> bool:
    a, b = pos[outer], pos[inner]
    return (a.start.line, a.start.column) <= (b.start.line, b.start.column) and (b.end.line, b.end.column) <= (
        a.end.line, a.end.column)


# --------------------------------------------------------------------------------------------
# batch hoisting: finding map loops and proving them dependence-free


class _NameReads(cst.CSTVisitor):
    """Variable names an expression reads (attribute names and keyword names excluded), and whether it
    contains anything that is not a plain, pure expression (calls other than pure builtins, lambdas,
    comprehensions, walrus, await/yield)."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.impure: list[str] = []

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False

    def visit_Call(self, node: cst.Call) -> bool:
        if not (isinstance(node.func, cst.Name) and node.func.value in _PURE_BUILTINS):
            self.impure.append(f"call of {_code(node.func)}")
        for arg in node.args:
            arg.visit(self)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        self.impure.append("lambda")
        return False

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self.impure.append("assignment expression")

    def visit_Await(self, node: cst.Await) -> None:
        self.impure.append("await")

    def visit_Yield(self, node: cst.Yield) -> None:
        self.impure.append("yield")

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)):
            self.impure.append("comprehension")
            return False
        return super().on_visit(node)


def _reads(node: cst.CSTNode) -> _NameReads:
    v = _NameReads()
    node.visit(v)
    return v


def _base_name(expr: cst.BaseExpression) -> str | None:
    """`out` for out[i], out.x[i], ... (the container a store mutates)."""
    while isinstance(expr, (cst.Subscript, cst.Attribute)):
        expr = expr.value
    return expr.value if isinstance(expr, cst.Name) else None


def _target_names(target: cst.BaseExpression) -> list[str] | None:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        out: list[str] = []
        for el in target.elements:
            if isinstance(el, cst.StarredElement):
                return None
            sub = _target_names(el.value)
            if sub is None:
                return None
            out.extend(sub)
        return out
    return None


def _iter_sequences(it: cst.BaseExpression) -> tuple[list[str], list[str]] | None:
    """For a supported loop iterable: (sequence names to check at run time, all names it reads)."""
    if isinstance(it, cst.Name):
        return [it.value], [it.value]
    if isinstance(it, cst.Call) and isinstance(it.func, cst.Name) and all(
            a.keyword is None and not a.star for a in it.args):
        fname = it.func.value
        if fname == "range":
            r = _reads(cst.Tuple([cst.Element(a.value) for a in it.args])) if it.args else _NameReads()
            if r.impure or not it.args:
                return None
            return [], sorted(r.names)
        if fname == "zip" and all(isinstance(a.value, cst.Name) for a in it.args):
            names = [a.value.value for a in it.args]  # type: ignore[attr-defined]
            return names, names
        if fname == "enumerate" and len(it.args) == 1:
            inner = _iter_sequences(it.args[0].value)
            if inner is None:
                return None
            return inner[0], inner[1]
    return None


def _check_map_loop(loop: cst.For, call: cst.Call, fname: str, region: Region) -> tuple[list[str] | None, str]:
    """Prove by def-use over the loop body that `loop` maps `fname` over independent rows.

    Returns (sequence names to guard, "") when it does, else (None, reason).
    """
    if loop.asynchronous is not None:
        return None, "async for"
    if loop.orelse is not None:
        return None, "loop has an else clause"
    targets = _target_names(loop.target)
    if targets is None:
        return None, "loop target is not a name or tuple of names"
    seq = _iter_sequences(loop.iter)
    if seq is None:
        return None, "iterable is not range(...), zip(names...), enumerate(...) or a name"
    seqs, iter_reads = seq
    body = loop.body
    if not isinstance(body, cst.IndentedBlock) or len(body.body) != 1:
        return None, "loop body is not a single statement"
    line = body.body[0]
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        return None, "loop body is not a single simple statement"
    stmt = line.body[0]

    # where the result goes: out[i] = ..., out[i] += ..., res.append(...)
    mutated: set[str] = set()
    value: cst.BaseExpression
    if isinstance(stmt, (cst.Assign, cst.AugAssign)):
        store_parts: list[cst.CSTNode] = [t.target for t in stmt.targets] if isinstance(stmt, cst.Assign) else [stmt.target]
        for target in store_parts:
            if not isinstance(target, (cst.Subscript, cst.Attribute)):
                return None, (f"assigns the variable {_code(target)} (a value carried between iterations)"
                              if isinstance(stmt, cst.Assign) else f"accumulates into {_code(target)} (a loop-carried dependence)")
            base = _base_name(target.value)
            if base is None:
                return None, "store target is not rooted at a name"
            mutated.add(base)
        value = stmt.value
    elif (isinstance(stmt, cst.Expr) and isinstance(stmt.value, cst.Call)
          and isinstance(stmt.value.func, cst.Attribute) and stmt.value.func.attr.value == "append"
          and isinstance(stmt.value.func.value, cst.Name) and len(stmt.value.args) == 1
          and stmt.value.args[0].keyword is None and not stmt.value.args[0].star):
        mutated.add(stmt.value.func.value.value)
        value = stmt.value.args[0].value
        store_parts = []
    else:
        return None, "statement is not 'x[i] = f(...)', 'x[i] += f(...)' or 'x.append(f(...))'"

    # exactly one call of the function, evaluated unconditionally once per iteration
    finder = _CallFinder(fname)
    value.visit(finder)
    for part in store_parts:
        part.visit(finder)
    if len(finder.calls) != 1 or finder.calls[0][0] is not call:
        return None, f"{fname}() is not called exactly once per iteration"
    if finder.calls[0][1]:
        return None, f"{fname}() is called conditionally"
    if any(a.keyword is not None or a.star for a in call.args):
        return None, "call uses keyword or starred arguments"

    # def-use: what the call reads must not be written by the body, nor anything the function reads
    arg_reads = _reads(cst.Tuple([cst.Element(a.value) for a in call.args])) if call.args else _NameReads()
    if arg_reads.impure:
        return None, f"arguments are not pure expressions ({arg_reads.impure[0]})"
    rest = _reads(_replace_call(value, call))
    for part in store_parts:
        sub = _reads(part)
        rest.names |= sub.names
        rest.impure += sub.impure
    if rest.impure:
        return None, f"statement has side effects ({rest.impure[0]})"
    if fname in mutated:
        return None, f"loop rebinds {fname}"
    flow = arg_reads.names & mutated
    if flow:
        return None, f"loop-carried dependence: the arguments read {sorted(flow)}, which the loop writes"
    carried = set(iter_reads) & mutated
    if carried:
        return None, f"the loop writes the sequence it iterates over ({sorted(carried)})"
    shared = set(region.globals) & mutated
    if shared:
        return None, f"the loop writes {sorted(shared)}, which {fname}() reads"
    if set(targets) & mutated:
        return None, "the loop mutates its own loop variable"
    return seqs, ""


class _CallFinder(cst.CSTVisitor):
    """Calls of `fname` and whether each sits under conditional evaluation."""

    def __init__(self, fname: str) -> None:
        self.fname = fname
        self.calls: list[tuple[cst.Call, bool]] = []
        self._cond = 0

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.IfExp, cst.BooleanOperation, cst.Lambda, cst.ListComp, cst.SetComp,
                             cst.DictComp, cst.GeneratorExp)):
            self._cond += 1
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == self.fname:
            self.calls.append((node, self._cond > 0))
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, (cst.IfExp, cst.BooleanOperation, cst.Lambda, cst.ListComp, cst.SetComp,
                                      cst.DictComp, cst.GeneratorExp)):
            self._cond -= 1


class _ReplaceNode(cst.CSTTransformer):
    def __init__(self, target: cst.CSTNode, replacement: cst.BaseExpression) -> None:
        self.target = target
        self.replacement = replacement

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        if original_node is self.target:
            return self.replacement
        return updated_node


def _replace_call(node: cst.CSTNode, call: cst.Call, replacement: str = "None") -> cst.CSTNode:
    out = node.visit(_ReplaceNode(call, cst.parse_expression(replacement)))
    assert isinstance(out, cst.CSTNode)
    return out


def _fast_form(loop: cst.For, call: cst.Call) -> _Fast | None:
    """The column-wise form of a map loop already proven dependence-free, or None (general path).

    Recognised: ``for i in range(stop)`` / ``range(start, stop)`` with arguments ``S[i]``;
    ``for i, x in enumerate(S)``; ``for x, y in zip(S, T)``; ``for x in S``; any argument that reads
    no loop variable is loop-invariant. The store is ``out[i] = f(...)`` (i the row index) or
    ``res.append(f(...))``, with `out`/`res` a plain name.
    """
    it = loop.iter
    target = loop.target
    index: str | None = None  # the variable holding the row index
    elements: dict[str, str] = {}  # loop variable -> the sequence it walks
    walked: list[str] = []
    if isinstance(it, cst.Call) and isinstance(it.func, cst.Name):
        fname = it.func.value
        args = [a.value for a in it.args]
        if fname == "range" and len(args) in (1, 2) and isinstance(target, cst.Name):
            kind, index = "range", target.value
        elif (fname == "enumerate" and len(args) == 1 and isinstance(args[0], cst.Name)
              and isinstance(target, cst.Tuple) and len(target.elements) == 2
              and all(isinstance(e.value, cst.Name) for e in target.elements)):
            kind = "enumerate"
            index = target.elements[0].value.value  # type: ignore[attr-defined]
            elements[target.elements[1].value.value] = args[0].value  # type: ignore[attr-defined]
            walked = [args[0].value]
        elif (fname == "zip" and args and all(isinstance(a, cst.Name) for a in args)
              and isinstance(target, cst.Tuple) and len(target.elements) == len(args)
              and all(isinstance(e.value, cst.Name) for e in target.elements)):
            kind = "zip"
            walked = [a.value for a in args]  # type: ignore[attr-defined]
            for e, seq in zip(target.elements, walked):
                elements[e.value.value] = seq  # type: ignore[attr-defined]
        else:
            return None
    elif isinstance(it, cst.Name) and isinstance(target, cst.Name):
        kind, walked = "for", [it.value]
        elements[target.value] = it.value
    else:
        return None
    loop_vars = set(elements) | ({index} if index else set())
    if len(loop_vars) != len(elements) + (1 if index else 0):
        return None  # a name bound twice by the target

    def row_index(node: cst.BaseExpression) -> bool:
        return index is not None and isinstance(node, cst.Name) and node.value == index

    def indexed_name(node: cst.BaseExpression) -> str | None:
        """`S` for `S[i]` (i the row index, S a name that is not a loop variable)."""
        if (isinstance(node, cst.Subscript) and isinstance(node.value, cst.Name) and len(node.slice) == 1
                and isinstance(node.slice[0].slice, cst.Index) and node.slice[0].slice.star is None
                and row_index(node.slice[0].slice.value) and node.value.value not in loop_vars):
            return node.value.value
        return None

    columns: list[str] = []
    fixed: list[int] = []
    for k, arg in enumerate(call.args):
        value = arg.value
        if isinstance(value, cst.Name) and value.value in elements:
            columns.append(elements[value.value])
        elif (indexed := indexed_name(value)) is not None:
            columns.append(indexed)
        elif not (_reads(value).names & loop_vars):
            columns.append(_code(value))
            fixed.append(k)
        else:
            return None

    line = loop.body.body[0]
    if not isinstance(line, cst.SimpleStatementLine):
        return None
    stmt = line.body[0]  # the one simple statement (checked by _check_map_loop)
    out: str | None
    if isinstance(stmt, cst.Assign):
        if len(stmt.targets) != 1 or stmt.value is not call:
            return None
        out = indexed_name(stmt.targets[0].target)
        if out is None:
            return None
        append = False
    elif isinstance(stmt, cst.Expr) and isinstance(stmt.value, cst.Call) and stmt.value.args[0].value is call:
        out = stmt.value.func.value.value  # type: ignore[attr-defined]  # `res.append(...)` (checked)
        append = True
    else:
        return None
    if out in loop_vars:
        return None

    if kind == "range":
        assert isinstance(it, cst.Call)
        bounds = [_code(a.value) for a in it.args]
        store_slice = f":{bounds[0]}" if len(bounds) == 1 else f"{bounds[0]}:{bounds[1]}"
        rows = _code(it)
    else:
        # enumerate: the index was bound first, to the last row, so the rows are [0, index + 1)
        store_slice = f":{index} + 1" if index else ""
        rows = _tuple_code(walked)
    return _Fast(kind=kind, rows=rows, columns=columns, fixed=fixed, out=out, append=append,
                 store_slice="" if append else store_slice, target=_code(target))


def _find_hoists(wrapper: MetadataWrapper, fn: cst.FunctionDef, region: Region,
                 n_params: int, input_positions: list[int]) -> tuple[list[_Hoist], list[dict[str, Any]]]:
    """Map loops in the module that call the replaced function `fn` (resolved by scope)."""
    scopes = wrapper.resolve(ScopeProvider)
    pos = wrapper.resolve(PositionProvider)
    parents = wrapper.resolve(ParentNodeProvider)
    fname = fn.name.value
    hoists: list[_Hoist] = []
    skipped: list[dict[str, Any]] = []

    def inside_fn(node: cst.CSTNode) -> bool:
        cur: cst.CSTNode | None = node
        while cur is not None:
            if cur is fn:
                return True
            cur = parents.get(cur)
        return False

    class Loops(cst.CSTVisitor):
        def __init__(self) -> None:
            self.loops: list[cst.For] = []

        def visit_For(self, node: cst.For) -> None:
            self.loops.append(node)

    finder = Loops()
    wrapper.module.visit(finder)
    for loop in finder.loops:
        calls = _CallFinder(fname)
        loop.body.visit(calls)
        if not calls.calls or inside_fn(loop):
            continue
        line = pos[loop].start.line
        call = calls.calls[0][0]
        # the name must resolve to this very def (not a local of the same name)
        scope = scopes.get(call.func)
        assignments = list(scope[fname]) if scope is not None else []
        if not assignments or any(getattr(a, "node", None) is not fn for a in assignments):
            skipped.append({"line": line, "reason": f"{fname} does not refer to the replaced function here"})
            continue
        if not isinstance(parents.get(loop), (cst.IndentedBlock, cst.Module)):
            skipped.append({"line": line, "reason": "loop is not a statement of a block"})
            continue
        seqs, reason = _check_map_loop(loop, call, fname, region)
        if seqs is None:
            skipped.append({"line": line, "reason": reason})
            continue
        if len(call.args) > n_params or (input_positions and max(input_positions) >= len(call.args)):
            skipped.append({"line": line, "reason": "call does not pass every input positionally"})
            continue
        hoists.append(_Hoist(loop=loop, call=call, line=line, seqs=seqs, fast=_fast_form(loop, call)))
    return hoists, skipped


# --------------------------------------------------------------------------------------------
# generated code


def _loader_code(names: _Names, rel: str, manifest: Manifest, region: Region,
                 with_try: bool, with_map: bool, input_positions: list[int], with_batch: bool = False) -> str:
    """Module-level statements: load the surrogate (`rel`, relative to this file), and the guard helpers."""
    stem = os.path.splitext(rel.rsplit("/", 1)[-1])[0]
    where = ", ".join(repr(part) for part in rel.split("/"))
    ins = [v.name for v in manifest.inputs]
    outs = [v.name for v in manifest.outputs]
    is_function = region.kind == "function"
    parts: list[str] = [
        f"import numpy as {_PREFIX}np\n\n\n"
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
    ]
    if manifest.accept:
        expr = _accept_expr(manifest.accept, is_function)
        out_params = ["result"] if is_function else outs
        params = [n for n in ins if n not in out_params] + out_params
        parts.append(
            f"\n\ndef {names.accept}({', '.join(params)}):\n"
            f'    """The accept predicate {manifest.accept!r}: when false (or when it raises an\n'
            f'    arithmetic error, as for a division by zero), the exact code runs."""\n'
            f"    try:\n"
            f"        return bool({expr})\n"
            f"    except (ArithmeticError, ValueError):\n"
            f"        return False\n"
        )
        vec = _accept_vectorized(manifest, is_function) if (with_batch or with_map) else None
        if vec is not None:
            parts.append(
                f"\n\ndef {names.accept}_columns({', '.join(params)}):\n"
                f'    """The accept predicate over whole columns (numpy arrays), for hoisted loops."""\n'
                f"    return {vec}\n"
            )
    if with_try:
        arglist = ", ".join(ins)
        body = [
            f"\n\ndef {names.try_}({arglist}):\n",
            f'    """Surrogate of region {region.id}: its outputs {tuple(outs)}, or None when the exact code must run."""\n',
            f"    if not {names.mod}.in_domain_one({arglist}):\n",
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
                # a container mutated in place: store into it, do not rebind it
                body.append(
                    f"    if isinstance({spec.name}, {_PREFIX}np.ndarray):\n"
                    f"        {spec.name}[...] = {_PREFIX}np.reshape(y[{k}], {spec.name}.shape)\n"
                    f"    else:\n"
                    f"        {spec.name}[:] = {_PREFIX}np.reshape(y[{k}], {tuple(spec.shape)!r}).tolist()\n"
                )
        body.append("    return y\n")
        parts.append("".join(body))
    if with_map:
        row_inputs = ", ".join(f"row[{k}]" for k in input_positions)
        accept_all = accept_line = ""
        if manifest.accept and _accept_vectorized(manifest, is_function) is not None:
            # the predicate over all predicted rows at once; a non-finite prediction is never accepted
            accept_all = (
                f"            with {_PREFIX}np.errstate(all=\"ignore\"):\n"
                f"                ok = {_PREFIX}np.isfinite(Y[:, 0]) & {names.accept}_columns(\n"
                f"                    *[X[inside, k] for k in range(X.shape[1])], Y[:, 0])\n"
                f"            ok = {_PREFIX}np.broadcast_to(ok, (inside.size,)).tolist()\n"
            )
            accept_line = (
                "                if not ok[j]:\n"
                "                    continue\n"
            )
        elif manifest.accept:
            accept_line = (
                f"                row = rows[r]\n"
                f"                if not {names.accept}({', '.join(f'row[{k}]' for k in input_positions)}, value):\n"
                f"                    continue\n"
            )
        parts.append(
            f"\n\ndef {names.batchable}(*seqs):\n"
            f'    """True when every sequence a hoisted loop iterates over can be traversed twice."""\n'
            f"    return all(isinstance(s, (list, tuple, range, {_PREFIX}np.ndarray)) for s in seqs)\n"
            f"\n\ndef {names.map_}(rows, exact):\n"
            f'    """One batched surrogate call over argument rows; rows outside the trained domain\n'
            f'    (or failing the accept predicate) run the exact function. Row 0 always runs it: its\n'
            f'    result fixes the element type (float or numpy scalar), as the original loop had it."""\n'
            f"    n = len(rows)\n"
            f"    results = [None] * n\n"
            f"    done = [False] * n\n"
            f"    cast = float\n"
            f"    if n:\n"
            f"        results[0] = exact(*rows[0])\n"
            f"        done[0] = True\n"
            f"        if isinstance(results[0], (float, {_PREFIX}np.floating)):\n"
            f"            cast = type(results[0])\n"
            f"    try:\n"
            f"        X = {_PREFIX}np.array([[{row_inputs}] for row in rows], dtype=float).reshape(n, -1)\n"
            f"    except (TypeError, ValueError):\n"
            f"        X = None\n"
            f"    if n > 1 and X is not None and X.shape[1] == len({names.mod}.LOWER):\n"
            f"        inside = {_PREFIX}np.flatnonzero({names.mod}.in_domain(X[1:])) + 1\n"
            f"        if inside.size:\n"
            f"            Y = {names.mod}.predict(X[inside])\n"
            f"{accept_all}"
            f"            for j, r in enumerate(inside.tolist()):\n"
            f"                value = cast(Y[j, 0])\n"
            f"{accept_line}"
            f"                results[r] = value\n"
            f"                done[r] = True\n"
            f"    for r in range(n):\n"
            f"        if not done[r]:\n"
            f"            results[r] = exact(*rows[r])\n"
            f"    return results\n"
        )
    if with_batch:
        parts.append(_batch_code(names, manifest, input_positions))
    return "".join(parts)


def _batch_code(names: _Names, manifest: Manifest, input_positions: list[int]) -> str:
    """The column-wise batch helper of hoisted loops in the fast form (see `_hoisted_fast`).

    Every step is one numpy operation over all rows (a column converted with np.fromiter, one
    in_domain, one predict, one tolist); Python-level work per row is left only for rows the exact
    code answers (and for the accept predicate, which is a Python expression over scalars).
    """
    np_ = f"{_PREFIX}np"
    positions = _tuple_code([str(k) for k in input_positions])
    accept = ""
    # rows the exact code answers: outside the trained box, or (vectorised accept) failing the predicate
    exact_rows = "~inside[1:]"
    if manifest.accept and _accept_vectorized(manifest, True) is not None:
        # one numpy expression over all rows; a non-finite prediction is never accepted
        accept = (
            f"    with {np_}.errstate(all=\"ignore\"):\n"
            f"        good = inside & {np_}.isfinite(y) & {names.accept}_columns(*[X[:, j] for j in range(len(inputs))], y)\n"
        )
        exact_rows = "~good[1:]"
    elif manifest.accept:
        accept = (
            f"    for r in {np_}.flatnonzero(inside[1:]).tolist():\n"
            f"        row = args(r + 1)\n"
            f"        if not {names.accept}(*[row[k] for k in {positions}], values[r + 1]):\n"
            f"            values[r + 1] = exact(*row)\n"
        )
    return (
        f"\n\ndef {names.batch}(exact, loop, rows, columns, fixed=(), out=None, append=False):\n"
        f'    """One batched surrogate call for a hoisted map loop, column by column.\n'
        f"\n"
        f'    loop is what the loop walks: "range" (rows is its range; columns are indexed by the row\n'
        f'    index) or "zip", "enumerate", "for" (rows is the tuple of sequences it walks). columns has,\n'
        f"    per argument of the call, the sequence read row by row, or (at the positions in fixed) a\n"
        f"    loop-invariant value. out is the list or 1-d float array the loop stores into by index, or\n"
        f"    the list it appends to. Returns (results in row order, the loop target's final value), or\n"
        f"    None when the original loop must run: an iterable that is not a list, tuple, range or 1-d\n"
        f"    array, an index the loop would find out of range, no rows. Rows outside the trained domain\n"
        f"    (or failing the accept predicate) run exact; so does row 0: its result fixes the element\n"
        f'    type (float or numpy scalar) the original loop stored."""\n'
        f"    seq = (list, tuple, range, {np_}.ndarray)\n"
        f'    if loop == "range":\n'
        f"        start, stop = rows.start, rows.stop\n"
        f"    elif all(isinstance(s, seq) for s in rows):\n"
        f"        start, stop = 0, min(len(s) for s in rows)\n"
        f"    else:\n"
        f"        return None\n"
        f"    n = stop - start\n"
        f"    if n < 1 or start < 0:\n"
        f"        return None\n"
        f"    for k, c in enumerate(columns):\n"
        f"        if k not in fixed and not (isinstance(c, seq) and len(c) >= stop\n"
        f"                                   and (not isinstance(c, {np_}.ndarray) or (c.ndim == 1 and c.dtype.kind in \"biuf\"))):\n"
        f"            return None\n"
        f"    if append:\n"
        f"        if type(out) is not list:\n"
        f"            return None\n"
        f"    elif isinstance(out, {np_}.ndarray):\n"
        f'        if out.ndim != 1 or out.dtype.kind != "f" or len(out) < stop:\n'
        f"            return None\n"
        f"    elif not isinstance(out, list) or len(out) < stop:\n"
        f"        return None\n"
        f"    inputs = {positions}\n"
        f"    if len(inputs) != len({names.mod}.LOWER):\n"
        f"        return None\n"
        f"    # column-major, so in_domain's comparisons run along whole columns\n"
        f'    X = {np_}.empty((n, len(inputs)), order="F")\n'
        f"    try:\n"
        f"        for j, k in enumerate(inputs):\n"
        f"            c = columns[k]\n"
        f"            if k in fixed:\n"
        f"                X[:, j] = c\n"
        f"            elif isinstance(c, {np_}.ndarray):\n"
        f"                X[:, j] = c[start:stop]\n"
        f"            else:\n"
        f"                X[:, j] = {np_}.fromiter(c if start == 0 and len(c) == stop else c[start:stop], float, n)\n"
        f"    except (TypeError, ValueError, OverflowError):\n"
        f"        return None\n"
        f"\n"
        f"    def args(r):\n"
        f"        i = start + r\n"
        f"        return [c if k in fixed else c[i] for k, c in enumerate(columns)]\n"
        f"\n"
        f"    first = exact(*args(0))\n"
        f"    inside = {names.mod}.in_domain(X)\n"
        f"    # every row is predicted (rows outside are few, and cheaper to overwrite than to gather),\n"
        f"    # in chunks that keep the hidden layers in cache; outside rows may overflow: ignored\n"
        f"    widths = (len(inputs), *getattr({names.mod}, \"HIDDEN\", (32,)), 1)\n"
        f"    chunk = max(256, min(4096, {_CHUNK_WORK} // max(p * q for p, q in zip(widths, widths[1:]))))\n"
        f"    y = {np_}.empty(n)\n"
        f"    with {np_}.errstate(all=\"ignore\"):\n"
        f"        for k in range(0, n, chunk):\n"
        f"            y[k:k + chunk] = {names.mod}.predict(X[k:k + chunk]).reshape(-1)\n"
        f"    if isinstance(out, {np_}.ndarray) and not append:\n"
        f"        values = y\n"
        f"    elif isinstance(first, {np_}.floating):\n"
        f"        values = list(y.astype(type(first)))\n"
        f"    else:\n"
        f"        values = y.tolist()\n"
        f"    values[0] = first\n"
        + (accept if exact_rows != "~inside[1:]" else "") +
        f"    # the rows the exact code answers, through one map() over their gathered arguments: per row\n"
        f"    # only the exact call itself is left (a Python-level args() per row cost more than the call)\n"
        f"    redo = ({np_}.flatnonzero({exact_rows}) + 1).tolist()\n"
        f"    if redo:\n"
        f"        idx = [start + r for r in redo] if start else redo\n"
        f"        picked = [[c] * len(idx) if k in fixed else\n"
        f"                  (list(c[idx]) if isinstance(c, {np_}.ndarray) else [c[i] for i in idx])\n"
        f"                  for k, c in enumerate(columns)]\n"
        f"        for r, v in zip(redo, map(exact, *picked)):\n"
        f"            values[r] = v\n"
        + (accept if exact_rows == "~inside[1:]" else "") +
        '    if loop == "range":\n'
        "        last = stop - 1\n"
        '    elif loop == "zip":\n'
        "        last = tuple(s[n - 1] for s in rows)\n"
        '    elif loop == "enumerate":\n'
        "        last = (n - 1, rows[0][n - 1])\n"
        "    else:\n"
        "        last = rows[0][n - 1]\n"
        "    return values, last\n"
    )


def _call_args_for(params: cst.Parameters) -> str:
    """Arguments that forward every parameter of `params` unchanged."""
    out: list[str] = [p.name.value for p in params.posonly_params]
    out += [p.name.value for p in params.params]
    if isinstance(params.star_arg, cst.Param):
        out.append("*" + params.star_arg.name.value)
    out += [f"{p.name.value}={p.name.value}" for p in params.kwonly_params]
    if params.star_kwarg is not None:
        out.append("**" + params.star_kwarg.name.value)
    return ", ".join(out)


def _param_names(params: cst.Parameters) -> list[str]:
    return [p.name.value for p in (*params.posonly_params, *params.params)]


def _dispatcher(fn: cst.FunctionDef, names: _Names, manifest: Manifest, nested: bool) -> cst.FunctionDef:
    fname = fn.name.value
    exact = _EXACT_PREFIX + fname
    ins = ", ".join(v.name for v in manifest.inputs)
    if manifest.accept:
        keep = [v.name for v in manifest.inputs]
        hit = (
            f"        {_PREFIX}y = {names.mod}.predict_one({ins})\n"
            f"        if {names.accept}({', '.join(keep + [f'{_PREFIX}y'])}):\n"
            f"            return {_PREFIX}y\n"
        )
    else:
        hit = f"        return {names.mod}.predict_one({ins})\n"
    code = (
        f"def {fname}():\n"
        f'    """regionx dispatcher: the surrogate inside its trained domain, else {exact}."""\n'
        f"    if {names.mod}.in_domain_one({ins}):\n"
        f"{hit}"
        f"    return {exact}({_call_args_for(fn.params)})\n"
    )
    (disp,) = _parse_stmts(code)
    assert isinstance(disp, cst.FunctionDef)
    blank = (cst.EmptyLine(),) if nested else (cst.EmptyLine(), cst.EmptyLine())
    return disp.with_changes(params=fn.params, returns=fn.returns, leading_lines=blank)


def _guarded(stmts: list[cst.BaseStatement], names: _Names, manifest: Manifest, region_id: str) -> cst.If:
    """`if (y := try(inputs)) is not None: outputs = y else: <original statements>`."""
    ins = [v.name for v in manifest.inputs]
    assigns = [
        f"    {spec.name} = {_PREFIX}y[{k}]\n"
        for k, spec in enumerate(manifest.outputs)
        if not (spec.name in ins and spec.shape)
    ] or ["    pass\n"]
    code = (
        f"if ({_PREFIX}y := {names.try_}({', '.join(ins)})) is not None:\n"
        + "".join(assigns)
        + "else:\n    pass\n"
    )
    (node,) = _parse_stmts(code)
    assert isinstance(node, cst.If) and node.orelse is not None
    head, pragma = _split_pragma(_lead(stmts[0]))
    lead = head + (_marker_line(region_id, None, "begin"),)
    first = stmts[0].with_changes(leading_lines=pragma)
    else_body = node.orelse.body.with_changes(body=[first, *stmts[1:]])  # type: ignore[union-attr]
    return node.with_changes(leading_lines=lead, orelse=node.orelse.with_changes(body=else_body))


def _hoisted(h: _Hoist, updated_loop: cst.For, names: _Names, fname: str, region_id: str) -> cst.If:
    """`if batchable(seqs): <batched> else: <original loop>` (general form), or
    `if (b := batch(...)) is not None: <one slice store / extend; the loop target's final value>
    else: <original loop>` (column-wise form)."""
    if h.fast is not None:
        return _hoisted_fast(h.fast, updated_loop, names, fname, region_id)
    args = ", ".join(_code(a.value) for a in h.call.args)
    row = f"({args},)" if len(h.call.args) == 1 else f"({args})"
    code = (
        f"if {names.batchable}({', '.join(h.seqs)}):\n"
        f"    {_PREFIX}it = iter({names.map_}([{row} for {_code(h.loop.target)} in {_code(h.loop.iter)}], "
        f"{_EXACT_PREFIX}{fname}))\n"
        f"    pass\n"
        f"else:\n"
        f"    pass\n"
    )
    (node,) = _parse_stmts(code)
    assert isinstance(node, cst.If) and node.orelse is not None and isinstance(node.body, cst.IndentedBlock)
    store = h.loop.visit(_ReplaceNode(h.call, cst.parse_expression(f"next({_PREFIX}it)")))
    assert isinstance(store, cst.For)
    store = store.with_changes(leading_lines=())
    body = node.body.with_changes(body=[node.body.body[0], store])
    head, pragma = _split_pragma(updated_loop.leading_lines)
    orig = updated_loop.with_changes(leading_lines=pragma)
    else_body = node.orelse.body.with_changes(body=[orig])  # type: ignore[union-attr]
    lead = head + (_marker_line(region_id, "batch", "begin"),)
    return node.with_changes(leading_lines=lead, body=body, orelse=node.orelse.with_changes(body=else_body))


def _tuple_code(items: Sequence[str]) -> str:
    """A tuple display of expressions: `(a,)` or `(a, b)`."""
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"  # () when empty


def _hoisted_fast(f: _Fast, updated_loop: cst.For, names: _Names, fname: str, region_id: str) -> cst.If:
    """The column-wise batch: one call of the batch helper, one store, the loop target's final value."""
    b = f"{_PREFIX}b"
    extra = ""
    if f.fixed:
        extra += f", fixed={_tuple_code([str(k) for k in f.fixed])}"
    extra += f", out={f.out}" + (", append=True" if f.append else "")
    columns = _tuple_code(f.columns)
    store = f"{f.out}.extend({b}[0])" if f.append else f"{f.out}[{f.store_slice}] = {b}[0]"
    last = f"{f.target} = {b}[1]"
    # a range's bounds are read by the store, so store before the target is rebound; enumerate's
    # store reads the index, so bind the target first
    body = [store, last] if f.kind == "range" or f.append else [last, store]
    code = (
        f'if ({b} := {names.batch}({_EXACT_PREFIX}{fname}, "{f.kind}", {f.rows}, {columns}{extra})) is not None:\n'
        + "".join(f"    {line}\n" for line in body)
        + "else:\n    pass\n"
    )
    (node,) = _parse_stmts(code)
    assert isinstance(node, cst.If) and node.orelse is not None
    head, pragma = _split_pragma(updated_loop.leading_lines)
    orig = updated_loop.with_changes(leading_lines=pragma)
    else_body = node.orelse.body.with_changes(body=[orig])  # type: ignore[union-attr]
    lead = head + (_marker_line(region_id, "batch", "begin"),)
    return node.with_changes(leading_lines=lead, orelse=node.orelse.with_changes(body=else_body))


# --------------------------------------------------------------------------------------------
# the transformer


def _with_end_marker(stmt: cst.BaseStatement, marker: cst.EmptyLine) -> cst.BaseStatement:
    return stmt.with_changes(leading_lines=(marker, *_lead(stmt)))


class _Rewriter(cst.CSTTransformer):
    """Splices replacements into bodies. Plans refer to original nodes; output is built on updated ones."""

    def __init__(self, replacements: dict[int, tuple[Any, cst.EmptyLine]], skip: set[int],
                 loader: tuple[list[cst.BaseStatement], cst.EmptyLine] | None,
                 loader_before: cst.BaseStatement | None) -> None:
        # id(original first stmt) -> (builder(updated stmts) -> new stmts, end marker)
        self.replacements = replacements
        self.skip = skip  # ids of original statements folded into a replacement (block regions)
        self.loader = loader
        self.loader_before = loader_before

    def _splice(self, orig_body: Sequence[cst.BaseStatement], new_body: Sequence[cst.BaseStatement],
                footer: Sequence[cst.EmptyLine], is_module: bool
                ) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
        out: list[cst.BaseStatement] = []
        pending: list[cst.EmptyLine] = []  # end markers for the next statement kept as is
        i = 0
        orig = list(orig_body)
        new = list(new_body)
        while i < len(orig):
            o, u = orig[i], new[i]
            if is_module and self.loader is not None and o is self.loader_before:
                stmts, end = self.loader
                lead = list(_lead(u))
                n_end = 0
                while n_end < len(lead) and (_parse_marker(lead[n_end]) or ("", "", ""))[2] == "end":
                    n_end += 1
                # end markers of earlier rewrites close before our loader begins
                first = stmts[0].with_changes(leading_lines=(*lead[:n_end], *_lead(stmts[0])))
                out.extend([first, *stmts[1:]])
                u = u.with_changes(leading_lines=lead[n_end:])
                pending.insert(0, end)
            if id(o) in self.replacements:
                builder, end = self.replacements[id(o)]
                j = i + 1
                while j < len(orig) and id(orig[j]) in self.skip:
                    j += 1
                if pending:
                    u = u.with_changes(leading_lines=(*pending, *_lead(u)))
                    pending = []
                out.extend(builder([u, *new[i + 1: j]]))
                pending.append(end)
                i = j
                continue
            if pending:
                u = u.with_changes(leading_lines=(*pending, *_lead(u)))
                pending = []
            out.append(u)
            i += 1
        foot = list(footer)
        if is_module and self.loader is not None and self.loader_before is None:
            stmts, end = self.loader
            out.extend(stmts)
            pending.append(end)
        if pending:
            foot = [*pending, *foot]
        return out, foot

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        body, foot = self._splice(original_node.body, updated_node.body, updated_node.footer, False)
        return updated_node.with_changes(body=body, footer=foot)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        body, foot = self._splice(original_node.body, updated_node.body, updated_node.footer, True)
        return updated_node.with_changes(body=body, footer=foot)


def _attach_header(module: cst.Module) -> cst.Module:
    """Give the first statement the comment lines directly above it (a pragma, a marker).

    libcst parses every line above the first statement into Module.header; moving the trailing
    run of comment lines (after the last blank line, never a shebang or coding line) onto the
    statement renders the very same text, and lets the region keep its pragma and markers.
    """
    if not module.body or not module.header:
        return module
    header = list(module.header)
    k = len(header)
    while k > 0 and header[k - 1].comment is not None:
        k -= 1
    while k < len(header) and k < 2:
        comment = header[k].comment
        if comment is None or not (comment.value.startswith("#!") or re.match(r"^#.*coding[:=]", comment.value)):
            break
        k += 1
    if k == len(header):
        return module
    first = module.body[0]
    moved = first.with_changes(leading_lines=(*header[k:], *first.leading_lines))
    return module.with_changes(header=header[:k], body=[moved, *module.body[1:]])


def _loader_position(module: cst.Module, anchors: list[cst.CSTNode], parents: Any) -> cst.BaseStatement | None:
    """The module statement to insert the loader before: after the leading docstring and imports,
    and before any module statement holding rewritten code. None means at the end."""
    top_ids: set[int] = set()
    for a in anchors:
        cur: cst.CSTNode = a
        while not isinstance(parents.get(cur), cst.Module):
            cur = parents[cur]
        top_ids.add(id(cur))
    open_span: tuple[str, str | None] | None = None  # an earlier rewrite's marked span: never split it
    for i, stmt in enumerate(module.body):
        marks = [m for m in (_parse_marker(ln) for ln in stmt.leading_lines) if m]
        for mid, kind, edge in marks:
            if open_span is not None and edge == "end" and (mid, kind) == open_span:
                open_span = None
            elif open_span is None and edge == "begin":
                open_span = (mid, kind)
        if open_span is not None:
            continue
        if id(stmt) in top_ids:
            return stmt
        is_prefix = False
        if isinstance(stmt, cst.SimpleStatementLine):
            is_prefix = all(
                isinstance(s, (cst.Import, cst.ImportFrom))
                or (i == 0 and isinstance(s, cst.Expr) and isinstance(s.value, (cst.SimpleString, cst.ConcatenatedString)))
                for s in stmt.body
            )
        if not is_prefix:
            return stmt
    return None


# --------------------------------------------------------------------------------------------
# public: rewrite_source / revert_source


def hoistable_loops(text: str, region: Region) -> list[int]:
    """Lines of the map loops that rewriting function `region` would batch-hoist (no manifest needed).

    Used before training to decide whether the surrogate will mostly run per call or per batch
    element, so that selection can pick the fastest topology for the path that will run.
    """
    if region.kind != "function":
        return []
    try:
        wrapper = MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)
        target = _locate(wrapper, region)
    except (cst.ParserSyntaxError, _RewriteError):
        return []
    fn = target.stmts[0]
    if not isinstance(fn, cst.FunctionDef):
        return []
    pnames = _param_names(fn.params)
    if fn.params.kwonly_params or any(name not in pnames for name in region.inputs):
        return []
    positions = [pnames.index(name) for name in region.inputs]
    hoists, _ = _find_hoists(wrapper, fn, region, len(pnames), positions)
    return [h.line for h in hoists]


def rewrite_source(text: str, path: str, region: Region, manifest: Manifest, *, module_name: str,
                   force: bool = False, hoist: bool = True) -> StageResult:
    """Patch `text` so that `region` calls the surrogate module `module_name` (guarded, exact fallback).

    data: 'text' (patched source), 'hoisted' (lines of loops turned into batched calls),
    'path_taken' ('scalar' or 'batch'), 'hoist_skipped' ([{line, reason}]), 'profitability'.
    Refuses with RX501 (already rewritten), RX502 (not profitable, unless force), RX503
    (manifest problem), RX505 (region shape not supported).
    """
    rid = region.id

    def fail(code: str, line: int = region.start_line, col: int = region.col or 1, **fields: Any) -> StageResult:
        return StageResult(status="failed", region_id=rid, diagnostics=(make(code, path, line, col, **fields),))

    if _marker_id(rid) in rewritten_regions(text) or _marker_id(manifest.region_id) in rewritten_regions(text):
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
    try:
        module = _attach_header(cst.parse_module(text))
    except cst.ParserSyntaxError as exc:
        return fail("RX004", line=exc.raw_line, col=exc.raw_column + 1, detail=exc.message)

    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    names = _Names.of(region)
    prof = profitability(manifest.topology)
    try:
        target = _locate(wrapper, region)
        parents = wrapper.resolve(ParentNodeProvider)
        hoists: list[_Hoist] = []
        skipped: list[dict[str, Any]] = []
        input_positions: list[int] = []
        if target.kind == "function":
            fn = target.stmts[0]
            assert isinstance(fn, cst.FunctionDef)
            pnames = _param_names(fn.params)
            kwonly = [p.name.value for p in fn.params.kwonly_params]
            missing = [v.name for v in manifest.inputs if v.name not in pnames and v.name not in kwonly]
            if missing:
                raise _RewriteError(f"inputs {missing} are not parameters of {fn.name.value}()", line=target.line)
            scalar_io = all(not v.shape for v in manifest.inputs) and len(manifest.outputs) == 1 and not manifest.outputs[0].shape
            if hoist and scalar_io and not kwonly and all(v.name in pnames for v in manifest.inputs):
                input_positions = [pnames.index(v.name) for v in manifest.inputs]
                hoists, skipped = _find_hoists(wrapper, fn, region, len(pnames), input_positions)
                if not (prof.batch or (force and prof.time_per_element <= prof.time_per_call)):
                    skipped += [{"line": h.line, "reason": "batched surrogate is not faster than the exact code"}
                                for h in hoists]
                    hoists = []
            elif hoist and not scalar_io:
                skipped.append({"line": target.line, "reason": "batching needs scalar inputs and one scalar output"})
        if not force and not (prof.scalar or (prof.batch and hoists)):
            return StageResult(
                status="failed", region_id=rid,
                diagnostics=(make("RX502", path, target.line, target.col, detail=prof.describe(bool(hoists))),),
                data={"profitability": prof.to_json(), "hoist_skipped": skipped},
            )

        loader_code = _loader_code(names, rel, manifest, region,
                                   with_try=target.kind != "function",
                                   with_map=any(h.fast is None for h in hoists),
                                   input_positions=input_positions,
                                   with_batch=any(h.fast is not None for h in hoists))
        # in the file's own line endings: the loader's multi-line docstrings are string contents,
        # which libcst copies as written (a CRLF file stays CRLF throughout)
        loader_stmts = _parse_stmts(loader_code.replace("\n", module.default_newline))
        anchors: list[cst.CSTNode] = [target.stmts[0], *[h.loop for h in hoists]]
        loader_before = _loader_position(module, anchors, parents)
        # a blank line above the loader, unless it opens the file (the blank would join the header)
        spacer = () if loader_before is module.body[0] else (cst.EmptyLine(),)
        loader_stmts[0] = loader_stmts[0].with_changes(
            leading_lines=(*spacer, _marker_line(rid, "loader", "begin")))

        replacements: dict[int, tuple[Any, cst.EmptyLine]] = {}
        skip: set[int] = set()
        end = _marker_line(rid, None, "end")
        if target.kind == "function":
            fn0 = target.stmts[0]
            assert isinstance(fn0, cst.FunctionDef)
            nested = not isinstance(parents.get(fn0), cst.Module)
            disp = _dispatcher(fn0, names, manifest, nested)

            def build_fn(us: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
                u = us[0]
                assert isinstance(u, cst.FunctionDef)
                head, pragma = _split_pragma(_lead(u))
                exact = u.with_changes(name=cst.Name(_EXACT_PREFIX + u.name.value),
                                       leading_lines=(*head, _marker_line(rid, None, "begin"), *pragma))
                return [exact, disp]

            replacements[id(fn0)] = (build_fn, end)
        else:
            def build_block(us: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
                return [_guarded(us, names, manifest, rid)]

            replacements[id(target.stmts[0])] = (build_block, end)
            skip.update(id(s) for s in target.stmts[1:])
        fname = target.stmts[0].name.value if isinstance(target.stmts[0], cst.FunctionDef) else ""
        for h in hoists:
            def build_hoist(us: list[cst.BaseStatement], h: _Hoist = h) -> list[cst.BaseStatement]:
                u = us[0]
                assert isinstance(u, cst.For)
                return [_hoisted(h, u, names, fname, rid)]

            replacements[id(h.loop)] = (build_hoist, _marker_line(rid, "batch", "end"))

        new_module = module.visit(_Rewriter(replacements, skip, (loader_stmts, _marker_line(rid, "loader", "end")),
                                            loader_before))
        new_text = new_module.code
    except _RewriteError as exc:
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
    if not back.ok or back.data.get("text") != text:
        return fail("RX505", region=rid, detail="internal error: the patch would not revert exactly")

    return StageResult(
        status="ok", region_id=rid,
        data={
            "text": new_text,
            "hoisted": [h.line for h in hoists],
            "hoist_skipped": skipped,
            "path_taken": "batch" if hoists else "scalar",
            "profitability": prof.to_json(),
            "kind": target.kind,
            "module": rel,
        },
    )


class _RevertError(Exception):
    pass


class _Reverter(cst.CSTTransformer):
    """Undo every marked span (or only those of one region id), innermost first."""

    def __init__(self, only: str | None) -> None:
        self.only = only
        self.count = 0

    def _wanted(self, mid: str) -> bool:
        return self.only is None or mid == self.only

    def _revert(self, stmts: Sequence[cst.BaseStatement], footer: Sequence[cst.EmptyLine]
                ) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
        body = list(stmts)
        foot = list(footer)
        out: list[cst.BaseStatement] = []
        i = 0
        while i < len(body):
            s = body[i]
            begin_at = None
            for k, ln in enumerate(_lead(s)):
                m = _parse_marker(ln)
                if m and m[2] == "begin" and self._wanted(m[0]):
                    begin_at = (k, m[0], m[1])
                    break
            if begin_at is None:
                out.append(s)
                i += 1
                continue
            k, mid, kind = begin_at
            # the end marker: on a later statement of this body, or in its footer
            j = i + 1
            end_idx: tuple[str, int] | None = None
            while j < len(body):
                hit = self._end_in(_lead(body[j]), mid, kind)
                if hit is not None:
                    end_idx = ("stmt", hit)
                    break
                j += 1
            if end_idx is None:
                hit = self._end_in(foot, mid, kind)
                if hit is None:
                    raise _RevertError(f"marker 'regionx-rewritten: {mid} begin' has no matching end")
                end_idx = ("footer", hit)
            span = body[i:j]
            lead = list(_lead(s))
            before, after = lead[:k], lead[k + 1:]
            restored = self._restore(span, kind, before + after)
            if end_idx[0] == "stmt":
                nxt = body[j]
                ll = list(_lead(nxt))
                del ll[end_idx[1]]
                if kind == "loader":
                    # the loader's own lines are generated; only markers of other rewrites move on
                    ll = [ln for ln in before if _parse_marker(ln)] + ll
                body[j] = nxt.with_changes(leading_lines=ll)
            else:
                del foot[end_idx[1]]
                if kind == "loader":
                    foot = [ln for ln in before if _parse_marker(ln)] + foot
            out.extend(restored)
            self.count += 1
            i = j
        return out, foot

    @staticmethod
    def _end_in(lines: Sequence[cst.EmptyLine], mid: str, kind: str | None) -> int | None:
        for k, ln in enumerate(lines):
            m = _parse_marker(ln)
            if m and m[0] == mid and m[1] == kind and m[2] == "end":
                return k
        return None

    @staticmethod
    def _restore(span: list[cst.BaseStatement], kind: str | None, lead: list[cst.EmptyLine]) -> list[cst.BaseStatement]:
        if kind == "loader":
            return []
        if len(span) == 1 and isinstance(span[0], cst.If) and isinstance(span[0].orelse, cst.Else):
            orig: list[cst.BaseStatement] = list(span[0].orelse.body.body)  # type: ignore[arg-type]
            if not orig:
                raise _RevertError("rewritten block has no original code")
            orig[0] = orig[0].with_changes(leading_lines=(*lead, *_lead(orig[0])))
            return orig
        if (len(span) == 2 and isinstance(span[0], cst.FunctionDef) and isinstance(span[1], cst.FunctionDef)
                and span[0].name.value == _EXACT_PREFIX + span[1].name.value):
            return [span[0].with_changes(name=cst.Name(span[1].name.value), leading_lines=lead)]
        raise _RevertError("the rewritten code was edited; cannot find the original inside the markers")

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        body, foot = self._revert(updated_node.body, updated_node.footer)
        return updated_node.with_changes(body=body, footer=foot)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        body, foot = self._revert(updated_node.body, updated_node.footer)
        return updated_node.with_changes(body=body, footer=foot)


def revert_source(text: str, path: str, *, only: str | None = None) -> StageResult:
    """Undo regionx rewrites in `text` (all of them, or those of region id `only`).

    data['text'] is the original text, exactly; data['reverted'] the number of marked spans undone.
    RX504 when there is nothing to revert; RX505 when the markers were damaged by hand edits.
    """
    wanted = None if only is None else _marker_id(only)
    present = [
        m for m in (MARKER_RE.match(raw.strip()) for raw in text.splitlines())
        if m and (wanted is None or m.group("id") == wanted)
    ]
    if not present:
        return StageResult(status="failed", region_id=only or "", diagnostics=(make("RX504", path),))
    try:
        module = _attach_header(cst.parse_module(text))
    except cst.ParserSyntaxError as exc:
        return StageResult(status="failed", region_id=only or "",
                           diagnostics=(make("RX004", path, exc.raw_line, exc.raw_column + 1, detail=exc.message),))
    reverter = _Reverter(wanted)
    try:
        back = module.visit(reverter)
    except _RevertError as exc:
        return StageResult(status="failed", region_id=only or "",
                           diagnostics=(make("RX505", path, region=only or "*", detail=str(exc)),))
    if reverter.count == 0:
        return StageResult(status="failed", region_id=only or "", diagnostics=(make("RX504", path),))
    return StageResult(status="ok", region_id=only or "", data={"text": back.code, "reverted": reverter.count})


# --------------------------------------------------------------------------------------------
# files


def _read_source(path: str) -> tuple[str | None, Diagnostic | None]:
    """regionx.analysis.source.read_source (line endings as written, so a patch and its revert are
    byte-exact), with its one diagnostic."""
    from regionx.analysis.source import read_source

    text, problems = read_source(path)
    return text, (problems[0] if problems else None)


def _find_manifest(artifact_dir: str, selector: str | None) -> str | None:
    direct = os.path.join(artifact_dir, "manifest.json")
    if os.path.isfile(direct):
        return direct
    if not os.path.isdir(artifact_dir):
        return None
    found: list[str] = []
    for entry in sorted(os.listdir(artifact_dir)):
        cand = os.path.join(artifact_dir, entry, "manifest.json")
        if os.path.isfile(cand):
            if selector is None or entry == selector or entry == _safe(selector):
                found.append(cand)
                continue
            try:
                with open(cand, encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                continue
            if selector in (data.get("region_id"), data.get("region_name")):
                found.append(cand)
    return found[0] if len(found) == 1 else None


def _output_path(path: str, out: str | None, in_place: bool) -> str | None:
    if in_place:
        return path
    if out is None:
        return None
    if out.endswith(".py"):
        return out
    return os.path.join(out, os.path.basename(path))


def _diff(before: str, after: str, path: str, out_path: str | None) -> str:
    return "".join(difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        fromfile=path, tofile=out_path or path))


def _emit(text: str, res: StageResult, path: str, out: str | None, in_place: bool, diff: bool, region_id: str,
          companions: dict[str, str]) -> StageResult:
    """Write a rewrite's or revert's new text (atomically) where `out`/`in_place` say, the
    `companions` (artifact key -> file: the generated module, its weights) copied beside it; add
    the diff on request. The artifacts reported are what was written."""
    new_text: str = res.data["text"]
    out_path = _output_path(path, out, in_place)
    data = dict(res.data)
    artifacts: dict[str, str] = {}
    if diff:
        data["diff"] = _diff(text, new_text, path, out_path)
    if out_path is not None:
        out_dir = os.path.dirname(os.path.abspath(out_path))
        try:
            for key, source in companions.items():
                artifacts[key] = os.path.join(out_dir, os.path.basename(source))
                atomic_copy(source, artifacts[key])
            atomic_write_text(out_path, new_text)
        except OSError as exc:
            return StageResult(status="failed", region_id=region_id, diagnostics=(make("RX007", out_path, detail=str(exc)),))
        artifacts["patched"] = out_path  # the key the CLI reports as "wrote <path>"
    return StageResult(status="ok", region_id=region_id, artifacts=artifacts, data=data)


def rewrite_file(path: str, region_selector: str | None, artifact_dir: str, *, out: str | None = None,
                 in_place: bool = False, diff: bool = False, force: bool = False,
                 hoist: bool = True) -> StageResult:
    """Rewrite one region of the file at `path` with the surrogate in `artifact_dir`.

    Reads `artifact_dir/manifest.json` (or `artifact_dir/<region>/manifest.json`), analyzes the
    file, patches it, and writes the result to `out` (a directory, or a .py path) or over `path`
    with `in_place`, copying the surrogate module and weights.npz beside it; writes are atomic.
    With neither, nothing is written (data['text'] holds the patch). `diff` adds data['diff'].
    """
    text, err = _read_source(path)
    if err is not None or text is None:
        return StageResult(status="failed", diagnostics=(err,) if err else ())
    manifest_path = _find_manifest(artifact_dir, region_selector)
    if manifest_path is None:
        return StageResult(status="failed", diagnostics=(
            make("RX503", path, detail=f"no manifest.json for {region_selector or 'the region'} under {artifact_dir}"),))
    try:
        with open(manifest_path, encoding="utf-8") as fh:
            manifest = Manifest.from_json(json.load(fh))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return StageResult(status="failed", diagnostics=(
            make("RX503", path, detail=f"bad manifest {manifest_path}: {exc!r}"),))
    art_dir = os.path.dirname(manifest_path)
    module_file = os.path.join(art_dir, manifest.module)
    if not os.path.isfile(module_file):
        return StageResult(status="failed", region_id=manifest.region_id, diagnostics=(
            make("RX503", path, detail=f"missing surrogate module {module_file}"),))
    selector = region_selector or manifest.region_id
    if _marker_id(manifest.region_id) in rewritten_regions(text) or _marker_id(selector) in rewritten_regions(text):
        return StageResult(status="failed", region_id=manifest.region_id,
                           diagnostics=(make("RX501", path, region=manifest.region_id),))

    try:
        from regionx import analysis  # helper-1's package; imported lazily (libcst only)
        fa = analysis.analyze_source(text, path)
    except (ImportError, AttributeError) as exc:
        return StageResult(status="failed", diagnostics=(make("RX505", path, region=selector,
                                                               detail=f"analysis unavailable: {exc}"),))
    if not fa.ok:
        return StageResult(status="failed", diagnostics=tuple(fa.diagnostics))
    region = analysis.find_region(fa, selector)
    if region is None or isinstance(region, Diagnostic):
        known = ", ".join(r.id for r in fa.regions) or "none"
        diag = region if isinstance(region, Diagnostic) else make("RX005", path, region=selector, known=known)
        return StageResult(status="failed", diagnostics=(diag,))
    from regionx.extract import source_changes

    # the region's own lines and everything it depends on (module constants, helpers), hashed as
    # sampling and check hash them; an artifact without hashes is not judged
    changes = source_changes(text, path, region, manifest.source_sha256, manifest.closure_sha256, manifest.closure)
    if changes:
        return StageResult(status="failed", region_id=region.id, diagnostics=(make(
            "RX503", path, region.start_line, region.col or 1,
            detail=f"region {region.id!r} changed since its surrogate was trained ({'; '.join(changes)}); retrain it"),))

    module_name = os.path.splitext(manifest.module)[0]
    res = rewrite_source(text, path, region, manifest, module_name=module_name, force=force, hoist=hoist)
    if not res.ok:
        return res
    weights = os.path.join(art_dir, "weights.npz")
    companions = {"module": module_file, **({"weights": weights} if os.path.isfile(weights) else {})}
    return _emit(text, res, path, out, in_place, diff, region.id, companions)


def revert_file(path: str, *, region: str | None = None, out: str | None = None, in_place: bool = False,
                diff: bool = False) -> StageResult:
    """Undo regionx rewrites in the file at `path` (all, or one region id); write like `rewrite_file`."""
    text, err = _read_source(path)
    if err is not None or text is None:
        return StageResult(status="failed", diagnostics=(err,) if err else ())
    res = revert_source(text, path, only=region)
    if not res.ok:
        return res
    return _emit(text, res, path, out, in_place, diff, region or "", {})
