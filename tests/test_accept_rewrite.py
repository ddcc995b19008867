"""The accept predicate in patched programs: vectorised in the hoisted batch path, scalar in the dispatcher."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_rewrite import (  # noqa: E402 - shared helpers of the rewrite tests
    FAST_PROG, inputs, load, manifest, patched_module, region, revert_source, rewrite, write,
)

# A stand-in surrogate: 1e-4 off for a <= 0.5 (close enough to accept), 0.5 off above (rejected),
# NaN for b > 0.95 (never accepted, whatever the predicate says).
OFF_FORMULA = """\
def exact(a, b):
    if b > 0.95:
        return (float("nan"),)
    return (a * b + 1.0 + (1e-4 if a <= 0.5 else 0.5),)
"""
CLOSE = "abs(return - (a * b + 1.0)) <= 0.01"


def case(tmp_path: Path, accept: str | None, hoist: bool = True) -> tuple[Any, Any, Any, dict[str, Any]]:
    reg = region("f", "function", 4, 5, "ab", ("return",), qualname="f")
    m = manifest(reg, (0.0, 0.0), (1.0, 1.0), accept=accept)
    orig = load(write(tmp_path, "orig.py", FAST_PROG))
    mod, sur, data = patched_module(tmp_path, FAST_PROG, reg, m, OFF_FORMULA, hoist=hoist)
    return orig, mod, sur, data


def expected(A: Any, B: Any) -> list[float]:
    """What the patched loop must store: exact for row 0 and rejected rows, the surrogate elsewhere."""
    out = []
    for r, (a, b) in enumerate(zip(A, B)):
        e = a * b + 1.0
        out.append(e if r == 0 or a > 0.5 or b > 0.95 else e + 1e-4)
    return out


def test_vectorised_accept_is_inlined(tmp_path: Path) -> None:
    _, _, _, data = case(tmp_path, CLOSE)
    text = data["text"]
    assert "def _regionx_f_accept_columns(a, b, result):" in text
    assert "_regionx_np.abs" in text and "accept=_regionx_f_accept_columns" in text  # bound to the batch helper
    assert "accept_row=" not in text  # no per-row Python check left
    imports = [ln.split()[1] for ln in text.splitlines() if ln.lstrip().startswith(("import ", "from "))]
    assert not [m for m in imports if m.split(".")[0] == "regionx"]  # the patched file needs numpy only


@pytest.mark.parametrize("kind", ["list of float", "list of np.float64", "tuple", "ndarray"])
@pytest.mark.parametrize("fn", ["by_len", "by_zip"])
def test_rejected_rows_get_the_exact_value(tmp_path: Path, kind: str, fn: str) -> None:
    orig, mod, sur, _ = case(tmp_path, CLOSE)
    A, B = inputs(kind)
    want_vals = expected(A, B)
    args = (A, B, [0.0] * 12) if fn == "by_len" else (A, B)
    got = getattr(mod, fn)(*args)
    args = (A, B, [0.0] * 12) if fn == "by_len" else (A, B)
    want = getattr(orig, fn)(*args)
    out, ref = got[0], want[0]
    assert [type(v) for v in out] == [type(v) for v in ref]  # element types as the original loop stored them
    assert got[1:] == want[1:]  # the loop variables end where the original left them
    np.testing.assert_allclose(np.asarray(out, dtype=float), want_vals, rtol=0, atol=1e-12)
    rejected = [r for r, (a, b) in enumerate(zip(A, B)) if r == 0 or a > 0.5 or b > 0.95]
    assert 0 < len(rejected) < len(A)
    for r in rejected:
        assert out[r] == ref[r]  # bit-for-bit the exact function's value
    assert sur.CALLS["predict"] == 1 and sur.CALLS["predict_one"] == 0


def test_nan_prediction_is_never_accepted(tmp_path: Path) -> None:
    orig, mod, _, _ = case(tmp_path, "True")
    A, B = [0.1, 0.2, 0.3, 0.4], [0.5, 0.99, 0.5, 0.97]
    out, _ = mod.by_len(A, B, [0.0] * 4)
    ref, _ = orig.by_len(A, B, [0.0] * 4)
    assert out[1] == ref[1] and out[3] == ref[3]  # NaN predictions: exact
    assert out[2] == pytest.approx(ref[2] + 1e-4)


def test_ndarray_out_rows_rejected(tmp_path: Path) -> None:
    orig, mod, _, _ = case(tmp_path, CLOSE)
    A, B = np.linspace(0.05, 0.95, 10), np.linspace(0.1, 0.9, 10)
    out, _ = mod.by_index(A, B, np.zeros(10), 0, 10)
    ref, _ = orig.by_index(A, B, np.zeros(10), 0, 10)
    assert out.dtype == ref.dtype
    np.testing.assert_allclose(out, expected(A, B), rtol=0, atol=1e-12)
    assert np.array_equal(out[A > 0.5], ref[A > 0.5])


def test_unvectorisable_accept_keeps_the_row_by_row_check(tmp_path: Path) -> None:
    accept = "abs(return - (a * b + 1.0)) <= float(0.01)"  # float() has no vectorised form
    orig, mod, sur, data = case(tmp_path, accept)
    assert "_accept_columns" not in data["text"] and "accept_row=_regionx_f_accept" in data["text"]
    A, B = inputs("list of float")
    out, _ = mod.by_len(A, B, [0.0] * 12)
    np.testing.assert_allclose(out, expected(A, B), rtol=0, atol=1e-12)


def test_revert_is_byte_exact_with_vectorised_accept(tmp_path: Path) -> None:
    _, _, _, data = case(tmp_path, CLOSE)
    back = revert_source(data["text"], "prog.py")
    assert back.ok and back.payload.text == FAST_PROG


def test_scalar_dispatcher_checks_accept_and_survives_arithmetic_errors(tmp_path: Path) -> None:
    # 1 / (a - 0.5) raises ZeroDivisionError at a == 0.5: that call is rejected, not a crash
    orig, mod, sur, data = case(tmp_path, f"{CLOSE} and 1.0 / (a - 0.5) != 0", hoist=False)
    assert data["hoisted"] == []
    assert mod.f(0.5, 0.25) == orig.f(0.5, 0.25)  # accept raised: exact
    assert mod.f(0.75, 0.25) == orig.f(0.75, 0.25)  # 0.5 off: rejected, exact
    assert mod.f(0.25, 0.25) == pytest.approx(orig.f(0.25, 0.25) + 1e-4)  # accepted surrogate
    assert sur.CALLS["predict_one"] == 3


def test_rewrite_data_still_reports_the_hoisted_loops(tmp_path: Path) -> None:
    reg = region("f", "function", 4, 5, "ab", ("return",), qualname="f")
    data = rewrite(FAST_PROG, reg, manifest(reg, (0.0, 0.0), (1.0, 1.0), accept=CLOSE))
    assert data["hoisted"] == [9, 15, 22, 28, 35]


GENERAL_PROG = """\
import numpy as np


def f(a, b):
    return a * b + 1.0


def scaled(A, B):
    out = [0.0] * len(A)
    for i in range(len(A)):
        out[i] = f(A[i] * 1.0, B[i])
    return out
"""


@pytest.mark.parametrize("accept,vectorised", [(CLOSE, True), ("abs(return - (a * b + 1.0)) <= float(0.01)", False)])
def test_general_map_form_checks_accept(tmp_path: Path, accept: str, vectorised: bool) -> None:
    reg = region("f", "function", 4, 5, "ab", ("return",), qualname="f")
    m = manifest(reg, (0.0, 0.0), (1.0, 1.0), accept=accept)
    orig = load(write(tmp_path, "orig.py", GENERAL_PROG))
    mod, sur, data = patched_module(tmp_path, GENERAL_PROG, reg, m, OFF_FORMULA)
    assert "_regionx_f_map(_regionx_exact_f" in data["text"] and "_regionx_f_batch(_regionx_exact_f" not in data["text"]
    assert ("_regionx_f_accept_columns(" in data["text"]) == vectorised
    A, B = inputs("list of float")
    got, want = mod.scaled(A, B), orig.scaled(A, B)
    assert [type(v) for v in got] == [type(v) for v in want]
    np.testing.assert_allclose(got, expected(A, B), rtol=0, atol=1e-12)
    assert all(g == w for g, w, a, b in zip(got, want, A, B) if a > 0.5 or b > 0.95)
    assert sur.CALLS["predict"] == 1 and sur.CALLS["predict_one"] == 0
