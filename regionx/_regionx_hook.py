"""Run-time hook of instrumented programs (stdlib only: it runs under the user's interpreter).

regionx.instrument rewrites each region ``R`` of a target file into::

    _regionx_tok_1 = _regionx_hook.enter('R')
    try:
        <region code>
    finally:
        _regionx_hook.exit('R', _regionx_tok_1)

and runs the program through `bootstrap(plan_path)`, which serves the instrumented source of
the target files (via an import finder, and for the main script directly), keeps ``__file__``,
``sys.argv`` and ``sys.path[0]`` as a plain ``python app.py args`` run would, times the whole run,
and writes this module's records as JSON to the plan's ``out`` path.

Modes:
  profile  per region: calls, inclusive time (outermost activations only, so recursion is not
           double counted) and exclusive time (time in nested regions subtracted).
  observe  per region: the values of its inputs at entry, a uniform reservoir sample of at most
           ``cap`` calls, as JSON-able floats / nested lists.
  plain    nothing per region: only the run's total time (the uninstrumented baseline).
"""

from __future__ import annotations

import atexit
import json
import os
import random
import sys
import time
from types import CodeType
from typing import Any

_clock = time.perf_counter

MODE = "plain"
_OUT: str | None = None
_INPUTS: dict = {}  # region id -> input names (observe mode)
_CAP = 1000
_RNG = random.Random(0)

# profile state: region id -> [calls, inclusive, exclusive, active depth, nested calls,
#   calls made during outermost activations, outermost activations]
_STATS: dict = {}
# Stack of open activations (tokens, see `enter`).
_STACK: list = []
_COUNTER = 0  # enter() calls so far (profile mode)
_CALIBRATION: tuple = (0.0, 0.0)
# observe state: region id -> [calls, reservoir list, unconvertible count]
_OBS: dict = {}

_TOTAL_TIME: float | None = None
_EXIT_CODE: object = None
_ERROR: str | None = None
_DUMPED = False


def enter(region_id: str) -> object:
    """Called on entry to a region; returns the token that `exit` receives."""
    if MODE == "profile":
        global _COUNTER
        _COUNTER += 1
        stat = _STATS.get(region_id)
        if stat is None:
            stat = _STATS[region_id] = [0, 0.0, 0.0, 0, 0, 0, 0]
        stat[0] += 1
        stat[3] += 1
        # token: region id, start time, time in nested regions, nested calls, enter count at entry
        token = [region_id, 0.0, 0.0, 0, _COUNTER]
        if _STACK:
            _STACK[-1][3] += 1
        _STACK.append(token)
        token[1] = _clock()  # last, so the hook's own bookkeeping is not timed
        return token
    if MODE == "observe":
        _observe(region_id, sys._getframe(1))
    return None


def exit(region_id: str, token: object) -> None:  # noqa: A001 - the hook's public name
    """Called when a region is left (normally or by an exception)."""
    if MODE != "profile" or token is None:
        return
    now = _clock()
    elapsed = now - token[1]  # type: ignore[index]
    # Normally the token is on top; generators or threads may interleave, so search.
    if _STACK and _STACK[-1] is token:
        _STACK.pop()
    else:
        for k in range(len(_STACK) - 1, -1, -1):
            if _STACK[k] is token:
                del _STACK[k]
                break
    stat = _STATS[region_id]
    stat[2] += elapsed - token[2]  # type: ignore[index]
    stat[4] += token[3]  # type: ignore[index]
    stat[3] -= 1
    if stat[3] == 0:
        # Outermost activation of this region: count inclusive time once (recursion).
        stat[1] += elapsed
        stat[5] += _COUNTER - token[4]  # type: ignore[index]
        stat[6] += 1
    if _STACK:
        _STACK[-1][2] += elapsed


def calibrate(repeats: int = 5, calls: int = 20000) -> tuple:
    """Seconds of hook overhead per region call: (inner, outer).

    `inner` lands inside a region's own timing (between the clock reads of enter and exit),
    `outer` in its parent's (the bookkeeping before and after them). Profile records subtract
    them, so a region called millions of times does not inflate its parent's share.
    """
    global _COUNTER
    inner = outer = float("inf")
    saved_mode = MODE
    _set_mode("profile")
    try:
        for _ in range(repeats):
            start = _clock()
            for _ in range(calls):
                pass
            loop = (_clock() - start) / calls
            parent = enter("<calibrate>")
            for _ in range(calls):
                child = enter("<calibrate-child>")
                exit("<calibrate-child>", child)
            exit("<calibrate>", parent)
            inner = min(inner, _STATS["<calibrate-child>"][2] / calls)
            outer = min(outer, max(0.0, _STATS["<calibrate>"][2] / calls - loop))
            _STATS.clear()
    finally:
        _set_mode(saved_mode)
        _COUNTER = 0
        _STATS.clear()
        del _STACK[:]
    return inner, outer


def _set_mode(mode: str) -> None:
    global MODE
    MODE = mode


def _jsonable(value: object) -> object:
    """A float / nested list of floats for a numeric value or array; raise TypeError otherwise."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, without importing numpy
    if tolist is not None:
        return _jsonable(tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    raise TypeError(type(value).__name__)


def _observe(region_id: str, frame: object) -> None:
    rec = _OBS.get(region_id)
    if rec is None:
        rec = _OBS[region_id] = [0, [], 0]
    rec[0] += 1
    calls = rec[0]
    # Reservoir sampling (Algorithm R): every call is kept with equal probability cap/calls.
    if calls <= _CAP:
        slot = -1
    else:
        slot = _RNG.randrange(calls)
        if slot >= _CAP:
            return
    names = _INPUTS.get(region_id, ())
    local_vars = frame.f_locals  # type: ignore[attr-defined]
    global_vars = frame.f_globals  # type: ignore[attr-defined]
    values = {}
    try:
        for name in names:
            if name in local_vars:
                values[name] = _jsonable(local_vars[name])
            elif name in global_vars:
                values[name] = _jsonable(global_vars[name])
            else:
                raise TypeError("unbound")
    except (TypeError, ValueError, RecursionError):
        rec[2] += 1
        return
    if slot < 0:
        rec[1].append(values)
    else:
        rec[1][slot] = values


def records() -> dict:
    """This run's records, as the JSON document `dump` writes."""
    regions: dict = {}
    total = _TOTAL_TIME
    corrected_total = None
    if MODE == "profile":
        inner, outer = _CALIBRATION
        for rid, (calls, inclusive, exclusive, _depth, nested, descendants, outermost) in _STATS.items():
            # Estimates: clamp so that 0 <= exclusive <= inclusive even when the calibration is noisy.
            incl = max(0.0, inclusive - inner * outermost - (inner + outer) * descendants)
            regions[rid] = {
                "calls": calls,
                "inclusive": incl,
                "exclusive": min(incl, max(0.0, exclusive - inner * calls - outer * nested)),
                "raw_inclusive": inclusive,
                "raw_exclusive": exclusive,
            }
        if total is not None:
            corrected_total = max(0.0, total - (inner + outer) * _COUNTER)
    elif MODE == "observe":
        for rid, (calls, samples, skipped) in _OBS.items():
            regions[rid] = {"calls": calls, "recorded": len(samples), "unconvertible": skipped, "samples": samples}
    return {
        "mode": MODE,
        "total_time": total,
        "corrected_total_time": corrected_total,
        "calibration": {"inner": _CALIBRATION[0], "outer": _CALIBRATION[1]} if MODE == "profile" else None,
        "exit_code": _EXIT_CODE,
        "error": _ERROR,
        "regions": regions,
    }


def dump() -> None:
    """Write `records()` to the output path once (also registered with atexit)."""
    global _DUMPED
    if _DUMPED or not _OUT:
        return
    _DUMPED = True
    tmp = _OUT + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(records(), handle)
    os.replace(tmp, _OUT)


def _remap(tree: "Any", linemap: list) -> None:
    """Give every node of the instrumented AST its line (and column) in the user's file."""
    import ast

    def where(line: int) -> tuple:
        if 1 <= line <= len(linemap):
            return linemap[line - 1]
        return (line, 0)

    node: Any
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or node.lineno is None:
            continue
        line, shift = where(node.lineno)
        node.lineno = line
        if getattr(node, "col_offset", None) is not None:
            node.col_offset = max(0, node.col_offset - shift)
        end = getattr(node, "end_lineno", None)
        if end is not None:
            end_line, end_shift = where(end)
            node.end_lineno = max(end_line, line)
            if getattr(node, "end_col_offset", None) is not None:
                node.end_col_offset = max(0, node.end_col_offset - end_shift)
                if node.end_lineno == node.lineno and node.end_col_offset < node.col_offset:
                    node.end_col_offset = node.col_offset


def _compile_target(target: dict, filename: str) -> "CodeType":
    """Code object of an instrumented target file, carrying the user's file name and lines."""
    import ast

    with open(target["instrumented"], encoding="utf-8") as handle:
        text = handle.read()
    tree = ast.parse(text, filename)
    _remap(tree, target["linemap"])
    return compile(tree, filename, "exec", dont_inherit=True)


def _install_finder(targets: dict) -> None:
    """Serve instrumented code for target files imported as modules (never writes bytecode)."""
    import importlib.abc
    import importlib.machinery
    import importlib.util

    class Loader(importlib.abc.Loader):
        def __init__(self, origin: str, target: dict) -> None:
            self.origin = origin
            self.target = target

        def create_module(self, spec):  # type: ignore[no-untyped-def]
            return None

        def get_code(self, fullname):  # type: ignore[no-untyped-def]
            return _compile_target(self.target, self.origin)

        def get_source(self, fullname):  # type: ignore[no-untyped-def]
            with open(self.origin, encoding="utf-8") as handle:
                return handle.read()

        def is_package(self, fullname):  # type: ignore[no-untyped-def]
            return os.path.basename(self.origin) == "__init__.py"

        def get_filename(self, fullname):  # type: ignore[no-untyped-def]
            return self.origin

        def exec_module(self, module):  # type: ignore[no-untyped-def]
            exec(self.get_code(module.__name__), module.__dict__)

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or not spec.origin:
                return None
            origin = os.path.realpath(spec.origin)
            entry = targets.get(origin)
            if entry is None:
                return None
            return importlib.util.spec_from_file_location(
                fullname, spec.origin, loader=Loader(spec.origin, entry),
                submodule_search_locations=spec.submodule_search_locations,
            )

    sys.meta_path.insert(0, Finder())


def _configure(plan: dict) -> None:
    global MODE, _OUT, _INPUTS, _CAP, _RNG
    MODE = plan["mode"]
    _OUT = plan["out"]
    _INPUTS = {rid: tuple(info.get("inputs", ())) for rid, info in plan.get("regions", {}).items()}
    extra = plan.get("extra") or {}
    _CAP = int(extra.get("cap", 1000))
    _RNG = random.Random(int(extra.get("seed", 0)))
    atexit.register(dump)


def bootstrap(plan_path: str) -> None:
    """Run the planned program as ``python script args`` / ``python -m module args`` would."""
    global _TOTAL_TIME, _EXIT_CODE, _ERROR
    import traceback
    import types

    with open(plan_path, encoding="utf-8") as handle:
        plan = json.load(handle)
    _configure(plan)
    if MODE == "profile":
        global _CALIBRATION
        _CALIBRATION = calibrate()
    targets = plan.get("targets", {})
    if targets:
        _install_finder(targets)
    start = _clock()
    try:
        try:
            if plan.get("module"):
                import runpy

                sys.argv = ["-m"] + list(plan["argv"])  # runpy replaces argv[0] with the file
                sys.path[0] = os.getcwd()
                runpy.run_module(plan["module"], run_name="__main__", alter_sys=True)
            else:
                script = plan["script"]
                sys.argv = [script] + list(plan["argv"])
                sys.path[0] = os.path.dirname(os.path.abspath(script))
                real = os.path.realpath(script)
                if real in targets:
                    code = _compile_target(targets[real], os.path.abspath(script))
                else:
                    with open(script, "rb") as handle:
                        code = compile(handle.read(), os.path.abspath(script), "exec", dont_inherit=True)
                main = types.ModuleType("__main__")
                main.__file__ = os.path.abspath(script)
                main.__cached__ = None  # type: ignore[attr-defined]
                main.__builtins__ = __builtins__  # type: ignore[attr-defined]
                sys.modules["__main__"] = main
                exec(code, main.__dict__)
            _EXIT_CODE = 0
        finally:
            _TOTAL_TIME = _clock() - start
    except SystemExit as stop:
        code_value = stop.code
        _EXIT_CODE = 0 if code_value is None else (code_value if isinstance(code_value, int) else 1)
        dump()
        raise
    except BaseException as error:  # the user's program failed: report it as Python would
        _EXIT_CODE = 1
        _ERROR = f"{type(error).__name__}: {error}"
        # Drop this bootstrap's own frame so the traceback starts in the user's code.
        tb = error.__traceback__.tb_next if error.__traceback__ is not None else None
        traceback.print_exception(type(error), error, tb)
        dump()
        raise SystemExit(1) from None  # python's status for an uncaught exception; atexit still runs
    dump()
