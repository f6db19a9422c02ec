"""model.wm.recall: the trial protocol and the F1 score."""

import numpy as np
import pytest

from model.wm.network import (make_targets)
from model.wm.recall import f1_from_counts, score_recall, trial_forcing


# ---------------------------------------------------------------------------- protocol and F1

def test_trial_forcing_layout():
    x = make_targets(2, 10, 30, 0.2, seed=0)
    f = trial_forcing(x, 4, pre=6, p=0.5, seed=9)
    assert f.shape == (2, 36, 10) and f.dtype == bool
    assert np.array_equal(f[:, 6:10], x[:, :, :4].transpose(0, 2, 1))
    assert not f[:, 10:].any()
    assert f[:, :6].any()
    assert np.array_equal(f, trial_forcing(x, 4, pre=6, p=0.5, seed=9))
    assert not np.array_equal(f[:, :6], trial_forcing(x, 4, pre=6, p=0.5, seed=8)[:, :6])


def test_f1_known_answer():
    # Pattern 0: neuron 0 = 1 1 0 1, neuron 1 = 0 0 1 0; d = 1 scores columns 1..3.
    x = np.zeros((2, 2, 4), bool)
    x[0, 0] = [1, 1, 0, 1]
    x[0, 1] = [0, 0, 1, 0]
    pre = 2
    s = np.zeros((2, pre + 4, 2), np.uint8)
    s[0, :pre] = 1            # spikes in the noise period are not scored
    s[0, pre + 0, 1] = 1      # nor in the cue (column 0)
    s[0, pre + 1, 0] = 1      # tp (neuron 0, column 1)
    s[0, pre + 2, 0] = 1      # fp (neuron 0, column 2)
    s[0, pre + 2, 1] = 1      # tp (neuron 1, column 2); neuron 0 column 3 is a miss (fn)
    # Pattern 1: all silent, nothing recalled.
    f1, per = score_recall(x, s, 1, pre=pre)
    assert per.tolist() == [2 * 2 / (2 * 2 + 1 + 1), 1.0]
    assert f1 == pytest.approx(4 / 6)  # micro: tp 2, fp 1, fn 1 over both patterns
    # All silent everywhere: perfect agreement, defined as 1.0.
    z = np.zeros((1, 3, 5), bool)
    assert score_recall(z, np.zeros((1, 5, 3)), 1, pre=0) == (1.0, pytest.approx([1.0]))
    # Silent target, one spurious spike: 0.0.
    s1 = np.zeros((1, 5, 3))
    s1[0, 2, 0] = 1
    assert score_recall(z, s1, 1, pre=0)[0] == 0.0
    assert f1_from_counts(0, 0, 0) == 1.0 and f1_from_counts(0, 0, 3) == 0.0
