"""The run-time helpers of patched programs (regionx.runtime), directly, and what they guarantee.

* A container the region changes in place is written into, element by element: an alias of one
  of its rows, held by the caller, sees the new values (as with the exact code).
* A batch that cannot answer every row returns None before its first store (the original loop
  then runs from a clean state), and the helpers copied into patched files are these very
  functions (renamed, without annotations).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_rewrite import load, manifest, region, revert_source, rewrite, write  # noqa: E402

from regionx import runtime  # noqa: E402
from regionx.rewrite.portable import closure, runtime_source  # noqa: E402
from regionx.types import Manifest, VarSpec  # noqa: E402


# ------------------------------------------------------------------------------------------
# in-place outputs: store into the caller's very objects

SCALE_PROG = '''\
def scale(rows, k):
    # regionx: name=scale
    for i in range(2):
        for j in range(3):
            rows[i][j] = rows[i][j] * k
    return rows
'''

SCALE_FAKE = '''\
import numpy as np
INPUTS = ("rows", "k")
INPUT_SHAPES = ((2, 3), ())
OUTPUTS = ("rows",)
OUTPUT_SHAPES = ((2, 3),)
LOWER = np.array([-1e9] * 6 + [0.0])
UPPER = np.array([1e9] * 6 + [10.0])


def predict_one(rows, k):
    return np.asarray(rows, dtype=float).reshape(2, 3) * k + 0.5  # off by 0.5: the surrogate answered


def in_domain_one(rows, k):
    return np.shape(rows) == (2, 3) and 0.0 <= k <= 10.0
'''


def scale_case(tmp_path: Path) -> tuple[Any, Any, str]:
    reg = region("scale:for@3", "loop", 3, 5, ("rows", "k"), ("rows",), qualname="scale", name="scale")
    m = manifest(reg, (-1e9,) * 6 + (0.0,), (1e9,) * 6 + (10.0,), out_shapes={"rows": (2, 3)})
    m = Manifest(**{**m.__dict__, "inputs": (VarSpec("rows", (2, 3)), VarSpec("k"))})
    data = rewrite(SCALE_PROG, reg, m)
    d = tmp_path / "out"
    d.mkdir()
    (d / m.module).write_text(SCALE_FAKE)
    return load(write(tmp_path, "orig.py", SCALE_PROG)), load(write(d, "prog.py", data["text"])), data["text"]


def test_a_row_alias_held_by_the_caller_sees_the_surrogates_values(tmp_path: Path) -> None:
    orig, mod, text = scale_case(tmp_path)
    assert revert_source(text, "prog.py").payload.text == SCALE_PROG
    for m, offset in ((orig, 0.0), (mod, 0.5)):
        rows = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
        r = rows[0]  # the caller's alias of a row
        inner = [id(row) for row in rows]
        got = m.scale(rows, 2.0)
        assert got is rows and [id(row) for row in rows] == inner  # the same row objects, written into
        assert r == [2.0 + offset, 4.0 + offset, 6.0 + offset]  # the alias sees the new values
        assert rows[1] == [8.0 + offset, 10.0 + offset, 12.0 + offset]
        assert all(type(v) is float for row in rows for v in row)


def test_an_ndarray_output_is_written_in_place(tmp_path: Path) -> None:
    orig, mod, _ = scale_case(tmp_path)
    rows = np.arange(6.0).reshape(2, 3)
    view = rows[1]
    mod.scale(rows, 3.0)
    np.testing.assert_array_equal(view, np.arange(3.0, 6.0) * 3.0 + 0.5)


def test_store_into_nested_lists_and_arrays() -> None:
    target: list[Any] = [[0.0, 0.0], [0.0, 0.0]]
    row = target[1]
    runtime.store_into(target, np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert target[1] is row and row == [3.0, 4.0]
    mixed = [np.zeros(2), [0.0, 0.0]]
    first = mixed[0]
    runtime.store_into(mixed, [[5.0, 6.0], [7.0, 8.0]])
    assert mixed[0] is first and first.tolist() == [5.0, 6.0] and mixed[1] == [7.0, 8.0]


# ------------------------------------------------------------------------------------------
# the batch helper itself

class Sur:
    """A surrogate module stand-in: the exact formula plus 1e-3, box [0, 1]^2."""

    LOWER = np.zeros(2)
    UPPER = np.ones(2)
    calls = 0

    @classmethod
    def predict(cls, X: np.ndarray) -> np.ndarray:
        cls.calls += 1
        return (X[:, 0] * X[:, 1] + 1.0 + 1e-3)[:, None]


def exact(a: float, b: float) -> float:
    return a * b + 1.0


def test_batch_index_store_and_last_target() -> None:
    A, B = [0.5, 0.25, 2.0, 0.75], [0.5, 0.5, 0.5, 0.5]
    out = [0.0] * 4
    got = runtime.batch(Sur, exact, "range", range(4), (A, B), ("r", "r"), inputs=(0, 1), out=out)
    assert got == (None, 3)
    # row 0 and row 2 (outside the box) run exactly; the others are the surrogate's
    assert out == [exact(0.5, 0.5), exact(0.25, 0.5) + 1e-3, exact(2.0, 0.5), exact(0.75, 0.5) + 1e-3]


@pytest.mark.parametrize("why, call", [
    ("a generator cannot be walked twice", lambda out: runtime.batch(
        Sur, exact, "zip", (iter([0.5, 0.5]), [0.5, 0.5]), ([0.5, 0.5], [0.5, 0.5]), ("r", "r"), inputs=(0, 1),
        out=out, store="append")),
    ("a string among the numbers", lambda out: runtime.batch(
        Sur, exact, "range", range(3), ([0.5, "0.5", 0.5], [0.5] * 3), ("r", "r"), inputs=(0, 1), out=out)),
    ("the exact code raises on a row", lambda out: runtime.batch(
        Sur, lambda a, b: 1.0 / (a - 2.0), "range", range(3), ([0.5, 0.5, 2.0], [0.5] * 3), ("r", "r"),
        inputs=(0, 1), out=out)),
    ("the output is one of the inputs", lambda out: runtime.batch(
        Sur, exact, "range", range(3), (out, [0.5] * 3), ("r", "r"), inputs=(0, 1), out=out)),
    ("too few rows to pay", lambda out: runtime.batch(
        Sur, exact, "range", range(3), ([0.5] * 3, [0.5] * 3), ("r", "r"), inputs=(0, 1), out=out, min_rows=4)),
    ("unpacking rows of another length", lambda out: runtime.batch(
        Sur, exact, "for", ([[0.5, 0.5, 0.5]] * 3,), ([[0.5, 0.5, 0.5]] * 3,) * 2, ("*0/2", "*1/2"), inputs=(0, 1),
        out=out, store="append")),
])
def test_batch_refuses_before_any_store(why: str, call: Any) -> None:
    out = [0.25, 0.25, 0.25]
    assert call(out) is None, why
    assert out == [0.25, 0.25, 0.25]


class Sur2:
    """Two outputs (sum and product, plus 1e-3); the second is NaN where a > 0.6."""

    LOWER = np.zeros(2)
    UPPER = np.ones(2)

    @staticmethod
    def predict(X: np.ndarray) -> np.ndarray:
        return np.stack([X[:, 0] + X[:, 1] + 1e-3, np.where(X[:, 0] > 0.6, np.nan, X[:, 0] * X[:, 1] + 1e-3)], axis=1)


def test_a_non_finite_answer_in_any_output_sends_the_row_to_the_exact_code() -> None:
    def both(a: float, b: float) -> tuple[float, float]:
        return a + b, a * b

    A, B = [0.5, 0.25, 0.75, 0.5], [0.5, 0.5, 0.5, 0.25]
    s, p = [0.0] * 4, [0.0] * 4
    assert runtime.batch(Sur2, both, "range", range(4), (A, B), ("r", "r"), inputs=(0, 1), out=(s, p), n_out=2) == (None, 3)
    # row 0 always exact; row 2's second answer is NaN, so both its outputs come from the exact code
    assert (s[2], p[2]) == both(0.75, 0.5) and (s[0], p[0]) == both(0.5, 0.5)
    assert (s[1], p[1]) == (0.25 + 0.5 + 1e-3, 0.25 * 0.5 + 1e-3) and (s[3], p[3]) == (0.75 + 1e-3, 0.125 + 1e-3)


@pytest.mark.parametrize("store", ["index", "append"])
def test_a_batch_longer_than_a_block_stores_every_row_where_the_loop_would(store: str) -> None:
    """9,000 rows (three 4,096-row blocks): predictions everywhere but row 0 and the rows whose
    second answer is NaN (at the blocks' edges), which get the exact code's answers."""
    def both(a: float, b: float) -> tuple[float, float]:
        return a + b, a * b

    n = 9000
    A = [0.25 + 0.25 * (i % 7) / 7 for i in range(n)]
    B = [0.5] * n
    for r in (4095, 4096, 8191, 8999):
        A[r] = 0.75  # Sur2's second output is NaN there
    want = [both(a, b) if i == 0 or a > 0.6 else (a + b + 1e-3, a * b + 1e-3) for i, (a, b) in enumerate(zip(A, B))]
    if store == "index":
        s, p = [0.0] * n, [0.0] * n
        assert runtime.batch(Sur2, both, "range", range(n), (A, B), ("r", "r"), inputs=(0, 1), out=(s, p),
                             n_out=2) == (None, n - 1)
        assert list(zip(s, p)) == want
    else:
        rows: list[Any] = ["kept"]
        assert runtime.batch(Sur2, both, "range", range(n), (A, B), ("r", "r"), inputs=(0, 1), out=rows,
                             store="append", n_out=2) == (None, n - 1)
        assert rows == ["kept", *want]


@pytest.mark.parametrize("rows", [1, 3, 4, 7, 100])
def test_input_matrix_converts_long_lists_in_row_blocks_like_at_once(rows: int) -> None:
    """Lists longer than `rows` are converted `rows` rows of every column at a time (for the cache):
    the same matrix as one conversion, ints and bools as floats, and a string, None or an object in
    any block refuses the batch (None)."""
    rng = np.random.default_rng(rows)
    a, b = rng.uniform(size=10).tolist(), rng.uniform(size=10).tolist()
    a[4], b[9] = 3, True
    span = (0, 10, 0, 0)
    want = np.array([a, b], dtype=np.float64).T
    got = runtime.input_matrix((a, b), ("r", "r"), (0, 1), span, rows=rows)
    assert got is not None and got.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    for bad in ("0.5", None, object()):
        c = list(b)
        c[8] = bad
        assert runtime.input_matrix((a, c), ("r", "r"), (0, 1), span, rows=rows) is None


@pytest.mark.parametrize("rows", [1, 3, 10, 4096])
def test_input_matrix_reads_arrays_and_lists_side_by_side_in_row_blocks(rows: int) -> None:
    """A 1-d array column (an int one too) next to a list: the same matrix whatever the block."""
    rng = np.random.default_rng(3)
    a = rng.uniform(size=10)
    b = rng.uniform(size=10).tolist()
    c = np.arange(10)
    got = runtime.input_matrix((a, b, c), ("r", "r", "r"), (0, 1, 2), (0, 10, 0, 0), rows=rows)
    assert got is not None
    np.testing.assert_array_equal(got, np.stack([a, np.array(b), c.astype(float)], axis=1))
    assert runtime.input_matrix((a, np.array(["x"] * 10)), ("r", "r"), (0, 1), (0, 10, 0, 0), rows=rows) is None


@pytest.mark.parametrize("rows", [1, 3, 10, 4096])
def test_store_list_writes_slices_of_rows_like_one_assignment(rows: int) -> None:
    """An index store into a list goes `rows` rows at a time: every row from the predictions,
    typed as row 0's exact answer, and the exact answers where the guard sent rows."""
    y = np.random.default_rng(rows).uniform(size=(10, 2))
    exact = {0: (1.5, 2.5), 6: (7.0, 8.0)}
    t = ["keep", "keep"] + [0.0] * 10 + ["keep"]
    runtime.store_list(t, 2, y[:, 1], exact, 1, 2, rows=rows)
    want = ["keep", "keep"] + y[:, 1].tolist() + ["keep"]
    want[2], want[8] = 2.5, 8.0
    assert t == want and all(type(v) is float for v in t[2:12])
    t32: list[Any] = [0.0] * 10
    runtime.store_list(t32, 0, y[:, 0], {0: np.float32(0.5)}, 0, 1, rows=rows)
    assert t32[0] == np.float32(0.5) and all(type(v) is np.float32 for v in t32)
    np.testing.assert_array_equal(np.array(t32[1:]), y[1:, 0].astype(np.float32))


@pytest.mark.parametrize("rows", [1, 3, 10, 4096])
def test_extend_rows_appends_every_row_in_blocks_like_at_once(rows: int) -> None:
    """An append (or a comprehension of tuples) goes `rows` rows at a time: the rows in order after
    what the list held, tuples for two outputs, the exact code's own answers where it answered."""
    Y = np.random.default_rng(rows).uniform(size=(10, 2))
    exact = {0: (1.5, 2.5), 6: (7.0, 8.0)}
    out: list[Any] = ["before"]
    runtime.extend_rows(out, Y, exact, 2, rows=rows)
    want: list[Any] = ["before"] + [tuple(r) for r in Y.tolist()]
    want[1], want[7] = exact[0], exact[6]
    assert out == want and out[7] is exact[6] and all(type(v) is tuple for v in out[1:])
    one: list[Any] = []
    runtime.extend_rows(one, Y[:, :1], {0: np.float64(0.25), 3: 4.0}, 1, rows=rows)
    assert one[0] == 0.25 and one[3] == 4.0 and one[1:3] + one[4:] == Y[[1, 2, 4, 5, 6, 7, 8, 9], 0].tolist()
    assert all(type(v) is np.float64 for i, v in enumerate(one) if i != 3)


class SurInto(Sur):
    """Sur as a generated module is: predict(X, out=...) fills the caller's buffer."""

    PREDICT_INTO = True
    buffers: list[np.ndarray] = []

    @classmethod
    def predict(cls, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:  # type: ignore[override]
        assert out is not None
        cls.buffers.append(out)
        out[:, 0] = X[:, 0] * X[:, 1] + 1.0 + 1e-3
        return out


@pytest.mark.parametrize("store", ["value", "array", "index"])
def test_batches_reuse_their_buffers_and_never_hand_them_out(store: str) -> None:
    """A batch's input matrix and predictions go into buffers the next batch takes back (fresh
    memory costs page faults); what a batch returns or stores never shares them, so a later
    batch cannot change an earlier result."""
    kept: list[np.ndarray] = []
    SurInto.buffers.clear()
    rng = np.random.default_rng(5)
    results = []
    for _ in range(3):
        A, B = rng.uniform(size=50).tolist(), rng.uniform(size=50).tolist()
        out = [0.0] * 50 if store == "index" else None
        value, _last = runtime.batch(SurInto, exact, "range", range(50), (A, B), ("r", "r"), inputs=(0, 1),
                                     out=out, store=store, kept=kept)
        got = out if store == "index" else value
        want = [exact(A[0], B[0])] + [exact(a, b) + 1e-3 for a, b in zip(A[1:], B[1:])]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        results.append((got, list(got) if store != "array" else got.copy()))
    for got, snapshot in results:  # nothing returned changed since
        np.testing.assert_array_equal(got, snapshot)
    assert all(b.base is SurInto.buffers[0].base for b in SurInto.buffers[1:])  # one buffer, reused
    assert len(kept) == 2 and all(not np.shares_memory(k, r[0]) for k in kept for r in results
                                  if isinstance(r[0], np.ndarray))
    # a batch that finds nothing kept makes its own, and a refused batch gives its buffers back
    assert runtime.batch(SurInto, exact, "range", range(3), ([0.5, "x", 0.5], [0.5] * 3), ("r", "r"),
                         inputs=(0, 1), out=[0.0] * 3, kept=kept) is None
    assert len(kept) == 2


def test_take_buffer_and_keep_buffer() -> None:
    kept: list[np.ndarray] = []
    a = runtime.take_buffer(100, kept)
    assert a.size == 100 and kept == []
    runtime.keep_buffer(a, kept)
    assert runtime.take_buffer(50, kept) is a and kept == []  # large enough: taken back
    runtime.keep_buffer(a, kept)
    bigger = runtime.take_buffer(200, kept)
    assert bigger is not a and bigger.size == 200 and kept == []  # too small: a new one
    for b in (np.empty(1), np.empty(2), np.empty(3)):
        runtime.keep_buffer(b, kept)
    assert [b.size for b in kept] == [2, 3]  # at most two
    runtime.keep_buffer(np.empty((1 << 19) + 1), kept)
    assert [b.size for b in kept] == [2, 3]  # over 4 MiB: not kept


def test_grid_store_and_columns_of_2d_rows() -> None:
    X, Y = [0.1, 0.2], [0.3, 0.4, 0.5]
    grid = [[0.0] * 3, [0.0] * 3]
    assert runtime.batch(Sur, exact, "grid", (range(2), range(3)), (X, Y), ("o", "i"), inputs=(0, 1), out=grid,
                         store="grid") == (None, (1, 2))
    assert grid[0][0] == exact(0.1, 0.3) and grid[1][2] == exact(0.2, 0.5) + 1e-3
    P = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    value, last = runtime.batch(Sur, exact, "for", (P,), (P, P), ("[0]", "[1]"), inputs=(0, 1), store="value")
    assert last is P[2] or np.array_equal(last, P[2])
    assert [type(v) for v in value] == [np.float64] * 3  # row 0's type: the exact code got numpy scalars


def test_patched_files_carry_these_functions() -> None:
    names = closure(["batch", "map_rows", "store_into"])
    source = runtime_source(["batch", "map_rows", "store_into"])
    for name in names:
        assert f"def _regionx_{name.lstrip('_')}(" in source
    assert not re.search(r"^def [^#]*->", source, re.M) and ": Any" not in source  # no annotations
    namespace: dict[str, Any] = {"_regionx_np": np}
    exec(compile(source, "<runtime>", "exec"), namespace)  # noqa: S102 - the code under test
    out = [0.0] * 4
    A, B = [0.5, 0.25, 2.0, 0.75], [0.5] * 4
    assert namespace["_regionx_batch"](Sur, exact, "range", range(4), (A, B), ("r", "r"), inputs=(0, 1), out=out) \
        == (None, 3)
    assert out[1] == exact(0.25, 0.5) + 1e-3
