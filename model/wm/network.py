"""The working-memory network (Perrinet 2026): targets, least-squares and Hebbian weights, WMNet."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from model.wm.recall import score_recall, trial_forcing

__all__ = [
    "make_targets", "contexts", "sparse_contexts", "least_squares_init", "hebbian_init",
    "HEBBIAN_GAIN", "WMNet", "simulate_float", "recall_float",
]

Reset = Literal["zero", "subtract"]
Solver = Literal["auto", "gram", "lstsq"]


# --------------------------------------------------------------------------------------------
# Targets and the least-squares weights

def make_targets(m: int, n: int, t: int, p: float, *, seed: int,
                 refractory: int = 0) -> np.ndarray:
    """Return ``m`` random rasters, bool of shape ``(m, n, t)`` (neuron, step).

    ``refractory=0``: i.i.d. Bernoulli(``p``) (what the paper's code runs).
    ``refractory=r > 0``: the text's variant, a neuron that fires stays silent for the next
    ``r`` steps (the paper: 4 ms). Its generator draws spikes from a per-step evidence
    through a logistic function; with constant evidence that is a Bernoulli process with a
    dead time, which is what is drawn here: hazard ``h = p / (1 - r p)`` outside the dead
    time, so that the mean rate stays ``p`` (renewal process: mean interval ``r + 1 / h``).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if refractory < 0:
        raise ValueError(f"refractory must be >= 0, got {refractory}")
    u = np.random.default_rng(seed).random((m, n, t))
    if refractory == 0:
        return u < p
    if p > 1.0 / (refractory + 1):
        raise ValueError(f"rate p={p} is impossible with a refractory period of {refractory} "
                         f"steps (needs p < 1 / {refractory + 1} at most)")
    h = p / (1.0 - refractory * p)
    x = np.zeros((m, n, t), dtype=bool)
    ready = np.zeros((m, n), dtype=np.int64)   # first step each neuron may fire again
    for step in range(t):
        fire = (u[:, :, step] < h) & (ready <= step)
        x[:, :, step] = fire
        ready[fire] = step + refractory + 1
    return x


def contexts(targets: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the context matrix ``C`` and next-step targets ``Y`` of every pattern.

    One row per pattern ``mu`` and step ``tt`` in ``[d, T)`` (row ``mu * (T - d) + tt - d``)::

        C[row, j * d + k] = target_mu[j, tt - 1 - k]     (pre j seen at delay 1 + k)
        Y[row, i]         = target_mu[i, tt]

    ``C`` is float64 of shape ``(m * (T - d), n * d)``, ``Y`` of shape ``(m * (T - d), n)``.
    """
    x = np.asarray(targets, dtype=np.float64)
    m, n, t = x.shape
    if not 1 <= d < t:
        raise ValueError(f"need 1 <= d < T, got d={d}, T={t}")
    rows = t - d
    # c[mu, r, j, k] = x[mu, j, d + r - 1 - k]
    c = np.stack([x[:, :, d - 1 - k:t - 1 - k] for k in range(d)], axis=-1)  # (m, n, rows, d)
    c = c.transpose(0, 2, 1, 3).reshape(m * rows, n * d)
    y = x[:, :, d:].transpose(0, 2, 1).reshape(m * rows, n)
    return c, y


def sparse_contexts(targets: np.ndarray, d: int):
    """:func:`contexts` with ``C`` as a ``scipy.sparse`` CSR matrix (float64); ``Y`` dense.

    ``C`` has one non-zero per (spike, delay) pair whose window lies in ``[d, T)``: about
    ``m * n * T * p * d`` of them (0.64 M at the paper setting, against 322 M dense entries).
    """
    import scipy.sparse as sp

    x = np.asarray(targets, dtype=bool)
    m, n, t = x.shape
    if not 1 <= d < t:
        raise ValueError(f"need 1 <= d < T, got d={d}, T={t}")
    rows = t - d
    mu, j, a = np.nonzero(x)
    ks = np.arange(d)
    tt = a[:, None] + 1 + ks[None, :]          # the step whose context sees spike (j, a) at k
    ok = (tt >= d) & (tt < t)
    r = (mu[:, None] * rows + tt - d)[ok]
    c = (j[:, None] * d + ks[None, :])[ok]
    cmat = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(m * rows, n * d))
    y = x[:, :, d:].transpose(0, 2, 1).reshape(m * rows, n).astype(np.float64)
    return cmat, y


#: Largest Gram matrix (bytes at float64) that :func:`least_squares_init` factorises in
#: float64; above it the factorisation is float32 (half the memory: 0.94 GB at the paper
#: setting) and iterative refinement with exact float64 products restores the accuracy.
GRAM_F64_BYTES = 256 << 20


def _cholesky_solve(build_g, b: np.ndarray, apply_g, *, refine: int = 8,
                    tol: float = 1e-12) -> tuple[np.ndarray, dict]:
    """Solve ``G z = b`` for a symmetric positive semi-definite ``G``.

    ``build_g()`` returns ``G`` as a C-ordered float32 or float64 array, which is factorised
    in place (Cholesky, LAPACK ``potrf``) in that precision; ``apply_g(z)`` is the exact
    float64 product used by iterative refinement, ``z += G^-1 (b - G z)``, until the largest
    residual is below ``tol * max|b|``. A singular ``G`` is factorised with the smallest ridge
    ``lam * mean(diag G)`` that succeeds (``lam`` from 1e-9 up by x10); refinement against
    the exact ``G`` then removes the ridge's bias on the range of ``G``. Returns float64 ``z``
    and a report (``ridge``, ``refinements``, relative ``residual``).
    """
    from scipy.linalg import lapack

    lam = 0.0
    while True:
        g = build_g()
        potrf, potrs = ((lapack.spotrf, lapack.spotrs) if g.dtype == np.float32
                        else (lapack.dpotrf, lapack.dpotrs))
        if lam:
            g[np.diag_indices_from(g)] += lam * float(np.diagonal(g).mean())
        # ``g`` is symmetric: its transpose is a Fortran-ordered view LAPACK can overwrite.
        fac, info = potrf(g.T, lower=0, overwrite_a=1, clean=0)
        if info == 0:
            break
        if info < 0:
            raise RuntimeError(f"LAPACK potrf: illegal argument {-info}")
        del g, fac
        if lam >= 1e-3:
            raise np.linalg.LinAlgError("least squares: the Gram matrix is not positive "
                                        "definite even with a ridge of 1e-3 * mean(diag)")
        lam = 1e-9 if lam == 0 else lam * 10
    z = potrs(fac, b.astype(g.dtype), lower=0)[0].astype(np.float64)
    report = {"ridge": lam, "refinements": 0, "precision": str(g.dtype)}
    bnorm = float(np.abs(b).max()) or 1.0
    for it in range(refine + 1):
        res = b - apply_g(z)
        report["residual"] = float(np.abs(res).max()) / bnorm
        if report["residual"] <= tol or it == refine:
            break
        z += potrs(fac, res.astype(g.dtype), lower=0)[0]
        report["refinements"] = it + 1
    return z, report


def least_squares_init(targets: np.ndarray, d: int, *, gain: float = 1.5,
                       solver: Solver = "auto", report: dict | None = None) -> np.ndarray:
    """Return ``W[i, j, k]`` (post i, pre j, delay 1 + k), float64 ``(n, n, d)``, that replays
    the targets.

    ``W_flat = gain * pinv(C) @ Y`` with ``C, Y`` from :func:`contexts` and
    ``W_flat[j * d + k, i] = W[i, j, k]``: the minimum-norm least-squares solution of
    ``C @ W_flat = gain * Y``.

    Why it works: during recall the current into neuron i at step tt is
    ``I_i(tt) = sum_{j,k} W[i, j, k] e_j(tt - 1 - k) = (C @ W_flat)[row, i]``. If the last ``d``
    steps of the network equal the target, and the linear system is solved exactly, then
    ``I = gain`` where the target spikes and ``I = 0`` where it does not. With threshold 1,
    reset to zero and ``gain > 1`` the membrane stays at 0 and the neuron spikes exactly when
    the target says so; the next context is again a target window, so recall runs by induction
    from the cue (the first ``d`` steps) to the end. ``gain - 1`` and ``1`` are the margins
    against rounding and leftover membrane.

    Capacity: each neuron has ``N * D`` weights and must fit ``M * (T - D)`` equations (one per
    stored window). The system is exactly solvable for generic sparse rasters only while the
    ``M * (T - D)`` contexts are linearly independent, i.e. ``M * (T - D) <= N * D``; in
    practice (duplicate / near-dependent sparse windows) keep ``M * (T - D) <~ 0.8 * N * D``.
    Beyond it the solution is a compromise and recall breaks down. Under the trial protocol
    (noise, then the cue) a small network needs a much lower load than this, because the weights
    are only constrained on stored windows; see :data:`model.wm.run.DEFAULTS`.

    ``solver``:

    - ``"gram"`` (what ``"auto"`` picks) never forms ``C`` densely. ``C`` is binary and about
      ``p * d`` dense, so it is kept sparse (:func:`sparse_contexts`), and the smaller Gram
      matrix is formed: ``C C^T`` (rows <= columns; then ``W_flat = C^T z`` with
      ``C C^T z = gain Y``, which is ``pinv(C) gain Y`` when ``C`` has full row rank) or
      ``C^T C`` (more rows than columns: the normal equations). It is factorised by Cholesky
      (float32 when it is large, :data:`GRAM_F64_BYTES`) and refined in float64 with exact
      sparse products: at the paper setting (``C`` 15,344 x 20,992) far faster and smaller
      than ``torch.linalg.pinv`` on dense ``C`` (timings in docs/working-memory.md).
    - ``"lstsq"``: ``numpy.linalg.lstsq`` on dense ``C`` (the reference; small problems).

    ``report``, when given, receives the solver's details (side, precision, ridge, residual).
    """
    x = np.asarray(targets, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"targets must have shape (m, n, T), got {x.shape}")
    m, n, t = x.shape
    if not 1 <= d < t:
        raise ValueError(f"need 1 <= d < T, got d={d}, T={t}")
    if solver == "auto":
        solver = "gram"
    if solver == "gram":
        c, y = sparse_contexts(x, d)
        # A (neuron, delay) column no window contains gets weight 0 (the minimum-norm choice);
        # dropping it keeps C^T C non-singular when a neuron never fires.
        keep = np.flatnonzero(c.getnnz(axis=0))
        c = c[:, keep]
        rows, cols = c.shape
        side = min(rows, cols)
        dtype = np.float64 if side * side * 8 <= GRAM_F64_BYTES else np.float32
        ct = c.T.tocsr()
        flat = np.zeros((n * d, n))
        while True:
            cd = c.astype(dtype)
            if rows <= cols:
                z, rep = _cholesky_solve(lambda: (cd @ cd.T).toarray(), gain * y,
                                         lambda z: c @ (ct @ z))
                flat[keep] = ct @ z
                break
            z, rep = _cholesky_solve(lambda: (cd.T @ cd).toarray(), ct @ (gain * y),
                                     lambda z: ct @ (c @ z))
            # On this side z itself is the answer: a ridge in float32 would let rounding
            # grow in the null space of C^T C, so a singular system is redone in float64.
            if rep["ridge"] and dtype == np.float32:
                dtype = np.float64
                continue
            flat[keep] = z
            break
        rep["side"] = "C C^T" if rows <= cols else "C^T C"
        w = flat.reshape(n, d, n).transpose(2, 0, 1)
    elif solver == "lstsq":
        c, y = contexts(x, d)
        flat = np.linalg.lstsq(c, gain * y, rcond=None)[0]  # (n * d, n)
        w = flat.reshape(n, d, n).transpose(2, 0, 1)
        rep = {"side": "dense lstsq"}
    else:
        raise ValueError(f"solver must be 'auto', 'gram' or 'lstsq', got {solver!r}")
    if report is not None:
        report.update(rep)
    return np.ascontiguousarray(w)


def hebbian_init(targets: np.ndarray, d: int, *, gain: float = 2.5,
                 rule: Literal["covariance", "paper"] = "covariance") -> np.ndarray:
    """Return Hebbian weights ``W[i, j, k]`` (post i, pre j, delay 1 + k) from the targets'
    spike coincidences, float64 ``(n, n, d)``.

    ``rule="paper"`` is the formula of the paper's text,
    ``W[i, j, k] = 1 / (N D p M) * sum_mu sum_t s_i(t) s_j(t - 1 - k)`` over every step
    ``t`` of every pattern, with ``p`` the targets' mean rate (``gain`` is ignored). As
    written it leaves the network silent: a stored window of ``K = N D p`` spikes (on
    average) gives its next spikes a current of about ``1 / M``, far below the threshold.

    ``rule="covariance"`` (the default) is the sparse-coding covariance rule, normalised so
    that the threshold means something::

        W_flat = gain / K * (C - p)^T (Y - p)          (C, Y from :func:`contexts`)

    Derivation. In recall of pattern mu with a correct context the current into neuron i is
    ``sum over the context's spikes of W``: the stored window itself contributes
    ``gain * n_w / K * (1 - p)^2 ~ gain`` where the target has a spike (``n_w`` ~ K spikes
    in the window) and ~0 where it has none; every other stored window that shares ``c``
    spikes with the current one adds ``gain * c / K`` to the neurons that fire after it,
    and centring by ``p`` removes the mean of that crosstalk (so silent neurons do not drift
    up through the leak). The neuron therefore fires when at least a fraction ``1 / gain`` of
    a stored window is present. ``gain`` trades missing spikes (a sparse window falls short
    of ``K / gain`` spikes) against runaway activity (partial matches from noise and
    crosstalk reach the threshold). The window of good gains is narrow and moves with the
    setting (F1 against gain in docs/working-memory.md); 2.5 is the default.
    """
    x = np.asarray(targets, dtype=bool)
    if x.ndim != 3:
        raise ValueError(f"targets must have shape (m, n, T), got {x.shape}")
    m, n, t = x.shape
    p = float(x.mean())
    if p == 0.0:
        raise ValueError("targets have no spikes: there is nothing to learn")
    if rule == "paper":
        import scipy.sparse as sp

        mu, j, a = np.nonzero(x)
        post = sp.csr_matrix((np.ones(a.size), (j, mu * t + a)), shape=(n, m * t))
        w = np.empty((n, n, d))
        for k in range(d):               # pre spike at a, post at a + 1 + k, same pattern
            ok = a + 1 + k < t
            pre = sp.csr_matrix((np.ones(ok.sum()), (j[ok], mu[ok] * t + a[ok] + 1 + k)),
                                shape=(n, m * t))
            w[:, :, k] = (post @ pre.T).toarray()
        return w / (n * d * p * m)
    c, y = sparse_contexts(x, d)
    k_mean = n * d * p
    flat = np.asarray(c.T @ y)                                  # (n d, n) coincidences
    if rule == "covariance":
        rows = c.shape[0]
        flat = flat - p * np.asarray(c.sum(axis=0)).T - p * y.sum(axis=0)[None, :] \
            + rows * p * p
        flat *= gain / k_mean
    else:
        raise ValueError(f"rule must be 'covariance' or 'paper', got {rule!r}")
    return np.ascontiguousarray(flat.reshape(n, d, n).transpose(2, 0, 1))


#: Default gain of :func:`hebbian_init` (threshold at 40 % of a stored window's spikes).
HEBBIAN_GAIN = 2.5


# --------------------------------------------------------------------------------------------
# Float model

class WMNet(nn.Module):
    """Float recurrent LIF population with delay taps (same step order as the integer contract).

    Per step t, with ``e(t) = s(t) OR f(t)`` the emitted spikes (own or forced)::

        I(t)     = sum_k W[:, :, k] @ e(t - 1 - k)            (k = 0..D-1, e = 0 before t = 0)
        u(t)     = beta * v(t - 1)                            (beta = beta_int / 2**beta_shift)
        v_hat(t) = u(t) + I(t)                                (no saturation)
        s(t)     = [v_hat(t) >= threshold]
        v(t)     = v_hat(t) * (1 - s(t))          (reset "zero")
                 = v_hat(t) - threshold * s(t)    (reset "subtract")

    The module holds only parameters; all state lives inside :meth:`forward`.
    """

    def __init__(self, w: np.ndarray | torch.Tensor, *, beta: int = 205, beta_shift: int = 8,
                 threshold: float = 1.0, reset: Reset = "zero", dtype=torch.float64):
        super().__init__()
        w = torch.as_tensor(w, dtype=dtype)
        if w.ndim != 3 or w.shape[0] != w.shape[1]:
            raise ValueError(f"w must have shape (n, n, D), got {tuple(w.shape)}")
        if reset not in ("zero", "subtract"):
            raise ValueError(f"reset must be 'zero' or 'subtract', got {reset!r}")
        self.w = nn.Parameter(w.clone())
        self.beta = beta / 2 ** beta_shift
        self.threshold = float(threshold)
        self.reset = reset

    @property
    def n(self) -> int:
        return int(self.w.shape[0])

    @property
    def d(self) -> int:
        return int(self.w.shape[2])

    def forward(self, forced: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``forced`` ``(B, steps, n)``; return own spikes ``s`` and membranes ``v``, both
        ``(B, steps, n)``."""
        b, steps, n = forced.shape
        if n != self.n:
            raise ValueError(f"forced has {n} neurons, the network {self.n}")
        forced = forced.to(self.w.dtype)
        hist = forced.new_zeros(b, self.d, n)  # hist[:, k] = e(t - 1 - k)
        w_flat = self.w.permute(0, 2, 1).reshape(n, self.d * n)  # [i, k * n + j] = W[i, j, k]
        v = forced.new_zeros(b, n)
        spikes, vs = [], []
        for t in range(steps):
            i_in = hist.reshape(b, -1) @ w_flat.T
            v_hat = self.beta * v + i_in
            s = (v_hat >= self.threshold).to(v_hat.dtype)
            v = v_hat * (1 - s) if self.reset == "zero" else v_hat - self.threshold * s
            e = torch.maximum(s, forced[:, t])
            hist = torch.cat([e[:, None], hist[:, :-1]], dim=1)
            spikes.append(s)
            vs.append(v)
        return torch.stack(spikes, 1), torch.stack(vs, 1)


def simulate_float(w: np.ndarray, forced: np.ndarray, **lif) -> tuple[np.ndarray, np.ndarray]:
    """Run :class:`WMNet` without gradients on ``forced`` ``(B, steps, n)``; return own spikes
    (bool) and membranes (float64) as numpy arrays. ``lif``: beta, beta_shift, threshold,
    reset."""
    net = WMNet(w, **lif)
    with torch.no_grad():
        s, v = net(torch.as_tensor(np.asarray(forced, dtype=np.float64)))
    return s.numpy().astype(bool), v.numpy()


def recall_float(w: np.ndarray, targets: np.ndarray, *, pre: int = 10, seed: int,
                 p: float | None = None, beta: int = 205, beta_shift: int = 8,
                 threshold: float = 1.0, reset: Reset = "zero") -> tuple[float, np.ndarray]:
    """Cue and score every pattern in the float model; return (micro-F1, per-pattern F1)."""
    d = int(np.shape(w)[2])
    f = trial_forcing(targets, d, pre=pre, p=p, seed=seed)
    s, _ = simulate_float(w, f, beta=beta, beta_shift=beta_shift, threshold=threshold,
                          reset=reset)
    return score_recall(targets, s, d, pre=pre)
