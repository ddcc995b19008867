"""The paper's Fig. 3 (Newton-Raphson: execution time vs number of equations) and Fig. 5 (LJ:
speedup per topology), with the exact code, the regionx-patched programs and the baselines a
user would otherwise reach for, all in one run.

Usage: .venv/bin/python benchmarks/speedup.py [--quick] [--only newton|lj] [--repeats R] [--out DIR]

Programs compared (interleaved, so machine load hits all alike; each number is the median of R runs):

* exact      — the fixture as written, pure Python (fixtures/newton.py main(), fixtures/lj_md.py run()).
* scalar     — the fixture patched by ``regionx.rewrite.rewrite_source(hoist=False)``: every call
               goes through the guarded dispatcher (in_domain_one + predict_one, exact fallback).
* hoisted    — patched with ``hoist=True``: a map loop over the region becomes one batched predict.
* +accept    — (Newton) the same, with fixtures/newton.py's accept predicate: a surrogate root that
               fails it is recomputed by the exact code (vectorised check in the hoisted loop). The
               plain scalar/hoisted programs run the bare surrogate.
* numpy      — benchmarks/baselines.py: the exact algorithm vectorised with numpy (list -> array
               conversion included for Newton; LJ: the whole MD run on (n, 3) arrays).
* numba      — the exact algorithm compiled with Numba (compile time excluded, reported apart).

Newton times are the program's own solve loop (its time.perf_counter pair, read at full
precision); LJ times are the whole 100-step run. Surrogates come from
``<out>/artifacts/<app>/<topology>/`` (written by benchmarks/paper_tables.py); a missing one is
trained here with the same sampler and trainer. When regionx refuses a rewrite as unprofitable
(RX502) the benchmark says so, and times the forced patch only to show what it would cost.

Writes <out>/fig3_newton.{json,md,png} and <out>/fig5_lj.{json,md,png}.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import sys
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import _common as C  # noqa: E402
from benchmarks import baselines as B  # noqa: E402

import numpy as np  # noqa: E402

FULL = {"sizes": [5120, 6144, 7168, 8192, 9216, 10240], "repeats": 7, "newton_topologies": [(5, 3), (32, 32), (64, 64, 64)],
        # hoisted with the fixture's accept predicate: the paper's topologies and the larger ones
        "newton_accept_topologies": [*C.PAPER_NEWTON, (32, 32), (64, 64, 64)],
        "lj_topologies": C.PAPER_LJ, "lj_extras": C.LJ_EXTRAS, "lj_steps": 100, "lj_cells": 5, "lj_repeats": 3,
        "newton_samples": 102400, "newton_epochs": 60, "lj_samples": 20000, "lj_epochs": 100}
QUICK = {"quick": True, "sizes": [512, 1024], "repeats": 2, "newton_topologies": [(5, 3)], "lj_topologies": [(5,)], "lj_steps": 3,
         "lj_cells": 4, "lj_repeats": 1, "newton_samples": 3000, "newton_epochs": 5, "lj_samples": 1000, "lj_epochs": 5}
SEED = 2024  # fixtures/newton.py's default workload seed: these equations are never in the training set


def topo_dir(out: str, app: str, hidden: tuple[int, ...]) -> str:
    return os.path.join(out, "artifacts", app, "x".join(map(str, hidden)))


def ensure_artifacts(out: str, app: str, hiddens: list[tuple[int, ...]], cfg: dict[str, Any]) -> None:
    """Train (through regionx) the surrogates that benchmarks/paper_tables.py has not left behind."""
    missing = [h for h in hiddens if not os.path.exists(os.path.join(topo_dir(out, app, h), "manifest.json"))]
    if not missing:
        return
    path, name = (C.NEWTON, "newton") if app == "newton" else (C.LJ, "lj_pair")
    ds = C.sample(path, name, cfg[f"{app}_samples"], 0)
    for h in missing:
        print(f"training {app} {h} (not found under {out}/artifacts) ...", flush=True)
        C.train_one(ds, h, "tanh", topo_dir(out, app, h), epochs=cfg[f"{app}_epochs"], seed=0)


class _Clock:
    """Stands in for a program's `time` module: records every perf_counter() reading."""

    def __init__(self) -> None:
        self.readings: list[float] = []

    def perf_counter(self) -> float:
        t = time.perf_counter()
        self.readings.append(t)
        return t

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def solve_time(module: Any, n: int) -> tuple[float, list[float]]:
    """Run a newton program's main(n, SEED) quietly; its own timed loop in seconds, and its roots."""
    clock = _Clock()
    module.time = clock
    roots, _out = C.quiet(module.main, n, SEED)
    return clock.readings[1] - clock.readings[0], roots


# --------------------------------------------------------------------------- Fig. 3


def newton_fallback(art: str, accept: str, n: int) -> dict[str, float]:
    """Share of the workload's n equations the hoisted program answers with the exact code: row 0
    (always), rows outside the trained box, and rows the accept predicate rejects (or non-finite
    predictions), computed exactly as the patched batch path decides it."""
    from regionx.accept import evaluate
    from regionx.compile import load_module

    exact_mod = C.import_file(C.NEWTON)
    a, b, c = exact_mod.make_equations(n, SEED)
    X = np.column_stack([a, b, c])
    manifest = C.load_manifest(art)
    module = load_module(os.path.join(art, manifest.module))
    y = np.asarray(module.predict(X), dtype=float).reshape(-1)
    inside = np.asarray(module.in_domain(X), dtype=bool)
    ok = evaluate(accept, {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "result": y})
    good = inside & ok
    good[0] = False
    return {"fallback": float(np.mean(~good)), "outside": float(np.mean(~inside)), "rejected": float(np.mean(inside & ~ok))}


def ensure_ceiling(art: str) -> None:
    """Train benchmarks/accuracy_ceiling.py's best Newton surrogate (3x64x64x64x1, asinh target,
    its samples and epochs) into `art` when it is missing: the README's headline program uses it,
    and a fresh clone has no artifacts (they are not committed)."""
    if os.path.exists(os.path.join(art, "manifest.json")):
        return
    from benchmarks.accuracy_ceiling import FULL as CEILING
    from regionx.train import train_dataset

    print(f"training newton {CEILING['hidden']} asinh (accuracy_ceiling.py's best; not found under {art}) ...", flush=True)
    ds = C.sample(C.NEWTON, "newton", CEILING["samples"], 0)
    res = train_dataset(ds, art, topologies=[(tuple(CEILING["hidden"]), "tanh")], epochs=CEILING["epochs"], seed=0,
                        target=1e-9, select_by="batch", target_transform="asinh")
    if not res.ok:
        raise SystemExit(f"training the ceiling surrogate failed: {[d.message for d in res.diagnostics]}")


def newton_fig(cfg: dict[str, Any], out: str) -> dict[str, Any]:
    accept_hiddens = list(cfg.get("newton_accept_topologies", []))
    ensure_artifacts(out, "newton", list(dict.fromkeys([*cfg["newton_topologies"], *accept_hiddens])), cfg)
    exact_mod = C.import_file(C.NEWTON)
    programs: dict[str, Callable[[int], tuple[float, Any]]] = {"exact": lambda n: solve_time(exact_mod, n)}
    verdicts: dict[str, Any] = {}
    fallback: dict[str, dict[str, float]] = {}
    accept = C.load_region(C.NEWTON, "newton")[1].pragma.accept  # type: ignore[union-attr]
    label_of = {h: "x".join(map(str, (3, *h, 1))) for h in [*cfg["newton_topologies"], *accept_hiddens]}
    arts = [(topo_dir(out, "newton", h), label_of[h]) for h in cfg["newton_topologies"]]
    ceiling = os.path.join(out, "artifacts", "ceiling", "64x64x64_asinh")  # benchmarks/accuracy_ceiling.py's best
    if not cfg.get("quick"):
        ensure_ceiling(ceiling)
    with_ceiling = not cfg.get("quick") and os.path.exists(os.path.join(ceiling, "manifest.json"))
    if with_ceiling:
        arts.append((ceiling, "3x64x64x64x1 asinh 200ep"))
    # (artifact dir, label, kind, hoist, accept predicate or None = the bare surrogate)
    variants: list[tuple[str, str, str, bool, str | None]] = []
    for art, label in arts:
        variants += [(art, label, "scalar", False, None), (art, label, "hoisted", True, None)]
    if accept and accept_hiddens:  # quick mode has none: its smoke test checks the plain programs only
        accept_arts = [(topo_dir(out, "newton", h), label_of[h]) for h in accept_hiddens]
        if with_ceiling:
            accept_arts.append((ceiling, "3x64x64x64x1 asinh 200ep"))
        variants += [(art, label, "hoisted+accept", True, accept) for art, label in accept_arts]
        # per-call dispatch with accept: only the small network, the one whose scalar path can pay
        variants += [(art, label, "scalar+accept", False, accept) for art, label in arts[:1]]
    for art, label, kind, hoist, acc in variants:
        info = C.patch(C.NEWTON, "newton", art, os.path.join(art, f"newton_{kind.replace('+', '_')}.py"), hoist=hoist,
                       accept=acc, no_accept=acc is None)
        verdicts[f"{label} {kind}"] = info
        mod = C.import_file(info["file"])
        programs[f"{label} {kind}"] = (lambda m: (lambda n: solve_time(m, n)))(mod)
        if acc is not None and hoist:
            fallback[f"{label} {kind}"] = newton_fallback(art, acc, cfg["sizes"][-1])
    def array_prog(solve: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> Callable[[int], tuple[float, Any]]:
        """A baseline on the same equations, its time including the list -> array conversion."""
        def prog(n: int) -> tuple[float, Any]:
            a, b, c = exact_mod.make_equations(n, SEED)
            t0 = time.perf_counter()
            roots = solve(np.array(a), np.array(b), np.array(c))
            return time.perf_counter() - t0, roots
        return prog

    programs["numpy"] = array_prog(B.newton_numpy)
    numba_fn = B.newton_numba()
    numba_compile = None
    if numba_fn is not None:
        t0 = time.perf_counter()
        numba_fn(np.ones(2), np.zeros(2), -np.ones(2))
        numba_compile = time.perf_counter() - t0
        programs["numba"] = array_prog(numba_fn)

    times: dict[str, dict[int, list[float]]] = {k: {n: [] for n in cfg["sizes"]} for k in programs}
    accuracy: dict[str, dict[str, float]] = {}
    for n in cfg["sizes"]:
        exact_roots = None
        for _rep in range(cfg["repeats"]):
            for name, prog in programs.items():
                dt, roots = prog(n)
                times[name][n].append(dt)
                if name == "exact":
                    exact_roots = roots
                elif n == cfg["sizes"][-1] and name not in accuracy and exact_roots is not None:
                    err = C.rel_errors(list(roots), exact_roots)
                    accuracy[name] = {f"within_{t}": float(np.mean(err <= t)) for t in (0.01, 0.02, 0.05)}
                    accuracy[name]["max_rel_error"] = float(np.max(err))
    med = {k: {n: statistics.median(v) for n, v in d.items()} for k, d in times.items()}
    n_max = cfg["sizes"][-1]
    result = {"config": {k: v for k, v in cfg.items() if k.startswith(("sizes", "repeats", "newton"))}, "seed": SEED,
              "median_s": {k: {str(n): v for n, v in d.items()} for k, d in med.items()},
              "samples_s": {k: {str(n): v for n, v in d.items()} for k, d in times.items()},
              "speedup_vs_exact_at_max_n": {k: med["exact"][n_max] / med[k][n_max] for k in med},
              "accuracy_at_max_n": accuracy, "rewrite": verdicts, "numba_compile_s": numba_compile,
              "accept": accept if fallback else None, "fallback_at_max_n": fallback,
              "machine": C.machine()}
    C.write_json(os.path.join(out, "fig3_newton.json"), result)
    C.write_text(os.path.join(out, "fig3_newton.md"), render_newton(result))
    plot_newton(result, os.path.join(out, "fig3_newton.png"))
    return result


def render_newton(result: dict[str, Any]) -> str:
    med = result["median_s"]
    sizes = list(next(iter(med.values())).keys())
    n_max = sizes[-1]
    rows = []
    for name, d in med.items():
        acc = result["accuracy_at_max_n"].get(name)
        verdict = result["rewrite"].get(name)
        note = ""
        if verdict is not None:
            note = ("regionx: RX502 not profitable (forced)" if verdict["refused_unprofitable"] else
                    f"regionx: {verdict['path_taken']} path" + (f", hoisted line(s) {verdict['hoisted']}" if verdict["hoisted"] else ""))
            if name.endswith("hoisted") and not verdict["hoisted"]:
                note += "; no loop hoisted"
        fb = result.get("fallback_at_max_n", {}).get(name)
        rows.append([name, *[f"{d[n] * 1e3:.2f}" for n in sizes], f"{result['speedup_vs_exact_at_max_n'][name]:.2f}x",
                     f"{acc['within_0.01']:.1%}" if acc else ("exact" if name in ("exact", "numpy", "numba") else "-"),
                     f"{acc['within_0.05']:.1%}" if acc else "", f"{fb['fallback']:.1%}" if fb else "", note])
    head = (
        "# Fig. 3 — Newton-Raphson: solve time (ms) vs number of equations\n\n"
        f"Median of {result['config']['repeats']} interleaved runs; unseen equations (fixtures/newton.py workload, "
        f"seed {result['seed']}). Speedup = exact / program at n = {n_max}. Accuracy: share of the {n_max} roots within "
        "1% / 5% of the exact ones (rel, floor 1e-3). numpy/numba include the list -> array conversion"
        + (f"; Numba compile time {result['numba_compile_s']:.2f} s is excluded" if result.get("numba_compile_s") else "")
        + ".\n\n"
        + ("Programs marked `+accept` check each surrogate root with the fixture's accept predicate "
           f"`{result['accept']}` (vectorised in the hoisted loop); the exact code answers the rows it rejects, "
           "so their accuracy is the program's. `exact fallback` = share of the equations the hoisted program "
           "hands to the exact code (row 0, rows outside the trained box, rejected rows). Programs without "
           "`+accept` run the bare surrogate (the manifests' accept dropped).\n\n" if result.get("accept") else "")
    )
    table = C.md_table(["program", *[f"n={n}" for n in sizes], "speedup", "within 1%", "within 5%", "exact fallback", "note"],
                       rows, align="l" + "r" * (len(sizes) + 4) + "l")
    return (head + table + "\nReproduce: `.venv/bin/python benchmarks/speedup.py --only newton`  \n"
            + C.machine_line(result.get("machine")) + "\n")


def plot_newton(result: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5.4))
    fixed = {"exact": "black", "numpy": "tab:green", "numba": "tab:olive"}
    palette = iter(["tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:cyan", "tab:gray"] * 3)
    colors: dict[str, str] = {}
    # +accept programs are drawn for the models that also have a plain line (the table has them all)
    plain = {k.rsplit(" ", 1)[0] for k in result["median_s"] if k.endswith(" hoisted")}
    for name, d in result["median_s"].items():
        ns = [int(n) for n in d]
        base = name.rsplit(" ", 1)[0]
        if "+accept" in name and (base not in plain or name.endswith("scalar+accept")):
            continue
        style = "-" if name in fixed else ("--" if name.endswith("scalar") else ("-." if "+accept" in name else ":"))
        color = fixed.get(name) or colors.setdefault(base, next(palette))  # scalar and hoisted of one model share a colour
        ax.plot(ns, [d[str(n)] * 1e3 for n in ns], style, color=color, marker="o", ms=3, label=name,
                lw=2.2 if name in fixed else 1.4)
    ax.set_yscale("log")
    ax.set_xlabel("number of equations")
    ax.set_ylabel("solve time (ms, median)")
    ax.set_title("Newton-Raphson: exact vs regionx surrogates vs numpy/Numba")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the lines fill the axes
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- Fig. 5


def lj_fig(cfg: dict[str, Any], out: str) -> dict[str, Any]:
    ensure_artifacts(out, "lj", cfg["lj_topologies"], cfg)
    steps, cells = cfg["lj_steps"], cfg["lj_cells"]
    exact_mod = C.import_file(C.LJ)
    programs: dict[str, Callable[[], Any]] = {"exact": lambda: exact_mod.run(steps, cells, out=io.StringIO())}
    verdicts: dict[str, Any] = {}
    for h in cfg["lj_topologies"]:
        art = topo_dir(out, "lj", h)
        label = "x".join(map(str, (1, *h, 1)))
        info = C.patch(C.LJ, "lj_pair", art, os.path.join(art, "lj_md_patched.py"), hoist=True)
        verdicts[label] = info
        mod = C.import_file(info["file"])
        programs[label] = (lambda m: (lambda: m.run(steps, cells, out=io.StringIO())))(mod)
    for h, samples, epochs, transform in cfg.get("lj_extras", []):  # beyond the paper's setting (C.LJ_EXTRAS)
        art = os.path.join(out, "artifacts", "lj", C.lj_extra_name(h, samples, epochs, transform))
        if not os.path.exists(os.path.join(art, "manifest.json")):
            print(f"training lj {h} on {samples} samples, {epochs} epochs (not found under {out}/artifacts) ...", flush=True)
            C.train_one(C.sample(C.LJ, "lj_pair", samples, 0), h, "tanh", art, epochs=epochs, seed=0,
                        target_transform=transform)
        label = "x".join(map(str, (1, *h, 1))) + f" ({samples // 1000}k, {epochs} ep" + (f", {transform})" if transform != "none" else ")")
        info = C.patch(C.LJ, "lj_pair", art, os.path.join(art, "lj_md_patched.py"), hoist=True)
        verdicts[label] = info
        mod = C.import_file(info["file"])
        programs[label] = (lambda m: (lambda: m.run(steps, cells, out=io.StringIO())))(mod)
    programs["numpy"] = lambda: B.lj_run_vectorised(steps, cells)
    numba_forces = B.lj_forces_numba()
    numba_compile = None
    if numba_forces is not None:
        t0 = time.perf_counter()
        B.lj_run_vectorised(1, cells, forces_fn=numba_forces)
        numba_compile = time.perf_counter() - t0
        programs["numba"] = lambda: B.lj_run_vectorised(steps, cells, forces_fn=numba_forces)
    times: dict[str, list[float]] = {k: [] for k in programs}
    thermo: dict[str, Any] = {}
    exact_first = float("nan")
    for _rep in range(cfg["lj_repeats"]):
        for name, prog in programs.items():
            t0 = time.perf_counter()
            rows = prog()
            times[name].append(time.perf_counter() - t0)
            thermo[name] = list(rows[-1])
            if name == "exact":
                exact_first = rows[0][3]  # step 0: the exact run's own energy drift is reported beside the diffs
    med = {k: statistics.median(v) for k, v in times.items()}
    ex = thermo["exact"]
    quality = {k: {"TotEng": v[3], "E_pair": v[2], "Temp": v[1], "Press": v[4],
                   "TotEng_rel_diff": abs(v[3] - ex[3]) / abs(ex[3]), "E_pair_rel_diff": abs(v[2] - ex[2]) / abs(ex[2]),
                   "Temp_rel_diff": abs(v[1] - ex[1]) / abs(ex[1])} for k, v in thermo.items()}
    result = {"config": {k: v for k, v in cfg.items() if k.startswith("lj")}, "median_s": med, "samples_s": times,
              "speedup_vs_exact": {k: med["exact"] / v for k, v in med.items()}, "thermo_last_step": quality,
              "rewrite": verdicts, "numba_compile_s": numba_compile, "machine": C.machine(),
              "exact_toteng_step0": exact_first, "exact_drift_rel": abs(ex[3] - exact_first) / abs(exact_first)}
    C.write_json(os.path.join(out, "fig5_lj.json"), result)
    C.write_text(os.path.join(out, "fig5_lj.md"), render_lj(result))
    plot_lj(result, os.path.join(out, "fig5_lj.png"))
    return result


def render_lj(result: dict[str, Any]) -> str:
    rows = []
    for name, t in result["median_s"].items():
        q = result["thermo_last_step"][name]
        v = result["rewrite"].get(name)
        if v is None:
            note = ""
        elif v["refused_unprofitable"]:
            p = v["profitability"]
            note = (f"regionx refuses: RX502 not profitable ({p['time_per_call'] * 1e9:.0f} ns/call surrogate vs "
                    f"{p['exact_time_per_call'] * 1e9:.0f} ns exact); timed with force=True")
        else:
            note = f"regionx: {v['path_taken']} path"
        if v is not None and v["hoist_skipped"]:
            note += "; not hoisted: " + "; ".join(s["reason"] for s in v["hoist_skipped"])[:160]
        rows.append([name, f"{t:.3f}", f"{result['speedup_vs_exact'][name]:.2f}x", f"{q['TotEng']:.6f}",
                     f"{q['TotEng_rel_diff']:.3%}", f"{q['E_pair_rel_diff']:.3%}", f"{q['Temp_rel_diff']:.3%}", note])
    cfg = result["config"]
    head = (
        "# Fig. 5 — Lennard-Jones MD: whole-run time and speedup per surrogate topology\n\n"
        f"fixtures/lj_md.py, {cfg['lj_cells'] ** 3 * 4} atoms, {cfg['lj_steps']} steps; median of {cfg['lj_repeats']} interleaved runs. "
        "Thermo columns: the last step's total energy per atom and its relative difference from the exact run "
        "(numpy/numba differ from the exact run by summation order only)"
        + (f". The exact run's own TotEng drifts {result['exact_drift_rel']:.3%} from step 0 ({result['exact_toteng_step0']:.6f}; "
           "truncated, unshifted potential and Verlet error)" if "exact_drift_rel" in result else "")
        + (f"; Numba compile time {result['numba_compile_s']:.2f} s excluded" if result.get("numba_compile_s") else "")
        + ".\n\n"
    )
    table = C.md_table(["program", "run time (s)", "speedup", "TotEng", "TotEng diff", "E_pair diff", "Temp diff", "note"],
                       rows, align="lrrrrrrl")
    return (head + table + "\nReproduce: `.venv/bin/python benchmarks/speedup.py --only lj`  \n"
            + C.machine_line(result.get("machine")) + "\n")


def plot_lj(result: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k in result["speedup_vs_exact"] if k != "exact"]
    vals = [result["speedup_vs_exact"][k] for k in names]
    colors = ["tab:red" if result["rewrite"].get(k, {}).get("refused_unprofitable") else
              ("tab:green" if k in ("numpy", "numba") else "tab:blue") for k in names]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    ax.bar(names, vals, color=colors)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("speedup vs exact pure-Python run")
    ax.set_title("LJ MD: regionx surrogates (red: refused as unprofitable, forced) vs numpy/Numba")
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v:.2f}x", ha="center", va="bottom", fontsize=8)
    ax.tick_params(axis="x", labelsize=7, labelrotation=25)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny configuration (smoke test)")
    parser.add_argument("--only", choices=("newton", "lj"), default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default=C.RESULTS)
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.repeats:
        cfg["repeats"] = args.repeats
    start = time.perf_counter()
    if args.only in (None, "newton"):
        newton_fig(cfg, args.out)
        print(open(os.path.join(args.out, "fig3_newton.md"), encoding="utf-8").read())
    if args.only in (None, "lj"):
        lj_fig(cfg, args.out)
        print(open(os.path.join(args.out, "fig5_lj.md"), encoding="utf-8").read())
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
