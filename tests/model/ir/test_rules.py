"""The design rules (model/ir/rules.py) on in-memory networks, and the worst-case current."""

from __future__ import annotations


import numpy as np
import pytest

from model import ir
from model.ir import (RULES, InputLayer, IRError, Network, Projection, check,
                      current_bounds)
from .helpers import VARIANTS, example_net, lif, small


# --------------------------------------------------------------------------------------------
# Design rules on in-memory networks

def _net(layers=None, projections=None, max_delay=4):
    layers = layers if layers is not None else [InputLayer(3), lif(4)]
    projections = projections if projections is not None else [
        Projection("dense", 0, 1, 8, np.ones((4, 3), int), 0)]
    return Network(layers, projections, max_delay)


W = np.ones((4, 3), int)
RULE_CASES = {
    "structure": [
        lambda: _net(layers=[lif(3, name="a"), lif(4)], projections=[]),
        lambda: _net(layers=[InputLayer(3), InputLayer(4, name="x")], projections=[]),
        lambda: _net(layers=[InputLayer(3)], projections=[]),
        lambda: _net(layers=[], projections=[]),
        lambda: _net(layers=[InputLayer(3), lif(4, name="input")]),
        lambda: _net(layers=[InputLayer(3), "not a layer"], projections=[]),
    ],
    "sizes": [
        lambda: _net(layers=[InputLayer(3, in_bits=0), lif(4)]),
        lambda: _net(layers=[InputLayer(3, in_bits=17), lif(4)]),
        lambda: _net(layers=[InputLayer(-1), lif(4)], projections=[]),
        lambda: _net(layers=[InputLayer(3), lif(0)], projections=[]),
        lambda: _net(layers=[InputLayer(3), lif((1 << 16) + 1)], projections=[]),
        lambda: _net(layers=[InputLayer(3), lif(4, v_bits=1)]),
        lambda: _net(layers=[InputLayer(3), lif(4, acc_bits=49)]),
        lambda: _net(layers=[InputLayer(3), lif(4, bias=[1, 2])]),
    ],
    "leak": [
        lambda: _net(layers=[InputLayer(3), lif(4, beta=5, beta_shift=2)]),
        lambda: _net(layers=[InputLayer(3), lif(4, beta=-1)]),
        lambda: _net(layers=[InputLayer(3), lif(4, beta=0, beta_shift=25)]),
        lambda: _net(layers=[InputLayer(3), lif(4, v_bits=40, acc_bits=40, beta=1,
                                                beta_shift=24)]),
    ],
    "threshold": [
        lambda: _net(layers=[InputLayer(3), lif(4, threshold=0)]),
        lambda: _net(layers=[InputLayer(3), lif(4, threshold=-3)]),
        lambda: _net(layers=[InputLayer(3), lif(4, v_bits=8, threshold=128)]),
        lambda: _net(layers=[InputLayer(3), lif(4, threshold=None, forced=True)]),
    ],
    "projection-shape": [
        lambda: _net(projections=[Projection("dense", 0, 2, 8, W, 0)]),
        lambda: _net(projections=[Projection("dense", 1, 0, 8, W, 0)]),
        lambda: _net(layers=[InputLayer(3), lif(3), lif(3, name="o")],
                     projections=[Projection("dense", 0, 2, 8, np.ones((3, 3), int), 0)]),
        lambda: _net(layers=[InputLayer(3), lif(4, threshold=None)],
                     projections=[Projection("dense", 1, 1, 8, np.ones((4, 4), int), 1)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 0, W, 0)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 49, W, 0)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 8, W.T, 0)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 8, W, [0, 0])]),
        lambda: _net(projections=[Projection("taps", 0, 1, 8, np.ones((4, 3, 0), int), 0)]),
        lambda: _net(projections=[Projection("taps", 0, 1, 8, np.ones((3, 3, 2), int), 0)]),
        lambda: _net(projections=[Projection("conv", 0, 1, 8, [1, 1, 1], 0)]),  # 3 -> 4
        lambda: _net(projections=[W_DENSE, Projection("conv", 1, 1, 8, [1, 1], 1)]),
        lambda: _net(projections=[W_DENSE, Projection("conv", 1, 1, 8, [], 1)]),
        lambda: _net(projections=[W_DENSE, Projection("conv", 1, 1, 8, [1, 1, 1], [1] * 3)]),
    ],
    "weight-range": [
        lambda: _net(projections=[Projection("dense", 0, 1, 2, W * 2, 0)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 2, W * -3, 0)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 1, W, 0)]),  # 1 bit: -1 and 0
        lambda: _net(projections=[W_DENSE, Projection("conv", 1, 1, 3, [4, 0, 0], 1)]),
        lambda: _net(projections=[Projection("taps", 0, 1, 4, np.full((4, 3, 2), -9), 0)]),
    ],
    "delay-range": [
        lambda: _net(max_delay=-1, projections=[]),
        lambda: _net(max_delay=4097, projections=[]),
        lambda: _net(projections=[Projection("dense", 0, 1, 8, W, -1)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 8, W, [0, 5, 0])]),
        lambda: _net(projections=[W_DENSE, Projection("dense", 1, 1, 8, np.ones((4, 4), int),
                                                      [1, 0, 1, 1])]),
        lambda: _net(projections=[W_DENSE, Projection("conv", 1, 1, 8, [1, 1, 1], 0)]),
        lambda: _net(projections=[W_DENSE, Projection("taps", 1, 1, 8, np.ones((4, 4, 3), int),
                                                      0)]),
        lambda: _net(max_delay=3, projections=[Projection("taps", 0, 1, 8,
                                                          np.ones((4, 3, 3), int), 2)]),
    ],
    "accumulator": [
        lambda: _net(layers=[InputLayer(3), lif(4, acc_bits=4)],
                     projections=[Projection("dense", 0, 1, 8, W * 3, 0)]),  # hi = 9 > 7
        lambda: _net(layers=[InputLayer(3), lif(4, acc_bits=4, bias=[-9, 0, 0, 0])],
                     projections=[]),
        lambda: _net(layers=[InputLayer(3, in_bits=4), lif(4, acc_bits=8)],
                     projections=[Projection("dense", 0, 1, 8, W * 3, 0)]),  # 3*3*15 = 135
    ],
}
W_DENSE = Projection("dense", 0, 1, 8, W, 0)


def test_every_rule_has_cases():
    names = {r.__name__.removeprefix("rule_").replace("_", "-") for r in RULES}
    assert names == set(RULE_CASES)


@pytest.mark.parametrize("rule,i", [(r, i) for r, cs in RULE_CASES.items()
                                    for i in range(len(cs))])
def test_rule_violation_refused(rule, i):
    with pytest.raises(IRError) as info:
        RULE_CASES[rule][i]()
    e = info.value
    assert e.rule == rule, str(e)
    assert e.where and e.where in str(e) and e.file is None


def test_check_direct_and_with_file():
    net = small("conv")
    assert check(net) is None
    assert all(list(rule(net)) == [] for rule in RULES)
    # break a checked net behind check's back, then call check() itself
    object.__setattr__(net.layers[1], "threshold", 1 << 20)
    with pytest.raises(IRError) as e:
        check(net, file="x.npz")
    assert (e.value.rule, e.value.where, e.value.file) == ("threshold", "hidden.threshold",
                                                           "x.npz")
    assert str(e.value).startswith("x.npz: threshold [hidden.threshold]: ")
    assert list(ir.rules.rule_threshold(net)) and not list(ir.rules.rule_leak(net))


def test_rule_boundaries_accepted():
    # exact fits are fine: weights at both ends of w_bits, threshold at v_max, beta = 2**shift
    _net(layers=[InputLayer(3), lif(4, v_bits=8, threshold=127, beta=4, beta_shift=2)],
         projections=[Projection("dense", 0, 1, 2, [[1, -2, 0]] * 4, 0)])
    _net(layers=[InputLayer(3), lif(4, v_bits=48, acc_bits=48, beta_shift=15)])
    _net(max_delay=4096, projections=[Projection("dense", 0, 1, 8, W, [0, 4096, 7])])
    _net(max_delay=3, projections=[Projection("taps", 0, 1, 8, np.ones((4, 3, 3), int), 1)])
    # accumulator exactly full: hi = 7 = 2**3 - 1, lo = -8
    _net(layers=[InputLayer(3), lif(4, acc_bits=4, bias=[1, 0, 0, -8])],
         projections=[Projection("dense", 0, 1, 8, [[2, 2, 2], [0] * 3, [0] * 3, [0] * 3], 0)])
    with pytest.raises(IRError, match="accumulator"):
        _net(layers=[InputLayer(3), lif(4, acc_bits=4, bias=[2, 0, 0, 0])],
             projections=[Projection("dense", 0, 1, 8, [[2, 2, 2], [0] * 3, [0] * 3,
                                                        [0] * 3], 0)])


def test_construction_errors():
    cases = [
        (lambda: InputLayer(3.0), "integer-field", "input.n"),
        (lambda: InputLayer(True), "integer-field", "input.n"),
        (lambda: InputLayer(3, name=""), "field-type", "input layer name"),
        (lambda: lif(4, v_bits="16"), "integer-field", "hidden.v_bits"),
        (lambda: lif(4, threshold=1.5), "integer-field", "hidden.threshold"),
        (lambda: lif(4, reset="soft"), "reset-mode", "hidden.reset"),
        (lambda: lif(4, forced=1), "integer-field", "hidden.forced"),
        (lambda: lif(4, bias=[0.5] * 4), "integer-dtype", "hidden.bias"),
        (lambda: lif(4, bias=[[0] * 4]), "shape", "hidden.bias"),
        (lambda: lif(4, name=3), "field-type", "LIF layer name"),
        (lambda: Projection("sparse", 0, 1, 8, W, 0), "projection-kind", "projection 0->1"),
        (lambda: Projection("dense", 0, 1, 8, W.astype(float), 0), "integer-dtype",
         "projection 0->1.weight"),
        (lambda: Projection("dense", 0, 1, 8, W, np.array([2**63], np.uint64)),
         "integer-range", "projection 0->1.delay"),
        (lambda: Projection("taps", 0, 1, 8, W, 0), "shape", "projection 0->1.weight"),
        (lambda: Projection("dense", 0, 1, 8, W, [[0]]), "shape", "projection 0->1.delay"),
        (lambda: Projection("dense", 0, 1, 8, [[2**70]], 0), "integer-dtype",
         "projection 0->1.weight"),
        (lambda: Network([InputLayer(3), lif(4)], [], 1.0), "integer-field",
         "network.max_delay"),
        (lambda: Network([InputLayer(3), lif(4)], [], 1, name=""), "field-type",
         "network.name"),
    ]
    for build, rule, where in cases:
        with pytest.raises(IRError) as e:
            build()
        assert (e.value.rule, e.value.where) == (rule, where), str(e.value)


# --------------------------------------------------------------------------------------------
# Worst-case current

def _brute_bounds(net, dst):
    """current_bounds by enumerating every synapse, straight from the contract."""
    post = net.layers[dst]
    lo, hi = [int(b) for b in post.bias], [int(b) for b in post.bias]
    for p in net.into(dst):
        pre = net.layers[p.src]
        xmax = pre.max_value if isinstance(pre, InputLayer) else 1
        for i in range(post.n):
            if p.kind == "conv":
                k = len(p.weight)
                ws = [p.weight[t] for t in range(k) if 0 <= i + t - (k - 1) // 2 < pre.n]
            else:
                ws = list(np.asarray(p.weight[i]).ravel())
            for w in map(int, ws):
                (hi if w > 0 else lo)[i] += xmax * w
    return lo, hi


def test_current_bounds_hand_computed():
    net = Network(
        [InputLayer(3, in_bits=2), lif(4, bias=[1, -2, 0, 5])],
        [Projection("dense", 0, 1, 8, [[1, -2, 3], [0, 0, 0], [-4, 5, -6], [7, 7, -7]], 0),
         Projection("conv", 1, 1, 8, [2, -1, 3], 1)], max_delay=1)
    # x in [0, 3]. dense rows, times 3: (+12, -6), (0, 0), (+15, -30), (+42, -21).
    # conv post i hears i-1 (w=2), i (w=-1), i+1 (w=3): neuron 0 has no i-1, neuron 3 no i+1.
    lo, hi = current_bounds(net, 1)
    assert lo.tolist() == [1 - 6 - 1, -2 - 0 - 1, 0 - 30 - 1, 5 - 21 - 1]
    assert hi.tolist() == [1 + 12 + 3, -2 + 0 + 5, 0 + 15 + 5, 5 + 42 + 2]
    assert lo.dtype == hi.dtype == np.int64


def test_current_bounds_conv_kernel_longer_than_layer():
    net = Network([InputLayer(2), lif(2)],
                  [Projection("conv", 0, 1, 8, [1, 2, 4, 8, 16, 32, 64], 0)], max_delay=0)
    # post 0 hears pre 0 (k=3) and 1 (k=4); post 1 hears pre 0 (k=2) and 1 (k=3)
    lo, hi = current_bounds(net, 1)
    assert hi.tolist() == [8 + 16, 4 + 8] and lo.tolist() == [0, 0]


def test_current_bounds_taps_and_several_layers():
    net = example_net()
    assert [x.tolist() for x in current_bounds(net, 1)] == [[-5, -2, -4], [4, 8, 5]]
    assert [x.tolist() for x in current_bounds(net, 2)] == [[-1, -1], [2, 2]]
    net = Network([InputLayer(2, in_bits=3), lif(2)],
                  [Projection("taps", 0, 1, 8, [[[1, -2], [3, 0]], [[-1, -1], [0, 4]]], 0)],
                  max_delay=1)
    assert [x.tolist() for x in current_bounds(net, 1)] == [[-14, -14], [28, 28]]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_current_bounds_match_brute_force(name):
    net = VARIANTS[name]
    for dst in range(1, len(net.layers)):
        lo, hi = current_bounds(net, dst)
        assert (lo.tolist(), hi.tolist()) == _brute_bounds(net, dst)


def test_current_bounds_cannot_wrap():
    """Sums beyond int64 are computed exactly and saturate at +-2**62, so the rule still fires."""
    big = (1 << 47) - 1
    with pytest.raises(IRError) as e:
        Network([InputLayer(40000, in_bits=16), lif(1, v_bits=48, acc_bits=48)],
                [Projection("dense", 0, 1, 48, np.full((1, 40000), big), 0)], max_delay=0)
    assert e.value.rule == "accumulator"
    # partial sums that int64 might not hold (scale >= 2**62) but a true bound that fits
    w = np.zeros((1, 40000), np.int64)
    w[0, :2] = [1 << 31, -(1 << 31)]
    net = Network([InputLayer(40000, in_bits=16), lif(1, v_bits=48, acc_bits=48)],
                  [Projection("dense", 0, 1, 33, w, 0)], max_delay=0)
    lo, hi = current_bounds(net, 1)
    assert (lo.tolist(), hi.tolist()) == ([-(1 << 31) * 65535], [(1 << 31) * 65535])
    assert lo.dtype == hi.dtype == np.int64
