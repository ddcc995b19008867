"""Python's name resolution (LEGB) over regionx's scope tree: which scope a name read refers to."""

from __future__ import annotations

import builtins
from typing import Literal

from regionx.analysis.cfg import Scope

BUILTIN_NAMES = frozenset(dir(builtins))
Where = Literal["local", "closure", "global", "builtin", "unknown"]


def module_of(scope: Scope) -> Scope:
    while scope.parent is not None:
        scope = scope.parent
    return scope


def resolve(scope: Scope, name: str) -> tuple[Where, Scope | None]:
    """Where a read of `name` inside `scope` is looked up, and the scope that binds it.

    Class bodies are skipped for names read in nested functions (Python semantics); a name
    declared `global` goes straight to the module.
    """
    if name in scope.global_decl:
        module = module_of(scope)
        return ("global", module) if name in module.bind_kinds else (_builtin_or_unknown(name), None)
    if name in scope.bind_kinds and name not in scope.nonlocal_decl:
        return ("local" if scope.parent is not None else "global", scope)
    current = scope.parent
    while current is not None:
        if current.kind == "class":
            current = current.parent
            continue
        if current.parent is None:  # the module
            if name in current.bind_kinds:
                return "global", current
            break
        if name in current.bind_kinds and name not in current.nonlocal_decl:
            if name in current.global_decl:
                return resolve(current, name)
            return "closure", current
        current = current.parent
    return _builtin_or_unknown(name), None


def _builtin_or_unknown(name: str) -> Where:
    return "builtin" if name in BUILTIN_NAMES else "unknown"
