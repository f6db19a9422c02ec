"""Network core: every IR network as a streaming, time-multiplexed, event-driven LIF engine.

One generator builds the whole network from the IR: any number of LIF layers (spiking or
read-out), feed-forward and recurrent projections of the three kinds, multi-bit inputs,
biases, forced rasters. ``lanes`` neurons are updated per cycle, and weight words hold one
weight per lane so that each lane gets a weight every cycle.

Per step, after the record with ``last = 1`` has been accepted on ``i``, layers 1..L run in
order. For layer l:

1. *gather* — every projection into l has a :class:`~rtl.delay_line.DelayLine`. ``dense``
   and ``taps`` projections turn the events that arrive now into (weight row, value) pairs,
   one cycle per event; ``conv`` projections set the arriving presynaptic values in a register
   vector instead.
2. *accumulate* — for each group of ``lanes`` neurons the weight words of the E pairs are
   summed (one pair per cycle feeds all lanes) and handed to the fire pipeline, and the next
   group starts at once.
3. *fire*, overlapped with 2 — B1 adds bias and conv terms and applies the leak; B2
   (:class:`~rtl.lif.LIFUnit` lanes) saturates, thresholds and resets, offers the group on
   ``o`` and writes it back; the drain pushes emitted neurons (own OR forced), one per cycle,
   into the delay lines of every projection that leaves layer l.

Work follows the spiking (neuron, delay) pairs, never n·n·D; :mod:`rtl.cost` models the
cycles and ``docs/hardware.md`` explains them.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Literal

from amaranth.hdl import Array, C, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from model.ir import InputLayer, LIFLayer, Network, Projection
from .delay_line import DelayLine
from .interface import index_bits, step_in_layout, step_out_layout
from .lif import LIFUnit, saturate

__all__ = ["UnsupportedNetwork", "NetworkCore", "supported", "memory_bits",
           "memory_shapes", "Fault"]

Fault = Literal[None, "delay+1", "threshold>"]


class UnsupportedNetwork(ValueError):
    """The IR is valid but this generator cannot build it with the given knobs."""


def supported(net: Network, *, lanes: int = 1) -> None:
    """Raise :class:`UnsupportedNetwork` unless the core can be built for ``net``."""
    if not isinstance(lanes, int) or not 1 <= lanes <= 256:
        raise UnsupportedNetwork(f"lanes must be an integer in [1, 256], got {lanes!r}")


def _pack(values, width: int) -> int:
    """Pack signed integers into one word, element 0 in the low bits."""
    word = 0
    mask = (1 << width) - 1
    for k, x in enumerate(values):
        word |= (int(x) & mask) << (k * width)
    return word


@dataclass(frozen=True)
class _Proj:
    """A projection as the core builds it."""

    index: int
    p: Projection
    pre: InputLayer | LIFLayer
    post: LIFLayer
    mode: str              # "history" (taps) or "arrival" (dense, conv)
    slots: int
    value_bits: int        # 0 when presynaptic values are spikes (always 1)

    @property
    def taps(self) -> int:
        return self.p.n_taps


def _plan(net: Network) -> list[_Proj]:
    out = []
    for q, p in enumerate(net.projections):
        pre, post = net.layers[p.src], net.layers[p.dst]
        vb = pre.in_bits if isinstance(pre, InputLayer) and pre.in_bits > 1 else 0
        if p.kind == "taps":
            slots, mode = int(p.delay) + p.n_taps, "history"
        else:
            slots, mode = p.max_delay + 1, "arrival"
        out.append(_Proj(q, p, pre, post, mode, slots, vb))
    return out


def memory_shapes(net: Network, *, lanes: int = 1) -> dict[str, tuple[int, int]]:
    """(depth, width) of every memory array of the core for ``net`` with ``lanes``."""
    supported(net, lanes=lanes)
    plan = _plan(net)
    out = {}
    for l, layer in enumerate(net.layers[1:], 1):
        g = ceil(layer.n / lanes)
        out[f"layer{l}.v"] = (g, lanes * layer.v_bits)
        out[f"layer{l}.bias"] = (g, lanes * layer.acc_bits)
        weighted = [pp for pp in plan if pp.p.dst == l and pp.p.kind != "conv"]
        if weighted:
            depth = sum(pp.pre.n * pp.taps for pp in weighted)
            out[f"layer{l}.pairs"] = (depth, _pair_bits(net, l, lanes))
    for pp in plan:
        ib = index_bits(pp.pre.n)
        out[f"proj{pp.index}.delay_line"] = (pp.slots << ib, ib + pp.value_bits)
        if pp.p.kind != "conv":
            g = ceil(pp.post.n / lanes)
            out[f"proj{pp.index}.weights"] = (pp.pre.n * pp.taps * g, lanes * pp.p.w_bits)
    return out


def memory_bits(net: Network, *, lanes: int = 1) -> dict[str, int]:
    """Bits of every memory array of the core for ``net`` with ``lanes`` (name -> bits)."""
    return {k: d * w for k, (d, w) in memory_shapes(net, lanes=lanes).items()}


def _pair_bits(net: Network, l: int, lanes: int) -> int:
    plan = [pp for pp in _plan(net) if pp.p.dst == l and pp.p.kind != "conv"]
    g = ceil(net.layers[l].n / lanes)
    base = max(1, max(pp.pre.n * pp.taps * g for pp in plan).bit_length())
    tag = max(1, (len(plan) - 1).bit_length())
    vb = max(pp.value_bits for pp in plan)
    return tag + base + vb


class NetworkCore(wiring.Component):
    """Streaming, time-multiplexed core for any IR network (see the module docstring).

    Ports: ``i`` (In stream, :func:`~rtl.interface.step_in_layout`), ``o`` (Out stream,
    :func:`~rtl.interface.step_out_layout` with ``lanes``), ``busy`` (high while a step runs).

    ``fault`` plants a deliberate bug, so that tests can show verification catches it:
    ``"delay+1"`` delivers every dense/conv event one step late (taps read one step late),
    ``"threshold>"`` fires on ``v > threshold``.
    """

    def __init__(self, net: Network, *, lanes: int = 1, fault: Fault = None):
        supported(net, lanes=lanes)
        if fault not in (None, "delay+1", "threshold>"):
            raise ValueError(f"fault must be None, 'delay+1' or 'threshold>', got {fault!r}")
        self.net, self.lanes, self.fault = net, lanes, fault
        super().__init__({
            "i": In(stream.Signature(step_in_layout(net))),
            "o": Out(stream.Signature(step_out_layout(net, lanes))),
            "busy": Out(1),
        })

    @property
    def memory_bits(self) -> dict[str, int]:
        return memory_bits(self.net, lanes=self.lanes)

    def elaborate(self, platform):
        m = Module()
        net, L, fault = self.net, self.lanes, self.fault
        layers = net.layers
        plan = _plan(net)
        rec = self.i.payload

        # ---- delay lines, one per projection ------------------------------------------------
        lines = {}
        for pp in plan:
            late = 1 if fault == "delay+1" else 0
            line = DelayLine(n=pp.pre.n, slots=pp.slots + late,
                             mode=pp.mode, value_bits=pp.value_bits,
                             delays=pp.p.delays_of_pre(pp.pre.n),
                             first=int(pp.p.delay) + late if pp.mode == "history" else 0,
                             fault="delay+1" if fault == "delay+1" and pp.mode == "arrival"
                             else None)
            m.submodules[f"line{pp.index}"] = lines[pp.index] = line
        outgoing = {s: [pp for pp in plan if pp.p.src == s] for s in range(len(layers))}

        def push(src: int, index, value, valid) -> list:
            stmts = []
            for pp in outgoing[src]:
                line = lines[pp.index]
                stmts += [line.push_valid.eq(valid), line.push_index.eq(index),
                          line.push_value.eq(value)]
            return stmts

        def pending(src: int):
            sigs = [lines[pp.index].pending for pp in outgoing[src]]
            return Cat(*sigs).any() if sigs else C(0, 1)

        # ---- per-layer state ---------------------------------------------------------------
        forced = {l: Signal(ceil(layers[l].n / L) * L, name=f"forced{l}")
                  for l in range(1, len(layers)) if layers[l].forced}
        conv_vec = {pp.index: Array(Signal(max(1, pp.value_bits), name=f"g{pp.index}_{j}")
                                    for j in range(pp.pre.n))
                    for pp in plan if pp.p.kind == "conv"}

        cap = max([sum(pp.pre.n * pp.taps for pp in plan
                       if pp.p.dst == l and pp.p.kind != "conv") for l in range(1, len(layers))])
        grp = Signal(range(max(ceil(l.n / L) for l in layers[1:]) + 1))  # group to accumulate
        p_next = Signal(range(cap + 1))   # next pair to issue
        n_pairs = Signal(range(cap + 1))  # E: pairs gathered for the current layer
        s1 = Signal()                 # pair read in flight
        s2 = Signal()                 # weight read in flight
        mi = Signal(range(max(l.n for l in layers) + 1))   # next event of the gather job
        pend = Signal()               # an event read is in flight

        ctx = {l: self._datapath(m, l, plan, lines, push, pending, forced, conv_vec, grp,
                                 n_pairs)
               for l in range(1, len(layers))}

        clr = Signal(16)
        with m.FSM(init="CLEAR"):
            # A synchronous reset does not clear block RAM: zero every membrane first.
            with m.State("CLEAR"):
                m.d.comb += self.busy.eq(1)
                for l, c in ctx.items():
                    m.d.comb += [c["v_wr"].addr.eq(clr), c["v_wr"].data.eq(0),
                                 c["v_wr"].en.eq(clr < c["G"])]
                m.d.sync += clr.eq(clr + 1)
                with m.If(clr == max(c["G"] for c in ctx.values()) - 1):
                    m.next = "RECV"

            with m.State("RECV"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid & rec.valid):
                    if layers[0].n:
                        in_range = (rec.layer == 0) & (rec.index < layers[0].n) & (rec.value != 0)
                        m.d.comb += push(0, rec.index, rec.value, in_range)
                    for l, f in forced.items():
                        with m.If((rec.layer == l) & (rec.index < layers[l].n)):
                            m.d.sync += f.bit_select(rec.index, 1).eq(1)
                with m.If(self.i.valid & rec.last):
                    m.next = "WAIT0"

            with m.State("WAIT0"):
                m.d.comb += self.busy.eq(1)
                with m.If(~pending(0)):
                    m.d.sync += [n_pairs.eq(0), mi.eq(0), pend.eq(0), grp.eq(0), p_next.eq(0)]
                    m.next = "L1_J0"

            for l in range(1, len(layers)):
                self._states(m, l, ctx[l], plan, lines, push, pending, forced, conv_vec,
                             grp, p_next, n_pairs, s1, s2, mi, pend)

            with m.State("END"):
                m.d.comb += self.busy.eq(1)
                for line in lines.values():
                    m.d.comb += line.advance.eq(1)
                m.next = "RECV"
        return m

    # ----------------------------------------------------------------------------------------
    def _datapath(self, m, l, plan, lines, push, pending, forced, conv_vec, grp,
                  n_pairs) -> dict:
        """Memories, weight ports and the fire pipeline of layer l (state-independent).

        The fire pipeline takes a group's partial sums from the hand-off register ``H`` while
        the accumulator moves on to the next group: stage B1 adds bias and conv terms and
        applies the leak into ``S``; stage B2 saturates, thresholds and resets, offers the group
        on ``o`` and writes it back; the drain pushes its emitted neurons, one per cycle.
        """
        net, L = self.net, self.lanes
        layer = net.layers[l]
        G = ceil(layer.n / L)
        last_layer = l == len(net.layers) - 1
        incoming = [pp for pp in plan if pp.p.dst == l]
        weighted = [pp for pp in incoming if pp.p.kind != "conv"]
        convs = [pp for pp in incoming if pp.p.kind == "conv"]
        emits = any(pp.p.src == l for pp in plan)
        ctx = dict(G=G, incoming=incoming, weighted=weighted, convs=convs)

        vmem = memory.Memory(shape=unsigned(L * layer.v_bits), depth=G, init=[])
        bias = list(layer.bias) + [0] * (G * L - layer.n)
        bmem = memory.Memory(shape=unsigned(L * layer.acc_bits), depth=G,
                             init=[_pack(bias[g * L:(g + 1) * L], layer.acc_bits)
                                   for g in range(G)])
        m.submodules[f"v{l}"], m.submodules[f"bias{l}"] = vmem, bmem
        v_wr = vmem.write_port()
        v_rd = vmem.read_port(transparent_for=(v_wr,))
        b_rd = bmem.read_port()
        ctx["v_wr"] = v_wr

        # Weight memories: word row*G + g holds w[g*L : (g+1)*L, row] with row = j (dense) or
        # j*D + k (taps): one word feeds every lane.
        wports = []
        for pp in weighted:
            w = pp.p.weight if pp.p.kind == "taps" else pp.p.weight[:, :, None]
            words = []
            for j in range(pp.pre.n):
                for k in range(pp.taps):
                    col = list(w[:, j, k]) + [0] * (G * L - layer.n)
                    words += [_pack(col[g * L:(g + 1) * L], pp.p.w_bits) for g in range(G)]
            wm = memory.Memory(shape=unsigned(L * pp.p.w_bits), depth=len(words), init=words)
            m.submodules[f"w{pp.index}"] = wm
            wports.append(wm.read_port())
        ctx["wports"] = wports

        if weighted:
            pb = _pair_bits(net, l, L)
            ctx["tag_bits"] = tag_bits = max(1, (len(weighted) - 1).bit_length())
            ctx["vb"] = vb = max(pp.value_bits for pp in weighted)
            ctx["base_bits"] = pb - tag_bits - vb
            cap = sum(pp.pre.n * pp.taps for pp in weighted)
            pmem = memory.Memory(shape=unsigned(pb), depth=cap, init=[])
            m.submodules[f"pairs{l}"] = pmem
            ctx["pr_rd"], pr_wr = pmem.read_port(), pmem.write_port()
            # Pairs are written one cycle after their event is read, from a register: the row
            # arithmetic then never shares a cycle with the memory read (Fmax).
            ctx["pw_valid"] = pw_valid = Signal(name=f"pw_valid{l}")
            ctx["pw_data"] = pw_data = Signal(pb, name=f"pw_data{l}")
            m.d.sync += pw_valid.eq(0)
            m.d.comb += [pr_wr.addr.eq(n_pairs), pr_wr.data.eq(pw_data), pr_wr.en.eq(pw_valid)]
            with m.If(pw_valid):
                m.d.sync += n_pairs.eq(n_pairs + 1)

        acc_shape = signed(layer.acc_bits + 1)
        ctx["acc"] = [Signal(acc_shape, name=f"acc{l}_{k}") for k in range(L)]

        # ---- hand-off register H (filled by the accumulator's HAND state) ------------------
        h_valid = Signal(name=f"h_valid{l}")
        h_acc = [Signal(acc_shape, name=f"h_acc{l}_{k}") for k in range(L)]
        h_g = Signal(range(G + 1), name=f"h_g{l}")
        h_load = Signal(name=f"h_load{l}")        # driven by HAND
        ctx.update(h_valid=h_valid, h_load=h_load)
        # v and bias are read for the group entering H, and held while it waits there.
        m.d.comb += [v_rd.addr.eq(grp), b_rd.addr.eq(grp), v_rd.en.eq(h_load),
                     b_rd.en.eq(h_load)]
        with m.If(h_load):
            m.d.sync += [h_valid.eq(1), h_g.eq(grp)] + \
                [h.eq(a) for h, a in zip(h_acc, ctx["acc"])]

        # ---- conv terms of the group in H: the K-tap kernel over a window of the vector ----
        conv_terms = [0] * L
        for pp in convs:
            K = pp.p.weight.shape[0]
            c = (K - 1) // 2
            vec, vw = conv_vec[pp.index], max(1, pp.value_bits)
            windows = []
            for g in range(G):
                items = [vec[g * L + x - c] if 0 <= g * L + x - c < pp.pre.n else C(0, vw)
                         for x in range(L + K - 1)]
                windows.append(Cat(*items))
            win = Signal(len(windows[0]), name=f"win{pp.index}")
            # A part-select, not an Array: it becomes a continuous assignment, which Icarus
            # evaluates at time 0 even when its inputs never change.
            m.d.comb += win.eq(Cat(*windows).word_select(h_g, len(windows[0])))
            for lane in range(L):
                for k in range(K):
                    wk = int(pp.p.weight[k])
                    if wk == 0:
                        continue
                    g_val = win[(lane + k) * vw:(lane + k + 1) * vw]
                    wc = C(wk, signed(pp.p.w_bits))
                    term = g_val * wc if pp.value_bits else Mux(g_val, wc, 0)
                    conv_terms[lane] = conv_terms[lane] + term

        # ---- B1: current and leak into S; B1b: saturated v_hat into R ----------------------
        s_valid = Signal(name=f"s_valid{l}")
        s_g = Signal(range(G + 1), name=f"s_g{l}")
        s_i = [Signal(signed(layer.acc_bits + 3), name=f"s_i{l}_{k}") for k in range(L)]
        s_u = [Signal(signed(layer.v_bits + 1), name=f"s_u{l}_{k}") for k in range(L)]
        s_f = Signal(L, name=f"s_f{l}")
        r_valid = Signal(name=f"r_valid{l}")
        r_g = Signal(range(G + 1), name=f"r_g{l}")
        r_v = [Signal(signed(layer.v_bits), name=f"r_v{l}_{k}") for k in range(L)]
        r_f = Signal(L, name=f"r_f{l}")
        b2_take = Signal(name=f"b2_take{l}")      # R is emptied this cycle
        s_take = Signal(name=f"s_take{l}")        # S moves to R this cycle
        m.d.comb += s_take.eq(s_valid & (~r_valid | b2_take))
        beta = C(layer.beta, signed(layer.beta.bit_length() + 1))
        with m.If(h_valid & (~s_valid | s_take)):
            m.d.sync += [s_valid.eq(1), s_g.eq(h_g)]
            with m.If(~h_load):
                m.d.sync += h_valid.eq(0)
            for lane in range(L):
                b = b_rd.data[lane * layer.acc_bits:(lane + 1) * layer.acc_bits].as_signed()
                v = v_rd.data[lane * layer.v_bits:(lane + 1) * layer.v_bits].as_signed()
                m.d.sync += [s_i[lane].eq(h_acc[lane] + b + conv_terms[lane]),
                             # Arithmetic shift of a signed product: floor, as the contract.
                             s_u[lane].eq((beta * v) >> layer.beta_shift)]
            if l in forced:
                m.d.sync += s_f.eq(forced[l].word_select(h_g, L))
        with m.Elif(s_take):
            m.d.sync += s_valid.eq(0)
        with m.If(s_take):
            m.d.sync += [r_valid.eq(1), r_g.eq(s_g), r_f.eq(s_f)]
            m.d.sync += [r_v[lane].eq(saturate(s_u[lane] + s_i[lane], layer.v_bits))
                         for lane in range(L)]
        with m.Elif(b2_take):
            m.d.sync += r_valid.eq(0)
        ctx.update(s_valid=s_valid, s_take=s_take, r_valid=r_valid)

        # ---- B2: threshold and reset, offer on `o`, write back, hand spikes to the drain ---
        spikes, emit = Signal(L, name=f"spikes{l}"), Signal(L, name=f"emit{l}")
        v_new = [Signal(signed(layer.v_bits), name=f"vnew{l}_{k}") for k in range(L)]
        for lane in range(L):
            u = LIFUnit(layer, i_width=layer.acc_bits + 3, part="after_saturate",
                        fault="threshold>" if self.fault == "threshold>" else None)
            m.submodules[f"lif{l}_{lane}"] = u
            live = (r_g * L + lane) < layer.n
            m.d.comb += [u.v.eq(r_v[lane]), u.i_in.eq(0),
                         spikes[lane].eq(u.spike & live),
                         emit[lane].eq((u.spike | r_f[lane]) & live),
                         v_new[lane].eq(Mux(live, u.v_new, 0))]
        drain = Signal(L, name=f"drain{l}")
        drain_g = Signal(range(G + 1), name=f"drain_g{l}")
        # One group waits behind the draining one, so that B2 stalls only when both are
        # taken: the stall then depends on a register, not on this group's spikes (Fmax).
        q_valid = Signal(name=f"q_valid{l}")
        q_mask = Signal(L, name=f"q_mask{l}")
        q_g = Signal(range(G + 1), name=f"q_g{l}")
        ctx["drain_busy"] = drain.any() | q_valid
        offer = r_valid & ~q_valid if emits else r_valid
        ctx["offer"] = offer
        out = self.o.payload
        with m.If(offer):
            m.d.comb += [self.o.valid.eq(1), out.layer.eq(l), out.index.eq(r_g * L),
                         out.spike.eq(spikes),
                         out.last.eq((r_g == G - 1) & last_layer)]
            m.d.comb += [out.v[lane].eq(v_new[lane]) for lane in range(L)]
            with m.If(self.o.ready):
                m.d.comb += [b2_take.eq(1), v_wr.addr.eq(r_g), v_wr.data.eq(Cat(*v_new)),
                             v_wr.en.eq(1)]
        if emits:
            low = Signal(range(max(2, L)), name=f"low{l}")
            for lane in reversed(range(L)):
                with m.If(drain[lane]):
                    m.d.comb += low.eq(lane)
            rest = Signal(L, name=f"rest{l}")
            m.d.comb += rest.eq(drain & ~(C(1, L) << low))
            with m.If(drain.any()):
                m.d.comb += push(l, drain_g * L + low, 1, 1)
            m.d.sync += drain.eq(rest)
            new = b2_take & emit.any()
            with m.If(rest == 0):
                # The drain frees up this cycle: it takes the queued group, else the new one.
                with m.If(q_valid):
                    m.d.sync += [drain.eq(q_mask), drain_g.eq(q_g), q_valid.eq(new)]
                    with m.If(new):
                        m.d.sync += [q_mask.eq(emit), q_g.eq(r_g)]
                with m.Elif(new):
                    m.d.sync += [drain.eq(emit), drain_g.eq(r_g)]
            with m.Elif(new):
                m.d.sync += [q_valid.eq(1), q_mask.eq(emit), q_g.eq(r_g)]

        # The layer may end once the fire pipeline and the drain are empty and the pushes have
        # landed. Registered: once true it stays true, and the layer's end then does not
        # share a cycle with this wide condition (Fmax).
        idle = ~h_valid & ~s_valid & ~r_valid & ~pending(l)
        if emits:
            idle = idle & ~ctx["drain_busy"]
        ctx["idle"] = idle_q = Signal(name=f"idle{l}")
        m.d.sync += idle_q.eq(idle & ~h_load)   # never true in the cycle after a hand-off
        return ctx

    def _states(self, m, l, ctx, plan, lines, push, pending, forced, conv_vec,
                grp, p_next, n_pairs, s1, s2, mi, pend):
        """FSM states of layer l: gather jobs L{l}_J*, then ACC / HAND per group, then DONE."""
        net, L = self.net, self.lanes
        last_layer = l == len(net.layers) - 1
        nxt_layer = "END" if last_layer else f"L{l + 1}_J0"
        G, weighted, convs = ctx["G"], ctx["weighted"], ctx["convs"]
        acc, busy = ctx["acc"], self.busy
        first_acc = f"L{l}_ACC" if weighted else f"L{l}_HAND"

        # ---- gather: one job per (projection, tap) -----------------------------------------
        jobs = []
        for pp in ctx["incoming"]:
            if pp.p.kind == "taps":
                jobs += [(pp, int(pp.p.delay) + k, k) for k in range(pp.taps)]
            else:
                jobs.append((pp, 0, 0))
        after_jobs = f"L{l}_SETTLE" if weighted else first_acc
        for q, (pp, offset, k) in enumerate(jobs):
            line = lines[pp.index]
            nxt = f"L{l}_J{q + 1}" if q + 1 < len(jobs) else after_jobs
            with m.State(f"L{l}_J{q}"):
                m.d.comb += busy.eq(1)
                with m.If(pend):  # the event read last cycle is on rd_index/rd_value
                    if pp.p.kind == "conv":
                        m.d.sync += conv_vec[pp.index][line.rd_index].eq(line.rd_value)
                    else:
                        base = Signal(ctx["base_bits"], name=f"base{l}_{q}")
                        m.d.comb += base.eq(line.rd_index * (pp.taps * G) + k * G)
                        fields = [Const(weighted.index(pp), ctx["tag_bits"]), base]
                        if ctx["vb"]:
                            fields.append(line.rd_value[:ctx["vb"]] if pp.value_bits
                                          else C(1, ctx["vb"]))
                        m.d.sync += [ctx["pw_data"].eq(Cat(*fields)), ctx["pw_valid"].eq(1)]
                m.d.comb += line.rd_entry.eq(mi)
                m.d.sync += pend.eq(mi < line.rd_count)
                with m.If(mi < line.rd_count):
                    m.d.sync += mi.eq(mi + 1)
                with m.Else():
                    m.d.comb += (line.clear if pp.mode == "arrival" else line.rd_next).eq(1)
                    m.d.sync += [mi.eq(0), pend.eq(0)]
                    m.next = nxt
        if not jobs:
            with m.State(f"L{l}_J0"):
                m.d.comb += busy.eq(1)
                m.next = first_acc
        if weighted:
            with m.State(f"L{l}_SETTLE"):      # the last registered pair write lands
                m.d.comb += busy.eq(1)
                m.next = first_acc

            # ---- accumulate one group: pair -> weight word -> add, one pair per cycle ------
            with m.State(f"L{l}_ACC"):
                m.d.comb += busy.eq(1)
                tb, bb, vb = ctx["tag_bits"], ctx["base_bits"], ctx["vb"]
                pr_rd = ctx["pr_rd"]
                tag2 = Signal(tb, name=f"tag{l}")
                val2 = Signal(max(1, vb), name=f"val{l}")
                m.d.comb += pr_rd.addr.eq(p_next)
                for port in ctx["wports"]:
                    m.d.comb += port.addr.eq(pr_rd.data[tb:tb + bb] + grp)
                m.d.sync += [s1.eq(p_next < n_pairs), s2.eq(s1), tag2.eq(pr_rd.data[:tb])]
                if vb:
                    m.d.sync += val2.eq(pr_rd.data[tb + bb:])
                with m.If(p_next < n_pairs):
                    m.d.sync += p_next.eq(p_next + 1)
                with m.If(s2):
                    for lane in range(L):
                        term = None
                        for t_i, (pp, port) in enumerate(zip(weighted, ctx["wports"])):
                            wb = pp.p.w_bits
                            wv = port.data[lane * wb:(lane + 1) * wb].as_signed()
                            if pp.value_bits:
                                wv = wv * val2[:pp.value_bits]
                            term = wv if term is None else Mux(tag2 == t_i, wv, term)
                        m.d.sync += acc[lane].eq(acc[lane] + term)
                # The last add (s2) lands at this clock edge, in time for HAND.
                with m.If((p_next == n_pairs) & ~s1):
                    m.next = f"L{l}_HAND"

        # ---- hand the group to the fire pipeline and start the next one -------------------
        with m.State(f"L{l}_HAND"):
            m.d.comb += busy.eq(1)
            h_free = ~ctx["h_valid"] | ~ctx["s_valid"] | ctx["s_take"]
            with m.If(h_free):
                m.d.comb += ctx["h_load"].eq(1)
                m.d.sync += [a.eq(0) for a in acc] + [p_next.eq(0)]
                with m.If(grp == G - 1):
                    m.next = f"L{l}_DONE"
                with m.Else():
                    m.d.sync += grp.eq(grp + 1)
                    if weighted:
                        with m.If(n_pairs != 0):
                            m.next = f"L{l}_ACC"

        with m.State(f"L{l}_DONE"):
            m.d.comb += busy.eq(1)
            # Every group has been fired and drained, and delay-0 events have landed, before
            # the next layer gathers them (`idle` is a cycle late, see the datapath).
            with m.If(ctx["idle"]):
                if l in forced:
                    m.d.sync += forced[l].eq(0)
                for pp in convs:
                    m.d.sync += [x.eq(0) for x in conv_vec[pp.index]]
                m.d.sync += [grp.eq(0), n_pairs.eq(0), p_next.eq(0), mi.eq(0), pend.eq(0)]
                m.next = nxt_layer
