"""Network core: a time-multiplexed recurrent LIF population with taps delay lines in block RAM.

This first generator implements the working-memory shape of the IR: one spiking LIF layer with
one recurrent ``taps`` projection (weights ``w[i, j, k]`` at delay ``d0 + k``), an optional
forced (cue) raster, per-neuron bias, either reset and any leak. Networks outside that shape are
refused with :class:`UnsupportedNetwork`; the general multi-layer core is a later step.

Memories (all ``amaranth.lib.memory``, one read and at most one write port each):

========  ==================================  ===============================================
array     depth x width                       contents
========  ==================================  ===============================================
``w``     n*n*D x w_bits (ROM)                ``w[i, j, k]`` at address ``(j*D + k)*n + i``
``bias``  n x acc_bits (ROM)                  per-neuron bias
``v``     n x v_bits                          membranes v(t-1)
``f``     n x 1                               forced raster of the current step
``ev``    R * 2**index_bits x index_bits      spike history: slot ``t mod R`` lists the
                                              neurons that emitted at step t (R = d0 + D)
``cnt``   R x index_bits+1                    number of entries in each history slot
``pair``  n*D x addr bits                     this step's active (neuron, tap) pairs, stored as
                                              the base address ``(j*D + k)*n`` into ``w``
========  ==================================  ===============================================

One timestep, after the record with ``last = 1`` has been accepted on ``i``:

1. *gather* — for every tap k the history slot of step ``t - d0 - k`` is read and each neuron
   j listed there becomes one pair (j, k): ``3*D + E`` cycles for E active pairs;
2. *update* — for every neuron i, the weights ``w[i, pair]`` of the E pairs are summed
   (one per cycle, pipelined), the bias is added and the LIF update is applied; the result is
   offered on ``o`` and, when accepted, written back; emitted spikes are appended to slot
   ``t mod R``: ``n * (E + 3)`` cycles (``2 * n`` when E = 0).

So a step costs ``3*D + E + n*(E + 3)`` cycles after its last input record
(:meth:`NetworkCore.cycles_per_step`): work grows with the number of spiking (neuron, delay)
pairs, never with ``n * n * D``.
"""

from __future__ import annotations

from typing import Literal

from amaranth.hdl import Module, Signal, C, Cat, Mux, signed, unsigned
from amaranth.lib import wiring, stream, memory
from amaranth.lib.wiring import In, Out

from model.ir import InputLayer, LIFLayer, Network
from .interface import index_bits, step_in_layout, step_out_layout

__all__ = ["UnsupportedNetwork", "NetworkCore", "supported", "cycles_per_step", "memory_bits"]

Fault = Literal[None, "delay+1", "threshold>"]


class UnsupportedNetwork(ValueError):
    """The IR is valid but this generator cannot build it (yet)."""


def supported(net: Network) -> None:
    """Raise :class:`UnsupportedNetwork` unless ``net`` has the working-memory shape."""
    problems = []
    if len(net.layers) != 2:
        problems.append(f"it has {len(net.layers) - 1} LIF layers (this core builds exactly 1)")
    elif not net.layers[1].spiking:
        problems.append("its only layer is a read-out (this core needs a threshold)")
    if len(net.projections) != 1 or net.projections[0].kind != "taps" \
            or not net.projections[0].recurrent:
        kinds = [f"{p.kind} {p.src}->{p.dst}" for p in net.projections]
        problems.append(f"its projections are {kinds} (this core builds one recurrent taps)")
    if isinstance(net.layers[0], InputLayer) and net.layers[0].n and \
            any(p.src == 0 for p in net.projections):
        problems.append("it has input channels (this core takes only a forced raster)")
    if problems:
        raise UnsupportedNetwork(f"network {net.name!r} is not supported by the working-memory "
                                 "core: " + "; ".join(problems))


def cycles_per_step(net: Network, pairs: int) -> int:
    """Cycles from the edge accepting a step's last input record to the edge accepting its
    last output record, with ``pairs`` = E active (neuron, tap) pairs and ``o`` always ready.

    The core accepts the next step's first input record two cycles later.
    """
    supported(net)
    n, taps = net.layers[1].n, net.projections[0].n_taps
    return 3 * taps + pairs + n * (pairs + 3 if pairs else 2)


def memory_bits(net: Network) -> dict[str, int]:
    """Bits of each memory array of the core for ``net`` (see the table above)."""
    supported(net)
    layer, proj = net.layers[1], net.projections[0]
    n, D = layer.n, proj.n_taps
    R, ib = int(proj.delay) + D, index_bits(n)
    wb = max(1, (n * n * D - 1).bit_length())
    return {"w": n * n * D * proj.w_bits, "bias": n * layer.acc_bits, "v": n * layer.v_bits,
            "f": n if layer.forced else 0, "ev": R * (1 << ib) * ib,
            "cnt": R * n.bit_length(), "pair": n * D * wb}


class NetworkCore(wiring.Component):
    """Streaming, time-multiplexed core for one recurrent LIF population with taps delays.

    Ports: ``i`` (In stream, :func:`~rtl.interface.step_in_layout`), ``o`` (Out stream,
    :func:`~rtl.interface.step_out_layout`), and ``busy`` (high while a step is computed or
    the memories are cleared after reset).

    ``fault`` plants a deliberate bug, for testing that the verification catches it:
    ``"delay+1"`` reads every delay one step late; ``"threshold>"`` fires on ``v > threshold``.
    """

    def __init__(self, net: Network, *, fault: Fault = None):
        supported(net)
        if fault not in (None, "delay+1", "threshold>"):
            raise ValueError(f"fault must be None, 'delay+1' or 'threshold>', got {fault!r}")
        self.net = net
        self.fault = fault
        self.layer: LIFLayer = net.layers[1]
        self.proj = net.projections[0]
        super().__init__({
            "i": In(stream.Signature(step_in_layout(net))),
            "o": Out(stream.Signature(step_out_layout(net))),
            "busy": Out(1),
        })

    # Derived facts (the cost model lives in module functions so estimates need no component).
    @property
    def n(self) -> int:
        return self.layer.n

    @property
    def taps(self) -> int:
        return self.proj.n_taps

    @property
    def d0(self) -> int:
        return int(self.proj.delay)

    @property
    def ring(self) -> int:
        """History slots R: the current step plus the longest delay."""
        return self.d0 + self.taps

    def cycles_per_step(self, pairs: int) -> int:
        """See :func:`cycles_per_step`."""
        return cycles_per_step(self.net, pairs)

    @property
    def memory_bits(self) -> dict[str, int]:
        """See :func:`memory_bits`."""
        return memory_bits(self.net)

    def elaborate(self, platform):
        m = Module()
        layer, proj = self.layer, self.proj
        n, D, d0, R = self.n, self.taps, self.d0, self.ring
        ib = index_bits(n)
        cb = n.bit_length()                       # counts 0..n
        wa = max(1, (n * n * D - 1).bit_length())  # weight address bits
        pb = max(1, (n * D).bit_length())          # pair counts 0..n*D
        sb = max(1, (R - 1).bit_length())
        acc_shape = signed(layer.acc_bits + 1)     # partial sums without bias need one bit more

        w = proj.weight
        w_init = [int(w[i, j, k]) for j in range(n) for k in range(D) for i in range(n)]
        m.submodules.w_mem = w_mem = memory.Memory(
            shape=signed(proj.w_bits), depth=n * n * D, init=w_init)
        m.submodules.b_mem = b_mem = memory.Memory(
            shape=signed(layer.acc_bits), depth=n, init=[int(b) for b in layer.bias])
        m.submodules.v_mem = v_mem = memory.Memory(shape=signed(layer.v_bits), depth=n, init=[])
        m.submodules.f_mem = f_mem = memory.Memory(shape=1, depth=n, init=[])
        m.submodules.ev_mem = ev_mem = memory.Memory(shape=ib, depth=R << ib, init=[])
        m.submodules.cnt_mem = cnt_mem = memory.Memory(shape=cb, depth=R, init=[])
        m.submodules.pair_mem = pair_mem = memory.Memory(shape=wa, depth=n * D, init=[])

        w_rd = w_mem.read_port()
        b_rd = b_mem.read_port()
        v_rd, v_wr = v_mem.read_port(), v_mem.write_port()
        f_rd, f_wr = f_mem.read_port(), f_mem.write_port()
        ev_rd, ev_wr = ev_mem.read_port(), ev_mem.write_port()
        cnt_rd, cnt_wr = cnt_mem.read_port(), cnt_mem.write_port()
        pair_rd, pair_wr = pair_mem.read_port(), pair_mem.write_port()

        cur = Signal(range(R))        # history slot of the current step, t mod R
        gslot = Signal(range(R))      # slot being gathered
        k = Signal(range(D + 1))      # tap being gathered
        k_base = Signal(wa + 1)       # k * n
        cnt = Signal(cb)              # entries in the gathered slot
        mi = Signal(cb)               # next entry to read
        pend = Signal()               # an ev read is in flight
        n_pairs = Signal(pb)          # E: active pairs this step
        ni = Signal(ib)               # neuron being updated
        p = Signal(pb)                # next pair to issue
        s1 = Signal()                 # pair read in flight
        s2 = Signal()                 # weight read in flight
        acc = Signal(acc_shape)
        emitted = Signal(cb)          # spikes appended to slot `cur` this step
        clr = Signal(range(max(n, R) + 1))

        m.d.comb += [v_rd.addr.eq(ni), f_rd.addr.eq(ni), b_rd.addr.eq(ni),
                     cnt_rd.addr.eq(gslot)]

        # The LIF update of neuron `ni`, valid in state FIRE (all reads have settled).
        i_in = Signal(signed(layer.acc_bits + 1))
        u = Signal(signed(layer.v_bits + 1))
        v_hat = Signal(signed(layer.v_bits))
        spike = Signal()
        v_new = Signal(signed(layer.v_bits))
        beta = C(layer.beta, signed(layer.beta.bit_length() + 1))
        total = Signal(signed(max(layer.v_bits, layer.acc_bits + 1) + 2))
        m.d.comb += [
            i_in.eq(acc + b_rd.data),
            # Arithmetic shift of a signed product: floor, as the contract says.
            u.eq((beta * v_rd.data) >> layer.beta_shift),
            total.eq(u + i_in),
            v_hat.eq(Mux(total > layer.v_max, layer.v_max,
                         Mux(total < layer.v_min, layer.v_min, total))),
        ]
        if self.fault == "threshold>":
            m.d.comb += spike.eq(v_hat > layer.threshold)
        else:
            m.d.comb += spike.eq(v_hat >= layer.threshold)
        if layer.reset == "zero":
            m.d.comb += v_new.eq(Mux(spike, 0, v_hat))
        else:
            m.d.comb += v_new.eq(Mux(spike, v_hat - layer.threshold, v_hat))
        forced = f_rd.data if layer.forced else C(0, 1)

        first_slot = (d0 + 1) if self.fault == "delay+1" else d0

        def slot_minus(slot, amount):
            """(slot - amount) mod R for a slot < R and a constant 0 <= amount <= R."""
            amount %= R
            return Mux(slot >= amount, slot - amount, slot + (R - amount))

        with m.FSM(init="CLEAR"):
            # After reset the memories still hold old state: clear v, f and the history counts.
            with m.State("CLEAR"):
                m.d.comb += self.busy.eq(1)
                m.d.comb += [v_wr.addr.eq(clr), v_wr.data.eq(0), v_wr.en.eq(clr < n),
                             f_wr.addr.eq(clr), f_wr.data.eq(0), f_wr.en.eq(clr < n),
                             cnt_wr.addr.eq(clr), cnt_wr.data.eq(0), cnt_wr.en.eq(clr < R)]
                m.d.sync += clr.eq(clr + 1)
                with m.If(clr == max(n, R) - 1):
                    m.d.sync += cur.eq(0)
                    m.next = "RECV"

            with m.State("RECV"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    rec = self.i.payload
                    if layer.forced:
                        m.d.comb += [f_wr.addr.eq(rec.index), f_wr.data.eq(1),
                                     f_wr.en.eq(rec.valid & (rec.index < n))]
                    with m.If(rec.last):
                        m.d.sync += [k.eq(0), k_base.eq(0), n_pairs.eq(0),
                                     gslot.eq(slot_minus(cur, first_slot))]
                        m.next = "G_COUNT"

            with m.State("G_COUNT"):          # cnt_rd.addr = gslot is being read
                m.d.comb += self.busy.eq(1)
                m.next = "G_LATCH"

            with m.State("G_LATCH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [cnt.eq(cnt_rd.data), mi.eq(0), pend.eq(0)]
                m.next = "G_EVENTS"

            with m.State("G_EVENTS"):
                m.d.comb += self.busy.eq(1)
                with m.If(pend):
                    m.d.comb += [pair_wr.addr.eq(n_pairs), pair_wr.en.eq(1),
                                 pair_wr.data.eq(ev_rd.data * (D * n) + k_base)]
                    m.d.sync += n_pairs.eq(n_pairs + 1)
                m.d.comb += ev_rd.addr.eq(Cat(mi[:ib], gslot))
                m.d.sync += pend.eq(mi < cnt)
                with m.If(mi < cnt):
                    m.d.sync += mi.eq(mi + 1)
                with m.Else():  # the last read (if any) is written above in this same cycle
                    m.d.sync += [k.eq(k + 1), k_base.eq(k_base + n),
                                 gslot.eq(slot_minus(gslot, 1))]
                    with m.If(k == D - 1):
                        m.d.sync += [ni.eq(0), p.eq(0), s1.eq(0), s2.eq(0), acc.eq(0),
                                     emitted.eq(0)]
                        m.next = "U_ACC"
                    with m.Else():
                        m.next = "G_COUNT"

            with m.State("U_ACC"):
                # Three-stage stream: pair address -> weight address -> add.
                m.d.comb += self.busy.eq(1)
                m.d.comb += [pair_rd.addr.eq(p), w_rd.addr.eq(pair_rd.data + ni)]
                m.d.sync += [s1.eq(p < n_pairs), s2.eq(s1)]
                with m.If(p < n_pairs):
                    m.d.sync += p.eq(p + 1)
                with m.If(s2):
                    m.d.sync += acc.eq(acc + w_rd.data)
                # The last add (s2) lands at this clock edge, in time for FIRE.
                with m.If((p == n_pairs) & ~s1):
                    m.next = "FIRE"

            with m.State("FIRE"):
                m.d.comb += self.busy.eq(1)
                m.d.comb += [self.o.valid.eq(1),
                             self.o.payload.index.eq(ni), self.o.payload.spike.eq(spike),
                             self.o.payload.v.eq(v_new), self.o.payload.last.eq(ni == n - 1)]
                with m.If(self.o.ready):
                    m.d.comb += [v_wr.addr.eq(ni), v_wr.data.eq(v_new), v_wr.en.eq(1)]
                    if layer.forced:
                        m.d.comb += [f_wr.addr.eq(ni), f_wr.data.eq(0), f_wr.en.eq(1)]
                    with m.If(spike | forced):
                        m.d.comb += [ev_wr.addr.eq(Cat(emitted[:ib], cur)), ev_wr.data.eq(ni),
                                     ev_wr.en.eq(1)]
                        m.d.sync += emitted.eq(emitted + 1)
                    m.d.sync += [p.eq(0), acc.eq(0)]
                    with m.If(ni == n - 1):
                        m.next = "U_END"
                    with m.Else():
                        m.d.sync += ni.eq(ni + 1)
                        m.next = "U_ACC"

            with m.State("U_END"):
                m.d.comb += self.busy.eq(1)
                m.d.comb += [cnt_wr.addr.eq(cur), cnt_wr.data.eq(emitted), cnt_wr.en.eq(1)]
                m.d.sync += cur.eq(Mux(cur == R - 1, 0, cur + 1))
                m.next = "RECV"
        return m
