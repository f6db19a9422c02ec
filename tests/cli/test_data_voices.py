"""``data baseline --protocol`` on a many-voice corpus, and ``data synth --corpus voices``'s
refusals. The corpus here is written directly (spikes whose channel band depends on the class,
so that the classes can be learned), with the speakers and metadata of a real one."""

import json

import numpy as np
import pytest

from model.audio.corpus import plan, protocol, speaker_meta
from model.audio.shd import load, write_shd
from model.audio.synth import KEYS
from model.audio.voices import ENGINES, VOICES
from polychrony_cli import main


def _fake(path, pairs, seed):
    rng = np.random.default_rng(seed)
    times, units = [], []
    for label, _ in pairs:
        n = 200
        t = np.sort(rng.uniform(0, 0.5, n))
        u = rng.integers(label * 35, label * 35 + 30, n)         # disjoint bands
        times.append(t)
        units.append(u)
    return write_shd(path, times, units, [lb for lb, _ in pairs], [s for _, s in pairs],
                     list(KEYS), meta=speaker_meta(0))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("voices")
    train = [(it.label, it.speaker) for it in plan("train", 0, per_class=20)]
    test = [(label, s) for s, v in enumerate(VOICES) for label in range(10 * len(v.languages))]
    return _fake(d / "train.h5", train, 1), _fake(d / "test.h5", test, 2)


def test_protocol_scores_every_fold_by_engine(corpus, capsys):
    assert main(["data", "baseline", str(corpus[0]), str(corpus[1]), "--protocol",
                 "--time-bins", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["fold"] for r in rows] == ["unseen voices"] + [f"without {e}" for e in ENGINES]
    folds = protocol(load(corpus[0]), load(corpus[1]))
    for r in rows:
        tr, te, classes = folds[r["fold"]]
        assert (r["train_samples"], r["test_samples"], r["classes"]) == (len(tr), len(te),
                                                                         classes)
        assert r["accuracy"] > 0.9            # the bands make it easy
        assert r["engine_mean"] == pytest.approx(np.mean(list(r["per_engine"].values())))
    assert set(rows[0]["per_engine"]) == set(ENGINES)
    assert rows[1]["classes"] == 10 and set(rows[1]["per_engine"]) == {"espeak-ng"}


def test_protocol_refuses_a_file_that_is_not_a_voices_corpus(tmp_path, corpus, capsys):
    other = write_shd(tmp_path / "x.h5", [np.array([0.1])], [np.array([3])], [0], [500],
                      list(KEYS))
    assert main(["data", "baseline", str(corpus[0]), str(other), "--protocol"]) == 2
    assert "x.h5: speaker ids reach 500" in capsys.readouterr().err


def test_without_and_source_swap_need_the_voices_corpus(tmp_path, capsys):
    said = "--without, --waveform-aug, --snr-db and --source-swap go with --corpus voices"
    assert main(["data", "synth", "-o", str(tmp_path), "--without", "warp"]) == 2
    assert said in capsys.readouterr().err
    assert main(["data", "synth", "-o", str(tmp_path), "--waveform-aug"]) == 2
    assert said in capsys.readouterr().err
    assert main(["data", "synth", "-o", str(tmp_path), "--source-swap", "0.5"]) == 2
    assert said in capsys.readouterr().err
    assert main(["data", "synth", "-o", str(tmp_path), "--snr-db", "0", "30"]) == 2
    assert said in capsys.readouterr().err
    assert main(["data", "synth", "--corpus", "voices", "-o", str(tmp_path),
                 "--source-swap", "1.5"]) == 2
    assert "--source-swap 1.5: a share of the utterances, at most 1" in \
        capsys.readouterr().err


def test_without_refuses_what_the_recipe_already_leaves_off(tmp_path, capsys):
    """Today's recipe draws no waveform augmentation: `--without warp` would change nothing
    and says so (naming `--waveform-aug`); with `--waveform-aug` it is taken. Checked before
    any work (nothing written)."""
    out = tmp_path / "c"
    assert main(["data", "synth", "--corpus", "voices", "-o", str(out), "--without", "speed",
                 "warp", "babble"]) == 2
    assert "--without warp babble: already off in the recipe (--waveform-aug turns the " \
        "waveform augmentations on)" in capsys.readouterr().err
    assert main(["data", "synth", "--corpus", "voices", "-o", str(out), "--waveform-aug",
                 "--without", "low-snr"]) == 2
    assert "--without low-snr: already off in the recipe\n" in capsys.readouterr().err
    assert not out.exists()


def test_snr_range_is_checked_before_any_work(tmp_path, capsys):
    assert main(["data", "synth", "--corpus", "voices", "-o", str(tmp_path), "--snr-db", "30",
                 "10"]) == 2
    assert "--snr-db 30 10: the low end is above the high end" in capsys.readouterr().err
    for value, words in (("-30", "must be at least -20.0, got -30"),
                         ("nan", "expected a finite number")):
        with pytest.raises(SystemExit) as e:
            main(["data", "synth", "--corpus", "voices", "-o", str(tmp_path), "--snr-db",
                  value, "30"])
        assert e.value.code == 2 and f"argument --snr-db: {words}" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_level_norm_goes_with_the_voices_corpus_and_is_checked(tmp_path, capsys):
    assert main(["data", "synth", "-o", str(tmp_path), "--level-norm", "1"]) == 2
    assert "--level-norm goes with --corpus voices" in capsys.readouterr().err
    assert main(["data", "synth", "--corpus", "voices", "-o", str(tmp_path), "--level-norm",
                 "1", "--pack", str(tmp_path / "p.npz")]) == 2
    assert "--pack writes the embedded set's compact form, which records no cochlea" in \
        capsys.readouterr().err
    assert main(["data", "synth", "--corpus", "voices", "-o", str(tmp_path), "--norm-width",
                 "5"]) == 2
    assert "--norm-width 5 smooths the level normalisation: it needs --level-norm above 0" in \
        capsys.readouterr().err
    for flag, value, words in (("--level-norm", "2", "must be at most 1.0, got 2"),
                               ("--level-norm", "-0.5", "must be at least 0.0, got -0.5"),
                               ("--norm-width", "inf", "expected a finite number")):
        with pytest.raises(SystemExit) as e:
            main(["data", "synth", "--corpus", "voices", "-o", str(tmp_path), flag, value])
        assert e.value.code == 2 and f"argument {flag}: {words}" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())                  # refused before any work


def test_the_split_comes_from_the_test_file(tmp_path, corpus):
    """A corpus keeps its held-out voices as its test file records them, whatever the
    catalogue's split is now (voices added later do not move it)."""
    meta = speaker_meta(0)
    meta["held_out"] = np.zeros_like(meta["held_out"])
    meta["held_out"][5] = 1
    test = load(corpus[1])
    path = write_shd(tmp_path / "test.h5", test.times, test.units, test.labels,
                     test.speakers, list(KEYS), meta=meta)
    _, te, _ = protocol(load(corpus[0]), load(path))["unseen voices"]
    assert len(te) and set(load(path).speakers[te].tolist()) == {5}


def test_without_takes_every_augmentation_the_model_can_switch_off(tmp_path, capsys):
    """The CLI's list is the model's (`augment.AUGMENTATIONS`): each name passes the parser
    (and then meets the voices-corpus check), an unknown one does not."""
    from model.audio.augment import AUGMENTATIONS
    for name in AUGMENTATIONS:
        assert main(["data", "synth", "-o", str(tmp_path), "--without", name]) == 2
        assert "go with --corpus voices" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "synth", "-o", str(tmp_path), "--without", "tempo"])
    assert "invalid choice: 'tempo'" in capsys.readouterr().err


def test_data_info_says_how_a_file_was_drawn(tmp_path, capsys):
    """``data info`` prints the generator, seed and split of a file's ``recipe`` and where
    its augmentation ranges differ from today's recipe, or from the one with every
    augmentation on when that is nearer; a file without one says so."""
    from model.audio import augment
    pairs = [(0, 0), (1, 1)]
    path = _fake(tmp_path / "plain.h5", pairs, 0)
    assert main(["data", "info", str(path)]) == 0
    assert "drawn with  not recorded (no 'recipe' attribute)" in capsys.readouterr().out
    rng = np.random.default_rng(0)
    full = "every augmentation on (--waveform-aug, the recipe before December 2026)"
    for name, ranges, want in (
            ("today.h5", augment.recipe(), "augmented   today's recipe\n"),
            ("slow.h5", augment.recipe(off=["speed"]),
             "augmented   today's recipe except rate off\n"),
            ("full.h5", augment.recipe(waveform=True), f"augmented   {full}\n"),
            ("old.h5", augment.recipe(waveform=True, snr_db=(0, 30), off=["reverb"]),
             f"augmented   {full} except rt60 off; snr_db 0..30 (now 10..30)\n")):
        p = write_shd(tmp_path / name, [np.sort(rng.uniform(0, 0.3, 20)) for _ in pairs],
                      [rng.integers(0, 700, 20) for _ in pairs], [0, 1], [0, 1], list(KEYS),
                      recipe={"generator": "voices", "seed": 2, "split": "train",
                              "ranges": augment.ranges_dict(ranges)})
        assert main(["data", "info", str(p)]) == 0
        out = capsys.readouterr().out
        assert "drawn with  generator voices, seed 2, split train\n" in out and want in out
    assert main(["data", "info", str(p), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recipe"]["seed"] == 2
