"""Small helpers that several generators share."""

from __future__ import annotations

from contextlib import contextmanager

from amaranth.hdl import Array, C, Cat, Module, Shape, Signal

__all__ = ["CONV_CHUNK", "QUAD", "OneHot", "at_most_one", "lowest_set", "spike_sum", "tree_sum"]

#: Conv-kernel taps summed per adder tree in a core's registered conv stages.
CONV_CHUNK = 8

#: Adjacent conv-kernel taps a network-core lane sums and registers first (over spikes, each
#: bit of the sum is a function of four window bits: one LUT4). CONV_CHUNK is a multiple.
QUAD = 4


def lowest_set(m: Module, mask, name: str):
    """Index of the lowest set bit of ``mask`` (0 when none), as a signal.

    Up to 8 bits a priority chain; wider, the lowest bit alone (``mask & -mask``, a carry
    chain) and each index bit the OR of the one-hot positions that have it: a tree of a few
    LUT levels instead of a chain as long as the mask (Fmax)."""
    n = len(mask)
    low = Signal(range(max(2, n)), name=name)
    if n <= 8:
        for k in reversed(range(n)):
            with m.If(mask[k]):
                m.d.comb += low.eq(k)
        return low
    one = Signal(n, name=f"{name}_bit")
    m.d.comb += one.eq(mask & (~mask + 1)[:n])
    for b in range(len(low)):
        m.d.comb += low[b].eq(Cat(*[one[k] for k in range(n) if k >> b & 1]).any())
    return low


def at_most_one(bits):
    """Whether at most one bit of ``bits`` is set (``bits & (bits - 1) == 0``), as a tree
    of (any, several) pairs over halves: a few LUT levels and no carry chain (Fmax)."""
    nodes = [(b, C(0, 1)) for b in bits]
    if not nodes:
        return C(1, 1)
    while len(nodes) > 1:
        nxt = []
        for k in range(0, len(nodes) - 1, 2):
            (a_any, a_sev), (b_any, b_sev) = nodes[k], nodes[k + 1]
            nxt.append((a_any | b_any, a_sev | b_sev | (a_any & b_any)))
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        nodes = nxt
    return ~nodes[0][1]


def tree_sum(terms):
    """Balanced adder tree over Amaranth values (``C(0)`` when empty)."""
    terms = list(terms)
    if not terms:
        return C(0, 1)
    while len(terms) > 1:
        terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k]
                 for k in range(0, len(terms), 2)]
    return terms[0]


def spike_sum(bits, weights):
    """``sum(w for b, w in zip(bits, weights) if b)`` for constant integer ``weights`` over
    one-bit ``bits``: a table of the sums of every subset of QUAD consecutive taps, indexed by
    their bits (each bit of a table's output is a function of four inputs, one LUT4, where
    an adder tree of the masked weights takes a carry chain per pair), then a balanced adder
    tree over the tables."""
    bits, weights = list(bits), [int(w) for w in weights]
    if len(bits) != len(weights):
        raise ValueError(f"spike_sum: {len(bits)} bits against {len(weights)} weights")
    tables = []
    for i in range(0, len(bits), QUAD):
        ws, bs = weights[i:i + QUAD], bits[i:i + QUAD]
        sums = [sum(w for b, w in enumerate(ws) if v >> b & 1) for v in range(1 << len(ws))]
        if not any(sums):
            continue
        shape = Shape.cast(range(min(sums), max(sums) + 1))
        tables.append(Array([C(v, shape) for v in sums])[Cat(*bs)])
    return tree_sum(tables)


class OneHot:
    """A state machine with one register per state, for a machine whose state decoding sits
    on the critical path: Yosys leaves Amaranth's FSMs binary (their state register has an
    initial value, which its FSM recoding refuses), and a binary state register's enable is
    one OR over every transition of every state. Here a state's register depends only on
    the transitions into and out of it.

    Used like Amaranth's FSM: ``with fsm.state("A"):`` ... ``fsm.next("B")``;
    ``fsm.ongoing("A")`` is A's register (made at first mention; ``init`` is set after
    reset). A state's ``next`` calls must sit in mutually exclusive branches (two taken in
    one cycle would set two registers); :meth:`check` refuses a target without statements."""

    def __init__(self, m: Module, *, init: str, name: str):
        self.m, self.name, self.init = m, name, init
        self.bits: dict[str, Signal] = {}
        self._described: set[str] = set()
        self._in: str | None = None
        self.ongoing(init)

    @contextmanager
    def state(self, name: str):
        """The statements of state ``name`` (they apply while its register is set)."""
        if self._in is not None:
            raise RuntimeError(f"{self.name}: state {name!r} inside state {self._in!r}")
        if name in self._described:
            raise RuntimeError(f"{self.name}: state {name!r} described twice")
        self._described.add(name)
        with self.m.If(self.ongoing(name)):
            self._in = name
            try:
                yield
            finally:
                self._in = None

    def next(self, name: str) -> None:
        """Go to state ``name`` at the next clock edge (from the state being described)."""
        if self._in is None:
            raise RuntimeError(f"{self.name}: next({name!r}) outside a state")
        if name != self._in:
            self.m.d.sync += [self.ongoing(self._in).eq(0), self.ongoing(name).eq(1)]

    def ongoing(self, name: str) -> Signal:
        """State ``name``'s register."""
        if name not in self.bits:
            self.bits[name] = Signal(name=f"{self.name}_{name.lower()}",
                                     init=int(name == self.init))
        return self.bits[name]

    def check(self) -> None:
        """Every state mentioned has statements (a target without them would be a dead end)."""
        missing = sorted(set(self.bits) - self._described)
        if missing:
            raise RuntimeError(f"{self.name}: states without statements: {missing}")
