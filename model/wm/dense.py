"""Dense baseline of the working-memory network (Perrinet 2026), as the paper's code builds it.

This is a BASELINE, written to be measured against, not to be used: a straightforward dense
re-implementation of the network in the formulation of the paper's notebook (MNESIS,
``MNESIS_polychronous-chains.ipynb``), so that our own implementation (:mod:`model.wm`) can be
timed and compared with it in the same benchmark run (:mod:`bench.wm_dense`). It computes the
same mathematics as :class:`model.wm.network.WMNet` (same LIF step, same trial protocol via
:func:`model.wm.recall.trial_forcing`, same score via :func:`model.wm.recall.score_recall`), so
F1 values and gradients can be compared directly; it differs only in how the work is laid out:

- The context is the last ``D`` emitted spikes flattened to an ``N * D`` vector, rebuilt every
  step by concatenation, and the synapses are one dense ``torch.nn.Linear(N * D, N,
  bias=False)``: every step multiplies the whole ``N x N*D`` matrix.
- The least-squares initialisation forms the context matrix ``C`` (``M * (T - D)`` rows,
  ``N * D`` columns) densely and takes ``torch.linalg.pinv(C) @ Y`` (a full SVD). No Gram
  trick, no sparsity.
- Training is full backpropagation through time with autograd over the whole trial (every
  step's context saved), surrogate gradient fast sigmoid (slope 15), loss ``1 - micro soft-F1``
  on the hard forward spikes, plain SGD.

Left out on purpose (they are not part of our model either): the notebook's dropout (0.37) on
the input current, its momentum / dampening, and snnTorch's one-step-late subtractive reset;
the LIF step here is that of :class:`model.wm.network.WMNet` (``s = [v_hat >= theta]``, reset
to zero or by subtraction in the same step).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from model.wm.recall import score_recall, trial_forcing

__all__ = [
    "FastSigmoidSpike", "DenseWM", "w_to_linear", "linear_to_w", "dense_contexts",
    "dense_pinv_init", "dense_simulate", "dense_eval", "dense_loss", "dense_train_step",
]


# --------------------------------------------------------------------------------------------
# Layout
#
# Context column ``j * D + k`` holds pre-synaptic neuron j's emitted spike at delay ``1 + k``
# (k = 0 newest), the layout of ``model.wm.network.contexts``. The paper's code orders the
# delays the other way (k = 0 oldest, i.e. its column ``j * D + (D - 1 - k)``): a fixed
# permutation of the columns, irrelevant for cost and for the mathematics.

def w_to_linear(w, dtype=torch.float32) -> torch.Tensor:
    """Our ``W[i, j, k]`` (post i, pre j, delay 1 + k), shape ``(n, n, d)`` -> the Linear's
    weight ``(n, n * d)`` with ``weight[i, j * d + k] = W[i, j, k]``."""
    w = torch.as_tensor(np.asarray(w) if not isinstance(w, torch.Tensor) else w, dtype=dtype)
    if w.ndim != 3 or w.shape[0] != w.shape[1]:
        raise ValueError(f"w must have shape (n, n, d), got {tuple(w.shape)}")
    n, _, d = w.shape
    return w.reshape(n, n * d).clone()


def linear_to_w(weight: torch.Tensor, d: int) -> np.ndarray:
    """The Linear's weight ``(n, n * d)`` -> our ``W[i, j, k]`` ``(n, n, d)`` (numpy, same
    dtype)."""
    weight = weight.detach()
    n = weight.shape[0]
    if weight.shape != (n, n * d):
        raise ValueError(f"weight must have shape ({n}, {n * d}), got {tuple(weight.shape)}")
    return weight.reshape(n, n, d).cpu().numpy().copy()


# --------------------------------------------------------------------------------------------
# Least squares, densely

def dense_contexts(targets: np.ndarray, d: int,
                   dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``C`` ``(m * (T - d), n * d)`` and ``Y`` ``(m * (T - d), n)`` as torch tensors, laid out
    exactly as :func:`model.wm.network.contexts`: ``C[mu * (T - d) + tt - d, j * d + k] =
    target_mu[j, tt - 1 - k]``, ``Y[same row, i] = target_mu[i, tt]``."""
    x = torch.as_tensor(np.asarray(targets, dtype=bool)).to(dtype)
    m, n, t = x.shape
    if not 1 <= d < t:
        raise ValueError(f"need 1 <= d < T, got d={d}, T={t}")
    rows = t - d
    c = torch.empty(m, rows, n, d, dtype=dtype)
    for k in range(d):
        c[:, :, :, k] = x[:, :, d - 1 - k:t - 1 - k].transpose(1, 2)
    y = x[:, :, d:].transpose(1, 2).reshape(m * rows, n)
    return c.reshape(m * rows, n * d), y


def dense_pinv_init(targets: np.ndarray, d: int, gain: float = 1.5,
                    dtype=torch.float32) -> np.ndarray:
    """``W`` ``(n, n, d)`` (numpy, of ``dtype``) from ``W_flat = gain * pinv(C) @ Y``, with
    ``W_flat[j * d + k, i] = W[i, j, k]``: the same minimum-norm least-squares weights as
    :func:`model.wm.network.least_squares_init`, computed the baseline way (dense ``C``, full
    SVD)."""
    c, y = dense_contexts(targets, d, dtype)
    w_flat = gain * (torch.linalg.pinv(c) @ y)  # (n * d, n)
    del c
    return linear_to_w(w_flat.T.contiguous(), d)


# --------------------------------------------------------------------------------------------
# The network

class FastSigmoidSpike(torch.autograd.Function):
    """``s = [x >= 0]`` forward; ``ds/dx = 1 / (1 + slope * |x|)**2`` backward (fast sigmoid,
    snnTorch's ``surrogate.fast_sigmoid``), with ``x = v_hat - theta``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad / (1 + ctx.slope * x.abs()) ** 2, None


class DenseWM(nn.Module):
    """Recurrent LIF population whose synapses are one dense ``Linear(N * D, N)`` on the
    flattened context of the last ``D`` emitted spikes.

    Per step t (as :class:`model.wm.network.WMNet`)::

        I(t)     = fc(context of e(t - 1), ..., e(t - D))       (e = 0 before t = 0)
        v_hat(t) = beta * v(t - 1) + I(t)                       (beta = beta_int / 2**shift)
        s(t)     = [v_hat(t) >= theta]                          (surrogate: fast sigmoid)
        v(t)     = v_hat(t) * (1 - s(t))   ("zero")  or  v_hat(t) - theta * s(t)  ("subtract")
                                                                (s detached in the reset)
        e(t)     = s(t) + f(t) - s(t) f(t)                      (s OR forced; de/ds = 1 - f)

    and ``e(t)`` goes back into the context (full BPTT through the emitted spikes).
    """

    def __init__(self, w, *, beta: int = 205, beta_shift: int = 8, threshold: float = 1.0,
                 reset: str = "zero", slope: float = 15.0, dtype=torch.float32):
        super().__init__()
        if reset not in ("zero", "subtract"):
            raise ValueError(f"reset must be 'zero' or 'subtract', got {reset!r}")
        weight = w_to_linear(w, dtype)
        n = weight.shape[0]
        self.n, self.d = n, weight.shape[1] // n
        self.fc = nn.Linear(n * self.d, n, bias=False, dtype=dtype)
        with torch.no_grad():
            self.fc.weight.copy_(weight)
        self.beta = beta / 2 ** beta_shift
        self.threshold = float(threshold)
        self.reset = reset
        self.slope = float(slope)

    def w(self) -> np.ndarray:
        """The weights as our ``W[i, j, k]`` (numpy)."""
        return linear_to_w(self.fc.weight, self.d)

    def forward(self, forced: torch.Tensor) -> torch.Tensor:
        """Run ``forced`` ``(B, steps, n)``; return the own spikes ``s`` ``(B, steps, n)``."""
        b, steps, n = forced.shape
        if n != self.n:
            raise ValueError(f"forced has {n} neurons, the network {self.n}")
        forced = forced.to(self.fc.weight.dtype)
        hist = forced.new_zeros(b, n, self.d)  # hist[:, j, k] = e_j(t - 1 - k)
        v = forced.new_zeros(b, n)
        spikes = []
        for t in range(steps):
            i_in = self.fc(hist.reshape(b, n * self.d))
            v_hat = self.beta * v + i_in
            s = FastSigmoidSpike.apply(v_hat - self.threshold, self.slope)
            if self.reset == "zero":
                v = v_hat * (1 - s.detach())
            else:
                v = v_hat - self.threshold * s.detach()
            f = forced[:, t]
            e = s + f - s * f
            hist = torch.cat([e[:, :, None], hist[:, :, :-1]], dim=2)
            spikes.append(s)
        return torch.stack(spikes, 1)


def _lif(beta, beta_shift, threshold, reset, slope, dtype):
    return dict(beta=beta, beta_shift=beta_shift, threshold=threshold, reset=reset,
                slope=slope, dtype=dtype)


def dense_simulate(w, forced: np.ndarray, *, beta: int = 205, beta_shift: int = 8,
                   threshold: float = 1.0, reset: str = "zero",
                   dtype=torch.float32) -> np.ndarray:
    """Run :class:`DenseWM` without gradients on ``forced`` ``(B, steps, n)``; own spikes as a
    bool numpy array ``(B, steps, n)``."""
    net = DenseWM(w, **_lif(beta, beta_shift, threshold, reset, 15.0, dtype))
    with torch.no_grad():
        s = net(torch.as_tensor(np.asarray(forced, dtype=bool)))
    return s.numpy().astype(bool)


def dense_eval(w, targets: np.ndarray, *, pre: int, p: float | None, seed: int,
               beta: int = 205, beta_shift: int = 8, threshold: float = 1.0,
               reset: str = "zero", dtype=torch.float32) -> tuple[float, np.ndarray]:
    """Cue and score all ``M`` patterns as one batch, no gradients; return (micro-F1,
    per-pattern F1) from :func:`model.wm.recall.score_recall`."""
    d = int(np.shape(w)[2])
    f = trial_forcing(targets, d, pre=pre, p=p, seed=seed)
    s = dense_simulate(w, f, beta=beta, beta_shift=beta_shift, threshold=threshold,
                       reset=reset, dtype=dtype)
    return score_recall(targets, s, d, pre=pre)


def dense_loss(s: torch.Tensor, targets: np.ndarray, d: int, *, pre: int) -> torch.Tensor:
    """``1 - 2 sum(s y) / (sum(s) + sum(y))`` over steps ``pre + d .. pre + T - 1`` against
    ``target[:, :, d:]`` (sums over patterns, neurons and steps: micro soft-F1 of the spikes);
    0 (still attached to ``s``) when the denominator is 0."""
    x = np.asarray(targets, dtype=bool)
    t = x.shape[2]
    y = torch.as_tensor(x[:, :, d:].transpose(0, 2, 1).copy()).to(s.dtype)
    got = s[:, pre + d:pre + t]
    den = got.sum() + y.sum()
    if float(den.detach()) == 0.0:
        return got.sum() * 0.0
    return 1 - 2 * (got * y).sum() / den


def dense_train_step(w, targets: np.ndarray, *, pre: int, p: float | None, seed: int,
                     lr: float, beta: int = 205, beta_shift: int = 8, threshold: float = 1.0,
                     reset: str = "zero", slope: float = 15.0,
                     dtype=torch.float32) -> dict:
    """One full-batch surrogate-gradient BPTT step over all ``M`` patterns, plain SGD.

    Returns ``w`` (the new ``W[i, j, k]``, numpy of ``dtype``), ``loss`` (before the update,
    float), ``f1`` (micro-F1 of the forward spikes from :func:`model.wm.recall.score_recall`; equals
    ``1 - loss``), ``grad`` (``dloss/dW``, float64 ``(n, n, d)``), ``forward_s`` and
    ``backward_s`` (wall seconds of the forward pass incl. the loss, and of ``backward()``).
    The update is ``W -= lr * grad`` in ``dtype``.
    """
    d = int(np.shape(w)[2])
    net = DenseWM(w, **_lif(beta, beta_shift, threshold, reset, slope, dtype))
    f = torch.as_tensor(trial_forcing(targets, d, pre=pre, p=p, seed=seed))
    t0 = time.perf_counter()
    s = net(f)
    loss = dense_loss(s, targets, d, pre=pre)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    f1, _ = score_recall(targets, s.detach().numpy(), d, pre=pre)
    grad = net.fc.weight.grad
    grad_w = linear_to_w(grad, d).astype(np.float64)
    with torch.no_grad():
        net.fc.weight -= lr * grad
    return dict(w=net.w(), loss=float(loss.detach()), f1=f1, grad=grad_w, forward_s=t1 - t0,
                backward_s=t2 - t1)
