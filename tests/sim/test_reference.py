"""sim.reference: known answers worked out by hand, and properties (the fast simulator equals
the literal one everywhere; inputs are validated).

Every known-answer test runs both ``simulate`` (fast) and ``simulate_literal`` (slow) and checks
each against the hand-computed integers. Tables in the comments read: t | I | u | v_hat | s | v.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from model.ir import InputLayer, LIFLayer, Mismatch, Network, Projection, Trace
from sim.literal import simulate_literal
from sim.randnet import random_network, random_stimulus
from sim.reference import simulate


def lif(n, *, threshold, bias=0, beta=1, beta_shift=0, reset="zero", v_bits=16, acc_bits=16,
        forced=False, name="lif1"):
    return LIFLayer(n=n, v_bits=v_bits, acc_bits=acc_bits, beta=beta, beta_shift=beta_shift,
                    threshold=threshold, reset=reset, bias=np.broadcast_to(bias, (n,)),
                    forced=forced, name=name)


def dense(src, dst, w, delay=0, w_bits=8):
    return Projection(kind="dense", src=src, dst=dst, w_bits=w_bits, weight=w, delay=delay)


def run(net, x=None, forced=None, steps=None):
    """Both simulators; they must agree with each other before the test checks the numbers."""
    fast = simulate(net, x, forced, steps=steps)
    slow = simulate_literal(net, x, forced, steps=steps)
    assert fast.first_mismatch(slow) is None, str(fast.first_mismatch(slow))
    assert slow.first_mismatch(fast) is None
    assert fast.prediction == slow.prediction
    return fast, slow


def col(*xs):
    """A (T, 1) input or raster from a sequence."""
    return np.array(xs, np.int64).reshape(-1, 1)


def test_threshold_equality_spikes():
    # Neuron 0 (w=4) and neuron 1 (w=7), no leak (beta=1, shift 0), threshold 8, zero reset.
    # Neuron 0 reaches v_hat == 8 exactly and spikes; neuron 1 sits at 7 = threshold-1 first.
    #   t x | n0: I u v_hat s v | n1: I u  v_hat s v
    #   0 1 |     4 0  4    0 4 |     7 0   7    0 7
    #   1 1 |     4 4  8    1 0 |     7 7  14    1 0
    #   2 1 |     4 0  4    0 4 |     7 0   7    0 7
    #   3 0 |     0 4  4    0 4 |     0 7   7    0 7
    #   4 1 |     4 4  8    1 0 |     7 7  14    1 0
    net = Network([InputLayer(1), lif(2, threshold=8)], [dense(0, 1, [[4], [7]])], max_delay=0)
    for tr in run(net, col(1, 1, 1, 0, 1)):
        assert tr.spikes[1].tolist() == [[0, 0], [1, 1], [0, 0], [0, 0], [1, 1]]
        assert tr.v[1].tolist() == [[4, 7], [0, 0], [4, 7], [4, 7], [0, 0]]
        assert tr.prediction is None


def test_saturation_both_ends_readout():
    # v_bits = 4: v in [-8, 7]. No leak, read-out (v = v_hat). Weights +5 and -5.
    #   t x | n0: I  u v_hat      | n1: I  u  v_hat
    #   0 1 |     5  0  5         |    -5  0  -5
    #   1 1 |     5  5 10 -> 7    |    -5 -5 -10 -> -8
    #   2 1 |     5  7 12 -> 7    |    -5 -8 -13 -> -8
    #   3 0 |     0  7  7         |     0 -8  -8
    # sums 26 and -29: prediction 0.
    net = Network([InputLayer(1), lif(2, threshold=None, v_bits=4, acc_bits=4)],
                  [dense(0, 1, [[5], [-5]], w_bits=4)], max_delay=0)
    for tr in run(net, col(1, 1, 1, 0)):
        assert tr.v[1].tolist() == [[5, -5], [7, -8], [7, -8], [7, -8]]
        assert tr.spikes == {}
        assert tr.prediction == 0


def test_saturation_happens_before_subtract_reset():
    # v_bits = 4 (v_max 7), threshold 6, subtract reset, input weight 12.
    #   t x | I  u v_hat    s v
    #   0 1 | 12 0 12 -> 7  1 1      (unsaturated it would be 12 - 6 = 6)
    #   1 0 |  0 1  1       0 1
    #   2 1 | 12 1 13 -> 7  1 1
    net = Network([InputLayer(1), lif(1, threshold=6, v_bits=4, acc_bits=6, reset="subtract")],
                  [dense(0, 1, [[12]], w_bits=5)], max_delay=0)
    for tr in run(net, col(1, 0, 1)):
        assert tr.spikes[1].ravel().tolist() == [1, 0, 1]
        assert tr.v[1].ravel().tolist() == [1, 1, 1]


@pytest.mark.parametrize("d, expected", [(0, [1, 0, 0, 0, 0]), (1, [0, 1, 0, 0, 0]),
                                         (3, [0, 0, 0, 1, 0])])
def test_feed_forward_delay(d, expected):
    # input --(w=1, d=0)--> lif1 (threshold 1, beta 0) --(w=1, d)--> read-out (beta 0).
    # lif1 spikes at t=0, the same step as the input (delay 0). The read-out has no memory,
    # so v2(t) = s1(t - d): the spike shows up exactly d steps later; d = 3 = max_delay.
    net = Network([InputLayer(1), lif(1, threshold=1, beta=0),
                   lif(1, threshold=None, beta=0, name="out")],
                  [dense(0, 1, [[1]]), dense(1, 2, [[1]], delay=d)], max_delay=3)
    for tr in run(net, col(1, 0, 0, 0, 0)):
        assert tr.spikes[1].ravel().tolist() == [1, 0, 0, 0, 0]
        assert tr.v[2].ravel().tolist() == expected


@pytest.mark.parametrize("d, expected", [(1, [1, 1, 1, 1, 1, 1, 1]),
                                         (3, [1, 0, 0, 1, 0, 0, 1])])
def test_recurrent_delay(d, expected):
    # beta 0, threshold 2; I(t) = 2 x(t) + 2 s(t - d). A kick at t=0 then echoes every d steps:
    # d=1 fires every step, d=3 (= max_delay) fires at t = 0, 3, 6.
    net = Network([InputLayer(1), lif(1, threshold=2, beta=0)],
                  [dense(0, 1, [[2]]), dense(1, 1, [[2]], delay=d)], max_delay=3)
    for tr in run(net, col(1, 0, 0, 0, 0, 0, 0)):
        assert tr.spikes[1].ravel().tolist() == expected
        assert tr.v[1].ravel().tolist() == [0] * 7    # zero reset after every v_hat = 2


@pytest.mark.parametrize("reset, s, v", [
    # bias 3, threshold 5, no leak.
    # zero:     t: 0 1 2 3 4 5 | v_hat 3 6 3 6 3 6 | s 0 1 0 1 0 1 | v 3 0 3 0 3 0
    ("zero", [0, 1, 0, 1, 0, 1], [3, 0, 3, 0, 3, 0]),
    # subtract: v_hat 3 6 4 7 5 3 | s 0 1 0 1 1 0 | v 3 1 4 2 0 3
    ("subtract", [0, 1, 0, 1, 1, 0], [3, 1, 4, 2, 0, 3]),
])
def test_reset_modes(reset, s, v):
    net = Network([InputLayer(0), lif(1, threshold=5, bias=3, reset=reset)], [], max_delay=0)
    for tr in run(net, steps=6):
        assert tr.spikes[1].ravel().tolist() == s
        assert tr.v[1].ravel().tolist() == v


def test_forced_spikes_feed_delay_lines_but_do_not_reset():
    # lif1: forced, bias 3, threshold 10, no leak, zero reset, recurrent w=2 at delay 1.
    # out: read-out, beta 0, hears lif1 with w=1 at delay 0, so v_out(t) = e1(t).
    #   t f | I            u v_hat s v  | e = s OR f | v_out
    #   0 1 | 3            0  3    0 3  | 1          | 1     forced: no reset, v stays 3
    #   1 0 | 3 + 2*e(0)=5 3  8    0 8  | 0          | 0
    #   2 1 | 3            8 11    1 0  | 1 (not 2)  | 1     own spike and forced together
    #   3 0 | 3 + 2*e(2)=5 0  5    0 5  | 0          | 0
    #   4 0 | 3            5  8    0 8  | 0          | 0
    net = Network([InputLayer(0), lif(1, threshold=10, bias=3, forced=True),
                   lif(1, threshold=None, beta=0, name="out")],
                  [dense(1, 1, [[2]], delay=1), dense(1, 2, [[1]])], max_delay=1)
    for tr in run(net, forced={1: col(1, 0, 1, 0, 0)}, steps=5):
        assert tr.spikes[1].ravel().tolist() == [0, 0, 1, 0, 0]   # own spikes only
        assert tr.v[1].ravel().tolist() == [3, 8, 0, 5, 8]
        assert tr.v[2].ravel().tolist() == [1, 0, 1, 0, 0]
        assert tr.prediction == 0


def test_leak_floors_towards_minus_infinity():
    # beta/2**beta_shift = 3/4, read-out, one kick of -5 (neuron 0) and +5 (neuron 1) at t=0.
    #   t | n0: u = (3 v) >> 2           v  | n1: u            v
    #   0 |     0                       -5  |     0            5
    #   1 |     -15 >> 2 = -4 (-3.75)   -4  |     15 >> 2 = 3  3
    #   2 |     -12 >> 2 = -3           -3  |      9 >> 2 = 2  2
    #   3 |      -9 >> 2 = -3 (-2.25)   -3  |      6 >> 2 = 1  1
    #   4 |      -9 >> 2 = -3           -3  |      3 >> 2 = 0  0
    # Floor makes -3 a fixed point while the positive side decays to 0. Sums -18, 11: pred 1.
    net = Network([InputLayer(1), lif(2, threshold=None, beta=3, beta_shift=2)],
                  [dense(0, 1, [[-5], [5]])], max_delay=0)
    for tr in run(net, col(1, 0, 0, 0, 0)):
        assert tr.v[1].tolist() == [[-5, 5], [-4, 3], [-3, 2], [-3, 1], [-3, 0]]
        assert tr.prediction == 1


def test_multibit_input():
    # in_bits 3 (x in 0..7), weights (2, -3), read-out with beta 0: v = I = 2 x0 - 3 x1.
    #   x = (7,0) -> 14;  (3,5) -> 6 - 15 = -9;  (0,7) -> -21;  (7,7) -> 14 - 21 = -7
    net = Network([InputLayer(2, in_bits=3), lif(1, threshold=None, beta=0)],
                  [dense(0, 1, [[2, -3]])], max_delay=0)
    for tr in run(net, [[7, 0], [3, 5], [0, 7], [7, 7]]):
        assert tr.v[1].ravel().tolist() == [14, -9, -21, -7]


def conv_net(n, w, delay=0, w_bits=8):
    return Network([InputLayer(n), lif(n, threshold=None, beta=0)],
                   [Projection(kind="conv", src=0, dst=1, w_bits=w_bits, weight=w, delay=delay)],
                   max_delay=1)


def test_conv_zero_padding_at_both_edges():
    # K = 3, w = (1, 2, 4): post i hears pre i-1 with 1, pre i with 2, pre i+1 with 4.
    #   x = 1000 -> post0 gets 2 (itself), post1 gets 1 (its left neighbour): 2 1 0 0
    #   x = 0001 -> post3 gets 2, post2 gets 4 (its right neighbour):          0 0 4 2
    #   x = 1111 -> post0 misses its left (padding): 2+4 = 6; middle 7; post3: 1+2 = 3
    for tr in run(conv_net(4, [1, 2, 4]), [[1, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1]]):
        assert tr.v[1].tolist() == [[2, 1, 0, 0], [0, 0, 4, 2], [6, 7, 7, 3]]


def test_conv_uses_the_presynaptic_delay():
    # Delays (0, 1, 0, 0): pre1's spike at t=0 arrives at t=1.
    #   t=0: pre0 only -> 2 1 0 0
    #   t=1: pre1 -> post0 via w[2]=4, post1 via w[1]=2, post2 via w[0]=1 -> 4 2 1 0
    for tr in run(conv_net(4, [1, 2, 4], delay=[0, 1, 0, 0]), [[1, 1, 0, 0], [0, 0, 0, 0]]):
        assert tr.v[1].tolist() == [[2, 1, 0, 0], [4, 2, 1, 0]]


def test_conv_kernel_wider_than_layer():
    # K = 5 over n = 2, w = (1, 2, 4, 8, 16), centre 2: post i hears pre j = i + k - 2.
    #   post0: k=2 (pre0) 4, k=3 (pre1) 8;  post1: k=1 (pre0) 2, k=2 (pre1) 4
    for tr in run(conv_net(2, [1, 2, 4, 8, 16], w_bits=6), [[1, 0], [0, 1], [1, 1]]):
        assert tr.v[1].tolist() == [[4, 2], [8, 4], [12, 6]]


def test_taps_delay_d0_plus_k():
    # taps w = (1, 10, 100) with d0 = 1: tap k hears the input d0 + k steps ago.
    #   x = 1 1 0 0 0 0 -> v(t) = x(t-1) + 10 x(t-2) + 100 x(t-3) = 0 1 11 110 100 0
    net = Network([InputLayer(1), lif(1, threshold=None, beta=0)],
                  [Projection(kind="taps", src=0, dst=1, w_bits=8, weight=[[[1, 10, 100]]],
                              delay=1)], max_delay=3)
    for tr in run(net, col(1, 1, 0, 0, 0, 0)):
        assert tr.v[1].ravel().tolist() == [0, 1, 11, 110, 100, 0]


def test_dense_per_presynaptic_delay():
    # w = (1, 10), delays (2, 0); both channels fire at t=0: 10 arrives at once, 1 at t=2.
    net = Network([InputLayer(2), lif(1, threshold=None, beta=0)],
                  [dense(0, 1, [[1, 10]], delay=[2, 0])], max_delay=2)
    for tr in run(net, [[1, 1], [0, 0], [0, 0]]):
        assert tr.v[1].ravel().tolist() == [10, 0, 1]


@pytest.mark.parametrize("bias, expected", [([2, 5, 5], 1), ([5, 5, 5], 0), ([1, 2, 9], 2)])
def test_prediction_lowest_index_wins_ties(bias, expected):
    # beta 0 read-out: v(t) = bias every step, so the sums tie exactly where the biases do.
    net = Network([InputLayer(0), lif(3, threshold=None, beta=0, bias=bias)], [], max_delay=0)
    for tr in run(net, steps=4):
        assert tr.v[1].tolist() == [bias] * 4
        assert tr.prediction == expected


def test_wide_arithmetic_is_exact():
    # The widest leak the IR allows: v_bits + beta_shift = 39 + 24 = 63, beta = 2**24 - 1, so
    # beta * v needs 62 bits. With bias b = +-2**37 (no input):
    #   t=0: v = b
    #   t=1: u = floor((2**24 - 1) b / 2**24) = b - b / 2**24 (exact: b is a multiple of 2**24)
    #        v = 2 b - b / 2**24                 (= +-(2**38 - 2**13), still inside 39 bits)
    #   t=2: u + b is beyond +-2**38: saturates to 2**38 - 1 or -2**38
    def expected(b, steps=4):
        v, out = 0, []
        for _ in range(steps):
            v = min(max((((1 << 24) - 1) * v >> 24) + b, -(1 << 38)), (1 << 38) - 1)
            out.append(v)
        return out

    b = 1 << 37
    assert expected(b)[:3] == [b, 2 * b - (1 << 13), (1 << 38) - 1]
    assert expected(-b)[:3] == [-b, -2 * b + (1 << 13), -(1 << 38)]
    net = Network([InputLayer(0),
                   lif(2, threshold=None, beta=(1 << 24) - 1, beta_shift=24, bias=[b, -b],
                       v_bits=39, acc_bits=39)], [], max_delay=0)
    for tr in run(net, steps=4):
        assert tr.v[1][:, 0].tolist() == expected(b)
        assert tr.v[1][:, 1].tolist() == expected(-b)
        assert tr.prediction == 0


# --------------------------------------------------------------------------------------------
# Properties: the fast simulator equals the literal one; inputs are validated.

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
