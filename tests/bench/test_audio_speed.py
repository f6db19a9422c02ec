"""``bench.audio_speed`` measures what it says."""

import json

import pytest

from tests import ROOT

pytest.importorskip("torch")


def test_audio_speed_on_the_committed_networks(tmp_path, capsys):
    """``bench.audio_speed`` on the committed DelRec / ConvDelRec (2 samples): every measure is
    there, counts match the networks, and the ratios are the rows' quotients."""
    from bench.audio_speed import main as speed
    from model.ir import load

    root = ROOT / "bench/networks"
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
