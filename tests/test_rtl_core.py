"""The network core in Amaranth's simulator against the integer reference, step by step."""

import numpy as np
import pytest

from model.ir import InputLayer, LIFLayer, Network, Projection
from rtl.core import UnsupportedNetwork, cycles_per_step
from rtl.pysim import run_core
from sim.randnet import random_network, random_stimulus
from sim.reference import simulate

STEPS = 100


def _compare(net, run, trace):
    """Fail on the first divergence, reported as (t, layer, neuron, field, expected, got)."""
    for t in range(trace.v[1].shape[0]):
        for i in range(net.layers[1].n):
            for field, exp, got in (("spike", trace.spikes[1], run.spikes),
                                    ("v", trace.v[1], run.v)):
                assert exp[t, i] == got[t, i], \
                    f"first mismatch: t={t} layer=1 neuron={i} {field}: expected " \
                    f"{exp[t, i]}, got {got[t, i]}"


def _forced_raster(net, forced):
    return forced.get(1) if net.layers[1].forced else None


@pytest.mark.parametrize("seed", range(50))
def test_random_wm_networks_bit_exact(seed):
    """50 random working-memory-shaped networks x 100 steps, with idle cycles and stalls."""
    net = random_network(seed, profile="wm")
    _, forced = random_stimulus(net, STEPS, seed)
    trace = simulate(net, None, forced, steps=STEPS)
    run = run_core(net, STEPS, _forced_raster(net, forced), idle=0.2, stall=0.2, seed=seed)
    _compare(net, run, trace)


def _wm_net(n=5, d=3, d0=1, w=None, **lif):
    rng = np.random.default_rng(0)
    w = rng.integers(-4, 12, (n, n, d)) if w is None else w
    kw = dict(v_bits=10, acc_bits=10, beta=3, beta_shift=2, threshold=16, forced=True,
              name="pop") | lif
    return Network(layers=[InputLayer(n=0), LIFLayer(n=n, **kw)],
                   projections=[Projection("taps", 1, 1, 6, w, np.array(d0))],
                   max_delay=d0 + d - 1)


def test_cycles_follow_the_event_driven_model():
    """Cycles per step = 3*D + E + n*(E + 3) (2n when E = 0), E = active (neuron, tap) pairs."""
    net = _wm_net(n=6, d=3, d0=2)
    rng = np.random.default_rng(4)
    forced = (rng.random((40, 6)) < 0.15).astype(np.uint8)
    trace = simulate(net, None, {1: forced}, steps=40)
    run = run_core(net, 40, forced)
    _compare(net, run, trace)
    emitted = trace.spikes[1] | forced
    for t in range(40):
        pairs = sum(int(emitted[t - 2 - k].sum()) for k in range(3) if t - 2 - k >= 0)
        assert run.cycles[t] == cycles_per_step(net, pairs), f"step {t}, E={pairs}"
    # Silent history costs 2 cycles per neuron, not n*n*D.
    assert cycles_per_step(net, 0) == 3 * 3 + 2 * 6


@pytest.mark.parametrize("fault", ["delay+1", "threshold>"])
def test_planted_fault_is_caught(fault):
    net = _wm_net()
    rng = np.random.default_rng(1)
    forced = (rng.random((40, 5)) < 0.2).astype(np.uint8)
    trace = simulate(net, None, {1: forced}, steps=40)
    run = run_core(net, 40, forced, fault=fault)
    with pytest.raises(AssertionError, match="first mismatch"):
        _compare(net, run, trace)


def test_reset_clears_state_between_runs():
    """Saturating, subtractive, leak-free and zero-leak corners in one go."""
    for lif in (dict(reset="subtract"), dict(beta=0), dict(beta=4), dict(v_bits=6, acc_bits=10,
                                                                          threshold=20)):
        net = _wm_net(**lif)
        rng = np.random.default_rng(2)
        forced = (rng.random((30, 5)) < 0.2).astype(np.uint8)
        _compare(net, run_core(net, 30, forced, stall=0.5, seed=1),
                 simulate(net, None, {1: forced}, steps=30))


def test_unsupported_network_is_refused_with_reason():
    net = Network(layers=[InputLayer(n=3), LIFLayer(n=4, v_bits=8, acc_bits=8, beta=1,
                                                    beta_shift=1, threshold=5, name="a")],
                  projections=[Projection("dense", 0, 1, 4, np.ones((4, 3), int), np.array(0))],
                  max_delay=0)
    with pytest.raises(UnsupportedNetwork, match="one recurrent taps"):
        cycles_per_step(net, 0)
