"""sim.units: the per-unit reference functions agree with the network reference."""

import numpy as np

from model.ir import LIFLayer
from sim.units import lif_update


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
