"""Weights from the board's SPI flash: a loader that streams words read from flash at reset.

iCE40 UltraPlus SPRAM cannot be initialised by the bitstream, so a board whose weights live in
SPRAM keeps them in its configuration flash, beside the bitstream, and the
:class:`FlashLoader` feeds them to the core's ``wl`` stream after every reset:

1. *wake* — send 0xAB (release from deep power-down: the iCE40 puts the flash to sleep after
   configuration), then keep chip select high for ``wake_us`` (t_RES1 is 3 us on the
   W25Q128/N25Q series);
2. *read* — send 0x03 and the 24-bit byte address ``offset``, then clock in
   ``words * ceil(width / 8)`` bytes, MSB first per byte; each word is its bytes
   little-endian. SCK stops (low) while ``o`` is not ready, which SPI allows.

SPI mode 0 at half the system clock: the loader drives COPI while SCK is low and samples CIPO
on the clock edge that raises SCK. :func:`flash_image` writes the matching file
(``iceprog -o <offset> <file>``).
"""

from __future__ import annotations

from math import ceil
from pathlib import Path
from typing import Sequence

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["FlashLoader", "flash_image", "FLASH_OFFSET", "CMD_WAKE", "CMD_READ"]

#: Where the weights go in the iCEBreaker's 16 MiB flash: 1 MiB, well past the iCE40UP5K's
#: 104 kB bitstream.
FLASH_OFFSET = 0x100000
CMD_WAKE = 0xAB
CMD_READ = 0x03


def word_bytes(width: int) -> int:
    return ceil(width / 8)


def flash_image(words: Sequence[int], width: int, path: str | Path | None = None) -> bytes:
    """The bytes that hold ``words`` (each ``width`` bits, little-endian, ceil(width/8) bytes)
    as :class:`FlashLoader` reads them; written to ``path`` if given."""
    nb = word_bytes(width)
    out = bytearray()
    for k, w in enumerate(words):
        if not 0 <= int(w) < 1 << width:
            raise ValueError(f"word {k} = {w} does not fit {width} unsigned bits")
        out += int(w).to_bytes(nb, "little")
    if path is not None:
        Path(path).write_bytes(bytes(out))
    return bytes(out)


def _check_geometry(words: int, width: int, offset: int) -> None:
    """``ValueError`` unless ``words`` words of ``width`` bits at byte ``offset`` fit the READ
    command's 24-bit address space."""
    if words < 1 or width < 1:
        raise ValueError(f"FlashLoader needs words >= 1 and width >= 1, "
                         f"got words={words}, width={width}")
    end = offset + words * word_bytes(width)
    if offset < 0 or end > 1 << 24:
        raise ValueError(f"flash bytes [{offset:#x}, {end:#x}) leave the 24-bit address "
                         f"space of the READ command (16 MiB)")


class FlashLoader(wiring.Component):
    """Reads ``words`` words of ``width`` bits from SPI flash at byte ``offset`` after reset
    and offers them on ``o``; ``done`` rises after the last one is taken.

    Pins: ``sck``, ``cs`` (chip select, active high: the platform's ``cs_n`` resource inverts),
    ``copi`` out, ``cipo`` in. The wake-up gap is ``wake_us`` at the platform's default clock
    (``clk_hz`` without a platform).
    """

    def __new__(cls, *, words: int, width: int, offset: int = FLASH_OFFSET, **kwargs):
        # Checked before the Elaboratable exists, so a refused loader is not "created but
        # never used" (src_loc_at=1: the warning of an unused loader names our caller's line).
        _check_geometry(words, width, offset)
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, *, words: int, width: int, offset: int = FLASH_OFFSET,
                 clk_hz: float = 12e6, wake_us: float = 20.0):
        self.words, self.width, self.offset = words, width, offset
        self.clk_hz, self.wake_us = clk_hz, wake_us
        super().__init__({
            "o": Out(stream.Signature(unsigned(width))),
            "done": Out(1),
            "sck": Out(1), "cs": Out(1), "copi": Out(1), "cipo": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        clk_hz = self.clk_hz if platform is None else platform.default_clk_frequency
        wake_cycles = max(2, ceil(self.wake_us * 1e-6 * clk_hz))
        nb = word_bytes(self.width)
        tx = Signal(32)                          # bits to send, MSB first
        tx_left = Signal(range(33))
        rx = Signal(nb * 8)                      # the word being read, bytes little-endian
        bit = Signal(range(8), init=7)           # bit of the current byte (7 = MSB)
        byte = Signal(range(nb))
        word = Signal(range(self.words + 1))
        wait = Signal(range(wake_cycles + 1))
        m.d.comb += self.copi.eq(tx[-1])

        with m.FSM(init="WAKE"):
            with m.State("WAKE"):
                m.d.sync += [tx.eq(CMD_WAKE << 24), tx_left.eq(8), self.cs.eq(1)]
                m.next = "SEND_WAKE"
            with m.State("SEND_WAKE"):
                self._send(m, tx, tx_left, after="GAP")
            with m.State("GAP"):                 # deselected for t_RES1
                m.d.sync += [self.cs.eq(0), wait.eq(wait + 1)]
                with m.If(wait == wake_cycles):
                    m.d.sync += [tx.eq(CMD_READ << 24 | self.offset), tx_left.eq(32),
                                 self.cs.eq(1)]
                    m.next = "SEND_READ"
            with m.State("SEND_READ"):
                self._send(m, tx, tx_left, after="DATA")
            with m.State("DATA"):
                # Two cycles per bit: SCK low, then SCK high with CIPO sampled as it rises.
                with m.If(~self.sck):
                    m.d.sync += self.sck.eq(1)
                    # byte `byte` of the word, MSB first: bit 7 of the byte lands first
                    for b in range(nb):
                        with m.If(byte == b):
                            m.d.sync += rx[b * 8:(b + 1) * 8].eq(
                                Cat(self.cipo, rx[b * 8:b * 8 + 7]))
                    m.d.sync += bit.eq(bit - 1)
                    with m.If(bit == 0):
                        m.d.sync += byte.eq(byte + 1)
                        with m.If(byte == nb - 1):
                            m.next = "PUSH"
                with m.Else():
                    m.d.sync += self.sck.eq(0)
            with m.State("PUSH"):
                m.d.sync += self.sck.eq(0)
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(rx[:self.width])]
                with m.If(self.o.ready):
                    m.d.sync += [word.eq(word + 1), byte.eq(0)]
                    with m.If(word == self.words - 1):
                        m.d.sync += self.cs.eq(0)
                        m.next = "DONE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
        return m

    def _send(self, m, tx, tx_left, *, after: str):
        """Shift ``tx_left`` bits of ``tx`` out on COPI: COPI holds tx's MSB while SCK is low,
        the flash samples it as SCK rises, the next bit moves up as SCK falls."""
        with m.If(~self.sck):
            m.d.sync += self.sck.eq(1)
        with m.Else():
            m.d.sync += [self.sck.eq(0), tx.eq(tx << 1), tx_left.eq(tx_left - 1)]
            with m.If(tx_left == 1):
                m.next = after
