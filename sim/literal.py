"""Literal simulator: the contract written out with Python ints and plain loops, to check reference.

Deliberately slow and shares nothing with :mod:`sim.reference` except :class:`Trace` and the
input validation: every synapse is visited explicitly, every step, so that a vectorisation or
indexing slip in the fast simulator shows up as a disagreement between the two.
"""

from __future__ import annotations

import numpy as np

from model.ir import Network
from model.ir import Trace, validate_inputs

__all__ = ["simulate_literal"]


def _delay_list(p, n_pre: int) -> list[int]:
    d = p.delay.tolist()
    return [d] * n_pre if isinstance(d, int) else d


def _heard(e: list[list[int]], t: int, d: int, j: int) -> int:
    """e_j(t - d): what presynaptic neuron j emitted d steps ago (nothing before t = 0)."""
    tau = t - d
    return e[tau][j] if tau >= 0 else 0


def _synaptic_input(kind: str, w: list, delays: list[int], i: int, e: list[list[int]],
                    t: int, n_pre: int) -> int:
    """Sum of w * e_j(t - d) over every synapse (j, d, w) of one projection into neuron i."""
    total = 0
    if kind == "dense":
        for j in range(n_pre):
            total += w[i][j] * _heard(e, t, delays[j], j)
    elif kind == "taps":
        for j in range(n_pre):
            for k in range(len(w[i][j])):
                total += w[i][j][k] * _heard(e, t, delays[j] + k, j)
    else:
        big_k = len(w)
        for k in range(big_k):
            j = i + k - (big_k - 1) // 2
            if 0 <= j < n_pre:   # zero padding outside the layer
                total += w[k] * _heard(e, t, delays[j], j)
    return total


def simulate_literal(net: Network, x=None, forced=None, *, steps: int | None = None) -> Trace:
    """Run ``net`` exactly as the contract reads; same arguments and result as ``simulate``."""
    x, forced, steps = validate_inputs(net, x, forced, steps)
    layers = net.layers
    n_layers = len(layers)
    # e[l][t][j]: the spike (or input value) that layer l's neuron j sent into its delay lines.
    e = [[[0] * layers[l].n for _ in range(steps)] for l in range(n_layers)]
    e[0] = [[int(val) for val in row] for row in x.tolist()]
    f = {l: r.tolist() for l, r in forced.items()}
    v = [[0] * layers[l].n for l in range(n_layers)]
    s_out = {l: [] for l in range(1, n_layers) if layers[l].spiking}
    v_out = {l: [] for l in range(1, n_layers)}
    # (kind, weights as nested lists, delay of each presynaptic neuron) per destination layer
    into = {l: [(p.kind, p.weight.tolist(), _delay_list(p, layers[p.src].n), p.src)
                for p in net.projections if p.dst == l] for l in range(1, n_layers)}
    for t in range(steps):
        for l in range(1, n_layers):
            layer = layers[l]
            v_min = -(2 ** (layer.v_bits - 1))
            v_max = 2 ** (layer.v_bits - 1) - 1
            s_row = []
            for i in range(layer.n):
                i_in = int(layer.bias[i])
                for kind, w, delays, src in into[l]:
                    i_in += _synaptic_input(kind, w, delays, i, e[src], t, layers[src].n)
                u = (layer.beta * v[l][i]) >> layer.beta_shift   # Python >> floors
                v_hat = min(max(u + i_in, v_min), v_max)
                if layer.threshold is None:
                    s = 0
                    v[l][i] = v_hat
                else:
                    s = 1 if v_hat >= layer.threshold else 0
                    if layer.reset == "subtract":
                        v[l][i] = v_hat - layer.threshold * s
                    else:
                        v[l][i] = v_hat * (1 - s)
                forced_now = f[l][t][i] if l in f else 0
                e[l][t][i] = 1 if (s == 1 or forced_now == 1) else 0
                s_row.append(s)
            if l in s_out:
                s_out[l].append(s_row)
            v_out[l].append(list(v[l]))
    prediction = None
    last = n_layers - 1
    if layers[last].threshold is None:
        sums = [sum(v_out[last][t][i] for t in range(steps)) for i in range(layers[last].n)]
        prediction = 0
        for i in range(len(sums)):
            if sums[i] > sums[prediction]:
                prediction = i
    spikes = {l: np.array(rows, np.uint8).reshape(steps, layers[l].n)
              for l, rows in s_out.items()}
    vs = {l: np.array(rows, np.int64).reshape(steps, layers[l].n) for l, rows in v_out.items()}
    return Trace(spikes=spikes, v=vs, prediction=prediction)
