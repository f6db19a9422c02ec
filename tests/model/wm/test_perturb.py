"""model.wm.perturb: perturbations of the cue and of the network."""

from __future__ import annotations


import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")

from model.wm import perturb, sweep  # noqa: E402
from model.wm.network import make_targets  # noqa: E402
from model.wm.recall import trial_forcing  # noqa: E402


# --------------------------------------------------------------------------------------------
# Perturbations

@pytest.fixture
def trial():
    x = make_targets(3, 40, 60, 0.05, seed=3)
    f = trial_forcing(x, 10, pre=7, p=0.05, seed=3)
    return x, f


@pytest.mark.parametrize("frac", [0.0, 0.01, 0.1, 0.5])
def test_flip_exact_count(trial, frac):
    _, f = trial
    g, k = perturb.flip_cue_bits(f, pre=7, d=10, frac=frac, seed=1)
    bits = 40 * 10
    diff = f ^ g
    per = diff.reshape(3, -1).sum(1)
    assert np.all(per == round(frac * bits)) and np.all(k == round(frac * bits))
    # Only the cue window changes; both directions occur at large fractions.
    assert not diff[:, :7].any() and not diff[:, 17:].any()
    if frac >= 0.1:
        assert (f & ~g).any() and (~f & g).any()


def test_flip_nested(trial):
    _, f = trial
    lo, _ = perturb.flip_cue_bits(f, pre=7, d=10, frac=0.05, seed=4)
    hi, _ = perturb.flip_cue_bits(f, pre=7, d=10, frac=0.2, seed=4)
    assert not ((f ^ lo) & ~(f ^ hi)).any()


def test_move_keeps_count(trial):
    _, f = trial
    g, moved = perturb.move_cue_spikes(f, pre=7, d=10, frac=0.5, seed=2)
    cue_f, cue_g = f[:, 7:17], g[:, 7:17]
    assert np.array_equal(cue_f.sum((1, 2)), cue_g.sum((1, 2)))
    removed = (cue_f & ~cue_g).sum((1, 2))
    assert np.array_equal(removed, moved)
    assert np.array_equal(moved, np.round(0.5 * cue_f.sum((1, 2))).astype(int))
    assert np.array_equal(f[:, :7], g[:, :7]) and np.array_equal(f[:, 17:], g[:, 17:])


@pytest.mark.parametrize("c", [0, 4, 10])
def test_truncate(trial, c):
    _, f = trial
    g = perturb.truncate_cue(f, pre=7, d=10, c=c)
    assert not g[:, 7 + c:].any()
    assert np.array_equal(g[:, :7 + c], f[:, :7 + c])
    with pytest.raises(ValueError):
        perturb.truncate_cue(f, pre=7, d=10, c=11)


def test_noise_only_in_free_recall(trial):
    _, f = trial
    g = perturb.add_recall_noise(f, start=17, stop=67, q=0.2, seed=0)
    assert np.array_equal(g[:, :17], f[:, :17])
    added = g[:, 17:67] & ~f[:, 17:67]
    assert abs(added.mean() - 0.2) < 0.03
    assert not (f & ~g).any()


def test_robustness_points_run(tmp_path):
    g = {"base": dict(n=32, d=16, m=2, t=48, p=0.035, pre=10, w_bits=4), "seeds": [0],
         "axes": [{"perturb": ["none"]}, {"perturb": ["truncate"], "level": [0]},
                  {"perturb": ["silence"], "level": [4]}, {"perturb": ["flip"], "level": [0.02]}]}
    r = sweep.run_grid(g, tmp_path / "rob.jsonl", jobs=1, progress=False)
    by = {(x["settings"]["perturb"]): x for x in r["records"]}
    assert by["none"]["f1_float"] == 1.0          # the demo setting recalls perfectly
    assert by["truncate"]["f1_float"] < 0.5       # no cue: no recall
    assert "f1_float_active" in by["silence"]
    assert by["silence"]["f1_float"] < 1.0        # silenced neurons' target spikes are missed
    assert by["flip"]["bits_flipped"] == round(0.02 * 32 * 16)
