"""model.audio.synth: the espeak-ng synthesis plan and pipeline."""

import numpy as np
import pytest

from model.audio.shd import bin_counts, load, write_shd
from model.audio import synth


def test_plan_splits_by_voice_and_is_deterministic():
    tr, te = synth.plan("train", 3, seed=4), synth.plan("test", 2, seed=4)
    assert [u.label for u in tr[:20]] == list(range(20))
    assert not {u.speaker for u in tr} & {u.speaker for u in te}
    a, b = synth.voice_split(4)
    assert not set(a) & set(b) and len(a) + len(b) == len(synth.VARIANTS)
    assert synth.plan("train", 3, seed=4) == tr
    assert all(u.accent == "de" for u in tr if u.label >= 10)
    assert all(u.accent in synth.ACCENTS for u in tr if u.label < 10)


@pytest.mark.skipif(not synth.have_espeak(), reason="espeak-ng is not installed "
                    "(apt-get install espeak-ng); only regenerating the data needs it")
def test_three_words_end_to_end(tmp_path):
    utts = [u for u in synth.plan("train", 1, seed=0) if u.label in (0, 7, 16)]
    spikes = [synth.render(u) for u in utts]
    assert spikes[0][0].size == synth.render(utts[0])[0].size            # deterministic
    assert np.array_equal(spikes[0][1], synth.render(utts[0])[1])
    path = write_shd(tmp_path / "w.h5", [t for t, _ in spikes], [c for _, c in spikes],
                     [u.label for u in utts], [u.speaker for u in utts], list(synth.KEYS),
                     meta=synth.speaker_meta())
    s = load(path)
    assert [s.keys[y] for y in s.labels] == ["zero", "seven", "sechs"]
    for (t, _), u in zip(spikes, utts):
        assert 200 < t.size < 20000
        assert u.onset <= t[-1] < 1.5
    b = bin_counts(s)
    assert 0 < b.max_count < 16                                       # 4-bit inputs
