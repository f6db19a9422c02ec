"""The fixtures of the IR tests."""

import numpy as np
import pytest

from model.ir import InputLayer, Network, Projection, save

from .helpers import lif, read_raw


@pytest.fixture
def saved(tmp_path):
    """A saved 'conv' variant plus a readout layer: (path, header, arrays)."""
    net = Network(
        [InputLayer(3, in_bits=2), lif(4, forced=True),
         lif(2, threshold=None, name="out")],
        [Projection("dense", 0, 1, 6, [[1, -2, 3], [0, 0, 0], [-4, 5, -6], [7, 7, -7]],
                    [0, 1, 2]),
         Projection("conv", 1, 1, 6, [2, -1, 3], [1, 2, 3, 1]),
         Projection("taps", 1, 2, 6, np.arange(24).reshape(2, 4, 3) - 12, 1)],
        max_delay=4)
    path = save(net, tmp_path / "net.npz")
    header, arrays = read_raw(path)
    return path, header, arrays
