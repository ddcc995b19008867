"""Aliasing: which objects an expression may refer to, and which inputs a write through it changes.

Every object a region can reach is described by where it came from, an *origin*:
  ("entry", v)    the object variable v held when the region began (a parameter's caller value,
                  or a variable bound before a loop/block region),
  ("global", g)   the object of a module-level or enclosing-function name g,
  ("unknown", d)  an object regionx cannot trace (d says where: the line and the expression),
  ("default", p)  the default value of parameter p of a called function (shared by every call),
  ("alloc", b)    a new object made by binding b inside the region's scope (so that two names
                  holding the same new object are seen to alias),
each with a *level*: 0 means "is v's object or part of it" (a view, an element, an attribute),
1 means "a container holding parts of v" (``[v]``, ``list(v)``), and so on. Writing into an
object at level 0 changes its origin; writing into a level-1 container does not, but writing
into one of its elements does (that element is at level 0). Levels go down by one for "an
element or part of" (subscript, attribute, iteration, unpacking) and up by one for "held by a
new container", clamped at 0 and capped at MAX_LEVEL; a lower level is always the safer answer.

Objects are traced backwards through reaching definitions (regionx.analysis.dataflow): a name's
objects at a node are the union over its binding sites reaching that node; a binding outside the
region (or the function's entry) is that name's entry object. Each binding records the
expression it binds (regionx.analysis.names.Facts.sources), evaluated here abstractly: views
(`np.asarray`, `.reshape`, `.T`, slices) keep the level, fresh results (arithmetic, `np.sqrt`,
`.astype()`) have no origin, shallow copies (`list(x)`, `sorted(x)`, `.copy()`) hold x's
elements, and a call of a same-module function returns what its own `return` statements may
return. Loops make definitions cyclic; evaluation repeats until no answer changes (answers only
grow or lower their levels, and levels are bounded, so this ends).

A write (Facts.mutated: item and attribute stores, mutating methods, `del x[i]`; plus `out=`
arguments, library functions such as `np.copyto`, and same-module functions that change a
parameter; and `x += v` when x may hold an array) changes every level-0 origin of its object.
regionx.analysis.regions turns entry origins into inputs/outputs, global origins into RX203 and
unknown origins into RX211.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import libcst as cst

from regionx.analysis.cfg import ENTRY, Node, Scope
from regionx.analysis.dataflow import Dataflow
from regionx.analysis.names import MUTATING_METHODS, CallSite, Facts, Mutated, Source, dotted_parts
from regionx.analysis.resolve import resolve

Origin = tuple[str, str]  # ("entry" | "global" | "unknown" | "default", variable name or description)
Objects = dict[Origin, int]  # origin -> the lowest level at which a value may hold it

MAX_LEVEL = 3  # deeper nesting counts as this level (lower is safer, so capping is sound)
MAX_ROUNDS = 30  # fixpoint rounds for cyclic definitions before answering "unknown"

ELEMENT = (-1,)
SAME: tuple[int, ...] = ()
HELD = (1,)
SHALLOW_COPY = (-1, 1)  # a new container holding the elements of its argument

# Methods whose result is (part of) the receiver's object, or holds its elements.
VIEW_METHODS: dict[str, tuple[int, ...]] = {
    "reshape": SAME, "view": SAME, "ravel": SAME, "transpose": SAME, "squeeze": SAME,
    "swapaxes": SAME, "diagonal": SAME, "keys": SAME, "values": SAME, "items": SAME,
    "__getitem__": ELEMENT, "get": ELEMENT, "pop": ELEMENT, "popitem": ELEMENT, "popleft": ELEMENT,
    "setdefault": ELEMENT, "__iter__": SAME, "__enter__": SAME, "item": ELEMENT,
    "copy": SHALLOW_COPY,  # a list's or dict's copy is shallow; an array's elements are numbers anyway
}
# Builtins returning their argument, part of it, or a new container of its elements.
BUILTIN_RESULTS: dict[str, tuple[int, ...]] = {
    "list": SHALLOW_COPY, "tuple": SHALLOW_COPY, "sorted": SHALLOW_COPY, "set": SHALLOW_COPY,
    "frozenset": SHALLOW_COPY, "dict": SHALLOW_COPY, "bytearray": SHALLOW_COPY,
    "iter": SAME, "enumerate": SAME, "zip": SAME, "reversed": SAME, "filter": SAME, "memoryview": SAME,
    "min": ELEMENT, "max": ELEMENT, "next": ELEMENT, "getattr": ELEMENT, "vars": SAME,
}
_ALL_ARGUMENTS = frozenset({"zip", "min", "max", "filter"})  # builtins whose result may come from any argument
# Library functions returning a view of (or a container of) their first argument.
VIEW_FUNCTIONS: dict[str, tuple[int, ...]] = {
    f"numpy.{name}": SAME for name in (
        "asarray", "asanyarray", "ascontiguousarray", "asfortranarray", "asfarray", "reshape", "ravel",
        "transpose", "squeeze", "swapaxes", "moveaxis", "rollaxis", "atleast_1d", "atleast_2d", "atleast_3d",
        "broadcast_to", "broadcast_arrays", "diagonal", "real", "imag", "expand_dims", "flip", "fliplr",
        "flipud", "rot90", "require", "asmatrix", "split", "array_split", "hsplit", "vsplit", "dsplit",
        "nditer", "ndenumerate",
    )
} | {"copy.copy": SHALLOW_COPY, "operator.getitem": ELEMENT, "itertools.chain": SAME,
     "itertools.islice": SAME, "itertools.product": SAME, "functools.reduce": ELEMENT}
# Library functions that change an argument in place: dotted path -> positions of those arguments.
MUTATING_FUNCTIONS: dict[str, tuple[int, ...]] = {
    "numpy.copyto": (0,), "numpy.fill_diagonal": (0,), "numpy.put": (0,), "numpy.place": (0,),
    "numpy.putmask": (0,), "numpy.put_along_axis": (0,), "numpy.random.shuffle": (0,),
    "random.shuffle": (0,), "heapq.heappush": (0,), "heapq.heappop": (0,), "heapq.heapify": (0,),
    "heapq.heapreplace": (0,), "heapq.heappushpop": (0,), "bisect.insort": (0,),
    "bisect.insort_left": (0,), "bisect.insort_right": (0,), "operator.setitem": (0,),
    "operator.delitem": (0,), "operator.iadd": (0,), "operator.isub": (0,), "operator.imul": (0,),
    "next": (0,),  # advances an iterator: a global iterator (itertools.count(), a generator) is state
}


# numpy functions that copy unless told not to: np.array(x, copy=False) may return x itself.
_COPY_UNLESS_TOLD = frozenset({"numpy.array"})
# numpy ufuncs by number of inputs: positional arguments after them are outputs written in place.
UFUNC_INPUTS: dict[str, int] = {f"numpy.{name}": 1 for name in (
    "negative positive absolute fabs sqrt square exp exp2 expm1 log log2 log10 log1p sin cos tan arcsin "
    "arccos arctan sinh cosh tanh arcsinh arccosh arctanh floor ceil trunc rint sign reciprocal cbrt "
    "deg2rad rad2deg degrees radians isnan isinf isfinite logical_not invert conjugate conj spacing signbit"
).split()} | {f"numpy.{name}": 2 for name in (
    "add subtract multiply divide true_divide floor_divide power float_power mod remainder fmod maximum "
    "minimum fmax fmin arctan2 hypot copysign logaddexp logaddexp2 ldexp greater greater_equal less "
    "less_equal equal not_equal logical_and logical_or logical_xor bitwise_and bitwise_or bitwise_xor "
    "left_shift right_shift heaviside nextafter gcd lcm matmul"
).split()}


def _no_copy(call: cst.Call) -> bool:
    """A `copy=False` or `copy=None` argument: the result may be the argument's own object."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "copy":
            return not (isinstance(arg.value, cst.Name) and arg.value.value == "True")
    return False


def mutating_positions(full: str) -> tuple[int, ...] | None:
    """Argument positions a library function (dotted path, imports resolved) changes in place."""
    found = MUTATING_FUNCTIONS.get(full)
    if found is not None:
        return found
    if full.startswith("numpy.") and full.endswith(".at") and full.count(".") == 2:  # np.add.at(a, idx, v)
        return (0,)
    return None


def _shift(objects: Objects, shifts: tuple[int, ...]) -> Objects:
    if not shifts:
        return objects
    out: Objects = {}
    for origin, level in objects.items():
        for step in shifts:
            level = min(MAX_LEVEL, max(0, level + step))
        out[origin] = level
    return out


def _join(into: Objects, more: Objects) -> None:
    for origin, level in more.items():
        old = into.get(origin)
        if old is None or level < old:
            into[origin] = level


def code_text(node: cst.CSTNode) -> str:
    """Short source text of an expression, for messages."""
    text = cst.Module([]).code_for_node(node).strip()
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Hit:
    """A write that changes an origin: what was written through, where, and which origin."""

    origin: Origin
    expr: str  # the expression written through, as source text
    line: int
    augmented: bool  # `x += v`: in place only if x holds an array


Env = dict[str, list[Source]]  # comprehension/lambda variable -> what it iterates over
Callee = tuple[str, object]  # see FullName


class FullName:
    """What a callee expression refers to: ("builtin", name), ("path", "numpy.asarray"),
    ("local", function scope), ("class", name), ("pure-method", name) or ("other", None)."""

    def __init__(self, pure_methods: frozenset[str], module_methods: dict[str, list[Scope]]) -> None:
        self.pure_methods = pure_methods  # read-only methods of numbers, strings, lists and arrays
        self.module_methods = module_methods  # method name -> the module's methods of that name

    def __call__(self, scope: Scope, func: cst.BaseExpression) -> Callee:
        parts = dotted_parts(func)
        if not parts:
            if isinstance(func, cst.Attribute) and self._read_only(func.attr.value):
                return "pure-method", func.attr.value
            return "other", None
        root = parts[0]
        where, binder = resolve(scope, root)
        if where == "builtin" and len(parts) == 1:
            return "builtin", root
        if binder is None:
            return "other", None
        kinds = binder.bind_kinds.get(root, set())
        if "import" in kinds and not ({"var", "param"} & kinds):
            base = binder.imports.get(root, root)
            return "path", ".".join((base,) + parts[1:])
        if len(parts) == 1 and not ({"var", "param", "import"} & kinds):
            if "def" in kinds:
                targets = [s for s in binder.defs.get(root, []) if s.kind == "function"]
                if len(targets) == 1:
                    return "local", targets[0]
            if "class" in kinds:
                return "class", root
        if len(parts) > 1 and ({"var", "param"} & kinds) and self._read_only(parts[-1]):
            return "pure-method", parts[-1]
        return "other", None

    def _read_only(self, method: str) -> bool:
        return method in self.pure_methods and method not in self.module_methods


class Aliases:
    """Answers "which origins may this expression's object have" for the scopes of one module.

    Answers depend on the region: bindings outside nodes lo..hi are entry objects. One instance
    serves one module; its caches are keyed by scope, node and region.
    """

    def __init__(self, flows: dict[int, Dataflow], full_name: Callable[[Scope, cst.BaseExpression], Callee]) -> None:
        self.flows = flows  # id(scope) -> its dataflow solution
        self.full_name = full_name  # what a callee refers to (FullName)
        self._memo: dict[tuple[int, str, int, int, int], Objects] = {}  # (scope, name, node, lo, hi) -> objects of that binding
        self._active: set[tuple[int, str, int, int, int]] = set()  # bindings under evaluation (cycle detection)
        self._cyclic = False  # this round met a binding under evaluation: repeat until stable
        self._changed = False  # a memo entry changed in this round
        self._visited: set[tuple[int, str, int, int, int]] = set()  # bindings evaluated in this round
        self._done: set[tuple[int, str, int, int, int]] = set()  # bindings whose memo entry is final
        self._returns: dict[int, Objects | None] = {}  # id(function) -> what it may return (None: being computed)
        self._mutates: dict[int, set[str] | None] = {}  # id(function) -> parameters it changes (None: being computed)
        self._like: dict[int, set[str]] = {}  # id(scope) -> names it uses like containers
        self._callees: dict[int, Callee] = {}  # id(callee expression) -> what it refers to

    # -- public -------------------------------------------------------------------------------
    def objects(self, scope: Scope, expr: cst.BaseExpression, node: int, lo: int, hi: int) -> Objects:
        """Origins of `expr`'s object, evaluated at `node` of `scope`, for the region lo..hi."""
        env = scope.nodes[node].facts.comp_env
        for _ in range(MAX_ROUNDS):
            self._cyclic = self._changed = False
            self._visited = set()
            result = self._eval(scope, expr, node, lo, hi, env)
            if not (self._cyclic and self._changed):
                self._done |= self._visited  # a round that changed nothing (or met no cycle) is exact
                return result
        return {("unknown", f"line {scope.nodes[node].line}: {code_text(expr)} (cyclic definitions)"): 0}

    def writes(self, scope: Scope, lo: int, hi: int) -> Iterator[tuple[Node, Mutated]]:
        """Every in-place write of nodes lo..hi, calls that change their arguments included."""
        for node in scope.nodes[lo : hi + 1]:
            facts = node.facts
            for mutated in facts.mutated:
                yield node, mutated
            for site in facts.calls:
                for expr in self._written_arguments(scope, site):
                    yield node, Mutated(expr, site.line or node.line)

    def changed_defaults(self, scope: Scope, lo: int, hi: int) -> list[Hit]:
        """Calls in nodes lo..hi of same-module functions that change a parameter's default object
        (a call leaving that argument out): state shared by every call, like a global."""
        out: list[Hit] = []
        for node in scope.nodes[lo : hi + 1]:
            for site in node.facts.calls:
                if site.node is None:
                    continue
                kind, target = self._callee(scope, site.node.func)
                if kind != "local" or not isinstance(target, Scope):
                    continue
                bound = bind_arguments(target, site.node)
                for name in sorted(self.mutated_params(target) & defaulted(target)):
                    if name not in bound:
                        out.append(Hit(("default", name), code_text(site.node), site.line or node.line, False))
        return out

    def hits(self, scope: Scope, lo: int, hi: int, arrays: Iterable[str] = ()) -> list[Hit]:
        """Origins changed in place by the writes of nodes lo..hi. `x += v` counts only when x's
        origin may hold an array: `arrays` (declared with a shape) or used like a container."""
        arrays = set(arrays)
        out: list[Hit] = self.changed_defaults(scope, lo, hi)
        for node, mutated in self.writes(scope, lo, hi):
            for origin, level in self.objects(scope, mutated.expr, node.id, lo, hi).items():
                if level != 0:
                    continue
                if mutated.augmented and not (origin[0] in ("entry", "global")
                                              and (origin[1] in arrays or origin[1] in self.container_like(scope))):
                    continue  # `x += v` on a number is a rebinding
                out.append(Hit(origin, code_text(mutated.expr), mutated.line, mutated.augmented))
        return out

    def returns(self, scope: Scope) -> Objects:
        """What a function may return, as origins (its parameters are entry origins)."""
        key = id(scope)
        if key in self._returns:
            cached = self._returns[key]
            return cached if cached is not None else {("unknown", f"a recursive call of {scope.qualname}"): 0}
        self._returns[key] = None
        out: Objects = {}
        last = len(scope.nodes) - 1
        for ret in scope.returns:
            if ret.value is not None:
                _join(out, self.objects(scope, ret.value, ret.node, 2, last))
        self._returns[key] = out
        return out

    def mutated_params(self, scope: Scope) -> set[str]:
        """Parameters whose caller's object a function changes in place."""
        key = id(scope)
        if key in self._mutates:
            cached = self._mutates[key]
            return cached if cached is not None else set(scope.params)  # recursion: assume the worst
        self._mutates[key] = None
        params = set(scope.params)
        out = {h.origin[1] for h in self.hits(scope, 2, len(scope.nodes) - 1)
               if h.origin[0] == "entry" and h.origin[1] in params}
        self._mutates[key] = out
        return out

    def container_like(self, scope: Scope) -> set[str]:
        """Names `scope` subscripts, takes attributes of or iterates over (cached)."""
        like = self._like.get(id(scope))
        if like is None:
            like = self._like[id(scope)] = container_like(scope)
        return like

    # -- evaluation ---------------------------------------------------------------------------
    def _callee(self, scope: Scope, func: cst.BaseExpression) -> Callee:
        """What a callee expression refers to (cached: every region holding the call asks again)."""
        found = self._callees.get(id(func))
        if found is None:
            found = self._callees[id(func)] = self.full_name(scope, func)
        return found

    def _eval(self, scope: Scope, expr: cst.BaseExpression, node: int, lo: int, hi: int, env: Env) -> Objects:
        if isinstance(expr, cst.Name):
            return self._name(scope, expr.value, node, lo, hi, env)
        if isinstance(expr, (cst.Attribute, cst.Subscript)):
            return _shift(self._eval(scope, expr.value, node, lo, hi, env), ELEMENT)
        if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
            out: Objects = {}
            for el in expr.elements:
                shifts = SHALLOW_COPY if isinstance(el, cst.StarredElement) else HELD
                _join(out, _shift(self._eval(scope, el.value, node, lo, hi, env), shifts))
            return out
        if isinstance(expr, cst.Dict):
            out = {}
            for item in expr.elements:
                shifts = HELD if isinstance(item, cst.DictElement) else SHALLOW_COPY
                _join(out, _shift(self._eval(scope, item.value, node, lo, hi, env), shifts))
            return out
        if isinstance(expr, cst.IfExp):
            out = self._eval(scope, expr.body, node, lo, hi, env)
            _join(out, self._eval(scope, expr.orelse, node, lo, hi, env))
            return out
        if isinstance(expr, cst.BooleanOperation):
            out = self._eval(scope, expr.left, node, lo, hi, env)
            _join(out, self._eval(scope, expr.right, node, lo, hi, env))
            return out
        if isinstance(expr, cst.NamedExpr):
            return self._eval(scope, expr.value, node, lo, hi, env)
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.Add, cst.Multiply)):
            # list + list, list * n: a new list holding the same elements (for arrays: a new array)
            out = _shift(self._eval(scope, expr.left, node, lo, hi, env), SHALLOW_COPY)
            _join(out, _shift(self._eval(scope, expr.right, node, lo, hi, env), SHALLOW_COPY))
            return out
        if isinstance(expr, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            return _shift(self._eval(scope, expr.elt, node, lo, hi, env), HELD)
        if isinstance(expr, cst.DictComp):
            return _shift(self._eval(scope, expr.value, node, lo, hi, env), HELD)
        if isinstance(expr, cst.Call):
            return self._call(scope, expr, node, lo, hi, env)
        if isinstance(expr, (cst.Await, cst.Yield)):
            return {("unknown", f"line {scope.nodes[node].line}: {code_text(expr)}"): 0}
        return {}  # numbers, strings, arithmetic, comparisons, lambdas: new or immutable objects

    def _name(self, scope: Scope, name: str, node: int, lo: int, hi: int, env: Env) -> Objects:
        if name in env:  # a comprehension or lambda variable: an element of what it iterates over
            outer = {k: v for k, v in env.items() if k != name}  # in `[x for x in x]` the iterable is the outer x
            out: Objects = {}
            for expr, shifts in env[name]:
                if expr is None:
                    out[("unknown", f"line {scope.nodes[node].line}: {name}, a lambda parameter")] = 0
                else:
                    _join(out, _shift(self._eval(scope, expr, node, lo, hi, outer), shifts))
            return out
        flow = self.flows[id(scope)]
        bit = flow.var_index.get(name)
        if bit is None:
            where, binder = resolve(scope, name)
            if where not in ("global", "closure") or binder is None:
                return {}
            if not ({"var", "param"} & binder.bind_kinds.get(name, set())):
                return {}  # a module, function or class: `np.sort(x)` writes no data of `np`
            return {("global", name): 0}
        out = {}
        sites = flow.reach_in[node] & flow.var_sites[bit]
        bound = False
        while sites:
            low = sites & -sites
            sites ^= low
            k = flow.site_node[low.bit_length() - 1]
            facts = scope.nodes[k].facts
            if name not in facts.defs and k != ENTRY:
                continue  # an in-place write site: the object stays the same
            bound = True
            if k == ENTRY or k < lo or k > hi:
                out[("entry", name)] = 0
            else:
                _join(out, self._binding(scope, name, k, lo, hi, facts))
        if not bound:
            out[("entry", name)] = 0  # read before any binding reaches: whatever it held on entry
        return out

    def _binding(self, scope: Scope, name: str, k: int, lo: int, hi: int, facts: Facts) -> Objects:
        key = (id(scope), name, k, lo, hi)
        if key in self._done:
            return dict(self._memo[key])
        if key in self._active:
            self._cyclic = True
            return dict(self._memo.get(key, {}))
        if key in self._visited:  # evaluated earlier in this round: its current value (rounds repeat until stable)
            return dict(self._memo.get(key, {}))
        self._visited.add(key)
        self._active.add(key)
        try:
            out: Objects = {}
            for expr, shifts in facts.sources.get(name, ()):
                if expr is None:
                    out[("unknown", f"line {facts.line}: {name}, bound by a pattern")] = 0
                else:
                    _join(out, _shift(self._eval(scope, expr, k, lo, hi, facts.comp_env), shifts))
        finally:
            self._active.discard(key)
        if not out and facts.sources.get(name):  # a new object: its own origin, so two names holding it alias
            out[("alloc", f"{name}@{facts.line}:{k}")] = 0
        old = self._memo.get(key)
        if old is not None:
            _join(out, old)
        if out != old:
            self._memo[key] = out
            self._changed = True
        return dict(out)

    def _arguments(self, scope: Scope, values: Iterable[cst.BaseExpression], shifts: tuple[int, ...],
                   node: int, lo: int, hi: int, env: Env) -> Objects:
        out: Objects = {}
        for value in values:
            _join(out, _shift(self._eval(scope, value, node, lo, hi, env), shifts))
        return out

    def _call(self, scope: Scope, call: cst.Call, node: int, lo: int, hi: int, env: Env) -> Objects:
        line = scope.nodes[node].line
        positional = [a.value for a in call.args if a.keyword is None and not a.star]
        every = [a.value for a in call.args]
        kind, target = self._callee(scope, call.func)
        if kind == "local" and isinstance(target, Scope):
            return self._local_call(scope, target, call, node, lo, hi, env)
        if kind == "class":
            return self._arguments(scope, every, HELD, node, lo, hi, env)  # an instance may keep its arguments
        if kind in ("builtin", "path") and isinstance(target, str):
            if kind == "builtin" and target in BUILTIN_RESULTS:
                chosen = every if target in _ALL_ARGUMENTS else positional[:1]
                return self._arguments(scope, chosen, BUILTIN_RESULTS[target], node, lo, hi, env)
            if kind == "path" and (target in VIEW_FUNCTIONS or (target in _COPY_UNLESS_TOLD and _no_copy(call))):
                return self._arguments(scope, positional[:1], VIEW_FUNCTIONS.get(target, SAME), node, lo, hi, env)
            if kind == "builtin" and target == "map":
                return self._unknown(self._arguments(scope, every, SAME, node, lo, hi, env), line, call)
            return {}  # numbers, new arrays, strings
        if isinstance(call.func, cst.Attribute):
            method = call.func.attr.value
            receiver = self._eval(scope, call.func.value, node, lo, hi, env)
            if method in VIEW_METHODS or (method == "astype" and _no_copy(call)):
                return _shift(receiver, VIEW_METHODS.get(method, SAME))
            if method in MUTATING_METHODS:
                return {}  # sort(), fill(), append() ... return None
            if kind == "pure-method":
                return {}  # sum(), mean(), astype(), tolist(), strip() ...: new objects or numbers
            _join(receiver, self._arguments(scope, every, SAME, node, lo, hi, env))
            return self._unknown(receiver, line, call)
        return self._unknown(self._arguments(scope, every, SAME, node, lo, hi, env), line, call)

    def _unknown(self, reached: Objects, line: int, call: cst.Call) -> Objects:
        """The result of a call regionx cannot follow: unknown when it was given anything traceable."""
        if not reached:
            return {}
        return {("unknown", f"line {line}: the result of {code_text(call)}"): 0}

    def _local_call(self, scope: Scope, target: Scope, call: cst.Call, node: int, lo: int, hi: int, env: Env) -> Objects:
        """A same-module function's result: its return origins, its parameters replaced by the arguments."""
        bound = bind_arguments(target, call)
        out: Objects = {}
        for origin, level in self.returns(target).items():
            if origin[0] == "entry" and origin[1] in target.params:
                value = bound.get(origin[1])
                if value is not None:
                    _join(out, _shift(self._eval(scope, value, node, lo, hi, env), (level,) if level else SAME))
                else:  # a default value: created once, shared by every call
                    _join(out, {("global", f"{target.qualname}'s default for {origin[1]}"): level})
            elif origin[0] != "alloc":  # the callee's new objects are new on every call
                _join(out, {origin: level})
        return out

    def _written_arguments(self, scope: Scope, site: CallSite) -> list[cst.BaseExpression]:
        """Argument expressions a call changes in place (library mutators, out=, same-module mutators)."""
        call = site.node
        if call is None:
            return []
        out = [a.value for a in call.args if a.keyword is not None and a.keyword.value == "out"]
        kind, target = self._callee(scope, call.func)
        positional = [a.value for a in call.args if a.keyword is None and not a.star]
        if kind in ("builtin", "path") and isinstance(target, str):
            for position in mutating_positions(target) or ():
                if position < len(positional):
                    out.append(positional[position])
            arity = UFUNC_INPUTS.get(target)
            if arity is not None:
                out += positional[arity:]  # np.multiply(a, b, a): positional outputs after the inputs
        elif kind == "local" and isinstance(target, Scope):
            changed = self.mutated_params(target)
            if changed:
                bound = bind_arguments(target, call)
                out += [bound[p] for p in target.params if p in changed and p in bound]
        return out


def bind_arguments(target: Scope, call: cst.Call) -> dict[str, cst.BaseExpression]:
    """Parameter name -> argument expression of a call of a same-module function (plain forms only)."""
    out: dict[str, cst.BaseExpression] = {}
    params = target.params
    position = 0
    for arg in call.args:
        if arg.star:
            break  # *args / **kwargs: positions unknown from here on
        if arg.keyword is not None:
            out[arg.keyword.value] = arg.value
        elif position < len(params):
            out[params[position]] = arg.value
            position += 1
    return out


def defaulted(target: Scope) -> set[str]:
    """Parameters of a function that have a default value."""
    node = target.cst_node
    if not isinstance(node, cst.FunctionDef):
        return set()
    params = node.params
    return {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params) if p.default is not None}


def container_like(scope: Scope) -> set[str]:
    """Names the scope subscripts, takes attributes of or iterates over: they may hold arrays or
    lists, so `x += v` on them may change the object in place."""
    found: set[str] = set()
    for node in scope.nodes:
        found |= node.facts.bases
    return found


__all__ = ["Aliases", "FullName", "Hit", "Objects", "Origin", "bind_arguments", "code_text", "container_like", "defaulted",
           "mutating_positions"]
