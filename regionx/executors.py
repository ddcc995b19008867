"""Where samples run: ``local[:K]`` worker processes or a Dask cluster, behind one Executor API.

`make_executor` returns a plain concurrent.futures.Executor for either, so
regionx.sampling.workers has one code path: submit chunks of samples as tasks, collect the results.

- ``local`` / ``local:K``: a ProcessPoolExecutor with K workers (default: os.cpu_count()),
  forked while the process has one thread, else started by a fork server (forking a process
  that runs threads — a Dask client, TensorFlow — is unsafe).
- ``dask://HOST:PORT``: the scheduler at tcp://HOST:PORT through ``distributed.Client``
  (imported only here and only then; the ``dask`` extra). The client is closed on shutdown.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import Any


class ExecutorError(ValueError):
    """A bad --executor value, or an executor that cannot be created (the CLI reports RX006)."""


def parse_executor(spec: str) -> tuple[str, Any]:
    """('local', K) or ('dask', 'tcp://HOST:PORT') for an --executor value; raises ExecutorError."""
    text = (spec or "local").strip()
    if text == "local":
        return "local", max(1, os.cpu_count() or 1)
    if text.startswith("local:"):
        count = text[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise ExecutorError(f"--executor {spec!r}: expected local:K with K a positive integer")
        return "local", int(count)
    if text.startswith("dask://"):
        address = text[len("dask://"):]
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ExecutorError(f"--executor {spec!r}: expected dask://HOST:PORT")
        return "dask", f"tcp://{address}"
    raise ExecutorError(f"--executor {spec!r}: expected 'local', 'local:K' or 'dask://HOST:PORT'")


class DaskExecutor(cf.Executor):
    """A distributed.Client's executor that also closes the client on shutdown."""

    def __init__(self, address: str, connect_timeout: float = 10.0) -> None:
        try:
            import distributed
        except ImportError:
            raise ExecutorError(
                "--executor dask://... needs the 'distributed' package: pip install 'regionx[dask]'"
            ) from None
        try:
            self.client = distributed.Client(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
        # pure=False: two chunks with equal rows are still two tasks.
        self._inner = self.client.get_executor(pure=False)

    @property
    def workers(self) -> int:
        """Total worker threads of the cluster (at least 1)."""
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # a scheduler hiccup should not stop sampling: guess
            return 1

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        return self._inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        try:
            self._inner.shutdown(wait=wait and not cancel_futures)
        finally:
            self.client.close()


def _context() -> multiprocessing.context.BaseContext:
    """'fork' while this process has a single thread (fast, and a script calling regionx without
    an ``if __name__ == "__main__"`` guard still works); 'forkserver' once other threads exist
    (a Dask client, TensorFlow's native thread pools), where forking is unsafe."""
    import sys
    import threading

    methods = multiprocessing.get_all_start_methods()
    threaded = threading.active_count() > 1 or any(m in sys.modules for m in ("tensorflow", "torch", "jax"))
    if "fork" in methods and not threaded:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # Workers fork from a server that has already imported the sampler (and numpy).
        ctx.set_forkserver_preload(["regionx.sampling.workers"])
        return ctx
    return multiprocessing.get_context("spawn")


def make_executor(spec: str = "local", max_workers: int | None = None) -> cf.Executor:
    """An Executor for an --executor value: ``local``, ``local:K`` or ``dask://HOST:PORT``.

    `max_workers` caps the number of local processes (no point starting more than there are
    tasks). Raises ExecutorError for a bad spec, a missing 'distributed' package or an
    unreachable scheduler.
    """
    kind, arg = parse_executor(spec)
    if kind == "local":
        workers = arg if max_workers is None else max(1, min(arg, max_workers))
        return cf.ProcessPoolExecutor(max_workers=workers, mp_context=_context())
    return DaskExecutor(arg)


def executor_workers(spec_or_executor: str | cf.Executor) -> int:
    """How many tasks can run at once: K for ``local:K``, the cluster's threads for Dask.

    For a Dask spec string (no connection yet) this is 1; pass the executor itself for the real
    number. Raises ExecutorError for a bad spec string.
    """
    if isinstance(spec_or_executor, str):
        kind, arg = parse_executor(spec_or_executor)
        return int(arg) if kind == "local" else 1
    if isinstance(spec_or_executor, DaskExecutor):
        return spec_or_executor.workers
    return int(getattr(spec_or_executor, "_max_workers", 1) or 1)


def shutdown_executor(executor: cf.Executor, kill: bool = False) -> None:
    """Shut `executor` down; with `kill`, terminate local workers still running hung tasks."""
    if kill and isinstance(executor, cf.ProcessPoolExecutor):
        # No public API stops a running task: end the worker processes we started ourselves.
        for process in list(getattr(executor, "_processes", {}).values()):
            try:
                process.terminate()
            except Exception:  # already gone
                pass
    executor.shutdown(wait=not kill, cancel_futures=kill)
