"""Heat transfer coefficient of water in a pipe: laminar and turbulent regimes split by a curve.

Usage: python benchmarks/kernels/pipeflow.py [N] [SEED]

`heat_transfer(v, d)` is the annotated region (issue 15's region with a jump). The Reynolds number
Re = v*d/NU splits the (velocity, diameter) plane along the hyperbola v*d = 2300*NU: below it the
flow is laminar and the Nusselt number is Hausen's for a developing thermal boundary layer in a
pipe of length L (3.66, the fully developed value, plus an entrance term in the Graetz number
Re*Pr*d/L); above it Gnielinski's correlation applies, with the Darcy friction factor of a smooth pipe
from Colebrook's equation solved by fixed-point iteration (from Petukhov's explicit estimate),
which gives about 15 at the transition. Each regime is smooth; across the curve the answer jumps by a
factor of two to four. `main` evaluates N random pipes in a plain map loop.
"""

import math
import random
import sys
import time

NU = 1.0e-6  # kinematic viscosity of water at 20 C, m^2/s
K = 0.6  # thermal conductivity, W/(m K)
PR = 7.0  # Prandtl number
RE_CRITICAL = 2300.0
L = 1.0  # pipe length, m
MAX_ITER = 50


# regionx: name=heat_transfer, tolerance=0.01, metric="rel",
# regionx: v=loguniform(0.02, 2.0), d=loguniform(0.002, 0.05)
def heat_transfer(v, d):
    re = v * d / NU
    if re < RE_CRITICAL:
        graetz = re * PR * d / L
        nusselt = 3.66 + 0.0668 * graetz / (1.0 + 0.04 * graetz ** (2.0 / 3.0))
    else:
        f = (0.79 * math.log(re) - 1.64) ** -2
        for _ in range(MAX_ITER):  # Colebrook: 1/sqrt(f) = -2 log10(2.51 / (Re sqrt(f)))
            g = -2.0 * math.log10(2.51 / (re * math.sqrt(f)))
            f_new = 1.0 / (g * g)
            if abs(f_new - f) < 1e-6 * f:
                f = f_new
                break
            f = f_new
        nusselt = (f / 8.0) * (re - 1000.0) * PR / (1.0 + 12.7 * math.sqrt(f / 8.0) * (PR ** (2.0 / 3.0) - 1.0))
    return nusselt * K / d


def make_pipes(n, seed):
    """N random (v, d) from the pragma's domain (log-uniform)."""
    rng = random.Random(seed)
    vs = [math.exp(rng.uniform(math.log(0.02), math.log(2.0))) for _ in range(n)]
    ds = [math.exp(rng.uniform(math.log(0.002), math.log(0.05))) for _ in range(n)]
    return vs, ds


def main(n=20000, seed=2024):
    """Evaluate `n` random pipes; print a checksum and the time; return the coefficients."""
    vs, ds = make_pipes(n, seed)
    h = [0.0] * n
    start = time.perf_counter()
    for i in range(n):
        h[i] = heat_transfer(vs[i], ds[i])
    elapsed = time.perf_counter() - start
    print(f"pipes: {n}")
    print(f"checksum: {sum(h):.6f}")
    print(f"solve time: {elapsed:.6f} s")
    return h


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000, int(sys.argv[2]) if len(sys.argv) > 2 else 2024)
