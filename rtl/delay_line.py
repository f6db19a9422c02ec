"""Delay line: the recent history of a presynaptic layer's values, one projection each.

A ring of R slots, slot ``t mod R`` for step t. Values travel as *words*: word w holds the
values of presynaptic neurons w·P .. w·P + P - 1 (P = lanes; an element is ``value_bits`` wide:
1 for spikes, the input width for multi-bit inputs). The presynaptic layer writes one word per
cycle (one group of its neurons), so pushing a step's spikes costs one cycle per group, never
one per spike. Two modes:

* ``list`` — one read offset, ``first`` (``dense``/``conv``/``taps`` with a single delay). A slot
  is a list of the step's *non-zero* words, each stored with its word index; all-zero words are
  never stored, so a reader spends nothing on silent neurons. Input records (one element each)
  are appended as one-element words. Memory: R slots of up to C entries (C = G for a LIF layer,
  n for the input layer) plus R counts in flip-flops.
* ``window`` — the offsets ``first .. first + taps - 1`` of a ``taps`` projection, read as one
  list: a FIFO of the non-zero words of the last R = first + taps steps, each stored with its
  word index and the step it was written in (mod 2^b), so that a reader walks every non-zero
  word of the whole window in one pass and learns each word's tap k (its offset minus
  ``first``) as it reads it. Steps without spikes cost nothing at all: the work per step
  follows the spikes of the last R steps, not the number of taps. Memory: the same R·C entries
  (plus one when ``first`` is 0, so that a full window is told from an empty one), and one
  start pointer per slot in flip-flops.
* ``per_lane`` — the offset of element k is the delay of presynaptic neuron w·P + k (``dense``
  and ``conv`` with a delay per presynaptic neuron): a dense history, G words per slot, in P
  memories (one per element, each with its own read address; slots rounded up to a power of
  two); the reader scans all G words.
  After reset it wipes its memory (``ready`` goes high when done: a reset does not clear block
  RAM). Fed by the input layer (``sparse``), it keeps one extra slot and zeroes slot t + 1 in
  the background while the write port is idle (``clean`` tells when that is done).

Reference: :class:`sim.units.DelayLineModel`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from amaranth.hdl import C, Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DelayLine", "line_slots", "line_capacity", "line_shapes"]


def line_slots(max_offset: int, *, sparse: bool, mode: str = "per_lane") -> int:
    """Slots a line needs for reads up to ``max_offset`` steps back (see the module doc)."""
    return max_offset + (2 if sparse and mode == "per_lane" else 1)


def _slot_bits(slots: int) -> int:
    """Address bits of a ``per_lane`` line's slot index: slots rounded up to a power of two."""
    return max(1, (slots - 1).bit_length())


def line_capacity(n: int, lanes: int, *, sparse: bool) -> int:
    """Entries per slot of a ``list`` line: one per word, or one per element when fed
    element by element (``sparse``)."""
    return n if sparse else -(-n // lanes)


class DelayLine(wiring.Component):
    """History ring of ``slots`` steps for ``n`` presynaptic values (see the module docstring).

    Ports:

    * write (into the current slot): ``wr_word`` (word index), ``wr_data`` (P elements),
      ``wr_en`` (one enable per element: a LIF layer writes whole words, the input layer one
      element per record);
    * read, ``list`` mode: the read slot is ``first`` steps back; ``rd_count`` counts its
      entries (registered: it follows a write one cycle later; ``rd_count_next`` is the value
      it takes at the next clock edge); each ``rd_en`` reads the
      slot's next entry (from the first, after ``advance``), whose word index and data appear
      on ``rd_word_out`` and ``rd_data`` one cycle later;
    * read, ``window`` mode: as ``list``, over every entry of the window (oldest first;
      ``rd_count`` is valid from the second cycle after ``advance``), with the entry's step
      stamp on ``rd_stamp`` beside its data: its tap is ``tap_base - rd_stamp`` (mod
      2^stamp bits), computed by a reader that has registered the entry first (no
      subtraction behind the block RAM's output);
    * read, ``per_lane`` mode: ``rd_en`` with ``rd_word`` reads word w (each element from its
      own slot); ``rd_data`` one cycle later;
    * read outputs hold while ``rd_en`` is low; ``advance`` ends the step; ``ready`` is low
      while the memory is wiped after reset; ``clean`` (sparse lines) is high once the next
      step's slot has been zeroed.

    ``hold=False`` (``per_lane`` mode only) is for a reader that registers every word in the
    cycle after it asks for it: the memories then read every cycle (at ``rd_word``), and
    ``rd_data`` is the word asked for only in the cycle after ``rd_en``. No enable reaches
    the block RAMs, whose clock enables a reader's state machine otherwise drives, over the
    whole die on a wide line (Fmax).
    """

    def __init__(self, *, n: int, lanes: int, slots: int,
                 mode: Literal["list", "window", "per_lane"] = "list", value_bits: int = 1,
                 offsets: np.ndarray | int = 0, first: int = 0, sparse: bool = False,
                 taps: int = 1, hold: bool = True):
        if mode not in ("list", "window", "per_lane"):
            raise ValueError(f"mode must be 'list', 'window' or 'per_lane', got {mode!r}")
        if not hold and mode != "per_lane":
            raise ValueError(f"hold=False is for per_lane lines (a {mode} line's reads "
                             "move its read pointer)")
        self.hold = hold
        if slots < 1 or n < 1 or lanes < 1:
            raise ValueError(f"need n, lanes, slots >= 1, got n={n}, lanes={lanes}, "
                             f"slots={slots}")
        self.n, self.lanes, self.slots, self.mode = n, lanes, slots, mode
        self.value_bits, self.sparse = max(1, value_bits), sparse
        self.groups = -(-n // lanes)
        self.capacity = line_capacity(n, lanes, sparse=sparse)
        off = np.broadcast_to(np.asarray(offsets, dtype=np.int64), (n,))
        top = slots - line_slots(0, sparse=sparse, mode=mode)    # the largest offset
        if mode == "per_lane" and (off.min() < 0 or off.max() > top):
            raise ValueError(f"offsets must be in [0, {top}] for {slots} slots, got "
                             f"[{off.min()}, {off.max()}]")
        self.offsets = off
        if mode != "per_lane" and not 0 <= first < slots:
            raise ValueError(f"first must be in [0, {slots - 1}], got {first}")
        if mode == "window" and not (taps >= 1 and first + taps == slots):
            raise ValueError(f"a window of {taps} taps from offset {first} needs "
                             f"{first + taps} slots, got {slots}")
        self.first, self.taps = first, taps if mode == "window" else 1
        P, G = lanes, self.groups
        super().__init__({
            "wr_word": In(range(G)), "wr_data": In(P * self.value_bits), "wr_en": In(P),
            "rd_en": In(1), "rd_word": In(range(G)),
            "rd_count": Out(range(self.window_capacity + 1)),
            "rd_count_next": Out(range(self.window_capacity + 1)),
            "rd_count_m1": Out(range(self.window_capacity + 1)),
            "rd_empty_next": Out(1), "rd_stamp": Out(self.stamp_bits),
            "tap_base": Out(self.stamp_bits),
            "rd_word_out": Out(range(G)), "rd_data": Out(P * self.value_bits),
            "advance": In(1), "ready": Out(1), "clean": Out(1),
        })

    @property
    def stamp_bits(self) -> int:
        """Width of a ``window`` entry's step stamp (1 in the other modes, where it is 0)."""
        return max(1, (self.slots - 1).bit_length()) if self.mode == "window" else 1

    @property
    def window_capacity(self) -> int:
        """The most entries one read can see: a slot's, or a whole window's."""
        return self.capacity * self.taps

    @property
    def depth(self) -> int:
        """Entries of the memory (``list`` and ``window`` modes)."""
        return line_shapes(self.n, self.lanes, self.slots, self.mode, self.value_bits,
                           self.sparse, first=self.first)[0][0]

    def elaborate(self, platform):
        if self.mode == "list":
            return self._list()
        if self.mode == "window":
            return self._window()
        return self._per_lane()

    def _list(self):
        m = Module()
        P, G, R, vb, cap = self.lanes, self.groups, self.slots, self.value_bits, self.capacity
        gb = max(1, (G - 1).bit_length())
        RC = R * cap
        mem = memory.Memory(shape=gb + P * vb, depth=RC, init=[])
        m.submodules.mem = mem
        wr, rd = mem.write_port(), mem.read_port()
        cb = len(self.rd_count)
        counts = [Signal(cb, name=f"count{s}") for s in range(R)]
        cur = Signal(range(R), name="cur")             # slot of this step
        base = Signal(range(RC), name="base")          # cur * cap, moved by adds
        fill = Signal(cb, name="fill")                 # entries of the current slot
        nxt = Mux(cur == R - 1, 0, cur + 1)

        # Append a word with at least one non-zero enabled element.
        elems = [Mux(self.wr_en[k], self.wr_data[k * vb:(k + 1) * vb], 0) for k in range(P)]
        data = Cat(*elems)
        w_word = Signal(gb, name="w_word")
        m.d.comb += w_word.eq(self.wr_word)
        # The write address is a register of its own (base + fill), so that no adder sits
        # between the incoming word and the memory (Fmax).
        waddr = Signal(range(RC), name="waddr")
        m.d.comb += [wr.addr.eq(waddr), wr.data.eq(Cat(w_word, data)), wr.en.eq(data.any())]
        with m.If(data.any()):
            m.d.sync += [fill.eq(fill + 1), waddr.eq(waddr + 1)]
            for s_ in range(R):
                with m.If(cur == s_):
                    m.d.sync += counts[s_].eq(fill + 1)
        with m.If(self.advance):
            nbase = Mux(cur == R - 1, 0, base + cap)
            m.d.sync += [cur.eq(nxt), fill.eq(0), base.eq(nbase), waddr.eq(nbase)]
            for s_ in range(R):
                with m.If(nxt == s_):
                    m.d.sync += counts[s_].eq(0)

        # Read: the slot `first` steps back. Its base is a register moved at `advance`, and so
        # is the read address, stepped by each read (entries are read in order). The count is
        # registered too, so that no read path starts from the FSM (Fmax).
        h0 = (-self.first) % R
        home = Signal(range(R), init=h0, name="home")
        hbase = Signal(range(RC), init=h0 * cap, name="hbase")
        rptr = Signal(range(RC), init=h0 * cap, name="rptr")
        hbase_n = Mux(home == R - 1, 0, hbase + cap)
        with m.If(self.advance):
            m.d.sync += [home.eq(Mux(home == R - 1, 0, home + 1)), hbase.eq(hbase_n),
                         rptr.eq(hbase_n)]
        with m.Elif(self.rd_en):
            m.d.sync += rptr.eq(rptr + 1)
        count_q = Signal(cb, name="count_q")
        m.d.comb += [self.rd_count_next.eq(Cat(*counts).word_select(home, cb)),
                     self.rd_empty_next.eq(self.rd_count_next == 0)]
        self._count_m1(m)
        m.d.sync += count_q.eq(self.rd_count_next)
        m.d.comb += [self.rd_count.eq(count_q), rd.en.eq(self.rd_en), rd.addr.eq(rptr),
                     self.rd_word_out.eq(rd.data[:gb]), self.rd_data.eq(rd.data[gb:]),
                     self.ready.eq(1), self.clean.eq(1)]
        return m

    def _count_m1(self, m):
        """``rd_count_m1``: ``rd_count`` - 1 (mod its width), a register kept with it, so that
        a reader's "this is the last entry" is an equality with its read counter (Fmax)."""
        q = Signal.like(self.rd_count_m1, name="count_m1_q")
        m.d.sync += q.eq(self.rd_count_next - 1)
        m.d.comb += self.rd_count_m1.eq(q)

    def _window(self):
        m = Module()
        P, G, R, vb = self.lanes, self.groups, self.slots, self.value_bits
        gb = max(1, (G - 1).bit_length())
        DF = self.depth
        # Steps are stamped mod 2^sb >= R: an entry's age is (t - stamp) mod 2^sb, a narrow
        # subtraction without a wrap test.
        sb = self.stamp_bits
        mem = memory.Memory(shape=gb + P * vb + sb, depth=DF, init=[])
        m.submodules.mem = mem
        wr, rd = mem.write_port(), mem.read_port()

        def inc(ptr):       # the next FIFO position
            return Mux(ptr == DF - 1, 0, ptr + 1)

        def step(s):        # the next slot
            return Mux(s == R - 1, 0, s + 1)

        cur = Signal(range(R), name="cur")              # slot of this step
        stamp = Signal(sb, name="stamp")                # t mod 2^sb
        hstamp = Signal(sb, init=(-self.first) % (1 << sb), name="hstamp")  # (t - first)
        waddr = Signal(range(DF), name="waddr")         # where the next entry goes
        # sp[s]: the FIFO position of the first entry of the step in slot s.
        sp = [Signal(range(DF), name=f"start{s}") for s in range(R)]
        nxt = step(cur)

        elems = [Mux(self.wr_en[k], self.wr_data[k * vb:(k + 1) * vb], 0) for k in range(P)]
        data = Cat(*elems)
        w_word = Signal(gb, name="w_word")
        m.d.comb += w_word.eq(self.wr_word)
        m.d.comb += [wr.addr.eq(waddr), wr.data.eq(Cat(w_word, data, stamp)),
                     wr.en.eq(data.any())]
        # The position after waddr is a register kept with it: the next write position is
        # then one multiplexer behind the write's "any element", not an increment and a
        # wrap test (Fmax).
        waddr1 = Signal(range(DF), init=1 % DF, name="waddr1")
        wnext = Mux(data.any(), waddr1, waddr)
        with m.If(data.any()):
            m.d.sync += [waddr.eq(waddr1), waddr1.eq(inc(waddr1))]

        # The window of step t is steps t - R + 1 .. t - first: it starts at sp[slot(t + 1)]
        # (the oldest step shares its slot with the next one) and ends before the first entry
        # of step t - first + 1: sp of that slot, or the write position itself when that
        # step is t + 1 (first = 1) or still being written (first = 0). Both ends are
        # registers set at `advance`, from slot indices kept one step ahead.
        lo = Signal(range(DF), name="lo")
        hi = Signal(range(DF), name="hi")
        lo_i = Signal(range(R), init=2 % R, name="lo_next")           # slot(t + 2)
        hi_i = Signal(range(R), init=(2 - self.first) % R, name="hi_next")   # t + 2 - first
        all_sp = Cat(*sp)
        pb = len(sp[0])
        rptr = Signal(range(DF), name="rptr")
        with m.If(self.advance):
            new_lo = all_sp.word_select(lo_i, pb)
            m.d.sync += [cur.eq(nxt), stamp.eq(stamp + 1), hstamp.eq(hstamp + 1),
                         lo_i.eq(step(lo_i)), hi_i.eq(step(hi_i)),
                         lo.eq(new_lo), rptr.eq(new_lo)]
            for s_ in range(R):
                with m.If(nxt == s_):
                    m.d.sync += sp[s_].eq(wnext)
            if self.first == 1:
                m.d.sync += hi.eq(wnext)
            elif self.first >= 2:
                m.d.sync += hi.eq(all_sp.word_select(hi_i, pb))
        with m.Elif(self.rd_en):
            m.d.sync += rptr.eq(inc(rptr))
        end = waddr if self.first == 0 else hi
        count_q = Signal(range(self.window_capacity + 1), name="count_q")
        m.d.comb += self.rd_count_next.eq(Mux(end >= lo, end - lo, end + DF - lo))
        m.d.sync += count_q.eq(self.rd_count_next)
        self._count_m1(m)
        # Empty: both ends at one place (the count never reaches DF: see window_capacity);
        # an equality, not the count's subtraction (Fmax).
        m.d.comb += self.rd_empty_next.eq(end == lo)
        # The entry's tap is tap_base - rd_stamp (mod 2^sb), left to the reader.
        m.d.comb += [self.rd_stamp.eq(rd.data[gb + P * vb:]), self.tap_base.eq(hstamp)]
        m.d.comb += [self.rd_count.eq(count_q), rd.en.eq(self.rd_en), rd.addr.eq(rptr),
                     self.rd_word_out.eq(rd.data[:gb]), self.rd_data.eq(rd.data[gb:gb + P * vb]),
                     self.ready.eq(1), self.clean.eq(1)]
        return m

    def _per_lane(self):
        m = Module()
        P, G, vb = self.lanes, self.groups, self.value_bits
        # Slots rounded up to a power of two and the word index in the high address bits:
        # element k of word w at step t lives at w * R2 + (t mod R2), so a read address is
        # the word index beside a narrow subtraction (t - offset) mod R2 (Fmax), and no
        # address needs a multiplier or a wide modular add.
        sb = _slot_bits(self.slots)
        R2 = 1 << sb
        cur = Signal(sb, name="cur")                   # t mod R2
        with m.If(self.advance):
            m.d.sync += cur.eq(cur + 1)

        # Wipe after reset, then (sparse lines) zero the next slot in the background.
        wipe = Signal(range(R2 * G + 1), name="wipe")
        m.d.comb += self.ready.eq(wipe == R2 * G)
        zero = Signal(range(G + 1), name="zero")
        m.d.comb += self.clean.eq(zero == G if self.sparse else 1)
        w_addr = Signal(range(R2 * G), name="w_addr")
        w_en = Signal(P, name="w_en")
        w_data = Signal(P * vb, name="w_data")
        with m.If(~self.ready):
            m.d.comb += [w_addr.eq(wipe), w_en.eq(C(-1, P)), w_data.eq(0)]
            m.d.sync += wipe.eq(wipe + 1)
        with m.Elif(self.wr_en.any()):
            m.d.comb += [w_addr.eq(Cat(cur, self.wr_word)), w_en.eq(self.wr_en),
                         w_data.eq(self.wr_data)]
        if self.sparse:
            with m.Elif(zero != G):
                m.d.comb += [w_addr.eq(Cat((cur + 1)[:sb], zero)), w_en.eq(C(-1, P)),
                             w_data.eq(0)]
                m.d.sync += zero.eq(zero + 1)
            with m.If(self.advance):
                m.d.sync += zero.eq(0)

        # The offset of element k of every word, as constants.
        pad = list(self.offsets) + [0] * (G * P - self.n)
        for k in range(P):
            mem = memory.Memory(shape=vb, depth=R2 * G, init=[])
            m.submodules[f"mem{k}"] = mem
            wr, rd = mem.write_port(), mem.read_port()
            off = Signal(sb, name=f"off{k}")
            m.d.comb += off.eq(Cat(*[Const(int(pad[w * P + k]), sb) for w in range(G)])
                               .word_select(self.rd_word, sb))
            m.d.comb += [wr.addr.eq(w_addr), wr.data.eq(w_data[k * vb:(k + 1) * vb]),
                         wr.en.eq(w_en[k]), rd.en.eq(self.rd_en if self.hold else 1),
                         rd.addr.eq(Cat((cur - off)[:sb], self.rd_word)),
                         self.rd_data[k * vb:(k + 1) * vb].eq(rd.data)]
        m.d.comb += self.rd_word_out.eq(0)
        return m


def line_shapes(n: int, lanes: int, slots: int, mode: str, value_bits: int,
                sparse: bool, *, first: int = 1) -> list[tuple[int, int]]:
    """(depth, width) of each memory of a :class:`DelayLine` with these parameters."""
    G = -(-n // lanes)
    vb = max(1, value_bits)
    if mode == "per_lane":     # slots rounded up to a power of two
        return [((1 << _slot_bits(slots)) * G, vb)] * lanes
    cap = line_capacity(n, lanes, sparse=sparse)
    width = max(1, (G - 1).bit_length()) + lanes * vb
    if mode == "window":       # a FIFO of stamped entries
        return [(slots * cap + (first == 0), width + max(1, (slots - 1).bit_length()))]
    return [(slots * cap, width)]
