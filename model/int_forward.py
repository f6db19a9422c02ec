"""Batched integer forward of a QuantNet network in torch, bit-exact with sim.reference.

``sim.reference.simulate`` runs one sample, event by event, in numpy; this runs a batch of
samples with dense tensor arithmetic, for test-set accuracy. The arithmetic is the contract's
(``docs/semantics.md``): exact currents, ``u = (beta * v) >> beta_shift`` (floor), saturation
to ``v_bits``, ``v_hat >= threshold`` fires, ``zero`` or ``subtract`` reset, ``e = s OR f``.

Layers are computed one after another over the whole run: a layer depends only on itself and
the layers before it, so every feed-forward current is one batched product over all steps and
only the recurrent projections need a loop over steps. Currents are summed as float64 products
when every partial sum is below 2**53 (then exact) and as int64 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from model.ir import Network, Projection, current_bounds

__all__ = ["IntTrace", "integer_forward", "check_inputs"]

_EXACT_F64 = 1 << 53


@dataclass(frozen=True, eq=False)
class IntTrace:
    """Outputs of a batch: ``spikes[l]`` ``(B, T, n)`` uint8 per spiking layer, ``v[l]``
    ``(B, T, n)`` int64 per LIF layer (both empty unless ``record``), ``prediction`` ``(B,)``
    int64 (``argmax_i sum_t v_i(t)`` of a read-out last layer, lowest index on ties) or
    ``None``, and ``counts[l]`` ``(B, n)`` int64: spikes per neuron of every spiking layer."""

    spikes: dict[int, torch.Tensor]
    v: dict[int, torch.Tensor]
    prediction: torch.Tensor | None
    counts: dict[int, torch.Tensor]


def check_inputs(net: Network, x, *, clip: bool = False) -> torch.Tensor:
    """Return ``x`` (``(B, T, n0)`` integers) as int64, checked against ``in_bits``.

    A value outside ``[0, 2**in_bits - 1]`` raises ``ValueError`` unless ``clip`` is true, in
    which case it is clipped into that range.
    """
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if x.dtype.is_floating_point or x.dtype == torch.bool or x.dtype.is_complex:
        if x.dtype == torch.bool:
            x = x.to(torch.int64)
        elif not torch.equal(x, torch.round(x)):
            raise ValueError(f"x must hold integers, got non-integer {x.dtype} values")
    x = x.to(torch.int64)
    n0 = net.input.n
    if x.ndim != 3 or x.shape[2] != n0:
        raise ValueError(f"x must have shape (B, T, n0={n0}), got {tuple(x.shape)}")
    hi = net.input.max_value
    if x.numel() and (int(x.min()) < 0 or int(x.max()) > hi):
        if not clip:
            raise ValueError(f"x values must be in [0, 2**in_bits - 1 = {hi}] (in_bits="
                             f"{net.input.in_bits}), got [{int(x.min())}, {int(x.max())}]; "
                             "quantise with more in_bits or ask for clipping")
        x = x.clamp(0, hi)
    return x


class _Proj:
    """One projection's weights as tensors, and how to weigh what arrived."""

    def __init__(self, p: Projection, n_pre: int, exact_f64: bool):
        self.kind, self.src, self.recurrent = p.kind, p.src, p.recurrent
        self.dtype = torch.float64 if exact_f64 else torch.int64
        self.w = torch.from_numpy(np.array(p.weight)).to(self.dtype)
        self.delay = torch.from_numpy(p.delays_of_pre(n_pre).copy())
        self.taps = p.n_taps
        self.cols = torch.arange(n_pre)

    def weigh(self, a: torch.Tensor, k: int = 0) -> torch.Tensor:
        """Current from arrivals ``a`` (``(..., n_pre)``, already delayed) through tap ``k``."""
        a = a.to(self.dtype)
        if self.kind == "dense":
            return a @ self.w.T
        if self.kind == "taps":
            return a @ self.w[:, :, k].T
        kk = self.w.shape[0]
        shape = a.shape
        # conv: "same" correlation over the neuron index, zero padding: post i hears i+k-pad.
        if self.dtype == torch.float64:
            out = F.conv1d(a.reshape(-1, 1, shape[-1]), self.w.view(1, 1, kk),
                           padding=(kk - 1) // 2)
            return out.reshape(shape)
        pad = (kk - 1) // 2
        ap = F.pad(a, (pad, pad))
        return sum(self.w[j] * ap[..., j:j + shape[-1]] for j in range(kk))


def integer_forward(net: Network, x, *, forced: dict | None = None, clip: bool = False,
                    record: bool = True) -> IntTrace:
    """Run ``net`` on a batch ``x`` of shape ``(B, T, n0)``; return an :class:`IntTrace`.

    ``forced`` maps a forced layer to a ``(B, T, n)`` 0/1 raster. Every sample gives exactly
    what ``sim.reference.simulate(net, x[b], ...)`` gives.
    """
    x = check_inputs(net, x, clip=clip)
    B, T, _ = x.shape
    forced = {} if forced is None else forced
    for l in forced:
        if l not in net.forced_layers:
            raise ValueError(f"forced[{l}]: layer {l} does not take a forced raster")
    maxd = max([net.max_delay, 0])
    # History of what every layer emitted, time-major and zero-padded in front by maxd rows
    # so that "t - d < 0" reads a zero.
    hist = {0: torch.cat([torch.zeros(maxd, B, x.shape[2], dtype=torch.int64),
                          x.transpose(0, 1)])}
    spikes, vs, counts = {}, {}, {}
    prediction = None
    steps = torch.arange(T)
    for l, layer in enumerate(net.layers[1:], 1):
        n = layer.n
        lo, hi = current_bounds(net, l)
        # every partial sum of the products lies within the bounds without the bias
        b_max = int(np.abs(layer.bias).max()) if layer.n else 0
        exact = max(-int(lo.min()), int(hi.max())) + b_max < _EXACT_F64
        projs = [_Proj(p, net.layers[p.src].n, exact) for p in net.into(l)]
        cdt = torch.float64 if exact else torch.int64
        # Feed-forward currents for all steps at once.
        i_ff = torch.zeros(T, B, n, dtype=cdt)
        for p in projs:
            if p.recurrent:
                continue
            h = hist[p.src]
            for k in range(p.taps):
                rows = steps[:, None] + maxd - p.delay[None, :] - k          # (T, n_pre)
                a = h.gather(0, rows[:, None, :].expand(T, B, -1))
                i_ff += p.weigh(a, k)
        i_ff = i_ff.to(torch.int64) + torch.from_numpy(np.array(layer.bias))
        rec = [p for p in projs if p.recurrent]
        e = torch.zeros(maxd + T, B, n, dtype=torch.int64)
        v = torch.zeros(B, n, dtype=torch.int64)
        v_out = torch.empty(T, B, n, dtype=torch.int64)
        s_out = torch.zeros(T, B, n, dtype=torch.uint8) if layer.spiking else None
        f = forced.get(l)
        if f is not None:
            f = torch.as_tensor(np.asarray(f)).to(torch.int64).transpose(0, 1)
        beta, shift = layer.beta, layer.beta_shift
        th = layer.threshold
        for t in range(T):
            i_in = i_ff[t]
            for p in rec:
                for k in range(p.taps):
                    a = e[t + maxd - p.delay - k, :, p.cols].T                 # (B, n_pre)
                    i_in = i_in + p.weigh(a, k).to(torch.int64)
            u = (beta * v) >> shift
            v_hat = (u + i_in).clamp(layer.v_min, layer.v_max)
            if th is not None:
                s = v_hat >= th
                v = v_hat - th * s if layer.reset == "subtract" else v_hat.masked_fill(s, 0)
                s_out[t] = s
                e[maxd + t] = s
            else:
                v = v_hat
            if f is not None:
                e[maxd + t] |= f[t]
            v_out[t] = v
        hist[l] = e
        if th is not None:
            counts[l] = s_out.sum(0, dtype=torch.int64)
            if record:
                spikes[l] = s_out.transpose(0, 1)
        if record:
            vs[l] = v_out.transpose(0, 1)
        if l == len(net.layers) - 1 and th is None:
            prediction = v_out.sum(0).argmax(1)
    return IntTrace(spikes=spikes, v=vs, prediction=prediction, counts=counts)
