"""The working-memory walking skeleton: store patterns, quantise, recall in float and integer."""

from __future__ import annotations

import dataclasses
import time
from typing import Literal

import numpy as np
import torch

from model.quantise import quantise_wm
from model.wm.event import TrainConfig, recall, train
from model.wm.recall import recall_workload
from model.wm.network import (HEBBIAN_GAIN, Reset, hebbian_init, least_squares_init,
                              make_targets)

__all__ = ["DEFAULTS", "PRESETS", "run_wm"]

#: Settings of the small demo (``run_wm()``; its F1 over seeds is in the README). The load
#: ``m (T - d) / (n d) = 0.125`` is far below the least-squares limit (~0.8) on purpose: the
#: weights must also stay quiet on the contexts no pattern contains (the noise before the
#: cue, and noise + partial cue during it), or the network fires spurious
#: spikes during the cue and the first free steps start from a wrong context. A small n * d
#: makes each weight large, so that margin needs a low load (n=32, d=8, m=2, T=64 fails).
#: 4-bit weights keep the n*n*d weight ROM at 64 kbit, inside the iCE40UP5K's 120 kbit of EBR.
DEFAULTS = dict(n=32, d=16, m=2, t=48, p=0.035, gain=1.5, w_bits=4, pre=10)


#: The two settings of the paper (reference note): the text's and the notebook's. beta is
#: ``beta_int / 256``; 50 noise steps before the cue, as in the notebook.
PRESETS = {
    "paper": dict(n=512, d=41, m=16, t=1000, p=2e-3, beta=205, pre=50, w_bits=8),
    "code": dict(n=1024, d=41, m=16, t=1000, p=1e-3, beta=179, pre=50, w_bits=8),
}


def run_wm(*, n: int = DEFAULTS["n"], d: int = DEFAULTS["d"], m: int = DEFAULTS["m"],
           t: int = DEFAULTS["t"], p: float = DEFAULTS["p"], gain: float | None = None,
           w_bits: int = DEFAULTS["w_bits"], seed: int = 0, pre: int = DEFAULTS["pre"],
           beta: int = 205, beta_shift: int = 8, reset: Reset = "zero",
           init: Literal["ls", "hebbian", "random"] = "ls", train_steps: int = 0,
           refractory: int = 0, progress: bool = False) -> dict:
    """Store ``m`` random patterns, quantise, and recall in float and integer.

    ``init``: ``"ls"`` (:func:`least_squares_init`, gain default 1.5), ``"hebbian"``
    (:func:`hebbian_init`, gain default :data:`HEBBIAN_GAIN`) or ``"random"`` (normal with
    standard deviation ``gain / (n d p)``, gain default 1: a context's current has the
    spread of ``gain`` times one weight per active pair; seeded by ``seed``). ``refractory``:
    the targets' dead time (:func:`make_targets`). ``train_steps > 0`` then
    trains from it (:func:`model.wm.event.train`, teacher-forced soft-F1, Adam) before
    quantising. Recall uses the event-driven engine (:mod:`model.wm.event`), equal to
    :func:`model.wm.network.recall_float` (its integer mode is bit-identical to the reference
    simulator, which the tests hold it to). Targets come from ``seed``; the trial noise from stream 1 of
    ``seed`` (same in both modes). Returns ``f1_float``, ``f1_int``, ``per_pattern_float``,
    ``per_pattern_int`` (lists), ``net`` (the quantised :class:`~model.ir.Network`, whose
    ``meta["wm"]`` holds the settings, enough to regenerate the targets), ``w`` (float
    weights), ``targets``, ``workload`` (the integer recall trials as a
    :class:`~model.ir.Workload`, to save beside the IR), ``settings`` (JSON-able, with the load
    ``m (T - d) / (n d)``) and ``seconds``.
    """
    if init not in ("ls", "hebbian", "random"):
        raise ValueError(f"init must be 'ls', 'hebbian' or 'random', got {init!r}")
    if gain is None:
        gain = {"ls": 1.5, "hebbian": HEBBIAN_GAIN, "random": 1.0}[init]
    settings = dict(n=n, d=d, m=m, t=t, p=p, gain=gain, w_bits=w_bits, seed=seed, pre=pre,
                    beta=beta, beta_shift=beta_shift, reset=reset, init=init,
                    train_steps=train_steps, refractory=refractory,
                    load=m * (t - d) / (n * d))
    t0 = time.perf_counter()
    targets = make_targets(m, n, t, p, seed=seed, refractory=refractory)
    if init == "ls":
        w = least_squares_init(targets, d, gain=gain)
    elif init == "hebbian":
        w = hebbian_init(targets, d, gain=gain)
    else:
        w = np.random.default_rng([seed, 3]).normal(0.0, gain / (n * d * p), (n, n, d))
    lif = dict(beta=beta, beta_shift=beta_shift, reset=reset)
    if train_steps:
        w = train(w, targets, TrainConfig(steps=train_steps, teacher=True, pre=pre, p=p,
                                          qat_bits=w_bits,
                                          seed=seed, progress=progress, **lif))["w"]
    net = quantise_wm(w, w_bits=w_bits, beta=beta, beta_shift=beta_shift, reset=reset)
    net = dataclasses.replace(net, meta={**net.meta, "wm": settings})
    f1_float, per_float = recall(w, targets, pre=pre, seed=seed, p=p, dtype=torch.float64,
                                 **lif)
    f1_int, per_int = recall(net, targets, mode="int", pre=pre, seed=seed, p=p)
    return dict(f1_float=f1_float, f1_int=f1_int, per_pattern_float=per_float.tolist(),
                per_pattern_int=per_int.tolist(), net=net, w=w, targets=targets,
                workload=recall_workload(net, targets, pre=pre, p=p, seed=seed),
                settings=settings, seconds=time.perf_counter() - t0)
