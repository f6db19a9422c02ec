"""Float checkpoints of the audio networks (model/audio/floatckpt.py): written beside the IR by
``train shd``, reproducing the recorded float and integer accuracy without training, kept across
a resumed quantisation-aware phase, and refused by name when a file is not one."""

import contextlib
import io
import json
import warnings

import numpy as np
import pytest
import torch

from model import ir
from model.audio.delrec import DelRecNet, ModelConfig
from model.audio.floatckpt import (CONFIG_ENTRY, evaluate_float, float_path, ir_beside,
                                   load_float, save_float)
from model.audio.train import AudioConfig, evaluate, load_audio, train_audio
from polychrony_cli import main

#: A tiny run that learns something in seconds (as tests/model/audio/test_train.py's).
TRAIN = ["--data", "random", "--hidden", "24", "--dmax", "8", "--epochs", "4", "--qat-epochs",
         "1", "--limit", "160", "--window", "24", "--batch", "32", "--lr", "2e-2", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``train shd`` with a checkpoint: the directory holding net.npz, net.float.npz, ck.pt."""
    d = tmp_path_factory.mktemp("shd")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["train", "shd", *TRAIN, "--out", str(d / "net.npz"),
                   "--checkpoint", str(d / "ck.pt")])
    assert rc == 0, out.getvalue()
    return d, out.getvalue()


def _test_split(meta):
    return load_audio(AudioConfig(data=meta["data"], steps=meta["steps"], seed=meta["seed"],
                                  limit=meta["limit"], progress=False))


def test_training_writes_the_float_model_beside_the_ir(trained):
    d, out = trained
    fl = d / "net.float.npz"
    assert float_path(d / "net.npz") == fl and ir_beside(fl) == d / "net.npz"
    assert f"float model: {fl} (" in out and " kB;" in out
    net = ir.load(d / "net.npz")
    ck = load_float(fl)
    meta = ck.meta
    assert meta["float_test_acc"] == net.meta["float_test_acc"]
    assert meta["int_test_acc"] == net.meta["int_test_acc"] and meta["ir_digest"] == net.digest
    assert (meta["arch"], meta["data"], meta["steps"], meta["seed"], meta["limit"]) == \
        ("dense", "random", 24, 0, 160)
    # loaded back and evaluated on the same test split: exactly the recorded float accuracy
    data = _test_split(meta)
    assert evaluate(ck.model, data.x_test, data.y_test)[0] == meta["float_test_acc"]
    # the state is the float phase's one, kept in the quantisation-aware phase's checkpoint;
    # the model trained on after it (the checkpoint's last QAT epoch) is another
    saved = torch.load(d / "ck.pt", weights_only=True)
    assert saved["phase"] == "quant"
    state = ck.model.state_dict()
    assert saved["float_state"].keys() == state.keys()
    for k, v in saved["float_state"].items():
        assert torch.equal(v, state[k]), k
    assert any(not torch.equal(saved["model"][k], state[k]) for k in state)
    # small: float32 tensors and the config, no optimiser state
    with np.load(fl, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != CONFIG_ENTRY}
    assert all(a.dtype == np.float32 for k, a in arrays.items()
               if not k.endswith("num_batches_tracked"))
    assert fl.stat().st_size < sum(a.nbytes for a in arrays.values()) + 16384


def test_evaluate_reproduces_both_accuracies_without_training(trained, tmp_path, capsys):
    d, _ = trained
    fl = d / "net.float.npz"
    net = ir.load(d / "net.npz")
    assert main(["train", "shd", "--evaluate", str(fl), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["float_acc"] == r["recorded_float_acc"] == net.meta["float_test_acc"]
    assert r["int_acc"] == r["recorded_int_acc"] == net.meta["int_test_acc"]
    assert r["ir"] == str(d / "net.npz") and r["ir_matches"] is True and r["samples"] == 40
    assert main(["train", "shd", "--evaluate", str(fl)]) == 0
    lines = capsys.readouterr().out.splitlines()
    f, i = net.meta["float_test_acc"], net.meta["int_test_acc"]
    assert lines == [f"float accuracy {f:.4f} (test, 40 samples; recorded {f:.4f}): {fl}",
                     f"integer accuracy {i:.4f} (test, 40 samples; recorded {i:.4f}): "
                     f"{d / 'net.npz'}"]
    # alone, without its IR: the float accuracy only
    alone = tmp_path / "x.float.npz"
    alone.write_bytes(fl.read_bytes())
    r = evaluate_float(alone)
    assert r.float_acc == f and r.ir is None and r.int_acc is None
    # the data arguments override the checkpoint's: another window is another test split
    other = evaluate_float(fl, steps=20)
    assert other.samples == 40 and other.ir == d / "net.npz"
    # a bad file: one line, exit 2
    bad = tmp_path / "bad.float.npz"
    bad.write_bytes(b"not a zip")
    assert main(["train", "shd", "--evaluate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "not a float checkpoint" in err[0]
    assert main(["train", "shd", "--evaluate", str(d / "net.npz")]) == 2
    assert "this is an IR file" in capsys.readouterr().err


def test_help_documents_evaluate(capsys):
    with pytest.raises(SystemExit):
        main(["train", "shd", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--evaluate NET.float.npz" in text and "NET.float.npz" in text


def test_a_resumed_quant_phase_keeps_the_float_state_of_its_checkpoint(tmp_path):
    cfg = AudioConfig(arch="conv", data="random", hidden=16, kernel=3, dmax=6, epochs=2,
                      qat_epochs=1, batch=32, limit=96, steps=16, progress=False, lr=2e-2,
                      checkpoint=str(tmp_path / "ck.pt"))
    res = train_audio(cfg)
    data = load_audio(cfg)
    model = DelRecNet(res.model.cfg)
    model.load_state_dict(res.float_state)
    assert evaluate(model, data.x_test, data.y_test)[0] == res.float_acc
    # resumed in the quantisation-aware phase, the float state is the checkpoint's (marked
    # here, to tell it from one computed again)
    ck = torch.load(cfg.checkpoint, weights_only=True)
    assert ck["phase"] == "quant" and "float_state" in ck
    ck["float_state"]["fc3.bias"] += 1.0
    torch.save(ck, cfg.checkpoint)
    again = train_audio(cfg)
    assert torch.equal(again.float_state["fc3.bias"], res.float_state["fc3.bias"] + 1.0)
    assert again.net == res.net
    # a checkpoint written before the float state was kept still resumes, without one
    del ck["float_state"]
    torch.save(ck, cfg.checkpoint)
    with pytest.warns(UserWarning, match=r"ck\.pt was written before the float model was kept"
                                         r".*no float state"):
        old = train_audio(cfg)
    assert old.float_state is None and old.net == res.net and old.float_acc == res.float_acc


def test_train_shd_without_a_float_state_writes_no_float_file(trained, tmp_path):
    d, _ = trained
    ck = torch.load(d / "ck.pt", weights_only=True)
    del ck["float_state"]
    torch.save(ck, tmp_path / "old.pt")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["train", "shd", *TRAIN, "--out", str(tmp_path / "net.npz"),
                     "--checkpoint", str(tmp_path / "old.pt")]) == 0
    assert "float model: none" in out.getvalue()
    assert (tmp_path / "net.npz").exists() and not (tmp_path / "net.float.npz").exists()


# ---------------------------------------------------------------------------- the file format

CFG = ModelConfig(arch="dense", n_in=10, hidden=6, n_out=3, dmax=4)


def _good(tmp_path):
    torch.manual_seed(0)
    m = DelRecNet(CFG)
    return save_float(tmp_path / "good.float.npz", m.state_dict(), CFG, {"seed": 0}), m


def _entries(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _config(entries):
    return json.loads(str(entries[CONFIG_ENTRY][()]))


def test_a_saved_state_loads_back_exactly(tmp_path):
    path, m = _good(tmp_path)
    ck = load_float(path)
    assert ck.config == CFG and ck.meta == {"seed": 0} and not ck.model.training
    got = ck.model.state_dict()
    for k, v in m.state_dict().items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k
    # a state that does not fit its config is not written
    with pytest.raises(ValueError, match=r"state: entry 'w_rec' is missing"):
        save_float(tmp_path / "x.npz", {k: v for k, v in m.state_dict().items()
                                        if k != "w_rec"}, CFG, {})
    with pytest.raises(ValueError, match="meta must be plain JSON"):
        save_float(tmp_path / "x.npz", m.state_dict(), CFG, {"x": np.float32(1)})


def _drop(e, k):
    del e[k]


def _set_config(e, **kw):
    c = _config(e)
    for key, v in kw.items():
        part, _, field = key.partition("__")
        if field:
            if v is None:
                del c[part][field]
            else:
                c[part][field] = v
        elif v is None:
            del c[part]
        else:
            c[part] = v
    e[CONFIG_ENTRY] = np.array(json.dumps(c))


BAD = {
    "missing config": (lambda e: _drop(e, CONFIG_ENTRY), r"no '__config__' entry"),
    "config not JSON": (lambda e: e.update({CONFIG_ENTRY: np.array("{oops")}),
                        r"entry '__config__' is not JSON"),
    "config not a string": (lambda e: e.update({CONFIG_ENTRY: np.zeros(3)}),
                            r"entry '__config__' must be one JSON string"),
    "no format": (lambda e: _set_config(e, format=None), r"__config__ field 'format' is missing"),
    "other format": (lambda e: _set_config(e, format="polychrony-ir"),
                     r"field 'format' is 'polychrony-ir'"),
    "missing model field": (lambda e: _set_config(e, model__hidden=None),
                            r"model field 'hidden' is missing"),
    "unknown model field": (lambda e: _set_config(e, model__colour="red"),
                            r"model field 'colour' is no setting"),
    "bad model value": (lambda e: _set_config(e, model__kernel=4),
                        r"model config: kernel must be odd"),
    "model field type": (lambda e: _set_config(e, model__hidden=6.5),
                         r"model field 'hidden' must be an integer"),
    "unknown entry": (lambda e: e.update({"fc9.weight": np.zeros((2, 2), np.float32)}),
                      r"entry 'fc9.weight' is no parameter or buffer"),
    "missing entry": (lambda e: _drop(e, "w_rec"), r"entry 'w_rec' is missing"),
    "wrong shape": (lambda e: e.update({"fc1.weight": np.zeros((6, 11), np.float32)}),
                    r"entry 'fc1.weight' has shape \(6, 11\), .* needs \(6, 10\)"),
    "oversized entry": (lambda e: e.update({"delay": np.zeros((2000,), np.float32)}),
                        r"entry 'delay' is \d+ bytes, more than the \d+ its shape allows"),
    "wrong dtype": (lambda e: e.update({"delay": np.zeros(6, np.int64)}),
                    r"entry 'delay' is int64, the network needs floats"),
    "not finite": (lambda e: e.update({"fc3.bias": np.full(3, np.nan, np.float32)}),
                   r"entry 'fc3.bias' holds NaN or infinity"),
    "pickled entry": (lambda e: e.update({"delay": np.array([{}] * 6, dtype=object)}),
                      r"entry 'delay' cannot be read"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_file_is_refused_naming_file_and_field(case, tmp_path):
    path, _ = _good(tmp_path)
    e = _entries(path)
    change, message = BAD[case]
    change(e)
    bad = tmp_path / "bad.float.npz"
    with open(bad, "wb") as f:
        np.savez(f, **e)              # allows pickles when writing: the reader must refuse
    with pytest.raises(ValueError, match=r"bad\.float\.npz: .*" + message):
        load_float(bad)


def _npy(p):
    with open(p, "wb") as f:
        np.save(f, np.zeros(3))


def test_a_file_that_is_no_npz_is_refused(tmp_path):
    for name, write in (("text.float.npz", lambda p: p.write_text("hello")),
                        ("empty.float.npz", lambda p: p.write_bytes(b"")),
                        ("zip.float.npz", lambda p: p.write_bytes(b"PK\x03\x04broken")),
                        ("one.float.npz", _npy)):
        p = tmp_path / name
        write(p)
        with pytest.raises(ValueError, match=rf"{name}: not a float checkpoint"):
            load_float(p)
    with pytest.raises(FileNotFoundError):
        load_float(tmp_path / "absent.float.npz")
