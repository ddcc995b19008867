"""Parse ``# regionx:`` comments into `Pragma` values (with `ast`, never eval).

Grammar (docs/design.md, "Pragma grammar"): one or more consecutive comment lines starting with
``# regionx:`` directly above a ``def`` (above its decorators), a ``for`` or a ``while``; or a
pair ``# regionx: begin ...`` / ``# regionx: end`` around consecutive statements of one block.
The text after ``regionx:`` is a comma-separated list of Python keyword arguments.

Domains: ``uniform(lo, hi)``, ``loguniform(lo, hi)`` (0 < lo < hi), ``normal(mean, std)``,
``integers(lo, hi)`` (both ends inclusive), ``choice([v, ...])``; each takes an optional
``shape=(...)`` for arrays.
"""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from dataclasses import dataclass, field
from typing import Any

from regionx.diagnostics import Diagnostic, make
from regionx.types import DISTRIBUTIONS, DomainSpec, Pragma

PREFIX = "regionx:"
RESERVED = ("name", "tolerance", "metric", "rtol", "atol", "require", "accept", "samples", "seed", "pure")
# Two ways to state the accuracy criterion (regionx.criterion); a pragma uses one of them.
_SHORTHAND, _ISCLOSE = ("tolerance", "metric"), ("rtol", "atol")
_STATEMENT_STARTS = ("def ", "async def ", "@", "for ", "async for ", "while ", "while(", "for(")


class PragmaError(Exception):
    """A pragma problem: a diagnostic code, its template fields, and where in the pragma text."""

    def __init__(self, code: str, offset: int | None = None, **fields: Any) -> None:
        super().__init__(code)
        self.code = code
        self.offset = offset  # character offset into the joined pragma text, if known
        self.fields = fields

    def diagnostic(self, path: str, line: int, col: int) -> Diagnostic:
        """This error as a diagnostic at `path:line:col`."""
        return make(self.code, path, line, col, **self.fields)


@dataclass
class _Comment:
    line: int
    col: int  # 1-based column of '#'
    body: str  # text after 'regionx:', stripped


@dataclass
class _Group:
    """Consecutive pragma comment lines, joined for one ast parse."""

    comments: list[_Comment] = field(default_factory=list)

    def joined(self) -> tuple[str, list[int]]:
        """The bodies joined with spaces, and the offset where each line starts."""
        text, starts = "", []
        for c in self.comments:
            starts.append(len(text))
            text += c.body + " "
        return text, starts

    def position(self, offset: int | None) -> tuple[int, int]:
        """Map an offset in the joined text back to (line, col) in the file."""
        first = self.comments[0]
        if offset is None:
            return first.line, first.col
        _, starts = self.joined()
        for comment, start in reversed(list(zip(self.comments, starts))):
            if offset >= start:
                # col: '#', ' regionx:' prefix, then the body; approximate by the comment column.
                return comment.line, comment.col + len("# " + PREFIX) + 1 + (offset - start)
        return first.line, first.col


def _pragma_comments(text: str) -> list[_Comment]:
    """Every own-line ``# regionx:`` comment, found with tokenize (so strings never match)."""
    found: list[_Comment] = []
    lines = text.splitlines()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type != tokenize.COMMENT:
                continue
            row, col = tok.start
            if lines[row - 1][:col].strip():
                continue  # a trailing comment after code is not a pragma
            body = tok.string[1:].strip()
            if body.startswith(PREFIX):
                found.append(_Comment(row, col + 1, body[len(PREFIX):].strip()))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # the syntax error itself is reported by the analyzer
    return found


def _groups(comments: list[_Comment]) -> list[_Group]:
    groups: list[_Group] = []
    for c in comments:
        word = c.body.split(None, 1)[0] if c.body else ""
        starts_new = word in ("begin", "end") or not groups
        if not starts_new:
            prev = groups[-1].comments[-1]
            prev_word = prev.body.split(None, 1)[0] if prev.body else ""
            starts_new = prev.line + 1 != c.line or prev_word == "end"
        if starts_new:
            groups.append(_Group([c]))
        else:
            groups[-1].comments.append(c)
    return groups


def _literal(node: ast.expr, what: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise PragmaError("RX101", node.col_offset, detail=f"{what} must be a literal, got {ast.unparse(node)!r}") from None


def _number(node: ast.expr, key: str) -> float:
    value = _literal(node, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PragmaError("RX108", node.col_offset, key=key, detail=f"expected a number, got {ast.unparse(node)!r}")
    return float(value)


def _expression_text(node: ast.expr, key: str) -> str:
    value = _literal(node, key)
    if not isinstance(value, str):
        raise PragmaError("RX108", node.col_offset, key=key, detail="expected a string holding a Python expression")
    try:
        ast.parse(value, mode="eval")
    except SyntaxError as exc:
        raise PragmaError("RX108", node.col_offset, key=key, detail=f"not a Python expression: {exc.msg}") from None
    return value


def domain_from_node(name: str, node: ast.expr) -> DomainSpec:
    """Validate one domain call node (``uniform(0, 1, shape=(3,))``) into a DomainSpec."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise PragmaError("RX108", node.col_offset, key=name,
                          detail=f"expected a distribution such as uniform(lo, hi), got {ast.unparse(node)!r}")
    dist = node.func.id
    if dist not in DISTRIBUTIONS:
        raise PragmaError("RX102", node.col_offset, dist=dist, name=name, known=", ".join(DISTRIBUTIONS))
    args = tuple(_literal(a, f"argument of {dist}()") for a in node.args)
    if dist == "choice" and len(args) == 1 and isinstance(args[0], list):
        args = (tuple(args[0]),)  # keep DomainSpec hashable
    shape: tuple[int, ...] = ()
    for kw in node.keywords:
        if kw.arg != "shape":
            raise PragmaError("RX103", kw.value.col_offset, dist=dist, name=name, detail=f"unknown keyword {kw.arg!r} (only shape=)")
        raw = _literal(kw.value, "shape")
        raw = (raw,) if isinstance(raw, int) else raw
        if not isinstance(raw, tuple) or not raw or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in raw):
            raise PragmaError("RX103", kw.value.col_offset, dist=dist, name=name, detail="shape must be a tuple of positive ints")
        shape = tuple(raw)
    _check_arguments(dist, name, args, node.col_offset)
    return DomainSpec(name=name, dist=dist, args=args, shape=shape, text=ast.unparse(node))


def _check_arguments(dist: str, name: str, args: tuple[Any, ...], offset: int) -> None:
    def bad(detail: str) -> PragmaError:
        return PragmaError("RX103", offset, dist=dist, name=name, detail=detail)

    if dist == "choice":
        if len(args) != 1 or not isinstance(args[0], (list, tuple)) or not args[0]:
            raise bad("expected one non-empty list of values, e.g. choice([1, 2, 4])")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in args[0]):
            raise bad("choices must be numbers")
        return
    if len(args) != 2:
        raise bad(f"expected 2 arguments, got {len(args)}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in args):
        raise bad("arguments must be numbers")
    lo, hi = args
    if dist == "uniform" and not lo < hi:
        raise bad("need lo < hi")
    if dist == "loguniform" and not 0 < lo < hi:
        raise bad("need 0 < lo < hi")
    if dist == "normal" and not hi > 0:
        raise bad("need std > 0")
    if dist == "integers" and not (isinstance(lo, int) and isinstance(hi, int) and lo <= hi):
        raise bad("need integers lo <= hi (both inclusive)")


def parse_domain(name: str, text: str) -> DomainSpec:
    """Parse a domain given as text (``--domain a=uniform(0, 1)``); raises PragmaError."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise PragmaError("RX101", None, detail=f"{text!r}: {exc.msg}") from None
    return domain_from_node(name, node)


def _parse_keywords(body: str) -> list[ast.keyword]:
    try:
        call = ast.parse(f"f({body})", mode="eval").body
    except SyntaxError as exc:
        if "repeated" in (exc.msg or ""):
            key = (exc.text or "").strip()
            raise PragmaError("RX109", None, key=exc.msg.rsplit(":", 1)[-1].strip() or key) from None
        offset = max((exc.offset or 3) - 3, 0)
        raise PragmaError("RX101", offset, detail=exc.msg) from None
    assert isinstance(call, ast.Call)
    if call.args:
        raise PragmaError("RX101", call.args[0].col_offset - 2, detail="expected key=value pairs")
    for kw in call.keywords:
        if kw.arg is None:
            raise PragmaError("RX101", kw.value.col_offset - 2, detail="'**' is not allowed")
        # shift offsets from the 'f(' wrapper back to the joined body
        for node in ast.walk(kw.value):
            if hasattr(node, "col_offset"):
                node.col_offset -= 2
    return call.keywords


def _check_misspelled(kw: ast.keyword) -> None:
    """RX110 for a key that looks like a misspelled reserved key (``tolerence=0.01``).

    Every other key names an input, so only a value that is not a domain call counts: with
    ``tol=uniform(0, 1)`` `tol` stays an input's domain.
    """
    key, value = kw.arg, kw.value
    if key is None or (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)):
        return
    close = difflib.get_close_matches(key, RESERVED, n=1)
    if close:  # kw's offset still counts the 'f(' that _parse_keywords wrapped the body in
        raise PragmaError("RX110", kw.col_offset - 2, key=key, suggestion=close[0])


def _check_criterion(fields: dict[str, Any], key: str, value: ast.expr) -> None:
    """RX108 when the pragma mixes the shorthand (tolerance=, metric=) with rtol=/atol=, or
    asks for no error at all (rtol=0 with atol missing or 0)."""
    if key in _SHORTHAND + _ISCLOSE and any(k in fields for k in _SHORTHAND) and any(k in fields for k in _ISCLOSE):
        raise PragmaError("RX108", value.col_offset, key=key,
                          detail="give either tolerance=/metric= or rtol=/atol= (numpy.isclose's), not both")
    if key in _ISCLOSE and fields.get("rtol") == 0 and "atol" in fields and fields["atol"] == 0:
        raise PragmaError("RX108", value.col_offset, key=key, detail="rtol=0 and atol=0 allow no error at all")


def _build(group: _Group, body: str, is_block: bool) -> Pragma:
    fields: dict[str, Any] = {}
    domains: list[DomainSpec] = []
    seen: set[str] = set()
    for kw in _parse_keywords(body):
        key, value = kw.arg, kw.value
        assert key is not None
        if key in seen:
            raise PragmaError("RX109", value.col_offset, key=key)
        seen.add(key)
        if key == "name":
            name = value.id if isinstance(value, ast.Name) else _literal(value, "name")
            if not isinstance(name, str) or not name.replace(".", "_").replace(":", "_").replace("@", "_").isidentifier():
                raise PragmaError("RX108", value.col_offset, key=key, detail="expected an identifier")
            fields["name"] = name
        elif key == "tolerance":
            tol = _number(value, key)
            if not tol > 0:
                raise PragmaError("RX108", value.col_offset, key=key, detail="must be > 0")
            fields["tolerance"] = tol
        elif key == "metric":
            metric = value.id if isinstance(value, ast.Name) else _literal(value, key)
            if metric not in ("rel", "abs"):
                raise PragmaError("RX108", value.col_offset, key=key, detail='expected "rel" or "abs"')
            fields["metric"] = metric
        elif key in _ISCLOSE:
            number = _number(value, key)
            if not (number >= 0 and number != float("inf")):
                raise PragmaError("RX108", value.col_offset, key=key, detail="must be a finite number >= 0")
            fields[key] = number
        elif key in ("require", "accept"):
            fields[key] = _expression_text(value, key)
        elif key == "pure":
            vouched = _literal(value, key)
            if not isinstance(vouched, bool):
                raise PragmaError("RX108", value.col_offset, key=key, detail="expected True or False")
            fields["pure"] = vouched
        elif key in ("samples", "seed"):
            number = _literal(value, key)
            if isinstance(number, bool) or not isinstance(number, int) or (key == "samples" and number <= 0):
                raise PragmaError("RX108", value.col_offset, key=key, detail="expected a positive integer" if key == "samples" else "expected an integer")
            fields[key] = number
        else:
            _check_misspelled(kw)
            domains.append(domain_from_node(key, value))
        _check_criterion(fields, key, value)
    if fields.get("rtol") == 0 and "atol" not in fields:
        raise PragmaError("RX108", None, key="rtol", detail="rtol=0 needs atol= > 0 (or use metric=\"abs\")")
    first, last = group.comments[0], group.comments[-1]
    return Pragma(line=first.line, col=first.col, end_line=last.line, domains=tuple(domains), is_block=is_block, **fields)


def parse_pragmas(text: str, path: str) -> tuple[list[Pragma], list[Diagnostic]]:
    """All pragmas of a module, and a diagnostic for each malformed or misplaced one."""
    lines = text.splitlines()
    pragmas: list[Pragma] = []
    diagnostics: list[Diagnostic] = []
    open_blocks: list[tuple[_Group, Pragma]] = []  # begin pragmas awaiting their end

    def next_code_line(after: int, step: int = 1) -> int | None:
        index = after - 1 + step
        while 0 <= index < len(lines):
            stripped = lines[index].strip()
            if stripped and not stripped.startswith("#"):
                return index + 1
            index += step
        return None

    for group in _groups(_pragma_comments(text)):
        head = group.comments[0]
        word, _, rest = head.body.partition(" ")
        try:
            if word == "end":
                if len(group.comments) > 1 or rest.strip():
                    raise PragmaError("RX101", None, detail="'# regionx: end' takes no arguments")
                if not open_blocks:
                    raise PragmaError("RX106")
                begin_group, pragma = open_blocks.pop()
                start = next_code_line(pragma.end_line)
                stop = next_code_line(head.line, step=-1)
                if start is None or stop is None or start > stop:
                    raise PragmaError("RX101", None, detail="empty begin/end block")
                pragmas.append(_replace(pragma, block_start=start, block_end=stop))
                continue
            if word == "begin":
                head.body = rest  # the keywords after 'begin'; offsets then map back correctly
                body, _ = group.joined()
                pragma = _build(group, body, True)
                open_blocks.append((group, pragma))
                continue
            body, _ = group.joined()
            pragma = _build(group, body, False)
            target = pragma.end_line + 1
            stmt = lines[target - 1].lstrip() if target <= len(lines) else ""
            if not stmt.startswith(_STATEMENT_STARTS):
                raise PragmaError("RX107")
            pragmas.append(_replace(pragma, target_line=target))
        except PragmaError as err:
            line, col = group.position(err.offset)
            diagnostics.append(err.diagnostic(path, line, col))
    for group, _ in open_blocks:
        head = group.comments[0]
        diagnostics.append(make("RX105", path, head.line, head.col))
    pragmas.sort(key=lambda p: p.line)
    return pragmas, diagnostics


def _replace(pragma: Pragma, **changes: Any) -> Pragma:
    from dataclasses import replace

    return replace(pragma, **changes)
