"""The recall trial and its score: the forced rasters of a cued trial, and F1 from spike counts."""

from __future__ import annotations

import numpy as np

__all__ = ["trial_forcing", "f1_from_counts", "score_recall"]


def trial_forcing(targets: np.ndarray, d: int, *, pre: int = 10, p: float | None = None,
                  seed: int) -> np.ndarray:
    """Return the forced rasters of a recall trial, bool ``(m, pre + T, n)`` (step, neuron).

    Steps ``[0, pre)``: fresh Bernoulli(``p``) noise (``p=None``: the targets' mean rate),
    drawn from ``numpy.random.default_rng([seed, 1])``, pattern after pattern. Steps
    ``[pre, pre + d)``: the cue ``target[:, :d]``. Steps ``[pre + d, pre + T)``: nothing (free
    recall). Target column ``tt`` is step ``pre + tt``.
    """
    x = np.asarray(targets, dtype=bool)
    m, n, t = x.shape
    if not 1 <= d < t or pre < 0:
        raise ValueError(f"need 1 <= d < T and pre >= 0, got d={d}, T={t}, pre={pre}")
    rate = float(x.mean()) if p is None else float(p)
    f = np.zeros((m, pre + t, n), dtype=bool)
    f[:, :pre] = np.random.default_rng([seed, 1]).random((m, pre, n)) < rate
    f[:, pre:pre + d] = x[:, :, :d].transpose(0, 2, 1)
    return f


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """``F1 = 2 tp / (2 tp + fp + fn)``; defined as 1.0 when ``2 tp + fp + fn = 0``.

    The all-silent case (no target spikes and no recalled spikes) is perfect agreement, so it
    scores 1.0, as precision and recall both tend to 1 there.
    """
    den = 2 * tp + fp + fn
    return 1.0 if den == 0 else 2.0 * tp / den


def score_recall(targets: np.ndarray, spikes: np.ndarray, d: int, *,
                 pre: int) -> tuple[float, np.ndarray]:
    """Score recall: micro-F1 of ``target[:, :, d:T]`` against own spikes at steps
    ``pre + d .. pre + T - 1``.

    ``targets`` is ``(m, n, T)``; ``spikes`` the network's own spikes ``s(t)`` (forced spikes
    excluded), ``(m, steps >= pre + T, n)``. Returns the micro-F1 (counts summed over patterns,
    neurons and steps) and the per-pattern F1s, float64 ``(m,)``.
    """
    x = np.asarray(targets, dtype=bool)
    m, n, t = x.shape
    s = np.asarray(spikes).astype(bool)
    if s.shape[0] != m or s.shape[2] != n or s.shape[1] < pre + t:
        raise ValueError(f"spikes must have shape ({m}, >= {pre + t}, {n}), got {s.shape}")
    want = x[:, :, d:].transpose(0, 2, 1)
    got = s[:, pre + d:pre + t]
    tp = (want & got).sum((1, 2))
    fp = (~want & got).sum((1, 2))
    fn = (want & ~got).sum((1, 2))
    per = np.array([f1_from_counts(*c) for c in zip(tp, fp, fn)], dtype=np.float64)
    return f1_from_counts(int(tp.sum()), int(fp.sum()), int(fn.sum())), per
