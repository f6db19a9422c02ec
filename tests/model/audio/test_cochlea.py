"""model.audio.cochlea: the gammatone bank, the hair cell, the spikes."""

import numpy as np
import pytest
from scipy.signal import sosfilt, sosfreqz

from model.audio.cochlea import (CochleaParams, centre_frequencies, encode, erb, erb_rate,
                           gammatone_sos)

FS = 16000


def test_channels_are_erb_spaced_highest_first():
    f = centre_frequencies()
    assert f.size == 700
    assert f[0] == pytest.approx(7500) and f[-1] == pytest.approx(80)
    assert np.all(np.diff(f) < 0)
    assert np.allclose(np.diff(erb_rate(f)), np.diff(erb_rate(f))[0])
    assert erb(1000) == pytest.approx(132.639)            # Glasberg & Moore 1990


@pytest.mark.parametrize("f", [150.0, 1000.0, 4000.0])
def test_gammatone_sections_match_the_analytic_gammatone(f):
    sos = gammatone_sos(f, FS)
    impulse = np.zeros(4096)
    impulse[0] = 1.0
    h = sosfilt(sos, impulse)
    t = np.arange(4096) / FS
    g = t ** 3 * np.exp(-2 * np.pi * 1.019 * erb(f) * t) * np.cos(2 * np.pi * f * t)
    assert np.dot(h, g) / np.linalg.norm(h) / np.linalg.norm(g) > 0.98
    w, resp = sosfreqz(sos, worN=[f, f * 0.5, f * 1.5], fs=FS)
    assert abs(resp[0]) == pytest.approx(1.0, abs=1e-6)          # unit gain at f
    assert abs(resp[1]) < 0.1 and abs(resp[2]) < 0.1            # and selective


def _tone(f, seconds=0.4, db=-20.0):
    t = np.arange(int(seconds * FS)) / FS
    return 10 ** (db / 20) * np.sqrt(2) * np.sin(2 * np.pi * f * t)


@pytest.mark.parametrize("f", [300.0, 1000.0, 3000.0])
def test_a_tone_spikes_in_the_channel_of_its_frequency(f):
    times, units = encode(_tone(f), np.random.default_rng(0))
    # (a steady high tone mostly gives an onset: sustained firing needs envelope fluctuations)
    assert times.size > 30 and np.all(np.diff(times) >= 0)
    per_channel = np.bincount(units, minlength=700)
    fc = centre_frequencies()
    centre = np.average(erb_rate(fc), weights=per_channel)
    assert abs(centre - erb_rate(f)) < 1.0                        # within one ERB
    assert abs(erb_rate(fc[np.argmax(per_channel)]) - erb_rate(f)) < 1.5
    far = np.abs(erb_rate(fc) - erb_rate(f)) > 5
    assert per_channel[far].sum() < 0.02 * times.size             # silent far away


def test_silence_is_silent_and_onsets_adapt():
    assert encode(np.zeros(FS // 2), np.random.default_rng(0))[0].size == 0
    times, _ = encode(_tone(1000.0, seconds=0.6), np.random.default_rng(0))
    early = np.sum(times < 0.1)
    late = np.sum((times >= 0.4) & (times < 0.5))
    assert early > 1.3 * late > 0                                  # short-term adaptation


def test_params_are_checked():
    with pytest.raises(ValueError, match="f_hi"):
        CochleaParams(f_hi=9000.0)
    with pytest.raises(ValueError, match="whole number"):
        CochleaParams(dt=1.03e-3)


TIDIGITS = "/usr/share/pocketsphinx/test/data/tidigits/dhd.2934z.raw"


@pytest.mark.skipif(not __import__("os").path.exists(TIDIGITS),
                    reason="real-audio smoke test needs Debian's pocketsphinx-testdata")
def test_real_recording_spikes_follow_the_speech():
    """'two nine three four zero' (TIDIGITS, 16 kHz): spikes where the voice is loud."""
    x = np.fromfile(TIDIGITS, dtype="<i2") / 32768.0
    times, units = encode(x, np.random.default_rng(0))
    frames = x[:x.size // 320 * 320].reshape(-1, 320)
    level = 20 * np.log10(np.sqrt((frames ** 2).mean(axis=1)) + 1e-9)     # 20 ms frames
    counts = np.bincount((times / 0.02).astype(int), minlength=level.size)[:level.size]
    loud, quiet = level > level.max() - 20, level < level.max() - 40
    assert counts[loud].mean() > 20 * max(counts[quiet].mean(), 0.05)
    assert 500 < times.size < 20000
