"""Static analysis: interfaces (inputs/outputs/internals), reasons, ids, pragmas, diagnostics.

Every interface case below was worked out by hand from DESIGN.md's definitions (liveness over
the CFG, not text order); the comment on a case says why where it is not obvious.
"""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from regionx.analysis import analyze_file, analyze_source, find_region, region_sha256, region_source
from regionx.types import FileAnalysis, Region


def analyze(source: str) -> FileAnalysis:
    return analyze_source(textwrap.dedent(source).lstrip("\n"), "case.py")


def region_of(source: str, selector: str) -> Region:
    fa = analyze(source)
    errors = [d.format() for d in fa.diagnostics if d.severity == "error"]
    assert not errors, errors
    region = find_region(fa, selector)
    assert region is not None, f"no region {selector!r}; have {[r.id for r in fa.regions]}"
    return region


def assert_interface(source: str, region: str, inputs=None, outputs=None, internals=None, globals=None, calls=None) -> Region:
    """Check a region's interface; each given list is compared as a set (order is tested separately)."""
    r = region_of(source, region)
    got = {"inputs": r.inputs, "outputs": r.outputs, "internals": r.internals, "globals": r.globals, "calls": r.calls}
    want = {"inputs": inputs, "outputs": outputs, "internals": internals, "globals": globals, "calls": calls}
    for key, expected in want.items():
        if expected is not None:
            assert set(got[key]) == set(expected), f"{region} {key}: got {got[key]}, want {expected}"
    return r


# (id, source, region, inputs, outputs, internals)
CASES = [
    ("plain function", """
        def f(a, b):
            return a + b
        """, "f", ["a", "b"], ["return"], []),
    ("unused parameter is internal", """
        def f(a, b):
            return a
        """, "f", ["a"], ["return"], ["b"]),
    ("parameter rebound before any read is not an input", """
        def f(a, b):
            a = 2
            return a * b
        """, "f", ["b"], ["return"], ["a"]),
    ("parameter mutated by a method is input and output", """
        def f(xs, v):
            xs.append(v)
        """, "f", ["xs", "v"], ["xs"], []),
    ("parameter rebound then mutated: caller's object untouched", """
        def f(xs):
            xs = list(xs)
            xs.append(1)
            return xs
        """, "f", ["xs"], ["return"], []),
    ("subscript store into a parameter", """
        def f(a, i):
            a[i] = 0.0
        """, "f", ["a", "i"], ["a"], []),
    ("augmented subscript store", """
        def f(a):
            a[0] += 1
        """, "f", ["a"], ["a"], []),
    ("attribute store on a parameter", """
        def f(obj, v):
            obj.value = v
        """, "f", ["obj", "v"], ["obj"], []),
    ("augmented assignment reads and writes", """
        def f(a):
            a += 1
            return a
        """, "f", ["a"], ["return"], []),
    # loop body block: x is written, and read at the top of the NEXT iteration -> output (back edge),
    # although nothing after the loop reads it
    ("value carried around the loop back edge", """
        def f(n):
            x = 0.0
            for i in range(n):
                # regionx: begin name=body
                y = x * 2
                x = y + i
                # regionx: end
            return 0
        """, "body", ["x", "i"], ["x"], ["y"]),
    # the same loop as a region: x is dead after the loop, so it is internal... but read on entry
    ("loop region: carried value dead after the loop", """
        def f(n):
            x = 0.0
            for i in range(n):
                y = x * 2
                x = y + i
            return 0
        """, "f:for@3", ["n", "x"], [], ["i", "y"]),
    # x written on only one branch and read after: its entry value may flow through -> input AND output
    ("written on one branch, read after", """
        def f(c, x):
            # regionx: begin name=blk
            if c > 0:
                x = c * 2
            # regionx: end
            return x
        """, "blk", ["c", "x"], ["x"], []),
    ("written in region but dead after is internal", """
        def f(a):
            # regionx: begin name=blk
            t = a * 2
            u = t + 1
            # regionx: end
            return u
        """, "blk", ["a"], ["u"], ["t"]),
    ("read after the region but rewritten first is not an output", """
        def f(a):
            # regionx: begin name=blk
            t = a * 2
            u = t + 1
            # regionx: end
            t = 5
            return t + u
        """, "blk", ["a"], ["u"], ["t"]),
    ("accumulator loop", """
        def f(xs):
            s = 0.0
            for x in xs:
                s += x
            return s
        """, "f:for@3", ["xs", "s"], ["s"], ["x"]),
    # the loop may run zero times, so i is written on some paths only and is live after: input and output
    ("loop target read after the loop", """
        def f(n):
            i = -1
            for i in range(n):
                pass
            return i
        """, "f:for@3", ["n", "i"], ["i"], []),
    # for/else: found is bound on the break path AND on the else path, so never flows in
    ("for-else defines on every exit", """
        def f(xs):
            for x in xs:
                if x < 0:
                    found = x
                    break
            else:
                found = None
            return found
        """, "f:for@2", ["xs"], ["found"], ["x"]),
    ("while True with break: no false edge out of the header", """
        def f(x):
            while True:
                y = x * 0.5
                if y < 1.0:
                    break
                x = y
            return y
        """, "f:while@2", ["x"], ["y"], []),
    # the inner loop writes k, which the enclosing while tests at the top of the next iteration
    ("output through an enclosing loop's back edge", """
        def f(n):
            k = 0
            while k < n:
                for j in range(3):
                    k += j
            return 0
        """, "f:for@4", ["k"], ["k"], ["j"]),
    ("dead store inside a loop is internal", """
        def f(n):
            acc = 0
            for i in range(n):
                t = i * 2
                acc += i
            return acc
        """, "f:for@3", ["n", "acc"], ["acc"], ["i", "t"]),
    ("tuple and star unpacking", """
        def f(t):
            a, (b, *c) = t
            return a + b + len(c)
        """, "f", ["t"], ["return"], ["a", "b", "c"]),
    ("star unpacking in a block", """
        def f(xs):
            # regionx: begin name=blk
            first, *rest = xs
            n = len(rest)
            # regionx: end
            return first * n
        """, "blk", ["xs"], ["first", "n"], ["rest"]),
    ("walrus binds in the enclosing scope", """
        def f(xs):
            # regionx: begin name=blk
            if (n := len(xs)) > 3:
                y = n * 2
            else:
                y = 0
            # regionx: end
            return y
        """, "blk", ["xs"], ["y"], ["n"]),
    ("comprehension variable is internal", """
        def f(xs, k):
            return sum([v * k for v in xs])
        """, "f", ["xs", "k"], ["return"], ["v"]),
    ("builtins, imports and defs are not variables", """
        import math

        def helper(x):
            return x * 2

        def f(x):
            return math.sqrt(helper(x)) + abs(x)
        """, "f", ["x"], ["return"], []),
    ("del unbinds a local", """
        def f(a):
            t = a
            del t
            return a
        """, "f", ["a"], ["return"], ["t"]),
    ("closure variable of the enclosing function is an input of the inner one", """
        def outer(a):
            def inner(b):
                return a + b
            return inner(1)
        """, "outer.inner", ["b", "a"], ["return"], []),
    ("a nested def reads its free variables at the def point", """
        def outer(a):
            def inner(b):
                return a + b
            return inner(1)
        """, "outer", ["a"], ["return"], []),
    ("lambda free variable and parameter", """
        def f(k, xs):
            g = lambda v: v * k
            return sorted(xs, key=g)
        """, "f", ["k", "xs"], ["return"], ["g", "v"]),
    ("except-as and a value set in try or handler", """
        def f(x):
            try:
                y = 1.0 / x
            except ZeroDivisionError as e:
                y = 0.0
            return y
        """, "f", ["x"], ["return"], ["e", "y"]),
    ("try block region: y defined on both paths is not an input", """
        def f(x):
            # regionx: begin name=blk
            try:
                y = 1.0 / x
            except ZeroDivisionError:
                y = 0.0
            # regionx: end
            return y
        """, "blk", ["x"], ["y"], []),
    ("finally runs on every path", """
        def f(x):
            # regionx: begin name=blk
            try:
                y = x * 2
            finally:
                z = 1
            # regionx: end
            return y + z
        """, "blk", ["x"], ["y", "z"], []),
    ("with-as binding", """
        def f(lock, x):
            with lock as held:
                y = x + 1
            return y
        """, "f", ["lock", "x"], ["return"], ["held", "y"]),
    ("for target tuple with enumerate", """
        def f(xs):
            total = 0
            for i, v in enumerate(xs):
                total += i * v
            return total
        """, "f:for@3", ["xs", "total"], ["total"], ["i", "v"]),
    ("match captures", """
        def f(p):
            match p:
                case (x, y):
                    r = x + y
                case _:
                    r = 0
            return r
        """, "f", ["p"], ["return"], ["r", "x", "y"]),
    ("continue skips the rest of the body", """
        def f(xs):
            s = 0
            for x in xs:
                if x < 0:
                    continue
                s += x
            return s
        """, "f:for@3", ["xs", "s"], ["s"], ["x"]),
    ("container filled in place inside a loop region", """
        def f(n):
            out = [0.0] * n
            for i in range(n):
                out[i] = i * 0.5
            return out
        """, "f:for@3", ["n", "out"], ["out"], ["i"]),
    ("container created inside the block is not an input", """
        def f(n):
            # regionx: begin name=blk
            out = [0.0] * n
            out[0] = 1.0
            # regionx: end
            return out
        """, "blk", ["n"], ["out"], []),
    ("method of a class", """
        class C:
            def m(self, x):
                return self.k * x
        """, "C.m", ["self", "x"], ["return"], []),
    ("module-level loop: module variables read by a function stay live", """
        data = [1.0, 2.0, 3.0]
        total = 0.0
        for v in data:
            total += v

        def report():
            return total
        """, "<module>:for@3", ["data", "total"], ["total"], ["v"]),
    ("global declaration: the written name is not a local variable", """
        count = 0

        def f(x):
            global count
            count += 1
            return x
        """, "f", ["x"], ["return"], []),
    ("nested loops: inner loop output feeds the outer", """
        def f(rows):
            best = 0.0
            for row in rows:
                s = 0.0
                for v in row:
                    s += v
                if s > best:
                    best = s
            return best
        """, "f:for@5", ["row", "s"], ["s"], ["v"]),
    ("if/else both define: not an input", """
        def f(c):
            # regionx: begin name=blk
            if c:
                z = 1
            else:
                z = 2
            # regionx: end
            return z
        """, "blk", ["c"], ["z"], []),
    ("a value only read is an input, never an output", """
        def f(a, b):
            # regionx: begin name=blk
            c = a + b
            # regionx: end
            return c + a
        """, "blk", ["a", "b"], ["c"], []),
]


@pytest.mark.parametrize("name,source,region,inputs,outputs,internals", CASES, ids=[c[0] for c in CASES])
def test_interface(name, source, region, inputs, outputs, internals):
    assert_interface(source, region, inputs=inputs, outputs=outputs, internals=internals)


def test_at_least_forty_interface_cases():
    assert len(CASES) >= 40


def test_function_inputs_follow_parameter_order_and_params_recorded():
    r = region_of("""
        def f(c, b, a, unused):
            return a + b + c
        """, "f")
    assert r.inputs == ("c", "b", "a")
    assert r.params == ("c", "b", "a", "unused")
    assert r.outputs == ("return",)


def test_globals_and_calls():
    r = assert_interface("""
        import math
        import numpy as np
        EPS = 1e-9

        def helper(x):
            return x * 2

        def f(x):
            return math.sqrt(helper(x)) + abs(x) + np.exp(x) + EPS
        """, "f", globals=["EPS", "helper", "math", "np"], calls=["abs", "helper", "math.sqrt", "np.exp"])
    assert r.replaceable, r.reasons


# ---------------------------------------------------------------- replaceability reasons

def codes(source: str, region: str) -> set[str]:
    r = region_of(source, region)
    assert r.replaceable == (not r.reasons)
    return {reason.code for reason in r.reasons}


REASONS = [
    ("print", """
        def f(x):
            print(x)
            return x
        """, "f", {"RX201"}),
    ("open and file read", """
        def f(path):
            with open(path) as fh:
                data = fh.read()
            return data
        """, "f", {"RX201"}),
    ("logging", """
        import logging

        def f(x):
            logging.info("x=%s", x)
            return x
        """, "f", {"RX201"}),
    ("sys.stdout.write", """
        import sys

        def f(x):
            sys.stdout.write(str(x))
            return x
        """, "f", {"RX201"}),
    ("random", """
        import random

        def f(x):
            return x + random.random()
        """, "f", {"RX202"}),
    ("numpy random through an alias", """
        import numpy as np

        def f(x):
            return x + np.random.rand()
        """, "f", {"RX202"}),
    ("clock", """
        import time

        def f(x):
            return x + time.time()
        """, "f", {"RX202"}),
    ("datetime.now", """
        from datetime import datetime

        def f(x):
            return (x, datetime.now())
        """, "f", {"RX202"}),
    ("global write", """
        count = 0

        def f(x):
            global count
            count += 1
            return x
        """, "f", {"RX203"}),
    ("nonlocal write", """
        def outer(x):
            n = 0
            def inner(y):
                nonlocal n
                n += y
                return y
            return inner(x)
        """, "outer.inner", {"RX203"}),
    ("mutating a module-level container", """
        CACHE = {}

        def f(x):
            CACHE[x] = x * 2
            return x
        """, "f", {"RX203"}),
    ("generator", """
        def f(n):
            for i in range(n):
                yield i * 2
        """, "f", {"RX204", "RX207"}),  # yielded values are not a return value
    ("coroutine", """
        async def f(x):
            return await x
        """, "f", {"RX204"}),
    ("return leaves a loop region", """
        def f(xs):
            for x in xs:
                if x > 0:
                    return x
            return None
        """, "f:for@2", {"RX205", "RX207"}),
    ("break leaves a block region inside a loop", """
        def f(xs):
            s = 0
            for x in xs:
                # regionx: begin name=blk
                s += x
                if s > 10:
                    break
                # regionx: end
            return s
        """, "blk", {"RX205"}),
    ("no inputs", """
        def f():
            return 1.0
        """, "f", {"RX206"}),
    ("no outputs", """
        def f(x):
            y = x * 2
        """, "f", {"RX207"}),
    ("output grown inside a loop", """
        def f(xs):
            out = []
            for x in xs:
                out.append(x * 2)
            return out
        """, "f", {"RX208"}),
    ("output built by a comprehension over an input", """
        def f(xs):
            return [x * 2 for x in xs]
        """, "f", {"RX208"}),
    ("unknown call", """
        from mylib import transform

        def f(x):
            return transform(x)
        """, "f", {"RX209"}),
    ("method of a non-module object", """
        def f(solver, x):
            return solver.solve(x)
        """, "f", {"RX209"}),
    ("helper that prints is not pure", """
        def helper(x):
            print(x)
            return x

        def f(x):
            return helper(x) * 2
        """, "f", {"RX209"}),
    ("impurity found two calls deep", """
        import random

        def g(x):
            return x * random.random()

        def h(x):
            return g(x) + 1

        def f(x):
            return h(x) * 2
        """, "f", {"RX209"}),
]


@pytest.mark.parametrize("name,source,region,expected", REASONS, ids=[c[0] for c in REASONS])
def test_reasons(name, source, region, expected):
    assert codes(source, region) == expected


def test_reason_messages_and_lines():
    r = region_of("""
        def f(x):
            y = x * 2
            print(y)
            return y
        """, "f")
    assert [(x.code, x.line) for x in r.reasons] == [("RX201", 3)]
    assert r.reasons[0].message == "performs I/O: print()"


PURE = [
    ("math and builtins", """
        import math

        def f(x):
            return math.sqrt(abs(x)) + max(x, 0.0) + round(x)
        """, "f"),
    ("numpy elementwise", """
        import numpy as np

        def f(x, w):
            return np.sum(np.exp(np.dot(w, x)))
        """, "f"),
    ("from-import of a pure function", """
        from math import sqrt

        def f(x):
            return sqrt(x)
        """, "f"),
    ("self recursion", """
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)
        """, "fact"),
    ("mutual recursion of pure functions", """
        def even(n):
            return True if n == 0 else odd(n - 1)

        def odd(n):
            return False if n == 0 else even(n - 1)
        """, "even"),
    ("mutating a local list is not impurity", """
        def f(x):
            acc = [0.0, 0.0]
            acc[0] = x
            acc.sort()
            return acc[1]
        """, "f"),
    ("raising a builtin exception", """
        def f(x):
            if x < 0:
                raise ValueError("negative")
            return x
        """, "f"),
]


@pytest.mark.parametrize("name,source,region", PURE, ids=[c[0] for c in PURE])
def test_pure_regions_are_replaceable(name, source, region):
    r = region_of(source, region)
    assert r.replaceable and r.reasons == (), r.reasons


# ---------------------------------------------------------------- ids, discovery, find_region

IDS_SOURCE = """
import functools

def outer(a):
    def inner(b):
        return a + b
    return inner(a)

class Solver:
    def step(self, x):
        total = 0
        for i in range(3):
            total += i * x
        return total

@functools.lru_cache
def cached(n):
    k = 0
    while k < n:
        k += 1
    return k

for j in range(2):
    pass
"""


def test_region_ids_kinds_and_order():
    fa = analyze(IDS_SOURCE)
    assert [(r.id, r.kind) for r in fa.regions] == [
        ("outer", "function"), ("outer.inner", "function"), ("Solver.step", "function"),
        ("Solver.step:for@11", "loop"), ("cached", "function"), ("cached:while@18", "loop"),
        ("<module>:for@22", "loop"),
    ]
    step = find_region(fa, "Solver.step")
    assert step is not None and step.qualname == "Solver.step" and step.col == 5
    loop = find_region(fa, "Solver.step:for@11")
    assert loop is not None and loop.qualname == "Solver.step" and loop.params == ()
    assert (loop.start_line, loop.end_line, loop.col) == (11, 12, 9)
    cached = find_region(fa, "cached")
    assert cached is not None and (cached.start_line, cached.end_line) == (15, 20)  # decorator line .. body end


def test_find_region_by_id_name_and_line():
    fa = analyze(IDS_SOURCE)
    assert find_region(fa, "outer.inner").id == "outer.inner"
    assert find_region(fa, "12").id == "Solver.step:for@11"  # innermost region holding line 12
    assert find_region(fa, "13").id == "Solver.step"
    assert find_region(fa, "1") is None
    assert find_region(fa, "nope") is None


def test_duplicate_function_names_get_unique_ids():
    fa = analyze("""
        import sys
        if sys.platform == "win32":
            def f(x):
                return x
        else:
            def f(x):
                return -x
        """)
    ids = [r.id for r in fa.regions]
    assert ids == ["f", "f@6"]


# ---------------------------------------------------------------- pragmas

PRAGMA_SOURCE = """
import functools

# regionx: name=newton, tolerance=0.01, a=uniform(0.5, 2.0), b=uniform(-1, 1)
@functools.lru_cache
def solve(a, b):
    return a * b

def g(xs):
    total = 0.0
    # regionx: name=accumulate
    for x in xs:
        total += x
    # regionx: begin name=tail
    scaled = total * 2
    shifted = scaled + 1
    # regionx: end
    return shifted
"""


def test_pragma_attaches_to_def_loop_and_block():
    fa = analyze(PRAGMA_SOURCE)
    assert [d.format() for d in fa.diagnostics] == []
    newton = find_region(fa, "newton")
    assert newton is not None and newton.annotated and newton.kind == "function"
    assert newton.qualname == "solve" and newton.start_line == 4 and newton.pragma is not None
    assert newton.domain_text() == {"a": "uniform(0.5, 2.0)", "b": "uniform(-1, 1)"}
    loop = find_region(fa, "accumulate")
    assert loop is not None and loop.kind == "loop" and loop.annotated and loop.start_line == 11
    assert set(loop.inputs) == {"xs", "total"} and loop.outputs == ("total",)
    tail = find_region(fa, "tail")
    assert tail is not None and tail.kind == "block" and (tail.start_line, tail.end_line) == (14, 15)
    assert tail.inputs == ("total",) and tail.outputs == ("shifted",) and tail.internals == ("scaled",)
    # unannotated regions keep their ids
    assert find_region(fa, "g") is not None
    assert find_region(fa, "g:for@11") is None  # renamed by its pragma
    assert find_region(fa, "15").id == "tail"


def test_unnamed_block_id():
    fa = analyze("""
        def g(a):
            # regionx: begin
            b = a + 1
            # regionx: end
            return b
        """)
    assert [d.format() for d in fa.diagnostics] == []
    block = [r for r in fa.regions if r.kind == "block"]
    assert [r.id for r in block] == ["g:block@3"]


def test_rx104_domain_for_a_non_input():
    fa = analyze("""
        # regionx: name=f1, a=uniform(0, 1), zz=uniform(0, 1)
        def f(a, b):
            return a * b
        """)
    assert [(d.code, d.line) for d in fa.diagnostics] == [("RX104", 1)]
    assert "'zz'" in fa.diagnostics[0].message and "'f1'" in fa.diagnostics[0].message
    assert find_region(fa, "f1") is not None  # still reported


def test_rx101_block_not_whole_statements():
    fa = analyze("""
        def g(a):
            if a:
                # regionx: begin name=bad
                b = 1
            c = 2
                # regionx: end
            return a
        """)
    assert [d.code for d in fa.diagnostics] == ["RX101"]
    assert find_region(fa, "bad") is None


def test_rx107_pragma_not_above_a_statement():
    fa = analyze("""
        # regionx: name=nothing
        x = 1
        """)
    assert [d.code for d in fa.diagnostics] == ["RX107"]


# ---------------------------------------------------------------- files and source text

def test_file_diagnostics(tmp_path):
    missing = analyze_file(str(tmp_path / "nope.py"))
    assert [d.code for d in missing.diagnostics] == ["RX001"] and not missing.ok
    directory = analyze_file(str(tmp_path))
    assert [d.code for d in directory.diagnostics] == ["RX002"]
    binary = tmp_path / "blob.py"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    assert [d.code for d in analyze_file(str(binary)).diagnostics] == ["RX003"]
    latin = tmp_path / "latin.py"
    latin.write_bytes("x = 1\ns = 'caf\u00e9'\n".encode("latin-1"))
    d = analyze_file(str(latin)).diagnostics
    assert [x.code for x in d] == ["RX003"] and d[0].line == 2
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\ndef f(:\n    pass\n")
    d = analyze_file(str(bad)).diagnostics
    assert [(x.code, x.line, x.col) for x in d] == [("RX004", 2, 7)]
    assert d[0].format().startswith(f"{bad}:2:7: RX004 syntax error")


def test_analyze_source_never_raises_on_odd_input():
    for text in ["", "\n\n", "# only a comment\n", "x = (\n", "\ufeffx = 1\n", "def f(): return\n", "a\x00b"]:
        fa = analyze_source(text, "odd.py")
        assert isinstance(fa, FileAnalysis)


def test_region_source_and_sha():
    text = textwrap.dedent(IDS_SOURCE).lstrip("\n")
    fa = analyze_source(text, "ids.py")
    region = find_region(fa, "cached")
    src = region_source(text, region)
    assert src.startswith("@functools.lru_cache\ndef cached(n):\n") and src.endswith("    return k\n")
    assert region_sha256(text, region) == hashlib.sha256(src.encode()).hexdigest()
    assert fa.source_sha256 == hashlib.sha256(text.encode()).hexdigest()


def test_fixture_newton():
    fa = analyze_file(str(Path(__file__).resolve().parent.parent / "fixtures" / "newton.py"))
    newton = find_region(fa, "newton")
    assert newton is not None and newton.annotated
    assert newton.inputs == ("a", "b", "c") and newton.outputs == ("return",)
    assert newton.replaceable
    assert "EPS" in newton.globals and "abs" in newton.calls


def test_finally_body_regions_are_reported_once():
    fa = analyze("""
        def f(xs):
            try:
                y = 1
            finally:
                def helper(v):
                    return v
                for x in xs:
                    y += helper(x)
            return y
        """)
    ids = [r.id for r in fa.regions]
    assert ids == ["f", "f.helper", "f:for@7"]
    loop = find_region(fa, "f:for@7")
    assert set(loop.inputs) == {"xs", "y"} and loop.outputs == ("y",)


def test_return_in_try_goes_through_finally():
    r = region_of("""
        def f(x):
            # regionx: begin name=blk
            try:
                if x > 0:
                    return x
                y = -x
            finally:
                z = 2
            # regionx: end
            return y * z
        """, "blk")
    assert set(r.outputs) == {"y", "z"} and r.inputs == ("x",)
    assert {x.code for x in r.reasons} == {"RX205"}


def test_positionprovider_fallback_gives_the_same_regions(monkeypatch):
    from regionx.analysis import source

    text = textwrap.dedent(IDS_SOURCE).lstrip("\n")
    fast = analyze_source(text, "ids.py")

    def mismatch(*args, **kwargs):
        raise source._Mismatch()

    monkeypatch.setattr(source, "_align", mismatch)
    slow = analyze_source(text, "ids.py")
    key = lambda fa: [(r.id, r.start_line, r.end_line, r.col, r.inputs, r.outputs) for r in fa.regions]  # noqa: E731
    assert key(slow) == key(fast)


def test_class_body_loop_and_module_loop_ids():
    fa = analyze("""
        class Table:
            rows = []
            for i in range(3):
                rows.append(i * i)
        """)
    loop = find_region(fa, "Table:for@3")
    assert loop is not None and loop.qualname == "Table"
    assert set(loop.outputs) == {"rows", "i"}  # class attributes (the loop variable too) outlive the body
