"""Liveness (backward) and reaching definitions (forward) over a scope's CFG, to a fixpoint.

Sets are Python ints used as bitsets: bit i of a liveness set is variable i of the scope; bit k
of a reaching-definitions set is definition site k. Sites are numbered in node order, so the
sites of a region (a contiguous node-id range) are a contiguous bit range.

A definition site is a binding of a variable (it kills the variable's other sites) or an
in-place mutation (it does not kill: the container keeps its identity, so earlier bindings still
reach). For a function the entry node holds one site per parameter: "the caller's value".
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from regionx.analysis.cfg import ENTRY, EXIT, Scope


@dataclass
class Dataflow:
    """The fixpoint solutions for one scope."""

    var_index: dict[str, int]  # variable -> bit
    names: list[str]  # bit -> variable
    succ: list[list[int]]  # node -> successors
    gen: list[int]  # node -> variables read before written in the node (bitset)
    kill: list[int]  # node -> variables bound by the node (bitset)
    live_in: list[int]  # node -> variables live on entry
    live_out: list[int]  # node -> variables live on exit
    site_var: list[int]  # site -> variable bit index
    site_node: list[int]  # site -> node id
    first_site: list[int]  # node -> number of its first site (sites of node n: first_site[n] .. first_site[n+1]-1)
    var_sites: list[int]  # variable -> bitset of its sites
    pred: list[list[int]]  # node -> predecessors
    _reach: tuple[list[int], list[int]] | None = None  # (reach_in, reach_out), solved on first use

    @property
    def reach_in(self) -> list[int]:
        """node -> definition sites reaching its entry (solved lazily: most scopes never need it)."""
        return self._reaching()[0]

    @property
    def reach_out(self) -> list[int]:
        """node -> definition sites reaching its exit."""
        return self._reaching()[1]

    def _reaching(self) -> tuple[list[int], list[int]]:
        if self._reach is None:
            n = len(self.succ)
            rd_gen = [0] * n
            rd_kill = [0] * n
            for node_id in range(n):
                a, b = self.first_site[node_id], self.first_site[node_id + 1]
                rd_gen[node_id] = ((1 << b) - 1) ^ ((1 << a) - 1)
                k = self.kill[node_id]
                mask = 0
                while k:
                    low = k & -k
                    mask |= self.var_sites[low.bit_length() - 1]
                    k ^= low
                rd_kill[node_id] = mask
            self._reach = _reaching(n, self.succ, self.pred, rd_gen, rd_kill)
        return self._reach

    def bits(self, names: "set[str] | list[str]") -> int:
        mask = 0
        index = self.var_index
        for name in names:
            bit = index.get(name)
            if bit is not None:
                mask |= 1 << bit
        return mask

    def unpack(self, mask: int) -> list[str]:
        """Variable names of a bitset, in variable order."""
        out = []
        names = self.names
        while mask:
            low = mask & -mask
            out.append(names[low.bit_length() - 1])
            mask ^= low
        return out

    def dump(self) -> str:
        """One line per node: `id in={live on entry} out={live on exit}` (golden tests compare this)."""
        return "\n".join(f"{n} in={{{', '.join(self.unpack(self.live_in[n]))}}} out={{{', '.join(self.unpack(self.live_out[n]))}}}"
                         for n in range(len(self.succ)))

    def site_range(self, lo: int, hi: int) -> int:
        """Bitset of all sites in nodes lo..hi."""
        a, b = self.first_site[lo], self.first_site[hi + 1]
        return ((1 << b) - 1) ^ ((1 << a) - 1)


def solve(scope: Scope, exit_uses: set[str]) -> Dataflow:
    """Liveness and reaching definitions of `scope`; `exit_uses` are read after the scope ends."""
    names = scope.variables()
    var_index = {name: i for i, name in enumerate(names)}
    n = len(scope.nodes)
    graph = scope.graph
    succ = [list(graph.succ[i]) for i in range(n)]
    pred = [list(graph.pred[i]) for i in range(n)]

    gen = [0] * n
    kill = [0] * n
    site_var: list[int] = []
    site_node: list[int] = []
    first_site = [0] * (n + 1)
    for node in scope.nodes:
        facts = node.facts
        g = 0
        for name in facts.uses:
            bit = var_index.get(name)
            if bit is not None:
                g |= 1 << bit
        k = 0
        first_site[node.id] = len(site_var)
        for name in facts.defs:
            bit = var_index.get(name)
            if bit is not None:
                k |= 1 << bit
                site_var.append(bit)
                site_node.append(node.id)
        for name in facts.mods:
            bit = var_index.get(name)
            if bit is not None and not (k >> bit) & 1:
                site_var.append(bit)
                site_node.append(node.id)
        gen[node.id] = g
        kill[node.id] = k
    first_site[n] = len(site_var)
    for name in exit_uses:
        bit = var_index.get(name)
        if bit is not None:
            gen[EXIT] |= 1 << bit

    live_in, live_out = _liveness(n, succ, pred, gen, kill)

    var_sites = [0] * len(names)
    for site, bit in enumerate(site_var):
        var_sites[bit] |= 1 << site
    return Dataflow(var_index, names, succ, gen, kill, live_in, live_out, site_var, site_node,
                    first_site, var_sites, pred)


def _fixpoint(n: int, sources: list[list[int]], targets: list[list[int]], gen: list[int], kill: list[int],
              order: range) -> tuple[list[int], list[int]]:
    """A bit-vector worklist solver: value[v] = gen[v] | (OR of value[u] for u in sources[v]) & ~kill[v].

    Returns (joined, value): per node, the OR over its sources, and its own value. Backward problems
    pass successors as sources; forward ones predecessors.
    """
    joined = [0] * n
    value = [0] * n
    work = deque(order)
    queued = [True] * n
    while work:
        node = work.popleft()
        queued[node] = False
        acc = 0
        for u in sources[node]:
            acc |= value[u]
        joined[node] = acc
        new = gen[node] | (acc & ~kill[node])
        if new != value[node]:
            value[node] = new
            for t in targets[node]:
                if not queued[t]:
                    queued[t] = True
                    work.append(t)
    return joined, value


def _liveness(n: int, succ: list[list[int]], pred: list[list[int]], gen: list[int], kill: list[int]) -> tuple[list[int], list[int]]:
    """(live_in, live_out) per node; reverse source order converges fast for a backward problem."""
    live_out, live_in = _fixpoint(n, succ, pred, gen, kill, range(n - 1, -1, -1))
    return live_in, live_out


def _reaching(n: int, succ: list[list[int]], pred: list[list[int]], gen: list[int], kill: list[int]) -> tuple[list[int], list[int]]:
    """(reach_in, reach_out) per node: the definitions reaching its entry and its exit."""
    return _fixpoint(n, pred, succ, gen, kill, range(n))


__all__ = ["Dataflow", "ENTRY", "EXIT", "solve"]
