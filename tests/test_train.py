"""`regionx train`: topology search, performance-driven selection and the artifacts it writes."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from regionx import compile as rxc
from regionx.train import (
    DEFAULT_TOPOLOGIES,
    error_metrics,
    parse_topologies,
    render_report_md,
    select_topology,
    train_dataset,
)
from regionx.types import Dataset, DatasetMeta, Manifest, TopologyResult, VarSpec


def linear_dataset(n: int = 1500, seed: int = 0, exact_time: float = 5e-6, tolerance: float = 0.01) -> Dataset:
    """y = 2a + b on a in [1, 2], b in [1, 2] (outputs 3..6, so rel tolerance 1% is 0.03..0.06)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(1.0, 2.0, size=(n, 2))
    Y = (2 * X[:, 0] + X[:, 1])[:, None]
    meta = DatasetMeta(region_id="lin", region_name="lin", source_path="fixtures/lin.py", source_sha256="ab" * 32,
                       inputs=(VarSpec("a"), VarSpec("b")), outputs=(VarSpec("return"),),
                       domain={"a": "uniform(1, 2)", "b": "uniform(1, 2)"}, seed=seed, requested=n, dropped={"raised": 0},
                       exact_time_per_call=exact_time, tolerance=tolerance, metric="rel")
    return Dataset(X=X, Y=Y, meta=meta)


# --------------------------------------------------------------------------- pure functions


@pytest.mark.parametrize("spec,expected", [
    ("5,3;8,5", [((5, 3), "tanh"), ((8, 5), "tanh")]),
    ("5x3:relu;8", [((5, 3), "relu"), ((8,), "tanh")]),
    (" 8 , 5 : tanh|relu ", [((8, 5), "tanh"), ((8, 5), "relu")]),
    ("16;16", [((16,), "tanh")]),
    ("4:sigmoid;4:linear", [((4,), "sigmoid"), ((4,), "linear")]),
    ("default", DEFAULT_TOPOLOGIES),
])
def test_parse_topologies(spec, expected):
    assert parse_topologies(spec) == expected


@pytest.mark.parametrize("spec,message", [
    ("", "empty"),
    ("5,,3", "empty layer width"),
    ("5,a", "not an integer"),
    ("0", "at least 1"),
    ("5:softmax", "unknown activation"),
])
def test_parse_topologies_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_topologies(spec)


def test_default_topologies_cover_the_paper():
    hidden = {h for h, _a in DEFAULT_TOPOLOGIES}
    assert {(3,), (5,), (8,), (3, 2), (5, 3), (8, 5), (5, 3, 2), (8, 5, 3), (11, 8, 5), (16,), (32,), (32, 32), (64, 64)} == hidden
    assert {a for _h, a in DEFAULT_TOPOLOGIES} == {"tanh", "relu"}
    assert len(DEFAULT_TOPOLOGIES) == 26


def test_error_metrics_rel_abs_and_floor():
    exact = np.array([[1.0, 100.0], [0.0, 2.0], [10.0, 10.0]])
    pred = np.array([[1.005, 100.5], [0.0005, 2.0], [10.2, np.nan]])
    rel = error_metrics(pred, exact, "rel", 0.01)
    # row 0: 0.5%, 0.5%; row 1: 0.0005/max(0, 1e-3) = 0.5 (floor) ; row 2: 2% and NaN
    assert rel["accuracy"] == pytest.approx(1 / 3)
    assert rel["max_error"] == np.inf
    ab = error_metrics(pred[:2], exact[:2], "abs", 0.01)
    assert ab["accuracy"] == 0.5  # 0.5 absolute error on 100.5 fails
    assert ab["max_error"] == pytest.approx(0.5)
    assert ab["loss"] == pytest.approx(np.mean((pred[:2] - exact[:2]) ** 2))


def _row(hidden, acc, t_call, t_elem, target=0.99) -> TopologyResult:
    return TopologyResult(hidden=hidden, activation="tanh", train_time=1.0, steps=10, epochs=1, loss=0.1, mean_error=0.01,
                          max_error=0.02, accuracy=acc, time_per_call=t_call, time_per_element=t_elem,
                          exact_time_per_call=1e-5, meets_target=acc >= target)


@pytest.mark.parametrize("rows,by,expected", [
    # both meet the target: the faster per call wins even though it is less accurate
    ([_row((32, 32), 1.0, 6e-6, 5e-8), _row((4,), 0.995, 4e-7, 2e-8)], "call", 1),
    # by batch element the other one is faster
    ([_row((32, 32), 1.0, 6e-6, 1e-8), _row((4,), 0.995, 4e-7, 2e-8)], "batch", 0),
    # the fastest misses the target: next fastest that meets it
    ([_row((3,), 0.90, 3e-7, 1e-8), _row((8,), 0.995, 8e-7, 2e-8), _row((16,), 0.999, 2e-6, 2e-8)], "call", 1),
    # within the 5% tie band: the more accurate wins
    ([_row((5,), 0.991, 1.00e-6, 1e-8), _row((6,), 0.999, 1.03e-6, 1e-8)], "call", 1),
    # nothing meets the target
    ([_row((3,), 0.5, 3e-7, 1e-8), _row((5,), 0.98, 5e-7, 1e-8)], "call", None),
])
def test_select_topology(rows, by, expected):
    assert select_topology(rows, 0.99, by=by) == expected


# --------------------------------------------------------------------------- end to end (small, fixed seeds)


TWO = [((8,), "relu"), ((32, 32), "relu")]


def fake_surrogate_timer(module, X, form):
    """Seconds per call ("call") or per row of the batched loop ("loop") of a compiled module, from a
    cost model of its size instead of the clock, so that which topology is faster cannot flip with
    the machine's load: 2x8x1 costs 0.18 us per call, 2x32x32x1 0.74 us (the exact code: 5 us)."""
    per_call = 1e-7 + 1e-8 * sum(module.HIDDEN)
    return per_call if form == "call" else per_call / 20


def _run(tmp_path, name, **kw):
    """train_dataset with small settings; timings come from `fake_surrogate_timer` unless the test
    passes surrogate_timer=None (the real clock)."""
    ds = kw.pop("dataset", None) or linear_dataset()
    kw.setdefault("topologies", TWO)
    kw.setdefault("epochs", 40)
    kw.setdefault("seed", 1)
    kw.setdefault("surrogate_timer", fake_surrogate_timer)
    return train_dataset(ds, str(tmp_path / name), **kw)


def test_linear_reaches_target_and_writes_artifacts(tmp_path):
    calls: list[tuple[str, int, int]] = []
    result = _run(tmp_path, "a", progress=lambda label, done, total: calls.append((label, done, total)))
    assert result.status == "ok", result.diagnostics
    assert result.region_id == "lin"
    rows = result.payload.rows
    assert [r["label"] for r in rows] == ["8 relu", "32x32 relu"]
    assert all(r["meets_target"] and r["accuracy"] >= 0.99 for r in rows)
    for r in rows:
        assert r["steps"] > 0 and 1 <= r["epochs"] <= 40 and r["train_time"] > 0
        assert r["exact_time_per_call"] == 5e-6
    # the timings are the timer's (a cost model here): both meet the target, and the 2x8x1
    # surrogate is faster per call than 2x32x32x1, so it is chosen
    assert [r["time_per_call"] for r in rows] == pytest.approx([1.8e-7, 7.4e-7])
    assert [r["time_per_element"] for r in rows] == pytest.approx([0.09e-7, 0.37e-7])
    assert rows[0]["predict_one_path"] == "scalar" and rows[1]["predict_one_path"] == "numpy"
    assert result.payload.chosen["label"] == "8 relu" and rows[0]["chosen"] and not rows[1]["chosen"]
    # progress: per-epoch calls for each topology, ending with done == total
    assert ("8 relu", 40, 40) in calls and ("32x32 relu", 40, 40) in calls
    assert any(c[0] == "8 relu" and c[1] == 1 for c in calls)

    out = tmp_path / "a"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", "report.json", "report.md", "model.keras", "surrogate_lin.py", "weights.npz"])
    assert result.artifacts["module"] == str(out / "surrogate_lin.py")
    manifest = Manifest.from_json(json.loads((out / "manifest.json").read_text()))
    assert manifest.region_id == "lin" and manifest.source_sha256 == "ab" * 32 and manifest.module == "surrogate_lin.py"
    assert manifest.topology.hidden == (8,) and manifest.topology.accuracy >= 0.99
    assert manifest.tolerance == 0.01 and manifest.metric == "rel" and manifest.target == 0.99
    ds = linear_dataset()
    assert all(1.0 <= lo < 1.01 for lo in manifest.lower) and all(1.99 < hi <= 2.0 for hi in manifest.upper)

    # The written module is accurate on fresh points and agrees with the saved Keras model.
    mod = rxc.load_module(str(out / "surrogate_lin.py"))
    np.testing.assert_array_equal(mod.LOWER, manifest.lower)
    fresh = np.random.default_rng(99).uniform(1.05, 1.95, size=(500, 2))
    exact = 2 * fresh[:, 0] + fresh[:, 1]
    assert error_metrics(mod.predict(fresh), exact[:, None], "rel", 0.01)["accuracy"] >= 0.97
    assert mod.predict_one(1.5, 1.5) == pytest.approx(4.5, rel=0.01)
    assert mod.in_domain_one(1.5, 1.5) and not mod.in_domain_one(2.5, 1.5)
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "ok" and report["dataset"]["n"] == ds.X.shape[0]
    assert report["dataset"]["n_train"] + report["dataset"]["n_val"] + report["dataset"]["n_test"] == ds.X.shape[0]
    md = (out / "report.md").read_text()
    assert "| 2x8x1 | relu |" in md and "| 2x32x32x1 | relu |" in md and "**chosen**" in md

    # model.keras is the chosen model: its weights, with the normalisation folded in as compile
    # folds it, are the module's weights.npz, and it predicts what the module predicts
    from regionx.train import _import_keras

    keras, _tf = _import_keras()
    model = keras.models.load_model(str(out / "model.keras"))
    layers = rxc.keras_layers(model)
    assert [W.shape for W, _b, _a in layers] == [(2, 8), (8, 1)]
    from regionx.train import _scale, _split

    tr, _va, _te = _split(ds.X.shape[0], 1)  # the normalisation train_dataset used (seed 1)
    (x_mean, x_scale), (y_mean, y_scale) = _scale(ds.X[tr]), _scale(ds.Y[tr])
    folded, _scale_out, _shift_out = rxc.fold_normalisation(layers, x_mean, x_scale, y_mean, y_scale)
    weights = np.load(out / "weights.npz")
    for i, (W, b, _a) in enumerate(folded):  # Keras keeps float32 copies of the (float64) weights
        np.testing.assert_allclose(weights[f"W{i}"], W, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(weights[f"b{i}"], b, rtol=1e-6, atol=1e-7)
    keras_pred = np.asarray(model.predict(((fresh - x_mean) / x_scale).astype(np.float32), verbose=0),
                            dtype=np.float64) * y_scale + y_mean
    assert mod.HIDDEN == (8,)
    # agreement far closer than the 1% both networks reach: the very weights, not a similar network
    np.testing.assert_allclose(keras_pred, mod.predict(fresh), rtol=1e-5, atol=1e-6)


def test_same_seed_same_choice(tmp_path):
    first = _run(tmp_path, "s1", epochs=15)
    second = _run(tmp_path, "s2", epochs=15)
    assert first.payload.chosen["label"] == second.payload.chosen["label"]
    for a, b in zip(first.payload.rows, second.payload.rows):
        for key in ("label", "steps", "epochs", "loss", "accuracy", "mean_error", "max_error"):
            assert a[key] == b[key], key
    w1 = np.load(tmp_path / "s1" / "weights.npz")
    w2 = np.load(tmp_path / "s2" / "weights.npz")
    np.testing.assert_array_equal(w1["W0"], w2["W0"])


def test_rx401_points_at_the_region(tmp_path):
    from dataclasses import replace

    ds = linear_dataset(n=300)
    at_region = Dataset(ds.X, ds.Y, replace(ds.meta, line=12, col=5))
    [diag] = _run(tmp_path, "at", dataset=at_region, tolerance=1e-9, epochs=1, topologies=[((2,), "tanh")]).diagnostics
    assert (diag.code, diag.path, diag.line, diag.col) == ("RX401", "fixtures/lin.py", 12, 5)
    assert diag.format().startswith("fixtures/lin.py:12:5: RX401 no topology reached")
    # a dataset written before the region's position was recorded: the file's start
    [old] = _run(tmp_path, "old", dataset=ds, tolerance=1e-9, epochs=1, topologies=[((2,), "tanh")]).diagnostics
    assert (old.code, old.line, old.col) == ("RX401", 1, 1)


def test_manifest_records_closure_and_pragma_settings(tmp_path):
    from dataclasses import replace

    from regionx.types import Dependency

    ds = linear_dataset()
    deps = (Dependency("SCALE", "constant", "cd" * 32),)
    meta = replace(ds.meta, closure_sha256="ef" * 32, closure=deps, require="a > 1.0", tolerance=0.02, metric="abs")
    result = _run(tmp_path, "m", dataset=Dataset(ds.X, ds.Y, meta), tolerance=0.05, metric="rel")
    assert result.ok, [d.format() for d in result.diagnostics]
    data = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert data["closure_sha256"] == "ef" * 32 and data["closure"] == [{"name": "SCALE", "kind": "constant", "sha256": "cd" * 32}]
    # validated with the overrides; the pragma's own settings recorded beside them
    assert (data["tolerance"], data["metric"]) == (0.05, "rel")
    assert data["pragma"] == {"tolerance": 0.02, "metric": "abs", "rtol": None, "atol": None}
    assert data["require"] == "a > 1.0"
    manifest = Manifest.from_json(data)
    assert manifest.closure == deps and manifest.pragma_tolerance == 0.02 and manifest.pragma_metric == "abs"
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert DatasetMeta.from_json(meta.to_json()) == meta


def test_too_strict_tolerance_fails_with_rx401_and_reports_best(tmp_path):
    result = _run(tmp_path, "strict", tolerance=1e-9, epochs=3)
    assert result.status == "failed"
    assert [d.code for d in result.diagnostics] == ["RX401"]
    diag = result.diagnostics[0]
    best = result.payload.best
    assert best is not None and best["label"] in diag.message
    assert "within tolerance 1e-09 (rel: |pred - exact| <= " in diag.message
    assert result.payload.chosen is None and not any(r["chosen"] for r in result.payload.rows)
    assert max(r["accuracy"] for r in result.payload.rows) == best["accuracy"]
    out = tmp_path / "strict"
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md"]  # no manifest: nothing usable
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed" and len(report["rows"]) == 2
    assert "No topology reached the target" in (out / "report.md").read_text()


def test_executor_path_and_abs_metric(tmp_path):
    seen: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        result = _run(tmp_path, "ex", topologies=[((6,), "relu")], metric="abs", tolerance=0.05, epochs=30,
                      executor=pool, progress=lambda label, done, total: seen.append(label), surrogate_timer=None)
    assert result.status == "ok", result.diagnostics
    # the real clock (one topology: nothing is decided by it): measured, positive times
    row = result.payload.rows[0]
    assert row["time_per_call"] > 0 and row["time_per_element"] > 0
    assert result.payload.metric == "abs" and result.payload.rows[0]["label"] == "6 relu"
    assert seen == ["6 relu"]
    assert json.loads((tmp_path / "ex" / "manifest.json").read_text())["metric"] == "abs"


@pytest.mark.parametrize("mutate,code", [
    (lambda ds: Dataset(ds.X[:10], ds.Y[:10], ds.meta), "RX307"),
    (lambda ds: Dataset(np.where(np.arange(ds.X.size).reshape(ds.X.shape) == 3, np.nan, ds.X), ds.Y, ds.meta), "RX307"),
    (lambda ds: Dataset(ds.X[:, :1], ds.Y, ds.meta), "RX307"),
])
def test_bad_dataset_is_a_diagnostic(tmp_path, mutate, code):
    result = train_dataset(mutate(linear_dataset(200)), str(tmp_path / "bad"), topologies=TWO, epochs=1)
    assert result.status == "failed" and [d.code for d in result.diagnostics] == [code]


@pytest.mark.parametrize("kw,code", [
    ({"metric": "l1"}, "RX006"),
    ({"tolerance": -1.0}, "RX006"),
    ({"target": 1.5}, "RX006"),
    ({"topologies": [((0,), "tanh")]}, "RX403"),
    ({"topologies": [((3,), "softmax")]}, "RX403"),
])
def test_bad_options_are_diagnostics(tmp_path, kw, code):
    result = train_dataset(linear_dataset(200), str(tmp_path / "bad"), epochs=1, **{"topologies": TWO, **kw})
    assert result.status == "failed" and [d.code for d in result.diagnostics] == [code]


def test_render_report_md_failed_without_rows():
    report = {"region_name": "r", "region_id": "r", "tolerance": 0.01, "metric": "rel", "target": 0.99, "seed": 0,
              "select_by": "call", "rows": [], "chosen": None, "best": None,
              "dataset": {"source_path": "x.py", "n": 0, "n_train": 0, "n_val": 0, "n_test": 0, "d_in": 1, "d_out": 1,
                          "input_columns": ["a"], "output_columns": ["return"], "exact_time_per_call": 0.0}}
    assert "No topology was trained." in render_report_md(report)


def test_import_regionx_train_does_not_load_tensorflow():
    code = "import sys, regionx.train, regionx.compile; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr


def test_target_transform_and_batch_size_rules(tmp_path):
    from regionx.train import auto_batch_size, target_transform_for
    from regionx.types import REL_FLOOR

    Y = np.array([[0.0], [1.0], [-3.0], [10.0]])
    assert target_transform_for(Y, "abs") is None and target_transform_for(Y, "rel", "none") is None
    kind, s = target_transform_for(Y, "rel", "asinh")
    assert kind == "asinh" and s == pytest.approx(0.05 * 2.0)
    assert target_transform_for(np.zeros((3, 1)), "rel", "asinh") == ("asinh", REL_FLOOR)
    # auto: only when |y| spans orders of magnitude
    assert target_transform_for(np.linspace(3, 6, 100)[:, None], "rel") is None
    assert target_transform_for(np.logspace(-3, 3, 100)[:, None], "rel")[0] == "asinh"
    with pytest.raises(ValueError):
        target_transform_for(Y, "rel", "log")
    assert [auto_batch_size(n) for n in (10, 1000, 70000, 10**7)] == [32, 32, 256, 512]

    # The compiled module maps the network's asinh-space output back (batch float32 and scalar paths).
    rng = np.random.default_rng(3)
    layers = [(rng.normal(size=(2, 6)), rng.normal(size=6), "tanh"), (rng.normal(size=(6, 4)), rng.normal(size=4), "tanh"),
              (rng.normal(size=(4, 1)), rng.normal(size=1), "linear")]
    X = rng.uniform(-1, 1, size=(50, 2))
    want = 0.1 * np.sinh(rxc.forward(layers, X) * 2.0 + 0.5)
    for scalar in (True, False):
        path = rxc.compile_model(layers, [0, 0], [1, 1], [0.5], [2.0], region_name="t", inputs=(VarSpec("a"), VarSpec("b")),
                                 outputs=(VarSpec("y"),), lower=[-1, -1], upper=[1, 1], out_dir=str(tmp_path / str(scalar)),
                                 scalar_path=scalar, out_transform=("asinh", 0.1), batch_dtype="float32")
        mod = rxc.load_module(path)
        assert mod.OUTPUT_TRANSFORM == ("asinh", 0.1)
        got = mod.predict(X)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose([mod.predict_one(*r) for r in X.tolist()], want[:, 0], rtol=1e-12, atol=1e-12)


def test_exact_timer_retimes_the_exact_code_beside_each_topology(tmp_path):
    """With an exact timer, every row's exact time is measured around that row's own timings (the
    mean of the settled measurement before and the one after), and the speedups and manifest use
    it. Before: readings until two in a row agree within 10% (the first, 4 us, is TensorFlow's
    threads still busy after training)."""
    readings = iter([4e-6, 1e-6, 1.05e-6, 3e-6, 10e-6, 10e-6, 30e-6])  # per topology: before (settled), after
    calls: list[float] = []

    def timer() -> float:
        calls.append(next(readings))
        return calls[-1]

    result = _run(tmp_path, "timed", epochs=10, exact_timer=timer)
    assert result.status == "ok", result.diagnostics
    assert len(calls) == 7
    rows = result.payload.rows
    assert [r["exact_time_per_call"] for r in rows] == pytest.approx([2e-6, 20e-6])
    assert rows[1]["speedup_call"] == pytest.approx(20e-6 / rows[1]["time_per_call"])
    report = json.loads((tmp_path / "timed" / "report.json").read_text())
    assert report["exact_timing"] == "interleaved" and report["dataset"]["exact_time_per_call"] == 5e-6
    manifest = Manifest.from_json(json.loads((tmp_path / "timed" / "manifest.json").read_text()))
    chosen = next(r for r in rows if r["chosen"])
    assert manifest.topology.exact_time_per_call == pytest.approx(chosen["exact_time_per_call"])
    assert "re-timed beside each topology" in (tmp_path / "timed" / "report.md").read_text()
    # Without one, the dataset's own time (from sampling) is used, and the report says so.
    plain = _run(tmp_path, "plain", epochs=3)
    assert all(r["exact_time_per_call"] == 5e-6 for r in plain.payload.rows)
    assert json.loads((tmp_path / "plain" / "report.json").read_text())["exact_timing"] == "sampling"


def test_the_trained_box_reaches_the_declared_bounds_the_samples_come_close_to() -> None:
    """regionx.train.data.trained_box: a side within BOX_REACH of the declared (continuous) bound
    is the bound; a side far from it (observed data), an unbounded or a discrete domain keeps the
    samples' range."""
    from dataclasses import replace

    from regionx.train.data import trained_box

    base = linear_dataset(20)
    X = np.array([[1.004, 1.3, 0.5, 3.0, 0.0], [1.999, 1.7, 2.5, 7.0, 0.5], [1.5, 1.5, 1.0, 5.0, 0.25]])
    meta = replace(base.meta, inputs=tuple(VarSpec(n) for n in "abcdw"),
                   domain={"a": "uniform(1, 2)", "b": "uniform(1, 2)", "c": "normal(1, 1)", "d": "integers(0, 10)",
                           "w": "loguniform(0.001, 0.5)"})
    lower, upper = trained_box(replace(base, meta=meta), X)
    np.testing.assert_array_equal(lower, [1.0, 1.3, 0.5, 3.0, 0.0])
    np.testing.assert_array_equal(upper, [2.0, 1.7, 2.5, 7.0, 0.5])
    # no declared domain for an input (a dataset from elsewhere): the samples' range
    bare = replace(base, meta=replace(meta, domain={"a": "uniform(1, 2)"}))
    lower, upper = trained_box(bare, X)
    np.testing.assert_array_equal(lower, X.min(axis=0))
    np.testing.assert_array_equal(upper, X.max(axis=0))


def test_loguniform_inputs_are_given_to_the_network_as_their_log() -> None:
    """regionx.train.data.log_columns: the columns of inputs declared loguniform and positive in
    every row (an array input's columns all or none); input_features takes their log."""
    from dataclasses import replace

    from regionx.train.data import input_features, log_columns

    base = linear_dataset(20)
    meta = replace(base.meta, inputs=(VarSpec("a"), VarSpec("w", (2,)), VarSpec("b"), VarSpec("c")),
                   domain={"a": "loguniform(0.01, 1)", "w": "loguniform(1, 100, shape=(2,))", "b": "uniform(1, 2)",
                           "c": "loguniform(0.1, 1)"})
    X = np.array([[0.5, 2.0, 50.0, 1.5, 0.2], [0.02, 9.0, 3.0, 1.2, -0.1]])  # c has a non-positive row
    ds = replace(base, meta=meta)
    assert log_columns(ds, X) == (0, 1, 2)
    F = input_features(X, (0, 1, 2))
    np.testing.assert_allclose(F[:, :3], np.log(X[:, :3]))
    np.testing.assert_array_equal(F[:, 3:], X[:, 3:])
    assert input_features(X, ()) is X
