"""The ``accept`` predicate, vectorised: one numpy expression over whole columns instead of a
Python call per row.

A region's pragma may carry ``accept="<predicate over inputs and outputs>"``; at run time a
surrogate answer that fails it is replaced by the exact code's (docs/design.md, "Pragma grammar"). A function's return
value is spelled ``result`` (``return`` is accepted too and respelled). The hoisted batch path and
the trainer/checker evaluate the predicate on thousands of rows at once, so `vectorize` translates
the expression into an equivalent elementwise numpy expression:

* arithmetic ``+ - * / // % **``, unary ``-``/``+``, numeric constants and names (columns);
* comparisons, chained ones too (``a < b < c`` -> ``((a < b) & (b < c))``);
* ``and``/``or``/``not`` -> ``&``/``|``/``~`` on truth values (a number's truth is ``!= 0``);
* ``abs`` -> np.abs, ``min``/``max`` with 2+ arguments -> np.minimum/np.maximum, ``pow`` -> np.power,
  ``math.<f>``/``np.<f>`` -> the numpy ufunc (math.pi/e/inf/nan -> np.pi ...);
* ``x if c else y`` -> np.where(c, x, y) (both branches are computed for every row).

Everything else (strings, subscripts, attribute access, other calls, ``is``/``in``, a truth value
used as a number ...) raises ValueError; callers then keep the per-row Python check.

Where Python would raise for one row (division by zero, math.sqrt of a negative number), numpy
gives inf/NaN; a comparison with NaN is False. `evaluate` additionally rejects every row in which
a value the predicate reads is NaN or infinite, so a NaN surrogate answer is never accepted.
"""

from __future__ import annotations

import ast
import functools
import math
import re
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from regionx.types import VarSpec

__all__ = ["RESULT", "spell_result", "names", "vectorize", "evaluate", "columns_for", "scalar_function"]

# How a function's return value is named in accept text.
RESULT = "result"

_BINOPS: dict[type, str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
}
_CMPOPS: dict[type, str] = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
}
# math.<name> -> numpy name (functions); every other math function is refused.
_MATH_FUNCS: dict[str, str] = {
    "sqrt": "sqrt", "exp": "exp", "expm1": "expm1", "log": "log", "log10": "log10", "log2": "log2",
    "log1p": "log1p", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "arcsin", "acos": "arccos",
    "atan": "arctan", "atan2": "arctan2", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh", "fabs": "abs", "hypot": "hypot",
    "floor": "floor", "ceil": "ceil", "trunc": "trunc", "copysign": "copysign", "pow": "power",
    "isfinite": "isfinite", "isnan": "isnan", "isinf": "isinf",
}
_CONSTANTS = {"pi": "pi", "e": "e", "inf": "inf", "nan": "nan"}
# numpy ufuncs whose result is a truth value (usable with and/or/not, not as a number)
_BOOL_UFUNCS = frozenset({"isfinite", "isnan", "isinf", "signbit", "logical_and", "logical_or", "logical_not",
                          "logical_xor", "less", "less_equal", "greater", "greater_equal", "equal", "not_equal"})
_NUMPY_MODULES = ("np", "numpy")

# kinds of a translated subexpression
_NUM, _BOOL = "num", "bool"


def spell_result(text: str) -> str:
    """`text` with a function output spelled ``return`` (as in manifests) respelled ``result``."""
    return re.sub(r"\breturn\b", RESULT, text.strip())


def _parse(text: str) -> ast.expr:
    try:
        tree = ast.parse(spell_result(text), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"accept predicate {text!r} is not a Python expression: {exc.msg}") from None
    return tree.body


def names(text: str) -> list[str]:
    """The variable names `text` reads (module and function names of calls excluded), in order."""
    seen: list[str] = []

    class V(ast.NodeVisitor):
        def visit_Call(self, node: ast.Call) -> None:
            if not isinstance(node.func, ast.Name):
                self.visit(node.func)
            for a in node.args:
                self.visit(a)
            for k in node.keywords:
                self.visit(k.value)

        def visit_Attribute(self, node: ast.Attribute) -> None:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("math", *_NUMPY_MODULES)):
                self.visit(node.value)

        def visit_Name(self, node: ast.Name) -> None:
            if node.id not in seen:
                seen.append(node.id)

    V().visit(_parse(text))
    return seen


class _Translator:
    def __init__(self, np_name: str, text: str) -> None:
        self.np = np_name
        self.text = text

    def fail(self, node: ast.AST, why: str) -> ValueError:
        try:
            part = ast.unparse(node)
        except Exception:  # pragma: no cover - unparse handles every expression node
            part = type(node).__name__
        return ValueError(f"accept predicate {self.text!r}: cannot vectorise {part!r}: {why}")

    def num(self, node: ast.expr) -> str:
        """Code of `node` as a number (a truth value here is refused)."""
        code, kind = self.expr(node)
        if kind != _NUM:
            raise self.fail(node, "a comparison, and/or/not or truth test used as a number")
        return code

    def truth(self, node: ast.expr) -> str:
        """Code of `node`'s truth value (Python's bool(x): a number is true when non-zero; NaN is true)."""
        if isinstance(node, ast.IfExp):  # in a truth context the branches may mix numbers and truth values
            return f"{self.np}.where({self.truth(node.test)}, {self.truth(node.body)}, {self.truth(node.orelse)})"
        code, kind = self.expr(node)
        return code if kind == _BOOL else f"({code} != 0)"

    def expr(self, node: ast.expr) -> tuple[str, str]:
        np_ = self.np
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                return repr(value), _BOOL
            if isinstance(value, (int, float)):
                if isinstance(value, float) and not math.isfinite(value):
                    return f"{np_}.{'nan' if math.isnan(value) else 'inf'}", _NUM  # not writable as a literal
                return f"({value!r})", _NUM
            raise self.fail(node, "only numeric constants are supported")
        if isinstance(node, ast.Name):
            return node.id, _NUM
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise self.fail(node, f"operator {type(node.op).__name__} is not supported")
            return f"({self.num(node.left)} {op} {self.num(node.right)})", _NUM
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return f"(~{self.truth(node.operand)})", _BOOL
            if isinstance(node.op, ast.USub):
                return f"(-{self.num(node.operand)})", _NUM
            if isinstance(node.op, ast.UAdd):
                return f"(+{self.num(node.operand)})", _NUM
            raise self.fail(node, "operator ~ is not supported")
        if isinstance(node, ast.BoolOp):
            joiner = " & " if isinstance(node.op, ast.And) else " | "
            return "(" + joiner.join(self.truth(v) for v in node.values) + ")", _BOOL
        if isinstance(node, ast.Compare):
            parts: list[str] = []
            left = self.num(node.left)
            for op_node, right_node in zip(node.ops, node.comparators):
                op = _CMPOPS.get(type(op_node))
                if op is None:
                    raise self.fail(node, f"comparison {type(op_node).__name__} is not supported")
                right = self.num(right_node)
                parts.append(f"({left} {op} {right})")
                left = right  # chained: a < b < c is (a < b) and (b < c)
            return (parts[0] if len(parts) == 1 else "(" + " & ".join(parts) + ")"), _BOOL
        if isinstance(node, ast.IfExp):
            cond = self.truth(node.test)
            body, kb = self.expr(node.body)
            other, ko = self.expr(node.orelse)
            if kb != ko:
                raise self.fail(node, "the two branches must both be numbers or both truth values")
            return f"{np_}.where({cond}, {body}, {other})", kb
        if isinstance(node, ast.Attribute):
            mod, attr = self._module_attr(node)
            if attr in _CONSTANTS and (mod == "math" or attr in ("pi", "e", "inf", "nan")):
                return f"{np_}.{_CONSTANTS[attr]}", _NUM
            raise self.fail(node, "attribute access other than math.pi/e/inf/nan or np.pi/e/inf/nan")
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(node, f"{type(node).__name__} is not supported")

    def _module_attr(self, node: ast.Attribute) -> tuple[str, str]:
        if isinstance(node.value, ast.Name) and node.value.id in ("math", *_NUMPY_MODULES):
            return node.value.id, node.attr
        raise self.fail(node, "only math.<name> and np.<name> are supported")

    def call(self, node: ast.Call) -> tuple[str, str]:
        np_ = self.np
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, "keyword or starred arguments")
        args = node.args
        if isinstance(node.func, ast.Name):
            fname = node.func.id
            if fname == "abs" and len(args) == 1:
                return f"{np_}.abs({self.num(args[0])})", _NUM
            if fname in ("min", "max") and len(args) >= 2:
                ufunc = f"{np_}.minimum" if fname == "min" else f"{np_}.maximum"
                code = self.num(args[0])
                for a in args[1:]:
                    code = f"{ufunc}({code}, {self.num(a)})"
                return code, _NUM
            if fname == "pow" and len(args) == 2:
                return f"{np_}.power({self.num(args[0])}, {self.num(args[1])})", _NUM
            raise self.fail(node, f"call of {fname}() (supported: abs, min/max of 2+ numbers, pow, math.*, np.*)")
        if isinstance(node.func, ast.Attribute):
            mod, attr = self._module_attr(node.func)
            if mod == "math":
                target = _MATH_FUNCS.get(attr)
                if target is None:
                    raise self.fail(node, f"math.{attr} has no elementwise numpy equivalent here")
            else:
                if not isinstance(getattr(np, attr, None), np.ufunc):
                    raise self.fail(node, f"np.{attr} is not a numpy ufunc")
                target = attr
            ufunc = getattr(np, target)
            if len(args) != ufunc.nin:
                raise self.fail(node, f"{mod}.{attr} takes {ufunc.nin} argument(s)")
            code = f"{np_}.{target}({', '.join(self.num(a) for a in args)})"
            return code, (_BOOL if target in _BOOL_UFUNCS else _NUM)
        raise self.fail(node, "only calls of names and math./np. functions")


def vectorize(text: str, np_name: str = "np") -> str:
    """`text` (a predicate over scalars) as an elementwise numpy expression over column arrays.

    The result is a boolean expression: names stay as they are (bind them to 1-d arrays or
    scalars), numpy is referred to as `np_name`. Evaluate it under ``np.errstate(all="ignore")``:
    where Python would raise for a row, numpy gives inf/NaN there. Raises ValueError naming the
    part that cannot be vectorised (see the module docstring for what can).
    """
    tree = _parse(text)
    return _Translator(np_name, text).truth(tree)


@functools.lru_cache(maxsize=64)
def _compiled(text: str) -> tuple[Any, tuple[str, ...]]:
    return compile(vectorize(text, "_rx_np"), "<accept>", "eval"), tuple(names(text))


def columns_for(inputs: Sequence[VarSpec], outputs: Sequence[VarSpec], X: np.ndarray, Y: np.ndarray,
                is_function: bool = True) -> dict[str, np.ndarray]:
    """Name -> column of the flattened X/Y for every scalar input and output; a function's output
    ``return`` is named ``result`` (array-shaped variables are not columns: a predicate cannot read them)."""
    cols: dict[str, np.ndarray] = {}
    for specs, M in ((inputs, X), (outputs, Y)):
        k = 0
        for v in specs:
            if not v.shape:
                cols[RESULT if (v.name == "return" and is_function) else v.name] = M[:, k]
            k += v.size
    return cols


def scalar_function(text: str, params: Sequence[str]) -> Callable[..., bool]:
    """The predicate as a plain Python function of `params` (as the patched scalar dispatcher runs it):
    math and np are available; an arithmetic error rejects (False)."""
    body = spell_result(text)
    ast.parse(body, mode="eval")  # SyntaxError early, with the text
    src = (f"def _accept({', '.join(params)}):\n"
           f"    try:\n        return bool({body})\n"
           f"    except (ArithmeticError, ValueError):\n        return False\n")
    env: dict[str, Any] = {"math": math, "np": np, "numpy": np}
    exec(compile(src, "<accept>", "exec"), env)  # noqa: S102 - the user's own predicate, as the patched program runs it
    fn: Callable[..., bool] = env["_accept"]
    return fn


def evaluate(text: str, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The predicate on every row of `columns` (name -> 1-d array, or a scalar): a bool mask.

    A row is rejected (False) when the predicate is false there or any value it reads is NaN or
    infinite. ``result`` (or ``return``) names a function's output. ValueError if the predicate
    cannot be vectorised or reads a name that is not a column.
    """
    code, used = _compiled(text)
    missing = [n for n in used if n not in columns]
    if missing:
        raise ValueError(f"accept predicate {text!r} reads {', '.join(missing)}, which is not an input or output "
                         f"(known: {', '.join(columns)})")
    arrays = {name: np.asarray(columns[name], dtype=np.float64) for name in used}
    lengths = {int(np.asarray(v).shape[0]) for v in columns.values() if np.ndim(v) >= 1}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    n = lengths.pop() if lengths else 1
    env: dict[str, Any] = {"_rx_np": np, **arrays}
    with np.errstate(all="ignore"):
        mask = np.asarray(eval(code, {"__builtins__": {}}, env), dtype=bool)  # noqa: S307 - code built by vectorize from a validated ast
        mask = np.broadcast_to(mask, (n,)).copy()
        for v in arrays.values():
            mask &= np.broadcast_to(np.isfinite(v), (n,))
    return mask
