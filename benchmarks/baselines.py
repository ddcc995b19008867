"""What a user would otherwise reach for: the exact code vectorised with numpy, or compiled with Numba.

Each baseline computes exactly what the fixture's region computes (same algorithm, same initial
guess, same stopping rule), so its results can be compared to the exact pure-Python ones.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

EPS = 1e-10
MAX_ITER = 100


def newton_numpy(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """fixtures/newton.py's `newton`, vectorised over all equations (masked iterations)."""
    x = 1.0 + (np.abs(b) + np.abs(c)) / a
    active = np.ones(a.shape, dtype=bool)
    for _ in range(MAX_ITER):
        if not active.any():
            break
        xa, aa, ba, ca = x[active], a[active], b[active], c[active]
        fx = aa * xa * xa + ba * xa + ca
        dfx = 2.0 * aa * xa + ba
        flat = dfx == 0.0
        safe = np.where(flat, 1.0, dfx)
        x_new = np.where(flat, xa + EPS, xa - fx / safe)
        done = ~flat & (np.abs(x_new - xa) < EPS)
        x[active] = x_new
        idx = np.flatnonzero(active)
        active[idx[done]] = False
    return x


def newton_numba() -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None:
    """The exact scalar loop compiled with Numba (None when Numba is not installed)."""
    try:
        from numba import njit
    except ImportError:
        return None

    @njit(cache=False)
    def solve(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:  # pragma: no cover - jitted
        out = np.empty(a.shape[0])
        for i in range(a.shape[0]):
            ai, bi, ci = a[i], b[i], c[i]
            x = 1.0 + (abs(bi) + abs(ci)) / ai
            result = x
            for _ in range(MAX_ITER):
                fx = ai * x * x + bi * x + ci
                dfx = 2.0 * ai * x + bi
                if dfx == 0.0:
                    x = x + EPS
                    result = x
                    continue
                x_new = x - fx / dfx
                if abs(x_new - x) < EPS:
                    result = x_new
                    break
                x = x_new
                result = x
            out[i] = result
        return out

    return solve


def lj_forces_numpy(x: np.ndarray, i_idx: np.ndarray, j_idx: np.ndarray, box: float, cutsq: float) -> np.ndarray:
    """fixtures/lj_md.py's compute_forces over a half neighbour list, vectorised: (n, 3) forces."""
    delta, _rsq, fpair = _lj_pair_terms(x, i_idx, j_idx, box, cutsq)
    pair = delta * fpair[:, None]
    forces = np.zeros_like(x)
    np.add.at(forces, i_idx, pair)
    np.add.at(forces, j_idx, -pair)
    return forces


# --------------------------------------------------------------------------- the whole LJ MD run

def _load_lj_fixture():  # type: ignore[no-untyped-def]
    """fixtures/lj_md.py as a module (its lattice, velocities and constants are reused verbatim)."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "lj_md.py")
    spec = importlib.util.spec_from_file_location("_baseline_lj_md", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lj_neighbors_numpy(pos: np.ndarray, box: float, cutneighsq: float) -> tuple[np.ndarray, np.ndarray]:
    """Half neighbour list (i < j) within the neighbour cut-off, all pairs at once (minimum image).

    Same pairs, in the same i-major, j-ascending order, as fixtures/lj_md.py's binned build_neighbors.
    """
    n = pos.shape[0]
    i_idx, j_idx = np.triu_indices(n, k=1)
    delta = pos[i_idx] - pos[j_idx]
    delta -= box * np.round(delta / box)
    keep = np.einsum("ij,ij->i", delta, delta) < cutneighsq
    return i_idx[keep], j_idx[keep]


def _lj_pair_terms(pos: np.ndarray, i_idx: np.ndarray, j_idx: np.ndarray, box: float,
                   cutsq: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    delta = pos[i_idx] - pos[j_idx]
    delta -= box * np.round(delta / box)
    rsq = np.einsum("ij,ij->i", delta, delta)
    inside = rsq < cutsq
    r2inv = np.where(inside, 1.0 / rsq, 0.0)
    r6inv = r2inv ** 3
    fpair = r6inv * (48.0 * r6inv - 24.0) * r2inv
    return delta, rsq, fpair


def lj_forces_energy_numpy(pos: np.ndarray, i_idx: np.ndarray, j_idx: np.ndarray, box: float,
                           cutsq: float) -> tuple[np.ndarray, float, float]:
    """Forces (n, 3), total pair energy and virial, as fixtures/lj_md.py's compute_forces (eflag on)."""
    delta, rsq, fpair = _lj_pair_terms(pos, i_idx, j_idx, box, cutsq)
    pair = delta * fpair[:, None]
    n = pos.shape[0]
    forces = np.empty_like(pos)
    for k in range(3):  # bincount is much faster than np.add.at
        forces[:, k] = np.bincount(i_idx, pair[:, k], minlength=n) - np.bincount(j_idx, pair[:, k], minlength=n)
    inside = rsq < cutsq
    r6inv = np.where(inside, 1.0 / np.where(inside, rsq, 1.0) ** 3, 0.0)
    epair = float(np.sum(r6inv * (4.0 * r6inv - 4.0)))
    virial = float(np.sum(np.where(inside, rsq * fpair, 0.0)))
    return forces, epair, virial


def lj_forces_numba() -> Callable[..., tuple[np.ndarray, float, float]] | None:
    """compute_forces's double loop (over a CSR-free half list i_idx/j_idx) compiled with Numba."""
    try:
        from numba import njit
    except ImportError:
        return None

    @njit(cache=False)
    def forces(pos: np.ndarray, i_idx: np.ndarray, j_idx: np.ndarray, box: float,
               cutsq: float) -> tuple[np.ndarray, float, float]:  # pragma: no cover - jitted
        n = pos.shape[0]
        half = 0.5 * box
        f = np.zeros((n, 3))
        epair = 0.0
        virial = 0.0
        for k in range(i_idx.shape[0]):
            i = i_idx[k]
            j = j_idx[k]
            d = np.empty(3)
            for c in range(3):
                v = pos[i, c] - pos[j, c]
                if v > half:
                    v -= box
                elif v < -half:
                    v += box
                d[c] = v
            rsq = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
            if rsq < cutsq:
                r2inv = 1.0 / rsq
                r6inv = r2inv * r2inv * r2inv
                fpair = r6inv * (48.0 * r6inv - 24.0) * r2inv
                for c in range(3):
                    f[i, c] += d[c] * fpair
                    f[j, c] -= d[c] * fpair
                epair += r6inv * (4.0 * r6inv - 4.0)
                virial += rsq * fpair
        return f, epair, virial

    return forces


def lj_run_vectorised(steps: int = 100, cells: int = 5, seed: int = 87287, thermo_every: int = 20,
                      forces_fn: Callable[..., tuple[np.ndarray, float, float]] | None = None) -> list[tuple[float, ...]]:
    """fixtures/lj_md.py's run() with positions/velocities as (n, 3) arrays: the same lattice,
    velocities, neighbour-list schedule, velocity Verlet and thermo rows; forces from `forces_fn`
    (default: lj_forces_energy_numpy; pass lj_forces_numba() for the Numba version).
    Returns the thermo rows (step, temp, E_pair/n, TotEng/n, press)."""
    lj = _load_lj_fixture()
    forces_fn = forces_fn or lj_forces_energy_numpy
    x, y, z, box = lj.fcc_lattice(cells)
    n = len(x)
    volume = box ** 3
    vx, vy, vz = lj.create_velocities(n, lj.T_INIT, seed)
    pos = np.array([x, y, z]).T.copy()
    vel = np.array([vx, vy, vz]).T.copy()
    cutneighsq = (lj.CUTOFF + lj.SKIN) ** 2
    i_idx, j_idx = lj_neighbors_numpy(pos, box, cutneighsq)
    dof = 3 * n - 3

    def thermo(step: int, epair: float, virial: float) -> tuple[float, ...]:
        ke = 0.5 * lj.MASS * float(np.sum(vel * vel))
        temp = 2.0 * ke / dof
        press = (dof * temp + virial) / (3.0 * volume)
        return (step, temp, epair / n, (epair + ke) / n, press)

    f, epair, virial = forces_fn(pos, i_idx, j_idx, box, lj.CUTSQ)
    rows = [thermo(0, epair, virial)]
    dtf = 0.5 * lj.DT / lj.MASS
    for step in range(1, steps + 1):
        vel += dtf * f
        pos += lj.DT * vel
        if step % lj.NEIGH_EVERY == 0:
            pos %= box
            i_idx, j_idx = lj_neighbors_numpy(pos, box, cutneighsq)
        f, epair, virial = forces_fn(pos, i_idx, j_idx, box, lj.CUTSQ)
        vel += dtf * f
        if step % thermo_every == 0 or step == steps:
            rows.append(thermo(step, epair, virial))
    return rows
