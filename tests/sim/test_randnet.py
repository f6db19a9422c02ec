"""sim.randnet: random networks cover the contract, repeat per seed and stay lively."""

import collections
from dataclasses import replace

import numpy as np
import pytest

from model.ir import Network, current_bounds
from sim.randnet import random_network, random_stimulus
from sim.reference import simulate

FULL = range(200)


WM = range(150)


def _signed_bits(lo, hi):
    b = 2
    while lo < -(1 << (b - 1)) or hi > (1 << (b - 1)) - 1:
        b += 1
    return b


@pytest.mark.parametrize("profile", ["full", "wm"])
def test_deterministic(profile):
    first = [random_network(s, profile=profile).digest for s in range(5)]
    random_network.cache_clear()
    assert [random_network(s, profile=profile).digest for s in range(5)] == first
    assert len(set(first)) == 5
    net = random_network(0, profile=profile)
    x1, f1 = random_stimulus(net, 30, 7)
    x2, f2 = random_stimulus(net, 30, 7)
    np.testing.assert_array_equal(x1, x2)
    assert f1.keys() == f2.keys() and all(np.array_equal(f1[l], f2[l]) for l in f1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="profile"):
        random_network(0, profile="tiny")
    with pytest.raises(ValueError, match="rate"):
        random_stimulus(random_network(0), 5, 0, rate=1.5)


def test_stimulus_shapes_and_ranges():
    for s in range(30):
        net = random_network(s)
        x, forced = random_stimulus(net, 40, s, rate=0.5)
        assert x.shape == (40, net.input.n)
        assert x.min(initial=0) >= 0 and x.max(initial=0) <= net.input.max_value
        assert sorted(forced) == net.forced_layers
        for l, f in forced.items():
            assert f.shape == (40, net.layers[l].n) and set(np.unique(f)) <= {0, 1}
            assert not f[20:].any()          # the cue covers the first half only


def test_full_profile_covers_the_contract():
    seen = collections.Counter()
    for s in FULL:
        net = random_network(s)
        inp = net.input
        assert 0 <= inp.n <= 6 and 1 <= inp.in_bits <= 4
        assert 2 <= len(net.layers) <= 4
        for p in net.projections:
            assert 1 <= p.w_bits <= 10
            seen[p.kind] += 1
            seen["recurrent" if p.recurrent else "feed-forward"] += 1
            seen[f"{p.kind} delay {'scalar' if p.delay.ndim == 0 else 'per-pre'}"] += 1
            seen[f"K={p.weight.shape[0]}"] += p.kind == "conv"
            seen["ff delay 0"] += not p.recurrent and p.min_delay == 0
            seen["delay = max"] += p.max_delay == net.max_delay
            assert p.min_delay >= (1 if p.recurrent else 0)
        for l, layer in enumerate(net.layers[1:], 1):
            assert 3 <= layer.v_bits <= 20 and 0 <= layer.beta_shift <= 8
            assert layer.spiking or l == len(net.layers) - 1      # read-out only last
            seen[f"reset {layer.reset}"] += 1
            seen["forced"] += layer.forced
            seen["read-out"] += not layer.spiking
            seen["beta 0"] += layer.beta == 0
            seen["no leak, shift > 0"] += layer.beta == 1 << layer.beta_shift > 1
            seen["bias < 0"] += (layer.bias < 0).any()
            lo, hi = current_bounds(net, l)
            need = _signed_bits(int(lo.min()), int(hi.max()))
            assert layer.acc_bits >= need
            seen["acc_bits tight"] += layer.acc_bits == need
        seen["1 layer"] += len(net.layers) == 2
        seen["3 layers"] += len(net.layers) == 4
        seen["no input"] += inp.n == 0
    for key in ["dense", "taps", "conv", "recurrent", "feed-forward", "dense delay scalar",
                "dense delay per-pre", "conv delay per-pre", "K=1", "K=3", "K=5", "ff delay 0",
                "delay = max", "reset zero", "reset subtract", "forced", "read-out", "beta 0",
                "no leak, shift > 0", "bias < 0", "acc_bits tight", "1 layer", "3 layers",
                "no input"]:
        assert seen[key] >= 3, (key, seen)


def test_wm_profile_structure():
    for s in WM:
        net = random_network(s, profile="wm")
        inp, layer = net.layers
        assert inp.n == 0 and layer.spiking and 1 <= layer.n <= 12 and 4 <= layer.v_bits <= 16
        (p,) = net.projections
        assert p.kind == "taps" and p.recurrent and p.delay.ndim == 0
        assert 1 <= p.n_taps <= 6 and 1 <= int(p.delay) <= 4 and 2 <= p.w_bits <= 8
        assert net.max_delay >= int(p.delay) + p.n_taps - 1
    assert any(random_network(s, profile="wm").layers[1].forced for s in WM)
    assert not all(random_network(s, profile="wm").layers[1].forced for s in WM)
    assert any(random_network(s, profile="wm").max_delay > random_network(s, profile="wm")
               .projections[0].max_delay for s in WM)


def widened(net: Network) -> Network:
    return Network([net.layers[0], *(replace(l, v_bits=32, acc_bits=32) for l in net.layers[1:])],
                   net.projections, net.max_delay)


def test_saturation_happens():
    # Some networks have membranes too narrow for their currents: widening them changes the run.
    changed = 0
    for s in range(60):
        net = random_network(s)
        x, forced = random_stimulus(net, 48, s)
        changed += simulate(net, x, forced) != simulate(widened(net), x, forced)
    assert changed >= 5


@pytest.mark.parametrize("profile, seeds", [("full", FULL), ("wm", WM)])
def test_activity_is_moderate(profile, seeds):
    good = total = 0
    for s in seeds:
        net = random_network(s, profile=profile)
        x, forced = random_stimulus(net, 64, s)
        tr = simulate(net, x, forced)
        if not tr.spikes:
            continue
        rate = np.mean([a.mean() for a in tr.spikes.values()])
        total += 1
        good += 0.02 <= rate <= 0.6
    assert good >= 0.9 * total, f"{good}/{total} networks with a mean spike rate in [2%, 60%]"
