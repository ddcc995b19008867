"""European call prices by Black-Scholes with the polynomial CNDF (AxBench's blackscholes kernel).

Usage: python benchmarks/kernels/blackscholes.py [N] [SEED]

`call_price(s, k, r, v, t)` is the annotated region: the price of a European call option with
spot `s`, strike `k`, risk-free rate `r`, volatility `v` and time to expiry `t` (years), with the
cumulative normal distribution approximated by Abramowitz & Stegun's 26.2.17 polynomial (as
PARSEC/AxBench's CNDF). `main` prices N random options in a plain map loop.
"""

import math
import random
import sys
import time

INV_SQRT_2PI = 0.39894228040143270286


def cndf(x):
    """Standard normal CDF, Abramowitz & Stegun 26.2.17 (absolute error < 7.5e-8)."""
    sign = x < 0.0
    x = abs(x)
    k = 1.0 / (1.0 + 0.2316419 * x)
    poly = k * (0.319381530 + k * (-0.356563782 + k * (1.781477937 + k * (-1.821255978 + k * 1.330274429))))
    value = 1.0 - INV_SQRT_2PI * math.exp(-0.5 * x * x) * poly
    return 1.0 - value if sign else value


# Prices lie in [0, ~50]; 0.5 is about 1% of the range, the AxBench-style quality bar.
# regionx: name=call_price, tolerance=0.5, metric="abs",
# regionx: s=uniform(20.0, 60.0), k=uniform(20.0, 60.0), r=uniform(0.01, 0.1),
# regionx: v=uniform(0.05, 0.65), t=uniform(0.1, 2.0)
def call_price(s, k, r, v, t):
    sqrt_t = math.sqrt(t)
    d1 = (math.log(s / k) + (r + 0.5 * v * v) * t) / (v * sqrt_t)
    d2 = d1 - v * sqrt_t
    return s * cndf(d1) - k * math.exp(-r * t) * cndf(d2)


def make_options(n, seed):
    """N random options from the pragma's domain."""
    rng = random.Random(seed)
    cols = ([], [], [], [], [])
    bounds = ((20.0, 60.0), (20.0, 60.0), (0.01, 0.1), (0.05, 0.65), (0.1, 2.0))
    for _ in range(n):
        for col, (lo, hi) in zip(cols, bounds):
            col.append(rng.uniform(lo, hi))
    return cols


def main(n=20000, seed=2024):
    """Price `n` random options; print a checksum and the time; return the prices."""
    s, k, r, v, t = make_options(n, seed)
    prices = [0.0] * n
    start = time.perf_counter()
    for i in range(n):
        prices[i] = call_price(s[i], k[i], r[i], v[i], t[i])
    elapsed = time.perf_counter() - start
    print(f"options: {n}")
    print(f"checksum: {sum(prices):.6f}")
    print(f"price time: {elapsed:.6f} s")
    return prices


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000, int(sys.argv[2]) if len(sys.argv) > 2 else 2024)
