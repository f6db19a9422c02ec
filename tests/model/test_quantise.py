"""model.quantise: the working-memory quantiser and signed widths."""

import numpy as np
import pytest

from model import ir
from model.ir import signed_bits
from model.quantise import quantise_wm
from model.wm.network import (least_squares_init, make_targets)


# ---------------------------------------------------------------------------- quantiser

def _wm_weights(seed=0):
    x = make_targets(2, 16, 40, 0.08, seed=seed)
    return least_squares_init(x, 6)


def test_quantise_wm_network(tmp_path):
    w = _wm_weights()
    net = quantise_wm(w, w_bits=8)
    ir.check(net)
    (lif,), (proj,) = net.layers[1:], net.projections
    assert isinstance(net.layers[0], ir.InputLayer) and net.layers[0].n == 0
    assert lif.forced and lif.n == 16 and lif.reset == "zero"
    assert (lif.beta, lif.beta_shift) == (205, 8)
    assert proj.kind == "taps" and proj.recurrent and int(proj.delay) == 1
    assert net.max_delay == 6 == proj.max_delay
    assert int(np.abs(proj.weight).max()) == 127 and proj.w_bits == 8
    scale = net.meta["scale"]
    assert scale == pytest.approx(127 / np.abs(w).max())
    assert lif.threshold == round(scale) >= 1
    np.testing.assert_array_equal(proj.weight, np.rint(scale * w))
    # acc_bits is the least width that passes the accumulator rule.
    lo, hi = ir.current_bounds(net, 1)
    assert lif.acc_bits == signed_bits(min(lo.min(), 0), max(hi.max(), 0))
    with pytest.raises(ir.IRError, match="accumulator"):
        ir.Network(layers=(net.layers[0], _with(lif, acc_bits=lif.acc_bits - 1)),
                   projections=net.projections, max_delay=net.max_delay)
    path = ir.save(net, tmp_path / "wm.npz")
    back = ir.load(path)
    assert back == net and back.meta == net.meta


def _with(layer, **changes):
    fields = {f: getattr(layer, f) for f in ("n", "v_bits", "acc_bits", "beta", "beta_shift",
                                             "threshold", "reset", "bias", "forced", "name")}
    return ir.LIFLayer(**{**fields, **changes})


def test_quantise_wm_options_and_errors():
    w = _wm_weights(1)
    net = quantise_wm(w, w_bits=6, reset="subtract", v_bits=20, beta=3, beta_shift=2)
    lif = net.layers[1]
    assert int(np.abs(net.projections[0].weight).max()) == 31
    assert (lif.v_bits, lif.reset, lif.beta, lif.beta_shift) == (20, "subtract", 3, 2)
    with pytest.raises(ValueError, match="all zeros"):
        quantise_wm(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="threshold rounds to 0"):
        quantise_wm(np.full((2, 2, 1), 100.0), w_bits=2)
    with pytest.raises(ValueError, match="shape"):
        quantise_wm(np.ones((2, 3, 1)))


def test_signed_bits():
    assert [signed_bits(0, 0), signed_bits(-2, 1), signed_bits(-3, 1), signed_bits(0, 2),
            signed_bits(-128, 127), signed_bits(-129, 0)] == [2, 2, 3, 3, 8, 9]
