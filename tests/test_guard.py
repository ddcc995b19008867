"""The learned guard (regionx.guard): calibration keeps its promise on fresh data, the compiled
module scores as calibration did, and the patched program's batched path uses it."""

from __future__ import annotations

import numpy as np
import pytest

from regionx import compile as rxcompile
from regionx import guard as rxguard
from regionx.types import VarSpec

TARGET = 0.99


def _world(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and whether the network is within tolerance: misses grow likelier with the score."""
    s = rng.normal(size=n)
    bad = rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-4.0 * (s - 1.5)))
    return s, ~bad


def test_calibrated_program_accuracy_holds_on_fresh_data_in_the_promised_share_of_runs() -> None:
    # 20 calibration sets of 2,000 rows; each threshold judged on 200,000 fresh rows. The promise:
    # with 95% confidence the program meets the target, so at most 5% of runs may miss it
    # (P[>= 4 of 20] = 1.6% if exactly 5% did; the LTT bound is conservative, so fewer do).
    grid = np.quantile(np.random.default_rng(99).normal(size=5000), np.linspace(0, 1, rxguard.GRID))
    fresh_s, fresh_fine = _world(np.random.default_rng(12345), 200_000)
    below = 0
    answered = []
    for seed in range(20):
        s, fine = _world(np.random.default_rng(seed), 2000)
        t = rxguard.calibrate(s, fine, grid, TARGET)
        assert t is not None  # this world has a threshold that works (about 80% answered)
        used = fresh_s <= t
        accuracy = float(np.mean(~used | fresh_fine))
        below += accuracy < TARGET
        answered.append(float(np.mean(used)))
    assert below <= 3
    # and it is not trivially safe: the network still answers most rows
    assert 0.5 < float(np.median(answered)) < 0.95


def test_calibration_refuses_when_no_threshold_can_meet_the_target() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=2000)
    fine = rng.uniform(size=2000) < 0.5  # misses everywhere, unrelated to the score
    grid = np.quantile(s, np.linspace(0.02, 1, 50))  # even the strictest threshold answers 2% of rows
    assert rxguard.calibrate(s, fine, grid, TARGET) is None


def test_calibration_answers_everything_when_the_network_is_always_fine() -> None:
    s = np.random.default_rng(1).normal(size=3000)
    grid = np.quantile(s, np.linspace(0, 1, 100))
    t = rxguard.calibrate(s, np.ones(3000, dtype=bool), grid, TARGET)
    assert t == pytest.approx(float(grid.max()))


def _jump(X: np.ndarray) -> np.ndarray:
    return np.where(X[:, 0] ** 2 + X[:, 1] ** 2 < 0.5, np.sin(3 * X[:, 0]) + X[:, 1], 1.0 - X[:, 0])


def test_learned_guard_sends_the_band_around_a_jump_to_the_exact_code(tmp_path) -> None:
    # the "network": the smooth inside formula everywhere, so every row outside the circle is wrong
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(9000, 2))
    exact = _jump(X)
    net = np.sin(3 * X[:, 0]) + X[:, 1]
    ratio = np.abs(net - exact) / 0.01
    fit = rxguard.learn_guard(X_fit=X[:5000], ratio_fit=ratio[:5000], X_sel=X[5000:7000], ratio_sel=ratio[5000:7000],
                              X_cal=X[7000:], fine_cal=ratio[7000:] <= 1.0, target=TARGET, seed=0,
                              cost=lambda hidden, answered: 1.0 - answered, topologies=((8,),))
    assert isinstance(fit, rxguard.GuardFit)
    Xf = rng.uniform(-1, 1, size=(20000, 2))
    inside = Xf[:, 0] ** 2 + Xf[:, 1] ** 2 < 0.5
    used = rxguard.score(fit.layers, fit.x_mean, fit.x_scale, Xf) <= fit.threshold
    assert np.mean(~used | inside) >= TARGET  # program accuracy on fresh rows
    assert np.mean(used) > 0.25  # the network still answers a good part of the disc (39% of the square)

    # compiled beside a surrogate: the module's guard and guard_one agree with the reference score
    ins = (VarSpec("x", ()), VarSpec("y", ()))
    layers = [(np.array([[1.0], [0.5]]), np.array([0.0]), "linear")]
    path = rxcompile.compile_model(layers, np.zeros(2), np.ones(2), np.zeros(1), np.ones(1), region_name="jump",
                                   inputs=ins, outputs=(VarSpec("return", ()),), lower=[-1, -1], upper=[1, 1],
                                   out_dir=str(tmp_path), guard=(rxguard.folded(fit), fit.threshold))
    assert (tmp_path / "guard_jump.py").exists()
    module = rxcompile.load_module(path)
    batch = module.guard(Xf[:2000])
    assert np.array_equal(batch, used[:2000])
    assert [module.guard_one(float(a), float(b)) for a, b in Xf[:300]] == batch[:300].tolist()


def test_module_without_guard_has_no_guard_functions(tmp_path) -> None:
    ins = (VarSpec("x", ()),)
    layers = [(np.array([[2.0]]), np.array([1.0]), "linear")]
    module = rxcompile.load_module(rxcompile.compile_model(
        layers, np.zeros(1), np.ones(1), np.zeros(1), np.ones(1), region_name="lin", inputs=ins,
        outputs=(VarSpec("return", ()),), lower=[0], upper=[1], out_dir=str(tmp_path)))
    assert not hasattr(module, "guard") and not hasattr(module, "guard_one")
    assert not (tmp_path / "guard_lin.py").exists()
