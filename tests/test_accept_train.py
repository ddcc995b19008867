"""Training and selection with an accept predicate: effective accuracy and effective time."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from regionx.train import CALL_ROWS, accept_metrics, render_report_md, select_topology, train_dataset
from regionx.types import Dataset, DatasetMeta, Manifest, TopologyResult, VarSpec

INS = (VarSpec("a"), VarSpec("b"))
OUTS = (VarSpec("return"),)


def data(n: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.uniform(1.0, 2.0, size=(n, 2))
    Y = (2 * X[:, 0] + X[:, 1])[:, None]
    pred = Y.copy()
    pred[X[:, 0] > 1.5] *= 1.05  # 5% off where a > 1.5
    return X, Y, pred


ROW_SECONDS = 1e-6  # fake cost of one scalar accept call
ONCE_SECONDS = 1e-5  # fake cost of one vectorised evaluation over every row


@pytest.fixture()
def fake_accept_timing(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """accept_metrics' two timers, replaced by a cost model: they still run what they time (so the
    predicate is evaluated as the measurement would), and report fixed costs instead of wall time."""
    import regionx.train as train_mod

    seen: dict[str, list] = {"rows": [], "once": []}

    def time_rows(fn, rows):  # type: ignore[no-untyped-def]
        seen["rows"].append([fn(*r) for r in rows])
        return ROW_SECONDS

    def time_once(fn):  # type: ignore[no-untyped-def]
        seen["once"].append(fn())
        return ONCE_SECONDS

    monkeypatch.setattr(train_mod.metrics, "_time_rows", time_rows)
    monkeypatch.setattr(train_mod.metrics, "_time_once", time_once)
    return seen


@pytest.mark.parametrize("accept,rate_lo,rate_hi,eff", [
    ("a <= 1.5", 0.45, 0.55, 1.0),  # rejects exactly the bad rows
    ("True", 1.0, 1.0, None),  # accepts everything: effective == raw
    ("False", 0.0, 0.0, 1.0),  # rejects everything: exact everywhere
    ("abs(result - (2 * a + b)) <= 0.01 * abs(result)", 0.45, 0.55, 1.0),  # an error estimate over the output
    ("float(a) <= 1.5", 0.45, 0.55, 1.0),  # not vectorisable: evaluated row by row
])
def test_accept_metrics(accept: str, rate_lo: float, rate_hi: float, eff: float | None,
                        fake_accept_timing: dict[str, list]) -> None:
    X, Y, pred = data()
    m = accept_metrics(accept, X, pred, Y, INS, OUTS, "rel", 0.01, exact_time_per_call=2e-6,
                       time_per_call=1e-6, time_per_element=1e-8, repeats=2)
    raw = float(np.mean(X[:, 0] <= 1.5))
    assert m["problem"] is None
    assert rate_lo <= m["accept_rate"] <= rate_hi
    assert m["effective_accuracy"] == pytest.approx(raw if eff is None else eff)
    assert m["vectorised"] == (not accept.startswith("float"))
    # the scalar predicate was timed on the first rows (best of `repeats`), as the dispatcher runs it
    assert len(fake_accept_timing["rows"]) == 2
    assert all(len(r) == min(len(X), CALL_ROWS) for r in fake_accept_timing["rows"])
    assert m["accept_time_per_call"] == ROW_SECONDS
    if m["vectorised"]:
        # one evaluation over all rows, timed and shared among them: the point of vectorising
        assert len(fake_accept_timing["once"]) == 2
        mask = np.asarray(fake_accept_timing["once"][0], dtype=bool)
        assert mask.shape == (len(X),) and np.mean(mask) == m["accept_rate"]
        assert m["accept_time_per_element"] == pytest.approx(ONCE_SECONDS / len(X))
        assert m["accept_time_per_element"] < m["accept_time_per_call"]
    else:
        # row by row in the batched loop too: the scalar cost per element
        assert fake_accept_timing["once"] == []
        assert m["accept_time_per_element"] == m["accept_time_per_call"]
    rejected = 1.0 - m["accept_rate"]
    assert m["effective_time_per_call"] == pytest.approx(1e-6 + m["accept_time_per_call"] + rejected * 2e-6)
    assert m["effective_time_per_element"] == pytest.approx(1e-8 + m["accept_time_per_element"] + rejected * 2e-6)


def test_accept_metrics_measures_real_time() -> None:
    """Without fakes: the predicate's cost is measured (positive), whatever the machine's load."""
    X, Y, pred = data(300)
    m = accept_metrics("a <= 1.5", X, pred, Y, INS, OUTS, "rel", 0.01, exact_time_per_call=2e-6,
                       time_per_call=1e-6, time_per_element=1e-8, repeats=1)
    assert m["vectorised"] and m["accept_time_per_call"] > 0 and m["accept_time_per_element"] > 0


def test_accept_metrics_nan_prediction_rejected() -> None:
    X, Y, pred = data(50)
    pred[3] = np.nan
    m = accept_metrics("result > -1e9", X, pred, Y, INS, OUTS, "rel", 0.01, exact_time_per_call=1e-6,
                       time_per_call=1e-6, time_per_element=1e-8, repeats=1)
    assert m["accept_rate"] == pytest.approx(49 / 50)


def test_accept_metrics_unknown_name_is_a_problem() -> None:
    X, Y, pred = data(50)
    m = accept_metrics("abs(result) < LIMIT", X, pred, Y, INS, OUTS, "rel", 0.01, exact_time_per_call=1e-6,
                       time_per_call=1e-6, time_per_element=1e-8, repeats=1)
    assert m["effective_accuracy"] is None and "LIMIT" in m["problem"]


def _row(acc: float, t_call: float, t_elem: float, eff: float | None = None, e_call: float | None = None,
         e_elem: float | None = None) -> TopologyResult:
    return TopologyResult(hidden=(4,), activation="tanh", train_time=1.0, steps=1, epochs=1, loss=0.1, mean_error=0.0,
                          max_error=0.0, accuracy=acc, time_per_call=t_call, time_per_element=t_elem,
                          exact_time_per_call=1e-5, meets_target=False, accept_rate=None if eff is None else 0.9,
                          effective_accuracy=eff, effective_time_per_call=e_call, effective_time_per_element=e_elem)


@pytest.mark.parametrize("rows,by,expected", [
    # raw 60% but 99.5% effective with accept, still fast: chosen over the accurate slow one
    ([_row(0.995, 5e-6, 1e-7), _row(0.6, 1e-6, 1e-8, 0.995, 2e-6, 2e-8)], "batch", 1),
    # effective time includes the rejected rows' exact runs: now slower than the accurate network
    ([_row(0.995, 5e-6, 1e-7), _row(0.6, 1e-6, 1e-8, 0.995, 2e-6, 3e-7)], "batch", 0),
    # effective accuracy below the target: not eligible however fast
    ([_row(0.995, 5e-6, 1e-7), _row(0.6, 1e-6, 1e-8, 0.98, 2e-6, 2e-8)], "call", 0),
    ([_row(0.6, 1e-6, 1e-8, 0.98, 2e-6, 2e-8)], "call", None),
])
def test_selection_uses_effective_values(rows: list[TopologyResult], by: str, expected: int | None) -> None:
    assert select_topology(rows, 0.99, by=by) == expected


def test_topology_result_json_old_and_new() -> None:
    row = _row(0.6, 1e-6, 1e-8, 0.995, 2e-6, 2e-8)
    assert TopologyResult.from_json(row.to_json()) == row
    old = row.to_json()
    for k in ("accept_rate", "effective_accuracy", "effective_time_per_call", "effective_time_per_element"):
        del old[k]
    back = TopologyResult.from_json(old)  # a manifest written before accept was measured
    assert back.effective_accuracy is None and back.program_accuracy == 0.6 and back.program_time_per_element == 1e-8


def _dataset(accept: str | None, n: int = 1500) -> Dataset:
    rng = np.random.default_rng(0)
    X = rng.uniform(1.0, 2.0, size=(n, 2))
    Y = (2 * X[:, 0] + X[:, 1])[:, None]
    meta = DatasetMeta(region_id="lin", region_name="lin", source_path="fixtures/lin.py", source_sha256="ab" * 32,
                       inputs=INS, outputs=OUTS, domain={"a": "uniform(1, 2)", "b": "uniform(1, 2)"}, seed=0,
                       requested=n, dropped={"raised": 0}, exact_time_per_call=5e-6, tolerance=1e-4, metric="rel",
                       accept=accept)
    return Dataset(X=X, Y=Y, meta=meta)


def test_train_with_accept_reaches_the_target_through_the_fallback(tmp_path) -> None:
    # 0.01% is out of reach for a 3-epoch network (without refinement: LM would fit this line); an accept
    # predicate that recognises good answers (here it knows the exact formula) makes the program's accuracy 100%.
    accept = "abs(result - (2 * a + b)) <= 1e-4 * abs(result)"
    res = train_dataset(_dataset(accept), str(tmp_path / "acc"), topologies=[((4,), "tanh")], epochs=3, seed=1,
                        select_by="batch", refine="none")
    plain = train_dataset(_dataset(None), str(tmp_path / "plain"), topologies=[((4,), "tanh")], epochs=3, seed=1,
                          select_by="batch", refine="none")
    assert plain.status == "failed" and [d.code for d in plain.diagnostics] == ["RX401"]
    assert res.status == "ok", res.diagnostics
    row = res.payload.rows[0]
    assert row["accuracy"] < 0.99 and row["effective_accuracy"] == 1.0 and row["meets_target"]
    assert 0.0 <= row["accept_rate"] < 1.0 and row["accept_vectorised"]
    assert row["effective_time_per_element"] > row["time_per_element"]
    manifest = Manifest.from_json(json.loads((tmp_path / "acc" / "manifest.json").read_text()))
    assert manifest.accept == accept and manifest.topology.effective_accuracy == 1.0
    md = (tmp_path / "acc" / "report.md").read_text()
    assert "Effective accuracy" in md and "With accept:" in md and accept in md
    report = json.loads((tmp_path / "acc" / "report.json").read_text())
    assert report["accept"] == accept and report["rows"][0]["accept_rate"] == row["accept_rate"]


def test_render_report_md_without_accept_has_no_accept_table() -> None:
    r = _row(0.995, 5e-6, 1e-7).to_json() | {"chosen": True}
    report = {"region_name": "x", "region_id": "x", "tolerance": 0.01, "metric": "rel", "target": 0.99, "seed": 0,
              "select_by": "call", "dataset": {"d_in": 2, "d_out": 1, "source_path": "p.py", "n": 10, "n_train": 7,
                                                "n_val": 1, "n_test": 2, "input_columns": ["a", "b"],
                                                "output_columns": ["return"], "exact_time_per_call": 1e-5},
              "rows": [r], "chosen": r, "best": r}
    md = render_report_md(report)
    assert "Effective accuracy" not in md and "**chosen**" in md
    failed = dict(report, chosen=None, accept="a > 0",
                  best=replace(_row(0.5, 1e-6, 1e-8, 0.9, 2e-6, 2e-8)).to_json())
    failed["rows"] = [dict(failed["best"], accepted_accuracy=0.6, accept_time_per_call=1e-7, accept_time_per_element=1e-9,
                           effective_speedup_call=5.0, effective_speedup_batch=500.0, accept_vectorised=True)]
    md = render_report_md(failed)
    assert "Effective accuracy" in md and "effective accuracy 90.0%" in md
