"""Training of DelRec / ConvDelRec (model/audio/train.py): loss, export, weight averaging, its own
recurrent learning rate, distillation, data-parallel runs, SHD files and their windows."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from model import ir
from model.audio.train import AudioConfig, evaluate, integer_accuracy, load_audio, train_audio
from model.audio.delrec import DelRecNet
from model.int_forward import integer_forward
from tests import ROOT


# ---------------------------------------------------------------------------- training

def _train_cfg(arch, tmp_path, **kw):
    base = dict(arch=arch, data="random", hidden=24, dmax=8, epochs=4, qat_epochs=1,
                batch=32, limit=160, steps=24, progress=False, seed=0, val_fraction=0.25,
                lr=2e-2)
    base.update(kw)
    return AudioConfig(**base)


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_training_decreases_loss_and_exports(arch, tmp_path):
    cfg = _train_cfg(arch, tmp_path, checkpoint=str(tmp_path / "ck.pt"))
    res = train_audio(cfg)
    fl = [h["train_loss"] for h in res.history if h["phase"] == "float"]
    assert fl[-1] < fl[0] - 0.1
    assert [(h["phase"], h["epoch"]) for h in res.history] == \
        [("float", e) for e in range(4)] + [("quant", -1), ("quant", 0)]
    sig = [h["sigma"] for h in res.history if h["phase"] == "float"]
    assert sig[0] == 10.0 and all(a > b for a, b in zip(sig, sig[1:]))
    assert res.net is not None and 0 <= res.int_acc <= 1 and 0 <= res.float_acc <= 1
    assert res.net.meta["float_test_acc"] == res.float_acc
    assert res.net.meta["int_test_acc"] == res.int_acc
    # the kept weights in quant mode are exactly the integer network
    data = load_audio(cfg)
    acc_q, _ = evaluate(res.model, data.x_test, data.y_test, mode="quant")
    assert acc_q == integer_accuracy(res.net, data.x_test, data.y_test) == res.int_acc
    best_q = max(h["val_acc"] for h in res.history if h["phase"] == "quant")
    assert evaluate(res.model, data.x_val, data.y_val, mode="quant")[0] == best_q == res.val_acc
    # our checkpoints load with weights_only=True; a finished run resumes to the same weights
    ck = torch.load(cfg.checkpoint, weights_only=True)
    assert ck["phase"] == "quant" and ck["epoch"] == 0
    again = train_audio(cfg)
    assert again.net == res.net
    # a checkpoint written before a setting existed holds its default: it still resumes
    old = json.loads(ck["config"])
    del old["layers"], old["lr_rec"]
    ck["config"] = json.dumps(old)
    torch.save(ck, cfg.checkpoint)
    assert train_audio(cfg).net == res.net
    with pytest.raises(ValueError, match=r"other settings \(\['layers'\]\)"):
        train_audio(dataclasses.replace(cfg, layers=3))
    if arch == "dense":    # the conv kernel size is no setting of a dense network
        other = train_audio(dataclasses.replace(cfg, kernel=cfg.kernel + 2)).net
        assert dataclasses.replace(other, meta={}) == dataclasses.replace(res.net, meta={})


def test_weight_averaging_is_a_candidate_with_its_own_batchnorm_statistics(tmp_path):
    from model.audio.train import state_copy, try_average
    cfg = _train_cfg("conv", tmp_path)
    data = load_audio(cfg)
    torch.manual_seed(0)
    model = DelRecNet(cfg.model_config(data.n_in, data.n_classes))
    a = state_copy(model)
    b = {k: v + 0.1 if v.is_floating_point() else v for k, v in a.items()}
    avg = {k: (a[k] + b[k]) / 2 if v.is_floating_point() else v for k, v in a.items()}
    hist = []
    state, acc = try_average(model, data, avg, a, -1.0, 4, hist)
    for k in ("fc1.weight", "fc2.weight", "w_rec", "delay", "fc3.bias", "bn1.weight"):
        assert torch.equal(state[k], avg[k]), k
    # BatchNorm statistics are the averaged weights' own, over the training data (one batch)
    with torch.no_grad():
        i1 = model.fc1(data.x_train.float()).reshape(-1, cfg.hidden)
    assert torch.allclose(state["bn1.running_mean"], i1.mean(0), atol=1e-5)
    assert not torch.allclose(state["bn1.running_mean"], avg["bn1.running_mean"])
    assert acc == evaluate(model, data.x_val, data.y_val)[0]
    assert hist[-1]["swa"] is True and hist[-1]["epoch"] == 4 and hist[-1]["val_acc"] == acc
    # a better single epoch stays the best
    kept, kept_acc = try_average(model, data, avg, a, 2.0, 4, hist)
    assert kept is a and kept_acc == 2.0

    # in a run: one more float candidate after the epochs, and a resumed run ends the same
    cfg = _train_cfg("dense", tmp_path, swa=2, checkpoint=str(tmp_path / "swa.pt"))
    res = train_audio(cfg)
    assert [(h["phase"], h["epoch"], h.get("swa", False)) for h in res.history] == \
        [("float", e, False) for e in range(4)] + [("float", 4, True), ("quant", -1, False),
                                                    ("quant", 0, False)]
    assert train_audio(cfg).net == res.net
    with pytest.raises(ValueError, match="swa=5.*epochs=4"):
        train_audio(_train_cfg("dense", tmp_path, swa=5))


def test_recurrent_learning_rate_of_its_own(tmp_path):
    """``lr_rec`` puts the recurrent weights in an optimiser group of their own: at the other
    weights' rate the run is the same one; at a tiny rate the kernel hardly moves while the
    feed-forward weights train as before."""
    from model.audio.train import weight_groups
    base = train_audio(_train_cfg("conv", tmp_path, epochs=2, qat_epochs=0))
    same = train_audio(_train_cfg("conv", tmp_path, epochs=2, qat_epochs=0, lr_rec=2e-2))
    assert same.net == base.net
    cfg = _train_cfg("conv", tmp_path, epochs=2, qat_epochs=0, lr_rec=1e-9)
    data = load_audio(cfg)
    torch.manual_seed(cfg.seed)                      # as train_audio: the same initial weights
    init = DelRecNet(cfg.model_config(data.n_in, data.n_classes))
    slow = train_audio(cfg)

    def moved(res, name):
        after, before = dict(res.model.named_parameters()), dict(init.named_parameters())
        return float((after[name] - before[name]).detach().abs().max())
    assert moved(slow, "w_rec") < 1e-6 and moved(base, "w_rec") > 1e-3
    assert moved(slow, "fc1.weight") > 1e-3 and moved(slow, "fc2.weight") > 1e-3
    groups, peaks = weight_groups(cfg, slow.model)
    assert peaks == [2e-2, 1e-9] and groups[1]["params"][0] is slow.model.w_rec
    assert sum(len(g["params"]) for g in groups) == len(slow.model.weight_parameters())
    with pytest.raises(ValueError, match="lr_rec=0"):
        train_audio(_train_cfg("conv", tmp_path, lr_rec=0))


def test_distillation_from_a_trained_network(tmp_path):
    """A DelRec's IR file teaches a ConvDelRec: its soft targets are its integer read-out (the
    argmax is its own prediction); weight 0 on them is exactly training without a teacher;
    a teacher that does not fit the data, or augmented copies, are refused by name."""
    from model.audio.train import teacher_logits
    teacher = train_audio(_train_cfg("dense", tmp_path))
    ir.save(teacher.net, tmp_path / "teacher.npz")
    cfg = _train_cfg("conv", tmp_path, epochs=3, qat_epochs=0)
    data = load_audio(cfg)
    soft = teacher_logits(tmp_path / "teacher.npz", data)
    assert soft.shape == (len(data.y_train), data.n_classes)
    pred = integer_forward(teacher.net, data.x_train.to(torch.int64), record=False).prediction
    assert torch.equal(soft.argmax(1), pred)
    plain = train_audio(cfg, data)
    zero = train_audio(AudioConfig(**{**cfg.__dict__, "teacher": str(tmp_path / "teacher.npz"),
                                      "distill": 0.0}), data)
    assert zero.net.digest == plain.net.digest
    taught = train_audio(AudioConfig(**{**cfg.__dict__, "teacher": str(tmp_path / "teacher.npz"),
                                        "distill": 0.9}), data)
    assert taught.net.digest != plain.net.digest
    loss = [h["train_loss"] for h in taught.history]
    assert all(np.isfinite(loss))
    # Data with one class more than the teacher knows; distillation with augmented copies.
    more = dataclasses.replace(data, n_classes=data.n_classes + 1)
    with pytest.raises(ValueError, match=r"teacher .*teacher\.npz: read-out has n="):
        teacher_logits(tmp_path / "teacher.npz", more)
    with pytest.raises(ValueError, match=r"teacher .*: layer 0 has n="):
        teacher_logits(tmp_path / "teacher.npz", dataclasses.replace(
            data, x_train=data.x_train[:, :, :-1]))
    wide = dataclasses.replace(data, in_bits=teacher.net.input.in_bits + 1)
    with pytest.raises(ValueError, match=r"teacher .*: in_bits=\d+ holds counts up to"):
        teacher_logits(tmp_path / "teacher.npz", wide)
    with pytest.raises(ValueError, match=r"distill=1.5 must lie in \[0, 1\]"):
        train_audio(AudioConfig(**{**cfg.__dict__, "teacher": str(tmp_path / "teacher.npz"),
                                   "distill": 1.5}), data)
    with pytest.raises(ValueError, match="distillation needs augment=1"):
        train_audio(AudioConfig(**{**cfg.__dict__, "teacher": str(tmp_path / "teacher.npz"),
                                   "augment": 2}), data)


def test_train_shd_defaults_per_architecture():
    """``polychrony train shd``: without --kernel/--beta each architecture gets its better
    measured setting; given ones are kept, and every option reaches the config."""
    from polychrony_cli.commands.train_shd import shd_config
    from polychrony_cli import build_parser

    def cfg(*argv):
        return shd_config(build_parser().parse_args(["train", "shd", *argv]))
    assert (cfg("--arch", "conv").kernel, cfg("--arch", "conv").beta) == (31, 192)
    assert cfg().arch == "dense" and cfg().beta == 12
    c = cfg("--arch", "conv", "--kernel", "5", "--beta", "12", "--lr-rec", "1e-3", "--swa", "3")
    assert (c.kernel, c.beta, c.lr_rec, c.swa) == (5, 12, 1e-3, 3)


def test_ddp_two_processes_end_with_identical_weights(tmp_path):
    dump = tmp_path / "rank{rank}.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(29500 + os.getpid() % 400),
           "-m", "polychrony_cli", "train", "shd", "--data", "random", "--hidden", "16",
           "--dmax", "6", "--epochs", "2", "--qat-epochs", "1", "--limit", "64", "--window",
           "16", "--batch", "16", "--quiet", "--out", str(tmp_path / "ddp.npz"),
           "--dump-state", str(dump)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "float accuracy" in r.stdout and "recurrent 272" in r.stdout
    a = torch.load(str(dump).format(rank=0), weights_only=True)
    b = torch.load(str(dump).format(rank=1), weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    net = ir.load(tmp_path / "ddp.npz")
    wl = ir.load_workload(tmp_path / "ddp.workload.npz", net)     # written beside the IR
    assert wl.kind == "classify" and 1 <= wl.samples <= 16 and wl.steps == 16


def test_train_from_shd_layout_files(tmp_path):
    """The real-data path: SHD-layout files in a directory, speaker-held-out validation."""
    shd = pytest.importorskip("model.audio.shd")
    rng = np.random.default_rng(0)
    keys = [f"c{k}" for k in range(4)]
    for split, n, spk in (("train", 48, 6), ("test", 16, 2)):
        times, units = [], []
        labels = rng.integers(0, 4, n)
        for y in labels:
            k = int(rng.integers(80, 200))
            t = np.sort(rng.uniform(0, 0.08 + 0.04 * y, k))
            units.append(rng.integers(0, 700, k) // 140 * 140 + 35 * y)
            times.append(t)
        shd.write_shd(tmp_path / f"shd_{split}.h5", times, units, labels,
                      rng.integers(0, spk, n), keys)
    cfg = AudioConfig(data=str(tmp_path), hidden=12, dmax=4, epochs=2, qat_epochs=1,
                      batch=16, progress=False)
    data = load_audio(cfg)
    assert data.n_in == 140 and data.n_classes == 4 and data.x_train.shape[1] == 20
    assert len(data.y_train) + len(data.y_val) == 48 and len(data.y_test) == 16
    res = train_audio(cfg)
    assert res.net.input.in_bits == data.in_bits and res.net.layers[3].n == 4


def _shd_pair(tmp_path, train_cochlea, test_cochlea):
    from model.audio.shd import write_shd
    rng = np.random.default_rng(1)
    keys = [f"c{k}" for k in range(3)]
    for split, n, cochlea in (("train", 24, train_cochlea), ("test", 9, test_cochlea)):
        labels = np.arange(n) % 3
        times = [np.sort(rng.uniform(0, 0.1, 60)) for _ in labels]
        units = [rng.integers(0, 200, 60) + 200 * y for y in labels]
        write_shd(tmp_path / f"shd_{split}.h5", times, units, labels, np.arange(n) % 4, keys,
                  cochlea=cochlea)
    return tmp_path


def test_the_ir_records_the_cochlea_of_its_training_data(tmp_path):
    """Spikes from a non-default cochlea: the IR's meta says which (``meta["cochlea"]``, every
    field), and ``cochlea_for`` reads it back; the defaults leave no entry; train and test
    files of different cochleas are refused, naming both."""
    from model.audio.cochlea import CochleaParams
    from model.audio.train import cochlea_meta
    from model.audio.wav import cochlea_for
    p = CochleaParams(level_norm=1.0, norm_width=8.0)
    assert cochlea_meta(CochleaParams()) == {}
    assert cochlea_meta(p) == {"cochlea": p.to_dict()}
    cfg = AudioConfig(data=str(_shd_pair(tmp_path / "n", p, p)), hidden=8, dmax=4, epochs=1,
                      qat_epochs=0, batch=8, progress=False)
    assert load_audio(cfg).cochlea == p
    res = train_audio(cfg)
    assert res.net.meta["cochlea"] == p.to_dict() and cochlea_for(res.net) == p
    again = ir.load(ir.save(res.net, tmp_path / "n.npz"))
    assert cochlea_for(again) == p
    from model.audio.train import teacher_logits           # a teacher hears the same cochlea
    plain = load_audio(dataclasses.replace(cfg, data=str(_shd_pair(tmp_path / "d", None,
                                                                   None))))
    with pytest.raises(ValueError, match="n.npz: trained on spikes of another cochlea"):
        teacher_logits(tmp_path / "n.npz", plain)
    assert "cochlea" not in train_audio(dataclasses.replace(cfg, data="random", limit=32,
                                                            steps=10)).net.meta
    with pytest.raises(ValueError, match=r"network 'x': meta 'cochlea': unknown cochlea "
                                         r"field 'alpha'"):
        cochlea_for(dataclasses.replace(res.net, name="x", meta={"cochlea": {"alpha": 1}}))
    mixed = _shd_pair(tmp_path / "m", p, None)
    with pytest.raises(ValueError) as e:
        load_audio(dataclasses.replace(cfg, data=str(mixed)))
    assert str(e.value).startswith(f"{mixed / 'shd_train.h5'} and {mixed / 'shd_test.h5'} were "
                                   f"encoded by different cochleas (attribute 'cochlea': "
                                   f"level_norm 1.0 vs 0.0, norm_width 8.0 vs 0.0)")


def test_a_shorter_window_warns_how_many_samples_it_cuts():
    """--steps below the longest sample is allowed, but never silently: it counts the cuts."""
    from model.audio.train import AudioConfig, load_audio
    with pytest.warns(UserWarning, match=r"steps=40: \d+ of 50 training samples are longer"):
        data = load_audio(AudioConfig(steps=40, limit=50, progress=False))
    assert data.x_train.shape[1] == 40 and data.x_test.shape[1] == 40


def test_a_fold_of_a_many_voice_corpus_trains_and_tests_on_its_own_samples(tmp_path):
    """``fold``: the protocol's subsets, and nothing else, reach training and test; the IR
    says which fold trained it; a fold the corpus lacks is refused by name."""
    from model.audio.corpus import plan, protocol, speaker_meta
    from model.audio.shd import load, write_shd
    from model.audio.synth import KEYS
    from model.audio.voices import VOICES
    rng = np.random.default_rng(0)

    def fake(path, pairs):
        times = [np.sort(rng.uniform(0, 0.2, 60)) for _ in pairs]
        units = [rng.integers(lb * 35, lb * 35 + 30, 60) for lb, _ in pairs]
        return write_shd(path, times, units, [lb for lb, _ in pairs], [s for _, s in pairs],
                         list(KEYS), meta=speaker_meta(0))
    train = [(it.label, it.speaker) for it in plan("train", 0, per_class=4)]
    test = [(lb, s) for s, v in enumerate(VOICES) if s % 7 == 0 or v.engine != "espeak-ng"
            for lb in range(10 * len(v.languages))]
    fake(tmp_path / "shd_train.h5", train)
    fake(tmp_path / "shd_test.h5", test)
    tri, tei, _ = protocol(load(tmp_path / "shd_train.h5"),
                           load(tmp_path / "shd_test.h5"))["without festival"]
    cfg = AudioConfig(data=str(tmp_path), hidden=12, dmax=4, epochs=1, qat_epochs=0,
                      batch=16, progress=False, fold="without festival")
    data = load_audio(cfg)
    assert len(data.y_train) + len(data.y_val) == len(tri) and len(data.y_test) == len(tei)
    assert {VOICES[s].engine for s in data.speakers_test} == {"festival"}
    res = train_audio(cfg)
    assert res.net.meta["fold"] == "without festival"
    with pytest.raises(ValueError, match="fold 'without mbrola': the folds are unseen voices"):
        load_audio(AudioConfig(data=str(tmp_path), fold="without mbrola", progress=False))


def test_spike_augmentation_changes_each_epoch_and_trains(tmp_path):
    """``spike_aug``: training runs on fresh draws (the loss differs from a run without it on
    the same seed), and the network still exports."""
    base = dict(data="random", hidden=12, dmax=4, epochs=2, qat_epochs=0, batch=16,
                limit=64, steps=20, progress=False)
    plain = train_audio(AudioConfig(**base))
    aug = train_audio(AudioConfig(**base, spike_aug=True))
    assert aug.net.layers[-1].n == plain.net.layers[-1].n
    losses = [[h["train_loss"] for h in r.history if h["phase"] == "float"]
              for r in (plain, aug)]
    assert losses[0] != losses[1]
