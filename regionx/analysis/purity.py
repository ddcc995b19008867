"""Which calls are pure: whitelists, name resolution, and a call graph of the module's functions.

A call is classified as pure (known-pure builtin, math/numpy function, read-only method),
I/O (RX201), randomness or clock (RX202), a mutation of a local container (not an impurity:
the analysis treats it as a write), a call of a function of the same module (followed through
its body with a networkx call graph; cycles are fine when every member is pure), or unknown
(RX209).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Mapping

import libcst as cst
import networkx as nx

from regionx.analysis.alias import mutating_positions
from regionx.analysis.cfg import Scope
from regionx.analysis.names import MUTATING_METHODS, CallSite, dotted_parts
from regionx.analysis.resolve import resolve

Verdict = Literal["pure", "io", "random", "mutation", "local", "impure"]

PURE_BUILTINS = frozenset({
    "abs", "all", "any", "ascii", "bin", "bool", "bytes", "callable", "chr", "complex", "divmod",
    "enumerate", "filter", "float", "format", "frozenset", "hash", "hex", "int", "isinstance",
    "issubclass", "iter", "len", "list", "map", "max", "min", "next", "oct", "ord", "pow", "range",
    "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "type", "zip",
    "dict", "bytearray", "memoryview", "getattr", "hasattr", "id", "object", "super", "property",
    "staticmethod", "classmethod", "ValueError", "TypeError", "ZeroDivisionError", "ArithmeticError",
    "OverflowError", "IndexError", "KeyError", "RuntimeError", "StopIteration", "Exception",
    "AssertionError", "NotImplementedError", "FloatingPointError",
})
PURE_BUILTINS = PURE_BUILTINS | frozenset(
    n for n in dir(__import__("builtins")) if isinstance(getattr(__import__("builtins"), n), type)
    and issubclass(getattr(__import__("builtins"), n), BaseException))  # raising builds an exception: no effect
IO_BUILTINS = frozenset({"print", "open", "input", "breakpoint", "help"})
# Read-only methods of numbers, strings, lists, dicts and numpy arrays.
PURE_METHODS = frozenset({
    "copy", "count", "index", "get", "keys", "values", "items", "startswith", "endswith", "strip",
    "lstrip", "rstrip", "split", "rsplit", "join", "lower", "upper", "replace", "format", "find",
    "rfind", "isdigit", "isalpha", "isspace", "conjugate", "real", "imag", "is_integer", "hex",
    "bit_length", "sum", "mean", "std", "var", "min", "max", "prod", "argmin", "argmax", "all", "any",
    "dot", "reshape", "ravel", "flatten", "transpose", "astype", "tolist", "item", "round", "clip",
    "cumsum", "cumprod", "squeeze", "swapaxes", "trace", "diagonal", "nonzero", "searchsorted",
    "union", "intersection", "difference", "symmetric_difference", "issubset", "issuperset",
    "isdisjoint", "encode", "decode", "__getitem__", "__len__", "__contains__", "view", "take",
    "repeat", "conj", "ptp", "nbytes", "tobytes",
})
PURE_MODULES = ("math.", "cmath.", "operator.", "numpy.linalg.", "numpy.fft.", "numpy.polynomial.", "itertools.",
                "statistics.", "scipy.special.", "scipy.linalg.", "scipy.integrate.", "scipy.optimize.",
                "scipy.interpolate.", "scipy.stats.", "scipy.spatial.distance.", "scipy.signal.", "functools.reduce", "fractions.",
                "decimal.", "copy.copy", "copy.deepcopy", "bisect.bisect", "heapq.nlargest",
                "heapq.nsmallest", "numbers.", "typing.", "dataclasses.replace", "json.dumps",
                "json.loads", "struct.pack", "struct.unpack", "string.", "re.", "os.path.join",
                "os.path.basename", "os.path.dirname", "os.path.splitext")
NUMPY_PURE = frozenset("""
abs absolute add all allclose amax amin angle any append arange arccos arccosh arcsin arcsinh
arctan arctan2 arctanh argmax argmin argsort around array array_equal asarray ascontiguousarray
atleast_1d atleast_2d atleast_3d average bitwise_and bitwise_or broadcast_arrays broadcast_to cbrt
ceil clip column_stack concatenate conj conjugate copy copysign cos cosh count_nonzero cross cumprod
cumsum deg2rad degrees diag diagonal diff divide dot dstack einsum empty empty_like equal exp exp2
expm1 eye fabs fix flip floor floor_divide fmax fmin fmod frexp full full_like greater greater_equal
hstack hypot identity inner interp isclose isfinite isinf isnan kron ldexp less less_equal linspace
log log10 log1p log2 logaddexp logical_and logical_not logical_or logical_xor logspace matmul max
maximum mean median meshgrid min minimum mod multiply nan_to_num nanmax nanmean nanmin nansum
negative nonzero not_equal ones ones_like outer percentile polyval positive power prod ptp rad2deg
radians ravel reciprocal remainder repeat reshape rint roll rot90 round searchsorted sign signbit
sin sinc sinh size sort sqrt square squeeze stack std subtract sum swapaxes take tan tanh tensordot
tile trace transpose trapz tril triu true_divide trunc unique var vdot vstack where zeros zeros_like
float64 float32 int64 int32 complex128 asfarray shape ndim isscalar result_type dtype
""".split())
RANDOM_PREFIXES = ("random.", "numpy.random.", "time.", "os.urandom", "uuid.", "secrets.",
                   "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
                   "datetime.date.today", "datetime.now", "datetime.utcnow", "datetime.today", "date.today")
IO_PREFIXES = ("logging.", "sys.stdout.", "sys.stderr.", "sys.stdin.", "builtins.print", "builtins.open",
               "builtins.input", "io.", "os.", "shutil.", "subprocess.", "socket.", "pickle.dump",
               "pickle.load", "json.dump", "json.load", "numpy.save", "numpy.load", "numpy.savetxt",
               "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromfile", "pathlib.", "tempfile.",
               "urllib.", "requests.", "csv.", "sqlite3.", "glob.", "warnings.warn", "sys.exit")
IO_METHODS = frozenset({"write", "read", "readline", "readlines", "writelines", "flush", "close",
                        "send", "recv", "seek", "tell", "truncate", "fileno"})


@dataclass(frozen=True)
class Classified:
    """The verdict on one call site."""

    site: CallSite
    verdict: Verdict
    full: str  # the callee with import aliases resolved ("numpy.sqrt"), or as written
    target: Scope | None = None  # for "local": the function scope called
    root: str | None = None  # for "mutation": the mutated name


# numpy functions that change process-wide state or touch files: everything else in numpy's top
# namespace computes a new value (ufuncs without out=; out= is a write the alias analysis tracks).
NUMPY_STATEFUL = frozenset({
    "seterr", "seterrcall", "set_printoptions", "setbufsize", "set_string_function", "memmap", "save",
    "savez", "savez_compressed", "load", "loadtxt", "savetxt", "genfromtxt", "fromfile", "fromregex",
    "testing", "random", "show_config", "info", "source", "lookfor",
})
# Functions taking callables (integrands, right-hand sides, objectives, key=): pure only when the
# callables passed are pure, which regions.ModuleAnalysis checks at each call (callable_arguments).
HIGHER_ORDER_PREFIXES = ("scipy.integrate.", "scipy.optimize.", "functools.reduce", "builtins.map")


def classify_path(full: str) -> Verdict:
    """Verdict for an imported dotted path such as "numpy.sqrt" or "random.uniform"."""
    if mutating_positions(full) is not None and not full.startswith(RANDOM_PREFIXES):
        return "mutation"  # np.copyto, heapq.heappush ...: the write is tracked by regionx.analysis.alias
    if full.startswith(RANDOM_PREFIXES) and not full.startswith("time.struct_time"):
        return "random"
    if full.startswith("scipy.stats.") and full.rsplit(".", 1)[-1] in ("rvs", "random_state", "sample"):
        return "random"
    if full.startswith(PURE_MODULES):
        return "pure"
    if full.startswith(IO_PREFIXES):
        return "io"
    if full.startswith("numpy.") and full.count(".") == 1 and full.split(".", 1)[1] in NUMPY_PURE:
        return "pure"
    if full.startswith("numpy.") and full.split(".")[1] not in NUMPY_STATEFUL and not full.startswith(IO_PREFIXES):
        return "pure"  # np.foo, np.add.reduce, np.ma.masked_invalid ...
    if full in ("numpy.ndarray.copy",):
        return "pure"
    return "impure"


# operator node type (names.Facts.operators) -> the dunder stems it may call on a module class
_OPERATOR_DUNDERS = {
    "Add": "add", "Subtract": "sub", "Multiply": "mul", "Divide": "truediv", "FloorDivide": "floordiv",
    "Modulo": "mod", "Power": "pow", "MatrixMultiply": "matmul", "BitAnd": "and", "BitOr": "or",
    "BitXor": "xor", "LeftShift": "lshift", "RightShift": "rshift",
}
_UNARY_DUNDERS = {"Minus": "__neg__", "Plus": "__pos__", "BitInvert": "__invert__", "Subscript": "__getitem__"}


def dunder_names(operator: str) -> tuple[str, ...]:
    """Methods an operator may call: `a + b` -> __add__, __radd__, __iadd__."""
    stem = _OPERATOR_DUNDERS.get(operator)
    if stem is not None:
        return (f"__{stem}__", f"__r{stem}__", f"__i{stem}__")
    single = _UNARY_DUNDERS.get(operator)
    return (single,) if single is not None else ()


def module_methods(scopes: Iterable[Scope]) -> dict[str, list[Scope]]:
    """Method name -> the methods of that name defined by the module's classes."""
    out: dict[str, list[Scope]] = {}
    for scope in scopes:
        if scope.kind == "function" and scope.parent is not None and scope.parent.kind == "class":
            out.setdefault(scope.name, []).append(scope)
    return out


def _method_of_module(site: CallSite, method: str, methods: dict[str, list[Scope]] | None) -> Classified | None:
    """`x.method()` on a value of unknown type, where a module class defines `method`: it may be that one."""
    found = (methods or {}).get(method)
    if not found:
        return None
    if len(found) == 1:
        return Classified(site, "local", site.dotted or method, target=found[0])
    return Classified(site, "impure", f"{site.dotted or method} (one of {len(found)} methods named {method!r})")


def classify(scope: Scope, site: CallSite, methods: dict[str, list[Scope]] | None = None) -> Classified:
    """Classify one call made in `scope`; `methods` (module_methods) lets `x.m()` reach a module class's m."""
    parts = site.parts
    if not parts:
        if site.root is not None and site.method is not None:
            where, binder = resolve(scope, site.root)
            kinds = binder.bind_kinds.get(site.root, set()) if binder is not None else set()
            if {"var", "param"} & kinds:
                written = f"{site.root}...{site.method}"
                local = _method_of_module(site, site.method, methods)
                if local is not None:
                    return local
                if site.method in MUTATING_METHODS:
                    return Classified(site, "mutation", written, root=site.root)
                if site.method in PURE_METHODS:
                    return Classified(site, "pure", written)
                if site.method in IO_METHODS:
                    return Classified(site, "io", written)
        return Classified(site, "impure", "<expression>")
    root = parts[0]
    where, binder = resolve(scope, root)
    kinds = binder.bind_kinds.get(root, set()) if binder is not None else set()
    written = site.dotted
    if where in ("builtin", "unknown"):
        if len(parts) == 1:
            if root in IO_BUILTINS:
                return Classified(site, "io", written)
            if root in PURE_BUILTINS:
                return Classified(site, "pure", written)
        return Classified(site, "impure", written)
    assert binder is not None
    if "import" in kinds and not ({"var", "param"} & kinds):
        base = binder.imports.get(root, root)
        full = ".".join((base,) + parts[1:])
        if written.startswith(("sys.stdout", "sys.stderr", "sys.stdin")) or full.startswith(("sys.stdout", "sys.stderr", "sys.stdin")):
            return Classified(site, "io", full)
        return Classified(site, classify_path(full), full)
    if len(parts) == 1:
        if "def" in kinds and not ({"var", "param", "import"} & kinds):
            targets = [s for s in binder.defs.get(root, []) if s.kind == "function"]
            if len(targets) == 1:
                return Classified(site, "local", written, target=targets[0])
        return Classified(site, "impure", written)
    method = parts[-1]
    if "class" in kinds and len(parts) == 2 and not ({"var", "param"} & kinds):
        # Cls.static_or_class_method(...) of a class of this module
        for cls in binder.defs.get(root, []):
            found = [s for s in cls.defs.get(method, []) if s.kind == "function"]
            if len(found) == 1:
                return Classified(site, "local", written, target=found[0])
        return Classified(site, "impure", written)
    if {"var", "param"} & kinds:
        if len(parts) == 2 and root in ("self", "cls") and scope.params[:1] == [root]:
            owner = scope.parent
            if owner is not None and owner.kind == "class":
                own = [s for s in owner.defs.get(method, []) if s.kind == "function"]
                if len(own) == 1:
                    return Classified(site, "local", written, target=own[0])
        if len(parts) == 2:
            local = _method_of_module(site, method, methods)
            if local is not None:
                return local
        if method in MUTATING_METHODS:
            return Classified(site, "mutation", written, root=root)
        if method in IO_METHODS:
            return Classified(site, "io", written)
        if method in PURE_METHODS:
            return Classified(site, "pure", written)
    return Classified(site, "impure", written)


def callable_arguments(scope: Scope, site: CallSite) -> list[tuple[str, Scope]]:
    """Functions of this module passed as values in a call (`quad(f, 0, 1)`, `sorted(xs, key=g)`):
    the callee may call them, so their purity is the call's."""
    call = site.node
    if call is None:
        return []
    out: list[tuple[str, Scope]] = []
    for arg in call.args:
        value = arg.value
        if not isinstance(value, cst.Name):
            continue
        where, binder = resolve(scope, value.value)
        if binder is None or where == "builtin":
            continue
        kinds = binder.bind_kinds.get(value.value, set())
        if "def" in kinds and not ({"var", "param", "import"} & kinds):
            for target in binder.defs.get(value.value, []):
                if target.kind == "function":
                    out.append((value.value, target))
    return out


def call_graph(scopes: Iterable[Scope], classified: dict[int, list[Classified]]) -> nx.DiGraph:
    """Function scope -> function scopes it calls (edges between id(scope) keys)."""
    graph = nx.DiGraph()
    for scope in scopes:
        graph.add_node(id(scope))
        for c in classified.get(id(scope), []):
            if c.verdict == "local" and c.target is not None:
                graph.add_edge(id(scope), id(c.target))
            for _, target in callable_arguments(scope, c.site):
                graph.add_edge(id(scope), id(target))
    return graph


def impure_closure(graph: nx.DiGraph, locally_impure: set[int]) -> set[int]:
    """Every function that is impure itself or reaches an impure function through calls."""
    impure: set[int] = set()
    reverse = graph.reverse(copy=False)
    for node in locally_impure:
        if node in impure or node not in graph:
            impure.add(node)
            continue
        impure.add(node)
        impure |= nx.descendants(reverse, node)
    return impure


# Callables whose result is an iterator: reading one advances it, so a module-level one is state.
ITERATOR_BUILTINS = frozenset({"iter", "map", "filter", "zip", "enumerate", "reversed"})


def iterator_globals(module: Scope, positions: Mapping[cst.CSTNode, tuple[int, int, int]]) -> dict[str, int]:
    """Module-level names that may hold an iterator (name -> line of the assignment): bound to
    iter()/map()/zip()/..., anything from itertools, a generator expression, a call of one of the
    module's generator functions, or another such name. A function that reads one may advance it
    (`next(G)`, `for v in G`, `sum(G)`): that changes state every later call sees (RX203)."""
    if not isinstance(module.cst_node, cst.Module):
        return {}
    generators = {s.name for s in module.children if s.kind == "function" and s.has_yield}
    found: dict[str, int] = {}

    def makes_iterator(value: cst.BaseExpression) -> bool:
        if isinstance(value, cst.GeneratorExp):
            return True
        if isinstance(value, cst.Name) and value.value in found:
            return True
        if not isinstance(value, cst.Call):
            return False
        parts = dotted_parts(value.func)
        if not parts:
            return False
        head = module.imports.get(parts[0])
        full = ".".join(((head,) if head else parts[:1]) + parts[1:])
        if head is None and len(parts) == 1:
            return parts[0] in generators or (parts[0] in ITERATOR_BUILTINS and parts[0] not in module.bind_kinds)
        return full.startswith("itertools.")

    changed = True
    while changed:  # G = H after H = iter(...): until no new name is found
        changed = False
        for statement in module.cst_node.body:
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            for small in statement.body:
                value, targets = _assigned(small)
                if value is None or not makes_iterator(value):
                    continue
                for name in targets:
                    if name not in found:
                        found[name] = positions.get(statement, (0, 1, 0))[0]
                        changed = True
    return found


def _assigned(small: cst.BaseSmallStatement) -> tuple[cst.BaseExpression | None, list[str]]:
    """(value, plain names bound) of an assignment statement; (None, []) for anything else."""
    if isinstance(small, cst.Assign):
        return small.value, [t.target.value for t in small.targets if isinstance(t.target, cst.Name)]
    if isinstance(small, cst.AnnAssign) and small.value is not None and isinstance(small.target, cst.Name):
        return small.value, [small.target.value]
    return None, []
