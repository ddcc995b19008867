"""regionx.analysis.locate: the one region locator of extract, rewrite and instrument.

Each case is a small dedented source, the region as the analysis would name it, and the code the
locator must hand back (by node identity, with its enclosing scopes and its place in its body)."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper

from regionx.analysis import analyze_source
from regionx.analysis.locate import Located, NotFound, RegionLocator, locate_region
from regionx.types import Region


def region(kind: str, qualname: str, start: int, end: int | None = None) -> Region:
    rid = qualname if kind == "function" else f"{qualname}:{kind}@{start}"
    return Region(id=rid, name=rid, kind=kind, qualname=qualname, start_line=start,  # type: ignore[arg-type]
                  end_line=start if end is None else end, col=1, annotated=False, inputs=(), outputs=(),
                  internals=(), globals=(), calls=(), replaceable=True)


def assert_located(source: str, reg: Region, expected: str, *, stack: tuple[str, ...] = ()) -> Located:
    """The region's statements are exactly `expected` (dedented), held by one body at `index`,
    inside the classes/functions named by `stack`."""
    module = cst.parse_module(textwrap.dedent(source))
    found = locate_region(module, reg)
    assert isinstance(found, Located), found
    got = "".join(module.code_for_node(s) for s in found.statements)
    assert textwrap.dedent(got) == textwrap.dedent(expected)
    assert tuple(s.name.value for s in found.stack) == stack
    assert list(found.body.body[found.index : found.index + len(found.statements)]) == list(found.statements)
    assert all(any(s is b for b in found.body.body) for s in found.statements)  # the module's own nodes
    return found


def assert_not_found(source: str, reg: Region, *words: str) -> NotFound:
    found = locate_region(cst.parse_module(textwrap.dedent(source)), reg)
    assert isinstance(found, NotFound), found
    assert found.line == reg.start_line
    for word in words:
        assert word in found.reason, found.reason
    return found


# -- functions ------------------------------------------------------------------------------------

NESTED = """\
def outer(a):
    k = 2

    def inner(x):
        return k * x

    return inner(a)
"""


def test_nested_function_by_qualname_and_line() -> None:
    found = assert_located(NESTED, region("function", "outer.inner", 4, 5), """\

        def inner(x):
            return k * x
        """, stack=("outer",))
    assert (found.line, found.col, found.end_line) == (4, 5, 5)
    assert found.scope_qualname == "outer" and not found.in_class
    assert isinstance(found.body, cst.IndentedBlock) and found.index == 1


def test_nested_function_needs_its_full_qualname() -> None:
    assert_not_found(NESTED, region("function", "inner", 4, 5), "no function inner at line 4")


METHODS = """\
class A:
    def f(self, x):
        return x + 1


class B:
    scale = 2.0

    def f(self, x):
        return x * self.scale
"""


def test_method() -> None:
    found = assert_located(METHODS, region("function", "A.f", 2, 3), """\
        def f(self, x):
            return x + 1
        """, stack=("A",))
    assert found.in_class and found.scope_qualname == "A"


def test_same_name_in_two_classes_is_told_apart_by_qualname_and_line() -> None:
    found = assert_located(METHODS, region("function", "B.f", 9, 10), """\

        def f(self, x):
            return x * self.scale
        """, stack=("B",))
    assert found.index == 1
    # A.f's qualname at B.f's line, or B.f at A.f's line: neither is a guess
    assert_not_found(METHODS, region("function", "A.f", 9, 10), "no function A.f at line 9", "line 2")
    assert_not_found(METHODS, region("function", "B.f", 2, 3), "no function B.f at line 2", "line 9")


DECORATED = """\
import functools


@functools.lru_cache(maxsize=None)
@staticmethod
def g(x):
    return x * x
"""


@pytest.mark.parametrize("start", [4, 6])  # the first decorator's line (as the analysis gives it), or the def's
def test_decorated_function_by_decorator_or_def_line(start: int) -> None:
    found = assert_located(DECORATED, region("function", "g", start, 7), """\


        @functools.lru_cache(maxsize=None)
        @staticmethod
        def g(x):
            return x * x
        """)
    assert (found.line, found.col) == (6, 1)  # the def's own line
    assert isinstance(found.body, cst.Module) and found.index == 1


def test_decorated_function_not_at_its_second_decorator() -> None:
    assert_not_found(DECORATED, region("function", "g", 5, 7), "no function g at line 5", "line 4")


def test_async_function_is_found_and_left_to_the_stage() -> None:
    found = assert_located("async def h(x):\n    return x\n", region("function", "h", 1, 2),
                           "async def h(x):\n    return x\n")
    assert isinstance(found.node, cst.FunctionDef) and found.node.asynchronous is not None


# -- loops ----------------------------------------------------------------------------------------

LOOPS = """\
def grid(n, m):
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += i * j
    while s > 10: s /= 2
    return s
"""


def test_nested_loops_ending_on_the_same_line() -> None:
    assert_located(LOOPS, region("loop", "grid", 3, 5), """\
        for i in range(n):
            for j in range(m):
                s += i * j
        """, stack=("grid",))
    inner = assert_located(LOOPS, region("loop", "grid", 4, 5), """\
        for j in range(m):
            s += i * j
        """, stack=("grid",))
    assert (inner.line, inner.col, inner.end_line) == (4, 9, 5)


def test_one_line_while_loop() -> None:
    found = assert_located(LOOPS, region("loop", "grid", 6), "while s > 10: s /= 2\n", stack=("grid",))
    assert isinstance(found.node, cst.While) and found.index == 2


def test_loop_is_matched_by_its_line_only() -> None:
    # no "first loop inside the lines" fallback: line 2 holds no loop
    assert_not_found(LOOPS, region("loop", "grid", 2, 5), "no loop at line 2")
    # the lines decide; the scope found is reported, not checked
    assert assert_located(LOOPS, region("loop", "<module>", 3, 5), """\
        for i in range(n):
            for j in range(m):
                s += i * j
        """, stack=("grid",)).scope_qualname == "grid"


# -- blocks ---------------------------------------------------------------------------------------

MODULE_BLOCK = """\
import math

x = 2.0
y = math.sqrt(x)
if y > 1:
    y = y - 1
print(y)
"""


def test_module_level_block() -> None:
    found = assert_located(MODULE_BLOCK, region("block", "<module>", 3, 6), """\

        x = 2.0
        y = math.sqrt(x)
        if y > 1:
            y = y - 1
        """)
    assert found.stack == () and isinstance(found.body, cst.Module) and found.index == 1
    assert (found.line, found.end_line) == (3, 6)


NESTED_BLOCK = """\
class K:
    def step(self, xs):
        total = 0.0
        for x in xs:
            if x > 0:
                a = x * 2
                b = a + 1
                total += b
            else:
                total -= x
        return total
"""


def test_block_in_nested_bodies() -> None:
    found = assert_located(NESTED_BLOCK, region("block", "K.step", 6, 7), """\
        a = x * 2
        b = a + 1
        """, stack=("K", "step"))
    assert found.index == 0 and found.scope_qualname == "K.step"
    assert_located(NESTED_BLOCK, region("block", "K.step", 10), "total -= x\n", stack=("K", "step"))


def test_block_is_the_outermost_run() -> None:
    # lines 4-10 hold the for statement and everything in it: the block is the for alone
    found = assert_located(NESTED_BLOCK, region("block", "K.step", 3, 10), """\
        total = 0.0
        for x in xs:
            if x > 0:
                a = x * 2
                b = a + 1
                total += b
            else:
                total -= x
        """, stack=("K", "step"))
    assert found.index == 0 and len(found.statements) == 2


def test_block_across_two_bodies_is_not_found() -> None:
    # the end of the if's body and the statement after the if: not one block
    assert_not_found(NESTED_BLOCK, region("block", "K.step", 8, 11), "not in one block")


def test_block_without_whole_statements_is_not_found() -> None:
    # lines 4-5 open the for and the if, which end at line 10
    assert_not_found(NESTED_BLOCK, region("block", "K.step", 4, 5), "no whole statements")


# -- moved regions, and agreement with the analysis --------------------------------------------------

BEFORE = """\
def f(a, b):
    s = 0.0
    for i in range(3):
        s += a * i + b
    return s
"""
AFTER = "import math\n\n" + BEFORE  # two lines added above: every region moved down by two


def test_a_region_that_moved_is_not_found() -> None:
    [func, loop] = analyze_source(BEFORE, "prog.py").regions
    assert (func.kind, loop.kind) == ("function", "loop")
    assert isinstance(locate_region(cst.parse_module(BEFORE), func), Located)
    assert_not_found(AFTER, func, "no function f at line 1", "line 3")
    assert_not_found(AFTER, loop, "no loop at line 3")


ANNOTATED = """\
import numpy as np

SCALE = 3.0


# regionx: name=kernel, a=uniform(0, 1)
@np.vectorize
def kernel(a):
    return a * SCALE


class Solver:
    def run(self, xs):
        out = []
        for x in xs:
            # regionx: begin name=body, x=uniform(0, 1)
            y = x * 2
            z = y + 1
            # regionx: end
            out.append(z)
        return out


# regionx: begin name=top
u = 1.0
v = u * 2
# regionx: end
"""


def test_every_region_the_analysis_finds_is_located_at_its_lines() -> None:
    analysis = analyze_source(ANNOTATED, "prog.py")
    assert {r.kind for r in analysis.regions} == {"function", "loop", "block"}
    wrapper = MetadataWrapper(cst.parse_module(ANNOTATED))  # a copy: nodes are the wrapper's module's
    locator = RegionLocator(wrapper)
    for reg in analysis.regions:
        found = locator.locate(reg)
        assert isinstance(found, Located), (reg.id, found)
        assert locator.first_line(found.node) == reg.start_line, reg.id
        assert found.end_line == reg.end_line, reg.id
        assert found.col == reg.col, reg.id
        expected_scope = reg.qualname.rpartition(".")[0] or "<module>" if reg.kind == "function" else reg.qualname
        assert found.scope_qualname == expected_scope, reg.id
        assert any(s is found.node for s in found.body.body)
        assert any(found.body is n for n in _bodies(wrapper.module))


def _bodies(module: cst.Module) -> list[cst.CSTNode]:
    bodies: list[cst.CSTNode] = [module]

    class Bodies(cst.CSTVisitor):
        def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
            bodies.append(node)

    module.visit(Bodies())
    return bodies


def test_the_rewrite_keeps_its_refusals_on_top() -> None:
    from regionx.rewrite.common import RewriteError
    from regionx.rewrite.locate import locate

    wrapper = MetadataWrapper(cst.parse_module(METHODS), unsafe_skip_copy=True)
    with pytest.raises(RewriteError, match="methods are not supported") as method:
        locate(wrapper, region("function", "B.f", 9, 10))
    assert method.value.line == 9
    wrapper = MetadataWrapper(cst.parse_module("x = 1\n\nasync def h(x):\n    return x\n"), unsafe_skip_copy=True)
    with pytest.raises(RewriteError, match="async functions cannot be replaced") as asynchronous:
        locate(wrapper, region("function", "h", 3, 4))
    assert asynchronous.value.line == 3
    with pytest.raises(RewriteError, match="no loop at line 1") as missing:
        locate(wrapper, region("loop", "<module>", 1))
    assert missing.value.line == 1
