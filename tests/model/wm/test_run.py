"""model.wm.run: the working-memory path end to end, float and integer."""

import numpy as np
import pytest

from model import ir
from model.quantise import quantise_wm
from model.wm.network import (least_squares_init, make_targets, recall_float,
                              simulate_float)
from model.wm.recall import score_recall, trial_forcing
from model.wm.run import DEFAULTS, run_wm


# ---------------------------------------------------------------------------- end to end

@pytest.mark.parametrize("seed", [0, 1])
def test_run_wm_default_recalls_perfectly(seed):
    r = run_wm(seed=seed)
    assert r["f1_float"] == 1.0 and r["f1_int"] == 1.0
    assert r["per_pattern_float"] == r["per_pattern_int"] == [1.0] * DEFAULTS["m"]
    assert r["settings"]["load"] < 0.8
    ir.check(r["net"])
    # Enough target spikes for the score to mean something.
    d = DEFAULTS["d"]
    assert r["targets"][:, :, d:].sum((1, 2)).min() >= 30


def test_float_and_integer_spikes_agree_every_step():
    x = make_targets(DEFAULTS["m"], DEFAULTS["n"], DEFAULTS["t"], DEFAULTS["p"], seed=2)
    w = least_squares_init(x, DEFAULTS["d"])
    net = quantise_wm(w)
    from sim.reference import simulate
    f = trial_forcing(x, DEFAULTS["d"], pre=10, p=DEFAULTS["p"], seed=2)
    s_float, _ = simulate_float(w, f)
    s_int = np.stack([simulate(net, forced={1: fm.astype(np.uint8)}, steps=f.shape[1]).spikes[1]
                      for fm in f])
    assert np.array_equal(s_float, s_int.astype(bool))
    assert recall_float(w, x, seed=2, p=DEFAULTS["p"])[0] == 1.0
    assert score_recall(x, s_int, DEFAULTS["d"], pre=10)[0] == 1.0


def test_over_capacity_fails():
    # load m (T - d) / (n d) = 4 * 56 / 128 = 1.75: the least-squares system cannot be solved
    # exactly, recall falls apart and the metric says so.
    r = run_wm(n=16, d=8, m=4, t=64, p=0.05, seed=0)
    assert r["settings"]["load"] > 1
    assert r["f1_float"] < 0.9 and r["f1_int"] < 0.9


def test_workload_replays_the_integer_recall():
    """The workload ``run_wm`` returns, run through the reference simulator, scores exactly the
    integer F1 (and per-pattern F1s) of the run, on a load where recall is imperfect."""
    from sim.reference import simulate
    r = run_wm(seed=1, m=6)
    wl = r["workload"]
    assert wl.kind == "recall" and wl.network == r["net"].digest and wl.samples == 6
    traces = [simulate(r["net"], *wl.sample(i), steps=wl.steps) for i in range(wl.samples)]
    score = wl.score(traces)
    assert 0.5 < score["value"] < 1.0
    assert score["value"] == r["f1_int"] and score["per_sample"] == r["per_pattern_int"]
