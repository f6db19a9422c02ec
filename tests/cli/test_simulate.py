"""`polychrony simulate` (the reference alone) and `polychrony --version`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.ir import find_workload, load
from polychrony_cli import main
from sim.reference import simulate
from tests import ROOT

DELREC = ROOT / "bench/networks/delrec.npz"


def test_simulate_replays_the_workload_and_scores_it(tmp_path, capsys):
    assert main(["simulate", str(DELREC), "--count", "3", "--json", "-o",
                 str(tmp_path / "t.npz")]) == 0
    out = json.loads(capsys.readouterr().out)
    net = load(DELREC)
    wl = find_workload(DELREC, net).head(3)
    traces = [simulate(net, *wl.sample(i), steps=wl.steps) for i in range(3)]
    assert out["score"] == wl.score(traces) and out["score"]["metric"] == "accuracy"
    assert [r["prediction"] for r in out["samples"]] == [t.prediction for t in traces]
    with np.load(tmp_path / "t.npz", allow_pickle=False) as z:
        for k, tr in enumerate(traces):
            for l in tr.spikes:
                assert np.array_equal(z[f"s{k}.spikes.{l}"], tr.spikes[l])
            for l in tr.v:
                assert np.array_equal(z[f"s{k}.v.{l}"], tr.v[l])
        assert list(z["prediction"]) == [t.prediction for t in traces]


def test_simulate_working_memory_prints_its_f1(tmp_path, capsys):
    wm = tmp_path / "wm.npz"
    assert main(["train", "wm", "-o", str(wm), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert main(["simulate", str(wm)]) == 0
    text = capsys.readouterr().out
    assert f"F1 {trained['f1_int']:.4f} over 2 samples" in text


def test_simulate_refusals(capsys):
    assert main(["simulate", str(DELREC), "--random", "--inputs", "x.npy"]) == 2
    assert "--random makes its own stimulus" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("polychrony ")


def test_check_shows_metadata_and_keeps_types(capsys):
    assert main(["check", str(DELREC)]) == 0
    text = capsys.readouterr().out
    assert "trained" in text and "integer accuracy 90.25%" in text and "meta.params" in text
    assert main(["check", str(DELREC), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True and out["max_delay"] == 31
    assert out["layers"][1]["n"] == 256 and out["layers"][3]["threshold"] is None
    assert out["projections"][2]["weight_shape"] == [256, 256]
    assert out["meta"]["int_test_acc"] == 0.9025 and out["workload"]["kind"] == "classify"
