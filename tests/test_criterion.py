"""The accuracy criterion (numpy.isclose's convention), its lower confidence bound, and the
pragma's rtol=/atol= keys (issue 12, item 3)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from regionx.criterion import FLOOR_FRACTION, Criterion, derived_floor, lower_bound, points_needed
from regionx.pragma import parse_pragmas
from regionx.types import REL_FLOOR, Manifest, TopologyResult

# --------------------------------------------------------------------------- within tolerance

# (rtol, atol, exact, pred, within): |pred - exact| <= atol + rtol * |exact|
ISCLOSE_TABLE = [
    (0.01, 0.0, 100.0, 100.9, True),      # 0.9 <= 1.0
    (0.01, 0.0, 100.0, 101.1, False),     # 1.1 > 1.0
    (0.01, 0.0, -100.0, -99.0, True),     # |exact|: the sign does not matter
    (0.01, 0.0, 0.0, 1e-12, False),       # pure rtol: nothing is allowed at 0
    (0.01, 1e-3, 0.0, 9e-4, True),        # atol carries the outputs near 0
    (0.01, 1e-3, 0.0, 1.1e-3, False),
    (0.01, 1e-3, 1.0, 1.0 + 0.0109, True),  # atol and rtol add up: 0.011 allowed
    (0.01, 1e-3, 1.0, 1.0 + 0.0111, False),
    (0.0, 0.5, 10.0, 10.5, True),          # abs: the edge itself is within
    (0.0, 0.5, 10.0, 10.5001, False),
    (0.0, 0.5, 10.0, math.nan, False),     # NaN never is
    (0.0, 0.5, 10.0, math.inf, False),
    (1e-5, 1e-8, 1.0, 1.0 + 1e-5, True),   # numpy.isclose's own defaults
]


@pytest.mark.parametrize("rtol,atol,exact,pred,within", ISCLOSE_TABLE)
def test_within_is_numpy_isclose(rtol: float, atol: float, exact: float, pred: float, within: bool) -> None:
    crit = Criterion(rtol, (atol,))
    got = bool(crit.within(np.array([[pred]]), np.array([[exact]]))[0])
    assert got is within
    if math.isfinite(pred):
        assert bool(np.isclose(pred, exact, rtol=rtol, atol=atol)) is within
    ratio = float(crit.error_ratio(np.array([[pred]]), np.array([[exact]]))[0])
    assert (ratio <= 1.0) is within


def test_a_row_is_within_when_every_output_is() -> None:
    crit = Criterion(0.0, (0.1, 1.0))  # one atol per output column
    exact = np.zeros((3, 2))
    pred = np.array([[0.05, 0.9], [0.2, 0.0], [0.0, 1.5]])
    assert crit.within(pred, exact).tolist() == [True, False, False]


def test_shorthand_and_the_derived_floor() -> None:
    Y = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [-4.0, 40.0]])
    absolute = Criterion.resolve(reference=Y, tolerance=0.25, metric="abs")
    assert (absolute.rtol, absolute.atol, absolute.source, absolute.floor) == (0.0, (0.25,), "abs", None)
    rel = Criterion.resolve(reference=Y, tolerance=0.01, metric="rel")
    # floor = FLOOR_FRACTION x median |y| per output column, atol = rtol x floor
    assert rel.source == "floor" and rel.rtol == 0.01 and rel.floor_fraction == FLOOR_FRACTION
    assert rel.floor == pytest.approx((FLOOR_FRACTION * 1.5, FLOOR_FRACTION * 25.0))
    assert rel.atol == pytest.approx((0.01 * FLOOR_FRACTION * 1.5, 0.01 * FLOOR_FRACTION * 25.0))
    assert rel.below_floor == pytest.approx(1 / 8)  # the one exact zero
    assert "floor 0.05 x median |y|" in rel.describe()
    # rtol/atol win; rtol alone gets the derived floor, atol alone is absolute
    given = Criterion.resolve(reference=Y, tolerance=0.5, metric="abs", rtol=0.02, atol=0.001)
    assert (given.rtol, given.atol, given.source) == (0.02, (0.001,), "atol")
    assert Criterion.resolve(reference=Y, rtol=0.02).source == "floor"
    only_atol = Criterion.resolve(reference=Y, atol=0.3)
    assert (only_atol.rtol, only_atol.atol, only_atol.metric, only_atol.tolerance) == (0.0, (0.3,), "abs", 0.3)


@pytest.mark.parametrize("kw", [
    {"tolerance": 0.0, "metric": "rel"}, {"tolerance": 0.1, "metric": "l2"}, {"rtol": -0.1},
    {"rtol": 0.0}, {"rtol": 0.0, "atol": 0.0}, {"atol": -1.0},
])
def test_impossible_criteria_are_errors(kw: dict) -> None:
    with pytest.raises(ValueError):
        Criterion.resolve(reference=np.ones((4, 1)), **kw)


def test_floor_of_zero_outputs_and_the_warning() -> None:
    assert derived_floor(np.zeros((5, 1))) == (REL_FLOOR,)
    assert derived_floor(np.array([[0.0], [0.0], [0.0], [4.0]])) == pytest.approx((FLOOR_FRACTION * 1.0,))  # mean |y|
    # 1e-7 .. 1e-4 (the issue's example): the floor follows the outputs' own scale, not 1e-3
    Y = np.geomspace(1e-7, 1e-4, 1000)[:, None]
    crit = Criterion.resolve(reference=Y, tolerance=0.01, metric="rel")
    assert crit.floor is not None and crit.floor[0] < 1e-6
    pred = Y * 1.10  # 10% off everywhere
    assert float(np.mean(crit.within(pred, Y))) < 0.1
    assert float(np.mean(Criterion.legacy("rel", 0.01).within(pred, Y))) == 1.0  # what the fixed floor said
    # many outputs below the floor: a warning that says what judges them
    skewed = np.concatenate([np.zeros(30), np.ones(70)])[:, None]
    warn = Criterion.resolve(reference=skewed, tolerance=0.01, metric="rel").floor_warning()
    assert warn is not None and "30.0% of the outputs" in warn and "atol=" in warn
    assert crit.below_floor == pytest.approx(0.067) and crit.floor_warning() is not None  # log-uniform: 6.7%
    even = Criterion.resolve(reference=np.linspace(-1, 1, 1001)[:, None], tolerance=0.01, metric="rel")
    assert even.below_floor == pytest.approx(0.025, abs=0.002) and even.floor_warning() is None


def test_legacy_reading_of_old_manifests() -> None:
    from regionx.check import manifest_criterion

    old = Criterion.legacy("rel", 0.01)
    assert (old.rtol, old.atol, old.floor, old.source) == (0.01, (0.01 * REL_FLOOR,), (REL_FLOOR,), "legacy")
    assert Criterion.legacy("abs", 0.05).atol == (0.05,)
    with pytest.raises(ValueError):
        Criterion.legacy("l1", 0.1)
    # a manifest without a criterion record is judged by its tolerance + metric and the old floor
    topology = TopologyResult(hidden=(4,), activation="tanh", train_time=1.0, steps=1, epochs=1, loss=0.0,
                              mean_error=0.0, max_error=0.0, accuracy=1.0, time_per_call=1e-6, time_per_element=1e-7,
                              exact_time_per_call=1e-5, meets_target=True)
    manifest = Manifest(region_id="r", region_name="r", source_path="x.py", source_sha256="", inputs=(), outputs=(),
                        domain={}, tolerance=0.01, metric="rel", target=0.99, accept=None, topology=topology,
                        module="m.py", lower=(), upper=(), seed=0, regionx_version="0")
    data = manifest.to_json()
    del data["criterion"]
    assert manifest_criterion(Manifest.from_json(data)) == old
    recorded = Criterion.resolve(reference=np.ones((4, 1)), rtol=0.02)
    new = Manifest.from_json(json.loads(json.dumps({**data, "criterion": recorded.to_json()})))
    assert manifest_criterion(new) == recorded


def test_error_metrics_count_and_bound() -> None:
    from regionx.train import error_metrics, within_tolerance

    exact = np.array([[1.0], [2.0], [0.0], [4.0]])
    pred = np.array([[1.005], [2.5], [1e-6], [np.nan]])
    crit = Criterion(0.01, (1e-5,))
    m = error_metrics(pred, exact, crit)
    assert (m["within"], m["n"], m["accuracy"]) == (2, 4, 0.5)
    assert m["accuracy_lcb"] == pytest.approx(lower_bound(2, 4))
    assert m["max_error"] == math.inf
    assert within_tolerance(pred, exact, crit).tolist() == [True, False, True, False]
    # the old (metric, tolerance) call still works, read as the legacy criterion
    assert within_tolerance(pred, exact, "rel", 0.01).tolist() == Criterion.legacy("rel", 0.01).within(pred, exact).tolist()


# --------------------------------------------------------------------------- lower confidence bound


@pytest.mark.parametrize("k,n,expected", [
    (5, 10, 0.26927),      # Wilson one-sided 95%, computed by hand: (0.6353 - 0.2932) / 1.2706
    (600, 600, 0.995511),  # n / (n + z^2)
    (2000, 2000, 0.998649),
    (1980, 2000, 0.985621),
    (995, 1000, 0.989765),
    (0, 10, 0.0),
    (0, 0, 0.0),
])
def test_wilson_lower_bound_known_values(k: int, n: int, expected: float) -> None:
    assert lower_bound(k, n) == pytest.approx(expected, abs=2e-6)


def test_lower_bound_is_below_the_share_and_tightens_with_n() -> None:
    for n in (10, 100, 1000, 10000):
        assert lower_bound(int(0.99 * n), n) < 0.99
    assert lower_bound(99, 100) < lower_bound(990, 1000) < lower_bound(9900, 10000)
    assert lower_bound(90, 100, confidence=0.99) < lower_bound(90, 100) < lower_bound(90, 100, confidence=0.8)
    # the fewest points whose perfect score clears a target: 268 for 99%
    assert points_needed(0.99) == 268 and lower_bound(268, 268) >= 0.99 > lower_bound(267, 267)


def test_split_gives_the_bound_enough_test_points() -> None:
    from regionx.train import TEST_POINTS, _split

    for n, n_test in ((12000, TEST_POINTS), (4000, 1000), (100, 25), (20, 5)):
        tr, va, te = _split(n, 0)
        assert len(te) == n_test and len(va) == max(1, round(0.15 * n)) and len(tr) + len(va) + len(te) == n
        assert len(set(tr) | set(va) | set(te)) == n


# --------------------------------------------------------------------------- pragma keys


def _pragma(body: str) -> tuple[list, list]:
    return parse_pragmas(f"# regionx: {body}\ndef f(x):\n    return x\n", "p.py")


@pytest.mark.parametrize("body,rtol,atol", [
    ("rtol=0.01, x=uniform(0, 1)", 0.01, None),
    ("atol=0.5, x=uniform(0, 1)", None, 0.5),
    ("rtol=1e-3, atol=1e-6, x=uniform(0, 1)", 1e-3, 1e-6),
    ("rtol=0, atol=2, x=uniform(0, 1)", 0.0, 2.0),
])
def test_pragma_rtol_atol(body: str, rtol: float | None, atol: float | None) -> None:
    pragmas, diagnostics = _pragma(body)
    assert diagnostics == []
    assert (pragmas[0].rtol, pragmas[0].atol, pragmas[0].tolerance, pragmas[0].metric) == (rtol, atol, None, None)


@pytest.mark.parametrize("body,code,text", [
    ("rtol=-0.1, x=uniform(0, 1)", "RX108", "finite number >= 0"),
    ("atol='big', x=uniform(0, 1)", "RX108", "expected a number"),
    ("rtol=0.01, tolerance=0.01, x=uniform(0, 1)", "RX108", "not both"),
    ("metric='abs', atol=0.1, x=uniform(0, 1)", "RX108", "not both"),
    ("rtol=0, x=uniform(0, 1)", "RX108", "needs atol"),
    ("rtol=0, atol=0, x=uniform(0, 1)", "RX108", "no error at all"),
    ("rtoll=0.01, x=uniform(0, 1)", "RX110", "did you mean 'rtol'"),
    ("rtol=0.1, rtol=0.2, x=uniform(0, 1)", "RX109", "given twice"),
])
def test_pragma_rtol_atol_errors(body: str, code: str, text: str) -> None:
    pragmas, diagnostics = _pragma(body)
    assert pragmas == [] and [d.code for d in diagnostics] == [code]
    assert text in diagnostics[0].message and diagnostics[0].line == 1
