"""Training one topology: a small dense network fitted by Keras (Adam, cosine-decayed rate,
early stopping), then refined by a second-order method (regionx.refine). A task is a picklable
dict, so it runs in-process or in an executor's worker.

TensorFlow/Keras are imported only inside functions (`_import_keras`)."""

from __future__ import annotations

import math
import os
import tempfile
import time
from typing import Any, Callable

import numpy as np

from regionx import compile as rxcompile
from regionx.refine import RefineResult
from regionx.train.metrics import denormalise
from regionx.train.topologies import topology_label

LEARNING_RATE = 1e-2  # Adam's peak rate, cosine-decayed to LR_FLOOR * peak over the epoch budget
LR_FLOOR = 1e-3
EARLY_STOP_PATIENCE = 25  # epochs without val-loss improvement before stopping (best weights restored)
# Second-order refinement after Adam (regionx.refine): "auto" is Levenberg-Marquardt for small
# networks and L-BFGS for larger ones, REFINE_SECONDS nominal per topology (a deterministic
# iteration budget); Adam's weights are kept unless refinement beats them on the validation split.
# Measured in benchmarks/results/optimizers.md.
REFINE_SECONDS = 30.0

ProgressFn = Callable[[str, int, int], None]


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
        # nominal_seconds: what the refinement was given (its iteration budget's basis; the search's ledger)
        "refine": {**refined.summary(), "nominal_seconds": float(task.get("refine_seconds", REFINE_SECONDS))},
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
                           seed=seed, wtr=task.get("Wtr"), wva=task.get("Wva"), val_accuracy=_val_accuracy(task),
                           restarts=task.get("restarts"))


def _val_accuracy(task: dict[str, Any]) -> Callable[[np.ndarray], float] | None:
    """Share of validation rows within tolerance, from the network's normalised prediction (None
    when the task does not carry the validation split's exact outputs)."""
    if task.get("val_exact") is None:
        return None
    exact = np.asarray(task["val_exact"], dtype=np.float64)
    y_mean, y_scale = np.asarray(task["y_mean"]), np.asarray(task["y_scale"])
    transform, criterion = task.get("transform"), task["criterion"]

    def accuracy(pred: np.ndarray) -> float:
        return float(np.mean(criterion.within(denormalise(pred, y_mean, y_scale, transform), exact))) if len(exact) else 0.0

    return accuracy


def _model_bytes_with(model_bytes: bytes, layers: list[tuple[np.ndarray, np.ndarray, str]]) -> bytes:
    """The saved Keras model with its dense layers' weights replaced by `layers` (refined later)."""
    keras, _tf = _import_keras()
    with tempfile.TemporaryDirectory(prefix="regionx-model-") as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as fh:
            fh.write(model_bytes)
        model = keras.models.load_model(path)
        dense = [layer for layer in model.layers if layer.get_weights()]
        for layer, (W, b, _act) in zip(dense, layers):
            layer.set_weights([W.astype(np.float32), b.astype(np.float32)])
        model.save(path)
        with open(path, "rb") as fh:
            return fh.read()
