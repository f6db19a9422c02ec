"""Read-out unit: the prediction argmax_i sum_t v_i(t) of a read-out layer, in hardware.

It watches the core's output stream (it never stalls it): every record of the read-out layer
adds its lanes' membranes into one running sum per neuron (registers, ``v_bits + steps_bits``
wide, enough for ``max_steps`` steps). During the sample's final step (``last_step`` high while
its records arrive) the final sums of each record's lanes are compared as they are formed,
groups in index order, so the prediction is ready three cycles after the layer's last record
(the record is registered, then the sums, then the comparison): no scan, and the next sample
may start at once. Ties keep the first maximum (as
``numpy.argmax``). ``clear`` starts the next sample; its sums restart from the record taken in
the same cycle. Reference: :func:`sim.units.prediction`.
"""

from __future__ import annotations

from math import ceil

from amaranth.hdl import Cat, Module, Mux, Signal, signed
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

        # Stage C: a running first maximum over the final sums, lanes in order.
        best = Signal(signed(self.sum_bits), name="best")
        have = Signal(name="have")                       # best holds some neuron's sum
        b, h, pred = best, have & ~c_clear, self.prediction
        for k in range(P):
            in_layer = c_group * P + k < n
            better = in_layer & (~h | (fin[k] > b))
            b = Mux(better, fin[k], b)
            pred = Mux(better, c_group * P + k, pred)
            h = h | in_layer
        with m.If(c_clear):
            m.d.sync += [have.eq(0), self.valid.eq(0)]
        with m.If(c_take):
            m.d.sync += [best.eq(b), have.eq(h), self.prediction.eq(pred),
                         self.valid.eq(c_group == G - 1)]
        return m
