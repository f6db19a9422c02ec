"""The stack core's per-step floor: silence costs the slowest update; input bits add."""

from math import ceil

import numpy as np


def test_floor_of_silence_is_the_slowest_update_and_input_bits_raise_it(shaped):
    from bench.stack_floor import floor
    from rtl.stack_plan import stage_timing
    net = shaped.shd_network("conv", n_in=40, n=128, classes=10, k=5, w_bits=4)
    steps = 6
    quiet = [(np.zeros((steps, 40), np.int64), None, steps)]
    lanes = 16
    gap = stage_timing(2, lanes)[1]
    want = max(max(ceil(l.n / lanes), gap if l is net.layers[2] else stage_timing(0, lanes)[1])
               + 1 for l in net.layers[1:])
    assert floor(net, quiet, lanes, {}) == want
    loud = np.zeros((steps, 40), np.int64)
    loud[0, :] = 15                       # 4 set bits on 40 channels: 160 cycles at step 0
    got = floor(net, [(loud, None, steps)], lanes, {})
    assert got >= (160 + (steps - 1) * want) / steps
