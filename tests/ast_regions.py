"""Function and loop regions found with ast: a stand-in for regionx.analysis in the instrument and
profile tests, so that they test instrumentation, not the analyzer."""

from __future__ import annotations

import ast

from regionx.types import Region


def make_region(id: str, kind: str, qualname: str, start: int, end: int, inputs: tuple[str, ...] = ()) -> Region:
    return Region(id=id, name=id, kind=kind, qualname=qualname, start_line=start, end_line=end, col=1,  # type: ignore[arg-type]
                  annotated=False, inputs=inputs, outputs=(), internals=(), globals=(), calls=(), replaceable=True)


def simple_regions(text: str) -> tuple[Region, ...]:
    """Function and loop regions found with ast (a stand-in for regionx.analysis in these tests)."""
    regions: list[Region] = []

    def walk(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = ".".join([*scope, child.name])
                start = min([child.lineno, *[d.lineno for d in child.decorator_list]])
                params = tuple(a.arg for a in child.args.args)
                regions.append(make_region(qual, "function", qual, start, child.end_lineno or start, params))
                walk(child, [*scope, child.name])
            elif isinstance(child, ast.ClassDef):
                walk(child, [*scope, child.name])
            elif isinstance(child, (ast.For, ast.While)):
                qual = ".".join(scope) or "<module>"
                kind = "for" if isinstance(child, ast.For) else "while"
                regions.append(make_region(f"{qual}:{kind}@{child.lineno}", "loop", qual, child.lineno, child.end_lineno or child.lineno))
                walk(child, scope)
            else:
                walk(child, scope)

    walk(ast.parse(text), [])
    return tuple(regions)
