"""Small combinational helpers that several generators share."""

from __future__ import annotations

from amaranth.hdl import C, Module, Signal

__all__ = ["CONV_CHUNK", "lowest_set", "tree_sum"]

#: Conv-kernel terms summed per adder tree in the first of a core's two registered conv stages.
CONV_CHUNK = 8


def lowest_set(m: Module, mask, name: str):
    """Index of the lowest set bit of ``mask`` (0 when none), as a signal."""
    low = Signal(range(max(2, len(mask))), name=name)
    for k in reversed(range(len(mask))):
        with m.If(mask[k]):
            m.d.comb += low.eq(k)
    return low


def tree_sum(terms):
    """Balanced adder tree over Amaranth values (``C(0)`` when empty)."""
    terms = list(terms)
    if not terms:
        return C(0, 1)
    while len(terms) > 1:
        terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k]
                 for k in range(0, len(terms), 2)]
    return terms[0]
