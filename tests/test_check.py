"""`regionx check` on a copy of fixtures/ci_repo: clean tree, stale region, lost accuracy, missing
artifacts, out-of-date patched program, output formats, exit codes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from regionx.check import FRESH_SEED_OFFSET, check_paths, draw_fresh, render
from regionx.cli import cli
from regionx.diagnostics import make
from regionx.types import CheckReport, Manifest, RegionCheck

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "ci_repo"
SOURCE = "src/physics.py"
SAMPLES = "300"  # fresh samples per region: enough to measure 99% accuracy, fast


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the CI fixture repository, as the working directory."""
    target = tmp_path / "repo"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(target)
    return target


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "--samples", SAMPLES, *args], catch_exceptions=False)
    return result.exit_code, result.stdout


def run_json(*args: str) -> tuple[int, dict]:
    code, out = run("--format", "json", *args)
    return code, json.loads(out)


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def findings(doc: dict) -> list[dict]:
    return doc["diagnostics"] + [f for r in doc["regions"] for f in r["findings"]]


def codes(doc: dict) -> set[str]:
    return {f["code"] for f in findings(doc)}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# --------------------------------------------------------------------------- clean tree


def test_clean_tree_passes_with_table(repo: Path) -> None:
    code, out = run()
    assert code == 0, out
    assert "overlap" in out and "newton_sqrt" in out
    assert "2 annotated regions, 2 ok, 0 failed; 0 findings" in out


def test_clean_tree_json_measures_each_region(repo: Path) -> None:
    code, doc = run_json()
    assert code == 0
    assert doc["version"] == 1 and doc["samples"] == int(SAMPLES) and doc["exit_status"] == 0
    rows = {r["id"]: r for r in doc["regions"]}
    assert set(rows) == {"overlap", "newton_sqrt"}
    for row in rows.values():
        assert row["status"] == "ok" and row["findings"] == []
        assert row["accuracy"] >= row["target"]
        assert row["tolerance"] == 0.05 and row["metric"] == "abs"
        assert row["samples"] + row["outside"] + row["dropped"] == int(SAMPLES)
        assert row["path"] == SOURCE
    assert rows["overlap"]["line"] == line_of(repo / SOURCE, "def overlap")


def test_configured_paths_and_explicit_paths_agree(repo: Path) -> None:
    # no PATH: [tool.regionx] paths = ["src"]; an explicit file and its folder give the same regions
    ids = [{r["id"] for r in run_json(*p)[1]["regions"]} for p in ((), (SOURCE,), ("src",), (".",))]
    assert all(i == {"overlap", "newton_sqrt"} for i in ids)


def test_fresh_samples_honour_require_and_differ_from_training(repo: Path) -> None:
    from regionx.analysis import analyze_file, find_region

    analysis = analyze_file(str(repo / SOURCE))
    region = find_region(analysis, "newton_sqrt")
    assert region is not None
    manifest = Manifest.from_json(json.loads((repo / ".regionx" / "newton_sqrt" / "manifest.json").read_text()))
    rows, problem = draw_fresh(region, manifest, 500, manifest.seed + FRESH_SEED_OFFSET)
    assert problem is None and rows is not None and len(rows) == 500
    v = np.array([r[0] for r in rows])
    assert v.min() >= 0.25 and v.max() <= 4.0  # require="v >= 0.25" on uniform(0, 4)
    train_rows, _ = draw_fresh(region, manifest, 500, manifest.seed)
    assert train_rows is not None and not np.allclose(v, [r[0] for r in train_rows])


def test_rows_outside_the_trained_box_are_counted_not_judged(repo: Path) -> None:
    # fresh rows drawn from a domain wider than the trained box [0, 2] for a: rows with a > 2 are
    # served by the exact code at run time, so they are reported, not judged. (Through `check` a
    # widened pragma domain is stale: test_changed_pragma_is_stale_saying_what_changed.)
    from regionx.analysis import analyze_file, find_region
    from regionx.check import measure_accuracy

    edit(repo / SOURCE, "a=uniform(0.0, 2.0)", "a=uniform(0.0, 4.0)")
    region = find_region(analyze_file(SOURCE), "overlap")
    assert region is not None
    manifest = Manifest.from_json(json.loads((repo / ".regionx" / "overlap" / "manifest.json").read_text()))
    n = int(SAMPLES)
    m = measure_accuracy((repo / SOURCE).read_text(), SOURCE, region, manifest, ".regionx/overlap", n=n,
                         tolerance=manifest.tolerance, metric=manifest.metric)
    assert m["problem"] is None and m["accuracy"] >= manifest.target
    assert 0.3 * n < m["outside"] < 0.7 * n
    assert m["samples"] == n - m["outside"] - m["dropped"]


# --------------------------------------------------------------------------- findings


def test_edited_region_body_is_stale_at_its_line(repo: Path) -> None:
    edit(repo / SOURCE, "x = 0.5 * (x + v / x)", "x = 0.5 * (x + v / x) + 0.0")
    code, doc = run_json()
    assert code == 1
    row = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")
    assert row["status"] == "failed"
    [stale] = [f for f in row["findings"] if f["code"] == "RX602"]
    assert stale["path"] == SOURCE and stale["line"] == line_of(repo / SOURCE, "def newton_sqrt")
    assert "stale" in stale["message"] and "newton_sqrt" in stale["message"]
    # the other region is untouched, and the committed patched program is now out of date
    assert next(r for r in doc["regions"] if r["id"] == "overlap")["status"] == "ok"
    assert "RX604" in codes(doc)


def test_stale_text_output_names_file_and_line(repo: Path) -> None:
    edit(repo / SOURCE, "h = 1.0 / STEPS", "h = 1.0 / (STEPS + 0)")
    code, out = run()
    assert code == 1
    line = line_of(repo / SOURCE, "def overlap")
    assert f"{SOURCE}:{line}:1: RX602 stale: region 'overlap' changed since its surrogate was trained" in out


# A pragma edited since training is stale (RX602), saying what changed; the surrogate is not measured.
PRAGMA_CHANGES = [
    # (old text, new text, region, what the message says)
    ('name=newton_sqrt, tolerance=0.05, metric="abs"', 'name=newton_sqrt, tolerance=0.0001, metric="abs"',
     "newton_sqrt", ["tolerance 0.05 -> 0.0001"]),
    ('name=newton_sqrt, tolerance=0.05, metric="abs"', 'name=newton_sqrt, tolerance=0.0001, metric="rel"',
     "newton_sqrt", ["tolerance 0.05 -> 0.0001", "metric abs -> rel"]),
    ('name=newton_sqrt, tolerance=0.05, metric="abs",', "name=newton_sqrt,", "newton_sqrt",
     ["tolerance 0.05 -> 0.01", "metric abs -> rel"]),  # removed: regionx's defaults
    ('require="v >= 0.25"', 'require="v >= 0.5"', "newton_sqrt", ["require 'v >= 0.25' -> 'v >= 0.5'"]),
    ("v=uniform(0.0, 4.0)", "v=uniform(0.0, 8.0)", "newton_sqrt", ["domain of 'v' uniform(0.0, 4.0) -> uniform(0.0, 8.0)"]),
    ("a=uniform(0.0, 2.0)", "a=uniform(0.0, 4.0)", "overlap", ["domain of 'a' uniform(0.0, 2.0) -> uniform(0.0, 4.0)"]),
    ("b=uniform(0.0, 3.0)", "b=loguniform(0.1, 3.0)", "overlap", ["domain of 'b' uniform(0.0, 3.0) -> loguniform(0.1, 3.0)"]),
]


@pytest.mark.parametrize("old,new,region_id,said", PRAGMA_CHANGES, ids=[c[1] for c in PRAGMA_CHANGES])
def test_changed_pragma_is_stale_saying_what_changed(repo: Path, old: str, new: str, region_id: str,
                                                     said: list[str]) -> None:
    edit(repo / SOURCE, old, new)
    code, doc = run_json()
    assert code == 1
    row = next(r for r in doc["regions"] if r["id"] == region_id)
    [stale] = row["findings"]
    assert stale["code"] == "RX602" and stale["line"] == line_of(repo / SOURCE, f"def {region_id}")
    message = stale["message"]
    assert message.startswith(f"stale: region '{region_id}' changed since its surrogate was trained: ")
    assert all(phrase in message for phrase in said), message
    assert "its code changed" not in message and message.endswith(f"retrain with 'regionx compile {SOURCE}'")
    assert row["accuracy"] is None and row["note"] == "accuracy not measured: stale"
    # the tolerance shown is the one the surrogate was validated with, not the pragma's new one
    assert row["tolerance"] == 0.05 and row["metric"] == "abs"
    other = next(r for r in doc["regions"] if r["id"] != region_id)
    assert other["status"] == "ok"


def test_same_domain_written_differently_is_not_stale(repo: Path) -> None:
    edit(repo / SOURCE, "v=uniform(0.0, 4.0)", "v=uniform(0, 4)")
    code, doc = run_json()
    assert all(r["status"] == "ok" for r in doc["regions"]), findings(doc)
    assert codes(doc) == {"RX604"}  # only the patched program, which carries the pragma's text


@pytest.mark.parametrize("tolerance,metric,ok", [(0.1, "abs", True), (0.0001, "abs", False), (0.0001, "rel", False)])
def test_check_uses_the_manifests_settings(repo: Path, tolerance: float, metric: str, ok: bool) -> None:
    # as if compiled with `regionx compile --tolerance T --metric M`: the pragma is unchanged (not
    # stale) and the surrogate is judged by what it was validated with, not by the pragma's 0.05 abs
    path = repo / ".regionx" / "newton_sqrt" / "manifest.json"
    data = json.loads(path.read_text())
    assert data["pragma"] == {"tolerance": 0.05, "metric": "abs"}
    data.update(tolerance=tolerance, metric=metric)
    path.write_text(json.dumps(data))
    code, doc = run_json()
    row = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")
    assert (row["tolerance"], row["metric"], row["target"]) == (tolerance, metric, 0.99)
    if ok:
        assert code == 0 and row["status"] == "ok", findings(doc)
    else:
        [lost] = row["findings"]
        assert lost["code"] == "RX603" and f"within tolerance {tolerance:g} ({metric})" in lost["message"]
        assert row["accuracy"] < row["target"]
        assert f"{row['accuracy']:.1%}" in lost["message"] and "target 99.0%" in lost["message"]


# A module constant, global or helper a region depends on is part of what it was trained on.
DEPENDENCY_CHANGES = [
    ("ITERATIONS = 100", "ITERATIONS = 1", "newton_sqrt", "module constant ITERATIONS changed"),
    ("STEPS = 200", "STEPS = 150", "overlap", "module constant STEPS changed"),
    ("import math\n", "import cmath as math\n", "overlap", "import of math changed"),
]


@pytest.mark.parametrize("old,new,region_id,said", DEPENDENCY_CHANGES, ids=[c[1] for c in DEPENDENCY_CHANGES])
def test_changed_dependency_is_stale(repo: Path, old: str, new: str, region_id: str, said: str) -> None:
    edit(repo / SOURCE, old, new)
    code, doc = run_json()
    assert code == 1
    rows = {r["id"]: r for r in doc["regions"]}
    [stale] = rows[region_id]["findings"]
    assert stale["code"] == "RX602" and stale["line"] == line_of(repo / SOURCE, f"def {region_id}")
    assert f"changed since its surrogate was trained: {said}; retrain" in stale["message"], stale["message"]
    [other] = [r for r in rows.values() if r["id"] != region_id]
    assert other["status"] == "ok"  # it does not read what changed
    assert "RX604" in codes(doc)  # the patched program copies the module, so it is out of date too


def test_region_calling_a_new_helper_says_both(repo: Path) -> None:
    edit(repo / SOURCE, "# regionx: name=newton_sqrt", "def half(x):\n    return 0.5 * x\n\n\n# regionx: name=newton_sqrt")
    edit(repo / SOURCE, "x = 0.5 * (x + v / x)", "x = half(x + v / x)")
    code, doc = run_json()
    [stale] = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")["findings"]
    assert stale["code"] == "RX602"
    assert "its code changed; new dependency: helper function half" in stale["message"], stale["message"]


def test_comments_and_blank_lines_around_dependencies_are_not_stale(repo: Path) -> None:
    edit(repo / SOURCE, "# Midpoint-rule points of `overlap`.", "# Midpoint-rule points of `overlap` (edited).\n")
    edit(repo / SOURCE, "ITERATIONS = 100", "ITERATIONS = 100  # plenty")
    code, doc = run_json()
    assert all(r["status"] == "ok" for r in doc["regions"]), findings(doc)


def test_crlf_checkout_is_not_stale(repo: Path) -> None:
    # git's autocrlf checks the files out with CRLF: same regions, same hashes, same patched program
    for path in (repo / SOURCE, repo / ".regionx" / "physics.py"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    code, doc = run_json()
    assert code == 0, findings(doc)
    assert [r["status"] for r in doc["regions"]] == ["ok", "ok"]


def test_manifest_without_closure_or_pragma_record_still_checks(repo: Path) -> None:
    # manifests written before closure_sha256/pragma were recorded: read, and judged by what they hold
    for name in ("overlap", "newton_sqrt"):
        path = repo / ".regionx" / name / "manifest.json"
        data = json.loads(path.read_text())
        for key in ("closure_sha256", "closure", "pragma", "require"):
            del data[key]
        path.write_text(json.dumps(data))
        manifest = Manifest.from_json(data)
        assert manifest.closure_sha256 == "" and manifest.closure == () and manifest.pragma_tolerance is None
    code, doc = run_json()
    assert code == 0, findings(doc)
    edit(repo / SOURCE, 'name=newton_sqrt, tolerance=0.05,', 'name=newton_sqrt, tolerance=0.02,')
    code, doc = run_json()
    [stale] = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")["findings"]
    assert stale["code"] == "RX602" and "tolerance 0.05 -> 0.02" in stale["message"]


def test_scaled_weights_lose_accuracy(repo: Path) -> None:
    weights = repo / ".regionx" / "overlap" / "weights.npz"
    with np.load(weights) as data:
        arrays = {k: data[k] for k in data.files}
    last = max(int(k[1:]) for k in arrays if k[:1] == "W" and k[1:].isdigit())
    arrays[f"W{last}"] = arrays[f"W{last}"] * 1.5
    np.savez(weights, **arrays)
    code, doc = run_json()
    assert code == 1
    row = next(r for r in doc["regions"] if r["id"] == "overlap")
    assert [f["code"] for f in row["findings"]] == ["RX603"]
    assert next(r for r in doc["regions"] if r["id"] == "newton_sqrt")["status"] == "ok"


def test_configured_target_overrides_manifest(repo: Path) -> None:
    # an unreachable target in pyproject.toml fails both regions, even at their own tolerance
    edit(repo / "pyproject.toml", "samples = 400", "samples = 400\ntarget = 1.01")
    code, doc = run_json()
    assert code == 1
    assert [r["target"] for r in doc["regions"]] == [1.01, 1.01]
    assert codes(doc) == {"RX603"}


@pytest.mark.parametrize("victim,expected", [
    ("weights.npz", "weights.npz not found"),
    ("manifest.json", "manifest.json not found"),
    ("surrogate_newton_sqrt.py", "surrogate_newton_sqrt.py not found"),
])
def test_missing_artifact_is_named(repo: Path, victim: str, expected: str) -> None:
    (repo / ".regionx" / "newton_sqrt" / victim).unlink()
    code, doc = run_json()
    assert code == 1
    row = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")
    [missing] = row["findings"]
    assert missing["code"] == "RX601" and expected in missing["message"]
    assert missing["line"] == line_of(repo / SOURCE, "def newton_sqrt")


def test_artifacts_option_overrides_config(repo: Path) -> None:
    (repo / "elsewhere").mkdir()
    code, doc = run_json("--artifacts", "elsewhere")
    assert code == 1
    assert doc["artifacts"] == "elsewhere"
    assert [f["code"] for f in findings(doc)] == ["RX601", "RX601"]


def test_corrupt_manifest_is_reported_not_raised(repo: Path) -> None:
    (repo / ".regionx" / "overlap" / "manifest.json").write_text("{not json")
    code, doc = run_json()
    assert code == 1
    [bad] = next(r for r in doc["regions"] if r["id"] == "overlap")["findings"]
    assert bad["code"] == "RX601" and "unreadable" in bad["message"]


def test_patched_program_out_of_date(repo: Path) -> None:
    patched = repo / ".regionx" / "physics.py"
    lines = patched.read_text().splitlines(keepends=True)
    lines.insert(3, "# a hand edit\n")
    patched.write_text("".join(lines))
    code, doc = run_json()
    assert code == 1
    [out_of_date] = doc["diagnostics"]
    assert out_of_date["code"] == "RX604" and out_of_date["path"] == ".regionx/physics.py"
    assert out_of_date["line"] == 4
    patched.unlink()
    code, doc = run_json()
    assert code == 1 and "does not exist" in doc["diagnostics"][0]["message"]


def test_hidden_venv_and_artifact_dirs_are_not_searched(repo: Path) -> None:
    annotated = (repo / SOURCE).read_text()
    for folder in (".venv/lib", ".hidden", ".regionx/copy"):
        (repo / folder).mkdir(parents=True, exist_ok=True)
        (repo / folder / "copy_of_physics.py").write_text(annotated.replace("0.05", "0.0001"))
    code, doc = run_json(".")
    assert code == 0, findings(doc)
    assert {r["path"] for r in doc["regions"]} == {SOURCE}


def test_same_region_name_in_another_file_is_not_taken_for_its_artifacts(repo: Path) -> None:
    shutil.copy(repo / SOURCE, repo / "src" / "other.py")
    code, doc = run_json()
    assert code == 1
    other = [r for r in doc["regions"] if r["path"] == "src/other.py"]
    assert len(other) == 2 and all(r["status"] == "failed" for r in other)
    assert all("of src/physics.py" in f["message"] and f["code"] == "RX601" for r in other for f in r["findings"])
    assert all(r["status"] == "ok" for r in doc["regions"] if r["path"] == SOURCE)


def test_annotated_region_that_cannot_be_replaced_is_skipped(repo: Path) -> None:
    (repo / "src" / "noisy.py").write_text(
        "# regionx: name=noisy, tolerance=0.1, x=uniform(0, 1)\n"
        "def noisy(x):\n"
        "    print(x)\n"
        "    return x * x\n")
    code, doc = run_json()
    assert code == 0, findings(doc)
    [row] = [r for r in doc["regions"] if r["id"] == "noisy"]
    assert row["status"] == "skipped" and "not replaceable" in row["note"] and row["findings"] == []


def test_check_does_not_import_tensorflow(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import sys; from regionx.check import check_paths; "
            "r = check_paths([], artifacts=None, samples=50, cwd=sys.argv[1]); "
            "assert r.exit_status == 0, [d.format() for d in r.findings]; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_pre_commit_hook_definition() -> None:
    import yaml

    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "regionx-check" and hook["entry"] == "regionx check"
    assert hook["language"] == "python" and hook["pass_filenames"] is False and hook["types"] == ["python"]


# --------------------------------------------------------------------------- usage / input errors (exit 2)


def test_missing_path_is_exit_2(repo: Path) -> None:
    code, doc = run_json("no/such/dir")
    assert code == 2 and codes(doc) == {"RX001"}


def test_bad_config_is_exit_2(repo: Path) -> None:
    edit(repo / "pyproject.toml", "samples = 400", 'samples = "many"')
    code, doc = run_json()
    assert code == 2 and codes(doc) == {"RX006"}


def test_syntax_error_is_exit_2(repo: Path) -> None:
    edit(repo / SOURCE, "def main(n=2000):", "def main(n=2000:")
    code, doc = run_json()
    assert code == 2 and "RX004" in codes(doc)


def test_bad_samples_option_is_exit_2(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "--samples", "0", "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 2 and codes(json.loads(result.stdout)) == {"RX006"}


# --------------------------------------------------------------------------- output formats


def _failing_tree(repo: Path) -> None:
    """Three kinds of findings at once: stale (RX602), missing (RX601), out-of-date patched (RX604)."""
    edit(repo / SOURCE, "h = 1.0 / STEPS", "h = 1.0 / (STEPS + 0)")
    (repo / ".regionx" / "newton_sqrt" / "weights.npz").unlink()


def test_github_format_lines(repo: Path) -> None:
    _failing_tree(repo)
    code, out = run("--format", "github")
    assert code == 1
    lines = out.splitlines()
    pattern = re.compile(r"^::error file=([^,:]+),line=(\d+),col=(\d+),title=(RX6\d\d)::(.+)$")
    errors = [pattern.match(line) for line in lines if line.startswith("::error")]
    assert errors and all(errors), lines
    assert {m.group(4) for m in errors if m} == {"RX601", "RX602", "RX604"}
    stale = next(m for m in errors if m and m.group(4) == "RX602")
    assert stale.group(1) == SOURCE and int(stale.group(2)) == line_of(repo / SOURCE, "def overlap")
    assert all(line.startswith("::") for line in lines)


def test_sarif_format(repo: Path) -> None:
    _failing_tree(repo)
    code, out = run("--format", "sarif")
    assert code == 1
    log = json.loads(out)
    assert log["version"] == "2.1.0" and "sarif" in log["$schema"]
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "regionx"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert {"RX601", "RX602", "RX603", "RX604"} <= set(rule_ids)
    results = log["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"RX601", "RX602", "RX604"}
    for r in results:
        assert r["level"] == "error" and r["message"]["text"]
        assert rule_ids[r["ruleIndex"]] == r["ruleId"]
        location = r["locations"][0]["physicalLocation"]
        assert not os.path.isabs(location["artifactLocation"]["uri"])
        assert location["region"]["startLine"] >= 1 and location["region"]["startColumn"] >= 1
    stale = next(r for r in results if r["ruleId"] == "RX602")
    assert stale["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == SOURCE


def test_json_format_document(repo: Path) -> None:
    _failing_tree(repo)
    code, doc = run_json()
    assert code == 1 and doc["exit_status"] == 1
    assert {r["id"]: r["status"] for r in doc["regions"]} == {"overlap": "failed", "newton_sqrt": "failed"}
    for f in findings(doc):
        assert set(f) == {"code", "path", "line", "col", "message", "severity"}


# --------------------------------------------------------------------------- renderers (no repository needed)


def _report() -> CheckReport:
    diag = make("RX603", "src/a,b:c.py", 7, 1, region="r", detail="50.0% within\n100% wanted")
    row = RegionCheck(path="src/a,b:c.py", line=7, col=1, region_id="r", region_name="r", status="failed",
                      findings=(diag,), accuracy=0.5, target=0.99, tolerance=0.1, metric="abs", samples=10)
    ok = RegionCheck(path="src/d.py", line=3, col=1, region_id="s", region_name="s", status="ok",
                     accuracy=1.0, target=0.99, tolerance=0.1, metric="rel", samples=10, outside=2)
    return CheckReport(regions=(row, ok), artifacts=".regionx", samples=12)


def test_github_escapes_properties_and_data() -> None:
    out = render(_report(), "github").splitlines()
    assert out[0] == ("::error file=src/a%2Cb%3Ac.py,line=7,col=1,title=RX603::"
                      "accuracy lost for region 'r': 50.0%25 within%0A100%25 wanted")
    assert out[-1].startswith("::notice title=regionx check::")


def test_text_render_table_and_findings() -> None:
    out = render(_report(), "text")
    assert "src/a,b:c.py:7" in out and "50.0% / 99.0%" in out and "10 / 2" in out
    assert "src/a,b:c.py:7:1: RX603 accuracy lost for region 'r'" in out
    assert out.rstrip().endswith("2 annotated regions, 1 ok, 1 failed; 1 finding")


def test_clean_report_renders_empty_results() -> None:
    report = CheckReport(artifacts=".regionx", samples=5)
    assert report.exit_status == 0
    assert json.loads(render(report, "sarif"))["runs"][0]["results"] == []
    assert json.loads(render(report, "json"))["regions"] == []
    with pytest.raises(ValueError):
        render(report, "xml")


def test_check_paths_library_call_with_cwd(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("__pycache__"))
    report = check_paths([], artifacts=None, samples=200, cwd=str(target))
    assert report.exit_status == 0, [d.format() for d in report.findings]
    assert [r.status for r in report.regions] == ["ok", "ok"]
