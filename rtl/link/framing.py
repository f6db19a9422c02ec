"""Frames of the host link (``docs/protocol.md``): SLIP escaping, the LEN and CRC trailer,
both directions (:class:`FrameTx`, :class:`FrameRx`), and the UART clock divisor."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import crc, data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..logic import OneHot
from .protocol import END, ERR_CRC, ERR_LENGTH, ERR_TOO_LONG, ESC, ESC_END, ESC_ESC

__all__ = ["CRC16", "uart_divisor", "FrameTx", "FrameRx"]


#: The frames' CRC (docs/protocol.md): CRC-16/CCITT-FALSE over bytes; its residue is 0, so a
#: frame whose CRC trailer is right leaves the receiver's CRC at 0.
CRC16 = crc.catalog.CRC16_CCITT_FALSE(data_width=8)


def uart_divisor(clk_hz: float, baud: int, *, tolerance: float = 0.02) -> int:
    """Clock cycles per UART bit for ``baud`` at ``clk_hz``; ``ValueError`` when the nearest
    integer is more than ``tolerance`` off (a receiver then samples the wrong bits)."""
    if baud <= 0 or clk_hz <= 0:
        raise ValueError(f"clock ({clk_hz} Hz) and baud rate ({baud}) must be positive")
    div = round(clk_hz / baud)
    if div < 4:
        raise ValueError(f"{baud} baud needs at least 4 clock cycles per bit; a {clk_hz / 1e6:g} "
                         f"MHz clock gives {clk_hz / baud:.2f}: lower the baud rate to at most "
                         f"{int(clk_hz // 4)}")
    err = abs(clk_hz / div - baud) / baud
    if err > tolerance:
        raise ValueError(f"{baud} baud at {clk_hz / 1e6:g} MHz: the nearest divisor {div} is "
                         f"{100 * err:.1f} % off (limit {100 * tolerance:g} %)")
    return div


_FB = data.StructLayout({"data": 8, "end": 1})


class FrameTx(wiring.Component):
    """Frames a byte stream: ``i`` carries body bytes (``end = 0``) and then one ``end = 1``
    record; ``o`` carries END, the escaped body, the escaped LEN and CRC trailer, END.

    The first body byte starts the frame (the CMD byte); LEN is the number of body bytes minus
    two (CMD and SEQ). One output byte per cycle when ``o`` is ready.
    """

    def __init__(self):
        super().__init__({"i": In(stream.Signature(_FB)), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc16 = CRC16.create()
        crc = crc16.crc
        count = Signal(16)      # body bytes minus two (CMD, SEQ): LEN, with no subtraction
        byte = Signal(8)        # the byte being escaped / sent
        esc2 = Signal()         # the second byte of an escape is due
        raw = Signal()          # send ``byte`` unescaped (the END delimiters)
        have = Signal()         # ``byte`` is waiting to go out
        special = (byte == END) | (byte == ESC)
        m.d.comb += self.o.payload.eq(Mux(esc2, Mux(byte == END, ESC_END, ESC_ESC),
                                          Mux(~raw & special, ESC, byte)))
        m.d.comb += self.o.valid.eq(have)
        with m.If(have & self.o.ready):
            with m.If(~raw & special & ~esc2):
                m.d.sync += esc2.eq(1)
            with m.Else():
                m.d.sync += [esc2.eq(0), have.eq(0)]

        # One register per state, and one state per trailer byte: each state's byte comes
        # from one place (no byte select by a counter behind the state; Fmax).
        fsm = OneHot(m, init="IDLE", name="ftx")
        with fsm.state("IDLE"):
            with m.If(self.i.valid & ~have):
                m.d.comb += crc16.start.eq(1)
                m.d.sync += [byte.eq(END), raw.eq(1), have.eq(1), count.eq(-2 & 0xFFFF)]
                fsm.next("BODY")
        with fsm.state("BODY"):
            m.d.comb += self.i.ready.eq(~have)
            with m.If(self.i.valid & ~have):
                with m.If(self.i.payload.end):
                    fsm.next("LEN0")
                with m.Else():
                    m.d.comb += [crc16.data.eq(self.i.payload.data), crc16.valid.eq(1)]
                    m.d.sync += [byte.eq(self.i.payload.data), raw.eq(0), have.eq(1),
                                 count.eq(count + 1)]
        # LEN little-endian (covered by the CRC), the CRC big-endian, END.
        trailer = [("LEN0", count[:8], True), ("LEN1", count[8:16], True),
                   ("CRC0", crc[8:16], False), ("CRC1", crc[:8], False)]
        for k, (name, value, covered) in enumerate(trailer):
            with fsm.state(name):
                with m.If(~have):
                    m.d.sync += [byte.eq(value), raw.eq(0), have.eq(1)]
                    if covered:
                        m.d.comb += [crc16.data.eq(value), crc16.valid.eq(1)]
                    fsm.next(trailer[k + 1][0] if k + 1 < len(trailer) else "FINAL")
        with fsm.state("FINAL"):
            with m.If(~have):
                m.d.sync += [byte.eq(END), raw.eq(1), have.eq(1)]
                fsm.next("IDLE")
        fsm.check()
        return m


_FRAME = data.StructLayout({"code": 8, "length": 16, "cmd": 8, "seq": 8})


class FrameRx(wiring.Component):
    """Takes frames byte by byte from a UART: undoes the SLIP escaping, writes the body (CMD,
    SEQ, payload, LEN, CRC) into a frame buffer through ``wr_*`` and checks CRC and LEN as the
    bytes arrive (``max_body`` bytes at most).

    A byte is taken every other cycle at most (``i`` is not ready the cycle after one was
    taken; a UART's bytes come tens of cycles apart and wait in its register). While ``busy``
    (the buffer is the executor's) nothing is written and the frame is dropped at its END
    (``dropped`` pulses).
    Otherwise a frame's END puts one record on ``frame``: ``code`` 0 for a good frame, else
    the error code (``crc_error`` or ``len_error`` pulses as it appears), ``length`` the payload
    bytes (the body without CMD, SEQ, LEN and CRC), and its CMD and SEQ; the record stays
    until taken.
    """

    def __init__(self, max_body: int):
        self.max_body = max_body
        super().__init__({
            "i": In(stream.Signature(8)), "busy": In(1),
            "wr_addr": Out(range(max_body + 1)), "wr_data": Out(8), "wr_en": Out(1),
            "frame": Out(stream.Signature(_FRAME)),
            "dropped": Out(1), "crc_error": Out(1), "len_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        busy = self.busy
        count = Signal(range(self.max_body + 1))
        m.submodules.crc = rx_crc = CRC16.create()
        tail = Signal(32)
        esc = Signal()
        overflow = Signal()
        bad_esc = Signal()
        lost = Signal()                       # a byte of this frame arrived while busy
        ev = self.frame.valid
        f = self.frame.payload
        # A byte is taken into a register with its class, and acted on the next cycle (one
        # byte every other cycle: a UART's come tens of cycles apart and wait in its own
        # register). The tests on the frame so far are registers too, computed every cycle
        # from count, tail and the CRC, so current when the next byte is acted on: the
        # receiver's decisions start at registers, not at the byte's compares (Fmax).
        held = Signal()
        b = Signal(8)
        is_end, is_esc = Signal(), Signal()
        is_esc_end, is_esc_esc = Signal(), Signal()
        take = self.i.valid & ~held
        m.d.comb += self.i.ready.eq(~held)
        m.d.sync += held.eq(take)
        p = self.i.payload
        with m.If(take):
            m.d.sync += [b.eq(p), is_end.eq(p == END), is_esc.eq(p == ESC),
                         is_esc_end.eq(p == ESC_END), is_esc_esc.eq(p == ESC_ESC)]
        empty = Signal(init=1)                # count == 0
        full = Signal(init=self.max_body == 0)
        short = Signal(init=1)                # count < 6
        crc_bad = Signal(init=CRC16.compute(b"") != 0)
        len_bad = Signal(init=1)              # LEN is not count - 6
        length = (tail[24:32] | (tail[16:24] << 8))
        m.d.sync += [empty.eq(count == 0), full.eq(count == self.max_body),
                     short.eq(count < 6), crc_bad.eq(rx_crc.crc != 0),
                     len_bad.eq(length != count - 6)]
        # The error pulses are registers (the STATUS counters' enables start there).
        m.d.sync += [self.dropped.eq(0), self.crc_error.eq(0), self.len_error.eq(0)]
        dat = Signal(8)
        put = Signal()
        with m.If(held):
            with m.If(is_end):
                with m.If(~empty | overflow | bad_esc):
                    with m.If(busy | lost):
                        m.d.sync += self.dropped.eq(1)
                    with m.Else():
                        m.d.sync += ev.eq(1)
                        with m.If(overflow):
                            m.d.sync += [f.code.eq(ERR_TOO_LONG), self.len_error.eq(1)]
                        with m.Elif(bad_esc):
                            m.d.sync += [f.code.eq(ERR_CRC), self.crc_error.eq(1)]
                        with m.Elif(short):
                            m.d.sync += [f.code.eq(ERR_LENGTH), self.len_error.eq(1)]
                        with m.Elif(crc_bad):
                            m.d.sync += [f.code.eq(ERR_CRC), self.crc_error.eq(1)]
                        with m.Elif(len_bad):
                            m.d.sync += [f.code.eq(ERR_LENGTH), self.len_error.eq(1)]
                        with m.Else():
                            m.d.sync += f.code.eq(0)
                        m.d.sync += f.length.eq(count - 6)
                m.d.comb += rx_crc.start.eq(1)
                m.d.sync += [count.eq(0), esc.eq(0), overflow.eq(0), bad_esc.eq(0),
                             lost.eq(0)]
            with m.Elif(esc):
                m.d.sync += esc.eq(0)
                with m.If(is_esc_end | is_esc_esc):
                    m.d.comb += [put.eq(1), dat.eq(Mux(is_esc_end, END, ESC))]
                with m.Else():
                    m.d.sync += bad_esc.eq(1)
            with m.Elif(is_esc):
                m.d.sync += esc.eq(1)
            with m.Else():
                m.d.comb += [put.eq(1), dat.eq(b)]
        with m.If(put):
            with m.If(full):
                m.d.sync += overflow.eq(1)
            with m.Else():
                # While the executor runs, the buffer is its: the frame is dropped at its END.
                m.d.comb += [self.wr_addr.eq(count), self.wr_data.eq(dat), self.wr_en.eq(~busy)]
                with m.If(busy):
                    m.d.sync += lost.eq(1)
                m.d.comb += [rx_crc.data.eq(dat), rx_crc.valid.eq(1)]
                m.d.sync += [count.eq(count + 1), tail.eq(Cat(dat, tail[:24]))]
                with m.If(empty):
                    m.d.sync += f.cmd.eq(dat)
                with m.If(count == 1):
                    m.d.sync += f.seq.eq(dat)
        with m.If(self.frame.valid & self.frame.ready):
            m.d.sync += ev.eq(0)
        return m
