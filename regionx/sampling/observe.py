"""Observe mode: the input values a real run of the user's program passes to a region
(regionx.instrument), and which of them lie in the region's declared domain.

The declared domain is where the surrogate is trained and trusted, so observed inputs outside it
(or failing require=) are left out and counted as ``outside_domain``: such calls stay with the
exact code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from regionx import diagnostics as dx
from regionx.sampling.draw import _rx_compile_require, _rx_require_namespace
from regionx.types import DomainSpec, Region


def observed_rows(path: str, region: Region, command: str, cap: int, seed: int, specs: dict[str, DomainSpec],
                  position: tuple[int, int]) -> tuple[list[tuple[Any, ...]], list[dx.Diagnostic], dict[str, Any]]:
    """Rows of input values the region saw in a real run of `command` (at most `cap`, reservoir-sampled).

    Returns (rows, diagnostics, info); a failed run is RX306 at `position` (line, col), and
    `info` counts the calls observed."""
    from regionx.instrument import run_instrumented

    line, col = position
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


def _in_support(spec: DomainSpec, value: Any) -> bool:
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
        ok = all(_in_support(specs[name], value) for name, value in zip(names, row) if name in specs)
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

