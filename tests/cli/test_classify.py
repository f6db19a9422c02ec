"""From WAV files to predictions: ``data encode`` and ``classify`` on one spoken digit of each
engine (tests/data/digits: espeak-ng at 22.05 kHz, Festival and Flite at 16 kHz), through the
reference and the simulated board (Verilator), which must agree file for file."""

import json
import wave

import numpy as np
import pytest

from model.audio.shd import DataError, load
from model.audio.synth import KEYS
from model.audio.wav import encode_file, frames, label_of, read_audio, read_labels
from model.ir import load as load_net
from polychrony_cli import main
from sim.reference import simulate
from tests import ROOT

DIGITS = sorted((ROOT / "tests/data/digits").glob("*.wav"))
NET = ROOT / "bench/networks/convdelrec_k31_w4.npz"


def test_labels_come_from_names_or_a_csv(tmp_path):
    keys = list(KEYS)
    assert [label_of(p, keys) for p in DIGITS] == [7, 3, 9]
    assert label_of("take_b_7_2.wav", keys) == 7 and label_of("x_sieben.wav", keys) == 17
    assert label_of("recording.wav", keys) is None
    csv = tmp_path / "l.csv"
    csv.write_text("file,label\na.wav,seven\nsub/b.wav,12\n")
    assert read_labels(csv, keys) == {"a.wav": 7, "b.wav": 12}
    csv.write_text("a.wav,eleven\n")
    with pytest.raises(DataError, match="row 1: label 'eleven' is not one of"):
        read_labels(csv, keys)


def test_reader_takes_rates_widths_and_channels_and_refuses_the_rest(tmp_path):
    x = read_audio(DIGITS[0])                      # 22.05 kHz, resampled
    with wave.open(str(DIGITS[0])) as w:
        assert x.size == pytest.approx(w.getnframes() * 16000 / 22050, abs=2)
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.repeat(np.round(x * 20000).astype("<i2"), 2).tobytes())
    np.testing.assert_allclose(read_audio(stereo), np.round(x * 20000) / 32768, atol=1e-12)
    (tmp_path / "a.mp3").write_bytes(b"ID3\x03" + bytes(100))
    with pytest.raises(DataError, match="a.mp3: not a WAV file"):
        read_audio(tmp_path / "a.mp3")
    silent = tmp_path / "silent.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(3200))
    with pytest.raises(DataError, match="silent.wav: the sound is silent"):
        encode_file(silent)


def test_encode_writes_spikes_and_frames_that_classify_uses(tmp_path, capsys):
    h5, npy = tmp_path / "d.h5", tmp_path / "d.npy"
    assert main(["data", "encode", *map(str, DIGITS), "-o", str(h5)]) == 0
    s = load(h5)
    assert s.labels.tolist() == [7, 3, 9] and all(len(t) > 200 for t in s.times)
    assert main(["data", "encode", *map(str, DIGITS), "-o", str(npy), "--window", "136",
                 "--in-bits", "4"]) == 0
    x = np.load(npy)
    assert x.shape == (3, 136, 140) and x.max() <= 15
    assert np.load(tmp_path / "d.labels.npy").tolist() == [7, 3, 9]
    same, _, _ = frames([encode_file(p) for p in DIGITS], steps=136, in_bits=4)
    np.testing.assert_array_equal(x, same)
    capsys.readouterr()
    assert main(["data", "encode", str(DIGITS[0]), str(tmp_path / "gone_one.wav"), "-o",
                 str(h5)]) == 2
    assert "gone_one.wav: cannot read" in capsys.readouterr().err
    unnamed = tmp_path / "recording.wav"
    unnamed.write_bytes(DIGITS[0].read_bytes())
    assert main(["data", "encode", str(unnamed), "-o", str(h5)]) == 2
    assert "names no digit: give --labels CSV" in capsys.readouterr().err


def test_classify_on_the_reference_and_the_simulated_board_agree(tmp_path, capsys):
    net = load_net(NET)
    assert main(["classify", *map(str, DIGITS), "--net", str(NET), "--json"]) == 0
    ref = json.loads(capsys.readouterr().out)
    x, _, _ = frames([encode_file(p) for p in DIGITS], steps=136, in_bits=4)
    want = [simulate(net, xs, steps=136).prediction for xs in x]
    assert [r["prediction"] for r in ref["files"]] == want
    assert [r["label"] for r in ref["files"]] == [7, 3, 9] and ref["on"] == "reference"
    assert ref["accuracy"] == pytest.approx(np.mean([w == lb for w, lb in zip(want, [7, 3, 9])]))
    assert main(["classify", *map(str, DIGITS), "--net", str(NET), "--json", "--simulate",
                 "--lanes", "4", "--work", str(tmp_path / "sb")]) == 0
    sim = json.loads(capsys.readouterr().out)
    assert [r["prediction"] for r in sim["files"]] == want and sim["on"] == "simulated board"


def test_classify_and_encode_use_the_cochlea_the_network_was_trained_behind(tmp_path, capsys,
                                                                            monkeypatch):
    """A network whose meta says it was trained on level-normalised spikes gets its files
    encoded by that cochlea; ``data encode --level-norm`` makes the same spikes and records
    them in its .h5."""
    import dataclasses

    import model.audio.wav as wav
    from model.audio.cochlea import CochleaParams
    from model.ir import save
    p = CochleaParams(level_norm=1.0, norm_width=8.0)
    net = load_net(NET)
    normed = save(dataclasses.replace(net, meta={**net.meta, "cochlea": p.to_dict()}),
                  tmp_path / "normed.npz")
    real, calls = wav.encode_file, []

    def spy(path, **kw):
        calls.append((kw.get("params"), real(path, **kw)))
        return calls[-1][1]
    monkeypatch.setattr(wav, "encode_file", spy)
    assert main(["classify", *map(str, DIGITS), "--net", str(normed), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [c[0] for c in calls] == [p] * 3
    want = [real(d, params=p) for d in DIGITS]
    plain = [real(d) for d in DIGITS]
    for (_, (t, u)), (tw, uw), (tp, up) in zip(calls, want, plain):
        np.testing.assert_array_equal(t, tw)
        np.testing.assert_array_equal(u, uw)
        assert t.size != tp.size or not np.array_equal(u, up)    # the option changes them
    x, _, _ = frames(want, steps=136, in_bits=4)
    assert [r["prediction"] for r in got["files"]] == \
        [simulate(net, xs, steps=136).prediction for xs in x]
    monkeypatch.undo()
    h5, npy = tmp_path / "n.h5", tmp_path / "n.npy"
    opts = ["--level-norm", "1", "--norm-width", "8"]
    assert main(["data", "encode", *map(str, DIGITS), "-o", str(h5), *opts]) == 0
    s = load(h5)
    assert s.cochlea == p
    for t, (tw, _) in zip(s.times, want):
        np.testing.assert_array_equal(t, tw.astype(np.float16).astype(np.float32))
    assert main(["data", "encode", *map(str, DIGITS), "-o", str(npy), "--window", "136",
                 "--in-bits", "4", *opts]) == 0
    np.testing.assert_array_equal(np.load(npy), x)
    capsys.readouterr()
    assert main(["data", "encode", str(DIGITS[0]), "-o", str(npy), "--norm-width", "8"]) == 2
    assert "--norm-width 8 smooths the level normalisation: it needs --level-norm above 0" \
        in capsys.readouterr().err
    for flag, value, words in (("--level-norm", "1.5", "must be at most 1.0, got 1.5"),
                               ("--level-norm", "nan", "expected a finite number"),
                               ("--norm-width", "-1", "must be at least 0.0, got -1")):
        with pytest.raises(SystemExit) as e:
            main(["data", "encode", str(DIGITS[0]), "-o", str(npy), flag, value])
        assert e.value.code == 2 and f"argument {flag}: {words}" in capsys.readouterr().err


def test_classify_refuses_a_network_whose_cochlea_entry_is_malformed(tmp_path, capsys):
    import dataclasses

    from model.ir import save
    net = load_net(NET)
    bad = save(dataclasses.replace(net, meta={**net.meta, "cochlea": {"level_norm": 3}}),
               tmp_path / "bad.npz")
    assert main(["classify", str(DIGITS[0]), "--net", str(bad)]) == 2
    assert f"network {net.name!r}: meta 'cochlea': CochleaParams: level_norm must be a finite " \
        f"number between 0 and 1, got 3" in capsys.readouterr().err


def test_classify_refuses_a_network_that_is_not_an_audio_one(tmp_path, capsys):
    from model.ir import save
    from tests.nets import tiny_net
    other = save(tiny_net(), tmp_path / "tiny.npz")
    assert main(["classify", str(DIGITS[0]), "--net", str(other)]) == 2
    assert "an audio network takes 140" in capsys.readouterr().err
