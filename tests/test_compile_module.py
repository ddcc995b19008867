"""The surrogate compiler: generated numpy-only modules must match the Keras model they came from."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from regionx import compile as rxc
from regionx.types import VarSpec

RTOL = 1e-5
ATOL = 1e-7


def _keras():
    from regionx.train import _import_keras

    return _import_keras()


def _random_model(d_in: int, hidden: tuple[int, ...], d_out: int, act: str, seed: int):
    keras, _tf = _keras()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape=(d_in,))]
                             + [keras.layers.Dense(h, activation=act, bias_initializer="random_normal") for h in hidden]
                             + [keras.layers.Dense(d_out, bias_initializer="random_normal")])
    return model


def _keras_predict(model, X, x_mean, x_scale, y_mean, y_scale) -> np.ndarray:
    Xn = ((X - x_mean) / x_scale).astype(np.float32)
    return np.asarray(model.predict(Xn, verbose=0), dtype=np.float64) * y_scale + y_mean


def _one_args(X: np.ndarray, inputs) -> list[tuple]:
    return rxc.call_args(X, inputs)


def _flatten_one(value, outputs) -> np.ndarray:
    if len(outputs) == 1:
        value = (value,)
    return np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in value])


CASES = [
    # (activation, hidden, inputs, outputs, force scalar path?)
    ("tanh", (5, 3), (VarSpec("a"), VarSpec("b"), VarSpec("c")), (VarSpec("return"),), None),
    ("relu", (8,), (VarSpec("a"), VarSpec("b")), (VarSpec("return"),), None),
    ("sigmoid", (5, 3), (VarSpec("x"),), (VarSpec("y"), VarSpec("z")), None),
    ("linear", (4,), (VarSpec("a"), VarSpec("b")), (VarSpec("return"),), None),
    ("tanh", (32, 32), (VarSpec("a"), VarSpec("b")), (VarSpec("return"),), None),  # numpy path by size
    ("relu", (16, 16), (VarSpec("r"),), (VarSpec("f"),), True),  # forced scalar path
    ("sigmoid", (6,), (VarSpec("a"),), (VarSpec("return"),), False),  # forced numpy path
    ("tanh", (6, 4), (VarSpec("v", (3,)), VarSpec("s")), (VarSpec("out", (2, 2)),), None),  # array in/out, scalar
    ("relu", (6, 4), (VarSpec("v", (3,)), VarSpec("s")), (VarSpec("out", (2,)), VarSpec("n")), False),  # array, numpy
    ("tanh", (3,), (VarSpec("lambda"), VarSpec("_x")), (VarSpec("return"),), None),  # unsafe parameter names
]


@pytest.mark.parametrize("act,hidden,inputs,outputs,scalar", CASES)
def test_module_matches_keras(tmp_path, act, hidden, inputs, outputs, scalar):
    d_in = sum(v.size for v in inputs)
    d_out = sum(v.size for v in outputs)
    rng = np.random.default_rng(len(hidden) + d_in)
    model = _random_model(d_in, hidden, d_out, act, seed=3)
    x_mean = rng.normal(size=d_in) * 3
    x_scale = rng.uniform(0.5, 4.0, size=d_in)
    y_mean = rng.normal(size=d_out) * 10
    y_scale = rng.uniform(0.1, 5.0, size=d_out)
    X = x_mean + x_scale * rng.normal(size=(200, d_in))
    lower, upper = X.min(axis=0), X.max(axis=0)
    path = rxc.compile_model(rxc.keras_layers(model), x_mean, x_scale, y_mean, y_scale, region_name="demo-region",
                             inputs=inputs, outputs=outputs, lower=lower, upper=upper, out_dir=str(tmp_path),
                             scalar_path=scalar)
    assert os.path.basename(path) == "surrogate_demo_region.py"
    assert (tmp_path / "weights.npz").exists()
    mod = rxc.load_module(path)
    expected = _keras_predict(model, X, x_mean, x_scale, y_mean, y_scale)

    # batch path
    got = mod.predict(X)
    assert got.shape == (200, d_out) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * np.max(np.abs(expected)))

    # one-call path, including shapes and the tuple/scalar return convention
    for args, exp in zip(_one_args(X[:40], inputs), expected[:40]):
        value = mod.predict_one(*args)
        if len(outputs) == 1 and not outputs[0].shape:
            assert isinstance(value, float)
        elif len(outputs) > 1:
            assert isinstance(value, tuple) and len(value) == len(outputs)
            for v, spec in zip(value, outputs):
                assert np.shape(v) == spec.shape
        else:
            assert np.shape(value) == outputs[0].shape
        np.testing.assert_allclose(_flatten_one(value, outputs), exp, rtol=RTOL, atol=ATOL * np.max(np.abs(expected)))

    # the module's metadata
    assert mod.INPUTS == tuple(v.name for v in inputs)
    assert mod.INPUT_SHAPES == tuple(v.shape for v in inputs)
    assert mod.OUTPUTS == tuple(v.name for v in outputs)
    assert mod.OUTPUT_SHAPES == tuple(v.shape for v in outputs)
    np.testing.assert_array_equal(mod.LOWER, lower)
    np.testing.assert_array_equal(mod.UPPER, upper)
    expected_path = ("scalar" if rxc.use_scalar_path(rxc.keras_layers(model)) else "numpy") if scalar is None else (
        "scalar" if scalar else "numpy")
    assert mod.PREDICT_ONE_PATH == expected_path

    # the domain guard, batch and one-call
    inside = mod.in_domain(X)
    assert inside.all()
    outside = X.copy()
    outside[::2, -1] = upper[-1] + 1.0
    outside[1::4, 0] = np.nan
    mask = mod.in_domain(outside)
    assert list(mask) == [False if (i % 2 == 0 or i % 4 == 1) else True for i in range(200)]
    for args, want in zip(_one_args(outside[:20], inputs), mask[:20]):
        assert mod.in_domain_one(*args) is bool(want)


def test_fold_normalisation_nonlinear_output_keeps_affine(tmp_path):
    rng = np.random.default_rng(0)
    layers = [(rng.normal(size=(2, 4)), rng.normal(size=4), "tanh"), (rng.normal(size=(4, 1)), rng.normal(size=1), "sigmoid")]
    x_mean, x_scale, y_mean, y_scale = np.array([1.0, -2.0]), np.array([2.0, 0.5]), np.array([3.0]), np.array([10.0])
    X = rng.normal(size=(50, 2))
    expected = rxc.forward(layers, (X - x_mean) / x_scale) * y_scale + y_mean
    inputs, outputs = (VarSpec("a"), VarSpec("b")), (VarSpec("return"),)
    for scalar in (True, False):
        path = rxc.compile_model(layers, x_mean, x_scale, y_mean, y_scale, region_name="sig", inputs=inputs,
                                 outputs=outputs, lower=[-9, -9], upper=[9, 9], out_dir=str(tmp_path / str(scalar)),
                                 scalar_path=scalar)
        mod = rxc.load_module(path)
        np.testing.assert_allclose(mod.predict(X), expected, rtol=1e-12, atol=1e-12)
        got = np.array([mod.predict_one(float(a), float(b)) for a, b in X])
        np.testing.assert_allclose(got, expected[:, 0], rtol=1e-12, atol=1e-12)


def test_sigmoid_does_not_overflow(tmp_path):
    layers = [(np.array([[1000.0]]), np.array([0.0]), "sigmoid"), (np.array([[1.0]]), np.array([0.0]), "linear")]
    path = rxc.compile_model(layers, [0.0], [1.0], [0.0], [1.0], region_name="s", inputs=(VarSpec("x"),),
                             outputs=(VarSpec("y"),), lower=[-5], upper=[5], out_dir=str(tmp_path))
    mod = rxc.load_module(path)
    assert mod.predict_one(-5.0) == pytest.approx(0.0, abs=1e-12)
    assert mod.predict_one(5.0) == pytest.approx(1.0)
    np.testing.assert_allclose(mod.predict(np.array([[-5.0], [5.0]]))[:, 0], [0.0, 1.0], atol=1e-12)


def test_generated_module_needs_numpy_only(tmp_path):
    rng = np.random.default_rng(1)
    for name, hidden in (("tiny", (3,)), ("big", (64, 64))):
        widths = [2, *hidden, 1]
        layers = [(rng.normal(size=(widths[i], widths[i + 1])), rng.normal(size=widths[i + 1]),
                   "tanh" if i < len(widths) - 2 else "linear") for i in range(len(widths) - 1)]
        out = tmp_path / name
        rxc.compile_model(layers, [0, 0], [1, 1], [0], [1], region_name=name, inputs=(VarSpec("a"), VarSpec("b")),
                                 outputs=(VarSpec("return"),), lower=[-1, -1], upper=[1, 1], out_dir=str(out))
        # Import from another working directory: weights.npz is found next to the module, not in cwd.
        code = ("import sys, importlib; sys.path.insert(0, sys.argv[1]); m = importlib.import_module(sys.argv[2]);"
                "print(m.predict_one(0.1, 0.2), m.predict([[0.1, 0.2]])[0, 0]);"
                "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules and 'regionx' not in sys.modules")
        proc = subprocess.run([sys.executable, "-c", code, str(out), f"surrogate_{name}"], cwd=str(tmp_path),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        a, b = (float(v) for v in proc.stdout.split())
        assert a == pytest.approx(b, rel=1e-12)


def test_compile_rejects_mismatched_interface(tmp_path):
    layers = [(np.ones((2, 1)), np.zeros(1), "linear")]
    with pytest.raises(ValueError, match="does not match interface"):
        rxc.compile_model(layers, [0], [1], [0], [1], region_name="m", inputs=(VarSpec("a"),), outputs=(VarSpec("y"),),
                          lower=[0], upper=[1], out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unsupported activation"):
        rxc.normalize_activation("softmax")


def test_generated_source_is_deterministic(tmp_path):
    rng = np.random.default_rng(2)
    layers = [(rng.normal(size=(2, 5)), rng.normal(size=5), "relu"), (rng.normal(size=(5, 1)), rng.normal(size=1), "linear")]
    args = dict(region_name="d", inputs=(VarSpec("a"), VarSpec("b")), outputs=(VarSpec("return"),), lower=[0, 0], upper=[1, 1])
    p1 = rxc.compile_model(layers, [0, 0], [1, 1], [0], [1], out_dir=str(tmp_path / "1"), **args)
    p2 = rxc.compile_model(layers, [0, 0], [1, 1], [0], [1], out_dir=str(tmp_path / "2"), **args)
    assert open(p1).read() == open(p2).read()


@pytest.mark.parametrize("hidden,expected", [((3,), True), ((8, 5, 3), True), ((11, 8, 5), True), ((32, 32), False), ((64, 64), False)])
def test_scalar_path_threshold(hidden, expected):
    widths = [3, *hidden, 1]
    layers = [(np.zeros((widths[i], widths[i + 1])), np.zeros(widths[i + 1]), "tanh") for i in range(len(widths) - 1)]
    assert rxc.use_scalar_path(layers) is expected


def test_timing_helpers_return_positive_seconds():
    args = [(1.0, 2.0)] * 4
    assert rxc.time_per_call(lambda a, b: a + b, args, repeats=2, budget=0.002) > 0
    assert rxc.time_per_element(lambda X: X.sum(axis=1), np.ones((10, 2)), rows=64, repeats=2, budget=0.002) > 0


@pytest.mark.parametrize("scalar, batch_dtype, inputs, log_cols", [
    (True, "float64", (VarSpec("v"), VarSpec("d")), (0, 1)),
    (False, "float32", (VarSpec("v"), VarSpec("d")), (1,)),
    (None, "float32", (VarSpec("w", (2,)), VarSpec("s")), (0, 1)),  # an array input taken as its log
])
def test_log_columns_are_taken_as_their_log_by_every_path(tmp_path, scalar, batch_dtype, inputs, log_cols):
    """compile_model(log_columns=...): predict, predict_one and check's weights.npz forward all
    apply the network to log(x) in those columns (x_mean/x_scale are then the logs'); the box
    (LOWER/UPPER) stays in the inputs' own units."""
    from regionx.check import _weights_forward
    from regionx.train.data import input_features

    rng = np.random.default_rng(3)
    d_in = sum(v.size for v in inputs)
    sizes = (d_in, 6, 4, 1)
    layers = [(rng.normal(size=(a, b)), rng.normal(size=b), "tanh" if k < 2 else "linear")
              for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    lower, upper = np.full(d_in, 0.01), np.full(d_in, 10.0)
    X = np.exp(rng.uniform(np.log(0.01), np.log(10.0), size=(50, d_in)))
    F = input_features(X, log_cols)
    x_mean, x_scale = F.mean(axis=0), F.std(axis=0)
    path = rxc.compile_model(layers, x_mean, x_scale, np.zeros(1), np.ones(1), region_name="flow", inputs=inputs,
                             outputs=(VarSpec("return"),), lower=lower, upper=upper, out_dir=str(tmp_path),
                             scalar_path=scalar, batch_dtype=batch_dtype, log_columns=log_cols)
    module = rxc.load_module(path)
    want = rxc.forward(layers, (F - x_mean) / x_scale)
    tol = 1e-5 if batch_dtype == "float32" else 1e-10
    np.testing.assert_allclose(module.predict(X), want, rtol=tol, atol=tol)
    one = np.array([module.predict_one(*args) for args in rxc.call_args(X, inputs)]).reshape(-1, 1)
    np.testing.assert_allclose(one, want, rtol=1e-10, atol=1e-10)
    forward = _weights_forward(str(tmp_path / "weights.npz"))
    assert forward is not None
    np.testing.assert_allclose(forward(X), want, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(module.LOWER, lower)
    assert module.LOG_COLUMNS == tuple(log_cols)
    with np.load(tmp_path / "weights.npz") as data:  # what regenerate_module reads them from
        assert tuple(data["log_columns"].tolist()) == tuple(log_cols)
