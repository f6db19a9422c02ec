"""``bench.audio_train``: runs trained in parallel processes give the same rows as one after
the other in one process (a seed fixes everything, the validation split included), and
recorded runs are not trained again; ``bench.audio_speed`` measures what it says."""

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from bench.audio_train import main  # noqa: E402

TINY = ["--archs", "dense", "conv", "--seeds", "0", "1", "--hidden", "12", "--kernel", "3",
        "--epochs", "1", "--qat-epochs", "1", "--limit", "96", "--batch", "32"]
KEYS = ("float_acc", "int_acc", "val_acc", "params", "digest")


def _rows(path):
    runs = json.loads(path.read_text())["runs"]
    return {(r["settings"]["arch"], r["settings"]["seed"]): r for r in runs}


def test_jobs_2_equals_jobs_1_and_skips_recorded_runs(tmp_path, capsys):
    main(TINY + ["--out", str(tmp_path / "a"), "--json", str(tmp_path / "a.json")])
    main(TINY + ["--jobs", "2", "--out", str(tmp_path / "b"), "--json",
                 str(tmp_path / "b.json")])
    one, two = _rows(tmp_path / "a.json"), _rows(tmp_path / "b.json")
    assert sorted(one) == sorted(two) == [("conv", 0), ("conv", 1), ("dense", 0), ("dense", 1)]
    for run in one:
        assert one[run]["settings"] == two[run]["settings"]
        assert one[run]["settings"]["limit"] == 96
        for k in KEYS:
            assert one[run][k] == two[run][k], (run, k)
    capsys.readouterr()
    main(TINY + ["--jobs", "2", "--out", str(tmp_path / "b"), "--json",
                 str(tmp_path / "b.json")])
    out = capsys.readouterr().out
    assert out.count("already in") == 4
    assert len(json.loads((tmp_path / "b.json").read_text())["runs"]) == 4


def test_jobs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        main(["--jobs", "0"])
    assert "--jobs must be >= 1" in capsys.readouterr().err


def test_audio_speed_on_the_committed_networks(tmp_path, capsys):
    """``bench.audio_speed`` on the committed DelRec / ConvDelRec (2 samples): every measure is
    there, counts match the networks, and the ratios are the rows' quotients."""
    from bench.audio_speed import main as speed
    from model.ir import load

    root = Path(__file__).resolve().parent.parent / "bench/networks"
    res = speed(["--dense", str(root / "delrec.npz"), "--conv", str(root / "convdelrec_k31.npz"),
                 "--samples", "2", "--repeats", "1", "--lanes", "1", "4",
                 "--json", str(tmp_path / "s.json")])
    assert json.loads((tmp_path / "s.json").read_text()) == res
    conv = load(root / "convdelrec_k31.npz")
    k = [p for p in conv.projections if p.src == p.dst][0]
    assert res["integer"]["conv"]["recurrent_weight_bits"] == k.weight.size * k.w_bits
    assert res["integer"]["dense"]["recurrent_weight_bits"] == 256 * 256 * 8
    for arch in ("dense", "conv"):
        assert set(res["torch"][arch]) == {"batch1", "batch32", "train64"}
        assert all(v > 0 for v in res["torch"][arch].values())
        i = res["integer"][arch]
        assert 0 < i["recurrent_reads"] < i["weight_reads"]
        assert i["cycles"]["1"] > i["cycles"]["4"] > 0
    r = res["dense_over_conv"]
    assert r["torch training step"] == pytest.approx(
        res["torch"]["dense"]["train64"] / res["torch"]["conv"]["train64"])
    assert r["hardware cycles, 4 lanes"] == pytest.approx(
        res["integer"]["dense"]["cycles"]["4"] / res["integer"]["conv"]["cycles"]["4"])
    assert "| torch training step, batch 2 (ms/sample) |" in capsys.readouterr().out
