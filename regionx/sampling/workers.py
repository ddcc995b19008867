"""The harness run on many rows: chunks on local worker processes or on Dask, with time limits.

`run_rows` splits the rows into chunks (about four per worker) submitted as tasks to a
concurrent.futures Executor (regionx.executors: local processes or Dask); results go back in row
order, so they do not depend on the executor or the chunking. In a worker process's main thread
samples are timed out by SIGALRM (regionx.sampling.calls). A Dask worker thread, where signals
cannot be used, keeps one child interpreter for all its chunks (`_ChunkChild`), killed and
restarted when a chunk overruns. Workers start with the harness already loaded: a local pool
forks after this process loaded it (`_preload`). A `SamplingPool` keeps the workers across
several calls (regionx.active's rounds).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import pickle
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from regionx.sampling.calls import _rx_call_rows
from regionx.sampling.harness import exec_module

# Worker-side cache: harness sha256 -> loaded module (a worker process runs many chunks).
_HARNESSES: dict[str, types.ModuleType] = {}
# Extra seconds before a chunk with no per-sample alarm is killed (interpreter and numpy start-up).
_CHUNK_MARGIN = 60.0
# Seconds of no progress at all (beyond the chunks' own limits) before the run gives up on them.
_WATCHDOG_MARGIN = 60.0
# Most rows in one task.
_CHUNK_ROWS = 2000
# Chunks per worker: enough to balance the load; 8 or 16 measured no faster on a 1 ms region (the
# tail shrinks, but each chunk also re-runs RECHECK_ROWS rows).
_PER_WORKER = 4


@dataclass(frozen=True)
class _Chunk:
    """One task: rows to run through the harness."""

    source: str
    sys_path: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    timeout: float
    n_outputs: int
    # The region's input and output names, for the run-time checks of what the analysis claimed.
    inputs: tuple[str, ...] | None = None
    outputs: tuple[str, ...] | None = None
    recheck: int = 0  # valid rows run twice (determinism)


@dataclass(frozen=True)
class _ChunkResult:
    results: list[tuple[str, Any]]
    error: str | None = None  # the harness could not be loaded at all


def _harness(source: str, sys_path: Sequence[str]) -> types.ModuleType:
    key = hashlib.sha256(source.encode("utf-8")).hexdigest()
    module = _HARNESSES.get(key)
    if module is None:
        module = exec_module(source, f"regionx_harness_{key[:16]}", f"<regionx harness {key[:12]}>", sys_path)
        _HARNESSES[key] = module
    return module


def _run_chunk_inline(chunk: _Chunk) -> _ChunkResult:
    try:
        module = _harness(chunk.source, chunk.sys_path)
    except BaseException as exc:  # the user's module-level code failed in the harness
        return _ChunkResult([], f"harness failed to load: {type(exc).__name__}: {exc}")
    return _ChunkResult(_rx_call_rows(module.region, chunk.rows, chunk.timeout, chunk.n_outputs,
                                      None if chunk.inputs is None else list(chunk.inputs),
                                      None if chunk.outputs is None else list(chunk.outputs), chunk.recheck))


def _run_chunk(chunk: _Chunk) -> _ChunkResult:
    """The task every executor runs: one chunk of samples.

    In the main thread of a Unix process (a local worker process) samples are timed out by
    SIGALRM. Elsewhere (a Dask worker thread, where signals cannot be used) the chunk runs in a
    child interpreter kept by that thread, which times out samples itself and which is killed if
    the chunk overruns (`_run_chunk_subprocess`).
    """
    import signal

    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _run_chunk_inline(chunk)
    return _run_chunk_subprocess(chunk)


def _package_root() -> str:
    """The directory holding the regionx package (a chunk child imports regionx from there)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Length prefix of the messages exchanged with a chunk child (pickles of _Chunk / _ChunkResult).
_HEADER = 8


def _read_message(fd: int, deadline: float) -> bytes | None:
    """One length-prefixed message from `fd`; None at end of file or once `deadline` (monotonic) passes."""
    import select
    import struct

    buffer = bytearray()
    size: int | None = None
    while True:
        if size is None and len(buffer) >= _HEADER:
            size = struct.unpack("<Q", bytes(buffer[:_HEADER]))[0]
        if size is not None and len(buffer) >= _HEADER + size:
            return bytes(buffer[_HEADER:_HEADER + size])
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            data = os.read(fd, 1 << 20)
            if not data:
                return None
            buffer += data


class _ChunkChild:
    """A child interpreter that runs chunks for one Dask worker thread, kept across tasks.

    Why not one interpreter per chunk (as before): starting it, importing numpy and the user's
    module (scipy alone is about a second) cost more than the chunk's samples for a region of a
    millisecond, and that start-up, paid once per chunk, was what kept a Dask cluster far below
    local workers. This child starts once per worker thread, keeps its harness cache, and talks
    over its stdin/stdout pipes (length-prefixed pickles; the user's code sees /dev/null as its
    stdin and stdout). If a chunk overruns its limit the child is killed and the next chunk
    starts a new one.
    """

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([_package_root(), *filter(None, [env.get("PYTHONPATH")])])
        code = "from regionx.sampling.workers import _child_main; _child_main()"
        self.process = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, chunk: _Chunk, limit: float) -> tuple[_ChunkResult | None, str]:
        """(result, "") or (None, "timeout") when the chunk overran `limit` s, (None, "died")."""
        import struct

        payload = pickle.dumps(chunk)
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(struct.pack("<Q", len(payload)) + payload)
            stdin.flush()
        except OSError:  # the child is gone
            return None, "died"
        reply = _read_message(stdout.fileno(), time.monotonic() + limit)
        if reply is None:
            try:
                self.process.wait(timeout=0.5)  # exited (end of file)? else it is still busy: overran
            except subprocess.TimeoutExpired:
                return None, "timeout"
            return None, "died"
        return pickle.loads(reply), ""  # our own child's reply

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):  # already gone, or unkillable: nothing more to do
            pass


# Per thread of a Dask worker: its chunk child.
_CHILDREN = threading.local()


def _run_chunk_subprocess(chunk: _Chunk) -> _ChunkResult:
    """Run `chunk` in this thread's child interpreter (started on first use, restarted after a
    kill): samples past their limit are timed out there by SIGALRM; a chunk that overruns its own
    limit as a whole has its child killed and every row counted as 'timeout'; a child that dies
    (a crash in native code, os._exit ...) loses its rows as 'raised'."""
    child: _ChunkChild | None = getattr(_CHILDREN, "child", None)
    if child is None or not child.alive():
        child = _CHILDREN.child = _ChunkChild()
    limit = chunk.timeout * max(1, len(chunk.rows)) * 1.5 + _CHUNK_MARGIN
    out, why = child.run(chunk, limit)
    if out is not None:
        return out
    child.kill()
    _CHILDREN.child = None
    return _ChunkResult([("timeout" if why == "timeout" else "raised", None)] * len(chunk.rows))


def _child_main() -> None:
    """Entry point of a chunk child (`_ChunkChild`): run chunks read from stdin until end of file."""
    import struct

    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # the user's code must not read or write the protocol's pipes
    os.dup2(devnull, 1)
    while True:
        header = requests.read(_HEADER)
        if len(header) < _HEADER:  # the worker closed the pipe (or exited): done
            return
        chunk = pickle.loads(requests.read(struct.unpack("<Q", header)[0]))  # from our own parent
        reply = pickle.dumps(_run_chunk_inline(chunk))
        replies.write(struct.pack("<Q", len(reply)) + reply)
        replies.flush()


def _preload(source: str, sys_path: Sequence[str]) -> None:
    """Load the harness in this process before a local pool forks its workers, so that they start
    with the user's module and its imports loaded (scipy: about a second per worker otherwise,
    paid again by every worker of every run). A harness that fails to load is left to the
    workers, which report why."""
    try:
        _harness(source, sys_path)
    except Exception:  # reported by the workers, which load it again
        pass
    except SystemExit:  # the user's module called sys.exit() at import: likewise
        pass


class SamplingPool:
    """The workers of an --executor spec, kept open across several `run_rows` calls (the rounds of
    an active design reuse one pool instead of starting processes and loading the harness again).

    The executor is created on first use. For a local pool the harness is loaded in this process
    first (`_preload`), so forked workers inherit it. A pool that had to abandon a hung chunk is
    killed (`discard`) and made afresh on next use. Use as a context manager, or call `close`.
    """

    def __init__(self, executor: str = "local", max_workers: int | None = None) -> None:
        from regionx.executors import parse_executor

        self.spec = executor
        self.kind, _ = parse_executor(executor)  # ExecutorError for a bad spec, before anything starts
        self.max_workers = max_workers
        self._executor: cf.Executor | None = None

    def executor(self, source: str | None = None, sys_path: Sequence[str] = ()) -> cf.Executor:
        """The executor, created now if needed (after preloading `source` for a local pool)."""
        from regionx.executors import make_executor

        if self._executor is None:
            if self.kind == "local" and source is not None:
                _preload(source, sys_path)
            self._executor = make_executor(self.spec, max_workers=self.max_workers if self.kind == "local" else None)
        return self._executor

    def workers(self) -> int:
        """How many chunks run at once (the executor is created if needed)."""
        from regionx.executors import executor_workers

        return executor_workers(self.executor())

    def discard(self) -> None:
        """Kill the workers (some are stuck where no alarm reaches them); the next use starts new ones."""
        from regionx.executors import shutdown_executor

        if self._executor is not None:
            executor, self._executor = self._executor, None
            shutdown_executor(executor, kill=True)

    def close(self) -> None:
        """Shut the workers down."""
        from regionx.executors import shutdown_executor

        if self._executor is not None:
            executor, self._executor = self._executor, None
            shutdown_executor(executor)

    def __enter__(self) -> "SamplingPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of `parts` nearly equal chunks of range(n)."""
    parts = max(1, min(parts, n))
    bounds = [round(k * n / parts) for k in range(parts + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(parts) if bounds[k + 1] > bounds[k]]


def run_rows(source: str, rows: Sequence[tuple[Any, ...]], n_outputs: int, *, timeout: float = 10.0,
             executor: str = "local", sys_path: Sequence[str] = (),
             progress: Callable[[int, int], None] | None = None, inputs: Sequence[str] | None = None,
             outputs: Sequence[str] | None = None, recheck: int = 0,
             pool: SamplingPool | None = None) -> tuple[list[tuple[str, Any]], str | None]:
    """Run the harness `source`'s ``region`` on every row with `executor`; one (status, outputs) per row.

    Every call's outputs must be numbers; given the region's `inputs` and `outputs` names, the
    workers also check that the other inputs are left unchanged, and re-run `recheck` valid rows
    of each chunk to check determinism (see ``_rx_call_rows``; status 'violation').

    Rows are split into chunks (about four per worker) submitted as tasks; results go back in row
    order, so the outcome does not depend on the executor or the chunking. A chunk whose task
    fails (e.g. a worker process died) counts its rows as 'raised'; chunks that make no progress
    for longer than their own time limits allow are abandoned as 'timeout'. With `pool`, its
    workers are used and left open for the caller (`executor` is then ignored); else a pool is
    made for this call and closed after it. Returns (results, error) where `error` says why the
    harness could not run at all.
    """
    from regionx.executors import parse_executor

    total = len(rows)
    results: list[tuple[str, Any]] = [("raised", None)] * total
    if total == 0:
        return results, None
    own = pool is None
    if pool is None:
        kind, _ = parse_executor(executor)
        # Local: no more processes than useful chunks (small runs start few workers).
        pool = SamplingPool(executor, max_workers=max(1, total // 16) if kind == "local" else None)
    try:
        return _run_rows_in(pool, source, rows, n_outputs, timeout, sys_path, progress, inputs, outputs, recheck)
    finally:
        if own:
            pool.close()


def _run_rows_in(pool: SamplingPool, source: str, rows: Sequence[tuple[Any, ...]], n_outputs: int, timeout: float,
                 sys_path: Sequence[str], progress: Callable[[int, int], None] | None, inputs: Sequence[str] | None,
                 outputs: Sequence[str] | None, recheck: int) -> tuple[list[tuple[str, Any]], str | None]:
    """`run_rows` on the workers of `pool` (left open; discarded if a chunk had to be abandoned)."""
    total = len(rows)
    results: list[tuple[str, Any]] = [("raised", None)] * total
    executor = pool.executor(source, sys_path)
    workers = pool.workers()
    # About _PER_WORKER chunks per worker (load balance), at most _CHUNK_ROWS rows each (progress,
    # and a bounded loss if a worker dies); tiny runs use one chunk per worker.
    parts = max(workers * _PER_WORKER, -(-total // _CHUNK_ROWS)) if total >= 64 * workers else workers
    ranges = _split(total, parts)
    error: str | None = None
    task_error: str | None = None
    chunks_ok = 0
    done_rows = 0
    futures = {
        executor.submit(_run_chunk, _Chunk(source, tuple(sys_path), list(rows[a:b]), timeout, n_outputs,
                                           None if inputs is None else tuple(inputs),
                                           None if outputs is None else tuple(outputs), recheck)): (a, b)
        for a, b in ranges
    }
    pending = set(futures)
    longest = max(b - a for a, b in ranges)
    # No chunk may take longer than this (its samples' limits plus start-up); a wait this long
    # without any chunk finishing means a worker is stuck where no alarm reaches it.
    window = timeout * longest * 1.5 + _CHUNK_MARGIN + _WATCHDOG_MARGIN
    try:
        while pending:
            finished, pending = cf.wait(pending, timeout=window, return_when=cf.FIRST_COMPLETED)
            if not finished:
                for future in pending:
                    a, b = futures[future]
                    results[a:b] = [("timeout", None)] * (b - a)
                pool.discard()
                break
            for future in finished:
                a, b = futures[future]
                try:
                    out: _ChunkResult = future.result()
                except Exception as exc:  # the task itself failed (a worker process died ...): its samples are lost
                    out = _ChunkResult([("raised", None)] * (b - a))
                    task_error = task_error or f"worker task failed: {type(exc).__name__}: {exc}".strip()
                else:
                    chunks_ok += 1
                if out.error is not None:
                    error = out.error
                    out = _ChunkResult([("raised", None)] * (b - a))
                results[a:b] = out.results
                done_rows += b - a
                if progress is not None:
                    progress(done_rows, total)
    except BaseException:  # interrupted: stop the workers rather than wait for every chunk
        pool.discard()
        raise
    if task_error is not None and isinstance(executor, cf.ProcessPoolExecutor):
        pool.discard()  # a worker died: the pool is broken for later rounds, which start a new one
    if error is None and chunks_ok == 0 and task_error is not None:
        error = task_error  # no task ran at all: say why rather than report every sample as raised
    return results, error
