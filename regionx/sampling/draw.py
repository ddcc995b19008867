"""Input rows drawn from a region's declared domain: distributions, designs and require=.

The ``_rx_*`` functions and ``_RX_*`` constants are portable (regionx.sampling.harness copies
them into every harness), so ``python harness.py`` draws what ``regionx sample`` does for the
same seed; `draw_inputs` and `check_design` wrap them for regionx's own callers.

Designs (DESIGNS, ``--design``): ``uniform`` draws every value independently; ``sobol`` (a
scrambled Sobol' sequence) and ``lhs`` (a Latin hypercube) place the rows as the points of a
space-filling design in the unit cube, mapped through each distribution's inverse CDF. Draws
failing require= are rejected; fewer than MIN_ACCEPT_RATE accepted is an error (RX302).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from regionx.types import DomainSpec

# When fewer than this fraction of draws satisfy require=, sampling stops with RX302.
MIN_ACCEPT_RATE = 0.01
# Draws made before the acceptance rate is judged (so a few unlucky draws do not stop a run).
MIN_JUDGED_DRAWS = 1000
# How random inputs are placed in the declared box (--design): independent draws ("uniform"), or
# the points of a space-filling design ("sobol": scrambled Sobol', "lhs": Latin hypercube).
DESIGNS = ("uniform", "sobol", "lhs")
# The default design, chosen by measurement (benchmarks/sampling.py, benchmarks/results/sampling.md).
# Harnesses carry it too (portable part), so `python harness.py` draws what `regionx sample` does.
_RX_DEFAULT_DESIGN = "uniform"
DEFAULT_DESIGN = _RX_DEFAULT_DESIGN


# ================================================================================================
# Portable part: copied into every harness (regionx.sampling.harness). Keep it self-contained.
# ================================================================================================


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


# ================================================================================================
# regionx's own callers
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

