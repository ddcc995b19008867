"""The harness runtime: what every harness carries, and how harnesses are loaded.

regionx.extract pastes `portable_source()` into every harness: the portable sampler and runner
(regionx.sampling.draw, regionx.sampling.calls) and the harness's own command line, `_rx_main`.
So ``python harness.py --samples N --seed S`` and ``regionx sample`` draw, run, check and
assemble samples with the same code and give identical datasets for the same seed.
`exec_module` runs a harness (or any generated source) as a fresh module.

Of regionx this module imports only the two portable modules, so regionx.extract and the
sampling stages both use it without importing each other.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Sequence
from typing import Any

from regionx.sampling.calls import (
    _rx_assemble,
    _rx_call_rows,
    _rx_changed,
    _rx_finite,
    _rx_flatten,
    _rx_not_number,
    _rx_outputs,
    _rx_time_per_call,
    _RxTimeout,
    _RxViolation,
)
from regionx.sampling.draw import (
    _RX_DEFAULT_DESIGN,
    _RX_REQUIRE_BUILTINS,
    _RX_REQUIRE_NODES,
    _rx_column,
    _rx_compile_require,
    _rx_draw_inputs,
    _rx_from_unit,
    _rx_require_namespace,
    _rx_spec,
    _rx_unit_sampler,
)


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
    # One chunk, as a sampling worker runs it: the same checks and re-runs (regionx.sampling.calls.RECHECK_ROWS).
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

# The portable constants named in PORTABLE, written into the harness as literals.
_CONSTANTS: dict[str, Any] = {
    "_RX_DEFAULT_DESIGN": _RX_DEFAULT_DESIGN,
    "_RX_REQUIRE_NODES": _RX_REQUIRE_NODES,
    "_RX_REQUIRE_BUILTINS": _RX_REQUIRE_BUILTINS,
}


def portable_source() -> str:
    """Source text of the portable sampler/runner, for regionx.extract to paste into a harness."""
    parts = []
    for obj in PORTABLE:
        if isinstance(obj, str):
            parts.append(f"{obj} = {_CONSTANTS[obj]!r}\n")
        else:
            parts.append(inspect.getsource(obj).replace("  # type: ignore[no-untyped-def]", ""))
    return "\n\n".join(parts)


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

