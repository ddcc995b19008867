"""Loop headers and arguments as columns: what a batched loop reads row by row.

A header is what a `for` (or a comprehension's for clause) walks: a range (with its index
variable), zip(names), enumerate(name), or a sequence (its rows, maybe unpacked). An argument is
a column of `regionx.runtime.batch` when it reads the row (``S[i]``, an element, ``S[i][c]``,
``S[i, c]``, ``row[c]``, an unpacked name, ``S[i]``/``S[j]``/``S[i][j]`` in a grid) or is loop
invariant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import libcst as cst

from regionx.rewrite.common import source_of, tuple_code
from regionx.rewrite.defuse import Context, index_of, int_literal, invariant, reads_calls_or_items, target_names
from regionx.rewrite.sites import NotBatchable


@dataclass
class Header:
    """What a `for` header walks: the row index variable, the element variables, the rows."""

    loop: str  # range | zip | enumerate | for
    rows: str  # code: the range call, or a tuple of the walked sequences
    index: str | None  # the variable holding the row index (range, enumerate)
    elements: dict[str, tuple[str, str]]  # element variable -> (sequence code, runtime kind)
    walked: list[str]  # sequences walked (must be walkable twice)
    target: str  # code of the loop target
    names: set[str]  # every name the target binds


def header(ctx: Context, loop: cst.For | cst.CompFor) -> Header:
    """The header of a loop (or a comprehension's for clause) the column-wise form understands;
    raises NotBatchable otherwise."""
    it, target = loop.iter, loop.target
    bound = target_names(target)
    if bound is None or len(set(bound)) != len(bound):
        raise NotBatchable("header", "the loop target is not a name or a tuple of names")
    names = set(bound)
    tcode = source_of(target)
    if isinstance(it, cst.Call) and all(a.keyword is None and not a.star for a in it.args):
        kind = ctx.dotted(it.func)
        args = [a.value for a in it.args]
        if kind == "builtins.range" and len(args) in (1, 2) and isinstance(target, cst.Name):
            if ctx.impure(args) or reads_calls_or_items(args):
                raise NotBatchable("header", "the range bounds are not plain expressions")
            return Header("range", source_of(it), target.value, {}, [], tcode, names)
        if kind == "builtins.zip" and args and all(isinstance(a, cst.Name) for a in args) \
                and isinstance(target, cst.Tuple) and len(target.elements) == len(args):
            seqs = [a.value for a in args]  # type: ignore[attr-defined]
            return Header("zip", tuple_code(seqs), None, {n: (s, "r") for n, s in zip(bound, seqs)}, seqs, tcode, names)
        if kind == "builtins.enumerate" and len(args) == 1 and isinstance(args[0], cst.Name) \
                and isinstance(target, cst.Tuple) and len(bound) == 2 and len(target.elements) == 2:
            seq = args[0].value
            return Header("enumerate", tuple_code([seq]), bound[0], {bound[1]: (seq, "r")}, [seq], tcode, names)
        raise NotBatchable("header", f"the loop walks {source_of(it)}, not range(..), zip(names), enumerate(name) or a name")
    if isinstance(it, cst.Name):
        seq = it.value
        if isinstance(target, cst.Name):
            return Header("for", tuple_code([seq]), None, {target.value: (seq, "r")}, [seq], tcode, names)
        k = len(bound)
        return Header("for", tuple_code([seq]), None, {n: (seq, f"*{c}/{k}") for c, n in enumerate(bound)},
                      [seq], tcode, names)
    raise NotBatchable("header", f"the loop walks {source_of(it)}, not range(..), zip(names), enumerate(name) or a name")


def column_of(arg: cst.BaseExpression, heads: Sequence[Header], loop_names: set[str]) -> tuple[str, str] | None:
    """(column code, runtime kind) of one call argument in a (one- or two-level) loop, or None."""
    outer = heads[0]
    inner = heads[1] if len(heads) > 1 else None

    def is_var(node: cst.BaseExpression, name: str | None) -> bool:
        return name is not None and isinstance(node, cst.Name) and node.value == name

    if isinstance(arg, cst.Name) and inner is None and arg.value in outer.elements:
        return outer.elements[arg.value]
    idx = index_of(arg)
    if idx is not None and isinstance(arg, cst.Subscript):
        base = arg.value
        if isinstance(base, cst.Name) and base.value not in loop_names:
            if len(idx) == 1 and is_var(idx[0], outer.index):
                return base.value, "o" if inner else "r"
            if inner is not None and len(idx) == 1 and is_var(idx[0], inner.index):
                return base.value, "i"
            if len(idx) == 2 and is_var(idx[0], outer.index):
                if inner is not None and is_var(idx[1], inner.index):
                    return base.value, ",j"
                if inner is None and int_literal(idx[1]) is not None:
                    return base.value, f",{int_literal(idx[1])}"
        inner_idx = index_of(base)
        if inner_idx is not None and isinstance(base, cst.Subscript) and len(idx) == 1 and len(inner_idx) == 1:
            root = base.value
            if isinstance(root, cst.Name) and root.value not in loop_names and is_var(inner_idx[0], outer.index):
                if inner is not None and is_var(idx[0], inner.index):
                    return root.value, "[j]"
                if inner is None and int_literal(idx[0]) is not None:
                    return root.value, f"[{int_literal(idx[0])}]"
        if inner is None and isinstance(base, cst.Name) and base.value in outer.elements and len(idx) == 1:
            seq, kind = outer.elements[base.value]
            c = int_literal(idx[0])
            if kind == "r" and c is not None and outer.loop == "for":
                return seq, f"[{c}]"
    if invariant(arg, loop_names):
        return source_of(arg), "f"
    return None
