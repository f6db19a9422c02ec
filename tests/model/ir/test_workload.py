"""The workload file: written the same way every time, read without unpickling, and refused
with the file and field named when it is incomplete, misshapen or made for another network."""

import io
import json
import zipfile

import numpy as np
import pytest

from model.ir import IRError, Workload, find_workload, load_workload, save_workload, workload_path
from model.ir.workload import f1_from_counts, score_recall
from sim.reference import simulate


def _recall(net, samples=3, pre=4, t=20, seed=0):
    rng = np.random.default_rng(seed)
    n, d = net.layers[1].n, net.max_delay
    targets = rng.random((samples, n, t)) < 0.3
    forced = np.zeros((samples, pre + t, n), bool)
    forced[:, :pre] = rng.random((samples, pre, n)) < 0.3
    forced[:, pre:pre + d] = targets[:, :, :d].transpose(0, 2, 1)
    return Workload("recall", net.digest, forced={1: forced}, targets=targets, layer=1, d=d,
                    pre=pre)


def _classify(net, samples=4, steps=12, seed=0):
    rng = np.random.default_rng(seed)
    hi = (1 << net.input.in_bits) - 1
    x = rng.integers(0, hi + 1, (samples, steps, net.input.n))
    return Workload("classify", net.digest, x=x, labels=rng.integers(0, 3, samples))


@pytest.fixture
def audio_net(random_net):
    return random_net(2, profile="stack")


def test_round_trip_and_same_bytes(wm8, audio_net, tmp_path):
    for net, wl in ((wm8, _recall(wm8)), (audio_net, _classify(audio_net))):
        a = save_workload(wl, tmp_path / "a.workload.npz")
        b = save_workload(wl, tmp_path / "b.workload.npz")
        assert a.read_bytes() == b.read_bytes()
        back = load_workload(a, net)
        assert back.kind == wl.kind and back.samples == wl.samples and back.steps == wl.steps
        for i in range(wl.samples):
            x0, f0 = wl.sample(i)
            x1, f1 = back.sample(i)
            assert (x0 is None and x1 is None) or np.array_equal(x0, x1)
            assert f0.keys() == f1.keys() and all(np.array_equal(f0[k], f1[k]) for k in f0)
        if wl.kind == "recall":
            assert np.array_equal(back.targets, wl.targets) and (back.d, back.pre) == (wl.d, wl.pre)
        else:
            assert np.array_equal(back.labels, wl.labels)


def test_path_beside_the_ir_and_find(wm8, tmp_path):
    assert workload_path(tmp_path / "wm.npz") == tmp_path / "wm.workload.npz"
    assert find_workload(tmp_path / "wm.npz", wm8) is None
    save_workload(_recall(wm8), workload_path(tmp_path / "wm.npz"))
    assert find_workload(tmp_path / "wm.npz", wm8).kind == "recall"


def test_scores_recall_f1_and_accuracy(wm8, audio_net):
    wl = _recall(wm8)
    traces = [simulate(wm8, *wl.sample(i), steps=wl.steps) for i in range(wl.samples)]
    got = wl.score(traces)
    want, per = score_recall(wl.targets, np.stack([t.spikes[1] for t in traces]), wl.d,
                             pre=wl.pre)
    assert got == {"metric": "F1", "value": want, "per_sample": per.tolist()}
    cl = _classify(audio_net)
    traces = [simulate(audio_net, *cl.sample(i), steps=cl.steps) for i in range(cl.samples)]
    hits = [int(t.prediction == y) for t, y in zip(traces, cl.labels)]
    assert cl.score(traces) == {"metric": "accuracy", "value": float(np.mean(hits)),
                                "per_sample": hits}
    assert cl.head(2).samples == 2 and cl.head(99).samples == cl.samples
    with pytest.raises(ValueError, match="one trace per sample"):
        cl.score(traces[:1])
    assert f1_from_counts(0, 0, 0) == 1.0 and f1_from_counts(1, 1, 0) == pytest.approx(2 / 3)


def _entries(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, a in entries.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(a), allow_pickle=True)
            zf.writestr(f"{name}.npy", buf.getvalue())
    return path


def _header(entries):
    return json.loads(bytes(entries["header"]).decode())


def _with_header(entries, **changes):
    h = _header(entries)
    for k, v in changes.items():
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    return dict(entries, header=np.frombuffer(json.dumps(h).encode(), np.uint8))


@pytest.mark.parametrize("change, where, message", [
    (lambda e: {k: v for k, v in e.items() if k != "targets"}, "targets",
     "needs the array 'targets'"),
    (lambda e: {k: v for k, v in e.items() if k != "forced.1"}, "archive",
     "needs 'x' or at least one"),
    (lambda e: dict(e, **{"forced.1": e["forced.1"][:, :5]}), "forced.1", "must be (samples=3"),
    (lambda e: dict(e, **{"forced.1": e["forced.1"] * 2}), "forced.1", "hold 0 or 1"),
    (lambda e: dict(e, targets=e["targets"][:2]), "targets", "must be (samples=3"),
    (lambda e: dict(e, extra=np.zeros(2, np.int64)), "archive", "unknown archive entries"),
    (lambda e: dict(e, targets=np.array([object()], dtype=object)), "targets",
     "never read"),
    (lambda e: dict(e, labels=np.zeros(3, np.int64)), "archive", "unknown archive entries"),
    (lambda e: _with_header(e, kind="dance"), "header.kind", "must be one of"),
    (lambda e: _with_header(e, d=None), "header", "missing field 'd'"),
    (lambda e: _with_header(e, version=2), "header.version", "unknown version 2"),
    (lambda e: _with_header(e, format="polychrony-ir"), "header.format",
     "must be 'polychrony-workload'"),
    (lambda e: _with_header(e, colour="red"), "header", "unknown field(s) ['colour']"),
    (lambda e: _with_header(e, network="sha256:" + "0" * 64), "header.network",
     "made for IR sha256:0000"),
    (lambda e: _with_header(e, layer=0), "header.layer", "not a LIF layer"),
])
def test_refusals_name_the_file_and_field(wm8, tmp_path, change, where, message):
    good = save_workload(_recall(wm8), tmp_path / "good.workload.npz")
    bad = _write(tmp_path / "bad.workload.npz", change(_entries(good)))
    with pytest.raises(IRError) as e:
        load_workload(bad, wm8)
    assert str(bad) in str(e.value) and f"[{where}]" in str(e.value)
    assert message in str(e.value)


def test_a_workload_must_fit_the_network(audio_net, tmp_path, wm8):
    cl = _classify(audio_net)
    p = save_workload(cl, tmp_path / "c.workload.npz")
    with pytest.raises(IRError, match="made for IR"):
        load_workload(p, wm8)
    too_big = Workload("classify", audio_net.digest, x=cl.x + (1 << audio_net.input.in_bits),
                       labels=cl.labels)
    with pytest.raises(IRError, match=r"sample 0: x values must be in"):
        load_workload(save_workload(too_big, tmp_path / "big.workload.npz"), audio_net)
    with pytest.raises(IRError, match="not a zip archive"):
        load_workload(_write_text(tmp_path / "text.workload.npz"), audio_net)


def _write_text(path):
    path.write_text("not a workload")
    return path
