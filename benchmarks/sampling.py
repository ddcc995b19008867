"""Sampling as the cost (issue 14): throughput per worker count and executor, and samples-to-target
of uniform, space-filling and active sampling, on fixtures/projectile.py's ~1 ms solve_ivp region.

Usage: .venv/bin/python benchmarks/sampling.py [--quick] [--only throughput|designs] [--out DIR]

Throughput: the same rows (drawn once) run through regionx.sample.run_rows — the sampling engine:
chunks, worker processes, run-time checks — R times each, interleaved, in two phases. Phase A, no
cluster anywhere: ``local:1`` and ``local:2`` beside the machine's ceiling, the bare region called
on the same rows split over 1 and 2 forked processes without any of regionx's machinery. Phase B,
a Dask LocalCluster of two single-thread worker processes up (driven from a spawned process, so
that the client's threads do not turn this process's local pools into fork-server pools): local:1
again beside the Dask rows. Ratios are to local:1 of the same phase. Each run starts its own pool
(as a compile does); the harness is already loaded in this process, as it is when a compile
samples. The cluster's first run is reported apart (each worker thread starts its chunk child
then), and so is the old way of running a chunk there: a fresh child interpreter per chunk
(patched into the workers for that row only). CPU seconds of the workers come from
RUSAGE_CHILDREN (local pools, reaped) and psutil (the cluster's processes, alive).

Designs: for each design (uniform, sobol, lhs) and sample count N of a ladder, `sample_region`
draws N samples, regionx.train trains one topology on them (the same for all, TOPOLOGY, with
compile's epochs; the samples and the training both take the seed, so the spread over seeds
covers both), and the surrogate is scored on a fixed test set of uniform random inputs never
sampled (their exact ranges computed once): the share within the region's tolerance. Active
sampling (regionx.active) starts from the best space-filling design, grows by rounds over the same
ladder, and is scored after every round. samples-to-target is the smallest N of the ladder whose
accuracy reaches TARGET, for each training seed; the table gives them all.

Writes <out>/sampling_throughput.{json,md} and <out>/sampling_designs[_fine].{json,md} (default
benchmarks/results/; benchmarks/results/sampling.md sums them up and draws the conclusions).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import _common as C  # noqa: E402

import numpy as np  # noqa: E402

PROJECTILE = os.path.join(C.ROOT, "fixtures", "projectile.py")
REGION = "flight_range"
TARGET = 0.99
TOPOLOGY: tuple[tuple[int, ...], str] = ((16, 16), "tanh")
FULL: dict[str, Any] = {"throughput_rows": 2000, "repeats": 3, "ladder": [250, 500, 1000, 2000, 4000], "seeds": [0, 1, 2],
                        "test_rows": 2000, "epochs": 150, "designs": ["uniform", "sobol", "lhs"], "dask": True}
# --fine: the rungs where the coarse ladder's designs cross the target, more training seeds.
FINE: dict[str, Any] = {**FULL, "ladder": [500, 750, 1000, 1250, 1500, 2000], "seeds": [0, 1, 2, 3],
                        "designs": ["uniform", "sobol"]}
QUICK: dict[str, Any] = {"quick": True, "throughput_rows": 64, "repeats": 1, "ladder": [64, 128], "seeds": [0],
                         "test_rows": 64, "epochs": 3, "designs": ["uniform", "sobol"], "dask": False}


# --------------------------------------------------------------------------- throughput


# Run in each Dask worker (client.run(exec, ...)): every chunk gets a new child interpreter, killed
# afterwards — how a Dask worker ran chunks before the child was kept across tasks (the "before" row).
_ONE_SHOT = """
import regionx.sampling.workers as S
S._rx_kept = getattr(S, "_rx_kept", S._run_chunk_subprocess)

def _rx_one_shot(chunk):
    child = S._ChunkChild()
    try:
        out, _ = child.run(chunk, chunk.timeout * max(1, len(chunk.rows)) * 1.5 + S._CHUNK_MARGIN)
        return out if out is not None else S._ChunkResult([("raised", None)] * len(chunk.rows))
    finally:
        child.kill()

S._run_chunk_subprocess = _rx_one_shot
"""
_KEPT = """
import regionx.sampling.workers as S
S._run_chunk_subprocess = getattr(S, "_rx_kept", S._run_chunk_subprocess)
"""


def _dask_driver(conn: Any) -> None:
    """A spawned process driving a Dask LocalCluster of two single-thread workers: receives the
    rows, then runs them on the cluster on each request ("kept" or "one-shot" chunk children) and
    answers the wall time. Apart from the benchmark's own process so that the client's threads
    do not make this one's local pools use a fork server (they fork, as in a compile)."""
    from distributed import Client, LocalCluster

    from regionx.sample import run_rows

    harness, rows, n_outputs, kwargs = conn.recv()
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster.scheduler_address) as client:
        address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        conn.send("ready")
        while (what := conn.recv()) != "stop":
            client.run(exec, _ONE_SHOT if what == "one-shot" else _KEPT, {})  # its own globals
            start = time.perf_counter()
            results, error = run_rows(harness, rows, n_outputs, executor=address, **kwargs)
            elapsed = time.perf_counter() - start
            conn.send((elapsed, error or ("" if all(s == "ok" for s, _ in results) else "samples failed")))


def throughput(cfg: dict[str, Any]) -> dict[str, Any]:
    """Samples per second of the sampling engine with 1 and 2 local workers and a 2-worker Dask cluster."""
    import multiprocessing

    from regionx.extract import extract_region
    from regionx.sample import RECHECK_ROWS, draw_inputs, run_rows
    from regionx.sampling.workers import _harness

    text, region = C.load_region(PROJECTILE, REGION)
    harness = extract_region(text, PROJECTILE, region).payload.harness
    sys_path = (os.path.dirname(PROJECTILE),)
    assert region.pragma is not None
    rows, _ = draw_inputs(region.pragma.domains, cfg["throughput_rows"], np.random.default_rng(0))
    _harness(harness, sys_path)  # loaded here as in a compile, before any pool forks
    kwargs = dict(sys_path=sys_path, inputs=region.inputs, outputs=region.outputs, recheck=RECHECK_ROWS)
    cpu: dict[str, list[float]] = {}
    driver: Any = None
    process: Any = None

    def measured(name: str, fn: Any) -> float:
        """Wall seconds of fn() (or the seconds it reports: the Dask driver times its own run),
        recording the CPU seconds the workers spent meanwhile."""
        before = _worker_cpu()
        start = time.perf_counter()
        reported = fn()
        elapsed = time.perf_counter() - start if reported is None else reported
        cpu.setdefault(name, []).append(_worker_cpu() - before)
        return float(elapsed)

    def local(executor: str) -> None:
        results, error = run_rows(harness, rows, len(region.outputs), executor=executor, **kwargs)  # type: ignore[arg-type]
        assert error is None and all(status == "ok" for status, _ in results), error

    def bare(workers: int) -> None:
        """The machine's ceiling: the exact region alone on `workers` equal slices of the rows, in
        forked processes, with none of regionx's chunks, checks or pools."""
        with multiprocessing.get_context("fork").Pool(workers) as plain:
            plain.map(_bare_slice, [(harness, sys_path, rows[k::workers]) for k in range(workers)])

    def answer() -> Any:
        """The driver's next message; SystemExit if it died instead."""
        assert driver is not None and process is not None
        while not driver.poll(1.0):
            if not process.is_alive():
                raise SystemExit(f"the Dask driver process died (exit status {process.exitcode})")
        return driver.recv()

    def dask(what: str) -> float:
        assert driver is not None
        driver.send(what)
        elapsed, problem = answer()
        assert not problem, problem
        return float(elapsed)

    def run(name: str) -> float:
        if name.startswith("dask"):
            return measured(name, lambda: dask("one-shot" if "before" in name else "kept"))
        if name.startswith("bare"):
            return measured(name, lambda: bare(1 if "1 process" in name else 2))
        return measured(name, lambda: local(name.split(" ")[0]))

    # Phase A, no cluster anywhere: regionx's local pools beside the bare region's ceiling.
    # Phase B, a Dask cluster up (its idle event loops take some CPU too): Dask beside local:1 again.
    phases = [["local:1", "local:2", "bare region, 1 process (ceiling)", "bare region, 2 processes (ceiling)"]]
    if cfg["dask"]:
        phases.append(["local:1 (cluster up)", "dask 2x1", "dask 2x1, child per chunk (before)"])
    times: dict[str, list[float]] = {}
    load = [C.machine().get("loadavg_at_start")]
    try:
        for phase, names in enumerate(phases):
            if phase == 1:
                driver, theirs = multiprocessing.get_context("spawn").Pipe()
                # Not a daemon: its LocalCluster starts worker processes, which a daemon may not have.
                process = multiprocessing.get_context("spawn").Process(target=_dask_driver, args=(theirs,))
                process.start()
                driver.send((harness, rows, len(region.outputs), kwargs))
                assert answer() == "ready"
                first = "dask 2x1, first run (children start)"
                times[first] = [run(first)]
            for _ in range(cfg["repeats"]):
                for name in names:
                    times.setdefault(name, []).append(run(name))
                load.append(C.machine().get("loadavg_at_start"))
    finally:
        if driver is not None and process is not None:
            driver.send("stop")
            process.join(timeout=60)
    n = len(rows)
    table: dict[str, dict[str, Any]] = {
        name: {"median_s": statistics.median(ts), "runs_s": ts, "samples_per_s": n / statistics.median(ts)}
        for name, ts in times.items()}
    for name, row in table.items():
        base = table["local:1 (cluster up)" if name.startswith(("dask", "local:1 (")) else "local:1"]["samples_per_s"]
        row["vs_local_1"] = row["samples_per_s"] / base
        # CPU seconds the workers (and their chunk children) spent, per sample and per wall second:
        # the cores the run obtained on a machine other work shares.
        row["worker_cpu_s"] = statistics.median(cpu[name])
        row["cpu_ms_per_sample"] = 1e3 * row["worker_cpu_s"] / n
        row["cores_obtained"] = statistics.median(c / t for c, t in zip(cpu[name], row["runs_s"]))
    return {"rows": n, "repeats": cfg["repeats"], "table": table, "loadavg": load}


def _bare_slice(task: tuple[str, tuple[str, ...], list[tuple[Any, ...]]]) -> int:
    """Call the harness's region on each row of a slice (a pool task of the ceiling rows)."""
    from regionx.sampling.workers import _harness

    source, sys_path, rows = task
    region = _harness(source, sys_path).region
    for row in rows:
        region(*row)
    return len(rows)


def _worker_cpu() -> float:
    """CPU seconds spent so far by this process's descendants: live ones (a Dask cluster's worker
    processes and their chunk children, through psutil) plus those already reaped (a local pool's
    workers, after it shut down: RUSAGE_CHILDREN)."""
    import resource

    import psutil

    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = reaped.ru_utime + reaped.ru_stime
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:  # ended meanwhile: counted in its parent's reaped children, if ours
            pass
    return total


# --------------------------------------------------------------------------- designs


def _score(predict: Any, X: np.ndarray, Y: np.ndarray, metric: str, tolerance: float) -> float:
    from regionx.criterion import Criterion

    return float(np.mean(Criterion.legacy(metric, tolerance).within(predict(X), Y)))


def designs(cfg: dict[str, Any], work: str) -> dict[str, Any]:
    """Accuracy on a fixed test set after N samples, per design, N and training seed; and active rounds."""
    from regionx.active import keras_fitter, sample_active
    from regionx.sample import DEFAULT_DESIGN, draw_inputs, sample_region

    text, region = C.load_region(PROJECTILE, REGION)
    assert region.pragma is not None
    # The test set: uniform random inputs of another seed, never sampled for training.
    test_rows, _ = draw_inputs(region.pragma.domains, cfg["test_rows"], np.random.default_rng(10_000))
    result, test = sample_region(text, PROJECTILE, region, n=len(test_rows), rows=test_rows, time_exact=False)
    assert test is not None, result.diagnostics
    metric, tolerance = test.meta.metric, test.meta.tolerance
    hidden, activation = TOPOLOGY
    accuracy: dict[str, dict[int, list[float]]] = {}
    seconds: dict[str, list[float]] = {}
    for design in cfg["designs"]:
        accuracy[design] = {}
        seconds[design] = []
        for n in cfg["ladder"]:
            accuracy[design][n] = []
            for seed in cfg["seeds"]:
                # Both the samples and the training vary with the seed: the spread covers both.
                start = time.perf_counter()
                result, data = sample_region(text, PROJECTILE, region, n=n, seed=seed, design=design, time_exact=False)
                seconds[design].append(time.perf_counter() - start)
                if data is None:
                    raise SystemExit(f"sampling {design} N={n} seed={seed} failed: "
                                     f"{[d.message for d in result.diagnostics]} {result.to_json()}")
                predict = keras_fitter(hidden, activation, cfg["epochs"], seed, os.path.join(work, design))(data)
                accuracy[design][n].append(_score(predict, test.X, test.Y, metric, tolerance))
            print(f"{design:>8} N={n:5d}: {accuracy[design][n]}", flush=True)
    # Active: from the space-filling design that did best, over the same ladder (one round per rung).
    best = max((d for d in cfg["designs"] if d != "uniform"), key=lambda d: _mean_over(accuracy[d]), default="uniform")
    label = f"{best}+active"
    accuracy[label] = {}
    rounds = len(cfg["ladder"])
    for seed in cfg["seeds"]:
        scores: dict[int, float] = {}
        fit = keras_fitter(hidden, activation, cfg["epochs"], seed, os.path.join(work, "active"))

        def scored_fit(dataset: Any, _scores: dict[int, float] = scores, _fit: Any = fit) -> Any:
            predict = _fit(dataset)
            _scores[len(dataset.X)] = _score(predict, test.X, test.Y, metric, tolerance)
            return predict

        top = cfg["ladder"][-1]
        result, data = sample_active(text, PROJECTILE, region, n=top, seed=seed, design=best, rounds=rounds, fit=scored_fit,
                                     totals=cfg["ladder"])
        assert data is not None, result.diagnostics
        scored_fit(data)  # the last round's samples, trained like the others
        for n, score in scores.items():  # one round per rung of the ladder
            accuracy[label].setdefault(n, []).append(score)
        print(f"{label}: {scores}", flush=True)
    to_target = {design: [_samples_to_target(accuracy[design], cfg["ladder"], k) for k in range(len(cfg["seeds"]))]
                 for design in accuracy}
    return {"ladder": cfg["ladder"], "seeds": cfg["seeds"], "topology": f"{'x'.join(map(str, hidden))} {activation}",
            "epochs": cfg["epochs"], "test_rows": len(test.X), "target": TARGET, "tolerance": tolerance, "metric": metric,
            "accuracy": {d: {str(n): v for n, v in a.items()} for d, a in accuracy.items()},
            "samples_to_target": to_target, "sampling_seconds": seconds, "default_design_when_run": DEFAULT_DESIGN}


def _mean_over(acc: dict[int, list[float]]) -> float:
    return float(np.mean([np.mean(v) for v in acc.values()]))


def _samples_to_target(acc: dict[int, list[float]], ladder: list[int], k: int) -> int | None:
    for n in ladder:
        scores = acc.get(n, [])
        if k < len(scores) and scores[k] >= TARGET:
            return n
    return None


# --------------------------------------------------------------------------- report


def render(report: dict[str, Any]) -> str:
    lines = ["# Sampling an expensive region: throughput and designs (issue 14)", "",
             f"Region: `fixtures/projectile.py` `{REGION}` (scipy.integrate.solve_ivp with a ground event). "
             f"Machine: {report['machine'].get('cpus')} CPUs, shared; load average at start "
             f"{' '.join(report['machine'].get('loadavg_at_start') or ['?'])}. Command: `{report['command']}`.", ""]
    tp = report.get("throughput")
    if tp:
        lines += ["## Throughput", "",
                  f"{tp['rows']} samples through `regionx.sample.run_rows` per run, {tp['repeats']} interleaved runs each; "
                  "median wall time. Load averages during the runs: "
                  + "; ".join(" ".join(x or []) for x in tp["loadavg"]) + ".", ""]
        rows = [[name, f"{r['median_s']:.2f}", f"{r['samples_per_s']:.0f}", f"{r['vs_local_1']:.2f}x",
                 f"{r['cpu_ms_per_sample']:.2f}", f"{r['cores_obtained']:.2f}"]
                for name, r in tp["table"].items()]
        lines += [C.md_table(["executor", "wall s (median)", "samples/s", "vs local:1 of its phase",
                              "worker CPU ms/sample", "cores obtained"], rows),
                  "worker CPU ms/sample: CPU time of the worker processes (and chunk children) per sample; "
                  "cores obtained: that CPU time over the wall time, i.e. how much of the machine the run got.", ""]
    ds = report.get("designs")
    if ds:
        lines += ["## Samples to target", "",
                  f"Topology {ds['topology']}, {ds['epochs']} epochs, target {ds['target']:.0%} of {ds['test_rows']} unseen "
                  f"uniform test inputs within {ds['tolerance']} ({ds['metric']}); training seeds {ds['seeds']}.", ""]
        header = ["design"] + [f"N={n}" for n in ds["ladder"]] + ["samples to target (per seed)"]
        rows = []
        for design, acc in ds["accuracy"].items():
            cells = []
            for n in ds["ladder"]:
                v = acc.get(str(n))
                cells.append("-" if not v else f"{np.mean(v):.1%} ({min(v):.1%}-{max(v):.1%})")
            stt = ", ".join(str(x) if x is not None else f">{ds['ladder'][-1]}" for x in ds["samples_to_target"][design])
            rows.append([design, *cells, stt])
        lines += [C.md_table(header, rows), "Cells: mean accuracy over training seeds (min-max)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny configuration (smoke test)")
    parser.add_argument("--fine", action="store_true", help="designs on a finer ladder around the target (FINE)")
    parser.add_argument("--only", choices=["throughput", "designs"], default=None)
    parser.add_argument("--out", default=C.RESULTS)
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FINE if args.fine else FULL)
    parts = [args.only] if args.only else ["throughput", "designs"]
    for part in parts:
        report: dict[str, Any] = {"machine": C.machine(), "config": cfg,
                                  "command": "benchmarks/sampling.py " + " ".join(argv if argv is not None else sys.argv[1:])}
        if part == "throughput":
            report["throughput"] = throughput(cfg)
        else:
            with tempfile.TemporaryDirectory(prefix="regionx-designs-") as work:
                report["designs"] = designs(cfg, work)
        name = f"sampling_{part}" + ("_fine" if args.fine and part == "designs" else "")
        C.write_json(os.path.join(args.out, f"{name}.json"), report)
        C.write_text(os.path.join(args.out, f"{name}.md"), render(report))
        print(render(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
