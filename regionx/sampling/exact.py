"""The exact region in this process: loaded from its extracted harness, and timed on a
dataset's rows turned back into call arguments (what training and compile compare a surrogate
with)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from regionx.sampling.calls import _rx_time_per_call
from regionx.sampling.harness import exec_module
from regionx.types import DatasetMeta, Region, VarSpec


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
    source = extracted.payload.harness
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

