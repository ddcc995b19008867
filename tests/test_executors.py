"""Executors: `local[:K]` process pools and a Dask cluster run the same sampling code path."""

from __future__ import annotations

import ast
import concurrent.futures as cf
import textwrap
from pathlib import Path

import numpy as np
import pytest

import regionx.sampling.workers as sample_mod
from regionx.executors import DaskExecutor, ExecutorError, executor_workers, make_executor, parse_executor
from regionx.pragma import parse_pragmas
from regionx.sample import draw_inputs, sample_region
from regionx.types import Region

SOURCE = textwrap.dedent('''\
    import math
    import signal
    import time

    # regionx: name=root, a=uniform(0.5, 2.0), b=uniform(-10, 10), c=uniform(-10, 10),
    # regionx: require="b*b - 4*a*c >= 0"
    def root(a, b, c):
        return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)


    # regionx: name=sleepy, x=uniform(0, 1)
    def sleepy(x):
        if x > 0.7:
            time.sleep(30)
        return x * 3.0


    # regionx: name=deaf, x=uniform(0, 1)
    def deaf(x):
        # Blocks the alarm signal, then hangs: only killing the worker stops it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(300)
        return x
''')


def region_of(text: str, name: str, inputs: tuple[str, ...]) -> Region:
    node = next(n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef) and n.name == name)
    pragmas, _ = parse_pragmas(text, "case.py")
    pragma = next(p for p in pragmas if p.end_line == node.lineno - 1)
    return Region(id=name, name=name, kind="function", qualname=name, start_line=node.lineno,
                  end_line=node.end_lineno or node.lineno, col=1, annotated=True, inputs=inputs, outputs=("return",),
                  internals=(), globals=(), calls=(), replaceable=True, pragma=pragma, params=inputs)


@pytest.fixture()
def case(tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "case.py"
    path.write_text(SOURCE, encoding="utf-8")
    return str(path), SOURCE


@pytest.mark.parametrize("spec, expected", [
    ("local", ("local", None)), ("local:3", ("local", 3)), ("dask://127.0.0.1:8786", ("dask", "tcp://127.0.0.1:8786")),
    ("dask://scheduler.example:1234", ("dask", "tcp://scheduler.example:1234")),
])
def test_parse_executor(spec: str, expected: tuple[str, object]) -> None:
    kind, arg = parse_executor(spec)
    assert kind == expected[0]
    if expected[1] is None:
        assert isinstance(arg, int) and arg >= 1
    else:
        assert arg == expected[1]


@pytest.mark.parametrize("spec", ["local:0", "local:x", "threads", "dask://nohostport", "dask://:12", "tcp://h:1"])
def test_bad_executor_specs(spec: str) -> None:
    with pytest.raises(ExecutorError):
        parse_executor(spec)


def test_local_executor_is_a_process_pool() -> None:
    pool = make_executor("local:2")
    try:
        assert isinstance(pool, cf.ProcessPoolExecutor) and executor_workers(pool) == 2
        assert pool.submit(pow, 2, 10).result(timeout=60) == 1024
    finally:
        pool.shutdown()
    capped = make_executor("local:8", max_workers=1)
    try:
        assert executor_workers(capped) == 1
    finally:
        capped.shutdown()


def test_unreachable_scheduler_is_an_executor_error() -> None:
    with pytest.raises(ExecutorError, match="cannot connect"):
        DaskExecutor("tcp://127.0.0.1:9", connect_timeout=1.0)


def test_a_worker_stuck_beyond_signals_is_abandoned(case: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """One hanging sample cannot hang the run: the watchdog gives up on the chunk and kills the worker."""
    path, text = case
    monkeypatch.setattr(sample_mod, "_CHUNK_MARGIN", 0.5)
    monkeypatch.setattr(sample_mod, "_WATCHDOG_MARGIN", 0.5)
    result, data = sample_region(text, path, region_of(text, "deaf", ("x",)), n=3, timeout=0.2, executor="local:1")
    assert data is None and [d.code for d in result.diagnostics] == ["RX305"]
    assert result.payload.dropped["timeout"] == 3


def test_dask_executor_gives_the_same_data_as_local(case: tuple[str, str]) -> None:
    from distributed import LocalCluster

    path, text = case
    root = region_of(text, "root", ("a", "b", "c"))
    sleepy = region_of(text, "sleepy", ("x",))
    _, local = sample_region(text, path, root, n=200, seed=9, executor="local:2")
    _, local_sleepy = sample_region(text, path, sleepy, n=12, seed=2, timeout=0.3, executor="local:2")
    with LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        pool = make_executor(f"dask://{address}")
        try:
            assert isinstance(pool, DaskExecutor) and executor_workers(pool) == 1
        finally:
            pool.shutdown()
        progress: list[int] = []
        result, remote = sample_region(text, path, root, n=200, seed=9, executor=f"dask://{address}",
                                       progress=lambda done, total: progress.append(done))
        # Dask worker threads cannot use signals: chunks run in a child interpreter with its own limits.
        _, remote_sleepy = sample_region(text, path, sleepy, n=12, seed=2, timeout=0.3, executor=f"dask://{address}")
    assert result.ok and local is not None and remote is not None
    assert np.array_equal(local.X, remote.X) and np.array_equal(local.Y, remote.Y)
    assert progress[-1] == 200
    assert local_sleepy is not None and remote_sleepy is not None
    # Timeouts on both: every slow row (x > 0.7 sleeps 30 s) stopped and counted, every kept row a
    # fast one with its output. (Not the very same rows: a loaded machine may stall a fast row
    # past the limit on one executor and not the other.)
    rows, _ = draw_inputs(sleepy.pragma.domains, 12, np.random.default_rng(2))  # type: ignore[union-attr]
    slow = [x for (x,) in rows if x > 0.7]
    assert slow
    for data in (local_sleepy, remote_sleepy):
        assert data.meta.dropped["timeout"] >= len(slow)
        assert len(data.X) == 12 - data.meta.dropped["timeout"] and len(data.X) > 0
        assert np.all(data.X <= 0.7) and set(data.X[:, 0].tolist()) <= {x for (x,) in rows}
        np.testing.assert_array_equal(data.Y, data.X * 3.0)


def test_local_pool_uses_a_fork_server_when_threads_run(case: tuple[str, str]) -> None:
    """With another thread alive forking is unsafe: workers come from a fork server, same data."""
    import threading

    from regionx.executors import _context

    path, text = case
    root = region_of(text, "root", ("a", "b", "c"))
    _, forked = sample_region(text, path, root, n=100, seed=1, executor="local:2")
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    try:
        assert _context().get_start_method() == "forkserver"
        _, served = sample_region(text, path, root, n=100, seed=1, executor="local:2")
    finally:
        stop.set()
        worker.join()
    assert forked is not None and served is not None
    assert np.array_equal(forked.X, served.X) and np.array_equal(forked.Y, served.Y)
