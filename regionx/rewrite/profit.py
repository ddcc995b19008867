"""Profitability: whether each surrogate path beats the exact code (the RX502 verdict)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from regionx.types import TopologyResult


# --------------------------------------------------------------------------------------------
# profitability


@dataclass(frozen=True)
class Profitability:
    """Whether each surrogate path beats the exact code, from the manifest's measured timings."""

    exact_time_per_call: float
    time_per_call: float
    time_per_element: float

    @property
    def scalar(self) -> bool:
        return 0 < self.time_per_call < self.exact_time_per_call

    @property
    def batch(self) -> bool:
        return 0 < self.time_per_element < self.exact_time_per_call

    def per_row(self, extra_seconds: float = 0.0) -> float:
        """Cost of one row of a batched loop: the batched element time, plus what the loop's form
        adds per row (a distributed loop re-runs its argument computation)."""
        return self.time_per_element + extra_seconds

    def batch_pays(self, extra_seconds: float = 0.0, force: bool = False) -> bool:
        """Whether a batched loop beats the exact code per row (with force: beats the per-call
        surrogate, the path the loop would take otherwise)."""
        cost = self.per_row(extra_seconds)
        return 0 < cost < self.exact_time_per_call or (force and cost <= self.time_per_call)

    def describe(self, batch_used: bool, blocked: Sequence[Mapping[str, Any]] = ()) -> str:
        """The numbers, as the RX502 message shows them, with what kept loops from batching:
        each blocked form with its line."""
        why = ""
        if not batch_used:
            why = " (no loop to batch" + "".join(
                f"; line {b['line']} {b['form']}: {b['reason']}" for b in blocked[:3]) + ")"
        parts = [
            f"exact code {fmt_time(self.exact_time_per_call)}/call",
            f"surrogate {fmt_time(self.time_per_call)}/call",
            f"batched {fmt_time(self.time_per_element)}/element" + why,
        ]
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "exact_time_per_call": self.exact_time_per_call,
            "time_per_call": self.time_per_call,
            "time_per_element": self.time_per_element,
            "scalar_profitable": self.scalar,
            "batch_profitable": self.batch,
        }


def profitability(topology: TopologyResult) -> Profitability:
    """Profitability of the chosen topology: scalar if time_per_call < exact, batch if time_per_element < exact
    (the effective times when it was measured with an accept predicate)."""
    # with an accept predicate: the effective times (check + rejected rows' exact runs included)
    return Profitability(
        exact_time_per_call=float(topology.exact_time_per_call),
        time_per_call=float(topology.program_time_per_call),
        time_per_element=float(topology.program_time_per_element),
    )


def fmt_time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3g} us"
    return f"{seconds * 1e9:.3g} ns"
