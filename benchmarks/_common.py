"""Shared helpers of the benchmark scripts: sampling and training the fixtures' regions through
regionx's own stages, timing, markdown tables and result files.

Nothing here is part of regionx; the scripts import it as ``benchmarks._common`` (they put the
repository root on sys.path, so they run from a clean checkout with ``.venv/bin/python``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from regionx.analysis import analyze_file, find_region  # noqa: E402
from regionx.types import Dataset, Manifest, Region  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "results")
NEWTON = os.path.join(ROOT, "fixtures", "newton.py")
LJ = os.path.join(ROOT, "fixtures", "lj_md.py")

# The paper's topologies (hidden layers), Tables II and III.
PAPER_NEWTON: list[tuple[int, ...]] = [(3,), (5,), (8,), (3, 2), (5, 3), (8, 5), (5, 3, 2), (8, 5, 3), (11, 8, 5)]
PAPER_LJ: list[tuple[int, ...]] = [(3,), (5,), (8,), (3, 2), (3, 5), (5, 8)]
# LJ variants beyond the paper's setting (20k samples, 100 epochs): (hidden, samples, epochs, target
# transform). More samples and epochs, plus asinh for the paper's 5x8 (without it, 2 of 3 training
# seeds miss), bring the step-100 energy within 0.5% for every seed tried (SUMMARY.md, LJ section).
LJ_EXTRAS: list[tuple[tuple[int, ...], int, int, str]] = [((5, 8), 60000, 200, "asinh"), ((16, 16), 60000, 200, "none")]


def lj_extra_name(hidden: tuple[int, ...], samples: int, epochs: int, transform: str = "none") -> str:
    """Artifact directory name (under artifacts/lj/) of an LJ_EXTRAS variant, e.g. 5x8_60k_200ep_asinh."""
    return f"{'x'.join(map(str, hidden))}_{samples // 1000}k_{epochs}ep" + ("" if transform in ("none", "auto") else f"_{transform}")


def lj_exact_force(rsq: np.ndarray) -> np.ndarray:
    """fixtures/lj_md.py's pair_force, vectorised (fpair; 0 at and beyond the cut-off)."""
    r2inv = 1.0 / rsq
    r6inv = r2inv ** 3
    return np.where(rsq < 6.25, r6inv * (48.0 * r6inv - 24.0) * r2inv, 0.0)


def lj_program_force(module: Any, rsq: np.ndarray) -> np.ndarray:
    """What the patched program uses as fpair: the surrogate inside its trained box, the exact code outside."""
    X = np.asarray(rsq, dtype=np.float64)[:, None]
    inside = np.asarray(module.in_domain(X), dtype=bool).reshape(-1)
    return np.where(inside, np.asarray(module.predict(X), dtype=np.float64)[:, 0], lj_exact_force(X[:, 0]))


def lj_energy_estimate(module: Any, rsq_first: np.ndarray, rsq_last: np.ndarray, n_atoms: int) -> float:
    """Predicted TotEng difference per atom (patched run minus exact run) at the last step, from the
    surrogate's potential error alone.

    A force that depends on rsq only is conservative: the patched run conserves KE + sum U_sur(rsq)
    with U_sur(s) = U(rc) + 1/2 int_s^rc fpair_sur. Its thermo prints KE + sum U_exact, so it drifts
    by dU(s) = U_exact(s) - U_sur(s) = 1/2 int_s^rc (fpair_exact - fpair_sur), summed over the pairs
    at the last step minus the pairs at step 0 (both taken from the exact run: the statistics of
    the patched run's pairs are the same for an accurate surrogate). Pointwise errors that do not
    integrate to ~0 over the distances the pairs move through are what drift the energy.
    """
    grid = np.linspace(0.8, 10.24, 200001)
    df = lj_exact_force(grid) - lj_program_force(module, grid)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (df[1:] + df[:-1]) * np.diff(grid))])
    du = 0.5 * (cum[-1] - cum)  # 1/2 int_s^end df; df = 0 beyond the cut-off for a box-limited surrogate
    last = float(np.interp(rsq_last, grid, du).sum())
    first = float(np.interp(rsq_first, grid, du).sum())
    return (last - first) / n_atoms


def load_region(path: str, name: str) -> tuple[str, Region]:
    """Source text of `path` and its region named `name` (raises if it is not there)."""
    analysis = analyze_file(path)
    region = find_region(analysis, name)
    if region is None:
        raise SystemExit(f"{path}: no region {name!r}")
    with open(path, encoding="utf-8") as handle:
        return handle.read(), region


def sample(path: str, name: str, n: int, seed: int) -> Dataset:
    """`regionx sample` on a fixture's region: `n` valid random inputs from its pragma, exact outputs."""
    from regionx.sample import sample_region

    text, region = load_region(path, name)
    result, dataset = sample_region(text, path, region, n=n, seed=seed)
    if dataset is None or not result.ok:
        raise SystemExit(f"sampling {name} failed: {[d.message for d in result.diagnostics]}")
    return dataset


def train_one(dataset: Dataset, hidden: tuple[int, ...], activation: str, out_dir: str, *, epochs: int,
              seed: int, batch_size: int | None = None, target_transform: str = "auto") -> dict[str, Any]:
    """`regionx train` with a single topology, so that every topology leaves its own manifest and module.

    target is tiny: here we want each topology's artifacts whatever its accuracy; whether it meets
    the pragma's real target is reported separately (`meets_target`).
    """
    from regionx.train import train_dataset

    result = train_dataset(dataset, out_dir, topologies=[(tuple(hidden), activation)], epochs=epochs, seed=seed,
                           target=1e-9, select_by="batch", batch_size=batch_size, target_transform=target_transform)
    if not result.ok:
        raise SystemExit(f"training {hidden} failed: {[d.message for d in result.diagnostics]}")
    row = dict(result.payload.rows[0])
    row["artifact_dir"] = out_dir
    with open(os.path.join(out_dir, "report.json"), encoding="utf-8") as handle:
        row["training"] = json.load(handle)["training"]
    return row


def load_manifest(artifact_dir: str) -> Manifest:
    with open(os.path.join(artifact_dir, "manifest.json"), encoding="utf-8") as handle:
        return Manifest.from_json(json.load(handle))


def patch(path: str, name: str, artifact_dir: str, out_file: str, *, hoist: bool,
          accept: str | None = None, no_accept: bool = False) -> dict[str, Any]:
    """Rewrite `path`'s region with the surrogate in `artifact_dir` into `out_file` (next to the artifacts).

    Returns regionx's verdict: whether the rewrite was refused as unprofitable (RX502), the path
    taken, the hoisted loop lines. When regionx refuses, the patch is made anyway with force=True
    so that the benchmark can show what the refused program would have cost. `accept` replaces the
    manifest's accept predicate; `no_accept` drops it (the bare surrogate, for comparison).
    """
    from dataclasses import replace

    from regionx.fsutil import atomic_write_text
    from regionx.rewrite import rewrite_source

    text, region = load_region(path, name)
    manifest = load_manifest(artifact_dir)
    if accept or no_accept:
        manifest = replace(manifest, accept=accept or None)
    rel = os.path.relpath(os.path.join(artifact_dir, manifest.module), os.path.dirname(out_file))
    result = rewrite_source(text, path, region, manifest, module_name=rel, hoist=hoist)
    refused = [d.message for d in result.diagnostics if d.code == "RX502"]
    if not result.ok:
        if not refused:
            raise SystemExit(f"rewrite failed: {[d.message for d in result.diagnostics]}")
        result = rewrite_source(text, path, region, manifest, module_name=rel, hoist=hoist, force=True)
        if not result.ok:
            raise SystemExit(f"forced rewrite failed: {[d.message for d in result.diagnostics]}")
    atomic_write_text(out_file, result.payload.text)
    return {"file": out_file, "refused_unprofitable": bool(refused), "rx502": refused[0] if refused else None,
            "path_taken": result.payload.path_taken, "hoisted": result.payload.hoisted,
            "hoist_skipped": result.payload.hoist_skipped, "profitability": result.payload.profitability}


_counter = 0


def import_file(path: str) -> Any:
    """Import a Python file as a fresh module (never cached in sys.modules)."""
    import importlib.util

    global _counter
    _counter += 1
    spec = importlib.util.spec_from_file_location(f"_bench_{_counter}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quiet(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, str]:
    """Call fn with stdout captured; return (result, captured text)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        value = fn(*args, **kwargs)
    return value, buf.getvalue()


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of `repeats` calls of fn (and all samples)."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), samples


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub markdown table; `align` is one char per column (l or r), default first l, rest r."""
    align = align or ("l" + "r" * (len(header) - 1))
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# Environment variables that set thread counts of numpy's BLAS, TensorFlow and Numba (issue 12, item 5:
# the numpy paths' speed depends on them, so every result records them).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
# CPU flags that decide which SIMD kernels numpy and OpenBLAS dispatch to.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile")


def _cpu() -> dict[str, Any]:
    """CPU model and its SIMD flags from /proc/cpuinfo (Linux; empty elsewhere)."""
    info: dict[str, Any] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and "model" not in info:
            info["model"] = value
        elif key == "flags" and "flags" not in info:
            flags = set(value.split())
            info["simd_flags"] = [f for f in SIMD_FLAGS if f in flags]
            info["flag_count"] = len(flags)
    return info


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU model and SIMD flags, core count, Python, numpy and
    its SIMD dispatch, the BLAS library numpy loaded (name, version, kernel architecture, thread
    count: threadpoolctl), the thread-count environment variables, and the load at the start."""
    import numpy

    info: dict[str, Any] = {"python": platform.python_version(), "numpy": numpy.__version__, "cpus": os.cpu_count(),
                            "machine": platform.machine(), "platform": platform.platform(), "cpu": _cpu()}
    try:
        from numpy._core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__, __cpu_features__

        info["numpy_simd"] = {"baseline": list(__cpu_baseline__),
                              "dispatch_used": [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]}
    except ImportError:  # numpy < 2 or another layout
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                                 "threading_layer", "prefix")}
                        for lib in threadpool_info() if lib.get("user_api") == "blas"]
        info["openmp"] = [{k: lib.get(k) for k in ("internal_api", "version", "num_threads", "prefix")}
                          for lib in threadpool_info() if lib.get("user_api") == "openmp"]
    except ImportError:
        info["blas"] = None
    info["thread_env"] = {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ}
    try:
        with open("/proc/loadavg", encoding="utf-8") as handle:
            info["loadavg_at_start"] = handle.read().split()[:3]
    except OSError:
        pass
    return info


def machine_line(info: dict[str, Any] | None = None) -> str:
    """`machine()` as one markdown line for a results file (older records: what they hold)."""
    info = info or machine()
    cpu = info.get("cpu") or {}
    cpu = cpu if isinstance(cpu, dict) else {"model": str(cpu)}
    blas = (info.get("blas") or [{}])[0] or {}
    threads = ", ".join(f"{k}={v}" for k, v in (info.get("thread_env") or {}).items()) or "no thread variables set"
    return (f"Machine: {cpu.get('model', info.get('machine', '?'))}, {info.get('cpus')} CPUs "
            f"(SIMD: {' '.join(cpu.get('simd_flags') or []) or '?'}), {info.get('platform')}; Python {info.get('python')}, "
            f"numpy {info.get('numpy')}, BLAS {blas.get('internal_api', '?')} {blas.get('version', '')} "
            f"({blas.get('architecture', '?')} kernels, {blas.get('num_threads', '?')} threads); {threads}; "
            f"load average at start {' '.join(info.get('loadavg_at_start') or [])}.")


def write_json(path: str, data: Any) -> None:
    from regionx.fsutil import atomic_write_text

    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, default=float) + "\n")


def write_text(path: str, text: str) -> None:
    from regionx.fsutil import atomic_write_text

    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_text(path, text)


def rel_errors(pred: Sequence[float] | np.ndarray, exact: Sequence[float] | np.ndarray) -> np.ndarray:
    """regionx's "rel" metric per point: |pred - exact| / max(|exact|, REL_FLOOR)."""
    from regionx.types import REL_FLOOR

    p = np.asarray(pred, dtype=np.float64)
    e = np.asarray(exact, dtype=np.float64)
    return np.abs(p - e) / np.maximum(np.abs(e), REL_FLOOR)
