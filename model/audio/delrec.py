"""DelRec and ConvDelRec in torch: LIF layers with learned recurrent axonal delays, QAT, export.

The network (Queant et al. 2025; Cicciarella et al. 2026), in the IR's arithmetic::

    x(t) counts ──► Linear(n_in→H) [+BN] ──► LIF ──► Dropout
                ──► Linear(H→H) [+BN] + rec(t) ──► LIF ──► Dropout
                ──► Linear(H→C) ──► non-spiking leaky integrator v(t)

    LIF      v ← beta' v + I;  s = [v >= threshold];  v ← v (1 - s)      beta' = beta / 2**shift
    rec(t)   dense (DelRec):     rec_i = sum_o W[i, o] z_o(t)
             conv (ConvDelRec):  rec_i = sum_k w[k] z_{i+k-(K-1)/2}(t)     (zero "same" padding)
    z_o(t)   = sum_l mask[o, l] s_o(t - 1 - l),  l = 0..Dmax-1             (IR delay 1 + l)
    logits   = mean_t v(t);  prediction = argmax_i sum_t v_i(t)  (the IR's rule)

With ``layers = L > 2`` (``ModelConfig.layers``) hidden layers 3..L repeat layer 2 (its own
Linear, BatchNorm, recurrent weights and delays) and the read-out follows layer L.

Each presynaptic neuron ``o`` of the recurrent projection has one learned delay ``d_o`` in
``[0, Dmax - 1]``. While training it is spread by a triangle of half-width ``1 + sigma``
(``sigma`` annealed by the trainer); evaluation, quantisation-aware training and export use
``round(d_o)``, so the IR delay is ``1 + round(d_o) <= Dmax``. Because the delay belongs to the
presynaptic neuron, the delayed spikes ``z`` are computed once per neuron (``H`` times the
triangle's width per step) and then go through a single ``H x H`` product (or a ``K``-tap
convolution), instead of DelRec's ``Dmax`` products into a ring of future currents. Each LIF
layer is one autograd Function with a hand-written backward pass (:class:`_FusedLIF`).

Two modes of :meth:`DelRecNet.forward`:

* ``"float"``: float32, BatchNorm with batch statistics while training, the leak ``beta'``;
* ``"quant"``: BatchNorm folded (running statistics), every layer in integer units of its
  own scale with fake-quantised weights, biases and threshold (straight-through gradients),
  the floor leak ``(beta v) >> shift`` and integer delays, in float64. In eval it computes
  exactly the integers of :func:`to_network`'s network (``model.int_forward`` and
  ``sim.reference`` give the same spikes, membranes and predictions).

Over 600 lines because the forward pass, its hand-written backward pass and the export must
compute the same arithmetic, and are easiest to keep equal side by side.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.ir import Network
from model.quantise import quantise_audio

__all__ = ["ModelConfig", "DelRecNet", "Forward", "spike", "delay_kernel", "delay_band",
           "round_delays", "to_network", "parameter_counts"]

Arch = Literal["dense", "conv"]
Mode = Literal["float", "quant"]


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and the hardware-facing integers of a DelRec/ConvDelRec network."""

    arch: Arch = "dense"
    n_in: int = 140
    hidden: int = 256
    n_out: int = 20
    kernel: int = 5             # conv taps K (odd), arch="conv" only
    dmax: int = 31              # IR max_delay: learned d in [0, dmax - 1], IR delay 1 + d
    beta: int = 12              # hidden leak beta / 2**beta_shift (12/256 ~ tau 1.05)
    beta_shift: int = 8
    out_beta: int = 243         # read-out leak 243/256 ~ 0.95 (see docs/audio.md)
    out_beta_shift: int = 8
    threshold: float = 1.0
    batchnorm: bool = True
    dropout: float = 0.4
    rec_dropout: float = 0.0    # dropout on the delayed recurrent spikes z (DelRec: 0.2)
    alpha: float = 5.0          # arctan surrogate sharpness
    w_bits: int = 8
    self_max: float | None = 0.9   # self-connection <= self_max * threshold (None: free)
    delay_init: tuple[float, float] = (1 / 3, 1.0)   # uniform in these fractions of dmax - 1
    tonotopic: float = 0.0      # >0: local (tonotopic) init of fc1/fc2, envelope width as a
                                # fraction of the layer; see DelRecNet._tonotopic_
    layers: int = 2             # hidden LIF layers: the first without recurrence, the others
                                # recurrent (DelRec's SHD network: 2; ConvDelRec's code: 4)

    def __post_init__(self):
        if self.arch not in ("dense", "conv"):
            raise ValueError(f"arch must be 'dense' or 'conv', got {self.arch!r}")
        for f in ("n_in", "hidden", "n_out", "kernel", "dmax", "w_bits"):
            if int(getattr(self, f)) < 1:
                raise ValueError(f"{f} must be >= 1, got {getattr(self, f)}")
        if int(self.layers) < 2:
            raise ValueError(f"layers must be >= 2 (one feed-forward, then recurrent ones), got "
                             f"{self.layers}")
        if self.kernel % 2 != 1:
            raise ValueError(f"kernel must be odd, got {self.kernel}")
        for b, sh, what in ((self.beta, self.beta_shift, "beta"),
                            (self.out_beta, self.out_beta_shift, "out_beta")):
            if not 0 <= sh <= 24 or not 0 <= b <= 1 << sh:
                raise ValueError(f"{what}={b} must be in [0, 2**shift] with shift={sh} in "
                                 "[0, 24]")
        if self.threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {self.threshold}")
        if not 0.0 <= self.tonotopic <= 1.0:
            raise ValueError(f"tonotopic must be in [0, 1] (a fraction of the layer), got "
                             f"{self.tonotopic}")
        object.__setattr__(self, "delay_init", tuple(float(v) for v in self.delay_init))

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class Forward(NamedTuple):
    """``logits`` (B, C): the time-mean of the read-out membrane (float units); ``v`` (B, T,
    C): the read-out membrane (integer units in quant mode); ``s1``, ``s2`` (B, T, H): the
    spikes of the first two LIF layers (before dropout); ``more``: those of hidden layers 3,
    4, ... (``layers > 2``)."""

    logits: torch.Tensor
    v: torch.Tensor
    s1: torch.Tensor
    s2: torch.Tensor
    more: tuple = ()


class _ArcTanSpike(torch.autograd.Function):
    """Heaviside forward; arctan surrogate backward, ``alpha / 2 / (1 + (pi/2 alpha x)**2)``."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        a = ctx.alpha
        return grad * (a / 2) / (1 + (math.pi / 2 * a * x) ** 2), None


def spike(x: torch.Tensor, alpha: float = 5.0) -> torch.Tensor:
    """Return ``x >= 0`` as 0/1 of ``x``'s dtype, with the arctan surrogate gradient."""
    return _ArcTanSpike.apply(x, alpha)


def delay_kernel(d: torch.Tensor, sigma: float, length: int) -> torch.Tensor:
    """Return the ``(N, length)`` triangular interpolation mask of delays ``d`` (``(N,)``).

    ``mask[o, l] = max(0, s - |l - d_o|)``, ``s = 1 + sigma``, normalised so that every row
    sums to 1 (DelRec divides by ``s**2``, the triangle's area, which the samples match only
    approximately and not at the ends of the window). With ``sigma = 0`` and an integer
    ``d_o`` the row is one-hot at ``l = d_o``; a fractional ``d_o`` interpolates linearly
    between its two neighbours. Differentiable in ``d``.
    """
    l = torch.arange(length, dtype=d.dtype, device=d.device)
    return _band_weights(d, sigma, l.expand(d.shape[0], length))


def _band_weights(d: torch.Tensor, sigma: float, l: torch.Tensor) -> torch.Tensor:
    """Normalised triangle weights of delays ``d`` (N,) at positions ``l`` (N, W); positions
    outside ``[0, length)`` must be given as NaN-free values with zero weight by the caller."""
    tri = (1.0 + float(sigma) - (l - d[:, None]).abs()).clamp(min=0)
    return tri / tri.sum(1, keepdim=True)


def delay_band(d: torch.Tensor, sigma: float, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The non-zero part of :func:`delay_kernel`: ``(start, weight)``, ``(N,)`` and ``(N, W)``.

    ``weight[o, w]`` sits at position ``l = start[o] + w``: ``W = 2 ceil(1 + sigma) + 3``
    positions around ``round(d_o)`` cover the triangle's support (the whole window when that
    is shorter); positions off ``[0, length)`` get weight 0, so
    ``sum_w weight[o, w] * h[start[o] + w]`` equals ``sum_l mask[o, l] * h[l]``.
    """
    r = math.ceil(1.0 + float(sigma)) + 1
    width = 2 * r + 1
    if width >= length:
        return (torch.zeros(d.shape[0], dtype=torch.int64), delay_kernel(d, sigma, length))
    start = torch.round(d.detach()).to(torch.int64) - r
    l = start[:, None] + torch.arange(width)[None, :]
    inside = (l >= 0) & (l < length)
    w = _band_weights(d, sigma, l.to(d.dtype)) * inside
    return start, w / w.sum(1, keepdim=True)


def round_delays(d: torch.Tensor, dmax: int) -> torch.Tensor:
    """Integer delays ``round(clamp(d, 0, dmax - 1))`` (half to even) as int64."""
    return torch.round(d.detach().clamp(0, dmax - 1)).to(torch.int64)


def _dropout(s: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout of whole neurons for a whole sample: one mask per (sample, neuron), shared by
    every step of ``s`` (B, T, H), as spikingjelly's multi-step dropout does."""
    if not training or p <= 0:
        return s
    keep = torch.empty(s.shape[0], 1, s.shape[2], dtype=s.dtype).bernoulli_(1 - p)
    return s * keep / (1 - p)


def _ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``q`` forward, identity gradient to ``x`` (straight-through); just ``q`` without grad."""
    return x + (q - x).detach() if x.requires_grad else q


def _band_index(n: int, k: int) -> torch.Tensor:
    """(n, n) index into ``[0, w_0 .. w_{K-1}]``: entry (i, j) picks ``w[j - i + p]`` (shifted
    by one) where ``|j - i| <= p``, else 0, the zero in front. ``p = (K - 1) / 2``."""
    p = (k - 1) // 2
    d = torch.arange(n)[None, :] - torch.arange(n)[:, None] + p
    return torch.where((d >= 0) & (d < k), d + 1, 0)


def _band(w: torch.Tensor, n: int) -> torch.Tensor:
    """The (n, n) banded matrix M of the zero-padded K-tap convolution ``out[:, i] = sum_k
    w[k] z[:, i + k - p]``: ``out = z @ M.T``. One matrix product per step instead of K shifted
    adds is faster on a CPU (and F.conv1d's transpose slower still; timings in docs/audio.md);
    the sums are ordered differently, so float results differ in the last bits."""
    return torch.cat([w.new_zeros(1), w])[_band_index(n, w.shape[0])]


def _band_grad(a: torch.Tensor, k: int) -> torch.Tensor:
    """Gradient of the K taps from ``a = dL/dM`` (n, n), the adjoint of :func:`_band`: tap k
    collects the diagonal ``k - p`` of ``a``."""
    g = a.new_zeros(k + 1).index_add_(0, _band_index(a.shape[0], k).flatten(), a.flatten())
    return g[1:]


def _rec_matrix(w_rec: torch.Tensor, n: int) -> torch.Tensor:
    """The recurrence as an (n, n) matrix: dense weights as they are, a K-tap kernel banded."""
    return w_rec if w_rec.ndim == 2 else _band(w_rec, n)


class _FusedLIF(torch.autograd.Function):
    """A LIF layer over all steps with a hand-written backward pass (BPTT), optionally with the
    delayed recurrence; one Function instead of ~10 autograd nodes per step.

    Inputs (time-major): ``i`` (T, B, H) currents; ``w_rec`` (H, H) dense or (K,) conv weights
    or ``None``; ``weight`` (W, H) and ``start`` (H,): neuron ``o`` hears its own spike with
    delay ``1 + start[o] + w`` through ``weight[w, o]``; ``leak`` = (beta, shift, floor);
    threshold ``th``; surrogate ``alpha``; ``drop`` (T, B, H) recurrent dropout multipliers or
    ``None``; ``L`` the history depth (dmax). Per step::

        z = drop * sum_w weight[w] * s(t - 1 - start - w)    rec = z W^T  (or the K-tap conv)
        v_hat = leak(v) + i + rec;  s = [v_hat >= th];  v = v_hat (1 - s)

    The reset is detached and the floor leak passes its gradient straight through (beta').

    The history is kept *skewed*: row ``P + t + D_o`` of column ``o`` holds ``s_o(t)``, with
    ``D_o = 1 + start[o]``, so that every neuron's band is the same contiguous slice of rows
    ``P + t - W + 1 .. P + t`` (no gather, no scatter). Rows a neuron has not written yet are
    zero; they only meet weights of positions ``l < 0``, which are zero.
    """

    @staticmethod
    def forward(ctx, i, w_rec, weight, start, leak, th, alpha, drop, L):
        T, B, H = i.shape
        beta, shift, floor = leak
        bf = beta / (1 << shift)
        rec = w_rec is not None
        v = i.new_zeros(B, H)
        X = torch.empty_like(i)               # surrogate argument (v_hat - th) / th
        out = torch.empty_like(i)
        if rec:
            W = weight.shape[0]
            P = W
            Q = i.new_zeros(P + T + L + 1, B, H)
            wflip = weight.detach().flip(0).unsqueeze(1)                 # (W, 1, H)
            rows = P + 1 + start                                         # + t: write rows
            cols = torch.arange(H)
            Z = torch.empty_like(i)
            wr = _rec_matrix(w_rec.detach(), H)
        for t in range(T):
            u = torch.floor(v * beta / (1 << shift)) if floor else v * bf
            v_hat = u + i[t]
            if rec:
                z = (Q[P + t - W + 1:P + t + 1] * wflip).sum(0)
                if drop is not None:
                    z = z * drop[t]
                Z[t] = z
                v_hat = v_hat + z @ wr.T
            x = (v_hat - th) / th
            s = (x >= 0).to(i.dtype)
            X[t] = x
            out[t] = s
            if rec:
                Q[rows + t, :, cols] = s.T
            v = v_hat * (1 - s)
        ctx.save_for_backward(out, X, Z if rec else None, w_rec if rec else None,
                              weight if rec else None, start if rec else None, drop,
                              Q if rec else None)
        ctx.consts = (bf, th, alpha, L, rec)
        return out

    @staticmethod
    def backward(ctx, g_out):
        spikes, X, Z, w_rec, weight, start, drop, Q = ctx.saved_tensors
        bf, th, alpha, L, rec = ctx.consts
        T, B, H = X.shape
        sur = (alpha / 2) / (1 + (math.pi / 2 * alpha * X) ** 2) / th     # ds/dv_hat
        g_i = torch.empty_like(X)
        if rec:
            W = weight.shape[0]
            P = W
            gQ = torch.zeros_like(Q)          # gradient reaching Q's rows through later z
            GZ = torch.empty_like(X)
            wflip = weight.detach().flip(0).unsqueeze(1)
            rows = P + 1 + start
            cols = torch.arange(H)
            wr = _rec_matrix(w_rec.detach(), H)
        g_next = torch.zeros_like(X[0])       # dL / dv_hat(t + 1)
        for t in range(T - 1, -1, -1):
            gs = g_out[t] + gQ[rows + t, :, cols].T if rec else g_out[t]
            g = gs * sur[t] + (1 - spikes[t]) * bf * g_next
            g_i[t] = g
            if rec:
                gz = g @ wr
                if drop is not None:
                    gz = gz * drop[t]
                GZ[t] = gz
                gQ[P + t - W + 1:P + t + 1] += wflip * gz
            g_next = g
        g_w = g_weight = None
        if rec:
            if ctx.needs_input_grad[1]:
                g_w = g_i.reshape(-1, H).T @ Z.reshape(-1, H)
                if w_rec.ndim == 1:
                    g_w = _band_grad(g_w, w_rec.shape[0])
            if ctx.needs_input_grad[2]:
                # z(t) = sum_w weight[w] Q[P + t - w] (GZ carries the dropout factor)
                g_weight = torch.stack([(Q[P - w:P - w + T] * GZ).sum((0, 1))
                                        for w in range(W)])
        return g_i, g_w, g_weight, None, None, None, None, None, None


def _recurrence(cfg: ModelConfig) -> tuple[nn.Parameter, nn.Parameter]:
    """A recurrent projection's weights (dense ``(H, H)`` or kernel ``(K,)``, nn.Linear's
    default range) and its presynaptic delays (uniform in ``cfg.delay_init``)."""
    h = cfg.hidden
    fan = h if cfg.arch == "dense" else cfg.kernel
    shape = (h, h) if cfg.arch == "dense" else (cfg.kernel,)
    bound = 1.0 / math.sqrt(fan)
    w_rec = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
    lo, hi = (min(max(v, 0.0), 1.0) * (cfg.dmax - 1) for v in cfg.delay_init)
    return w_rec, nn.Parameter(torch.empty(h).uniform_(lo, hi))


class _RecLayer(nn.Module):
    """Hidden layer 3, 4, ...: ``Linear(H->H) [+BN] + rec(t) -> LIF``, like layer 2."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h, bn = cfg.hidden, cfg.batchnorm
        self.fc = nn.Linear(h, h, bias=not bn)
        self.bn = nn.BatchNorm1d(h) if bn else None
        self.w_rec, self.delay = _recurrence(cfg)


class DelRecNet(nn.Module):
    """DelRec (``arch="dense"``) or ConvDelRec (``arch="conv"``); see the module docstring.

    ``sigma`` (a buffer, set by the trainer) is the triangle's extra half-width while training
    in float mode.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        h, bn = cfg.hidden, cfg.batchnorm
        self.fc1 = nn.Linear(cfg.n_in, h, bias=not bn)
        self.bn1 = nn.BatchNorm1d(h) if bn else None
        self.fc2 = nn.Linear(h, h, bias=not bn)
        self.bn2 = nn.BatchNorm1d(h) if bn else None
        self.w_rec, self.delay = _recurrence(cfg)
        self.fc3 = nn.Linear(h, cfg.n_out)      # the read-out, fed by the last hidden layer
        self.register_buffer("sigma", torch.tensor(0.0))
        if cfg.tonotopic > 0:
            self._tonotopic_(cfg.tonotopic)
        # hidden layers 3, 4, ...: drawn after everything above, so that a 2-layer network's
        # parameters (and names) are the same with or without this option
        self.more = nn.ModuleList(_RecLayer(cfg) for _ in range(cfg.layers - 2))

    def _tonotopic_(self, width: float) -> None:
        """Give neighbouring hidden neurons neighbouring receptive fields at initialisation.

        The input channels are ordered by characteristic frequency. Each initial weight of
        ``fc1`` and ``fc2`` is multiplied by a Gaussian of the distance between the two
        neurons' positions on [0, 1] (standard deviation ``width``), rescaled so every row keeps
        its variance. Hidden neuron ``i`` then starts tuned near frequency ``i / (H - 1)`` of
        the input range, and ConvDelRec's kernel, which connects neurons ``i - (K-1)/2 ..
        i + (K-1)/2``, connects neurons of similar frequency instead of random partners.
        Training may move away from it; only the starting point changes. The weights are drawn
        first and then scaled, so the random stream (and every other parameter) is the same as
        without it.
        """
        with torch.no_grad():
            for fc in (self.fc1, self.fc2):
                n_out, n_in = fc.weight.shape
                po = torch.linspace(0, 1, n_out)[:, None]
                pi = torch.linspace(0, 1, n_in)[None, :]
                env = torch.exp(-0.5 * ((po - pi) / width) ** 2)
                env *= torch.sqrt(n_in / (env ** 2).sum(dim=1, keepdim=True))
                fc.weight.mul_(env)

    # ---------------------------------------------------------------------------- parameters

    def rec_layers(self) -> list[tuple]:
        """``(fc, bn, w_rec, delay)`` of each recurrent hidden layer (2, 3, ...)."""
        return [(self.fc2, self.bn2, self.w_rec, self.delay)] + [
            (m.fc, m.bn, m.w_rec, m.delay) for m in self.more]

    def recurrent_parameters(self) -> int:
        """Weights and delays of the recurrent projections (dense ``H*H + H``, conv ``K + H``
        per recurrent layer)."""
        return sum(w.numel() + d.numel() for _, _, w, d in self.rec_layers())

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n.rsplit(".", 1)[-1] != "delay"]

    def rec_weights(self) -> list[nn.Parameter]:
        """The recurrent weights (dense matrices or conv kernels), layer 2 first."""
        return [w for _, _, w, _ in self.rec_layers()]

    def delays(self) -> list[nn.Parameter]:
        """The learned delays of every recurrent layer, layer 2 first."""
        return [d for _, _, _, d in self.rec_layers()]

    def clamp_delays_(self) -> None:
        """Keep every delay in ``[0, dmax - 1]`` (call after each optimiser step)."""
        with torch.no_grad():
            for d in self.delays():
                d.clamp_(0, self.cfg.dmax - 1)

    def clamp_self_(self) -> None:
        """Keep the self-connection (dense diagonal, conv centre tap) at most ``self_max``
        times the threshold (call after each optimiser step).

        A self-connection at or above the threshold latches: once a neuron fires, its own
        delayed spike makes it fire again every ``1 + d`` steps whatever its input. While the
        delay kernel is wide the spike is spread over many steps, so training can push the
        weight past the threshold unnoticed; when the kernel narrows the latch appears and the
        loss jumps (seen with ConvDelRec; docs/audio.md gives the run).
        """
        if self.cfg.self_max is None:
            return
        lim = self.cfg.self_max * self.cfg.threshold
        with torch.no_grad():
            for w in self.rec_weights():
                if self.cfg.arch == "dense":
                    w.diagonal().clamp_(max=lim)
                else:
                    w[(self.cfg.kernel - 1) // 2].clamp_(max=lim)

    def int_delays(self, layer: int = 0) -> torch.Tensor:
        """The IR delays ``1 + round(d)`` of recurrent layer ``layer`` (0: hidden layer 2),
        int64 ``(H,)``."""
        return 1 + round_delays(self.delays()[layer], self.cfg.dmax)

    def folded(self) -> dict:
        """float64 weights and biases with BatchNorm (running statistics) folded in.

        The same operations as :func:`model.quantise.fold_batchnorm`, so the same floats.
        ``w1``/``b1``: hidden layer 1; ``rec``: one ``{w, b, w_rec}`` per recurrent layer
        (2, 3, ...); ``w_out``/``b_out``: the read-out.
        """
        w1, b1 = _fold(self.fc1, self.bn1)
        w_out, b_out = _fold(self.fc3, None)
        rec = [dict(zip(("w", "b"), _fold(fc, bn)), w_rec=w.double())
               for fc, bn, w, _ in self.rec_layers()]
        return {"w1": w1, "b1": b1, "rec": rec, "w_out": w_out, "b_out": b_out}

    def quantised(self) -> dict:
        """Integer-valued float64 weights, biases and thresholds (straight-through gradients)
        and the layer scales, exactly as :func:`model.quantise.quantise_audio` computes them;
        the keys of :meth:`folded`, each recurrent layer with its threshold ``th``."""
        f = self.folded()
        qmax = (1 << (self.cfg.w_bits - 1)) - 1
        scale = lambda *ws: qmax / max(float(w.detach().abs().max()) for w in ws)
        q = lambda s, a: _ste(s * a, torch.round(s * a.detach()))
        th = lambda s: int(np.rint(s * self.cfg.threshold))
        s1, s_out = scale(f["w1"]), scale(f["w_out"])
        rec = []
        for r in f["rec"]:
            s = scale(r["w"], r["w_rec"])
            rec.append({"w": q(s, r["w"]), "b": q(s, r["b"]), "w_rec": q(s, r["w_rec"]),
                        "th": th(s)})
        return {"w1": q(s1, f["w1"]), "b1": q(s1, f["b1"]), "th1": th(s1), "rec": rec,
                "w_out": q(s_out, f["w_out"]), "b_out": q(s_out, f["b_out"]),
                "out_scale": s_out}

    # ---------------------------------------------------------------------------- dynamics

    def _leak(self, v: torch.Tensor, beta: int, shift: int, quant: bool) -> torch.Tensor:
        lin = v * (beta / (1 << shift))
        if not quant:
            return lin
        # floor((beta * v) / 2**shift): exact in float64 for integer-valued |v| < 2**44
        return _ste(lin, torch.floor(v.detach() * beta / (1 << shift)))

    def _lif(self, i: torch.Tensor, th: float, quant: bool) -> torch.Tensor:
        """Spikes (B, T, H) of the first LIF layer driven by currents ``i`` (B, T, H)."""
        c = self.cfg
        out = _FusedLIF.apply(i.transpose(0, 1).contiguous(), None, None, None,
                              (c.beta, c.beta_shift, quant), th, c.alpha, None, 0)
        return out.transpose(0, 1)

    def _lif_rec(self, i: torch.Tensor, w_rec: torch.Tensor, th: float, quant: bool,
                 kernel: bool, delay: torch.Tensor) -> torch.Tensor:
        """Spikes of a recurrent LIF layer with presynaptic delays ``delay``; ``kernel``: the
        triangle mask, else integer delays."""
        c = self.cfg
        B, T, H = i.shape
        L = c.dmax
        if kernel:
            start, weight = delay_band(delay.clamp(0, L - 1).to(i.dtype),
                                       float(self.sigma), L)
            weight = weight.T                                             # (W, H)
        else:
            start = round_delays(delay, L)
            weight = torch.ones(1, H, dtype=i.dtype)
        drop = None
        if self.training and c.rec_dropout > 0:
            keep = torch.empty(T, B, H, dtype=i.dtype).bernoulli_(1 - c.rec_dropout)
            drop = keep / (1 - c.rec_dropout)
        out = _FusedLIF.apply(i.transpose(0, 1).contiguous(), w_rec, weight, start,
                              (c.beta, c.beta_shift, quant), th, c.alpha, drop, L)
        return out.transpose(0, 1)

    def _lif_rec_reference(self, i: torch.Tensor, w_rec: torch.Tensor, th: float,
                           quant: bool, kernel: bool, delay: torch.Tensor) -> torch.Tensor:
        """Step-by-step autograd version of :meth:`_lif_rec` (no recurrent dropout): the
        reference its fused gradient is tested against."""
        c = self.cfg
        B, T, H = i.shape
        L = c.dmax
        v = torch.zeros_like(i[:, 0])
        win = i.new_zeros(L, B, H)     # win[l] = s(t - 1 - l)
        if kernel:
            start, weight = delay_band(delay.clamp(0, L - 1).to(i.dtype),
                                       float(self.sigma), L)
            band = (start[:, None] + torch.arange(weight.shape[1])).clamp(0, L - 1)
            idx = band.T.unsqueeze(1).expand(-1, B, H)
            weight = weight.T.unsqueeze(1)
        else:
            idx = round_delays(delay, L).view(1, 1, H).expand(1, B, H)
            weight = torch.ones(1, 1, H, dtype=i.dtype)
        out = []
        for i_t in i.unbind(1):
            z = (win.gather(0, idx) * weight).sum(0)
            rec = z @ w_rec.T if c.arch == "dense" else F.conv1d(
                z.unsqueeze(1), w_rec.view(1, 1, -1), padding=(w_rec.shape[0] - 1) // 2
            ).squeeze(1)
            v = self._leak(v, c.beta, c.beta_shift, quant) + i_t + rec
            s = spike((v - th) / th, c.alpha)
            v = v * (1.0 - s.detach())
            out.append(s)
            win = torch.cat([s.unsqueeze(0), win[:-1]], 0)
        return torch.stack(out, 1)

    def _readout(self, i: torch.Tensor, quant: bool) -> torch.Tensor:
        c = self.cfg
        v = torch.zeros_like(i[:, 0])
        vs = []
        for i_t in i.unbind(1):
            v = self._leak(v, c.out_beta, c.out_beta_shift, quant) + i_t
            vs.append(v)
        return torch.stack(vs, 1)

    def forward(self, x: torch.Tensor, *, mode: Mode = "float") -> Forward:
        """Run a batch ``x`` (B, T, n_in) of input counts; see :class:`Forward`."""
        if mode not in ("float", "quant"):
            raise ValueError(f"mode must be 'float' or 'quant', got {mode!r}")
        c = self.cfg
        B, T, _ = x.shape
        drop = lambda s: _dropout(s, c.dropout, self.training)
        if mode == "quant":
            q = self.quantised()
            x = x.double()
            spikes = [self._lif(x @ q["w1"].T + q["b1"], q["th1"], True)]
            for r, d in zip(q["rec"], self.delays()):
                spikes.append(self._lif_rec(drop(spikes[-1]) @ r["w"].T + r["b"], r["w_rec"],
                                            r["th"], True, kernel=False, delay=d))
            v = self._readout(drop(spikes[-1]) @ q["w_out"].T + q["b_out"], True)
            return Forward(v.mean(1) / q["out_scale"], v, spikes[0], spikes[1],
                           tuple(spikes[2:]))
        x = x.float()

        def bn(i, m):
            return i if m is None else m(i.reshape(B * T, -1)).reshape(B, T, -1)

        spikes = [self._lif(bn(self.fc1(x), self.bn1), c.threshold, False)]
        for fc, m, w_rec, d in self.rec_layers():
            spikes.append(self._lif_rec(bn(fc(drop(spikes[-1])), m), w_rec, c.threshold, False,
                                        kernel=self.training, delay=d))
        v = self._readout(self.fc3(drop(spikes[-1])), False)
        return Forward(v.mean(1), v, spikes[0], spikes[1], tuple(spikes[2:]))


def _fold(fc: nn.Linear, bn: nn.BatchNorm1d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 weight and bias of ``fc`` with ``bn`` (running statistics) folded in."""
    w = fc.weight.double()
    b = fc.bias.double() if fc.bias is not None else torch.zeros(w.shape[0],
                                                                dtype=torch.float64)
    if bn is not None:
        # running_var is a buffer (no gradient); numpy's sqrt is the quantiser's (torch's
        # vectorised float64 sqrt differs from it in the last bit now and then)
        std = np.sqrt(bn.running_var.detach().double().numpy() + bn.eps)
        g = bn.weight.double() / torch.from_numpy(std)
        w = w * g[:, None]
        b = (b - bn.running_mean.double()) * g + bn.bias.double()
    return w, b


def parameter_counts(model: DelRecNet) -> dict[str, int]:
    """Trainable parameters: ``recurrent`` (weights + delays of the recurrent projection) and
    ``total`` (BatchNorm's affine parameters included, its running statistics not)."""
    return {"recurrent": model.recurrent_parameters(),
            "total": sum(p.numel() for p in model.parameters())}


def to_network(model: DelRecNet, *, in_bits: int, name: str | None = None,
               meta: dict | None = None) -> Network:
    """Fold BatchNorm and quantise ``model`` with :func:`model.quantise.quantise_audio`."""
    c = model.cfg
    f = model.folded()
    np_ = lambda t: t.detach().numpy()
    rec = [(np_(r["w"]), np_(r["b"]), np_(r["w_rec"]), model.int_delays(k).numpy())
           for k, r in enumerate(f["rec"])]
    # fields added later are written only when set, so that an older network retrained from
    # its seed is the same file (the same digest)
    later = {"tonotopic": 0.0, "layers": 2}
    info = {"model": {k: (list(v) if isinstance(v, tuple) else v)
                      for k, v in asdict(c).items() if later.get(k, object()) != v}}
    info.update(meta or {})
    return quantise_audio(np_(f["w1"]), np_(f["b1"]), *rec[0], np_(f["w_out"]),
                          np_(f["b_out"]), in_bits=in_bits,
                          w_bits=c.w_bits, beta=c.beta, beta_shift=c.beta_shift,
                          out_beta=c.out_beta, out_beta_shift=c.out_beta_shift,
                          threshold_float=c.threshold, max_delay=c.dmax,
                          name=name or ("delrec" if c.arch == "dense" else "convdelrec"),
                          meta=info, more=rec[1:])
