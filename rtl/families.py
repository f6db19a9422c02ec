"""Block RAM geometry of the FPGA families the project targets (no Amaranth, no numpy)."""

from __future__ import annotations

from math import ceil

__all__ = ["FAMILIES", "block_config"]

#: Block RAM of each family: (bits per block, [(depth, width) configurations]).
FAMILIES = {
    "ice40": (4096, [(256, 16), (512, 8), (1024, 4), (2048, 2)]),
    "ecp5": (18432, [(512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)]),
}


def block_config(family: str, depth: int, width: int) -> tuple[int, int]:
    """The (depth, width) configuration that holds a depth x width memory in the fewest
    blocks of ``family`` (ties: the deeper one)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    configs = FAMILIES[family][1]
    return min(configs, key=lambda c: (ceil(width / c[1]) * ceil(depth / c[0]), -c[0]))
