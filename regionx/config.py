"""`[tool.regionx]` settings from pyproject.toml; command-line options override them."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any


DEFAULT_ARTIFACTS = ".regionx"


@dataclass(frozen=True)
class Config:
    """The project's regionx settings (paths relative to the pyproject.toml's folder)."""

    root: str
    paths: tuple[str, ...] = ()
    artifacts: str = DEFAULT_ARTIFACTS
    samples: int = 1000
    tolerance: float | None = None
    target: float | None = None  # None: each manifest's own target (DEFAULT_TARGET when trained with defaults)
    patched: dict[str, str] = field(default_factory=dict)  # source file -> patched file to keep in sync
    design: str | None = None  # placement of random inputs (regionx.sampling.draw.DESIGNS); None: DEFAULT_DESIGN
    budget: float | None = None  # seconds of surrogate search per region; None: regionx.train.DEFAULT_BUDGET


def find_pyproject(start: str) -> str | None:
    """The nearest pyproject.toml at or above `start`."""
    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def load_config(start: str) -> Config:
    """Read `[tool.regionx]` from the nearest pyproject.toml (defaults when there is none).

    Raises ValueError with a one-line message for a malformed file or setting.
    """
    pyproject = find_pyproject(start)
    if pyproject is None:
        return Config(root=os.path.abspath(start))
    root = os.path.dirname(pyproject)
    try:
        with open(pyproject, "rb") as handle:
            table: dict[str, Any] = tomllib.load(handle).get("tool", {}).get("regionx", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{pyproject}: {exc}") from None

    def rel(p: str) -> str:
        return os.path.normpath(os.path.join(root, p))

    try:
        return Config(
            root=root,
            paths=tuple(rel(p) for p in table.get("paths", [])),
            artifacts=rel(table.get("artifacts", DEFAULT_ARTIFACTS)),
            samples=int(table.get("samples", 1000)),
            tolerance=float(table["tolerance"]) if "tolerance" in table else None,
            target=float(table["target"]) if "target" in table else None,
            patched={rel(k): rel(v) for k, v in table.get("patched", {}).items()},
            design=_design(table["design"]) if "design" in table else None,
            budget=_budget(table["budget"]) if "budget" in table else None,
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{pyproject}: bad [tool.regionx] setting: {exc}") from None


def _design(value: Any) -> str:
    """A `design` setting checked against regionx.sampling.draw.DESIGNS (ValueError otherwise)."""
    from regionx.sampling.draw import DESIGNS

    if value not in DESIGNS:
        raise ValueError(f"design must be one of {', '.join(DESIGNS)}, not {value!r}")
    return str(value)


def _budget(value: Any) -> float:
    """A `budget` setting: a positive number of seconds (ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"budget must be a positive number of seconds, not {value!r}")
    return float(value)
