"""The audio path end to end on a tiny configuration: embedded data -> train -> quantise ->
integer reference -> generated Verilog under Verilator, whole test samples, bit-exact."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model import ir  # noqa: E402
from model.audio.train import AudioConfig, load_audio, train_audio  # noqa: E402
from model.int_forward import integer_forward  # noqa: E402
from rtl.export import generate  # noqa: E402
from sim.cosim import Stimulus, run_cosim_batch  # noqa: E402
from sim.reference import simulate  # noqa: E402

TINY = dict(data="synthetic", hidden=12, kernel=3, dmax=6, epochs=2, batch=32, limit=160,
            progress=False, seed=0, threads=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Both architectures trained for two epochs on 160 samples of the embedded set, and the
    ConvDelRec authors' layout (4 hidden layers, 3 of them recurrent) as "conv4"."""
    cfgs = {arch: AudioConfig(arch=arch, **TINY) for arch in ("dense", "conv")}
    cfgs["conv4"] = AudioConfig(arch="conv", layers=4, **TINY)
    data = load_audio(cfgs["dense"])
    out = {}
    for arch, cfg in cfgs.items():
        res = train_audio(cfg, data)
        path = tmp_path_factory.mktemp(arch) / "net.npz"
        ir.save(res.net, path)
        out[arch] = (res, ir.load(path))
    return data, out


def test_tiny_training_writes_valid_networks(trained):
    data, out = trained
    dense, conv = out["dense"][1], out["conv"][1]
    rec = {k: [p for p in n.projections if p.src == p.dst] for k, n in
           (("dense", dense), ("conv", conv), ("conv4", out["conv4"][1]))}
    assert [p.kind for p in rec["dense"]] == ["dense"]
    assert [p.kind for p in rec["conv"]] == ["conv"]
    assert [(p.kind, p.src) for p in rec["conv4"]] == [("conv", 2), ("conv", 3), ("conv", 4)]
    assert out["conv4"][0].params["recurrent"] == 3 * (3 + 12)
    assert rec["conv"][0].weight.shape == (3,)
    assert dense.input.n == conv.input.n == data.n_in
    assert dense.layers[-1].threshold is None and dense.layers[-1].n == data.n_classes
    for res, net in out.values():
        assert 0.0 <= res.int_acc <= 1.0 and 0.0 <= res.float_acc <= 1.0
        d = [p for p in net.projections if p.src == p.dst][0].delay
        assert d.min() >= 1 and d.max() <= net.max_delay <= 6


@pytest.mark.parametrize("arch", ["dense", "conv", "conv4"])
def test_integer_forward_equals_reference_on_test_samples(trained, arch):
    data, out = trained
    net = out[arch][1]
    x = data.x_test[:4].to(torch.int64)
    batch = integer_forward(net, x)
    for b in range(len(x)):
        ref = simulate(net, x[b].numpy())
        assert ref.prediction == int(batch.prediction[b])
        for l, s in ref.spikes.items():
            np.testing.assert_array_equal(batch.spikes[l][b].numpy(), s)
        for l, v in ref.v.items():
            np.testing.assert_array_equal(batch.v[l][b].numpy(), v)
    assert any(ref.spikes[l].any() for l in ref.spikes), "silent network tests little"


@pytest.mark.slow
def test_cli_cosim_of_whole_test_samples(trained, tmp_path, capsys):
    """The user's route: export test frames, co-simulate them with `polychrony cosim`."""
    from polychrony_cli import main
    data, out = trained
    path = tmp_path / "conv.npz"
    ir.save(out["conv"][1], path)
    x = tmp_path / "x.npy"
    assert main(["data", "frames", "default-test", "-o", str(x), "--count", "2",
                 "--window", str(data.steps)]) == 0
    np.testing.assert_array_equal(np.load(x), data.x_test[:2].numpy())
    assert main(["cosim", str(path), "--inputs", str(x), "--sim", "verilator", "--lanes", "3",
                 "--idle", "0", "--stall", "0", "--work", str(tmp_path / "w")]) == 0
    text = capsys.readouterr().out
    assert text.count("steps bit-exact") == 2 and "all 2 samples bit-exact" in text


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 5, 3), np.int64), "shape"),
    (np.zeros((2, 5, 140), np.float32), "integer array"),
    (np.full((1, 5, 140), 99, np.int64), "must lie in"),
])
def test_cli_cosim_inputs_are_checked(trained, tmp_path, capsys, bad, message):
    from polychrony_cli import main
    _, out = trained
    path = tmp_path / "net.npz"
    ir.save(out["dense"][1], path)
    np.save(tmp_path / "x.npy", bad)
    assert main(["cosim", str(path), "--inputs", str(tmp_path / "x.npy")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["dense", "conv4"])
def test_rtl_bit_exact_on_whole_test_samples(trained, tmp_path, arch):
    data, out = trained
    net = out[arch][1]
    stimuli = []
    for b in range(2):
        x = data.x_test[b].numpy().astype(np.int64)
        stimuli.append(Stimulus(simulate(net, x), x, None))
    generate(net, tmp_path / "v", lanes=4)
    res = run_cosim_batch(tmp_path / "v", stimuli, simulator="verilator",
                          work_dir=tmp_path / "w", idle=0, stall=0)
    for r, st in zip(res.results, stimuli):
        assert r.steps == data.steps
        assert r.mismatches == 0, r.describe()
        assert r.ok
