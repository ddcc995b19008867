"""Every map form the rewrite batches, in the shapes people write, and the ones it must not.

One table: each case is a small program calling the replaced function in one form. A batched case
must (1) match its golden before/after rewrite (tests/golden/rewrite_forms.json; the loader block
left out), (2) revert byte for byte, (3) compute exactly what the original computes when the
surrogate is exact (values and element types, the loop variables too), and (4) really use the
surrogate: with a surrogate that is off by 1e-3 the answers move, and predict() runs once. A case
that is not batched names the form that blocked it and why.

Set REGIONX_UPDATE_GOLDEN=1 to rewrite the golden file (then review its diff).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_rewrite import (  # noqa: E402 - shared helpers of the rewrite tests
    assert_same, load, manifest, region, revert_source, rewrite, strip_loader, write, write_fake,
)

GOLDEN = Path(__file__).resolve().parent / "golden" / "rewrite_forms.json"
UPDATE = os.environ.get("REGIONX_UPDATE_GOLDEN") == "1"

HEADER = '''\
import numpy as np


def f(a, b):
    return a * b + 1.0


def ik(x, y):
    c = x * y
    return c + 1.0, c - 1.0


'''
F_EXACT = "def exact(a, b):\n    return (a * b + 1.0,)\n"
F_OFF = "def exact(a, b):\n    return (a * b + 1.0 + 1e-3,)\n"
IK_EXACT = "def exact(x, y):\n    c = x * y\n    return (c + 1.0, c - 1.0)\n"
IK_OFF = "def exact(x, y):\n    c = x * y\n    return (c + 1.0 + 1e-3, c - 1.0 - 1e-3)\n"

RNG = np.random.default_rng(3)
A = RNG.uniform(0.0, 1.0, 12).tolist()
B = RNG.uniform(0.0, 1.0, 12).tolist()
P = RNG.uniform(0.0, 1.0, (12, 2))


@dataclass(frozen=True)
class Case:
    """A function `run` calling f (or ik) in one form; `args` builds fresh arguments."""

    code: str
    form: str | None  # the batched form, or None when it must stay per call
    args: Callable[[], tuple[Any, ...]] = lambda: (list(A), list(B))
    reason: str = ""  # for a case that stays per call: part of the reason given
    fn: str = "f"


CASES: dict[str, Case] = {
    "index store": Case('''
        def run(A, B):
            out = [0.0] * len(A)
            for i in range(len(A)):
                out[i] = f(A[i], B[i])
            return out, i
        ''', "index"),
    "index store, range(start, stop), into an ndarray": Case('''
        def run(A, B):
            out = np.zeros(len(A))
            for i in range(2, len(A) - 1):
                out[i] = f(A[i], B[i])
            return out, i
        ''', "index"),
    "enumerate with an invariant argument": Case('''
        def run(A, B):
            out = [None] * len(A)
            s = B[0]
            for i, a in enumerate(A):
                out[i] = f(a, s * 0.5)
            return out, i, a
        ''', "index"),
    "zip + append": Case('''
        def run(A, B):
            res = []
            for a, b in zip(A, B):
                res.append(f(a, b))
            return res, a, b
        ''', "append"),
    "accumulation into an indexed target": Case('''
        def run(A, B):
            out = [1.0] * len(A)
            for i in range(len(A)):
                out[i] += f(A[i], B[i])
            return out
        ''', "add"),
    "tuple store into two lists": Case('''
        def run(A, B):
            t1 = [0.0] * len(A)
            t2 = [0.0] * len(A)
            for i in range(len(A)):
                t1[i], t2[i] = ik(A[i], B[i])
            return t1, t2
        ''', "tuple", fn="ik"),
    "list comprehension over zip": Case('''
        def run(A, B):
            return [f(a, b) for a, b in zip(A, B)]
        ''', "comprehension"),
    "list comprehension over range": Case('''
        def run(A, B):
            res = [f(A[i], B[i]) for i in range(len(A))]
            return res
        ''', "comprehension"),
    "list comprehension of tuples": Case('''
        def run(A, B):
            return [ik(a, b) for a, b in zip(A, B)]
        ''', "comprehension", fn="ik"),
    "set comprehension": Case('''
        def run(A, B):
            return {f(a, 0.5) for a in A}
        ''', "comprehension"),
    "dict comprehension": Case('''
        def run(A, B):
            return {k: f(a, b) for k, a, b in zip(range(len(A)), A, B)}
        ''', "comprehension"),
    "filtered comprehension": Case('''
        def run(A, B):
            return [f(a, b) for a, b in zip(A, B) if a > 0.3]
        ''', "comprehension"),
    "generator expression fed to sum": Case('''
        def run(A, B):
            total = sum(f(a, b) for a, b in zip(A, B))
            return total
        ''', "comprehension"),
    "generator expression fed to list": Case('''
        def run(A, B):
            return list(f(a, 0.25) for a in A)
        ''', "comprehension"),
    "np.array around a comprehension": Case('''
        def run(A, B):
            return np.array([f(A[i], B[i]) for i in range(len(A))])
        ''', "comprehension"),
    "np.fromiter around a generator": Case('''
        def run(A, B):
            return np.fromiter((f(a, b) for a, b in zip(A, B)), float)
        ''', "comprehension"),
    "list(map(f, ...))": Case('''
        def run(A, B):
            return list(map(f, A, B))
        ''', "map"),
    "sum(map(f, ...))": Case('''
        def run(A, B):
            return sum(map(f, A, B))
        ''', "map"),
    "nested loops over a grid of lists": Case('''
        def run(A, B):
            grid = [[0.0] * 5 for _ in range(4)]
            for i in range(4):
                for j in range(5):
                    grid[i][j] = f(A[i], B[j])
            return grid, i, j
        ''', "grid"),
    "nested loops over a 2-d array": Case('''
        def run(A, B):
            grid = np.zeros((4, 5))
            for i in range(4):
                for j in range(5):
                    grid[i, j] = f(A[i], B[j])
            return grid
        ''', "grid"),
    "nested triangular loops": Case('''
        def run(A, B):
            grid = [[0.0] * 6 for _ in range(6)]
            for i in range(6):
                for j in range(i):
                    grid[i][j] = f(A[i], B[j])
            return grid
        ''', "general"),
    "rows of a 2-d array by index": Case('''
        def run(P):
            out = np.zeros(len(P))
            for i in range(len(P)):
                out[i] = f(P[i, 0], P[i, 1])
            return out
        ''', "index", args=lambda: (P.copy(),)),
    "rows of a 2-d array, iterated": Case('''
        def run(P):
            res = []
            for row in P:
                res.append(f(row[0], row[1]))
            return res, row
        ''', "append", args=lambda: (P.copy(),)),
    "rows of a 2-d array, unpacked": Case('''
        def run(P):
            res = []
            for x, y in P:
                res.append(f(x, y))
            return res, x, y
        ''', "append", args=lambda: (P.copy(),)),
    "rows of a list of lists": Case('''
        def run(P):
            out = [0.0] * len(P)
            for i in range(len(P)):
                out[i] = f(P[i][0], P[i][1])
            return out
        ''', "index", args=lambda: (P.tolist(),)),
    "an argument computed in the call": Case('''
        def run(A, B):
            out = [0.0] * len(A)
            for i in range(len(A)):
                out[i] = f(A[i], B[i] * 0.5)
            return out
        ''', "general"),
    "accumulation into a scalar (distribution)": Case('''
        def run(A, B):
            total = 0.0
            for i in range(len(A)):
                total += f(A[i], B[i])
            return total, i
        ''', "distributed"),
    "pair force in an accumulating neighbour loop (distribution)": Case('''
        def run(A, B):
            fx = [0.0] * len(A)
            xi = 0.5
            half = 0.4
            fxi = 0.0
            for j in range(len(A)):
                dx = xi - A[j]
                if dx > half:
                    dx -= 1.0
                elif dx < -half:
                    dx += 1.0
                rsq = dx * dx
                fpair = f(rsq, 0.5)
                fxi += dx * fpair
                fx[j] -= dx * fpair
            return fxi, fx, rsq, fpair
        ''', "distributed"),
    # ---- stays per call ----
    "value carried between iterations": Case('''
        def run(A, B):
            x = 0.5
            for i in range(len(A)):
                x = f(x, B[i])
            return x
        ''', None, reason="loop-carried dependence: the arguments read x"),
    "conditional call": Case('''
        def run(A, B):
            out = [0.0] * len(A)
            for i in range(len(A)):
                out[i] = f(A[i], B[i]) if A[i] > 0.5 else 0.0
            return out
        ''', None, reason="called conditionally"),
    "I/O in the loop": Case('''
        def run(A, B):
            out = [0.0] * len(A)
            for i in range(len(A)):
                print(i)
                out[i] = f(A[i], B[i])
            return out
        ''', None, reason="calls print()"),
    "a loop that writes what it walks": Case('''
        def run(A, B):
            for a in A:
                A.append(f(a, 1.0))
                break
            return A
        ''', None, reason="break"),
    "an argument from the previous row": Case('''
        def run(A, B):
            out = [0.0] * len(A)
            for i in range(1, len(A)):
                out[i] = f(out[i - 1], B[i])
            return out
        ''', None, reason="the arguments read ['out'], which the loop writes"),
    "a generator kept for later": Case('''
        def run(A, B):
            g = (f(a, b) for a, b in zip(A, B))
            return list(g)
        ''', None, reason="not consumed at once"),
    "keyword argument": Case('''
        def run(A, B):
            out = [0.0] * len(A)
            for i in range(len(A)):
                out[i] = f(A[i], b=B[i])
            return out
        ''', None, reason="keyword"),
    "an argument slice that writes a container": Case('''
        def run(A, B):
            tmp = [0.0]
            out = [0.0] * len(A)
            for i in range(len(A)):
                tmp[0] = A[i]
                out[i] = f(tmp[0], B[i])
            return out
        ''', None, reason="the arguments read ['tmp'], which the loop writes"),
}


def program(case: Case) -> str:
    return HEADER + textwrap.dedent(case.code).lstrip("\n")


def patch(case: Case) -> dict[str, Any]:
    if case.fn == "ik":
        reg = region("ik", "function", 8, 10, "xy", ("return",), qualname="ik")
        m = manifest(reg, (0.0, 0.0), (1.0, 1.0), out_shapes={"return": (2,)})
    else:
        reg = region("f", "function", 4, 5, "ab", ("return",), qualname="f")
        m = manifest(reg, (0.0, 0.0), (1.0, 1.0))
    data = rewrite(program(case), reg, m)
    data["manifest"] = m
    return data


def golden() -> dict[str, str]:
    return json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}


@pytest.mark.parametrize("name", sorted(CASES))
def test_form(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    text = program(case)
    data = patch(case)
    assert revert_source(data["text"], "prog.py").payload.text == text  # byte for byte
    forms = [b["form"] for b in data["batched"]]
    if case.form is None:
        assert forms == [], data["batched"]
        assert any(case.reason in s["reason"] for s in data["hoist_skipped"]), data["hoist_skipped"]
        assert " batch begin" not in data["text"]
        return
    assert forms == [case.form], (data["batched"], data["hoist_skipped"])
    after = strip_loader(data["text"]).split(f"# regionx-rewritten: {case.fn} end\n", 1)[1]
    if UPDATE:
        stored = golden()
        stored[name] = after
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    assert after == golden().get(name), f"golden of {name!r} differs; REGIONX_UPDATE_GOLDEN=1 rewrites it"
    exact, off = (IK_EXACT, IK_OFF) if case.fn == "ik" else (F_EXACT, F_OFF)
    orig = load(write(tmp_path, "orig.py", text))
    want = orig.run(*case.args())
    for formula, same in ((exact, True), (off, False)):
        d = tmp_path / ("exact" if same else "off")
        d.mkdir()
        write_fake(d, data["manifest"], formula)
        mod = load(write(d, "prog.py", data["text"]))
        got = mod.run(*case.args())
        calls = getattr(mod, f"_regionx_{case.fn}").CALLS
        assert calls["predict"] == 1 and calls["predict_one"] == 0, calls
        if same:
            assert_same(want, got)  # values, element types, loop variables
        else:
            assert repr(want) != repr(got)  # the surrogate answered
            np.testing.assert_allclose(_numbers(got), _numbers(want), atol=0.02)  # sums gather 12 offsets


def _numbers(value: Any) -> np.ndarray:
    """Every number in a nested result, flattened (sets sorted, dict values in order)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, set):
        value = sorted(value)
    if isinstance(value, (list, tuple)):
        return np.concatenate([_numbers(v) for v in value]) if value else np.zeros(0)
    return np.ravel(np.asarray(value, dtype=float))


def test_golden_file_has_no_stale_cases() -> None:
    batched = {name for name, case in CASES.items() if case.form is not None}
    assert set(golden()) == batched


def test_blocked_form_is_named_in_the_rx502_verdict() -> None:
    """Nothing batched and a slow surrogate: RX502 says which form blocked batching, where."""
    from test_rewrite import topo

    from regionx.rewrite import rewrite_source

    case = CASES["value carried between iterations"]
    reg = region("f", "function", 4, 5, "ab", ("return",), qualname="f")
    m = manifest(reg, (0.0, 0.0), (1.0, 1.0), t=topo(call=2e-5, elem=1e-6, exact=1e-5))
    res = rewrite_source(program(case), "prog.py", reg, m, module_name="surrogate_f")
    assert [d.code for d in res.diagnostics] == ["RX502"]
    message = res.diagnostics[0].message
    assert "no loop to batch; line 15 distributed: loop-carried dependence: the arguments read x" in message
