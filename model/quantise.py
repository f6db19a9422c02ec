"""Quantiser: the one place where float weights and thresholds become the integers of the IR."""

from __future__ import annotations

import numpy as np

from model.ir import InputLayer, LIFLayer, MAX_BITS, Network, Projection, current_bounds

__all__ = ["signed_bits", "quantise_wm"]


def signed_bits(lo: int, hi: int) -> int:
    """Return the fewest bits ``b >= 2`` with ``-2**(b-1) <= lo`` and ``hi <= 2**(b-1) - 1``."""
    lo, hi = int(lo), int(hi)
    b = 2
    while lo < -(1 << (b - 1)) or hi > (1 << (b - 1)) - 1:
        b += 1
    return b


def quantise_wm(w_float: np.ndarray, *, w_bits: int = 8, beta: int = 205, beta_shift: int = 8,
                reset: str = "zero", threshold_float: float = 1.0, v_bits: int | None = None,
                name: str = "wm") -> Network:
    """Quantise a working-memory weight tensor ``W[i, j, k]`` (post i, pre j, delay 1 + k).

    One scale for the whole network, so that the largest weight uses the full signed range::

        s = (2**(w_bits - 1) - 1) / max|W|
        w[i, j, k] = round(s * W[i, j, k])        (round half to even)
        threshold  = round(s * threshold_float)   (must be >= 1)

    Spiking is invariant to a common positive scale of currents, membrane and threshold, so the
    integer network differs from the float one only by the rounding of each weight (at most
    1/2 per active synapse, in units of 1/s) and by the floor in the leak
    ``u = (beta * v) >> beta_shift``.

    The network is ``[InputLayer(n=0), LIFLayer(n, forced=True)]`` with one recurrent ``taps``
    projection, first delay ``d0 = 1`` and ``D = W.shape[2]`` taps, so ``max_delay = D``.
    ``acc_bits`` is the smallest width that holds the worst-case current of
    :func:`model.ir.current_bounds` (the sum of all positive, resp. negative, weights of a
    neuron). ``v_bits`` defaults to ``max(acc_bits, bits(threshold) + 1) + 1``.
    ``Network.meta`` records the float scale and settings (JSON values only).
    """
    w = np.asarray(w_float, dtype=np.float64)
    if w.ndim != 3 or w.shape[0] != w.shape[1] or w.shape[2] < 1:
        raise ValueError(f"w_float must have shape (n, n, D) with D >= 1, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("w_float must be finite")
    if not 2 <= w_bits <= MAX_BITS:
        raise ValueError(f"w_bits must be in [2, {MAX_BITS}], got {w_bits}")
    if threshold_float <= 0:
        raise ValueError(f"threshold_float must be > 0, got {threshold_float}")
    w_max = float(np.abs(w).max())
    if w_max == 0.0:
        raise ValueError("w_float is all zeros: there is no scale to quantise with")
    n, _, d = w.shape
    scale = ((1 << (w_bits - 1)) - 1) / w_max
    w_int = np.rint(scale * w).astype(np.int64)
    threshold = int(np.rint(scale * threshold_float))
    if threshold < 1:
        raise ValueError(f"threshold rounds to {threshold} at scale {scale:.6g} "
                         f"(w_bits={w_bits}, max|W|={w_max:.6g}); use more weight bits")

    proj = Projection(kind="taps", src=1, dst=1, w_bits=w_bits, weight=w_int,
                      delay=np.int64(1))

    def build(acc: int, vb: int, meta: dict) -> Network:
        layer = LIFLayer(n=n, v_bits=vb, acc_bits=acc, beta=beta, beta_shift=beta_shift,
                         threshold=threshold, reset=reset, forced=True, name=name)
        return Network(layers=(InputLayer(n=0), layer), projections=(proj,), max_delay=d,
                       name=name, meta=meta)

    # The widest legal widths pass every rule, so current_bounds can be asked on a draft.
    lo, hi = current_bounds(build(MAX_BITS, MAX_BITS, {}), 1)
    acc_bits = signed_bits(min(int(lo.min()), 0), max(int(hi.max()), 0))
    if v_bits is None:
        v_bits = max(acc_bits, threshold.bit_length() + 1) + 1
    meta = {"kind": "working-memory", "scale": float(scale), "w_float_max": w_max,
            "threshold_float": float(threshold_float), "w_bits": int(w_bits)}
    return build(acc_bits, int(v_bits), meta)
