"""The board side of the host link: :class:`HostLink`, commands around a core.

:class:`HostLink` is the platform-independent inner top that every board wraps (``rx``, ``tx``
and ``leds`` are its only pins). It implements ``docs/protocol.md``:

* the **receiver** takes every byte the UART delivers (a UART cannot be paused), undoes the SLIP
  escaping, writes the body into a frame buffer (``max_body`` bytes; by default what is left of
  :data:`~rtl.link.protocol.MAX_BODY` = 512 bytes, one block RAM, beside the IDENT reply) and
  checks the CRC and LEN trailer as bytes arrive; a frame that ends (END byte) is handed to the
  executor, or counted as dropped if the executor is busy;
* the **executor** answers IDENT from a ROM, RESET by resetting the core (the weights stay),
  STATUS from its counters, and STEP in two passes over the buffered payload: a check (the
  whole frame is rejected with the offset of the first bad byte, nothing is run) and a feed
  into the core, whose output records the **encoder** turns into response bytes as they come;
* the **frame transmitter** adds the header, the LEN and CRC trailer and the SLIP escaping, and
  its UART is the back-pressure that paces the core.

Flow control is stop-and-wait: the host sends a frame only after the previous response, and the
buffer holds one whole frame, so no byte is lost at any baud rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from amaranth.hdl import (Array, C, Cat, ClockDomain, ClockSignal, DomainRenamer, Instance,
                          Module, Mux, ResetInserter, ResetSignal, Signal, Value)
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.vendor import LatticeECP5Platform

from model.ir import Network
from ..checked import CheckedComponent
from ..cores import core as core_named, spec_of
from ..interface import step_in_layout
from ..logic import OneHot, lowest_set
from .framing import FrameRx, FrameTx
from .protocol import (CMD_ERROR, CMD_IDENT, CMD_RESET, CMD_STATUS, CMD_STEP, ERR_COMMAND, ERR_PAYLOAD, FLAG_MEMBRANES, FLAG_PREDICT, FLAG_SPIKES, MAX_BODY,
                       NO_PREDICTION, RESPONSE, ident_payload, token_format)
from .readout import DEFAULT_MAX_STEPS, Readout, SerialReadout
from .uart import UARTRx, UARTTx

__all__ = ["HostLink"]

#: What follows a reply's header (:attr:`Command.kind`): the end, the IDENT reply, the STATUS
#: counters, a STEP's output.
K_END, K_IDENT, K_STATUS, K_STEP = 0, 1, 2, 3


# The parts of :class:`HostLink` share these signals.

@dataclass
class Counters:
    """The STATUS counters, each saturating at its largest value."""
    steps: Signal                             # steps run since RESET
    crc_errors: Signal
    len_errors: Signal
    dropped: Signal                           # frames that ended while the executor was busy
    uart_errors: Signal                       # UART framing errors and overruns
    steps_split: "SplitCounter | None" = None  # how ``steps`` is counted

    @property
    def status(self) -> Value:
        """The STATUS reply's body."""
        return Cat(self.steps, self.crc_errors, self.len_errors, self.dropped, self.uart_errors)


@dataclass
class BufferReader:
    """The frame buffer read in order: ``byte`` is ``buf[pos]`` while ``ready``. The executor
    drives ``adv`` (the next byte; only while ``ready``) or ``load`` (jump to ``load_to``,
    and ``stop`` to ``stop_to``), requests that move ``pos`` two cycles later; ``more`` while
    ``pos`` is below ``stop`` (a register, moving with ``pos``). The block RAM is read at
    ``pos`` and ``byte`` is a register behind its output (whose clock-to-out is slow on ECP5),
    so ``byte`` is ready once ``pos`` has held for two cycles: a byte every four cycles, far
    above any UART's rate."""
    depth: int                                # the buffer's bytes: a frame, then IDENT's reply
    pos: Signal
    stop: Signal
    adv: Signal
    load: Signal
    load_to: Signal
    stop_to: Signal
    byte: Value
    more: Value
    ready: Value


@dataclass
class ByteStream:
    """The executor's bytes into the frame transmitter: it drives ``valid``, ``data`` and
    ``end`` (the response's last byte); a byte offered while ``ready`` is taken."""
    valid: Signal
    data: Signal
    end: Signal
    ready: Value


@dataclass
class Command:
    """The executor's registers for the command being run."""
    cmd: Signal
    seq: Signal
    flags: Signal                             # STEP's flags byte
    bi: Signal                                # byte index within a fixed reply
    err_code: Signal
    err_detail: Signal
    err_seen: Signal                          # an error was reported since the last RESET
    kind: Signal                              # what follows the header: K_END, K_IDENT, ...

    @property
    def error(self) -> Value:
        """The ERROR reply's code, command and detail."""
        return Cat(self.err_code, self.cmd, self.err_detail)


@dataclass
class TokenParser:
    """The step-list parser, one for both passes over a STEP payload (the check and the feed):
    ``take`` hands it the current byte, which it parses the cycle after (``took``, a
    register: the executor's decisions end at the byte's register, not in the parser; Fmax);
    the cycle after that, ``token_end`` and ``step_end`` say what that byte ended, and
    ``index``, ``value``, ``layer`` are the token it ended (``ok`` if valid), also from
    registers. The reader gives a byte every third cycle at most, so no byte is taken before
    they are seen; what waits for the parser to be idle tests ``took`` too."""
    tb: int                                   # bytes per token
    tok: Signal                               # the token's bytes so far (shifted in)
    tk: Signal                                # token bytes taken
    left: Signal                              # tokens left in the current count
    cont: Signal                              # the current count's step continues
    cnt_lo: Signal
    phase: Signal                             # next: 0 a count's low byte, 1 its high, 2 tokens
    strobe_due: Signal                        # a step's events are in: send its step strobe
    take: Signal
    took: Signal                              # a byte is being parsed (taken last cycle)
    token_end: Signal                         # registered: the byte parsed ended a token
    step_end: Signal                          # registered: ... a step's events
    ok: Signal
    ends_token: Signal                        # the byte being parsed ends a token
    ends_step: Signal                         # ... a step's events
    index: Value
    value: Value
    layer: Value


@dataclass
class CoreInput:
    """The core's input record, and the steps counted in and out."""
    rec: Value                                # a view of step_in_layout
    valid: Signal
    fed: Signal                               # steps strobed in this frame
    done: Signal                              # steps whose output is complete in this frame
    sample: Signal                            # steps since RESET (for the read-out bound)
    #: done == fed, a cycle late (a register: Fmax). It is never wrongly high: fed moves only
    #: with ``valid`` rising, which holds the executor for longer, and done only up to fed.
    caught_up: Signal
    sample_split: "SplitCounter | None" = None  # how ``sample`` is counted


@dataclass
class EncoderOut:
    """The response encoder's byte stream, ``busy`` while it holds a record, and the record
    stream it takes from (which the read-out watches)."""
    valid: Signal
    data: Signal
    ready: Signal
    busy: Signal
    records: Records


@dataclass
class Records:
    """The core's output records as the link takes them: ``payload`` while ``valid``, taken
    when the taker drives ``ready``."""
    valid: Value
    payload: Value
    ready: Value


@dataclass
class Prediction:
    """The read-out's prediction, ``wait`` cycles after the last record."""
    wait: Signal
    value: Signal


@dataclass
class Executor:
    """What the command executor's states read and drive."""
    frame: FrameRx
    soft_rst: Signal
    counters: Counters
    reader: BufferReader
    out: ByteStream
    cmd: Command
    tokens: TokenParser
    feed: CoreInput
    enc: EncoderOut
    pred: Prediction


def _bump(m, c: Signal):
    """Count ``c`` up, saturating at its largest value."""
    m.d.sync += c.eq(Mux(c == (1 << len(c)) - 1, c, c + 1))


class SplitCounter:
    """A wide counter (wrapping) counted as two halves: the upper half takes the lower half's
    carry from a register a cycle later, so no carry chain spans the whole width (Fmax). Its
    value is whole again two cycles after an increment; the link reads the step counters only
    many cycles after a step. Make it before the statements that clear it, which then
    win over a carry in flight."""

    def __init__(self, m, value: Signal):
        self.value, self.half = value, len(value) // 2
        self.carry = Signal(name=f"{value.name}_carry")
        hi = value[self.half:]
        with m.If(self.carry):
            m.d.sync += [hi.eq(hi + 1), self.carry.eq(0)]

    def inc(self, m):
        lo = self.value[:self.half]
        m.d.sync += [lo.eq(lo + 1), self.carry.eq(lo == (1 << self.half) - 1)]

    def clear(self, m):
        m.d.sync += [self.value.eq(0), self.carry.eq(0)]


class HostLink(CheckedComponent):
    """A built core behind the framed UART protocol of ``docs/protocol.md``.

    ``core`` is a core component built through :data:`rtl.cores.CORES` (the network is its
    ``net``), observing every LIF layer; :meth:`around` builds it the way the link needs.
    Whether it is gated is the component's ``gate`` (its ``mask`` port then follows each
    STEP's flags); whether its read-out is the serial one is its registry entry's
    ``serial_readout`` (:func:`rtl.cores.spec_of`).

    ``divisor`` is the UART's clock cycles per bit (see :func:`uart_divisor`); ``clock_hz`` and
    ``baud`` are only reported by IDENT. A core with SPRAM or off-chip weight arrays needs a
    ``loader``: called as ``loader(image=..., width=...)`` with the core's load image
    (:attr:`image`), it returns the component whose ``o`` stream fills the core's ``wl``
    once after configuration (a RESET keeps the weights). ``max_steps`` bounds a sample for
    the read-out's sums (when the last layer is a read-out); ``max_body`` is the frame buffer's
    size (default: 512 bytes less the IDENT reply, which is stored in the same memory).

    Ports: ``rx`` (the line from the host, idle high), ``tx`` (to the host), ``leds``: bit 0 a
    heartbeat (about 1 Hz at ``clock_hz``; off with ``heartbeat=False``, so that an idle
    simulated board reaches a fixed point and sleeps), bit 1 busy (a command is being run),
    bit 2 an error was reported since the last RESET.
    """

    @classmethod
    def check_args(cls, core: wiring.Component, **_) -> None:
        """Refuse a core that is no registered core's component, or that observes fewer than
        every LIF layer."""
        spec_of(core)
        lif = tuple(range(1, len(core.net.layers)))
        if tuple(getattr(core, "observe", lif)) != lif:
            raise ValueError("the host link sends every LIF layer's records: give it a core "
                             "that observes them all")

    def __init__(self, core: wiring.Component, *, divisor: int, clock_hz: int = 0,
                 baud: int = 0, max_steps: int = DEFAULT_MAX_STEPS, max_body: int | None = None,
                 heartbeat: bool = True, loader=None):
        net, spec = core.net, spec_of(core)
        self.core, self.net, self.divisor = core, net, divisor
        self.clock_hz, self.baud = int(clock_hz), int(baud)
        self.heartbeat = heartbeat
        self.lanes = core.lanes
        #: The words the core expects on ``wl`` (empty without SPRAM or off-chip arrays), and
        #: the component that streams them (e.g. :class:`boards.flash.FlashLoader`; the board
        #: top wires its pins), or None.
        self.image = core.load_image()
        self.loader = None
        if self.image:
            if loader is None:
                raise ValueError("this core keeps weights in SPRAM or off chip: give HostLink "
                                 "a loader for its wl stream (a board top uses its SPI "
                                 "flash), or keep every weight array in block RAM "
                                 "(memories=...)")
            self.loader = loader(image=self.image, width=core.load_width)
        self.readout = None
        if not net.layers[-1].spiking:
            # The serial read-out is for the smallest devices (the lean core's): sums in block
            # RAM, a lane per cycle.
            kind_ro = SerialReadout if spec.serial_readout else Readout
            self.readout = kind_ro(net, lanes=self.lanes, max_steps=max_steps)
        self.max_steps = max_steps if self.readout is not None else 0
        def ident(body):
            return ident_payload(net, lanes=self.lanes, clock_hz=self.clock_hz, baud=self.baud,
                                 max_steps=self.max_steps, max_body=body)
        if max_body is None:      # the frame buffer and the IDENT reply share 512 bytes
            max_body = MAX_BODY - len(ident(0))
        if max_body < 16:
            raise ValueError(f"max_body must be at least 16 bytes, got {max_body}")
        self.max_body = max_body
        #: The IDENT reply, stored in the frame buffer's memory above the frame.
        self.ident = ident(max_body)
        self.token = token_format(net)
        self.urx, self.utx = UARTRx(divisor), UARTTx(divisor)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(3)})

    @classmethod
    def around(cls, net: Network, *, core: str = "network", divisor: int, clock_hz: int = 0,
               baud: int = 0, max_steps: int = DEFAULT_MAX_STEPS, max_body: int | None = None,
               heartbeat: bool = True, loader=None, **core_knobs) -> HostLink:
        """The link around ``net`` on the core named ``core`` (:data:`rtl.cores.CORES`), built
        with ``core_knobs``; the other arguments are the constructor's. The link sets the
        core's ``gate`` and observed layers itself: a gated core is built with ``gate`` when
        the last layer is a read-out, so that a command that asks for no spikes or membranes
        gets only the read-out's records and the output port does not bound its step rate."""
        spec = core_named(core)
        if "gate" in core_knobs or "observe" in core_knobs:
            raise ValueError("the host link sets the core's gate and observed layers itself")
        if spec.gated:
            core_knobs["gate"] = not net.layers[-1].spiking
        return cls(spec.build(net, **core_knobs), divisor=divisor, clock_hz=clock_hz,
                   baud=baud, max_steps=max_steps, max_body=max_body, heartbeat=heartbeat,
                   loader=loader)

    # ----------------------------------------------------------------------------------------
    def elaborate(self, platform):
        # One method per part; the signals they share travel in the dataclasses above. The
        # parts add their statements in the order they are called here, and the generated
        # Verilog's anonymous names follow that order: keep it. Likewise the signals' names:
        # Amaranth names a signal after the variable it is assigned to, and of a tuple
        # assignment (``a, b = Signal(), Signal()``) only the last one; the others are
        # anonymous in the Verilog.
        m = Module()
        ftx = self._uarts(m)
        soft_rst = self._core(m, platform)
        wr, rd, depth = self._frame_buffer(m)
        counters = self._counters(m)
        busy = Signal()                       # the executor is running a command
        frx = self._receiver(m, wr, counters, busy)
        reader = self._buffer_reader(m, rd, depth)
        out = self._byte_stream(m, ftx)
        cmd = self._command(m)
        tokens = self._tokens(m, reader.byte)
        feed = self._core_input(m)
        enc = self._encoder(m, cmd.flags, feed.done)
        pred = Prediction(Signal(range(16), name="pred_wait"), Signal(16, name="pred"))
        self._readout_inputs(m, cmd, feed, reader, tokens, enc)
        fsm = self._executor(m, Executor(frx, soft_rst, counters, reader, out, cmd, tokens, feed,
                                         enc, pred))
        m.d.comb += busy.eq(~fsm.ongoing("IDLE"))
        self._leds(m, busy, cmd.err_seen)
        return m

    # ---- the UARTs, the core, the frame buffer -------------------------------------------------
    def _uarts(self, m) -> FrameTx:
        """The UARTs on the pins, and the frame transmitter on the outgoing one."""
        m.submodules.urx = urx = self.urx
        m.submodules.utx = utx = self.utx
        m.submodules.ftx = ftx = FrameTx()
        # A byte register between the frame transmitter and the UART, which sits by its
        # pin: the transmitter's escaping and state logic then ends in a register beside
        # it, not across the die (Fmax). The UART takes a byte every ten bit times, so the
        # register costs no throughput.
        full, q = Signal(name="tx_full"), Signal(8, name="tx_byte")
        m.d.comb += [ftx.o.ready.eq(~full), utx.i.valid.eq(full), utx.i.payload.eq(q)]
        with m.If(ftx.o.valid & ~full):
            m.d.sync += [q.eq(ftx.o.payload), full.eq(1)]
        with m.Elif(utx.i.ready):
            m.d.sync += full.eq(0)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        return ftx

    def _core(self, m, platform) -> Signal:
        """The core, its loader and read-out, all reset by the returned soft reset (RESET)."""
        soft_rst = Signal(name="soft_rst")   # asked for by the executor (RESET)
        # The reset reaches the core's registers from a register, a cycle after it is asked
        # for: the executor's decisions never drive that net, which fans out to every
        # register of the core (Fmax).
        if isinstance(platform, LatticeECP5Platform) and getattr(self.core, "global_reset", True):
            # On ECP5, through a global buffer: nextpnr routes only clocks on the global
            # network by itself, and a reset net across a large die is otherwise the slowest
            # (a core may decline it: ``global_reset = False``). The core, its loader and
            # read-out run in a domain of their own on the same clock, reset by that one net
            # only: the domain's own reset would otherwise reach each of their flip-flops
            # beside it, ORed in a LUT per flip-flop and routed from the reset synchroniser.
            # The domain's reset sets the register instead (its initial value is 1), so the
            # core is held in reset while the domain is and one cycle after.
            q = Signal(name="soft_rst_q", init=1)
            m.d.sync += q.eq(soft_rst)
            rst_q = Signal(name="soft_rst_g")
            m.submodules.soft_rst_buf = Instance("DCCA", i_CLKI=q, i_CE=C(1, 1), o_CLKO=rst_q)
            m.domains.core = ClockDomain("core", local=True)
            m.d.comb += [ClockSignal("core").eq(ClockSignal("sync")),
                         ResetSignal("core").eq(rst_q)]
            reset = DomainRenamer("core")
        else:
            rst_q = Signal(name="soft_rst_q")
            m.d.sync += rst_q.eq(soft_rst)
            reset = ResetInserter(rst_q)
        m.submodules.core = reset(self.core)
        if self.loader is not None:
            # A RESET restarts the loader with the core: one that comes while the weights are
            # still streaming in (a host that connects right after configuration) would
            # otherwise leave the core waiting for words the loader has already sent. Once
            # the weights are in, the core takes no more (the loader's stream just waits).
            m.submodules.loader = reset(self.loader)
            wiring.connect(m, self.loader.o, self.core.wl)
        if self.readout is not None:
            m.submodules.readout = reset(self.readout)
        return soft_rst

    def _frame_buffer(self, m):
        """The frame buffer's write and read ports and its depth; the IDENT reply lives above
        the frame in the same memory (one block RAM)."""
        depth = self.max_body + len(self.ident)
        m.submodules.buf = buf = memory.Memory(shape=8, depth=depth,
                                               init=[0] * self.max_body + list(self.ident))
        wr = buf.write_port()
        rd = buf.read_port()
        return wr, rd, depth

    # ---- counters (STATUS) ---------------------------------------------------------------------
    def _counters(self, m) -> Counters:
        """The STATUS counters; this part counts the UART's errors, the receiver the rest."""
        def counter(name, bits=16):
            return Signal(bits, name=name)
        c = Counters(steps=counter("st_steps", 32), crc_errors=counter("st_crc"),
                     len_errors=counter("st_len"), dropped=counter("st_dropped"),
                     uart_errors=counter("st_uart"))
        c.steps_split = SplitCounter(m, c.steps)
        with m.If(self.urx.error | self.urx.overrun):
            _bump(m, c.uart_errors)
        return c

    # ---- receiver ------------------------------------------------------------------------------
    def _receiver(self, m, wr, counters: Counters, busy: Signal) -> FrameRx:
        """Bytes from the UART into the frame buffer; its ``frame`` stream hands a frame that
        ended to the executor (which takes it when not ``busy``)."""
        m.submodules.frx = frx = FrameRx(self.max_body)
        wiring.connect(m, self.urx.o, frx.i)
        m.d.comb += [frx.busy.eq(busy), wr.addr.eq(frx.wr_addr), wr.data.eq(frx.wr_data),
                     wr.en.eq(frx.wr_en)]
        with m.If(frx.dropped):
            _bump(m, counters.dropped)
        with m.If(frx.crc_error):
            _bump(m, counters.crc_errors)
        with m.If(frx.len_error):
            _bump(m, counters.len_errors)
        return frx

    # ---- buffer reader -------------------------------------------------------------------------
    def _buffer_reader(self, m, rd, depth: int) -> BufferReader:
        """The frame buffer's read port at ``pos`` and ``byte``, a register behind its output
        (whose clock-to-out is slow on ECP5). ``adv`` and ``load`` are requests, registered
        before they move ``pos`` (the executor's decisions end at registers, and ``pos``,
        its comparisons and the block RAM's address start at them; Fmax): ``byte`` is
        ``buf[pos]`` once ``pos`` has held for two cycles (``ready``), a byte every four
        cycles, far above any UART's rate. ``pos`` and ``more`` move two cycles after the
        request."""
        pos = Signal(range(depth + 1))
        stop = Signal(range(depth + 1))
        adv = Signal()
        load = Signal()
        load_to = Signal(range(depth + 1))
        stop_to = Signal(range(depth + 1))
        adv_q = Signal(name="buf_adv_q")
        load_q = Signal(name="buf_load_q")
        load_to_q = Signal.like(load_to, name="buf_load_to_q")
        stop_to_q = Signal.like(stop_to, name="buf_stop_to_q")
        load_more_q = Signal(name="buf_load_more_q")
        m.d.sync += [adv_q.eq(adv & ~load), load_q.eq(load)]
        with m.If(load):
            m.d.sync += [load_to_q.eq(load_to), stop_to_q.eq(stop_to),
                         load_more_q.eq(load_to < stop_to)]
        with m.If(load_q):
            m.d.sync += [pos.eq(load_to_q), stop.eq(stop_to_q)]
        with m.Elif(adv_q):
            m.d.sync += pos.eq(pos + 1)
        m.d.comb += rd.addr.eq(pos)
        byte = Signal(8, name="buf_byte")
        moved = Signal(name="buf_moved")      # pos moved in the previous cycle
        ready = Signal(name="buf_ready")
        more = Signal(name="buf_more")
        # `more` from comparisons of registers, which the registered requests only select.
        more_next = Mux(load_q, load_more_q, Mux(adv_q, pos + 1 < stop, pos < stop))
        m.d.sync += [byte.eq(rd.data), moved.eq(adv_q | load_q),
                     ready.eq(~adv & ~load & ~adv_q & ~load_q & ~moved), more.eq(more_next)]
        return BufferReader(depth, pos, stop, adv, load, load_to, stop_to, byte=byte, more=more,
                            ready=ready)

    # ---- the executor's byte stream into the frame transmitter, and its registers --------------
    def _byte_stream(self, m, ftx: FrameTx) -> ByteStream:
        """The executor's bytes into the frame transmitter, through a one-byte register (the
        executor's and the encoder's logic ends there, not in the transmitter's): a byte every
        two cycles at most, far above any UART's rate. Never ready in the cycle after it took
        a byte (the encoder relies on it)."""
        fb_valid, fb_data, fb_end = Signal(), Signal(8), Signal()
        full = Signal(name="fb_full")
        q_data, q_end = Signal(8, name="fb_q"), Signal(name="fb_q_end")
        m.d.comb += [ftx.i.valid.eq(full), ftx.i.payload.data.eq(q_data),
                     ftx.i.payload.end.eq(q_end)]
        sent = fb_valid & ~full
        with m.If(sent):
            m.d.sync += [full.eq(1), q_data.eq(fb_data), q_end.eq(fb_end)]
        with m.Elif(ftx.i.ready):
            m.d.sync += full.eq(0)
        return ByteStream(fb_valid, fb_data, fb_end, ready=~full)

    def _command(self, m) -> Command:
        """The executor's registers; a gated core's output gate follows the STEP flags."""
        cmd, seq = Signal(8), Signal(8)
        flags = Signal(8)
        core = self.core
        if getattr(core, "gate", False):
            # Spikes or membranes asked for: every layer's records; else the read-out's only.
            k = len(core.observe)
            # Registered: the flags are set before the STEP's first record (Fmax).
            m.d.sync += core.mask.eq(Mux(flags[0] | flags[1], (1 << k) - 1, 1 << (k - 1)))
        bi = Signal(range(17))
        err_code, err_detail = Signal(8), Signal(16)
        err_seen = Signal()
        kind = Signal(range(4))
        return Command(cmd, seq, flags, bi, err_code, err_detail, err_seen, kind)

    # ---- token parsing (check and feed passes) -------------------------------------------------
    def _tokens(self, m, byte) -> TokenParser:
        """The step-list parser both STEP passes share, and the current token's fields."""
        net = self.net
        tb = self.token.nbytes
        tok = Signal(8 * tb)
        tk = Signal(range(tb + 1))
        left = Signal(16)
        cont = Signal()
        cnt_lo = Signal(8)
        phase = Signal(2)
        strobe_due = Signal()
        ib, vb = self.token.index_bits, self.token.value_bits
        # Little-endian: byte k of the token is bits 8k..8k+7; bytes arrive in order and shift
        # in from the top, so after the token's last byte `tok` holds it.
        t_pad = tok[self.token.bits:] if 8 * tb > self.token.bits else C(0, 1)
        take, token_end, step_end = Signal(), Signal(), Signal()
        took, byte_q = Signal(name="tok_took"), Signal(8, name="tok_byte")
        ends_token, ends_step = Signal(), Signal()
        ok_tok = Signal()
        t = TokenParser(tb, tok, tk, left, cont, cnt_lo, phase, strobe_due, take, took,
                        token_end, step_end, ok_tok, ends_token, ends_step, index=tok[:ib],
                        value=tok[ib:ib + vb], layer=tok[ib + vb:self.token.bits])
        m.d.sync += [token_end.eq(ends_token), step_end.eq(ends_step), took.eq(take)]
        with m.If(take):
            m.d.sync += byte_q.eq(byte)
        with m.If(took):
            self._parse(m, t, byte_q)
        conds = []
        if net.layers[0].n:
            conds.append((t.layer == 0) & (t.index < net.layers[0].n) & (t.value != 0))
        for l in net.forced_layers:
            conds.append((t.layer == l) & (t.index < net.layers[l].n) & (t.value == 1))
        m.d.comb += ok_tok.eq((t_pad == 0) & (Cat(*conds).any() if conds else 0))
        return t

    @staticmethod
    def _parse(m, t: TokenParser, byte):
        """Take one payload byte of the step list: a count (u16 LE: events, bit 15 'the step
        continues'), then that many tokens of ``t.tb`` bytes; ``t.ends_token`` rises at a
        token's last byte, ``t.ends_step`` when a step's events are complete."""
        with m.Switch(t.phase):
            with m.Case(0):
                m.d.sync += [t.cnt_lo.eq(byte), t.phase.eq(1)]
            with m.Case(1):
                n = Cat(t.cnt_lo, byte[:7])
                m.d.sync += [t.left.eq(n), t.cont.eq(byte[7]), t.tk.eq(0)]
                with m.If(n == 0):
                    m.d.sync += t.phase.eq(0)
                    with m.If(~byte[7]):
                        m.d.comb += t.ends_step.eq(1)
                with m.Else():
                    m.d.sync += t.phase.eq(2)
            with m.Case(2):
                m.d.sync += t.tok.eq(Cat(t.tok[8:], byte) if t.tb > 1 else byte)
                with m.If(t.tk == t.tb - 1):
                    m.d.comb += t.ends_token.eq(1)
                    m.d.sync += [t.tk.eq(0), t.left.eq(t.left - 1)]
                    with m.If(t.left == 1):
                        m.d.sync += t.phase.eq(0)
                        with m.If(~t.cont):
                            m.d.comb += t.ends_step.eq(1)
                with m.Else():
                    m.d.sync += t.tk.eq(t.tk + 1)

    # ---- the core's input, and steps in the frame ----------------------------------------------
    def _core_input(self, m) -> CoreInput:
        """The core's input record, held until the core takes it; the frame's step counts."""
        core = self.core
        rec_in = Signal(step_in_layout(self.net))
        rec_valid = Signal()
        m.d.comb += [core.i.payload.eq(rec_in), core.i.valid.eq(rec_valid)]
        with m.If(core.i.valid & core.i.ready):
            m.d.sync += rec_valid.eq(0)
        fed = Signal(16)
        done = Signal(16)
        sample = Signal(32, name="sample")
        caught_up = Signal(name="caught_up")
        m.d.sync += caught_up.eq(done == fed)
        return CoreInput(rec_in, rec_valid, fed, done, sample, caught_up,
                         SplitCounter(m, sample))

    # ---- the core's output records, through a skid buffer -----------------------------------
    def _records(self, m) -> Records:
        """The core's output records as the encoder and the read-out take them: through a
        two-record skid buffer, so that the core's ``o.ready`` is a register and the
        encoder's decisions stop there instead of running back through the core's pipeline
        into its state machine (Fmax); still a record per cycle. A core with the serial
        read-out, or planned for an iCE40 (the smallest devices, where every logic cell
        counts: the buffer's two records are flip-flops, each a logic cell of its own there),
        is taken directly."""
        core = self.core
        device = getattr(core, "device", None)
        if isinstance(self.readout, SerialReadout) or \
                (device is not None and device.family == "ice40"):
            return Records(core.o.valid, core.o.payload, core.o.ready)
        up = core.o
        va, vb = Signal(name="rec_va"), Signal(name="rec_vb")
        a = Signal.like(up.payload, name="rec_a")
        b = Signal.like(up.payload, name="rec_b")
        ready = Signal(name="rec_ready")
        m.d.comb += up.ready.eq(~vb)
        # Slot b follows the core's payload while it is empty and holds it once full: its
        # wide register is enabled by one flip-flop (~vb), not by the core's valid and the
        # encoder's ready through logic (Fmax: that enable reaches every bit of a record).
        with m.If(~vb):
            m.d.sync += b.eq(up.payload)
        with m.If(~va | ready):               # slot a frees this cycle
            with m.If(vb):
                m.d.sync += [a.eq(b), va.eq(1), vb.eq(0)]
            with m.Else():
                m.d.sync += [a.eq(up.payload), va.eq(up.valid)]
        with m.Elif(up.valid & ~vb):
            m.d.sync += vb.eq(1)
        return Records(va, a, ready)

    # ---- encoder: core output records -> response bytes ----------------------------------------
    def _encoder(self, m, flags: Signal, done: Signal) -> EncoderOut:
        """Turns ``core.o`` records into response bytes per ``flags`` (docs/protocol.md),
        counting in ``done`` the steps whose output is complete."""
        net, P = self.net, self.lanes
        src = self._records(m)
        o = src.payload
        lif = range(1, len(net.layers))
        vbits = max(net.layers[l].v_bits for l in lif)
        vbytes_max = ceil(vbits / 8)
        sb = ceil(P / 8)
        rec = Signal.like(o, name="enc_rec")
        have = Signal(name="enc_have")
        out_valid, out_data, out_ready = Signal(name="enc_valid"), Signal(8), Signal()
        layer_n = Array([C(net.layers[l].n if l else 0, 16) for l in range(len(net.layers))])
        layer_spk = Array([C(int(l > 0 and net.layers[l].spiking), 1)
                           for l in range(len(net.layers))])
        layer_vb = Array([C(ceil(net.layers[l].v_bits / 8) if l else 1, 4)
                          for l in range(len(net.layers))])
        # The record's lanes in use and whether it is its layer's last group, computed as it
        # is taken (registers: no adder between the record and the bytes; Fmax).
        n_in = layer_n[o.layer]
        lanes_here = Signal(range(P + 1), name="enc_lanes")
        last_group = Signal(name="enc_last_group")
        spiking = layer_spk[rec.layer]

        # A record that adds no bytes is dropped in the cycle the next one is taken, so that
        # a core emitting one record per cycle (the stack core) is never held back by it.
        drop = Signal(name="enc_drop")
        if isinstance(self.readout, SerialReadout):
            # The serial read-out takes a read-out record only when it has added the last one.
            m.d.comb += src.ready.eq((~have | drop) & self.readout.ready)
        else:
            m.d.comb += src.ready.eq(~have | drop)
        # Whether the record taken adds no bytes, decided as it is taken: the core's ready
        # then comes from registers through one gate (Fmax).
        quiet = Signal(name="enc_quiet")
        with m.If(src.valid & src.ready):
            m.d.sync += [rec.eq(o), have.eq(1),
                         lanes_here.eq(Mux(n_in - o.index >= P, P, n_in - o.index)),
                         last_group.eq(o.index + P >= n_in),
                         quiet.eq(~flags[1] & ~(flags[0] & layer_spk[o.layer]))]
            with m.If(o.last):
                m.d.sync += done.eq(done + 1)

        # Sparse spikes: the lowest remaining spike of the record, 2 bytes each, then FF FF
        # after a layer's last group.
        # The spikes left are kept as the lowest one's index (k) and the others (rest), both
        # registers: the byte's index then starts at a register, not at a priority encoder
        # behind a mask (Fmax).
        rest = Signal(P, name="enc_rest")
        k = Signal(range(max(2, P)), name="enc_k")
        k_spike = lowest_set(m, rec.spike, "enc_low_spike")
        k_rest = lowest_set(m, rest, "enc_low_rest")
        hi = Signal(name="enc_hi")            # the second byte of the current u16
        # Dense: spike bytes, then each lane's membrane bytes.
        di = Signal(range(sb + 1), name="enc_si")
        lane = Signal(range(P + 1), name="enc_lane")
        vi = Signal(range(vbytes_max + 1), name="enc_vi")
        # The lane being sent is always lane 0 of `rec.v`: the lanes shift down one as each
        # is done (no P-way select between the record and the bytes; Fmax).
        v0 = rec.v[0].as_signed()
        v_lane = Cat(v0, *([v0[-1]] * (8 * vbytes_max - len(v0))))
        v_flat = rec.v.as_value()
        spk_bytes = Cat(rec.spike, C(0, 8 * sb - P)) if 8 * sb > P else rec.spike

        # The states' tests are registers, updated with the counters they test (the state
        # register's enable then starts at registers, not at compares; Fmax): some spikes
        # left (``m_any``), spike bytes left, lanes left, the lane's last membrane byte.
        m_any = Signal(name="enc_m_any")
        s_more = Signal(name="enc_s_more")
        v_more = Signal(name="enc_v_more")
        v_last = Signal(name="enc_v_last")
        vb_rec = layer_vb[rec.layer]
        # A byte taken moves the state one cycle later, on ``sent``, a flip-flop: the enables
        # of the registers it moves (with a dense record's membranes, every bit of the record)
        # then start at one register instead of the byte sink's ready and the executor's
        # state through logic (Fmax). The byte stays offered in that cycle: the sink
        # (`_byte_stream`, its one-byte register full) is never ready in the cycle after it
        # took a byte, so none is taken twice (gating the offer with ``sent`` would put a
        # level of logic on the sink's enable: Fmax on the iCE40).
        sent = Signal(name="enc_sent")
        m.d.sync += sent.eq(out_valid & out_ready)
        # The membranes move down a lane in the cycle after a lane's last byte is taken, on a
        # flip-flop of their own: their enables (every bit of the record) then hang on it
        # rather than on ``v_more``, whose loop into itself stays short (Fmax).
        v_shift = Signal(name="enc_v_shift")
        m.d.sync += v_shift.eq(0)
        fsm = OneHot(m, init="TAKE", name="enc")
        with fsm.state("TAKE"):
            with m.If(have):
                m.d.sync += [rest.eq((rec.spike & (rec.spike - 1))[:P]),
                             k.eq(k_spike), hi.eq(0), di.eq(0), lane.eq(0),
                             vi.eq(0), m_any.eq(rec.spike.any()), s_more.eq(spiking),
                             v_more.eq(lanes_here != 0), v_last.eq(vb_rec == 1)]
                with m.If(quiet):
                    m.d.comb += drop.eq(1)
                    m.d.sync += have.eq(src.valid)       # the next record, if one came
                with m.Elif(flags[1]):
                    fsm.next("DENSE")
                with m.Else():                           # spikes of a spiking layer
                    fsm.next("SPARSE")
        with fsm.state("SPARSE"):
            idx = (rec.index + k)[:16]
            with m.If(m_any):
                m.d.comb += [out_valid.eq(1), out_data.eq(Mux(hi, idx[8:], idx[:8]))]
                with m.If(sent):
                    m.d.sync += hi.eq(~hi)
                    with m.If(hi):
                        # The lowest spike goes: the next is rest's lowest.
                        m.d.sync += [rest.eq((rest & (rest - 1))[:P]),
                                     k.eq(k_rest), m_any.eq(rest.any())]
            with m.Elif(last_group):
                m.d.comb += [out_valid.eq(1), out_data.eq(0xFF)]
                with m.If(sent):
                    m.d.sync += hi.eq(~hi)
                    with m.If(hi):
                        m.d.sync += have.eq(0)
                        fsm.next("TAKE")
            with m.Else():
                m.d.sync += have.eq(0)
                fsm.next("TAKE")
        with fsm.state("DENSE"):
            with m.If(s_more):
                m.d.comb += [out_valid.eq(1), out_data.eq(spk_bytes.word_select(di, 8))]
                with m.If(sent):
                    m.d.sync += [di.eq(di + 1), s_more.eq(di + 1 != sb)]
            with m.Elif(v_more):
                m.d.comb += [out_valid.eq(1), out_data.eq(v_lane.word_select(vi, 8))]
                m.d.sync += v_shift.eq(out_ready & v_last)
                with m.If(sent):
                    with m.If(v_last):
                        m.d.sync += [vi.eq(0), lane.eq(lane + 1), v_last.eq(vb_rec == 1),
                                     v_more.eq(lane + 1 != lanes_here)]
                    with m.Else():
                        m.d.sync += [vi.eq(vi + 1), v_last.eq(vi + 1 == vb_rec - 1)]
            with m.Else():
                m.d.sync += have.eq(0)
                fsm.next("TAKE")
        fsm.check()
        # ``v_shift`` is set only in DENSE, by a take, and the state moves only on ``sent``, so
        # this is the cycle after the take, in DENSE, with the same ``v_last``; no record is
        # taken meanwhile (``have`` is set).
        with m.If(v_shift):
            m.d.sync += v_flat.eq(v_flat >> len(v0))
        return EncoderOut(out_valid, out_data, out_ready, busy=have, records=src)


    def _readout_inputs(self, m, cmd: Command, feed: CoreInput, reader: BufferReader,
                        tokens: TokenParser, enc: EncoderOut):
        """The read-out sees every record the core sends; the last one of a STEP that asks for
        a prediction ends the sample's sums."""
        if self.readout is None:
            return
        ro = self.readout
        src = enc.records
        m.d.comb += [ro.rec.eq(src.payload), ro.fire.eq(src.valid & src.ready),
                     ro.clear.eq(0),
                     ro.last_step.eq(cmd.flags[2] & (feed.done == feed.fed - 1) & ~reader.more
                                     & ~tokens.strobe_due & ~tokens.took
                                     & ~tokens.step_end)]

    # ---- the executor --------------------------------------------------------------------------
    def _executor(self, m, x: Executor):
        """The command executor's state machine, one register per state (its decoding sat
        on the iCE40's critical paths)."""
        fsm = OneHot(m, init="IDLE", name="exec")
        self._dispatch(m, x, fsm)             # IDLE, DISPATCH, RESET
        self._replies(m, x, fsm)   # ERROR, ERR_OUT, HEAD0, HEAD1, IDENT, STATUS, FINISH
        self._step_check(m, x, fsm)           # FLAGS, CHECK
        self._step_feed(m, x, fsm)            # FEED, PREDICT, PRED_OUT
        fsm.check()
        # The encoder's bytes go out in FEED only.
        m.d.comb += x.enc.ready.eq(x.out.ready & fsm.ongoing("FEED"))
        return fsm

    def _dispatch(self, m, x: Executor, fsm: OneHot):
        """IDLE takes a frame from the receiver and classifies it; DISPATCH starts its command
        (a cycle later, from registers: the frame's compares end at them; Fmax); RESET waits
        for the core to come out of its reset."""
        rx, r, c, t, f = x.frame.frame, x.reader, x.cmd, x.tokens, x.feed
        cmd0, seq0 = rx.payload.cmd, rx.payload.seq
        # What the frame asks for, one bit each, exactly one set (the receiver holds the frame
        # meanwhile: it drops frames while the executor is busy); an error's code goes into
        # its register at once.
        bad = rx.payload.code != 0
        is_step = cmd0 == CMD_STEP
        asks = {"ident": cmd0 == CMD_IDENT, "status": cmd0 == CMD_STATUS,
                "reset": cmd0 == CMD_RESET, "step": is_step & (rx.payload.length != 0)}
        ident, status, reset, step = (Signal(name=f"d_{k}") for k in asks)
        error = Signal(name="d_error")
        with fsm.state("IDLE"):
            m.d.comb += rx.ready.eq(1)
            with m.If(rx.valid):
                m.d.sync += [c.cmd.eq(cmd0), c.seq.eq(seq0), c.bi.eq(0),
                             error.eq(bad | ~Cat(*asks.values()).any()),
                             c.err_code.eq(Mux(bad, rx.payload.code,
                                               Mux(is_step, ERR_PAYLOAD, ERR_COMMAND))),
                             c.err_detail.eq(0)]
                m.d.sync += [d.eq(~bad & a) for d, a in zip((ident, status, reset, step),
                                                            asks.values())]
                fsm.next("DISPATCH")
        with fsm.state("DISPATCH"):
            with m.If(error):
                fsm.next("ERROR")
            with m.If(ident):
                m.d.comb += [r.load.eq(1), r.load_to.eq(self.max_body), r.stop_to.eq(r.depth)]
                m.d.sync += c.kind.eq(K_IDENT)
                fsm.next("HEAD0")
            with m.If(status):
                m.d.sync += c.kind.eq(K_STATUS)
                fsm.next("HEAD0")
            with m.If(reset):
                m.d.comb += x.soft_rst.eq(1)
                x.counters.steps_split.clear(m)
                f.sample_split.clear(m)
                m.d.sync += [c.err_seen.eq(0), c.bi.eq(0)]
                fsm.next("RESET")
            with m.If(step):
                m.d.comb += [r.load.eq(1), r.load_to.eq(2), r.stop_to.eq(rx.payload.length + 2)]
                m.d.sync += [t.tk.eq(0),
                             t.left.eq(0), t.cont.eq(0), f.fed.eq(0), f.done.eq(0),
                             t.phase.eq(0), t.strobe_due.eq(0)]
                fsm.next("FLAGS")

        with fsm.state("RESET"):                # let the core's FSM leave its reset state
            with m.If(c.bi < 3):                # (the reset comes a cycle after it is asked)
                m.d.sync += c.bi.eq(c.bi + 1)
            with m.If((c.bi >= 3) & ~self.core.busy):
                m.d.sync += [c.kind.eq(K_END), c.bi.eq(0)]
                fsm.next("HEAD0")

    def _replies(self, m, x: Executor, fsm: OneHot):
        """The replies of fixed form: an error, the header, IDENT, STATUS, the frame's end.

        A state that always offers a byte moves on when the byte stream is ready (``o.ready``,
        a register), not on ``o.sent``, which is the same there but carries every state's
        offer, the encoder's included, into the state register's enable (Fmax)."""
        r, o, c = x.reader, x.out, x.cmd
        error = c.error
        status = x.counters.status
        # ERROR and STATUS send their bytes from one shift register, loaded a cycle before
        # the first byte (no byte select between the counters and the byte stream; Fmax):
        # the error record in ERROR, the counters in HEAD1 (a snapshot: the reply is the
        # counters of one moment).
        reply = Signal(max(56, len(status)), name="reply_sh")
        with fsm.state("ERROR"):
            # 0xFF, SEQ, code, command, detail (u16 LE), end.
            m.d.sync += [c.err_seen.eq(1),
                         reply.eq(Cat(C(CMD_ERROR, 8), c.seq, error, C(0, 8)))]
            fsm.next("ERR_OUT")
        with fsm.state("ERR_OUT"):
            m.d.comb += [o.valid.eq(1), o.end.eq(c.bi == 6), o.data.eq(reply[:8])]
            with m.If(o.ready):
                m.d.sync += [c.bi.eq(c.bi + 1), reply.eq(reply >> 8)]
                with m.If(c.bi == 6):
                    fsm.next("IDLE")

        with fsm.state("HEAD0"):
            m.d.comb += [o.valid.eq(1), o.data.eq(c.cmd | RESPONSE)]
            with m.If(o.ready):
                fsm.next("HEAD1")
        with fsm.state("HEAD1"):
            m.d.comb += [o.valid.eq(1), o.data.eq(c.seq)]
            m.d.sync += reply.eq(status)
            with m.If(o.ready):
                m.d.sync += c.bi.eq(0)
                with m.Switch(c.kind):
                    with m.Case(K_IDENT):
                        fsm.next("IDENT")
                    with m.Case(K_STATUS):
                        fsm.next("STATUS")
                    with m.Case(K_STEP):
                        fsm.next("FEED")
                    with m.Default():
                        fsm.next("FINISH")

        with fsm.state("IDENT"):
            m.d.comb += [o.valid.eq(r.ready), o.data.eq(r.byte), r.adv.eq(r.ready & o.ready)]
            with m.If(r.ready & o.ready & (r.pos == r.depth - 1)):
                fsm.next("FINISH")
        with fsm.state("STATUS"):
            m.d.comb += [o.valid.eq(1), o.data.eq(reply[:8])]
            with m.If(o.ready):
                m.d.sync += [c.bi.eq(c.bi + 1), reply.eq(reply >> 8)]
                with m.If(c.bi == len(status) // 8 - 1):
                    fsm.next("FINISH")

        with fsm.state("FINISH"):
            m.d.comb += [o.valid.eq(1), o.end.eq(1)]
            with m.If(o.ready):
                fsm.next("IDLE")

    def _step_check(self, m, x: Executor, fsm: OneHot):
        """STEP, pass 1: the flags byte, then check every count and token (the whole frame is
        refused, with the offset of the first bad byte, before anything runs)."""
        r, c, t = x.reader, x.cmd, x.tokens
        with fsm.state("FLAGS"):
            with m.If(r.ready):
                m.d.comb += r.adv.eq(1)
                m.d.sync += c.flags.eq(r.byte)
                with m.If((r.byte & (0xFF ^ (FLAG_SPIKES | FLAG_MEMBRANES | FLAG_PREDICT)))
                          != 0):
                    m.d.sync += [c.err_code.eq(ERR_PAYLOAD), c.err_detail.eq(0)]
                    fsm.next("ERROR")
                with m.Else():
                    fsm.next("CHECK")
        with fsm.state("CHECK"):
            # The verdict on a token comes two cycles after its last byte was taken (pos has
            # moved on, once: the reader is not ready again before the verdict).
            with m.If(t.token_end & ~t.ok):
                m.d.sync += [c.err_code.eq(ERR_PAYLOAD), c.err_detail.eq(r.pos - 3)]
                fsm.next("ERROR")
            with m.Elif(~r.more & ~t.took):
                with m.If(t.phase == 0):
                    m.d.comb += [r.load.eq(1), r.load_to.eq(3), r.stop_to.eq(r.stop)]
                    m.d.sync += [c.kind.eq(K_STEP), t.tk.eq(0), t.left.eq(0), t.cont.eq(0),
                                 t.strobe_due.eq(0), t.tok.eq(0)]
                    fsm.next("HEAD0")
                with m.Else():
                    m.d.sync += [c.err_code.eq(ERR_PAYLOAD), c.err_detail.eq(r.pos - 2)]
                    fsm.next("ERROR")
            with m.Elif(r.ready):
                m.d.comb += [r.adv.eq(1), t.take.eq(1)]

    def _step_feed(self, m, x: Executor, fsm: OneHot):
        """STEP, pass 2: feed the core; the encoder sends its output meanwhile. Then the
        prediction, when asked for."""
        r, o, c, t, f, e, p = x.reader, x.out, x.cmd, x.tokens, x.feed, x.enc, x.pred
        with fsm.state("FEED"):
            with m.If(~f.valid & t.strobe_due):
                m.d.sync += [f.rec.valid.eq(0), f.rec.last.eq(1), f.valid.eq(1),
                             t.strobe_due.eq(0), f.fed.eq(f.fed + 1)]
                x.counters.steps_split.inc(m)
                f.sample_split.inc(m)
            with m.Elif(~f.valid & r.more):
                m.d.comb += [r.adv.eq(r.ready), t.take.eq(r.ready)]
            with m.Elif(~f.valid & ~r.more & f.caught_up & ~e.busy & ~t.took
                        & ~t.token_end & ~t.step_end):
                with m.If(c.flags[2]):
                    m.d.sync += p.wait.eq(0)
                    fsm.next("PREDICT")
                with m.Else():
                    fsm.next("FINISH")
            # A byte's verdicts, two cycles after it was taken (no byte is taken then, and no
            # strobe is due: the byte was taken because none was).
            with m.If(t.token_end):           # the token becomes the core's next input record
                m.d.sync += [f.rec.index.eq(t.index), f.rec.value.eq(t.value),
                             f.rec.layer.eq(t.layer), f.rec.valid.eq(1),
                             f.rec.last.eq(0), f.valid.eq(1)]
            with m.If(t.step_end):            # the strobe goes once the last event is taken
                m.d.sync += t.strobe_due.eq(1)
            m.d.comb += [o.valid.eq(e.valid), o.data.eq(e.data)]
        with fsm.state("PREDICT"):
            # The read-out's prediction is ready a fixed latency after the last record.
            with m.If(p.wait != 15):
                m.d.sync += p.wait.eq(p.wait + 1)
            if self.readout is not None:
                with m.If(p.wait == self.readout.latency + 2):
                    m.d.sync += p.value.eq(Mux(f.sample > self.max_steps, NO_PREDICTION,
                                               self.readout.prediction))
                    m.d.sync += c.bi.eq(0)
                    fsm.next("PRED_OUT")
            else:
                m.d.sync += p.value.eq(NO_PREDICTION)
                fsm.next("PRED_OUT")
        with fsm.state("PRED_OUT"):
            m.d.comb += [o.valid.eq(1), o.data.eq(Mux(c.bi[0], p.value[8:], p.value[:8]))]
            with m.If(o.ready):
                m.d.sync += c.bi.eq(c.bi + 1)
                with m.If(c.bi[0]):
                    fsm.next("FINISH")

    # ---- LEDs ----------------------------------------------------------------------------------
    def _leds(self, m, busy: Signal, err_seen: Signal):
        """Heartbeat, busy, an error since the last RESET."""
        hb = Signal()
        if self.heartbeat:
            half = max(1, self.clock_hz // 2) if self.clock_hz else 1 << 22
            beat = Signal(range(half + 1))
            m.d.sync += beat.eq(Mux(beat == half - 1, 0, beat + 1))
            with m.If(beat == half - 1):
                m.d.sync += hb.eq(~hb)
        m.d.comb += self.leds.eq(Cat(hb, busy, err_seen))
