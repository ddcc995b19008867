"""Newton-Raphson on the depressed cubic x^3 + p*x + q = 0.

Usage: python benchmarks/kernels/cubic.py [N] [SEED]

`cubic_root(p, q)` is the annotated region. For p >= 0 the cubic is increasing, so it has one
real root, a smooth function of (p, q). Newton starts outside Cauchy's bound on the side where
f is convex (concave) towards the root, so the iterates approach it monotonically. `main` solves
N random cubics in a plain map loop.
"""

import math
import random
import sys
import time

EPS = 1e-12
MAX_ITER = 100


# regionx: name=cubic_root, tolerance=0.01, metric="rel",
# regionx: p=uniform(0.0, 4.0), q=uniform(-4.0, 4.0)
def cubic_root(p, q):
    x = -math.copysign(1.0 + max(p, abs(q)), q)
    for _ in range(MAX_ITER):
        fx = x * x * x + p * x + q
        dfx = 3.0 * x * x + p
        if dfx == 0.0:
            return x
        x_new = x - fx / dfx
        if abs(x_new - x) < EPS:
            return x_new
        x = x_new
    return x


def make_cubics(n, seed):
    """N random (p, q) from the pragma's domain."""
    rng = random.Random(seed)
    ps = [rng.uniform(0.0, 4.0) for _ in range(n)]
    qs = [rng.uniform(-4.0, 4.0) for _ in range(n)]
    return ps, qs


def main(n=20000, seed=2024):
    """Solve `n` random cubics; print a checksum, the largest residual and the time; return the roots."""
    ps, qs = make_cubics(n, seed)
    roots = [0.0] * n
    start = time.perf_counter()
    for i in range(n):
        roots[i] = cubic_root(ps[i], qs[i])
    elapsed = time.perf_counter() - start
    residual = max(abs(x ** 3 + p * x + q) for x, p, q in zip(roots, ps, qs))
    print(f"cubics: {n}")
    print(f"checksum: {sum(roots):.6f}")
    print(f"max residual: {residual:.3e}")
    print(f"solve time: {elapsed:.6f} s")
    return roots


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000, int(sys.argv[2]) if len(sys.argv) > 2 else 2024)
