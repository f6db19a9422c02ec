"""Dense baseline of the working-memory network (Perrinet 2026), as the paper's code builds it.

    python -m bench.wm_dense --n 512 --d 41 --m 16 --t 1000 --p 2e-3 --pre 50 --seed 0 \\
        --threads 2 [--phases pinv,step,eval] [--init pinv|ours] [--dtype float32|float64]

This is a BASELINE, written to be measured against, not to be used: a straightforward dense
re-implementation of the network in the formulation of the paper's notebook (MNESIS,
``MNESIS_polychronous-chains.ipynb``), so that our own implementation (:mod:`model.wm`) can be
timed and compared with it in the same benchmark run. It computes the same mathematics as
:class:`model.wm.WMNet` (same LIF step, same trial protocol via :func:`model.wm.trial_forcing`,
same score via :func:`model.wm.score_recall`), so F1 values and gradients can be compared
directly; it differs only in how the work is laid out:

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
the LIF step here is that of :class:`model.wm.WMNet` (``s = [v_hat >= theta]``, reset to zero
or by subtraction in the same step).

Each phase of :func:`main` runs in its own spawned child process through
:func:`bench.peak.run_measured`, so every phase reports its own wall time and peak resident
memory; results go to ``bench/results/wm_dense.json`` (phases of later runs with the same
settings are merged into the file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.wm import make_targets, score_recall, trial_forcing

__all__ = [
    "FastSigmoidSpike", "DenseWM", "w_to_linear", "linear_to_w", "dense_contexts",
    "dense_pinv_init", "dense_simulate", "dense_eval", "dense_loss", "dense_train_step",
    "main",
]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


# --------------------------------------------------------------------------------------------
# Layout
#
# Context column ``j * D + k`` holds pre-synaptic neuron j's emitted spike at delay ``1 + k``
# (k = 0 newest), the layout of ``model.wm.contexts``. The paper's code orders the delays the
# other way (k = 0 oldest, i.e. its column ``j * D + (D - 1 - k)``): a fixed permutation of the
# columns, irrelevant for cost and for the mathematics.

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
    exactly as :func:`model.wm.contexts`: ``C[mu * (T - d) + tt - d, j * d + k] =
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
    :func:`model.wm.least_squares_init`, computed the baseline way (dense ``C``, full SVD)."""
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

    Per step t (as :class:`model.wm.WMNet`)::

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
    per-pattern F1) from :func:`model.wm.score_recall`."""
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
    float), ``f1`` (micro-F1 of the forward spikes from :func:`model.wm.score_recall`; equals
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


# --------------------------------------------------------------------------------------------
# Benchmark phases (top level: each runs in its own spawned child)

def phase_pinv(n, d, m, t, p, seed, gain, dtype_name):
    targets = make_targets(m, n, t, p, seed=seed)
    return dense_pinv_init(targets, d, gain=gain, dtype=DTYPES[dtype_name])


def phase_init_ours(n, d, m, t, p, seed, gain):
    from model.wm import least_squares_init

    return least_squares_init(make_targets(m, n, t, p, seed=seed), d, gain=gain)


def phase_eval(w, n, d, m, t, p, seed, pre, reset, dtype_name):
    targets = make_targets(m, n, t, p, seed=seed)
    f1, per = dense_eval(w, targets, pre=pre, p=p, seed=seed, reset=reset,
                         dtype=DTYPES[dtype_name])
    return dict(f1=f1, per_pattern=per.tolist())


def phase_step(w, n, d, m, t, p, seed, pre, reset, dtype_name, lr):
    targets = make_targets(m, n, t, p, seed=seed)
    r = dense_train_step(w, targets, pre=pre, p=p, seed=seed, lr=lr, reset=reset,
                         dtype=DTYPES[dtype_name])
    g = r["grad"]
    return dict(loss=r["loss"], f1=r["f1"], forward_s=r["forward_s"],
                backward_s=r["backward_s"], grad_abs_max=float(np.abs(g).max()),
                grad_norm=float(np.linalg.norm(g)),
                max_update=float(np.abs(r["w"] - np.asarray(w, dtype=r["w"].dtype)).max()))


def _record(meas, **extra) -> dict:
    return dict(seconds=meas.seconds, peak_bytes=meas.peak_bytes, base_bytes=meas.base_bytes,
                cpu_seconds=meas.cpu_seconds, **extra)


def main(argv=None) -> dict:
    from bench import peak, wm_dense as me  # pickle the phases by their importable name

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--d", type=int, default=41)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--t", type=int, default=1000)
    ap.add_argument("--p", type=float, default=2e-3)
    ap.add_argument("--pre", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gain", type=float, default=1.5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--reset", choices=("zero", "subtract"), default="zero")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--phases", default="pinv,step,eval",
                    help="comma-separated subset of pinv, step, eval")
    ap.add_argument("--init", choices=("pinv", "ours"), default="pinv",
                    help="where step/eval take W from: the dense pinv phase, or "
                         "model.wm.least_squares_init (fast; measured as phase 'init_ours'); "
                         "with 'ours' the pinv phase (if asked) runs last")
    ap.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    ap.add_argument("--out", default="bench/results/wm_dense.json", help="'' for none")
    a = ap.parse_args(argv)
    phases = [x for x in a.phases.split(",") if x]
    bad = set(phases) - {"pinv", "step", "eval"}
    if bad:
        ap.error(f"unknown phases {sorted(bad)}")

    settings = dict(n=a.n, d=a.d, m=a.m, t=a.t, p=a.p, pre=a.pre, seed=a.seed, gain=a.gain,
                    lr=a.lr, reset=a.reset, dtype=a.dtype, threads=a.threads,
                    load=a.m * (a.t - a.d) / (a.n * a.d))
    prob = (a.n, a.d, a.m, a.t, a.p, a.seed)
    results: dict[str, dict] = {}
    w = None
    command = "python -m bench.wm_dense " + " ".join(sys.argv[1:] if argv is None else argv)

    def run(name, fn, *args):
        load0 = os.getloadavg()
        print(f"[wm_dense] phase {name} ...", file=sys.stderr, flush=True)
        meas = peak.run_measured(fn, *args, threads=a.threads)
        print(f"[wm_dense] phase {name}: {meas.seconds:.1f} s, peak "
              f"{meas.peak_bytes / 2**30:.2f} GiB", file=sys.stderr, flush=True)
        return meas, dict(loadavg_before=load0, loadavg_after=os.getloadavg(),
                          finished=time.strftime("%Y-%m-%d %H:%M:%S"), command=command)

    need_w = any(x in phases for x in ("step", "eval"))
    order = [x for x in ("pinv", "eval", "step") if x in phases]
    if a.init == "ours":
        order = [x for x in order if x != "pinv"] + (["pinv"] if "pinv" in phases else [])
        if need_w:
            meas, info = run("init_ours", me.phase_init_ours, *prob, a.gain)
            w = meas.result
            results["init_ours"] = _record(meas, f1=None, **info)
    elif need_w and "pinv" not in order:
        order = ["pinv"] + order  # W comes from the dense pinv phase
    for name in order:
        if name == "pinv":
            meas, info = run("pinv", me.phase_pinv, *prob, a.gain, a.dtype)
            extra = {}
            if w is not None:
                extra["max_abs_diff_vs_ours"] = float(np.abs(meas.result - w).max())
            else:
                w = meas.result
            results["pinv"] = _record(meas, f1=None, **extra, **info)
        elif name == "eval":
            meas, info = run("eval", me.phase_eval, w, *prob, a.pre, a.reset, a.dtype)
            results["eval"] = _record(meas, **meas.result, **info)
        else:
            meas, info = run("step", me.phase_step, w, *prob, a.pre, a.reset, a.dtype, a.lr)
            results["step"] = _record(meas, **meas.result, **info)
        results[name]["w_from"] = None if name == "pinv" else a.init

    print(f"dense baseline  n={a.n} d={a.d} m={a.m} T={a.t} p={a.p} pre={a.pre} "
          f"seed={a.seed} {a.dtype} threads={a.threads} (load {settings['load']:.3f})")
    print(f"{'phase':<10} {'seconds':>9} {'cpu/wall':>8} {'peak GiB':>9} {'added GiB':>9} "
          f"{'F1':>7}  notes")
    for name, r in results.items():
        f1 = "" if r.get("f1") is None else f"{r['f1']:.4f}"
        notes = ""
        if name == "step":
            notes = (f"forward {r['forward_s']:.1f} s, backward {r['backward_s']:.1f} s, "
                     f"loss {r['loss']:.4f}")
        elif "max_abs_diff_vs_ours" in r:
            notes = f"max|W - W_ours| = {r['max_abs_diff_vs_ours']:.2e}"
        print(f"{name:<10} {r['seconds']:>9.2f} {r['cpu_seconds'] / r['seconds']:>8.2f} "
              f"{r['peak_bytes'] / 2**30:>9.2f} "
              f"{(r['peak_bytes'] - r['base_bytes']) / 2**30:>9.2f} {f1:>7}  {notes}")

    doc = dict(settings=settings, phases={})
    if a.out:
        out = Path(a.out)
        if out.exists():
            try:
                old = json.loads(out.read_text())
                if old.get("settings") == settings:
                    doc = old
            except (OSError, ValueError):
                pass
        doc["machine"] = dict(cpus=os.cpu_count(), torch=torch.__version__,
                              numpy=np.__version__, platform=sys.platform)
        doc["phases"].update(results)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {out}")
    return dict(settings=settings, phases=results)


if __name__ == "__main__":
    main()
