"""model.audio.cochlea: the gammatone bank, the hair cell, the spikes."""

import numpy as np
import pytest
from scipy.signal import sosfilt, sosfreqz

from model.audio.cochlea import (CochleaParams, centre_frequencies, encode, erb, erb_rate,
                                 frame_levels, gammatone_sos, hair_cell, rectified_frames)

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


def test_params_to_and_from_a_dict():
    p = CochleaParams(level_norm=0.5, norm_width=4.0)
    d = p.to_dict()
    assert d["level_norm"] == 0.5 and type(d["fibres"]) is int and len(d) == 17
    assert CochleaParams.from_dict(d) == p
    assert CochleaParams.from_dict({"level_norm": 1}) == CochleaParams(level_norm=1.0)
    for bad, words in (({"level_nrom": 1.0}, "unknown cochlea field 'level_nrom'"),
                       ({"fibres": 4.5}, "'fibres' must be an integer"),
                       ({"level_norm": "1"}, "'level_norm' must be a number"),
                       ({"level_norm": True}, "'level_norm' must be a number"),
                       ({"level_norm": 2.0}, "level_norm must be a finite number between 0 "
                                             "and 1, got 2.0"),
                       ([1.0], "must be an object")):
        with pytest.raises(ValueError, match=words):
            CochleaParams.from_dict(bad)


# -------------------------------------------------------------------------------------------
# Per-channel level normalisation

def _noise(seconds=0.5, seed=1):
    """White noise with a 4 Hz envelope (active and quiet frames, sustained firing)."""
    n = int(seconds * FS)
    t = np.arange(n) / FS
    return np.random.default_rng(seed).standard_normal(n) * 0.5 * (1 - np.cos(2 * np.pi * 4 * t))


def _tilted(x, db=30.0):
    """``x`` through a spectral tilt linear in ERB-rate: ``db`` dB from 80 Hz to 7.5 kHz,
    0 dB in the middle of the bank."""
    f = np.fft.rfftfreq(x.size, 1 / FS)
    lo, hi = erb_rate(80.0), erb_rate(7500.0)
    gain = 10 ** (db * (erb_rate(np.maximum(f, 1.0)) - (lo + hi) / 2) / (hi - lo) / 20)
    return np.fft.irfft(np.fft.rfft(x) * gain, x.size)


def _at(x, db):
    return x / np.sqrt(np.mean(x ** 2)) * 10 ** (db / 20)


def test_level_norm_off_is_the_model_as_it_was():
    x = _at(_noise(0.3), -25.0)
    e = rectified_frames(x)
    p = CochleaParams()
    level = 20.0 * np.log10(e + 1e-12)                 # the hair cell without the option
    q = p.p_spont + (p.p_max - p.p_spont) / (1.0 + np.exp(-(level - p.level_50) / p.level_width))
    from scipy.signal import lfilter
    k = np.exp(-p.dt / p.tau_adapt)
    a = lfilter([1.0 - k], [1.0, -k], q, axis=0, zi=k * q[:1])[0]
    np.testing.assert_array_equal(hair_cell(e), q / (1.0 + p.adapt_gain * a / p.p_max))
    np.testing.assert_array_equal(frame_levels(e, CochleaParams(norm_width=8.0)), level)
    for a, b in zip(encode(x, np.random.default_rng(3)),
                    encode(x, np.random.default_rng(3), CochleaParams(level_norm=0.0,
                                                                      norm_width=8.0))):
        np.testing.assert_array_equal(a, b)


def test_level_norm_takes_out_a_spectral_tilt():
    """Two copies of a sound, one 30 dB tilted across the bank: normalised, their per-channel
    rates nearly agree; without, they differ widely."""
    flat = _at(_noise(), -30.0)
    tilt = _tilted(flat)                  # about the same mean level over the channels
    e_flat, e_tilt = rectified_frames(flat), rectified_frames(tilt)
    gap, spikes = {}, {}
    for alpha in (0.0, 1.0):
        p = CochleaParams(level_norm=alpha)
        q_flat, q_tilt = hair_cell(e_flat, p).mean(axis=0), hair_cell(e_tilt, p).mean(axis=0)
        gap[alpha] = np.abs(q_flat - q_tilt).mean()
        count = [np.bincount(encode(x, np.random.default_rng(0), p)[1] // 5, minlength=140)
                 for x in (flat, tilt)]
        spikes[alpha] = np.abs(count[0] - count[1]).sum() / count[0].sum()
    assert gap[1.0] < 0.3 * gap[0.0]
    assert spikes[1.0] < 0.25 * spikes[0.0]
    # smoothing across channels keeps a tilt this smooth out too
    p = CochleaParams(level_norm=1.0, norm_width=10.0)
    smooth = np.abs(hair_cell(e_flat, p).mean(axis=0) - hair_cell(e_tilt, p).mean(axis=0)).mean()
    assert smooth < 0.3 * gap[0.0]


@pytest.mark.parametrize("alpha, width", [(1.0, 0.0), (0.5, 0.0), (1.0, 10.0), (1.0, 2000.0)])
def test_level_norm_keeps_the_loudness_of_every_frame(alpha, width):
    e = rectified_frames(_tilted(_at(_noise(0.3), -25.0)))
    raw = 20.0 * np.log10(e + 1e-12)
    got = frame_levels(e, CochleaParams(level_norm=alpha, norm_width=width))
    np.testing.assert_allclose(got.mean(axis=1), raw.mean(axis=1), rtol=0, atol=1e-9)
    shift = raw - got                                   # one offset per channel, all frames
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-9)
    if width <= 10:
        assert np.ptp(shift[0]) > 5.0 * alpha
    else:                                 # a kernel wider than the bank: little is left to take
        assert np.ptp(shift[0]) < 2.0


def test_level_norm_is_deterministic_and_leaves_silence_silent():
    p = CochleaParams(level_norm=1.0, norm_width=6.0)
    x = _at(_noise(0.3), -25.0)
    a, b = encode(x, np.random.default_rng(7), p), encode(x, np.random.default_rng(7), p)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert encode(np.zeros(FS // 4), np.random.default_rng(0), p)[0].size == 0
    assert frame_levels(np.zeros((0, 700)), p).shape == (0, 700)


@pytest.mark.parametrize("field, value, words", [
    ("level_norm", 1.5, "level_norm must be a finite number between 0 and 1, got 1.5"),
    ("level_norm", -0.1, "between 0 and 1"),
    ("level_norm", float("nan"), "level_norm must be a finite number"),
    ("level_norm", "1", "level_norm must be a finite number"),
    ("norm_width", -1.0, "norm_width must be a finite number >= 0 channels, got -1.0"),
    ("norm_width", float("inf"), "norm_width must be a finite number"),
])
def test_level_norm_params_are_checked(field, value, words):
    with pytest.raises(ValueError, match=words):
        CochleaParams(**{field: value})


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
