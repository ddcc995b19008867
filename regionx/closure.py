"""A region's dependency closure, hashed: the module-level statements its harness copies
(constants, globals, imports, same-module helpers), one Dependency each.

regionx.extract collects the closure while it builds a harness (`region_closure`); sampling
records it in the dataset, training in the manifest, and check, rewrite and train compare the
current closure with the recorded one to say what changed (`closure_changes`), beyond the
region's own lines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from regionx.types import Dependency

# How a dependency is named in messages, by kind.
_KIND_WORDS = {"constant": "module constant", "variable": "module variable", "function": "helper function",
               "class": "class", "import": "import of", "update": "in-place update of", "statement": "module statement"}
# At most this many changed dependencies are named in one message.
_MAX_NAMED = 5


@dataclass(frozen=True)
class Closure:
    """The module-level statements a region depends on (what its harness copies), hashed.

    `sha256` is "" and `problem` says why when the closure cannot be collected (the region no
    longer extracts, e.g. a name it reads is gone).
    """

    sha256: str
    dependencies: tuple[Dependency, ...] = ()
    problem: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"sha256": self.sha256, "dependencies": [d.to_json() for d in self.dependencies]}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> "Closure":
        deps = data.get("dependencies") or ()
        assert isinstance(deps, (list, tuple))
        return cls(sha256=str(data.get("sha256", "")), dependencies=tuple(Dependency.from_json(d) for d in deps))


def _keyed(dependencies: Sequence[Dependency]) -> dict[str, Dependency]:
    """Dependencies by name, a repeated name numbered (``X``, ``X#2``) in source order."""
    out: dict[str, Dependency] = {}
    for d in dependencies:
        key, k = d.name, 1
        while key in out:
            k += 1
            key = f"{d.name}#{k}"
        out[key] = d
    return out


def closure_sha256(dependencies: Sequence[Dependency]) -> str:
    """The one digest of a closure: independent of the statements' order in the file."""
    entries = sorted(f"{key}\t{d.kind}\t{d.sha256}" for key, d in _keyed(dependencies).items())
    return hashlib.sha256("\n".join(entries).encode("utf-8")).hexdigest()


def describe_dependency(d: Dependency) -> str:
    """``module constant ITERATIONS``, ``helper function step`` ..."""
    return f"{_KIND_WORDS.get(d.kind, d.kind)} {d.name}"


def closure_changes(recorded: Sequence[Dependency], current: Closure) -> list[str]:
    """What changed between a recorded closure and the current one, one phrase each
    (``module constant ITERATIONS changed``); empty when nothing itemisable changed."""
    if current.problem is not None:
        return [f"its dependencies cannot be collected any more ({current.problem})"]
    old, new = _keyed(recorded), _keyed(current.dependencies)
    changes = []
    for key, d in new.items():
        if key not in old:
            changes.append(f"new dependency: {describe_dependency(d)}")
        elif old[key].sha256 != d.sha256:
            changes.append(f"{describe_dependency(d)} changed")
    changes += [f"{describe_dependency(d)} is no longer a dependency" for key, d in old.items() if key not in new]
    if len(changes) > _MAX_NAMED:
        changes = changes[:_MAX_NAMED] + [f"{len(changes) - _MAX_NAMED} more"]
    return changes
