"""Each hardware unit against its reference function in sim/units.py, alone."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from model.ir import LIFLayer
from rtl.delay_line import DelayLine, line_slots
from rtl.lif import LIFUnit
from sim.units import DelayLineModel, lif_update


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("beta, shift, spiking", [(3, 2, True), (0, 3, True), (8, 3, True),
                                                  (205, 8, True), (5, 3, False)])
def test_lif_unit_matches_reference(reset, beta, shift, spiking):
    layer = LIFLayer(n=1, v_bits=8, acc_bits=9, beta=beta, beta_shift=shift,
                     threshold=40 if spiking else None, reset=reset, name="x")
    dut = LIFUnit(layer, i_width=11)
    rng = np.random.default_rng(beta * 7 + shift)
    vs = np.concatenate([[-128, 127, 0, -1, 39, 40, 41], rng.integers(-128, 128, 200)])
    ins = np.concatenate([[-1024, 1023, 0, 0, 1, 0, -1], rng.integers(-1024, 1024, 200)])
    want_v, want_s = lif_update(layer, vs, ins)

    async def bench(ctx):
        for v, i_in, ev, es in zip(vs, ins, want_v, want_s):
            ctx.set(dut.v, int(v))
            ctx.set(dut.i_in, int(i_in))
            assert (ctx.get(dut.v_new), ctx.get(dut.spike)) == (int(ev), int(es)), (v, i_in)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("mode, sparse, lanes, offsets, first", [
    ("list", False, 3, None, 1), ("list", True, 2, None, 0), ("list", False, 1, None, 3),
    ("window", False, 3, None, 1), ("window", True, 2, None, 0), ("window", False, 1, None, 2),
    ("window", False, 4, None, 0), ("window", True, 3, None, 3),
    ("per_lane", False, 3, [1, 3, 2, 1, 0, 3, 2], 0),
    ("per_lane", True, 2, [0, 3, 1, 2, 3, 0, 1], 0)])
def test_delay_line_matches_reference(mode, sparse, lanes, offsets, first):
    """Random writes (whole words, or single elements when sparse) and reads: the offset
    ``first`` (list), every offset ``first .. top`` in one pass (window), or per element."""
    n, vb = 7, 3 if sparse else 1
    top = 3 if mode != "window" or first < 3 else 5
    slots = line_slots(top, sparse=sparse, mode=mode)
    taps = top - first + 1 if mode == "window" else 1
    dut = DelayLine(n=n, lanes=lanes, slots=slots, mode=mode, value_bits=vb,
                    offsets=np.array(offsets) if offsets else 0, first=first, sparse=sparse,
                    taps=taps)
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
                got = np.zeros((taps, n), np.int64)
                for e in range(ctx.get(dut.rd_count)):
                    ctx.set(dut.rd_en, 1)
                    await ctx.tick()
                    ctx.set(dut.rd_en, 0)
                    k = ctx.get(dut.rd_tap)
                    assert 0 <= k < taps, (step, k)
                    unpack(ctx.get(dut.rd_word_out), ctx.get(dut.rd_data), got[k])
                for k in range(taps):
                    want = gold.values(first + k)
                    assert (got[k] == want).all(), (step, first + k, got[k], want)
            else:
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
            while not ctx.get(dut.clean):
                await ctx.tick()
            ctx.set(dut.advance, 1)
            await ctx.tick()
            ctx.set(dut.advance, 0)
            gold.advance()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_lif_reference_agrees_with_the_network_reference():
    """sim.units.lif_update is the same update the reference simulator applies."""
    from model.ir import InputLayer, Network
    from sim.reference import simulate
    for reset in ("zero", "subtract"):
        layer = LIFLayer(n=4, v_bits=7, acc_bits=8, beta=13, beta_shift=4, threshold=50,
                         reset=reset, bias=np.array([-100, 7, 30, 127]), name="x")
        trace = simulate(Network(layers=[InputLayer(n=0), layer], projections=[], max_delay=0),
                         steps=20)
        v = np.zeros(4, np.int64)
        for t in range(20):
            v, s = lif_update(layer, v, layer.bias)
            assert (v == trace.v[1][t]).all() and (s == trace.spikes[1][t]).all()


def _readout_net(n_out: int, v_bits: int = 8):
    from model.ir import InputLayer, Network, Projection
    layers = [InputLayer(n=3, in_bits=1),
              LIFLayer(n=4, v_bits=v_bits, acc_bits=v_bits, beta=1, beta_shift=1,
                       threshold=5, name="h"),
              LIFLayer(n=n_out, v_bits=v_bits, acc_bits=v_bits, beta=1, beta_shift=1,
                       threshold=None, name="out")]
    projs = [Projection("dense", 0, 1, 2, np.ones((4, 3), np.int64), np.array(0)),
             Projection("dense", 1, 2, 2, np.ones((n_out, 4), np.int64), np.array(0))]
    return Network(layers=layers, projections=projs, max_delay=1)


@pytest.mark.parametrize("n_out, lanes, steps, seed", [(1, 1, 3, 0), (5, 2, 17, 1),
                                                      (20, 4, 40, 2), (7, 3, 9, 3),
                                                      (6, 8, 25, 4)])
def test_readout_matches_reference(n_out, lanes, steps, seed):
    """Random membranes (ties included) through the read-out unit, two samples back to back
    with idle cycles and records of other layers between: its prediction is
    ``prediction(v)`` of each sample, and ``clear`` separates the samples."""
    from rtl.readout import Readout
    from sim.units import prediction
    net = _readout_net(n_out)
    dut = Readout(net, lanes=lanes, max_steps=64)
    rng = np.random.default_rng(seed)
    samples = [rng.integers(-128, 128, (steps, n_out)) for _ in range(2)]
    samples[1][:, n_out // 2] = samples[1][:, 0]          # a tie: the first index must win
    got = []
    groups = -(-n_out // lanes)

    async def tb(ctx):
        for s, v in enumerate(samples):
            for t in range(steps):
                for g in range(groups):
                    for layer in (1, 2):          # layer 1 records must be ignored
                        vals = [int(v[t, g * lanes + k]) if layer == 2 and g * lanes + k < n_out
                                else int(rng.integers(-100, 100)) for k in range(lanes)]
                        ctx.set(dut.rec, {"layer": layer, "index": g * lanes, "spike": 0,
                                          "v": vals, "last": 0})
                        ctx.set(dut.fire, 1)
                        ctx.set(dut.last_step, int(t == steps - 1))
                        # the next sample starts with the first record of its first step
                        ctx.set(dut.clear, int(s > 0 and t == 0 and g == 0 and layer == 1))
                        await ctx.tick()
                        ctx.set(dut.clear, 0)
                        ctx.set(dut.fire, 0)
                        if rng.random() < 0.3:
                            await ctx.tick()
            for _ in range(dut.latency):          # the unit's registered stages
                await ctx.tick()
            got.append((ctx.get(dut.valid), ctx.get(dut.prediction)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == [(1, prediction(v)) for v in samples]


def test_readout_needs_a_readout_layer():
    from rtl.readout import Readout
    with pytest.raises(ValueError, match="not a read-out"):
        Readout(_readout_net(3), layer=1)
