"""What the rewrite batches: sites (a statement and its form), what stays per call, the cost model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst

# Fixed cost of one batched call besides its rows (argument checks, numpy call overheads): ~33 us
# on the benchmark machine (runtime.batch on 32..1,024 rows of the cubic surrogate, the intercept).
BATCH_FIXED_SECONDS = 30e-6


# Consumers that take a generator expression or map() apart at once, in order: precomputing
# the values they would pull changes nothing. Builtins by name, numpy functions by dotted path.
CONSUMERS = frozenset({"builtins.list", "builtins.tuple", "builtins.set", "builtins.sorted", "builtins.sum",
                       "builtins.min", "builtins.max", "numpy.array", "numpy.asarray", "numpy.fromiter"})


# Reasons from the analysis that make a same-module function impure (its calls cannot be moved).
IMPURE_CODES = frozenset({"RX201", "RX202", "RX203", "RX204", "RX209", "RX210", "RX211"})


# Cost model of the Python-level work around the calls (CPython 3.11 on the benchmark machine,
# benchmarks/results/batch_loops.md): per counted operation (a name, literal, operator, subscript,
# comparison or call), per loop iteration, and per row of a distributed loop's first pass (its
# iteration, the appends, handing the answer over). The rewrite predicts a batched loop's speedup
# with it, and refuses a distribution whose first pass costs more than the calls it saves.
OP_SECONDS = 3e-9


ITER_SECONDS = 10e-9


PASS_SECONDS = 40e-9


@dataclass(frozen=True)
class Columns:
    """The column-wise form: arguments for `regionx.runtime.batch`, as code."""

    loop: str  # range | zip | enumerate | for | grid
    rows: str  # what the loop walks: its range (a tuple of two for a grid), or a tuple of sequences
    columns: list[str]  # per call argument: the sequence (or 2-D container) read, or the invariant value
    how: list[str]  # per call argument: the runtime's kind ("r", "f", "[0]", ",1", "*0/2", "o", "i", "[j]")
    store: str  # index | add | append | grid | grid, | value | set | array
    out: str | None  # the container(s) stored into (a tuple display for a tuple store)
    target: str | None  # the loop target, assigned its last value after the batch (None: a comprehension)


@dataclass
class Site:
    """One statement of a block to batch, and how (see the module docstring)."""

    stmt: cst.BaseStatement  # the loop, or the simple statement holding a comprehension / map()
    line: int
    form: str
    call: cst.Call | None  # the call of the function (None for map(f, ...))
    expr: cst.BaseExpression | None = None  # the comprehension or map() replaced by the answers
    columns: Columns | None = None  # the column-wise form
    rows: str = ""  # general: a comprehension of argument tuples; distributed: the tuple of arguments
    seqs: list[str] = field(default_factory=list)  # sequences that must be walkable twice
    counted: list[str] = field(default_factory=list)  # otherwise: ranges whose length counts the rows
    reads: list[str] = field(default_factory=list)  # containers the arguments read
    writes: list[str] = field(default_factory=list)  # containers the loop writes
    first_pass: list[cst.BaseStatement] = field(default_factory=list)  # distributed: the argument slice
    extra_seconds: float = 0.0  # per row, beyond the batch itself (distributed: the first pass)
    loop_seconds: float = 0.0  # per row, the original loop's own work besides the call (cost model)

    def saved_per_row(self, exact_seconds: float, element_seconds: float) -> float:
        """Seconds a batched row saves over the original (negative: it costs more). The loop's
        other work stays, so with the original loop's measured time T over n rows the patched
        loop takes T - n * saved_per_row."""
        if self.form == "distributed":
            return exact_seconds - element_seconds - self.extra_seconds
        return exact_seconds + self.loop_seconds - element_seconds - self.extra_seconds

    def per_row_seconds(self, element_seconds: float) -> float:
        """What a batched row costs: the batched element, the first pass of a distribution and the
        work a distributed loop still does around the call."""
        rest = self.loop_seconds if self.form == "distributed" else 0.0
        return element_seconds + self.extra_seconds + rest

    def predicted_speedup(self, exact_seconds: float, element_seconds: float) -> float:
        """Original loop over batched loop, per row (a long loop's limit): the exact call and the
        loop's own work, against `per_row_seconds`."""
        batched = self.per_row_seconds(element_seconds)
        return (exact_seconds + self.loop_seconds) / batched if batched > 0 else 0.0

    @staticmethod
    def per_batch_seconds(exact_seconds: float) -> float:
        """What one batched call costs besides its rows: the call itself (BATCH_FIXED_SECONDS)
        and row 0, which the exact code answers (its result fixes the stored type). For an
        expensive region this dominates a short loop: fixtures/projectile.py's 2,000 launches ran
        1,242x faster where the per-row figure said 6,213x."""
        return BATCH_FIXED_SECONDS + exact_seconds

    def report(self, exact_seconds: float, element_seconds: float, min_rows: int = 2) -> dict[str, Any]:
        """The site as RewriteResult.batched lists it: a loop of n >= min_rows rows is predicted to
        run n * original_per_row_seconds / (n * per_row_seconds + per_batch_seconds) times faster;
        a shorter one runs as written (its calls per call)."""
        return {"line": self.line, "form": self.form, "min_rows": min_rows,
                "predicted_speedup": round(self.predicted_speedup(exact_seconds, element_seconds), 3),
                "saved_per_row": self.saved_per_row(exact_seconds, element_seconds),
                "original_per_row_seconds": exact_seconds + self.loop_seconds,
                "per_row_seconds": self.per_row_seconds(element_seconds),
                "per_batch_seconds": self.per_batch_seconds(exact_seconds)}


@dataclass(frozen=True)
class Skipped:
    """A loop or expression calling the function that stays per call: where, which form, why."""

    line: int
    form: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "form": self.form, "reason": self.reason}


class NotBatchable(Exception):
    """A candidate that is not proven independent: the form tried and the reason."""

    def __init__(self, form: str, reason: str) -> None:
        super().__init__(reason)
        self.form = form
        self.reason = reason


def count_ops(node: cst.CSTNode) -> int:
    """Operations CPython executes for a statement, roughly: names, operators, subscripts,
    comparisons, calls, attribute loads (the cost model of re-running it)."""
    count = [0]

    class Counter(cst.CSTVisitor):
        def on_visit(self, n: cst.CSTNode) -> bool:
            if isinstance(n, (cst.Name, cst.BinaryOperation, cst.UnaryOperation, cst.Subscript, cst.Call,
                              cst.Attribute, cst.ComparisonTarget, cst.BooleanOperation, cst.Integer, cst.Float)):
                count[0] += 1
            return True

    node.visit(Counter())
    return count[0]
