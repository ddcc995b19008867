"""The showcase of issue 14: fixtures/projectile.py, a ~1 ms scipy.integrate.solve_ivp region called
from a map loop, compiled by `regionx compile` with its defaults, against the alternatives a user has.

Usage: .venv/bin/python benchmarks/showcase.py [--quick] [--repeats R] [--out DIR]

Steps, all in one run:

1. ``regionx compile fixtures/projectile.py`` through regionx.api.compile_file with its defaults
   (samples, epochs, topology grid, design; --resample, so the wall time includes sampling), timed.
   Then the same compile again: it reuses the saved samples (timed too).
2. The programs, interleaved, R times each, on the fixture's own workload (``main(n)``, launches
   drawn with seed 2024, never sampled): times are the loop's own (the fixture prints them).

   * original — fixtures/projectile.py as written: one solve_ivp per launch.
   * patched  — the compiled program: the map loop hoisted into one batched surrogate call.
   * numpy RK4 rewrite — there is no numpy version of the code as written (solve_ivp integrates
     one trajectory, adaptively, with an event); the vectorised alternative is another algorithm:
     a fixed-step RK4 over all launches at once, the landing point interpolated between steps.
     Its step is the coarsest of STEPS that keeps >= 99% of a calibration set (other launches)
     within the region's tolerance: matched to the surrogate's target, not more accurate.
   * numba, code as written — Numba cannot compile solve_ivp; what applies is jitting the
     right-hand side and the event function passed to it.
   * numba RK4 rewrite — the same fixed-step RK4 as the numpy rewrite, per launch, compiled
     (compile time reported apart).

   Accuracy: the share of launches within the region's tolerance of the original's ranges.

Writes <out>/showcase.{json,md} (default benchmarks/results/) and the compiled artifacts under
<out>/artifacts/showcase/.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import sys
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import _common as C  # noqa: E402

import numpy as np  # noqa: E402

PROJECTILE = os.path.join(C.ROOT, "fixtures", "projectile.py")
REGION = "flight_range"
SEED = 2024  # the fixture's own workload seed; compile samples with seed 0
STEPS = [0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01]  # RK4 steps tried, coarsest first (seconds)
FULL: dict[str, Any] = {"sizes": [2000, 10000], "repeats": 3, "calibration": 1000, "compile": {}, "second_compile": True}
QUICK: dict[str, Any] = {"quick": True, "sizes": [40], "repeats": 1, "calibration": 40, "second_compile": True,
                         "compile": {"samples": 200, "epochs": 3, "topologies": "8", "target": 0.01}}


# --------------------------------------------------------------------------- the alternatives


def rk4_numpy(speed: np.ndarray, angle: np.ndarray, drag: np.ndarray, dt: float, g: float) -> np.ndarray:
    """Ranges of all launches at once: classic RK4 on (x, y, vx, vy) with step `dt`, every launch
    stepped until it lands (y <= 0), its range interpolated linearly between the last two steps."""
    theta = np.radians(angle)
    x = np.zeros_like(speed)
    y = np.zeros_like(speed)
    vx, vy = speed * np.cos(theta), speed * np.sin(theta)
    k = drag
    out = np.full(speed.shape, np.nan)
    idx = np.arange(speed.size)
    h6 = dt / 6.0

    def accel(vx: np.ndarray, vy: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.sqrt(vx * vx + vy * vy)
        return -k * v * vx, -g - k * v * vy

    while idx.size:
        ax1, ay1 = accel(vx, vy, k)
        ax2, ay2 = accel(vx + 0.5 * dt * ax1, vy + 0.5 * dt * ay1, k)
        ax3, ay3 = accel(vx + 0.5 * dt * ax2, vy + 0.5 * dt * ay2, k)
        ax4, ay4 = accel(vx + dt * ax3, vy + dt * ay3, k)
        nx = x + dt * (vx + h6 * (ax1 + ax2 + ax3))
        ny = y + dt * (vy + h6 * (ay1 + ay2 + ay3))
        nvx = vx + h6 * (ax1 + 2 * ax2 + 2 * ax3 + ax4)
        nvy = vy + h6 * (ay1 + 2 * ay2 + 2 * ay3 + ay4)
        landed = ny <= 0.0
        if landed.any():
            s = y[landed] / (y[landed] - ny[landed])
            out[idx[landed]] = x[landed] + s * (nx[landed] - x[landed])
            keep = ~landed
            idx, x, y, vx, vy, k = idx[keep], nx[keep], ny[keep], nvx[keep], nvy[keep], k[keep]
        else:
            x, y, vx, vy = nx, ny, nvx, nvy
    return out


def rk4_numba() -> Callable[[np.ndarray, np.ndarray, np.ndarray, float, float], np.ndarray] | None:
    """`rk4_numpy`'s integrator, one launch at a time, compiled with Numba (None without Numba)."""
    try:
        from numba import njit
    except ImportError:
        return None

    @njit(cache=False)
    def ranges(speed: np.ndarray, angle: np.ndarray, drag: np.ndarray, dt: float, g: float) -> np.ndarray:  # pragma: no cover - jitted
        out = np.empty(speed.size)
        h6 = dt / 6.0
        for i in range(speed.size):
            theta = math.radians(angle[i])
            k = drag[i]
            x, y = 0.0, 0.0
            vx, vy = speed[i] * math.cos(theta), speed[i] * math.sin(theta)
            while True:
                v = math.sqrt(vx * vx + vy * vy)
                ax1, ay1 = -k * v * vx, -g - k * v * vy
                wx, wy = vx + 0.5 * dt * ax1, vy + 0.5 * dt * ay1
                v = math.sqrt(wx * wx + wy * wy)
                ax2, ay2 = -k * v * wx, -g - k * v * wy
                wx, wy = vx + 0.5 * dt * ax2, vy + 0.5 * dt * ay2
                v = math.sqrt(wx * wx + wy * wy)
                ax3, ay3 = -k * v * wx, -g - k * v * wy
                wx, wy = vx + dt * ax3, vy + dt * ay3
                v = math.sqrt(wx * wx + wy * wy)
                ax4, ay4 = -k * v * wx, -g - k * v * wy
                nx = x + dt * (vx + h6 * (ax1 + ax2 + ax3))
                ny = y + dt * (vy + h6 * (ay1 + ay2 + ay3))
                nvx = vx + h6 * (ax1 + 2 * ax2 + 2 * ax3 + ax4)
                nvy = vy + h6 * (ay1 + 2 * ay2 + 2 * ay3 + ay4)
                if ny <= 0.0:
                    out[i] = x + y / (y - ny) * (nx - x)
                    break
                x, y, vx, vy = nx, ny, nvx, nvy
        return out

    return ranges  # type: ignore[no-any-return]


def jitted_solve_ivp(module: Any) -> Callable[[float, float, float], float] | None:
    """The fixture's region as written, with Numba applied where it can be: the right-hand side and
    the event function (solve_ivp itself is scipy's Python code, which Numba cannot compile)."""
    try:
        from numba import njit
    except ImportError:
        return None
    from scipy.integrate import solve_ivp

    g = module.G

    @njit(cache=False)
    def motion(t: float, state: np.ndarray, drag: float) -> np.ndarray:  # pragma: no cover - jitted
        speed = math.sqrt(state[2] * state[2] + state[3] * state[3])
        return np.array([state[2], state[3], -drag * speed * state[2], -g - drag * speed * state[3]])

    @njit(cache=False)
    def ground_jit(t: float, state: np.ndarray, drag: float) -> float:  # pragma: no cover - jitted
        return state[1]

    def ground(t: float, state: np.ndarray, drag: float) -> float:
        return float(ground_jit(t, state, drag))

    ground.terminal = True  # type: ignore[attr-defined]
    ground.direction = -1  # type: ignore[attr-defined]

    def flight_range(speed: float, angle: float, drag: float) -> float:
        theta = math.radians(angle)
        # An array, not a list: solve_ivp hands y0 to the event as given, and Numba wants arrays.
        start = np.array([0.0, 0.0, speed * math.cos(theta), speed * math.sin(theta)])
        solution = solve_ivp(motion, (0.0, module.T_MAX), start, args=(drag,), events=ground, rtol=module.RTOL,
                             atol=module.ATOL)
        return float(solution.y_events[0][0][0])

    return flight_range


# --------------------------------------------------------------------------- measuring


def _loop_time(output: str) -> float:
    found = re.search(r"^time: ([0-9.eE+-]+) s$", output, re.M)
    if found is None:
        raise SystemExit(f"no loop time in the program's output: {output!r}")
    return float(found.group(1))


def within(pred: np.ndarray, exact: np.ndarray, tolerance: float, metric: str) -> float:
    """Share of results within the region's tolerance of the exact ones (regionx's metric)."""
    from regionx.criterion import Criterion

    return float(np.mean(Criterion.legacy(metric, tolerance).within(pred[:, None], exact[:, None])))


def compile_showcase(out: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """`regionx compile` on the fixture with its defaults (cfg["compile"] overrides only in --quick), timed; then again."""
    from regionx import api

    runs = []
    for resample in ([True, False] if cfg["second_compile"] else [True]):
        start = time.perf_counter()
        results = api.compile_file(PROJECTILE, out_dir=out, resample=resample, **cfg["compile"])
        elapsed = time.perf_counter() - start
        [result] = results
        if not result.ok:
            raise SystemExit(f"compile failed: {[d.message for d in result.diagnostics]} {result.to_json().get('verdict')}")
        doc = result.to_json()
        chosen = doc.get("chosen") or {}
        runs.append({"seconds": elapsed, "samples_reused": doc.get("samples_reused"),
                     "samples": doc.get("samples"), "design": doc.get("design"),
                     "topology": chosen.get("label"), "validation_accuracy": chosen.get("accuracy"),
                     "verdict": doc.get("verdict"), "patched": result.artifacts.get("patched")})
        print(f"compile (resample={resample}): {elapsed:.1f} s, {runs[-1]}", flush=True)
    return {"runs": runs, "patched": runs[0]["patched"], "cpus": os.cpu_count()}


def calibrate_step(module: Any, n: int, tolerance: float, metric: str) -> dict[str, Any]:
    """The coarsest RK4 step of STEPS keeping >= 99% of `n` calibration launches within tolerance."""
    speed, angle, drag = (np.array(v) for v in module.make_launches(n, 7))
    exact = np.array([module.flight_range(*a) for a in zip(speed, angle, drag)])
    tried = {}
    for dt in STEPS:
        tried[dt] = within(rk4_numpy(speed, angle, drag, dt, module.G), exact, tolerance, metric)
        if tried[dt] >= 0.99:
            return {"dt": dt, "calibration_within": tried}
    return {"dt": STEPS[-1], "calibration_within": tried}


def programs(patched: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Time and score every program on workloads of cfg["sizes"] launches."""
    original = C.import_file(PROJECTILE)
    text, region = C.load_region(PROJECTILE, REGION)
    assert region.pragma is not None
    tolerance = region.pragma.tolerance or 0.01
    metric = region.pragma.metric or "rel"
    step = calibrate_step(original, cfg["calibration"], tolerance, metric)
    dt = step["dt"]
    jit = rk4_numba()
    compile_s = None
    if jit is not None:
        start = time.perf_counter()
        jit(np.array([30.0]), np.array([45.0]), np.array([0.01]), dt, original.G)
        compile_s = time.perf_counter() - start
    as_written = jitted_solve_ivp(original)
    if as_written is not None:
        start = time.perf_counter()
        as_written(30.0, 45.0, 0.01)
        jit_rhs_compile_s = time.perf_counter() - start
    sizes = {}
    for n in cfg["sizes"]:
        fixed = C.import_file(patched)
        speed, angle, drag = (np.array(v) for v in original.make_launches(n, SEED))
        results: dict[str, np.ndarray] = {}
        times: dict[str, list[float]] = {}

        def run_main(module: Any) -> tuple[float, np.ndarray]:
            ranges, output = C.quiet(module.main, n, SEED)
            return _loop_time(output), np.array(ranges)

        def timed(fn: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
            start = time.perf_counter()
            value = fn()
            return time.perf_counter() - start, np.asarray(value)

        contenders: dict[str, Callable[[], tuple[float, np.ndarray]]] = {
            "original (solve_ivp per launch)": lambda: run_main(original),
            "patched by regionx (hoisted surrogate)": lambda: run_main(fixed),
            f"numpy RK4 rewrite (dt={dt} s)": lambda: timed(lambda: rk4_numpy(speed, angle, drag, dt, original.G)),
        }
        if jit is not None:
            contenders[f"numba RK4 rewrite (dt={dt} s)"] = lambda: timed(lambda: jit(speed, angle, drag, dt, original.G))
        if as_written is not None:
            contenders["numba on the code as written (jitted RHS and event)"] = lambda: timed(
                lambda: np.array([as_written(*a) for a in zip(speed.tolist(), angle.tolist(), drag.tolist())]))
        for _ in range(cfg["repeats"]):
            for name, run in contenders.items():
                seconds, values = run()
                times.setdefault(name, []).append(seconds)
                results[name] = values
        exact = results["original (solve_ivp per launch)"]
        base = statistics.median(times["original (solve_ivp per launch)"])
        sizes[str(n)] = {name: {"median_s": statistics.median(ts), "runs_s": ts,
                                "speedup": base / statistics.median(ts),
                                "within_tolerance": within(results[name], exact, tolerance, metric)}
                         for name, ts in times.items()}
        print(f"n={n}: " + "; ".join(f"{k}: {v['median_s']:.4f} s, {v['speedup']:.1f}x, {v['within_tolerance']:.2%}"
                                      for k, v in sizes[str(n)].items()), flush=True)
    return {"tolerance": tolerance, "metric": metric, "rk4": step, "numba_compile_s": compile_s,
            "numba_rhs_compile_s": jit_rhs_compile_s if as_written is not None else None, "sizes": sizes}


def render(report: dict[str, Any]) -> str:
    comp, prog = report["compile"], report["programs"]
    first = comp["runs"][0]
    lines = ["# Showcase: a solve_ivp region compiled with regionx's defaults (issue 14)", "",
             f"`fixtures/projectile.py` `{REGION}`: range of a projectile with quadratic drag (solve_ivp to a ground "
             f"event), called from a map loop. Machine: {report['machine'].get('cpus')} CPUs, shared; load average at start "
             f"{' '.join(report['machine'].get('loadavg_at_start') or ['?'])}. Command: `{report['command']}`.", "",
             "## Compile", "",
             C.md_table(["run", "wall time", "samples", "design", "topology", "validation accuracy", "verdict"],
                        [[("first (--resample)" if i == 0 else "second (samples reused)" if r["samples_reused"] else "second"),
                          f"{r['seconds']:.0f} s", r["samples"], r["design"], r["topology"],
                          "-" if r["validation_accuracy"] is None else f"{r['validation_accuracy']:.1%}", r["verdict"]]
                         for i, r in enumerate(comp["runs"])]),
             f"`regionx compile` with its defaults took {first['seconds'] / 60:.1f} min on {comp['cpus']} cores.", "",
             "## Programs", "",
             f"Loop time (median of {report['config']['repeats']} interleaved runs) on the fixture's workload (seed {SEED}); "
             f"accuracy against the original's ranges, tolerance {prog['tolerance']} ({prog['metric']}). The RK4 rewrites use "
             f"the coarsest step keeping >= 99% of a calibration set within tolerance: dt = {prog['rk4']['dt']} s "
             f"(tried: {', '.join(f'{k}: {v:.1%}' for k, v in prog['rk4']['calibration_within'].items())}). Numba compile "
             f"time, excluded: RK4 {prog['numba_compile_s'] or 0:.2f} s, jitted RHS {prog['numba_rhs_compile_s'] or 0:.2f} s.", ""]
    for n, table in prog["sizes"].items():
        lines += [f"### {n} launches", "",
                  C.md_table(["program", "loop time", "speedup vs original", "within tolerance"],
                             [[name, _fmt(r["median_s"]), f"{r['speedup']:.1f}x", f"{r['within_tolerance']:.2%}"]
                              for name, r in table.items()])]
    lines += ["## Reading", "", *notes(report)]
    return "\n".join(lines) + "\n"


def notes(report: dict[str, Any]) -> list[str]:
    """The conclusions the numbers support, worded from the numbers themselves."""
    comp, prog = report["compile"], report["programs"]
    out = []
    for n, table in prog["sizes"].items():
        patched = next(r for k, r in table.items() if k.startswith("patched"))
        met = patched["speedup"] >= 100 and patched["within_tolerance"] >= 0.99
        rivals = {k.split(" (")[0]: r for k, r in table.items() if "rewrite" in k}
        rival_text = "; ".join(f"{k} {r['speedup']:.0f}x ({r['median_s'] / patched['median_s']:.2f}x the patched loop's time) "
                               f"at {r['within_tolerance']:.2%}" for k, r in rivals.items())
        out.append(f"- {n} launches: the patched loop is {patched['speedup']:.0f}x faster than the original, "
                   f"{patched['within_tolerance']:.2%} within tolerance (target >= 100x at >= 99%: "
                   f"{'met' if met else 'not met'}). Rewrites at matched accuracy: {rival_text}.")
    out += ["- Numba does not apply to the code as written: solve_ivp is scipy's Python code. Jitting what "
            "can be jitted (the right-hand side and the event) leaves it where it was (table row).",
            "- There is no numpy version of the code as written either. The vectorised alternative is "
            "another algorithm (fixed-step RK4 over all launches, the landing interpolated), which the user "
            "derives, tunes (its step) and validates. It is what the 'rewrite' rows measure, and it is about "
            "as fast as the surrogate here. regionx gets there from the unchanged scipy code and a pragma."]
    if len(comp["runs"]) > 1 and comp["runs"][1]["samples_reused"]:
        out.append(f"- The second compile reused the {comp['runs'][1]['samples']} saved samples instead of "
                   "sampling again. Its wall time is the topology search's, budgeted in the nominal seconds of "
                   "a cost model (so the choice repeats under the seed; the clock only stops a search at 1.5x "
                   "the budget).")
    return out


def _fmt(seconds: float) -> str:
    """A time with a unit: 1.23 s, 4.56 ms, 7.89 us, 12 ns."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny configuration (smoke test)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default=C.RESULTS)
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.repeats:
        cfg["repeats"] = args.repeats
    report: dict[str, Any] = {"machine": C.machine(), "config": cfg,
                              "command": "benchmarks/showcase.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    report["compile"] = compile_showcase(os.path.join(args.out, "artifacts", "showcase"), cfg)
    report["programs"] = programs(report["compile"]["patched"], cfg)
    C.write_json(os.path.join(args.out, "showcase.json"), report)
    C.write_text(os.path.join(args.out, "showcase.md"), render(report))
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
