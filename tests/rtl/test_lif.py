"""rtl.lif: the LIF lane against sim.units.lif_update, corner values and random."""

import numpy as np
import pytest

from model.ir import LIFLayer
from rtl.lif import LIFUnit
from sim.units import lif_update
from tests.streams import run_testbenches


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

    run_testbenches(dut, bench, period=None)
