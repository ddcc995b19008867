"""`regionx compile` end to end: patched program vs original, in subprocesses (issue #5 evidence)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from regionx.cli import cli

APP = textwrap.dedent(
    '''\
    """A program whose hot function is a smooth, slow function of two inputs."""
    import math
    import sys

    TERMS = 60


    # regionx: name=bump, tolerance=0.02, metric="abs",
    # regionx: x=uniform(-2.0, 2.0), y=uniform(-2.0, 2.0)
    def bump(x, y):
        s = 0.0
        for k in range(TERMS):
            s += math.exp(-(x * x + y * y) * (k + 1) / TERMS) / TERMS
        return s


    def main(n=300):
        xs = [-1.9 + 3.8 * i / (n - 1) for i in range(n)]
        out = [0.0] * n
        for i in range(n):
            out[i] = bump(xs[i], xs[n - 1 - i])
        # far outside the trained domain: the exact code must answer
        out.append(bump(5.0, -7.0))
        for value in out:
            print(repr(value))


    if __name__ == "__main__":
        main()
    '''
)

# Runs a program as __main__ and then reports which heavy modules it imported.
RUNNER = textwrap.dedent(
    """
    import runpy, sys
    runpy.run_path(sys.argv[1], run_name="__main__")
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras", "regionx"})
    print("HEAVY=" + ",".join(heavy))
    """
)


def run_program(path: Path, cwd: Path) -> tuple[list[float], str]:
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(path)], capture_output=True, text=True, cwd=cwd,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    return [float(x) for x in lines[:-1]], lines[-1]


EXACT_SECONDS = 2e-5  # the exact bump's cost per call, as the fixed timings below report it


def fixed_timings(mp: pytest.MonkeyPatch) -> dict[str, int]:
    """Make compile's timing decisions (which candidates can beat the exact code, the order they
    are trained in, profitability, the batch's minimum rows, the wall-clock stop) independent of
    the machine's load: the real timers still run, on the real code, but report fixed costs
    (a network costs 1 us + 10 ns per hidden unit per call, a tenth of that per batched row), and
    the wall clock never stops the search. Returns how often each timer ran."""
    import contextlib

    import regionx.api as api_mod
    import regionx.train as train_mod

    real_surrogate_timer = train_mod.default_surrogate_timer
    real_exact_timer_for = api_mod.exact_timer_for
    ran = {"surrogate": 0, "exact": 0}

    def surrogate_timer(module, X, form):  # type: ignore[no-untyped-def]
        assert real_surrogate_timer(module, X, form) > 0
        ran["surrogate"] += 1
        per_call = 1e-6 + 1e-8 * sum(module.HIDDEN)
        return per_call if form == "call" else per_call / 10

    @contextlib.contextmanager
    def exact_timer_for(*args, **kw):  # type: ignore[no-untyped-def]
        with real_exact_timer_for(*args, **kw) as timer:
            assert timer is not None  # the region is unchanged since sampling: it can be re-timed

            def fixed() -> float:
                assert timer() > 0
                ran["exact"] += 1
                return EXACT_SECONDS

            yield fixed

    mp.setattr(train_mod.budget, "default_surrogate_timer", surrogate_timer)
    mp.setattr(api_mod, "exact_timer_for", exact_timer_for)
    mp.setattr(train_mod.budget, "WALL_FACTOR", 1e6)
    return ran


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    work = tmp_path_factory.mktemp("e2e")
    app = work / "app.py"
    app.write_text(APP)
    out = work / "out"
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        ran = fixed_timings(mp)
        result = runner.invoke(cli, ["compile", str(app), "--out", str(out), "--json", "--samples", "3000",
                                     "--topologies", "16:relu;32:tanh", "--epochs", "80", "--executor", "local:2",
                                     "--budget", "60"],
                               catch_exceptions=False)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert ran["surrogate"] > 0 and ran["exact"] > 0
    return app, out, json.loads(result.stdout)


def test_compile_writes_artifacts_and_summary(compiled: tuple[Path, Path, dict]) -> None:
    app, out, doc = compiled
    [region] = doc["regions"]
    assert region["region"] == "bump" and region["status"] == "ok"
    assert region["verdict"] == "rewritten"
    assert region["chosen"]["accuracy"] >= 0.99
    assert region["inputs"] == ["x", "y"] and region["outputs"] == ["return"]
    for name in ("manifest.json", "report.json", "report.md", "model.keras", "surrogate_bump.py", "weights.npz"):
        assert (out / "bump" / name).is_file(), name
    assert (out / "app.py").is_file()
    assert app.read_text() == APP  # the user's file is untouched
    # compile re-timed the exact code beside every topology (not only while sampling)
    report = json.loads((out / "bump" / "report.json").read_text())
    assert report["exact_timing"] == "interleaved"
    # the search: both candidates timed before training, trained fastest first within the budget,
    # stopped at the first that met the target by its lower confidence bound
    search = region["search"]
    assert search["mode"] == "fastest-first" and search["budget_s"] == 60.0 and search["stopped"] == "met target"
    assert sorted(c["label"] for c in search["candidates"]) == ["16 relu", "32 tanh"]
    # the (fixed) timings decided: both can beat the exact code and the faster is trained first;
    # the winner is the first in that order to meet the target (every one before it missed)
    by_label = {c["label"]: c for c in search["candidates"]}
    assert by_label["16 relu"]["time_per_call"] == pytest.approx(1.16e-6)
    assert by_label["32 tanh"]["time_per_call"] == pytest.approx(1.32e-6)
    assert by_label["16 relu"]["order"] == 0 and by_label["32 tanh"]["order"] == 1
    assert all(c["viable"] for c in search["candidates"])
    tried = sorted((c for c in search["candidates"] if c["status"] in ("met target", "missed target")),
                   key=lambda c: c["order"])
    assert [c["status"] for c in tried] == ["missed target"] * (len(tried) - 1) + ["met target"]
    assert region["chosen"]["label"] == tried[-1]["label"]
    assert region["chosen"]["exact_time_per_call"] == pytest.approx(EXACT_SECONDS)
    # the map loop calling bump is batched: the path that runs
    assert region["select_by"] == "batch" and region["path_taken"] == "batch" and region["batched"]
    assert region["chosen"]["accuracy_lcb"] >= 0.99 and region["chosen"]["n_test"] == 750
    assert region["criterion"]["rtol"] == 0.0 and region["criterion"]["atol"] == [0.02]
    assert report["search"]["log"] and "Search: fastest-first" in (out / "bump" / "report.md").read_text()


def test_patched_program_matches_within_tolerance_without_tensorflow(compiled: tuple[Path, Path, dict]) -> None:
    app, out, _ = compiled
    exact, exact_heavy = run_program(app, app.parent)
    # run from an unrelated directory: the patched file finds its surrogate by its own path
    patched, patched_heavy = run_program(out / "app.py", Path("/"))
    assert exact_heavy == patched_heavy == "HEAVY="
    assert len(exact) == len(patched) == 301
    errors = [abs(p - e) for p, e in zip(patched[:-1], exact[:-1])]
    within = sum(err <= 0.02 for err in errors) / len(errors)
    assert within >= 0.97, (within, max(errors))
    assert max(errors) < 0.1
    assert any(err > 0 for err in errors)  # the surrogate really answered inside the domain
    # outside the domain the exact code answered: bit-identical
    assert patched[-1] == exact[-1]


def test_patched_file_reverts_to_the_original(compiled: tuple[Path, Path, dict], tmp_path: Path) -> None:
    app, out, _ = compiled
    copy = tmp_path / "app.py"
    copy.write_text((out / "app.py").read_text())
    result = CliRunner().invoke(cli, ["rewrite", "--revert", str(copy), "--in-place"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert copy.read_text() == APP
