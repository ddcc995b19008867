"""`regionx sample`: valid inputs for a region, the exact region run on them, a Dataset.

Random mode draws inputs from the region's declared domains (pragma, or ``--domain`` overrides),
with rejection sampling on ``require=``, placed by a design (DESIGNS: independent uniform draws,
or the points of a scrambled Sobol' sequence or a Latin hypercube, mapped through each
distribution's inverse CDF). Observe mode records the inputs a real run of the user's
program passes to the region (regionx.instrument, observe mode), optionally mixed with random
ones. Either way the outputs come from running the extracted harness (regionx.extract) in worker
processes of a concurrent.futures Executor (regionx.executors: local processes or Dask), in
chunks, with a per-sample time limit. A sample that raises, gives NaN/inf or runs past the limit
is dropped and counted, never a crash; a sample that shows the region does not behave as analysed
refuses the region (below). Workers start with the harness already loaded (local pools fork after
this process loaded it; a Dask worker thread keeps one child interpreter for all its chunks), and a
`SamplingPool` keeps them across several calls (regionx.active's rounds).

The *portable* part of this module (the functions named ``_rx_*``, ``_RxTimeout`` and
``_RxViolation`` below) is copied verbatim into every harness by regionx.extract
(`portable_source`), so that ``python harness.py --samples N --seed S`` and ``regionx sample``
draw, run, check and assemble samples with the same code and give identical datasets for the
same seed. Those functions use only the
standard library and numpy, import what they need inside their bodies (so they cannot clash with
the user's module-level names in a harness), and refer to each other only by ``_rx_`` names.

Drop kinds (DatasetMeta.dropped): ``rejected`` (draws refused by require=), ``raised`` (the
region raised), ``nonfinite`` (NaN or inf in an output), ``timeout`` (ran past the limit),
``shape`` (an observed input whose shape differs from the first valid sample's / the declared
shape), ``outside_domain`` (an observed input outside its declared domain, or failing require=:
the declared domain is where the surrogate is trained and trusted, so such calls stay with the
exact code).

Run-time checks of what the analysis claimed (Region.inputs / Region.outputs). Sampling runs the
exact region on every row anyway, so every sample is checked, in whichever process runs it (the
checks are portable code, so ``python harness.py`` makes them too):

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

A violation is never a dropped sample: one refuses the region (RX308, exit 1) with the variable
and the evidence, e.g. "`rows` was changed by the region but is not among its outputs (first seen
on sample 0: rows[0][0] 0.93 -> 0.465)", so nothing is trained, compiled or rewritten from it.
A sample on which the region raises stays a ``raised`` drop, unchecked.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import inspect
import math
import os
import pickle
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from regionx import __version__
from regionx import diagnostics as dx
from regionx.types import (
    DEFAULT_METRIC,
    DEFAULT_TOLERANCE,
    Dataset,
    DatasetMeta,
    DomainSpec,
    Region,
    StageResult,
    VarSpec,
)

DROP_KINDS = ("rejected", "raised", "nonfinite", "timeout", "shape")
# When fewer than this fraction of draws satisfy require=, sampling stops with RX302.
MIN_ACCEPT_RATE = 0.01
# Draws made before the acceptance rate is judged (so a few unlucky draws do not stop a run).
MIN_JUDGED_DRAWS = 1000
# Valid rows of each chunk run a second time to check that the region is deterministic.
RECHECK_ROWS = 3
# How random inputs are placed in the declared box (--design): independent draws ("uniform"), or
# the points of a space-filling design ("sobol": scrambled Sobol', "lhs": Latin hypercube).
DESIGNS = ("uniform", "sobol", "lhs")
# The default design, chosen by measurement (benchmarks/sampling.py, benchmarks/results/sampling.md).
# Harnesses carry it too (portable part), so `python harness.py` draws what `regionx sample` does.
_RX_DEFAULT_DESIGN = "uniform"
DEFAULT_DESIGN = _RX_DEFAULT_DESIGN


# ================================================================================================
# Portable part: copied into every harness (see the module docstring). Keep it self-contained.
# ================================================================================================


class _RxTimeout(BaseException):
    """Raised inside a sample that ran past its time limit.

    A BaseException, so that a region's own ``except Exception`` cannot swallow it.
    """


class _RxViolation(Exception):
    """The region did not behave as the analysis claimed (the message says how); never a drop."""


def _rx_spec(spec):  # type: ignore[no-untyped-def]
    """(name, dist, args, shape) of a DomainSpec-like object or of such a 4-tuple."""
    if hasattr(spec, "dist"):
        return (spec.name, spec.dist, tuple(spec.args), tuple(spec.shape))
    name, dist, args, shape = spec
    return (name, dist, tuple(args), tuple(shape))


def _rx_column(rng, dist, args, size):  # type: ignore[no-untyped-def]
    """`size` draws of one distribution (an array of shape `size`)."""
    import numpy as np

    if dist == "uniform":
        return rng.uniform(float(args[0]), float(args[1]), size)
    if dist == "loguniform":
        return np.exp(rng.uniform(np.log(float(args[0])), np.log(float(args[1])), size))
    if dist == "normal":
        return rng.normal(float(args[0]), float(args[1]), size)
    if dist == "integers":
        # Both ends inclusive (README: integers(lo, hi)).
        return rng.integers(int(args[0]), int(args[1]), size, endpoint=True)
    if dist == "choice":
        values = np.asarray(args[0])
        return values[rng.integers(0, len(values), size)]
    raise ValueError(f"unknown distribution {dist!r}")


def _rx_from_unit(u, dist, args):  # type: ignore[no-untyped-def]
    """Points `u` in [0, 1) mapped through the inverse CDF of one distribution (same shape as `u`).

    The space-filling designs draw in the unit cube and come here: uniform and loguniform scale
    (in log space for the latter), normal goes through the normal quantile function, integers
    (both ends inclusive) and choice cut [0, 1) into equal cells, one per value.
    """
    import numpy as np

    if dist == "uniform":
        lo, hi = float(args[0]), float(args[1])
        return lo + u * (hi - lo)
    if dist == "loguniform":
        lo, hi = np.log(float(args[0])), np.log(float(args[1]))
        return np.exp(lo + u * (hi - lo))
    if dist == "normal":
        from scipy.special import ndtri

        # Clipped: a point exactly at 0 would map to -inf (scrambled points practically never are).
        return float(args[0]) + float(args[1]) * ndtri(np.clip(u, 1e-12, 1.0 - 1e-12))
    if dist == "integers":
        lo, hi = int(args[0]), int(args[1])
        return np.minimum(lo + np.floor(u * (hi - lo + 1)).astype(np.int64), hi)
    if dist == "choice":
        values = np.asarray(args[0])
        return values[np.minimum((u * len(values)).astype(np.int64), len(values) - 1)]
    raise ValueError(f"unknown distribution {dist!r}")


def _rx_unit_sampler(design, dims, rng):  # type: ignore[no-untyped-def]
    """A function m -> (m, dims) array of the next m points of a space-filling design in [0, 1)^dims.

    "sobol": one scrambled Sobol' sequence (successive calls continue it, so points drawn after
    rejections still fill the gaps left); "lhs": a fresh Latin hypercube of m points per call (so
    a draw of exactly n points without require= is one hypercube). Both are seeded from `rng`
    (scipy.stats.qmc; imported here, the 'scipy' extra), so a seed gives the same points.
    """
    import warnings

    from scipy.stats import qmc

    if design == "sobol":
        kind, options = qmc.Sobol, {"scramble": True}
    elif design == "lhs":
        kind, options = qmc.LatinHypercube, {}
    else:
        raise ValueError(f"unknown design {design!r} (uniform, sobol or lhs)")
    try:
        engine = kind(dims, rng=rng, **options)
    except TypeError:  # scipy < 1.15 names the generator `seed`
        engine = kind(dims, seed=rng, **options)

    def draw(m):  # type: ignore[no-untyped-def]
        with warnings.catch_warnings():
            # Sobol' prefers powers of two; any prefix of the sequence is still low-discrepancy.
            warnings.simplefilter("ignore", UserWarning)
            return engine.random(m)

    return draw


_RX_REQUIRE_NODES = (
    "Expression", "BoolOp", "And", "Or", "BinOp", "Add", "Sub", "Mult", "Div", "FloorDiv", "Mod",
    "Pow", "MatMult", "BitAnd", "BitOr", "BitXor", "LShift", "RShift", "UnaryOp", "Not", "USub",
    "UAdd", "Invert", "Compare", "Eq", "NotEq", "Lt", "LtE", "Gt", "GtE", "Is", "IsNot", "In",
    "NotIn", "Call", "keyword", "Name", "Load", "Attribute", "Constant", "Subscript", "Slice",
    "Tuple", "List", "IfExp",
)
_RX_REQUIRE_BUILTINS = ("abs", "min", "max", "sum", "len", "round", "float", "int", "bool", "all", "any", "pow")


def _rx_compile_require(text, names):  # type: ignore[no-untyped-def]
    """Validate the require= predicate (an expression over `names`, math and np) and compile it.

    Raises ValueError with a short reason for anything that is not such an expression.
    """
    import ast

    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a Python expression: {exc.msg}") from None
    allowed = set(names) | {"math", "np", "numpy"} | set(_RX_REQUIRE_BUILTINS)
    for node in ast.walk(tree):
        kind = type(node).__name__
        if kind not in _RX_REQUIRE_NODES:
            raise ValueError(f"{kind} is not allowed in require=")
        if isinstance(node, ast.Name) and node.id not in allowed:
            raise ValueError(f"unknown name {node.id!r} (require= may use the inputs, math and np)")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ValueError(f"attribute {node.attr!r} is not allowed in require=")
    return compile(tree, "<require>", "eval")


def _rx_require_namespace():  # type: ignore[no-untyped-def]
    """Globals for evaluating require=: math, numpy and a few harmless builtins, nothing else."""
    import builtins
    import math

    import numpy as np

    return {
        "__builtins__": {k: getattr(builtins, k) for k in _RX_REQUIRE_BUILTINS},
        "math": math,
        "np": np,
        "numpy": np,
    }


def _rx_draw_inputs(specs, n, rng, require=None, min_rate=0.01, min_judged=1000, design="uniform"):  # type: ignore[no-untyped-def]
    """Draw `n` input rows (tuples in spec order) satisfying `require`, by rejection sampling.

    Returns ``(rows, drawn, rejected)`` — `rejected` counts the refused draws made before the n-th
    accepted one — or ``(None, drawn, accepted)`` when fewer than `min_rate` of at least
    `min_judged` draws passed (the caller reports it). Scalars are Python floats/ints, arrays numpy
    arrays of the spec's shape. Draws come in rounds, each drawing every input's column in spec
    order from `rng`, so the result depends only on (specs, n, seed, require, design).

    `design` "uniform" draws each value independently; "sobol" and "lhs" draw the rows as points
    of a space-filling design in the unit cube (one dimension per scalar input and per element of
    an array input, `_rx_unit_sampler`) mapped through each distribution's inverse CDF
    (`_rx_from_unit`), so the declared box is covered evenly rather than in random clumps.
    """
    import math

    specs = [_rx_spec(s) for s in specs]
    names = [s[0] for s in specs]
    code = _rx_compile_require(require, names) if require else None
    namespace = _rx_require_namespace() if code is not None else None
    unit = None
    if design != "uniform":
        sizes = [int(math.prod(shape)) for (_n, _d, _a, shape) in specs]
        unit = _rx_unit_sampler(design, max(1, sum(sizes)), rng)
    rows = []
    drawn = accepted_total = rejected = 0
    while len(rows) < n:
        need = n - len(rows)
        if code is None:
            m = need
        else:
            rate = accepted_total / drawn if drawn else 1.0
            m = int(min(max(need / max(rate, min_rate) * 1.2 + 16, min_judged), 1_000_000))
        if unit is None:
            columns = [_rx_column(rng, dist, args, (m, *shape)) for (_name, dist, args, shape) in specs]
        else:
            points, columns, start = unit(m), [], 0
            for (_name, dist, args, shape), size in zip(specs, sizes):
                block = points[:, start:start + size].reshape((m, *shape))
                columns.append(_rx_from_unit(block, dist, args))
                start += size
        # Python scalars for scalar inputs (as the user's code normally receives them).
        values = [col.tolist() if not shape else col for col, (_n, _d, _a, shape) in zip(columns, specs)]
        drawn += m
        for i in range(m):
            row = tuple(v[i] if not spec[3] else v[i].copy() for v, spec in zip(values, specs))
            ok = True
            if code is not None:
                try:
                    ok = bool(eval(code, namespace, dict(zip(names, row))))  # validated expression
                except Exception:  # a predicate that fails on a draw rejects it
                    ok = False
            if ok:
                accepted_total += 1
                if len(rows) < n:
                    rows.append(row)
            elif len(rows) < n:
                rejected += 1
        if code is not None and drawn >= min_judged and accepted_total < min_rate * drawn:
            return None, drawn, accepted_total
    return rows, drawn, rejected


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
    must bound the run (regionx.sample runs chunks in a subprocess there).
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


def _rx_main(ns, argv=None):  # type: ignore[no-untyped-def]
    """``python harness.py --samples N --seed S --out data.npz``: a dataset from the harness alone.

    `ns` is the harness module's namespace (region, INPUTS, OUTPUTS, REQUIRE, _RX_SPECS ...). The
    file written has the layout of regionx.types.Dataset (X, Y, meta as JSON), so `regionx train`
    accepts it. Returns the process exit status.
    """
    import argparse
    import json
    import os
    import sys
    import tempfile

    import numpy as np

    parser = argparse.ArgumentParser(description=f"regionx harness for region {ns['REGION_ID']!r}: sample input/output pairs")
    parser.add_argument("--samples", "-n", type=int, default=1000, help="number of input draws (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", "-o", default="data.npz", help="output .npz file (default data.npz)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds allowed per sample (default 10)")
    parser.add_argument("--design", choices=("uniform", "sobol", "lhs"), default=_RX_DEFAULT_DESIGN,
                        help=f"placement of the inputs in the box (default {_RX_DEFAULT_DESIGN}; sobol/lhs need scipy)")
    args = parser.parse_args(argv)
    specs = dict((s[0], s) for s in ns["_RX_SPECS"])
    missing = [name for name in ns["INPUTS"] if name not in specs]
    if missing:
        print(f"error: no domain for input(s) {', '.join(missing)}", file=sys.stderr)
        return 2
    ordered = [specs[name] for name in ns["INPUTS"]]
    try:
        rows, drawn, rejected = _rx_draw_inputs(ordered, args.samples, np.random.default_rng(args.seed), ns["REQUIRE"],
                                                design=args.design)
    except ValueError as exc:
        print(f"error: bad require= predicate: {exc}", file=sys.stderr)
        return 2
    except ImportError:
        print(f"error: --design {args.design} needs scipy (pip install scipy)", file=sys.stderr)
        return 2
    if rows is None:
        print(f"error: require={ns['REQUIRE']!r} accepted {rejected} of {drawn} draws (< 1%)", file=sys.stderr)
        return 1
    inputs, outputs = list(ns["INPUTS"]), list(ns["OUTPUTS"])
    # One chunk, as a sampling worker runs it: the same checks and re-runs (regionx.sample.RECHECK_ROWS).
    allowed = outputs + list(ns.get("SCRATCH", ()))  # inputs the region may change
    results = _rx_call_rows(ns["region"], rows, args.timeout, len(outputs), inputs, allowed, 3)
    X, Y, in_shapes, out_shapes, dropped, kept, violation = _rx_assemble(
        rows, results, [tuple(s[3]) for s in ordered], outputs)
    if violation is not None:  # the same refusal as regionx sample's RX308: no dataset is written
        print(f"error: region {ns['REGION_ID']!r} does not behave as analysed: {violation}", file=sys.stderr)
        return 1
    dropped = {"rejected": rejected, **dropped}
    if not kept:
        print(f"error: no valid samples (dropped: {dropped})", file=sys.stderr)
        return 1
    exact = ns.get("_RX_EXACT", ns["region"])
    per_call = _rx_time_per_call(exact, [rows[i] for i in kept])
    out_names = [("return" if o == "return" else o) for o in ns["OUTPUTS"]]
    meta = {
        "region_id": ns["REGION_ID"], "region_name": ns["REGION_NAME"], "source_path": ns["SOURCE_PATH"],
        "source_sha256": ns["SOURCE_SHA256"],
        "inputs": [{"name": n, "shape": list(s)} for n, s in zip(ns["INPUTS"], in_shapes)],
        "outputs": [{"name": n, "shape": list(s)} for n, s in zip(out_names, out_shapes)],
        "domain": dict(ns["DOMAIN"]), "seed": args.seed, "requested": args.samples, "dropped": dropped,
        "exact_time_per_call": per_call, "tolerance": ns.get("TOLERANCE", 0.01), "metric": ns.get("METRIC", "rel"),
        "accept": ns.get("ACCEPT"), "mode": "random", "regionx_version": ns.get("REGIONX_VERSION", ""),
        "design": args.design,
    }
    directory = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=directory)
    os.close(fd)
    try:
        np.savez(tmp, X=X, Y=Y, meta=np.array(json.dumps(meta)))
        os.replace(tmp, args.out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"{len(kept)} samples written to {args.out} (dropped: {dropped}; exact region {per_call * 1e6:.2f} us/call)")
    return 0


# The objects whose source every harness carries, in order.
PORTABLE: tuple[Any, ...] = (
    _RxTimeout,
    _RxViolation,
    "_RX_DEFAULT_DESIGN",
    _rx_spec,
    _rx_column,
    _rx_from_unit,
    _rx_unit_sampler,
    "_RX_REQUIRE_NODES",
    "_RX_REQUIRE_BUILTINS",
    _rx_compile_require,
    _rx_require_namespace,
    _rx_draw_inputs,
    _rx_not_number,
    _rx_outputs,
    _rx_changed,
    _rx_finite,
    _rx_call_rows,
    _rx_flatten,
    _rx_assemble,
    _rx_time_per_call,
    _rx_main,
)


def portable_source() -> str:
    """Source text of the portable sampler/runner, for regionx.extract to paste into a harness."""
    parts = []
    for obj in PORTABLE:
        if isinstance(obj, str):
            parts.append(f"{obj} = {globals()[obj]!r}\n")
        else:
            parts.append(inspect.getsource(obj).replace("  # type: ignore[no-untyped-def]", ""))
    return "\n\n".join(parts)


# ================================================================================================
# Public API
# ================================================================================================


class RequireTooStrict(Exception):
    """require= accepted fewer than 1% of the draws."""

    def __init__(self, accepted: int, drawn: int) -> None:
        super().__init__(f"accepted {accepted} of {drawn} draws")
        self.accepted = accepted
        self.drawn = drawn


class DesignUnavailable(Exception):
    """A space-filling design was asked for without scipy installed (the message says how to get it)."""


def check_design(design: str) -> None:
    """Raise ValueError for a design that is not one of DESIGNS, DesignUnavailable when it needs
    scipy.stats.qmc and scipy is not installed (the 'scipy' extra)."""
    if design not in DESIGNS:
        raise ValueError(f"--design must be one of {', '.join(DESIGNS)}, not {design!r}")
    if design != "uniform":
        try:
            import scipy.stats.qmc  # noqa: F401
        except ImportError:
            raise DesignUnavailable(f"--design {design} needs scipy: pip install 'regionx[scipy]' "
                                    "(or --design uniform)") from None


def draw_inputs(specs: Sequence[DomainSpec], n: int, rng: np.random.Generator,
                require: str | None = None, design: str = "uniform") -> tuple[list[tuple[Any, ...]], int]:
    """Draw `n` input rows from `specs` (in order) that satisfy `require`; return (rows, rejected).

    The shared sampler: harnesses run the very same code. Each row is a tuple with one value per
    spec: a Python float (int for integers/choice of ints) for a scalar, a numpy array of the
    spec's shape otherwise. `integers(lo, hi)` includes both ends. `design` places the rows
    (DESIGNS: independent uniform draws, or a scrambled Sobol' / Latin hypercube design mapped
    through each distribution's inverse CDF). Raises ValueError for an invalid require= expression
    or design and RequireTooStrict when fewer than 1% of draws pass.
    """
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r} (one of {', '.join(DESIGNS)})")
    rows, drawn, third = _rx_draw_inputs(specs, n, rng, require, MIN_ACCEPT_RATE, MIN_JUDGED_DRAWS, design)
    if rows is None:
        raise RequireTooStrict(third, drawn)
    return rows, third


def call_rows(fn: Callable[..., Any], rows: Sequence[tuple[Any, ...]], n_outputs: int, timeout: float, *,
              inputs: Sequence[str] | None = None, outputs: Sequence[str] | None = None,
              recheck: int = 0) -> list[tuple[str, Any]]:
    """Call the harness's ``fn(*row)`` for each row in this process: one ``(status, outputs)`` per
    row, status 'ok', 'raised', 'nonfinite', 'timeout' or 'violation' (the harnesses' own
    ``_rx_call_rows``: outputs must be numbers; given the region's `inputs` and `outputs` names,
    inputs not among the outputs must be left unchanged; `recheck` valid rows are run twice)."""
    return list(_rx_call_rows(fn, list(rows), timeout, n_outputs, None if inputs is None else list(inputs),
                              None if outputs is None else list(outputs), recheck))


def argument_rows(X: np.ndarray, meta: DatasetMeta) -> list[tuple[Any, ...]]:
    """Rows of a dataset's X turned back into the region's call arguments, as sampling passed them:
    per scalar input a float (an int for an integral input: declared integers/choice of ints, or
    undeclared with every value whole), per array input a numpy array of its shape (a nested list
    when it had no declared domain, as observed)."""
    from regionx.pragma import parse_domain

    X = np.asarray(X, dtype=np.float64)
    columns: list[tuple[int, int, VarSpec, bool, bool]] = []  # start, stop, spec, integral, declared
    k = 0
    for var in meta.inputs:
        text = meta.domain.get(var.name)
        spec = parse_domain(var.name, text) if text else None
        if spec is not None:
            integral = spec.dist == "integers" or (spec.dist == "choice" and all(isinstance(v, int) for v in spec.args[0]))
        else:
            integral = bool(np.all(X[:, k:k + var.size] == np.round(X[:, k:k + var.size])))
        columns.append((k, k + var.size, var, integral, spec is not None))
        k += var.size
    rows = []
    for r in X:
        row: list[Any] = []
        for start, stop, var, integral, declared in columns:
            if not var.shape:
                row.append(int(r[start]) if integral else float(r[start]))
                continue
            array = r[start:stop].reshape(var.shape).astype(np.int64 if integral else np.float64)
            row.append(array if declared else array.tolist())
        rows.append(tuple(row))
    return rows


class ExactLoadError(Exception):
    """The exact region could not be loaded in this process (the message says why)."""


@contextlib.contextmanager
def exact_harness(text: str, path: str, region: Region) -> Iterator[types.ModuleType]:
    """The extracted harness of `region` (of source `text` at `path`), loaded in this process for
    the duration of the block: ``.region(*inputs)`` returns the outputs tuple (``exact_timer``
    times the callable a surrogate call replaces). Raises ExactLoadError."""
    from regionx.extract import extract_region

    extracted = extract_region(text, path, region)
    if not extracted.ok:
        raise ExactLoadError("cannot extract the exact code: "
                             + ("; ".join(d.message for d in extracted.diagnostics) or "extraction failed"))
    source: str = extracted.data["harness"]
    name = f"regionx_exact_{hashlib.sha256((path + region.id + source).encode()).hexdigest()[:16]}"
    try:
        module = exec_module(source, name, f"<regionx harness of {region.id}>", (os.path.dirname(os.path.abspath(path)),))
    except Exception as exc:  # the user's module-level code failed
        raise ExactLoadError(f"cannot load the exact code: {type(exc).__name__}: {exc}") from None
    try:
        yield module
    finally:
        sys.modules.pop(name, None)


def exact_timer(module: types.ModuleType, rows: Sequence[tuple[Any, ...]], budget: float = 0.15) -> Callable[[], float]:
    """A function timing one short measurement (about `budget` s) of the harness's exact region on
    `rows` (call arguments, e.g. `argument_rows`): seconds per call, as sampling measures it.
    Raises ExactLoadError when the exact code fails on those rows."""
    arg_rows = list(rows)
    exact = getattr(module, "_RX_EXACT", module.region)
    try:  # one measurement up front: rows the exact code does not accept are found here, not mid-training
        _rx_time_per_call(exact, arg_rows, budget)
    except Exception as exc:
        raise ExactLoadError(f"the exact code fails on the dataset's rows: {type(exc).__name__}: {exc}") from None
    return lambda: float(_rx_time_per_call(exact, arg_rows, budget))


def exec_module(source: str, name: str, filename: str | None = None, sys_path: Sequence[str] = ()) -> types.ModuleType:
    """Execute `source` as a new module called `name` (registered in sys.modules) and return it.

    `sys_path` entries are appended to sys.path first, so the harness can import the user's own
    modules that sit next to the source file.
    """
    for entry in sys_path:
        if entry and entry not in sys.path:
            sys.path.append(entry)
    module = types.ModuleType(name)
    module.__file__ = filename or f"<{name}>"
    sys.modules[name] = module
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


# -- workers -------------------------------------------------------------------------------------

# Worker-side cache: harness sha256 -> loaded module (a worker process runs many chunks).
_HARNESSES: dict[str, types.ModuleType] = {}
# Extra seconds before a chunk with no per-sample alarm is killed (interpreter and numpy start-up).
_CHUNK_MARGIN = 60.0
# Seconds of no progress at all (beyond the chunks' own limits) before the run gives up on them.
_WATCHDOG_MARGIN = 60.0
# Most rows in one task.
_CHUNK_ROWS = 2000
# Chunks per worker: enough to balance the load; 8 or 16 measured no faster on a 1 ms region (the
# tail shrinks, but each chunk also re-runs RECHECK_ROWS rows).
_PER_WORKER = 4


@dataclass(frozen=True)
class _Chunk:
    """One task: rows to run through the harness."""

    source: str
    sys_path: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    timeout: float
    n_outputs: int
    # The region's input and output names, for the run-time checks of what the analysis claimed.
    inputs: tuple[str, ...] | None = None
    outputs: tuple[str, ...] | None = None
    recheck: int = 0  # valid rows run twice (determinism)


@dataclass(frozen=True)
class _ChunkResult:
    results: list[tuple[str, Any]]
    error: str | None = None  # the harness could not be loaded at all


def _harness(source: str, sys_path: Sequence[str]) -> types.ModuleType:
    key = hashlib.sha256(source.encode("utf-8")).hexdigest()
    module = _HARNESSES.get(key)
    if module is None:
        module = exec_module(source, f"regionx_harness_{key[:16]}", f"<regionx harness {key[:12]}>", sys_path)
        _HARNESSES[key] = module
    return module


def _run_chunk_inline(chunk: _Chunk) -> _ChunkResult:
    try:
        module = _harness(chunk.source, chunk.sys_path)
    except BaseException as exc:  # the user's module-level code failed in the harness
        return _ChunkResult([], f"harness failed to load: {type(exc).__name__}: {exc}")
    return _ChunkResult(_rx_call_rows(module.region, chunk.rows, chunk.timeout, chunk.n_outputs,
                                      None if chunk.inputs is None else list(chunk.inputs),
                                      None if chunk.outputs is None else list(chunk.outputs), chunk.recheck))


def _run_chunk(chunk: _Chunk) -> _ChunkResult:
    """The task every executor runs: one chunk of samples.

    In the main thread of a Unix process (a local worker process) samples are timed out by
    SIGALRM. Elsewhere (a Dask worker thread, where signals cannot be used) the chunk runs in a
    child interpreter kept by that thread, which times out samples itself and which is killed if
    the chunk overruns (`_run_chunk_subprocess`).
    """
    import signal

    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _run_chunk_inline(chunk)
    return _run_chunk_subprocess(chunk)


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Length prefix of the messages exchanged with a chunk child (pickles of _Chunk / _ChunkResult).
_HEADER = 8


def _read_message(fd: int, deadline: float) -> bytes | None:
    """One length-prefixed message from `fd`; None at end of file or once `deadline` (monotonic) passes."""
    import select
    import struct

    buffer = bytearray()
    size: int | None = None
    while True:
        if size is None and len(buffer) >= _HEADER:
            size = struct.unpack("<Q", bytes(buffer[:_HEADER]))[0]
        if size is not None and len(buffer) >= _HEADER + size:
            return bytes(buffer[_HEADER:_HEADER + size])
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            data = os.read(fd, 1 << 20)
            if not data:
                return None
            buffer += data


class _ChunkChild:
    """A child interpreter that runs chunks for one Dask worker thread, kept across tasks.

    Why not one interpreter per chunk (as before): starting it, importing numpy and the user's
    module (scipy alone is about a second) cost more than the chunk's samples for a region of a
    millisecond, and that start-up, paid once per chunk, was what kept a Dask cluster far below
    local workers. This child starts once per worker thread, keeps its harness cache, and talks
    over its stdin/stdout pipes (length-prefixed pickles; the user's code sees /dev/null as its
    stdin and stdout). If a chunk overruns its limit the child is killed and the next chunk
    starts a new one.
    """

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([_package_root(), *filter(None, [env.get("PYTHONPATH")])])
        code = "from regionx.sample import _child_main; _child_main()"
        self.process = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, chunk: _Chunk, limit: float) -> tuple[_ChunkResult | None, str]:
        """(result, "") or (None, "timeout") when the chunk overran `limit` s, (None, "died")."""
        import struct

        payload = pickle.dumps(chunk)
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(struct.pack("<Q", len(payload)) + payload)
            stdin.flush()
        except OSError:  # the child is gone
            return None, "died"
        reply = _read_message(stdout.fileno(), time.monotonic() + limit)
        if reply is None:
            try:
                self.process.wait(timeout=0.5)  # exited (end of file)? else it is still busy: overran
            except subprocess.TimeoutExpired:
                return None, "timeout"
            return None, "died"
        return pickle.loads(reply), ""  # our own child's reply

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):  # already gone, or unkillable: nothing more to do
            pass


# Per thread of a Dask worker: its chunk child.
_CHILDREN = threading.local()


def _run_chunk_subprocess(chunk: _Chunk) -> _ChunkResult:
    """Run `chunk` in this thread's child interpreter (started on first use, restarted after a
    kill): samples past their limit are timed out there by SIGALRM; a chunk that overruns its own
    limit as a whole has its child killed and every row counted as 'timeout'; a child that dies
    (a crash in native code, os._exit ...) loses its rows as 'raised'."""
    child: _ChunkChild | None = getattr(_CHILDREN, "child", None)
    if child is None or not child.alive():
        child = _CHILDREN.child = _ChunkChild()
    limit = chunk.timeout * max(1, len(chunk.rows)) * 1.5 + _CHUNK_MARGIN
    out, why = child.run(chunk, limit)
    if out is not None:
        return out
    child.kill()
    _CHILDREN.child = None
    return _ChunkResult([("timeout" if why == "timeout" else "raised", None)] * len(chunk.rows))


def _child_main() -> None:
    """Entry point of a chunk child (`_ChunkChild`): run chunks read from stdin until end of file."""
    import struct

    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # the user's code must not read or write the protocol's pipes
    os.dup2(devnull, 1)
    while True:
        header = requests.read(_HEADER)
        if len(header) < _HEADER:  # the worker closed the pipe (or exited): done
            return
        chunk = pickle.loads(requests.read(struct.unpack("<Q", header)[0]))  # from our own parent
        reply = pickle.dumps(_run_chunk_inline(chunk))
        replies.write(struct.pack("<Q", len(reply)) + reply)
        replies.flush()


def _preload(source: str, sys_path: Sequence[str]) -> None:
    """Load the harness in this process before a local pool forks its workers, so that they start
    with the user's module and its imports loaded (scipy: about a second per worker otherwise,
    paid again by every worker of every run). A harness that fails to load is left to the
    workers, which report why."""
    try:
        _harness(source, sys_path)
    except Exception:  # reported by the workers, which load it again
        pass
    except SystemExit:  # the user's module called sys.exit() at import: likewise
        pass


class SamplingPool:
    """The workers of an --executor spec, kept open across several `run_rows` calls (the rounds of
    an active design reuse one pool instead of starting processes and loading the harness again).

    The executor is created on first use. For a local pool the harness is loaded in this process
    first (`_preload`), so forked workers inherit it. A pool that had to abandon a hung chunk is
    killed (`discard`) and made afresh on next use. Use as a context manager, or call `close`.
    """

    def __init__(self, executor: str = "local", max_workers: int | None = None) -> None:
        from regionx.executors import parse_executor

        self.spec = executor
        self.kind, _ = parse_executor(executor)  # ExecutorError for a bad spec, before anything starts
        self.max_workers = max_workers
        self._executor: cf.Executor | None = None

    def executor(self, source: str | None = None, sys_path: Sequence[str] = ()) -> cf.Executor:
        """The executor, created now if needed (after preloading `source` for a local pool)."""
        from regionx.executors import make_executor

        if self._executor is None:
            if self.kind == "local" and source is not None:
                _preload(source, sys_path)
            self._executor = make_executor(self.spec, max_workers=self.max_workers if self.kind == "local" else None)
        return self._executor

    def workers(self) -> int:
        """How many chunks run at once (the executor is created if needed)."""
        from regionx.executors import executor_workers

        return executor_workers(self.executor())

    def discard(self) -> None:
        """Kill the workers (some are stuck where no alarm reaches them); the next use starts new ones."""
        from regionx.executors import shutdown_executor

        if self._executor is not None:
            executor, self._executor = self._executor, None
            shutdown_executor(executor, kill=True)

    def close(self) -> None:
        """Shut the workers down."""
        from regionx.executors import shutdown_executor

        if self._executor is not None:
            executor, self._executor = self._executor, None
            shutdown_executor(executor)

    def __enter__(self) -> "SamplingPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of `parts` nearly equal chunks of range(n)."""
    parts = max(1, min(parts, n))
    bounds = [round(k * n / parts) for k in range(parts + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(parts) if bounds[k + 1] > bounds[k]]


def run_rows(source: str, rows: Sequence[tuple[Any, ...]], n_outputs: int, *, timeout: float = 10.0,
             executor: str = "local", sys_path: Sequence[str] = (),
             progress: Callable[[int, int], None] | None = None, inputs: Sequence[str] | None = None,
             outputs: Sequence[str] | None = None, recheck: int = 0,
             pool: SamplingPool | None = None) -> tuple[list[tuple[str, Any]], str | None]:
    """Run the harness `source`'s ``region`` on every row with `executor`; one (status, outputs) per row.

    Every call's outputs must be numbers; given the region's `inputs` and `outputs` names, the
    workers also check that the other inputs are left unchanged, and re-run `recheck` valid rows
    of each chunk to check determinism (see ``_rx_call_rows``; status 'violation').

    Rows are split into chunks (about four per worker) submitted as tasks; results go back in row
    order, so the outcome does not depend on the executor or the chunking. A chunk whose task
    fails (e.g. a worker process died) counts its rows as 'raised'; chunks that make no progress
    for longer than their own time limits allow are abandoned as 'timeout'. With `pool`, its
    workers are used and left open for the caller (`executor` is then ignored); else a pool is
    made for this call and closed after it. Returns (results, error) where `error` says why the
    harness could not run at all.
    """
    from regionx.executors import parse_executor

    total = len(rows)
    results: list[tuple[str, Any]] = [("raised", None)] * total
    if total == 0:
        return results, None
    own = pool is None
    if pool is None:
        kind, _ = parse_executor(executor)
        # Local: no more processes than useful chunks (small runs start few workers).
        pool = SamplingPool(executor, max_workers=max(1, total // 16) if kind == "local" else None)
    try:
        return _run_rows_in(pool, source, rows, n_outputs, timeout, sys_path, progress, inputs, outputs, recheck)
    finally:
        if own:
            pool.close()


def _run_rows_in(pool: SamplingPool, source: str, rows: Sequence[tuple[Any, ...]], n_outputs: int, timeout: float,
                 sys_path: Sequence[str], progress: Callable[[int, int], None] | None, inputs: Sequence[str] | None,
                 outputs: Sequence[str] | None, recheck: int) -> tuple[list[tuple[str, Any]], str | None]:
    """`run_rows` on the workers of `pool` (left open; discarded if a chunk had to be abandoned)."""
    total = len(rows)
    results: list[tuple[str, Any]] = [("raised", None)] * total
    executor = pool.executor(source, sys_path)
    workers = pool.workers()
    # About _PER_WORKER chunks per worker (load balance), at most _CHUNK_ROWS rows each (progress,
    # and a bounded loss if a worker dies); tiny runs use one chunk per worker.
    parts = max(workers * _PER_WORKER, -(-total // _CHUNK_ROWS)) if total >= 64 * workers else workers
    ranges = _split(total, parts)
    error: str | None = None
    task_error: str | None = None
    chunks_ok = 0
    done_rows = 0
    futures = {
        executor.submit(_run_chunk, _Chunk(source, tuple(sys_path), list(rows[a:b]), timeout, n_outputs,
                                           None if inputs is None else tuple(inputs),
                                           None if outputs is None else tuple(outputs), recheck)): (a, b)
        for a, b in ranges
    }
    pending = set(futures)
    longest = max(b - a for a, b in ranges)
    # No chunk may take longer than this (its samples' limits plus start-up); a wait this long
    # without any chunk finishing means a worker is stuck where no alarm reaches it.
    window = timeout * longest * 1.5 + _CHUNK_MARGIN + _WATCHDOG_MARGIN
    try:
        while pending:
            finished, pending = cf.wait(pending, timeout=window, return_when=cf.FIRST_COMPLETED)
            if not finished:
                for future in pending:
                    a, b = futures[future]
                    results[a:b] = [("timeout", None)] * (b - a)
                pool.discard()
                break
            for future in finished:
                a, b = futures[future]
                try:
                    out: _ChunkResult = future.result()
                except Exception as exc:  # the task itself failed (a worker process died ...): its samples are lost
                    out = _ChunkResult([("raised", None)] * (b - a))
                    task_error = task_error or f"worker task failed: {type(exc).__name__}: {exc}".strip()
                else:
                    chunks_ok += 1
                if out.error is not None:
                    error = out.error
                    out = _ChunkResult([("raised", None)] * (b - a))
                results[a:b] = out.results
                done_rows += b - a
                if progress is not None:
                    progress(done_rows, total)
    except BaseException:  # interrupted: stop the workers rather than wait for every chunk
        pool.discard()
        raise
    if task_error is not None and isinstance(executor, cf.ProcessPoolExecutor):
        pool.discard()  # a worker died: the pool is broken for later rounds, which start a new one
    if error is None and chunks_ok == 0 and task_error is not None:
        error = task_error  # no task ran at all: say why rather than report every sample as raised
    return results, error


# -- sample_region -------------------------------------------------------------------------------


def _line(region: Region) -> tuple[int, int]:
    if region.pragma is not None:
        return region.pragma.line, region.pragma.col
    return region.start_line, max(1, region.col)


def _observe(path: str, region: Region, command: str, cap: int, seed: int,
             specs: dict[str, DomainSpec]) -> tuple[list[tuple[Any, ...]], list[dx.Diagnostic], dict[str, Any]]:
    """Rows of input values the region saw in a real run of `command` (at most `cap`, reservoir-sampled)."""
    from regionx.instrument import run_instrumented

    line, col = _line(region)
    run = run_instrumented(command, {path: [region]}, mode="observe", extra={"cap": cap, "seed": seed})
    if run.diagnostics:
        return [], list(run.diagnostics), {}
    record = run.regions.get(region.id, {})
    samples = record.get("samples", [])
    info = {"observed_calls": int(record.get("calls", 0)), "observed_unconvertible": int(record.get("unconvertible", 0)),
            "observe_returncode": run.returncode}
    if not samples:
        if not run.ok:
            why = run.error or ("timed out" if run.timed_out else f"exit status {run.returncode}")
        elif info["observed_calls"] > 0:
            why = (f"the region ran {info['observed_calls']} times but its inputs were not numbers or arrays "
                   f"({info['observed_unconvertible']} not convertible)")
        else:
            why = "the run never entered the region"
        tail = run.stderr.strip().splitlines()[-1:] if run.stderr.strip() else []
        detail = f"{command!r}: {why}" + (f" ({tail[0]})" if tail and tail[0] not in why else "")
        return [], [dx.make("RX306", path, line, col, detail=detail)], info
    # The hook records numbers as floats and arrays as nested lists: restore ints (an input declared
    # integers/choice of ints, or one without a domain whose every observed value is integral, as a
    # loop count is) and arrays.
    integral_inputs = set()
    for name in region.inputs:
        spec = specs.get(name)
        if spec is not None:
            if spec.dist == "integers" or (spec.dist == "choice" and all(isinstance(v, int) for v in spec.args[0])):
                integral_inputs.add(name)
        elif all(_integral(s[name]) for s in samples):
            integral_inputs.add(name)
    rows = []
    for sample in samples:
        row = []
        for name in region.inputs:
            value = sample[name]
            if name in integral_inputs:
                value = _to_int(value)
            if isinstance(value, list) and name in specs:
                # A declared array domain: the region is fed numpy arrays, observed or drawn alike.
                try:
                    value = np.asarray(value, dtype=np.int64 if name in integral_inputs else np.float64)
                except ValueError:  # ragged: left as a list, dropped as 'shape' when flattened
                    pass
            row.append(value)
        rows.append(tuple(row))
    return rows, [], info


def _inside(spec: DomainSpec, value: Any) -> bool:
    """True if an observed `value` lies in the support of `spec` (normal: everywhere)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):  # ragged or not numbers: left to the 'shape'/'raised' checks
        return True
    if spec.dist in ("uniform", "loguniform", "integers"):
        return bool(np.all((array >= float(spec.args[0])) & (array <= float(spec.args[1]))))
    if spec.dist == "choice":
        return bool(np.all(np.isin(array, np.asarray(spec.args[0], dtype=np.float64))))
    return True


def within_domain(rows: Sequence[tuple[Any, ...]], names: Sequence[str], specs: dict[str, DomainSpec],
                  require: str | None) -> tuple[list[tuple[Any, ...]], int]:
    """The observed rows inside the declared domains (inputs without one are not constrained) that
    satisfy `require`; returns (kept rows, number left out)."""
    code = _rx_compile_require(require, names) if require else None
    namespace = _rx_require_namespace() if code is not None else None
    kept = []
    for row in rows:
        ok = all(_inside(specs[name], value) for name, value in zip(names, row) if name in specs)
        if ok and code is not None:
            try:
                ok = bool(eval(code, namespace, dict(zip(names, row))))  # validated expression
            except Exception:  # as for random draws: a predicate that fails on a row rejects it
                ok = False
        if ok:
            kept.append(row)
    return kept, len(rows) - len(kept)


def _integral(value: Any) -> bool:
    """True for a whole-number float or a (nested) list of them."""
    if isinstance(value, list):
        return all(_integral(v) for v in value)
    return isinstance(value, float) and value.is_integer()


def _to_int(value: Any) -> Any:
    if isinstance(value, list):
        return [_to_int(v) for v in value]
    return int(value) if isinstance(value, float) and value.is_integer() else value


def sample_region(text: str, path: str, region: Region, *, n: int = 10000, seed: int = 0,
                  domains: dict[str, DomainSpec] | None = None, timeout: float = 10.0, executor: str = "local",
                  observe: str | None = None, mix: float = 0.0,
                  progress: Callable[[int, int], None] | None = None, design: str = DEFAULT_DESIGN,
                  pool: "SamplingPool | None" = None, rows: Sequence[tuple[Any, ...]] | None = None,
                  time_exact: bool = True) -> tuple[StageResult, Dataset | None]:
    """Sample input/output pairs of `region` (of source `text` at `path`) into a Dataset.

    Inputs: `n` random draws from the pragma's domains (`domains` overrides them by input name),
    rejection-sampled on require=; or, with `observe` (a command line such as
    ``"python app.py args"``), the input values a real run of the program passes to the region
    (at most n), of which a fraction `mix` is replaced by random draws. Outputs: the extracted
    harness run in `executor` worker processes with a per-sample `timeout` (or in `pool`, workers
    kept open by the caller across several calls). `design` places the random draws in the box
    (DESIGNS). Deterministic for a given seed and design. The dataset is returned, not saved
    (``Dataset.save`` writes it atomically). `rows` gives the random inputs instead of drawing
    `n` (already drawn from the domain, e.g. by a round of regionx.active); `time_exact` False
    skips timing the exact code (exact_time_per_call 0: a later round times it once).

    Diagnostics: RX006 bad option, RX108 invalid require=, RX301 region cannot be extracted,
    RX302 require= too strict, RX303 an input without a domain, RX304 a --domain for a name that
    is not an input, RX305 no valid samples, RX306 the observed run failed, RX308 the region does
    not behave as analysed (the run-time checks of the module docstring).
    """
    from regionx.analysis import region_sha256
    from regionx.executors import ExecutorError, executor_workers
    from regionx.extract import Closure, extract_region

    line, col = _line(region)

    def fail(*diags: dx.Diagnostic, data: dict[str, Any] | None = None) -> tuple[StageResult, None]:
        return StageResult(status="failed", region_id=region.id, diagnostics=tuple(diags), data=data or {}), None

    if n < 1:
        return fail(dx.make("RX006", path, detail=f"--samples must be at least 1, got {n}"))
    if not (timeout > 0 and math.isfinite(timeout)):
        return fail(dx.make("RX006", path, detail=f"--timeout must be a positive number of seconds, got {timeout}"))
    if not 0.0 <= mix <= 1.0:
        return fail(dx.make("RX006", path, detail=f"--mix must be between 0 and 1, got {mix}"))
    try:
        executor_workers(executor)
    except ExecutorError as exc:
        return fail(dx.make("RX006", path, detail=str(exc)))
    try:
        check_design(design)
    except (ValueError, DesignUnavailable) as exc:
        return fail(dx.make("RX006", path, detail=str(exc)))

    extracted = extract_region(text, path, region)
    if not extracted.ok:
        return fail(*extracted.diagnostics)
    harness: str = extracted.data["harness"]

    # Domains: the pragma's, then overrides.
    overrides = dict(domains or {})
    for name in overrides:
        if name not in region.inputs:
            return fail(dx.make("RX304", path, line, col, spec=f"{name}={overrides[name].text}",
                                detail=f"{name!r} is not an input of region {region.id!r} (inputs: {', '.join(region.inputs)})"))
    specs: dict[str, DomainSpec] = {}
    for name in region.inputs:
        spec = overrides.get(name) or (region.pragma.domain(name) if region.pragma is not None else None)
        if spec is not None:
            specs[name] = spec

    if rows is not None:
        n_random, n_observed, mode = len(rows), 0, "random"
    elif observe is not None and mix < 1.0:
        n_random = int(round(n * mix))
        n_observed = n - n_random
        mode = "mixed" if n_random > 0 else "observe"
    else:
        n_random, n_observed, mode = n, 0, "random"

    require = region.pragma.require if region.pragma is not None else None
    rejected = 0
    random_rows: list[tuple[Any, ...]] = []
    if n_random > 0:
        for name in region.inputs:
            if name not in specs:
                return fail(dx.make("RX303", path, line, col, name=name, region=region.id))
        ordered = [specs[name] for name in region.inputs]
        try:
            if rows is not None:
                random_rows = list(rows)
            else:
                random_rows, rejected = draw_inputs(ordered, n_random, np.random.default_rng(seed), require, design)
        except RequireTooStrict as exc:
            return fail(dx.make("RX302", path, line, col, require=require, accepted=exc.accepted, drawn=exc.drawn))
        except ValueError as exc:
            return fail(dx.make("RX108", path, line, col, key="require", detail=str(exc)))

    data: dict[str, Any] = {"mode": mode}
    observed_rows: list[tuple[Any, ...]] = []
    outside = 0  # observed rows left out: outside the declared domain or failing require=
    if n_observed > 0:
        assert observe is not None
        observed_rows, diags, info = _observe(path, region, observe, n_observed, seed, specs)
        data.update(info)
        if diags:
            return fail(*diags, data=data)
        try:
            observed_rows, outside = within_domain(observed_rows, region.inputs, specs, require)
        except ValueError as exc:
            return fail(dx.make("RX108", path, line, col, key="require", detail=str(exc)))
        if not observed_rows and not random_rows:
            domain_text = ", ".join(f"{name}={spec.text}" for name, spec in specs.items())
            return fail(dx.make("RX305", path, line, col, detail=(
                f"all {outside} observed inputs lie outside the declared domain ({domain_text}"
                + (f", require={require!r}" if require else "") + ")")), data=data)

    rows = observed_rows + random_rows
    source_dir = os.path.dirname(os.path.abspath(path))
    results, error = run_rows(harness, rows, len(region.outputs), timeout=timeout, executor=executor,
                              sys_path=(source_dir,), progress=progress, inputs=region.inputs, outputs=region.outputs + region.scratch,
                              recheck=RECHECK_ROWS, pool=pool)
    if error is not None:
        return fail(dx.make("RX301", path, line, col, region=region.id, detail=error))
    declared = [specs[name].shape if name in specs else None for name in region.inputs]
    X, Y, in_shapes, out_shapes, dropped, kept, violation = _rx_assemble(rows, results, declared, list(region.outputs))
    dropped = {"rejected": rejected, **dropped}
    if n_observed > 0:
        dropped["outside_domain"] = outside
    data.update({"requested": n, "kept": len(kept), "dropped": dict(dropped), "observed": len(observed_rows),
                 "random": len(random_rows)})
    first_error = next((out for status, out in results if status == "raised" and isinstance(out, str)), None)
    if first_error is not None:
        data["first_error"] = first_error
    if violation is not None:  # one violation refuses the region: nothing is trained or rewritten
        return fail(dx.make("RX308", path, line, col, region=region.id, detail=violation),
                    data={**data, "violation": violation})
    if not kept:
        detail = f"all {len(rows)} samples were dropped ({', '.join(f'{k}: {v}' for k, v in dropped.items() if v)})"
        if first_error is not None:
            detail += f"; first error: {first_error}"
        return fail(dx.make("RX305", path, line, col, detail=detail), data=data)

    # The exact region's cost per call, in this process, on valid inputs.
    per_call = 0.0
    if time_exact:
        module = exec_module(harness, f"regionx_timing_{hashlib.sha256(harness.encode()).hexdigest()[:16]}",
                             "<regionx harness>", (source_dir,))
        exact = getattr(module, "_RX_EXACT", module.region)
        per_call = _rx_time_per_call(exact, [rows[i] for i in kept])
        sys.modules.pop(module.__name__, None)
    data["exact_time_per_call"] = per_call

    pragma = region.pragma
    meta = DatasetMeta(
        region_id=region.id,
        region_name=region.name,
        source_path=path,
        source_sha256=region_sha256(text, region),
        inputs=tuple(VarSpec(name, tuple(shape)) for name, shape in zip(region.inputs, in_shapes)),
        outputs=tuple(VarSpec(name, tuple(shape)) for name, shape in zip(region.outputs, out_shapes)),
        domain={name: spec.text for name, spec in specs.items()},
        seed=seed,
        requested=n,
        dropped=dict(dropped),
        exact_time_per_call=per_call,
        tolerance=pragma.tolerance if pragma is not None and pragma.tolerance is not None else DEFAULT_TOLERANCE,
        metric=pragma.metric if pragma is not None and pragma.metric is not None else DEFAULT_METRIC,
        accept=pragma.accept if pragma is not None else None,
        mode=mode,
        regionx_version=__version__,
        # what regionx.extract.region_closure gives, from this very extraction
        closure_sha256=Closure.from_json(extracted.data["closure"]).sha256,
        closure=Closure.from_json(extracted.data["closure"]).dependencies,
        require=require,
        line=region.start_line,
        col=max(1, region.col),
        design=design,
    )
    data["design"] = design
    return StageResult(status="ok", region_id=region.id, data=data), Dataset(X=X, Y=Y, meta=meta)


def reusable_dataset(data_path: str, text: str, path: str, region: Region, *, n: int, seed: int,
                     design: str) -> tuple[Dataset | None, str]:
    """The dataset saved at `data_path` when it can stand for sampling `region` again, else why not.

    Sampling is the expensive stage for a costly region, and its outcome depends only on the
    exact code behind the region, the domain, require=, the number of samples, the seed and the
    design: when none of these changed, a second ``regionx compile`` reuses the data. The code
    counts as unchanged when the region's own lines and its dependency closure hash as recorded
    (regionx.extract.source_changes: edits elsewhere in the file do not count, a changed constant
    or helper the region uses does). Returns (dataset, "") — its meta brought up to date with the
    pragma's tolerance, metric and accept=, which do not change the samples — or (None, reason).
    """
    from regionx.analysis import region_sha256
    from regionx.extract import source_changes

    if not os.path.exists(data_path):
        return None, "no saved samples"
    try:
        dataset = Dataset.load(data_path)
    except (OSError, ValueError) as exc:
        return None, f"the saved samples cannot be read ({exc})"
    meta = dataset.meta
    pragma = region.pragma
    domain = {name: spec.text for name in region.inputs
              if pragma is not None and (spec := pragma.domain(name)) is not None}
    require = pragma.require if pragma is not None else None
    differences = [
        (meta.region_id != region.id, f"they are of region {meta.region_id!r}"),
        (meta.mode != "random", f"they were {meta.mode} samples"),
        (meta.regionx_version != __version__, f"regionx {meta.regionx_version or '?'} took them"),
        (meta.requested != n, f"{meta.requested} samples were taken, {n} are asked for"),
        (meta.seed != seed, f"seed {meta.seed} was used, {seed} is asked for"),
        (meta.design != design, f"design {meta.design} was used, {design} is asked for"),
        (dict(meta.domain) != domain, "the domain changed"),
        (meta.require != require, "require= changed"),
        ([v.name for v in meta.inputs] != list(region.inputs) or [v.name for v in meta.outputs] != list(region.outputs),
         "the region's inputs or outputs changed"),
        (not meta.closure_sha256, "they predate dependency hashing"),
    ]
    for differs, why in differences:
        if differs:
            return None, why
    changes = source_changes(text, path, region, meta.source_sha256, meta.closure_sha256, meta.closure)
    if changes:
        return None, "; ".join(changes)
    updated = replace(
        meta,
        source_path=path,
        source_sha256=region_sha256(text, region),  # the same hash; kept explicit for moved files
        tolerance=pragma.tolerance if pragma is not None and pragma.tolerance is not None else DEFAULT_TOLERANCE,
        metric=pragma.metric if pragma is not None and pragma.metric is not None else DEFAULT_METRIC,
        accept=pragma.accept if pragma is not None else None,
        line=region.start_line,
        col=max(1, region.col),
    )
    return Dataset(X=dataset.X, Y=dataset.Y, meta=updated), ""


def dataset_info(path: str) -> dict[str, Any]:
    """A summary of a saved dataset for ``regionx sample --info``: sizes, columns and their ranges.

    Raises OSError/KeyError/ValueError for a missing or invalid file.
    """
    dataset = Dataset.load(path)
    meta = dataset.meta
    X, Y = dataset.X, dataset.Y
    in_cols = [c for v in meta.inputs for c in v.columns()]
    out_cols = [c for v in meta.outputs for c in v.columns()]
    if X.shape[1] != len(in_cols) or Y.shape[1] != len(out_cols) or X.shape[0] != Y.shape[0]:
        raise ValueError(f"arrays X{X.shape} / Y{Y.shape} do not match the recorded interface")

    def columns(names: list[str], M: np.ndarray) -> list[dict[str, Any]]:
        out = []
        for k, name in enumerate(names):
            col = M[:, k]
            empty = col.size == 0
            out.append({"name": name, "min": None if empty else float(col.min()), "max": None if empty else float(col.max()),
                        "mean": None if empty else float(col.mean()), "std": None if empty else float(col.std())})
        return out

    return {
        "path": path,
        "rows": int(X.shape[0]),
        "region_id": meta.region_id,
        "region_name": meta.region_name,
        "source_path": meta.source_path,
        "mode": meta.mode,
        "seed": meta.seed,
        "requested": meta.requested,
        "dropped": dict(meta.dropped),
        "exact_time_per_call": meta.exact_time_per_call,
        "inputs": columns(in_cols, X),
        "outputs": columns(out_cols, Y),
        "meta": meta.to_json(),
    }
