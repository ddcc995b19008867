"""`regionx train`: performance-driven topology search (the paper's section V, Tables II/III).

For every candidate topology (hidden-layer widths + activation) a small dense network is trained
with Keras (TensorFlow backend) on normalised data; each trained network is compiled to the
numpy-only surrogate module (regionx.compile), and that compiled module — the thing that will
actually run — is measured on the held-out test split: accuracy within the tolerance, L2 loss,
mean/max error, time per scalar call and per batch element.

Selection is performance-driven as in the paper: among the topologies whose accuracy reaches
`target`, the FASTEST compiled surrogate wins. "Fastest" is by time per scalar call by default
(`select_by="call"`), since the rewriter's default replacement is one predict_one call per
region execution; pass ``select_by="batch"`` when the rewriter will hoist the region into a
batched predict. Timings within `TIE_BAND` (5%) of the fastest are treated as a tie (timer noise),
and a tie goes to the most accurate, then to the earlier topology in the list — so a fixed seed
gives the same choice on the same machine.

TensorFlow/Keras are imported only inside functions: ``import regionx.train`` is cheap.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Sequence

import numpy as np

from regionx import compile as rxcompile
from regionx.diagnostics import Diagnostic, make
from regionx.refine import REFINE_METHODS, RefineResult
from regionx.types import REL_FLOOR, Dataset, Manifest, StageResult, TopologyResult

Topology = tuple[tuple[int, ...], str]

_PAPER_HIDDEN: tuple[tuple[int, ...], ...] = ((3,), (5,), (8,), (3, 2), (5, 3), (8, 5), (5, 3, 2), (8, 5, 3), (11, 8, 5))
_EXTRA_HIDDEN: tuple[tuple[int, ...], ...] = ((16,), (32,), (32, 32), (64, 64))
# The paper's hidden layers (Table II) plus a few wider ones, each with tanh and relu.
DEFAULT_TOPOLOGIES: list[Topology] = [(h, act) for h in _PAPER_HIDDEN + _EXTRA_HIDDEN for act in ("tanh", "relu")]

HIDDEN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
DEFAULT_ACTIVATION = "tanh"
SPLIT = (0.70, 0.15, 0.15)  # train / validation / test
MIN_SAMPLES = 20
LEARNING_RATE = 1e-2  # Adam's peak rate, cosine-decayed to LR_FLOOR * peak over the epoch budget
LR_FLOOR = 1e-3
EARLY_STOP_PATIENCE = 25  # epochs without val-loss improvement before stopping (best weights restored)
LR_PATIENCE = 10  # kept for compatibility: the schedule is a cosine decay, not plateau halving
# Mini-batch size when none is given: about 1/256 of the training rows, a power of two in [32, 512].
# (Measured on the Newton region, 100k samples, 3x32x32x1 tanh, 60 epochs: batch 256 + cosine decay
# reaches 75% of test points within 1% where batch 64 + plateau halving on 4k samples reached 30-57%.)
AUTO_BATCH_MIN, AUTO_BATCH_MAX, AUTO_BATCH_ROWS = 32, 512, 256
# Metric "rel": train on t = asinh(y / s) rather than y. For |y| >> s an absolute error in t is the
# relative error in y, so MSE on t weighs points the way the metric does; s keeps small |y| from
# dominating. s = max(REL_FLOOR, REL_TRANSFORM_FRACTION * median |y|). Measured on the Newton region
# (3x32x32x1, 100k samples, 60 epochs): 79% vs 75% within 1%, 98.7% vs 95.0% within 5%; but with
# smaller budgets/networks it lowers the share within 1% (30k samples, 40 epochs: 5x3 11% vs 27%,
# 8x5 19% vs 42%, 32x32 51% vs 61%) while still halving the mean error. So "auto" uses it only
# when the outputs span orders of magnitude (REL_TRANSFORM_SPAN), where plain MSE cannot see
# the small ones at all.
REL_TRANSFORM_FRACTION = 0.05
REL_TRANSFORM_SPAN = 100.0  # quantile(|y|, 0.9) / max(quantile(|y|, 0.1), REL_FLOOR) above this: asinh
TARGET_TRANSFORMS = ("auto", "asinh", "none")
# The generated predict() runs hidden layers in float32: 2-4x faster on 10k-row batches (numpy's
# float32 tanh is SIMD-vectorised), relative deviation from float64 ~2e-5, far below any tolerance;
# accuracy is always measured on the compiled module, so it includes this.
BATCH_DTYPE = "float32"
TIE_BAND = 0.05
# Second-order refinement after Adam (regionx.refine): "auto" is Levenberg-Marquardt for small
# networks and L-BFGS for larger ones, REFINE_SECONDS nominal per topology (a deterministic
# iteration budget); Adam's weights are kept unless refinement beats them on the validation split.
# Measured in benchmarks/results/optimizers.md.
REFINE_SECONDS = 30.0
# With metric "rel", refinement weighs each residual by 1 / (tolerance * max(|y|, floor)), floor =
# REFINE_REL_FRACTION * median |y| (see residual_weights). On the cubic's root (2x8x5x1, 20k
# samples, 30 s of LM from the same Adam start) the share of test points within 1% was 94.4%
# unweighted, and 96.7% / 98.3% / 98.6% / 95.5% with floors of 0.0013 / 0.013 / 0.065 / 0.26 x
# median |y|.
REFINE_REL_FRACTION = 0.05
BATCH_ROWS = 4096  # rows of the batch used to time predict()
CALL_ROWS = 256  # distinct test rows cycled through when timing predict_one()

ProgressFn = Callable[[str, int, int], None]


# --------------------------------------------------------------------------- topology specs


def parse_topologies(spec: str) -> list[Topology]:
    """Parse a topology list such as ``"5,3;8,5"``, ``"5x3:relu;8"`` or ``"default"``.

    Entries are separated by ``;``; an entry is hidden-layer widths separated by ``,`` or ``x``,
    optionally followed by ``:ACTIVATION`` (tanh, relu, sigmoid, linear; several may be joined
    with ``|``, e.g. ``8,5:tanh|relu``). Without an activation an entry uses tanh. ``default``
    expands to DEFAULT_TOPOLOGIES. Raises ValueError with a readable message on bad input
    (the CLI reports it as RX403).
    """
    result: list[Topology] = []
    entries = [e.strip() for e in spec.split(";")]
    if not any(entries):
        raise ValueError("empty topology list")
    for entry in entries:
        if not entry:
            continue
        if entry.lower() == "default":
            result.extend(DEFAULT_TOPOLOGIES)
            continue
        widths_text, _, acts_text = entry.partition(":")
        widths: list[int] = []
        for tok in widths_text.replace("x", ",").replace("X", ",").split(","):
            tok = tok.strip()
            if not tok:
                raise ValueError(f"empty layer width in {entry!r}")
            try:
                w = int(tok)
            except ValueError:
                raise ValueError(f"layer width {tok!r} in {entry!r} is not an integer") from None
            if w < 1:
                raise ValueError(f"layer width {w} in {entry!r} must be at least 1")
            widths.append(w)
        acts = [a.strip().lower() for a in acts_text.split("|")] if acts_text.strip() else [DEFAULT_ACTIVATION]
        for act in acts:
            if act not in HIDDEN_ACTIVATIONS:
                raise ValueError(f"unknown activation {act!r} in {entry!r}; expected one of {', '.join(HIDDEN_ACTIVATIONS)}")
            topo = (tuple(widths), act)
            if topo not in result:
                result.append(topo)
    return result


def topology_label(hidden: Sequence[int], activation: str) -> str:
    """Same text as TopologyResult.label, e.g. ``5x3 tanh``."""
    return "x".join(str(h) for h in hidden) + f" {activation}"


# --------------------------------------------------------------------------- TensorFlow


def _import_keras() -> tuple[Any, Any]:
    """Import keras + tensorflow quietly (C++ and absl start-up output suppressed); ImportError if missing."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import sys

    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return sys.modules["keras"], sys.modules["tensorflow"]
    # TF writes start-up noise straight to fd 2; hide it for the duration of the import only.
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with TF
        pass
    tf.get_logger().setLevel("ERROR")
    return keras, tf


def _train_topology(task: dict[str, Any], progress: ProgressFn | None = None) -> dict[str, Any]:
    """Train one topology quietly (Keras' own numpy-2 DeprecationWarnings are not the user's business)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _train_topology_inner(task, progress)


def _train_topology_inner(task: dict[str, Any], progress: ProgressFn | None = None) -> dict[str, Any]:
    """Train one topology (runs in-process or in an executor worker; `task` is picklable).

    Returns the trained layers (W, b, activation) in normalised units, the training time,
    optimizer steps, epochs run, and the saved Keras model (.keras file bytes).
    """
    keras, tf = _import_keras()
    hidden, activation = tuple(task["hidden"]), task["activation"]
    label = topology_label(hidden, activation)
    seed = int(task["seed"])
    keras.utils.set_random_seed(seed)
    try:  # deterministic kernels; only possible/needed once per process
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - depends on TF version/state
        pass
    Xtr, Ytr, Xva, Yva = (np.asarray(task[k], dtype=np.float32) for k in ("Xtr", "Ytr", "Xva", "Yva"))
    d_in, d_out = Xtr.shape[1], Ytr.shape[1]
    model = keras.Sequential(name="regionx_" + "x".join(map(str, hidden)) + "_" + activation)
    model.add(keras.Input(shape=(d_in,)))
    for width in hidden:
        model.add(keras.layers.Dense(width, activation=activation))
    model.add(keras.layers.Dense(d_out, activation="linear"))
    batch = int(task["batch_size"])
    epochs = int(task["epochs"])
    total_steps = max(1, epochs * int(math.ceil(len(Xtr) / batch)))
    schedule = keras.optimizers.schedules.CosineDecay(float(task["learning_rate"]), total_steps, alpha=LR_FLOOR)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="mse", steps_per_execution=8)
    # tf.data is ~3x faster per epoch than numpy input for these tiny models.
    train_ds = (tf.data.Dataset.from_tensor_slices((Xtr, Ytr))
                .shuffle(len(Xtr), seed=seed, reshuffle_each_iteration=True).batch(batch))
    val_ds = tf.data.Dataset.from_tensor_slices((Xva, Yva)).batch(4096)
    callbacks: list[Any] = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(task["patience"]), restore_best_weights=True),
    ]
    if progress is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: progress(label, epoch + 1, epochs)))
    t0 = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
    adam_time = time.perf_counter() - t0
    layers = rxcompile.keras_layers(model)
    announce = None if progress is None else (lambda method: progress(f"{label} refine {method}", epochs, epochs))
    refined = _refine_layers(task, layers, seed, announce)
    if refined.method != "adam":
        layers = refined.layers
        # model.keras holds the weights the compiled module runs (Keras keeps them as float32).
        dense = [layer for layer in model.layers if layer.get_weights()]
        for layer, (W, b, _act) in zip(dense, layers):
            layer.set_weights([W.astype(np.float32), b.astype(np.float32)])
    if progress is not None:
        progress(label, epochs, epochs)
    # Return the saved model's bytes rather than a path: a remote (dask) worker's disk is not ours.
    with tempfile.TemporaryDirectory(prefix="regionx-model-") as tmp:
        model_file = os.path.join(tmp, "model.keras")
        model.save(model_file)
        with open(model_file, "rb") as fh:
            model_bytes = fh.read()
    val_losses = [float(v) for v in history.history.get("val_loss", [])]
    return {
        "hidden": hidden,
        "activation": activation,
        "layers": layers,  # float64: the refined weights themselves, not their float32 copy in Keras
        "train_time": adam_time + refined.seconds,
        "adam_time": adam_time,
        "refine": refined.summary(),
        "steps": int(model.optimizer.iterations.numpy()),
        "epochs": len(history.history.get("loss", [])),
        "best_val_loss": min(val_losses) if val_losses else float("nan"),
        "model_bytes": model_bytes,
    }


def _refine_layers(task: dict[str, Any], layers: list[tuple[np.ndarray, np.ndarray, str]], seed: int,
                   announce: Callable[[str], None] | None) -> RefineResult:
    """Second-order refinement of Adam's `layers` on the task's full training split
    (regionx.refine.refine; returns its RefineResult). `announce(optimizer)` is called first
    when an optimizer will run (progress display)."""
    from regionx import refine as rxrefine

    arrays = [np.asarray(task[k], dtype=np.float64) for k in ("Xtr", "Ytr", "Xva", "Yva")]
    method = str(task.get("refine", "none"))
    n_weights = rxrefine.NetSpec.of(layers).n_params
    if announce is not None and rxrefine.choose_method(method, n_weights, arrays[1].size) != "none":
        announce(rxrefine.choose_method(method, n_weights, arrays[1].size))
    return rxrefine.refine(layers, *arrays, method=method, seconds=float(task.get("refine_seconds", REFINE_SECONDS)),
                           seed=seed, wtr=task.get("Wtr"), wva=task.get("Wva"), val_accuracy=_val_accuracy(task))


def _val_accuracy(task: dict[str, Any]) -> Callable[[np.ndarray], float] | None:
    """Share of validation rows within tolerance, from the network's normalised prediction (None
    when the task does not carry the validation split's exact outputs)."""
    if task.get("val_exact") is None:
        return None
    exact = np.asarray(task["val_exact"], dtype=np.float64)
    y_mean, y_scale = np.asarray(task["y_mean"]), np.asarray(task["y_scale"])
    transform, metric, tolerance = task.get("transform"), str(task["metric"]), float(task["tolerance"])

    def accuracy(pred: np.ndarray) -> float:
        t = pred * y_scale + y_mean
        with np.errstate(over="ignore", invalid="ignore"):
            y = t if transform is None else transform[1] * np.sinh(t)
        return float(np.mean(within_tolerance(y, exact, metric, tolerance))) if len(exact) else 0.0

    return accuracy


def residual_weights(Y: np.ndarray, metric: str, tolerance: float, transform: tuple[str, float] | None,
                     y_scale: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray | None:
    """Per-entry weights (n x d_out) that make the refinement's least squares count errors as the
    accuracy criterion does: residual x weight ~ (error in y) / (error allowed at y).

    The network's residual is in normalised units t_n = (t - mean) / y_scale with t = y or
    asinh(y / s), so an error e_n in t_n is e_n * y_scale * dy/dt in y (dy/dt = sqrt(s^2 + y^2)
    for asinh). The error allowed is `tolerance` for "abs" and tolerance * max(|y|, floor) for
    "rel", with floor = max(REL_FLOOR, REFINE_REL_FRACTION * median |y|) (median over the
    `reference` outputs, by default Y; train_dataset passes the training split's): the metric's own
    floor (1e-3) would let the few roots within 1e-3 of zero outweigh all others a thousandfold.
    Weights are scaled to mean square 1, so the loss stays comparable to plain mse. None when
    every weight is the same (plain mse).
    """
    Y = np.asarray(Y, dtype=np.float64)
    dy = np.broadcast_to(np.asarray(y_scale, dtype=np.float64), Y.shape)
    if transform is not None:
        dy = dy * np.sqrt(transform[1] ** 2 + Y * Y)
    if metric == "rel":
        ref = Y if reference is None else np.asarray(reference, dtype=np.float64)
        floor = np.maximum(REL_FLOOR, REFINE_REL_FRACTION * np.median(np.abs(ref), axis=0))
        allowed = tolerance * np.maximum(np.abs(Y), floor)
    else:
        allowed = np.full(Y.shape, tolerance)
    w = dy / allowed
    if not np.all(np.isfinite(w)) or float(np.ptp(w)) <= 1e-12 * float(np.max(w)):
        return None
    return w / math.sqrt(float(np.mean(w * w)))


# --------------------------------------------------------------------------- metrics and selection


def error_metrics(pred: np.ndarray, exact: np.ndarray, metric: str, tolerance: float) -> dict[str, float]:
    """L2 loss (MSE, original units), mean/max error under `metric` and accuracy within `tolerance`.

    "rel" is |pred - exact| / max(|exact|, REL_FLOOR); "abs" is |pred - exact|. A point counts
    as accurate when every one of its outputs is within tolerance; NaN predictions never are.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(exact.shape)
    diff = np.abs(pred - exact)
    err = diff / np.maximum(np.abs(exact), REL_FLOOR) if metric == "rel" else diff
    err = np.where(np.isfinite(err), err, np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        mse = float(np.mean((pred - exact) ** 2)) if exact.size else float("nan")
    return {
        "loss": mse if math.isfinite(mse) else float("inf"),
        "mean_error": float(np.mean(err)) if err.size else float("nan"),
        "max_error": float(np.max(err)) if err.size else float("nan"),
        "accuracy": float(np.mean(np.all(err <= tolerance, axis=1))) if err.size else 0.0,
    }


def within_tolerance(pred: np.ndarray, exact: np.ndarray, metric: str, tolerance: float) -> np.ndarray:
    """Per row: is every output within `tolerance` under `metric` (as `error_metrics` counts it)?"""
    pred = np.asarray(pred, dtype=np.float64).reshape(exact.shape)
    diff = np.abs(pred - exact)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = diff / np.maximum(np.abs(exact), REL_FLOOR) if metric == "rel" else diff
    return np.all(np.where(np.isfinite(err), err, np.inf) <= tolerance, axis=1)


def accept_mask(accept: str, X: np.ndarray, pred: np.ndarray, inputs: Sequence[Any], outputs: Sequence[Any],
                is_function: bool = True) -> tuple[np.ndarray, bool]:
    """(rows the accept predicate accepts, whether it was vectorised). Raises ValueError/SyntaxError
    or the predicate's own NameError ... when it cannot be evaluated on these columns."""
    from regionx import accept as rxaccept

    cols = rxaccept.columns_for(inputs, outputs, X, np.asarray(pred, dtype=np.float64).reshape(len(X), -1), is_function)
    try:
        return rxaccept.evaluate(accept, cols), True
    except ValueError:
        params = list(cols)
        scalar = rxaccept.scalar_function(accept, params)
        return np.array([scalar(*(float(cols[p][i]) for p in params)) for i in range(len(X))], dtype=bool), False


def accept_metrics(accept: str, X: np.ndarray, pred: np.ndarray, exact: np.ndarray, inputs: Sequence[Any],
                   outputs: Sequence[Any], metric: str, tolerance: float, *, exact_time_per_call: float,
                   time_per_call: float, time_per_element: float, repeats: int = 5) -> dict[str, Any]:
    """What the program gets with `accept` checking the surrogate's answers (rejected rows run exact).

    Returns accept_rate (share of rows accepted), effective_accuracy (a row is good when it is
    rejected, or accepted and within `tolerance`), accepted_accuracy (accuracy among the accepted
    rows), the measured cost of the check (accept_time_per_call: the scalar predicate as the
    dispatcher runs it; accept_time_per_element: the vectorised predicate as a hoisted loop runs
    it, or the scalar cost when it cannot be vectorised), and effective_time_per_call/element =
    surrogate time + accept cost + (1 - accept_rate) x exact time per call. `problem` says why the
    predicate could not be evaluated (then every other value is None).
    """
    from regionx import accept as rxaccept

    out: dict[str, Any] = {"accept_rate": None, "effective_accuracy": None, "accepted_accuracy": None,
                           "accept_time_per_call": None, "accept_time_per_element": None,
                           "effective_time_per_call": None, "effective_time_per_element": None,
                           "vectorised": False, "problem": None}
    pred = np.asarray(pred, dtype=np.float64).reshape(exact.shape)
    cols = rxaccept.columns_for(inputs, outputs, X, pred)
    params = list(cols)
    try:
        scalar = rxaccept.scalar_function(accept, params)
    except SyntaxError as exc:
        out["problem"] = f"accept predicate {accept!r} is not a Python expression: {exc.msg}"
        return out
    rows = [tuple(float(cols[p][i]) for p in params) for i in range(min(len(X), CALL_ROWS))]
    try:
        mask = rxaccept.evaluate(accept, cols)
        out["vectorised"] = True
    except ValueError:
        try:  # cannot be vectorised: the patched program checks it row by row, and so do we
            mask = np.array([scalar(*(float(cols[p][i]) for p in params)) for i in range(len(X))], dtype=bool)
        except Exception as exc:  # a name the predicate reads that is neither input nor output ...
            out["problem"] = f"cannot evaluate accept predicate {accept!r}: {type(exc).__name__}: {exc}"
            return out
    m = error_metrics(pred, exact, metric, tolerance)
    good = within_tolerance(pred, exact, metric, tolerance)
    n = max(1, len(mask))
    out["accept_rate"] = float(np.count_nonzero(mask)) / n
    out["effective_accuracy"] = float(np.mean(~mask | good)) if len(mask) else m["accuracy"]
    out["accepted_accuracy"] = float(np.mean(good[mask])) if mask.any() else None
    # cost of the check: best of `repeats`
    t_call = min(_time_rows(scalar, rows) for _ in range(repeats)) if rows else 0.0
    if out["vectorised"]:
        t_elem = min(_time_once(lambda: rxaccept.evaluate(accept, cols)) for _ in range(repeats)) / n
    else:
        t_elem = t_call
    rejected = 1.0 - out["accept_rate"]
    out["accept_time_per_call"] = t_call
    out["accept_time_per_element"] = t_elem
    out["effective_time_per_call"] = time_per_call + t_call + rejected * exact_time_per_call
    out["effective_time_per_element"] = time_per_element + t_elem + rejected * exact_time_per_call
    return out


def _time_once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _time_rows(fn: Callable[..., Any], rows: Sequence[tuple[float, ...]]) -> float:
    """Seconds per call of fn over `rows`."""
    t0 = time.perf_counter()
    for r in rows:
        fn(*r)
    return (time.perf_counter() - t0) / len(rows)


def select_topology(rows: Sequence[TopologyResult], target: float, *, by: str = "call",
                    tie_band: float = TIE_BAND) -> int | None:
    """Index of the fastest row with accuracy >= `target` (None if there is none).

    `by` is "call" (time_per_call) or "batch" (time_per_element). Rows within `tie_band` of the
    fastest time are tied; a tie goes to the higher accuracy, then to the lower index. Rows measured
    with an accept predicate are judged by their effective accuracy and time (see `accept_metrics`).
    """
    if by not in ("call", "batch"):
        raise ValueError(f"select_by must be 'call' or 'batch', not {by!r}")
    # with an accept predicate these are the effective accuracy and time (TopologyResult.program_*)
    ok = [i for i, r in enumerate(rows) if r.program_accuracy >= target]
    if not ok:
        return None

    def t(i: int) -> float:
        return rows[i].program_time_per_call if by == "call" else rows[i].program_time_per_element

    fastest = min(t(i) for i in ok)
    tied = [i for i in ok if t(i) <= fastest * (1.0 + tie_band)]
    return min(tied, key=lambda i: (-rows[i].program_accuracy, i))


def best_row(rows: Sequence[TopologyResult]) -> int | None:
    """Index of the most accurate row (ties: lower loss, then earlier)."""
    if not rows:
        return None
    return min(range(len(rows)), key=lambda i: (-rows[i].program_accuracy, rows[i].loss, i))


# --------------------------------------------------------------------------- reports


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def _fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.3g}" if seconds > 0 else "-"


def render_report_md(report: dict[str, Any]) -> str:
    """report.md: a table shaped like the paper's Tables II/III plus the dataset and the choice."""
    ds = report["dataset"]
    d_in, d_out = ds["d_in"], ds["d_out"]
    lines = [
        f"# regionx train: {report['region_name']}",
        "",
        f"Region `{report['region_id']}` of `{ds['source_path']}`; {ds['n']} samples "
        f"(train/validation/test {ds['n_train']}/{ds['n_val']}/{ds['n_test']}), inputs "
        f"{', '.join(ds['input_columns'])} -> outputs {', '.join(ds['output_columns'])}.",
        f"Tolerance {report['tolerance']:g} ({report['metric']}), target {report['target']:.1%} of test points; "
        f"exact region {_fmt_us(ds['exact_time_per_call'])} us per call while sampling"
        + (", re-timed beside each topology (column Exact)" if report.get("exact_timing") == "interleaved" else "")
        + f"; seed {report['seed']}; "
        f"selection: fastest per {'call' if report['select_by'] == 'call' else 'batch element'} among topologies meeting the target.",
        "",
        "| Model topology | Activation | Training time (s) | Training steps | Epochs | L2 loss | "
        "Time per call (us) | Time per batch element (us) | Exact (us) | Mean error | Max error | "
        "Accuracy within tolerance | Speedup per call | Speedup batch | |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["rows"]:
        topo = "x".join(str(v) for v in [d_in, *row["hidden"], d_out])
        mark = "**chosen**" if row.get("chosen") else ("meets target" if row["meets_target"] else "")
        lines.append(
            f"| {topo} | {row['activation']} | {row['train_time']:.2f} | {row['steps']:,} | {row['epochs']} | "
            f"{row['loss']:.3g} | {_fmt_us(row['time_per_call'])} | {_fmt_us(row['time_per_element'])} | "
            f"{_fmt_us(row['exact_time_per_call'])} | {row['mean_error']:.3g} | {row['max_error']:.3g} | {row['accuracy']:.1%} | "
            f"{row['speedup_call']:.2f}x | {row['speedup_batch']:.2f}x | {mark} |"
        )
    lines.append("")
    if any(row.get("refine", {}).get("requested") not in (None, "none") for row in report["rows"]):
        lines += _refine_md(report, d_in, d_out)
    if report.get("accept"):
        lines += [
            f"With the accept predicate `{report['accept']}` the exact code answers every row it rejects, so the "
            "program's (effective) accuracy counts those rows as good; effective time = surrogate + accept check + "
            "rejection rate x exact time. Selection and the target use the effective values.",
            "",
            "| Model topology | Accept rate | Raw accuracy | Accuracy of accepted rows | Effective accuracy | "
            "Accept check per call (us) | Accept check per element (us) | Effective time per call (us) | "
            "Effective time per element (us) | Effective speedup per call | Effective speedup batch | Note |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in report["rows"]:
            topo = "x".join(str(v) for v in [d_in, *row["hidden"], d_out])
            if row.get("effective_accuracy") is None:
                lines.append(f"| {topo} {row['activation']} | - | {row['accuracy']:.1%} | - | - | - | - | - | - | - | - | "
                             f"{row.get('accept_problem') or 'not evaluated'} |")
                continue
            acc_ok = row.get("accepted_accuracy")
            lines.append(
                f"| {topo} {row['activation']} | {row['accept_rate']:.1%} | {row['accuracy']:.1%} | "
                f"{'-' if acc_ok is None else f'{acc_ok:.1%}'} | {row['effective_accuracy']:.1%} | "
                f"{_fmt_us(row['accept_time_per_call'])} | {_fmt_us(row['accept_time_per_element'])} | "
                f"{_fmt_us(row['effective_time_per_call'])} | {_fmt_us(row['effective_time_per_element'])} | "
                f"{row['effective_speedup_call']:.2f}x | {row['effective_speedup_batch']:.2f}x | "
                f"{'' if row.get('accept_vectorised') else 'checked row by row (not vectorisable)'} |")
        lines.append("")
    chosen = report.get("chosen")
    if chosen:
        lines.append(f"Chosen: **{chosen['label']}** — accuracy {chosen['accuracy']:.1%}, "
                     f"{_fmt_us(chosen['time_per_call'])} us per call ({chosen['speedup_call']:.2f}x), "
                     f"{_fmt_us(chosen['time_per_element'])} us per batch element ({chosen['speedup_batch']:.2f}x).")
        if chosen.get("effective_accuracy") is not None:
            lines.append(f"With accept: {chosen['accept_rate']:.1%} of rows accepted, effective accuracy "
                         f"{chosen['effective_accuracy']:.1%}, {_fmt_us(chosen['effective_time_per_call'])} us per call "
                         f"({chosen['effective_speedup_call']:.2f}x), {_fmt_us(chosen['effective_time_per_element'])} us per "
                         f"batch element ({chosen['effective_speedup_batch']:.2f}x).")
    else:
        best = report.get("best")
        if best and best.get("effective_accuracy") is not None:
            lines.append(f"No topology reached the target. Best: {best['label']} with effective accuracy "
                         f"{best['effective_accuracy']:.1%} (raw {best['accuracy']:.1%}, {best['accept_rate']:.1%} accepted).")
        else:
            lines.append(f"No topology reached the target. Best: {best['label']} with accuracy {best['accuracy']:.1%}."
                         if best else "No topology was trained.")
    lines.append("")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _refine_md(report: dict[str, Any], d_in: int, d_out: int) -> list[str]:
    """report.md's refinement table: per topology the optimizer kept, its time and the losses."""
    training = report.get("training", {})
    lines = [
        f"Refinement after Adam: `{training.get('refine', '?')}`, {training.get('refine_seconds', 0):g} s nominal per topology "
        "(an iteration budget, so the result does not depend on the machine's load), "
        f"on the full training split; loss: {training.get('refine_loss', 'mse (normalised)')}. Attempts are judged on the "
        "validation split by the share of rows within tolerance, then by the loss; a refinement that does not beat "
        "Adam's weights is dropped (optimizer `adam`).",
        "",
        "| Model topology | Activation | Optimizer | Adam time (s) | Refinement time (s) | Attempts | "
        "Val accuracy before | Val accuracy after | Val loss before | Val loss after |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        ref = row.get("refine") or {}
        topo = "x".join(str(v) for v in [d_in, *row["hidden"], d_out])
        attempts = "; ".join(f"{a['optimizer']} from {a['start']}: {_pct(a.get('val_accuracy'))}, loss {a['val_loss']:.3g} "
                             f"({a.get('iterations', 0)} it, {a['seconds']:.1f} s, {a['status']})"
                             for a in ref.get("attempts", [])) or "-"
        lines.append(f"| {topo} | {row['activation']} | {row.get('optimizer', 'adam')} | {row.get('adam_time', row['train_time']):.2f} | "
                     f"{ref.get('seconds', 0.0):.2f} | {attempts} | {_pct(ref.get('val_accuracy_before'))} | "
                     f"{_pct(ref.get('val_accuracy_after'))} | {ref.get('val_loss_before', float('nan')):.3g} | "
                     f"{ref.get('val_loss_after', float('nan')):.3g} |")
    lines.append("")
    return lines


def _write_json(path: str, data: Any) -> None:
    rxcompile.atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


# --------------------------------------------------------------------------- the stage


def _invalid(dataset_path: str, region_id: str, detail: str) -> StageResult:
    return StageResult(status="failed", region_id=region_id, diagnostics=(make("RX307", dataset_path, detail=detail),))


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded 70/15/15 index split with at least one row in validation and test."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * SPLIT[1])))
    n_test = max(1, int(round(n * SPLIT[2])))
    n_train = n - n_val - n_test
    return perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]


def _scale(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = a.mean(axis=0)
    std = a.std(axis=0)
    std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)  # constant column: identity scale
    return mean, std


def auto_batch_size(n_train: int) -> int:
    """Default mini-batch size for `n_train` training rows (see AUTO_BATCH_ROWS)."""
    want = max(1.0, n_train / AUTO_BATCH_ROWS)
    return int(min(AUTO_BATCH_MAX, max(AUTO_BATCH_MIN, 2 ** round(math.log2(want)))))


def target_transform_for(Y: np.ndarray, metric: str, kind: str = "auto") -> tuple[str, float] | None:
    """The output transform to train through: ("asinh", s) or None (train on y itself).

    "auto" is asinh for metric "rel" when the outputs span more than REL_TRANSFORM_SPAN (ratio of
    the 90th to the 10th percentile of |y|), else none; s = max(REL_FLOOR, REL_TRANSFORM_FRACTION
    * median |y|) over the training outputs.
    """
    if kind not in TARGET_TRANSFORMS:
        raise ValueError(f"target_transform must be one of {', '.join(TARGET_TRANSFORMS)}, not {kind!r}")
    if kind == "none" or (kind == "auto" and metric != "rel") or not Y.size:
        return None
    mag = np.abs(Y)
    if kind == "auto" and float(np.quantile(mag, 0.9)) <= REL_TRANSFORM_SPAN * max(float(np.quantile(mag, 0.1)), REL_FLOOR):
        return None
    med = float(np.median(mag))
    return ("asinh", max(REL_FLOOR, REL_TRANSFORM_FRACTION * med))


def train_dataset(
    dataset: Dataset,
    out_dir: str,
    *,
    topologies: list[Topology] | None = None,
    tolerance: float | None = None,
    metric: str | None = None,
    target: float = 0.99,
    epochs: int = 200,
    seed: int = 0,
    batch_size: int | None = None,
    executor: concurrent.futures.Executor | None = None,
    progress: ProgressFn | None = None,
    select_by: str = "call",
    learning_rate: float = LEARNING_RATE,
    patience: int = EARLY_STOP_PATIENCE,
    target_transform: str = "auto",
    exact_timer: Callable[[], float] | None = None,
    refine: str = "auto",
    refine_seconds: float = REFINE_SECONDS,
) -> StageResult:
    """Train every topology on `dataset`, compile and measure each, keep the fastest accurate one.

    Writes into `out_dir`: report.json and report.md (always, every topology), and on success
    manifest.json, model.keras, surrogate_<name>.py and weights.npz of the chosen topology.
    `tolerance`/`metric` default to the dataset's (the region pragma's). With an `executor`, one
    task per topology is submitted (the worker must be able to import TensorFlow; use a
    spawn/forkserver process pool, never fork after TensorFlow is loaded); timing always runs in
    this process after training finishes. `progress(label, done, total)` is called after every
    epoch of sequential training (done = epochs so far, total = max epochs) and once with
    done == total when a topology finishes. `batch_size` None picks `auto_batch_size`;
    `target_transform` ("auto", "asinh", "none") picks what the networks learn (`target_transform_for`);
    the compiled module always returns y itself. `exact_timer` (seconds per call of the exact
    region, measured now: `regionx.sample.exact_timer`) re-times the exact code right before and
    after each topology's timings, so every speedup is a side-by-side ratio; without it the
    dataset's time (measured while sampling) is used. `refine` ("auto", "lm", "lbfgs", "none")
    picks the second-order refinement after Adam (regionx.refine), given up to `refine_seconds`
    per topology; what it did is recorded per topology in the reports.

    Returns StageResult: "ok" with artifacts {'manifest', 'module', 'report_md', 'report_json',
    'model', 'weights'}; "failed" with RX401 (no topology met `target`; reports still written),
    RX307 (unusable dataset), RX402 (TensorFlow unavailable) or RX403 (bad topology list).
    data = {'rows': [TopologyResult.to_json() + {'chosen': bool}], 'chosen': row or None, 'best': row or None, ...}.
    """
    from regionx import __version__

    meta = dataset.meta
    src = meta.source_path or "<dataset>"
    tolerance = float(meta.tolerance if tolerance is None else tolerance)
    metric = meta.metric if metric is None else metric
    topologies = list(DEFAULT_TOPOLOGIES if topologies is None else topologies)

    # ---- validate inputs (user errors become diagnostics) ----
    if metric not in ("rel", "abs"):
        return StageResult("failed", meta.region_id, (make("RX006", src, detail=f"metric must be 'rel' or 'abs', not {metric!r}"),))
    if not (tolerance > 0 and math.isfinite(tolerance)):
        return StageResult("failed", meta.region_id, (make("RX006", src, detail=f"tolerance must be positive, not {tolerance!r}"),))
    if not (0.0 < target <= 1.0):
        return StageResult("failed", meta.region_id, (make("RX006", src, detail=f"target must be in (0, 1], not {target!r}"),))
    if target_transform not in TARGET_TRANSFORMS:
        return StageResult("failed", meta.region_id, (make("RX006", src, detail=f"target_transform must be one of {', '.join(TARGET_TRANSFORMS)}"),))
    if epochs < 1 or (batch_size is not None and batch_size < 1):
        return StageResult("failed", meta.region_id, (make("RX006", src, detail="epochs and batch size must be at least 1"),))
    if refine not in REFINE_METHODS or not refine_seconds >= 0:
        return StageResult("failed", meta.region_id, (make("RX006", src, detail=f"refine must be one of {', '.join(REFINE_METHODS)} "
                                                           f"with refine_seconds >= 0, not {refine!r}, {refine_seconds!r}"),))
    if select_by not in ("call", "batch"):
        return StageResult("failed", meta.region_id, (make("RX006", src, detail=f"select_by must be 'call' or 'batch', not {select_by!r}"),))
    if not topologies:
        return StageResult("failed", meta.region_id, (make("RX403", src, spec="", detail="no topologies given"),))
    for hidden, act in topologies:
        if not hidden or any(int(w) < 1 for w in hidden) or act not in HIDDEN_ACTIVATIONS:
            return StageResult("failed", meta.region_id, (make("RX403", src, spec=topology_label(hidden, act),
                                                               detail=f"widths must be >= 1 and activation one of {', '.join(HIDDEN_ACTIVATIONS)}"),))
    X = np.asarray(dataset.X, dtype=np.float64)
    Y = np.asarray(dataset.Y, dtype=np.float64)
    d_in = sum(v.size for v in meta.inputs)
    d_out = sum(v.size for v in meta.outputs)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        return _invalid(src, meta.region_id, f"X {X.shape} and Y {Y.shape} must be 2-D with the same number of rows")
    if X.shape[1] != d_in or Y.shape[1] != d_out:
        return _invalid(src, meta.region_id, f"X/Y have {X.shape[1]}/{Y.shape[1]} columns but the interface has {d_in}/{d_out}")
    if X.shape[0] < MIN_SAMPLES:
        return _invalid(src, meta.region_id, f"{X.shape[0]} samples; at least {MIN_SAMPLES} are needed to train and test")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        return _invalid(src, meta.region_id, "X or Y holds NaN or infinite values")

    # ---- split and normalise ----
    tr, va, te = _split(X.shape[0], seed)
    x_mean, x_scale = _scale(X[tr])
    lower = X[tr].min(axis=0)
    upper = X[tr].max(axis=0)
    transform = target_transform_for(Y[tr], metric, target_transform)
    T = Y if transform is None else np.arcsinh(Y / transform[1])
    y_mean, y_scale = _scale(T[tr])  # normalisation of what the network learns (y or asinh(y / s))
    Xn = (X - x_mean) / x_scale
    Yn = (T - y_mean) / y_scale
    weights = residual_weights(Y, metric, tolerance, transform, y_scale, Y[tr]) if refine != "none" else None
    if batch_size is None:
        batch_size = auto_batch_size(len(tr))

    if executor is None:
        try:
            _import_keras()
        except ImportError as exc:
            return StageResult("failed", meta.region_id, (make("RX402", src, detail=f"{exc}; install regionx[train]"),))
    else:
        import importlib.util

        if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
            return StageResult("failed", meta.region_id, (make("RX402", src, detail="tensorflow/keras not installed; install regionx[train]"),))

    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".regionx-train-", dir=out_dir)
    try:
        tasks = [{
            "hidden": tuple(int(w) for w in hidden), "activation": act, "seed": seed, "epochs": epochs,
            "batch_size": batch_size, "learning_rate": learning_rate, "patience": patience,
            # float64: Keras gets float32 copies, the refinement works in float64
            "Xtr": Xn[tr], "Ytr": Yn[tr], "Xva": Xn[va], "Yva": Yn[va],
            "Wtr": None if weights is None else weights[tr], "Wva": None if weights is None else weights[va],
            "refine": refine, "refine_seconds": refine_seconds,
            # so refinement can judge its attempts by the share of validation rows within tolerance
            "val_exact": Y[va], "y_mean": y_mean, "y_scale": y_scale, "transform": transform, "metric": metric,
            "tolerance": tolerance,
        } for hidden, act in topologies]

        # ---- train (all of it before any timing, so timings are not disturbed by training) ----
        trained: list[dict[str, Any]] = []
        try:
            if executor is None:
                for task in tasks:
                    trained.append(_train_topology(task, progress))
            else:
                futures = [executor.submit(_train_topology, task) for task in tasks]
                for fut, task in zip(futures, tasks):
                    trained.append(fut.result())
                    if progress is not None:
                        progress(topology_label(task["hidden"], task["activation"]), epochs, epochs)
        except ImportError as exc:
            return StageResult("failed", meta.region_id, (make("RX402", src, detail=str(exc)),))

        # ---- compile + measure every topology on the test split ----
        rows: list[TopologyResult] = []
        accept_info: list[dict[str, Any]] = []
        call_rows = rxcompile.call_args(X[te][:CALL_ROWS], meta.inputs)
        for i, res in enumerate(trained):
            sub = os.path.join(work, f"topology_{i}")
            path = rxcompile.compile_model(res["layers"], x_mean, x_scale, y_mean, y_scale, region_name=meta.region_name,
                                           inputs=meta.inputs, outputs=meta.outputs, lower=lower, upper=upper, out_dir=sub,
                                           out_transform=transform,
                                           batch_dtype=BATCH_DTYPE)
            module = rxcompile.load_module(path)
            pred = module.predict(X[te])
            m = error_metrics(pred, Y[te], metric, tolerance)
            # The exact code is re-timed around the surrogate's timings (same load, same moment).
            exact_before = exact_timer() if exact_timer is not None else float(meta.exact_time_per_call)
            t_call = rxcompile.time_per_call(module.predict_one, call_rows, repeats=5)
            t_elem = rxcompile.time_per_element(module.predict, X[te], rows=BATCH_ROWS, repeats=5)
            t_exact = 0.5 * (exact_before + exact_timer()) if exact_timer is not None else exact_before
            am: dict[str, Any] = {}
            if meta.accept:
                am = accept_metrics(meta.accept, X[te], pred, Y[te], meta.inputs, meta.outputs, metric, tolerance,
                                    exact_time_per_call=t_exact, time_per_call=t_call, time_per_element=t_elem)
                accept_info.append(am)
            program_accuracy = m["accuracy"] if am.get("effective_accuracy") is None else am["effective_accuracy"]
            rows.append(TopologyResult(
                hidden=tuple(res["hidden"]), activation=res["activation"], train_time=float(res["train_time"]),
                steps=int(res["steps"]), epochs=int(res["epochs"]), loss=m["loss"], mean_error=m["mean_error"],
                max_error=m["max_error"], accuracy=m["accuracy"], time_per_call=t_call, time_per_element=t_elem,
                exact_time_per_call=t_exact, meets_target=program_accuracy >= target,
                accept_rate=am.get("accept_rate"), effective_accuracy=am.get("effective_accuracy"),
                effective_time_per_call=am.get("effective_time_per_call"),
                effective_time_per_element=am.get("effective_time_per_element"),
            ))

        chosen_i = select_topology(rows, target, by=select_by)
        best_i = best_row(rows)
        row_dicts = []
        for i, r in enumerate(rows):
            d = r.to_json()
            d["chosen"] = i == chosen_i
            d["predict_one_path"] = "scalar" if rxcompile.use_scalar_path(trained[i]["layers"]) else "numpy"
            d["best_val_loss"] = trained[i]["best_val_loss"]
            ref = trained[i].get("refine") or {}
            d["optimizer"] = "adam" if ref.get("method", "adam") == "adam" else f"adam+{ref['method']}"
            d["adam_time"] = trained[i].get("adam_time", r.train_time)
            d["refine"] = ref
            if accept_info:
                a = accept_info[i]
                d.update({k: a[k] for k in ("accepted_accuracy", "accept_time_per_call", "accept_time_per_element")})
                d["accept_vectorised"] = a["vectorised"]
                d["accept_problem"] = a["problem"]
                d["effective_speedup_call"] = _ratio(r.exact_time_per_call, r.program_time_per_call)
                d["effective_speedup_batch"] = _ratio(r.exact_time_per_call, r.program_time_per_element)
            row_dicts.append(d)
        chosen_row = row_dicts[chosen_i] if chosen_i is not None else None
        best = row_dicts[best_i] if best_i is not None else None
        report = {
            "version": 1,
            "status": "ok" if chosen_i is not None else "failed",
            "region_id": meta.region_id,
            "region_name": meta.region_name,
            "tolerance": tolerance,
            "metric": metric,
            "target": target,
            "seed": seed,
            "select_by": select_by,
            # where each row's exact_time_per_call comes from
            "exact_timing": "interleaved" if exact_timer is not None else "sampling",
            "accept": meta.accept,
            "training": {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                         "early_stopping_patience": patience, "optimizer": "adam",
                         "schedule": f"cosine decay to {LR_FLOOR:g} x peak", "loss": "mse (normalised)",
                         "target_transform": None if transform is None else f"{transform[0]}(y / {transform[1]:.6g})",
                         "split": list(SPLIT), "refine": refine, "refine_seconds": refine_seconds,
                         "refine_loss": ("mse (normalised)" if weights is None else
                                         "mse of residuals weighted by 1 / allowed error (train.residual_weights)")},
            "dataset": {
                "source_path": meta.source_path, "source_sha256": meta.source_sha256, "mode": meta.mode,
                "n": int(X.shape[0]), "n_train": int(len(tr)), "n_val": int(len(va)), "n_test": int(len(te)),
                "d_in": d_in, "d_out": d_out,
                "input_columns": [c for v in meta.inputs for c in v.columns()],
                "output_columns": [c for v in meta.outputs for c in v.columns()],
                "seed": meta.seed, "requested": meta.requested, "dropped": dict(meta.dropped),
                "exact_time_per_call": float(meta.exact_time_per_call),
                "lower": [float(v) for v in lower], "upper": [float(v) for v in upper],
            },
            "rows": row_dicts,
            "chosen": chosen_row,
            "best": best,
            "regionx_version": __version__,
        }
        report_json = os.path.join(out_dir, "report.json")
        report_md = os.path.join(out_dir, "report.md")
        _write_json(report_json, report)
        rxcompile.atomic_write_text(report_md, render_report_md(report))
        data = {"rows": row_dicts, "chosen": chosen_row, "best": best, "tolerance": tolerance, "metric": metric,
                "target": target, "select_by": select_by}
        artifacts = {"report_json": report_json, "report_md": report_md}

        if chosen_i is None:
            b = rows[best_i] if best_i is not None else None
            best_text = f"{b.label} at {b.accuracy:.1%}" if b is not None else "none"
            if b is not None and b.effective_accuracy is not None:
                best_text = f"{b.label} at {b.effective_accuracy:.1%} effective with accept ({b.accuracy:.1%} raw)"
            diag: Diagnostic = make("RX401", src, meta.line or 1, meta.col or 1, target=target, tolerance=tolerance,
                                    metric=metric, best=best_text)  # at the region (1:1 for older datasets)
            return StageResult("failed", meta.region_id, (diag,), artifacts=artifacts, data=data)

        # ---- write the chosen surrogate's artifacts ----
        res = trained[chosen_i]
        module_path = rxcompile.compile_model(res["layers"], x_mean, x_scale, y_mean, y_scale, region_name=meta.region_name,
                                              inputs=meta.inputs, outputs=meta.outputs, lower=lower, upper=upper,
                                              out_dir=out_dir, out_transform=transform,
                                           batch_dtype=BATCH_DTYPE)
        model_path = os.path.join(out_dir, "model.keras")
        rxcompile.atomic_write_bytes(model_path, res["model_bytes"])
        manifest = Manifest(
            region_id=meta.region_id, region_name=meta.region_name, source_path=meta.source_path,
            source_sha256=meta.source_sha256, inputs=meta.inputs, outputs=meta.outputs, domain=dict(meta.domain),
            tolerance=tolerance, metric=metric, target=target, accept=meta.accept, topology=rows[chosen_i],  # type: ignore[arg-type]
            module=os.path.basename(module_path), lower=tuple(float(v) for v in lower),
            upper=tuple(float(v) for v in upper), seed=seed, regionx_version=__version__,
            closure_sha256=meta.closure_sha256, closure=meta.closure, pragma_tolerance=meta.tolerance,
            pragma_metric=meta.metric, require=meta.require,
        )
        manifest_path = os.path.join(out_dir, "manifest.json")
        _write_json(manifest_path, manifest.to_json())  # last: its presence means the artifacts are complete
        artifacts.update(manifest=manifest_path, module=module_path, model=model_path,
                         weights=os.path.join(out_dir, "weights.npz"))
        return StageResult("ok", meta.region_id, (), artifacts=artifacts, data=data)
    finally:
        shutil.rmtree(work, ignore_errors=True)
