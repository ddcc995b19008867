"""The surrogate compiler: a trained dense network -> a generated numpy-only Python module.

`compile_model` writes ``surrogate_<name>.py`` (and ``weights.npz``) into a directory. The
generated module needs numpy only (never TensorFlow/Keras) and exposes exactly the API the
rewriter relies on::

    INPUTS, INPUT_SHAPES, OUTPUTS, OUTPUT_SHAPES   # names and array shapes (() = scalar)
    LOWER, UPPER                                   # (d_in,) trained domain box, flattened columns
    predict(X) -> (n, d_out) float64               # batch path, numpy matmuls
    predict_one(<inputs in INPUTS order>)          # one call: a value, or a tuple in OUTPUTS order
    in_domain(X) -> (n,) bool
    in_domain_one(<inputs>) -> bool

Input and output normalisation are folded into the first and last layers, so the module is a
plain chain of affine maps and activations.

predict_one has two implementations, chosen by network size (multiply-adds, `use_scalar_path`):
small networks get straight-line Python float arithmetic with the weights as literals
(``math.tanh``, ``v if v > 0.0 else 0.0``), which avoids numpy's per-call overhead of roughly
1 us per array operation; larger ones use numpy on a 1-row vector. The threshold was measured
with ``python -m regionx.compile --measure`` (see `measure_paths`); the numbers are next to
`SCALAR_BASE_MACS`.
"""

from __future__ import annotations

import keyword
import math
import os
import tempfile
from typing import Any, Sequence

import numpy as np

from regionx.fsutil import atomic_write_bytes, atomic_write_text

from regionx.types import VarSpec
from regionx.timing import call_args, time_per_call, time_per_element, time_per_row  # noqa: F401 - re-exported

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
# Output transforms a network may have been trained through: name -> inverse applied by the module.
# "asinh": trained on t = asinh(y / s), so y = s * sinh(t) (regionx.train uses it for metric "rel").
OUTPUT_TRANSFORMS = ("asinh",)

# Cost model for choosing predict_one's implementation, from `python -m regionx.compile --measure`
# on a 2-core x86 VM (Python 3, numpy 2.4): the straight-line scalar path costs ~25-30 ns per
# multiply-add (3x8x1: 0.9 us, 3x11x8x5x1: 4.3 us, 3x32x32x1: 27.6 us), the numpy path
# ~2.5 us + ~1.5 us per layer almost regardless of width (3x8x1: 4.1 us, 3x64x64x1: 6.1 us).
# They cross at roughly 100 + 60 * layers multiply-adds.
SCALAR_BASE_MACS = 100
SCALAR_MACS_PER_LAYER = 60


def use_scalar_path(layers: Sequence[tuple[np.ndarray, np.ndarray, str]]) -> bool:
    """True when straight-line float code is expected to beat numpy for one call (cost model above)."""
    return network_macs(layers) <= SCALAR_BASE_MACS + SCALAR_MACS_PER_LAYER * len(layers)


# Keras spells some activations differently; everything maps onto ACTIVATIONS.
_ACTIVATION_ALIASES = {
    "tanh": "tanh",
    "relu": "relu",
    "sigmoid": "sigmoid",
    "linear": "linear",
    "identity": "linear",
    "none": "linear",
}


def normalize_activation(name: str | None) -> str:
    """Map an activation name (Keras or ours) onto one of ACTIVATIONS; ValueError otherwise."""
    key = (name or "linear").lower()
    if key not in _ACTIVATION_ALIASES:
        raise ValueError(f"unsupported activation {name!r}; supported: {', '.join(ACTIVATIONS)}")
    return _ACTIVATION_ALIASES[key]


def keras_layers(model: Any) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(W, b, activation) for every Dense layer of a Keras model, in order, as float64 arrays.

    Non-Dense layers without weights (InputLayer, Dropout, ...) are skipped; any other layer with
    weights is rejected with ValueError, since the compiler only knows dense chains.
    """
    layers: list[tuple[np.ndarray, np.ndarray, str]] = []
    for layer in model.layers:
        weights = layer.get_weights()
        if type(layer).__name__ != "Dense":
            if weights:
                raise ValueError(f"cannot compile layer {layer.name!r} of type {type(layer).__name__}")
            continue
        act = getattr(layer, "activation", None)
        act_name = getattr(act, "__name__", None) if act is not None else "linear"
        W = np.asarray(weights[0], dtype=np.float64)
        b = np.asarray(weights[1], dtype=np.float64) if len(weights) > 1 else np.zeros(W.shape[1])
        layers.append((W, b, normalize_activation(act_name)))
    if not layers:
        raise ValueError("model has no Dense layers")
    return layers


def fold_normalisation(
    layers: Sequence[tuple[np.ndarray, np.ndarray, str]],
    x_mean: np.ndarray,
    x_scale: np.ndarray,
    y_mean: np.ndarray,
    y_scale: np.ndarray,
) -> tuple[list[tuple[np.ndarray, np.ndarray, str]], np.ndarray | None, np.ndarray | None]:
    """Fold ``x_n = (x - x_mean) / x_scale`` into the first layer and ``y = y_n * y_scale + y_mean``
    into the last one (when it is linear).

    Returns (layers, out_scale, out_shift): the last two are None when folded, else the affine map
    still to apply after a non-linear output activation.
    """
    x_mean = np.asarray(x_mean, dtype=np.float64).ravel()
    x_scale = np.asarray(x_scale, dtype=np.float64).ravel()
    y_mean = np.asarray(y_mean, dtype=np.float64).ravel()
    y_scale = np.asarray(y_scale, dtype=np.float64).ravel()
    out = [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64).ravel(), normalize_activation(a))
           for W, b, a in layers]
    W0, b0, a0 = out[0]
    # z = ((x - m) / s) @ W + b = x @ (W / s[:, None]) + (b - (m / s) @ W)
    out[0] = (W0 / x_scale[:, None], b0 - (x_mean / x_scale) @ W0, a0)
    WL, bL, aL = out[-1]
    if aL == "linear":
        out[-1] = (WL * y_scale[None, :], bL * y_scale + y_mean, aL)
        return out, None, None
    return out, y_scale, y_mean


def _apply_np(h: np.ndarray, act: str) -> np.ndarray:
    if act == "tanh":
        return np.tanh(h)
    if act == "relu":
        return np.maximum(h, 0.0)
    if act == "sigmoid":
        return 0.5 * np.tanh(0.5 * h) + 0.5
    return h


def forward(layers: Sequence[tuple[np.ndarray, np.ndarray, str]], X: np.ndarray) -> np.ndarray:
    """Reference forward pass of a dense chain in float64 (used by tests and training)."""
    h = np.asarray(X, dtype=np.float64)
    for W, b, act in layers:
        h = _apply_np(h @ W + b, act)
    return h


def _lit(v: float) -> str:
    """A float literal that round-trips exactly."""
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"non-finite weight {f!r}")
    return repr(f)


def _affine_expr(w_col: np.ndarray, names: Sequence[str], bias: float) -> str:
    """``b + w0*x0 - w1*x1 ...`` as Python source (no parentheses needed: literals are positive)."""
    parts = [_lit(bias)]
    for w, name in zip(w_col, names):
        w = float(w)
        if w == 0.0:
            continue
        parts.append(f"{'+' if w > 0 else '-'} {_lit(abs(w))}*{name}")
    return " ".join(parts)


def _scalar_act(expr: str, act: str, target: str) -> list[str]:
    if act == "tanh":
        return [f"{target} = _tanh({expr})"]
    if act == "relu":
        return [f"{target} = {expr}", f"if {target} < 0.0: {target} = 0.0"]
    if act == "sigmoid":
        # 0.5*tanh(v/2)+0.5 == 1/(1+exp(-v)) without exp overflow
        return [f"{target} = 0.5*_tanh(0.5*({expr})) + 0.5"]
    return [f"{target} = {expr}"]


def _array_literal(a: np.ndarray) -> str:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        return "[" + ", ".join(_lit(v) for v in a) + "]"
    return "[" + ",\n    ".join(_array_literal(row) for row in a) + "]"


def _predict_one_params(inputs: Sequence[VarSpec]) -> list[str]:
    """Parameter names of the generated predict_one/in_domain_one/guard_one, one per input: the input's
    name where it is a safe identifier (not a keyword, no leading underscore), else ``in<i>``, made unique."""
    names: list[str] = []
    for i, v in enumerate(inputs):
        ok = v.name.isidentifier() and not keyword.iskeyword(v.name) and not v.name.startswith("_")
        name = v.name if ok else f"in{i}"
        while name in names:
            name = f"{name}_{i}"
        names.append(name)
    return names


def network_macs(layers: Sequence[tuple[np.ndarray, np.ndarray, str]]) -> int:
    """Multiply-adds of one forward pass."""
    return int(sum(np.asarray(W).size for W, _b, _a in layers))


# Rows per chunk of predict(): every matmul of a chunk stays at or below 2**18 multiply-adds,
# OpenBLAS's threshold for running a GEMM on one thread (interface/gemm.c: SMP_THRESHOLD_MIN *
# GEMM_MULTITHREAD_THRESHOLD). Above it OpenBLAS wakes its threads, which on a loaded 2-core
# machine cost 5-20x (benchmarks/results/batch_path.md); below it the hidden activations of a
# chunk also stay in L2 (16,384 rows of 8 float32 units: 512 KB). Each chunk costs ~15 us of
# numpy calls, so small networks take as many rows as the threshold allows (cubic's 8x5 on 20,000
# rows: 10.3 ns a row in 6,553-row chunks, 13.3 in 4,096-row chunks).
CHUNK_WORK = 2 ** 18
CHUNK_MIN, CHUNK_MAX = 64, 16384


def chunk_rows(layers: Sequence[tuple[np.ndarray, np.ndarray, str]]) -> int:
    """Rows per chunk of the generated predict() for these layers (see CHUNK_WORK)."""
    widest = max(int(np.asarray(W).shape[0]) * int(np.asarray(W).shape[1]) for W, _b, _a in layers)
    return int(min(CHUNK_MAX, max(CHUNK_MIN, CHUNK_WORK // max(widest, 1))))


def _np_act_lines(var: str, act: str, indent: str) -> list[str]:
    """An activation applied in place to the array `var` (no temporaries)."""
    if act == "tanh":
        return [f"{indent}np.tanh({var}, out={var})"]
    if act == "relu":
        return [f"{indent}np.maximum({var}, 0.0, out={var})"]
    if act == "sigmoid":
        # 0.5*tanh(v/2)+0.5 == 1/(1+exp(-v)) without exp overflow
        return [f"{indent}{var} *= 0.5", f"{indent}np.tanh({var}, out={var})", f"{indent}{var} *= 0.5",
                f"{indent}{var} += 0.5"]
    return []


def batch_path_lines(layers: Sequence[tuple[np.ndarray, np.ndarray, str]], *, d_in: int, d_out: int,
                     lower: Sequence[float], upper: Sequence[float], out_scale: np.ndarray | None,
                     out_shift: np.ndarray | None, out_transform: tuple[str, float] | None,
                     batch_dtype: str, log_features: bool = False) -> list[str]:
    """Source lines of the generated module's weights in batch form and its predict(X, out=None)
    (`log_features`: X goes through ``_log_features`` first, `log_feature_lines`; `lower`/`upper`
    are then the box in those features).

    predict works feature-major: a chunk of rows is a (features, rows) array, so every bias add
    and activation runs along rows (long, vectorised inner loops; row-major it would run along 5
    or 8 features), and the column-major input matrix a batched loop builds is read without a
    transpose copy. Chunks of `chunk_rows` rows go through one scratch buffer the module keeps
    between calls, every matmul and activation writing into it (out=). With batch_dtype
    "float32" the chunk is centred on the trained box in float64 first (float32 then keeps the
    inputs' precision relative to the box, not to their offset from 0) and every layer runs in
    float32; the last layer's bias, the output scale and transform are applied in float64.
    """
    f32 = batch_dtype == "float32"
    n_layers = len(layers)
    widths = [int(W.shape[1]) for W, _b, _a in layers]
    dt = "np.float32" if f32 else "np.float64"
    L: list[str] = [f"CHUNK = {chunk_rows(layers)}  # rows per chunk: every matmul stays on one BLAS thread",
                    "PREDICT_INTO = True  # predict(X, out=buffer) fills a caller's (n, d_out) float64 buffer"]
    if f32:
        center = 0.5 * (np.asarray(lower, dtype=np.float64) + np.asarray(upper, dtype=np.float64))
        L.append(f"_CENTER = np.array({_array_literal(center)}, dtype=np.float64).reshape({d_in}, 1)")
    for i in range(n_layers):
        L.append(f"_W{i}b = np.ascontiguousarray(_W{i}.T, dtype={dt})")
        # the first layer takes centred inputs (float32 path); the last layer's bias is float64
        bias = "(_B0 + _CENTER[:, 0] @ _W0)" if f32 and i == 0 else f"_B{i}"
        L.append(f"_B{i}b = {bias}.astype({dt if i < n_layers - 1 else 'np.float64'}).reshape(-1, 1)")
    L += ["_SPARE = []  # the scratch buffer predict keeps between calls (fresh memory page-faults)",
          "", "", "def predict(X, out=None):",
          '    """(n, d_in) array of flattened inputs -> (n, d_out) float64 predictions (into `out`',
          '    when given), in chunks of CHUNK rows through preallocated buffers."""',
          "    X = np.asarray(X, dtype=np.float64)",
          "    if X.ndim == 1:",
          f"        X = X.reshape(-1, {d_in})",
          *(["    X = _log_features(X)"] if log_features else []),
          "    n = X.shape[0]",
          "    if out is None:",
          f"        out = np.empty((n, {d_out}), dtype=np.float64)",
          "    XT = X.T",
          "    m = min(n, CHUNK)"]
    # one scratch buffer for every layer's chunk, kept for the next call (regionx/runtime.py,
    # take_buffer: a fresh one costs page faults; pop is one step, so threads never share one)
    total = (d_in if f32 else 0) + sum(widths)
    L += ["    try:",
          "        scratch = _SPARE.pop()",
          "    except IndexError:",
          f"        scratch = np.empty(0, dtype={dt})",
          f"    if scratch.size < {total} * m:",
          f"        scratch = np.empty({total} * m, dtype={dt})"]
    start = 0
    if f32:
        L.append(f"    x = scratch[:{d_in} * m]")
        start = d_in
    bufs = [f"h{i}" for i in range(n_layers)]
    for i, w in enumerate(widths):
        L.append(f"    {bufs[i]} = scratch[{start} * m:{start + w} * m]")
        start += w
    L += ["    for s in range(0, n, CHUNK):",
          "        e = min(s + CHUNK, n)",
          "        k = e - s"]
    if f32:
        L.append(f"        h = np.subtract(XT[:, s:e], _CENTER, out=x[:{d_in} * k].reshape({d_in}, k))")
    else:
        L.append("        h = XT[:, s:e]")
    for i, (_W, _b, act) in enumerate(layers):
        last = i == n_layers - 1
        L.append(f"        {bufs[i]}k = np.matmul(_W{i}b, h, out={bufs[i]}[:{widths[i]} * k].reshape({widths[i]}, k))")
        if last:
            L.append(f"        np.add({bufs[i]}k, _B{i}b, out=out[s:e].T)")
            L.append("        h = out[s:e]")
        else:
            L.append(f"        {bufs[i]}k += _B{i}b")
            L.extend(_np_act_lines(f"{bufs[i]}k", act, "        "))
            L.append(f"        h = {bufs[i]}k")
    if layers[-1][2] != "linear":
        L.extend(_np_act_lines("h", layers[-1][2], "        "))
    if out_scale is not None:
        L += ["        h *= _OUT_SCALE", "        h += _OUT_SHIFT"]
    if out_transform is not None:
        L += ["        np.sinh(h, out=h)", f"        h *= {_lit(out_transform[1])}"]
    L += ["    _SPARE[:] = [scratch]", "    return out", "", ""]
    return L


def _atomic_savez(path: str, arrays: dict[str, np.ndarray]) -> None:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(path, buf.getvalue())


def module_name(region_name: str) -> str:
    """File name of the generated module for a region name (filename-safe)."""
    safe = "".join(ch if (ch.isalnum() or ch == "_") else "_" for ch in region_name).strip("_") or "region"
    return f"surrogate_{safe}.py"


def header_lines(layers: Sequence[tuple[np.ndarray, np.ndarray, str]], *, region_name: str,
                 inputs: Sequence[VarSpec], outputs: Sequence[VarSpec], lower: Sequence[float],
                 upper: Sequence[float], scalar_path: bool, version: str) -> list[str]:
    """Source lines of the generated module's docstring, imports and interface constants
    (REGION, INPUTS ... UPPER), ending with the scalar path's ``_tanh``."""
    d_in = sum(v.size for v in inputs)
    d_out = sum(v.size for v in outputs)
    hidden = [int(W.shape[1]) for W, _b, _a in layers[:-1]]
    acts = [a for _W, _b, a in layers]
    path_kind = "scalar" if scalar_path else "numpy"
    return [
        f'"""Surrogate of region {region_name!r}, generated by regionx {version}. Needs numpy only.',
        "",
        f"Network: {d_in} -> {' -> '.join(str(h) for h in hidden) or '(no hidden layer)'} -> {d_out};",
        f"activations {', '.join(acts)}; predict_one path: {path_kind}.",
        "Do not edit: regenerate with `regionx train`.",
        '"""',
        "",
        "import math",
        "import os",
        "",
        "import numpy as np",
        "",
        f"REGION = {region_name!r}",
        f"INPUTS = {tuple(v.name for v in inputs)!r}",
        f"INPUT_SHAPES = {tuple(tuple(int(s) for s in v.shape) for v in inputs)!r}",
        f"OUTPUTS = {tuple(v.name for v in outputs)!r}",
        f"OUTPUT_SHAPES = {tuple(tuple(int(s) for s in v.shape) for v in outputs)!r}",
        f"HIDDEN = {tuple(hidden)!r}",
        f"ACTIVATIONS = {tuple(acts)!r}",
        f"PREDICT_ONE_PATH = {path_kind!r}",
        f"LOWER = np.array({_array_literal(np.asarray(lower))}, dtype=np.float64)",
        f"UPPER = np.array({_array_literal(np.asarray(upper))}, dtype=np.float64)",
        "",
        "_tanh = math.tanh",
    ]


def weight_lines(layers: Sequence[tuple[np.ndarray, np.ndarray, str]], *, inline: bool,
                 out_scale: np.ndarray | None, out_shift: np.ndarray | None,
                 out_transform: tuple[str, float] | None) -> list[str]:
    """Source lines of the generated module's weights ``_W<i>``/``_B<i>`` (literals when `inline`,
    else loaded from the weights.npz beside the module) and its output map: OUTPUT_TRANSFORM
    (ValueError for a transform not in OUTPUT_TRANSFORMS) and ``_OUT_SCALE``/``_OUT_SHIFT``."""
    L: list[str] = []
    if inline:
        for i, (W, b, _a) in enumerate(layers):
            L.append(f"_W{i} = np.array({_array_literal(W)}, dtype=np.float64).reshape({W.shape[0]}, {W.shape[1]})")
            L.append(f"_B{i} = np.array({_array_literal(b)}, dtype=np.float64)")
    else:
        L.append("_HERE = os.path.dirname(os.path.abspath(__file__))")
        L.append("with np.load(os.path.join(_HERE, 'weights.npz')) as _data:")
        for i in range(len(layers)):
            L.append(f"    _W{i} = np.ascontiguousarray(_data['W{i}'], dtype=np.float64)")
            L.append(f"    _B{i} = np.ascontiguousarray(_data['b{i}'], dtype=np.float64)")
    if out_transform is not None:
        kind, s_val = out_transform
        if kind not in OUTPUT_TRANSFORMS:
            raise ValueError(f"unknown output transform {kind!r}")
        L.append(f"OUTPUT_TRANSFORM = ({kind!r}, {_lit(s_val)})")
        L.append("_sinh = math.sinh")
    else:
        L.append("OUTPUT_TRANSFORM = None")
    if out_scale is not None:
        L.append(f"_OUT_SCALE = np.array({_array_literal(np.asarray(out_scale))}, dtype=np.float64)")
        L.append(f"_OUT_SHIFT = np.array({_array_literal(np.asarray(out_shift))}, dtype=np.float64)")
    L += ["", ""]
    return L


def _input_columns(params: Sequence[str], inputs: Sequence[VarSpec]) -> tuple[list[str], list[str]]:
    """(one name per flattened input column, the statements binding the array inputs' columns) for
    the scalar predict_one: a scalar input is its parameter, an array input's columns ``_x<k>``."""
    col_names: list[str] = []
    unpack: list[str] = []
    for p, v in zip(params, inputs):
        if not v.shape:
            col_names.append(p)
        else:
            cols = [f"_x{len(col_names) + k}" for k in range(v.size)]
            col_names.extend(cols)
            unpack.append(f"    {', '.join(cols)}{',' if len(cols) == 1 else ''} = np.asarray({p}, dtype=np.float64).ravel().tolist()")
    return col_names, unpack


def _return_outputs(values: Sequence[str], outputs: Sequence[VarSpec]) -> list[str]:
    """Return statement packing flat output expressions into OUTPUTS order and shapes."""
    items: list[str] = []
    k = 0
    for v in outputs:
        if not v.shape:
            items.append(values[k])
        else:
            items.append(f"np.array([{', '.join(values[k:k + v.size])}]).reshape({tuple(v.shape)!r})")
        k += v.size
    if len(items) == 1:
        return [f"    return {items[0]}"]
    return [f"    return ({', '.join(items)})"]


def predict_one_scalar_lines(layers: Sequence[tuple[np.ndarray, np.ndarray, str]], *, params: Sequence[str],
                             inputs: Sequence[VarSpec], outputs: Sequence[VarSpec], out_scale: np.ndarray | None,
                             out_shift: np.ndarray | None, out_transform: tuple[str, float] | None) -> list[str]:
    """Body of predict_one as straight-line float arithmetic with the weights as literals."""
    d_out = sum(v.size for v in outputs)
    names, L = _input_columns(params, inputs)
    n_layers = len(layers)
    for i, (W, b, act) in enumerate(layers):
        last = i == n_layers - 1
        new = [f"_y{j}" if last else f"_h{i}_{j}" for j in range(W.shape[1])]
        for j in range(W.shape[1]):
            for stmt in _scalar_act(_affine_expr(W[:, j], names, float(b[j])), act, new[j]):
                L.append("    " + stmt)
        names = new
    if out_scale is not None and out_shift is not None:
        for j in range(d_out):
            L.append(f"    {names[j]} = {names[j]}*{_lit(out_scale[j])} + {_lit(out_shift[j])}")
    if out_transform is not None:
        for j in range(d_out):
            L.append(f"    {names[j]} = {_lit(out_transform[1])}*_sinh({names[j]})")
    L.extend(_return_outputs(names, outputs))
    return L


def predict_one_numpy_lines(layers: Sequence[tuple[np.ndarray, np.ndarray, str]], *, params: Sequence[str],
                            inputs: Sequence[VarSpec], outputs: Sequence[VarSpec], out_scale: np.ndarray | None,
                            out_transform: tuple[str, float] | None) -> list[str]:
    """Body of predict_one as numpy operations on a 1-row vector (the module's ``_W<i>``/``_B<i>``)."""
    d_out = sum(v.size for v in outputs)
    sig = ", ".join(params)
    L: list[str] = []
    if all(not v.shape for v in inputs):
        L.append(f"    h = np.array(({sig}{',' if len(params) == 1 else ''}), dtype=np.float64)")
    else:
        flat_parts = [f"np.ravel({p})" if v.shape else f"[{p}]" for p, v in zip(params, inputs)]
        L.append(f"    h = np.concatenate(({', '.join(flat_parts)},)).astype(np.float64)")
    for i, (_W, _b, act) in enumerate(layers):
        L.append(f"    h = h @ _W{i}")
        L.append(f"    h += _B{i}")
        L.extend(_np_act_lines("h", act, "    "))
    if out_scale is not None:
        L.append("    h = h * _OUT_SCALE + _OUT_SHIFT")
    if out_transform is not None:
        L.append(f"    h = {_lit(out_transform[1])} * np.sinh(h)")
    if all(not v.shape for v in outputs):
        if d_out == 1:
            L.append("    return float(h[0])")
        else:
            L.append("    return tuple(h.tolist())")
    else:
        L.append("    _y = h.tolist()")
        L.extend(_return_outputs([f"_y[{k}]" for k in range(d_out)], outputs))
    return L


def input_features(X: np.ndarray, log_cols: Sequence[int]) -> np.ndarray:
    """X with its `log_cols` columns replaced by their natural log (a copy; X itself when none):
    what a network with log columns takes (regionx.train.data.log_columns; the generated module's
    ``_log_features`` does the same)."""
    if not log_cols:
        return X
    out = np.array(X, dtype=np.float64)
    cols = list(log_cols)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, cols] = np.log(out[:, cols])
    return out


def log_feature_lines(log_cols: Sequence[int]) -> list[str]:
    """Source lines of the generated module's LOG_COLUMNS and ``_log_features(X)`` (none without
    log columns, so that other modules' text does not change)."""
    if not log_cols:
        return []
    return [f"LOG_COLUMNS = {tuple(int(c) for c in log_cols)!r}  # inputs the network takes as their log",
            "", "",
            "def _log_features(X):",
            '    """X with the LOG_COLUMNS columns replaced by their natural log (a copy)."""',
            "    X = np.array(X, dtype=np.float64)",
            "    cols = list(LOG_COLUMNS)",
            "    with np.errstate(divide='ignore', invalid='ignore'):",
            "        X[:, cols] = np.log(X[:, cols])",
            "    return X",
            "", ""]


def _log_params(params: Sequence[str], inputs: Sequence[VarSpec], log_cols: Sequence[int]) -> list[tuple[str, bool]]:
    """(predict_one parameter, is an array) for the inputs whose columns are all log columns;
    ValueError for an input only some of whose columns are."""
    out: list[tuple[str, bool]] = []
    k = 0
    for p, v in zip(params, inputs):
        cols = set(range(k, k + v.size))
        taken = cols & set(log_cols)
        if taken and taken != cols:
            raise ValueError(f"input {v.name!r}: log columns must cover all its columns or none")
        if taken:
            out.append((p, bool(v.shape)))
        k += v.size
    return out


def predict_one_lines(layers: Sequence[tuple[np.ndarray, np.ndarray, str]], *, params: Sequence[str],
                      inputs: Sequence[VarSpec], outputs: Sequence[VarSpec], scalar_path: bool,
                      out_scale: np.ndarray | None, out_shift: np.ndarray | None,
                      out_transform: tuple[str, float] | None,
                      log_params: Sequence[tuple[str, bool]] = ()) -> list[str]:
    """Source lines of the generated module's predict_one(<params>), by the scalar or the numpy
    path; `log_params` (name, is an array) are rebound to their natural log first."""
    L = [f"def predict_one({', '.join(params)}):",
         '    """One call with inputs in INPUTS order: the output, or a tuple in OUTPUTS order."""']
    L += [f"    {p} = np.log(np.asarray({p}, dtype=np.float64))" if array else f"    {p} = math.log({p})"
          for p, array in log_params]
    if scalar_path:
        L += predict_one_scalar_lines(layers, params=params, inputs=inputs, outputs=outputs, out_scale=out_scale,
                                      out_shift=out_shift, out_transform=out_transform)
    else:
        L += predict_one_numpy_lines(layers, params=params, inputs=inputs, outputs=outputs, out_scale=out_scale,
                                     out_transform=out_transform)
    L += ["", ""]
    return L


def in_domain_lines(*, params: Sequence[str], inputs: Sequence[VarSpec], lower: Sequence[float],
                    upper: Sequence[float]) -> list[str]:
    """Source lines of the generated module's in_domain(X) and in_domain_one(<params>); the last
    line is empty, so the joined module ends with a newline."""
    d_in = sum(v.size for v in inputs)
    L = ["def in_domain(X):",
         '    """(n, d_in) -> (n,) bool: every column within [LOWER, UPPER] (NaN is outside)."""',
         "    X = np.asarray(X, dtype=np.float64)",
         "    if X.ndim == 1:",
         f"        X = X.reshape(-1, {d_in})",
         "    return np.all((X >= LOWER) & (X <= UPPER), axis=1)",
         "",
         "",
         f"def in_domain_one({', '.join(params)}):",
         '    """True when one call\'s inputs lie in the trained domain box."""']
    if all(not v.shape for v in inputs):
        conds = [f"{_lit(lo)} <= {p} <= {_lit(hi)}" for p, lo, hi in zip(params, lower, upper)]
        L.append(f"    return bool({' and '.join(conds)})")
    else:
        k = 0
        for p, v in zip(params, inputs):
            if not v.shape:
                L.append(f"    if not ({_lit(lower[k])} <= {p} <= {_lit(upper[k])}):")
                L.append("        return False")
            else:
                # trained on numpy arrays (sampling draws shape= inputs as arrays): a list may mean
                # something else to the region (slices and np.asarray copy it, + concatenates)
                L.append(f"    if not isinstance({p}, np.ndarray):")
                L.append("        return False")
                L.append(f"    _v = np.ravel(np.asarray({p}, dtype=np.float64))")
                L.append(f"    if _v.shape != ({v.size},) or not bool(np.all((_v >= LOWER[{k}:{k + v.size}]) & (_v <= UPPER[{k}:{k + v.size}]))):")
                L.append("        return False")
            k += v.size
        L.append("    return True")
    L.append("")
    return L


def generate_source(
    layers: Sequence[tuple[np.ndarray, np.ndarray, str]],
    *,
    region_name: str,
    inputs: Sequence[VarSpec],
    outputs: Sequence[VarSpec],
    lower: Sequence[float],
    upper: Sequence[float],
    out_scale: np.ndarray | None = None,
    out_shift: np.ndarray | None = None,
    scalar_path: bool | None = None,
    version: str = "",
    out_transform: tuple[str, float] | None = None,
    batch_dtype: str = "float64",
    inline_weights: bool | None = None,
    log_columns: Sequence[int] = (),
) -> str:
    """Python source of the surrogate module for already-folded `layers` (see `compile_model`).

    `log_columns`: flattened input columns the network takes as their natural log (inputs
    declared loguniform; regionx.train.data.log_columns): predict and predict_one take their log
    first. LOWER/UPPER and the domain checks stay in the inputs' own units.

    `scalar_path` forces the predict_one implementation (None: by `use_scalar_path`).
    `out_transform` = ("asinh", s) means the network was trained on asinh(y / s): every output
    is mapped back with y = s * sinh(t) (see `OUTPUT_TRANSFORMS`). `batch_dtype` "float32" runs
    predict()'s hidden layers in float32 (numpy's float32 tanh is vectorised and several times
    faster than float64's); predict_one is always float64. When the scalar path is used the weights are also emitted as literals, so the module does not read
    weights.npz; otherwise it loads weights.npz from its own directory (`inline_weights` True:
    literals whatever the path, as the learned guard's module has no weights file of its own).

    The module is its sections in order, one emitter each: `header_lines` (docstring, imports,
    interface constants), `weight_lines` (weights, output map), `batch_path_lines` (predict),
    `predict_one_lines` and `in_domain_lines`.
    """
    d_in = sum(v.size for v in inputs)
    d_out = sum(v.size for v in outputs)
    if layers[0][0].shape[0] != d_in or layers[-1][0].shape[1] != d_out:
        raise ValueError(
            f"network shape {layers[0][0].shape[0]}->{layers[-1][0].shape[1]} does not match interface {d_in}->{d_out}"
        )
    if len(lower) != d_in or len(upper) != d_in:
        raise ValueError("lower/upper must have one entry per input column")
    if scalar_path is None:
        scalar_path = use_scalar_path(layers)
    if batch_dtype not in ("float64", "float32"):
        raise ValueError(f"batch_dtype must be 'float64' or 'float32', not {batch_dtype!r}")
    params = _predict_one_params(inputs)
    log_cols = tuple(sorted(int(c) for c in log_columns))
    L = header_lines(layers, region_name=region_name, inputs=inputs, outputs=outputs, lower=lower, upper=upper,
                     scalar_path=scalar_path, version=version)
    L += weight_lines(layers, inline=bool(scalar_path or inline_weights), out_scale=out_scale, out_shift=out_shift,
                      out_transform=out_transform)
    L += log_feature_lines(log_cols)
    f_lower = [math.log(v) if k in log_cols else v for k, v in enumerate(lower)]
    f_upper = [math.log(v) if k in log_cols else v for k, v in enumerate(upper)]
    L += batch_path_lines(layers, d_in=d_in, d_out=d_out, lower=f_lower, upper=f_upper, out_scale=out_scale,
                          out_shift=out_shift, out_transform=out_transform, batch_dtype=batch_dtype,
                          log_features=bool(log_cols))
    L += predict_one_lines(layers, params=params, inputs=inputs, outputs=outputs, scalar_path=scalar_path,
                           out_scale=out_scale, out_shift=out_shift, out_transform=out_transform,
                           log_params=_log_params(params, inputs, log_cols))
    L += in_domain_lines(params=params, inputs=inputs, lower=lower, upper=upper)
    return "\n".join(L)


def compile_model(
    layers: list[tuple[np.ndarray, np.ndarray, str]],
    x_mean: Any,
    x_scale: Any,
    y_mean: Any,
    y_scale: Any,
    *,
    region_name: str,
    inputs: tuple[VarSpec, ...],
    outputs: tuple[VarSpec, ...],
    lower: Any,
    upper: Any,
    out_dir: str,
    scalar_path: bool | None = None,
    out_transform: tuple[str, float] | None = None,
    batch_dtype: str = "float64",
    guard: tuple[Sequence[tuple[np.ndarray, np.ndarray, str]], float] | None = None,
    log_columns: Sequence[int] = (),
) -> str:
    """Write ``surrogate_<region_name>.py`` and ``weights.npz`` into `out_dir`; return the module path.
    `log_columns`: input columns the network takes as their log (`generate_source`; x_mean and
    x_scale are then those features').

    `layers` are the network's (W, b, activation) in normalised units (as `keras_layers` returns
    them); the normalisation ``x_n = (x - x_mean) / x_scale`` and ``y = y_n * y_scale + y_mean``
    is folded into the first and last layers. `lower`/`upper` give the trained domain box per
    flattened input column. `out_transform` ("asinh", s): the network's (de-normalised) output is
    asinh(y / s) and the module maps it back (see `generate_source`). `guard` = (layers taking
    raw inputs, threshold): the learned guard (regionx.guard), written as ``guard_<name>.py`` and
    exposed by the surrogate module as ``guard(X)`` / ``guard_one(...)`` (`guard_lines`). Every
    file is written atomically (weights first, the surrogate module last).
    """
    from regionx import __version__

    d_in, d_out = sum(v.size for v in inputs), sum(v.size for v in outputs)
    if np.shape(layers[0][0])[0] != d_in or np.shape(layers[-1][0])[1] != d_out:
        raise ValueError(f"network shape {np.shape(layers[0][0])[0]}->{np.shape(layers[-1][0])[1]} "
                         f"does not match interface {d_in}->{d_out}")
    folded, out_scale, out_shift = fold_normalisation(layers, x_mean, x_scale, y_mean, y_scale)
    os.makedirs(out_dir, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for i, (W, b, _a) in enumerate(folded):
        arrays[f"W{i}"] = W
        arrays[f"b{i}"] = b
    arrays["activations"] = np.array([a for _W, _b, a in folded])
    arrays["lower"] = np.asarray(lower, dtype=np.float64)
    arrays["upper"] = np.asarray(upper, dtype=np.float64)
    if out_scale is not None:
        arrays["out_scale"] = np.asarray(out_scale, dtype=np.float64)
        arrays["out_shift"] = np.asarray(out_shift, dtype=np.float64)
    if out_transform is not None:
        arrays["out_transform_scale"] = np.asarray(float(out_transform[1]), dtype=np.float64)
    if log_columns:
        arrays["log_columns"] = np.asarray(sorted(int(c) for c in log_columns), dtype=np.int64)
    if guard is not None:
        for i, (W, b, a) in enumerate(guard[0]):
            arrays[f"guard_W{i}"], arrays[f"guard_b{i}"] = np.asarray(W), np.asarray(b)
        arrays["guard_activations"] = np.array([a for _W, _b, a in guard[0]])
        arrays["guard_threshold"] = np.asarray(float(guard[1]), dtype=np.float64)
    source = generate_source(
        folded, region_name=region_name, inputs=inputs, outputs=outputs,
        lower=[float(v) for v in np.asarray(lower, dtype=np.float64).ravel()],
        upper=[float(v) for v in np.asarray(upper, dtype=np.float64).ravel()],
        out_scale=out_scale, out_shift=out_shift, scalar_path=scalar_path, version=__version__,
        out_transform=out_transform, batch_dtype=batch_dtype, log_columns=log_columns,
    )
    if guard is not None:
        source += _write_guard(out_dir, region_name, inputs, guard[0], float(guard[1]), __version__,
                               [float(v) for v in np.asarray(lower, dtype=np.float64).ravel()],
                               [float(v) for v in np.asarray(upper, dtype=np.float64).ravel()])
    compile(source, module_name(region_name), "exec")  # fail here, not at the user's import
    _atomic_savez(os.path.join(out_dir, "weights.npz"), arrays)
    path = os.path.join(out_dir, module_name(region_name))
    atomic_write_text(path, source)
    return path


def regenerate_module(artifact_dir: str, *, batch_dtype: str = "float32") -> str:
    """Write the artifact directory's surrogate module again from its weights.npz and
    manifest.json with this version's generator (the trained network is unchanged: the module is
    a function of the folded weights); returns the module path. For artifacts trained before a
    change of the generated code."""
    import json

    from regionx import __version__
    from regionx.types import Manifest

    with open(os.path.join(artifact_dir, "manifest.json"), encoding="utf-8") as handle:
        manifest = Manifest.from_json(json.load(handle))
    with np.load(os.path.join(artifact_dir, "weights.npz")) as data:
        acts = [str(a) for a in data["activations"]]
        layers = [(data[f"W{i}"], data[f"b{i}"], a) for i, a in enumerate(acts)]
        out_scale = data["out_scale"] if "out_scale" in data else None
        out_shift = data["out_shift"] if "out_shift" in data else None
        transform = ("asinh", float(data["out_transform_scale"])) if "out_transform_scale" in data else None
        lower, upper = data["lower"].tolist(), data["upper"].tolist()
        log_cols = tuple(int(c) for c in data["log_columns"]) if "log_columns" in data else ()
        guard = None
        if "guard_threshold" in data:
            gacts = [str(a) for a in data["guard_activations"]]
            guard = ([(data[f"guard_W{i}"], data[f"guard_b{i}"], a) for i, a in enumerate(gacts)],
                     float(data["guard_threshold"]))
    source = generate_source(layers, region_name=manifest.region_name, inputs=manifest.inputs,
                             outputs=manifest.outputs, lower=lower, upper=upper, out_scale=out_scale,
                             out_shift=out_shift, version=__version__, out_transform=transform,
                             batch_dtype=batch_dtype, log_columns=log_cols)
    if guard is not None:
        source += _write_guard(artifact_dir, manifest.region_name, manifest.inputs, guard[0], guard[1], __version__,
                               lower, upper)
    path = os.path.join(artifact_dir, manifest.module)
    compile(source, path, "exec")
    atomic_write_text(path, source)
    return path


def guard_module_name(region_name: str) -> str:
    """File name of the learned guard's module beside ``surrogate_<name>.py``."""
    return "guard_" + module_name(region_name)[len("surrogate_"):]


def _write_guard(out_dir: str, region_name: str, inputs: Sequence[VarSpec],
                 layers: Sequence[tuple[np.ndarray, np.ndarray, str]], threshold: float, version: str,
                 lower: Sequence[float], upper: Sequence[float]) -> str:
    """Write the guard's score network as its own module (weights inline, float64 batch path, so it
    scores exactly as calibration did) and return the surrogate module's guard section."""
    name = guard_module_name(region_name)
    source = generate_source(list(layers), region_name=f"{region_name} (learned guard)", inputs=inputs,
                             outputs=(VarSpec("score", ()),), lower=lower, upper=upper,
                             version=version, batch_dtype="float64", inline_weights=True)
    compile(source, name, "exec")
    atomic_write_text(os.path.join(out_dir, name), source)
    return "\n".join(guard_lines(name, threshold, _predict_one_params(inputs))) + "\n"


def guard_lines(guard_file: str, threshold: float, params: Sequence[str]) -> list[str]:
    """The surrogate module's guard section: load ``guard_<name>.py`` from the module's directory;
    guard(X) / guard_one(...) are True where the network's answer may be used (score <= threshold)."""
    sig = ", ".join(params)
    return [
        "",
        "",
        f"GUARD_THRESHOLD = {_lit(threshold)}  # learned guard (regionx.guard): predicted log10 error ratio",
        "",
        "",
        "def _load_guard():",
        "    import importlib.util",
        f"    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), {guard_file!r})",
        f"    spec = importlib.util.spec_from_file_location('_regionx_' + REGION.replace('.', '_') + '_guard', path)",
        "    module = importlib.util.module_from_spec(spec)",
        "    spec.loader.exec_module(module)",
        "    return module",
        "",
        "",
        "_GUARD = _load_guard()",
        "",
        "",
        "def guard(X):",
        '    """(n, d_in) -> (n,) bool: rows whose predicted error lets the network answer."""',
        "    return _GUARD.predict(X)[:, 0] <= GUARD_THRESHOLD",
        "",
        "",
        f"def guard_one({sig}):",
        '    """True when the learned guard lets the network answer this call."""',
        f"    return _GUARD.predict_one({sig}) <= GUARD_THRESHOLD",
    ]


_import_counter = 0


def load_module(path: str) -> Any:
    """Import a generated module from its file under a fresh private name (not in sys.modules)."""
    import importlib.util

    global _import_counter
    _import_counter += 1
    name = f"_regionx_surrogate_{_import_counter}_{os.path.splitext(os.path.basename(path))[0]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure_paths(hidden_list: Sequence[tuple[int, ...]] = ((3,), (5,), (8,), (5, 3), (8, 5), (8, 5, 3), (11, 8, 5), (16,), (32,), (16, 16), (32, 32), (64, 64)),
                  d_in: int = 3, d_out: int = 1, act: str = "tanh", seed: int = 0) -> list[dict[str, Any]]:
    """Time predict_one's scalar and numpy paths for random networks of each hidden shape.

    Used to fit `use_scalar_path`; returns one dict per shape with both times in seconds.
    """
    rng = np.random.default_rng(seed)
    inputs = tuple(VarSpec(f"x{i}") for i in range(d_in))
    outputs = tuple(VarSpec(f"y{i}") for i in range(d_out))
    X = rng.uniform(-1, 1, size=(256, d_in))
    args = call_args(X, inputs)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for hidden in hidden_list:
            widths = [d_in, *hidden, d_out]
            layers = [(rng.normal(size=(widths[i], widths[i + 1])) / math.sqrt(widths[i]), rng.normal(size=widths[i + 1]) * 0.1,
                       act if i < len(widths) - 2 else "linear") for i in range(len(widths) - 1)]
            row: dict[str, Any] = {"hidden": list(hidden), "macs": network_macs(layers)}
            for path_kind in ("scalar", "numpy"):
                sub = os.path.join(tmp, f"{'x'.join(map(str, hidden))}_{path_kind}")
                p = compile_model(layers, np.zeros(d_in), np.ones(d_in), np.zeros(d_out), np.ones(d_out), region_name="m",
                                  inputs=inputs, outputs=outputs, lower=-np.ones(d_in), upper=np.ones(d_in), out_dir=sub,
                                  scalar_path=path_kind == "scalar")
                mod = load_module(p)
                row[path_kind] = time_per_call(mod.predict_one, args)
            results.append(row)
    return results


if __name__ == "__main__":  # pragma: no cover - measurement helper
    import sys

    if "--measure" in sys.argv:
        for act_name in ("tanh", "relu"):
            for r in measure_paths(act=act_name):
                print(f"{act_name:5s} hidden={'x'.join(map(str, r['hidden'])):8s} macs={r['macs']:5d} "
                      f"scalar={r['scalar'] * 1e6:8.3f} us  numpy={r['numpy'] * 1e6:8.3f} us")
