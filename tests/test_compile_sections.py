"""The generated surrogate module's sections, one emitter each (regionx.compile): generate_source is
their concatenation, and each section does its job on its own (no TensorFlow needed)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from regionx import compile as rxc
from regionx.types import VarSpec

Layers = list[tuple[np.ndarray, np.ndarray, str]]


def _layers(widths: list[int], acts: list[str], seed: int = 0) -> Layers:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(widths[i], widths[i + 1])) / math.sqrt(widths[i]), rng.normal(size=widths[i + 1]) * 0.1,
             acts[i]) for i in range(len(widths) - 1)]


def _module(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__file__": "/nonexistent/surrogate_x.py"}
    exec(compile(source, "surrogate_x.py", "exec"), namespace)
    return namespace


ARRAY_IO = ((VarSpec("v", (3,)), VarSpec("s")), (VarSpec("g", (2,)), VarSpec("e")))


@pytest.mark.parametrize("scalar_path", [True, False])
@pytest.mark.parametrize("batch_dtype", ["float64", "float32"])
def test_generate_source_is_its_sections_in_order(scalar_path: bool, batch_dtype: str) -> None:
    inputs, outputs = ARRAY_IO
    layers = _layers([4, 5, 3], ["relu", "sigmoid"])
    lower, upper = [-1.0] * 4, [1.0] * 4
    out_scale, out_shift, transform = np.array([2.0, 0.5, 1.5]), np.array([0.1, -0.2, 0.3]), ("asinh", 2.0)
    params = ["v", "s"]
    sections = (
        rxc.header_lines(layers, region_name="r", inputs=inputs, outputs=outputs, lower=lower, upper=upper,
                         scalar_path=scalar_path, version="1")
        + rxc.weight_lines(layers, inline=True, out_scale=out_scale, out_shift=out_shift, out_transform=transform)
        + rxc.batch_path_lines(layers, d_in=4, d_out=3, lower=lower, upper=upper, out_scale=out_scale,
                               out_shift=out_shift, out_transform=transform, batch_dtype=batch_dtype)
        + rxc.predict_one_lines(layers, params=params, inputs=inputs, outputs=outputs, scalar_path=scalar_path,
                                out_scale=out_scale, out_shift=out_shift, out_transform=transform)
        + rxc.in_domain_lines(params=params, inputs=inputs, lower=lower, upper=upper))
    source = rxc.generate_source(layers, region_name="r", inputs=inputs, outputs=outputs, lower=lower, upper=upper,
                                 out_scale=out_scale, out_shift=out_shift, scalar_path=scalar_path, version="1",
                                 out_transform=transform, batch_dtype=batch_dtype, inline_weights=True)
    assert source == "\n".join(sections)
    assert source.endswith("\n") and not source.endswith("\n\n")


def test_header_states_the_interface() -> None:
    inputs, outputs = ARRAY_IO
    layers = _layers([4, 6, 3], ["tanh", "linear"])
    ns = _module("\n".join(rxc.header_lines(layers, region_name="reg", inputs=inputs, outputs=outputs,
                                            lower=[0.0, 1.0, 2.0, 3.0], upper=[4.0, 5.0, 6.0, 7.0],
                                            scalar_path=False, version="9")))
    assert ns["REGION"] == "reg" and ns["INPUTS"] == ("v", "s") and ns["OUTPUTS"] == ("g", "e")
    assert ns["INPUT_SHAPES"] == ((3,), ()) and ns["OUTPUT_SHAPES"] == ((2,), ())
    assert ns["HIDDEN"] == (6,) and ns["ACTIVATIONS"] == ("tanh", "linear") and ns["PREDICT_ONE_PATH"] == "numpy"
    assert ns["LOWER"].tolist() == [0.0, 1.0, 2.0, 3.0] and ns["UPPER"].tolist() == [4.0, 5.0, 6.0, 7.0]
    assert "regionx 9" in ns["__doc__"] and "4 -> 6 -> 3" in ns["__doc__"]


def test_weights_inline_or_from_the_npz_and_the_output_map() -> None:
    layers = _layers([2, 3, 1], ["tanh", "sigmoid"])
    inline = rxc.weight_lines(layers, inline=True, out_scale=np.array([3.0]), out_shift=np.array([1.0]),
                              out_transform=("asinh", 0.5))
    ns = _module("import math\nimport numpy as np\n" + "\n".join(inline))
    for i, (W, b, _a) in enumerate(layers):
        assert np.array_equal(ns[f"_W{i}"], W) and np.array_equal(ns[f"_B{i}"], b)
    assert ns["OUTPUT_TRANSFORM"] == ("asinh", 0.5) and ns["_OUT_SCALE"].tolist() == [3.0]
    assert inline[-2:] == ["", ""]
    from_file = "\n".join(rxc.weight_lines(layers, inline=False, out_scale=None, out_shift=None, out_transform=None))
    assert "weights.npz" in from_file and "_W1 = np.ascontiguousarray(_data['W1']" in from_file
    assert "OUTPUT_TRANSFORM = None" in from_file and "_OUT_SCALE" not in from_file
    with pytest.raises(ValueError, match="unknown output transform"):
        rxc.weight_lines(layers, inline=True, out_scale=None, out_shift=None, out_transform=("log", 1.0))


@pytest.mark.parametrize("io", [
    ((VarSpec("a"), VarSpec("b")), (VarSpec("y"),)),
    ((VarSpec("a"),), (VarSpec("y"), VarSpec("z"))),
    ARRAY_IO,
])
def test_both_predict_one_paths_compute_the_network(io: tuple[tuple[VarSpec, ...], tuple[VarSpec, ...]]) -> None:
    inputs, outputs = io
    d_in, d_out = sum(v.size for v in inputs), sum(v.size for v in outputs)
    layers = _layers([d_in, 5, 4, d_out], ["tanh", "relu", "sigmoid"], seed=d_in)
    out_scale, out_shift = np.linspace(0.5, 2.0, d_out), np.linspace(-1.0, 1.0, d_out)
    params = rxc._predict_one_params(inputs)
    X = np.random.default_rng(1).uniform(-2, 2, size=(6, d_in))
    expected = 2.0 * np.sinh(rxc.forward(layers, X) * out_scale + out_shift)
    prelude = "import math\nimport numpy as np\n_tanh = math.tanh\n" + "\n".join(
        rxc.weight_lines(layers, inline=True, out_scale=out_scale, out_shift=out_shift, out_transform=("asinh", 2.0)))
    for scalar_path in (True, False):
        ns = _module(prelude + "\n" + "\n".join(rxc.predict_one_lines(
            layers, params=params, inputs=inputs, outputs=outputs, scalar_path=scalar_path, out_scale=out_scale,
            out_shift=out_shift, out_transform=("asinh", 2.0))))
        for args, want in zip(rxc.call_args(X, inputs), expected):
            got = ns["predict_one"](*args)
            got = got if isinstance(got, tuple) else (got,)
            flat = np.concatenate([np.ravel(np.asarray(g, dtype=np.float64)) for g in got])
            np.testing.assert_allclose(flat, want, rtol=1e-12, atol=1e-12)
            for value, spec in zip(got, outputs):
                assert np.shape(value) == spec.shape


def test_the_scalar_path_is_straight_line_float_code() -> None:
    layers = _layers([2, 3, 1], ["relu", "linear"])
    body = rxc.predict_one_scalar_lines(layers, params=["a", "b"], inputs=(VarSpec("a"), VarSpec("b")),
                                        outputs=(VarSpec("y"),), out_scale=None, out_shift=None, out_transform=None)
    assert not any("np." in line for line in body) and body[-1] == "    return _y0"
    assert sum(line.strip().startswith("if _h0_") for line in body) == 3  # relu of each hidden unit
    numpy_body = rxc.predict_one_numpy_lines(layers, params=["a", "b"], inputs=(VarSpec("a"), VarSpec("b")),
                                             outputs=(VarSpec("y"),), out_scale=None, out_transform=None)
    assert numpy_body[0] == "    h = np.array((a, b), dtype=np.float64)" and numpy_body[-1] == "    return float(h[0])"


def test_in_domain_section() -> None:
    inputs = (VarSpec("v", (2,)), VarSpec("s"))
    lines = rxc.in_domain_lines(params=["v", "s"], inputs=inputs, lower=[0.0, 0.0, -1.0], upper=[1.0, 1.0, 1.0])
    ns = _module("import numpy as np\nLOWER = np.array([0.0, 0.0, -1.0])\nUPPER = np.array([1.0, 1.0, 1.0])\n"
                 + "\n".join(lines))
    assert ns["in_domain"](np.array([[0.5, 0.5, 0.0], [0.5, 2.0, 0.0], [np.nan, 0.5, 0.0]])).tolist() == [True, False, False]
    assert ns["in_domain_one"](np.array([0.2, 0.3]), 0.5) is True
    assert ns["in_domain_one"]([0.2, 0.3], 0.5) is False  # trained on arrays: a list may mean something else
    assert ns["in_domain_one"](np.array([0.2, 0.3]), 2.0) is False
    assert ns["in_domain_one"](np.array([0.2, 0.3, 0.4]), 0.5) is False
    scalar = _module("\n".join(rxc.in_domain_lines(params=["a"], inputs=(VarSpec("a"),), lower=[0.0], upper=[1.0])))
    assert scalar["in_domain_one"](0.5) is True and scalar["in_domain_one"](1.5) is False


def test_predict_one_params_are_safe_unique_identifiers() -> None:
    inputs = (VarSpec("x"), VarSpec("lambda"), VarSpec("_p"), VarSpec("in1"), VarSpec("x"))
    assert rxc._predict_one_params(inputs) == ["x", "in1", "in2", "in1_3", "x_4"]
