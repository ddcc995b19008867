"""The example programs run as scripts and compute what they claim (Newton roots, LJ dynamics)."""

from __future__ import annotations

import importlib.util
import io
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_fixture_{name}", FIXTURES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "a, b, c",
    [
        (1.0, -3.0, 2.0),  # roots 1, 2
        (0.5, 0.0, -2.0),  # roots -2, 2
        (2.0, 4.0, 2.0),  # double root -1 (f' = 0 at the root)
        (1.0, 10.0, 0.0),  # roots -10, 0
        (1.7, -9.5, -9.9),
        (0.5, 10.0, 10.0),
    ],
)
def test_newton_converges_to_larger_root(a: float, b: float, c: float) -> None:
    newton = _load("newton")
    root = newton.newton(a, b, c)
    disc = b * b - 4 * a * c
    larger = (-b + math.sqrt(disc)) / (2 * a)
    assert root == pytest.approx(larger, abs=1e-6)


def test_newton_root_is_continuous_over_domain() -> None:
    """Random equations from the pragma's domain: always the larger root (a smooth target)."""
    newton = _load("newton")
    a, b, c = newton.make_equations(3000, seed=11)
    for ai, bi, ci in zip(a, b, c):
        assert bi * bi - 4 * ai * ci >= 0
        root = newton.newton(ai, bi, ci)
        assert ai * root * root + bi * root + ci == pytest.approx(0.0, abs=1e-8)
        assert root == pytest.approx((-bi + math.sqrt(bi * bi - 4 * ai * ci)) / (2 * ai), abs=1e-5)


def test_newton_script_runs() -> None:
    proc = subprocess.run([sys.executable, str(FIXTURES / "newton.py"), "500"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "equations: 500" in proc.stdout
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert float(lines["max residual"]) < 1e-8
    assert math.isfinite(float(lines["checksum"]))


def test_lj_pair_force_matches_lammps_formula() -> None:
    lj = _load("lj_md")
    for r in (0.9, 1.0, 2 ** (1 / 6), 1.5, 2.4):
        rsq = r * r
        # F(r)/r = (48 r^-13 - 24 r^-7) / r
        assert lj.pair_force(rsq) == pytest.approx((48 * r**-13 - 24 * r**-7) / r, rel=1e-12)
    assert lj.pair_force(2 ** (1 / 3)) == pytest.approx(0.0, abs=1e-12)  # minimum of the potential
    assert lj.pair_force(6.25) == 0.0 and lj.pair_force(7.0) == 0.0
    assert lj.pair_energy(1.0) == 0.0 and lj.pair_energy(2 ** (1 / 3)) == pytest.approx(-1.0)


def test_lj_md_short_run_conserves_energy() -> None:
    lj = _load("lj_md")
    out = io.StringIO()
    rows = lj.run(steps=30, cells=4, seed=5, thermo_every=10, out=out)
    assert [r[0] for r in rows] == [0, 10, 20, 30]
    step0 = rows[0]
    # Perfect fcc lattice at rho = 0.8442 with rc = 2.5: LAMMPS's in.lj prints E_pair -6.7733681.
    assert step0[1] == pytest.approx(1.44)
    assert step0[2] == pytest.approx(-6.7733681, abs=1e-6)
    totals = [r[3] for r in rows]
    assert max(totals) - min(totals) < 0.02  # NVE: total energy per atom drifts little
    assert rows[-1][1] < 1.2  # the lattice melts: kinetic energy flows into potential energy
    assert "Step" in out.getvalue()


def test_lj_md_script_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(FIXTURES / "lj_md.py"), "--steps", "10", "--cells", "4", "--thermo", "5"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Step" in proc.stdout and "Loop time" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [0, 5, 10]
    assert all(math.isfinite(float(v)) for r in rows for v in r)


def test_lj_md_rejects_too_small_box() -> None:
    proc = subprocess.run([sys.executable, str(FIXTURES / "lj_md.py"), "--steps", "1", "--cells", "3"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode != 0 and "cells" in proc.stderr
