"""A weight array in iCE40 UltraPlus SPRAM: single port, loaded after configuration.

The bitstream cannot initialise SPRAM, and Yosys maps a memory to SPRAM only when it has no
initial contents, which Amaranth 0.5 cannot express (it always emits a zero ``$meminit``). So
for hardware the array is built from ``SB_SPRAM256KA`` primitives (16K x 16 each, one per 16
bits of width); for Amaranth's simulator it is an ordinary memory with the same single-port
behaviour. Read and load share the address; a read (``en``) and a write (``we``) never happen
in the same cycle; ``data`` holds while neither does (the primitive's CHIPSELECT is a clock
enable).
"""

from __future__ import annotations

from math import ceil

from amaranth.hdl import ClockSignal, Const, Instance, Module, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .families import SPRAM

__all__ = ["SpramArray", "RomLoader", "single_port_memory"]


def single_port_memory(m: Module, port) -> None:
    """Add to ``m`` a behavioural single-port RAM without initial contents behind ``port``'s
    ``addr``, ``en``, ``data``, ``we`` and ``wdata`` (read and write share the address; a
    write cycle does not read; ``data`` holds while ``en`` is low)."""
    mem = memory.Memory(shape=unsigned(len(port.wdata)), depth=port.depth, init=[])
    m.submodules.mem = mem
    wr, rd = mem.write_port(), mem.read_port()
    m.d.comb += [wr.addr.eq(port.addr), rd.addr.eq(port.addr), rd.en.eq(port.en & ~port.we),
                 wr.en.eq(port.we), wr.data.eq(port.wdata), port.data.eq(rd.data)]


class SpramArray(wiring.Component):
    """``depth`` (<= 16384) words of ``width`` bits. ``primitive`` selects ``SB_SPRAM256KA``
    instances (hardware, and Verilog co-simulated with Yosys's cell models) over a behavioural
    memory (Amaranth's simulator)."""

    def __init__(self, depth: int, width: int, *, primitive: bool):
        if not 1 <= depth <= SPRAM[0]:
            raise ValueError(f"an SPRAM array holds 1..{SPRAM[0]} words, got {depth}")
        self.depth, self.width, self.primitive = depth, width, primitive
        ab = max(1, (depth - 1).bit_length())
        super().__init__({
            "addr": In(ab), "en": In(1), "data": Out(width),
            "we": In(1), "wdata": In(width),
        })

    @property
    def blocks(self) -> int:
        return ceil(self.width / SPRAM[1])

    def elaborate(self, platform):
        m = Module()
        if not self.primitive:
            single_port_memory(m, self)
            return m
        w = SPRAM[1]
        wdata = Signal(self.blocks * w)
        out = Signal(self.blocks * w)
        addr = Signal(14)
        m.d.comb += [addr.eq(self.addr), wdata.eq(self.wdata), self.data.eq(out[:self.width])]
        for k in range(self.blocks):
            m.submodules[f"spram{k}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=addr,
                i_DATAIN=wdata[k * w:(k + 1) * w], i_MASKWREN=Const(0b1111, 4),
                i_WREN=self.we, i_CHIPSELECT=self.en | self.we, i_CLOCK=ClockSignal(),
                i_STANDBY=Const(0, 1), i_SLEEP=Const(0, 1), i_POWEROFF=Const(1, 1),
                o_DATAOUT=out[k * w:(k + 1) * w])
        return m


class RomLoader(wiring.Component):
    """Streams ``image`` (words of ``width`` bits) on ``o`` once after reset, from a block-RAM
    ROM: the loader of a device whose block RAM can hold the weights beside the core, and of
    the simulated board (the iCEBreaker reads them from its flash with
    :class:`boards.flash.FlashLoader`, which has the same ``o`` and ``done``)."""

    def __init__(self, image, width: int):
        image = [int(w) for w in image]
        if not image or any(not 0 <= w < 1 << width for w in image):
            raise ValueError(f"a ROM loader needs one or more words of {width} unsigned bits")
        self.image, self.width = image, width
        super().__init__({"o": Out(stream.Signature(unsigned(width))), "done": Out(1)})

    def elaborate(self, platform):
        m = Module()
        n = len(self.image)
        m.submodules.rom = rom = memory.Memory(shape=unsigned(self.width), depth=n,
                                               init=self.image)
        rd = rom.read_port()
        addr = Signal(range(n + 1))
        valid = Signal()               # rd.data holds word addr - 1
        take = self.o.valid & self.o.ready
        # The port shows word ``addr - 1`` while valid; taking it reads the next one.
        m.d.comb += [rd.addr.eq(addr), rd.en.eq(~valid | take),
                     self.o.payload.eq(rd.data), self.o.valid.eq(valid),
                     self.done.eq((addr == n) & ~valid)]
        with m.If(~valid | take):
            with m.If(addr != n):
                m.d.sync += [addr.eq(addr + 1), valid.eq(1)]
            with m.Else():
                m.d.sync += valid.eq(0)
        return m
