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
  leave their banks (which are cleared), bias and delays come from a parameter word in SPRAM
  (which phase A does not use meanwhile), membranes from a block RAM; leak on a multiplier,
  saturation, threshold, reset, in a six-register pipeline shared by all layers.
* **delays as a ring of time slots** — a neuron j spiking at step t writes its spike into slot
  ``(t + d_j) mod R`` of a one-bit-per-neuron ring (``R`` = the largest delay rounded up to a
  power of two); the update of step t reads slot t + 1 and hands the set bits to the next
  step's phase A as conv events. Every neuron writes every step (0 or 1), so nothing needs
  clearing; ``d_j = 1`` bypasses the ring.

The layers take turns: A1, B1, A2, B2, ... per step. Ports and records are those of
:class:`~rtl.core.NetworkCore` (``rtl/interface.py``) plus ``wl`` (64-bit words of
:meth:`LeanCore.load_image`); ``observe`` and ``gate`` work as for the stack core.
``docs/hardware.md`` ("The lean core") has the timing and the resources.
"""

from __future__ import annotations


from amaranth.hdl import Array, C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream
from amaranth.lib.wiring import In, Out

from model.ir import Network, index_bits, signed_bits
from .checked import CheckedComponent
from .errors import UnsupportedNetwork
from .interface import step_in_layout, step_out_layout
from .lean_layout import WORD_BITS, lean_image, lean_layout, log2_exact
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
        m = Module()
        net, L, P = self.net, self.layout, self.lanes
        S, sw = L.slots, L.slot_bits
        nl = len(net.layers)
        lif = list(range(1, nl))
        last_l = lif[-1]
        layers = net.layers

        def per_layer(f, shape):
            """A per-layer constant, selected by the current layer ``cl``."""
            return Array([C(f(l) if l in lif else 0, shape) for l in range(nl)])[cl]

        cl = Signal(range(max(2, nl)), init=1, name="cl")
        # ---- memories ----------------------------------------------------------------------
        primitive = platform is not None if self.spram_cells is None else self.spram_cells
        m.submodules.wmem = wmem = SpramArray(depth=L.words, width=WORD_BITS,
                                              primitive=primitive)
        ab = len(wmem.addr)
        aw = L.acc_bits
        acc_wr, acc_rd = [], []
        for k in range(S):
            mem = memory.Memory(shape=signed(aw), depth=max(2, L.acc_depth), init=[])
            m.submodules[f"acc{k}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            acc_wr.append(wp)
            acc_rd.append(rp)
        vb = max(layers[l].v_bits for l in lif)
        vmem = memory.Memory(shape=unsigned(P * vb), depth=max(2, L.v_depth), init=[])
        m.submodules.vmem = vmem
        v_wr = vmem.write_port()
        v_rd = vmem.read_port()
        gmax = max(L.groups.values())
        gl = index_bits(gmax)
        ring = None
        if L.conv:
            ring_bits = log2_exact(L.ring)
            fg_bits = log2_exact(L.f_groups)
            ring = []
            for k in range(P):
                mem = memory.Memory(shape=1, depth=L.ring * L.f_groups, init=[])
                m.submodules[f"ring{k}"] = mem
                ring.append((mem.write_port(), mem.read_port()))
        # The spikes of layer l (non-zero words of one group) for phase A of layer l + 1.
        feeds = [l for l in lif if l != last_l and layers[l].spiking]
        spk = None
        if feeds:
            spk = memory.Memory(shape=unsigned(gl + P), depth=max(2, gmax), init=[])
            m.submodules.spk = spk
            spk_wr, spk_rd = spk.write_port(), spk.read_port()
        cvl = {}
        for l in L.conv:
            mem = memory.Memory(shape=unsigned(gl + P), depth=max(2, L.groups[l]), init=[])
            m.submodules[f"cvl{l}"] = mem
            cvl[l] = (mem.write_port(), mem.read_port())

        # ---- state -------------------------------------------------------------------------
        loaded = Signal(name="loaded", reset_less=True)  # SPRAM keeps its words over resets
        ld_addr = Signal(range(max(2, L.words)), name="ld_addr")
        clr = Signal(range(max(L.acc_depth, L.v_depth) + 1), name="clr")
        slot = Signal(max(1, log2_exact(L.ring)), name="slot")     # t mod R
        tsat = Signal(range(L.ring + 1), name="tsat")         # min(t, R)
        sp_n = Signal(range(gmax + 1), name="sp_n")           # entries in the spike list
        sp_r = Signal(range(gmax + 1), name="sp_r")
        cv_n = {l: Signal(range(L.groups[l] + 1), name=f"cv_n{l}") for l in L.conv}
        cv_r = Signal(range(gmax + 1), name="cv_r")

        # Walker of phase A, stage W0: the current item (an input record, or a list entry of
        # the layer below's spikes or of this layer's delayed spikes); its set bits are events.
        mb = max(layers[0].in_bits, P)
        it_valid = Signal(name="it_valid")
        it_mask = Signal(mb, name="it_mask")
        it_base = Signal(max(index_bits(layers[0].n), gl), name="it_base")
        it_conv = Signal(name="it_conv")
        it_in = Signal(name="it_in")           # the item is an input record (else a list entry)
        it_last = Signal(name="it_last")
        in_done = Signal(name="in_done")       # the step's last input record is done
        a1_valid = Signal(name="a1_valid")
        a1_shift = Signal(range(max(2, layers[0].in_bits)), name="a1_shift", reset_less=True)
        a1_addr = Signal(range(max(2, L.acc_depth)), name="a1_addr", reset_less=True)

        # Phase B: group counter and pipeline.
        g = Signal(range(max(2, gmax)), name="g")
        pv = [Signal(name=f"p{s}_valid") for s in range(1, B_STAGES + 1)]
        pg = [Signal(range(max(2, gmax)), name=f"p{s}_g") for s in range(1, B_STAGES + 1)]
        plast = [Signal(name=f"p{s}_last") for s in range(1, B_STAGES + 1)]

        # Output FIFO (flip-flops).
        ob = index_bits(nl)
        nb = index_bits(max(layers[l].n for l in lif))
        rec_bits = ob + nb + P + P * vb + 1
        ofifo = [Signal(rec_bits, name=f"of{q}", reset_less=True) for q in range(OUT_DEPTH)]
        of_w = Signal(range(OUT_DEPTH), name="of_w")
        of_r = Signal(range(OUT_DEPTH), name="of_r")
        of_n = Signal(range(OUT_DEPTH + 1), name="of_n")
        push = Signal(name="of_push")
        push_data = Signal(rec_bits, name="of_data")
        pop = Signal(name="of_pop")

        # ---- weight memory port: load, phase A rows, phase B parameters --------------------
        w_addr = Signal(ab, name="w_addr")
        w_en = Signal(name="w_en")
        m.d.comb += [wmem.addr.eq(w_addr), wmem.en.eq(w_en), wmem.wdata.eq(self.wl.payload)]

        # ---- phase A: the walker, in two stages ------------------------------------------------
        # Stage W0 holds an item and turns its lowest set bit into a row descriptor; stage W1
        # holds the descriptor (all registers) and issues its words, one per cycle.
        has = Signal(name="it_has")
        m.d.comb += has.eq(it_valid & it_mask.any())
        k_low = lowest_set(m, it_mask, "it_low")
        rest = Signal(mb, name="it_rest")
        m.d.comb += rest.eq(it_mask & (it_mask - 1))
        is_input = cl == 1
        j = Signal(max(len(it_base), gl + log2_exact(P)) + 1, name="it_j")
        m.d.comb += j.eq(Mux(it_in, it_base, Cat(k_low[:log2_exact(P)], it_base[:gl])
                             if P > 1 else it_base[:gl]))
        cmax = max(max(L.chunks.values()), 2)
        cnt = Signal(range(cmax + 1), name="it_cnt")
        m.d.comb += cnt.eq(Mux(it_conv, per_layer(lambda l: L.cv_chunks.get(l, 1), cnt.shape()),
                               per_layer(lambda l: L.chunks[l], cnt.shape())))
        # Row addresses: base + j * stride (strides are powers of two).
        ff_row = Array([C(0, ab) if l not in lif else
                        (C(L.ff_base[l], ab) + (j << log2_exact(L.ff_stride[l])))[:ab]
                        for l in range(nl)])[cl]
        acc_base = per_layer(lambda l: L.acc_base[l],
                             unsigned(max(1, log2_exact(max(2, L.acc_depth)) + 1)))
        if L.conv:
            cv_row = Array([(C(L.cv_base[l], ab) + (j << log2_exact(L.cv_stride[l])))[:ab]
                            if l in L.conv else C(0, ab) for l in range(nl)])[cl]
            # First chunk of the conv row: floor((j + off) / S), at least 0, at most C - CK.
            offw = signed_bits(min(L.cv_off.values()), 0)
            aoff = Signal(signed(max(len(j), offw) + 2), name="cv_a")
            m.d.comb += aoff.eq(j + per_layer(lambda l: L.cv_off.get(l, 0), signed(offw)))
            c0 = Signal(range(cmax), name="cv_c0")
            first = Mux(aoff < 0, 0, aoff >> log2_exact(S))
            c0max = per_layer(lambda l: L.chunks[l] - L.cv_chunks.get(l, L.chunks[l]),
                              c0.shape())
            m.d.comb += c0.eq(Mux(first > c0max, c0max, first))
            row = Mux(it_conv, cv_row, ff_row)
            target = Mux(it_conv, c0, 0)
        else:
            row = ff_row
            target = C(0, 1)
        d_valid = Signal(name="d_valid")
        d_row = Signal(ab, name="d_row", reset_less=True)             # SPRAM word to read
        d_tgt = Signal.like(a1_addr, name="d_tgt", reset_less=True)   # the sums it adds into
        d_left = Signal(range(cmax), name="d_left")                   # words after this one
        d_shift = Signal.like(a1_shift, name="d_shift", reset_less=True)
        hazard = Signal(name="hazard")     # the banks' read would miss a1's write: wait one
        m.d.comb += hazard.eq(a1_valid & (a1_addr == d_tgt))
        a_issue = Signal(name="a_issue")
        d_free = Signal(name="d_free")     # W1 takes a new descriptor at the clock edge
        m.d.comb += d_free.eq(~d_valid | (a_issue & (d_left == 0)))
        xfer = Signal(name="xfer")         # W0 hands its lowest bit's row to W1
        need = Signal(name="need")         # W0 takes a new item at the clock edge
        m.d.comb += need.eq(~it_valid | ~it_mask.any() | (xfer & ~rest.any()))

        # ---- phase B: addresses of the group issued this cycle ------------------------------
        b_issue = Signal(name="b_issue")
        subs = S // P
        sub_bits = log2_exact(subs)
        acc_addr_b = (acc_base + (g >> sub_bits))[:len(a1_addr)]

        # Drive the accumulator banks: reads from A's walker or B's issue; writes from A's
        # second stage or B's clears (from stage 1).
        p1_acc = Signal.like(a1_addr, name="p1_acc", reset_less=True)
        p1_sub = Signal(max(1, sub_bits), name="p1_sub")
        w_slots = [wmem.data[k * sw:(k + 1) * sw].as_signed() for k in range(S)]
        for k in range(S):
            rp, wp = acc_rd[k], acc_wr[k]
            m.d.comb += rp.addr.eq(Mux(b_issue, acc_addr_b, d_tgt))
            with m.If(a1_valid):
                m.d.comb += [wp.addr.eq(a1_addr), wp.en.eq(1),
                             wp.data.eq(rp.data + (w_slots[k] << a1_shift))]
            with m.Elif(pv[0] & ((p1_sub == k // P) if subs > 1 else C(1, 1))):
                m.d.comb += [wp.addr.eq(p1_acc), wp.en.eq(1), wp.data.eq(0)]
        with m.If(a_issue):
            m.d.comb += [w_addr.eq(d_row), w_en.eq(1)]
            m.d.sync += [d_row.eq(d_row + 1), d_tgt.eq(d_tgt + 1), d_left.eq(d_left - 1)]
            with m.If(d_left == 0):
                m.d.sync += d_valid.eq(0)
        with m.If(xfer):
            m.d.sync += [d_valid.eq(1), d_row.eq(row), d_tgt.eq((acc_base + target)[:len(d_tgt)]),
                         d_left.eq(cnt - 1), d_shift.eq(Mux(it_in, k_low, 0)),
                         it_mask.eq(rest)]
        m.d.sync += [a1_valid.eq(a_issue), a1_addr.eq(d_tgt), a1_shift.eq(d_shift)]

        # ---- the sequencer ---------------------------------------------------------------------
        # Phase B issues a group of an observed layer only when the output buffer has room
        # for it and every group still in the pipeline.
        room = Signal(name="room")
        flight = Signal(range(B_STAGES + 1), name="flight")
        m.d.comb += flight.eq(sum(pv))
        obs_now = Array([self._enabled(l) if l in self.observe else C(0, 1)
                         for l in range(nl)])[cl]
        m.d.comb += room.eq(~obs_now | (of_n + flight < OUT_DEPTH))
        G_cur = per_layer(lambda l: L.groups[l], unsigned(gl + 1))
        pipe_busy = Cat(*pv).any()
        take_sp = Signal(name="take_sp")
        take_cv = Signal(name="take_cv")
        # Spike-list and conv-list heads: the read port shows entry sp_r (cv_r); taking one
        # presents the next address.
        if spk is not None:
            m.d.comb += spk_rd.addr.eq(Mux(take_sp, sp_r + 1, sp_r))
        for l, (wp, rp) in cvl.items():
            m.d.comb += rp.addr.eq(Mux(take_cv & (cl == l), cv_r + 1, cv_r))
        cv_avail = C(0, 1)
        cv_head = C(0, gl + P)
        for l, (wp, rp) in cvl.items():
            cv_avail = cv_avail | ((cl == l) & (cv_r < cv_n[l]))
            cv_head = Mux(cl == l, rp.data, cv_head)
        sp_avail = (sp_r < sp_n) & (cl != 1) if spk is not None else C(0, 1)
        sp_head = spk_rd.data if spk is not None else C(0, gl + P)

        busy = Signal(name="busy_i")
        with m.FSM(init="CLEAR") as fsm:
            # A synchronous reset does not clear block RAM: zero the sums and membranes.
            with m.State("CLEAR"):
                m.d.comb += busy.eq(1)
                for k in range(S):
                    with m.If(clr < L.acc_depth):
                        m.d.comb += [acc_wr[k].addr.eq(clr), acc_wr[k].en.eq(1),
                                     acc_wr[k].data.eq(0)]
                m.d.comb += [v_wr.addr.eq(clr), v_wr.en.eq(clr < L.v_depth), v_wr.data.eq(0)]
                m.d.sync += clr.eq(clr + 1)
                with m.If(clr == max(L.acc_depth, L.v_depth)):
                    m.next = "A"
                    with m.If(~loaded):
                        m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [busy.eq(1), self.wl.ready.eq(1), w_addr.eq(ld_addr),
                             wmem.we.eq(self.wl.valid)]
                with m.If(self.wl.valid):
                    m.d.sync += ld_addr.eq(ld_addr + 1)
                    with m.If(ld_addr == L.words - 1):
                        m.d.sync += loaded.eq(1)
                        m.next = "A"
            with m.State("A"):
                m.d.comb += [a_issue.eq(d_valid & ~hazard), xfer.eq(has & d_free)]
                ended = in_done | (it_valid & it_last)    # no more input records this step
                with m.If(need & it_valid & it_last):
                    m.d.sync += in_done.eq(1)
                with m.If(need):
                    m.d.sync += it_valid.eq(0)
                    with m.If(is_input & ~ended):
                        m.d.comb += self.i.ready.eq(1)
                        with m.If(self.i.valid):
                            p = self.i.payload
                            m.d.sync += [it_valid.eq(1), it_base.eq(p.index),
                                         it_mask.eq(Mux(p.valid, p.value, 0)),
                                         it_conv.eq(0), it_last.eq(p.last), it_in.eq(1)]
                    with m.Elif(sp_avail):
                        m.d.comb += take_sp.eq(1)
                        m.d.sync += [it_valid.eq(1), it_base.eq(sp_head[:gl]),
                                     it_mask.eq(sp_head[gl:]), it_conv.eq(0), it_in.eq(0),
                                     it_last.eq(0), sp_r.eq(sp_r + 1)]
                    with m.Elif(cv_avail):
                        m.d.comb += take_cv.eq(1)
                        m.d.sync += [it_valid.eq(1), it_base.eq(cv_head[:gl]),
                                     it_mask.eq(cv_head[gl:]), it_conv.eq(1), it_in.eq(0),
                                     it_last.eq(0), cv_r.eq(cv_r + 1)]
                    with m.Elif(~d_valid & ~xfer):
                        m.next = "ADRAIN"
                m.d.comb += busy.eq(~is_input | it_valid | d_valid | a1_valid)
            with m.State("ADRAIN"):
                # The last row word is added this cycle (a1); then update the layer.
                m.d.comb += busy.eq(1)
                with m.If(~a1_valid):
                    m.d.sync += [g.eq(0), in_done.eq(0)]
                    with m.If(cl != last_l):
                        m.d.sync += sp_n.eq(0)
                    for l in L.conv:
                        with m.If(cl == l):
                            m.d.sync += cv_n[l].eq(0)
                    m.next = "B"
            with m.State("B"):
                m.d.comb += busy.eq(1)
                m.d.comb += b_issue.eq(room)
                with m.If(room):
                    with m.If(g == G_cur - 1):
                        m.next = "BDRAIN"
                    with m.Else():
                        m.d.sync += g.eq(g + 1)
            with m.State("BDRAIN"):
                m.d.comb += busy.eq(1)
                with m.If(~pipe_busy):
                    m.d.sync += [sp_r.eq(0), cv_r.eq(0)]
                    with m.If(cl == last_l):
                        m.d.sync += [cl.eq(1), slot.eq(slot + 1),
                                     tsat.eq(Mux(tsat == L.ring, tsat, tsat + 1))]
                        m.next = "A"
                    with m.Else():
                        m.d.sync += cl.eq(cl + 1)
                        m.next = "APRIME"
            with m.State("APRIME"):
                # The list read ports show entry 0 from the next cycle on.
                m.d.comb += busy.eq(1)
                m.next = "A"
        if spk is not None:
            m.d.comb += spk_rd.en.eq(1)
        for l, (wp, rp) in cvl.items():
            m.d.comb += rp.en.eq(1)

        # ---- phase B pipeline ---------------------------------------------------------------
        # Stage 0 (issue): read the sums, the membranes, the parameter word, the ring slot.
        with m.If(b_issue):
            m.d.comb += [w_addr.eq((per_layer(lambda l: L.pr_base[l], unsigned(ab)) + g)[:ab]),
                         w_en.eq(1)]
        v_base = per_layer(lambda l: L.v_base[l], unsigned(max(1, log2_exact(max(2, L.v_depth)) + 1)))
        m.d.comb += v_rd.addr.eq((v_base + g)[:len(v_rd.addr)])
        if ring is not None:
            f_base = per_layer(lambda l: L.f_base.get(l, 0), unsigned(fg_bits + 1))
            for k, (wp, rp) in enumerate(ring):
                m.d.comb += rp.addr.eq(Cat((f_base + g)[:fg_bits],
                                           (slot + 1)[:ring_bits]) if fg_bits else
                                       (slot + 1)[:ring_bits])
        m.d.sync += [pv[0].eq(b_issue), pg[0].eq(g), plast[0].eq(g == G_cur - 1),
                     p1_acc.eq(acc_addr_b)]
        if subs > 1:
            m.d.sync += p1_sub.eq(g[:sub_bits])
        for s in range(1, B_STAGES):
            m.d.sync += [pv[s].eq(pv[s - 1]), pg[s].eq(pg[s - 1]), plast[s].eq(plast[s - 1])]

        bb, db = L.bias_bits, L.delay_bits
        iw = max(aw, bb) + 1
        par = wmem.data
        # Stage 1: the group's sums + bias; membranes; delays; ring bits.
        s2_j = [Signal(signed(iw), name=f"s2_j{k}", reset_less=True) for k in range(P)]
        s2_v = [Signal(signed(vb), name=f"s2_v{k}", reset_less=True) for k in range(P)]
        dl = [Signal(max(1, db), name=f"s2_d{k}", reset_less=True) for k in range(P)]
        fb = [Signal(name=f"s2_f{k}", reset_less=True) for k in range(P)]
        for k in range(P):
            a_k = Array([acc_rd[q * P + k].data for q in range(subs)])[p1_sub] if subs > 1 \
                else acc_rd[k].data
            m.d.sync += [s2_j[k].eq(a_k + par[k * bb:(k + 1) * bb].as_signed()),
                         s2_v[k].eq(v_rd.data[k * vb:(k + 1) * vb].as_signed())]
            if db:
                m.d.sync += dl[k].eq(par[P * bb + k * db:P * bb + (k + 1) * db])
            if ring is not None:
                m.d.sync += fb[k].eq(ring[k][1].data)
        # Stage 2: the leak's product (a multiplier per lane; beta depends on the layer).
        betas = [layers[l].beta for l in lif]
        beta_w = max(b.bit_length() for b in betas) + 1
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
            x = s4_x[k]
            m.d.sync += [s4_h[k].eq(clamp(x, vmin, vmax)),
                         d4b[k].eq(d4[k]), f4b[k].eq(f4[k])]
        d4, f4 = d4b, f4b
        # Stage 4: threshold and reset; lanes past the layer's end carry zeros.
        s5_v = [Signal(signed(vb), name=f"s5_v{k}", reset_less=True) for k in range(P)]
        s5_s = Signal(P, name="s5_s", reset_less=True)
        d5 = [Signal(max(1, db), name=f"s5_d{k}", reset_less=True) for k in range(P)]
        f5 = Signal(P, name="s5_f", reset_less=True)
        spiking = per_layer(lambda l: int(layers[l].spiking), 1)
        thr = per_layer(lambda l: layers[l].threshold if layers[l].spiking else 0, signed(vb))
        sub_reset = per_layer(lambda l: int(layers[l].spiking and layers[l].reset == "subtract"), 1)
        tail = per_layer(lambda l: (1 << (layers[l].n - (L.groups[l] - 1) * P)) - 1, P)
        live = Signal(P, name="live")
        m.d.comb += live.eq(Mux(plast[4], tail, C((1 << P) - 1, P)))
        for k in range(P):
            fire, v_new = fire_and_reset(s4_h[k], thr, spiking=spiking, subtract=sub_reset,
                                         live=live[k])
            m.d.sync += [s5_s[k].eq(fire), s5_v[k].eq(v_new),
                         d5[k].eq(d4[k]), f5[k].eq(f4[k] & live[k])]
        # Write-back (from the last stage's registers).
        wv, wg, wlast = pv[5], pg[5], plast[5]
        with m.If(wv):
            m.d.comb += [v_wr.addr.eq((v_base + wg)[:len(v_wr.addr)]), v_wr.en.eq(1),
                         v_wr.data.eq(Cat(*[x.as_unsigned() for x in s5_v]))]
        if ring is not None:
            conv_now = Array([C(int(l in L.conv), 1) for l in range(nl)])[cl]
            for k, (wp, rp) in enumerate(ring):
                m.d.comb += [wp.addr.eq(Cat((f_base + wg)[:fg_bits],
                                            (slot + d5[k])[:ring_bits]) if fg_bits else
                                        (slot + d5[k])[:ring_bits]),
                             wp.data.eq(s5_s[k]), wp.en.eq(wv & conv_now)]
            # Delayed spikes heard at step t + 1: s_j(t + 1 - d_j), the ring's bit, valid once
            # t + 1 >= d_j; d_j = 1 is this step's spike.
            ds = Signal(P, name="ds")
            for k in range(P):
                m.d.comb += ds[k].eq(Mux(d5[k] == 1, s5_s[k],
                                         f5[k] & (tsat + 1 >= d5[k])))
            for l, (wp, rp) in cvl.items():
                m.d.comb += [wp.addr.eq(cv_n[l]), wp.data.eq(Cat(wg[:gl], ds)),
                             wp.en.eq(wv & (cl == l) & ds.any())]
                with m.If(wv & (cl == l) & ds.any()):
                    m.d.sync += cv_n[l].eq(cv_n[l] + 1)
        if spk is not None:
            feeds_now = Array([C(int(l in feeds), 1) for l in range(nl)])[cl]
            m.d.comb += [spk_wr.addr.eq(sp_n), spk_wr.data.eq(Cat(wg[:gl], s5_s)),
                         spk_wr.en.eq(wv & feeds_now & s5_s.any())]
            with m.If(wv & feeds_now & s5_s.any()):
                m.d.sync += sp_n.eq(sp_n + 1)

        # ---- output records ------------------------------------------------------------------
        m.d.comb += [push.eq(wv & obs_now),
                     push_data.eq(Cat(cl[:ob], (wg * P)[:nb], s5_s,
                                      *[x.as_unsigned() for x in s5_v],
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
        m.d.comb += self.busy.eq(busy | of_n.any())
        return m


# --------------------------------------------------------------------------------------------
# Resources, before synthesis.


