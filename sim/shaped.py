"""Random networks of the papers' shapes (working memory, SHD), with realistic activity.

Benchmarks (``bench/``) and tests use them where the shape matters and the weights do not; the
trained networks are the ``.npz`` files of ``bench/networks/``.
"""

from __future__ import annotations

import numpy as np

from model.ir import InputLayer, LIFLayer, Network, Projection, current_bounds

__all__ = ["fit_accumulators", "wm_network", "shd_network", "shd_input"]


def _acc_bits(net_layers, projections, dst) -> int:
    probe = Network(layers=net_layers, projections=projections, max_delay=64)
    lo, hi = current_bounds(probe, dst)
    return max(int(-lo.min()).bit_length(), int(hi.max()).bit_length()) + 1


def fit_accumulators(layers, projections, max_delay):
    """Give every layer the narrowest accumulator the IR rule allows."""
    wide = [layers[0]] + [LIFLayer(n=l.n, v_bits=l.v_bits, acc_bits=48, beta=l.beta,
                                   beta_shift=l.beta_shift, threshold=l.threshold,
                                   reset=l.reset, bias=l.bias, forced=l.forced, name=l.name)
                          for l in layers[1:]]
    out = [layers[0]]
    for i, l in enumerate(layers[1:], 1):
        acc = _acc_bits(wide, projections, i)
        out.append(LIFLayer(n=l.n, v_bits=max(l.v_bits, acc), acc_bits=acc, beta=l.beta,
                            beta_shift=l.beta_shift, threshold=l.threshold, reset=l.reset,
                            bias=l.bias, forced=l.forced, name=l.name))
    return Network(layers=out, projections=projections, max_delay=max_delay)


def wm_network(n: int = 512, d: int = 41, *, w_bits: int = 8, seed: int = 0) -> Network:
    """One recurrent taps population (the paper's N x N x D tensor), forced cue."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-(1 << (w_bits - 2)), 1 << (w_bits - 2), (n, n, d))
    layers = [InputLayer(n=0), LIFLayer(n=n, v_bits=16, acc_bits=16, beta=205, beta_shift=8,
                                        threshold=1 << (w_bits + 1), forced=True, name="wm")]
    return fit_accumulators(layers, [Projection("taps", 1, 1, w_bits, w, np.array(1))], d)


def shd_network(kind: str = "conv", *, n_in: int = 140, n: int = 256, classes: int = 20,
                k: int = 5, max_delay: int = 31, w_bits: int = 8, seed: int = 0) -> Network:
    """140 (4-bit counts) -> 256 LIF -> 256 LIF with dense or conv delayed recurrence -> 20."""
    rng = np.random.default_rng(seed)
    q = 1 << (w_bits - 1)
    layers = [InputLayer(n=n_in, in_bits=4),
              LIFLayer(n=n, v_bits=16, acc_bits=16, beta=12, beta_shift=8, threshold=q,
                       name="h1"),
              LIFLayer(n=n, v_bits=16, acc_bits=16, beta=12, beta_shift=8, threshold=q,
                       name="h2"),
              LIFLayer(n=classes, v_bits=16, acc_bits=16, beta=230, beta_shift=8,
                       threshold=None, name="out")]
    rec = (Projection("dense", 2, 2, w_bits, rng.integers(-q // 4, q // 4, (n, n)),
                      rng.integers(1, max_delay + 1, n)) if kind == "dense" else
           Projection("conv", 2, 2, w_bits, rng.integers(-q // 2, q // 2, k),
                      rng.integers(1, max_delay + 1, n)))
    projections = [
        Projection("dense", 0, 1, w_bits, rng.integers(-q // 8, q // 4, (n, n_in)), np.array(0)),
        Projection("dense", 1, 2, w_bits, rng.integers(-q // 4, q // 2, (n, n)), np.array(0)),
        rec,
        Projection("dense", 2, 3, w_bits, rng.integers(-q, q, (classes, n)), np.array(0)),
    ]
    return fit_accumulators(layers, projections, max_delay)


def shd_input(steps: int = 100, n_in: int = 140, *, rate: float = 0.08, seed: int = 0):
    """Spike counts per 10 ms frame and channel, SHD-like sparsity (most frames are 0)."""
    rng = np.random.default_rng(seed)
    return np.minimum(rng.poisson(rate, (steps, n_in)) * (rng.random((steps, n_in)) < 0.5),
                      15).astype(np.int64)
