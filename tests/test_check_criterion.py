"""`regionx check` judges with the criterion recorded in the manifest (regionx.criterion), reports
the lower confidence bound, and calls a changed rtol=/atol= stale (issue 12, item 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from regionx.cli import cli

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "ci_repo"
SOURCE = "src/physics.py"


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(target)
    return target


def check_json() -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["check", "--samples", "300", "--format", "json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def set_criterion(repo: Path, name: str, criterion: dict, **pragma: float | None) -> None:
    path = repo / ".regionx" / name / "manifest.json"
    data = json.loads(path.read_text())
    data["criterion"] = criterion
    data.setdefault("pragma", {}).update(pragma)
    path.write_text(json.dumps(data))


def test_old_manifests_are_judged_by_tolerance_and_metric_with_the_bound_reported(repo: Path) -> None:
    code, doc = check_json()
    assert code == 0
    for row in doc["regions"]:
        assert row["criterion"] == "|pred - exact| <= 0.05"  # abs 0.05: atol 0.05, rtol 0
        assert 0.98 < row["accuracy_lcb"] < row["accuracy"] <= 1.0


def test_the_recorded_criterion_decides(repo: Path) -> None:
    # an absolute tolerance far tighter than the network's error: accuracy lost (RX603)
    set_criterion(repo, "newton_sqrt", {"rtol": 0.0, "atol": [1e-7], "source": "atol"})
    code, doc = check_json()
    row = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")
    assert code == 1 and [f["code"] for f in row["findings"]] == ["RX603"]
    assert row["criterion"] == "|pred - exact| <= 1e-07" and row["accuracy"] < 0.5
    # a generous relative one: fine again
    set_criterion(repo, "newton_sqrt", {"rtol": 0.05, "atol": [0.01], "source": "atol"})
    code, doc = check_json()
    assert code == 0, doc
    row = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")
    assert row["criterion"] == "|pred - exact| <= 0.01 + 0.05 x |exact|"


def test_a_changed_rtol_or_atol_in_the_pragma_is_stale(repo: Path) -> None:
    source = repo / SOURCE
    text = source.read_text()
    source.write_text(text.replace("name=newton_sqrt, tolerance=0.05, metric=\"abs\",", "name=newton_sqrt, atol=0.05,"))
    code, doc = check_json()
    row = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")
    [stale] = row["findings"]
    assert stale["code"] == "RX602" and "atol - -> 0.05" in stale["message"]
    # trained with that pragma (recorded), it is not stale
    set_criterion(repo, "newton_sqrt", {"rtol": 0.0, "atol": [0.05], "source": "atol"}, atol=0.05)
    code, doc = check_json()
    row = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")
    assert row["status"] == "ok", row["findings"]
