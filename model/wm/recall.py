"""The recall trial and its score: the forced rasters of a cued trial, the trials as a workload,
and F1 from spike counts (defined beside the workload format, :mod:`model.ir.workload`)."""

from __future__ import annotations

import numpy as np

from model.ir import Network
from model.ir.workload import Workload, f1_from_counts, score_recall

__all__ = ["trial_forcing", "f1_from_counts", "score_recall", "recall_workload"]


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


def recall_workload(net: Network, targets: np.ndarray, *, pre: int = 10,
                    p: float | None = None, seed: int) -> Workload:
    """The recall trials of :func:`trial_forcing` as the network's :class:`~model.ir.Workload`
    (kind ``recall``): the forced layer's rasters and the patterns to score them against."""
    layer = net.forced_layers[0] if net.forced_layers else None
    if layer is None:
        raise ValueError(f"network {net.name!r} has no forced layer to cue")
    d = net.max_delay
    f = trial_forcing(targets, d, pre=pre, p=p, seed=seed)
    return Workload(kind="recall", network=net.digest, forced={layer: f},
                    targets=np.asarray(targets, bool), layer=layer, d=d, pre=pre)
