"""Delay line: a ring of per-step event lists in block RAM, for one projection.

Two modes share one structure, R slots of up to ``n`` events ``(index, value)`` each:

* ``history`` (``taps``): an event pushed at step t goes to slot ``t mod R``; the reader asks
  for the slot ``offset`` steps back (offset = d0 + k for tap k).
* ``arrival`` (``dense``/``conv`` with one delay per presynaptic neuron): an event from neuron
  j pushed at step t goes to slot ``(t + d[j]) mod R``; the reader takes slot ``t mod R`` and
  clears it. Each slot holds every event that arrives at its step, at most one per neuron.

Reference: :class:`sim.units.DelayLineModel`. Memory: ``R * 2**index_bits`` entries of
``index_bits + value_bits`` bits plus R counts in flip-flops. A push costs one cycle (two
pipeline stages: delay lookup, then write); a read costs one cycle per event after a
one-cycle latency.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .interface import index_bits

__all__ = ["DelayLine"]


class DelayLine(wiring.Component):
    """Event ring of ``slots`` steps for ``n`` presynaptic neurons (see the module docstring).

    Ports: ``push_valid/push_index/push_value`` (one event per cycle), ``pending`` (a push is
    still in the pipeline), ``advance`` (end of step), ``rd_count`` (events in the read slot),
    ``rd_entry`` → ``rd_index/rd_value`` (one cycle later), ``clear`` (empty the read slot;
    arrival mode), ``rd_next`` (history: move the read slot one step further back).

    In history mode the read slot starts each step at ``first`` steps back (d0) and ``rd_next``
    walks it back one step per tap; keeping it in a register keeps the slot arithmetic out of
    the count → compare path.
    """

    def __init__(self, *, n: int, slots: int, mode: Literal["history", "arrival"],
                 value_bits: int = 0, delays: np.ndarray | int = 0, first: int = 0,
                 fault: str | None = None):
        if mode not in ("history", "arrival"):
            raise ValueError(f"mode must be 'history' or 'arrival', got {mode!r}")
        if slots < 1 or n < 1:
            raise ValueError(f"need n >= 1 and slots >= 1, got n={n}, slots={slots}")
        self.n, self.slots, self.mode, self.value_bits = n, slots, mode, value_bits
        d = np.broadcast_to(np.asarray(delays, dtype=np.int64), (n,))
        if mode == "arrival" and (d.min() < 0 or d.max() >= slots):
            raise ValueError(f"delays must be in [0, slots-1 = {slots - 1}]")
        self.delays = d
        if mode == "history" and not 0 <= first < slots:
            raise ValueError(f"first must be in [0, slots-1 = {slots - 1}], got {first}")
        self.first = first
        self.fault = fault
        ib = index_bits(n)
        super().__init__({
            "push_valid": In(1), "push_index": In(ib), "push_value": In(max(1, value_bits)),
            "pending": Out(1),
            "advance": In(1),
            "rd_next": In(1), "rd_count": Out(n.bit_length()),
            "rd_entry": In(ib), "rd_index": Out(ib), "rd_value": Out(max(1, value_bits)),
            "clear": In(1),
        })

    @property
    def memory_bits(self) -> int:
        ib = index_bits(self.n)
        return self.slots * (1 << ib) * (ib + self.value_bits)

    def elaborate(self, platform):
        m = Module()
        n, R, vb = self.n, self.slots, self.value_bits
        ib = index_bits(n)
        sb = max(1, (R - 1).bit_length())
        width = ib + vb
        m.submodules.entries = entries = memory.Memory(shape=width, depth=R << ib, init=[])
        wr, rd = entries.write_port(), entries.read_port()
        cb = n.bit_length()
        counts = [Signal(cb, name=f"count{s}") for s in range(R)]
        # Counts are read with part-selects (continuous assignments) rather than an Array:
        # Icarus leaves an always @* block at X until one of its inputs changes.
        count_of = lambda slot: Cat(*counts).word_select(slot, cb)
        cur = Signal(range(R))

        def wrap(x):
            """x mod R for 0 <= x < 2R."""
            return Mux(x >= R, x - R, x)

        # Stage A: register the event and look up its delay; stage B: append it to its slot.
        a_valid, a_index, a_value = Signal(), Signal(ib), Signal(max(1, vb))
        m.d.sync += [a_valid.eq(self.push_valid), a_index.eq(self.push_index),
                     a_value.eq(self.push_value)]
        if self.mode == "arrival" and len(set(self.delays.tolist())) > 1:
            m.submodules.delay_rom = rom = memory.Memory(
                shape=sb, depth=n, init=[int(x) for x in self.delays])
            d_rd = rom.read_port()
            b_valid, b_index, b_value = Signal(), Signal(ib), Signal(max(1, vb))
            m.d.comb += d_rd.addr.eq(a_index)
            m.d.sync += [b_valid.eq(a_valid), b_index.eq(a_index), b_value.eq(a_value)]
            delay = d_rd.data
        else:
            b_valid, b_index, b_value = a_valid, a_index, a_value
            delay = int(self.delays[0]) if self.mode == "arrival" else 0
        if self.fault == "delay+1":
            delay = delay + 1
        slot = Signal(range(R))
        m.d.comb += slot.eq(wrap(cur + delay) if self.mode == "arrival" else cur)
        m.d.comb += [wr.addr.eq(Cat(count_of(slot)[:ib], slot)),
                     wr.data.eq(Cat(b_index, b_value) if vb else b_index),
                     wr.en.eq(b_valid)]
        for s_ in range(R):
            with m.If(b_valid & (slot == s_)):
                m.d.sync += counts[s_].eq(counts[s_] + 1)
        m.d.comb += self.pending.eq(a_valid | b_valid)

        # Read side. The read slot and its count are registers, so that neither the slot
        # arithmetic nor the count multiplexer shares a cycle with the reader's compare. The
        # count is re-sampled every cycle from the slot the next cycle will read, so it lags
        # a push or a clear by one cycle; readers start a job at least a cycle after both.
        first = self.first % R
        nxt = Mux(cur == R - 1, 0, cur + 1)
        if self.mode == "history":
            rslot = Signal(range(R), init=(-first) % R)
            rslot_next = Signal(range(R))
            m.d.comb += rslot_next.eq(rslot)
            with m.If(self.rd_next):
                m.d.comb += rslot_next.eq(Mux(rslot == 0, R - 1, rslot - 1))
            with m.If(self.advance):
                m.d.comb += rslot_next.eq(Mux(nxt >= first, nxt - first, nxt + R - first))
            m.d.sync += rslot.eq(rslot_next)
        else:
            rslot = cur
            rslot_next = Mux(self.advance, nxt, cur)
        count_q = Signal(cb)
        if self.mode == "history":
            # Look up all three candidates from registers; the strobes only pick one late.
            back, after = Signal(range(R)), Signal(range(R))
            m.d.comb += [back.eq(Mux(rslot == 0, R - 1, rslot - 1)),
                         after.eq(Mux(nxt >= first, nxt - first, nxt + R - first))]
            m.d.sync += count_q.eq(Mux(self.advance, count_of(after),
                                       Mux(self.rd_next, count_of(back), count_of(rslot))))
        else:
            nxt_s = Signal(range(R))
            m.d.comb += nxt_s.eq(nxt)
            m.d.sync += count_q.eq(Mux(self.advance, count_of(nxt_s), count_of(cur)))
        m.d.comb += [self.rd_count.eq(count_q),
                     rd.addr.eq(Cat(self.rd_entry, rslot)),
                     self.rd_index.eq(rd.data[:ib])]
        if vb:
            m.d.comb += self.rd_value.eq(rd.data[ib:])
        else:
            m.d.comb += self.rd_value.eq(1)
        for s_ in range(R):
            with m.If(self.clear & (rslot == s_)):
                m.d.sync += counts[s_].eq(0)

        with m.If(self.advance):
            m.d.sync += cur.eq(nxt)
            if self.mode == "history":
                for s_ in range(R):
                    with m.If(nxt == s_):
                        m.d.sync += counts[s_].eq(0)
        return m
