"""Every diagnostic regionx can emit: one table row per code, in the manner of pyflakes' messages.

A stage never prints: it returns `Diagnostic` values built with `make(code, path, line, col,
**fields)`, and the CLI formats them as ``path:line:col: RXnnn message``.

Code ranges:
  RX0xx  input errors (files, syntax, unknown region, bad options)           -> exit 2
  RX1xx  pragma errors                                                      -> exit 2
  RX2xx  reasons a region is not replaceable                                -> exit 1 where they block a command
  RX3xx  extract / sample
  RX4xx  train / compile
  RX5xx  rewrite
  RX6xx  check / profile
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Diagnostic:
    """One finding about one place in one file."""

    code: str
    path: str
    line: int
    col: int
    message: str
    severity: Severity = "error"

    def format(self) -> str:
        """The one-line form every command prints: ``path:line:col: RXnnn message``."""
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"

    def to_json(self) -> dict[str, Any]:
        """The JSON form used in ``--json`` documents."""
        return {
            "code": self.code,
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "message": self.message,
            "severity": self.severity,
        }


# code -> (severity, message template). Templates use str.format fields.
MESSAGES: dict[str, tuple[Severity, str]] = {
    # input errors
    "RX001": ("error", "no such file: {path}"),
    "RX002": ("error", "is a directory, not a Python file: {path}"),
    "RX003": ("error", "cannot read file: not UTF-8 text ({detail})"),
    "RX004": ("error", "syntax error: {detail}"),
    "RX005": ("error", "unknown region {region!r}; known: {known}"),
    "RX006": ("error", "invalid option: {detail}"),
    "RX007": ("error", "cannot read file: {detail}"),
    "RX008": ("error", "no annotated regions (add a '# regionx:' pragma above a def, for or while)"),
    # pragma errors
    "RX101": ("error", "malformed pragma: {detail}"),
    "RX102": ("error", "unknown distribution {dist!r} for {name!r}; expected one of {known}"),
    "RX103": ("error", "bad arguments for {dist}() of {name!r}: {detail}"),
    "RX104": ("error", "domain given for {name!r}, which is not an input of region {region!r}"),
    "RX105": ("error", "'# regionx: begin' without a matching '# regionx: end'"),
    "RX106": ("error", "'# regionx: end' without a matching '# regionx: begin'"),
    "RX107": ("error", "pragma is not directly above a def, for or while statement"),
    "RX108": ("error", "invalid value for {key!r}: {detail}"),
    "RX109": ("error", "key {key!r} given twice"),
    "RX110": ("error", "unknown key {key!r} (did you mean {suggestion!r}?)"),
    # not replaceable (reasons)
    "RX201": ("warning", "performs I/O: {detail}"),
    "RX202": ("warning", "uses randomness or the clock: {detail}"),
    "RX203": ("warning", "writes a global or nonlocal variable: {detail}"),
    "RX204": ("warning", "is a generator or coroutine: {detail}"),
    "RX205": ("warning", "control flow leaves the region: {detail}"),
    "RX206": ("warning", "has no inputs"),
    "RX207": ("warning", "has no outputs"),
    "RX208": ("warning", "output size varies: {detail}"),
    "RX209": ("warning", "calls a function that cannot be shown pure: {detail}"),
    "RX210": ("warning", "is a method: its {name!r} is a {owner} object, not numbers regionx can sample (make it a function of numbers)"),
    "RX212": ("warning", "may hold the same object as {b!r} while changing {a!r} ({detail}); the surrogate would be trained on separate objects"),
    "RX211": ("warning", "writes through {expr!r}, whose object regionx cannot trace ({detail}): it may change an input"),
    # extract / sample
    "RX301": ("error", "cannot extract region {region!r}: {detail}"),
    "RX302": ("error", "require={require!r} accepted {accepted} of {drawn} draws (< 1%): widen the domain or relax the predicate"),
    "RX303": ("error", "no domain for input {name!r} of region {region!r}: add it to the pragma or pass --domain {name}=SPEC"),
    "RX304": ("error", "bad --domain {spec!r}: {detail}"),
    "RX305": ("error", "no valid samples: {detail}"),
    "RX306": ("error", "observed run failed: {detail}"),
    "RX307": ("error", "invalid dataset: {detail}"),
    "RX308": ("error", "region {region!r} does not behave as analysed: {detail}"),
    # train / compile
    "RX401": ("error", "no topology reached {target:.1%} of test points within tolerance {tolerance:g} ({metric}) "
                       "by the 95% lower confidence bound; best: {best}"),
    "RX402": ("error", "training is unavailable: {detail}"),
    "RX403": ("error", "bad topology list {spec!r}: {detail}"),
    # rewrite
    "RX501": ("error", "region {region!r} is already rewritten; run 'regionx rewrite --revert' first"),
    "RX502": ("error", "surrogate is not profitable: {detail}; use --force to rewrite anyway"),
    "RX503": ("error", "artifact problem: {detail}"),
    "RX504": ("error", "nothing to revert: no regionx rewrite markers in this file"),
    "RX505": ("error", "cannot rewrite region {region!r}: {detail}"),
    # check / profile
    "RX601": ("error", "missing artifact for region {region!r}: {detail}"),
    "RX602": ("error", "stale: region {region!r} changed since its surrogate was trained: {detail}"),
    "RX603": ("error", "accuracy lost for region {region!r}: {detail}"),
    "RX604": ("error", "patched file is out of date: {detail}"),
    "RX605": ("error", "profiled program failed: {detail}"),
}


def make(code: str, path: str, line: int = 1, col: int = 1, **fields: Any) -> Diagnostic:
    """Build the diagnostic for `code` at `path:line:col`, filling its template with `fields`."""
    severity, template = MESSAGES[code]
    message = template.format(path=path, **fields)
    return Diagnostic(code=code, path=path, line=line, col=col, message=message, severity=severity)


# Codes outside RX0xx/RX1xx that are still usage or input errors (a bad option value, a missing
# domain, an unreadable dataset), hence exit 2.
USAGE_CODES = frozenset({"RX303", "RX304", "RX307", "RX403"})


def exit_status(diagnostics: "list[Diagnostic] | tuple[Diagnostic, ...]") -> int:
    """2 for any input, usage or pragma error, else 1 for any other error, else 0.

    (The CLI adds 3 for an internal error and 130 when interrupted: regionx.cli.main.)
    """
    codes = [d.code for d in diagnostics if d.severity == "error"]
    if any(c.startswith(("RX0", "RX1")) or c in USAGE_CODES for c in codes):
        return 2
    return 1 if codes else 0
