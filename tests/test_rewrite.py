"""Tests of regionx.rewrite: golden patches, exact revert, guards, batch hoisting, profitability."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from regionx.rewrite import MARKER_RE, rewrite_file, rewrite_source, revert_file, revert_source, rewritten_regions
from regionx.types import Manifest, Region, TopologyResult, TrainResult, VarSpec

_counter = itertools.count()


# ------------------------------------------------------------------------------------------
# helpers


def topo(call: float = 1e-6, elem: float = 1e-7, exact: float = 1e-4) -> TopologyResult:
    return TopologyResult(hidden=(4,), activation="tanh", train_time=0.0, steps=1, epochs=1, loss=0.0,
                          mean_error=0.0, max_error=0.0, accuracy=1.0, time_per_call=call,
                          time_per_element=elem, exact_time_per_call=exact, meets_target=True)


def region(rid: str, kind: str, start: int, end: int, ins: str | tuple[str, ...], outs: str | tuple[str, ...], *,
           qualname: str = "<module>", name: str | None = None, globals_: tuple[str, ...] = ()) -> Region:
    return Region(id=rid, name=name or rid, kind=kind, qualname=qualname, start_line=start, end_line=end, col=1,  # type: ignore[arg-type]
                  annotated=True, inputs=tuple(ins), outputs=tuple(outs), internals=(), globals=globals_,
                  calls=(), replaceable=True)


def manifest(reg: Region, lower: tuple[float, ...], upper: tuple[float, ...], *, accept: str | None = None,
             t: TopologyResult | None = None, out_shapes: dict[str, tuple[int, ...]] | None = None) -> Manifest:
    shapes = out_shapes or {}
    return Manifest(region_id=reg.id, region_name=reg.name, source_path="prog.py", source_sha256="",
                    inputs=tuple(VarSpec(n) for n in reg.inputs),
                    outputs=tuple(VarSpec(n, shapes.get(n, ())) for n in reg.outputs),
                    domain={}, tolerance=0.01, metric="rel", target=0.99, accept=accept, topology=t or topo(),
                    module=f"surrogate_{reg.display_name}.py", lower=lower, upper=upper, seed=0,
                    regionx_version="test")


FAKE = '''\
"""A hand-written stand-in for a generated surrogate module (same API, numpy only)."""
import numpy as np

INPUTS = {inputs!r}
INPUT_SHAPES = tuple(() for _ in INPUTS)
OUTPUTS = {outputs!r}
OUTPUT_SHAPES = {output_shapes!r}
D_OUT = {d_out!r}
LOWER = np.array({lower!r}, dtype=float)
UPPER = np.array({upper!r}, dtype=float)
SENTINEL = {sentinel!r}
OFFSET = {offset!r}  # added to every answer, so that the program's results show where they came from
CALLS = {{"predict": 0, "predict_rows": 0, "predict_one": 0}}

{formula}


def _predict(X):
    X = np.asarray(X, dtype=float).reshape(-1, len(INPUTS))
    if SENTINEL is not None:
        return np.full((X.shape[0], len(OUTPUTS)), float(SENTINEL))
    return np.array([list(exact(*row)) for row in X], dtype=float).reshape(X.shape[0], D_OUT) + OFFSET


def predict(X):
    CALLS["predict"] += 1
    CALLS["predict_rows"] += int(np.asarray(X).shape[0])
    return _predict(X)


def predict_one(*inputs):
    CALLS["predict_one"] += 1
    y = _predict(np.array([inputs], dtype=float))[0]
    if OUTPUT_SHAPES == ((),):
        return float(y[0])
    if len(OUTPUTS) == 1:  # one array output, as a generated module returns it
        return np.array(y).reshape(OUTPUT_SHAPES[0])
    return tuple(float(v) for v in y)


def in_domain(X):
    X = np.asarray(X, dtype=float).reshape(-1, len(INPUTS))
    return np.all((X >= LOWER) & (X <= UPPER), axis=1)


def in_domain_one(*inputs):
    # as a generated module: plain comparisons (a string raises TypeError, as the exact code would)
    return all(lo <= v <= hi for v, lo, hi in zip(inputs, LOWER.tolist(), UPPER.tolist()))
'''


def write_fake(directory: Path, m: Manifest, formula: str, sentinel: float | None = None, offset: float = 0.0) -> Path:
    """`formula` defines `exact(*inputs) -> tuple of outputs`; the fake answers exact + `offset`
    (or `sentinel` everywhere)."""
    path = directory / m.module
    path.write_text(FAKE.format(inputs=tuple(v.name for v in m.inputs), outputs=tuple(v.name for v in m.outputs),
                                output_shapes=tuple(v.shape for v in m.outputs), d_out=sum(v.size for v in m.outputs),
                                lower=list(m.lower), upper=list(m.upper), sentinel=sentinel, offset=float(offset),
                                formula=textwrap.dedent(formula)))
    return path


def load(path: Path) -> Any:
    """Import a file as a fresh module (as `python path` would run it, with __file__ set)."""
    spec = importlib.util.spec_from_file_location(f"rx_test_mod_{next(_counter)}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, newline="")
    return path


def module_name(m: Manifest) -> str:
    return os.path.splitext(m.module)[0]


def rewrite(text: str, reg: Region, m: Manifest, **kw: Any) -> dict[str, Any]:
    res = rewrite_source(text, "prog.py", reg, m, module_name=module_name(m), **kw)
    assert res.ok, [d.format() for d in res.diagnostics]
    return res.payload.to_json()


def strip_loader(text: str) -> str:
    """The patched text without the loader block (its lines between loader begin/end markers)."""
    out: list[str] = []
    skipping = False
    for raw in text.splitlines(keepends=True):
        m = MARKER_RE.match(raw.strip())
        if m and m.group("kind") == "loader":
            skipping = m.group("edge") == "begin"
            continue
        if not skipping:
            out.append(raw)
    return "".join(out)


def assert_rewrite(before: str, after: str, reg: Region, m: Manifest, *, loader: bool = False, **kw: Any) -> dict[str, Any]:
    """Golden test: patch `before`, compare with `after` (loader block removed unless loader=True),
    and check that revert gives `before` back byte for byte."""
    before = textwrap.dedent(before)
    data = rewrite(before, reg, m, **kw)
    got = data["text"] if loader else strip_loader(data["text"])
    assert got == textwrap.dedent(after)
    back = revert_source(data["text"], "prog.py")
    assert back.ok and back.payload.text == before
    return data


# ------------------------------------------------------------------------------------------
# programs


NEWTON = '''\
"""Roots by Newton-Raphson."""
import math

# regionx: name=newton, a=uniform(0.5, 2.0), b=uniform(-10, 10), c=uniform(-10, 10)
def newton(a, b, c):
    x = 1.0
    for _ in range(30):
        x = x - (a * x * x + b * x + c) / (2 * a * x + b + 1e-12)
    return x  # the root


def main(A, B, C):
    out = [0.0] * len(A)
    for i in range(len(A)):
        out[i] = newton(A[i], B[i], C[i])
    res = []
    for a, b, c in zip(A, B, C):
        res.append(newton(a, b, c))
    arr = np.zeros(len(A))
    for i, a in enumerate(A):
        arr[i] = newton(a, 1.0, -2.0)
    x = 0.5
    for _ in range(3):
        x = newton(1.0, x, -1.0)
    total = 0.0
    for i in range(len(A)):
        total += newton(A[i], 1.0, -1.0)
    return out, res, arr, x, total
'''
NEWTON_FORMULA = '''\
def exact(a, b, c):
    x = 1.0
    for _ in range(30):
        x = x - (a * x * x + b * x + c) / (2 * a * x + b + 1e-12)
    return (x,)
'''


def newton_case(accept: str | None = None, t: TopologyResult | None = None) -> tuple[str, Region, Manifest]:
    text = "import numpy as np\n" + NEWTON
    reg = region("newton", "function", 6, 10, "abc", ("return",), qualname="newton")
    return text, reg, manifest(reg, (0.5, -10.0, -10.0), (2.0, 10.0, 10.0), accept=accept, t=t)


# ------------------------------------------------------------------------------------------
# golden patches


def test_golden_function_region_full() -> None:
    reg = region("poly", "function", 3, 4, "xy", ("return",), qualname="poly")
    m = manifest(reg, (0.0, 0.0), (1.0, 1.0))
    before = '''\
        import math
        # regionx: name=poly
        def poly(x, y=2.0, *, scale=1.0):
            return scale * (x ** 3 + y)  # cubic
        '''
    after = '''\
        import math

        # regionx-rewritten: poly loader begin
        import numpy as _regionx_np


        def _regionx_load_poly():
            """Load surrogate_poly.py from the directory of this file (written by regionx rewrite)."""
            import importlib.util
            import os
            here = globals().get("__file__")
            here = os.path.dirname(os.path.abspath(here)) if here else os.getcwd()
            spec = importlib.util.spec_from_file_location('surrogate_poly', os.path.join(here, 'surrogate_poly.py'))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module


        _regionx_poly = _regionx_load_poly()
        # regionx-rewritten: poly loader end
        # regionx-rewritten: poly begin
        # regionx: name=poly
        def _regionx_exact_poly(x, y=2.0, *, scale=1.0):
            return scale * (x ** 3 + y)  # cubic


        def poly(x, y=2.0, *, scale=1.0):
            """regionx dispatcher: the surrogate inside its trained domain, else _regionx_exact_poly."""
            if _regionx_poly.in_domain_one(x, y):
                return _regionx_poly.predict_one(x, y)
            return _regionx_exact_poly(x, y, scale=scale)
        # regionx-rewritten: poly end
        '''
    data = assert_rewrite(before, after, reg, m, loader=True)
    assert data["path_taken"] == "scalar" and data["hoisted"] == []


def test_golden_loop_region() -> None:
    reg = region("step:for@4", "loop", 4, 5, "ab", "s", qualname="step", name="acc")
    m = manifest(reg, (0.0, 0.0), (1.0, 1.0))
    before = '''\
        def step(a, b):
            s = 0.0
            # regionx: name=acc
            for k in range(10):
                s += a * k + b  # body
            return s
        '''
    after = '''\
        def step(a, b):
            s = 0.0
            # regionx-rewritten: step:for@4 begin
            if (_regionx_y := _regionx_acc_try(a, b)) is not None:
                s = _regionx_y[0]
            else:
                # regionx: name=acc
                for k in range(10):
                    s += a * k + b  # body
            # regionx-rewritten: step:for@4 end
            return s
        '''
    assert_rewrite(before, after, reg, m)


def test_golden_block_region() -> None:
    reg = region("blk", "block", 4, 5, "tab", "uv", qualname="f")
    m = manifest(reg, (0.0,) * 3, (1.0,) * 3)
    before = '''\
        def f(a, b):
            t = a + b
            # regionx: begin name=blk
            u = t + a
            v = u * b
            # regionx: end
            return u, v
        '''
    after = '''\
        def f(a, b):
            t = a + b
            # regionx-rewritten: blk begin
            if (_regionx_y := _regionx_blk_try(t, a, b)) is not None:
                u = _regionx_y[0]
                v = _regionx_y[1]
            else:
                # regionx: begin name=blk
                u = t + a
                v = u * b
            # regionx-rewritten: blk end
            # regionx: end
            return u, v
        '''
    assert_rewrite(before, after, reg, m)


HOIST_BEFORE = '''\
    def f(a, b):
        return a * b + 1.0


    def run(A, B, n):
        out = [0.0] * n
        for i in range(n):
            out[i] = f(A[i], B[i])
        res = []
        for a, b in zip(A, B):
            res.append(f(a, b))
        return out, res
    '''


def test_golden_batch_hoisting_index_and_append() -> None:
    """The column-wise form: one batch call, one slice store or extend, the loop target's last value."""
    reg = region("f", "function", 1, 2, "ab", ("return",), qualname="f")
    m = manifest(reg, (0.0, 0.0), (1.0, 1.0))
    after = '''\
        # regionx-rewritten: f begin
        def _regionx_exact_f(a, b):
            return a * b + 1.0


        def f(a, b):
            """regionx dispatcher: the surrogate inside its trained domain, else _regionx_exact_f."""
            if _regionx_f.in_domain_one(a, b):
                return _regionx_f.predict_one(a, b)
            return _regionx_exact_f(a, b)
        # regionx-rewritten: f end


        def run(A, B, n):
            out = [0.0] * n
            # regionx-rewritten: f batch begin
            if (_regionx_b := _regionx_f_batch(_regionx_exact_f, "range", range(n), (A, B), ("r", "r"), out=out)) is not None:
                i = _regionx_b[1]
            else:
                for i in range(n):
                    out[i] = f(A[i], B[i])
            # regionx-rewritten: f batch end
            res = []
            # regionx-rewritten: f batch begin
            if (_regionx_b := _regionx_f_batch(_regionx_exact_f, "zip", (A, B), (A, B), ("r", "r"), out=res, store="append")) is not None:
                a, b = _regionx_b[1]
            else:
                for a, b in zip(A, B):
                    res.append(f(a, b))
            # regionx-rewritten: f batch end
            return out, res
        '''
    data = assert_rewrite(HOIST_BEFORE, after, reg, m)
    assert data["hoisted"] == [7, 10] and data["path_taken"] == "batch"
    loader = data["text"].split("loader end")[0]
    assert "def _regionx_f_batch(" in loader and "_regionx_f_map" not in loader  # only the helpers in use
    assert "def _regionx_batch(" in loader and "def _regionx_map_rows(" not in loader  # regionx.runtime, copied


GENERAL_BEFORE = '''\
    def f(a, b):
        return a * b + 1.0


    def run(A, B, n):
        out = [0.0] * n
        for i in range(n):
            out[i] = f(A[i], B[i] * 2.0)
        res = []
        for a, b in zip(A, B):
            res.append(2.0 * f(a, b))
        return out, res
    '''


def test_golden_batch_hoisting_general_form() -> None:
    """Loops outside the column-wise form (an argument computed from the row, a result used in an
    expression) keep the general row-by-row batch."""
    reg = region("f", "function", 1, 2, "ab", ("return",), qualname="f")
    m = manifest(reg, (0.0, 0.0), (1.0, 1.0))
    after = '''\
        def run(A, B, n):
            out = [0.0] * n
            # regionx-rewritten: f batch begin
            if _regionx_distinct((A, B), (out,)) and (_regionx_v := _regionx_f_map(_regionx_exact_f, [(A[i], B[i] * 2.0) for i in range(n)])) is not None:
                _regionx_it = _regionx_v.__iter__().__next__
                for i in range(n):
                    out[i] = _regionx_it()
            else:
                for i in range(n):
                    out[i] = f(A[i], B[i] * 2.0)
            # regionx-rewritten: f batch end
            res = []
            # regionx-rewritten: f batch begin
            if _regionx_traversable(A, B, min_rows=2) and _regionx_distinct((A, B), (res,)) and (_regionx_v := _regionx_f_map(_regionx_exact_f, [(a, b) for a, b in zip(A, B)])) is not None:
                _regionx_it = _regionx_v.__iter__().__next__
                for a, b in zip(A, B):
                    res.append(2.0 * _regionx_it())
            else:
                for a, b in zip(A, B):
                    res.append(2.0 * f(a, b))
            # regionx-rewritten: f batch end
            return out, res
        '''
    data = rewrite(textwrap.dedent(GENERAL_BEFORE), reg, m)
    assert data["text"].split("# regionx-rewritten: f end\n\n\n")[1] == textwrap.dedent(after)
    assert revert_source(data["text"], "prog.py").payload.text == textwrap.dedent(GENERAL_BEFORE)
    loader = data["text"].split("loader end")[0]
    assert "def _regionx_f_map(" in loader and "def _regionx_map_rows(" in loader


@pytest.mark.parametrize("loop, reason", [
    ("x = 0.5\n    for i in range(n):\n        x = f(x, B[i])", "the arguments read x, which an earlier iteration assigns"),
    ("total = 0.0\n    for i in range(n):\n        total += f(total, B[i])", "the arguments read total"),
    ("for i in range(n - 1):\n        A[i + 1] = f(A[i], B[i])", "loop-carried dependence"),
    ("for a in A:\n        A.append(f(a, 1.0))", "the loop writes ['A'], which it iterates over"),
    ("for i in range(n):\n        out[i] = f(A[i], B[i]) if A[i] > 0 else 0.0", "called conditionally"),
    ("for i in range(n):\n        out[i] = f(A[i], g(B[i]))", "calls g(), which is not pure"),
    ("for i in range(n):\n        print(i)\n        out[i] = f(A[i], B[i])", "calls print()"),
    ("for i in range(n):\n        out[i] = f(A[i], B[i])\n    else:\n        pass", "else clause"),
    ("for i in range(n):\n        out[i] = f(A[i], b=B[i])", "keyword"),
    ("for i in range(n):\n        W[i] = f(A[i], B[i])", "which f() reads"),
])
def test_loops_that_must_not_be_hoisted(loop: str, reason: str) -> None:
    text = textwrap.dedent('''\
        W = [0.0] * 8


        def f(a, b):
            return a * b + W[0]


        def g(v):
            print(v)
            return v


        def run(A, B, n, out):
            {loop}
            return out
        ''').replace("{loop}", loop)
    reg = region("f", "function", 4, 5, "ab", ("return",), qualname="f", globals_=("W",))
    m = manifest(reg, (0.0, 0.0), (1.0, 1.0))
    data = rewrite(text, reg, m)
    assert data["hoisted"] == [] and data["path_taken"] == "scalar"
    assert any(reason in s["reason"] for s in data["hoist_skipped"]), data["hoist_skipped"]
    assert " batch begin" not in data["text"]
    assert revert_source(data["text"], "prog.py").payload.text == text


def test_shadowed_name_is_not_hoisted() -> None:
    text = textwrap.dedent('''\
        def f(a):
            return a + 1.0


        def run(A, f=abs):
            return [0 for _ in ()] or [f(a) for a in A]


        def run2(A, f):
            out = []
            for a in A:
                out.append(f(a))
            return out
        ''')
    reg = region("f", "function", 1, 2, "a", ("return",), qualname="f")
    data = rewrite(text, reg, manifest(reg, (0.0,), (1.0,)))
    assert data["hoisted"] == []
    assert any("does not refer" in s["reason"] for s in data["hoist_skipped"])


def test_hoist_disabled() -> None:
    reg = region("f", "function", 1, 2, "ab", ("return",), qualname="f")
    data = rewrite(textwrap.dedent(HOIST_BEFORE), reg, manifest(reg, (0.0, 0.0), (1.0, 1.0)), hoist=False)
    assert data["hoisted"] == [] and " batch begin" not in data["text"]


# ------------------------------------------------------------------------------------------
# revert: byte-exact on awkward sources


REVERT_CASES = {
    "crlf": ("def f(a):\r\n    # c\r\n    return a * 2\r\n\r\n\r\nprint(f(1))\r\n", "f", 1, 3),
    "tabs": ("def f(a):\n\tif a:\n\t\treturn a * 2\n\treturn 0.0\n", "f", 1, 4),
    "no trailing newline": ("def f(a):\n    return a * 2", "f", 1, 2),
    "shebang and pragma first": ("#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n# regionx: name=f\ndef f(a):\n"
                                 "    return a\n", "f", 4, 5),
    "comments after": ("def f(a):\n    return a\n    # trailing in f\n\n# end of file\n\n", "f", 1, 2),
    "decorated": ("import functools\n\n\n@functools.lru_cache()\ndef f(a):\n    return a\n", "f", 4, 6),
    "nested": ("def outer(v):\n    def f(a):\n        return a * v\n    return [f(x) for x in (1, 2)]\n", "f", 2, 3),
}


@pytest.mark.parametrize("case", sorted(REVERT_CASES))
def test_revert_is_byte_exact_function(case: str) -> None:
    text, name, start, end = REVERT_CASES[case]
    qual = "outer.f" if case == "nested" else name
    reg = region(name, "function", start, end, "a", ("return",), qualname=qual)
    data = rewrite(text, reg, manifest(reg, (0.0,), (1.0,)))
    assert data["text"] != text
    compile(data["text"], "prog.py", "exec")
    back = revert_source(data["text"], "prog.py")
    assert back.ok and back.payload.text == text
    if case == "crlf":
        assert "\n" not in data["text"].replace("\r\n", "")  # generated lines use the file's newline
    if case == "tabs":
        assert "\n    " not in data["text"].split("loader end")[1]  # generated blocks indent with tabs


LOOP_CASES = {
    "multiline string in body": ('def g(a, n):\n    s = ""\n    for i in range(n):\n        s += """x\ny""" * a\n'
                                 '    return s\n', 3, 4, "an", "s"),
    "loop last in function, footer comment": ("def g(a, n):\n    s = 0\n    for i in range(n):\n        s += a\n"
                                              "        # deep\n    # g footer\n", 3, 4, "an", "s"),
    "module level, crlf, no newline at end": ("a = 1\r\nn = 3\r\ns = 0\r\nfor i in range(n):\r\n    s += a", 4, 5,
                                              "an", "s"),
    "comment at column 0 inside body": ("def g(a, n):\n    s = 0\n    for i in range(n):\n# odd\n        s += a\n"
                                        "    return s\n", 3, 5, "an", "s"),
}


@pytest.mark.parametrize("case", sorted(LOOP_CASES))
def test_revert_is_byte_exact_loop(case: str) -> None:
    text, start, end, ins, outs = LOOP_CASES[case]
    reg = region(f"L{start}", "loop", start, end, ins, outs, qualname="g")
    data = rewrite(text, reg, manifest(reg, (0.0,) * len(ins), (1.0,) * len(ins)))
    compile(data["text"], "prog.py", "exec")
    assert revert_source(data["text"], "prog.py").payload.text == text


def test_two_regions_then_revert_one_and_all(tmp_path: Path) -> None:
    text, reg, m = newton_case()
    first = rewrite(text, reg, m)["text"]
    # the second region is located in the already-patched text, by its line there
    line = first.splitlines().index("    for _ in range(3):") + 1
    reg2 = region(f"main:for@{line}", "loop", line, line + 1, ("x",), ("x",), qualname="main", name="fixed")
    second = rewrite(first, reg2, manifest(reg2, (0.0,), (1.0,)))["text"]
    assert rewritten_regions(second) == ["newton", reg2.id]
    compile(second, "prog.py", "exec")
    only = revert_source(second, "prog.py", only=reg2.id)
    assert only.ok and only.payload.text == first
    assert revert_source(second, "prog.py").payload.text == text


def test_idempotence_rx501_and_rx504() -> None:
    text, reg, m = newton_case()
    patched = rewrite(text, reg, m)["text"]
    again = rewrite_source(patched, "prog.py", reg, m, module_name="surrogate_newton")
    assert again.status == "failed" and [d.code for d in again.diagnostics] == ["RX501"]
    nothing = revert_source(text, "prog.py")
    assert nothing.status == "failed" and [d.code for d in nothing.diagnostics] == ["RX504"]


# ------------------------------------------------------------------------------------------
# profitability


def test_rx502_refusal_and_force() -> None:
    slow = topo(call=2e-5, elem=3e-5, exact=1e-5)
    text, reg, m = newton_case(t=slow)
    res = rewrite_source(text, "prog.py", reg, m, module_name="surrogate_newton")
    assert res.status == "failed" and [d.code for d in res.diagnostics] == ["RX502"]
    msg = res.diagnostics[0].message
    assert "10 us/call" in msg and "20 us/call" in msg and "30 us/element" in msg
    forced = rewrite_source(text, "prog.py", reg, m, module_name="surrogate_newton", force=True)
    assert forced.ok and forced.payload.hoisted == ()  # batching is slower than scalar: not hoisted


def test_batch_only_profitability() -> None:
    batch_only = topo(call=2e-5, elem=1e-6, exact=1e-5)
    text, reg, m = newton_case(t=batch_only)
    data = rewrite(text, reg, m)
    assert data["path_taken"] == "batch" and data["hoisted"] == [15, 18, 21, 27]
    # the same timings but nothing to batch: the only path used is the slow scalar one
    reg_f = region("f", "function", 1, 2, "ab", ("return",), qualname="f")
    res = rewrite_source("def f(a, b):\n    return a + b\n", "prog.py", reg_f,
                         manifest(reg_f, (0.0, 0.0), (1.0, 1.0), t=batch_only), module_name="surrogate_f")
    assert [d.code for d in res.diagnostics] == ["RX502"] and "no loop to batch" in res.diagnostics[0].message


# ------------------------------------------------------------------------------------------
# running the patched code


def patched_module(tmp_path: Path, text: str, reg: Region, m: Manifest, formula: str,
                   sentinel: float | None = None, offset: float = 0.0, **kw: Any) -> tuple[Any, Any, dict[str, Any]]:
    data = rewrite(text, reg, m, **kw)
    d = tmp_path / f"out{next(_counter)}"
    d.mkdir()
    write_fake(d, m, formula, sentinel, offset)
    mod = load(write(d, "prog.py", data["text"]))
    sur = getattr(mod, "_regionx_" + reg.display_name)
    return mod, sur, data


OFFSET = 1000.0  # the fake surrogate answers exact + OFFSET: every result shows who computed it


def test_patched_program_takes_surrogate_answers_inside_the_box_and_exact_outside(tmp_path: Path) -> None:
    text, reg, m = newton_case()
    orig = load(write(tmp_path, "orig.py", text))
    mod, sur, data = patched_module(tmp_path, text, reg, m, NEWTON_FORMULA, offset=OFFSET)
    assert data["hoisted"] == [15, 18, 21, 27]
    lower, upper = m.lower, m.upper

    def inside(*args: float) -> bool:
        return all(lo <= v <= hi for v, lo, hi in zip(args, lower, upper))

    def dispatched(a: float, b: float, c: float) -> float:
        """What one call of the patched newton answers: the surrogate inside the box, else exact."""
        return orig.newton(a, b, c) + OFFSET if inside(a, b, c) else orig.newton(a, b, c)

    def batched(rows: list[tuple[float, float, float]]) -> list[float]:
        """What a batched loop stores: row 0 (it fixes the result type) and rows outside the box
        are answered by the exact code, the others by the surrogate."""
        return [orig.newton(*r) + OFFSET if k > 0 and inside(*r) else orig.newton(*r) for k, r in enumerate(rows)]

    rng = np.random.default_rng(0)
    A = list(rng.uniform(0.5, 2.0, 40))
    B = list(rng.uniform(-10, 10, 40))
    C = list(rng.uniform(-10, 10, 40))
    A[3] = 5.0  # one row outside the trained box: the exact code answers it
    want, got = orig.main(A, B, C), mod.main(A, B, C)
    # four batched loops (the accumulation `total += newton(..)` by loop distribution) -> four
    # predict calls over all 40 rows; the loop with a dependence (x = newton(1.0, x, -1.0)) went
    # through predict_one
    calls = dict(sur.CALLS)
    assert calls["predict"] == 4 and calls["predict_rows"] == 4 * 40 and calls["predict_one"] > 0
    rows = list(zip(A, B, C))
    expected_out = batched(rows)
    assert got[0] == got[1] == expected_out
    np.testing.assert_array_equal(got[2], batched([(a, 1.0, -2.0) for a in A]))
    # 38 of the 40 answers are the surrogate's (row 0 and the row with A[3] are exact)
    assert sum(g != w for g, w in zip(got[0], want[0])) == 38 and got[0][0] == want[0][0] and got[0][3] == want[0][3]
    x = 0.5
    for _ in range(3):
        x = dispatched(1.0, x, -1.0)
    assert got[3] == x and got[3] != want[3]
    total = 0.0
    for value in batched([(a, 1.0, -1.0) for a in A]):
        total += value
    assert got[4] == total  # the same additions of the same values, in the same order
    # the batched containers hold what the original loops stored (numpy scalars here, as A holds them)
    for w, g in zip(want[:3], got[:3]):
        assert type(w) is type(g) and [type(v) for v in w] == [type(v) for v in g]
    assert type(want[1][0]) is np.float64
    plain = mod.main([1.0, 1.5], [2.0, 3.0], [-3.0, -1.0])[1]
    assert [type(v) for v in plain] == [float, float] and plain == batched([(1.0, 2.0, -3.0), (1.5, 3.0, -1.0)])
    # arrays of inputs (not lists) take the batched path too
    np.testing.assert_array_equal(np.asarray(mod.main(np.array(A), np.array(B), np.array(C))[1]), np.asarray(expected_out))


def test_out_of_domain_goes_to_exact_code(tmp_path: Path) -> None:
    text, reg, m = newton_case()
    orig = load(write(tmp_path, "orig.py", text))
    mod, sur, _ = patched_module(tmp_path, text, reg, m, NEWTON_FORMULA, sentinel=-999.0)
    assert mod.newton(1.0, 2.0, -3.0) == -999.0  # inside the box: the surrogate answers
    assert mod.newton(3.0, 2.0, -3.0) == orig.newton(3.0, 2.0, -3.0)  # a outside [0.5, 2]
    A, B, C = [1.0, 1.2, 3.0, 1.5], [2.0, 2.0, 2.0, 11.0], [-3.0, -3.0, -3.0, -1.0]
    out, res, _, _, _ = mod.main(A, B, C)
    # row 0 always runs exactly (it fixes the result type); rows 2 and 3 are outside the box
    exact = [orig.newton(a, b, c) for a, b, c in zip(A, B, C)]
    assert out == res == [exact[0], -999.0, exact[2], exact[3]]
    assert -999.0 not in exact


def test_accept_predicate_rejects_to_exact(tmp_path: Path) -> None:
    text, reg, m = newton_case(accept="abs(return) < 100")
    orig = load(write(tmp_path, "orig.py", text))
    mod, _, _ = patched_module(tmp_path, text, reg, m, NEWTON_FORMULA, sentinel=-999.0)
    assert mod.newton(1.0, 2.0, -3.0) == orig.newton(1.0, 2.0, -3.0)  # sentinel fails accept
    assert mod.main([1.0, 1.0], [2.0, 2.0], [-3.0, -3.0])[1] == [orig.newton(1.0, 2.0, -3.0)] * 2
    mod2, _, _ = patched_module(tmp_path, text, reg, replace_accept(m, "abs(return) < 1000"), NEWTON_FORMULA,
                                sentinel=-999.0)
    assert mod2.newton(1.0, 2.0, -3.0) == -999.0
    assert mod2.main([1.0, 1.0], [2.0, 2.0], [-3.0, -3.0])[1] == [orig.newton(1.0, 2.0, -3.0), -999.0]


def replace_accept(m: Manifest, accept: str) -> Manifest:
    from dataclasses import replace
    return replace(m, accept=accept)


LOOP_PROG = '''\
def step(a, b, out):
    s = 0.0
    # regionx: name=acc
    for k in range(10):
        s += a * k + b
        out[k] = s
    t = s * 2
    # regionx: begin name=blk
    u = t + a
    v = u * b
    # regionx: end
    return s, u, v, out
'''


@pytest.mark.parametrize("which", ["loop", "block"])
def test_loop_and_block_regions_run(tmp_path: Path, which: str) -> None:
    if which == "loop":
        reg = region("step:for@4", "loop", 4, 6, ("a", "b", "out"), ("s", "out"), qualname="step", name="acc")
        m = manifest(reg, (0.0, 0.0, -1e9), (1.0, 1.0, 1e9), out_shapes={"out": (10,)})
        m = Manifest(**{**m.__dict__, "inputs": (VarSpec("a"), VarSpec("b"), VarSpec("out", (10,)))})
        formula = '''\
            import numpy as _np
            def exact(a, b, *out):
                s, acc = 0.0, []
                for k in range(10):
                    s += a * k + b
                    acc.append(s)
                return (s, *acc)
            '''
        sentinel_check = ("s", 0)
    else:
        reg = region("blk", "block", 9, 10, "tab", "uv", qualname="step")
        m = manifest(reg, (0.0,) * 3, (100.0, 1.0, 1.0))
        formula = "def exact(t, a, b):\n    return (t + a, (t + a) * b)\n"
        sentinel_check = ("u", 1)
    orig = load(write(tmp_path, "orig.py", LOOP_PROG))
    if which == "loop":
        # a fake whose outputs are the 11 flattened columns (s, out[0..9]); inputs a, b, out[0..9]
        m = Manifest(**{**m.__dict__, "lower": (0.0, 0.0) + (-1e9,) * 10, "upper": (1.0, 1.0) + (1e9,) * 10})
        data = rewrite(LOOP_PROG, reg, m)
        d = tmp_path / "loopout"
        d.mkdir()
        (d / m.module).write_text(LOOP_FAKE)
        mod = load(write(d, "prog.py", data["text"]))
    else:
        mod, _, data = patched_module(tmp_path, LOOP_PROG, reg, m, formula)
    for a, b in [(0.3, 0.7), (0.9, 0.1)]:
        got = mod.step(a, b, [0.0] * 10)
        want = orig.step(a, b, [0.0] * 10)
        assert got == want
    # outside the box: exact code; a list container stays a list of floats
    got = mod.step(5.0, 0.5, [0.0] * 10)
    assert got == orig.step(5.0, 0.5, [0.0] * 10) and all(type(v) is float for v in got[3])
    assert revert_source(data["text"], "prog.py").payload.text == LOOP_PROG
    del sentinel_check


LOOP_FAKE = '''\
import numpy as np
INPUTS = ("a", "b", "out")
INPUT_SHAPES = ((), (), (10,))
OUTPUTS = ("s", "out")
OUTPUT_SHAPES = ((), (10,))
LOWER = np.array([0.0, 0.0] + [-1e9] * 10)
UPPER = np.array([1.0, 1.0] + [1e9] * 10)


def _row(a, b):
    s, acc = 0.0, []
    for k in range(10):
        s += a * k + b
        acc.append(s)
    return [s] + acc


def predict(X):
    X = np.asarray(X, dtype=float).reshape(-1, 12)
    return np.array([_row(r[0], r[1]) for r in X])


def predict_one(a, b, out):
    y = predict(np.concatenate([[a, b], np.ravel(out)]))[0]
    return float(y[0]), y[1:]


def in_domain(X):
    X = np.asarray(X, dtype=float).reshape(-1, 12)
    return np.all((X >= LOWER) & (X <= UPPER), axis=1)


def in_domain_one(a, b, out):
    return bool(in_domain(np.concatenate([[a, b], np.ravel(out)]))[0])
'''


# ------------------------------------------------------------------------------------------
# files: rewrite_file / revert_file, running `python OUT/prog.py` from another directory


PROGRAM = NEWTON + '''

if __name__ == "__main__":
    import json
    import sys
    A = [0.6 + 0.1 * k for k in range(12)] + [4.0]
    B = [3.0 - 0.5 * k for k in range(13)]
    C = [-1.0 - 0.2 * k for k in range(13)]
    out, res, arr, x, total = main(A, B, C)
    print(json.dumps([out, res, arr.tolist(), x, total]))
    print(sorted(m for m in sys.modules if m.startswith(("regionx", "tensorflow", "keras"))))
'''


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Manifest, Region]:
    """A program, an artifact directory with manifest.json + fake module + weights, and a stub analysis."""
    src = write(tmp_path, "prog.py", "import numpy as np\n" + PROGRAM)
    reg = region("newton", "function", 6, 10, "abc", ("return",), qualname="newton")
    m = manifest(reg, (0.5, -10.0, -10.0), (2.0, 10.0, 10.0))
    art = tmp_path / "artifacts" / "newton"
    art.mkdir(parents=True)
    (art / "manifest.json").write_text(json.dumps(m.to_json()))
    write_fake(art, m, NEWTON_FORMULA)
    np.savez(art / "weights.npz", w=np.zeros(3))

    import regionx.analysis as analysis
    from regionx.types import FileAnalysis

    def analyze_source(text: str, path: str) -> FileAnalysis:
        return FileAnalysis(path=path, regions=(reg,))

    def find_region(fa: FileAnalysis, selector: str) -> Region | None:
        return next((r for r in fa.regions if selector in (r.id, r.name)), None)

    monkeypatch.setattr(analysis, "analyze_source", analyze_source, raising=False)
    monkeypatch.setattr(analysis, "find_region", find_region, raising=False)
    monkeypatch.setattr(analysis, "region_source", None, raising=False)
    return src, tmp_path / "artifacts", m, reg


def run_python(script: Path, cwd: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_rewrite_file_out_dir_runs_from_any_cwd(project: tuple[Path, Path, Manifest, Region], tmp_path: Path) -> None:
    src, art, m, _ = project
    before = src.read_bytes()
    res = rewrite_file(str(src), "newton", str(art), out=str(tmp_path / "OUT"), in_place=False, diff=True,
                       force=False)
    assert res.ok, [d.format() for d in res.diagnostics]
    assert src.read_bytes() == before  # the user's file is untouched without --in-place
    patched = tmp_path / "OUT" / "prog.py"
    assert {os.path.relpath(p, tmp_path / "OUT") for p in res.artifacts.values()} == {
        "prog.py", *(os.path.join(".regionx", "newton", f) for f in ("manifest.json", m.module, "weights.npz"))}
    diff = res.payload.diff or ""
    assert diff.startswith("--- ") and "+def _regionx_exact_newton(a, b, c):" in diff
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    want = run_python(src, elsewhere)
    got = run_python(patched, elsewhere)
    assert got == want
    assert got[1] == "[]"  # no regionx / TensorFlow at run time


def test_rewrite_file_in_place_and_revert_file(project: tuple[Path, Path, Manifest, Region]) -> None:
    src, art, m, _ = project
    before = src.read_text()
    res = rewrite_file(str(src), None, str(art), out=None, in_place=True, diff=False, force=False)
    assert res.ok and src.read_text() == res.payload.text != before
    beside = src.parent / ".regionx" / "newton"
    assert (beside / m.module).is_file() and (beside / "weights.npz").is_file()
    assert not [p for p in os.listdir(src.parent) if p.startswith(".regionx-")]  # no temp files left
    again = rewrite_file(str(src), None, str(art), out=None, in_place=True, diff=False, force=False)
    assert [d.code for d in again.diagnostics] == ["RX501"]
    back = revert_file(str(src), in_place=True)
    assert back.ok and src.read_text() == before
    assert [d.code for d in revert_file(str(src), in_place=True).diagnostics] == ["RX504"]


def test_rewrite_file_errors(project: tuple[Path, Path, Manifest, Region], tmp_path: Path) -> None:
    src, art, _, _ = project
    assert [d.code for d in rewrite_file(str(tmp_path / "nope.py"), None, str(art)).diagnostics] == ["RX001"]
    assert [d.code for d in rewrite_file(str(src), None, str(tmp_path / "empty")).diagnostics] == ["RX503"]
    res = rewrite_file(str(src), "unknown", str(art / "newton"))
    assert [d.code for d in res.diagnostics] == ["RX005"]


# ------------------------------------------------------------------------------------------
# contracts with other stages


def test_patched_text_keeps_valid_pragmas() -> None:
    """Markers are not pragmas, and each pragma still sits directly above the code it annotates."""
    from regionx.pragma import parse_pragmas

    text, reg, m = newton_case()
    patched = rewrite(text, reg, m)["text"]
    loop_reg = region("step:for@4", "loop", 4, 6, ("a", "b", "out"), ("s", "out"), qualname="step", name="acc")
    loop_m = manifest(loop_reg, (0.0,) * 3, (1.0,) * 3)
    first = rewrite(LOOP_PROG, loop_reg, loop_m)["text"]
    start = first.splitlines().index("    u = t + a") + 1  # lines moved: locate the block in the patched text
    blk_reg = region("blk", "block", start, start + 1, "tab", "uv", qualname="step")
    both = rewrite(first, blk_reg, manifest(blk_reg, (0.0,) * 3, (1.0,) * 3))["text"]
    assert revert_source(both, "prog.py").payload.text == LOOP_PROG
    for source, names in [(patched, ["newton"]), (both, ["acc", "blk"])]:
        pragmas, diags = parse_pragmas(source, "prog.py")
        assert diags == [] and [p.name for p in pragmas] == names
    lines = patched.splitlines()
    assert lines[lines.index("# regionx: name=newton, a=uniform(0.5, 2.0), b=uniform(-10, 10), c=uniform(-10, 10)")
                 + 1] == "def _regionx_exact_newton(a, b, c):"


def test_module_name_as_relative_path(tmp_path: Path) -> None:
    """compile writes OUT/prog.py and OUT/<region>/surrogate_<name>.py: module_name is that relative path."""
    text, reg, m = newton_case()
    res = rewrite_source(text, "prog.py", reg, m, module_name="newton/surrogate_newton.py")
    assert res.ok and res.payload.module == "newton/surrogate_newton.py"
    out = tmp_path / "OUT"
    (out / "newton").mkdir(parents=True)
    write_fake(out / "newton", m, NEWTON_FORMULA, sentinel=-999.0)
    mod = load(write(out, "prog.py", res.payload.text))
    assert mod.newton(1.0, 2.0, -3.0) == -999.0
    bad = rewrite_source(text, "prog.py", reg, m, module_name="/abs/x-y.py")
    assert [d.code for d in bad.diagnostics] == ["RX503"]


def test_rewrite_file_with_real_analysis(tmp_path: Path) -> None:
    """No stubs: regionx.analysis finds the region; a changed region is refused as stale (RX503)."""
    from dataclasses import replace

    from regionx.analysis import analyze_source, find_region, region_sha256

    text = "import numpy as np\n" + PROGRAM
    src = write(tmp_path, "prog.py", text)
    reg = find_region(analyze_source(text, str(src)), "newton")
    assert reg is not None and reg.kind == "function"
    m = replace(manifest(reg, (0.5, -10.0, -10.0), (2.0, 10.0, 10.0)), source_sha256=region_sha256(text, reg))
    art = tmp_path / "art"
    art.mkdir()
    (art / "manifest.json").write_text(json.dumps(m.to_json()))
    write_fake(art, m, NEWTON_FORMULA)
    res = rewrite_file(str(src), "newton", str(art), out=str(tmp_path / "OUT"))
    assert res.ok, [d.format() for d in res.diagnostics]
    assert res.payload.hoisted == (15, 18, 21, 27)
    assert run_python(tmp_path / "OUT" / "prog.py", tmp_path) == run_python(src, tmp_path)
    write(tmp_path, "prog.py", text.replace("range(30)", "range(31)"))
    stale = rewrite_file(str(src), "newton", str(art), out=str(tmp_path / "OUT2"))
    assert [d.code for d in stale.diagnostics] == ["RX503"] and "changed since" in stale.diagnostics[0].message


def test_crlf_file_through_analyze_rewrite_and_revert(tmp_path: Path) -> None:
    """One reading of source text: a CRLF file keeps its CRLF through rewrite and revert, and the
    region hashes alike when sampling reads it (api.load_region) and when rewrite does."""
    from dataclasses import replace

    from regionx.analysis import region_sha256
    from regionx.api import load_region

    text = ("import numpy as np\n" + PROGRAM).replace("\n", "\r\n")
    src = tmp_path / "prog.py"
    src.write_bytes(text.encode("utf-8"))
    loaded = load_region(str(src), "newton")  # how sample/compile read the file and find the region
    reg = loaded.region
    assert reg is not None and loaded.text == text  # line endings as written
    sha = region_sha256(loaded.text, reg)
    assert sha == region_sha256(text.replace("\r\n", "\n"), reg)  # a CRLF checkout hashes as its LF original
    m = replace(manifest(reg, (0.5, -10.0, -10.0), (2.0, 10.0, 10.0)), source_sha256=sha)
    art = tmp_path / "art"
    art.mkdir()
    (art / "manifest.json").write_text(json.dumps(m.to_json()))
    write_fake(art, m, NEWTON_FORMULA)
    res = rewrite_file(str(src), "newton", str(art), out=str(tmp_path / "OUT"))
    assert res.ok, [d.format() for d in res.diagnostics]  # no spurious RX503 "changed since"
    patched = (tmp_path / "OUT" / "prog.py").read_bytes()
    assert patched.count(b"\r\n") > text.count("\r\n") and b"\n" not in patched.replace(b"\r\n", b"")
    assert run_python(tmp_path / "OUT" / "prog.py", tmp_path) == run_python(src, tmp_path)
    assert rewrite_file(str(src), "newton", str(art), in_place=True).ok
    assert b"\n" not in src.read_bytes().replace(b"\r\n", b"")
    assert revert_file(str(src), in_place=True).ok
    assert src.read_bytes() == text.encode("utf-8")  # byte-exact


def test_compile_keeps_crlf_in_the_patched_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """compile reads the file as written: its patched copy of a CRLF file is CRLF, and otherwise what
    compile wrote for the LF original (fixtures/ci_repo's committed artifacts stand in for training)."""
    import contextlib
    import shutil

    from regionx import api, sample, train
    from regionx.analysis import region_sha256
    from regionx.types import Dataset, DatasetMeta, StageResult

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "ci_repo"
    src = tmp_path / "physics.py"
    src.write_bytes((fixture / "src" / "physics.py").read_bytes().replace(b"\n", b"\r\n"))
    committed = fixture / ".regionx"

    def fake_sample(text: str, path: str, region: Region, **kw: Any) -> tuple[StageResult, Dataset]:
        assert "\r\n" in text
        m = Manifest.from_json(json.loads((committed / region.name / "manifest.json").read_text()))
        assert region_sha256(text, region) == m.source_sha256  # the CRLF text hashes as the LF one trained
        meta = DatasetMeta(region_id=region.id, region_name=region.name, source_path=path,
                           source_sha256=region_sha256(text, region), inputs=m.inputs, outputs=m.outputs,
                           domain=dict(m.domain), seed=0, requested=1, dropped={}, exact_time_per_call=1e-5)
        return StageResult("ok", region.id), Dataset(np.zeros((1, len(m.inputs))), np.zeros((1, 1)), meta)

    def fake_train(dataset: Dataset, region_dir: str, **kw: Any) -> StageResult:
        name = dataset.meta.region_name
        for f in ("manifest.json", "weights.npz", f"surrogate_{name}.py"):
            shutil.copy(committed / name / f, Path(region_dir) / f)
        manifest = Manifest.from_json(json.loads((Path(region_dir) / "manifest.json").read_text()))
        trained = TrainResult(rows=(), chosen=None, best=None, tolerance=0.01, metric="rel", criterion={}, target=0.99,
                              select_by="call", search={}, manifest=manifest)
        return StageResult("ok", dataset.meta.region_id, artifacts={"manifest": str(Path(region_dir) / "manifest.json")},
                           value=trained)

    monkeypatch.setattr(sample, "sample_region", fake_sample)
    monkeypatch.setattr(train, "train_dataset", fake_train)
    monkeypatch.setattr(api, "exact_timer_for", lambda *a, **k: contextlib.nullcontext(None))
    results = api.compile_file(str(src), out_dir=str(tmp_path / "out"))
    assert [r.payload.verdict for r in results] == ["rewritten", "rewritten"], [d.format() for r in results for d in r.diagnostics]
    patched = (tmp_path / "out" / "physics.py").read_bytes()
    assert patched == (committed / "physics.py").read_bytes().replace(b"\n", b"\r\n")


# ------------------------------------------------------------------------------------------
# the column-wise fast form of batch hoisting


FAST_PROG = """\
import numpy as np


def f(a, b):
    return a * b + 1.0


def by_index(A, B, out, start, stop):
    for i in range(start, stop):
        out[i] = f(A[i], B[i])
    return out, i


def by_len(A, B, out):
    for i in range(len(A)):
        out[i] = f(A[i], B[i])
    return out, i


def by_zip(A, B):
    res = []
    for a, b in zip(A, B):
        res.append(f(a, b))
    return res, a, b


def by_enumerate(A, out):
    for i, a in enumerate(A):
        out[i] = f(a, 0.5)
    return out, i, a


def by_name(A):
    res = []
    for a in A:
        res.append(f(2.0 * 0.25, a))
    return res, a
"""
FAST_FORMULA = "def exact(a, b):\n    return (a * b + 1.0,)\n"
FAST_LINES = [9, 15, 22, 28, 35]


def fast_case(tmp_path: Path, sentinel: float | None = None, accept: str | None = None) -> tuple[Any, Any, Any]:
    reg = region("f", "function", 4, 5, "ab", ("return",), qualname="f")
    m = manifest(reg, (0.0, 0.0), (1.0, 1.0), accept=accept)
    orig = load(write(tmp_path, "orig.py", FAST_PROG))
    mod, sur, data = patched_module(tmp_path, FAST_PROG, reg, m, FAST_FORMULA, sentinel)
    assert data["hoisted"] == FAST_LINES
    assert data["text"].count("_regionx_f_batch(_regionx_exact_f, ") == len(FAST_LINES)
    assert "_regionx_f_map" not in data["text"]
    return orig, mod, sur


def assert_same(want: Any, got: Any) -> None:
    """Equal values of identical types, element by element (lists, tuples, arrays, scalars)."""
    assert type(want) is type(got), (want, got)
    if isinstance(want, np.ndarray):
        assert want.dtype == got.dtype and want.shape == got.shape
        np.testing.assert_array_equal(want, got)
    elif isinstance(want, (list, tuple)):
        assert len(want) == len(got)
        for w, g in zip(want, got):
            assert_same(w, g)
    else:
        assert want == got or (want != want and got != got), (want, got)


def inputs(kind: str) -> tuple[Any, Any]:
    rng = np.random.default_rng(7)
    A, B = rng.uniform(0.0, 1.0, 12), rng.uniform(0.0, 1.0, 12)
    if kind == "list of float":
        return A.tolist(), B.tolist()
    if kind == "list of np.float64":
        return list(A), list(B)
    if kind == "tuple":
        return tuple(A.tolist()), tuple(B.tolist())
    return A, B


FAST_CALLS = {
    "range(start, stop) into a list": lambda A, B: ("by_index", (A, B, [0.0] * 12, 2, 9)),
    "range(start, stop) into an ndarray": lambda A, B: ("by_index", (A, B, np.zeros(12), 0, 12)),
    "range(len(A))": lambda A, B: ("by_len", (A, B, [0.0] * 12)),
    "zip + append": lambda A, B: ("by_zip", (A, B)),
    "enumerate, invariant argument": lambda A, B: ("by_enumerate", (A, [None] * 12)),
    "for a in A, invariant expression": lambda A, B: ("by_name", (B,)),
}


@pytest.mark.parametrize("kind", ["list of float", "list of np.float64", "tuple", "ndarray"])
@pytest.mark.parametrize("case", sorted(FAST_CALLS))
def test_fast_form_matches_original_loop(tmp_path: Path, case: str, kind: str) -> None:
    """Same stored values, same element types, same final loop variables; one predict, no scalar calls."""
    orig, mod, sur = fast_case(tmp_path)
    A, B = inputs(kind)
    name, args = FAST_CALLS[case](A, B)
    want = getattr(orig, name)(*args)
    name, args = FAST_CALLS[case](A, B)  # fresh output containers
    got = getattr(mod, name)(*args)
    assert_same(want, got)
    assert sur.CALLS["predict"] >= 1 and sur.CALLS["predict_one"] == 0


def test_fast_form_float32_keeps_numpy_scalar_type(tmp_path: Path) -> None:
    orig, mod, _ = fast_case(tmp_path)
    A = np.linspace(0.1, 0.9, 7, dtype=np.float32)
    want, got = orig.by_zip(A, A), mod.by_zip(A, A)
    assert [type(v) for v in got[0]] == [type(v) for v in want[0]] == [np.float32] * 7
    np.testing.assert_allclose(np.array(got[0]), np.array(want[0]), rtol=1e-6)


def test_fast_form_rows_outside_the_domain_run_exact(tmp_path: Path) -> None:
    orig, mod, sur = fast_case(tmp_path, sentinel=-999.0)
    A = [0.5, 0.25, 5.0, 0.75, float("nan"), 0.5]
    B = [0.5, 0.5, 0.5, -1.0, 0.5, 0.5]
    exact = [a * b + 1.0 for a, b in zip(A, B)]
    out, i = mod.by_index(A, B, [0.0] * 6, 0, 6)
    # row 0 always runs exactly (it fixes the element type); rows 2, 3, 4 are outside the box
    assert_same(out[:4] + out[5:], [exact[0], -999.0, exact[2], exact[3], -999.0])
    assert out[4] != out[4] and i == 5
    assert sur.CALLS["predict"] == 1 and sur.CALLS["predict_one"] == 0
    res, a, b = mod.by_zip(A, B)
    assert res[2:4] == exact[2:4] and res[1] == -999.0 and (a, b) == (0.5, 0.5)


def test_fast_form_accept_predicate(tmp_path: Path) -> None:
    orig, mod, _ = fast_case(tmp_path, sentinel=-999.0, accept="abs(return) < 100")
    A, B = inputs("list of float")
    assert_same(mod.by_len(A, B, [0.0] * 12), orig.by_len(A, B, [0.0] * 12))  # every row rejected
    _, mod2, _ = fast_case(tmp_path, sentinel=-999.0, accept="abs(return) < 1000")
    out, _ = mod2.by_len(A, B, [0.0] * 12)
    assert out[0] == A[0] * B[0] + 1.0 and out[1:] == [-999.0] * 11


@pytest.mark.parametrize("call", [
    "by_index(A, B, [0.0] * 5, 0, 9)",  # out too short: IndexError after 5 stores
    "by_index(A[:5], B, [0.0] * 12, 0, 9)",  # an input too short
    "by_index(A, B, [0.0] * 12, 4, 4)",  # no rows: the loop variable stays unbound
    "by_index(A, B, [0.0] * 12, -3, 4)",  # negative indices
    "by_index(A, B, (0.0,) * 12, 0, 3)",  # a container that cannot be stored into
    "by_index(A, B, np.zeros((12, 1)), 0, 3)",  # a 2-d array out
    "by_zip(iter(A), B)",  # a generator: traversed once, by the original loop
    "by_zip(A, B[:4])",  # zip stops at the shortest
    "by_enumerate(A, [0.0] * 3)",
    "by_name(['0.5', 0.25])",  # not numbers: the exact code decides what happens
])
def test_fast_form_guards_fall_back_to_the_original_loop(tmp_path: Path, call: str) -> None:
    orig, mod, _ = fast_case(tmp_path)
    A, B = inputs("list of float")
    results = []
    for m in (orig, mod):
        env = {"A": list(A), "B": list(B), "np": np, **{k: getattr(m, k) for k in ("by_index", "by_zip",
                                                                                    "by_enumerate", "by_name")}}
        args = eval(call.split("(", 1)[1].rsplit(")", 1)[0].join(["(", ",)"]), env)  # noqa: S307 - test table
        fn = env[call.split("(", 1)[0]]
        try:
            results.append(("ok", fn(*args)))
        except Exception as exc:  # noqa: BLE001 - the exception itself is what is compared
            results.append((type(exc), args))
    assert results[0][0] == results[1][0]
    assert_same(results[0][1], results[1][1])  # results, or the arguments as the partial loop left them


def test_fast_form_module_level_loop_sets_the_loop_variable(tmp_path: Path) -> None:
    text = FAST_PROG + "\n\nXS = [0.1, 0.2, 0.3]\nYS = []\nfor x in XS:\n    YS.append(f(x, 0.5))\nLAST = x\n"
    reg = region("f", "function", 4, 5, "ab", ("return",), qualname="f")
    m = manifest(reg, (0.0, 0.0), (1.0, 1.0))
    orig = load(write(tmp_path, "orig.py", text))
    mod, sur, data = patched_module(tmp_path, text, reg, m, FAST_FORMULA)
    assert data["hoisted"][-1] == 42 and sur.CALLS["predict"] == 1
    assert_same((mod.YS, mod.x, mod.LAST), (orig.YS, orig.x, orig.LAST))


def test_a_batched_sites_report_predicts_a_loop_of_n_rows() -> None:
    """Site.report: per row (the long-loop limit) and the fixed cost of one batch (the call and row
    0, answered exactly), from which a loop of n rows is predicted."""
    import libcst as cst

    from regionx.rewrite.sites import BATCH_FIXED_SECONDS, Site

    site = Site(stmt=cst.parse_statement("pass"), line=3, form="index", call=None)
    rep = site.report(1e-3, 1e-7)  # an expensive region (1 ms a call), 100 ns a batched row
    assert rep["line"] == 3 and rep["form"] == "index"
    assert rep["predicted_speedup"] == pytest.approx(1e4)
    assert rep["per_row_seconds"] == pytest.approx(1e-7) and rep["original_per_row_seconds"] == pytest.approx(1e-3)
    assert rep["per_batch_seconds"] == pytest.approx(BATCH_FIXED_SECONDS + 1e-3)
    n = 2000
    at_n = n * rep["original_per_row_seconds"] / (n * rep["per_row_seconds"] + rep["per_batch_seconds"])
    assert 1500 < at_n < 1700  # the one exact row of each batch costs as much as 10,000 batched rows
