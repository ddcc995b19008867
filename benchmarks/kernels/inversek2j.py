"""Two-joint planar arm inverse kinematics (AxBench's inversek2j kernel), returning a tuple.

Usage: python benchmarks/kernels/inversek2j.py [N] [SEED]

`inversek2j(x, y)` is the annotated region: the joint angles (theta1, theta2) that put the tip of
an arm with links L1 and L2 at (x, y), elbow-down branch. `main` draws N reachable targets in
the upper half plane and solves them in a plain map loop.
"""

import math
import random
import sys
import time

L1 = 0.5
L2 = 0.5


# Targets stay away from the origin (theta1 undefined) and from full reach (acos' slope blows up).
# regionx: name=inversek2j, tolerance=0.02, metric="abs",
# regionx: x=uniform(-1.0, 1.0), y=uniform(0.0, 1.0),
# regionx: require="0.0625 <= x*x + y*y <= 0.9"
def inversek2j(x, y):
    c2 = (x * x + y * y - L1 * L1 - L2 * L2) / (2.0 * L1 * L2)
    theta2 = math.acos(c2)
    theta1 = math.atan2(y, x) - math.atan2(L2 * math.sin(theta2), L1 + L2 * math.cos(theta2))
    return theta1, theta2


def make_targets(n, seed):
    """N reachable targets from the pragma's domain (rejection sampling)."""
    rng = random.Random(seed)
    xs, ys = [], []
    while len(xs) < n:
        x = rng.uniform(-1.0, 1.0)
        y = rng.uniform(0.0, 1.0)
        if 0.0625 <= x * x + y * y <= 0.9:
            xs.append(x)
            ys.append(y)
    return xs, ys


def main(n=20000, seed=2024):
    """Solve `n` random targets; print a checksum and the time; return the angle pairs."""
    xs, ys = make_targets(n, seed)
    t1 = [0.0] * n
    t2 = [0.0] * n
    start = time.perf_counter()
    for i in range(n):
        t1[i], t2[i] = inversek2j(xs[i], ys[i])
    elapsed = time.perf_counter() - start
    print(f"targets: {n}")
    print(f"checksum: {sum(t1) + sum(t2):.6f}")
    print(f"solve time: {elapsed:.6f} s")
    return t1, t2


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000, int(sys.argv[2]) if len(sys.argv) > 2 else 2024)
