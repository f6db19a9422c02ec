"""`polychrony run` against the simulated board."""

import json
import subprocess
import sys

import numpy as np
import pytest

from model.ir import save
from sim.reference import simulate


def _cli(*args, timeout=1200):
    return subprocess.run([sys.executable, "-m", "polychrony_cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------------------------
# `polychrony run` against the simulated board.

@pytest.fixture(scope="module")
def wm_ir(tmp_path_factory, wm8):
    d = tmp_path_factory.mktemp("run")
    path = save(wm8, d / "net.npz")
    rng = np.random.default_rng(0)
    cue = (rng.random((2, 30, 8)) < 0.3).astype(np.uint8)
    cue[:, 6:] = 0
    np.save(d / "cue.npy", cue)
    return d, path, cue


def test_run_simulated_board_matches_reference(wm_ir, wm8):
    d, path, cue = wm_ir
    out = _cli("run", path, "--simulate", "--forced", d / "cue.npy", "--check", "--membranes",
               "--json", "--work", d / "sim")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)["samples"]
    assert len(rows) == 2 and all(r["match"] for r in rows)
    for r, f in zip(rows, cue):
        ref = simulate(wm8, None, {1: f}, steps=30)
        assert r["spikes"] == {"1": int(ref.spikes[1].sum())} and r["steps"] == 30


@pytest.mark.parametrize("args, message", [
    ([], "exactly one of --port"),
    (["--simulate", "--port", "/dev/null"], "exactly one of --port"),
    (["--simulate"], "no workload beside it: give --forced"),
    (["--simulate", "--forced", "{cue}", "--prediction-only"], "needs a network whose last"),
])
def test_run_argument_errors(wm_ir, args, message):
    d, path, _ = wm_ir
    out = _cli("run", path, *[a.format(cue=d / "cue.npy") for a in args])
    assert out.returncode == 2 and message in out.stderr


def test_run_rejects_bad_forced_file(wm_ir, tmp_path):
    _, path, _ = wm_ir
    np.save(tmp_path / "bad.npy", np.zeros((2, 30, 5), np.uint8))
    out = _cli("run", path, "--simulate", "--forced", tmp_path / "bad.npy")
    assert out.returncode == 2 and "bad.npy" in out.stderr and "n=8" in out.stderr
    np.save(tmp_path / "two.npy", np.full((30, 8), 2, np.uint8))
    out = _cli("run", path, "--simulate", "--forced", tmp_path / "two.npy")
    assert out.returncode == 2 and "0 or 1" in out.stderr


def test_run_missing_port_is_a_clear_error(wm_ir):
    d, path, _ = wm_ir
    out = _cli("run", path, "--port", "/dev/polychrony-no-such-port", "--forced", d / "cue.npy")
    assert out.returncode == 2 and "cannot open serial port" in out.stderr


def test_run_replays_and_scores_the_workload_beside_the_ir(wm8, tmp_path):
    """With no stimulus flags, ``run`` replays the workload saved beside the IR and prints its
    score on the board beside the reference's (recall F1 here); ``--count`` takes the first
    samples."""
    from model.ir import Workload, save_workload, workload_path
    from model.ir.workload import score_recall
    path = save(wm8, tmp_path / "wm8.npz")
    rng = np.random.default_rng(3)
    d, pre, t = wm8.max_delay, 4, 20
    targets = rng.random((3, 8, t)) < 0.3
    forced = np.zeros((3, pre + t, 8), bool)
    forced[:, :pre] = rng.random((3, pre, 8)) < 0.3
    forced[:, pre:pre + d] = targets[:, :, :d].transpose(0, 2, 1)
    save_workload(Workload("recall", wm8.digest, forced={1: forced}, targets=targets, layer=1,
                           d=d, pre=pre), workload_path(path))
    out = _cli("run", path, "--simulate", "--count", "2", "--json", "--work", tmp_path / "sim")
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    refs = [simulate(wm8, None, {1: f}, steps=pre + t) for f in forced[:2]]
    want, _ = score_recall(targets[:2], np.stack([r.spikes[1] for r in refs]), d, pre=pre)
    assert res["score"] == {"workload": "recall", "metric": "F1", "board": want,
                            "reference": want, "samples": 2}
    assert [r["spikes"]["1"] for r in res["samples"]] == [int(r.spikes[1].sum()) for r in refs]
    text = _cli("run", path, "--simulate", "--count", "1", "--work", tmp_path / "sim")
    assert text.returncode == 0, text.stderr[-2000:]
    assert "over 1 samples of the workload, equal to the reference's" in text.stdout


def test_run_scores_a_classify_workload_by_accuracy(random_net, tmp_path):
    """An audio-shaped network with labelled samples beside it: ``run --simulate`` alone
    replays them and prints the accuracy on the board beside the reference's."""
    from model.ir import Workload, save_workload, workload_path
    net = random_net(1, profile="stack")
    path = save(net, tmp_path / "audio.npz")
    rng = np.random.default_rng(5)
    x = rng.integers(0, 1 << net.input.in_bits, (3, 12, net.input.n))
    refs = [simulate(net, xs) for xs in x]
    labels = np.array([refs[0].prediction, refs[1].prediction, refs[2].prediction + 1])
    save_workload(Workload("classify", net.digest, x=x, labels=labels), workload_path(path))
    out = _cli("run", path, "--simulate", "--json", "--work", tmp_path / "sim")
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    assert res["score"] == {"workload": "classify", "metric": "accuracy", "board": 2 / 3,
                            "reference": 2 / 3, "samples": 3}
    assert [r["prediction"] for r in res["samples"]] == [r.prediction for r in refs]
