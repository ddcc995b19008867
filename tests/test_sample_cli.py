"""The `regionx extract` and `regionx sample` commands, end to end on the Newton fixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from regionx.analysis import analyze_file
from regionx.cli import cli
from regionx.extract import load_harness
from regionx.types import Dataset

ROOT = Path(__file__).resolve().parents[1]
NEWTON = str(ROOT / "fixtures" / "newton.py")
LJ = str(ROOT / "fixtures" / "lj_md.py")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_extract_writes_a_loadable_harness(tmp_path: Path) -> None:
    target = tmp_path / "h.py"
    code, out, _ = run("extract", NEWTON, "--region", "newton", "-o", str(target))
    assert code == 0 and str(target) in out
    module = load_harness(str(target))
    assert module.INPUTS == ("a", "b", "c") and module.region(1.0, -3.0, 2.0) == (2.0,)


def test_extract_unextractable_region_exits_1(tmp_path: Path) -> None:
    # newton's iteration loop returns from inside itself: control flow leaves that region
    [loop] = [r for r in analyze_file(NEWTON).regions if r.id.startswith("newton:for@")]
    code, _, err = run("extract", NEWTON, "--region", loop.id, "-o", str(tmp_path / "h.py"))
    assert code == 1 and "RX301" in err and not (tmp_path / "h.py").exists()


def test_sample_then_info(tmp_path: Path) -> None:
    target = tmp_path / "newton.npz"
    code, out, err = run("sample", NEWTON, "--region", "newton", "-n", "300", "--seed", "3", "-o", str(target),
                         "--executor", "local:2")
    assert code == 0, err
    assert "300 samples kept" in out
    data = Dataset.load(str(target))
    assert data.X.shape == (300, 3) and data.meta.seed == 3 and data.meta.region_id == "newton"
    code, out, _ = run("sample", "--info", str(target))
    assert code == 0 and json.loads(out)["rows"] == 300


def test_sample_domain_override_for_the_lj_pair_force(tmp_path: Path) -> None:
    target = tmp_path / "lj.npz"
    code, _, err = run("sample", LJ, "--region", "lj_pair", "-n", "200", "-o", str(target), "--executor", "local:1",
                       "--domain", "rsq=uniform(1.0, 2.0)")
    assert code == 0, err
    data = Dataset.load(str(target))
    assert data.X.min() >= 1.0 and data.X.max() < 2.0 and data.meta.domain == {"rsq": "uniform(1.0, 2.0)"}
    rsq = data.X[:, 0]
    r6inv = 1.0 / rsq ** 3
    assert np.allclose(data.Y[:, 0], r6inv * (48.0 * r6inv - 24.0) / rsq, rtol=1e-12)


@pytest.mark.parametrize("args, status, code_text", [
    (("--domain", "zz=uniform(0, 1)"), 2, "RX304"),
    (("--domain", "rsq=gauss(0, 1)"), 2, "RX304"),
    (("--executor", "cloud"), 2, "RX006"),
])
def test_sample_usage_errors(tmp_path: Path, args: tuple[str, ...], status: int, code_text: str) -> None:
    code, _, err = run("sample", LJ, "--region", "lj_pair", "-n", "10", "-o", str(tmp_path / "x.npz"), *args)
    assert code == status and code_text in err and "Traceback" not in err
