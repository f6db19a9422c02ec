"""Read-out unit: the prediction argmax_i sum_t v_i(t) of a read-out layer, in hardware.

It watches the core's output stream (it never stalls it): every record of the read-out layer
adds its lanes' membranes into one running sum per neuron (registers, ``v_bits + steps_bits``
wide, enough for ``max_steps`` steps). During the sample's final step (``last_step`` high while
its records arrive) the final sums of each record's lanes are compared as they are formed,
groups in index order, so the prediction is ready ``latency`` = 3 + ceil(log2 P) cycles after
the layer's last record (registered stages: the record, the sums, one per level of the tree that
picks a record's winning lane, the running maximum): no scan, and the next sample may start at
once. Ties keep the first maximum (as
``numpy.argmax``). ``clear`` starts the next sample; its sums restart from the record taken in
the same cycle. Reference: :func:`sim.units.prediction`.
"""

from __future__ import annotations

from math import ceil

from amaranth.hdl import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from model.ir import Network
from .interface import step_out_layout

__all__ = ["Readout"]


class Readout(wiring.Component):
    """Prediction of read-out layer ``layer`` (default: the last layer) of ``net`` from the
    records seen on ``rec`` when ``fire`` (the output stream's valid & ready)."""

    def __init__(self, net: Network, *, lanes: int = 1, layer: int | None = None,
                 max_steps: int = 1024):
        layer = len(net.layers) - 1 if layer is None else layer
        if not 1 <= layer < len(net.layers) or net.layers[layer].spiking:
            self._MustUse__silence = True
            raise ValueError(f"layer {layer} of network {net.name!r} is not a read-out "
                             f"(non-spiking LIF) layer")
        if max_steps < 1:
            self._MustUse__silence = True
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.net, self.lanes, self.layer = net, lanes, layer
        self.n = net.layers[layer].n
        self.sum_bits = net.layers[layer].v_bits + max(1, (max_steps - 1).bit_length())
        self.max_steps = max_steps
        #: Cycles from the sample's last record on ``rec`` to ``valid``.
        self.latency = 3 + (lanes - 1).bit_length()
        super().__init__({
            "rec": In(step_out_layout(net, lanes)), "fire": In(1),
            "clear": In(1), "last_step": In(1),
            "prediction": Out(range(max(2, self.n))), "valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, n = self.lanes, self.n
        G = ceil(n / P)
        sums = [Signal(signed(self.sum_bits), name=f"sum{i}") for i in range(n)]
        # Stage A: the record, registered (the core's output record is combinational).
        rec = Signal.like(self.rec, name="rec_a")
        take, clear, last = Signal(name="take_a"), Signal(name="clear_a"), Signal(name="last_a")
        m.d.sync += [rec.eq(self.rec), take.eq(self.fire & (self.rec.layer == self.layer)),
                     clear.eq(self.clear), last.eq(self.last_step)]
        group = Signal(range(max(2, G)), name="group_a")
        m.d.comb += group.eq(rec.index // P if P & (P - 1) else rec.index >> (P.bit_length() - 1))

        # Stage B: each lane's sum including the record; it updates the sums and, in the final
        # step, moves on to the comparison.
        new = []
        for k in range(P):
            olds = [sums[g * P + k] if g * P + k < n else sums[0] for g in range(G)]
            old = Cat(*olds).word_select(group, self.sum_bits).as_signed() if G > 1 else olds[0]
            new.append(Mux(clear, 0, old) + rec.v[k])
        for i, s in enumerate(sums):
            # Neuron i is lane i mod P of group i // P.
            hit = take & (group == i // P)
            m.d.sync += s.eq(Mux(hit, new[i % P], Mux(clear, 0, s)))
        fin = [Signal(signed(self.sum_bits), name=f"fin{k}") for k in range(P)]
        c_take, c_clear = Signal(name="take_c"), Signal(name="clear_c")
        c_group = Signal.like(group, name="group_c")
        m.d.sync += [f.eq(x) for f, x in zip(fin, new)] + \
            [c_take.eq(take & last), c_clear.eq(clear), c_group.eq(group)]

        # Stage C: the record's winning lane by a balanced tree (the lower index wins ties),
        # one registered level per stage, so that one compare and one select fit a cycle.
        cand = [(fin[k], C(k, range(max(2, P))), c_group * P + k < n) for k in range(P)]
        flags = (c_take, c_clear, c_group == G - 1)
        level = 0
        while len(cand) > 1:
            nxt = []
            for i, (a, b) in enumerate(zip(cand[0::2], cand[1::2])):
                pick_b = b[2] & (~a[2] | (b[0] > a[0]))
                r = (Signal(signed(self.sum_bits), name=f"tv{level}_{i}"),
                     Signal(range(max(2, P)), name=f"ti{level}_{i}"),
                     Signal(name=f"tk{level}_{i}"))
                m.d.sync += [r[0].eq(Mux(pick_b, b[0], a[0])), r[1].eq(Mux(pick_b, b[1], a[1])),
                             r[2].eq(a[2] | b[2])]
                nxt.append(r)
            if len(cand) % 2:
                r = (Signal(signed(self.sum_bits), name=f"tv{level}_odd"),
                     Signal(range(max(2, P)), name=f"ti{level}_odd"),
                     Signal(name=f"tk{level}_odd"))
                m.d.sync += [x.eq(y) for x, y in zip(r, cand[-1])]
                nxt.append(r)
            f = tuple(Signal(name=f"tf{level}_{j}") for j in range(3))
            g = Signal.like(c_group, name=f"tg{level}")
            m.d.sync += [x.eq(y) for x, y in zip(f, flags)] + [g.eq(c_group)]
            cand, flags, c_group, level = nxt, f, g, level + 1
        assert self.latency == 3 + level
        w_val, lane, _ = cand[0]
        w_idx = c_group * P + lane
        d_take, d_clear, d_last = flags

        # Stage D: the running first maximum of the final step, groups in order.
        best = Signal(signed(self.sum_bits), name="best")
        have = Signal(name="have")                       # best holds some neuron's sum
        better = ~have | d_clear | (w_val > best)
        with m.If(d_clear):
            m.d.sync += [have.eq(0), self.valid.eq(0)]
        with m.If(d_take):
            m.d.sync += [have.eq(1), self.valid.eq(d_last)]
            with m.If(better):
                m.d.sync += [best.eq(w_val), self.prediction.eq(w_idx)]
        return m
