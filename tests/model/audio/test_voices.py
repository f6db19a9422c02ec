"""The many-voice corpus: the engines speak (Festival, Flite and espeak-ng, real binaries), the
catalogue and its splits keep persons apart, augmentation draws are reproducible and switch off
one at a time, and a tiny corpus goes through the SHD files and the protocol."""

import dataclasses
import shutil

import numpy as np
import pytest

from model.audio import augment as aug
from model.audio.corpus import plan, protocol, render_items, scores, speaker_meta, \
    synthesize, voice_split
from model.audio.voices import ENGINES, FS, VOICES, Say, engine_voices, read_wav, run_engine, \
    speak_all

ENGINES_MISSING = [e for e in ENGINES if shutil.which(e) is None]
needs_engines = pytest.mark.skipif(bool(ENGINES_MISSING), reason=f"not installed: "
                                   f"{ENGINES_MISSING} (scripts/setup.sh installs them)")


def _energy_at(x, lo, hi):
    f = np.fft.rfftfreq(x.size, 1 / FS)
    p = np.abs(np.fft.rfft(x)) ** 2
    return p[(f >= lo) & (f < hi)].sum() / p.sum()


@needs_engines
def test_every_engine_speaks_a_word_at_16_khz():
    """One voice of each engine (Festival's at 16 and 32 kHz, Flite's at 8 and 16 kHz) says
    "seven": about a third to one and a half seconds of sound, not silence, resampled to
    16 kHz; a slower rate gives a longer word."""
    picks = ["espeak-ng:m3", "festival:kal_diphone", "festival:cmu_us_slt_arctic_hts",
             "flite:kal", "flite:slt"]
    idx = [next(i for i, v in enumerate(VOICES) if v.key == k) for k in picks]
    says = [Say("seven", i, "en-gb" if VOICES[i].engine == "espeak-ng" else "en") for i in idx]
    says += [Say("seven", idx[3], "en", rate=0.75), Say("sieben", idx[0], "de")]
    out = speak_all(says)
    for s, x in zip(says, out):
        assert 0.3 < x.size / FS < 1.6, (VOICES[s.voice].key, x.size)
        assert np.abs(x).max() > 0.05
    assert out[5].size > 1.2 * out[3].size          # rate 0.75 is slower
    # Flite's kal is an 8 kHz voice: nothing above 4 kHz after resampling
    assert _energy_at(out[3], 4100, 8000) < 1e-3 < _energy_at(out[0], 4100, 8000)


def test_a_language_an_engine_lacks_is_refused_before_speaking():
    flite = engine_voices("flite")[0]
    with pytest.raises(ValueError, match="cannot speak 'de'"):
        speak_all([Say("sieben", flite, "de")])
    with pytest.raises(ValueError, match="unknown engine"):
        engine_voices("mbrola")


def test_wav_reader_reads_pipes_and_refuses_stereo():
    pcm = (np.arange(800) % 50 - 25).astype("<i2").tobytes()

    def wav(channels=1, size=None):
        fmt = (1).to_bytes(2, "little") + channels.to_bytes(2, "little") + \
            FS.to_bytes(4, "little") + (FS * 2 * channels).to_bytes(4, "little") + \
            (2 * channels).to_bytes(2, "little") + (16).to_bytes(2, "little")
        body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + \
            (len(pcm) if size is None else size).to_bytes(4, "little") + pcm
        return b"RIFF" + (len(body)).to_bytes(4, "little") + body
    assert read_wav(wav(), "x").size == 800
    assert read_wav(wav(size=0x7fffffff), "x").size == 800        # written to a pipe
    with pytest.raises(RuntimeError, match="x: 2 channel"):
        read_wav(wav(channels=2), "x")
    with pytest.raises(RuntimeError, match="y: not a WAV"):
        read_wav(b"ID3" + pcm, "y")


def test_an_engine_call_that_hangs_is_retried_then_named(tmp_path):
    """A call over its time is killed and tried once more with twice the time; a second
    overrun ends in one line naming the call, and a call that returns in time is returned."""
    marker = tmp_path / "runs"
    # Each run appends a line, then hangs: two runs (the first and the retry), then the error.
    hang = ["sh", "-c", f'echo run >> "{marker}"; exec sleep 30']
    with pytest.raises(RuntimeError, match=r"flite \(kal, 'three'\) did not finish in 0.2 s "
                                           r"nor, tried again, in 0.4 s"):
        run_engine(hang, timeout=0.2, what="flite (kal, 'three')")
    assert marker.read_text().splitlines() == ["run", "run"]
    # The retry's longer time is enough for a call that needs between the two.
    slow = ["sh", "-c", f'echo run >> "{marker}.2"; sleep 0.5; echo done']
    assert run_engine(slow, timeout=0.4, what="slow").stdout == "done\n"
    assert (tmp_path / "runs.2").read_text().splitlines() == ["run", "run"]


def test_split_holds_out_persons_in_every_engine():
    train, test = voice_split(0)
    assert set(train) | set(test) == set(range(len(VOICES))) and not set(train) & set(test)
    for engine in ENGINES:
        assert {VOICES[i].engine for i in test} >= {engine}
        assert any(VOICES[i].engine == engine for i in train)
    held = {VOICES[i].person for i in test}
    assert not any(VOICES[i].person in held for i in train)      # nobody in both
    assert voice_split(0)[1].tolist() == test.tolist()
    accented = [i for i, v in enumerate(VOICES) if v.accent]
    assert accented and set(accented) <= set(train)               # training voices only


def test_augment_draws_are_reproducible_and_switch_off_one_at_a_time():
    a = aug.draw(np.random.default_rng(7))
    assert a == aug.draw(np.random.default_rng(7))
    b = aug.draw(np.random.default_rng(7), aug.without(aug.Ranges(), "warp"))
    assert b.warp == 1.0 and b.eq == a.eq and b.snr_db == a.snr_db and b.gain_db == a.gain_db
    off = aug.draw(np.random.default_rng(7), aug.OFF)
    assert (off.warp, off.eq, off.tilt_db, off.lowpass, off.rt60, off.gain_db, off.noise) == \
        (1.0, (), 0.0, None, 0.0, 0.0, "white") and 10 <= off.snr_db <= 30
    with pytest.raises(ValueError, match="unknown augmentation 'tempo'"):
        aug.without(aug.Ranges(), "tempo")


def test_speed_and_pitch_switch_off_without_moving_any_other_draw():
    """`speed` / `pitch` off: every training utterance at the voice's own rate / mean F0, and
    each utterance's other draws (voice, accent, amplitude, onset, waveform augmentation, the
    other prosody) the recipe's; the test split keeps its prosody whatever the ranges."""
    recipe = plan("train", 3, per_class=6)
    for name, field, other in (("speed", "rate", "pitch"), ("pitch", "pitch", "rate")):
        off = aug.without(aug.recipe(), name)
        assert getattr(off, field) is None and getattr(off, other) == getattr(aug.recipe(),
                                                                              other)
        items = plan("train", 3, per_class=6, ranges=off)
        assert {getattr(it, field) for it in items} == {1.0}
        lo, hi = getattr(aug.Ranges(), field)
        assert len({getattr(it, field) for it in recipe}) > 1
        assert all(lo <= getattr(it, field) <= hi for it in recipe)
        assert [dataclasses.replace(it, **{field: 1.0}) for it in recipe] == \
            [dataclasses.replace(it, **{field: 1.0}) for it in items]
    both = aug.recipe(off=("speed", "pitch"))
    assert plan("test", 3, test_voices=[0, 1], ranges=both) == plan("test", 3, test_voices=[0, 1])
    assert {"speed", "pitch"} <= set(aug.AUGMENTATIONS)


def test_the_noise_parts_switch_off_alone():
    """On the first corpora's recipe (noise at 0-30 dB): `babble` keeps white and pink noise
    over the same SNRs; `low-snr` keeps every kind from 10 dB; each of them and every other
    augmentation's draw stays the recipe's."""
    first = aug.Ranges(snr_db=(0.0, 30.0))
    draws = [aug.draw(np.random.default_rng(s), first) for s in range(200)]
    no_babble = [aug.draw(np.random.default_rng(s), aug.without(first, "babble"))
                 for s in range(200)]
    assert {d.noise for d in draws} == set(aug.NOISES)
    assert {d.noise for d in no_babble} == {"white", "pink"}
    assert [d.snr_db for d in no_babble] == [d.snr_db for d in draws]
    high = [aug.draw(np.random.default_rng(s), aug.without(first, "low-snr"))
            for s in range(200)]
    assert [d.noise for d in high] == [d.noise for d in draws]
    assert min(d.snr_db for d in draws) < 10 <= min(d.snr_db for d in high)
    assert max(d.snr_db for d in high) <= 30
    strip = dict(noise=None, snr_db=0.0)
    for part in (no_babble, high):
        assert [dataclasses.replace(d, **strip) for d in part] == \
            [dataclasses.replace(d, **strip) for d in draws]
    assert aug.without(aug.OFF, "babble") == aug.OFF        # white only already
    assert set(aug.AUGMENTATIONS) >= {"noise", "babble", "low-snr"}


def test_every_augmentation_on_is_the_first_recipe_without_its_low_snrs():
    """The ranges with every augmentation on (the recipe before the waveform ones went off)
    draw exactly what the ablation's `low-snr` variant of the first recipe drew, so that
    variant's corpus and runs are theirs; on them `low-snr` is a no-op."""
    first = aug.Ranges(snr_db=(0.0, 30.0))
    assert aug.Ranges() == aug.without(first, "low-snr")
    assert aug.without(aug.Ranges(), "low-snr") == aug.Ranges()
    assert aug.recipe(waveform=True, snr_db=(0.0, 30.0), off=("low-snr",)) == aug.Ranges() \
        == aug.recipe(waveform=True)
    assert aug.recipe(waveform=True, source_p=0.5, off=("warp", "gain")) == \
        aug.without(aug.without(aug.Ranges(source_p=0.5), "warp"), "gain")
    now = [aug.draw(np.random.default_rng(s)) for s in range(200)]
    assert now == [aug.draw(np.random.default_rng(s), aug.without(first, "low-snr"))
                   for s in range(200)]
    assert 10 <= min(d.snr_db for d in now) and max(d.snr_db for d in now) <= 30


def test_the_recipe_leaves_the_waveform_augmentations_off_draw_for_draw():
    """Today's recipe is every augmentation on with the waveform ones off: the training file
    of a seed is, utterance for utterance, the one the ablation's `waveform` variant drew from
    that seed (its runs are the recipe's); each augmentation it leaves off is off, the noise
    is white at 10-30 dB, the prosody drawn, and nothing else moves."""
    r = aug.recipe()
    assert r == aug.recipe(waveform=True, off=aug.RECIPE_OFF)
    assert (r.warp, r.eq_bands, r.eq_db, r.tilt_db, r.lowpass, r.highpass, r.rt60, r.gain_db,
            r.source_p, r.noises, r.snr_db) == (None,) * 9 + (("white",), (10.0, 30.0))
    assert r.rate == aug.Ranges().rate and r.pitch == aug.Ranges().pitch
    assert r == aug.OFF                # the test files' clean draws: the same ranges
    every_off = aug.recipe(waveform=True, off=("source", *aug.RECIPE_OFF))
    assert plan("train", 2, per_class=4) == plan("train", 2, per_class=4, ranges=every_off)
    full = plan("train", 2, per_class=4, ranges=aug.recipe(waveform=True))
    assert [dataclasses.replace(it, aug=None) for it in full] == \
        [dataclasses.replace(it, aug=None) for it in plan("train", 2, per_class=4)]
    assert any(it.aug.warp != 1.0 for it in full)
    # --snr-db still sets the white noise's range
    assert aug.recipe(snr_db=(0, 30)).snr_db == (0, 30)


def test_augmentations_do_what_they_say():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(FS) * 0.1
    quiet = aug.Augment(noise=None)
    assert np.allclose(aug.apply(x, quiet, rng), x)
    low = aug.apply(x, aug.Augment(noise=None, lowpass=2000.0), rng)
    assert _energy_at(low, 4000, 8000) < 1e-3 < _energy_at(x, 4000, 8000)
    wet = aug.apply(x, aug.Augment(noise=None, rt60=0.4, wet=0.5), rng)
    assert wet.size == x.size + int(0.4 * FS) - 1 and np.abs(wet[x.size:]).max() > 0
    warped = aug.apply(x, aug.Augment(noise=None, warp=1.25), rng)
    assert warped.size == pytest.approx(x.size / 1.25, abs=2)
    loud = aug.apply(x, aug.Augment(noise=None, gain_db=6.0), rng)
    assert np.allclose(loud, x * 10 ** 0.3)
    for kind in aug.NOISES:
        y = aug.apply(x, aug.Augment(noise=kind, snr_db=10.0), rng,
                      babble=[x[::2], x[::3], x[::5]])
        n = y - x
        assert np.sqrt(np.mean(n ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)) / 10 ** 0.5,
                                                         rel=1e-6)
    p = aug.pink(1 << 16, rng)
    assert _energy_at(p, 50, 500) > 3 * _energy_at(p, 5000, 7950)   # 1/f: more at the bottom


def _vowel(f0: float = 120.0, seconds: float = 0.5) -> np.ndarray:
    """A pulse train through three formant resonances (an /a/-like vowel), 16 kHz."""
    from scipy.signal import lfilter
    n = int(seconds * FS)
    x = (np.arange(n) % int(FS / f0) == 0).astype(float)
    for f, bw in ((700, 80), (1200, 90), (2600, 120)):
        r = np.exp(-np.pi * bw / FS)
        x = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / FS), r * r], x)
    return x / np.abs(x).max() * 0.3


def _envelope(x: np.ndarray) -> np.ndarray:
    """Log energy in 12 bands between 300 Hz and 6 kHz (wide enough to hold several
    harmonics each: the envelope, not the fine structure)."""
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / FS)
    edges = np.geomspace(300, 6000, 13)
    return np.log([spec[(f >= a) & (f < b)].mean() + 1e-12 for a, b in zip(edges, edges[1:])])


def test_source_swap_keeps_the_vocal_tract_and_changes_the_source():
    """``vocode``: the same length and RMS, the spectral envelope kept (the formants), the fine
    structure replaced (the pulse source at half the pitch puts harmonics between the voice's);
    the draw's other numbers do not move when the swap is asked for."""
    x = _vowel()
    for source in aug.SOURCES:
        y = aug.vocode(x, source, np.random.default_rng(0))
        assert y.size == x.size and np.isfinite(y).all()
        assert np.sqrt(np.mean(y ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)))
        assert np.corrcoef(_envelope(x), _envelope(y))[0, 1] > 0.9
    # the pitch follows f0_scale: at half of 120 Hz, harmonics appear at odd multiples of 60
    half = aug.vocode(x, "pulse", np.random.default_rng(0), f0_scale=0.5)
    f = np.fft.rfftfreq(x.size, 1 / FS)

    def at(z, freqs):
        mag = np.abs(np.fft.rfft(z))
        return sum(mag[np.abs(f - q) < 6].sum() for q in freqs)
    odd, even = (60, 180, 300, 420, 540), (120, 240, 360, 480, 600)
    assert at(x, odd) < 0.1 * at(x, even) and at(half, odd) > 0.3 * at(half, even)
    with pytest.raises(ValueError, match="source must be one of"):
        aug.vocode(x, "buzz", np.random.default_rng(0))
    plain = aug.draw(np.random.default_rng(3))
    swapped = aug.draw(np.random.default_rng(3), aug.Ranges(source_p=1.0))
    assert plain.source is None and swapped.source in aug.SOURCES
    assert dataclasses.replace(swapped, source=None, f0_scale=plain.f0_scale,
                               source_seed=plain.source_seed) == plain
    assert aug.draw(np.random.default_rng(3), aug.without(aug.Ranges(source_p=1.0),
                                                          "source")).source is None
    y = aug.apply(x, dataclasses.replace(swapped, noise=None, warp=1.0, eq=(), tilt_db=0.0,
                                         lowpass=None, highpass=None, rt60=0.0, gain_db=0.0),
                  np.random.default_rng(0))
    assert y.size == x.size and not np.allclose(y, x)


def test_plans_balance_engines_and_keep_to_their_voices():
    train_v, test_v = (set(a.tolist()) for a in voice_split(0))
    items = plan("train", 0, per_class=30)
    assert len(items) == 600 and {it.speaker for it in items} <= train_v
    english = [VOICES[it.speaker].engine for it in items if it.label < 10]
    counts = {e: english.count(e) for e in ENGINES}
    assert min(counts.values()) > 60, counts                       # about 100 each
    assert all(VOICES[it.speaker].engine == "espeak-ng" and it.lang == "de"
               for it in items if it.label >= 10)
    test = plan("test", 0, reps=2, espeak_reps=1)
    assert {it.speaker for it in test} == {i for i, v in enumerate(VOICES) if not v.accent}
    assert all(it.aug.warp == 1.0 and it.aug.noise == "white" for it in test)
    assert plan("train", 0, per_class=30) == items
    with pytest.raises(ValueError, match="split"):
        plan("val", 0)


def test_ranges_changes_names_what_differs_from_the_recipe():
    """``ranges_changes`` reads ranges back as a file holds them (JSON lists) and names each
    field that differs from today's recipe, one that is off, and fields it does not know or
    that are missing."""
    import json
    back = json.loads(json.dumps(aug.ranges_dict(aug.recipe())))
    assert aug.ranges_changes(back) == []
    every = aug.recipe(waveform=True)
    first = json.loads(json.dumps(aug.ranges_dict(
        aug.recipe(waveform=True, snr_db=(0, 30), off=["warp", "babble"]))))
    assert aug.ranges_changes(first, base=every) == [
        "warp off", "noises white,pink (now white,pink,babble)", "snr_db 0..30 (now 10..30)"]
    assert aug.ranges_changes(first, base=aug.recipe(waveform=True, snr_db=(0, 30),
                                                     off=["warp", "babble"])) == []
    # against today's recipe (the default), the waveform augmentations it leaves off
    assert aug.ranges_changes(first)[:2] == ["eq_bands 0..4 (now off)", "eq_db -9..9 (now off)"]
    odd = dict(back, extra=1)
    del odd["gain_db"]
    assert aug.ranges_changes(odd) == ["gain_db not recorded", "extra (unknown field)"]
    # files drawn before the prosody was an option hold no rate or pitch: they had the recipe's
    older = {k: v for k, v in back.items() if k not in ("rate", "pitch")}
    assert aug.ranges_changes(older) == []
    assert aug.ranges_changes(older, base=aug.recipe(off=["speed"])) == \
        ["rate 0.75..1.35 (now off)"]
    assert aug.ranges_changes({k: v for k, v in json.loads(json.dumps(aug.ranges_dict(
        every))).items() if k not in ("rate", "pitch")}, base=every) == []
    slow = json.loads(json.dumps(aug.ranges_dict(aug.recipe(off=["pitch"]))))
    assert aug.ranges_changes(slow) == ["pitch off"]


@needs_engines
def test_a_tiny_corpus_round_trips_and_the_protocol_keeps_engines_apart(tmp_path):
    from model.audio.shd import load
    # two voices of each engine in the test file: one held out, one heard in training
    train_v, held_v = voice_split(0)
    pick = [next(i for i in vs if VOICES[i].engine == e) for e in ENGINES
            for vs in (train_v, held_v)]
    paths = synthesize(tmp_path, per_class=1, reps=1, espeak_reps=1, progress=False, chunk=64,
                       test_voices=pick)
    train, test = load(paths["train"]), load(paths["test"])
    assert len(train) == 20 and len(test) == sum(len(VOICES[i].languages) * 10 for i in pick)
    # each file records how it was drawn; only the training file has augmentation ranges
    common = {"generator": "voices", "seed": 0, "per_class": 1, "reps": 1, "espeak_reps": 1,
              "test_voices": sorted(pick)}
    assert train.recipe == {**common, "split": "train", "samples": 20,
                            "ranges": aug.ranges_dict(aug.recipe())}
    assert test.recipe == {**common, "split": "test", "samples": len(test)}
    assert aug.ranges_changes(train.recipe["ranges"]) == []
    import h5py
    with h5py.File(paths["test"]) as f:
        meta = {k: f[f"extra/meta_info/{k}"][()] for k in ("engine", "held_out")}
    assert [e.decode() for e in meta["engine"]] == [v.engine for v in VOICES]
    assert meta["held_out"].tolist() == speaker_meta(0)["held_out"].tolist()
    folds = protocol(train, test)
    held = set(voice_split(0)[1].tolist())
    tr, te, classes = folds["unseen voices"]
    assert classes == 20 and all(test.speakers[i] in held for i in te)
    for engine in ENGINES:
        tr, te, classes = folds[f"without {engine}"]
        persons = {v.person for v in VOICES if v.engine == engine}
        assert all(VOICES[train.speakers[i]].person not in persons for i in tr)
        assert len(te) and all(VOICES[test.speakers[i]].engine == engine for i in te)
        assert classes == (10 if engine == "espeak-ng" else 20)
        assert all(test.labels[i] < classes for i in te)
    # every sample has spikes, and the same plan renders the same spikes
    assert all(len(t) > 100 for t in train.times + test.times)
    again = render_items(plan("train", 0, per_class=1)[:3])
    for k in range(3):
        np.testing.assert_array_equal(np.floor(again[k][0] * 1000),
                                      np.floor(train.times[k].astype(float) * 1000))


def test_the_corpus_encodes_with_its_cochlea_and_records_it(tmp_path, monkeypatch):
    """``synthesize(cochlea=...)`` encodes every utterance with that cochlea and writes it into
    the file's ``cochlea`` attribute (the engines replaced by fixed noise bursts, per word)."""
    from model.audio import corpus
    from model.audio.cochlea import CochleaParams
    from model.audio.shd import load

    def fake_speak(says):
        n = int(0.2 * FS)
        return [np.random.default_rng(list(s.word.encode())).standard_normal(n) * np.hanning(n)
                for s in says]
    monkeypatch.setattr(corpus, "speak_all", fake_speak)
    voice = next(i for i, v in enumerate(VOICES) if v.engine == "flite" and not v.accent)
    p = CochleaParams(level_norm=1.0, norm_width=4.0)
    path = synthesize(tmp_path, reps=1, test_voices=[voice], progress=False, splits=("test",),
                      cochlea=p)["test"]
    test = load(path)
    assert test.cochlea == p and len(test) == 10
    items = plan("test", 0, reps=1, test_voices=[voice])
    want, plain = render_items(items, p), render_items(items)
    for t, u, (tw, uw) in zip(test.times, test.units, want):
        np.testing.assert_array_equal(t, tw.astype(np.float16).astype(np.float32))
        np.testing.assert_array_equal(u, uw)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(want, plain))


def test_accented_voices_are_never_tested_even_in_a_corpus_that_holds_them():
    """A corpus written before the rule has accented voices in its test file, some marked
    held out: no fold tests them."""
    class Set(list):
        def __init__(self, speakers, labels):
            super().__init__(speakers)
            self.speakers, self.labels = np.array(speakers), np.array(labels)
    accented = [i for i, v in enumerate(VOICES) if v.accent]
    plain = [i for i, v in enumerate(VOICES) if v.engine == "festival" and not v.accent]
    held_plain = [i for i in plain if i in set(voice_split(0)[1].tolist())]
    train = Set([0, 1], [0, 1])
    test = Set(accented + plain, [3] * (len(accented) + len(plain)))
    folds = protocol(train, test)
    for name, (_, te, _) in folds.items():
        assert not any(VOICES[test.speakers[i]].accent for i in te), name
    _, te, _ = folds["without festival"]
    assert sorted(test.speakers[te].tolist()) == plain
    _, te, _ = folds["unseen voices"]
    assert sorted(test.speakers[te].tolist()) == held_plain


def test_scores_count_the_digit_in_either_language_apart():
    """`digit_accuracy` forgives the language only: "three" answered as "drei" counts there
    and not in the accuracy; a wrong digit counts in neither. Per engine, each engine once."""
    from types import SimpleNamespace
    esp = next(i for i, v in enumerate(VOICES) if v.engine == "espeak-ng")
    fes = next(i for i, v in enumerate(VOICES) if v.engine == "festival")
    test = SimpleNamespace(labels=np.array([3, 13, 5, 5, 0]),
                           speakers=np.array([esp, esp, fes, fes, fes]))
    sc = scores(test, np.arange(5), np.array([13, 13, 4, 5, 10]))
    assert sc["accuracy"] == pytest.approx(2 / 5)
    assert sc["digit_accuracy"] == pytest.approx(4 / 5)
    assert sc["per_engine"] == {"espeak-ng": 0.5, "festival": pytest.approx(1 / 3)}
    assert sc["engine_mean"] == pytest.approx((0.5 + 1 / 3) / 2) and sc["samples"] == 5
    one = scores(test, np.array([2]), np.array([5]))
    assert (one["accuracy"], one["digit_accuracy"], one["samples"]) == (1.0, 1.0, 1)
