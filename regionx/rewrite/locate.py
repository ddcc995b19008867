"""The region's statements for the rewrite: the shared locator (`regionx.analysis.locate`) and the
rewrite's own refusals on top of it (methods, async functions)."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper

from regionx.analysis.locate import NotFound, locate_region
from regionx.rewrite.common import RewriteError
from regionx.types import Region


@dataclass
class Target:
    """What to replace: statements of one body (by identity), and what kind of replacement."""

    kind: str  # function | loop | block
    stmts: list[cst.BaseStatement]
    line: int
    col: int


def locate(wrapper: MetadataWrapper, region: Region) -> Target:
    """The statements `region` names in `wrapper`'s module; RewriteError (RX505) when there are
    none, or when the region is a method or an async function (which the rewrite cannot replace)."""
    found = locate_region(wrapper, region)
    if isinstance(found, NotFound):
        raise RewriteError(found.reason, line=found.line)
    if region.kind == "function":
        fn = found.node
        assert isinstance(fn, cst.FunctionDef)
        if found.in_class:
            raise RewriteError("methods are not supported yet; rewrite a module-level or nested function", line=found.line)
        if fn.asynchronous is not None:
            raise RewriteError("async functions cannot be replaced", line=found.line)
    return Target(region.kind, list(found.statements), found.line, found.col)
