"""The exact region called on input rows, with the run-time checks of what the analysis claimed;
valid samples assembled into X/Y matrices; the exact code's cost per call.

The ``_rx_*`` functions, ``_RxTimeout`` and ``_RxViolation`` are portable (regionx.sampling.harness
copies them into every harness), so ``python harness.py`` runs, checks and assembles samples as
``regionx sample`` does; `call_rows` wraps the runner for regionx's own callers.

Run-time checks of what the analysis claimed (Region.inputs / Region.outputs). Sampling runs the
exact region on every row anyway, so every sample is checked, in whichever process runs it:

- inputs not among the outputs are unchanged afterwards: each call gets fresh copies of the
  mutable inputs (ndarrays, lists, dicts; scalars are immutable), compared with the row's own
  values after the call (``_rx_changed``: deep, ndarrays by value, dtype and shape, NaN == NaN);
- outputs are numbers: int, float, bool, numpy scalars, numeric ndarrays or nested lists of numbers
  that make one (``_rx_not_number``; a str such as ``"%.3f" % x``, bytes, None, a dict, a complex,
  an object is not), of the shape of the first valid sample's;
- results are deterministic: at the end of each chunk, a few of its valid rows (first, middle,
  last; RECHECK_ROWS) are run again on fresh copies and must give exactly the same outputs. In
  the same process, so that only the region itself can make them differ, not a difference
  between processes (a Dask worker's BLAS thread settings, str hash seeds).

A violation is never a dropped sample: it refuses the region (status 'violation', RX308 in
regionx.sample). A sample on which the region raises stays a ``raised`` drop, unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

# Valid rows of each chunk run a second time to check that the region is deterministic.
RECHECK_ROWS = 3


# ================================================================================================
# Portable part: copied into every harness (regionx.sampling.harness). Keep it self-contained.
# ================================================================================================


class _RxTimeout(BaseException):
    """Raised inside a sample that ran past its time limit.

    A BaseException, so that a region's own ``except Exception`` cannot swallow it.
    """


class _RxViolation(Exception):
    """The region did not behave as the analysis claimed (the message says how); never a drop."""


def _rx_not_number(value):  # type: ignore[no-untyped-def]
    """None if `value` is a real number (int, float, bool, numpy scalar) or an array of them (an
    ndarray of a numeric dtype, or nested lists/tuples of numbers that make one); else what it is,
    for a message: "a str ('1.234')", "a list holding None", "a ragged tuple ...".
    """
    import numpy as np

    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return None
    if isinstance(value, np.ndarray) and value.dtype.kind != "O":
        if value.dtype.kind in "biuf":
            return None
        kinds = {"c": "complex numbers", "U": "strings", "S": "bytes", "M": "datetimes", "m": "timedeltas"}
        return f"an array of {kinds.get(value.dtype.kind, value.dtype.name)}"
    if isinstance(value, (list, tuple, np.ndarray)):
        array = value
        if not isinstance(value, np.ndarray):
            try:
                array = np.asarray(value)
            except (ValueError, TypeError):  # ragged nesting
                array = None
            if array is not None and array.dtype.kind in "biuf":
                return None
        # Find the item that is not a number (numpy would have turned numbers next to a str into str).
        noun = "an ndarray" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
        for item in (value.reshape(-1).tolist() if isinstance(value, np.ndarray) else value):
            problem = _rx_not_number(item)
            if problem is not None:
                return f"{noun} holding {problem}"
        if array is None:
            return f"a ragged {type(value).__name__} (its items differ in shape)"
        return None  # numbers numpy keeps as objects (ints beyond int64 ...): converted, or overflow
    if value is None:
        return "None"
    text, kind = repr(value), type(value).__name__
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind} ({text if len(text) <= 40 else text[:37] + '...'})"


def _rx_outputs(result, n_outputs, names=None):  # type: ignore[no-untyped-def]
    """The region's result tuple as numbers: a float per scalar, a float64 array (a copy) per array.

    Raises _RxViolation naming the output (`names`, in order) if one is not a number or an array of
    numbers (a str, None, a dict, an object ...: the analysis claimed outputs are numbers);
    TypeError/ValueError/OverflowError if it is not a tuple of `n_outputs` values or does not fit
    a float64.
    """
    import numpy as np

    if not isinstance(result, tuple) or len(result) != n_outputs:
        raise TypeError(f"expected a tuple of {n_outputs} outputs")
    values = []
    for k, value in enumerate(result):
        if type(value) is float or type(value) is int:  # the common case, without numpy's overhead
            values.append(float(value))
            continue
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":  # numeric arrays: no walk
            values.append(float(value) if value.ndim == 0 else value.astype(np.float64))  # a copy
            continue
        # Checked before converting: np.array("1.234", dtype=float64) would silently succeed.
        problem = _rx_not_number(value)
        if problem is not None:
            name = names[k] if names is not None else f"#{k}"
            noun = "a numeric array" if isinstance(value, (list, tuple, np.ndarray)) else "a number"
            raise _RxViolation(f"output {name!r} is {problem}, not {noun}")
        array = np.array(value, dtype=np.float64)  # a copy: later mutation cannot change it
        values.append(float(array) if array.ndim == 0 else array)
    return tuple(values)


def _rx_changed(before, after, where):  # type: ignore[no-untyped-def]
    """None if `after` equals `before`, else the first difference as (where, before, after) texts.

    Deep: lists, tuples and dicts item by item; ndarrays by value with the same dtype and shape
    (NaN equals NaN), also inside lists; other values by ==. Objects that only compare by identity
    are not evidence of a change.
    """
    import numpy as np

    def show(value):  # type: ignore[no-untyped-def]
        text = repr(value.item() if isinstance(value, (np.ndarray, np.generic)) and np.ndim(value) == 0 else value)
        return text if len(text) <= 40 else text[:37] + "..."

    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        if not (isinstance(before, np.ndarray) and isinstance(after, np.ndarray)):
            return where, type(before).__name__, type(after).__name__
        if before.dtype != after.dtype:
            return where, f"dtype {before.dtype}", f"dtype {after.dtype}"
        if before.shape != after.shape:
            return where, f"shape {before.shape}", f"shape {after.shape}"
        if before.dtype.kind in "biufc":
            differ = before != after
            if before.dtype.kind in "fc":
                differ &= ~(np.isnan(before) & np.isnan(after))
            if not differ.any():
                return None
            index = tuple(int(i) for i in np.argwhere(differ)[0])
            return where + "".join(f"[{i}]" for i in index), show(before[index]), show(after[index])
        for index in np.ndindex(before.shape):  # str / object arrays, element by element
            found = _rx_changed(before[index], after[index], where + "".join(f"[{i}]" for i in index))
            if found is not None:
                return found
        return None
    if isinstance(before, (list, tuple, dict)) or isinstance(after, (list, tuple, dict)):
        if type(before) is not type(after):
            return where, type(before).__name__, type(after).__name__
        if isinstance(before, dict):
            for key in list(before) + [k for k in after if k not in before]:
                if key not in after or key not in before:
                    return (f"{where}[{key!r}]", show(before[key]) if key in before else "(absent)",
                            show(after[key]) if key in after else "(absent)")
                found = _rx_changed(before[key], after[key], f"{where}[{key!r}]")
                if found is not None:
                    return found
            return None
        if len(before) != len(after):
            return where, f"{len(before)} items", f"{len(after)} items"
        for k, (b, a) in enumerate(zip(before, after)):
            found = _rx_changed(b, a, f"{where}[{k}]")
            if found is not None:
                return found
        return None
    if before is after:
        return None
    if type(before).__eq__ is object.__eq__ and type(before) is type(after):
        return None  # compares by identity only: a copy is never "equal", which proves nothing
    try:
        same = bool(before == after) or bool(before != before and after != after)  # NaN == NaN
    except Exception:  # cannot be compared: not evidence of a change
        return None
    if same and type(before) is type(after):
        return None
    return where, show(before), show(after)


def _rx_finite(values):  # type: ignore[no-untyped-def]
    """True if no output holds NaN or inf."""
    import math

    import numpy as np

    for value in values:
        if type(value) is float:
            if not math.isfinite(value):
                return False
        elif not np.all(np.isfinite(value)):
            return False
    return True


def _rx_call_rows(fn, rows, timeout, n_outputs, inputs=None, outputs=None, recheck=0):  # type: ignore[no-untyped-def]
    """Call ``fn(*row)`` for each row; return one ``(status, outputs)`` per row.

    status is 'ok' (outputs: a tuple of floats / float64 arrays), 'raised' (outputs: the message),
    'nonfinite' or 'timeout' (outputs None), or 'violation' (outputs: ``(what, evidence)`` texts):
    the region did not behave as analysed. Every call checks that the outputs are numbers; given
    the region's `inputs` and `outputs` names, also that the inputs not among the outputs are
    unchanged afterwards (each call gets fresh copies of the mutable inputs, compared with the
    row's own values after it). With `recheck` > 0, that many 'ok' rows (first, middle, last) are
    run again at the end, in this same process, and must give exactly the same outputs.

    The time limit uses SIGALRM (re-armed every `timeout` seconds, so code that swallows the first
    one is interrupted again) when this is the main thread of a Unix process; elsewhere the caller
    must bound the run (regionx.sampling.workers runs chunks in a subprocess there).
    """
    import copy
    import signal
    import threading

    import numpy as np

    use_alarm = bool(timeout) and timeout > 0 and hasattr(signal, "setitimer") and (
        threading.current_thread() is threading.main_thread()
    )
    armed = [False]
    out_names = list(outputs) if outputs is not None else [f"#{k}" for k in range(n_outputs)]
    # Inputs the analysis says the region leaves alone (scalars are immutable: only containers are compared).
    watched = [(k, name) for k, name in enumerate(inputs) if name not in out_names] if (
        inputs is not None and outputs is not None) else []

    def on_alarm(signum, frame):  # type: ignore[no-untyped-def]
        if armed[0]:
            raise _RxTimeout()

    def run(row):  # type: ignore[no-untyped-def]
        # Fresh copies of mutable inputs: a region that mutates them must not alter our data.
        args = [v.copy() if isinstance(v, np.ndarray) else (copy.deepcopy(v) if isinstance(v, (list, dict)) else v)
                for v in row]
        try:
            try:
                if use_alarm:
                    armed[0] = True
                    signal.setitimer(signal.ITIMER_REAL, timeout, timeout)
                result = fn(*args)
            finally:
                if use_alarm:
                    armed[0] = False
                    signal.setitimer(signal.ITIMER_REAL, 0)
            for k, name in watched:
                if isinstance(row[k], (np.ndarray, list, dict)):
                    change = _rx_changed(row[k], args[k], name)
                    if change is not None:
                        return "violation", (f"`{name}` was changed by the region but is not among its outputs",
                                             f"{change[0]} {change[1]} -> {change[2]}")
            values = _rx_outputs(result, n_outputs, out_names)
            if not _rx_finite(values):
                return "nonfinite", None
            return "ok", values
        except _RxTimeout:
            return "timeout", None
        except _RxViolation as exc:
            return "violation", (str(exc), "")
        except Exception as exc:
            # Keep the message (not the exception: it may not pickle) to explain drops.
            return "raised", f"{type(exc).__name__}: {exc}"[:300]

    previous = signal.signal(signal.SIGALRM, on_alarm) if use_alarm else None
    try:
        results = [run(row) for row in rows]
        ok = [i for i, (status, _) in enumerate(results) if status == "ok"]
        picks = sorted({ok[(len(ok) - 1) * j // max(1, recheck - 1)] for j in range(recheck)}) if ok else []
        for i in picks:
            status, again = run(rows[i])
            first = results[i][1]
            if status == "timeout":  # a slow moment proves nothing
                continue
            if status == "violation":
                results[i] = (status, again)
                continue
            if status != "ok":
                shown = ", ".join(f"{name}={v!r}" if type(v) is float else f"{name} of shape {v.shape}"
                                  for name, v in zip(out_names, first))
                then = "non-finite values" if status == "nonfinite" else f"raised {again}"
                results[i] = ("violation", (f"not deterministic: the same inputs gave {shown}, then {then}", ""))
                continue
            for name, a, b in zip(out_names, first, again):
                change = _rx_changed(a, b, name)
                if change is not None:
                    results[i] = ("violation", (
                        f"not deterministic: the same inputs gave {change[0]}={change[1]} then {change[2]}", ""))
                    break
    finally:
        if use_alarm:
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return results


def _rx_flatten(values, shapes):  # type: ignore[no-untyped-def]
    """Values as one flat list of floats, filling unknown (None) entries of `shapes` in place;
    None if a value's shape differs from its entry or it is not numbers."""
    import numpy as np

    flat = []
    for k, value in enumerate(values):
        if type(value) is float or type(value) is int:
            shape = ()
            flat.append(float(value))
        else:
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                return None
            shape = tuple(array.shape)
            flat.extend(array.reshape(-1).tolist())
        if shapes[k] is None:
            shapes[k] = shape
        elif tuple(shapes[k]) != shape:
            return None
    return flat


def _rx_assemble(rows, results, input_shapes, output_names=None):  # type: ignore[no-untyped-def]
    """Flatten valid samples into X (n, d_in) and Y (n, d_out) float64 matrices.

    `input_shapes` is the declared shape of each input (None: taken from the first row). A later
    sample whose input shapes differ is dropped as 'shape'. The output shapes are those of the
    first valid sample; an output whose shape differs on a later sample, or a row whose status is
    'violation', is a violation: the scan stops there. Returns (X, Y, input_shapes, output_shapes,
    dropped, kept, violation) where `kept` lists the indices of the rows kept and `violation` is
    None or the text of the first violation, naming the variable and the sample it was seen on.
    """
    import numpy as np

    dropped = {"raised": 0, "nonfinite": 0, "timeout": 0, "shape": 0}
    in_shapes = [None if s is None else tuple(s) for s in input_shapes]
    out_shapes = None
    xs, ys, kept = [], [], []
    violation = None
    for index, (row, (status, outputs)) in enumerate(zip(rows, results)):
        if status == "violation":
            what, evidence = outputs
            violation = f"{what} (first seen on sample {index}{': ' + evidence if evidence else ''})"
            break
        if status != "ok":
            dropped[status] = dropped.get(status, 0) + 1
            continue
        trial_in = list(in_shapes)
        x = _rx_flatten(row, trial_in)
        if x is None:  # an observed input of another shape: not the region's fault
            dropped["shape"] += 1
            continue
        trial_out = list(out_shapes) if out_shapes is not None else [None] * len(outputs)
        y = _rx_flatten(outputs, trial_out)
        if y is None:  # outputs are numbers of a fixed shape (the analysis claimed so)
            now = [() if type(v) is float else tuple(np.shape(v)) for v in outputs]
            k = next((k for k, shape in enumerate(now) if tuple(out_shapes[k]) != shape), 0)
            name = output_names[k] if output_names is not None else f"#{k}"
            violation = (f"output {name!r} has no fixed shape: {tuple(out_shapes[k])} on sample {kept[0]}, "
                         f"{now[k]} on sample {index}")
            break
        in_shapes, out_shapes = trial_in, trial_out
        xs.append(x)
        ys.append(y)
        kept.append(index)
    in_shapes = [tuple(s) if s is not None else () for s in in_shapes]
    out_shapes = [tuple(s) for s in (out_shapes or [])]
    d_in = sum(int(np.prod(s)) for s in in_shapes)
    d_out = sum(int(np.prod(s)) for s in out_shapes)
    X = np.array(xs, dtype=np.float64).reshape(len(xs), d_in)
    Y = np.array(ys, dtype=np.float64).reshape(len(ys), d_out)
    return X, Y, in_shapes, out_shapes, dropped, kept, violation


def _rx_time_per_call(fn, arg_rows, budget=1.0, max_rows=300):  # type: ignore[no-untyped-def]
    """Median seconds per call of ``fn(*args)`` over repeated passes on up to `max_rows` rows.

    Each pass calls `fn` once per row (Python call overhead included: that is what a surrogate
    call replaces); the per-call mean of a pass is one measurement, and the median over passes is
    returned. Passes are sized so the whole measurement takes about `budget` seconds.
    """
    import copy
    import statistics
    import time  # noqa: F401,F811 - this function's source is pasted into harnesses, which import nothing else

    import numpy as np

    if not arg_rows:
        return 0.0

    def fresh(rows):  # type: ignore[no-untyped-def]
        return [tuple(v.copy() if isinstance(v, np.ndarray) else (copy.deepcopy(v) if isinstance(v, list) else v)
                      for v in r) for r in rows]

    clock = time.perf_counter
    probe = fresh(arg_rows[:1])[0]
    start = clock()
    fn(*probe)  # also a warm-up
    single = max(clock() - start, 1e-7)
    m = int(max(1, min(len(arg_rows), max_rows, budget / (5.0 * single))))
    rows = arg_rows[:m]
    batch = fresh(rows)
    start = clock()
    for args in batch:  # warm-up pass
        fn(*args)
    pass_time = max(clock() - start, 1e-7)
    repeats = int(max(3, min(25, budget / pass_time)))
    times = []
    for _ in range(repeats):
        batch = fresh(rows)
        start = clock()
        for args in batch:
            fn(*args)
        times.append((clock() - start) / len(batch))
    return float(statistics.median(times))


# ================================================================================================
# regionx's own callers
# ================================================================================================


def call_rows(fn: Callable[..., Any], rows: Sequence[tuple[Any, ...]], n_outputs: int, timeout: float, *,
              inputs: Sequence[str] | None = None, outputs: Sequence[str] | None = None,
              recheck: int = 0) -> list[tuple[str, Any]]:
    """Call the harness's ``fn(*row)`` for each row in this process: one ``(status, outputs)`` per
    row, status 'ok', 'raised', 'nonfinite', 'timeout' or 'violation' (the harnesses' own
    ``_rx_call_rows``: outputs must be numbers; given the region's `inputs` and `outputs` names,
    inputs not among the outputs must be left unchanged; `recheck` valid rows are run twice)."""
    return list(_rx_call_rows(fn, list(rows), timeout, n_outputs, None if inputs is None else list(inputs),
                              None if outputs is None else list(outputs), recheck))

