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
    delta = x[i_idx] - x[j_idx]
    delta -= box * np.round(delta / box)
    rsq = np.einsum("ij,ij->i", delta, delta)
    inside = rsq < cutsq
    r2inv = np.where(inside, 1.0 / rsq, 0.0)
    r6inv = r2inv ** 3
    fpair = r6inv * (48.0 * r6inv - 24.0) * r2inv
    pair = delta * fpair[:, None]
    forces = np.zeros_like(x)
    np.add.at(forces, i_idx, pair)
    np.add.at(forces, j_idx, -pair)
    return forces
