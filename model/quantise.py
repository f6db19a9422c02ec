"""Quantiser: the one place where float weights and thresholds become the integers of the IR."""

from __future__ import annotations

import numpy as np

from model.ir import InputLayer, LIFLayer, MAX_BITS, Network, Projection, current_bounds, signed_bits

__all__ = ["quantise_wm", "fold_batchnorm", "layer_scale", "membrane_bounds",
           "quantise_audio"]


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


# --------------------------------------------------------------------------------------------
# Audio networks (DelRec / ConvDelRec): input -> LIF -> LIF (recurrent) -> read-out.

def fold_batchnorm(w: np.ndarray, b: np.ndarray | None, gamma: np.ndarray, beta: np.ndarray,
                   mean: np.ndarray, var: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``BatchNorm(W x + b)`` (running statistics) into one affine map ``(W', b')``::

        g  = gamma / sqrt(var + eps)
        W' = W * g[:, None]            b' = (b - mean) * g + beta     (b = 0 if None)

    float64 throughout; :mod:`model.audio.delrec` repeats these exact operations in torch so that
    quantisation-aware training sees the same integers as this quantiser.
    """
    w = np.asarray(w, np.float64)
    b = np.zeros(w.shape[0]) if b is None else np.asarray(b, np.float64)
    g = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    return w * g[:, None], (b - np.asarray(mean, np.float64)) * g + np.asarray(beta, np.float64)


def layer_scale(weights, w_bits: int) -> float:
    """One scale for every projection into a layer: the largest weight uses the full range,
    ``s = (2**(w_bits - 1) - 1) / max|W|`` over all of ``weights``."""
    w_max = max(float(np.abs(np.asarray(w, np.float64)).max()) for w in weights)
    if not np.isfinite(w_max):
        raise ValueError("weights must be finite")
    if w_max == 0.0:
        raise ValueError("all weights into the layer are zero: there is no scale")
    return ((1 << (w_bits - 1)) - 1) / w_max


def membrane_bounds(lo: int, hi: int, *, beta: int, beta_shift: int, threshold: int | None,
                    steps: int | None = None) -> tuple[int, int]:
    """Return bounds ``(v_lo, v_hi)`` of ``v_hat`` for currents in ``[lo, hi]`` (zero reset).

    With a leak (``beta < 2**beta_shift``) the floor ``u = (beta * v) >> beta_shift`` keeps
    ``v >= (lo - 1) / (1 - beta')`` by induction; a spiking layer keeps ``v <= threshold - 1``
    after its reset, so ``v_hat <= threshold - 1 + hi``; a read-out keeps
    ``v <= hi / (1 - beta')``. Without a leak ``steps`` bounds the growth instead. A membrane
    of ``signed_bits(v_lo, v_hi)`` bits therefore never saturates.
    """
    lo, hi = min(int(lo), 0), max(int(hi), 0)
    one = 1 << beta_shift
    if beta < one:
        v_lo = ((lo - 1) * one) // (one - beta)                   # floor, exact integers
        v_hi = -((-hi * one) // (one - beta))                     # ceil
    elif steps is None:
        raise ValueError("a layer without leak (beta == 2**beta_shift) needs steps= to bound "
                         "its membrane")
    else:
        v_lo, v_hi = steps * lo, steps * hi
    if threshold is not None:
        v_hi = threshold - 1 + max(hi, 1)  # and the threshold itself must fit
    return v_lo, v_hi


def quantise_audio(w_in: np.ndarray, b_in: np.ndarray, w_hid: np.ndarray, b_hid: np.ndarray,
                   w_rec: np.ndarray, rec_delay: np.ndarray, w_out: np.ndarray,
                   b_out: np.ndarray, *, in_bits: int, w_bits: int = 8, beta: int = 12,
                   beta_shift: int = 8, out_beta: int = 243, out_beta_shift: int = 8,
                   threshold_float: float = 1.0, max_delay: int = 31,
                   steps: int | None = None, name: str = "delrec",
                   meta: dict | None = None, more: tuple = ()) -> Network:
    """Quantise a DelRec (dense ``w_rec`` of shape ``(H, H)``) or ConvDelRec (kernel ``(K,)``).

    The float network (BatchNorm already folded, see :func:`fold_batchnorm`)::

        layer 1  I = w_in x(t) + b_in                           LIF, threshold_float
        layer 2  I = w_hid s1(t) + b_hid + rec(s2, rec_delay)   LIF, threshold_float
        layer 3  I = w_out s2(t) + b_out                        read-out (no threshold)

    ``more`` adds recurrent layers between layer 2 and the read-out, each a tuple
    ``(w_hid, b_hid, w_rec, rec_delay)`` like layer 2's, fed by the layer before it (the
    ConvDelRec authors' SHD network has three recurrent layers). ``rec_delay`` holds the IR
    delays (integers in ``1..max_delay``) of the presynaptic neurons. Every layer gets its own
    scale (:func:`layer_scale` over all projections into it, the recurrent one included), so
    one weight uses the full signed ``w_bits`` range::

        w = rint(s * W)    bias = rint(s * b)    threshold = rint(s * threshold_float)

    (``rint`` rounds half to even). Spikes and input counts carry no scale, so the layers'
    scales are independent, and ``argmax_i sum_t v_i(t)`` does not depend on the read-out's.
    ``acc_bits`` is the smallest width the accumulator rule allows and ``v_bits`` one in which
    the membrane never saturates (:func:`membrane_bounds`, zero reset), so the integer network
    differs from the float one only by the rounding of the weights and the floor in the leak.
    """
    f64 = lambda a: np.asarray(a, np.float64)
    w_in, b_in, w_out, b_out = f64(w_in), f64(b_in), f64(w_out), f64(b_out)
    hidden = w_in.shape[0]
    specs = []
    for k, (wh, bh, wr, d) in enumerate([(w_hid, b_hid, w_rec, rec_delay), *more]):
        where = "" if k == 0 else f" (recurrent layer {k + 1}, hidden{k + 2})"
        wh, bh, wr = f64(wh), f64(bh), f64(wr)
        if w_in.ndim != 2 or wh.shape != (hidden, hidden) or w_out.ndim != 2 \
                or w_out.shape[1] != hidden:
            raise ValueError(f"shapes do not chain: w_in {w_in.shape}, w_hid {wh.shape}"
                             f"{where}, w_out {w_out.shape}")
        if b_in.shape != (hidden,) or bh.shape != (hidden,) \
                or b_out.shape != (w_out.shape[0],):
            raise ValueError(f"bias shapes {b_in.shape}, {bh.shape}{where}, {b_out.shape} do "
                             "not match their layers")
        if wr.shape == (hidden, hidden):
            kind = "dense"
        elif wr.ndim == 1 and wr.shape[0] % 2 == 1:
            kind = "conv"
        else:
            raise ValueError(f"w_rec{where} must be (H, H) = ({hidden}, {hidden}) or an odd "
                             f"kernel (K,), got {wr.shape}")
        delay = np.asarray(d)
        if delay.dtype.kind not in "iu" or delay.shape != (hidden,):
            raise ValueError(f"rec_delay{where} must be integers of shape ({hidden},), got "
                             f"{delay.dtype} {delay.shape}")
        if delay.size and (int(delay.min()) < 1 or int(delay.max()) > max_delay):
            raise ValueError(f"rec_delay{where} must lie in [1, max_delay={max_delay}], got "
                             f"[{int(delay.min())}, {int(delay.max())}]")
        specs.append((wh, bh, wr, delay.astype(np.int64), kind))
    if not 2 <= w_bits <= MAX_BITS:
        raise ValueError(f"w_bits must be in [2, {MAX_BITS}], got {w_bits}")
    if threshold_float <= 0:
        raise ValueError(f"threshold_float must be > 0, got {threshold_float}")

    n_hid = 1 + len(specs)                       # LIF layers 1..n_hid, read-out n_hid + 1
    scales = [layer_scale([w_in], w_bits)] + [layer_scale([wh, wr], w_bits)
                                              for wh, _, wr, _, _ in specs] \
        + [layer_scale([w_out], w_bits)]
    q = lambda s, a: np.rint(s * a).astype(np.int64)
    thresholds = []
    for s in scales[:n_hid]:
        th = int(np.rint(s * threshold_float))
        if th < 1:
            raise ValueError(f"threshold rounds to {th} at scale {s:.6g}; use more weight bits")
        thresholds.append(th)
    projs = [Projection("dense", 0, 1, w_bits, q(scales[0], w_in), np.int64(0))]
    biases = [q(scales[0], b_in)]
    for k, (wh, bh, wr, delay, kind) in enumerate(specs):
        s, l = scales[k + 1], k + 2
        projs += [Projection("dense", l - 1, l, w_bits, q(s, wh), np.int64(0)),
                  Projection(kind, l, l, w_bits, q(s, wr), delay)]
        biases.append(q(s, bh))
    projs.append(Projection("dense", n_hid, n_hid + 1, w_bits, q(scales[-1], w_out),
                            np.int64(0)))
    biases.append(q(scales[-1], b_out))
    leaks = [(beta, beta_shift)] * n_hid + [(out_beta, out_beta_shift)]
    names = [f"hidden{k}" for k in range(1, n_hid + 1)] + ["readout"]
    ths = thresholds + [None]

    def build(widths, meta_):
        layers = [InputLayer(n=w_in.shape[1], in_bits=in_bits)]
        for i in range(n_hid + 1):
            layers.append(LIFLayer(n=biases[i].shape[0], v_bits=widths[i][1],
                                   acc_bits=widths[i][0], beta=leaks[i][0],
                                   beta_shift=leaks[i][1], threshold=ths[i], reset="zero",
                                   bias=biases[i], name=names[i]))
        return Network(layers=layers, projections=tuple(projs), max_delay=max_delay,
                       name=name, meta=meta_)

    draft = build([(MAX_BITS, MAX_BITS)] * (n_hid + 1), {})
    widths = []
    for l in range(1, n_hid + 2):
        lo, hi = current_bounds(draft, l)
        lo, hi = int(lo.min()), int(hi.max())
        acc = signed_bits(min(lo, 0), max(hi, 0))
        b, sh = leaks[l - 1]
        v_lo, v_hi = membrane_bounds(lo, hi, beta=b, beta_shift=sh, threshold=ths[l - 1],
                                     steps=steps)
        widths.append((acc, signed_bits(v_lo, v_hi)))
    kinds = sorted({sp[4] for sp in specs})
    info = {"kind": "audio-delrec", "recurrence": kinds[0] if len(kinds) == 1 else kinds,
            "w_bits": int(w_bits), "in_bits": int(in_bits),
            "scales": [float(s) for s in scales], "threshold_float": float(threshold_float)}
    if more:
        info["recurrent_layers"] = len(specs)
    info.update(meta or {})
    return build(widths, info)
