"""Run-time helpers of patched programs: the batched map path, numpy only.

A patched program must not need regionx, so the rewrite copies the functions it uses into the
patched file (`regionx.rewrite.emit.runtime_source`: `inspect.getsource`, renamed under the
``_regionx_`` prefix, annotations dropped). Here they are ordinary functions: linted,
type-checked and tested directly (tests/test_rewrite_runtime.py).

`batch` answers one map loop (or comprehension, or ``map``) with one batched predict:

1. the rows: what the loop walks (``range``, ``zip``, ``enumerate``, a sequence, a 2-D grid of
   two ranges), checked to be lists, tuples, ranges or numeric numpy arrays of the right length
   (a generator can be walked only once: its loop stays as it was);
2. one input column per surrogate input, each converted once (an array is copied as it is,
   lists of numbers by ``np.array``, 4096 rows of every column at a time so that each step's
   temporaries are reused), into a column-major float64 matrix;
3. the guard: every column inside the trained box, the learned guard (when the network has
   one), the prediction finite, the accept predicate;
4. one ``predict`` (chunked and float32 inside the generated module);
5. the rows the guard refuses, and row 0 (its result fixes the element type the original loop
   stored: float or a numpy scalar), run the exact function;
6. the stores, only after every value is known, so that a refusal (None: run the original
   loop) never leaves a half-written container; into lists 4096 rows at a time.

The input matrix and the predictions go into two buffers the next batch takes back
(`take_buffer`): fresh memory of this size is handed back to the system between batches, and
its first touch costs a page fault every 4 KiB (a fifth of a 20,000-row batch where measured).
The row blocks of steps 2 and 6 avoid the same cost for their temporaries.

Anything unexpected (an exception of the exact code, an argument that is not a number, a
container that cannot hold the values) returns None before the first store: the original loop
then runs and behaves exactly as it did.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np

# Kinds of argument a map loop passes (`how`, one per call argument):
#   "r"    the row's element of a sequence: S[i], or what zip/enumerate/for yields
#   "f"    a loop-invariant value
#   "[c]"  element c of the row's item: S[i][c], row[c] when the loop walks the rows of S
#   ",c"   S[i, c] of a 2-D array
#   "*c/k" the c-th of k names a row is unpacked into (for x, y in S)
#   "o"/"i"  S[i] / S[j] in a grid of two nested ranges; "[j]" / ",j": S[i][j] / S[i, j]
Loop = str  # "range" | "zip" | "enumerate" | "for" | "grid"


def extent(loop: Loop, rows: Any) -> tuple[int, int, int, int] | None:
    """(i0, ni, j0, nj) of the rows a loop walks (nj = 0 unless a grid), or None when they cannot
    be walked twice or counted: a generator, an iterator, a range with a step."""
    if loop == "range":
        if type(rows) is not range or rows.step != 1:
            return None
        return rows.start, max(0, rows.stop - rows.start), 0, 0
    if loop == "grid":
        outer, inner = rows
        if type(outer) is not range or type(inner) is not range or outer.step != 1 or inner.step != 1:
            return None
        return outer.start, max(0, len(outer)), inner.start, max(0, len(inner))
    if not all(isinstance(s, (list, tuple, range, np.ndarray)) for s in rows):
        return None
    if any(isinstance(s, np.ndarray) and s.ndim == 0 for s in rows):
        return None
    return 0, min(len(s) for s in rows), 0, 0


def _numeric(a: np.ndarray) -> bool:
    return a.dtype.kind in "biuf"


def item_of(how: str) -> int:
    """The item index c of the kinds "[c]", ",c" and "*c/k"."""
    return int(how.strip("[],*").split("/")[0])


def column_ok(column: Any, how: str, stop: int, jstop: int) -> bool:
    """Whether a row-read argument can be read for every row: a long enough sequence, or 2-D
    container for the item and grid kinds (the numbers inside are checked by the conversion)."""
    if how == "f":
        return True
    if not isinstance(column, (list, tuple, range, np.ndarray)) or len(column) < stop:
        return False
    if how == "i" and len(column) < jstop:
        return False
    if not isinstance(column, np.ndarray):
        return how[0] != ","  # S[i, c] of a list raises: the original loop says so
    if not _numeric(column):
        return False
    if how in ("r", "o", "i"):
        return column.ndim == 1
    if column.ndim != 2:
        return False
    if how in ("[j]", ",j"):
        return column.shape[1] >= jstop
    if how[0] == "*":
        return column.shape[1] == int(how.split("/")[1])
    return column.shape[1] > item_of(how)


def input_matrix(columns: Sequence[Any], how: Sequence[str], inputs: Sequence[int],
                 span: tuple[int, int, int, int], rows: int = 4096,
                 into: np.ndarray | None = None) -> np.ndarray | None:
    """The (n, len(inputs)) column-major float64 matrix of the surrogate's inputs (lists of
    numbers: `rows` rows of every column at a time), in the flat float64 buffer `into` when
    given (at least n x len(inputs) elements; see take_buffer); None when a value is not a real
    number (the exact code decides what happens then)."""
    i0, ni, j0, nj = span
    n = ni * nj if nj else ni
    d = len(inputs)
    XT = (np.empty(d * n) if into is None else into[:d * n]).reshape(d, n)  # the transpose is column-major
    if not nj and i0 == 0 and all(how[k] == "r" and len(columns[k]) == ni and (
            type(columns[k]) is list or (isinstance(columns[k], np.ndarray) and columns[k].ndim == 1))
            for k in inputs):
        # the common case, lists of numbers (or whole 1-d arrays), `rows` rows at a time: np.array
        # (its dtype tells numbers from strings, None, objects) of a 4,096-row slice makes two
        # 32 KiB temporaries the next slice reuses, where a whole 20,000-row column's are fresh
        # pages malloc maps each batch (39 page faults a column, ~2.7 us each where this was
        # measured: inverse kinematics 49 ns a row against 61, the cubic's lists 44 against 52)
        for lo in range(0, n, rows):
            hi = min(n, lo + rows)
            for col, k in enumerate(inputs):
                c = columns[k]
                part = np.asarray(c if hi - lo == n else c[lo:hi])
                if part.dtype.kind not in "biuf" or part.shape != (hi - lo,):
                    return None
                XT[col, lo:hi] = part
        return XT.T
    X = XT.T
    blocks: dict[int, np.ndarray] = {}  # id(S) -> S's rows as one float array (item kinds)
    try:
        for col, k in enumerate(inputs):
            c, h = columns[k], how[k]
            if h == "f":
                value = c
                if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
                    return None
                X[:, col] = value
                continue
            if h in ("r", "o", "i"):
                lo, m = (j0, nj) if h == "i" else (i0, ni)
                part = _vector(c, lo, m)
                if nj:
                    part = np.repeat(part, nj) if h == "o" else np.tile(part, ni)
                X[:, col] = part
                continue
            block = blocks.get(id(c))
            if block is None:
                block = _block(c, i0, ni)
                if block is None:
                    return None
                blocks[id(c)] = block
            if h in ("[j]", ",j"):
                X[:, col] = block[:, j0:j0 + nj].reshape(-1)
            elif h[0] == "*" and block.shape[1] != int(h.split("/")[1]):
                return None  # unpacking a row of another length raises: the original loop says so
            else:
                X[:, col] = block[:, item_of(h)]
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return X


def _vector(c: Any, lo: int, m: int) -> np.ndarray:
    """Elements lo..lo+m of a sequence as a numeric array (an array's slice is not copied here);
    TypeError when they are not all numbers."""
    if isinstance(c, np.ndarray):
        return c[lo:lo + m]
    part = c if lo == 0 and len(c) == m else c[lo:lo + m]
    if isinstance(part, range):
        return np.arange(part.start, part.stop, part.step, dtype=np.float64)
    values = np.array(part)  # its dtype tells numbers from strings, None, objects (np.fromiter would parse '1.5')
    if values.dtype.kind not in "biuf" or values.shape != (m,):
        raise TypeError("not a column of numbers")
    return values


def _block(c: Any, lo: int, m: int) -> np.ndarray | None:
    """Rows lo..lo+m of a 2-D container (an array, or a list of equally long sequences) as floats."""
    if isinstance(c, np.ndarray):
        return c[lo:lo + m]
    block = np.array(c[lo:lo + m])  # ragged rows raise ValueError
    return block if block.ndim == 2 and block.dtype.kind in "biuf" else None


def row_args(columns: Sequence[Any], how: Sequence[str], span: tuple[int, int, int, int],
             r: int) -> list[Any]:
    """The call's arguments for row r, as the original loop passed them (same objects)."""
    i0, _ni, j0, nj = span
    i, j = (i0 + r // nj, j0 + r % nj) if nj else (i0 + r, 0)
    args: list[Any] = []
    for c, h in zip(columns, how):
        if h == "f":
            args.append(c)
        elif h in ("r", "o"):
            args.append(c[i])
        elif h == "i":
            args.append(c[j])
        elif h[0] == ",":
            args.append(c[i, j] if h == ",j" else c[i, item_of(h)])
        else:
            args.append(c[i][j] if h == "[j]" else c[i][item_of(h)])
    return args


def gather_args(columns: Sequence[Any], how: Sequence[str], span: tuple[int, int, int, int],
                rows: list[int]) -> list[list[Any]]:
    """Per call argument, its values in `rows` (the same objects the original loop passed): the
    exact code answers these rows through one map() instead of a Python-level call per row."""
    i0, _ni, j0, nj = span
    if nj:
        return [list(a) for a in zip(*[row_args(columns, how, span, r) for r in rows])]
    idx = [i0 + r for r in rows]
    out: list[list[Any]] = []
    for c, h in zip(columns, how):
        if h == "f":
            out.append([c] * len(idx))
        elif h == "r":
            # an array's few rows one by one (a fancy index costs ~1.2 us, a scalar one ~0.1)
            out.append(list(c[idx]) if isinstance(c, np.ndarray) and len(idx) > 16 else [c[i] for i in idx])
        elif h[0] == ",":
            k = item_of(h)
            out.append([c[i, k] for i in idx])
        else:
            k = item_of(h)
            out.append([c[i][k] for i in idx])
    return out


def _is_real(value: Any) -> bool:
    return (type(value) is float or type(value) is int or isinstance(value, (np.floating, np.integer))) \
        and not isinstance(value, bool)


def _result_ok(value: Any, n_out: int) -> bool:
    """An exact answer the batch can stand in for: a real number, or a tuple of n_out of them."""
    if n_out == 1:
        return _is_real(value)
    return type(value) is tuple and len(value) == n_out and all(_is_real(v) for v in value)


def inside_box(sur: Any, X: np.ndarray) -> np.ndarray:
    """Rows whose every input lies in the trained box (NaN is outside): for a small batch four
    numpy calls over the whole matrix (each call costs ~1 us), else one pass per column (a
    working set of one column stays in cache)."""
    lower, upper = sur.LOWER, sur.UPPER
    if X.shape[0] * X.shape[1] <= 8192:
        return ((X >= lower) & (X <= upper)).all(axis=1)
    ok = np.greater_equal(X[:, 0], lower[0])
    cmp = np.empty(X.shape[0], dtype=bool)
    ok &= np.less_equal(X[:, 0], upper[0], out=cmp)
    for col in range(1, X.shape[1]):
        ok &= np.greater_equal(X[:, col], lower[col], out=cmp)
        ok &= np.less_equal(X[:, col], upper[col], out=cmp)
    return ok


def answer(sur: Any, exact: Callable[..., Any], X: np.ndarray, columns: Sequence[Any], how: Sequence[str],
           span: tuple[int, int, int, int], inputs: Sequence[int], n_out: int,
           accept: Callable[..., Any] | None, accept_row: Callable[..., Any] | None,
           into: np.ndarray | None = None) -> tuple[np.ndarray, dict[int, Any]] | None:
    """Predictions for every row, and the exact answers of the rows the guard refuses (always
    row 0, whose type the stores follow). None when the exact code raises or answers something
    that is not a real number (or tuple of them): the original loop must run. `into`: a float64
    buffer of at least n x n_out elements the predictions go into (a module with PREDICT_INTO)."""
    n = X.shape[0]
    if n_out < 1 or X.shape[1] != len(sur.LOWER):
        return None
    good = inside_box(sur, X)
    learned = getattr(sur, "guard", None)  # the learned guard (regionx.guard), when the network has one
    if learned is not None:
        good &= learned(X)
    with np.errstate(all="ignore"):
        if into is not None:
            Y = sur.predict(X, out=into[:n * n_out].reshape(n, n_out))
        else:
            Y = np.asarray(sur.predict(X), dtype=np.float64).reshape(n, -1)
        if Y.shape[1] != n_out:
            return None
        for k in range(n_out):  # column by column: isfinite(Y).all(axis=1) costs ~25x more (13 ns a row)
            good &= np.isfinite(Y[:, k])
        if accept is not None:
            good &= np.broadcast_to(accept(*[X[:, c] for c in range(X.shape[1])],
                                           *[Y[:, c] for c in range(n_out)]), (n,))
    good[0] = False
    if accept is None and accept_row is not None:
        for r in np.flatnonzero(good).tolist():
            row = row_args(columns, how, span, r)
            value: Any = float(Y[r, 0]) if n_out == 1 else tuple(Y[r].tolist())
            try:
                if not accept_row(*[row[k] for k in inputs], value):
                    good[r] = False
            except (ArithmeticError, ValueError):
                good[r] = False
    exact_answers: dict[int, Any] = {}
    try:
        redo = np.flatnonzero(~good).tolist()
        for r, value in zip(redo, map(exact, *gather_args(columns, how, span, redo))):
            if not _result_ok(value, n_out):
                return None
            exact_answers[r] = value
    except Exception:  # noqa: BLE001 - the original loop raises it again, at its own row
        return None
    return Y, exact_answers


def output_values(Y: np.ndarray, exact_answers: dict[int, Any], k: int, n_out: int,
                  as_array: bool) -> Any:
    """Output k of every row, typed as the original loop stored it: Python floats, or numpy
    scalars of row 0's type; a float64 array when `as_array` (the exact rows patched in)."""
    first = exact_answers[0] if n_out == 1 else exact_answers[0][k]
    y = Y[:, k]
    if as_array:
        values: Any = y.copy()
        for r, v in exact_answers.items():
            values[r] = v if n_out == 1 else v[k]
        return values
    values = _as_list(y, first)
    for r, v in exact_answers.items():
        values[r] = v if n_out == 1 else v[k]
    return values


def _as_list(y: np.ndarray, first: Any) -> list[Any]:
    """y's values as a list typed like `first` (row 0's exact answer): Python floats, or numpy
    scalars of its type."""
    return list(y.astype(type(first))) if isinstance(first, np.floating) else y.tolist()


def outputs_ok(out: Any, store: str, span: tuple[int, int, int, int], n_out: int,
               reads: Sequence[Any]) -> bool:
    """Whether the store can take every value, and no container it writes is one the rows read
    (then a row would see an earlier row's store, as the original loop did)."""
    i0, ni, j0, nj = span
    targets = list(out) if store in ("index", "add") and n_out > 1 else [out]
    for t in targets:
        for s in reads:
            if t is s or (isinstance(t, np.ndarray) and isinstance(s, np.ndarray) and np.may_share_memory(t, s)):
                return False
    stop = i0 + ni
    if store in ("value", "set", "array"):
        return True
    if store == "append":
        return type(out) is list
    if store in ("grid", "grid,"):
        if isinstance(out, np.ndarray):
            return out.ndim == 2 and out.dtype.kind == "f" and out.shape[0] >= stop and out.shape[1] >= j0 + nj
        if store == "grid," or type(out) is not list or len(out) < stop:
            return False
        rows = out[i0:stop]
        return all((type(r) is list or (isinstance(r, np.ndarray) and r.ndim == 1 and r.dtype.kind == "f"))
                   and len(r) >= j0 + nj for r in rows) and len({id(r) for r in rows}) == len(rows)
    for t in targets:
        if isinstance(t, np.ndarray):
            if t.ndim != 1 or len(t) < stop or t.dtype.kind != "f" or (store == "add" and t.dtype != np.float64):
                return False
        elif type(t) is not list or len(t) < stop:
            return False
    return True


def _blocks(y: np.ndarray, first: Any, rows: int) -> Iterator[list[Any]]:
    """y's values `rows` at a time, as lists typed like `first` (see _as_list)."""
    for lo in range(0, len(y), rows):
        yield _as_list(y[lo:lo + rows], first)


def store_list(t: list[Any], i0: int, y: np.ndarray, exact_answers: dict[int, Any], k: int, n_out: int,
               rows: int = 4096) -> None:
    """t[i0 + r] = output k of row r for every row, as output_values types it, `rows` rows at a
    time: a slice assignment's temporaries (the new values' list, the old values it releases) are
    then two 32 KiB blocks the next slice reuses. A whole 20,000-row column's are 160 KiB each,
    which malloc maps afresh and the first touch page-faults (~2.7 us a 4 KiB page where this was
    measured: an inverse-kinematics batch's two outputs, 124 faults and 62-69 ns a row whole, none
    and 54-56 in slices; benchmarks/ik_ceiling.py)."""
    lo = i0
    for part in _blocks(y, exact_answers[0] if n_out == 1 else exact_answers[0][k], rows):
        t[lo:lo + len(part)] = part
        lo += len(part)
    for r, v in exact_answers.items():
        t[i0 + r] = v if n_out == 1 else v[k]


def extend_rows(out: list[Any], Y: np.ndarray, exact_answers: dict[int, Any], n_out: int,
                rows: int = 4096) -> None:
    """out.extend(every row's answer: a value, or a tuple of n_out), `rows` rows at a time (for
    the reason store_list gives); the rows the exact code answered get its answers."""
    start = len(out)
    firsts = (exact_answers[0],) if n_out == 1 else exact_answers[0]
    for parts in zip(*[_blocks(Y[:, k], firsts[k], rows) for k in range(n_out)]):
        out.extend(parts[0] if n_out == 1 else zip(*parts))
    for r, v in exact_answers.items():
        out[start + r] = v


def store_rows(out: Any, store: str, span: tuple[int, int, int, int], Y: np.ndarray,
               exact_answers: dict[int, Any], n_out: int) -> Any:
    """Put every row's answer where the loop put it; returns the value of a comprehension kind."""
    i0, ni, j0, nj = span
    stop = i0 + ni
    if store in ("value", "set", "array"):
        as_array = store == "array" and all(type(v) is float or type(v) is np.float64
                                            for v in (exact_answers[0] if n_out > 1 else (exact_answers[0],)))
        if as_array:
            cols = [output_values(Y, exact_answers, k, n_out, True) for k in range(n_out)]
            return cols[0] if n_out == 1 else np.stack(cols, axis=1)
        if n_out == 1:
            values = output_values(Y, exact_answers, 0, 1, False)  # the comprehension's own list
        else:
            values = []
            extend_rows(values, Y, exact_answers, n_out)
        return set(values) if store == "set" else values
    if store == "append":
        extend_rows(out, Y, exact_answers, n_out)
        return None
    if store in ("grid", "grid,"):
        values = output_values(Y, exact_answers, 0, 1, isinstance(out, np.ndarray))
        if isinstance(out, np.ndarray):
            out[i0:stop, j0:j0 + nj] = values.reshape(ni, nj)
        else:
            for r in range(ni):
                out[i0 + r][j0:j0 + nj] = values[r * nj:(r + 1) * nj]
        return None
    targets = list(out) if n_out > 1 else [out]
    for k, t in enumerate(targets):
        if store == "index" and type(t) is list:
            store_list(t, i0, Y[:, k], exact_answers, k, n_out)
            continue
        values = output_values(Y, exact_answers, k, n_out, isinstance(t, np.ndarray))
        if store == "add":
            if isinstance(t, np.ndarray):
                t[i0:stop] += values
            else:
                for i, v in zip(range(i0, stop), values):
                    t[i] += v
        else:
            t[i0:stop] = values
    return None


def last_target(loop: Loop, rows: Any, span: tuple[int, int, int, int]) -> Any:
    """The value the loop target holds after the original loop's last row."""
    i0, ni, j0, nj = span
    last = ni - 1
    if loop == "range":
        return i0 + last
    if loop == "grid":
        return i0 + last, j0 + nj - 1
    if loop == "zip":
        return tuple(s[last] for s in rows)
    if loop == "enumerate":
        return last, rows[0][last]
    return rows[0][last]


def batch(sur: Any, exact: Callable[..., Any], loop: Loop, rows: Any, columns: Sequence[Any],
          how: Sequence[str], *, inputs: Sequence[int], out: Any = None, store: str = "index",
          n_out: int = 1, accept: Callable[..., Any] | None = None,
          accept_row: Callable[..., Any] | None = None, min_rows: int = 2,
          kept: list[np.ndarray] = []) -> tuple[Any, Any] | None:  # noqa: B006 - the process's spare buffer, on purpose
    """One batched surrogate call for a map loop; (a comprehension's value or None, the loop
    target's final value), or None when the original loop must run (nothing stored then).

    `sur` is the surrogate module (LOWER, UPPER, predict), `exact` the exact function, `loop`
    and `rows` what the loop walks (see `extent`), `columns` and `how` each call argument (see
    the kinds above), `inputs` the positions of the surrogate's inputs among the arguments.
    `store`: "index" (out[i] = v), "add" (out[i] += v), "append", "grid"/"grid," (out[i][j] /
    out[i, j]), or a comprehension's "value" (list), "set", "array" (for np.array/np.fromiter);
    with n_out > 1 outputs, index and add stores take a tuple of containers, one per output.
    `accept` is the vectorised accept predicate, `accept_row` the row-by-row one. Fewer than
    `min_rows` rows run the original loop (the batch's fixed cost would not pay off). `kept`
    holds the input matrix's and the predictions' buffers between batches (see `take_buffer`):
    leave it to its default.
    """
    span = extent(loop, rows)
    if span is None:
        return None
    n = span[1] * span[3] if loop == "grid" else span[1]
    if n < max(1, min_rows) or span[0] < 0 or span[2] < 0:
        return None
    jstop = span[2] + span[3]
    if not all(column_ok(c, h, span[0] + span[1], jstop) for c, h in zip(columns, how)):
        return None
    reads = [c for c, h in zip(columns, how) if h != "f"] + ([] if loop in ("range", "grid") else list(rows))
    if not outputs_ok(out, store, span, n_out, reads):
        return None
    # the input matrix and the predictions go into buffers kept from the last batch (take_buffer)
    matrix = take_buffer(n * len(inputs), kept)
    into = take_buffer(n * n_out, kept) if getattr(sur, "PREDICT_INTO", False) else None
    try:
        X = input_matrix(columns, how, inputs, span, into=matrix)
        if X is None:
            return None
        answered = answer(sur, exact, X, columns, how, span, inputs, n_out, accept, accept_row, into)
        if answered is None:
            return None
        Y, exact_answers = answered
        value = store_rows(out, store, span, Y, exact_answers, n_out)  # copies out of Y: it is reused
    finally:  # in the reverse order, so that the next batch takes each back for the same use
        if into is not None:
            keep_buffer(into, kept)
        keep_buffer(matrix, kept)
    return value, last_target(loop, rows, span)


def take_buffer(size: int, kept: list[np.ndarray]) -> np.ndarray:
    """A float64 buffer of at least `size` elements: the one an earlier batch kept, when large
    enough, else a new one. Fresh memory costs a page fault on the first touch of each 4 KiB page
    (~2.7 us each in the VM regionx was measured on: 20,000 rows of 2 outputs, 22 ns a row, a
    fifth of the whole batch); malloc hands such sizes back to the system between batches."""
    try:
        buffer: np.ndarray | None = kept.pop()  # one step, so that two threads never take the same buffer
    except IndexError:
        buffer = None
    return buffer if buffer is not None and buffer.size >= size else np.empty(size)


def keep_buffer(buffer: np.ndarray, kept: list[np.ndarray]) -> None:
    """Keep `buffer` for the next batch (a batch takes two: its input matrix, then its
    predictions): at most two buffers of at most 4 MiB each (larger arrays get numpy's huge
    pages, whose faults are few), so a process holds at most 8 MiB this way. A nested or
    concurrent batch that found none kept makes its own: a buffer is never in two uses."""
    if buffer.size <= 1 << 19:
        kept.append(buffer)
        del kept[:-2]


def map_rows(sur: Any, exact: Callable[..., Any], rows: Sequence[Sequence[Any]], *, inputs: Sequence[int],
             n_out: int = 1, accept: Callable[..., Any] | None = None,
             accept_row: Callable[..., Any] | None = None, min_rows: int = 2) -> list[Any] | None:
    """The general form: results of exact(*row) for every argument row, from one batched predict
    (guarded as in `batch`); None when the original loop must run."""
    n = len(rows)
    if n < max(1, min_rows):
        return None
    columns = [[row[k] for row in rows] for k in range(len(rows[0]))]
    found = batch(sur, exact, "zip", columns, columns, ["r"] * len(columns), inputs=inputs, store="value",
                  n_out=n_out, accept=accept, accept_row=accept_row, min_rows=min_rows)
    return None if found is None else found[0]


def traversable(*seqs: Any, min_rows: int = 0) -> bool:
    """True when every sequence a batched loop walks can be walked twice, and holds at least
    `min_rows` rows (checked before a distributed loop's first pass, which fewer would waste)."""
    return all(isinstance(s, (list, tuple, range, np.ndarray)) and len(s) >= min_rows for s in seqs)


def distinct(reads: Sequence[Any], writes: Sequence[Any]) -> bool:
    """True when no container the loop writes is (or shares memory with) one its calls read."""
    for w in writes:
        for r in reads:
            if w is r or (isinstance(w, np.ndarray) and isinstance(r, np.ndarray) and np.may_share_memory(w, r)):
                return False
    return True


def store_into(target: Any, values: Any) -> None:
    """Store a surrogate's array output into the input container it replaces, element by element:
    nested lists keep their inner list objects (an alias of a row sees the new values), arrays
    are written in place."""
    if isinstance(target, np.ndarray):
        target[...] = np.reshape(values, target.shape)
        return
    values = np.asarray(values, dtype=np.float64)
    if values.ndim <= 1:
        target[:] = values.reshape(-1).tolist()
        return
    for k in range(len(target)):
        row = target[k]
        if isinstance(row, (list, np.ndarray)):
            store_into(row, values[k])
        else:
            target[k] = values[k].tolist()
