"""The one instrumentation mechanism: wrap regions in enter/exit hook calls and run the program.

`instrument_source` rewrites a file's text with libcst so that each region runs inside::

    _regionx_tok_N = _regionx_hook.enter('<region id>')
    try:
        <region>
    finally:
        _regionx_hook.exit('<region id>', _regionx_tok_N)

A function region has its body wrapped (after its docstring); a loop region its statement; a
block region its statements. Everything else is unchanged. `run_instrumented` writes
instrumented copies of the target files into a temporary directory (the user's files are
never touched), and runs the command through the stdlib-only bootstrap in
`regionx._regionx_hook`, which serves the copies under the original file names and line
numbers (tracebacks point at the user's code), times the run and records per-region data:

- mode "profile": calls, inclusive and exclusive seconds per region;
- mode "observe": the values of each region's inputs at entry (reservoir sample of
  ``extra['cap']`` calls, seeded by ``extra['seed']``);
- mode "plain": no regions, only the program's total time (the overhead baseline).
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import libcst as cst

from regionx import diagnostics as dx
from regionx.analysis.locate import Located, RegionLocator
from regionx.analysis.source import read_source
from regionx.types import InstrumentedRun, Region

HOOK_FILE = Path(__file__).with_name("_regionx_hook.py")
MODES = ("profile", "observe", "plain")
_INTERPRETER_FLAGS_WITH_ARG = ("-X", "-W", "-Q")


class _Wrapper(cst.CSTTransformer):
    """Wraps the statements of each located region in enter/try/finally-exit hook calls."""

    def __init__(self, located: Sequence[Located], hook_module: str) -> None:
        super().__init__()
        self.hook = hook_module
        # the def or loop node -> its region (the first region, if two name the same node)
        self.nodes: dict[int, Region] = {}
        for found in located:
            if found.kind in ("function", "loop"):
                self.nodes.setdefault(id(found.node), found.region)
        self.blocks = [found for found in located if found.kind == "block"]
        self.wrapped: set[str] = set()
        self.counter = 0

    def _region_of(self, node: cst.CSTNode) -> Region | None:
        region = self.nodes.get(id(node))
        return None if region is None or region.id in self.wrapped else region

    # -- helpers ---------------------------------------------------------------------------
    def _wrap(self, region: Region, body: Sequence[cst.BaseStatement], *, enter_inside: bool) -> list[cst.BaseStatement]:
        """``token = enter(id); try: body finally: exit(id, token)``; the body's leading comments stay above.

        With `enter_inside` the enter call is the try's first statement, so the result is one
        statement (loops and blocks: the enclosing body keeps its length).
        """
        self.counter += 1
        self.wrapped.add(region.id)
        token = f"_regionx_tok_{self.counter}"
        rid = repr(region.id)
        first = body[0]
        leading = getattr(first, "leading_lines", ())
        inner = [first.with_changes(leading_lines=()) if leading else first, *body[1:]]
        enter = cst.parse_statement(f"{token} = {self.hook}.enter({rid})\n")
        exit_ = cst.parse_statement(f"{self.hook}.exit({rid}, {token})\n")
        finalbody = cst.Finally(body=cst.IndentedBlock(body=[exit_]))
        if enter_inside:
            return [cst.Try(body=cst.IndentedBlock(body=[enter, *inner]), finalbody=finalbody, leading_lines=leading)]
        return [enter.with_changes(leading_lines=leading), cst.Try(body=cst.IndentedBlock(body=inner), finalbody=finalbody)]

    # -- functions -------------------------------------------------------------------------
    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        region = self._region_of(original_node)
        if region is None:
            return updated_node
        body = updated_node.body
        if isinstance(body, cst.SimpleStatementSuite):
            # 'def f(x): return x' -> an indented block we can wrap
            statements: list[cst.BaseStatement] = [cst.SimpleStatementLine(body=list(body.body))]  # type: ignore[arg-type]
        else:
            statements = list(body.body)  # type: ignore[arg-type]
        head: list[cst.BaseStatement] = []
        if statements and _is_docstring(statements[0]):
            head, statements = statements[:1], statements[1:]
        if not statements:
            statements = [cst.SimpleStatementLine(body=[cst.Pass()])]
        return updated_node.with_changes(body=cst.IndentedBlock(body=[*head, *self._wrap(region, statements, enter_inside=False)]))

    # -- loops -----------------------------------------------------------------------------
    def _loop(self, original: cst.CSTNode, updated: cst.BaseStatement) -> cst.BaseStatement:
        region = self._region_of(original)
        if region is None:
            return updated
        return self._wrap(region, [updated], enter_inside=True)[0]

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> Any:
        return self._loop(original_node, updated_node)

    def leave_While(self, original_node: cst.While, updated_node: cst.While) -> Any:
        return self._loop(original_node, updated_node)

    # -- blocks (runs of consecutive statements of one body) --------------------------------
    def _blocks(self, original: cst.CSTNode, statements: Sequence[cst.BaseStatement], updated: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement] | None:
        located = [b for b in self.blocks if b.region.id not in self.wrapped and b.body is original]
        if not located or len(statements) != len(updated):
            return None
        result = list(updated)
        slots = list(statements)  # the original statement standing for each entry of `result`
        # Innermost (shortest) first; a wrapped run becomes one statement, standing for its first.
        for found in sorted(located, key=lambda b: b.region.end_line - b.region.start_line):
            members = {id(s) for s in found.statements}
            run = [k for k, s in enumerate(slots) if id(s) in members]
            if not run or run != list(range(run[0], run[-1] + 1)):
                continue
            first, last = run[0], run[-1]
            result[first : last + 1] = self._wrap(found.region, result[first : last + 1], enter_inside=True)
            slots = [*slots[:first], slots[first], *slots[last + 1 :]]
        return result

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        body = self._blocks(original_node, original_node.body, updated_node.body)
        return updated_node if body is None else updated_node.with_changes(body=body)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        body = self._blocks(original_node, original_node.body, updated_node.body)
        return updated_node if body is None else updated_node.with_changes(body=body)


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _is_future_import(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and any(isinstance(s, cst.ImportFrom) and isinstance(s.module, cst.Name) and s.module.value == "__future__" for s in statement.body)
    )


def _add_import(module: cst.Module, hook_module: str) -> cst.Module:
    """Insert ``import <hook>`` after the module docstring and ``from __future__`` imports."""
    body = list(module.body)
    k = 0
    if body and _is_docstring(body[0]):
        k = 1
    while k < len(body) and _is_future_import(body[k]):
        k += 1
    body.insert(k, cst.parse_statement(f"import {hook_module}\n"))
    return module.with_changes(body=body)


def instrument_source(text: str, regions: Sequence[Region], *, hook_module: str = "_regionx_hook") -> str:
    """Return `text` with each region wrapped in ``hook.enter(id)`` / ``hook.exit(id, token)`` calls.

    Function regions have their body wrapped (a docstring stays first), loop regions their
    ``for``/``while`` statement, block regions their run of statements. Regions are found by
    `regionx.analysis.locate` (a function by qualname and line, a loop by line, a block by its
    lines); regions it does not find are left out. Raises
    ``libcst.ParserSyntaxError`` if `text` is not valid Python.
    """
    if not hook_module.isidentifier():
        raise ValueError(f"hook_module must be an identifier, not {hook_module!r}")
    module = cst.parse_module(text)
    if not regions:
        return text
    locator = RegionLocator(module)
    located = [found for found in map(locator.locate, regions) if isinstance(found, Located)]
    wrapper = _Wrapper(located, hook_module)
    updated = module.visit(wrapper)
    if not wrapper.wrapped:
        return text
    return _add_import(updated, hook_module).code


def line_map(original: str, instrumented: str) -> list[tuple[int, int]]:
    """For each line of `instrumented`: (line in `original`, added indentation), by a line diff.

    Lines the instrumentation inserted map to the original line they precede (``import``,
    enter, ``try:``) or follow (``finally:``, exit); changed lines (a one-line ``def`` split in
    two) map to the lines they replace. Code compiled from the instrumented text with this map
    reports the user's line numbers.
    """
    orig_lines = original.splitlines()
    new_lines = instrumented.splitlines()
    matcher = difflib.SequenceMatcher(None, [s.strip() for s in orig_lines], [s.strip() for s in new_lines], autojunk=False)
    result: list[tuple[int, int]] = [(1, 0)] * len(new_lines)
    last = max(1, len(orig_lines))
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for j in range(j1, j2):
            if tag == "equal":
                i = i1 + (j - j1)
                shift = _indent(new_lines[j]) - _indent(orig_lines[i])
                result[j] = (i + 1, max(0, shift))
            elif tag == "replace":
                result[j] = (min(i1 + min(j - j1, i2 - i1 - 1), last - 1) + 1, 0)
            elif tag == "insert":
                # before the original line i1 (1-based i1 + 1), or after the one before it
                following = i1 + 1 if _is_opening(new_lines[j]) else i1
                result[j] = (min(max(1, following), last), 0)
    return result


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_opening(line: str) -> bool:
    stripped = line.strip()
    return stripped == "try:" or stripped.startswith("_regionx_tok_") or stripped.startswith("import ")


# -- running ---------------------------------------------------------------------------------

class CommandError(ValueError):
    """The command is not a Python program regionx can run."""


def parse_command(command: Sequence[str] | str) -> tuple[list[str], str | None, str | None, list[str]]:
    """Split ``python [flags] (SCRIPT | -m MODULE) [ARGS]`` into (interpreter+flags, script, module, args).

    A command starting with a ``.py`` file runs under the current interpreter. Raises
    CommandError for anything else (``-c`` code, non-Python commands, a missing script).
    """
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise CommandError("empty command")
    if argv[0].endswith(".py"):
        return [sys.executable], argv[0], None, argv[1:]
    exe = argv[0]
    name = os.path.basename(exe)
    if not (name.startswith("python") or os.path.abspath(exe) == os.path.abspath(sys.executable)):
        raise CommandError(f"expected 'python SCRIPT [ARGS]' or 'python -m MODULE [ARGS]', got {argv[0]!r}")
    resolved = exe if os.sep in exe else (shutil.which(exe) or (sys.executable if exe in ("python", "python3") else None))
    if resolved is None:
        raise CommandError(f"interpreter not found: {exe!r}")
    interp = [resolved]
    k = 1
    while k < len(argv):
        arg = argv[k]
        if arg == "-m":
            if k + 1 >= len(argv):
                raise CommandError("-m needs a module name")
            return interp, None, argv[k + 1], argv[k + 2 :]
        if arg == "-c":
            raise CommandError("'python -c CODE' has no file to instrument; profile a script or -m module")
        if arg == "-":
            raise CommandError("a program read from stdin cannot be instrumented")
        if arg.startswith("-") and len(arg) > 1:
            interp.append(arg)
            if arg in _INTERPRETER_FLAGS_WITH_ARG and k + 1 < len(argv):
                interp.append(argv[k + 1])
                k += 1
            k += 1
            continue
        return interp, arg, None, argv[k + 1 :]
    raise CommandError("no script given after the interpreter")


def run_instrumented(
    command: list[str] | str,
    files: Mapping[str, Sequence[Region]],
    *,
    mode: str,
    cwd: str | None = None,
    timeout: float | None = None,
    extra: dict | None = None,
) -> InstrumentedRun:
    """Run `command` with the regions of `files` (path -> regions) instrumented in mode `mode`.

    The user's files are read, never written: instrumented copies go to a temporary directory
    that is removed afterwards. The program's stdout/stderr are captured. A command that is not
    a Python program, or an unreadable/unparsable target, gives an RX006/RX007/RX004 diagnostic
    and no run; a failing program is reported by its returncode/error (the caller decides
    whether that is RX605 or RX306). `extra` is passed to the hook (observe: ``cap``, ``seed``).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    argv = tuple(shlex.split(command) if isinstance(command, str) else command)
    workdir = os.path.abspath(cwd or os.getcwd())

    def failed(diag: dx.Diagnostic) -> InstrumentedRun:
        return InstrumentedRun(command=argv, mode=mode, returncode=-1, stdout="", stderr="", total_time=None,
                               wall_time=0.0, diagnostics=(diag,))

    try:
        interp, script, modname, args = parse_command(list(argv))
    except CommandError as error:
        return failed(dx.make("RX006", "<command>", detail=str(error)))
    if script is not None and not os.path.isfile(os.path.join(workdir, script)):
        return failed(dx.make("RX001", script))

    with tempfile.TemporaryDirectory(prefix="regionx-run-") as tmp:
        targets: dict[str, dict[str, Any]] = {}
        plan_regions: dict[str, dict[str, Any]] = {}
        for index, (path, regions) in enumerate(files.items()):
            if mode == "plain" or not regions:
                continue
            full = os.path.join(workdir, path)
            text, problems = read_source(full)
            if text is None:  # RX001 missing, RX002 a directory, RX003 not UTF-8, RX007 unreadable
                return failed(replace(problems[0], path=path))
            try:
                new_text = instrument_source(text, regions)
            except cst.ParserSyntaxError as error:
                return failed(dx.make("RX004", path, error.raw_line, error.raw_column + 1, detail=error.message))
            copy = os.path.join(tmp, f"{index}_{os.path.basename(path)}")
            Path(copy).write_text(new_text, encoding="utf-8")
            targets[os.path.realpath(full)] = {"instrumented": copy, "linemap": line_map(text, new_text)}
            for region in regions:
                plan_regions[region.id] = {"path": path, "kind": region.kind, "inputs": list(region.inputs)}
        hook_copy = os.path.join(tmp, "_regionx_hook.py")
        shutil.copyfile(HOOK_FILE, hook_copy)
        out = os.path.join(tmp, "records.json")
        plan = {"mode": mode, "out": out, "script": script, "module": modname, "argv": args,
                "targets": targets, "regions": plan_regions, "extra": dict(extra or {})}
        plan_path = os.path.join(tmp, "plan.json")
        Path(plan_path).write_text(json.dumps(plan), encoding="utf-8")
        boot = (
            "import importlib.util as _u, sys as _s\n"
            f"_p = _u.spec_from_file_location('_regionx_hook', {hook_copy!r})\n"
            "_m = _u.module_from_spec(_p); _s.modules['_regionx_hook'] = _m; _p.loader.exec_module(_m)\n"
            f"del _u, _s, _p\n_m.bootstrap({plan_path!r})\n"
        )
        full_cmd = [*interp, "-c", boot, *([script] if script is not None else [modname]), *args]
        env = dict(os.environ)
        env["PYTHONDONTWRITEBYTECODE"] = env.get("PYTHONDONTWRITEBYTECODE", "")
        start = time.perf_counter()
        timed_out = False
        try:
            proc = subprocess.run(full_cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
            returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as error:
            timed_out = True
            returncode = -9
            stdout = _text(error.stdout)
            stderr = _text(error.stderr)
        except OSError as error:
            return failed(dx.make("RX006", "<command>", detail=f"cannot run {interp[0]}: {error}"))
        wall = time.perf_counter() - start
        records: dict[str, Any] = {}
        if os.path.exists(out):
            with open(out, encoding="utf-8") as handle:
                records = json.load(handle)
    return InstrumentedRun(
        command=argv, mode=mode, returncode=returncode, stdout=stdout, stderr=stderr,
        total_time=records.get("total_time"), wall_time=wall, regions=records.get("regions", {}),
        error=records.get("error"), timed_out=timed_out, corrected_total_time=records.get("corrected_total_time"),
    )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data
