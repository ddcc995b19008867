"""Candidate topologies: the default list, `--topologies` specs, labels and weight counts."""

from __future__ import annotations

from typing import Sequence

Topology = tuple[tuple[int, ...], str]

_PAPER_HIDDEN: tuple[tuple[int, ...], ...] = ((3,), (5,), (8,), (3, 2), (5, 3), (8, 5), (5, 3, 2), (8, 5, 3), (11, 8, 5))
_EXTRA_HIDDEN: tuple[tuple[int, ...], ...] = ((16,), (32,), (32, 32), (64, 64))
# The paper's hidden layers (Table II) plus a few wider ones, each with tanh and relu.
DEFAULT_TOPOLOGIES: list[Topology] = [(h, act) for h in _PAPER_HIDDEN + _EXTRA_HIDDEN for act in ("tanh", "relu")]

HIDDEN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
DEFAULT_ACTIVATION = "tanh"


def parse_topologies(spec: str) -> list[Topology]:
    """Parse a topology list such as ``"5,3;8,5"``, ``"5x3:relu;8"`` or ``"default"``.

    Entries are separated by ``;``; an entry is hidden-layer widths separated by ``,`` or ``x``,
    optionally followed by ``:ACTIVATION`` (tanh, relu, sigmoid, linear; several may be joined
    with ``|``, e.g. ``8,5:tanh|relu``). Without an activation an entry uses tanh. ``default``
    expands to DEFAULT_TOPOLOGIES. Raises ValueError with a readable message on bad input
    (the CLI reports it as RX403).
    """
    result: list[Topology] = []
    entries = [e.strip() for e in spec.split(";")]
    if not any(entries):
        raise ValueError("empty topology list")
    for entry in entries:
        if not entry:
            continue
        if entry.lower() == "default":
            result.extend(DEFAULT_TOPOLOGIES)
            continue
        widths_text, _, acts_text = entry.partition(":")
        widths: list[int] = []
        for tok in widths_text.replace("x", ",").replace("X", ",").split(","):
            tok = tok.strip()
            if not tok:
                raise ValueError(f"empty layer width in {entry!r}")
            try:
                w = int(tok)
            except ValueError:
                raise ValueError(f"layer width {tok!r} in {entry!r} is not an integer") from None
            if w < 1:
                raise ValueError(f"layer width {w} in {entry!r} must be at least 1")
            widths.append(w)
        acts = [a.strip().lower() for a in acts_text.split("|")] if acts_text.strip() else [DEFAULT_ACTIVATION]
        for act in acts:
            if act not in HIDDEN_ACTIVATIONS:
                raise ValueError(f"unknown activation {act!r} in {entry!r}; expected one of {', '.join(HIDDEN_ACTIVATIONS)}")
            topo = (tuple(widths), act)
            if topo not in result:
                result.append(topo)
    return result


def topology_label(hidden: Sequence[int], activation: str) -> str:
    """Same text as TopologyResult.label, e.g. ``5x3 tanh``."""
    return "x".join(str(h) for h in hidden) + f" {activation}"


def _n_weights(hidden: Sequence[int], d_in: int, d_out: int) -> int:
    """Weights and biases of a dense network with these hidden widths."""
    sizes = [d_in, *hidden, d_out]
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
