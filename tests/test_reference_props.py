"""Property tests: the fast simulator equals the literal one everywhere; inputs are validated."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from model.ir import InputLayer, LIFLayer, Network, Projection
from sim.literal import simulate_literal
from sim.randnet import random_network, random_stimulus
from model.ir import Mismatch, Trace
from sim.reference import simulate

SIMULATORS = [simulate, simulate_literal]


def assert_identical(fast: Trace, slow: Trace, net: Network):
    lif = range(1, len(net.layers))
    assert sorted(fast.v) == sorted(slow.v) == list(lif)
    assert sorted(fast.spikes) == sorted(slow.spikes) == [l for l in lif if net.layers[l].spiking]
    for l in fast.v:
        assert fast.v[l].dtype == slow.v[l].dtype == np.int64
        np.testing.assert_array_equal(fast.v[l], slow.v[l], err_msg=f"v of layer {l}")
    for l in fast.spikes:
        assert fast.spikes[l].dtype == slow.spikes[l].dtype == np.uint8
        np.testing.assert_array_equal(fast.spikes[l], slow.spikes[l], err_msg=f"s of layer {l}")
    assert fast.prediction == slow.prediction
    assert fast.first_mismatch(slow) is None


def check_profile(profile, seed, steps, stim_seed, rate):
    net = random_network(seed, profile=profile)
    x, forced = random_stimulus(net, steps, stim_seed, rate=rate)
    fast = simulate(net, x, forced)
    assert_identical(fast, simulate_literal(net, x, forced), net)
    for l, v in fast.v.items():
        layer = net.layers[l]
        assert v.shape == (steps, layer.n)
        assert layer.v_min <= v.min(initial=0) and v.max(initial=0) <= layer.v_max
    if not net.layers[-1].spiking:
        assert fast.prediction is not None


rates = st.one_of(st.none(), st.floats(0.0, 1.0))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**31), steps=st.integers(0, 40), stim_seed=st.integers(0, 2**31),
       rate=rates)
def test_fast_equals_literal_full(seed, steps, stim_seed, rate):
    check_profile("full", seed, steps, stim_seed, rate)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**31), steps=st.integers(0, 40), stim_seed=st.integers(0, 2**31),
       rate=rates)
def test_fast_equals_literal_wm(seed, steps, stim_seed, rate):
    check_profile("wm", seed, steps, stim_seed, rate)


def test_trace_arrays_are_read_only_and_inputs_untouched():
    net = random_network(3)
    x, forced = random_stimulus(net, 20, 1)
    x0, f0 = x.copy(), {l: f.copy() for l, f in forced.items()}
    tr = simulate(net, x, forced)
    np.testing.assert_array_equal(x, x0)
    for l in forced:
        np.testing.assert_array_equal(forced[l], f0[l])
    with pytest.raises(ValueError):
        tr.v[1][0, 0] = 1


# --------------------------------------------------------------------------------------------
# Input validation.

def small_net():
    """Input of 2 channels (in_bits 2), forced layer 1 (n=3), plain layer 2 (n=2)."""
    l1 = LIFLayer(n=3, v_bits=8, acc_bits=8, beta=1, beta_shift=0, threshold=4, forced=True,
                  name="a")
    l2 = LIFLayer(n=2, v_bits=8, acc_bits=8, beta=1, beta_shift=0, threshold=4, name="b")
    return Network([InputLayer(2, in_bits=2), l1, l2],
                   [Projection("dense", 0, 1, 4, np.ones((3, 2), int), 0),
                    Projection("dense", 1, 2, 4, np.ones((2, 3), int), 0)], max_delay=0)


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("kwargs, match", [
    (dict(x=np.zeros((4, 3), int)), r"x must have shape \(T, n0=2\)"),
    (dict(x=np.zeros(4, int)), r"x must have shape"),
    (dict(x=np.full((4, 2), 4)), r"x values must be in \[0, 2\*\*in_bits - 1 = 3\]"),
    (dict(x=np.full((4, 2), -1)), r"x values must be in"),
    (dict(x=np.zeros((4, 2))), r"x must hold integers"),
    (dict(x=None), r"steps is required when x is None"),
    (dict(x=np.zeros((4, 2), int), steps=5), r"x has 4 steps but steps=5"),
    (dict(x=None, steps=-1), r"steps must be >= 0"),
    (dict(x=None, steps=2.0), r"steps must be an integer"),
    (dict(x=np.zeros((4, 2), int), forced={2: np.zeros((4, 2), int)}),
     r"forced\[2\]: layer 2 does not take a forced raster"),
    (dict(x=np.zeros((4, 2), int), forced={1: np.zeros((4, 2), int)}),
     r"forced\[1\] must have shape \(T=4, n=3\)"),
    (dict(x=np.zeros((4, 2), int), forced={1: np.full((4, 3), 2)}), r"forced\[1\] must hold 0/1"),
    (dict(x=np.zeros((4, 2), int), forced={"1": np.zeros((4, 3), int)}),
     r"forced keys must be layer indices"),
    (dict(x=np.zeros((4, 2), int), forced=[np.zeros((4, 3), int)]), r"forced must be a dict"),
])
def test_invalid_inputs(sim, kwargs, match):
    kwargs = dict(kwargs)
    with pytest.raises(ValueError, match=match):
        sim(small_net(), kwargs.pop("x"), **kwargs)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_valid_input_forms(sim):
    net = small_net()
    # Lists, bools, a missing forced layer (zeros) and x=None with steps all work.
    a = sim(net, [[3, 3], [0, 1]], {1: [[True, False, False], [False, False, False]]})
    b = sim(net, np.array([[3, 3], [0, 1]], np.uint8), {1: np.array([[1, 0, 0], [0, 0, 0]])})
    assert a == b
    assert sim(net, None, steps=3) == sim(net, np.zeros((3, 2), int), {})
    assert sim(net, None, steps=0).v[1].shape == (0, 3)


def test_net_must_be_a_network():
    with pytest.raises(ValueError, match="net must be a model.ir.Network"):
        simulate("net", steps=1)


# --------------------------------------------------------------------------------------------
# Mismatch reporting.

def trace(s1, v1, v2, prediction=None):
    return Trace(spikes={1: np.array(s1, np.uint8)},
                 v={1: np.array(v1, np.int64), 2: np.array(v2, np.int64)}, prediction=prediction)


def test_first_mismatch_order_t_layer_neuron_field():
    base = trace([[0, 0], [0, 0]], [[0, 0], [0, 0]], [[0], [0]])
    assert base.first_mismatch(base) is None
    # Later step loses to earlier step, even in a lower layer.
    other = trace([[0, 0], [0, 1]], [[0, 0], [0, 0]], [[5], [0]])
    assert other.first_mismatch(base) == Mismatch(0, 2, 0, "v", 5, 0)
    # Same step: layer 1 before layer 2; neuron 0 before 1; spike before v of one neuron.
    other = trace([[0, 1], [0, 0]], [[0, 7], [0, 0]], [[5], [0]])
    assert base.first_mismatch(other) == Mismatch(0, 1, 1, "spike", 0, 1)
    other = trace([[0, 0], [0, 0]], [[0, 7], [0, 0]], [[0], [0]])
    m = base.first_mismatch(other)
    assert m == Mismatch(0, 1, 1, "v", 0, 7)
    assert str(m) == "t=0 layer=1 neuron=1 v: expected 0, got 7"
    assert base != other and base == trace([[0, 0], [0, 0]], [[0, 0], [0, 0]], [[0], [0]])


def test_first_mismatch_prediction_and_shapes():
    a = trace([[0]], [[0]], [[1]], prediction=0)
    b = trace([[0]], [[0]], [[1]], prediction=None)
    m = a.first_mismatch(b)
    assert (m.field, m.expected, m.got, m.t, m.layer) == ("prediction", 0, -1, 1, 2)
    assert str(m) == "prediction: expected 0, got -1"
    with pytest.raises(ValueError, match="shapes differ"):
        a.first_mismatch(trace([[0], [0]], [[0], [0]], [[1], [1]]))
    with pytest.raises(ValueError, match="different layers"):
        a.first_mismatch(Trace(spikes={}, v={1: np.zeros((1, 1), np.int64)}, prediction=None))
