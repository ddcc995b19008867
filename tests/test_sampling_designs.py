"""Issue 14, sampling as the cost: space-filling designs (Sobol', Latin hypercube), the per-sample
time limit on an expensive library region, Dask giving local's data, and compile reusing samples."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from regionx import api
from regionx.analysis import analyze_source, find_region
from regionx.extract import extract_region, write_harness
from regionx.pragma import parse_domain
from regionx.sample import DESIGNS, RequireTooStrict, draw_inputs, sample_region
from regionx.types import Dataset, DomainSpec, Region

pytest.importorskip("scipy")

EXECUTOR = "local:2"


def spec(name: str, text: str) -> DomainSpec:
    return parse_domain(name, text)


def region_in(path: Path, name: str) -> tuple[str, Region]:
    """The text of `path` and its region `name`, found by the real analyzer."""
    text = path.read_text(encoding="utf-8")
    region = find_region(analyze_source(text, str(path)), name)
    assert region is not None and region.replaceable, region
    return text, region


# -- the designs -------------------------------------------------------------------------------------

EVERY_KIND = [spec("u", "uniform(-2, 3)"), spec("l", "loguniform(0.01, 100)"), spec("g", "normal(5, 2)"),
              spec("k", "integers(-3, 4)"), spec("c", "choice([1, 2, 8])"), spec("v", "uniform(0, 1, shape=(2, 3))")]


@pytest.mark.parametrize("design", ["sobol", "lhs"])
def test_space_filling_draws_are_deterministic_under_the_seed(design: str) -> None:
    rows, rejected = draw_inputs(EVERY_KIND, 256, np.random.default_rng(7), design=design)
    again, _ = draw_inputs(EVERY_KIND, 256, np.random.default_rng(7), design=design)
    other, _ = draw_inputs(EVERY_KIND, 256, np.random.default_rng(8), design=design)
    uniform, _ = draw_inputs(EVERY_KIND, 256, np.random.default_rng(7), design="uniform")
    assert rejected == 0 and len(rows) == 256

    def flat(rs: list[tuple[object, ...]]) -> np.ndarray:
        return np.array([[*r[:5], *np.ravel(r[5])] for r in rs], dtype=float)

    assert np.array_equal(flat(rows), flat(again))
    assert not np.array_equal(flat(rows), flat(other)) and not np.array_equal(flat(rows), flat(uniform))


@pytest.mark.parametrize("design", ["sobol", "lhs"])
def test_space_filling_draws_stay_in_the_box_with_the_right_types(design: str) -> None:
    rows, _ = draw_inputs(EVERY_KIND, 4096, np.random.default_rng(0), design=design)
    u, lg, g, k, c = (np.array(col) for col in list(zip(*rows))[:5])
    v = np.array([r[5] for r in rows])
    assert isinstance(rows[0][0], float) and isinstance(rows[0][3], int) and isinstance(rows[0][4], int)
    assert isinstance(rows[0][5], np.ndarray) and rows[0][5].shape == (2, 3)
    assert u.min() >= -2 and u.max() < 3 and lg.min() >= 0.01 and lg.max() <= 100
    assert np.all(np.isfinite(g)) and abs(g.mean() - 5) < 0.05 and abs(g.std() - 2) < 0.05  # through the normal quantile
    assert set(np.unique(k)) == set(range(-3, 5)) and set(np.unique(c)) == {1, 2, 8}  # every value, both ends
    assert v.min() >= 0 and v.max() < 1
    # Evenly spread: with 4096 points every one of 64 equal bins of each dimension holds 64 of them
    # (both designs stratify their one-dimensional projections), in log space for loguniform.
    for column in (u + 2) / 5, np.log(lg / 0.01) / np.log(1e4), v[:, 1, 2]:
        assert np.array_equal(np.bincount((column * 64).astype(int), minlength=64), np.full(64, 64))


@pytest.mark.parametrize("design", ["sobol", "lhs"])
def test_space_filling_draws_respect_require_by_rejection(design: str) -> None:
    specs = [spec("a", "uniform(0.5, 2.0)"), spec("b", "uniform(-10, 10)"), spec("c", "uniform(-10, 10)")]
    require = "b*b - 4*a*c >= 0"
    rows, rejected = draw_inputs(specs, 1000, np.random.default_rng(3), require, design)
    assert len(rows) == 1000 and rejected > 100
    assert all(b * b - 4 * a * c >= 0 for a, b, c in rows)
    assert draw_inputs(specs, 1000, np.random.default_rng(3), require, design) == (rows, rejected)
    with pytest.raises(RequireTooStrict):
        draw_inputs([spec("x", "uniform(0, 1)")], 100, np.random.default_rng(0), "x > 0.99999", design)


def test_an_unknown_design_is_rx006(tmp_path: Path) -> None:
    path = tmp_path / "sq.py"
    path.write_text("# regionx: name=sq, x=uniform(0, 1)\ndef sq(x):\n    return x * x\n", encoding="utf-8")
    text, region = region_in(path, "sq")
    result, data = sample_region(text, str(path), region, n=10, design="halton")
    assert data is None and [d.code for d in result.diagnostics] == ["RX006"] and "uniform, sobol, lhs" in result.diagnostics[0].message
    assert set(DESIGNS) == {"uniform", "sobol", "lhs"}


def test_harness_cli_draws_the_same_design_as_sample_region(tmp_path: Path) -> None:
    path = tmp_path / "root.py"
    path.write_text(textwrap.dedent('''\
        import math

        # regionx: name=root, a=uniform(0.5, 2.0), b=uniform(-10, 10), c=uniform(-10, 10),
        # regionx: require="b*b - 4*a*c >= 0"
        def root(a, b, c):
            return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
        '''), encoding="utf-8")
    text, region = region_in(path, "root")
    _, data = sample_region(text, str(path), region, n=200, seed=4, executor=EXECUTOR, design="sobol")
    harness = write_harness(extract_region(text, str(path), region).payload.harness, str(tmp_path / "h" / "harness.py"))
    out = tmp_path / "h.npz"
    proc = subprocess.run([sys.executable, harness, "--samples", "200", "--seed", "4", "--design", "sobol", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    standalone = Dataset.load(str(out))
    assert data is not None and data.meta.design == "sobol" and standalone.meta.design == "sobol"
    assert np.array_equal(standalone.X, data.X) and np.array_equal(standalone.Y, data.Y)


# -- an expensive library region: time limit, Dask ----------------------------------------------------

EXPENSIVE = '''\
import math

from scipy.integrate import solve_ivp


def decay(t, y, rate):
    return [-rate * y[0]]


# regionx: name=settle, x=uniform(0.1, 1)
def settle(x):
    # x > 0.8 is a pathological input: a span of 1e9 s at steps of 1e-3 s would run for days.
    span = 1e9 if x > 0.8 else 1.0
    solution = solve_ivp(decay, (0.0, span), [1.0], args=(x,), max_step=1e-3 if x > 0.8 else math.inf)
    return float(solution.y[0, -1])
'''


@pytest.fixture()
def expensive(tmp_path: Path) -> tuple[str, str, Region]:
    path = tmp_path / "settle.py"
    path.write_text(EXPENSIVE, encoding="utf-8")
    text, region = region_in(path, "settle")
    return str(path), text, region


def test_the_time_limit_stops_pathological_inputs_of_a_library_region(expensive: tuple[str, str, Region]) -> None:
    path, text, region = expensive
    result, data = sample_region(text, path, region, n=16, seed=3, timeout=0.5, executor=EXECUTOR)
    assert result.ok and data is not None
    rows, _ = draw_inputs(region.pragma.domains, 16, np.random.default_rng(3))  # type: ignore[union-attr]
    slow = sum(1 for (x,) in rows if x > 0.8)
    assert slow > 0 and data.meta.dropped["timeout"] == slow and len(data.X) == 16 - slow
    assert np.all(data.X <= 0.8)
    np.testing.assert_allclose(data.Y[:, 0], np.exp(-data.X[:, 0]), rtol=1e-2)  # y(1) = exp(-rate)


def test_dask_gives_local_data_for_a_design_and_times_out_the_same_rows(expensive: tuple[str, str, Region]) -> None:
    from distributed import LocalCluster

    path, text, region = expensive
    _, local = sample_region(text, path, region, n=40, seed=1, timeout=0.5, executor=EXECUTOR, design="sobol")
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        # Twice on the same cluster: the second run reuses each worker thread's child interpreter.
        _, remote = sample_region(text, path, region, n=40, seed=1, timeout=0.5, executor=address, design="sobol")
        _, again = sample_region(text, path, region, n=40, seed=1, timeout=0.5, executor=address, design="sobol")
    assert local is not None and remote is not None and again is not None
    assert local.meta.dropped["timeout"] > 0
    for other in (remote, again):
        assert np.array_equal(local.X, other.X) and np.array_equal(local.Y, other.Y)
        assert other.meta.dropped == local.meta.dropped and other.meta.design == "sobol"


# -- compile keeps and reuses its samples -------------------------------------------------------------

KEPT = '''\
import math

SCALE = 2.0


def unrelated(x):
    return x + 1


# regionx: name=wave, tolerance=0.01, x=uniform(0, 3)
def wave(x):
    return SCALE * math.sin(x)
'''


def test_compile_samples_are_reused_until_the_region_or_its_dependencies_change(tmp_path: Path) -> None:
    path = tmp_path / "wave.py"
    path.write_text(KEPT, encoding="utf-8")
    out = str(tmp_path / "out" / "wave")

    def take(n: int = 200, design: str = "uniform", resample: bool = False) -> tuple[dict[str, object], Dataset]:
        text, region = region_in(path, "wave")
        result, dataset = api.compile_samples(text, str(path), region, out, n=n, seed=0, design=design,
                                              executor=EXECUTOR, resample=resample)
        assert result.ok and dataset is not None, result
        return result.to_json(), dataset

    first, data = take()
    assert first["samples_reused"] is False and "samples_resampled_because" not in first
    assert Path(out, "data.npz").is_file()
    again, reused = take()
    assert again["samples_reused"] is True and np.array_equal(reused.X, data.X) and np.array_equal(reused.Y, data.Y)

    # Edits that do not touch the region or what it depends on: still reused.
    path.write_text(KEPT.replace("return x + 1", "return x + 2") + "\n\nEXTRA = 1\n", encoding="utf-8")
    assert take()[0]["samples_reused"] is True
    # The pragma's tolerance does not change the samples: reused, with the new tolerance recorded.
    path.write_text(path.read_text().replace("tolerance=0.01", "tolerance=0.05"), encoding="utf-8")
    info, retolerated = take()
    assert info["samples_reused"] is True and retolerated.meta.tolerance == 0.05

    # A constant the region reads changed: sampled again, saying why.
    path.write_text(path.read_text().replace("SCALE = 2.0", "SCALE = 3.0"), encoding="utf-8")
    changed, resampled = take()
    assert changed["samples_reused"] is False and "SCALE" in str(changed["samples_resampled_because"])
    np.testing.assert_allclose(resampled.Y, 1.5 * data.Y)
    assert take()[0]["samples_reused"] is True  # and that new data is kept in turn
    # Its own code, the count, the design, or --resample: sampled again.
    path.write_text(path.read_text().replace("SCALE * math.sin(x)", "SCALE * math.sin(x) + 0.0"), encoding="utf-8")
    assert "its code changed" in str(take()[0]["samples_resampled_because"])
    assert "300 are asked for" in str(take(n=300)[0]["samples_resampled_because"])
    assert "design" in str(take(n=300, design="sobol")[0]["samples_resampled_because"])
    assert take(n=300, design="sobol", resample=True)[0]["samples_resampled_because"] == "--resample"


# -- active sampling in rounds ---------------------------------------------------------------------


def test_active_rounds_place_new_samples_where_the_surrogate_errs(tmp_path: Path) -> None:
    from regionx.active import round_sizes, sample_active

    path = tmp_path / "plane.py"
    path.write_text("# regionx: name=plane, tolerance=0.01, x=uniform(0, 1), y=uniform(0, 1)\n"
                    "def plane(x, y):\n    return x + y + 1.0\n", encoding="utf-8")
    text, region = region_in(path, "plane")
    fitted: list[int] = []

    def fit(dataset: Dataset):  # type: ignore[no-untyped-def]
        """A stand-in surrogate: exact, except 10% off where x > 0.75."""
        fitted.append(len(dataset.X))
        return lambda X: (X[:, 0] + X[:, 1] + 1.0)[:, None] * np.where(X[:, 0] > 0.75, 1.1, 1.0)[:, None]

    assert round_sizes(400, 3) == [100, 100, 200]
    result, data = sample_active(text, str(path), region, n=400, seed=0, design="sobol", rounds=3, fit=fit, executor=EXECUTOR)
    assert result.ok and data is not None, result
    assert fitted == [100, 200] and len(data.X) == 400
    assert data.meta.design == "sobol+active" and data.meta.requested == 400 and data.meta.exact_time_per_call > 0
    np.testing.assert_allclose(data.Y[:, 0], data.X.sum(axis=1) + 1.0)
    assert [r["samples"] for r in result.payload.rounds] == [100, 200, 400]
    assert result.payload.rounds[0]["fit_within_tolerance"] < 0.9
    # The design's first round covers the box; later rounds mostly go where the errors are (a
    # quarter of them still by the design alone).
    assert 0.15 < np.mean(data.X[:100, 0] > 0.75) < 0.35
    assert np.mean(data.X[100:, 0] > 0.7) > 0.6
    _, again = sample_active(text, str(path), region, n=400, seed=0, design="sobol", rounds=3, fit=fit, executor=EXECUTOR)
    assert again is not None and np.array_equal(again.X, data.X)


def test_the_default_design_comes_from_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from regionx.config import load_config
    from regionx.sample import DEFAULT_DESIGN

    monkeypatch.chdir(tmp_path)
    assert api.default_design() == DEFAULT_DESIGN
    (tmp_path / "pyproject.toml").write_text('[tool.regionx]\ndesign = "lhs"\n', encoding="utf-8")
    assert load_config(str(tmp_path)).design == "lhs" and api.default_design() == "lhs"
    (tmp_path / "pyproject.toml").write_text('[tool.regionx]\ndesign = "random"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="design must be one of uniform, sobol, lhs"):
        load_config(str(tmp_path))


def test_progress_shows_a_rate() -> None:
    from types import SimpleNamespace

    from regionx.cli import _rate_column

    column = _rate_column()
    assert str(column.render(SimpleNamespace(finished_speed=None, speed=312.4))) == "312/s"
    assert str(column.render(SimpleNamespace(finished_speed=None, speed=None))) == "-/s"
    assert str(column.render(SimpleNamespace(finished_speed=2.5, speed=None))) == "2.5/s"


def test_a_second_compile_says_it_reused_the_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`regionx compile` prints which regions' samples were reused or taken again, and why (training
    is stubbed out: what is checked here is the sampling step and what the command says of it)."""
    import json

    from click.testing import CliRunner

    import regionx.train
    from regionx.cli import cli
    from regionx.types import StageResult

    calls: list[int] = []

    def no_training(dataset: Dataset, out_dir: str, **kwargs: object) -> StageResult:
        calls.append(len(dataset.X))
        return StageResult("failed", dataset.meta.region_id, ())

    monkeypatch.setattr(regionx.train, "train_dataset", no_training)
    path = tmp_path / "wave.py"
    path.write_text(KEPT, encoding="utf-8")
    out = str(tmp_path / "out")

    def compile_(*extra: str) -> str:
        result = CliRunner().invoke(cli, ["compile", str(path), "--out", out, "-n", "120", "--executor", EXECUTOR, *extra],
                                    catch_exceptions=False)
        assert result.exit_code == 1, result.output  # training "failed"
        return result.stdout

    first = compile_()
    assert "reused" not in first and "sampled again" not in first
    path.write_text(KEPT.replace("return x + 1", "return x - 1"), encoding="utf-8")
    assert "wave: reused the samples in" in compile_() and "120 (reused)" in compile_()
    doc = json.loads(compile_("--json"))
    assert doc["regions"][0]["samples_reused"] is True
    path.write_text(KEPT.replace("SCALE = 2.0", "SCALE = 2.5"), encoding="utf-8")
    assert "wave: sampled again (module constant SCALE changed)" in compile_()
    assert calls == [120] * 5


def test_compile_samples_in_active_rounds_are_kept_and_reused_as_such(tmp_path: Path) -> None:
    path = tmp_path / "wave.py"
    path.write_text(KEPT, encoding="utf-8")
    text, region = region_in(path, "wave")
    out = str(tmp_path / "out" / "wave")
    sizes: list[int] = []

    def fit(dataset: Dataset):  # type: ignore[no-untyped-def]
        sizes.append(len(dataset.X))
        return lambda X: 2.0 * np.sin(X)  # the exact function: no errors anywhere

    def take(rounds: int) -> dict[str, object]:
        result, dataset = api.compile_samples(text, str(path), region, out, n=160, seed=0, design="sobol",
                                              executor=EXECUTOR, rounds=rounds, fit=fit)
        assert result.ok and dataset is not None and len(dataset.X) == 160
        return {**result.to_json(), "meta_design": dataset.meta.design}

    first = take(3)
    assert first["samples_reused"] is False and first["meta_design"] == "sobol+active" and sizes == [40, 80]
    assert take(3)["samples_reused"] is True and sizes == [40, 80]  # reused: no round ran again
    assert "design sobol+active was used, sobol is asked for" in str(take(1)["samples_resampled_because"])


# -- the showcase fixture ----------------------------------------------------------------------------


def test_the_projectile_fixture_runs_and_its_region_is_replaceable() -> None:
    root = Path(__file__).resolve().parents[1]
    fixture = root / "fixtures" / "projectile.py"
    proc = subprocess.run([sys.executable, str(fixture), "20"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "launches: 20" in proc.stdout
    text, region = region_in(fixture, "flight_range")
    assert region.inputs == ("speed", "angle", "drag") and region.outputs == ("return",)
    namespace: dict[str, object] = {"__name__": "projectile_fixture"}
    exec(compile(text, str(fixture), "exec"), namespace)
    flight_range = namespace["flight_range"]
    # Almost no drag: the vacuum range v^2 sin(2 theta) / g; more drag, a shorter flight.
    assert flight_range(50.0, 45.0, 1e-9) == pytest.approx(50.0 ** 2 / 9.81, rel=1e-4)  # type: ignore[operator]
    assert flight_range(50.0, 45.0, 0.02) < flight_range(50.0, 45.0, 0.001) < 50.0 ** 2 / 9.81  # type: ignore[operator]


def test_compile_charges_its_active_rounds_to_the_region_budget(tmp_path: Path) -> None:
    """--rounds fits are budgeted (each a part of api.ACTIVE_SHARE of the region's budget) and what
    they spent is taken from the search's budget, which report.json shows."""
    path = tmp_path / "wave.py"
    path.write_text(KEPT, encoding="utf-8")
    budget = 24.0
    results = api.compile_file(str(path), ["wave"], out_dir=str(tmp_path / "out"), samples=600, epochs=4, seed=0,
                               topologies="8", executor=EXECUTOR, rounds=3, budget=budget, design="sobol")
    (result,) = results
    sample = result.payload.sample
    assert sample is not None and sample.design == "sobol+active" and sample.rounds is not None
    assert [r["samples"] for r in sample.rounds] == [150, 300, 600]
    assert result.payload.train is not None
    search_budget = result.payload.train.search["budget_s"]
    # two fits ran and cost something; together at most the active share (plus one first dose's
    # rounding: a fit is never given less than its whole share)
    assert budget * (1 - api.ACTIVE_SHARE) <= search_budget < budget


def test_compile_grows_its_data_where_the_network_errs(tmp_path: Path) -> None:
    """api._grower with the search's `weigh`: three quarters of the new samples go where the
    network errs (here x > 2.4, a fifth of the box), a quarter follow the design; without it the
    samples follow the design alone. Either way they are the region's true outputs."""
    path = tmp_path / "wave.py"
    path.write_text(KEPT, encoding="utf-8")
    text, region = region_in(path, "wave")
    grow = api._grower(text, str(path), region, seed=0, design="uniform", executor=EXECUTOR)
    got = grow(200, lambda X: np.where(X[:, 0] > 2.4, 1.0, 1e-9))
    assert got is not None
    X, Y = got
    assert len(X) == 200 and np.mean(X[:, 0] > 2.4) > 0.7
    np.testing.assert_allclose(Y[:, 0], 2.0 * np.sin(X[:, 0]), rtol=1e-12)
    plain = grow(200, None)
    assert plain is not None and np.mean(plain[0][:, 0] > 2.4) < 0.35
