"""rtl.link.readout: the read-out unit's argmax against sim.units.prediction."""

import numpy as np
import pytest

from model.ir import LIFLayer
from tests.streams import run_testbenches


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
    from rtl.link.readout import Readout
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

    run_testbenches(dut, tb, period=1e-8)
    assert got == [(1, prediction(v)) for v in samples]


def test_readout_needs_a_readout_layer():
    from rtl.link.readout import Readout
    with pytest.raises(ValueError, match="not a read-out"):
        Readout(_readout_net(3), layer=1)
