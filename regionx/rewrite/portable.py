"""The run-time helpers (regionx.runtime) as source text for a patched file.

A patched program needs numpy only, so the helpers it calls are copied into its loader block:
the real functions' source (`inspect.getsource`, as `regionx.sampling.harness.PORTABLE` does for
harnesses), with every helper name and numpy renamed under the ``_regionx_`` prefix (they must
not collide with the user's names) and the annotations dropped (a patched module has no
``from __future__ import annotations``, and its annotations would name typing objects it does
not import).
"""

from __future__ import annotations

import functools
import inspect
import textwrap
from typing import Sequence

import libcst as cst

from regionx import runtime
from regionx.rewrite.common import PREFIX

# The helpers a patched file may call, in the order they are written out.
HELPERS = ("extent", "_numeric", "item_of", "column_ok", "input_matrix", "_vector", "_block", "row_args",
           "gather_args", "_is_real", "_result_ok", "inside_box", "answer", "output_values", "_as_list",
           "outputs_ok", "_blocks", "store_list", "extend_rows", "store_rows", "last_target", "batch",
           "take_buffer", "keep_buffer", "map_rows", "traversable", "distinct", "store_into")


def helper_name(name: str) -> str:
    """The name a runtime helper has in a patched file."""
    return PREFIX + name.lstrip("_")


class _Portable(cst.CSTTransformer):
    """Renames helpers and numpy, drops annotations."""

    def __init__(self, renames: dict[str, str]) -> None:
        self.renames = renames
        self._keep: set[int] = set()  # ids of Name nodes that are attribute or keyword names

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._keep.add(id(node.attr))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._keep.add(id(node.keyword))

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        if id(original_node) in self._keep:
            return updated_node
        new = self.renames.get(original_node.value)
        return updated_node.with_changes(value=new) if new else updated_node

    def leave_Param(self, original_node: cst.Param, updated_node: cst.Param) -> cst.Param:
        return updated_node.with_changes(annotation=None)

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        return updated_node.with_changes(returns=None)

    def leave_AnnAssign(self, original_node: cst.AnnAssign, updated_node: cst.AnnAssign
                        ) -> cst.BaseSmallStatement | cst.RemovalSentinel:
        if updated_node.value is None:
            return cst.RemoveFromParent()
        return cst.Assign(targets=[cst.AssignTarget(updated_node.target)], value=updated_node.value)


def _references(name: str) -> set[str]:
    """Helpers the source of helper `name` refers to."""
    wanted = set(HELPERS)
    found: set[str] = set()

    class Names(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            if node.value in wanted and node.value != name:
                found.add(node.value)

    cst.parse_module(textwrap.dedent(inspect.getsource(getattr(runtime, name)))).visit(Names())
    return found


def closure(names: Sequence[str]) -> list[str]:
    """`names` and every helper they call, in HELPERS order."""
    todo, seen = list(names), set(names)
    while todo:
        for dep in _references(todo.pop()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return [h for h in HELPERS if h in seen]


@functools.lru_cache(maxsize=32)
def _source(names: tuple[str, ...]) -> str:
    renames = {h: helper_name(h) for h in HELPERS}
    renames["np"] = PREFIX + "np"
    parts = []
    for name in closure(names):
        text = textwrap.dedent(inspect.getsource(getattr(runtime, name)))
        parts.append(cst.parse_module(text).visit(_Portable(renames)).code.rstrip("\n") + "\n")
    return "\n\n".join(parts)


def runtime_source(names: Sequence[str]) -> str:
    """Source of the helpers `names` (and those they call) as a patched file carries them; it
    expects numpy imported as ``_regionx_np``."""
    return _source(tuple(sorted(set(names))))
