"""The IR's records and error type (model/ir/layers.py, model/ir/network.py): properties and API."""

from __future__ import annotations

import pickle

import numpy as np

from model.ir import IRError, digest

from .helpers import VARIANTS


# --------------------------------------------------------------------------------------------
# Small API

def test_properties():
    net = VARIANTS["conv"]
    dense, conv = net.projections[0], net.projections[1]
    assert not dense.recurrent and conv.recurrent and conv.n_taps == 1
    assert dense.delays_of_pre(5).tolist() == dense.delay.tolist()
    assert (dense.min_delay, dense.max_delay) == (int(dense.delay.min()), int(dense.delay.max()))
    taps = VARIANTS["taps"].projections[0]
    assert taps.n_taps == 6 and (taps.min_delay, taps.max_delay) == (1, 6)
    assert taps.delays_of_pre(8).tolist() == [1] * 8
    empty = VARIANTS["forced-empty-input"]
    assert empty.projections[0].max_delay == 0 and empty.forced_layers == [1]
    assert net.input is net.layers[0] and net.input.max_value == 15
    assert net.into(1) == [net.projections[0], net.projections[1]]
    assert net.into(2) == [net.projections[2], net.projections[3]]
    assert net.forced_layers == []
    ro = VARIANTS["readout"].layers[2]
    assert not ro.spiking and net.layers[1].spiking
    assert (ro.v_min, ro.v_max) == (-(1 << 23), (1 << 23) - 1)
    for a in (dense.weight, dense.delay, net.layers[1].bias):
        assert a.dtype == np.int64 and not a.flags.writeable
    assert net.digest == digest(net) and net.digest.startswith("sha256:")


def test_irerror_api():
    e = IRError("too big", rule="weight-range", where="projection 0->1.weight")
    assert (e.message, e.rule, e.where, e.file) == ("too big", "weight-range",
                                                     "projection 0->1.weight", None)
    assert str(e) == "weight-range [projection 0->1.weight]: too big"
    f = e.in_file("a.npz")
    assert f.file == "a.npz" and str(f) == "a.npz: weight-range [projection 0->1.weight]: too big"
    g = pickle.loads(pickle.dumps(f))
    assert (g.message, g.rule, g.where, g.file, str(g)) == (f.message, f.rule, f.where, f.file,
                                                            str(f))
    assert str(IRError("m")) == "format: m"
