"""Stack core: a layer-pipelined, row-parallel LIF engine for layered audio networks.

:class:`~rtl.core.NetworkCore` builds any IR network, but it runs its layers one after the
other and serialises every (event, group of P neurons) pair: a step of the ConvDelRec audio
network costs ``sum_l E_l * ceil(n_l / P)`` cycles. This core is built for the networks that
DelRec and ConvDelRec train (``docs/audio.md``): a chain of LIF layers, each fed by one dense,
delay-0 projection from the layer below, optionally with a ``conv`` recurrence (per-neuron
delays >= 1) on itself. It spends its logic where that shape allows:

* **row-parallel accumulation (stage A)** — a layer keeps one accumulator per neuron. Each
  arriving event (a spike of the layer below, or an input channel's count) reads the
  presynaptic neuron's whole weight row (``n`` weights) in one cycle and adds it into all
  ``n`` accumulators at once: an event costs one cycle (a multi-bit count one cycle per set
  bit), however wide the layer.
* **grouped update (stage B)** — at the step's end the sums move into a shadow copy (one
  cycle) and ``lanes`` LIF units update the layer ``lanes`` neurons per cycle (bias, the conv
  recurrence as tables of constant sums over a window of delayed spikes, leak, saturation,
  threshold, reset) while stage A already accumulates the next step.
* **layers as a pipeline** — stage B of layer l hands its non-zero spike words to stage A of
  layer l + 1 through a FIFO, so layer l + 1 works on step t while layer l works on step
  t + 1. A step costs about the slowest stage's time (``E_l / R_l`` rows, or
  ``max(ceil(n_l / lanes), gap)`` updates), not the sum over the layers.

Ports and records are those of :class:`~rtl.core.NetworkCore` (``rtl/interface.py``), so the
testbenches, the co-simulation and the host link drive both the same way. ``observe`` picks
the layers whose records appear on ``o`` (all LIF layers by default, as the co-simulation
needs); ``gate`` adds a ``mask`` input that switches observed layers off at run time, so that
a board asked only for the prediction is not bound by its output port. ``docs/hardware.md``
explains the timing.
"""

from __future__ import annotations

from math import ceil

import numpy as np
from amaranth.hdl import Array, C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from model.ir import Network, signed_bits
from .checked import CheckedComponent
from .errors import UnsupportedNetwork
from .interface import step_in_layout, step_out_layout
from .lif import LIFUnit, leak, saturate
from .logic import lowest_set, spike_sum, tree_sum
from .stack_plan import (CONV_CHUNK, STAGES, array_name, observed_layers, row_bits,
                         rows_per_cycle, stack_plan, stage_timing)
from .words import pack_rows

__all__ = ["StackCore"]


class StackCore(CheckedComponent):
    """The stack core for ``net`` (see the module docstring); ``lanes`` neurons are updated
    per cycle in stage B, ``observe`` lists the LIF layers whose records go out on ``o``."""

    #: The host link's soft reset reaches this core through the fabric, not an ECP5 global
    #: buffer: the core is routed with router2 (its ``nextpnr_opts``), which failed to route
    #: a fabric net into the buffer's input in a full-size build.
    global_reset = False

    @classmethod
    def check_args(cls, net: Network, *, lanes: int = 16, observe=None, rows=None,
                   gate: bool = False) -> None:
        if not isinstance(lanes, int) or not 1 <= lanes <= 256:
            raise UnsupportedNetwork(f"lanes must be an integer in [1, 256], got {lanes!r}")
        stack_plan(net)
        obs = observed_layers(net, observe)
        rows_per_cycle(net, rows)
        if gate and obs[-1] != len(net.layers) - 1:
            raise UnsupportedNetwork("gate needs the last layer observed")

    def __init__(self, net: Network, *, lanes: int = 16, observe=None, rows=None,
                 gate: bool = False):
        self._setup(net, lanes, observe, rows)
        self.gate = bool(gate)
        ports = {
            "i": In(stream.Signature(step_in_layout(net))),
            "o": Out(stream.Signature(step_out_layout(net, lanes))),
            "busy": Out(1),
        }
        if gate:
            # Bit q enables the records of observed layer q (the last one always goes out);
            # change it only while the core is idle.
            ports["mask"] = In(len(self.observe), init=(1 << len(self.observe)) - 1)
        super().__init__(ports)

    def _setup(self, net, lanes, observe, rows) -> None:
        self.plans = stack_plan(net)
        self.net = net
        self.lanes = lanes
        self.observe = observed_layers(net, observe)
        self.rows = rows_per_cycle(net, rows)
        #: What :func:`rtl.export.generate` reads of a core: every weight array is an
        #: initialised block memory, none is streamed in through ``wl``.
        self.kinds = {array_name(net, pl): "block" for pl in self.plans}
        self.load_width = 0

    def _enabled(self, l: int):
        """1 when observed layer ``l``'s records go out (always without ``gate``)."""
        if not self.gate or l == self.observe[-1]:
            return C(1, 1)
        return self.mask[self.observe.index(l)]

    def load_image(self) -> list[int]:
        """Nothing to stream on ``wl``: every weight array is initialised in the bitstream."""
        return []

    @property
    def memory_bits(self) -> dict[str, int]:
        """Bits of each weight array (one row of ``n`` weights per presynaptic neuron)."""
        return {array_name(self.net, pl): row_bits(self.net, pl) * self.net.layers[pl.layer - 1].n
                for pl in self.plans}

    # ----------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        net, P = self.net, self.lanes
        vb_out = max(l.v_bits for l in net.layers[1:])
        busy_terms = []
        out_fifos = {}

        # The event source of layer 1 is the input stream itself.
        ev = {"valid": self.i.valid, "rows": [self.i.payload.index],
              "value": self.i.payload.value, "mask": self.i.payload.valid,
              "end": self.i.payload.last}

        for plan in self.plans:
            l = plan.layer
            layer = net.layers[l]
            n, G = layer.n, ceil(layer.n / P)
            n_pre = net.layers[l - 1].n
            wb = plan.ff.w_bits
            aw = plan.acc_bits
            last_layer = l == len(net.layers) - 1
            pfx = f"l{l}_"

            # ---------------- stage A: row-parallel accumulation -------------------------
            # One row of n weights per presynaptic neuron.
            rows = pack_rows(plan.ff.weight.T, wb)
            wmem = memory.Memory(shape=unsigned(n * wb), depth=n_pre, init=rows)
            m.submodules[pfx + "w"] = wmem
            R = len(ev["rows"])                      # rows this layer takes per cycle
            rds = [wmem.read_port(domain="sync") for _ in range(R)]
            multi = plan.value_bits > 1              # only with R = 1 (the input layer)

            s_valid = Signal(name=pfx + "s_valid")
            s_rem = Signal(max(1, plan.value_bits), name=pfx + "s_rem")
            s_mask = Signal(R, name=pfx + "s_mask")  # which of the R rows carry an event
            s_end = Signal(name=pfx + "s_end")
            full = Signal(name=pfx + "full")       # the shadow holds a step stage B has not read
            acc = [Signal(signed(aw), name=f"{pfx}acc{i}") for i in range(n)]
            shadow = [Signal(signed(aw), name=f"{pfx}sh{i}") for i in range(n)]

            bit = lowest_set(m, s_rem, pfx + "bit")
            rem_next = Signal.like(s_rem, name=pfx + "rem_next")
            m.d.comb += rem_next.eq(s_rem & (s_rem - 1))
            adding = Signal(R, name=pfx + "adding")
            live_rem = (s_rem != 0) if multi else C(1, 1)
            m.d.comb += adding.eq(Mux(s_valid & live_rem, s_mask, 0))
            data_done = Signal(name=pfx + "data_done")
            m.d.comb += data_done.eq((~s_mask.any() | (rem_next == 0)) if multi else C(1, 1))
            # One row of spikes per cycle: the end never commits in a cycle that adds (a row
            # arriving with the step's end is added one cycle before), so that the adders
            # need no gate (the accumulators' clock enable does it).
            lean = R == 1 and not multi
            commit = Signal(name=pfx + "commit")   # the step's end moves the sums to the shadow
            done = Signal(name=pfx + "done")
            if lean:
                m.d.comb += [commit.eq(s_valid & s_end & ~adding.any() & ~full),
                             done.eq(s_valid & Mux(s_end, ~adding.any() & ~full, 1))]
            else:
                m.d.comb += [commit.eq(s_valid & s_end & data_done & ~full),
                             done.eq(s_valid & data_done & (~s_end | ~full))]
            accept = Signal(name=pfx + "accept")
            m.d.comb += accept.eq(~s_valid | done)

            if l == 1:
                m.d.comb += self.i.ready.eq(accept)
            else:
                m.d.comb += ev["ready"].eq(accept)
            with m.If(accept):
                m.d.sync += [s_valid.eq(ev["valid"]), s_mask.eq(ev["mask"]),
                             s_end.eq(ev["end"])]
                if multi:
                    m.d.sync += s_rem.eq(ev["value"])
            with m.Elif(adding.any()):
                # Still here: the end waits for the shadow; add each row exactly once.
                m.d.sync += s_rem.eq(rem_next) if multi else s_mask.eq(0)
            for k, rd in enumerate(rds):
                m.d.comb += [rd.addr.eq(ev["rows"][k]), rd.en.eq(accept & ev["valid"])]

            any_add = adding.any()
            for i in range(n):
                terms = []
                for k, rd in enumerate(rds):
                    wi = rd.data[i * wb:(i + 1) * wb].as_signed()
                    terms.append(wi if lean else Mux(adding[k], wi << bit if multi else wi, 0))
                nxt = (acc[i] + tree_sum(terms))[:aw].as_signed()
                with m.If(commit):
                    m.d.sync += [shadow[i].eq(acc[i] if lean else nxt), acc[i].eq(0)]
                with m.Elif(any_add):
                    m.d.sync += acc[i].eq(nxt)
            busy_terms += [s_valid, full]

            # ---------------- stage B: grouped LIF update ---------------------------------
            bias = np.zeros(n, np.int64) if layer.bias is None else np.asarray(layer.bias)
            bb = signed_bits(int(min(bias.min(), 0)), int(max(bias.max(), 0)))
            K = 0
            cw = 0
            if plan.rec is not None:
                kern = plan.rec.weight.astype(np.int64)
                K = len(kern)
                pad = (K - 1) // 2
                cw = signed_bits(int(np.minimum(kern, 0).sum()), int(np.maximum(kern, 0).sum()))
            iw = max(aw, bb, cw) + 2

            gl = max(1, (max(2, G) - 1).bit_length())
            b_run = Signal(name=pfx + "b_run")       # issuing groups 1..G-1 of a step
            g = Signal(range(max(2, G)), name=pfx + "g")
            start = Signal(name=pfx + "start")       # issuing group 0 of a step
            issue = Signal(name=pfx + "issue")
            # Cycles since the step's first issue (saturating): the next step's group q may
            # only read membranes and spikes once this step has written what it needs.
            delay, gap = stage_timing(pad if plan.rec is not None else 0, P)
            since = Signal(range(gap + 1), init=gap, name=pfx + "since")
            pv = [Signal(name=f"{pfx}p{k}_valid") for k in range(1, STAGES)]
            pg = [Signal(range(max(2, G)), name=f"{pfx}p{k}_g") for k in range(1, STAGES)]

            has_out = l in self.observe
            has_next = not last_layer
            # A step starts only when both FIFOs can take all of its entries (one per group,
            # besides those still in the pipeline), so that its groups issue back to back.
            depth = 2 * G + STAGES + 2
            room = C(1, 1)
            if has_out:
                ofifo = SyncFIFOBuffered(width=gl + P * (vb_out + 1) + 1, depth=depth)
                m.submodules[pfx + "ofifo"] = ofifo
                out_fifos[l] = ofifo
                room = room & (ofifo.w_level <= depth - G - STAGES)
                busy_terms.append(ofifo.r_rdy)
            if has_next:
                wfifo = SyncFIFOBuffered(width=gl + P + 1, depth=depth)
                m.submodules[pfx + "wfifo"] = wfifo
                room = room & (wfifo.w_level <= depth - G - STAGES)
                busy_terms.append(wfifo.r_rdy)

            m.d.comb += [start.eq(~b_run & full & (since == gap) & room),
                         issue.eq(b_run | start)]
            with m.If(start):
                m.d.sync += since.eq(1)
            with m.Elif(since != gap):
                m.d.sync += since.eq(since + 1)
            with m.If(issue):
                with m.If(g == G - 1):
                    m.d.sync += [g.eq(0), b_run.eq(0), full.eq(0)]
                with m.Else():
                    m.d.sync += [g.eq(g + 1), b_run.eq(1)]
            with m.If(commit):
                m.d.sync += full.eq(1)
            busy_terms += [b_run]

            # Membranes in flip-flops (reset with rst), read and written a group at a time.
            vmem = [Signal(signed(layer.v_bits), name=f"{pfx}v{i}") for i in range(n)]

            def group(vals, gg, width, fill=0):
                words = []
                for q in range(G):
                    lanes_ = [vals[q * P + k] if q * P + k < n else C(fill, width)
                              for k in range(P)]
                    words.append(Cat(*[x.as_unsigned() for x in lanes_]))
                return Array(words)[gg]

            # P0 -> registers of stage 1: the group's sums + bias, membranes, conv window.
            s1_i = [Signal(signed(iw), name=f"{pfx}s1_i{k}") for k in range(P)]
            s1_v = [Signal(signed(layer.v_bits), name=f"{pfx}s1_v{k}") for k in range(P)]
            sh_word = group(shadow, g, aw)
            v_word = group(vmem, g, layer.v_bits)
            for k in range(P):
                b_lane = Array([C(int(bias[q * P + k]) if q * P + k < n else 0, signed(bb))
                                for q in range(G)])[g]
                m.d.sync += [s1_i[k].eq(sh_word[k * aw:(k + 1) * aw].as_signed() + b_lane),
                             s1_v[k].eq(v_word[k * layer.v_bits:(k + 1) * layer.v_bits]
                                        .as_signed())]
            m.d.sync += [pv[0].eq(issue), pg[0].eq(g)]
            for k in range(1, STAGES - 1):
                m.d.sync += [pv[k].eq(pv[k - 1]), pg[k].eq(pg[k - 1])]

            cur = None
            if plan.rec is not None:
                # Each neuron's latest spike cur_j = s_j(t) and its history before that,
                # H_j[k] = s_j(t - 1 - k), both written when its group is written back; step
                # t + 1 hears z_j = s_j(t + 1 - d_j), a fixed bit (the delays are constants).
                cur = Signal(n, name=pfx + "cur")
                hist = [Signal(max(1, int(d) - 1), name=f"{pfx}h{j}")
                        for j, d in enumerate(plan.delays)]
                z = [cur[j] if int(d) == 1 else hist[j][int(d) - 2]
                     for j, d in enumerate(plan.delays)]
                zp = [C(0, 1)] * pad + z + [C(0, 1)] * (pad + G * P - n)
                win = Array([Cat(*zp[q * P:q * P + P + K - 1]) for q in range(G)])[g]
                s1_win = Signal(P + K - 1, name=pfx + "s1_win")
                m.d.sync += s1_win.eq(win)

            # Stage 2: the leak, and the conv taps in chunks (partial sums).
            s2_i = [Signal(signed(iw), name=f"{pfx}s2_i{k}") for k in range(P)]
            s2_u = [Signal(signed(layer.v_bits + 1), name=f"{pfx}s2_u{k}") for k in range(P)]
            taps = [q for q in range(K) if plan.rec is not None and int(kern[q])]
            chunks = [taps[c:c + CONV_CHUNK] for c in range(0, len(taps), CONV_CHUNK)]
            s2_p = [[Signal(signed(max(cw, 1) + 1), name=f"{pfx}s2_p{k}_{c}")
                     for c in range(len(chunks))] for k in range(P)]
            for k in range(P):
                m.d.sync += [s2_i[k].eq(s1_i[k]),
                             s2_u[k].eq(leak(s1_v[k], layer.beta, layer.beta_shift))]
                for c, chunk in enumerate(chunks):
                    m.d.sync += s2_p[k][c].eq(spike_sum([s1_win[k + q] for q in chunk],
                                                        [int(kern[q]) for q in chunk]))
            # Stage 3: J = I + conv.
            s3_u = [Signal(signed(layer.v_bits + 1), name=f"{pfx}s3_u{k}") for k in range(P)]
            s3_j = [Signal(signed(iw + 1), name=f"{pfx}s3_j{k}") for k in range(P)]
            for k in range(P):
                m.d.sync += [s3_u[k].eq(s2_u[k]),
                             s3_j[k].eq(tree_sum([s2_i[k], *s2_p[k]]))]
            # Stage 4: v_hat = sat(u + J).
            s4_h = [Signal(signed(layer.v_bits), name=f"{pfx}s4_h{k}") for k in range(P)]
            for k in range(P):
                m.d.sync += s4_h[k].eq(saturate(s3_u[k] + s3_j[k], layer.v_bits))
            # Stage 5: threshold and reset (registered).
            # Lanes past the layer's end (in the last group) carry zeros, as the contract says.
            s4_v = [Signal(signed(layer.v_bits), name=f"{pfx}s5_v{k}") for k in range(P)]
            s4_s = Signal(P, name=pfx + "s5_s")
            tail = n - (G - 1) * P
            live = Signal(P, name=pfx + "live")
            m.d.comb += live.eq(Mux(pg[-2] == G - 1, C((1 << tail) - 1, P), C((1 << P) - 1, P)))
            for k in range(P):
                unit = LIFUnit(layer, i_width=2, part="after_saturate")
                m.submodules[f"{pfx}lif{k}"] = unit
                m.d.comb += unit.v.eq(s4_h[k])
                m.d.sync += [s4_v[k].eq(Mux(live[k], unit.v_new, 0)),
                             s4_s[k].eq(unit.spike & live[k])]
            # Write-back: pv[-1] marks the group whose results are in stage-4 registers.
            wv, wg = pv[-1], pg[-1]
            with m.If(wv):
                for q in range(G):
                    with m.If(wg == q):
                        for k in range(P):
                            if q * P + k < n:
                                m.d.sync += vmem[q * P + k].eq(s4_v[k])
            if cur is not None:
                # The spikes reach cur and H `delay` cycles later (see stage_timing).
                sv, sg, ss = wv, wg, s4_s
                for k in range(delay):
                    nv, ng, ns = (Signal(name=f"{pfx}sd{k}_valid"), Signal.like(wg, name=f"{pfx}sd{k}_g"),
                                  Signal(P, name=f"{pfx}sd{k}_s"))
                    m.d.sync += [nv.eq(sv), ng.eq(sg), ns.eq(ss)]
                    sv, sg, ss = nv, ng, ns
                    busy_terms.append(nv)
                with m.If(sv):
                    for q in range(G):
                        with m.If(sg == q):
                            for k in range(min(P, n - q * P)):
                                j = q * P + k
                                m.d.sync += cur[j].eq(ss[k])
                                d = int(plan.delays[j])
                                if d > 2:
                                    m.d.sync += hist[j].eq(Cat(cur[j], hist[j][:-1]))
                                elif d == 2:
                                    m.d.sync += hist[j].eq(cur[j])
            if has_out:
                ov = [Signal(signed(vb_out), name=f"{pfx}ov{k}") for k in range(P)]
                for k in range(P):
                    m.d.comb += ov[k].eq(s4_v[k])
                spikes = s4_s if layer.spiking else C(0, P)
                m.d.comb += [ofifo.w_data.eq(Cat(wg.as_unsigned()[:gl], spikes, *ov,
                                                 wg == G - 1)),
                             ofifo.w_en.eq(wv & self._enabled(l))]
            if has_next:
                # Non-zero spike words, and the step's last group always (it ends the step).
                m.d.comb += [wfifo.w_data.eq(Cat(wg.as_unsigned()[:gl], s4_s, wg == G - 1)),
                             wfifo.w_en.eq(wv & (s4_s.any() | (wg == G - 1)))]
            busy_terms += pv

            # ---------------- hand the spike words to the next layer ----------------------
            if has_next:
                e_valid = Signal(name=pfx + "e_valid")
                e_word = Signal(P, name=pfx + "e_word")
                e_g = Signal(gl, name=pfx + "e_g")
                e_end = Signal(name=pfx + "e_end")
                # Up to R rows per cycle, R = the next layer's rows: the word is cut into R
                # sub-words and each gives its lowest set bit (no chain between them).
                R_next = self.rows[l + 1]
                wk = -(-P // R_next)
                lows, oks, rests = [], [], []
                for k in range(min(R_next, -(-P // wk))):
                    sub = e_word[k * wk:min(P, (k + 1) * wk)]
                    lows.append(k * wk + lowest_set(m, sub, f"{pfx}low{k}"))
                    oks.append(sub.any())
                    rest = Signal(len(sub), name=f"{pfx}rest{k}")
                    m.d.comb += rest.eq(sub & (sub - 1))
                    rests.append(rest)
                more = Signal(name=pfx + "more")             # bits left after this cycle
                m.d.comb += more.eq(Cat(*rests).any())
                nxt_ready = Signal(name=pfx + "nxt_ready")   # driven by the next layer's A
                take = Signal(name=pfx + "take")
                m.d.comb += take.eq(~e_valid | (nxt_ready & ~more))
                m.d.comb += wfifo.r_en.eq(take)
                with m.If(take):
                    m.d.sync += [e_valid.eq(wfifo.r_rdy),
                                 e_g.eq(wfifo.r_data[:gl]),
                                 e_word.eq(wfifo.r_data[gl:gl + P]),
                                 e_end.eq(wfifo.r_data[gl + P])]
                with m.Elif(nxt_ready):
                    m.d.sync += e_word.eq(Cat(*rests))
                busy_terms.append(e_valid)
                ev = {"valid": e_valid, "rows": [e_g * P + low for low in lows],
                      "value": C(1, 1), "mask": Cat(*oks), "end": e_end & ~more,
                      "ready": nxt_ready}

        # ---------------- output: the observed layers' records, step by step, in order -----
        obs = list(self.observe)
        cur_o = Signal(range(max(2, len(obs))), name="o_layer")
        # The arbiter serves the first enabled layer at or after cur_o; it rests at layer 0
        # between steps, so a mask changed while the core is idle takes effect cleanly.
        before = C(0, 1)                     # an enabled layer at or after cur_o came earlier
        for q, l in enumerate(obs):
            f = out_fifos[l]
            G = ceil(net.layers[l].n / P)
            gl = max(1, (max(2, G) - 1).bit_length())
            here = Signal(name=f"o_sel{q}")
            m.d.comb += here.eq((cur_o <= q) & self._enabled(l) & ~before)
            before = before | here
            with m.If(here):
                payload = self.o.payload
                m.d.comb += [self.o.valid.eq(f.r_rdy), f.r_en.eq(self.o.ready),
                             payload.layer.eq(l),
                             payload.index.eq(f.r_data[:gl] * P),
                             payload.spike.eq(f.r_data[gl:gl + P]),
                             payload.last.eq(f.r_data[gl + P + P * vb_out] & C(int(q == len(obs) - 1), 1))]
                for k in range(P):
                    m.d.comb += payload.v[k].eq(
                        f.r_data[gl + P + k * vb_out:gl + P + (k + 1) * vb_out].as_signed())
                with m.If(f.r_rdy & self.o.ready & f.r_data[gl + P + P * vb_out]):
                    m.d.sync += cur_o.eq(0 if q == len(obs) - 1 else q + 1)
        m.d.comb += self.busy.eq(Cat(*busy_terms).any())
        return m


# --------------------------------------------------------------------------------------------
# Resources, before synthesis.


