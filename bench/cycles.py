"""Cycles per step of the core against the memory-port lower bound, lanes 1..64 (on demand).

    python -m bench.cycles [--steps 100]

The cycle figures come from ``rtl.cost.step_cycles`` on the reference simulator's activity;
``tests/rtl/test_cost.py`` holds that model to the exact cycle count of the simulated RTL.
The bound (``rtl.cost.memory_port_bound``) is what one weight word per cycle allows with P
lanes: ``sum over layers of (E_l + 1) * ceil(n_l / P) + F``, every active pair's weight word
for every group of P neurons plus one update per group, where E_l counts the active
(presynaptic neuron, delay) pairs of the dense and taps projections into layer l (a conv
projection's K weights are constants in logic and cost nothing in the bound). F is a fixed
latency per layer: 0 gives the bare port bound; 5 is the shortest dependent chain of any
pipelined design with registered memories (read the event word, read the weight word,
accumulate, update, write the spike word). Both ratios are printed.
"""

from __future__ import annotations

import argparse

import numpy as np

from rtl.cost import activity, memory_port_bound, step_cycles
from sim.reference import simulate
from sim.shaped import shd_input, shd_network, wm_network

#: Fixed latency per layer in the bound's second form (see the module docstring).
LATENCY = 5


def run(name, net, x, forced, steps, lanes_list):
    trace = simulate(net, x, forced, steps=steps)
    act = activity(net, trace, x, forced)
    rate = np.mean([s.mean() for s in trace.spikes.values()]) if trace.spikes else 0
    print(f"\n{name}: {[l.n for l in net.layers]}, mean spike rate {rate:.3f}")
    print(f"{'lanes':>5} {'cycles/step':>12} {'bound F=0':>10} {'ratio':>6} "
          f"{'bound F=' + str(LATENCY):>10} {'ratio':>6}")
    rows = []
    for lanes in lanes_list:
        c = float(np.median(step_cycles(net, act, lanes=lanes)))
        b0 = float(np.median(memory_port_bound(net, act, lanes=lanes)))
        bf = float(np.median(memory_port_bound(net, act, lanes=lanes, fixed=LATENCY)))
        rows.append((lanes, c, b0, bf))
        print(f"{lanes:>5} {c:>12.0f} {b0:>10.0f} {c / b0:>6.2f} {bf:>10.0f} {c / bf:>6.2f}")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    lanes = [1, 2, 4, 8, 16, 32, 64]
    steps = args.steps
    wm = wm_network()
    rng = np.random.default_rng(1)
    cue = np.zeros((steps, 512), np.uint8)
    cue[:41] = rng.random((41, 512)) < 2e-3
    run("working memory N=512 D=41 (taps), p=2e-3 cue", wm, None, {1: cue}, steps, lanes)
    x = shd_input(steps)
    for kind in ("dense", "conv"):
        run(f"SHD-shaped 140-256-256r-20, {kind} recurrence", shd_network(kind), x, None,
            steps, lanes)


if __name__ == "__main__":
    main()
