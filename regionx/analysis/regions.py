"""Regions and their interfaces: functions, loops and pragma blocks, classified by dataflow.

For a loop or block region R (a contiguous node-id range lo..hi of its scope's CFG):
  inputs    = variables live on entry to R that R references (upward-exposed reads, plus
              variables written on only some paths through R and live at its exit);
  outputs   = variables written (bound or mutated) in R, live at R's exit (the targets of
              edges leaving R: after it in program order, or around an enclosing loop's back
              edge) and reached there by one of R's definitions;
  internals = every other variable R binds or reads, plus comprehension/lambda variables.
For a function: inputs are the parameters live after entry (read before any rebinding, or
mutated in place) plus closure variables; outputs are "return" (if it returns a value) and the
parameters mutated in place while still holding the caller's object (reaching definitions).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import libcst as cst

from regionx.analysis.alias import Aliases, FullName, Hit, defaulted
from regionx.analysis.cfg import Loop, Scope, build_module
from regionx.analysis.dataflow import Dataflow, solve
from regionx.analysis.purity import (
    PURE_METHODS, Classified, call_graph, callable_arguments, classify, dunder_names, impure_closure, iterator_globals,
    module_methods,
)
from regionx.analysis.resolve import resolve
from regionx.analysis.source import Parsed
from regionx.diagnostics import MESSAGES, Diagnostic, make
from regionx.types import Pragma, Reason, Region


def reason(code: str, line: int, **fields: str) -> Reason:
    """A Reason with its message filled from diagnostics.MESSAGES."""
    return Reason(code, line, MESSAGES[code][1].format(**fields))


@dataclass
class _ScopeInfo:
    """Everything computed once per scope and reused by each of its regions."""

    scope: Scope
    flow: Dataflow
    calls: dict[int, list[Classified]] = field(default_factory=dict)  # node id -> its classified calls


@dataclass
class _Span:
    """A candidate region before classification."""

    kind: str  # function | loop | block
    scope: Scope  # the function itself, or the scope holding the loop/block
    lo: int
    hi: int
    line: int
    col: int
    end_line: int
    base_id: str
    loop: Loop | None = None
    pragma: Pragma | None = None


class ModuleAnalysis:
    """Builds the scopes of one parsed module, solves their dataflow and classifies regions."""

    def __init__(self, parsed: Parsed, path: str) -> None:
        self.path = path
        self.parsed = parsed
        self.module = build_module(parsed.module, parsed.positions, parsed.text.count("\n") + 1)
        self.scopes = self.module.walk()
        self.info: dict[int, _ScopeInfo] = {}  # id(scope) -> its dataflow and calls
        global_reads: set[str] = set()
        for scope in self.scopes[1:]:
            global_reads |= scope.free | scope.global_decl
        for scope in self.scopes:
            if scope.kind == "module":
                exit_uses = global_reads  # module variables read by its functions may be read later
            elif scope.kind == "class":
                exit_uses = set(scope.bind_kinds)  # class attributes outlive the body
            else:
                exit_uses = set()
            info = _ScopeInfo(scope, solve(scope, exit_uses))
            self.info[id(scope)] = info
        self.methods = module_methods(self.scopes)  # method name -> the module's methods of that name
        for scope in self.scopes:
            info = self.info[id(scope)]
            for node in scope.nodes:
                if node.facts.calls:
                    info.calls[node.id] = [classify(scope, site, self.methods) for site in node.facts.calls]
        functions = [s for s in self.scopes if s.kind == "function"]
        by_id = {id(s): s for s in functions}
        self._by_id = by_id
        self.aliases = Aliases({k: v.flow for k, v in self.info.items()}, FullName(PURE_METHODS, self.methods))
        self.iterators = iterator_globals(self.scopes[0], parsed.positions)  # module-level iterators -> line
        self.local_reasons: dict[int, list[Reason]] = {}  # id(function) -> why it is impure on its own
        for scope in functions:
            own = self._behaviour(scope, 2, len(scope.nodes) - 1, follow_calls=False)
            own += self._function_flags(scope)
            own += self._alias_reasons(self.aliases.hits(scope, 2, len(scope.nodes) - 1, ()))
            if own:
                self.local_reasons[id(scope)] = own
        graph = call_graph(functions, {id(s): [c for cs in self.info[id(s)].calls.values() for c in cs] for s in functions})
        for scope in functions:  # `a + b` may call a module class's __add__: an edge like a call
            for dunder in self._dunders_used(scope, 2, len(scope.nodes) - 1):
                graph.add_edge(id(scope), id(dunder))
        self.impure = impure_closure(graph, set(self.local_reasons))  # ids of function scopes not shown pure
        self.graph = graph

    # -- behaviour (purity) reasons ---------------------------------------------------------
    def _function_flags(self, scope: Scope) -> list[Reason]:
        out = []
        if scope.is_async:
            out.append(reason("RX204", scope.pos[0], detail=f"async def {scope.name}"))
        return out

    def _why_impure(self, target: Scope) -> str:
        """A short explanation of why `target` (a function of this module) is not pure."""
        own = self.local_reasons.get(id(target))
        if own:
            r = own[0]
            return f"{r.code} at line {r.line}: {r.message}"
        for callee in self.graph.successors(id(target)):
            if callee in self.impure and callee != id(target):
                scope = self._by_id.get(callee)
                if scope is not None:
                    return f"calls {scope.qualname}"
        return "calls an impure function"

    def _behaviour(self, scope: Scope, lo: int, hi: int, follow_calls: bool = True, vouched: bool = False) -> list[Reason]:
        """RX201/202/203/204/209 reasons for nodes lo..hi of `scope`. `vouched` (a pragma's
        pure=True) drops RX209 for calls the purity model does not know; known I/O, randomness
        and impure functions of this module still count."""
        info = self.info[id(scope)]
        declared = scope.global_decl | scope.nonlocal_decl
        out: list[Reason] = []
        for node in scope.nodes[lo : hi + 1]:
            facts = node.facts
            line = node.line
            if facts.yields:
                out.append(reason("RX204", line, detail="yield"))
            if facts.awaits:
                out.append(reason("RX204", line, detail="await"))
            for name in sorted(facts.defs & declared):
                which = "global" if name in scope.global_decl else "nonlocal"
                out.append(reason("RX203", line, detail=f"{which} {name}"))
            for name in sorted(facts.mods & declared):
                out.append(reason("RX203", line, detail=f"mutates global {name!r} in place"))
            for name in sorted({n for n in facts.uses if n in self.iterators and resolve(scope, n)[0] == "global"}):
                out.append(reason("RX203", line, detail=(f"reads the global iterator {name!r} (line {self.iterators[name]}): "
                                                         "using it advances it")))
            if follow_calls:
                for dunder in self._dunders_used(scope, node.id, node.id):
                    if id(dunder) in self.impure:
                        out.append(reason("RX209", line, detail=f"an operator may call {dunder.qualname}() ({self._why_impure(dunder)})"))
            for c in info.calls.get(node.id, ()):
                line = c.site.line or node.line
                if c.verdict == "io":
                    out.append(reason("RX201", line, detail=f"{c.site.dotted or c.full}()"))
                elif c.verdict == "random":
                    out.append(reason("RX202", line, detail=f"{c.site.dotted or c.full}()"))
                elif c.verdict == "impure" and not vouched:
                    detail = f"{c.full}()" if c.site.parts else "a call of a computed callee"
                    out.append(reason("RX209", line, detail=detail))
                elif c.verdict == "local" and follow_calls and c.target is not None and id(c.target) in self.impure:
                    out.append(reason("RX209", line, detail=f"{c.site.dotted}() ({self._why_impure(c.target)})"))
                if follow_calls:
                    for name, target in callable_arguments(scope, c.site):
                        if id(target) in self.impure:
                            out.append(reason("RX209", line, detail=f"passes {name} to {c.site.dotted or 'a call'}() ({self._why_impure(target)})"))
        return out

    def _dunders_used(self, scope: Scope, lo: int, hi: int) -> list[Scope]:
        """The module's operator methods (__add__, __getitem__ ...) that nodes lo..hi may call."""
        if not self.methods:
            return []
        found: list[Scope] = []
        for node in scope.nodes[lo : hi + 1]:
            for op in node.facts.operators:
                for name in dunder_names(op):
                    found += self.methods.get(name, [])
        return found

    def _alias_reasons(self, hits: Sequence[Hit]) -> list[Reason]:
        """RX203 for writes into globals (directly or through an alias), RX211 for writes through
        a name whose object regionx cannot trace."""
        out = []
        for h in hits:
            kind, name = h.origin
            if kind == "global":
                via = "" if h.expr == name else f" through {h.expr!r}"
                out.append(reason("RX203", h.line, detail=f"changes {name!r} in place{via}"))
            elif kind == "default":
                out.append(reason("RX203", h.line, detail=(
                    f"{h.expr} leaves out {name!r}, whose default value the callee changes in place (shared by every call)")))
            elif kind == "unknown":
                out.append(reason("RX211", h.line, expr=h.expr, detail=name))
        return out

    def _changed_defaults(self, scope: Scope) -> list[Reason]:
        """A function that changes a parameter's default object in place: called without that
        argument it changes state shared by every call (RX203 on the function region itself;
        its callers get RX203 only where they leave the argument out)."""
        changed = self.aliases.mutated_params(scope) & defaulted(scope)
        return [reason("RX203", scope.pos[0], detail=f"changes the default value of parameter {p!r} in place (shared by every call)")
                for p in sorted(changed)]

    def _method_reason(self, scope: Scope) -> Reason | None:
        """RX210 when `scope` is a method whose first parameter is the object (self/cls)."""
        owner = scope.parent
        node = scope.cst_node
        if owner is None or owner.kind != "class" or not scope.params or not isinstance(node, cst.FunctionDef):
            return None
        if any(isinstance(d.decorator, cst.Name) and d.decorator.value == "staticmethod" for d in node.decorators):
            return None
        return reason("RX210", scope.pos[0], name=scope.params[0], owner=owner.qualname)

    # -- interfaces ---------------------------------------------------------------------------
    def function_region(self, scope: Scope, arrays: Iterable[str] = (), vouched: bool = False) -> Region:
        """The function `scope` as a region; `arrays` are parameters declared with a shaped domain,
        `vouched` a pragma's pure=True."""
        info = self.info[id(scope)]
        flow = info.flow
        live = flow.live_out[0]  # after the entry node binds the parameters
        last = len(scope.nodes) - 1
        hits = self.aliases.hits(scope, 2, last, arrays)
        changed = {h.origin[1] for h in hits if h.origin[0] == "entry"}
        mutated = [p for p in scope.params if p in changed]
        inputs = [p for p in scope.params if (live >> flow.var_index[p]) & 1 or p in mutated]
        closure = sorted(n for n in scope.free if resolve(scope, n)[0] == "closure")
        inputs += [n for n in closure if n not in inputs]
        outputs: list[str] = []
        if any(r.value is not None for r in scope.returns):
            outputs.append("return")
        outputs += mutated
        comp_vars: set[str] = set()
        for node in scope.nodes:
            comp_vars |= node.facts.comp_vars
        taken = set(inputs) | set(outputs)
        internals = sorted((set(scope.variables()) | comp_vars) - taken)
        globals_, calls = self._names_and_calls(scope, 0, len(scope.nodes) - 1)
        reasons = self._behaviour(scope, 2, last, vouched=vouched) + self._function_flags(scope)
        reasons += self._alias_reasons(hits) + self._changed_defaults(scope)
        method = self._method_reason(scope)
        if method is not None:
            reasons.insert(0, method)
        if scope.has_yield:
            reasons.append(reason("RX204", scope.pos[0], detail=f"{scope.name} is a generator"))
        reasons += self._varying_function(scope, inputs, outputs)
        if not inputs:
            reasons.append(reason("RX206", scope.pos[0]))
        if not outputs:
            reasons.append(reason("RX207", scope.pos[0]))
        line, col, end = scope.pos
        return Region(
            id=scope.qualname, name=scope.qualname, kind="function", qualname=scope.qualname,
            start_line=line, end_line=end, col=col, annotated=False, inputs=tuple(inputs),
            outputs=tuple(outputs), internals=tuple(internals), globals=tuple(globals_),
            calls=tuple(calls), replaceable=not reasons, reasons=tuple(_dedupe(reasons)),
            params=tuple(scope.params),
        )

    def _names_and_calls(self, scope: Scope, lo: int, hi: int) -> tuple[list[str], list[str]]:
        """Module-level names read by nodes lo..hi (globals) and the dotted callees (calls)."""
        variables = self.info[id(scope)].flow.var_index
        seen: set[str] = set()
        globals_: set[str] = set()
        calls: set[str] = set()
        for node in scope.nodes[lo : hi + 1]:
            facts = node.facts
            for name in facts.uses:
                if name in seen or name in variables:
                    continue
                seen.add(name)
                where, _ = resolve(scope, name)
                if where in ("global", "unknown"):
                    globals_.add(name)
            for site in facts.calls:
                if site.parts:
                    calls.add(site.dotted)
        return sorted(globals_), sorted(calls)

    def span_region(self, span: _Span, arrays: Iterable[str] = (), vouched: bool = False) -> Region:
        """A loop or block as a region; `arrays` are inputs declared with a shaped domain,
        `vouched` a pragma's pure=True."""
        scope, lo, hi = span.scope, span.lo, span.hi
        flow = self.info[id(scope)].flow
        index = flow.var_index
        order: dict[str, int] = {}
        refs = 0
        written = 0
        comp_vars: set[str] = set()
        nonlocal_reads: set[str] = set()
        for node in scope.nodes[lo : hi + 1]:
            facts = node.facts
            for name in facts.uses:
                order.setdefault(name, len(order))
            for name in sorted(facts.defs):
                order.setdefault(name, len(order))
            for name in sorted(facts.mods):
                order.setdefault(name, len(order))
            refs |= flow.gen[node.id] | flow.kill[node.id] | flow.bits(facts.mods)
            written |= flow.kill[node.id] | flow.bits(facts.mods)
            comp_vars |= facts.comp_vars
            for name in facts.uses:
                if name not in index and name not in nonlocal_reads:
                    if resolve(scope, name)[0] == "closure":
                        nonlocal_reads.add(name)
        for name in order:  # names read only after a walrus in the same node still count as referenced
            bit = index.get(name)
            if bit is not None:
                refs |= 1 << bit
        live_exit = 0
        reach_exit = 0
        for u in range(lo, hi + 1):
            for w in flow.succ[u]:
                if w < lo or w > hi:
                    live_exit |= flow.live_in[w]
                    reach_exit |= flow.reach_out[u]
        inside = reach_exit & flow.site_range(lo, hi)
        hits = self.aliases.hits(scope, lo, hi, arrays)
        changed = {h.origin[1] for h in hits if h.origin[0] == "entry" and h.origin[1] in index}
        # an object changed in place is an output when it is read later or may be seen through another name
        escaping = {v for v in changed if (live_exit >> index[v]) & 1 or self._shared(scope, v, lo, hi)}
        refs |= flow.bits(changed)
        input_mask = (flow.live_in[lo] & refs) | flow.bits(changed)
        output_mask = 0
        candidates = written & live_exit
        while candidates:
            low = candidates & -candidates
            bit = low.bit_length() - 1
            if flow.var_sites[bit] & inside:
                output_mask |= low
            candidates ^= low
        output_mask |= flow.bits(escaping)
        rank = order.get
        inputs = sorted(flow.unpack(input_mask), key=lambda n: rank(n, 0))
        inputs += sorted(nonlocal_reads, key=lambda n: rank(n, 0))
        outputs = sorted(flow.unpack(output_mask), key=lambda n: rank(n, 0))
        taken = set(inputs) | set(outputs)
        internals = sorted((set(flow.unpack(refs)) | comp_vars) - taken)
        globals_, calls = self._names_and_calls(scope, lo, hi)
        reasons = self._behaviour(scope, lo, hi, vouched=vouched)
        reasons += self._alias_reasons(hits)
        reasons += self._aliased_inputs(scope, lo, sorted(changed), inputs, span.line)
        method = self._method_reason(scope)
        if method is not None and scope.params[0] in inputs:
            reasons.insert(0, method)
        reasons += self._jumps(scope, lo, hi)
        reasons += self._varying_span(scope, lo, hi, inputs, outputs)
        if not inputs:
            reasons.append(reason("RX206", span.line))
        if not outputs:
            reasons.append(reason("RX207", span.line))
        return Region(
            id=span.base_id, name=span.base_id, kind=span.kind, qualname=scope.qualname,  # type: ignore[arg-type]
            start_line=span.line, end_line=span.end_line, col=span.col, annotated=False,
            inputs=tuple(inputs), outputs=tuple(outputs), internals=tuple(internals),
            globals=tuple(globals_), calls=tuple(calls), replaceable=not reasons,
            reasons=tuple(_dedupe(reasons)), scratch=tuple(sorted(changed - escaping)),
        )

    def _aliased_inputs(self, scope: Scope, lo: int, changed: Sequence[str], inputs: Sequence[str], line: int) -> list[Reason]:
        """RX212 when an input the region changes may be the same object as another input: the
        surrogate is trained on inputs drawn separately, so it cannot reproduce the interaction."""
        if not changed:
            return []
        last = len(scope.nodes) - 1
        index = self.info[id(scope)].flow.var_index
        held = {u: set(self.aliases.objects(scope, cst.Name(u), lo, 1, last)) for u in inputs if u in index}
        out = []
        for v in changed:
            for u in inputs:
                if u != v and u in held and v in held and held[u] & held[v]:
                    origin = sorted(held[u] & held[v])[0]
                    where = origin[1].split(":")[0].replace("@", " bound at line ") if origin[0] == "alloc" else f"{origin[0]} {origin[1]!r}"
                    out.append(reason("RX212", line, a=v, b=u, detail=where))
        return out

    def _shared(self, scope: Scope, name: str, lo: int, hi: int) -> bool:
        """May the object `name` holds on entry to nodes lo..hi also be reached another way (a
        parameter's or global's object, or `name` read elsewhere, e.g. stored into a container)?"""
        objects = self.aliases.objects(scope, cst.Name(name), lo, 1, len(scope.nodes) - 1)
        if any(kind != "alloc" for kind, _ in objects):
            return True
        return any(name in node.facts.uses for node in scope.nodes if not lo <= node.id <= hi)

    def _jumps(self, scope: Scope, lo: int, hi: int) -> list[Reason]:
        out = []
        for node in scope.nodes[lo : hi + 1]:
            if node.kind == "return":
                out.append(reason("RX205", node.line, detail=f"'return' at line {node.line}"))
            elif node.kind in ("break", "continue") and node.target >= 0 and not lo <= node.target <= hi:
                out.append(reason("RX205", node.line, detail=f"'{node.kind}' at line {node.line} leaves the region"))
        return out

    def _in_loop(self, scope: Scope, lo: int, hi: int, node_id: int) -> bool:
        """Is node `node_id` inside the body of a loop lying within lo..hi?"""
        for loop in scope.loops:
            if lo <= loop.lo and loop.hi <= hi and loop.lo < node_id <= loop.hi:
                return True
        return False

    def _varying_span(self, scope: Scope, lo: int, hi: int, inputs: Sequence[str], outputs: Sequence[str]) -> list[Reason]:
        out = []
        wanted = set(outputs)
        sources_ok = set(inputs)
        for node in scope.nodes[lo : hi + 1]:
            facts = node.facts
            for name in sorted(facts.resize & wanted):
                if self._in_loop(scope, lo, hi, node.id):
                    out.append(reason("RX208", node.line, detail=f"{name!r} grows or shrinks inside a loop"))
            for name, sources in facts.comp_sources.items():
                if name in wanted and sources & sources_ok:
                    out.append(reason("RX208", node.line, detail=f"{name!r} is built by a comprehension over {', '.join(sorted(sources & sources_ok))}"))
        return out

    def _varying_function(self, scope: Scope, inputs: Sequence[str], outputs: Sequence[str]) -> list[Reason]:
        lo, hi = 2, len(scope.nodes) - 1
        out = self._varying_span(scope, lo, hi, inputs, [o for o in outputs if o != "return"])
        if "return" not in outputs:
            return out
        grown: dict[str, int] = {}
        built: dict[str, set[str]] = {}
        for node in scope.nodes:
            for name in node.facts.resize:
                if self._in_loop(scope, lo, hi, node.id):
                    grown.setdefault(name, node.line)
            for name, sources in node.facts.comp_sources.items():
                built.setdefault(name, set()).update(sources)
        params = set(inputs)
        for ret in scope.returns:
            value = ret.value
            if isinstance(value, cst.Name):
                name = value.value
                if name in grown:
                    out.append(reason("RX208", ret.line, detail=f"returned {name!r} grows inside a loop (line {grown[name]})"))
                elif built.get(name, set()) & params:
                    out.append(reason("RX208", ret.line, detail=f"returned {name!r} is built by a comprehension over an input"))
            elif isinstance(value, (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)):
                from regionx.analysis.names import comprehension_sources

                sources = comprehension_sources(value) or set()
                if sources & params:
                    out.append(reason("RX208", ret.line, detail="returns a comprehension over an input"))
        return out

    # -- discovery ------------------------------------------------------------------------------
    def spans(self) -> list[_Span]:
        out = []
        for scope in self.scopes:
            for loop in scope.loops:
                base = f"{scope.qualname}:{loop.kind}@{loop.line}"
                out.append(_Span("loop", scope, loop.lo, loop.hi, loop.line, loop.col, loop.end_line, base, loop=loop))
        return out

    def block_span(self, pragma: Pragma) -> tuple[_Span | None, str]:
        """The statements of one block lying exactly within the pragma's begin/end lines."""
        start, end = pragma.block_start, pragma.block_end
        if start is None or end is None:
            return None, "begin/end block without lines"
        positions = self.parsed.positions
        for scope in self.scopes:
            for suite in scope.suites:
                first = None
                for index, item in enumerate(suite):
                    pos = positions.get(item)
                    if pos is None:
                        continue
                    if first is None and pos[0] == start:
                        first = index
                    if first is not None and pos[2] == end:
                        lo = scope.stmt_range[suite[first]][0]
                        hi = scope.stmt_range[item][1]
                        fpos = positions[suite[first]]
                        base = f"{scope.qualname}:block@{fpos[0]}"
                        return _Span("block", scope, lo, hi, fpos[0], fpos[1], pos[2], base, pragma=pragma), ""
                    if first is not None and pos[2] > end:
                        break
        return None, (f"lines {start}-{end} between begin and end are not whole consecutive statements of one block")


def _dedupe(reasons: Iterable[Reason]) -> list[Reason]:
    seen: set[tuple[str, str]] = set()
    out = []
    for r in reasons:
        key = (r.code, r.message)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def analyze_parsed(parsed: Parsed, path: str, pragmas: Sequence[Pragma]) -> tuple[list[Region], list[Diagnostic]]:
    """All regions of a parsed module (functions, loops, annotated blocks) and pragma diagnostics."""
    analysis = ModuleAnalysis(parsed, path)
    diagnostics: list[Diagnostic] = []
    regions: list[Region] = []
    made: list[Scope | _Span] = []  # what each region was built from, to rebuild it with a pragma's array inputs
    by_start: dict[int, list[int]] = {}  # start line -> indexes of function/loop regions
    for scope in analysis.scopes:
        if scope.kind == "function":
            regions.append(analysis.function_region(scope))
            made.append(scope)
            by_start.setdefault(regions[-1].start_line, []).append(len(regions) - 1)
    for span in analysis.spans():
        regions.append(analysis.span_region(span))
        made.append(span)
        by_start.setdefault(span.line, []).append(len(regions) - 1)
    lines = parsed.text.splitlines()
    for pragma in pragmas:
        arrays = {spec.name for spec in pragma.domains if spec.shape}  # `x += v` on these is in place
        if pragma.is_block:
            block, detail = analysis.block_span(pragma)
            if block is None:
                diagnostics.append(make("RX101", path, pragma.line, pragma.col, detail=detail))
                continue
            regions.append(_annotate(analysis.span_region(block, arrays, pragma.pure), pragma))
            made.append(block)
            continue
        target = pragma.target_line or _next_code_line(lines, pragma.end_line)
        found = [i for i in by_start.get(target, []) if regions[i].kind in ("function", "loop")]
        if not found:
            diagnostics.append(make("RX107", path, pragma.line, pragma.col))
            continue
        index = found[0]
        if arrays or pragma.pure:  # rebuild with what the pragma declares
            source = made[index]
            regions[index] = (analysis.function_region(source, arrays, pragma.pure) if isinstance(source, Scope)
                              else analysis.span_region(source, arrays, pragma.pure))
        regions[index] = _annotate(regions[index], pragma)
    names = [r.name for r in regions if r.annotated]
    for r in regions:
        if r.annotated and names.count(r.name) > 1 and r.pragma is not None:
            diagnostics.append(make("RX101", path, r.pragma.line, r.pragma.col, detail=f"region name {r.name!r} is used twice"))
    # unique ids: pragma names are taken first (a pragma name wins over an unannotated function's
    # qualname); later duplicates (conditional redefinitions, the unannotated namesake) get '@line'
    taken: set[str] = set()
    final: list[Region] = []
    for r in sorted(regions, key=lambda r: (not r.annotated, r.start_line, -r.end_line, r.col)):
        if r.id in taken:
            r = replace(r, id=f"{r.id}@{r.start_line}", name=r.name if r.annotated else f"{r.id}@{r.start_line}")
        taken.add(r.id)
        final.append(r)
    for r in final:
        if r.pragma is None:
            continue
        for spec in r.pragma.domains:
            if spec.name not in r.inputs:
                diagnostics.append(make("RX104", path, r.pragma.line, r.pragma.col, name=spec.name, region=r.id))
    final.sort(key=lambda r: (r.start_line, -r.end_line, r.col))
    return final, diagnostics


def _annotate(region: Region, pragma: Pragma) -> Region:
    name = pragma.name or region.id
    return replace(region, id=name, name=name, annotated=True, pragma=pragma)


def _next_code_line(lines: list[str], after: int) -> int:
    index = after
    while index < len(lines):
        stripped = lines[index].strip()
        if stripped and not stripped.startswith("#"):
            return index + 1
        index += 1
    return after + 1


__all__ = ["ModuleAnalysis", "analyze_parsed", "reason"]
