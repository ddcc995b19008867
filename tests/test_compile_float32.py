"""The float32 batch path of a compiled surrogate (what `regionx train` ships: BATCH_DTYPE) against
Keras' own predictions of the same model, across chunk boundaries and far from the origin."""

from __future__ import annotations

import numpy as np
import pytest

from regionx import compile as rxc
from regionx.types import VarSpec


def _keras():
    from regionx.train import _import_keras

    return _import_keras()


CASES = [
    # (activation, hidden, inputs, outputs, box centre: inputs sit far from 0 to test the centring)
    ("tanh", (8, 5), (VarSpec("a"), VarSpec("b"), VarSpec("c")), (VarSpec("return"),), 0.0),
    ("relu", (16,), (VarSpec("r"), VarSpec("s")), (VarSpec("f"), VarSpec("g")), 1000.0),
    ("sigmoid", (6, 4), (VarSpec("v", (3,)), VarSpec("t")), (VarSpec("out", (2,)),), -50.0),
]


@pytest.mark.parametrize("act,hidden,inputs,outputs,centre", CASES, ids=["tanh", "relu-offset", "sigmoid-arrays"])
def test_float32_batch_path_matches_keras(tmp_path, act, hidden, inputs, outputs, centre) -> None:
    from regionx.train import BATCH_DTYPE

    assert BATCH_DTYPE == "float32"  # the path tested here is the one training compiles
    keras, _tf = _keras()
    d_in = sum(v.size for v in inputs)
    d_out = sum(v.size for v in outputs)
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input(shape=(d_in,))]
                             + [keras.layers.Dense(h, activation=act, bias_initializer="random_normal") for h in hidden]
                             + [keras.layers.Dense(d_out, bias_initializer="random_normal")])
    rng = np.random.default_rng(len(hidden) * 10 + d_in)
    half_width = rng.uniform(0.5, 3.0, size=d_in)
    lower, upper = centre - half_width, centre + half_width
    x_mean, x_scale = centre + rng.normal(size=d_in) * 0.1, half_width / np.sqrt(3.0)
    y_mean, y_scale = rng.normal(size=d_out) * 10, rng.uniform(0.1, 5.0, size=d_out)
    layers = rxc.keras_layers(model)
    # more rows than one chunk holds, so that a full and a partial chunk both run
    n = rxc.chunk_rows(layers) + 123
    X = rng.uniform(lower, upper, size=(n, d_in))

    path = rxc.compile_model(layers, x_mean, x_scale, y_mean, y_scale, region_name="f32", inputs=inputs,
                             outputs=outputs, lower=lower, upper=upper, out_dir=str(tmp_path / "f32"),
                             batch_dtype="float32")
    mod = rxc.load_module(path)
    assert mod._W0b.dtype == np.float32 and hasattr(mod, "_CENTER")  # really the float32 path
    expected = np.asarray(model.predict(((X - x_mean) / x_scale).astype(np.float32), verbose=0, batch_size=1024),
                          dtype=np.float64) * y_scale + y_mean
    got = mod.predict(X)
    assert got.shape == (n, d_out) and got.dtype == np.float64
    scale = np.max(np.abs(expected))
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-6 * scale)  # ~17 float32 ulps
    # into a caller's buffer too (the batched loop's form)
    buffer = np.full((n, d_out), np.nan)
    assert mod.predict(X, out=buffer) is buffer
    np.testing.assert_array_equal(buffer, got)
    # the scratch buffer the module keeps between calls: after a smaller call, and from threads
    # calling at once (numpy lets go of the GIL in matmul), every answer stays the same
    np.testing.assert_allclose(mod.predict(X[:7]), got[:7], rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_array_equal(mod.predict(X), got)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        for answer in pool.map(lambda _: mod.predict(X), range(12)):
            np.testing.assert_array_equal(answer, got)
    # and the float64 path of the same model agrees to float32 precision
    exact64 = rxc.load_module(rxc.compile_model(layers, x_mean, x_scale, y_mean, y_scale, region_name="f32",
                                                inputs=inputs, outputs=outputs, lower=lower, upper=upper,
                                                out_dir=str(tmp_path / "f64"), batch_dtype="float64"))
    assert exact64._W0b.dtype == np.float64
    np.testing.assert_allclose(got, exact64.predict(X), rtol=2e-6, atol=2e-6 * scale)
