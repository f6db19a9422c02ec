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
from amaranth.lib.wiring import In, Out

from model.ir import Network
from ..checked import CheckedComponent
from ..interface import step_out_layout

__all__ = ["DEFAULT_MAX_STEPS", "Readout", "SerialReadout", "sum_bits"]

#: The host link's default bound on the steps of a sample (its ``max_steps``).
DEFAULT_MAX_STEPS = 4096


def sum_bits(net: Network, layer: int, max_steps: int) -> int:
    """Bits of a read-out's running sum of layer ``layer``'s membranes over ``max_steps``."""
    return net.layers[layer].v_bits + max(1, (max_steps - 1).bit_length())


def _check(net: Network, *, lanes: int = 1, layer: int | None = None,
           max_steps: int = 1024) -> None:
    """Refuse a layer that is not a read-out and a bound below one step."""
    layer = len(net.layers) - 1 if layer is None else layer
    if not 1 <= layer < len(net.layers) or net.layers[layer].spiking:
        raise ValueError(f"layer {layer} of network {net.name!r} is not a read-out "
                         f"(non-spiking LIF) layer")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")


def _setup(ro, net: Network, lanes: int, layer: int | None, max_steps: int) -> None:
    """Keep a read-out's network, lanes, layer (default: the last) and sum width."""
    layer = len(net.layers) - 1 if layer is None else layer
    ro.net, ro.lanes, ro.layer = net, lanes, layer
    ro.n = net.layers[layer].n
    ro.sum_bits = sum_bits(net, layer, max_steps)
    ro.max_steps = max_steps


class Readout(CheckedComponent):
    """Prediction of read-out layer ``layer`` (default: the last layer) of ``net`` from the
    records seen on ``rec`` when ``fire`` (the output stream's valid & ready)."""

    check_args = staticmethod(_check)

    def __init__(self, net: Network, *, lanes: int = 1, layer: int | None = None,
                 max_steps: int = 1024):
        _setup(self, net, lanes, layer, max_steps)
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


class SerialReadout(CheckedComponent):
    """:class:`Readout` for a small device: the sums live in a block RAM and a record's lanes
    are added one per cycle, so a record of the read-out layer holds ``ready`` low for
    ``lanes`` cycles (records of other layers pass at once). Same ports and prediction as
    :class:`Readout`, plus ``ready``, which the owner ANDs into the output stream's ready.
    A reset does not clear block RAM: the first step after a reset or ``clear`` starts the
    sums from its own membranes."""

    check_args = staticmethod(_check)

    def __init__(self, net: Network, *, lanes: int = 1, layer: int | None = None,
                 max_steps: int = 1024):
        _setup(self, net, lanes, layer, max_steps)
        #: Cycles from taking the sample's last record to ``valid``: one per lane, the read,
        #: the add and compare, the register.
        self.latency = lanes + 3
        super().__init__({
            "rec": In(step_out_layout(net, lanes)), "fire": In(1),
            "clear": In(1), "last_step": In(1), "ready": Out(1),
            "prediction": Out(range(max(2, self.n))), "valid": Out(1),
        })

    def elaborate(self, platform):
        from amaranth.lib import memory
        m = Module()
        P, n = self.lanes, self.n
        G = ceil(n / P)
        sb = self.sum_bits
        mem = memory.Memory(shape=signed(sb), depth=max(2, n), init=[])
        m.submodules.sums = mem
        wr, rd = mem.write_port(), mem.read_port()
        vb = len(self.rec.v[0])
        # The record being folded in, lane by lane.
        busy = Signal(name="ro_busy")
        lane = Signal(range(max(2, P)), name="ro_lane")
        base = Signal(range(max(2, G * P)), name="ro_base")
        vs = Signal(P * vb, name="ro_v")
        fin = Signal(name="ro_final")          # the record is of the sample's last step
        endg = Signal(name="ro_endg")          # the record is the step's last group
        first = Signal(init=1, name="ro_first")  # the step restarts the sums
        take = Signal(name="ro_take")
        mine = self.rec.layer == self.layer
        m.d.comb += [self.ready.eq(~busy | ~mine),
                     take.eq(self.fire & mine)]
        idx = Signal(range(max(2, G * P + P)), name="ro_idx")
        m.d.comb += idx.eq(base + lane)
        lane_last = Signal(name="ro_lane_last")
        m.d.comb += lane_last.eq((lane == P - 1) | (idx == n - 1))
        with m.If(take):
            m.d.sync += [busy.eq(1), lane.eq(0), base.eq(self.rec.index),
                         vs.eq(Cat(*[v.as_unsigned() for v in self.rec.v])),
                         fin.eq(self.last_step), endg.eq(self.rec.index + P >= n)]
            with m.If(self.clear):
                m.d.sync += first.eq(1)
        with m.Elif(busy):
            with m.If(lane_last):
                m.d.sync += busy.eq(0)
                with m.If(endg):
                    m.d.sync += first.eq(0)
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
        m.d.comb += rd.addr.eq(idx)
        # Stage 2: the sum read, the lane's membrane added, written back, compared.
        s_valid = Signal(name="ro_s_valid")
        s_idx = Signal.like(idx, name="ro_s_idx")
        s_v = Signal(signed(vb), name="ro_s_v")
        s_first, s_fin, s_end = Signal(), Signal(), Signal()
        m.d.sync += [s_valid.eq(busy), s_idx.eq(idx),
                     s_v.eq(vs.word_select(lane, vb).as_signed()),
                     s_first.eq(first), s_fin.eq(fin), s_end.eq(busy & lane_last & endg)]
        new = Signal(signed(sb), name="ro_new")
        m.d.comb += new.eq(Mux(s_first, 0, rd.data) + s_v)
        m.d.comb += [wr.addr.eq(s_idx), wr.data.eq(new), wr.en.eq(s_valid)]
        best = Signal(signed(sb), name="ro_best")
        with m.If(take & self.clear):
            m.d.sync += self.valid.eq(0)
        with m.If(s_valid & s_fin):
            # The running first maximum over the final step's sums, in index order.
            with m.If((s_idx == 0) | (new > best)):
                m.d.sync += [best.eq(new), self.prediction.eq(s_idx)]
            m.d.sync += self.valid.eq(s_end)
        return m
