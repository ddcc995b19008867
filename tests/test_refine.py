"""Second-order refinement after Adam (regionx.refine and its use in regionx.train)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from regionx import compile as rxc
from regionx import refine as R
from regionx.train import residual_weights, train_dataset
from regionx.types import Dataset, DatasetMeta, VarSpec


def _finite_difference_jacobian(theta: np.ndarray, spec: R.NetSpec, X: np.ndarray, Y: np.ndarray,
                                w: np.ndarray | None, h: float = 1e-6) -> np.ndarray:
    cols = []
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        cols.append((R.residuals(theta + e, spec, X, Y, w) - R.residuals(theta - e, spec, X, Y, w)) / (2 * h))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("activations", [
    ("tanh", "relu", "linear"), ("sigmoid", "tanh", "linear"), ("linear", "sigmoid", "tanh"), ("relu", "relu", "sigmoid"),
])
@pytest.mark.parametrize("weighted", [False, True])
def test_jacobian_and_gradient_match_finite_differences(activations: tuple[str, ...], weighted: bool) -> None:
    rng = np.random.default_rng(0)
    spec = R.NetSpec((3, 5, 4, 2), activations)
    theta = R.init_params(spec, rng) + rng.normal(0.0, 0.3, spec.n_params)  # nonzero biases too
    X = rng.normal(size=(9, 3))
    Y = rng.normal(size=(9, 2))
    w = rng.uniform(0.5, 2.0, size=(9, 2)) if weighted else None
    J = R.jacobian(theta, spec, X, w=w)
    assert J.shape == (18, spec.n_params) == (18, 3 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2)
    np.testing.assert_allclose(J, _finite_difference_jacobian(theta, spec, X, Y, w), atol=1e-7)
    loss, grad = R.loss_and_grad(theta, spec, X, Y, w)
    r = R.residuals(theta, spec, X, Y, w)
    assert loss == pytest.approx(float(r @ r) / r.size)
    np.testing.assert_allclose(grad, 2.0 * J.T @ r / r.size, atol=1e-12)


def test_pack_unpack_and_forward_agree_with_the_compiler() -> None:
    rng = np.random.default_rng(1)
    layers = [(rng.normal(size=(2, 6)), rng.normal(size=6), "tanh"), (rng.normal(size=(6, 3)), rng.normal(size=3), "relu"),
              (rng.normal(size=(3, 1)), rng.normal(size=1), "linear")]
    spec = R.NetSpec.of(layers)
    assert spec.n_params == R.n_params((6, 3), 2, 1) == 2 * 6 + 6 + 6 * 3 + 3 + 3 + 1
    back = R.unpack(R.pack(layers), spec)
    for (W, b, act), (W2, b2, act2) in zip(layers, back):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
        assert act == act2
    X = rng.normal(size=(20, 2))
    np.testing.assert_allclose(R.predict(R.pack(layers), spec, X), rxc.forward(layers, X), rtol=1e-12)
    with pytest.raises(ValueError):
        R.NetSpec.of([(np.zeros((2, 3)), np.zeros(4), "tanh")])


def test_method_rules() -> None:
    assert R.choose_method("auto", 80, 10000) == "lm"
    assert R.choose_method("auto", R.LM_MAX_PARAMS + 1, 10**6) == "lbfgs"
    assert R.choose_method("auto", 80, 100) == "lbfgs"  # too few residuals per weight for LM
    assert R.choose_method("lm", 80, 50) == "lbfgs"  # LM needs an overdetermined system
    assert R.choose_method("none", 80, 10000) == "none"
    with pytest.raises(ValueError):
        R.choose_method("adam", 80, 10000)
    assert R.restarts_for(50, "lm") == R.RESTARTS and R.restarts_for(50, "lbfgs") == 0
    assert R.restarts_for(R.RESTART_MAX_PARAMS + 1, "lm") == 0
    # the iteration budget is a count from the cost model: more time buys more, bigger nets fewer
    assert R.iteration_budget("lm", 80, 10000, 10.0) > R.iteration_budget("lm", 80, 10000, 1.0)
    assert R.iteration_budget("lm", 400, 10000, 10.0) < R.iteration_budget("lm", 80, 10000, 10.0)
    assert R.iteration_budget("lbfgs", 10**6, 10**6, 0.0) == R.MIN_ITERATIONS


def test_residual_weights_follow_the_accuracy_criterion() -> None:
    from regionx.criterion import Criterion

    Y = np.array([[0.0], [0.5], [1.0], [4.0]])
    absolute = Criterion.resolve(reference=Y, tolerance=0.1, metric="abs")
    # abs with one output: every weight equal, so plain mse
    assert residual_weights(Y, absolute, None, np.array([2.0])) is None
    # abs with outputs on different scales: an error in normalised units costs y_scale in y
    w2 = residual_weights(np.ones((3, 2)), absolute, None, np.array([1.0, 3.0]))
    assert w2 is not None and w2[0, 1] / w2[0, 0] == pytest.approx(3.0)
    # rel: weight ~ 1 / (atol + rtol |y|) = 1 / (rtol (floor + |y|)), floor = 5% of the median |y| (0.75) = 0.0375
    rel = Criterion.resolve(reference=Y, tolerance=0.01, metric="rel")
    assert rel.floor == pytest.approx((0.0375,))
    w = residual_weights(Y, rel, None, np.array([1.0]))
    assert w is not None
    assert float(np.mean(w * w)) == pytest.approx(1.0)
    assert w[0, 0] / w[2, 0] == pytest.approx(1.0375 / 0.0375)
    assert w[2, 0] / w[3, 0] == pytest.approx(4.0375 / 1.0375)
    # through asinh(y / s): dy/dt = sqrt(s^2 + y^2) makes big |y| weigh as much as small ones
    wa = residual_weights(Y[1:], rel, ("asinh", 0.1), np.array([1.0]))
    assert wa is not None and wa.max() / wa.min() < 1.25


def _noise_problem(seed: int = 0) -> tuple[list[R.Layer], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Targets that are pure noise: fitting the training rows can only make validation worse."""
    rng = np.random.default_rng(seed)
    spec = R.NetSpec((2, 12, 1), ("tanh", "linear"))
    layers = R.unpack(R.init_params(spec, rng) * 0.01, spec)  # ~ the constant 0: the best guess for noise
    Xtr, Xva = rng.normal(size=(60, 2)), rng.normal(size=(60, 2))
    return layers, Xtr, rng.normal(size=(60, 1)), Xva, rng.normal(size=(60, 1))


@pytest.mark.parametrize("method", ["lm", "lbfgs"])
def test_refinement_never_returns_a_worse_validation_loss(method: str) -> None:
    layers, Xtr, Ytr, Xva, Yva = _noise_problem()
    res = R.refine(layers, Xtr, Ytr, Xva, Yva, method=method, seconds=2.0, restarts=1)
    assert res.val_after <= res.val_before
    assert res.attempts and all(a["optimizer"] == method for a in res.attempts)
    # validation targets the start predicts exactly: no attempt can beat a validation loss of 0, so
    # the start comes back unchanged although both attempts ran on the training noise
    spec = R.NetSpec.of(layers)
    res = R.refine(layers, Xtr, Ytr, Xva, R.predict(R.pack(layers), spec, Xva), method=method, seconds=2.0, restarts=1)
    assert len(res.attempts) == 2 and all(a["iterations"] > 0 for a in res.attempts)
    assert res.attempts[1]["val_loss"] > 0.0  # the random start ends elsewhere
    assert res.method == "adam" and res.val_after == res.val_before == 0.0
    for (W, b, _a), (W2, b2, _a2) in zip(layers, res.layers):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    none = R.refine(layers, Xtr, Ytr, Xva, Yva, method="none")
    assert none.method == "adam" and none.attempts == [] and none.summary()["requested"] == "none"


def _sin_dataset(n: int = 2000, seed: int = 0) -> Dataset:
    """y = sin(a) * b on a in [-2, 2], b in [0.5, 2] (abs tolerance 0.01)."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(-2.0, 2.0, n), rng.uniform(0.5, 2.0, n)])
    Y = (np.sin(X[:, 0]) * X[:, 1])[:, None]
    meta = DatasetMeta(region_id="sinb", region_name="sinb", source_path="fixtures/sinb.py", source_sha256="cd" * 32,
                       inputs=(VarSpec("a"), VarSpec("b")), outputs=(VarSpec("return"),),
                       domain={"a": "uniform(-2, 2)", "b": "uniform(0.5, 2)"}, seed=seed, requested=n, dropped={},
                       exact_time_per_call=5e-6, tolerance=0.01, metric="abs")
    return Dataset(X=X, Y=Y, meta=meta)


def test_lm_beats_adam_alone_and_its_weights_reach_every_artifact(tmp_path) -> None:
    ds = _sin_dataset()
    kw = {"topologies": [((8,), "tanh")], "epochs": 5, "seed": 0, "target": 1e-9, "refine_seconds": 3.0}
    adam = train_dataset(ds, str(tmp_path / "adam"), refine="none", **kw)
    lm = train_dataset(ds, str(tmp_path / "lm"), refine="lm", **kw)
    assert adam.ok and lm.ok, (adam.diagnostics, lm.diagnostics)
    a, r = adam.payload.rows[0], lm.payload.rows[0]
    assert a["optimizer"] == "adam" and a["refine"]["attempts"] == []
    assert r["optimizer"] == "adam+lm" and r["refine"]["method"] == "lm"
    # the same Adam start (same seed), then LM: lower validation loss, and lower test loss on the compiled module
    assert r["refine"]["val_loss_before"] == pytest.approx(a["refine"]["val_loss_before"])
    assert r["refine"]["val_loss_after"] < 0.1 * r["refine"]["val_loss_before"]
    assert r["loss"] < a["loss"] and r["accuracy"] >= a["accuracy"]
    assert r["train_time"] == pytest.approx(r["adam_time"] + r["refine"]["seconds"])
    # report.json / report.md record the optimizer, its time and the losses
    report = json.loads((tmp_path / "lm" / "report.json").read_text())
    assert report["training"]["refine"] == "lm" and report["rows"][0]["refine"]["attempts"][0]["start"] == "adam"
    md = (tmp_path / "lm" / "report.md").read_text()
    assert "| 2x8x1 | tanh | adam+lm |" in md and "Val loss before" in md
    assert "Refinement after Adam" not in (tmp_path / "adam" / "report.md").read_text()
    # model.keras holds the refined weights: it predicts what the compiled module predicts
    from regionx.train import _import_keras

    keras, _tf = _import_keras()
    model = keras.models.load_model(str(tmp_path / "lm" / "model.keras"))
    module = rxc.load_module(lm.artifacts["module"])
    from regionx.train import _scale, _split

    tr, _va, _te = _split(ds.X.shape[0], 0)  # the normalisation train_dataset used (seed 0)
    (x_mean, x_scale), (y_mean, y_scale) = _scale(ds.X[tr]), _scale(ds.Y[tr])
    X = ds.X[:64]
    keras_pred = model.predict((X - x_mean) / x_scale, verbose=0) * y_scale + y_mean
    np.testing.assert_allclose(keras_pred, module.predict(X), rtol=1e-4, atol=1e-4)
    assert not np.allclose(keras.models.load_model(str(tmp_path / "adam" / "model.keras")).get_weights()[0],
                           model.get_weights()[0])


def test_refinement_is_deterministic_under_a_fixed_seed() -> None:
    ds = _sin_dataset(800, seed=3)
    rng = np.random.default_rng(5)
    spec = R.NetSpec((2, 5, 1), ("tanh", "linear"))
    layers = R.unpack(R.init_params(spec, rng), spec)
    X, Y = ds.X, ds.Y
    runs = [R.refine(layers, X[:600], Y[:600], X[600:], Y[600:], method=m, seconds=1.0, seed=7)
            for m in ("lm", "lm", "lbfgs", "lbfgs")]
    for first, second in (runs[0:2], runs[2:4]):
        assert first.val_after == second.val_after and first.method == second.method != "adam"
        assert [a["iterations"] for a in first.attempts] == [a["iterations"] for a in second.attempts]
        for (W, b, _a), (W2, b2, _a2) in zip(first.layers, second.layers):
            np.testing.assert_array_equal(W, W2)
            np.testing.assert_array_equal(b, b2)
    assert [a["start"] for a in runs[0].attempts] == ["adam", "random 1", "random 2"]  # restarts for a 21-weight net
    assert math.isfinite(runs[0].val_after)


def test_bad_refine_option_is_a_diagnostic(tmp_path) -> None:
    result = train_dataset(_sin_dataset(200), str(tmp_path / "bad"), topologies=[((3,), "tanh")], epochs=1, refine="newton")
    assert result.status == "failed" and [d.code for d in result.diagnostics] == ["RX006"]
