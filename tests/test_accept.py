"""regionx.accept: the vectorised accept predicate equals Python's scalar evaluation row by row."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regionx.accept import evaluate, names, spell_result, vectorize

NEWTON_ACCEPT = "abs((a*result*result + b*result + c) / (2*a*result + b)) <= 0.005 * max(abs(result), 1e-3)"

# (predicate, comment) — every one must vectorise and agree with Python on every row
PREDICATES: list[str] = [
    "result < 1",
    "abs(result) <= 2.5",
    "a < b",
    "a <= b < c",  # chained
    "-1 < a < b <= c < 3",  # chained, four comparisons
    "a == b or b != c",
    "a < 0 and b < 0 or c > 0",  # and binds tighter than or
    "a < 0 and (b < 0 or c > 0)",
    "not a < 0 and b > 0",  # not binds tighter than and
    "not (a < 0 and b > 0)",
    "not not (a > b)",
    "a and b",  # truth of numbers
    "a or not b",
    "result",
    "-a ** 2 < b",  # unary minus binds looser than **
    "(a - b) * c / 2 > a % 1.5",
    "a // 0.5 >= b",
    "2 ** a < 3",
    "min(a, b) < c",
    "max(a, b, c, result) < 1.5",
    "min(abs(a), abs(b)) * 3 <= max(1e-3, abs(c))",
    "pow(abs(a), 0.5) < 1",
    "math.sqrt(abs(a)) + math.exp(b) < 3",
    "math.atan2(a, b) > 0",
    "math.hypot(a, b) <= math.pi / 2",
    "np.tanh(a) > np.sin(b)",
    "np.isfinite(result) and result > 0",
    "math.isnan(a) or a > 0",
    "(a if b > 0 else c) > 0",
    "(a < 0) if c > 0 else (b < 0)",
    "a if b > 0 else c < 0",  # a conditional over a comparison: Python parses it as a if .. else (c < 0)
    "True",
    "False or a > 0",
    "1 < 2",
    "0.5 * a * a + b * a + c >= -0.25",
    "a != a",
    NEWTON_ACCEPT,
]


def scalar(text: str, row: dict[str, float]) -> bool | None:
    """Python's own answer for one row (None where Python raises)."""
    env: dict[str, Any] = {"math": math, "np": np, **row}
    try:
        with np.errstate(all="raise"):
            return bool(eval(spell_result(text), {"__builtins__": {"abs": abs, "min": min, "max": max, "pow": pow}}, env))
    except (ArithmeticError, ValueError, FloatingPointError):
        return None


def raw(text: str, cols: dict[str, np.ndarray]) -> np.ndarray:
    """The vectorised expression itself (no finite guard)."""
    with np.errstate(all="ignore"):
        out = eval(vectorize(text), {"np": np}, dict(cols))  # noqa: S307 - test of generated code
    return np.broadcast_to(np.asarray(out, dtype=bool), (len(next(iter(cols.values()))),))


def columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    cols = {k: rng.normal(0.0, 1.0, n) for k in ("a", "b", "c", "result")}
    # some exact ties and zeros so ==, != and truth of numbers are exercised
    cols["b"][::7] = cols["a"][::7]
    cols["a"][::11] = 0.0
    return cols


@pytest.mark.parametrize("text", PREDICATES)
def test_vectorised_equals_scalar_row_by_row(text: str) -> None:
    cols = columns(np.random.default_rng(7), 400)
    got = raw(text, cols)
    checked = 0
    for i in range(400):
        want = scalar(text, {k: float(v[i]) for k, v in cols.items()})
        if want is None:
            continue  # Python raises here; the vectorised form gives inf/NaN (see the NaN tests)
        assert bool(got[i]) == want, (text, i, {k: v[i] for k, v in cols.items()})
        checked += 1
    assert checked > 300
    # evaluate() agrees wherever every column is finite (here: all rows)
    assert np.array_equal(evaluate(text, cols), got) or any(scalar(text, {k: float(v[i]) for k, v in cols.items()}) is None
                                                             for i in range(400))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.floats(-1e3, 1e3, allow_nan=False)] * 4), min_size=1, max_size=20),
       st.sampled_from(PREDICATES))
def test_vectorised_equals_scalar_hypothesis(rows: list[tuple[float, float, float, float]], text: str) -> None:
    cols = {k: np.array([r[j] for r in rows]) for j, k in enumerate(("a", "b", "c", "result"))}
    got = raw(text, cols)
    for i, r in enumerate(rows):
        want = scalar(text, dict(zip(("a", "b", "c", "result"), r)))
        if want is not None:
            assert bool(got[i]) == want, (text, r)


@pytest.mark.parametrize("text,expected", [
    ("a < b < c", "(((a) < (b)) & ((b) < (c)))"),
    ("a < 1 or b > 2 and c == 3", "((a < (1)) | ((b > (2)) & (c == (3))))"),
    ("not a > 1", "(~(a > (1)))"),
    ("abs(a) <= max(b, 1e-3)", "(np.abs(a) <= np.maximum(b, (0.001)))"),
    ("math.sqrt(a) < math.pi", "(np.sqrt(a) < np.pi)"),
])
def test_translation_shape(text: str, expected: str) -> None:
    code = vectorize(text)
    # compare without the redundant parentheses around plain names
    assert code.replace("(a)", "a").replace("(b)", "b").replace("(c)", "c") == \
        expected.replace("(a)", "a").replace("(b)", "b").replace("(c)", "c")


def test_np_name_is_used() -> None:
    code = vectorize("abs(a) < min(b, c) and math.isfinite(a)", "_regionx_np")
    assert "_regionx_np.abs" in code and "_regionx_np.minimum" in code and "_regionx_np.isfinite" in code
    assert " np." not in code and "(np." not in code


@pytest.mark.parametrize("text", [
    "result < 1", "abs(result) < 1e300", "not (result > 1)", "result != 0", "result != result",
    "not (abs(result) > 5)", "result or a", "a < 1 or not result < 1", NEWTON_ACCEPT,
])
def test_nan_or_inf_in_a_column_rejects(text: str) -> None:
    result = np.array([0.5, np.nan, np.inf, -np.inf, 0.25])
    cols = {"a": np.array([0.5, 0.5, 0.5, 0.5, 0.5]), "b": np.ones(5), "c": -np.ones(5), "result": result}
    mask = evaluate(text, cols)
    assert not mask[1:4].any()


def test_nan_comparisons_are_false_without_the_guard() -> None:
    cols = {"result": np.array([np.nan, 1.0])}
    assert raw("result < 2", cols).tolist() == [False, True]
    assert raw("result >= 2", cols).tolist() == [False, False]


def test_division_by_zero_row_is_rejected_when_the_comparison_is_an_upper_bound() -> None:
    # Python raises ZeroDivisionError for row 0 (0/0); numpy gives NaN there, and `<= bound` is False
    cols = {"a": np.array([1.0, 1.0]), "b": np.array([0.0, 2.0]), "c": np.zeros(2), "result": np.zeros(2)}
    assert evaluate(NEWTON_ACCEPT, cols).tolist() == [False, True]


def test_evaluate_broadcasts_constants_and_scalars() -> None:
    cols = {"a": np.arange(4.0), "result": 2.0}
    assert evaluate("True", cols).tolist() == [True] * 4
    assert evaluate("result > 1", cols).tolist() == [True] * 4
    assert evaluate("a > 1", cols).tolist() == [False, False, True, True]


def test_return_is_respelled_result() -> None:
    cols = {"result": np.array([1.0, 200.0])}
    assert evaluate("abs(return) < 100", cols).tolist() == [True, False]
    assert names("abs(return) < x") == ["result", "x"]


def test_names_skip_functions_and_modules() -> None:
    assert names("math.sqrt(a) + np.abs(b) < max(c, result) and abs(d) > 0") == ["a", "b", "c", "result", "d"]


@pytest.mark.parametrize("text,part", [
    ("a[0] < 1", "a[0]"),
    ("'x' == a", "'x'"),
    ("a is None", "is"),
    ("a in (1, 2)", "In"),
    ("f(a) < 1", "f()"),
    ("a.real < 1", "a.real"),
    ("(lambda: 1)() < 2", "lambda"),
    ("math.factorial(a) > 1", "math.factorial"),
    ("np.sum(a) > 0", "np.sum"),
    ("min(a) < 1", "min"),
    ("abs(a, b) < 1", "abs"),
    ("a + (b > 2) < 1", "used as a number"),
    ("(a or b) + 1 > 0", "used as a number"),
    ("~a > 1", "~"),
    ("a < 1 <", "not a Python expression"),
    ("max(*a) > 1", "starred"),
    ("math.sqrt(x=a) > 1", "keyword"),
    ("(a if b else c < 1) + 1 > 0", "both be numbers or both truth values"),
    ("[a][0] > 1", "[a][0]"),
    ("1j * a > 0", "numeric constants"),
    ("math.atan2(a) > 0", "argument"),
])
def test_unsupported_expressions_raise_value_error(text: str, part: str) -> None:
    with pytest.raises(ValueError) as info:
        vectorize(text)
    assert part in str(info.value)


def test_evaluate_unknown_name_raises() -> None:
    with pytest.raises(ValueError, match="LIMIT"):
        evaluate("abs(result) < LIMIT", {"result": np.ones(3)})


def test_evaluate_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        evaluate("a < b", {"a": np.ones(3), "b": np.ones(4)})


def test_newton_fixture_accept_admits_only_roots_within_tolerance() -> None:
    """fixtures/newton.py's predicate: every accepted root is within 1% (rel, floor 1e-3) of the larger
    root, near double roots too; the exact root passes; a root of the wrong (smaller) branch never does."""
    from pathlib import Path

    from regionx.analysis import analyze_file, find_region

    region = find_region(analyze_file(str(Path(__file__).resolve().parents[1] / "fixtures" / "newton.py")), "newton")
    assert region is not None and region.pragma is not None and region.pragma.accept
    text = region.pragma.accept
    rng = np.random.default_rng(5)
    n = 200_000
    a, b = rng.uniform(0.5, 2.0, n), rng.uniform(-10, 10, n)
    gap = np.where(np.arange(n) % 2 == 0, 0.0, 10.0 ** rng.uniform(-10, 1, n))  # half exact double roots
    c = np.where(np.arange(n) % 4 < 2, b * b / (4 * a) - gap * rng.uniform(0, 1, n), rng.uniform(-10, 10, n))
    disc = b * b - 4 * a * c
    keep = disc >= 0
    a, b, c, disc = a[keep], b[keep], c[keep], disc[keep]
    x1 = (-b + np.sqrt(disc)) / (2 * a)
    x2 = (-b - np.sqrt(disc)) / (2 * a)
    scale = np.maximum(np.abs(x1), 1e-3)
    cols = {"a": a, "b": b, "c": c}
    for spread in (0.002, 0.01, 0.05):
        r = x1 + scale * rng.uniform(-spread, spread, len(a))
        mask = evaluate(text, {**cols, "result": r})
        err = np.abs(r - x1) / scale
        assert not np.any(mask & (err > 0.01)), spread
        assert mask.mean() > 0.05
    at_x1 = evaluate(text, {**cols, "result": x1})
    separated = disc > 1e-6
    assert at_x1[separated].mean() > 0.99  # the exact root passes ...
    # ... except at an exact double root, where f'(x1) = 0: the vertex guard rejects it (exact code runs)
    assert at_x1[disc == 0].mean() < 0.5
    wrong = np.abs(x1 - x2) > 0.03 * scale  # the smaller root, where it is not within 1% of the larger
    assert not evaluate(text, {k: v[wrong] for k, v in {**cols, "result": x2}.items()}).any()
