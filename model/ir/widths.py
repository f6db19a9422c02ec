"""Integer widths that the IR, the quantiser and the generators all need."""

from __future__ import annotations

__all__ = ["signed_bits", "index_bits"]


def signed_bits(lo: int, hi: int) -> int:
    """Return the fewest bits ``b >= 2`` with ``-2**(b-1) <= lo`` and ``hi <= 2**(b-1) - 1``."""
    lo, hi = int(lo), int(hi)
    b = 2
    while lo < -(1 << (b - 1)) or hi > (1 << (b - 1)) - 1:
        b += 1
    return b


def index_bits(n: int) -> int:
    """Bits needed to hold an index in ``[0, n - 1]`` (at least 1)."""
    return max(1, (n - 1).bit_length())
