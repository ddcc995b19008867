"""The surrogate search (issue 12, item 2): a-priori timing, the refusal before any training,
fastest-first training against a budget, and what the reports say. No timed assertions: the
timers and the trainer are injected, so these tests never train a network with TensorFlow."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from regionx import train as T
from regionx.train import Candidate, plan_dose, select_topology, train_dataset, training_order
from regionx.types import Dataset, DatasetMeta, TopologyResult, VarSpec


def linear_dataset(n: int = 4000, exact_time: float = 5e-6, tolerance: float = 0.01) -> Dataset:
    """y = 2a + b on [1, 2]^2 (outputs 3..6)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(1.0, 2.0, size=(n, 2))
    Y = (2 * X[:, 0] + X[:, 1])[:, None]
    meta = DatasetMeta(region_id="lin", region_name="lin", source_path="fixtures/lin.py", source_sha256="ab" * 32,
                       inputs=(VarSpec("a"), VarSpec("b")), outputs=(VarSpec("return"),),
                       domain={"a": "uniform(1, 2)", "b": "uniform(1, 2)"}, seed=0, requested=n, dropped={},
                       exact_time_per_call=exact_time, tolerance=tolerance, metric="rel", line=7, col=1)
    return Dataset(X=X, Y=Y, meta=meta)


# --------------------------------------------------------------------------- selection on synthetic timings


def _cand(i: int, hidden: tuple[int, ...], weights: int, call: float, row: float | None = None) -> Candidate:
    return Candidate(i, hidden, "tanh", weights, time_per_call=call, time_per_row=row)


def test_training_order_fastest_first_and_drops_what_cannot_win() -> None:
    cands = [_cand(0, (32, 32), 1153, 5e-6), _cand(1, (8,), 25, 6e-7), _cand(2, (16,), 49, 1.1e-6),
             _cand(3, (8, 5), 67, 2e-6), _cand(4, (64, 64), 4500, 9e-6)]
    order = training_order(cands, "call", exact_time=6e-6)
    assert [c.label for c in order] == ["8 tanh", "16 tanh", "8x5 tanh", "32x32 tanh"]
    assert [c.order for c in order] == [0, 1, 2, 3]
    assert not cands[4].viable and cands[4].status == "not faster than the exact code" and cands[4].order is None


def test_training_order_ties_go_to_fewer_weights_and_the_loop_form_counts_its_extra() -> None:
    # per row of the batched loop: 8 and 16 are within the 10% band, so the smaller goes first
    cands = [_cand(0, (16,), 49, 1e-6, 6.2e-8), _cand(1, (8,), 25, 6e-7, 6.0e-8), _cand(2, (8, 5), 67, 2e-6, 1.1e-7)]
    assert [c.label for c in training_order(cands, "loop", exact_time=1e-6)] == ["8 tanh", "16 tanh", "8x5 tanh"]
    # a distributed loop's first pass (232 ns per row) makes all of them lose to a 125 ns exact call
    assert training_order(cands, "loop", exact_time=1.25e-7, extra=2.32e-7) == []
    assert all(not c.viable for c in cands)
    # the same timings always give the same order
    again = [_cand(0, (16,), 49, 1e-6, 6.2e-8), _cand(1, (8,), 25, 6e-7, 6.0e-8), _cand(2, (8, 5), 67, 2e-6, 1.1e-7)]
    assert [c.index for c in training_order(again, "loop", 1e-6)] == [1, 0, 2]


def _row(hidden: tuple[int, ...], acc: float, n: int, t_call: float, t_elem: float) -> TopologyResult:
    from regionx.criterion import lower_bound

    return TopologyResult(hidden=hidden, activation="tanh", train_time=1.0, steps=1, epochs=1, loss=0.1, mean_error=0.0,
                          max_error=0.0, accuracy=acc, time_per_call=t_call, time_per_element=t_elem,
                          exact_time_per_call=1e-5, meets_target=False, n_test=n,
                          accuracy_lcb=lower_bound(round(acc * n), n))


def test_selection_is_by_the_lower_bound() -> None:
    # 99.5% of 600 test points has a bound of 98.76%: it does not meet 99%; of 2,000 it does (99.17%)
    few, many = _row((4,), 0.995, 600, 1e-7, 1e-8), _row((8,), 0.995, 2000, 2e-7, 2e-8)
    assert not T.meets(few, 0.99) and T.meets(many, 0.99)
    assert select_topology([few, many], 0.99, by="call") == 1
    # without a recorded bound (old reports), the accuracy itself
    old = TopologyResult(hidden=(4,), activation="tanh", train_time=1.0, steps=1, epochs=1, loss=0.1, mean_error=0.0,
                         max_error=0.0, accuracy=0.995, time_per_call=1e-7, time_per_element=1e-8,
                         exact_time_per_call=1e-5, meets_target=True)
    assert T.meets(old, 0.99) and select_topology([old, many], 0.99) == 0


def test_plan_dose_splits_a_share_between_adam_and_refinement() -> None:
    # 8,200 rows at batch 32: 257 steps per epoch, 0.116 s per epoch at 0.45 ms a step
    epochs, refine = plan_dose(50.0, 8200, 32, 1000, 30.0, "auto")
    assert epochs == int(0.4 * (50 - T.MEASURE_SECONDS - T.ADAM_FIXED_SECONDS) // (257 * T.ADAM_STEP_SECONDS))
    assert refine == pytest.approx(50 - T.MEASURE_SECONDS - T.ADAM_FIXED_SECONDS - epochs * 257 * T.ADAM_STEP_SECONDS)
    assert plan_dose(50.0, 8200, 32, 150, 30.0, "auto")[0] == 150
    assert plan_dose(1000.0, 8200, 32, 150, 30.0, "auto") == (150, 30.0)  # capped by what was asked for
    assert plan_dose(math.inf, 8200, 32, 150, 30.0, "auto") == (150, 30.0)
    assert plan_dose(1.0, 8200, 32, 150, 30.0, "auto") == (T.MIN_EPOCHS, 0.0)  # a tiny budget: a few epochs, no more
    assert plan_dose(50.0, 8200, 32, 150, 30.0, "none")[1] == 0.0


# --------------------------------------------------------------------------- the search with a fake trainer


def _timer(times: dict[tuple[int, ...], tuple[float, float]]) -> Any:
    """A surrogate timer from a table: hidden widths -> (seconds per call, per row of the loop)."""
    def timer(module: Any, X: np.ndarray, form: str) -> float:
        call, row = times[tuple(module.HIDDEN)]
        return call if form == "call" else row
    return timer


def _exact_layers(task: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Layers that compute the normalised linear map Yn = X Wn exactly (a linear hidden layer)."""
    X, Y = task["Xtr"], task["Ytr"]
    A = np.hstack([X, np.ones((len(X), 1))])
    coef, *_ = np.linalg.lstsq(A, Y, rcond=None)
    width = task["hidden"][0]
    W1 = np.zeros((X.shape[1], width))
    W1[:, 0] = coef[:-1, 0]
    W2 = np.zeros((width, 1))
    W2[0, 0] = 1.0
    return [(W1, np.zeros(width), "linear"), (W2, coef[-1:, 0].copy(), "linear")]


def fake_trainer(good: set[tuple[int, ...]], calls: list[str]) -> Any:
    """A stand-in for _train_topology: exact layers for the `good` widths, a constant (the mean) otherwise."""
    def train(task: dict[str, Any], progress: Any = None) -> dict[str, Any]:
        hidden = tuple(task["hidden"])
        calls.append(T.topology_label(hidden, task["activation"]))
        if hidden in good:
            layers = _exact_layers(task)
        else:
            sizes = [task["Xtr"].shape[1], *hidden, 1]
            layers = [(np.zeros((a, b)), np.zeros(b), "linear") for a, b in zip(sizes[:-1], sizes[1:])]
        if progress is not None:
            progress(T.topology_label(hidden, "linear"), task["epochs"], task["epochs"])
        return {"hidden": hidden, "activation": "linear", "layers": layers, "train_time": 0.1, "adam_time": 0.1,
                "refine": {"method": "adam", "attempts": [], "nominal_seconds": task["refine_seconds"]},
                "steps": 100 * task["epochs"], "epochs": task["epochs"], "best_val_loss": 0.0, "model_bytes": b"fake"}
    return train


def _no_keras() -> tuple[Any, Any]:
    raise AssertionError("TensorFlow must not be needed here")


TOPOLOGIES = [((32, 32), "linear"), ((4,), "linear"), ((8,), "linear"), ((16,), "linear")]
TIMES = {(32, 32): (5e-6, 2e-7), (4,): (3e-7, 4e-8), (8,): (5e-7, 5e-8), (16,): (9e-7, 6e-8)}


def test_refused_before_any_training_when_no_candidate_can_win(tmp_path, monkeypatch) -> None:
    def trainer_must_not_run(task: dict[str, Any], progress: Any = None) -> dict[str, Any]:
        raise AssertionError("trained although no candidate can beat the exact code")

    monkeypatch.setattr(T.fit, "_train_topology", trainer_must_not_run)
    monkeypatch.setattr(T.fit, "_import_keras", _no_keras)
    events: list[T.SearchEvent] = []
    slow = {h: (1e-3, 1e-3) for h in TIMES}  # every candidate 1 ms, the exact code 5 us
    result = train_dataset(linear_dataset(), str(tmp_path / "out"), topologies=TOPOLOGIES, search="fastest-first",
                           budget=100.0, surrogate_timer=_timer(slow), exact_timer=lambda: 5e-6, events=events.append)
    assert result.status == "failed" and [d.code for d in result.diagnostics] == ["RX502"]
    diag = result.diagnostics[0]
    assert (diag.path, diag.line) == ("fixtures/lin.py", 7)
    assert "none was trained" in diag.message and "exact code 5 us per call" in diag.message
    assert "fastest surrogate 4 linear 1 ms per call" in diag.message
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "refused" and report["rows"] == []
    assert all(not c["viable"] for c in report["search"]["candidates"])
    assert [e["stage"] for e in report["search"]["log"]] == ["timing"] * 4
    assert sorted((tmp_path / "out").iterdir()) == [tmp_path / "out" / "report.json", tmp_path / "out" / "report.md"]
    assert "Refused before training" in (tmp_path / "out" / "report.md").read_text()
    assert events[-1].stage == "refused"


def test_fastest_first_stops_at_the_first_that_meets_the_target(tmp_path, monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(T.fit, "_train_topology", fake_trainer({(8,), (16,), (32, 32)}, calls))
    monkeypatch.setattr(T.fit, "_import_keras", lambda: (None, None))
    events: list[T.SearchEvent] = []
    result = train_dataset(linear_dataset(), str(tmp_path / "out"), topologies=TOPOLOGIES, search="fastest-first",
                           budget=100.0, surrogate_timer=_timer(TIMES), exact_timer=lambda: 8e-6, refine="none",
                           events=events.append, epochs=20)
    assert result.ok, [d.format() for d in result.diagnostics]
    # 4 (fastest, a constant: misses), then 8 meets the target: 16 and 32x32 are never trained
    assert calls == ["4 linear", "8 linear"]
    assert result.payload.chosen["label"] == "8 linear"
    chosen = result.payload.chosen
    assert chosen["accuracy"] == 1.0 and chosen["n_test"] == 1000 and chosen["accuracy_lcb"] > 0.99
    search = result.payload.search
    status = {c["label"]: c["status"] for c in search["candidates"]}
    assert status == {"4 linear": "missed target", "8 linear": "met target",
                      "16 linear": "not needed (8 linear, faster, met the target)",
                      "32x32 linear": "not needed (8 linear, faster, met the target)"}
    assert search["stopped"] == "met target" and search["budget_s"] == 100.0 and search["advice"] == []
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    stages = [(e["stage"], e["candidate"]) for e in report["search"]["log"] if e["stage"] != "timing"]
    assert stages == [("train", "4 linear"), ("measure", "4 linear"), ("train", "8 linear"), ("measure", "8 linear")]
    # nominal seconds: 4 timings, and per candidate Adam's fixed cost + its steps + measuring
    train_cost = T.ADAM_FIXED_SECONDS + 100 * 20 * T.ADAM_STEP_SECONDS + T.MEASURE_SECONDS
    assert report["search"]["spent_nominal_s"] == pytest.approx(4 * T.TIMING_SECONDS + 2 * train_cost, abs=1e-2)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "stopped: met target" in md and "| 2 | 8 linear |" in md and "not needed" in md
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["criterion"]["rtol"] == 0.01 and manifest["criterion"]["source"] == "floor"
    assert manifest["validation"]["accuracy_lcb"] == chosen["accuracy_lcb"]
    assert [e.stage for e in events][:13] == ["timing"] * 13 and events[-1].stage == "done"
    assert any(e.stage == "met" and e.candidate == "8 linear" for e in events)
    assert all(e.budget == 100.0 and e.budget_left is not None for e in events)


def test_search_is_deterministic_for_the_same_timings(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(T.fit, "_import_keras", lambda: (None, None))
    docs = []
    for k in range(2):
        calls: list[str] = []
        monkeypatch.setattr(T.fit, "_train_topology", fake_trainer({(16,)}, calls))
        out = tmp_path / f"run{k}"
        train_dataset(linear_dataset(), str(out), topologies=TOPOLOGIES, search="fastest-first", budget=100.0,
                      surrogate_timer=_timer(TIMES), exact_timer=lambda: 8e-6, refine="none", epochs=20, seed=3)
        doc = json.loads((out / "report.json").read_text())["search"]
        docs.append(([(e["stage"], e["candidate"], e["nominal_s"]) for e in doc["log"]], calls))
    assert docs[0] == docs[1] and docs[0][1] == ["4 linear", "8 linear", "16 linear"]


def test_budget_spent_reports_the_best_and_what_more_would_buy(tmp_path, monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(T.fit, "_train_topology", fake_trainer(set(), calls))  # nothing is ever accurate
    monkeypatch.setattr(T.fit, "_import_keras", lambda: (None, None))
    # 8 s: timing (2 s) and the first candidate (~4 s nominal) leave less than MIN_DOSE for another
    result = train_dataset(linear_dataset(), str(tmp_path / "out"), topologies=TOPOLOGIES, search="fastest-first",
                           budget=8.0, surrogate_timer=_timer(TIMES), exact_timer=lambda: 8e-6, refine="none", epochs=20)
    assert result.status == "failed" and [d.code for d in result.diagnostics] == ["RX401"]
    assert calls == ["4 linear"]
    search = result.payload.search
    assert search["stopped"] == "budget spent"
    assert [c["status"] for c in search["candidates"]] == ["missed target", "budget spent", "budget spent", "budget spent"]
    [note] = search["advice"]
    assert note.startswith("3 slower candidates not tried for lack of budget (8 linear, 16 linear, 32x32 linear)")
    assert note in result.diagnostics[0].message and "by the 95% lower confidence bound" in result.diagnostics[0].message
    assert "More budget: 3 slower candidates" in (tmp_path / "out" / "report.md").read_text()


def _search_with_grow(tmp_path: Any, asked: list[int]) -> Any:
    """A fastest-first search of one 4-linear network that may grow its data: each grow call's
    row count goes into `asked` (and its `weigh` must be callable)."""

    def grow(n: int, weigh: object = None) -> tuple[np.ndarray, np.ndarray]:
        asked.append(n)
        assert callable(weigh)  # the search says where its network errs
        more = linear_dataset(n)
        return more.X, more.Y

    return train_dataset(linear_dataset(), str(tmp_path / "out"), topologies=[((4,), "linear")], search="fastest-first",
                         budget=100.0, surrogate_timer=_timer(TIMES), exact_timer=lambda: 5e-6, refine="lbfgs",
                         epochs=5, grow=grow)


def test_grow_adds_training_rows_when_the_network_generalises_worse_than_it_fits(tmp_path, monkeypatch) -> None:
    """A network that fits its training rows but not the validation rows gets more samples (the
    test split never changes) and is refined on them."""
    calls: list[str] = []
    monkeypatch.setattr(T.fit, "_train_topology", fake_trainer(set(), calls))
    monkeypatch.setattr(T.fit, "_import_keras", lambda: (None, None))
    shares = iter([(1.0, 0.95), (1.0, 1.0)])  # (training, validation) share within tolerance
    monkeypatch.setattr(T.search, "_fit_shares", lambda ctx, entry: next(shares, (1.0, 1.0)))
    asked: list[int] = []
    result = _search_with_grow(tmp_path, asked)
    assert asked == [2400]  # the training split, doubled
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["dataset"]["n_grown"] == 2400 and report["dataset"]["n_test"] == 1000
    assert [e["stage"] for e in report["search"]["log"] if e["stage"] != "timing"] == ["train", "measure", "grow", "measure"]
    assert result.status == "failed"


def test_no_more_samples_for_a_network_that_does_not_fit_its_training_rows(tmp_path, monkeypatch) -> None:
    """More data closes a train/validation gap at best: a network fitting only half its training
    rows (gap 5%) cannot reach the target that way, so nothing is sampled and the advice does not
    suggest more samples."""
    calls: list[str] = []
    monkeypatch.setattr(T.fit, "_train_topology", fake_trainer(set(), calls))
    monkeypatch.setattr(T.fit, "_import_keras", lambda: (None, None))
    monkeypatch.setattr(T.search, "_fit_shares", lambda ctx, entry: (0.50, 0.45))
    asked: list[int] = []
    result = _search_with_grow(tmp_path, asked)
    assert result.status == "failed" and asked == []
    assert not any("more samples" in note for note in result.payload.search["advice"])


def test_with_accept_a_later_candidate_that_can_still_win_is_trained(tmp_path, monkeypatch) -> None:
    """With accept=, the first network to meet the target (through the exact fallback) may pay for
    many rejected rows; a later one that could still be faster is trained, and the faster wins."""
    from dataclasses import replace

    calls: list[str] = []
    monkeypatch.setattr(T.fit, "_train_topology", fake_trainer({(8,), (16,)}, calls))
    monkeypatch.setattr(T.fit, "_import_keras", lambda: (None, None))
    ds = linear_dataset()
    ds = Dataset(ds.X, ds.Y, replace(ds.meta, accept="abs(result - (2 * a + b)) < 0.01"))
    result = train_dataset(ds, str(tmp_path / "out"), topologies=TOPOLOGIES, search="fastest-first", budget=100.0,
                           surrogate_timer=_timer(TIMES), exact_timer=lambda: 8e-6, refine="none", epochs=20,
                           select_by="batch")
    assert result.ok, [d.format() for d in result.diagnostics]
    # 4 (a constant) meets 99% only because accept sends nearly every row to the exact code: ~8 us a row
    rows = {r["label"]: r for r in result.payload.rows}
    assert rows["4 linear"]["meets_target"] and rows["4 linear"]["accept_rate"] < 0.05
    assert calls == ["4 linear", "8 linear"] and result.payload.chosen["label"] == "8 linear"
    status = {c["label"]: c["status"] for c in result.payload.search["candidates"]}
    assert status["4 linear"] == status["8 linear"] == "met target"
    assert status["16 linear"].startswith("not needed (cannot beat 8 linear")


def test_budget_setting_in_pyproject(tmp_path, monkeypatch) -> None:
    from regionx import api
    from regionx.config import load_config

    monkeypatch.chdir(tmp_path)
    assert api.default_budget() == T.DEFAULT_BUDGET  # no pyproject.toml here
    (tmp_path / "pyproject.toml").write_text("[tool.regionx]\nbudget = 90\n")
    assert load_config(str(tmp_path)).budget == 90.0 and api.default_budget() == 90.0
    for bad in ("-5", "0", "'long'", "true"):
        (tmp_path / "pyproject.toml").write_text(f"[tool.regionx]\nbudget = {bad}\n")
        with pytest.raises(ValueError, match="budget must be a positive number of seconds"):
            load_config(str(tmp_path))
