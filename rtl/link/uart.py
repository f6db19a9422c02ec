"""UART for the host link: 8N1, LSB first, a fixed number of clock cycles per bit.

A frame is a start bit (0), eight data bits least significant first and a stop bit (1), each
``divisor`` clock cycles long; the idle line is high. ``divisor`` is the clock frequency over
the baud rate, rounded to an integer (12 MHz / 115200 baud -> 104, 0.16 % off).

* :class:`UARTTx` sends the bytes of its ``i`` stream on ``tx``. A byte waiting on ``i`` when a
  stop bit ends is taken in that stop bit's last cycle and its start bit follows at once, so a
  steady stream runs at full throughput, one byte per ``10 * divisor`` cycles.
* :class:`UARTRx` receives ``rx`` (2-flip-flop synchroniser, then a falling-edge start
  detector, a mid-bit re-check of the start bit and mid-bit sampling of the data and stop bits)
  and offers each byte on ``o`` from a one-byte register. Framing errors and overruns drop the
  byte and pulse ``error`` / ``overrun``.
* :func:`uart_bits` is the line of a frame sequence, one level per clock cycle: the reference
  for tests and for board models.

Clock tolerance of the receiver: it samples bit ``k`` (0 = start, 9 = stop)
``h + k * divisor`` cycles after the first cycle it sees the start bit low, with
``h = (divisor - 1) // 2``. As the line's edge falls anywhere in the cycle before that, the
stop bit is still read correctly when the transmitter's bit period is up to
``h / (9 * divisor)`` longer (slow transmitter) or ``(divisor - 1 - h) / (10 * divisor)``
shorter (fast transmitter) than ``divisor``; less for divisor 4 (+2.8 % / -5 %), at least
+/-3.7 % for every divisor >= 5, tending to +5.6 % / -5 % for large divisors.
"""

from __future__ import annotations

import operator

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..checked import CheckedComponent

__all__ = ["UARTTx", "UARTRx", "uart_bits", "uart_frame", "TX_MIN_DIVISOR", "RX_MIN_DIVISOR"]

#: Smallest ``divisor`` (clock cycles per bit) of :class:`UARTTx`.
TX_MIN_DIVISOR = 2
#: Smallest ``divisor`` of :class:`UARTRx`: a bit of 2 or 3 cycles has no mid-bit sample point
#: with margin on both sides (the start edge is only known to the cycle), and the glitch check
#: of the start bit needs a half bit of at least 2 cycles.
RX_MIN_DIVISOR = 4


def _divisor(divisor, minimum: int, what: str) -> int:
    """``divisor`` as an ``int`` >= ``minimum``, or ValueError naming the value."""
    try:
        if isinstance(divisor, bool):
            raise TypeError
        value = operator.index(divisor)
    except TypeError:
        raise ValueError(f"{what} divisor (clock cycles per bit) must be an integer "
                         f">= {minimum}, got {divisor!r}") from None
    if value < minimum:
        raise ValueError(f"{what} divisor (clock cycles per bit) must be an integer "
                         f">= {minimum}, got {divisor!r}")
    return value


def uart_frame(byte: int) -> list[int]:
    """The ten bits of the 8N1 frame of ``byte``: start (0), data LSB first, stop (1)."""
    if not 0 <= byte < 256:
        raise ValueError(f"a UART byte must be in [0, 255], got {byte}")
    return [0] + [(byte >> k) & 1 for k in range(8)] + [1]


def uart_bits(data: bytes, divisor: int) -> list[int]:
    """The line level per clock cycle while ``data`` is sent back to back at ``divisor``
    cycles per bit: each byte's frame (:func:`uart_frame`), every bit repeated ``divisor``
    times, no idle cycles before, between or after the frames."""
    divisor = _divisor(divisor, 1, "uart_bits")
    line: list[int] = []
    for byte in data:
        for bit in uart_frame(byte):
            line += [bit] * divisor
    return line


class UARTTx(CheckedComponent):
    """UART transmitter: sends each byte taken from ``i`` on ``tx`` (idle high), ``divisor``
    clock cycles per bit.

    ``i.ready`` is high while the line is idle and during the last cycle of a stop bit; it never
    depends on ``i.valid``. The byte is latched at the transfer, so ``i`` may change or drop
    ``valid`` at any time after it; its start bit begins in the next cycle.
    """

    @classmethod
    def check_args(cls, divisor) -> None:
        _divisor(divisor, TX_MIN_DIVISOR, cls.__name__)

    def __init__(self, divisor: int):
        self.divisor = _divisor(divisor, TX_MIN_DIVISOR, type(self).__name__)
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        busy = Signal()
        tick = Signal(range(d))              # cycle within the current bit
        bit = Signal(range(10))              # 0 = start, 1..8 = data, 9 = stop
        rest = Signal(9)                     # bits still to send after the current one
        last = Signal()                      # last cycle of the stop bit
        m.d.comb += [last.eq(busy & (bit == 9) & (tick == d - 1)),
                     self.i.ready.eq(~busy | last)]

        with m.If(busy):
            m.d.sync += tick.eq(tick + 1)
            with m.If(tick == d - 1):
                m.d.sync += [tick.eq(0), bit.eq(bit + 1),
                             self.tx.eq(rest[0]), rest.eq(rest >> 1)]
                with m.If(bit == 9):
                    m.d.sync += [busy.eq(0), self.tx.eq(1)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), tick.eq(0), bit.eq(0), self.tx.eq(0),
                         rest.eq(Cat(self.i.payload, 1))]
        return m


class UARTRx(CheckedComponent):
    """UART receiver: bytes from the line ``rx`` (idle high), ``divisor`` clock cycles per bit,
    ``divisor`` >= :data:`RX_MIN_DIVISOR` (4).

    ``rx`` passes a 2-flip-flop synchroniser (initial value 1). A start bit begins when the
    synchronised line is seen low after having been high; it is checked again
    ``h = (divisor - 1) // 2`` cycles later, and if the line is high again by then (a glitch
    shorter than half a bit) the receiver goes back to waiting. Data bits and the stop bit are
    sampled every ``divisor`` cycles after that check, at mid-bit.

    Output: a UART cannot be back-pressured, so ``o`` is a one-byte register. A byte is offered
    on ``o`` the cycle after its stop bit is sampled, ``valid`` stays high until ``ready``
    takes it. If the next byte completes while the previous one is still not taken (``valid``
    high and ``ready`` low in that cycle), the *new* byte is dropped, the old one stays on
    ``o``, and ``overrun`` is high for one cycle.

    A stop bit read as 0 is a framing error: the byte is dropped, ``error`` is high for one
    cycle, and the receiver waits for the line to return high before it looks for the next
    start bit, so a break (line held low) gives one error and no bytes.

    See the module docstring for the tolerated transmitter clock error (+/-3 % needs
    ``divisor`` >= 5).
    """

    @classmethod
    def check_args(cls, divisor) -> None:
        _divisor(divisor, RX_MIN_DIVISOR, cls.__name__)

    def __init__(self, divisor: int):
        self.divisor = _divisor(divisor, RX_MIN_DIVISOR, type(self).__name__)
        #: Cycles from the first cycle the synchronised line shows the start bit to its check.
        self.half = (self.divisor - 1) // 2
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        d, h = self.divisor, self.half
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)

        cnt = Signal(range(d))               # cycles left to the next sample
        bit = Signal(range(9))               # data bits sampled so far
        shreg = Signal(8)                    # data bits, the first one ends in bit 0

        m.d.sync += [self.error.eq(0), self.overrun.eq(0)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM(init="IDLE"):
            with m.State("IDLE"):            # line high (entered only after seeing it high)
                with m.If(~line):
                    m.d.sync += cnt.eq(h - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
                    m.d.sync += [cnt.eq(d - 1), bit.eq(0)]
                    with m.If(line):         # a glitch: wait for the next falling edge
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
                    m.d.sync += [cnt.eq(d - 1), bit.eq(bit + 1),
                                 shreg.eq(Cat(shreg[1:], line))]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
                    with m.If(line):
                        with m.If(self.o.valid & ~self.o.ready):
                            m.d.sync += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):           # framing error: wait for the line to go high
                with m.If(line):
                    m.next = "IDLE"
        return m
