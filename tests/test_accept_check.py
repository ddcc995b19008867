"""`regionx check` with an accept predicate: the program's (effective) accuracy is what is judged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_check import SOURCE, codes, edit, findings, repo, run_json  # noqa: E402,F401 - shared fixture and helpers

PRAGMA = 'name=newton_sqrt, tolerance=0.05, metric="abs"'


def strict(repo: Path) -> None:
    """As if compiled with `--tolerance 0.0001 --metric rel`: check judges by the manifest's settings
    (a pragma edited to them would be stale instead)."""
    path = repo / ".regionx" / "newton_sqrt" / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "tolerance": 0.0001, "metric": "rel"}))


def test_accept_rescues_a_strict_tolerance(repo: Path) -> None:
    # 0.01% is beyond the committed surrogate; accepting only answers whose square is within 1e-4 of v
    # (relative error of the root about 5e-5) leaves the rest to the exact code: the program passes.
    strict(repo)
    edit(repo / SOURCE, PRAGMA, PRAGMA + ', accept="abs(result * result - v) <= 1e-4 * v"')
    code, doc = run_json()
    row = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")
    assert row["status"] == "ok" and row["findings"] == [], findings(doc)
    assert row["accuracy"] == 1.0
    assert "accept: network answers" in row["note"] and "network alone" in row["note"]
    assert codes(doc) <= {"RX604"}  # the patched program carries the pragma text: only it may be out of date


def test_accept_that_accepts_everything_still_fails(repo: Path) -> None:
    strict(repo)
    edit(repo / SOURCE, PRAGMA, PRAGMA + ', accept="result == result"')
    code, doc = run_json()
    row = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")
    assert code == 1 and row["status"] == "failed"
    [lost] = row["findings"]
    assert lost["code"] == "RX603" and "refused by the accept predicate" in lost["message"]
    assert "the network answers 100.0%" in lost["message"]


def test_accept_with_an_unknown_name_is_reported(repo: Path) -> None:
    edit(repo / SOURCE, PRAGMA, PRAGMA + ', accept="abs(result) < LIMIT"')
    code, doc = run_json()
    row = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")
    assert code == 1
    [lost] = row["findings"]
    assert lost["code"] == "RX603" and "cannot evaluate accept" in lost["message"] and "LIMIT" in lost["message"]


@pytest.mark.parametrize("accept", ["v > 1.0", "float(v) > 1.0"])  # vectorised and row-by-row
def test_rejected_share_counts_as_good(repo: Path, accept: str) -> None:
    # rows with v <= 1 are all rejected (exact), so they count as good whatever the network does there
    edit(repo / SOURCE, PRAGMA, PRAGMA + f', accept="{accept}"')
    code, doc = run_json()
    row = next(r for r in doc["regions"] if r["id"] == "newton_sqrt")
    assert row["status"] == "ok" and row["accuracy"] >= row["target"]
    assert "accept:" in row["note"]
