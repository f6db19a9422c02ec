"""The ablation bench: variants, their data and switches, resumption, the table."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")


def _fake_corpus(path):
    """A tiny many-voice corpus in the layout `data synth --corpus voices` writes."""
    from model.audio.corpus import plan, speaker_meta
    from model.audio.shd import write_shd
    from model.audio.synth import KEYS
    from model.audio.voices import VOICES
    rng = np.random.default_rng(0)

    def fake(file, pairs):
        times = [np.sort(rng.uniform(0, 0.2, 60)) for _ in pairs]
        units = [rng.integers(lb * 35, lb * 35 + 30, 60) for lb, _ in pairs]
        write_shd(file, times, units, [lb for lb, _ in pairs], [s for _, s in pairs],
                  list(KEYS), meta=speaker_meta(0))
    path.mkdir()
    fake(path / "train.h5", [(it.label, it.speaker) for it in plan("train", 0, per_class=3)])
    fake(path / "test.h5", [(lb, s) for s, v in enumerate(VOICES)
                            if s % 9 == 0 or v.engine != "espeak-ng"
                            for lb in range(10 * len(v.languages))])


def test_plan_names_each_variants_data_and_switch(tmp_path):
    from bench.audio_ablation import SPIKES, WAVEFORM, plan
    base, work = tmp_path / "base", tmp_path / "work"
    assert plan("all", base, work) == (base, [])
    for v in WAVEFORM:
        assert plan(v, base, work) == (work / f"without-{v}", [])
    for v in SPIKES:
        assert plan(v, base, work) == (base, ["--spike-aug-without", v])
    assert plan("waveform", base, work) == (work / "without-waveform", [])
    for v in ("babble", "low-snr", "speed", "pitch"):
        assert plan(v, base, work) == (work / f"without-{v}", [])
    with pytest.raises(ValueError, match="variant 'tempo': the variants are all, source, warp"):
        plan("tempo", base, work)


def test_every_waveform_variant_turns_each_augmentation_off():
    """The `waveform` variant's corpus has every waveform augmentation off at once, the same
    ranges as turning them off one after the other; a single variant only its own."""
    from bench.audio_ablation import WAVEFORM, variant_ranges
    from model.audio import augment
    every = variant_ranges("waveform", 0.5)
    assert (every.source_p, every.warp, every.eq_db, every.lowpass, every.rt60,
            every.gain_db, every.noises) == (None, None, None, None, None, None, ("white",))
    one = augment.Ranges(source_p=0.5)
    for name in WAVEFORM:
        one = augment.without(one, name)
    assert every == one
    assert variant_ranges("babble").noises == ("white", "pink")
    assert variant_ranges("low-snr").snr_db == (10.0, 30.0)
    warp = variant_ranges("warp")
    assert warp.warp is None and warp.rt60 == augment.Ranges().rt60 is not None


def test_spike_variants_train_resume_and_tabulate(tmp_path, capsys):
    """Two variants on a tiny corpus: each run's settings carry its switch, a second call
    trains nothing (the runs are found), and the table has every seed of each."""
    from bench.audio_ablation import main
    base, work = tmp_path / "base", tmp_path / "work"
    _fake_corpus(base)
    argv = ["--base", str(base), "--corpus-seed", "0", "--variants", "all", "dropout",
            "--seeds", "0", "1", "--epochs", "1", "--qat-epochs", "0", "--window", "0",
            "--hidden", "8", "--work", str(work), "--json", str(tmp_path / "ablation.json")]
    out = main(argv)
    assert set(out["variants"]) == {"all", "dropout"}
    for v in ("all", "dropout"):
        t = out["variants"][v]
        assert t["seeds"] == [0, 1] and all(0 <= x <= 1 for x in t["int_acc"])
    runs = json.loads((work / "dropout.json").read_text())["runs"]
    assert [r["settings"]["spike_aug_off"] for r in runs] == [["dropout"], ["dropout"]]
    assert all("spike_aug_off" not in r["settings"]
               for r in json.loads((work / "all.json").read_text())["runs"])
    before = (work / "all.json").read_text(), (work / "dropout.json").read_text()
    capsys.readouterr()
    again = main(argv)
    assert "already in" in capsys.readouterr().out
    assert ((work / "all.json").read_text(), (work / "dropout.json").read_text()) == before
    assert again["variants"] == out["variants"]
    assert json.loads((tmp_path / "ablation.json").read_text())["variants"] == out["variants"]
    # one variant measured again (its runs elsewhere): the file keeps the other rows
    (work / "all.json").unlink()
    one = argv[:argv.index("all")] + argv[argv.index("all") + 1:]
    assert main(one)["variants"] == out["variants"]
    assert json.loads((tmp_path / "ablation.json").read_text())["variants"] == out["variants"]
    # other settings: the rows in the file are not theirs
    other = main(one[:one.index("--hidden") + 1] + ["4"] + one[one.index("--hidden") + 2:]
                 + ["--table-only"])
    assert other["variants"] == {}
    # the table drawn from its JSON alone: no base, no work directory needed
    import shutil
    shutil.rmtree(base), shutil.rmtree(work)
    capsys.readouterr()
    shown = main(argv + ["--table-only", "--plot", str(tmp_path / "ablation.png")])
    assert shown["variants"] == out["variants"] and not work.exists()
    assert (tmp_path / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| dropout (spikes) | 2 |" in capsys.readouterr().out


def test_a_plot_needs_the_all_on_row(tmp_path):
    from bench.audio_ablation import main
    table = {"base": "b", "corpus_seed": 0, "snr_db": [10.0, 30.0], "arch": "dense",
             "fold": "unseen voices", "hidden": 8, "epochs": 1, "qat_epochs": 0, "window": 0,
             "variants": {"dropout": {"seeds": [0], "int_acc": [0.5], "float_acc": [0.5],
                                      "int_mean": 0.5, "float_mean": 0.5, "engine_mean": []}}}
    (tmp_path / "t.json").write_text(json.dumps(table))
    with pytest.raises(SystemExit, match=r"t.json has no all-on row to compare with"):
        main(["--base", "b", "--corpus-seed", "0", "--epochs", "1", "--qat-epochs", "0",
              "--window", "0", "--hidden", "8", "--table-only", "--json",
              str(tmp_path / "t.json"), "--plot", str(tmp_path / "t.png")])
    assert not (tmp_path / "t.png").exists()


def test_the_default_variants_leave_out_what_changes_nothing():
    """Without --variants, every variant that changes something on the base: on today's
    recipe (10-30 dB) not `low-snr`; on the first one (0-30 dB) it too; with a source swap,
    `source`; on a base without the waveform augmentations, the prosody and the spike-level
    ones only."""
    from bench.audio_ablation import VARIANTS, default_variants
    today = default_variants()
    assert today == [v for v in VARIANTS if v not in ("source", "low-snr")]
    assert default_variants(snr_db=(0.0, 30.0)) == [v for v in VARIANTS if v != "source"]
    assert "source" in default_variants(source_swap=0.5)
    assert default_variants(base_without=["waveform"]) == \
        ["all", "speed", "pitch", "shift", "stretch", "dropout"]
    assert default_variants(base_without=["speed", "warp"]) == \
        [v for v in today if v not in ("speed", "warp")]


def test_missing_base_files_are_named(tmp_path):
    from bench.audio_ablation import main
    (tmp_path / "base").mkdir()
    with pytest.raises(SystemExit, match=r"base: no train.h5"):
        main(["--base", str(tmp_path / "base"), "--corpus-seed", "0"])


def test_spike_augment_parts_switch_off_alone():
    """Each part off leaves the others' draws unchanged; all off is the identity."""
    from model.audio.shd import spike_augment, spike_augment_options
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, (6, 30, 20))
    assert np.array_equal(spike_augment(x, np.random.default_rng(2), **spike_augment_options(
        ("shift", "stretch", "dropout"))), x)
    full = spike_augment(x, np.random.default_rng(2))
    no_drop = spike_augment(x, np.random.default_rng(2), **spike_augment_options(["dropout"]))
    assert not np.array_equal(full, no_drop) and no_drop.sum() >= full.sum()
    # without dropout, only counts that leave the window are lost
    assert no_drop.sum() <= x.sum()
    with pytest.raises(ValueError, match=r"spike augmentations \['pitch'\]: the parts are"):
        spike_augment_options(["pitch"])


def test_spike_aug_off_needs_spike_aug():
    from model.audio.train import AudioConfig, train_audio
    with pytest.raises(ValueError, match="it needs spike_aug=True"):
        train_audio(AudioConfig(spike_aug_off=("shift",), progress=False))


def test_synthesize_refuses_unknown_splits(tmp_path):
    from model.audio.corpus import synthesize
    with pytest.raises(ValueError, match=r"splits must name 'train' and/or 'test', got \['valid'\]"):
        synthesize(tmp_path, splits=("valid",))


def test_the_base_recipe_decides_what_a_variant_changes(tmp_path, capsys):
    """`--snr-db` gives the base's noise range: `low-snr` changes the first corpora's recipe
    (0-30 dB) and is refused on today's (10-30 dB), before any work."""
    from bench.audio_ablation import main, variant_ranges
    assert variant_ranges("low-snr", snr_db=(0.0, 30.0)).snr_db == (10.0, 30.0)
    assert variant_ranges("all", snr_db=(0.0, 30.0)).snr_db == (0.0, 30.0)
    assert variant_ranges("babble", snr_db=(0.0, 30.0)).snr_db == (0.0, 30.0)
    base = tmp_path / "base"
    base.mkdir()
    for name in ("train.h5", "test.h5"):
        (base / name).write_bytes(b"")
    with pytest.raises(SystemExit) as e:
        main(["--base", str(base), "--corpus-seed", "0", "--variants", "low-snr",
              "--work", str(tmp_path / "w")])
    assert e.value.code == 2
    assert "variant 'low-snr' changes nothing on a base drawn with noise at 10-30 dB" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--base", str(base), "--corpus-seed", "0", "--variants", "low-snr",
              "--snr-db", "30", "0", "--work", str(tmp_path / "w")])
    assert "--snr-db 30 0: the low end is above the high end" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_a_base_drawn_without_some_augmentations_is_the_reference(tmp_path, capsys):
    """`--base-without` names what the base corpus was drawn without: each variant's corpus
    has that off too (a prosody variant on a waveform-free base: both off), a variant it
    already has off is refused before any work, and a variant corpus found in the work
    directory but drawn from other ranges is refused rather than trained on."""
    from bench.audio_ablation import WAVEFORM, main, synthesise, variant_ranges
    from model.audio import augment
    from model.audio.shd import write_shd
    no_wave = variant_ranges("all", base_without=["waveform"])
    assert no_wave == variant_ranges("waveform")
    speed = variant_ranges("speed", base_without=["waveform"])
    assert speed == augment.recipe(off=(*WAVEFORM, "speed"))
    assert speed.rate is None and speed.pitch == augment.Ranges().pitch and speed.warp is None
    assert variant_ranges("pitch").pitch is None and variant_ranges("pitch").warp is not None
    base = tmp_path / "base"
    _fake_corpus(base)
    with pytest.raises(SystemExit) as e:
        main(["--base", str(base), "--corpus-seed", "0", "--base-without", "waveform",
              "--variants", "warp", "--work", str(tmp_path / "w")])
    assert e.value.code == 2
    assert "variant 'warp' changes nothing on a base drawn without waveform, with noise" in \
        capsys.readouterr().err
    assert not (tmp_path / "w").exists()
    # a corpus of the `speed` variant of the all-on recipe, found where the waveform-free
    # base's `speed` variant would be made
    data = tmp_path / "w" / "without-speed"
    data.mkdir(parents=True)
    write_shd(data / "train.h5", [np.array([0.01])], [np.array([3])], [0], [0], ["zero"],
              recipe={"ranges": augment.ranges_dict(variant_ranges("speed"))})
    with pytest.raises(SystemExit, match=r"without-speed/train.h5: drawn from other ranges "
                                         r"than this variant's \(warp 0.85..1.15 \(now off\);"):
        synthesise("speed", data, base, seed=0, jobs=1, base_without=["waveform"])
    synthesise("speed", data, base, seed=0, jobs=1)      # the same ranges: nothing to do
    assert (data / "test.h5").resolve() == (base / "test.h5").resolve()
