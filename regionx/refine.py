"""Second-order refinement of small dense networks after Adam (issue 12, item 1).

Adam leaves small networks far from the least-squares optimum. Measured on the depressed cubic's
root (benchmarks/kernels/cubic.py, 2x8x5x1 tanh, 20k samples): Adam, 150 epochs, puts 85.8% of
test roots within 1%; 30 s of Levenberg-Marquardt from those weights 94.4%, and 98.6% when the
residuals are weighted by the error the tolerance allows (regionx.train.residual_weights). This
module refines a trained dense chain (the layers of `regionx.compile.keras_layers`: (W, b,
activation), W of shape (fan_in, fan_out)) on the full training split, in the normalised units
the network was trained in:

* ``lm``: Levenberg-Marquardt with the analytic Jacobian of the network (`jacobian`), solving the
  damped normal equations with BLAS (J^T J by one matrix product, then Cholesky) — the method of
  MATLAB's trainlm. scipy.optimize.least_squares(method="lm") (MINPACK, `minpack_lm`) minimises
  the same objective with the same Jacobian but factors J by a column-pivoted QR per iteration:
  on the cubic (75 weights, 14k rows) it managed 1,198 evaluations in 60 s where
  `levenberg_marquardt` ran 1,000 iterations in 10 s to the same loss, so it is kept for
  comparison only (benchmarks/optimizers.py).
* ``lbfgs``: scipy.optimize.minimize(method="L-BFGS-B") with the analytic gradient
  (`loss_and_grad`): one forward and backward pass per step, so it scales to any size.

Every attempt is judged on the validation split (share within tolerance, then loss), and the
result is never worse than its start: when no attempt beats it, the starting (Adam) weights come
back unchanged. scipy and threadpoolctl are imported only inside functions: ``import
regionx.refine`` needs numpy only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

Layer = tuple[np.ndarray, np.ndarray, str]

REFINE_METHODS = ("auto", "lm", "lbfgs", "none")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
# LM and L-BFGS stop when the validation loss has not fallen by VAL_MIN_GAIN (relative) over
# VAL_PATIENCE accepted steps: past that point they mostly fit the training set's noise, and the
# time is better spent on another start or candidate.
VAL_PATIENCE = 100
VAL_MIN_GAIN = 1e-3
# "auto": LM up to this many weights, L-BFGS above (measured: benchmarks/results/optimizers.md).
LM_MAX_PARAMS = 400
# Random restarts beside the Adam start, for LM on networks up to RESTART_MAX_PARAMS weights (each
# start gets an equal share of the budget). Measured (optimizers.md, lm vs lm-1): inversek2j 2x8x2
# 81% vs 21% of test points within tolerance, 2x16x2 98% vs 79%, newton 3x8x5x1 77% vs 67%.
RESTARTS = 2
RESTART_MAX_PARAMS = 120
# Cost model that turns a refinement's nominal seconds into a deterministic iteration budget:
# LM iteration ~ m * P * (P + 20) multiply-adds at LM_RATE per second (J^T J by BLAS), L-BFGS
# evaluation ~ 3 * m * P at GRAD_RATE (m residuals, P weights; one core, single-threaded BLAS,
# measured on this project's 2-core machine: 6-27e9 and ~1e9), plus a fixed cost per iteration
# (Python, scipy's wrapper, small Cholesky: ~0.3 ms and ~0.12 ms measured). Real time may differ
# by 2x either way; DEADLINE_FACTOR x the nominal time is a hard wall-clock cap.
LM_RATE = 1.5e10
GRAD_RATE = 1.0e9
LM_OVERHEAD = 3e-4
GRAD_OVERHEAD = 1.2e-4
MIN_ITERATIONS = 10
DEADLINE_FACTOR = 4.0


class _Deadline(Exception):
    """Raised inside an objective when the attempt's time is up (the best point seen is kept)."""


# --------------------------------------------------------------------------- parameter vector


@dataclass(frozen=True)
class NetSpec:
    """Shape of a dense chain: layer sizes (inputs, hidden..., outputs) and each layer's activation."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]

    @property
    def n_params(self) -> int:
        """Number of weights and biases."""
        return sum((a + 1) * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def d_out(self) -> int:
        return self.sizes[-1]

    @classmethod
    def of(cls, layers: Sequence[Layer]) -> "NetSpec":
        """The spec of `layers` (raises ValueError on shapes that do not chain or an unknown activation)."""
        sizes = [int(np.shape(layers[0][0])[0])]
        for W, b, act in layers:
            if np.shape(W) != (sizes[-1], np.shape(b)[0]) or act not in ACTIVATIONS:
                raise ValueError(f"layer {len(sizes)}: W {np.shape(W)}, b {np.shape(b)}, activation {act!r} do not chain")
            sizes.append(int(np.shape(b)[0]))
        return cls(tuple(sizes), tuple(act for _W, _b, act in layers))


def n_params(hidden: Sequence[int], d_in: int, d_out: int) -> int:
    """Number of weights and biases of a d_in x hidden... x d_out dense chain."""
    sizes = [d_in, *hidden, d_out]
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def pack(layers: Sequence[Layer]) -> np.ndarray:
    """Flatten layers into one float64 vector: per layer W row-major (fan_in x fan_out), then b."""
    return np.concatenate([np.concatenate([np.asarray(W, np.float64).ravel(), np.asarray(b, np.float64).ravel()])
                           for W, b, _act in layers])


def unpack(theta: np.ndarray, spec: NetSpec) -> list[Layer]:
    """The inverse of `pack` (arrays are copies, so callers may keep them)."""
    layers: list[Layer] = []
    pos = 0
    for a, b, act in zip(spec.sizes[:-1], spec.sizes[1:], spec.activations):
        W = theta[pos:pos + a * b].reshape(a, b).copy()
        pos += a * b
        layers.append((W, theta[pos:pos + b].copy(), act))
        pos += b
    return layers


def init_params(spec: NetSpec, rng: np.random.Generator) -> np.ndarray:
    """Random weights as Keras initialises Dense layers (Glorot uniform, zero biases)."""
    parts: list[np.ndarray] = []
    for a, b in zip(spec.sizes[:-1], spec.sizes[1:]):
        limit = math.sqrt(6.0 / (a + b))
        parts += [rng.uniform(-limit, limit, size=a * b), np.zeros(b)]
    return np.concatenate(parts)


# --------------------------------------------------------------------------- forward, Jacobian, gradient


def _act(z: np.ndarray, act: str) -> np.ndarray:
    if act == "tanh":
        return np.tanh(z, out=z)
    if act == "relu":
        return np.maximum(z, 0.0, out=z)
    if act == "sigmoid":
        with np.errstate(over="ignore"):  # exp overflow -> 1/(1+inf) = 0, the right limit
            return np.divide(1.0, 1.0 + np.exp(-z), out=z)
    return z


def _act_grad(h: np.ndarray, act: str) -> np.ndarray:
    """d act / dz expressed through the layer's output h = act(z) (no need to keep z)."""
    if act == "tanh":
        return 1.0 - h * h
    if act == "relu":
        return (h > 0.0).astype(h.dtype)
    if act == "sigmoid":
        return h * (1.0 - h)
    return np.ones_like(h)


def _views(theta: np.ndarray, spec: NetSpec) -> list[tuple[np.ndarray, np.ndarray, str, int, int]]:
    """(W, b, activation, offset of W, offset of b) per layer, as views into theta."""
    out = []
    pos = 0
    for a, b, act in zip(spec.sizes[:-1], spec.sizes[1:], spec.activations):
        W = theta[pos:pos + a * b].reshape(a, b)
        out.append((W, theta[pos + a * b:pos + a * b + b], act, pos, pos + a * b))
        pos += a * b + b
    return out


def activations(theta: np.ndarray, spec: NetSpec, X: np.ndarray) -> list[np.ndarray]:
    """Every layer's output for rows X: [X, h1, ..., output] (float64)."""
    hs = [np.asarray(X, dtype=np.float64)]
    for W, b, act, _pw, _pb in _views(theta, spec):
        hs.append(_act(hs[-1] @ W + b, act))
    return hs


def predict(theta: np.ndarray, spec: NetSpec, X: np.ndarray) -> np.ndarray:
    """Network output for rows X (n x d_out)."""
    return activations(theta, spec, X)[-1]


def mse(theta: np.ndarray, spec: NetSpec, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None = None) -> float:
    """Mean squared (weighted) error over every output of every row (Keras' "mse" loss when w is None)."""
    with np.errstate(over="ignore", invalid="ignore"):
        err = predict(theta, spec, X) - Y
        value = float(np.mean((err if w is None else w * err) ** 2))
    return value if math.isfinite(value) else math.inf


def residuals(theta: np.ndarray, spec: NetSpec, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Residual vector w * (prediction - target), row-major: entry s*d_out + k is row s, output k."""
    err = predict(theta, spec, X) - Y
    return (err if w is None else w * err).ravel()


def jacobian(theta: np.ndarray, spec: NetSpec, X: np.ndarray, hs: list[np.ndarray] | None = None,
             w: np.ndarray | None = None) -> np.ndarray:
    """d residuals / d theta, shape (n*d_out, n_params), by backpropagating each output.

    `hs` (from `activations`) saves the forward pass when the caller already has it; `w` (n x d_out)
    are the residual weights of `residuals`.
    """
    hs = activations(theta, spec, X) if hs is None else hs
    n, d_out = hs[0].shape[0], spec.d_out
    J = np.empty((n, d_out, spec.n_params))
    # delta[s, k, j]: d output_k / d z_j of the current layer, for row s.
    out_grad = _act_grad(hs[-1], spec.activations[-1]) if w is None else w * _act_grad(hs[-1], spec.activations[-1])
    delta = np.eye(d_out) * out_grad[:, :, None]
    views = _views(theta, spec)
    for layer in range(len(views) - 1, -1, -1):
        W, _b, _act_name, pw, pb = views[layer]
        h_prev = hs[layer]
        a, b = W.shape
        # d out / d W[i, j] = h_prev[i] * delta[j]; d out / d b[j] = delta[j]
        J[:, :, pw:pb] = (h_prev[:, None, :, None] * delta[:, :, None, :]).reshape(n, d_out, a * b)
        J[:, :, pb:pb + b] = delta
        if layer:
            delta = (delta @ W.T) * _act_grad(h_prev, views[layer - 1][2])[:, None, :]
    return J.reshape(n * d_out, spec.n_params)


def loss_and_grad(theta: np.ndarray, spec: NetSpec, X: np.ndarray, Y: np.ndarray,
                  w: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """(mse, its gradient) by one forward and one backward pass (no Jacobian is formed)."""
    hs = activations(theta, spec, X)
    err = hs[-1] - Y if w is None else w * (hs[-1] - Y)
    scale = 2.0 / err.size
    with np.errstate(over="ignore", invalid="ignore"):
        loss = float(np.mean(err * err))
    grad = np.empty_like(theta)
    delta = scale * err * _act_grad(hs[-1], spec.activations[-1]) * (1.0 if w is None else w)
    views = _views(theta, spec)
    for layer in range(len(views) - 1, -1, -1):
        W, _b, _act_name, pw, pb = views[layer]
        grad[pw:pb] = (hs[layer].T @ delta).ravel()
        grad[pb:pb + W.shape[1]] = delta.sum(axis=0)
        if layer:
            delta = (delta @ W.T) * _act_grad(hs[layer], views[layer - 1][2])
    return (loss if math.isfinite(loss) else math.inf), grad


# --------------------------------------------------------------------------- optimizers


@dataclass
class _Best:
    """The lowest-loss point an optimizer has evaluated (so a deadline never loses progress)."""

    theta: np.ndarray
    loss: float
    nfev: int = 0

    def see(self, theta: np.ndarray, loss: float) -> None:
        self.nfev += 1
        if loss < self.loss:
            self.theta, self.loss = theta.copy(), loss


def _gram(theta: np.ndarray, spec: NetSpec, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None,
          chunk_entries: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(J^T J, J^T r, mse) over all rows, forming J in row chunks of at most `chunk_entries` entries."""
    P = spec.n_params
    rows = max(1, chunk_entries // max(1, P * spec.d_out))
    JtJ = np.zeros((P, P))
    Jtr = np.zeros(P)
    sse = 0.0
    for start in range(0, X.shape[0], rows):
        part = slice(start, start + rows)
        wp = None if w is None else w[part]
        hs = activations(theta, spec, X[part])
        r = (hs[-1] - Y[part] if wp is None else wp * (hs[-1] - Y[part])).ravel()
        J = jacobian(theta, spec, X[part], hs, wp)
        JtJ += J.T @ J
        Jtr += J.T @ r
        sse += float(r @ r)
    return JtJ, Jtr, sse / Y.size


def levenberg_marquardt(theta0: np.ndarray, spec: NetSpec, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None = None, *,
                        deadline: float, max_iter: int = 100000, chunk_entries: int = 1 << 21, tol: float = 1e-10,
                        val: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
                        val_patience: int = VAL_PATIENCE) -> tuple[np.ndarray, dict[str, Any]]:
    """Levenberg-Marquardt on the damped normal equations (J^T J + mu diag) d = -J^T r.

    Marquardt's diagonal scaling (floored, so dead ReLU units do not make it singular) and
    Nielsen's damping update; J^T J is accumulated over row chunks of at most `chunk_entries`
    Jacobian entries, so memory stays bounded. Stops at `max_iter` iterations, at `deadline`
    (time.perf_counter()), when the relative decrease of the loss over an accepted step falls
    below `tol` ten times, or — with `val` = (X, Y, w) of the validation split — when the
    validation loss has not fallen by VAL_MIN_GAIN over `val_patience` accepted steps; then the
    point with the lowest validation loss is returned. Returns (parameters, info).
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    theta = np.array(theta0, dtype=np.float64)
    JtJ, Jtr, loss = _gram(theta, spec, X, Y, w, chunk_entries)
    mu, nu = 1e-3, 2.0
    it = stalls = nfev = 0
    status = "max_iter"
    tracker = _ValTracker(theta, val, spec, val_patience)
    while it < max_iter:
        if time.perf_counter() > deadline:
            status = "deadline"
            break
        it += 1
        diag = np.diag(JtJ).copy()
        diag = np.maximum(diag, 1e-9 * max(float(diag.max()), 1e-30))
        A = JtJ + mu * np.diag(diag)
        try:
            step = -cho_solve(cho_factor(A, check_finite=False), Jtr, check_finite=False)
        except (LinAlgError, ValueError):
            mu, nu = mu * nu, nu * 2.0
            continue
        trial = theta + step
        new_loss = mse(trial, spec, X, Y, w)
        nfev += 1
        # predicted decrease of the sum of squares / m, from the linear model (positive when d descends)
        predicted = float(step @ (mu * diag * step - Jtr)) / Y.size
        rho = (loss - new_loss) / predicted if predicted > 0 else -1.0
        if rho > 0 and new_loss < loss:
            improvement = (loss - new_loss) / max(loss, 1e-300)
            theta, loss = trial, new_loss
            mu *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
            nu = 2.0
            stalls = stalls + 1 if improvement < tol else 0
            if stalls >= 10:
                status = "converged"
                break
            if tracker.update(theta):
                status = "val_plateau"
                break
            JtJ, Jtr, _loss = _gram(theta, spec, X, Y, w, chunk_entries)
        else:
            mu, nu = mu * nu, nu * 2.0
            if mu > 1e16:
                status = "converged"
                break
    if val is not None:
        theta = tracker.theta
        loss = mse(theta, spec, X, Y, w)
    return theta, {"iterations": it, "nfev": nfev, "status": status, "train_loss": loss}


def cauchy_weights(theta: np.ndarray, spec: NetSpec, X: np.ndarray, Y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """IRLS weights of the Cauchy loss log(1 + r^2) for residuals r = w * (prediction - target):
    w / sqrt(1 + r^2), so that the weighted least-squares step is the robust loss's Gauss-Newton step."""
    r = w * (predict(theta, spec, X) - Y)
    with np.errstate(over="ignore"):
        return np.asarray(w / np.sqrt(1.0 + r * r))


def cauchy_loss(theta: np.ndarray, spec: NetSpec, X: np.ndarray, Y: np.ndarray, w: np.ndarray) -> float:
    """Mean Cauchy loss log(1 + r^2) of r = w * (prediction - target) (r = 1: at the tolerance)."""
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.mean(np.log1p((w * (predict(theta, spec, X) - Y)) ** 2)))
    return value if math.isfinite(value) else math.inf


def robust_lm(theta0: np.ndarray, spec: NetSpec, X: np.ndarray, Y: np.ndarray, w: np.ndarray, *, deadline: float,
              max_iter: int = 100000, chunk_entries: int = 1 << 21) -> tuple[np.ndarray, dict[str, Any]]:
    """Levenberg-Marquardt on the Cauchy loss mean(log(1 + r^2)), r = w * (prediction - target), with
    `w` scaling residuals to units of the error the tolerance allows: rows far outside it (a jump
    the network cannot follow) barely pull, so the network fits the rest instead of ringing
    around them (issue 15: a 16x16 network on a jump, 19% of points within tolerance by least
    squares, 83% by the Cauchy loss). Iteratively reweighted: each step solves the weighted
    least-squares problem of `cauchy_weights` at the current point (Triggs et al.'s first-order
    correction left out), a step is accepted when the Cauchy loss falls."""
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    theta = np.array(theta0, dtype=np.float64)
    loss = cauchy_loss(theta, spec, X, Y, w)
    JtJ, Jtr, _wl = _gram(theta, spec, X, Y, cauchy_weights(theta, spec, X, Y, w), chunk_entries)
    mu, nu = 1e-3, 2.0
    it = stalls = 0
    status = "max_iter"
    while it < max_iter:
        if time.perf_counter() > deadline:
            status = "deadline"
            break
        it += 1
        diag = np.diag(JtJ).copy()
        diag = np.maximum(diag, 1e-9 * max(float(diag.max()), 1e-30))
        try:
            step = -cho_solve(cho_factor(JtJ + mu * np.diag(diag), check_finite=False), Jtr, check_finite=False)
        except (LinAlgError, ValueError):
            mu, nu = mu * nu, nu * 2.0
            continue
        new_loss = cauchy_loss(theta + step, spec, X, Y, w)
        if new_loss < loss:
            stalls = stalls + 1 if (loss - new_loss) < 1e-10 * max(loss, 1e-300) else 0
            theta, loss = theta + step, new_loss
            mu, nu = max(mu / 3.0, 1e-12), 2.0
            if stalls >= 10:
                status = "converged"
                break
            JtJ, Jtr, _wl = _gram(theta, spec, X, Y, cauchy_weights(theta, spec, X, Y, w), chunk_entries)
        else:
            mu, nu = mu * nu, nu * 2.0
            if mu > 1e16:
                status = "converged"
                break
    return theta, {"iterations": it, "status": status, "train_loss": loss}


def minpack_lm(theta0: np.ndarray, spec: NetSpec, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None = None, *,
                   deadline: float,
                   method: str = "lm", max_nfev: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """scipy.optimize.least_squares (MINPACK's "lm" by default) with the analytic Jacobian; the point
    with the lowest training loss evaluated is returned, also when `deadline` cuts it short."""
    from scipy.optimize import least_squares

    best = _Best(np.array(theta0, dtype=np.float64), mse(theta0, spec, X, Y, w))

    def fun(theta: np.ndarray) -> np.ndarray:
        if time.perf_counter() > deadline:
            raise _Deadline
        r = residuals(theta, spec, X, Y, w)
        with np.errstate(over="ignore", invalid="ignore"):
            loss = float(np.mean(r * r))
        best.see(theta, loss if math.isfinite(loss) else math.inf)
        return r

    def jac(theta: np.ndarray) -> np.ndarray:
        if time.perf_counter() > deadline:
            raise _Deadline
        return jacobian(theta, spec, X, w=w)

    status = "converged"
    try:
        # x_scale=1: with "jac" MINPACK stopped on xtol after ~12 evaluations from Adam's weights (LJ, 1x16x1)
        res = least_squares(fun, best.theta, jac=jac, method=method, max_nfev=max_nfev, x_scale=1.0)
        status = "converged" if res.status > 0 else "max_nfev"
    except _Deadline:
        status = "deadline"
    return best.theta, {"nfev": best.nfev, "status": status, "train_loss": best.loss}


def lbfgs(theta0: np.ndarray, spec: NetSpec, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None = None, *,
          deadline: float, max_iter: int = 20000,
          val: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
          val_patience: int = VAL_PATIENCE) -> tuple[np.ndarray, dict[str, Any]]:
    """L-BFGS (scipy.optimize.minimize, "L-BFGS-B" without bounds) on the mse with its analytic gradient,
    for at most `max_iter` iterations and as many loss+gradient evaluations.

    With `val` = (X, Y, w) of the validation split, it stops as `levenberg_marquardt` does when the
    validation loss has not fallen by VAL_MIN_GAIN over `val_patience` iterations, and returns the
    iterate with the lowest validation loss; else the lowest training loss evaluated.
    """
    from scipy.optimize import minimize

    best = _Best(np.array(theta0, dtype=np.float64), mse(theta0, spec, X, Y, w))
    tracker = _ValTracker(best.theta, val, spec, val_patience)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        if time.perf_counter() > deadline:
            raise _Deadline
        loss, grad = loss_and_grad(theta, spec, X, Y, w)
        best.see(theta, loss)
        return loss, grad

    def callback(intermediate_result: Any) -> None:
        if tracker.update(np.asarray(intermediate_result.x)):
            raise StopIteration

    status = "converged"
    try:
        res = minimize(fun, best.theta, jac=True, method="L-BFGS-B", callback=callback if val is not None else None,
                       options={"maxiter": max_iter, "maxfun": max_iter, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20})
        status = "val_plateau" if tracker.stopped else ("converged" if res.status == 0 else "max_iter")
    except _Deadline:
        status = "deadline"
    theta = tracker.theta if val is not None else best.theta
    return theta, {"iterations": tracker.steps, "nfev": best.nfev, "status": status,
                   "train_loss": mse(theta, spec, X, Y, w)}


class _ValTracker:
    """The iterate with the lowest validation loss, and whether it has stopped improving."""

    def __init__(self, theta: np.ndarray, val: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None,
                 spec: NetSpec, patience: int) -> None:
        self.val, self.spec, self.patience = val, spec, patience
        self.theta = np.array(theta, dtype=np.float64)
        self.loss = mse(self.theta, spec, *val) if val is not None else math.inf
        self.since = self.steps = 0
        self.stopped = False

    def update(self, theta: np.ndarray) -> bool:
        """Record an accepted iterate; True when the validation loss has plateaued (stop now)."""
        self.steps += 1
        if self.val is None:
            return False
        v = mse(theta, self.spec, *self.val)
        self.since += 1
        if v < self.loss:
            if v < self.loss * (1.0 - VAL_MIN_GAIN):
                self.since = 0
            self.loss, self.theta = v, np.array(theta, dtype=np.float64)
        self.stopped = self.since >= self.patience
        return self.stopped


# --------------------------------------------------------------------------- the refinement stage


@dataclass
class RefineResult:
    """What `refine` did: the kept layers and, per attempt, the optimizer, start, time and losses.

    `method` is the optimizer whose weights were kept ("adam" when no attempt beat the start);
    losses are the (weighted) mse in normalised units on the training and validation splits,
    validation accuracies the share of validation rows within tolerance (None when not scored).
    """

    layers: list[Layer]
    method: str
    requested: str
    val_before: float
    val_after: float
    train_before: float
    train_after: float
    seconds: float
    attempts: list[dict[str, Any]] = field(default_factory=list)
    val_accuracy_before: float | None = None  # share of validation rows within tolerance, when scored
    val_accuracy_after: float | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready record for report.json (no arrays)."""
        return {"requested": self.requested, "method": self.method, "seconds": self.seconds,
                "val_loss_before": self.val_before, "val_loss_after": self.val_after,
                "val_accuracy_before": self.val_accuracy_before, "val_accuracy_after": self.val_accuracy_after,
                "train_loss_before": self.train_before, "train_loss_after": self.train_after,
                "attempts": self.attempts}


def choose_method(method: str, n_weights: int, n_residuals: int) -> str:
    """The optimizer `method` stands for: "auto" is LM for networks up to LM_MAX_PARAMS weights
    (with at least two residuals per weight), L-BFGS above; "lm" falls back to L-BFGS when there
    are fewer residuals than weights (LM needs an overdetermined system)."""
    if method not in REFINE_METHODS:
        raise ValueError(f"refine must be one of {', '.join(REFINE_METHODS)}, not {method!r}")
    if method == "auto":
        return "lm" if n_weights <= LM_MAX_PARAMS and n_residuals >= 2 * n_weights else "lbfgs"
    if method == "lm" and n_residuals < n_weights:
        return "lbfgs"
    return method


def restarts_for(n_weights: int, method: str) -> int:
    """Random restarts beside the Adam start: RESTARTS for LM on nets up to RESTART_MAX_PARAMS weights."""
    return RESTARTS if method == "lm" and n_weights <= RESTART_MAX_PARAMS else 0


def iteration_budget(method: str, n_weights: int, n_residuals: int, seconds: float) -> int:
    """Iterations (LM) or loss+gradient evaluations (L-BFGS) that `seconds` buy by the cost model
    (LM_RATE, GRAD_RATE): a count, not a clock, so a fixed seed gives the same weights on a busy
    machine. At least MIN_ITERATIONS."""
    if method == "lm":
        cost = LM_OVERHEAD + n_residuals * n_weights * (n_weights + 20) / LM_RATE
    else:
        cost = GRAD_OVERHEAD + 3.0 * n_residuals * n_weights / GRAD_RATE
    return max(MIN_ITERATIONS, int(seconds / max(cost, 1e-12)))


def refine(layers: Sequence[Layer], Xtr: np.ndarray, Ytr: np.ndarray, Xva: np.ndarray, Yva: np.ndarray, *,
           method: str = "auto", seconds: float = 30.0, seed: int = 0, wtr: np.ndarray | None = None,
           wva: np.ndarray | None = None, restarts: int | None = None,
           val_accuracy: Callable[[np.ndarray], float] | None = None) -> RefineResult:
    """Refine trained `layers` on the whole training split; never return a worse validation score.

    `method`: "auto" | "lm" | "lbfgs" | "none" (`choose_method`). `seconds` is the nominal time
    of all attempts together, turned into an iteration budget (`iteration_budget`) so that the
    result is deterministic; a wall-clock cap of DEADLINE_FACTOR x `seconds` only stops runaways
    on an overloaded machine (the attempt's status then says "deadline"). The first attempt starts
    from the given (Adam) weights; for the smallest networks (`restarts_for`, or `restarts` when
    given) further attempts start from fresh random initialisations (seeded by `seed`), each
    getting an equal share of the iterations left. `wtr`/`wva` weight the residuals (n x d_out;
    see `regionx.train.residual_weights`). The validation score of a point is (accuracy, loss):
    `val_accuracy(prediction on Xva)` — the share of validation rows within tolerance, what
    selection counts — higher first, then the (weighted) validation loss lower; without
    `val_accuracy` the loss alone. The best attempt wins if it beats the start; otherwise the
    start comes back unchanged. BLAS runs single-threaded here.
    """
    t0 = time.perf_counter()
    spec = NetSpec.of(layers)
    Xtr, Ytr, Xva, Yva = (np.asarray(a, dtype=np.float64) for a in (Xtr, Ytr, Xva, Yva))
    theta0 = pack(layers)
    train0 = mse(theta0, spec, Xtr, Ytr, wtr)
    val0 = mse(theta0, spec, Xva, Yva, wva)
    kept = [(W.copy(), b.copy(), act) for W, b, act in layers]
    result = RefineResult(kept, "adam", method, val0, val0, train0, train0, 0.0)

    def score(theta: np.ndarray, loss: float) -> tuple[float, float]:
        """Sort key, lower is better: (-validation accuracy, validation loss)."""
        acc = 0.0 if val_accuracy is None else float(val_accuracy(predict(theta, spec, Xva)))
        return (-acc if math.isfinite(loss) else 0.0, loss)

    start_score = score(theta0, val0)
    result.val_accuracy_before = result.val_accuracy_after = None if val_accuracy is None else -start_score[0]
    chosen = choose_method(method, spec.n_params, Ytr.size)
    if chosen == "none" or seconds <= 0:
        return result
    n_restarts = restarts_for(spec.n_params, chosen) if restarts is None else max(0, int(restarts))
    rng = np.random.default_rng(seed)
    starts: list[tuple[str, np.ndarray]] = [("adam", theta0)]
    starts += [(f"random {k + 1}", init_params(spec, rng)) for k in range(n_restarts)]
    budget = iteration_budget(chosen, spec.n_params, Ytr.size, seconds)
    deadline = t0 + DEADLINE_FACTOR * seconds
    best_theta, best_val, best_score = theta0, val0, start_score
    with single_threaded_blas():
        for i, (start_name, start) in enumerate(starts):
            now = time.perf_counter()
            if now >= deadline or budget <= 0:
                break
            # An equal share of what is left, so a start that converges early leaves its share to the next.
            share = max(1, budget // (len(starts) - i))
            if chosen == "lm":
                theta, info = levenberg_marquardt(start, spec, Xtr, Ytr, wtr, deadline=deadline, max_iter=share,
                                                  val=(Xva, Yva, wva))
                budget -= int(info["iterations"])
            else:
                theta, info = lbfgs(start, spec, Xtr, Ytr, wtr, deadline=deadline, max_iter=share, val=(Xva, Yva, wva))
                budget -= int(info["nfev"])
            val = mse(theta, spec, Xva, Yva, wva)
            key = score(theta, val)
            result.attempts.append({"optimizer": chosen, "start": start_name, "seconds": time.perf_counter() - now,
                                    "val_loss": val, "val_accuracy": None if val_accuracy is None else -key[0],
                                    "budget": share, **info})
            if key < best_score:
                best_theta, best_val, best_score = theta, val, key
    result.seconds = time.perf_counter() - t0
    if best_score < start_score:
        result.layers = unpack(best_theta, spec)
        result.method = chosen
        result.val_after = best_val
        result.val_accuracy_after = None if val_accuracy is None else -best_score[0]
        result.train_after = mse(best_theta, spec, Xtr, Ytr, wtr)
    return result


class single_threaded_blas:
    """Context manager: BLAS on one thread (threadpoolctl; a no-op without it).

    Measured on 2 shared cores under load: J^T J for 14k rows x 83 weights took 322 ms with
    OpenBLAS' 2 threads and 19 ms with one; the gradient of 14k rows x 1281 weights 624 ms vs 15 ms.
    The matrices are too small for threads to pay, and spinning threads lose badly to other work.
    """

    def __enter__(self) -> None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with regionx[train]
            self._limits: Any = None
            return
        self._limits = threadpool_limits(limits=1, user_api="blas")

    def __exit__(self, *exc: object) -> None:
        if self._limits is not None:
            self._limits.restore_original_limits()
