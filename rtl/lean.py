"""Lean core: the DelRec / ConvDelRec shape on one shared datapath, weights in 64-bit SPRAM words.

:class:`~rtl.stack.StackCore` buys speed with a register per neuron and a weight row per cycle:
far too much logic for the iCE40UP5K (5,280 cells). :class:`~rtl.core.NetworkCore` fits there
with its 4-bit weights in SPRAM, but pays a cycle per (event, group of lanes) pair and reads a
lane's weight per SPRAM port. This core takes the same stack-shaped networks as the stack core
(:func:`rtl.stack_plan.stack_plan`) and spends the UP5K's resources where they pay:

* **weights in one 64-bit memory** — the four SPRAM blocks side by side, loaded once after
  configuration through ``wl`` (a board reads them from its flash). A word holds ``S`` weight
  slots (16 of 4 bits, 8 of 8 bits): the weights of ``S`` neighbouring postsynaptic neurons, a
  *chunk*. A presynaptic neuron's row is ``ceil(n / S)`` consecutive words.
* **accumulation (phase A)** — each event (an input channel's set bit, a spike of the layer
  below, or a delayed spike of the layer's own conv recurrence) streams its row, one word per
  cycle, into ``S`` accumulator banks (block RAMs, read-modify-write). The conv recurrence is a
  row like the others: the image holds, for every neuron j, the kernel laid over the chunks it
  reaches (3 words for K = 31 and S = 16), so a delayed spike costs 3 cycles and no logic.
* **update (phase B)** — ``lanes`` LIF units update ``lanes`` neurons per cycle: the sums
  leave their banks (which are cleared), biases and delays from two block RAMs that the
  bitstream initialises (not the SPRAM, whose port is phase A's), membranes from a block
  RAM; leak on a multiplier, saturation, threshold, reset, in a six-register pipeline shared
  by all layers (the arithmetic of :mod:`rtl.lif`, given the current layer's constants).
* **delays as a ring of time slots** — a neuron j spiking at step t writes its spike into slot
  ``(t + d_j) mod R`` of a one-bit-per-neuron ring (``R`` = the largest delay rounded up to a
  power of two); the update of step t reads slot t + 1 and hands the set bits to the next
  step's phase A as conv events. Every neuron writes every step (0 or 1), so nothing needs
  clearing; ``d_j = 1`` bypasses the ring.

Phase A and phase B overlap. The walker goes round the layers A1, A2, A3, A1, ... and phase
B follows it, B1, B2, B3, ...: when the walker has added layer l's last word it hands layer l
to phase B and goes straight on with layer l + 1, whose events are the spikes phase B writes
meanwhile (the spike list is read as it is written); it ends layer l + 1 only once phase B is
done with layer l. Phase B reads a chunk's ``S`` sums at once, at the chunk's first group (the
walker stands still that cycle; the chunk's later groups take theirs from registers), so the
banks' ports are the walker's but for one cycle in ``S / lanes``. Whenever its own layer
offers nothing, the walker takes work of other layers: in the last layer, the next step's
input records (the first layer's banks are free by then); anywhere but in it, the delayed
spikes of the last conv layer for its next phase A, which go into a second region of that
layer's sums (the regions alternate by step) while its update reads the other. Ports and
records are those of
:class:`~rtl.core.NetworkCore` (``rtl/interface.py``) plus ``wl`` (64-bit words of
:meth:`LeanCore.load_image`); ``observe`` and ``gate`` work as for the stack core.
``docs/hardware.md`` ("The lean core") has the timing and the resources.

:meth:`LeanCore.elaborate` builds the core in named parts: the memories; phase A's walker
(stage W0 turns an event into the descriptor of its row, W1 issues the row's words) and the
accumulator banks; the sequencer (clear, load, then the walker's layer ``al`` and phase B's
layer ``cl``, each going round on its own); phase B's issue; the LIF
pipeline; the write-back (membranes, delay rings, spike and conv lists); the output buffer.
What two parts share travels in small dataclasses (``_Walker``, ``_PhaseB``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Array, C, Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import memory, stream
from amaranth.lib.wiring import In, Out

from model.ir import Network, index_bits, signed_bits
from .checked import CheckedComponent
from .errors import UnsupportedNetwork
from .interface import step_in_layout, step_out_layout
from .lean_layout import WORD_BITS, LeanLayout, lean_image, lean_layout, lean_params, log2_exact
from .lif import clamp, fire_and_reset, floor_shift, scale
from .logic import lowest_set
from .spram import SpramArray
from .stack_plan import observed_layers

__all__ = ["LeanCore"]

#: Pipeline registers of phase B between issuing a group and writing it back.
B_STAGES = 6
#: Output records buffered in flip-flops. Phase B issues a group of an observed layer while
#: the buffer has room for it and the groups in flight, so with every layer observed it
#: issues about two groups in three cycles (the prediction-only read-out: 5 groups a step).
OUT_DEPTH = 4


class LeanCore(CheckedComponent):
    """The lean core for ``net`` (see the module docstring): ``lanes`` (a power of two, at
    most the weights per word) neurons updated per cycle. ``spram_cells`` builds the weight
    memory from ``SB_SPRAM256KA`` primitives (default: when elaborated for a platform) rather
    than a behavioural memory."""

    @classmethod
    def check_args(cls, net: Network, *, lanes: int = 4, observe=None, gate: bool = False,
                   spram_cells: bool | None = None) -> None:
        lean_layout(net, lanes)
        obs = observed_layers(net, observe)
        if gate and obs[-1] != len(net.layers) - 1:
            raise UnsupportedNetwork("gate needs the last layer observed")

    def __init__(self, net: Network, *, lanes: int = 4, observe=None, gate: bool = False,
                 spram_cells: bool | None = None):
        self.layout = lean_layout(net, lanes)
        self.net, self.lanes = net, lanes
        self.observe = observed_layers(net, observe)
        self.gate, self.spram_cells = bool(gate), spram_cells
        #: What :func:`rtl.export.generate` and the board tops read of a core.
        self.kinds = {"weights": "spram"}
        self.load_width = WORD_BITS
        ports = {
            "i": In(stream.Signature(step_in_layout(net))),
            "o": Out(stream.Signature(step_out_layout(net, lanes))),
            "wl": In(stream.Signature(unsigned(WORD_BITS))),
            "busy": Out(1),
        }
        if gate:
            ports["mask"] = In(len(self.observe), init=(1 << len(self.observe)) - 1)
        super().__init__(ports)

    def load_image(self) -> list[int]:
        """The words to stream on ``wl`` after the first reset."""
        return lean_image(self.net, self.layout)

    @property
    def memory_bits(self) -> dict[str, int]:
        return {"weights": self.layout.words * WORD_BITS}

    def _enabled(self, l: int):
        if not self.gate or l == self.observe[-1]:
            return C(1, 1)
        return self.mask[self.observe.index(l)]

    # ----------------------------------------------------------------------------------------
    def elaborate(self, platform):
        """The core in named parts (see each). The parts are called in the order in which the
        statements they add reach the module: that order numbers the Verilog's anonymous
        wires, so moving a statement from one part to another changes the Verilog."""
        m = Module()
        net, L = self.net, self.layout
        d = _Dims.of(net, L, self.lanes)
        cl = Signal(range(max(2, d.nl)), init=1, name="cl")
        al = Signal(range(max(2, d.nl)), init=1, name="al")
        step = _Step(cl=cl, al=al, ix=Signal(range(max(2, d.nl)), name="ix"),
                     wpar=Signal(name="wpar"),
                     slot=Signal(max(1, log2_exact(L.ring)), name="slot"),
                     tsat=Signal(range(L.ring + 1), name="tsat"),
                     observed=Array([self._enabled(l) if l in self.observe else C(0, 1)
                                     for l in range(d.nl)])[cl],
                     nl=d.nl, lif=d.lif)
        mem = self._memories(m, platform, d)
        a = _Walker.create(net, L, d, step, len(mem.w_addr))
        lists = _Lists(sp_n=Signal(range(d.gmax + 1), name="sp_n"),
                       sp_r=Signal(range(d.gmax + 1), name="sp_r"),
                       cv_n={l: Signal(range(L.groups[l] + 1), name=f"cv_n{l}")
                             for l in L.conv},
                       cv_r=Signal(range(d.gmax + 1), name="cv_r"),
                       sp_nd=Signal(range(d.gmax + 1), name="sp_nd"),
                       ce_r=Signal(range(d.gmax + 1), name="ce_r"),
                       ce_nd=Signal(range(d.gmax + 1), name="ce_nd"))
        b = _PhaseB.create(L, d, step, a, ring=mem.ring is not None)
        of_n = Signal(range(OUT_DEPTH + 1), name="of_n")   # records in the output buffer
        # The buffer has room for another group: its records and the groups in flight are
        # fewer than OUT_DEPTH (a register, kept by the output buffer's logic).
        room = Signal(init=1, name="room")

        row = self._phase_a_rows(m, d, step, a)
        self._accumulators(m, d, mem, a, b)
        self._phase_a_issue(m, mem, a, row)
        busy = self._sequencer(m, d, step, mem, a, lists, b, room)
        self._phase_b_issue(m, d, step, mem, b)
        res = self._lif_pipeline(m, d, step, mem, b)
        self._write_back(m, d, step, mem, lists, b, res)
        self._output_fifo(m, d, step, b, res, of_n, room, busy)
        return m

    def _memories(self, m: Module, platform, d: _Dims) -> _Memories:
        """The weight memory (SPRAM), the accumulator banks, the membranes, the delay rings and
        the spike and conv lists (block RAMs); the weight memory's port is driven from
        ``w_addr`` and ``w_en`` (and written from ``wl``)."""
        L = self.layout
        primitive = platform is not None if self.spram_cells is None else self.spram_cells
        m.submodules.wmem = wmem = SpramArray(depth=L.words, width=WORD_BITS,
                                              primitive=primitive)
        # A port's signals are named after the variable it is assigned to (wp__addr, v_wr__en).
        acc_wr, acc_rd = [], []
        for k in range(d.S):
            mem = memory.Memory(shape=signed(L.acc_bits), depth=max(2, L.acc_depth), init=[])
            m.submodules[f"acc{k}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            acc_wr.append(wp)
            acc_rd.append(rp)
        vmem = memory.Memory(shape=unsigned(d.P * d.vb), depth=max(2, L.v_depth), init=[])
        m.submodules.vmem = vmem
        v_wr = vmem.write_port()
        v_rd = vmem.read_port()
        ring = None
        if L.conv:
            ring = []
            for k in range(d.P):
                mem = memory.Memory(shape=1, depth=L.ring * L.f_groups, init=[])
                m.submodules[f"ring{k}"] = mem
                ring.append((mem.write_port(), mem.read_port()))
        # The spikes of layer l (non-zero words of one group) for phase A of layer l + 1.
        spk_wr = spk_rd = None
        if d.feeds:
            spk = memory.Memory(shape=unsigned(d.gl + d.P), depth=max(2, d.gmax), init=[])
            m.submodules.spk = spk
            spk_wr, spk_rd = spk.write_port(), spk.read_port()
        # The biases and delays of each group: block RAMs the bitstream initialises.
        bias_init, delay_init = lean_params(self.net, L)
        pb = memory.Memory(shape=unsigned(d.P * L.bias_bits), depth=len(bias_init),
                           init=bias_init)
        m.submodules.bias = pb
        b_rd = pb.read_port()
        d_rd = None
        if L.conv:
            pd = memory.Memory(shape=unsigned(d.P * L.delay_bits), depth=len(delay_init),
                               init=delay_init)
            m.submodules.delays = pd
            d_rd = pd.read_port()
        cvl = {}
        for l in L.conv:
            mem = memory.Memory(shape=unsigned(d.gl + d.P), depth=max(2, L.groups[l]), init=[])
            m.submodules[f"cvl{l}"] = mem
            cvl[l] = (mem.write_port(), mem.read_port())
        # The weight memory's port: load, phase A rows.
        w_addr = Signal(len(wmem.addr), name="w_addr")
        w_en = Signal(name="w_en")
        m.d.comb += [wmem.addr.eq(w_addr), wmem.en.eq(w_en), wmem.wdata.eq(self.wl.payload)]
        return _Memories(wmem=wmem, acc_wr=acc_wr, acc_rd=acc_rd, v_wr=v_wr, v_rd=v_rd,
                         ring=ring, spk_wr=spk_wr, spk_rd=spk_rd, cvl=cvl, b_rd=b_rd, d_rd=d_rd,
                         w_addr=w_addr, w_en=w_en)

    def _phase_a_rows(self, m: Module, d: _Dims, step: _Step, a: _Walker) -> _Row:
        """Phase A, stage W0: the item's lowest set bit (an event) as the descriptor of its row
        (first word, words, first target sum); and the handshake between W0, W1 and a1."""
        L = self.layout
        per_layer, cl = step.per_a, step.ix
        it_mask, it_base = a.it_mask, a.it_base
        m.d.comb += step.ix.eq(a.it_l)
        P, S, gl, nl, lif = d.P, d.S, d.gl, d.nl, d.lif
        ab = len(a.d_row)
        m.d.comb += a.has.eq(a.it_valid & it_mask.any())
        k_low = lowest_set(m, it_mask, "it_low")
        rest = Signal(d.mb, name="it_rest")
        m.d.comb += rest.eq(it_mask & (it_mask - 1))
        j = Signal(max(len(it_base), gl + log2_exact(P)) + 1, name="it_j")
        m.d.comb += j.eq(Mux(a.it_in, it_base, Cat(k_low[:log2_exact(P)], it_base[:gl])
                             if P > 1 else it_base[:gl]))
        cnt = Signal(range(d.cmax + 1), name="it_cnt")
        m.d.comb += cnt.eq(Mux(a.it_conv,
                               per_layer(lambda l: L.cv_chunks.get(l, 1), cnt.shape()),
                               per_layer(lambda l: L.chunks[l], cnt.shape())))
        # Row addresses: base + j * stride (strides are powers of two).
        ff_row = Array([C(0, ab) if l not in lif else
                        (C(L.ff_base[l], ab) + (j << log2_exact(L.ff_stride[l])))[:ab]
                        for l in range(nl)])[cl]
        if L.conv:
            cv_row = Array([(C(L.cv_base[l], ab) + (j << log2_exact(L.cv_stride[l])))[:ab]
                            if l in L.conv else C(0, ab) for l in range(nl)])[cl]
            # First chunk of the conv row: floor((j + off) / S), at least 0, at most C - CK.
            offw = signed_bits(min(L.cv_off.values()), 0)
            aoff = Signal(signed(max(len(j), offw) + 2), name="cv_a")
            m.d.comb += aoff.eq(j + per_layer(lambda l: L.cv_off.get(l, 0), signed(offw)))
            c0 = Signal(range(d.cmax), name="cv_c0")
            first = Mux(aoff < 0, 0, aoff >> log2_exact(S))
            c0max = per_layer(lambda l: L.chunks[l] - L.cv_chunks.get(l, L.chunks[l]),
                              c0.shape())
            m.d.comb += c0.eq(Mux(first > c0max, c0max, first))
            row = Mux(a.it_conv, cv_row, ff_row)
            target = Mux(a.it_conv, c0, 0)
        else:
            row = ff_row
            target = C(0, 1)
        m.d.comb += a.hazard.eq(a.a1_valid & (a.a1_addr == a.d_tgt))
        m.d.comb += a.d_free.eq(~a.d_valid | (a.a_issue & (a.d_left == 0)))
        m.d.comb += a.need.eq(~a.it_valid | ~it_mask.any() | (a.xfer & ~rest.any()))
        return _Row(k_low=k_low, rest=rest, cnt=cnt, row=row, target=target)

    def _accumulators(self, m: Module, d: _Dims, mem: _Memories, a: _Walker, b: _PhaseB):
        """The accumulator banks: reads from phase A's walker (W1's target) or, at a chunk's
        first group, phase B's issue (all ``S`` banks; the sums of the chunk's later groups wait
        in ``hold``); writes from phase A's a1 (sum + weight slot) or phase B's clear of the
        chunk (stage 1, when a1 is idle since W1 stood still in the read's cycle)."""
        sw = self.layout.slot_bits
        w_slots = [mem.wmem.data[k * sw:(k + 1) * sw].as_signed() for k in range(d.S)]
        first = (b.p1_sub == 0) if d.subs > 1 else C(1, 1)
        for k in range(d.S):
            rp, wp = mem.acc_rd[k], mem.acc_wr[k]
            m.d.comb += rp.addr.eq(Mux(b.b_bank, b.acc_addr, a.d_tgt))
            with m.If(a.a1_valid):
                m.d.comb += [wp.addr.eq(a.a1_addr), wp.en.eq(1),
                             wp.data.eq(rp.data + (w_slots[k] << a.a1_shift))]
            with m.Elif(b.pv[0] & first):
                # W1 stood still in the read's cycle, so a1 is idle in this one.
                m.d.comb += [wp.addr.eq(b.p1_acc), wp.en.eq(1), wp.data.eq(0)]
            if k >= d.P:
                with m.If(b.pv[0] & first):
                    m.d.sync += b.hold[k - d.P].eq(rp.data)

    def _phase_a_issue(self, m: Module, mem: _Memories, a: _Walker, row: _Row):
        """Phase A, stage W1: issue the descriptor's words, one per cycle, and take W0's next
        descriptor (clearing its bit in W0's item); a1 follows W1 by a cycle."""
        with m.If(a.a_issue):
            m.d.comb += [mem.w_addr.eq(a.d_row), mem.w_en.eq(1)]
            m.d.sync += [a.d_row.eq(a.d_row + 1), a.d_tgt.eq(a.d_tgt + 1),
                         a.d_left.eq(a.d_left - 1)]
            with m.If(a.d_left == 0):
                m.d.sync += a.d_valid.eq(0)
        with m.If(a.xfer):
            m.d.sync += [a.d_valid.eq(1), a.d_row.eq(row.row),
                         a.d_tgt.eq((a.acc_base + row.target)[:len(a.d_tgt)]),
                         a.d_left.eq(row.cnt - 1), a.d_shift.eq(Mux(a.it_in, row.k_low, 0)),
                         a.d_l.eq(a.it_l),
                         a.it_mask.eq(row.rest)]
        m.d.sync += [a.a1_valid.eq(a.a_issue), a.a1_addr.eq(a.d_tgt), a.a1_shift.eq(a.d_shift)]

    def _sequencer(self, m: Module, d: _Dims, step: _Step, mem: _Memories, a: _Walker,
                   lists: _Lists, b: _PhaseB, room: Signal) -> Signal:
        """The state machine: clear the block RAMs after reset, load the weights once, then
        run. Running, the walker (phase A, layer ``al``) and the update (phase B, layer ``cl``)
        go round the layers each on its own: when the walker has added layer l's last word it
        hands layer l to phase B and goes on with layer l + 1 (or layer 1 of the next step),
        whose events are the spikes phase B writes meanwhile; it ends that layer only once
        phase B has finished layer l (``b_pend`` low). Phase B reads a chunk's sums at the
        chunk's first group, and W1 stands still in that cycle; W1 goes by ``b_near``, set a
        cycle ahead (also when the output buffer then holds phase B back), so that phase B's
        issue logic does not lie on the walker's path. Returns ``busy`` (without the output
        buffer)."""
        L = self.layout
        cl, al = step.cl, step.al
        last_l = d.lif[-1]
        pipe_busy = Cat(*b.pv).any()
        heads = self._list_heads(m, d, step, mem, lists, a)
        loaded = Signal(name="loaded", reset_less=True)  # SPRAM keeps its words over resets
        ld_addr = Signal(range(max(2, L.words)), name="ld_addr")
        clr = Signal(range(max(L.acc_depth, L.v_depth) + 1), name="clr")
        busy = Signal(name="busy_i")
        b_on = Signal(name="b_on")          # phase B issues layer cl's groups
        # Next cycle's b_on and g, so that b_near is known a cycle ahead.
        b_on_n = Signal(name="b_on_n")
        g_n = Signal.like(b.g, name="g_n")
        m.d.comb += [b_on_n.eq(b_on), g_n.eq(b.g)]
        with m.FSM(init="CLEAR"):
            # A synchronous reset does not clear block RAM: zero the sums and membranes.
            with m.State("CLEAR"):
                m.d.comb += busy.eq(1)
                for k in range(d.S):
                    with m.If(clr < L.acc_depth):
                        m.d.comb += [mem.acc_wr[k].addr.eq(clr), mem.acc_wr[k].en.eq(1),
                                     mem.acc_wr[k].data.eq(0)]
                m.d.comb += [mem.v_wr.addr.eq(clr), mem.v_wr.en.eq(clr < L.v_depth),
                             mem.v_wr.data.eq(0)]
                m.d.sync += clr.eq(clr + 1)
                with m.If(clr == max(L.acc_depth, L.v_depth)):
                    m.next = "RUN"
                    with m.If(~loaded):
                        m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [busy.eq(1), self.wl.ready.eq(1), mem.w_addr.eq(ld_addr),
                             mem.wmem.we.eq(self.wl.valid)]
                with m.If(self.wl.valid):
                    m.d.sync += ld_addr.eq(ld_addr + 1)
                    with m.If(ld_addr == L.words - 1):
                        m.d.sync += loaded.eq(1)
                        m.next = "RUN"
            with m.State("RUN"):
                self._phase_a_items(m, d, step, a, lists, heads, b, busy)
                with m.If(a.a_next):
                    # The walker hands layer al to phase B and goes on with the next layer;
                    # the spike list starts over for the layer it now feeds.
                    m.d.sync += [al.eq(Mux(al == last_l, 1, al + 1)), cl.eq(al),
                                 b.b_pend.eq(1),
                                 lists.sp_n.eq(0), lists.sp_r.eq(0), lists.cv_r.eq(0)]
                    m.d.comb += [b_on_n.eq(1), g_n.eq(0)]
                    with m.If(al == 1):
                        m.d.sync += a.in_done.eq(0)
                    for l in L.conv:
                        with m.If(al == l):
                            m.d.sync += lists.cv_n[l].eq(0)
                    if L.early is not None:
                        with m.If(al == L.early):
                            m.d.sync += [step.wpar.eq(~step.wpar), lists.ce_r.eq(0)]
                # A group of an observed layer only when the output buffer has room for it
                # and every group still in the pipeline.
                m.d.comb += b.b_issue.eq(b_on & (room | ~step.observed))
                with m.If(b.b_issue):
                    with m.If(b.g == b.groups - 1):
                        m.d.comb += b_on_n.eq(0)
                    with m.Else():
                        m.d.comb += g_n.eq(b.g + 1)
                with m.If(b.b_pend & ~b_on & ~pipe_busy):
                    m.d.sync += b.b_pend.eq(0)
                    with m.If(cl == last_l):
                        m.d.sync += [step.slot.eq(step.slot + 1),
                                     step.tsat.eq(Mux(step.tsat == L.ring, step.tsat,
                                                      step.tsat + 1))]
        def first(g):
            return (g[:d.sub_bits] == 0) if d.subs > 1 else C(1, 1)
        m.d.comb += b.b_bank.eq(b.b_issue & first(b.g))
        m.d.sync += [b_on.eq(b_on_n), b.g.eq(g_n), b.b_near.eq(b_on_n & first(g_n))]
        m.d.sync += lists.sp_nd.eq(Mux(a.a_next, 0, lists.sp_n))
        if L.early is not None:
            m.d.sync += lists.ce_nd.eq(Mux(a.a_next & (al == L.early), 0,
                                           lists.cv_n[L.early]))
        if mem.spk_rd is not None:
            m.d.comb += mem.spk_rd.en.eq(1)
        for l, (wp, rp) in mem.cvl.items():
            m.d.comb += rp.en.eq(1)
        return busy

    def _list_heads(self, m: Module, d: _Dims, step: _Step, mem: _Memories,
                    lists: _Lists, a: _Walker) -> _Heads:
        """The heads of the spike list and of the walker's layer's conv list: the read port
        shows entry ``sp_r`` (``cv_r``); taking one presents the next address, and the
        walker's change of layer address 0. An entry of the spike list counts once its read
        can see it: ``sp_nd`` is ``sp_n`` a cycle late."""
        gl, P = d.gl, d.P
        lc = self.layout.early
        take_sp = Signal(name="take_sp")
        take_cv = Signal(name="take_cv")
        take_ce = Signal(name="take_ce")
        if mem.spk_rd is not None:
            m.d.comb += mem.spk_rd.addr.eq(Mux(a.a_next, 0,
                                               Mux(take_sp, lists.sp_r + 1, lists.sp_r)))
        for l, (wp, rp) in mem.cvl.items():
            if l == lc:
                m.d.comb += rp.addr.eq(Mux(take_ce, lists.ce_r + 1, lists.ce_r))
            else:
                m.d.comb += rp.addr.eq(Mux(a.a_next, 0, Mux(take_cv & (step.al == l),
                                                             lists.cv_r + 1, lists.cv_r)))
        cv_avail = C(0, 1)
        cv_head = C(0, gl + P)
        for l, (wp, rp) in mem.cvl.items():
            if l != lc:
                cv_avail = cv_avail | ((step.al == l) & (lists.cv_r < lists.cv_n[l]))
                cv_head = Mux(step.al == l, rp.data, cv_head)
        spk = mem.spk_rd is not None
        return _Heads(take_sp=take_sp, take_cv=take_cv, cv_avail=cv_avail, cv_head=cv_head,
                      take_ce=take_ce,
                      ce_avail=(lists.ce_r < lists.ce_nd) if lc is not None else C(0, 1),
                      ce_head=mem.cvl[lc][1].data if lc is not None else C(0, gl + P),
                      sp_avail=(lists.sp_r < lists.sp_nd) & (step.al != 1) if spk else C(0, 1),
                      sp_head=mem.spk_rd.data if spk else C(0, gl + P))

    def _phase_a_items(self, m: Module, d: _Dims, step: _Step, a: _Walker, lists: _Lists,
                       heads: _Heads, b: _PhaseB, busy: Signal):
        """W1 issues while the banks allow, W0 hands rows to W1, and W0 takes its next item:
        an input record (the first layer), else an entry of the spike list, else one of the
        conv list. Items of other layers fill the walker's waits: in the last layer, the next
        step's input records (their rows are the first layer's, whose banks phase B has left);
        in any layer but the early conv layer, that layer's delayed spikes for its next phase
        A, read as its update writes them (into the region of sums its update does not read).
        The walker's layer ends (``a_next``) when no item or row of it is left and phase B is
        done with the layer before."""
        gl, last_l, lc = d.gl, d.lif[-1], self.layout.early
        al = step.al
        is_input = al == 1
        m.d.comb += [a.a_issue.eq(a.d_valid & ~a.hazard & ~b.b_near),
                     a.xfer.eq(a.has & a.d_free)]
        ended = a.in_done | (a.it_valid & a.it_last)    # no more input records this step
        # With one LIF layer, the walker's next step must wait for phase B's reads.
        free = ~b.b_pend if len(d.lif) == 1 else C(1, 1)
        # Early input: in the last layer, once phase B has left the first layer's banks.
        early = ((al == last_l) & ~(b.b_pend & (step.cl == 1))) if len(d.lif) > 1 \
            else C(0, 1)
        own_ce = (al == lc) if lc is not None else C(0, 1)
        take_in = Signal(name="take_in")
        with m.If(a.need & a.it_valid & a.it_last):
            m.d.sync += a.in_done.eq(1)

        def take_list(head, conv, ptr, layer):
            m.d.sync += [a.it_valid.eq(1), a.it_base.eq(head[:gl]), a.it_mask.eq(head[gl:]),
                         a.it_conv.eq(conv), a.it_in.eq(0), a.it_last.eq(0), a.it_l.eq(layer),
                         ptr.eq(ptr + 1)]
        with m.If(a.need):
            m.d.sync += a.it_valid.eq(0)
            with m.If(is_input & ~ended & free):
                m.d.comb += take_in.eq(1)
            with m.Elif(heads.sp_avail):
                m.d.comb += heads.take_sp.eq(1)
                take_list(heads.sp_head, 0, lists.sp_r, al)
            with m.Elif(heads.cv_avail & free):
                m.d.comb += heads.take_cv.eq(1)
                take_list(heads.cv_head, 1, lists.cv_r, al)
            with m.Elif(heads.ce_avail & own_ce):
                m.d.comb += heads.take_ce.eq(1)
                take_list(heads.ce_head, 1, lists.ce_r, lc or 0)
            with m.Elif(early & ~ended):
                m.d.comb += take_in.eq(1)
            with m.Elif(heads.ce_avail):
                m.d.comb += heads.take_ce.eq(1)
                take_list(heads.ce_head, 1, lists.ce_r, lc or 0)
        with m.If(take_in):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                p = self.i.payload
                m.d.sync += [a.it_valid.eq(1), a.it_base.eq(p.index),
                             a.it_mask.eq(Mux(p.valid, p.value, 0)), a.it_conv.eq(0),
                             a.it_last.eq(p.last), a.it_in.eq(1), a.it_l.eq(1)]
        # Work of the walker's layer still in W0 or W1.
        own_item = a.has & (a.it_l == al)
        own_row = a.d_valid & (a.d_l == al)
        m.d.comb += a.a_next.eq(~heads.sp_avail & ~heads.cv_avail & ~(heads.ce_avail & own_ce)
                                & (~is_input | ended) & ~own_item & ~own_row & ~b.b_pend)
        m.d.comb += busy.eq(~is_input | a.it_valid | a.d_valid | a.a1_valid | b.b_pend)

    def _phase_b_issue(self, m: Module, d: _Dims, step: _Step, mem: _Memories, b: _PhaseB):
        """Phase B, stage 0 (issue): read the group's sums (see :meth:`_accumulators`), its
        membranes, its biases and delays and its ring slot; the pipeline's valid, group and
        last-group registers."""
        L = self.layout
        g = b.g
        m.d.comb += [mem.v_rd.addr.eq((b.v_base + g)[:len(mem.v_rd.addr)]),
                     mem.b_rd.addr.eq((b.v_base + g)[:len(mem.b_rd.addr)])]
        if mem.d_rd is not None:
            m.d.comb += mem.d_rd.addr.eq((b.f_base + g)[:len(mem.d_rd.addr)])
        if mem.ring is not None:
            ring_bits, fg_bits = log2_exact(L.ring), log2_exact(L.f_groups)
            for k, (wp, rp) in enumerate(mem.ring):
                m.d.comb += rp.addr.eq(Cat((b.f_base + g)[:fg_bits],
                                           (step.slot + 1)[:ring_bits]) if fg_bits else
                                       (step.slot + 1)[:ring_bits])
        pv, pg, plast = b.pv, b.pg, b.plast
        m.d.sync += [pv[0].eq(b.b_issue), pg[0].eq(g), plast[0].eq(g == b.groups - 1),
                     b.p1_acc.eq(b.acc_addr)]
        if d.subs > 1:
            m.d.sync += b.p1_sub.eq(g[:d.sub_bits])
        for s in range(1, B_STAGES):
            m.d.sync += [pv[s].eq(pv[s - 1]), pg[s].eq(pg[s - 1]), plast[s].eq(plast[s - 1])]

    def _lif_pipeline(self, m: Module, d: _Dims, step: _Step, mem: _Memories,
                      b: _PhaseB) -> _Result:
        """Phase B, stages 1 to 4: the LIF update of P lanes (:mod:`rtl.lif`), with the
        current layer's constants; the delays and ring bits travel alongside."""
        L, layers = self.layout, self.net.layers
        P, vb, nl, lif, subs = d.P, d.vb, d.nl, d.lif, d.subs
        per_layer, cl = step.per_layer, step.cl
        bb, db = L.bias_bits, L.delay_bits
        iw = max(L.acc_bits, bb) + 1
        par = mem.b_rd.data
        # Stage 1: the group's sums + bias; membranes; delays; ring bits.
        s2_j = [Signal(signed(iw), name=f"s2_j{k}", reset_less=True) for k in range(P)]
        s2_v = [Signal(signed(vb), name=f"s2_v{k}", reset_less=True) for k in range(P)]
        dl = [Signal(max(1, db), name=f"s2_d{k}", reset_less=True) for k in range(P)]
        fb = [Signal(name=f"s2_f{k}", reset_less=True) for k in range(P)]
        for k in range(P):
            a_k = Array([mem.acc_rd[k].data] + [b.hold[q * P + k - P] for q in range(1, subs)])[
                b.p1_sub] if subs > 1 else mem.acc_rd[k].data
            m.d.sync += [s2_j[k].eq(a_k + par[k * bb:(k + 1) * bb].as_signed()),
                         s2_v[k].eq(mem.v_rd.data[k * vb:(k + 1) * vb].as_signed())]
            if mem.d_rd is not None:
                m.d.sync += dl[k].eq(mem.d_rd.data[k * db:(k + 1) * db])
            if mem.ring is not None:
                m.d.sync += fb[k].eq(mem.ring[k][1].data)
        # Stage 2: the leak's product (a multiplier per lane; beta depends on the layer).
        beta_w = max(layers[l].beta.bit_length() for l in lif) + 1
        beta = Signal(signed(beta_w), name="beta")
        m.d.comb += beta.eq(per_layer(lambda l: layers[l].beta, signed(beta_w)))
        s3_p = [Signal(signed(vb + beta_w), name=f"s3_p{k}", reset_less=True) for k in range(P)]
        s3_j = [Signal(signed(iw), name=f"s3_j{k}", reset_less=True) for k in range(P)]
        d3 = [Signal(max(1, db), name=f"s3_d{k}", reset_less=True) for k in range(P)]
        f3 = [Signal(name=f"s3_f{k}", reset_less=True) for k in range(P)]
        for k in range(P):
            m.d.sync += [s3_p[k].eq(scale(s2_v[k], beta)), s3_j[k].eq(s2_j[k]),
                         d3[k].eq(dl[k]), f3[k].eq(fb[k])]
        # Stage 3: u = product >> beta_shift (floor), plus J.
        xw = max(vb + beta_w, iw) + 1
        s4_x = [Signal(signed(xw), name=f"s4_x{k}", reset_less=True) for k in range(P)]
        d4 = [Signal(max(1, db), name=f"s4_d{k}", reset_less=True) for k in range(P)]
        f4 = [Signal(name=f"s4_f{k}", reset_less=True) for k in range(P)]
        for k in range(P):
            u = Array([floor_shift(s3_p[k], layers[l].beta_shift) if l in lif else s3_p[k]
                       for l in range(nl)])[cl]
            m.d.sync += [s4_x[k].eq(u + s3_j[k]), d4[k].eq(d3[k]), f4[k].eq(f3[k])]
        # Stage 3b: v_hat = sat(u + J) to the layer's width.
        s4_h = [Signal(signed(vb), name=f"s4_h{k}", reset_less=True) for k in range(P)]
        d4b = [Signal(max(1, db), name=f"s4b_d{k}", reset_less=True) for k in range(P)]
        f4b = [Signal(name=f"s4b_f{k}", reset_less=True) for k in range(P)]
        vmax = per_layer(lambda l: layers[l].v_max, signed(vb))
        vmin = per_layer(lambda l: layers[l].v_min, signed(vb))
        for k in range(P):
            m.d.sync += [s4_h[k].eq(clamp(s4_x[k], vmin, vmax)),
                         d4b[k].eq(d4[k]), f4b[k].eq(f4[k])]
        # Stage 4: threshold and reset; lanes past the layer's end carry zeros.
        s5_v = [Signal(signed(vb), name=f"s5_v{k}", reset_less=True) for k in range(P)]
        s5_s = Signal(P, name="s5_s", reset_less=True)
        d5 = [Signal(max(1, db), name=f"s5_d{k}", reset_less=True) for k in range(P)]
        f5 = Signal(P, name="s5_f", reset_less=True)
        spiking = per_layer(lambda l: int(layers[l].spiking), 1)
        thr = per_layer(lambda l: layers[l].threshold if layers[l].spiking else 0, signed(vb))
        sub_reset = per_layer(lambda l: int(layers[l].spiking and layers[l].reset == "subtract"),
                              1)
        tail = per_layer(lambda l: (1 << (layers[l].n - (L.groups[l] - 1) * P)) - 1, P)
        live = Signal(P, name="live")
        m.d.comb += live.eq(Mux(b.plast[4], tail, C((1 << P) - 1, P)))
        for k in range(P):
            fire, v_new = fire_and_reset(s4_h[k], thr, spiking=spiking, subtract=sub_reset,
                                         live=live[k])
            m.d.sync += [s5_s[k].eq(fire), s5_v[k].eq(v_new),
                         d5[k].eq(d4b[k]), f5[k].eq(f4b[k] & live[k])]
        return _Result(v=s5_v, spike=s5_s, delay=d5, ring=f5)

    def _write_back(self, m: Module, d: _Dims, step: _Step, mem: _Memories, lists: _Lists,
                    b: _PhaseB, res: _Result):
        """From the last stage's registers: the membranes; for a conv layer the ring slots
        (each neuron's spike at its delay) and the conv list of the spikes heard next step;
        for a layer that feeds the next one, the spike list."""
        L = self.layout
        cl, nl, gl, P = step.cl, d.nl, d.gl, d.P
        wv, wg = b.pv[5], b.pg[5]
        s5_s, d5 = res.spike, res.delay
        with m.If(wv):
            m.d.comb += [mem.v_wr.addr.eq((b.v_base + wg)[:len(mem.v_wr.addr)]),
                         mem.v_wr.en.eq(1),
                         mem.v_wr.data.eq(Cat(*[x.as_unsigned() for x in res.v]))]
        if mem.ring is not None:
            ring_bits, fg_bits = log2_exact(L.ring), log2_exact(L.f_groups)
            conv_now = Array([C(int(l in L.conv), 1) for l in range(nl)])[cl]
            for k, (wp, rp) in enumerate(mem.ring):
                m.d.comb += [wp.addr.eq(Cat((b.f_base + wg)[:fg_bits],
                                            (step.slot + d5[k])[:ring_bits]) if fg_bits else
                                        (step.slot + d5[k])[:ring_bits]),
                             wp.data.eq(s5_s[k]), wp.en.eq(wv & conv_now)]
            # Delayed spikes heard at step t + 1: s_j(t + 1 - d_j), the ring's bit, valid once
            # t + 1 >= d_j; d_j = 1 is this step's spike.
            ds = Signal(P, name="ds")
            for k in range(P):
                m.d.comb += ds[k].eq(Mux(d5[k] == 1, s5_s[k],
                                         res.ring[k] & (step.tsat + 1 >= d5[k])))
            for l, (wp, rp) in mem.cvl.items():
                m.d.comb += [wp.addr.eq(lists.cv_n[l]), wp.data.eq(Cat(wg[:gl], ds)),
                             wp.en.eq(wv & (cl == l) & ds.any())]
                with m.If(wv & (cl == l) & ds.any()):
                    m.d.sync += lists.cv_n[l].eq(lists.cv_n[l] + 1)
        if mem.spk_wr is not None:
            feeds_now = Array([C(int(l in d.feeds), 1) for l in range(nl)])[cl]
            m.d.comb += [mem.spk_wr.addr.eq(lists.sp_n), mem.spk_wr.data.eq(Cat(wg[:gl], s5_s)),
                         mem.spk_wr.en.eq(wv & feeds_now & s5_s.any())]
            with m.If(wv & feeds_now & s5_s.any()):
                m.d.sync += lists.sp_n.eq(lists.sp_n + 1)

    def _output_fifo(self, m: Module, d: _Dims, step: _Step, b: _PhaseB, res: _Result,
                     of_n: Signal, room: Signal, busy: Signal):
        """The output records: a group of an observed layer, pushed from the last stage's
        registers into a buffer of ``OUT_DEPTH`` records (flip-flops), popped on ``o``. Also
        ``room`` for the next cycle: the buffer's records and the groups in phase B's pipeline
        then (this cycle's, plus an issue, less a pop and a group of a layer not observed
        leaving the last stage) are fewer than ``OUT_DEPTH``, registered so that the sum does
        not lie on the path from the pipeline's flags to the walker."""
        net, P, vb, cl = self.net, d.P, d.vb, step.cl
        ob = index_bits(d.nl)
        nb = index_bits(max(net.layers[l].n for l in d.lif))
        rec_bits = ob + nb + P + P * vb + 1
        ofifo = [Signal(rec_bits, name=f"of{q}", reset_less=True) for q in range(OUT_DEPTH)]
        of_w = Signal(range(OUT_DEPTH), name="of_w")
        of_r = Signal(range(OUT_DEPTH), name="of_r")
        push = Signal(name="of_push")
        push_data = Signal(rec_bits, name="of_data")
        pop = Signal(name="of_pop")
        wv, wg, wlast = b.pv[5], b.pg[5], b.plast[5]
        m.d.comb += [push.eq(wv & step.observed),
                     push_data.eq(Cat(cl[:ob], (wg * P)[:nb], res.spike,
                                      *[x.as_unsigned() for x in res.v],
                                      wlast & (cl == self.observe[-1])))]
        with m.If(push):
            m.d.sync += of_w.eq(of_w + 1)
            for q in range(OUT_DEPTH):
                with m.If(of_w == q):
                    m.d.sync += ofifo[q].eq(push_data)
        head = Array(ofifo)[of_r]
        m.d.comb += [self.o.valid.eq(of_n != 0), pop.eq(self.o.valid & self.o.ready)]
        pl = self.o.payload
        m.d.comb += [pl.layer.eq(head[:ob]), pl.index.eq(head[ob:ob + nb]),
                     pl.spike.eq(head[ob + nb:ob + nb + P]),
                     pl.last.eq(head[ob + nb + P + P * vb])]
        for k in range(P):
            lo = ob + nb + P + k * vb
            m.d.comb += pl.v[k].eq(head[lo:lo + vb].as_signed())
        with m.If(pop):
            m.d.sync += of_r.eq(of_r + 1)
        m.d.sync += of_n.eq(of_n + push - pop)
        flight = Signal(range(B_STAGES + 2), name="flight")
        m.d.comb += flight.eq(sum(b.pv) + b.b_issue - (wv & ~step.observed))
        m.d.sync += room.eq(of_n + flight - pop < OUT_DEPTH)
        m.d.comb += self.busy.eq(busy | of_n.any())


# --------------------------------------------------------------------------------------------
# What the parts of LeanCore.elaborate share. Each part creates the signals only it uses.

@dataclass(frozen=True)
class _Dims:
    """Sizes several parts use."""
    P: int                  # lanes: neurons updated per cycle
    S: int                  # weight slots per word
    nl: int                 # layers, the input layer 0 included
    lif: list[int]          # the LIF layers, 1 .. nl - 1
    gmax: int               # groups of P neurons in the largest layer
    gl: int                 # bits of a group index
    vb: int                 # membrane bits (the widest layer's)
    mb: int                 # bits of phase A's item mask
    cmax: int               # the most words a row has (at least 2)
    subs: int               # groups per chunk of S neurons
    sub_bits: int
    feeds: list[int]        # layers whose spikes feed the next layer's phase A (a spike list)

    @classmethod
    def of(cls, net: Network, L: LeanLayout, P: int) -> _Dims:
        layers = net.layers
        lif = list(range(1, len(layers)))
        gmax = max(L.groups.values())
        subs = L.slots // P
        return cls(P=P, S=L.slots, nl=len(layers), lif=lif, gmax=gmax, gl=index_bits(gmax),
                   vb=max(layers[l].v_bits for l in lif), mb=max(layers[0].in_bits, P),
                   cmax=max(max(L.chunks.values()), 2), subs=subs, sub_bits=log2_exact(subs),
                   feeds=[l for l in lif if l != lif[-1] and layers[l].spiking])


@dataclass
class _Step:
    """Where the core is in a time step, and what depends on the current layer."""
    cl: Signal              # phase B's layer (the update's constants, write-back, output)
    al: Signal              # the walker's layer
    ix: Signal              # W0's item's layer (phase A's rows)
    wpar: Signal            # the early conv layer's region of sums the walker adds into
    slot: Signal            # t mod R: the delay rings' slot of step t
    tsat: Signal            # min(t, R)
    observed: Value         # the current layer is observed (and, with gate, enabled)
    nl: int
    lif: list[int]

    def per_layer(self, f, shape) -> Value:
        """A per-layer constant ``f(l)`` (0 for the input layer), selected by ``cl``."""
        return Array([C(f(l) if l in self.lif else 0, shape) for l in range(self.nl)])[self.cl]

    def acc_base(self, L: LeanLayout, update: bool) -> Value:
        """The first bank address of the walker's item's layer (``update``: phase B's layer);
        the early conv layer's sums alternate between two regions: the walker adds into
        region ``wpar``, phase B reads the other."""
        shape = unsigned(max(1, log2_exact(max(2, L.acc_depth)) + 1))
        sel = self.per_layer if update else self.per_a
        base = sel(lambda l: L.acc_base[l], shape)
        if L.early is None:
            return base
        alt = (self.cl if update else self.ix) == L.early
        return Mux(alt & (~self.wpar if update else self.wpar), C(L.acc_alt, shape), base)

    def per_a(self, f, shape) -> Value:
        """A per-layer constant ``f(l)`` (0 for the input layer), selected by ``ix``."""
        return Array([C(f(l) if l in self.lif else 0, shape) for l in range(self.nl)])[self.ix]


@dataclass
class _Memories:
    """The memories' ports, and the one port of the weight memory as a (address, enable) pair
    that loading and phase A's rows share."""
    wmem: SpramArray                            # weights and parameters, 64-bit words
    acc_wr: list[memory.WritePort]              # S accumulator banks
    acc_rd: list[memory.ReadPort]
    v_wr: memory.WritePort                      # membranes, P lanes a word
    v_rd: memory.ReadPort
    ring: list[tuple] | None                    # per lane: (write, read) of the delay ring
    spk_wr: memory.WritePort | None             # the spike list (layer l's for layer l + 1)
    spk_rd: memory.ReadPort | None
    cvl: dict[int, tuple]                       # per conv layer: (write, read) of its list
    b_rd: memory.ReadPort                       # the biases, P a word
    d_rd: memory.ReadPort | None                # the conv layers' delays, P a word
    w_addr: Signal
    w_en: Signal


@dataclass
class _Walker:
    """Phase A's walker. Stage W0 holds an item (an input record, or a list entry of the layer
    below's spikes or of this layer's delayed spikes) whose set bits are events, and turns its
    lowest set bit into a row descriptor; stage W1 holds the descriptor (all registers) and
    issues its words, one per cycle; a1 adds the word read last cycle into the banks."""
    it_valid: Signal
    it_mask: Signal         # the item's events not yet handed to W1
    it_base: Signal         # an input record's index, or a list entry's group
    it_conv: Signal         # the item is a conv-list entry (its rows are conv rows)
    it_in: Signal           # the item is an input record (else a list entry)
    it_l: Signal            # the item's layer
    it_last: Signal         # the item is the step's last input record
    in_done: Signal         # the step's last input record is done
    has: Signal             # W0 holds an item with an event left
    need: Signal            # W0 takes a new item at the clock edge
    xfer: Signal            # W0 hands its lowest bit's row to W1
    d_valid: Signal
    d_row: Signal           # SPRAM word to read
    d_tgt: Signal           # the sums it adds into
    d_left: Signal          # words after this one
    d_shift: Signal         # an input's bit position: the weights count 2**d_shift times
    d_l: Signal             # the row's layer
    d_free: Signal          # W1 takes a new descriptor at the clock edge
    hazard: Signal          # the banks' read would miss a1's write: wait one
    a_issue: Signal         # W1 issues a word this cycle
    a1_valid: Signal        # a1 adds the word W1 issued last cycle ...
    a1_shift: Signal        # ... shifted by W1's d_shift ...
    a1_addr: Signal         # ... into the sums W1's d_tgt named
    a_next: Signal          # the walker's layer ends: phase B takes it over
    acc_base: Value         # the walker's layer's first bank address

    @classmethod
    def create(cls, net: Network, L: LeanLayout, d: _Dims, step: _Step, ab: int) -> _Walker:
        """The walker's signals; ``ab``: weight-memory address bits."""
        a1_shift = Signal(range(max(2, net.layers[0].in_bits)), name="a1_shift",
                          reset_less=True)
        a1_addr = Signal(range(max(2, L.acc_depth)), name="a1_addr", reset_less=True)
        return cls(
            it_valid=Signal(name="it_valid"), it_mask=Signal(d.mb, name="it_mask"),
            it_base=Signal(max(index_bits(net.layers[0].n), d.gl), name="it_base"),
            it_conv=Signal(name="it_conv"), it_in=Signal(name="it_in"),
            it_l=Signal(range(max(2, d.nl)), name="it_l"),
            it_last=Signal(name="it_last"), in_done=Signal(name="in_done"),
            has=Signal(name="it_has"), need=Signal(name="need"), xfer=Signal(name="xfer"),
            d_valid=Signal(name="d_valid"), d_row=Signal(ab, name="d_row", reset_less=True),
            d_tgt=Signal.like(a1_addr, name="d_tgt", reset_less=True),
            d_left=Signal(range(d.cmax), name="d_left"),
            d_shift=Signal.like(a1_shift, name="d_shift", reset_less=True),
            d_l=Signal(range(max(2, d.nl)), name="d_l"),
            d_free=Signal(name="d_free"), hazard=Signal(name="hazard"),
            a_issue=Signal(name="a_issue"), a1_valid=Signal(name="a1_valid"),
            a1_shift=a1_shift, a1_addr=a1_addr, a_next=Signal(name="a_next"),
            acc_base=step.acc_base(L, False))


@dataclass
class _Row:
    """W0's descriptor of the row of its item's lowest set bit, for W1."""
    k_low: Signal           # the bit (an input record's bit position, else a lane)
    rest: Signal            # the item's other bits
    cnt: Signal             # words of the row
    row: Value              # its first word
    target: Value           # its first target sum, from the layer's first bank address


@dataclass
class _Lists:
    """The spike list (layer l's spikes, for phase A of layer l + 1) and the conv lists (a
    conv layer's delayed spikes, for its phase A of the next step): entries and read heads."""
    sp_n: Signal
    sp_r: Signal
    cv_n: dict[int, Signal]
    cv_r: Signal
    sp_nd: Signal           # sp_n a cycle late: the entries the spike list's read can see
    ce_r: Signal            # the early conv layer's list: read head ...
    ce_nd: Signal           # ... and its cv_n a cycle late


@dataclass
class _Heads:
    """The lists' heads for phase A: whether an entry is there, the entry, and the strobes
    that take one."""
    take_sp: Signal
    take_cv: Signal
    sp_avail: Value
    sp_head: Value
    cv_avail: Value
    cv_head: Value
    take_ce: Signal         # the early conv layer's list (read as it is written)
    ce_avail: Value
    ce_head: Value


@dataclass
class _PhaseB:
    """Phase B's group counter and pipeline: ``pv``, ``pg``, ``plast`` are stages 1 to
    ``B_STAGES``' valid, group and last-group registers."""
    g: Signal               # the group issued this cycle (when b_issue)
    b_issue: Signal
    b_bank: Signal          # b_issue at a chunk's first group: the banks' read is phase B's
    b_near: Signal          # b_on at a chunk's first group (a register): W1 stands still, as
                            # b_bank may be high (it is unless the output buffer is full)
    b_pend: Signal          # phase B has layer cl to finish (set when the walker hands it over)
    hold: list[Signal]      # the chunk's sums of banks P .. S - 1, for its later groups
    pv: list[Signal]
    pg: list[Signal]
    plast: list[Signal]
    groups: Value           # groups of the current layer
    acc_addr: Value         # the bank address of group g's sums
    p1_acc: Signal          # stage 1: the bank address to clear
    p1_sub: Signal          # stage 1: which lanes of the chunk's S sums are the group's
    v_base: Value           # the current layer's first membrane address
    f_base: Value | None    # the current layer's offset in the rings (with a conv layer)

    @classmethod
    def create(cls, L: LeanLayout, d: _Dims, step: _Step, a: _Walker, *,
               ring: bool) -> _PhaseB:
        g = Signal(range(max(2, d.gmax)), name="g")
        stages = range(1, B_STAGES + 1)
        return cls(
            g=g, b_issue=Signal(name="b_issue"), b_bank=Signal(name="b_bank"),
            b_near=Signal(name="b_near"),
            b_pend=Signal(name="b_pend"),
            hold=[Signal(signed(L.acc_bits), name=f"hold{k}", reset_less=True)
                  for k in range(d.P, d.S)],
            pv=[Signal(name=f"p{s}_valid") for s in stages],
            pg=[Signal(range(max(2, d.gmax)), name=f"p{s}_g") for s in stages],
            plast=[Signal(name=f"p{s}_last") for s in stages],
            groups=step.per_layer(lambda l: L.groups[l], unsigned(d.gl + 1)),
            acc_addr=(step.acc_base(L, True) + (g >> d.sub_bits))[:len(a.a1_addr)],
            p1_acc=Signal.like(a.a1_addr, name="p1_acc", reset_less=True),
            p1_sub=Signal(max(1, d.sub_bits), name="p1_sub"),
            v_base=step.per_layer(lambda l: L.v_base[l],
                                  unsigned(max(1, log2_exact(max(2, L.v_depth)) + 1))),
            f_base=step.per_layer(lambda l: L.f_base.get(l, 0),
                                  unsigned(log2_exact(L.f_groups) + 1)) if ring else None)


@dataclass
class _Result:
    """Phase B's last stage: a group's membranes and spikes, with its delays and ring bits."""
    v: list[Signal]         # per lane: the membrane after the update
    spike: Signal           # a bit per lane
    delay: list[Signal]     # per lane: the neuron's delay d_j
    ring: Signal            # a bit per lane: the ring's slot t + 1 (the spike of t + 1 - d_j)
