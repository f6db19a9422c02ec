"""Small combinational helpers that several generators share."""

from __future__ import annotations

from amaranth.hdl import Module, Signal

__all__ = ["lowest_set"]


def lowest_set(m: Module, mask, name: str):
    """Index of the lowest set bit of ``mask`` (0 when none), as a signal."""
    low = Signal(range(max(2, len(mask))), name=name)
    for k in reversed(range(len(mask))):
        with m.If(mask[k]):
            m.d.comb += low.eq(k)
    return low
