"""Memory geometry of the FPGA families the project targets (no Amaranth, no numpy).

What one device holds (LUTs, block RAMs, SPRAM, multipliers) is :mod:`rtl.devices`'s; this
module knows how a family's memories are shaped and what Yosys makes of a memory."""

from __future__ import annotations

from math import ceil

from .devices import Device

__all__ = ["FAMILIES", "KINDS", "SPRAM", "LOADED_AUTO_BITS", "block_config", "blocks_of",
           "ram_bits", "ram_style"]

#: Block RAM of each family: (bits per block, [(depth, width) configurations]).
FAMILIES = {
    "ice40": (4096, [(256, 16), (512, 8), (1024, 4), (2048, 2)]),
    "ecp5": (18432, [(512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)]),
}

#: Memory kinds a weight array can be given (see docs/hardware.md#memory-kinds):
#: ``block`` — block RAM (iCE40 EBR, ECP5 DP16KD), initialised by the bitstream;
#: ``spram`` — iCE40 UltraPlus single-port RAM (16K x 16 per block); the bitstream cannot
#: initialise it, so the core loads it through its ``wl`` stream after configuration;
#: ``lut`` — LUTs: a weight array is a ROM, which becomes logic (ECP5 LUT RAM needs a write
#: port; iCE40 has none);
#: ``loaded`` — a RAM without initial contents, of any depth, on any family, filled through the
#: ``wl`` stream after the first reset like SPRAM: in hardware an external memory or a host
#: upload (it takes no block RAM in the estimate), in simulation a plain memory.
KINDS = ("block", "spram", "lut", "loaded")

#: Weight arrays larger than this (4 Mbit) are never emitted as initialised memories: with
#: ``family=None`` (generic Verilog for simulation) :func:`rtl.memplan.memory_kinds` makes them
#: ``loaded`` (millions of ``initial`` lines would swamp Yosys, Icarus and Verilator), and no
#: device the boards carry holds one on chip.
LOADED_AUTO_BITS = 1 << 22

#: Geometry of one iCE40 UltraPlus SPRAM block: (depth, width).
SPRAM = (16384, 16)

def ram_bits(device: Device) -> int:
    """Bits of on-chip RAM (block RAM plus SPRAM) of ``device``."""
    return device.bram * FAMILIES[device.family][0] + device.spram * SPRAM[0] * SPRAM[1]


def block_config(family: str, depth: int, width: int) -> tuple[int, int]:
    """The (depth, width) configuration that holds a depth x width memory in the fewest
    blocks of ``family`` (ties: the deeper one)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    configs = FAMILIES[family][1]
    return min(configs, key=lambda c: (ceil(width / c[1]) * ceil(depth / c[0]), -c[0]))


#: Yosys's ``memory_libmap`` costs: one block RAM (iCE40 EBR 64, ECP5 DP16KD 128), one ECP5
#: 16 x 4 LUT RAM (4), a bit of a memory lowered to logic (ROM 1/16, RAM 1).
_BLOCK_COST = {"ice40": 64, "ecp5": 128}
_LUTRAM_COST = {"ecp5": 4}


#: Block RAM configurations with two read ports (ECP5 DP16KD is true dual port up to 18 bits
#: wide; an iCE40 EBR has one read port).
_DUAL_PORT_WIDTH = {"ecp5": 18}


def blocks_of(kind: str, family: str, depth: int, width: int, count: int = 1, *,
              rom: bool = False, ports: int = 1, sync_read: bool = False) -> int:
    """Blocks that ``count`` memories of depth x width with ``ports`` read ports take as
    ``kind`` on ``family``: block RAMs for ``block``, SPRAM blocks for ``spram``, 0 for ``lut``
    and ``loaded`` (off chip). A block RAM serves one read port, or two in a configuration
    that is dual port (ECP5 up to 18 bits wide). ``kind="auto"`` is what Yosys chooses for a
    memory without a ``ram_style``: the cheapest of block RAM, LUT RAM (ECP5) and logic by its
    ``memory_libmap`` costs, a ROM (``rom``) being far cheaper in logic than a RAM, logic
    winning a tie; ECP5 LUT RAM reads asynchronously, and a RAM read synchronously
    (``sync_read``, a FIFO's storage) costs a register per bit more there (which is what
    Yosys's choices between LUT RAM and block RAM for the stack core's FIFOs show)."""
    if kind in ("lut", "loaded"):
        return 0
    if kind == "spram":
        return count * ceil(depth / SPRAM[0]) * ceil(width / SPRAM[1])
    if kind not in ("block", "auto"):
        raise ValueError(f"memory kind must be one of {KINDS}, got {kind!r}")
    block_bits, configs = FAMILIES[family]
    one = min(ceil(width / w) * ceil(depth / d) for d, w in configs)
    if width < min(w for _, w in configs):
        # Narrower than any configuration: Yosys folds depth into the word (4096 x 1 in one
        # 2048 x 2 iCE40 EBR, the address's low bit picking the bit).
        one = min(one, ceil(depth * width / block_bits))
    blocks = ports * one
    if ports > 1 and family in _DUAL_PORT_WIDTH:
        dual = min(ceil(width / w) * ceil(depth / d) for d, w in configs
                   if w <= _DUAL_PORT_WIDTH[family])
        blocks = min(blocks, ceil(ports / 2) * dual)
    if kind == "auto":
        other = depth * width * (1 / 16 if rom else 1)
        if family in _LUTRAM_COST and not rom:     # LUT RAM needs a write port
            other = min(other, ceil(depth / 16) * ceil(width / 4) * _LUTRAM_COST[family]
                        + (width if sync_read else 0))
        cost = blocks * _BLOCK_COST[family]
        if other < cost or (rom and other == cost):
            return 0
    return count * blocks


def ram_style(kind: str) -> str:
    """The Yosys ``ram_style`` attribute that places a weight array (a ROM) of ``kind``
    (``loaded`` arrays, RAMs without initial contents, are left to Yosys: ``block``)."""
    if kind in ("block", "loaded"):
        return "block"
    if kind == "spram":
        return "huge"
    return "logic"
