"""rtl.delay_line: the delay line in every mode against sim.units.DelayLineModel."""

import random

import numpy as np
import pytest

from rtl.delay_line import DelayLine, line_slots
from sim.units import DelayLineModel
from tests.streams import run_testbenches


@pytest.mark.parametrize("mode, sparse, lanes, offsets, first, hold", [
    ("list", False, 3, None, 1, True), ("list", True, 2, None, 0, True),
    ("list", False, 1, None, 3, True), ("window", False, 3, None, 1, True),
    ("window", True, 2, None, 0, True), ("window", False, 1, None, 2, True),
    ("window", False, 4, None, 0, True), ("window", True, 3, None, 3, True),
    ("per_lane", False, 3, [1, 3, 2, 1, 0, 3, 2], 0, True),
    ("per_lane", True, 2, [0, 3, 1, 2, 3, 0, 1], 0, True),
    ("per_lane", False, 3, [1, 3, 2, 1, 0, 3, 2], 0, False),
    ("per_lane", True, 2, [0, 3, 1, 2, 3, 0, 1], 0, False)])
def test_delay_line_matches_reference(mode, sparse, lanes, offsets, first, hold):
    """Random writes (whole words, or single elements when sparse) and reads: the offset
    ``first`` (list), every offset ``first .. top`` in one pass (window), or per element
    (with ``hold``, the word stays on ``rd_data`` while ``rd_en`` is low; without, it is
    there in the cycle after ``rd_en``, as the next word's address goes in)."""
    n, vb = 7, 3 if sparse else 1
    top = 3 if mode != "window" or first < 3 else 5
    slots = line_slots(top, sparse=sparse, mode=mode)
    taps = top - first + 1 if mode == "window" else 1
    dut = DelayLine(n=n, lanes=lanes, slots=slots, mode=mode, value_bits=vb,
                    offsets=np.array(offsets) if offsets else 0, first=first, sparse=sparse,
                    taps=taps, hold=hold)
    gold = DelayLineModel(n, slots)
    rng = random.Random(5)
    groups = -(-n // lanes)

    def unpack(word, data, into):
        for k in range(lanes):
            j = word * lanes + k
            e = (data >> (k * vb)) & ((1 << vb) - 1)
            if e:
                assert j < n and into[j] == 0, (j, into)
                into[j] = e

    async def bench(ctx):
        while not ctx.get(dut.ready):
            await ctx.tick()
        for step in range(30):
            if sparse:      # one element per cycle, distinct indices, random gaps
                for j in rng.sample(range(n), rng.randint(0, n)):
                    value = rng.randint(1, (1 << vb) - 1)
                    gold.write(j, value)
                    ctx.set(dut.wr_word, j // lanes)
                    ctx.set(dut.wr_data, value << (j % lanes * vb))
                    ctx.set(dut.wr_en, 1 << (j % lanes))
                    await ctx.tick()
                    ctx.set(dut.wr_en, 0)
                    for _ in range(rng.randint(0, 2)):
                        await ctx.tick()
            else:           # every word once, zeros included
                for w in range(groups):
                    bits = [int(rng.random() < 0.3) if w * lanes + k < n else 0
                            for k in range(lanes)]
                    for k, b in enumerate(bits):
                        if b:
                            gold.write(w * lanes + k, 1)
                    ctx.set(dut.wr_word, w)
                    ctx.set(dut.wr_data, sum(b << k for k, b in enumerate(bits)))
                    ctx.set(dut.wr_en, (1 << lanes) - 1)
                    await ctx.tick()
                ctx.set(dut.wr_en, 0)
            if mode != "per_lane":
                await ctx.tick()                # rd_count is registered
                await ctx.tick()
                count = ctx.get(dut.rd_count)
                # The reader's shortcuts: emptiness without the count, the count - 1 kept
                # as a register, the tap from the raw stamp (its tap is checked by where the
                # entry lands).
                assert ctx.get(dut.rd_empty_next) == (ctx.get(dut.rd_count_next) == 0), step
                width = len(dut.rd_count_m1)
                assert ctx.get(dut.rd_count_m1) == (count - 1) % (1 << width), step
                got = np.zeros((taps, n), np.int64)
                for e in range(count):
                    ctx.set(dut.rd_en, 1)
                    await ctx.tick()
                    ctx.set(dut.rd_en, 0)
                    sb = len(dut.rd_stamp)
                    k = (ctx.get(dut.tap_base) - ctx.get(dut.rd_stamp)) % (1 << sb)
                    assert 0 <= k < taps, (step, k)
                    unpack(ctx.get(dut.rd_word_out), ctx.get(dut.rd_data), got[k])
                for k in range(taps):
                    want = gold.values(first + k)
                    assert (got[k] == want).all(), (step, first + k, got[k], want)
            elif hold:
                got = np.zeros(n, np.int64)
                for w in range(groups):
                    ctx.set(dut.rd_word, w)
                    ctx.set(dut.rd_en, 1)
                    await ctx.tick()
                    ctx.set(dut.rd_en, 0)
                    await ctx.tick()            # the word holds while rd_en is low
                    unpack(w, ctx.get(dut.rd_data), got)
                want = gold.values(offsets)
                assert (got == want).all(), (step, got, want)
            else:
                # Back to back, as a conv loader reads: word w arrives while w + 1's
                # address goes in.
                got = np.zeros(n, np.int64)
                ctx.set(dut.rd_en, 1)
                for w in range(groups):
                    ctx.set(dut.rd_word, w)
                    await ctx.tick()
                    unpack(w, ctx.get(dut.rd_data), got)
                ctx.set(dut.rd_en, 0)
                want = gold.values(offsets)
                assert (got == want).all(), (step, got, want)
            while not ctx.get(dut.clean):
                await ctx.tick()
            ctx.set(dut.advance, 1)
            await ctx.tick()
            ctx.set(dut.advance, 0)
            gold.advance()

    run_testbenches(dut, bench)


def test_only_per_lane_lines_read_without_hold():
    with pytest.raises(ValueError, match="hold=False is for per_lane lines"):
        DelayLine(n=4, lanes=2, slots=3, mode="list", hold=False)
