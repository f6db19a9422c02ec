"""The working-memory family (Perrinet 2026): network, event-driven engine, sweeps, plots, baseline.

The names below are the old ``model.wm`` surface, re-exported for convenience; each lives in
its own module (:mod:`model.wm.network`, :mod:`model.wm.recall`, :mod:`model.wm.run`). The
engine is :mod:`model.wm.event`; the sweeps :mod:`model.wm.grids`, :mod:`model.wm.perturb` and
:mod:`model.wm.sweep`; figures :mod:`model.wm.plots`; the dense baseline :mod:`model.wm.dense`.
"""

from model.wm.network import (HEBBIAN_GAIN, WMNet, contexts, hebbian_init, least_squares_init,
                              make_targets, recall_float, simulate_float, sparse_contexts)
from model.wm.recall import f1_from_counts, score_recall, trial_forcing
from model.wm.run import DEFAULTS, PRESETS, run_wm

__all__ = [
    "make_targets", "contexts", "sparse_contexts", "least_squares_init", "hebbian_init",
    "HEBBIAN_GAIN", "trial_forcing", "f1_from_counts",
    "score_recall", "WMNet", "simulate_float", "recall_float", "run_wm",
    "DEFAULTS", "PRESETS",
]
