"""Each hardware unit against its reference function in sim/units.py, alone."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from model.ir import LIFLayer
from rtl.delay_line import DelayLine
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


@pytest.mark.parametrize("mode, delays", [("history", 0), ("arrival", 2),
                                          ("arrival", [0, 3, 1, 2, 3, 0])])
def test_delay_line_matches_reference(mode, delays):
    n, slots, vb = 6, 4, 3
    dut = DelayLine(n=n, slots=slots, mode=mode, value_bits=vb, delays=np.array(delays),
                    first=1)
    gold = DelayLineModel(mode, slots)
    rng = random.Random(5)
    d = np.broadcast_to(np.asarray(delays), (n,))

    async def bench(ctx):
        for step in range(40):
            # Push a random set of distinct neurons, one per cycle, with random gaps.
            for j in rng.sample(range(n), rng.randint(0, n)):
                value = rng.randint(1, (1 << vb) - 1)
                ctx.set(dut.push_valid, 1)
                ctx.set(dut.push_index, j)
                ctx.set(dut.push_value, value)
                gold.push(j, value, int(d[j]))
                await ctx.tick()
                ctx.set(dut.push_valid, 0)
                for _ in range(rng.randint(0, 2)):
                    await ctx.tick()
            while ctx.get(dut.pending):
                await ctx.tick()
            await ctx.tick()    # rd_count is registered: it trails the last push by a cycle
            offsets = range(1, slots) if mode == "history" else [0]
            for off in offsets:
                want = gold.read(off)
                assert ctx.get(dut.rd_count) == len(want), (step, off)
                got = []
                for e in range(len(want)):
                    ctx.set(dut.rd_entry, e)
                    await ctx.tick()
                    got.append((ctx.get(dut.rd_index), ctx.get(dut.rd_value)))
                assert got == want, (step, off)
                strobe = dut.clear if mode == "arrival" else dut.rd_next
                ctx.set(strobe, 1)
                await ctx.tick()
                ctx.set(strobe, 0)
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
