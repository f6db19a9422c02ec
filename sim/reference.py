"""Integer reference simulator: the bit-exact golden model of a QuantNet network (numpy only).

One step ``t`` updates layers ``1..L`` in order (see ``docs/semantics.md``)::

    i_in  = bias + sum over synapses (j, d, w) of w * e_j(t - d)     # e = 0 before t = 0
    u     = (beta * v) >> beta_shift                                 # floor
    v_hat = saturate_v_bits(u + i_in)
    s     = v_hat >= threshold;  v = v_hat - threshold * s  or  v_hat * (1 - s)
    e     = s OR forced        (layer 0: e = x)

A read-out layer (no threshold) has ``s = 0`` and ``v = v_hat``. Work is event-driven: a
projection only gathers the weight columns of presynaptic (neuron, delay) pairs that fired.
"""

from __future__ import annotations

import numpy as np

from model.ir import InputLayer, LIFLayer, Network, Projection, Trace, prediction, validate_inputs

__all__ = ["simulate"]


def _leak(v: np.ndarray, beta: int, shift: int) -> np.ndarray:
    """``(beta * v) >> shift``; exact in int64 since the IR keeps v_bits + beta_shift <= 63."""
    return (beta * v) >> shift


class _Input:
    """One projection's synapses prepared for event-driven gathering."""

    def __init__(self, p: Projection, pre: InputLayer | LIFLayer):
        n_pre = pre.n
        self.kind, self.src = p.kind, p.src
        # Spikes are 0/1, so their weights need only be summed; multi-bit inputs are scaled.
        self.binary = isinstance(pre, LIFLayer) or pre.in_bits == 1
        # Presynaptic-major copies, so that one event's weights are one contiguous row.
        if p.kind == "dense":
            self.w = np.ascontiguousarray(p.weight.T)                    # (n_pre, n_post)
        elif p.kind == "taps":
            self.w = np.ascontiguousarray(p.weight.transpose(1, 2, 0))   # (n_pre, D, n_post)
        else:
            self.w = p.weight
        self.delays = p.delays_of_pre(n_pre)
        self.scalar = p.delay.ndim == 0
        self.d0 = int(p.delay) if self.scalar else 0
        self.cols = np.arange(n_pre)
        if p.kind == "conv":
            self.pad = (p.weight.shape[0] - 1) // 2

    def _arrived(self, e: np.ndarray, t: int) -> np.ndarray:
        """``e_j(t - d_j)`` for every presynaptic neuron j (0 before t = 0)."""
        if self.scalar:
            tau = t - self.d0
            return e[tau] if tau >= 0 else np.zeros(e.shape[1], e.dtype)
        tau = t - self.delays
        ok = tau >= 0
        out = np.zeros(e.shape[1], e.dtype)
        out[ok] = e[tau[ok], self.cols[ok]]
        return out

    def _weigh(self, val: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return rows.sum(0) if self.binary else (val[:, None] * rows).sum(0)

    def current(self, e: np.ndarray, t: int) -> np.ndarray | None:
        """This projection's contribution to ``i_in`` at step t, or ``None`` if nothing arrives."""
        if self.kind == "taps":
            newest = t - self.d0           # emission time heard by tap k = 0
            if newest < 0:
                return None
            oldest = max(0, newest - self.w.shape[1] + 1)
            win = e[oldest:newest + 1]
            r, j = np.nonzero(win)
            if not r.size:
                return None
            return self._weigh(win[r, j], self.w[j, newest - oldest - r])
        val = self._arrived(e, t)
        j = np.flatnonzero(val)
        if not j.size:
            return None
        if self.kind == "dense":
            return self._weigh(val[j], self.w[j])
        # conv: post i hears pre i + k - pad; scatter each event j to posts j - k + pad.
        n = val.shape[0]
        out = np.zeros(n + 2 * self.pad, np.int64)
        for k, wk in enumerate(self.w.tolist()):
            if wk:
                out[j - k + 2 * self.pad] += wk * val[j]
        return out[self.pad:self.pad + n]


def simulate(net: Network, x: np.ndarray | None = None,
             forced: dict[int, np.ndarray] | None = None, *, steps: int | None = None) -> Trace:
    """Run ``net`` on input ``x`` (``(T, n0)``) and forced rasters; return the full trace."""
    x, forced, T = validate_inputs(net, x, forced, steps)
    layers = net.layers
    # Full event history per layer; a delay is just a look back into it.
    e = {0: x}
    spikes, vs = {}, {}
    plans = {}
    for l, layer in enumerate(layers[1:], 1):
        assert isinstance(layer, LIFLayer)
        e[l] = np.zeros((T, layer.n), np.int64)
        vs[l] = np.zeros((T, layer.n), np.int64)
        if layer.spiking:
            spikes[l] = np.zeros((T, layer.n), np.uint8)
        plans[l] = [_Input(p, layers[p.src]) for p in net.into(l)]
    v = {l: np.zeros(layers[l].n, np.int64) for l in range(1, len(layers))}
    for t in range(T):
        for l in range(1, len(layers)):
            layer = layers[l]
            i_in = layer.bias.copy()
            for inp in plans[l]:
                c = inp.current(e[inp.src], t)
                if c is not None:
                    i_in += c
            u = _leak(v[l], layer.beta, layer.beta_shift)
            v_hat = np.clip(u + i_in, layer.v_min, layer.v_max)
            if layer.spiking:
                s = v_hat >= layer.threshold
                if layer.reset == "subtract":
                    v[l] = v_hat - layer.threshold * s
                else:
                    v[l] = np.where(s, 0, v_hat)
                spikes[l][t] = s
                e[l][t] = s
            else:
                v[l] = v_hat
            if l in forced:
                e[l][t] |= forced[l][t]
            vs[l][t] = v[l]
    last = layers[-1]
    pred = None if last.spiking else prediction(vs[len(layers) - 1])
    for a in (*spikes.values(), *vs.values()):
        a.setflags(write=False)
    return Trace(spikes=spikes, v=vs, prediction=pred)

