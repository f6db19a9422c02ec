"""Event-driven working-memory engine: recall trials in float or integer, gradient training.

Training is surrogate-gradient descent with a hand-written backward pass (below).

Why event-driven. The current into every neuron is ``I(t) = sum_k W[:, :, k] e(t - 1 - k)``:
``N * N * D`` multiply-adds per step if done densely (10.7 M at the paper setting). But only
``~ N * p * D`` (neuron, delay) pairs are active at any step (~42 there), so each emitted spike
instead adds its whole delay profile ``W[:, j, :]`` (``D x N`` numbers) into a ring buffer of
future currents, ``fut[(t + 1 + k) mod D] += W[:, j, k]``; the current of step ``t`` is then
read from one slot. That is ``D * N`` additions per spike, ~500x less work than the dense
product at the paper setting.

Modes of :func:`run_trials`:

- ``"float"``: the float model of :class:`model.wm.network.WMNet` (same step, same results up to
  float rounding; float32 by default, float64 on request).
- ``"int"``: the integer contract on a quantised :class:`~model.ir.Network` (as made by
  :func:`model.quantise.quantise_wm`), bit-identical to :func:`sim.reference.simulate`:
  int64 currents, ``u = (beta * v) >> beta_shift`` (floor), saturation to ``v_bits``.

Training (:func:`train`) runs the same forward pass, stores the membranes, and computes the
exact gradient of the loss by a backward pass written out by hand (no autograd graph of
~1000 steps):

    g(t)      = dL/dv_hat(t)
              = [dL/ds(t) + (1 - f(t)) dL/de(t)] * sg'(v_hat(t) - theta)
                + beta * g(t + 1) * (1 - s(t))            (reset "zero"; "subtract": no factor)
    dL/de(t)  = sum_k W[:, :, k]^T g(t + 1 + k)           (the spike path: one dense product)
    dL/dW[i, j, k] = sum_t g_i(t) e_j(t - 1 - k)          (only active pairs: event-driven)

with the reset treated as constant (detached) and the surrogate derivative ``sg'`` of the
Heaviside step: ``"fast_sigmoid"`` ``1 / (1 + slope |x|)^2`` (the paper's, slope 15) or
``"triangle"`` ``max(0, 1 - slope |x|)``. The same mathematics, written densely with
autograd, is :mod:`model.wm.dense`; the tests check the two gradients agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from model.ir import Network
from model.wm.recall import f1_from_counts, score_recall, trial_forcing

__all__ = ["Trials", "run_trials", "recall", "loss_and_grad", "TrainConfig", "train",
           "fake_quantise", "wm_layer"]

Mode = Literal["float", "int"]
Loss = Literal["f1", "margin"]
Surrogate = Literal["fast_sigmoid", "triangle"]

#: Steps per block of the backward pass's spike-path product (:func:`loss_and_grad`).
BLOCK = 16


# --------------------------------------------------------------------------------------------
# Forward

@dataclass
class Trials:
    """Result of :func:`run_trials`: own spikes ``s`` (bool) and, when asked, the membranes
    before reset ``v_hat`` and after reset ``v``, all ``(B, steps, n)``; ``emitted`` lists the
    emitted spikes ``e = s OR f`` as ``(step, batch, neuron)`` rows in step order."""

    s: torch.Tensor
    v_hat: torch.Tensor | None
    v: torch.Tensor | None
    emitted: torch.Tensor


def wm_layer(net: Network):
    """The LIF layer and ``taps`` weights ``(n, n, D)`` of a working-memory IR, or a clear
    error if ``net`` is not one (two layers, layer 1 forced, one recurrent taps projection
    with first delay 1, no bias)."""
    if len(net.layers) != 2 or net.layers[0].n != 0 or len(net.projections) != 1:
        raise ValueError(f"network {net.name!r} is not a working-memory network: expected "
                         f"an empty input layer, one LIF layer and one projection")
    layer, proj = net.layers[1], net.projections[0]
    if proj.kind != "taps" or proj.src != 1 or proj.dst != 1 or int(np.asarray(proj.delay)) != 1:
        raise ValueError(f"network {net.name!r}: the projection must be recurrent taps on "
                         f"layer 1 with first delay 1, got {proj.kind} {proj.src}->{proj.dst}")
    if layer.bias is not None and np.any(layer.bias):
        raise ValueError(f"network {net.name!r}: working-memory layers have no bias")
    if layer.threshold is None:
        raise ValueError(f"network {net.name!r}: layer 1 must spike (it has no threshold)")
    return layer, np.asarray(proj.weight)


def _validate_forced(forced, n: int) -> torch.Tensor:
    f = torch.as_tensor(np.asarray(forced) if not isinstance(forced, torch.Tensor) else forced)
    if f.ndim != 3 or f.shape[2] != n:
        raise ValueError(f"forced must have shape (batch, steps, {n}), got {tuple(f.shape)}")
    return f.to(torch.bool)


class _single_thread:
    """Run the step loop on one intra-op thread: its operations are small (a few thousand
    numbers), so extra threads only add synchronisation, and spin-waiting threads are very
    slow when the cores are shared with other jobs. Restores the caller's setting."""

    def __enter__(self):
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


def run_trials(w_or_net, forced, *, mode: Mode = "float", beta: int = 205, beta_shift: int = 8,
               threshold: float = 1.0, reset: str = "zero", silence=None,
               record: bool = False, teacher_from: int | None = None,
               dtype=torch.float32) -> Trials:
    """Run recall trials on the forced rasters ``forced`` ``(B, steps, n)`` (bool).

    ``mode="float"``: ``w_or_net`` is the float tensor ``W[i, j, k]`` ``(n, n, D)`` and
    ``beta``, ``beta_shift``, ``threshold``, ``reset`` give the neuron (as in
    :class:`model.wm.network.WMNet`). ``mode="int"``: ``w_or_net`` is a quantised
    :class:`~model.ir.Network` and the neuron comes from its layer (the keyword arguments are
    ignored). ``silence``: optional bool ``(n,)`` of neurons that never fire (their own spikes
    are suppressed; forced spikes still pass). ``record`` keeps ``v_hat`` and ``v``.
    ``teacher_from``: from this step on only the forced raster is emitted (teacher forcing:
    own spikes are computed and reset the membrane but do not enter the delay lines).
    """
    if mode == "int":
        if not isinstance(w_or_net, Network):
            raise TypeError("mode='int' needs a quantised Network (model.quantise.quantise_wm)")
        layer, w_np = wm_layer(w_or_net)
        w = torch.as_tensor(np.array(w_np, dtype=np.int64))
        beta, beta_shift, reset = layer.beta, layer.beta_shift, layer.reset
        thr = int(layer.threshold)
        vmax = (1 << (layer.v_bits - 1)) - 1
        vmin = -(1 << (layer.v_bits - 1))
    elif mode == "float":
        w = torch.as_tensor(w_or_net, dtype=dtype) if not isinstance(w_or_net, torch.Tensor) \
            else w_or_net.detach().to(dtype)
        thr = float(threshold)
        b_f = beta / 2 ** beta_shift
    else:
        raise ValueError(f"mode must be 'float' or 'int', got {mode!r}")
    if w.ndim != 3 or w.shape[0] != w.shape[1]:
        raise ValueError(f"w must have shape (n, n, D), got {tuple(w.shape)}")
    if reset not in ("zero", "subtract"):
        raise ValueError(f"reset must be 'zero' or 'subtract', got {reset!r}")
    n, _, d = w.shape
    f = _validate_forced(forced, n)
    bsz, steps, _ = f.shape
    # profile[j, k, i] = W[i, j, k]: everything spike j sends, delay by delay.
    profile = w.permute(1, 2, 0).contiguous()
    fut = torch.zeros(bsz * d, n, dtype=w.dtype)   # row b * d + (t mod d): current of step t
    v = torch.zeros(bsz, n, dtype=w.dtype)
    quiet = None if silence is None else torch.as_tensor(np.asarray(silence), dtype=torch.bool)
    if quiet is not None and quiet.shape != (n,):
        raise ValueError(f"silence must have shape ({n},), got {tuple(quiet.shape)}")
    s_all = torch.zeros(bsz, steps, n, dtype=torch.bool)
    vh_all = torch.empty(bsz, steps, n, dtype=w.dtype) if record else None
    v_all = torch.empty(bsz, steps, n, dtype=w.dtype) if record else None
    ks = torch.arange(d)
    rows_b = torch.arange(bsz) * d
    emitted = []
    with torch.no_grad(), _single_thread():
        for t in range(steps):
            slot = rows_b + t % d
            i_in = fut[slot]
            fut[slot] = 0
            if mode == "int":
                v_hat = ((beta * v) >> beta_shift) + i_in
                v_hat.clamp_(vmin, vmax)
            else:
                v_hat = b_f * v + i_in
            s = v_hat >= thr
            if quiet is not None:
                s &= ~quiet
            if reset == "zero":
                v = torch.where(s, torch.zeros((), dtype=v_hat.dtype), v_hat)
            else:
                v = v_hat - thr * s.to(v_hat.dtype)
            s_all[:, t] = s
            if record:
                vh_all[:, t] = v_hat
                v_all[:, t] = v
            e = f[:, t] if teacher_from is not None and t >= teacher_from else s | f[:, t]
            bi, ji = torch.nonzero(e, as_tuple=True)
            if bi.numel():
                emitted.append(torch.stack([torch.full_like(bi, t), bi, ji], 1))
                dest = (bi[:, None] * d + (t + 1 + ks[None, :]) % d).reshape(-1)
                fut.index_add_(0, dest, profile[ji].reshape(-1, n))
    em = torch.cat(emitted) if emitted else torch.zeros(0, 3, dtype=torch.int64)
    return Trials(s=s_all, v_hat=vh_all, v=v_all, emitted=em)


def recall(w_or_net, targets: np.ndarray, *, mode: Mode = "float", pre: int = 10, seed: int,
           p: float | None = None, cue=None, silence=None, **lif) -> tuple[float, np.ndarray]:
    """Cue and score every pattern (micro-F1, per-pattern F1), as
    :func:`model.wm.network.recall_float` (or, in ``mode="int"``, as the integer reference
    simulator would) but event-driven. ``cue``: optional forced rasters to use instead of
    :func:`model.wm.recall.trial_forcing` (robustness experiments)."""
    d = w_or_net.max_delay if isinstance(w_or_net, Network) else int(np.shape(w_or_net)[2])
    f = trial_forcing(targets, d, pre=pre, p=p, seed=seed) if cue is None else cue
    tr = run_trials(w_or_net, f, mode=mode, silence=silence, **lif)
    return score_recall(targets, tr.s.numpy(), d, pre=pre)


# --------------------------------------------------------------------------------------------
# Backward

def _surrogate(x: torch.Tensor, kind: Surrogate, slope: float) -> torch.Tensor:
    if kind == "fast_sigmoid":
        return 1.0 / (1.0 + slope * x.abs()) ** 2
    if kind == "triangle":
        return torch.clamp(1.0 - x.abs() * slope, min=0.0)
    raise ValueError(f"surrogate must be 'fast_sigmoid' or 'triangle', got {kind!r}")


def _loss_terms(kind: Loss, s: torch.Tensor, v_hat: torch.Tensor, y: torch.Tensor,
                thr: float, margin: float):
    """Loss over the scored window and its direct gradients ``(dL/ds, dL/dv_hat)``.

    ``"f1"``: ``1 - 2 sum(s y) / (sum s + sum y)`` (micro soft-F1 on the hard spikes; 0 when
    both sums are 0), gradient to ``s`` (through the surrogate).
    ``"margin"``: a hinge on the membrane, ``sum y relu(theta + m - v_hat) + (1 - y)
    relu(v_hat - theta + m)`` divided by ``max(1, sum y)``, gradient straight to ``v_hat``:
    it also pushes correct neurons away from the threshold, by ``m = margin * theta``.
    """
    sf = s.to(v_hat.dtype)
    if kind == "f1":
        tp, den = (sf * y).sum(), sf.sum() + y.sum()
        if float(den) == 0:
            return 0.0, torch.zeros_like(sf), None
        loss = 1.0 - 2.0 * tp / den
        ds = -2.0 * y / den + 2.0 * tp / den ** 2
        return float(loss), ds, None
    if kind == "margin":
        m = margin * thr
        norm = max(1.0, float(y.sum()))
        lo = torch.relu(thr + m - v_hat)          # target steps below the upper margin
        hi = torch.relu(v_hat - thr + m)          # silent steps above the lower margin
        loss = (y * lo + (1 - y) * hi).sum() / norm
        dv = (-(y * (lo > 0)) + (1 - y) * (hi > 0)).to(v_hat.dtype) / norm
        return float(loss), None, dv
    raise ValueError(f"loss must be 'f1' or 'margin', got {kind!r}")


def loss_and_grad(w, targets: np.ndarray, forced, *, pre: int, loss: Loss = "f1",
                  surrogate: Surrogate = "fast_sigmoid", slope: float = 15.0,
                  margin: float = 0.25, beta: int = 205, beta_shift: int = 8,
                  threshold: float = 1.0, reset: str = "zero", teacher: bool = False,
                  w_forward=None, spike_path: str = "auto", dtype=torch.float32) -> dict:
    """One forward + hand-written backward pass over all patterns.

    ``forced`` ``(M, steps, n)`` is the trial (:func:`model.wm.recall.trial_forcing`); the loss is
    scored on steps ``pre + D .. pre + T - 1`` against ``targets[:, :, D:]``. ``teacher``:
    from the cue on the emitted spikes are the targets themselves (teacher forcing: the
    contexts are the stored windows, the loss measures one-step prediction, and the gradient
    takes no spike path at any step). ``w_forward``: weights for the forward pass when they
    differ from
    ``w`` (quantisation-aware training: the forward uses quantised weights, the gradient is
    applied to ``w``; straight-through). ``spike_path``: how ``dL/de`` is computed —
    ``"dense"``: ``sum_k W_k^T g(t + 1 + k)`` for every neuron, as blocked products (the
    only choice for the fast sigmoid, whose derivative is never zero: ``N * N * D``
    multiply-adds per pattern and step, the cost of one dense forward product);
    ``"sparse"``: only for the (pattern, neuron, step) where the surrogate is non-zero
    (``"triangle"``: within ``1 / slope`` of the threshold), ``N * D`` each; ``"auto"``
    picks sparse for the triangle.

    Returns ``loss``, ``grad`` (torch ``(n, n, D)``), ``f1`` (micro-F1 of the hard spikes on
    the scored window) and seconds of ``forward_s`` / ``backward_s``.
    """
    if spike_path not in ("auto", "dense", "sparse"):
        raise ValueError(f"spike_path must be 'auto', 'dense' or 'sparse', got {spike_path!r}")
    if spike_path == "sparse" and surrogate != "triangle":
        raise ValueError("spike_path='sparse' needs a surrogate with compact support "
                         "('triangle'): the fast sigmoid is non-zero everywhere")
    w = (torch.as_tensor(w, dtype=dtype) if not isinstance(w, torch.Tensor)
         else w.detach().to(dtype))
    wf = w if w_forward is None else torch.as_tensor(w_forward, dtype=dtype)
    n, _, d = w.shape
    x = torch.as_tensor(np.asarray(targets, dtype=bool))
    m, _, t_len = x.shape
    f = _validate_forced(forced, n)
    if f.shape[0] != m or f.shape[1] < pre + t_len:
        raise ValueError(f"forced must have shape ({m}, >= {pre + t_len}, {n}), "
                         f"got {tuple(f.shape)}")
    if teacher:
        f = f.clone()
        f[:, pre:pre + t_len] = x.transpose(1, 2)
    steps = f.shape[1]
    thr, b_f = float(threshold), beta / 2 ** beta_shift
    t0 = time.perf_counter()
    tr = run_trials(wf, f, beta=beta, beta_shift=beta_shift, threshold=thr, reset=reset,
                    record=True, teacher_from=pre if teacher else None, dtype=dtype)
    lo, hi = pre + d, pre + t_len
    y = x[:, :, d:].transpose(1, 2).to(dtype)
    s_win = tr.s[:, lo:hi]
    value, ds_win, dv_win = _loss_terms(loss, s_win, tr.v_hat[:, lo:hi], y, thr, margin)
    tp = int((s_win & y.bool()).sum())
    fp = int((s_win & ~y.bool()).sum())
    fn = int((~s_win & y.bool()).sum())
    t1 = time.perf_counter()

    # Backward, step by step from the end, in blocks of ``BLOCK`` steps (see below).
    dtype_ = w.dtype
    pass_e = (~f).to(dtype_)                       # (1 - f): forced spikes block the path
    sflt = tr.s.to(dtype_)
    keep = (1 - sflt) if reset == "zero" else torch.ones_like(sflt)
    g_all = torch.zeros(m, steps + d + 1, n, dtype=dtype_)   # g(t); zero past the end
    ks = torch.arange(d)
    g_next = torch.zeros(m, n, dtype=dtype_)
    # Compact support: only the few (b, j, t) near threshold need dL/de.
    sparse_path = spike_path == "sparse" or (spike_path == "auto" and surrogate == "triangle")
    if sparse_path:
        profile = wf.permute(1, 2, 0).contiguous()   # [j, k, i] = W[i, j, k]
    elif not teacher:
        stack = wf.permute(2, 0, 1).reshape(d * n, n)  # [k * n + i, j] = W[i, j, k]
    for t1_ in range(steps, 0, -BLOCK):
        t0_ = max(t1_ - BLOCK, 0)
        if not teacher and not sparse_path:
            # dL/de(t) = sum_k W_k^T g(t + 1 + k). The terms whose g lies beyond the block
            # are known now: one product for the whole block reads the weights once
            # (a product per step would stream all N*N*D weights from memory every step).
            ls = torch.arange(t0_, t1_)
            idx = ls[:, None] + 1 + ks[None, :]                  # (L, d)
            win = g_all[:, idx] * (idx >= t1_)[None, :, :, None].to(dtype_)
            far = (win.reshape(m * len(ls), d * n) @ stack).reshape(m, len(ls), n)
        for t in range(t1_ - 1, t0_ - 1, -1):
            sg = _surrogate(tr.v_hat[:, t] - thr, surrogate, slope)
            ds = torch.zeros(m, n, dtype=dtype_)
            if not teacher and t + 1 < steps:
                if sparse_path:
                    # Only where the surrogate is non-zero and the spike is not forced.
                    bi, ji = torch.nonzero((sg > 0) & ~f[:, t], as_tuple=True)
                    if bi.numel():
                        gw = g_all[bi, t + 1:t + 1 + d]           # (A, d, n)
                        ds[bi, ji] = (profile[ji] * gw).sum((1, 2))
                else:
                    near = min(t1_ - 1 - t, d)     # taps k < near reach g inside the block
                    de = far[:, t - t0_]
                    if near:
                        de = de + g_all[:, t + 1:t + 1 + near].reshape(m, near * n) \
                            @ stack[:near * n]
                    ds = de * pass_e[:, t]
            g = b_f * g_next * keep[:, t]
            if lo <= t < hi:
                if ds_win is not None:
                    ds = ds + ds_win[:, t - lo]
                if dv_win is not None:
                    g = g + dv_win[:, t - lo]
            g = g + ds * sg
            g_all[:, t] = g
            g_next = g
    # dL/dW[i, j, k] = sum over emitted spikes (tau, b, j) of g_b,i(tau + 1 + k): per delay
    # one sparse product, spikes (n x m*steps, one 1 per spike) times g shifted by 1 + k.
    em = tr.emitted
    spikes = torch.sparse_coo_tensor(torch.stack([em[:, 2], em[:, 1] * steps + em[:, 0]]),
                                     torch.ones(len(em), dtype=dtype_),
                                     (n, m * steps)).coalesce().to_sparse_csr()
    grad = torch.zeros(d, n, n, dtype=dtype_)      # [k, j, i]
    for k in range(d):
        grad[k] = spikes @ g_all[:, 1 + k:1 + k + steps].reshape(m * steps, n)
    t2 = time.perf_counter()
    return dict(loss=value, grad=grad.permute(2, 1, 0).contiguous(),
                f1=f1_from_counts(tp, fp, fn), forward_s=t1 - t0, backward_s=t2 - t1)


# --------------------------------------------------------------------------------------------
# Training

def fake_quantise(w: torch.Tensor, bits: int) -> torch.Tensor:
    """``w`` rounded to the grid of :func:`model.quantise.quantise_wm` at ``bits`` (one scale,
    ``max|w|`` -> ``2**(bits-1) - 1``), back in float units: what the integer network sees."""
    scale = ((1 << (bits - 1)) - 1) / float(w.abs().max())
    return torch.round(w * scale) / scale


@dataclass
class TrainConfig:
    """Settings of :func:`train` (see there)."""

    steps: int = 50
    lr: float = 1e-2
    loss: Loss = "f1"
    surrogate: Surrogate = "fast_sigmoid"
    slope: float = 15.0
    margin: float = 0.25
    teacher: bool = False
    qat_bits: int | None = None
    pre: int = 10
    p: float | None = None
    seed: int = 0
    fresh_noise: bool = True
    stop_f1: float | None = 1.0
    eval_every: int = 5
    eval_trials: int = 1
    beta: int = 205
    beta_shift: int = 8
    reset: str = "zero"
    checkpoint: str | None = None
    progress: bool = True


def train(w0, targets: np.ndarray, cfg: TrainConfig | None = None, *,
          dtype=torch.float32) -> dict:
    """Surrogate-gradient training of ``W`` from ``w0`` with Adam (full batch: all patterns).

    Each step runs the trial protocol (fresh pre-cue noise per step when ``fresh_noise``),
    computes :func:`loss_and_grad` and updates ``W``; with ``qat_bits`` the forward pass uses
    :func:`fake_quantise` weights (quantisation-aware fine-tuning). The learning rate is
    relative: Adam's step is ``lr * max|w0|`` (weights from least squares and from the
    Hebbian rule differ in scale by an order of magnitude). Every ``eval_every`` steps (and
    before the first) the free recall is scored (:func:`recall` on the fixed trial of
    ``seed``, averaged with ``eval_trials - 1`` more trials of other noise; float, in the
    integer grid's rounding when ``qat_bits``) and the best weights
    so far are kept: they are what is returned, so a step that breaks recall (teacher-forced
    training can overshoot into runaway activity) costs nothing. Training stops once that F1
    reaches ``stop_f1``. ``checkpoint``: a ``.npz`` path written after every evaluation
    (best weights, step, history). Returns ``w`` (best, float64 numpy; on the quantisation
    grid when ``qat_bits``), ``f1`` (its free
    recall F1), ``history`` (per step: loss, f1 of the training trial, recall F1 where
    evaluated, seconds) and ``seconds``.
    """
    from ..progress import progress

    cfg = TrainConfig() if cfg is None else cfg
    w = torch.nn.Parameter(torch.as_tensor(np.asarray(w0), dtype=dtype).clone())
    scale = float(w.detach().abs().max()) or 1.0
    opt = torch.optim.Adam([w], lr=cfg.lr * scale)
    d = w.shape[2]
    hist = []
    t_start = time.perf_counter()
    lif = dict(beta=cfg.beta, beta_shift=cfg.beta_shift, reset=cfg.reset)

    def evaluate() -> float:
        wf = fake_quantise(w.detach(), cfg.qat_bits) if cfg.qat_bits else w.detach()
        # Trial 0 is the seed's own; more trials (other noise) keep the choice honest.
        seeds = [cfg.seed] + [cfg.seed + 7_000_001 * (k + 1) for k in range(cfg.eval_trials - 1)]
        return float(np.mean([recall(wf, targets, pre=cfg.pre, p=cfg.p, seed=sd, dtype=dtype,
                                     **lif)[0] for sd in seeds]))

    best_f1, best_w = evaluate(), w.detach().clone()
    bar = progress(range(cfg.steps), desc="train wm", disable=not cfg.progress, leave=False)
    for step in bar:
        if cfg.stop_f1 is not None and best_f1 >= cfg.stop_f1:
            break
        noise_seed = cfg.seed + 1_000_003 * (step + 1) if cfg.fresh_noise else cfg.seed
        f = trial_forcing(targets, d, pre=cfg.pre, p=cfg.p, seed=noise_seed)
        wq = fake_quantise(w.detach(), cfg.qat_bits) if cfg.qat_bits else None
        out = loss_and_grad(w.detach(), targets, f, pre=cfg.pre, loss=cfg.loss,
                            surrogate=cfg.surrogate, slope=cfg.slope, margin=cfg.margin,
                            teacher=cfg.teacher, w_forward=wq, dtype=dtype, **lif)
        rec = dict(step=step, loss=out["loss"], f1=out["f1"],
                   seconds=out["forward_s"] + out["backward_s"])
        hist.append(rec)
        if cfg.loss == "margin" and out["loss"] == 0.0:
            break                                  # every margin met: nothing left to learn
        opt.zero_grad()
        w.grad = out["grad"]
        opt.step()
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            rec["recall_f1"] = f1 = evaluate()
            if f1 > best_f1:
                best_f1, best_w = f1, w.detach().clone()
            if cfg.checkpoint:
                _save_checkpoint(cfg.checkpoint, best_w, step, hist)
        bar.set_postfix(loss=f"{out['loss']:.4f}", best=f"{best_f1:.4f}")
    if cfg.qat_bits:   # what was evaluated (and what the quantiser will reproduce exactly)
        best_w = fake_quantise(best_w.to(torch.float64), cfg.qat_bits)
    return dict(w=best_w.to(torch.float64).numpy(), f1=best_f1, history=hist,
                seconds=time.perf_counter() - t_start)


def _save_checkpoint(path: str, w: torch.Tensor, step: int, hist: list) -> None:
    import json

    p = Path(path)
    tmp = p.with_name(p.name + ".tmp.npz")
    np.savez(tmp, w=w.numpy(), step=np.int64(step),
             history=np.frombuffer(json.dumps(hist).encode(), dtype=np.uint8))
    tmp.replace(p)
