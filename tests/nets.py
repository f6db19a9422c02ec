"""Small hand-built networks and forced rasters that several test files share."""

import numpy as np

from model.ir import InputLayer, LIFLayer, Network, Projection


def tiny_net(*, forced=True, seed=2, name="net") -> Network:
    """8 recurrent LIF neurons, 3 taps from delay 1: mixed activity under a cue."""
    w = np.random.default_rng(seed).integers(-10, 14, (8, 8, 3))
    return Network(
        layers=[InputLayer(n=0),
                LIFLayer(n=8, v_bits=10, acc_bits=10, beta=3, beta_shift=2, threshold=30,
                         forced=forced, name="pop")],
        projections=[Projection("taps", 1, 1, 6, w, np.array(1))], max_delay=3, name=name)


def raster(schedule, steps: int, n: int) -> np.ndarray:
    """The forced raster of ``schedule`` replayed for ``steps`` steps."""
    f = np.zeros((steps, n), np.uint8)
    for t in range(steps):
        f[t, list(schedule[t % len(schedule)])] = 1
    return f
