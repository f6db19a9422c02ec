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

from math import ceil

from amaranth.hdl import Array, C, Cat, Module, Mux, ResetInserter, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from model.ir import Network
from ..cores import core as core_named
from ..interface import step_in_layout
from ..logic import lowest_set
from .framing import FrameRx, FrameTx
from .protocol import (CMD_ERROR, CMD_IDENT, CMD_RESET, CMD_STATUS, CMD_STEP, ERR_COMMAND, ERR_PAYLOAD, FLAG_MEMBRANES, FLAG_PREDICT, FLAG_SPIKES, MAX_BODY,
                       NO_PREDICTION, RESPONSE, ident_payload, token_format)
from .readout import Readout, SerialReadout
from .uart import UARTRx, UARTTx

__all__ = ["HostLink"]


class HostLink(wiring.Component):
    """Network core behind the framed UART protocol of ``docs/protocol.md``.

    ``divisor`` is the UART's clock cycles per bit (see :func:`uart_divisor`); ``clock_hz`` and
    ``baud`` are only reported by IDENT. A core with SPRAM or off-chip weight arrays needs a
    ``loader``: called as ``loader(image=..., width=...)`` with the core's load image
    (:attr:`image`), it returns the component whose ``o`` stream fills the core's ``wl``
    once after configuration (a RESET keeps the weights). ``max_steps`` bounds a sample for the read-out's sums
    (when the last layer is a read-out); ``max_body`` is the frame buffer's size (default: 512
    bytes less the IDENT reply, which is stored in the same memory); ``core`` names a core of
    :data:`rtl.cores.CORES` (default ``"network"``) and the other ``core_knobs`` go to it.

    Ports: ``rx`` (the line from the host, idle high), ``tx`` (to the host), ``leds``: bit 0 a
    heartbeat (about 1 Hz at ``clock_hz``; off with ``heartbeat=False``, so that an idle
    simulated board reaches a fixed point and sleeps), bit 1 busy (a command is being run), bit 2 an error
    was reported since the last RESET.
    """

    def __init__(self, net: Network, *, divisor: int, clock_hz: int = 0, baud: int = 0,
                 max_steps: int = 4096, max_body: int | None = None, heartbeat: bool = True,
                 loader=None, **core_knobs):
        self.net, self.divisor = net, divisor
        self.clock_hz, self.baud = int(clock_hz), int(baud)
        self.heartbeat = heartbeat
        spec = core_named(core_knobs.pop("core", "network"))
        if "gate" in core_knobs or "observe" in core_knobs:
            raise ValueError("the host link sets the core's gate and observed layers itself")
        if spec.gated:
            # A command that asks for no spikes or membranes gets only the read-out's records,
            # so that the output port does not bound its step rate.
            core_knobs["gate"] = not net.layers[-1].spiking
        self.core = spec.build(net, **core_knobs)
        self.lanes = self.core.lanes
        #: The words the core expects on ``wl`` (empty without SPRAM or off-chip arrays), and
        #: the component that streams them (e.g. :class:`boards.flash.FlashLoader`; the board
        #: top wires its pins), or None.
        self.image = self.core.load_image()
        self.loader = None
        if self.image:
            if loader is None:
                raise ValueError("this core keeps weights in SPRAM or off chip: give HostLink "
                                 "a loader for its wl stream (a board top uses its SPI "
                                 "flash), or keep every weight array in block RAM "
                                 "(memories=...)")
            self.loader = loader(image=self.image, width=self.core.load_width)
        self.readout = None
        if not net.layers[-1].spiking:
            # The lean core is for the smallest device: sums in block RAM, a lane per cycle.
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

    # ----------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        net = self.net
        m.submodules.urx = urx = self.urx
        m.submodules.utx = utx = self.utx
        m.submodules.ftx = ftx = FrameTx()
        wiring.connect(m, ftx.o, utx.i)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]

        soft_rst = Signal()
        m.submodules.core = ResetInserter(soft_rst)(self.core)
        if self.loader is not None:
            # A RESET restarts the loader with the core: one that comes while the weights are
            # still streaming in (a host that connects right after configuration) would
            # otherwise leave the core waiting for words the loader has already sent. Once
            # the weights are in, the core takes no more (the loader's stream just waits).
            m.submodules.loader = ResetInserter(soft_rst)(self.loader)
            wiring.connect(m, self.loader.o, self.core.wl)
        core = self.core
        if self.readout is not None:
            m.submodules.readout = ResetInserter(soft_rst)(self.readout)

        # The frame buffer; the IDENT reply lives above it in the same memory (one block RAM).
        depth = self.max_body + len(self.ident)
        m.submodules.buf = buf = memory.Memory(shape=8, depth=depth,
                                               init=[0] * self.max_body + list(self.ident))
        wr = buf.write_port()
        rd = buf.read_port()

        # ---- counters (STATUS) -------------------------------------------------------------
        def counter(name, bits=16):
            return Signal(bits, name=name)
        steps = counter("st_steps", 32)
        crc_errors, len_errors = counter("st_crc"), counter("st_len")
        dropped, uart_errors = counter("st_dropped"), counter("st_uart")

        def bump(c):
            m.d.sync += c.eq(Mux(c == (1 << len(c)) - 1, c, c + 1))

        with m.If(urx.error | urx.overrun):
            bump(uart_errors)

        # ---- receiver ----------------------------------------------------------------------
        busy = Signal()                       # the executor is running a command
        m.submodules.frx = frx = FrameRx(self.max_body)
        wiring.connect(m, urx.o, frx.i)
        m.d.comb += [frx.busy.eq(busy), wr.addr.eq(frx.wr_addr), wr.data.eq(frx.wr_data),
                     wr.en.eq(frx.wr_en)]
        with m.If(frx.dropped):
            bump(dropped)
        with m.If(frx.crc_error):
            bump(crc_errors)
        with m.If(frx.len_error):
            bump(len_errors)
        ev = frx.frame.valid                  # a frame ended and the executor takes it
        ev_code, ev_len = frx.frame.payload.code, frx.frame.payload.length
        cmd0, seq0 = frx.frame.payload.cmd, frx.frame.payload.seq

        # ---- buffer reader: rd.data is always buf[pos] (pos is presented a cycle ahead) ----
        pos = Signal(range(depth + 1))
        stop = Signal(range(depth + 1))
        adv = Signal()
        load = Signal()
        load_to = Signal(range(depth + 1))
        nxt_pos = Mux(load, load_to, Mux(adv, pos + 1, pos))
        m.d.comb += rd.addr.eq(nxt_pos)
        m.d.sync += pos.eq(nxt_pos)
        byte = rd.data
        more = pos < stop

        # ---- the executor's byte stream into the frame transmitter -------------------------
        fb_valid, fb_data, fb_end = Signal(), Signal(8), Signal()
        m.d.comb += [ftx.i.valid.eq(fb_valid), ftx.i.payload.data.eq(fb_data),
                     ftx.i.payload.end.eq(fb_end)]
        sent = ftx.i.valid & ftx.i.ready

        cmd, seq = Signal(8), Signal(8)
        flags = Signal(8)
        if getattr(core, "gate", False):
            # Spikes or membranes asked for: every layer's records; else the read-out's only.
            k = len(core.observe)
            m.d.comb += core.mask.eq(Mux(flags[0] | flags[1], (1 << k) - 1, 1 << (k - 1)))
        bi = Signal(range(17))                # byte index within a fixed reply
        err_code, err_detail = Signal(8), Signal(16)
        err_seen = Signal()
        kind = Signal(range(4))               # what follows the header: 0 end, 1 IDENT, 2 STATUS
        K_END, K_IDENT, K_STATUS, K_STEP = 0, 1, 2, 3

        status = Cat(steps, crc_errors, len_errors, dropped, uart_errors)
        error = Cat(err_code, cmd, err_detail)

        # ---- token parsing (check and feed passes) -----------------------------------------
        tb = self.token.nbytes
        tok = Signal(8 * tb)
        tk = Signal(range(tb + 1))            # token bytes taken
        left = Signal(16)                     # tokens left in the current count
        cont = Signal()                       # the current count's step continues
        cnt_lo = Signal(8)
        phase = Signal(2)                     # next: 0 a count's low byte, 1 its high, 2 tokens
        strobe_due = Signal()                 # a step's events are in: send its step strobe
        ib, vb = self.token.index_bits, self.token.value_bits
        # Little-endian: byte k of the token is bits 8k..8k+7; bytes arrive in order.
        tok_now = Signal(8 * tb)
        m.d.comb += tok_now.eq(tok | (byte << (tk * 8)) if tb > 1 else byte)
        t_index = tok_now[:ib]
        t_value = tok_now[ib:ib + vb]
        t_layer = tok_now[ib + vb:self.token.bits]
        t_pad = tok_now[self.token.bits:] if 8 * tb > self.token.bits else C(0, 1)
        # One parser serves both passes over the payload (the check and the feed): ``take``
        # hands it the current byte; ``token_end`` and ``step_end`` say what that byte ended.
        take, token_end, step_end = Signal(), Signal(), Signal()
        with m.If(take):
            self._parse(m, phase, byte, tok, tk, left, cont, cnt_lo, tb,
                        token_end=token_end, step_end=step_end)
        ok_tok = Signal()
        conds = []
        if net.layers[0].n:
            conds.append((t_layer == 0) & (t_index < net.layers[0].n) & (t_value != 0))
        for l in net.forced_layers:
            conds.append((t_layer == l) & (t_index < net.layers[l].n) & (t_value == 1))
        m.d.comb += ok_tok.eq((t_pad == 0) & (Cat(*conds).any() if conds else 0))

        # ---- the core's input, and steps in the frame --------------------------------------
        rec_in = Signal(step_in_layout(net))
        rec_valid = Signal()
        m.d.comb += [core.i.payload.eq(rec_in), core.i.valid.eq(rec_valid)]
        with m.If(core.i.valid & core.i.ready):
            m.d.sync += rec_valid.eq(0)
        fed = Signal(16)                      # steps strobed in this frame
        done = Signal(16)                     # steps whose output is complete in this frame
        sample = Signal(32)                   # steps since RESET (for the read-out bound)

        # ---- encoder: core output records -> response bytes --------------------------------
        enc = self._encoder(m, core, flags, done, fed)
        pred_wait = Signal(range(16))
        pred = Signal(16)

        if self.readout is not None:
            ro = self.readout
            m.d.comb += [ro.rec.eq(core.o.payload), ro.fire.eq(core.o.valid & core.o.ready),
                         ro.clear.eq(0),
                         ro.last_step.eq(flags[2] & (done == fed - 1) & ~more & ~strobe_due)]

        with m.FSM(name="exec") as fsm:
            with m.State("IDLE"):
                m.d.comb += frx.frame.ready.eq(1)
                with m.If(ev):
                    m.d.sync += [cmd.eq(cmd0), seq.eq(seq0), bi.eq(0)]
                    with m.If(ev_code != 0):
                        m.d.sync += [err_code.eq(ev_code), err_detail.eq(0)]
                        m.next = "ERROR"
                    with m.Elif(cmd0 == CMD_IDENT):
                        m.d.comb += [load.eq(1), load_to.eq(self.max_body)]
                        m.d.sync += [kind.eq(K_IDENT), stop.eq(depth)]
                        m.next = "HEAD0"
                    with m.Elif(cmd0 == CMD_STATUS):
                        m.d.sync += kind.eq(K_STATUS)
                        m.next = "HEAD0"
                    with m.Elif(cmd0 == CMD_RESET):
                        m.d.comb += soft_rst.eq(1)
                        m.d.sync += [steps.eq(0), sample.eq(0), err_seen.eq(0), bi.eq(0)]
                        m.next = "RESET"
                    with m.Elif(cmd0 == CMD_STEP):
                        with m.If(ev_len == 0):
                            m.d.sync += [err_code.eq(ERR_PAYLOAD), err_detail.eq(0)]
                            m.next = "ERROR"
                        with m.Else():
                            m.d.comb += [load.eq(1), load_to.eq(2)]
                            m.d.sync += [stop.eq(ev_len + 2), tk.eq(0), left.eq(0),
                                         cont.eq(0), fed.eq(0), done.eq(0), phase.eq(0),
                                         strobe_due.eq(0)]
                            m.next = "FLAGS"
                    with m.Else():
                        m.d.sync += [err_code.eq(ERR_COMMAND), err_detail.eq(0)]
                        m.next = "ERROR"

            with m.State("RESET"):            # let the core's FSM leave its reset state
                with m.If(bi < 2):
                    m.d.sync += bi.eq(bi + 1)
                with m.If((bi >= 2) & ~core.busy):
                    m.d.sync += [kind.eq(K_END), bi.eq(0)]
                    m.next = "HEAD0"

            with m.State("ERROR"):
                # 0xFF, SEQ, code, command, detail (u16 LE), end.
                m.d.sync += err_seen.eq(1)
                m.d.comb += [fb_valid.eq(1), fb_end.eq(bi == 6),
                             fb_data.eq(Array([C(CMD_ERROR, 8), seq, error[:8], error[8:16],
                                               error[16:24], error[24:32], C(0, 8)])[bi])]
                with m.If(sent):
                    m.d.sync += bi.eq(bi + 1)
                    with m.If(bi == 6):
                        m.next = "IDLE"

            with m.State("HEAD0"):
                m.d.comb += [fb_valid.eq(1), fb_data.eq(cmd | RESPONSE)]
                with m.If(sent):
                    m.next = "HEAD1"
            with m.State("HEAD1"):
                m.d.comb += [fb_valid.eq(1), fb_data.eq(seq)]
                with m.If(sent):
                    m.d.sync += bi.eq(0)
                    with m.Switch(kind):
                        with m.Case(K_IDENT):
                            m.next = "IDENT"
                        with m.Case(K_STATUS):
                            m.next = "STATUS"
                        with m.Case(K_STEP):
                            m.next = "FEED"
                        with m.Default():
                            m.next = "FINISH"

            with m.State("IDENT"):
                m.d.comb += [fb_valid.eq(1), fb_data.eq(byte), adv.eq(sent)]
                with m.If(sent & (pos == depth - 1)):
                    m.next = "FINISH"
            with m.State("STATUS"):
                m.d.comb += [fb_valid.eq(1),
                             fb_data.eq(status.word_select(bi[:4], 8))]
                with m.If(sent):
                    m.d.sync += bi.eq(bi + 1)
                    with m.If(bi == len(status) // 8 - 1):
                        m.next = "FINISH"

            with m.State("FINISH"):
                m.d.comb += [fb_valid.eq(1), fb_end.eq(1)]
                with m.If(sent):
                    m.next = "IDLE"

            # STEP, pass 1: the flags byte, then check every count and token.
            with m.State("FLAGS"):
                m.d.comb += adv.eq(1)
                m.d.sync += flags.eq(byte)
                with m.If((byte & (0xFF ^ (FLAG_SPIKES | FLAG_MEMBRANES | FLAG_PREDICT))) != 0):
                    m.d.sync += [err_code.eq(ERR_PAYLOAD), err_detail.eq(0)]
                    m.next = "ERROR"
                with m.Else():
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(~more):
                    with m.If(phase == 0):
                        m.d.comb += [load.eq(1), load_to.eq(3)]
                        m.d.sync += [kind.eq(K_STEP), tk.eq(0), left.eq(0), cont.eq(0),
                                     strobe_due.eq(0), tok.eq(0)]
                        m.next = "HEAD0"
                    with m.Else():
                        m.d.sync += [err_code.eq(ERR_PAYLOAD), err_detail.eq(pos - 2)]
                        m.next = "ERROR"
                with m.Else():
                    m.d.comb += [adv.eq(1), take.eq(1)]
                    with m.If(token_end & ~ok_tok):
                        m.d.sync += [err_code.eq(ERR_PAYLOAD), err_detail.eq(pos - 2)]
                        m.next = "ERROR"

            # STEP, pass 2: feed the core; the encoder sends its output meanwhile.
            with m.State("FEED"):
                with m.If(~rec_valid & strobe_due):
                    m.d.sync += [rec_in.valid.eq(0), rec_in.last.eq(1), rec_valid.eq(1),
                                 strobe_due.eq(0), fed.eq(fed + 1), steps.eq(steps + 1),
                                 sample.eq(sample + 1)]
                with m.Elif(~rec_valid & more):
                    m.d.comb += [adv.eq(1), take.eq(1)]
                    with m.If(token_end):   # the token becomes the core's next input record
                        m.d.sync += [rec_in.index.eq(t_index), rec_in.value.eq(t_value),
                                     rec_in.layer.eq(t_layer), rec_in.valid.eq(1),
                                     rec_in.last.eq(0), rec_valid.eq(1)]
                    with m.If(step_end):    # the strobe goes once the last event is taken
                        m.d.sync += strobe_due.eq(1)
                with m.Elif(~rec_valid & ~more & (done == fed) & ~enc["busy"]):
                    with m.If(flags[2]):
                        m.d.sync += pred_wait.eq(0)
                        m.next = "PREDICT"
                    with m.Else():
                        m.next = "FINISH"
                m.d.comb += [fb_valid.eq(enc["valid"]), fb_data.eq(enc["data"]),
                             enc["ready"].eq(ftx.i.ready)]
            with m.State("PREDICT"):
                # The read-out's prediction is ready a fixed latency after the last record.
                with m.If(pred_wait != 15):
                    m.d.sync += pred_wait.eq(pred_wait + 1)
                if self.readout is not None:
                    with m.If(pred_wait == self.readout.latency + 2):
                        m.d.sync += pred.eq(Mux(sample > self.max_steps, NO_PREDICTION,
                                                self.readout.prediction))
                        m.d.sync += bi.eq(0)
                        m.next = "PRED_OUT"
                else:
                    m.d.sync += pred.eq(NO_PREDICTION)
                    m.next = "PRED_OUT"
            with m.State("PRED_OUT"):
                m.d.comb += [fb_valid.eq(1), fb_data.eq(Mux(bi[0], pred[8:], pred[:8]))]
                with m.If(sent):
                    m.d.sync += bi.eq(bi + 1)
                    with m.If(bi[0]):
                        m.next = "FINISH"

        m.d.comb += busy.eq(~fsm.ongoing("IDLE"))

        # ---- LEDs ----------------------------------------------------------------------------
        hb = Signal()
        if self.heartbeat:
            half = max(1, self.clock_hz // 2) if self.clock_hz else 1 << 22
            beat = Signal(range(half + 1))
            m.d.sync += beat.eq(Mux(beat == half - 1, 0, beat + 1))
            with m.If(beat == half - 1):
                m.d.sync += hb.eq(~hb)
        m.d.comb += self.leds.eq(Cat(hb, busy, err_seen))
        return m

    # ----------------------------------------------------------------------------------------
    @staticmethod
    def _parse(m, phase, byte, tok, tk, left, cont, cnt_lo, tb, *, token_end, step_end):
        """Take one payload byte of the step list: a count (u16 LE: events, bit 15 'the step
        continues'), then that many tokens of ``tb`` bytes; ``token_end`` rises at a token's
        last byte (``tok_now`` holds it), ``step_end`` when a step's events are complete."""
        with m.Switch(phase):
            with m.Case(0):
                m.d.sync += [cnt_lo.eq(byte), phase.eq(1)]
            with m.Case(1):
                n = Cat(cnt_lo, byte[:7])
                m.d.sync += [left.eq(n), cont.eq(byte[7]), tk.eq(0)]
                with m.If(n == 0):
                    m.d.sync += phase.eq(0)
                    with m.If(~byte[7]):
                        m.d.comb += step_end.eq(1)
                with m.Else():
                    m.d.sync += phase.eq(2)
            with m.Case(2):
                with m.If(tk == tb - 1):
                    m.d.comb += token_end.eq(1)
                    m.d.sync += [tk.eq(0), tok.eq(0), left.eq(left - 1)]
                    with m.If(left == 1):
                        m.d.sync += phase.eq(0)
                        with m.If(~cont):
                            m.d.comb += step_end.eq(1)
                with m.Else():
                    m.d.sync += [tk.eq(tk + 1), tok.eq(tok | (byte << (tk * 8)))]

    def _encoder(self, m, core, flags, done, fed) -> dict:
        """Turns ``core.o`` records into response bytes per ``flags`` (docs/protocol.md)."""
        net, P = self.net, self.lanes
        o = core.o.payload
        lif = range(1, len(net.layers))
        vbits = max(net.layers[l].v_bits for l in lif)
        vbytes_max = ceil(vbits / 8)
        sb = ceil(P / 8)
        rec = Signal.like(o, name="enc_rec")
        have = Signal(name="enc_have")
        out_valid, out_data, out_ready = Signal(name="enc_valid"), Signal(8), Signal()
        sent = out_valid & out_ready
        layer_n = Array([C(net.layers[l].n if l else 0, 16) for l in range(len(net.layers))])
        layer_spk = Array([C(int(l > 0 and net.layers[l].spiking), 1)
                           for l in range(len(net.layers))])
        layer_vb = Array([C(ceil(net.layers[l].v_bits / 8) if l else 1, 4)
                          for l in range(len(net.layers))])
        n_here = layer_n[rec.layer]
        lanes_here = Signal(range(P + 1), name="enc_lanes")
        m.d.comb += lanes_here.eq(Mux(n_here - rec.index >= P, P, n_here - rec.index))
        last_group = rec.index + P >= n_here
        spiking = layer_spk[rec.layer]

        # A record that adds no bytes is dropped in the cycle the next one is taken, so that
        # a core emitting one record per cycle (the stack core) is never held back by it.
        drop = Signal(name="enc_drop")
        if isinstance(self.readout, SerialReadout):
            # The serial read-out takes a read-out record only when it has added the last one.
            m.d.comb += core.o.ready.eq((~have | drop) & self.readout.ready)
        else:
            m.d.comb += core.o.ready.eq(~have | drop)
        with m.If(core.o.valid & core.o.ready):
            m.d.sync += [rec.eq(o), have.eq(1)]
            with m.If(o.last):
                m.d.sync += done.eq(done + 1)

        # Sparse spikes: the lowest remaining spike of the record, 2 bytes each, then FF FF
        # after a layer's last group.
        mask = Signal(P, name="enc_mask")
        k = lowest_set(m, mask, "enc_low")
        hi = Signal(name="enc_hi")            # the second byte of the current u16
        # Dense: spike bytes, then each lane's membrane bytes.
        di = Signal(range(sb + 1), name="enc_si")
        lane = Signal(range(P + 1), name="enc_lane")
        vi = Signal(range(vbytes_max + 1), name="enc_vi")
        vwide = [rec.v[q].as_signed() for q in range(P)]
        v_lane = Array([Cat(v, *([v[-1]] * (8 * vbytes_max - len(v)))) for v in vwide])[lane]
        spk_bytes = Cat(rec.spike, C(0, 8 * sb - P)) if 8 * sb > P else rec.spike

        with m.FSM(name="enc"):
            with m.State("TAKE"):
                with m.If(have):
                    m.d.sync += [mask.eq(rec.spike), hi.eq(0), di.eq(0), lane.eq(0),
                                 vi.eq(0)]
                    with m.If(flags[1]):
                        m.next = "DENSE"
                    with m.Elif(flags[0] & spiking):
                        m.next = "SPARSE"
                    with m.Else():
                        m.d.comb += drop.eq(1)
                        m.d.sync += have.eq(core.o.valid)    # the next record, if one came
            with m.State("SPARSE"):
                idx = (rec.index + k)[:16]
                with m.If(mask.any()):
                    m.d.comb += [out_valid.eq(1), out_data.eq(Mux(hi, idx[8:], idx[:8]))]
                    with m.If(sent):
                        m.d.sync += hi.eq(~hi)
                        with m.If(hi):
                            m.d.sync += mask.eq(mask & ~(1 << k)[:P])
                with m.Elif(last_group):
                    m.d.comb += [out_valid.eq(1), out_data.eq(0xFF)]
                    with m.If(sent):
                        m.d.sync += hi.eq(~hi)
                        with m.If(hi):
                            m.d.sync += have.eq(0)
                            m.next = "TAKE"
                with m.Else():
                    m.d.sync += have.eq(0)
                    m.next = "TAKE"
            with m.State("DENSE"):
                with m.If(spiking & (di != sb)):
                    m.d.comb += [out_valid.eq(1), out_data.eq(spk_bytes.word_select(di, 8))]
                    with m.If(sent):
                        m.d.sync += di.eq(di + 1)
                with m.Elif(lane != lanes_here):
                    m.d.comb += [out_valid.eq(1), out_data.eq(v_lane.word_select(vi, 8))]
                    with m.If(sent):
                        with m.If(vi == layer_vb[rec.layer] - 1):
                            m.d.sync += [vi.eq(0), lane.eq(lane + 1)]
                        with m.Else():
                            m.d.sync += vi.eq(vi + 1)
                with m.Else():
                    m.d.sync += have.eq(0)
                    m.next = "TAKE"
        return {"valid": out_valid, "data": out_data, "ready": out_ready, "busy": have}

