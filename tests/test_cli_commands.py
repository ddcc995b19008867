"""The commands end to end at the command line: `sample --observe`, `train`, `rewrite -o` and
`--diff`, `profile`, `analyze --profile` and a multi-region `compile`, on a tiny program of two
slow, smooth regions. Exit statuses and what each command prints and writes are checked.

Commands that load TensorFlow (train, compile) run in this process through click's CliRunner,
with the timings that decide the search and the rewrite's profitability fixed (`fixed_timings`),
so that a loaded machine cannot change the verdicts; the others run as `python -m regionx` in a
subprocess. Training is tiny: 1000 samples, 3 Adam epochs (then refinement), a 10 s budget."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from regionx.cli import cli
from regionx.types import Dataset, Manifest

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

APP = textwrap.dedent('''\
    """Two slow, smooth regions called from map loops."""
    import sys


    # regionx: name=wave, tolerance=0.05, metric="abs", x=uniform(0.0, 1.0), y=uniform(0.0, 1.0)
    def wave(x, y):
        s = 0.0
        for k in range(40):
            s += (x * y + 0.5 * x) / 40
        return s


    # regionx: name=lin, tolerance=0.05, metric="abs", a=uniform(0.0, 1.0), b=uniform(0.0, 1.0)
    def lin(a, b):
        t = 0.0
        for _ in range(40):
            t += (2.0 * a + b) / 40
        return t


    def main(n):
        xs = [(i + 0.5) / n for i in range(n)]
        waves = [0.0] * n
        for i in range(n):
            waves[i] = wave(xs[i], xs[n - 1 - i])
        lins = [0.0] * n
        for i in range(n):
            lins[i] = lin(xs[i], 0.5)
        for w, v in zip(waves, lins):
            print(repr(w), repr(v))
        print(repr(lin(3.0, 0.5)))  # outside the domain: the exact code answers


    if __name__ == "__main__":
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
    ''')
# the region ids regionx.analysis gives APP, in source order
REGION_IDS = ["wave", "wave:for@8", "lin", "lin:for@16", "main", "main:for@24", "main:for@27", "main:for@29"]
TOLERANCE = 0.05
EXACT_SECONDS = 2e-5  # what the fixed exact timer reports per call


def rx(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m regionx ARGS` in `cwd`, with this working tree's regionx."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([PY, "-m", "regionx", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def run_app(path: Path, n: int) -> list[tuple[float, ...]]:
    """The numbers a run of APP (original or patched) prints, one tuple per line."""
    proc = subprocess.run([PY, str(path), str(n)], capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return [tuple(float(v) for v in line.split()) for line in proc.stdout.splitlines()]


def assert_surrogate_answers(exact: list[tuple[float, ...]], patched: list[tuple[float, ...]], columns: list[int]) -> None:
    """Inside the domain the patched run's answers in `columns` are the surrogate's (within the
    tolerance, not all bit-identical); the other columns and the last line (outside the domain,
    answered by the exact code) are identical."""
    assert len(exact) == len(patched)
    body_e, body_p = np.array(exact[:-1]), np.array(patched[:-1])
    for c in range(body_e.shape[1]):
        if c in columns:
            np.testing.assert_allclose(body_p[:, c], body_e[:, c], rtol=0, atol=TOLERANCE)
            assert np.any(body_p[:, c] != body_e[:, c]), f"column {c}: the surrogate never answered"
        else:
            np.testing.assert_array_equal(body_p[:, c], body_e[:, c])
    assert patched[-1] == exact[-1]


def fixed_timings(mp: pytest.MonkeyPatch) -> list[bool]:
    """The timings behind every decision of train and compile, fixed: a network costs 0.5 us + 10 ns
    per hidden unit per call and a tenth of that per batched row; the exact region 20 us per call
    (its source is still found and loaded by the real `exact_timer_for`); the wall clock never
    stops a search. Returns, per exact timer asked for, whether the real one was available."""
    import regionx.api as api_mod
    import regionx.train as train_mod

    real_exact_timer_for = api_mod.exact_timer_for
    found: list[bool] = []

    def surrogate_timer(module: Any, X: np.ndarray, form: str) -> float:
        per_call = 5e-7 + 1e-8 * sum(module.HIDDEN)
        return per_call if form == "call" else per_call / 10

    @contextlib.contextmanager
    def exact_timer_for(*args: Any, **kw: Any) -> Any:
        with real_exact_timer_for(*args, **kw) as timer:
            found.append(timer is not None)
            yield None if timer is None else (lambda: EXACT_SECONDS)

    mp.setattr(train_mod.budget, "default_surrogate_timer", surrogate_timer)
    mp.setattr(api_mod, "exact_timer_for", exact_timer_for)
    mp.setattr(train_mod.budget, "WALL_FACTOR", 1e6)
    return found


def invoke(args: list[str], cwd: Path) -> Any:
    """The CLI in this process, in `cwd`, with `fixed_timings`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        found = fixed_timings(mp)
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    result.timers_found = found
    return result


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    (path / "prog.py").write_text(APP)
    return path


@pytest.fixture(scope="module")
def trained(work: Path) -> tuple[Path, Any]:
    """`regionx sample` then `regionx train` of region lin; the artifact directory and train's result."""
    proc = rx("sample", "prog.py", "--region", "lin", "-n", "1000", "--seed", "0", "-o", "lin.npz", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote lin.npz: 1000 samples kept")
    result = invoke(["train", "lin.npz", "-o", "art_lin", "--topologies", "4;8", "--epochs", "3", "--budget", "10",
                     "--target", "0.95", "--seed", "0"], work)
    return work / "art_lin", result


# --------------------------------------------------------------------------- sample --observe


def test_sample_observe_records_the_calls_of_a_real_run(work: Path) -> None:
    proc = rx("sample", "prog.py", "--region", "lin", "-n", "1000", "--observe", f"{PY} prog.py 300", "-o", "obs.npz",
              cwd=work)
    assert proc.returncode == 0, proc.stderr
    # 301 calls, every one recorded (the cap, -n, is above it); lin(3.0, 0.5) is outside the domain
    assert proc.stdout.startswith("wrote obs.npz: 300 samples kept;") and "'outside_domain': 1" in proc.stdout
    data = Dataset.load(str(work / "obs.npz"))
    assert data.meta.mode == "observe" and data.meta.region_id == "lin" and data.meta.dropped["outside_domain"] == 1
    assert data.X.shape == (300, 2) and data.Y.shape == (300, 1)
    np.testing.assert_array_equal(data.X[:, 1], 0.5)  # what main passes
    assert sorted(data.X[:, 0].tolist()) == [(i + 0.5) / 300 for i in range(300)]
    np.testing.assert_allclose(data.Y[:, 0], 2.0 * data.X[:, 0] + 0.5, rtol=1e-12)
    assert (work / "prog.py").read_text() == APP


# --------------------------------------------------------------------------- train


def test_train_writes_artifacts_and_reports_the_search(trained: tuple[Path, Any]) -> None:
    art, result = trained
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.timers_found == [True]  # the exact code was found again beside the dataset
    out = result.stdout
    # the table row of the chosen network, the search line, where the artifacts are
    [row] = [line for line in out.splitlines() if line.startswith("\u2502 4 tanh")]
    assert row.rstrip("\u2502 ").endswith("chosen")
    assert "lin: search trained 1 of 2 candidate(s) that can beat the exact code (2 timed)" in out
    assert "; met target" in out
    assert "lin: within tolerance means |pred - exact| <= 0.05" in out
    assert out.rstrip().endswith("chose 4 tanh; artifacts in art_lin")
    assert sorted(p.name for p in art.iterdir()) == [
        "manifest.json", "model.keras", "report.json", "report.md", "surrogate_lin.py", "weights.npz"]
    manifest = Manifest.from_json(json.loads((art / "manifest.json").read_text()))
    assert manifest.region_id == "lin" and manifest.topology.hidden == (4,)
    assert manifest.topology.exact_time_per_call == pytest.approx(EXACT_SECONDS)
    assert manifest.topology.time_per_call == pytest.approx(5.4e-7)
    report = json.loads((art / "report.json").read_text())
    assert report["exact_timing"] == "interleaved"
    search = report["search"]
    assert search["mode"] == "fastest-first" and search["budget_s"] == 10.0
    # timed by the fixed timings, the faster trained first; it met the target, so 8 tanh was not trained
    first, second = sorted(search["candidates"], key=lambda c: c["order"])
    assert (first["label"], first["time_per_call"], first["status"]) == ("4 tanh", pytest.approx(5.4e-7), "met target")
    assert (second["label"], second["time_per_call"]) == ("8 tanh", pytest.approx(5.8e-7))
    assert second["status"] not in ("met target", "missed target")
    assert [r["label"] for r in report["rows"]] == ["4 tanh"]


# --------------------------------------------------------------------------- rewrite -o / --diff


def test_rewrite_out_writes_a_patched_program_that_uses_the_surrogate(trained: tuple[Path, Any]) -> None:
    art, result = trained
    assert result.exit_code == 0, result.stdout + result.stderr
    work = art.parent
    proc = rx("rewrite", "prog.py", "--region", "lin", "--artifact", "art_lin", "-o", "patched", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {os.path.join('patched', 'prog.py')}\n"
    assert sorted(p.name for p in (work / "patched").iterdir()) == [".regionx", "prog.py"]
    assert sorted(p.name for p in (work / "patched" / ".regionx" / "lin").iterdir()) == [
        "manifest.json", "surrogate_lin.py", "weights.npz"]
    text = (work / "patched" / "prog.py").read_text()
    assert "# regionx-rewritten: lin begin" in text and "# regionx-rewritten: wave" not in text
    assert (work / "prog.py").read_text() == APP
    # lin's answers (column 1) come from the surrogate inside the domain; wave's stay exact
    assert_surrogate_answers(run_app(work / "prog.py", 60), run_app(work / "patched" / "prog.py", 60), [1])


def test_rewrite_diff_prints_the_change_and_writes_nothing(trained: tuple[Path, Any]) -> None:
    art, result = trained
    assert result.exit_code == 0, result.stdout + result.stderr
    work = art.parent
    out = work / "for_diff"
    assert rx("rewrite", "prog.py", "--region", "lin", "--artifact", "art_lin", "-o", "for_diff", cwd=work).returncode == 0
    before = sorted(p.name for p in work.iterdir())
    proc = rx("rewrite", "prog.py", "--region", "lin", "--artifact", "art_lin", "--diff", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in work.iterdir()) == before and (work / "prog.py").read_text() == APP
    diff = proc.stdout
    assert diff.startswith("--- prog.py\n+++ prog.py\n@@ -1,")
    assert "\n+# regionx-rewritten: lin begin\n" in diff and "\n-def lin(a, b):\n" in diff
    # exactly the change `-o` writes
    expected = difflib.unified_diff(APP.splitlines(True), (out / "prog.py").read_text().splitlines(True),
                                    "prog.py", "prog.py")
    assert diff == "".join(expected)
    both = rx("rewrite", "prog.py", "--region", "lin", "--artifact", "art_lin", "--diff", "-o", "x", cwd=work)
    assert both.returncode == 2 and "use only one of -o/--out, --in-place and --diff" in both.stderr
    # the artifact names its region: --region may be left out
    named = rx("rewrite", "prog.py", "--artifact", "art_lin", "--diff", cwd=work)
    assert named.returncode == 0 and named.stdout == diff, named.stderr
    neither = rx("rewrite", "prog.py", "--diff", cwd=work)
    assert neither.returncode == 2 and "--artifact is required (or use --revert)" in neither.stderr


# --------------------------------------------------------------------------- profile / analyze --profile


def test_profile_json_and_table(work: Path) -> None:
    proc = rx("profile", "--json", "--", PY, "prog.py", "200", cwd=work)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"command", "paths", "rows", "total_time", "estimated_time", "plain_time", "overhead", "shares",
            "unattributed", "stdout"} <= set(data)
    assert data["paths"] == ["prog.py"] and data["command"] == [PY, "prog.py", "200"]
    calls = {r["region"]: r["calls"] for r in data["rows"]}
    assert calls == {"wave": 200, "wave:for@8": 200, "lin": 201, "lin:for@16": 201, "main": 1,
                     "main:for@24": 1, "main:for@27": 1, "main:for@29": 1}
    assert set(data["shares"]) == set(REGION_IDS) and sum(data["shares"].values()) <= 1.0 + 1e-9
    assert all({"region", "calls", "total_time", "time_per_call", "share", "inclusive_time"} <= set(r) for r in data["rows"])
    assert len(data["stdout"].splitlines()) == 201  # the program's own output, captured
    table = rx("profile", "--top", "3", "--", PY, "prog.py", "200", cwd=work)
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if line.startswith("\u2502")]
    assert len(rows) == 3 and all(line.split("\u2502")[1].strip() in REGION_IDS for line in rows)
    assert "program time " in table.stdout and "instrumentation overhead" in table.stdout
    failing = rx("profile", "--", PY, "prog.py", "zero", cwd=work)  # int("zero") raises
    assert failing.returncode == 1 and ": RX605 " in failing.stderr and "ValueError" in failing.stderr


def test_analyze_profile_fills_time_shares(work: Path) -> None:
    proc = rx("analyze", "--json", "--profile", f"{PY} prog.py 200", "prog.py", cwd=work)
    assert proc.returncode == 0, proc.stderr
    [entry] = json.loads(proc.stdout)["files"]
    assert [r["id"] for r in entry["regions"]] == REGION_IDS
    shares = [r["time_share"] for r in entry["regions"]]
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in shares) and sum(shares) <= 1.0 + 1e-9
    plain = json.loads(rx("analyze", "--json", "prog.py", cwd=work).stdout)["files"][0]["regions"]
    assert all(r["time_share"] is None for r in plain)  # without --profile nothing is measured
    table = rx("analyze", "--profile", f"{PY} prog.py 200", "prog.py", cwd=work)
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("% of run]") == len(REGION_IDS)


# --------------------------------------------------------------------------- compile, two regions


COMPILE_KEYS = ["region", "status", "inputs", "outputs", "samples", "exact_time_per_call", "design", "samples_reused",
                "samples_file", "select_by", "hoistable_loops", "loop_extra_seconds", "rows", "chosen", "best", "tolerance",
                "metric", "criterion", "target", "search", "verdict", "path_taken", "batched", "artifacts", "diagnostics"]


def test_compile_two_regions_rewrites_both(work: Path, tmp_path: Path) -> None:
    result = invoke(["compile", "prog.py", "--out", "cout", "--json", "-n", "1000", "--topologies", "4", "--epochs", "3",
                     "--budget", "10", "--target", "0.95"], work)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.timers_found == [True, True]
    doc = json.loads(result.stdout)
    assert doc["version"] == 1 and doc["file"] == "prog.py"
    regions = {r["region"]: r for r in doc["regions"]}
    assert list(regions) == ["wave", "lin"]
    # the document's keys, in order, as before typed stage results (CompileResult.to_json)
    assert [list(r) for r in doc["regions"]] == [COMPILE_KEYS, COMPILE_KEYS]
    out = work / "cout"
    for name, region in regions.items():
        assert region["status"] == "ok" and region["verdict"] == "rewritten" and region["diagnostics"] == []
        assert region["samples"] == 1000 and region["chosen"]["label"] == "4 tanh"
        assert region["chosen"]["exact_time_per_call"] == pytest.approx(EXACT_SECONDS)
        # each is called from a map loop of main: batched, the path that runs
        assert region["select_by"] == "batch" and region["path_taken"] == "batch" and len(region["batched"]) == 1
        assert region["artifacts"]["patched"] == os.path.join("cout", "prog.py")
        assert sorted(p.name for p in (out / name).iterdir()) == sorted(
            ["data.npz", "manifest.json", "model.keras", "report.json", "report.md", f"surrogate_{name}.py", "weights.npz"])
    assert sorted(p.name for p in out.iterdir()) == ["lin", "prog.py", "wave"]
    assert (work / "prog.py").read_text() == APP
    from regionx.rewrite import rewritten_regions

    patched = (out / "prog.py").read_text()
    assert sorted(rewritten_regions(patched)) == ["lin", "wave"]
    # both regions' answers come from their surrogates inside the domain, the exact code's outside
    assert_surrogate_answers(run_app(work / "prog.py", 60), run_app(out / "prog.py", 60), [0, 1])
    # and the patched file reverts to the original, both regions at once
    copy = tmp_path / "prog.py"
    copy.write_text(patched)
    reverted = rx("rewrite", "--revert", str(copy), "--in-place", cwd=tmp_path)
    assert reverted.returncode == 0, reverted.stderr
    assert copy.read_text() == APP
    # rewriting the two regions one at a time into one directory keeps each one's files apart
    # (one weights.npz for both would give the first region's module the second one's weights)
    one = rx("rewrite", "prog.py", "--region", "lin", "--artifact", "cout/lin", "-o", "apart", cwd=work)
    assert one.returncode == 0, one.stderr
    two = rx("rewrite", "apart/prog.py", "--region", "wave", "--artifact", "cout/wave", "--in-place", cwd=work)
    assert two.returncode == 0, two.stderr
    for name in ("lin", "wave"):
        np.testing.assert_array_equal(np.load(work / "apart" / ".regionx" / name / "weights.npz")["W0"],
                                      np.load(out / name / "weights.npz")["W0"])
    assert_surrogate_answers(run_app(work / "prog.py", 60), run_app(work / "apart" / "prog.py", 60), [0, 1])
