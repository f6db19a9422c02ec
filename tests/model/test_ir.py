"""Tests of model.ir: the QuantNet IR, its file format (docs/ir.md) and its design rules."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from model import ir
from model.ir import fileformat
from model.ir.canonical import arrays_of, header_of
from model.ir import (RULES, InputLayer, IRError, LIFLayer, Network, Projection, check,
                      current_bounds, digest, load, save)
from tests import ROOT

DOC = ROOT / "docs" / "ir.md"


# --------------------------------------------------------------------------------------------
# Builders

def lif(n, **kw):
    kw = {"v_bits": 16, "acc_bits": 20, "beta": 3, "beta_shift": 2, "threshold": 100,
          "name": "hidden", **kw}
    return LIFLayer(n, **kw)


def small(kind="dense", **over):
    """Input (3 ch, 2 bits) -> hidden (4, spiking) with one projection of ``kind`` (+ recurrent)."""
    rng = np.random.default_rng(1)
    layers = [InputLayer(3, in_bits=2), lif(4, bias=[1, -2, 0, 5])]
    projs = [Projection("dense", 0, 1, 6, rng.integers(-20, 20, (4, 3)), [0, 1, 2])]
    if kind == "taps":
        projs.append(Projection("taps", 1, 1, 6, rng.integers(-20, 20, (4, 4, 3)), 1))
    elif kind == "conv":
        projs.append(Projection("conv", 1, 1, 6, [2, -1, 3], [1, 2, 3, 1]))
    elif kind == "dense-rec":
        projs.append(Projection("dense", 1, 1, 6, rng.integers(-20, 20, (4, 4)), 2))
    kw = {"layers": layers, "projections": projs, "max_delay": 4, **over}
    return Network(**kw)


def example_net():
    """The network of the example in docs/ir.md."""
    return Network(
        layers=[InputLayer(2, in_bits=1, name="input"),
                LIFLayer(3, v_bits=8, acc_bits=8, beta=3, beta_shift=2, threshold=4,
                         reset="subtract", bias=[0, 1, -1], name="hidden"),
                LIFLayer(2, v_bits=10, acc_bits=8, beta=4, beta_shift=2, threshold=None,
                         name="out")],
        projections=[Projection("dense", 0, 1, 4, [[3, -2], [1, 4], [0, 5]], [0, 2]),
                     Projection("conv", 1, 1, 3, [1, -3, 1], 1),
                     Projection("dense", 1, 2, 3, [[2, 0, -1], [-1, 2, 0]], 0)],
        max_delay=2, name="example", meta={"note": "docs/ir.md example"})


def _variants():
    rng = np.random.default_rng(7)
    ri = rng.integers
    inp = InputLayer(5, in_bits=4)
    out = {}
    out["dense-scalar-delay"] = Network(
        [inp, lif(6)], [Projection("dense", 0, 1, 8, ri(-100, 100, (6, 5)), 3)], max_delay=3)
    out["dense-per-pre-delay"] = Network(
        [inp, lif(6, reset="subtract")],
        [Projection("dense", 0, 1, 8, ri(-100, 100, (6, 5)), [0, 1, 2, 3, 4]),
         Projection("dense", 1, 1, 8, ri(-100, 100, (6, 6)), ri(1, 5, 6))], max_delay=4)
    out["taps"] = Network(
        [InputLayer(0), lif(8, forced=True, name="memory")],
        [Projection("taps", 1, 1, 5, ri(-16, 16, (8, 8, 6)), 1)], max_delay=6,
        name="wm", meta={"M": 2, "p_A": 0.1, "cue": [1, 2, 3], "nested": {"a": None}})
    out["conv"] = Network(
        [inp, lif(7), lif(7, name="h2", reset="subtract")],
        [Projection("dense", 0, 1, 8, ri(-100, 100, (7, 5)), ri(0, 3, 5)),
         Projection("conv", 1, 1, 8, ri(-100, 100, 5), ri(1, 4, 7)),
         Projection("dense", 1, 2, 8, ri(-100, 100, (7, 7)), 0),
         Projection("conv", 2, 2, 8, ri(-100, 100, 3), 2)], max_delay=3)
    out["readout"] = Network(
        [inp, lif(6), lif(3, threshold=None, name="readout", v_bits=24)],
        [Projection("dense", 0, 1, 8, ri(-100, 100, (6, 5)), 0),
         Projection("dense", 1, 2, 8, ri(-100, 100, (3, 6)), 1)], max_delay=1)
    out["forced-empty-input"] = Network(
        [InputLayer(0, in_bits=1), lif(4, forced=True, reset="subtract")],
        [Projection("dense", 0, 1, 3, np.zeros((4, 0), np.int64), np.zeros(0, np.int64)),
         Projection("dense", 1, 1, 3, ri(-4, 4, (4, 4)), 1)], max_delay=1)
    out["wide-values"] = Network(
        [InputLayer(2, in_bits=16), lif(2, v_bits=40, acc_bits=48, threshold=1 << 38,
                                        beta=(1 << 20) - 1, beta_shift=20,
                                        bias=[-(1 << 40), 1 << 30])],
        [Projection("dense", 0, 1, 30, [[(1 << 29) - 1, -(1 << 29)], [1000, -1]], [0, 4095])],
        max_delay=4096)
    out["no-projections"] = Network([InputLayer(1), lif(1)], [], max_delay=0, name="bare")
    return out


VARIANTS = _variants()


# --------------------------------------------------------------------------------------------
# Independent readers and digest, written from docs/ir.md only (no model.ir private helpers)

def indep_digest(header: dict, arrays: dict) -> str:
    body = {k: v for k, v in header.items() if k != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    h = hashlib.sha256(text.encode("ascii"))
    for name in sorted(arrays):
        a = np.asarray(arrays[name]).astype("<i8", order="C")
        h.update(("\n%s:[%s]\n" % (name, ", ".join("%d" % d for d in a.shape))).encode("ascii"))
        h.update(a.tobytes(order="C"))
    return "sha256:" + h.hexdigest()


def read_raw(path):
    """(header, {name: stored array}) straight from the zip."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
    return header, arrays


def write_raw(path, header, arrays, *, resign=True, header_bytes=None, allow_pickle=False):
    """Write an .npz by hand (np.savez), optionally re-signing the digest."""
    if resign:
        header = dict(header, digest=indep_digest(header, arrays))
    if header_bytes is None:
        header_bytes = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, header=header_bytes, **arrays, allow_pickle=allow_pickle)
    return path


@pytest.fixture
def saved(tmp_path):
    """A saved 'conv' variant plus a readout layer: (path, header, arrays)."""
    net = Network(
        [InputLayer(3, in_bits=2), lif(4, forced=True),
         lif(2, threshold=None, name="out")],
        [Projection("dense", 0, 1, 6, [[1, -2, 3], [0, 0, 0], [-4, 5, -6], [7, 7, -7]],
                    [0, 1, 2]),
         Projection("conv", 1, 1, 6, [2, -1, 3], [1, 2, 3, 1]),
         Projection("taps", 1, 2, 6, np.arange(24).reshape(2, 4, 3) - 12, 1)],
        max_delay=4)
    path = save(net, tmp_path / "net.npz")
    header, arrays = read_raw(path)
    return path, header, arrays


def refused(path, rule, where=None, words=()):
    """Load ``path``, expect IRError ``rule``; return the error."""
    with pytest.raises(IRError) as info:
        load(path)
    e = info.value
    assert e.rule == rule, str(e)
    if where is not None:
        assert where in e.where, (where, str(e))
    for w in words:  # the full text: "<file>: <rule> [<where>]: <message>"
        assert w in str(e), (w, str(e))
    assert e.file == str(path)
    assert str(path) in str(e) and rule in str(e)
    assert isinstance(e, ValueError)
    return e


# --------------------------------------------------------------------------------------------
# Round trip and determinism

def _same_net(a: Network, b: Network):
    assert a.digest == b.digest and a == b and hash(a) == hash(b)
    assert (a.name, a.max_delay, a.meta) == (b.name, b.max_delay, b.meta)
    assert len(a.layers) == len(b.layers) and len(a.projections) == len(b.projections)
    for la, lb in zip(a.layers, b.layers):
        assert type(la) is type(lb)
        if isinstance(la, InputLayer):
            assert (la.n, la.in_bits, la.name) == (lb.n, lb.in_bits, lb.name)
        else:
            for f in ("n", "v_bits", "acc_bits", "beta", "beta_shift", "threshold", "reset",
                      "forced", "name"):
                assert getattr(la, f) == getattr(lb, f), f
            assert lb.bias.dtype == np.int64 and np.array_equal(la.bias, lb.bias)
    for pa, pb in zip(a.projections, b.projections):
        assert (pa.kind, pa.src, pa.dst, pa.w_bits) == (pb.kind, pb.src, pb.dst, pb.w_bits)
        for f in ("weight", "delay"):
            x, y = getattr(pa, f), getattr(pb, f)
            assert y.dtype == np.int64 and x.shape == y.shape and np.array_equal(x, y), f


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_round_trip(tmp_path, name):
    net = VARIANTS[name]
    p = save(net, tmp_path / "a.npz")
    back = load(p)
    _same_net(net, back)
    # deterministic bytes: the same net twice, and the loaded net again
    assert p.read_bytes() == save(net, tmp_path / "b.npz").read_bytes()
    assert p.read_bytes() == save(back, tmp_path / "c.npz").read_bytes()
    # the header's digest is the network's digest and is recomputable from the doc
    header, arrays = read_raw(p)
    assert header["digest"] == digest(net) == indep_digest(header, arrays)
    assert sorted(tmp_path.iterdir()) == [tmp_path / f"{c}.npz" for c in "abc"]  # no temp files


def test_file_is_a_plain_npz(tmp_path):
    net = VARIANTS["conv"]
    p = save(net, tmp_path / "sub" / "dir" / "net.ir")  # any suffix, parents created
    assert p == tmp_path / "sub" / "dir" / "net.ir" and p.exists()
    with zipfile.ZipFile(p) as z:
        infos = z.infolist()
        assert z.testzip() is None
    names = [i.filename for i in infos]
    assert names[0] == "header.npy" and all(n.endswith(".npy") for n in names)
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos)
    with np.load(p, allow_pickle=False) as z:
        assert z["header"].dtype == np.uint8 and z["header"].ndim == 1
        assert set(z.files) == {"header", "layer1.bias", "layer2.bias"} | {
            f"proj{k}.{f}" for k in range(4) for f in ("weight", "delay")}
        # narrowest signed storage dtype
        assert z["proj0.weight"].dtype == np.int8
        assert z["proj1.delay"].shape == (7,) and z["proj2.delay"].shape == ()
    wide = tmp_path / "wide.npz"
    save(VARIANTS["wide-values"], wide)
    with np.load(wide) as z:
        assert z["layer1.bias"].dtype == np.int64
        assert z["proj0.weight"].dtype == np.int32
        assert z["proj0.delay"].dtype == np.int16


def test_save_replaces_existing_file(tmp_path):
    p = tmp_path / "x.npz"
    save(VARIANTS["conv"], p)
    save(VARIANTS["taps"], p)
    assert load(p) == VARIANTS["taps"]


def test_any_integer_storage_dtype_is_accepted(saved, tmp_path):
    path, header, arrays = saved
    odd = {k: (v.astype(">i4") if "weight" in k else v.astype(np.int64)) for k, v in arrays.items()}
    odd["proj0.delay"] = arrays["proj0.delay"].astype(np.uint16)
    odd["proj1.delay"] = arrays["proj1.delay"].astype(np.uint64)
    odd["proj2.weight"] = np.asfortranarray(arrays["proj2.weight"].astype(np.int16))
    p = write_raw(tmp_path / "odd.npz", header, odd, resign=False)  # the digest is of values
    assert load(p) == load(path)


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_npy_format_versions_accepted(saved, tmp_path, version):
    path, header, arrays = saved
    p = tmp_path / "v.npz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as z:
        for name, a in {"header": np.frombuffer(json.dumps(header).encode(), np.uint8),
                        **arrays}.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, version=version, allow_pickle=False)
            z.writestr(f"{name}.npy", buf.getvalue())
    assert load(p) == load(path)


def test_meta_is_normalised_to_json():
    net = small(meta={"t": (1, 2), "k": np.int64(3), "f": np.float32(0.5), 4: "x",
                      "a": np.arange(2)})
    assert net.meta == {"t": [1, 2], "k": 3, "f": 0.5, "4": "x", "a": [0, 1]}
    for bad in ({"x": float("nan")}, {"x": object()}, ["not", "a", "dict"]):
        with pytest.raises(IRError) as e:
            small(meta=bad)
        assert e.value.rule == "field-type" and e.value.where == "network.meta"


def test_digest_sensitive_to_every_part():
    base = small("conv")
    others = [
        small("conv", name="other"), small("conv", max_delay=5), small("conv", meta={"a": 1}),
        small("taps"), small("dense-rec"),
        Network([InputLayer(3, in_bits=3), *base.layers[1:]], base.projections, 4),
        Network(base.layers, [base.projections[0],
                              Projection("conv", 1, 1, 6, [2, -1, 3], [1, 2, 3, 2])], 4),
        Network(base.layers, [base.projections[0],
                              Projection("conv", 1, 1, 7, [2, -1, 3], [1, 2, 3, 1])], 4),
        Network(base.layers, base.projections[::-1], 4),
    ]
    digests = {base.digest} | {n.digest for n in others}
    assert len(digests) == len(others) + 1
    # same values with a different shape must not collide: scalar vs per-pre delay
    a = Network(base.layers, [Projection("dense", 0, 1, 6, base.projections[0].weight, 1)], 4)
    b = Network(base.layers, [Projection("dense", 0, 1, 6, base.projections[0].weight,
                                         [1, 1, 1])], 4)
    assert a.digest != b.digest and a != b
    one = [InputLayer(1), lif(2)]
    a = Network(one, [Projection("dense", 0, 1, 6, [[1], [2]], 1)], 4)
    b = Network(one, [Projection("dense", 0, 1, 6, [[1], [2]], [1])], 4)
    assert a.digest != b.digest  # shape () and (1,) hash differently


# --------------------------------------------------------------------------------------------
# Malformed files

def _edit(header, fn):
    header = json.loads(json.dumps(header))
    fn(header)
    return header


def _set(path, value):
    def fn(h):
        obj = h
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return fn


def _delete(path):
    def fn(h):
        obj = h
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]
    return fn


HEADER_CASES = {
    # name: (edit, rule, where, words)
    "missing v_bits": (_delete(["layers", 1, "v_bits"]), "missing-field", "layers[1]",
                       ["v_bits"]),
    "missing max_delay": (_delete(["max_delay"]), "missing-field", "header", ["max_delay"]),
    "missing projection w_bits": (_delete(["projections", 0, "w_bits"]), "missing-field",
                                  "projections[0]", ["w_bits"]),
    "unknown field": (_set(["layers", 1, "colour"], "red"), "unknown-field", "layers[1]",
                      ["colour"]),
    "unknown top field": (_set(["extra"], 1), "unknown-field", "header", ["extra"]),
    "n is a string": (_set(["layers", 1, "n"], "4"), "field-type", "layers[1]", ["'n'"]),
    "n is a float": (_set(["layers", 1, "n"], 4.0), "field-type", "layers[1]", ["'n'"]),
    "n is a bool": (_set(["layers", 0, "n"], True), "field-type", "layers[0]", ["'n'"]),
    "threshold float": (_set(["layers", 1, "threshold"], 1.5), "field-type", "layers[1]",
                        ["threshold"]),
    "forced is 1": (_set(["layers", 1, "forced"], 1), "field-type", "layers[1]", ["forced"]),
    "meta is a list": (_set(["meta"], []), "field-type", "header", ["meta"]),
    "layers not a list": (_set(["layers"], {}), "field-type", "header", ["layers"]),
    "layer not an object": (_set(["layers", 1], 5), "field-type", "layers[1]", []),
    "unknown version": (_set(["version"], 2), "version", "header.version", ["2"]),
    "version as string": (_set(["version"], "1"), "version", "header.version", []),
    "no version": (_delete(["version"]), "version", "header.version", []),
    "wrong format": (_set(["format"], "quantnet"), "format", "header.format",
                     ["quantnet", "polychrony-ir"]),
    "unknown layer kind": (_set(["layers", 1, "kind"], "izhikevich"), "format",
                           "layers[1].kind", ["izhikevich"]),
    "non-canonical bias name": (_set(["layers", 1, "bias"], "b1"), "format", "layers[1].bias",
                                ["layer1.bias"]),
    "non-canonical weight name": (_set(["projections", 1, "weight"], "proj0.weight"),
                                  "format", "projections[1].weight", ["proj1.weight"]),
    "bad digest string": (_set(["digest"], "md5:abc"), "format", "header.digest", ["sha256"]),
    # semantic rules, on files with a correct digest
    "in_bits 0": (_set(["layers", 0, "in_bits"], 0), "sizes", "input.in_bits", ["in_bits"]),
    "v_bits too wide": (_set(["layers", 1, "v_bits"], 49), "sizes", "hidden.v_bits", ["48"]),
    "threshold above v range": (_set(["layers", 1, "threshold"], 1 << 15), "threshold",
                                "hidden.threshold", ["32767"]),
    "threshold zero": (_set(["layers", 1, "threshold"], 0), "threshold", "hidden.threshold",
                       []),
    "beta above 2**beta_shift": (_set(["layers", 1, "beta"], 5), "leak", "hidden.beta",
                                 ["2**beta_shift"]),
    "negative beta_shift": (_set(["layers", 1, "beta_shift"], -1), "leak",
                            "hidden.beta_shift", []),
    "bad reset mode": (_set(["layers", 1, "reset"], "hard"), "reset-mode", "hidden.reset",
                       ["hard"]),
    "bad projection kind": (_set(["projections", 0, "kind"], "sparse"), "projection-kind",
                            "projection 0->1", ["sparse"]),
    "w_bits too small for weights": (_set(["projections", 0, "w_bits"], 3), "weight-range",
                                     "projection 0->1.weight", ["w_bits=3"]),
    "delay above max_delay": (_set(["max_delay"], 2), "delay-range", "projection 1->1.delay",
                              ["max_delay"]),
    "accumulator overflow": (_set(["layers", 1, "acc_bits"], 5), "accumulator",
                             "hidden.acc_bits", ["acc_bits=5", "overflow"]),
    "feed-forward skip": (_set(["projections", 2, "src"], 0), "projection-shape",
                          "projection 0->2", []),
    "read-out forced": (_set(["layers", 2, "forced"], True), "threshold", "out.forced", []),
    "duplicate layer names": (_set(["layers", 2, "name"], "hidden"), "structure", "layers",
                              ["unique"]),
    "input not first": (_set(["layers", 1], {"kind": "input", "name": "x", "n": 4,
                                             "in_bits": 1}), "structure", "layers[1]", []),
}


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_malformed_header_refused(saved, tmp_path, case):
    path, header, arrays = saved
    edit, rule, where, words = HEADER_CASES[case]
    if case == "input not first":
        arrays = {k: v for k, v in arrays.items() if k != "layer1.bias"}
    p = write_raw(tmp_path / "bad.npz", _edit(header, edit), arrays,
                  resign=case != "bad digest string")
    refused(p, rule, where, words)


ARRAY_CASES = {
    # name: (edit of the arrays dict, rule, where, words)
    "missing weight": (lambda a: a.pop("proj0.weight"), "missing-field",
                       "projections[0].weight", ["proj0.weight", "missing"]),
    "missing bias": (lambda a: a.pop("layer1.bias"), "missing-field", "layers[1].bias",
                     ["layer1.bias"]),
    "extra entry": (lambda a: a.update(junk=np.zeros(2, np.int8)), "unknown-field", "archive",
                    ["junk"]),
    "float weight": (lambda a: a.update({"proj0.weight": a["proj0.weight"].astype(float)}),
                     "integer-dtype", "projections[0].weight", ["proj0.weight", "float64"]),
    "bool delay": (lambda a: a.update({"proj0.delay": np.ones(3, bool)}), "integer-dtype",
                   "projections[0].delay", ["bool"]),
    "string bias": (lambda a: a.update({"layer1.bias": np.array(["1", "2", "3", "4"])}),
                    "integer-dtype", "layers[1].bias", ["<U1"]),
    "structured weight": (lambda a: a.update({"proj1.weight": np.zeros(3, "i4,i4")}),
                          "integer-dtype", "projections[1].weight", []),
    "uint64 too big": (lambda a: a.update({"proj1.delay": np.full(4, 2**63, np.uint64)}),
                       "integer-range", "projections[1].delay", ["int64"]),
    "weight above w_bits": (lambda a: a["proj0.weight"].__setitem__((0, 0), 32),
                            "weight-range", "projection 0->1.weight", ["w_bits=6"]),
    "weight below w_bits": (lambda a: a["proj0.weight"].__setitem__((0, 0), -33),
                            "weight-range", "projection 0->1.weight", ["-33"]),
    "recurrent delay 0": (lambda a: a["proj1.delay"].__setitem__(0, 0), "delay-range",
                          "projection 1->1.delay", ["recurrent", ">= 1"]),
    "negative feed-forward delay": (lambda a: a["proj0.delay"].__setitem__(0, -1),
                                    "delay-range", "projection 0->1.delay", [">= 0"]),
    "delay above max_delay": (lambda a: a["proj0.delay"].__setitem__(2, 5), "delay-range",
                              "projection 0->1.delay", ["max_delay 4"]),
    "taps last tap above max_delay": (lambda a: a.update({"proj2.delay": np.int8(3)}),
                                      "delay-range", "projection 1->2.delay", ["4"]),
    "conv even kernel": (lambda a: a.update({"proj1.weight": np.array([1, 2], np.int8)}),
                         "projection-shape", "projection 1->1.weight", ["odd", "2"]),
    "conv 2-D kernel": (lambda a: a.update({"proj1.weight": np.ones((3, 1), np.int8)}),
                        "shape", "projection 1->1.weight", ["dimensions"]),
    "dense weight wrong shape": (lambda a: a.update({"proj0.weight": np.ones((4, 2), np.int8)}),
                                 "projection-shape", "projection 0->1.weight", ["(4, 3)"]),
    "dense weight 3-D": (lambda a: a.update({"proj0.weight": np.ones((4, 3, 1), np.int8)}),
                         "shape", "projection 0->1.weight", []),
    "taps weight wrong shape": (lambda a: a.update({"proj2.weight": np.ones((2, 3, 3),
                                                                             np.int8)}),
                                "projection-shape", "projection 1->2.weight", ["(2, 4, 3)"]),
    "taps with no tap": (lambda a: a.update({"proj2.weight": np.ones((2, 4, 0), np.int8)}),
                         "projection-shape", "projection 1->2.weight", ["D >= 1"]),
    "taps per-pre delay": (lambda a: a.update({"proj2.delay": np.ones(4, np.int8)}), "shape",
                           "projection 1->2.delay", []),
    "delay wrong length": (lambda a: a.update({"proj0.delay": np.zeros(2, np.int8)}),
                           "projection-shape", "projection 0->1.delay", ["(3,)"]),
    "bias wrong length": (lambda a: a.update({"layer1.bias": np.zeros(3, np.int8)}), "sizes",
                          "hidden.bias", ["(4,)"]),
    "bias overflows accumulator": (lambda a: a.update({"layer1.bias": np.full(4, 1 << 19)}),
                                   "accumulator", "hidden.acc_bits", ["overflow"]),
}


@pytest.mark.parametrize("case", sorted(ARRAY_CASES))
def test_malformed_array_refused(saved, tmp_path, case):
    path, header, arrays = saved
    edit, rule, where, words = ARRAY_CASES[case]
    arrays = {k: v.copy() for k, v in arrays.items()}
    edit(arrays)
    resign = rule not in ("integer-dtype", "integer-range")  # cannot hash non-integers
    p = write_raw(tmp_path / "bad.npz", header, arrays, resign=resign)
    refused(p, rule, where, words)


class _Marker:
    """Unpickling this writes a marker file: proof that something was unpickled."""

    def __init__(self, path):
        self.path = Path(path)

    def __reduce__(self):
        return Path.write_text, (self.path, "unpickled!")


def test_object_array_refused_without_unpickling(saved, tmp_path):
    path, header, arrays = saved
    marker = tmp_path / "marker"
    payload = np.empty(2, dtype=object)
    payload[:] = [_Marker(marker), _Marker(marker)]
    p = write_raw(tmp_path / "evil.npz", header, {**arrays, "proj0.weight": payload},
                  resign=False, allow_pickle=True)
    # the trap works: an unguarded reader would run it
    with np.load(p, allow_pickle=True) as z:
        z["proj0.weight"]
    assert marker.exists()
    marker.unlink()
    refused(p, "integer-dtype", "projections[0].weight", ["object", "unpickl"])
    assert not marker.exists()
    # the header too may not be an object array
    p2 = write_raw(tmp_path / "evil2.npz", header, arrays, header_bytes=payload,
                   allow_pickle=True)
    refused(p2, "integer-dtype", "header", ["object"])
    assert not marker.exists()


def test_digest_mismatch(saved, tmp_path):
    path, header, arrays = saved
    arrays = {k: v.copy() for k, v in arrays.items()}
    arrays["proj0.weight"][1, 1] = 1  # a valid value: only the digest can catch it
    p = write_raw(tmp_path / "edited.npz", header, arrays, resign=False)
    e = refused(p, "digest", "header.digest", ["mismatch", header["digest"]])
    # a header edit (valid in itself) is caught too
    p = write_raw(tmp_path / "renamed.npz", _edit(header, _set(["name"], "x")), read_raw(path)[1],
                  resign=False)
    refused(p, "digest", "header.digest")
    # an edit that breaks a rule and the digest: the digest is reported (integrity first)
    arrays["proj0.weight"][1, 1] = 99
    p = write_raw(tmp_path / "both.npz", header, arrays, resign=False)
    refused(p, "digest")
    assert e.where == "header.digest"


def test_bad_header_entry(saved, tmp_path):
    path, header, arrays = saved
    text = json.dumps(header)
    cases = {
        "int64 header": (np.frombuffer(text.encode(), np.uint8).astype(np.int64), "format",
                         ["uint8"]),
        "2-D header": (np.frombuffer(text.encode(), np.uint8).reshape(1, -1), "format",
                       ["1-D"]),
        "not JSON": (np.frombuffer(b"{not json", np.uint8), "format", ["JSON"]),
        "not UTF-8": (np.frombuffer(b"\xff\xfe{}", np.uint8), "format", ["UTF-8"]),
        "JSON array": (np.frombuffer(b"[1, 2]", np.uint8), "format", ["object"]),
        "deep nesting": (np.frombuffer(b"[" * 100000 + b"]" * 100000, np.uint8), "format",
                         ["JSON"]),
        "duplicate key": (np.frombuffer(text[:-1].encode() + b', "name": "x"}', np.uint8),
                          "format", ["duplicate", "name"]),
        "NaN": (np.frombuffer(text.replace('"meta": {}', '"meta": {"x": NaN}').encode(),
                              np.uint8), "format", ["NaN"]),
    }
    assert '"meta": {}' in text
    for name, (raw, rule, words) in cases.items():
        p = write_raw(tmp_path / "h.npz", header, arrays, header_bytes=raw, resign=False)
        refused(p, rule, "header", words)
    p = tmp_path / "noheader.npz"
    with open(p, "wb") as f:
        np.savez(f, **arrays)
    refused(p, "missing-field", "header", ["header"])


def test_not_an_ir_file(tmp_path, saved):
    path, header, arrays = saved
    refused(tmp_path / "missing.npz", "file", words=["no such file"])
    refused(tmp_path, "file")  # a directory
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    refused(empty, "file", words=["zip"])
    text = tmp_path / "text.npz"
    text.write_text("hello, I am not a zip file\n")
    refused(text, "file", words=["zip"])
    npy = tmp_path / "plain.npy"
    np.save(npy, np.arange(3))
    refused(npy, "file", words=["zip"])
    pkl = tmp_path / "pickle.npz"
    pkl.write_bytes(pickle.dumps({"weight": [1, 2]}))
    refused(pkl, "file")
    # a zip with a non-.npy entry
    other = tmp_path / "other.npz"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("header.npy", path.read_bytes()[:0])
        z.writestr("readme.txt", "hi")
    refused(other, "format", "archive", ["readme.txt"])
    # a corrupted entry (bit flip inside the compressed data of the last entry)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.infolist()[-1]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0xFF
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(raw))
    refused(bad, "file", "projections[2].delay")
    # truncated
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[: len(raw) // 2])
    refused(cut, "file")


def test_declared_shape_larger_than_entry(saved, tmp_path):
    """A .npy header that claims a huge shape is refused before anything is allocated."""
    path, header, arrays = saved
    p = write_raw(tmp_path / "ok.npz", header, arrays, resign=False)
    with zipfile.ZipFile(p) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    fake = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        fake, {"descr": "|i1", "fortran_order": False, "shape": (400000, 300000)})
    members["proj0.weight.npy"] = fake.getvalue() + bytes(12)
    big = tmp_path / "big.npz"
    with zipfile.ZipFile(big, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    refused(big, "file", "projections[0].weight", ["more data"])


# --------------------------------------------------------------------------------------------
# Design rules on in-memory networks

def _net(layers=None, projections=None, max_delay=4):
    layers = layers if layers is not None else [InputLayer(3), lif(4)]
    projections = projections if projections is not None else [
        Projection("dense", 0, 1, 8, np.ones((4, 3), int), 0)]
    return Network(layers, projections, max_delay)


W = np.ones((4, 3), int)
RULE_CASES = {
    "structure": [
        lambda: _net(layers=[lif(3, name="a"), lif(4)], projections=[]),
        lambda: _net(layers=[InputLayer(3), InputLayer(4, name="x")], projections=[]),
        lambda: _net(layers=[InputLayer(3)], projections=[]),
        lambda: _net(layers=[], projections=[]),
        lambda: _net(layers=[InputLayer(3), lif(4, name="input")]),
        lambda: _net(layers=[InputLayer(3), "not a layer"], projections=[]),
    ],
    "sizes": [
        lambda: _net(layers=[InputLayer(3, in_bits=0), lif(4)]),
        lambda: _net(layers=[InputLayer(3, in_bits=17), lif(4)]),
        lambda: _net(layers=[InputLayer(-1), lif(4)], projections=[]),
        lambda: _net(layers=[InputLayer(3), lif(0)], projections=[]),
        lambda: _net(layers=[InputLayer(3), lif((1 << 16) + 1)], projections=[]),
        lambda: _net(layers=[InputLayer(3), lif(4, v_bits=1)]),
        lambda: _net(layers=[InputLayer(3), lif(4, acc_bits=49)]),
        lambda: _net(layers=[InputLayer(3), lif(4, bias=[1, 2])]),
    ],
    "leak": [
        lambda: _net(layers=[InputLayer(3), lif(4, beta=5, beta_shift=2)]),
        lambda: _net(layers=[InputLayer(3), lif(4, beta=-1)]),
        lambda: _net(layers=[InputLayer(3), lif(4, beta=0, beta_shift=25)]),
        lambda: _net(layers=[InputLayer(3), lif(4, v_bits=40, acc_bits=40, beta=1,
                                                beta_shift=24)]),
    ],
    "threshold": [
        lambda: _net(layers=[InputLayer(3), lif(4, threshold=0)]),
        lambda: _net(layers=[InputLayer(3), lif(4, threshold=-3)]),
        lambda: _net(layers=[InputLayer(3), lif(4, v_bits=8, threshold=128)]),
        lambda: _net(layers=[InputLayer(3), lif(4, threshold=None, forced=True)]),
    ],
    "projection-shape": [
        lambda: _net(projections=[Projection("dense", 0, 2, 8, W, 0)]),
        lambda: _net(projections=[Projection("dense", 1, 0, 8, W, 0)]),
        lambda: _net(layers=[InputLayer(3), lif(3), lif(3, name="o")],
                     projections=[Projection("dense", 0, 2, 8, np.ones((3, 3), int), 0)]),
        lambda: _net(layers=[InputLayer(3), lif(4, threshold=None)],
                     projections=[Projection("dense", 1, 1, 8, np.ones((4, 4), int), 1)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 0, W, 0)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 49, W, 0)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 8, W.T, 0)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 8, W, [0, 0])]),
        lambda: _net(projections=[Projection("taps", 0, 1, 8, np.ones((4, 3, 0), int), 0)]),
        lambda: _net(projections=[Projection("taps", 0, 1, 8, np.ones((3, 3, 2), int), 0)]),
        lambda: _net(projections=[Projection("conv", 0, 1, 8, [1, 1, 1], 0)]),  # 3 -> 4
        lambda: _net(projections=[W_DENSE, Projection("conv", 1, 1, 8, [1, 1], 1)]),
        lambda: _net(projections=[W_DENSE, Projection("conv", 1, 1, 8, [], 1)]),
        lambda: _net(projections=[W_DENSE, Projection("conv", 1, 1, 8, [1, 1, 1], [1] * 3)]),
    ],
    "weight-range": [
        lambda: _net(projections=[Projection("dense", 0, 1, 2, W * 2, 0)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 2, W * -3, 0)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 1, W, 0)]),  # 1 bit: -1 and 0
        lambda: _net(projections=[W_DENSE, Projection("conv", 1, 1, 3, [4, 0, 0], 1)]),
        lambda: _net(projections=[Projection("taps", 0, 1, 4, np.full((4, 3, 2), -9), 0)]),
    ],
    "delay-range": [
        lambda: _net(max_delay=-1, projections=[]),
        lambda: _net(max_delay=4097, projections=[]),
        lambda: _net(projections=[Projection("dense", 0, 1, 8, W, -1)]),
        lambda: _net(projections=[Projection("dense", 0, 1, 8, W, [0, 5, 0])]),
        lambda: _net(projections=[W_DENSE, Projection("dense", 1, 1, 8, np.ones((4, 4), int),
                                                      [1, 0, 1, 1])]),
        lambda: _net(projections=[W_DENSE, Projection("conv", 1, 1, 8, [1, 1, 1], 0)]),
        lambda: _net(projections=[W_DENSE, Projection("taps", 1, 1, 8, np.ones((4, 4, 3), int),
                                                      0)]),
        lambda: _net(max_delay=3, projections=[Projection("taps", 0, 1, 8,
                                                          np.ones((4, 3, 3), int), 2)]),
    ],
    "accumulator": [
        lambda: _net(layers=[InputLayer(3), lif(4, acc_bits=4)],
                     projections=[Projection("dense", 0, 1, 8, W * 3, 0)]),  # hi = 9 > 7
        lambda: _net(layers=[InputLayer(3), lif(4, acc_bits=4, bias=[-9, 0, 0, 0])],
                     projections=[]),
        lambda: _net(layers=[InputLayer(3, in_bits=4), lif(4, acc_bits=8)],
                     projections=[Projection("dense", 0, 1, 8, W * 3, 0)]),  # 3*3*15 = 135
    ],
}
W_DENSE = Projection("dense", 0, 1, 8, W, 0)


def test_every_rule_has_cases():
    names = {r.__name__.removeprefix("rule_").replace("_", "-") for r in RULES}
    assert names == set(RULE_CASES)


@pytest.mark.parametrize("rule,i", [(r, i) for r, cs in RULE_CASES.items()
                                    for i in range(len(cs))])
def test_rule_violation_refused(rule, i):
    with pytest.raises(IRError) as info:
        RULE_CASES[rule][i]()
    e = info.value
    assert e.rule == rule, str(e)
    assert e.where and e.where in str(e) and e.file is None


def test_check_direct_and_with_file():
    net = small("conv")
    assert check(net) is None
    assert all(list(rule(net)) == [] for rule in RULES)
    # break a checked net behind check's back, then call check() itself
    object.__setattr__(net.layers[1], "threshold", 1 << 20)
    with pytest.raises(IRError) as e:
        check(net, file="x.npz")
    assert (e.value.rule, e.value.where, e.value.file) == ("threshold", "hidden.threshold",
                                                           "x.npz")
    assert str(e.value).startswith("x.npz: threshold [hidden.threshold]: ")
    assert list(ir.rules.rule_threshold(net)) and not list(ir.rules.rule_leak(net))


def test_rule_boundaries_accepted():
    # exact fits are fine: weights at both ends of w_bits, threshold at v_max, beta = 2**shift
    _net(layers=[InputLayer(3), lif(4, v_bits=8, threshold=127, beta=4, beta_shift=2)],
         projections=[Projection("dense", 0, 1, 2, [[1, -2, 0]] * 4, 0)])
    _net(layers=[InputLayer(3), lif(4, v_bits=48, acc_bits=48, beta_shift=15)])
    _net(max_delay=4096, projections=[Projection("dense", 0, 1, 8, W, [0, 4096, 7])])
    _net(max_delay=3, projections=[Projection("taps", 0, 1, 8, np.ones((4, 3, 3), int), 1)])
    # accumulator exactly full: hi = 7 = 2**3 - 1, lo = -8
    _net(layers=[InputLayer(3), lif(4, acc_bits=4, bias=[1, 0, 0, -8])],
         projections=[Projection("dense", 0, 1, 8, [[2, 2, 2], [0] * 3, [0] * 3, [0] * 3], 0)])
    with pytest.raises(IRError, match="accumulator"):
        _net(layers=[InputLayer(3), lif(4, acc_bits=4, bias=[2, 0, 0, 0])],
             projections=[Projection("dense", 0, 1, 8, [[2, 2, 2], [0] * 3, [0] * 3,
                                                        [0] * 3], 0)])


def test_construction_errors():
    cases = [
        (lambda: InputLayer(3.0), "integer-field", "input.n"),
        (lambda: InputLayer(True), "integer-field", "input.n"),
        (lambda: InputLayer(3, name=""), "field-type", "input layer name"),
        (lambda: lif(4, v_bits="16"), "integer-field", "hidden.v_bits"),
        (lambda: lif(4, threshold=1.5), "integer-field", "hidden.threshold"),
        (lambda: lif(4, reset="soft"), "reset-mode", "hidden.reset"),
        (lambda: lif(4, forced=1), "integer-field", "hidden.forced"),
        (lambda: lif(4, bias=[0.5] * 4), "integer-dtype", "hidden.bias"),
        (lambda: lif(4, bias=[[0] * 4]), "shape", "hidden.bias"),
        (lambda: lif(4, name=3), "field-type", "LIF layer name"),
        (lambda: Projection("sparse", 0, 1, 8, W, 0), "projection-kind", "projection 0->1"),
        (lambda: Projection("dense", 0, 1, 8, W.astype(float), 0), "integer-dtype",
         "projection 0->1.weight"),
        (lambda: Projection("dense", 0, 1, 8, W, np.array([2**63], np.uint64)),
         "integer-range", "projection 0->1.delay"),
        (lambda: Projection("taps", 0, 1, 8, W, 0), "shape", "projection 0->1.weight"),
        (lambda: Projection("dense", 0, 1, 8, W, [[0]]), "shape", "projection 0->1.delay"),
        (lambda: Projection("dense", 0, 1, 8, [[2**70]], 0), "integer-dtype",
         "projection 0->1.weight"),
        (lambda: Network([InputLayer(3), lif(4)], [], 1.0), "integer-field",
         "network.max_delay"),
        (lambda: Network([InputLayer(3), lif(4)], [], 1, name=""), "field-type",
         "network.name"),
    ]
    for build, rule, where in cases:
        with pytest.raises(IRError) as e:
            build()
        assert (e.value.rule, e.value.where) == (rule, where), str(e.value)


# --------------------------------------------------------------------------------------------
# Worst-case current

def _brute_bounds(net, dst):
    """current_bounds by enumerating every synapse, straight from the contract."""
    post = net.layers[dst]
    lo, hi = [int(b) for b in post.bias], [int(b) for b in post.bias]
    for p in net.into(dst):
        pre = net.layers[p.src]
        xmax = pre.max_value if isinstance(pre, InputLayer) else 1
        for i in range(post.n):
            if p.kind == "conv":
                k = len(p.weight)
                ws = [p.weight[t] for t in range(k) if 0 <= i + t - (k - 1) // 2 < pre.n]
            else:
                ws = list(np.asarray(p.weight[i]).ravel())
            for w in map(int, ws):
                (hi if w > 0 else lo)[i] += xmax * w
    return lo, hi


def test_current_bounds_hand_computed():
    net = Network(
        [InputLayer(3, in_bits=2), lif(4, bias=[1, -2, 0, 5])],
        [Projection("dense", 0, 1, 8, [[1, -2, 3], [0, 0, 0], [-4, 5, -6], [7, 7, -7]], 0),
         Projection("conv", 1, 1, 8, [2, -1, 3], 1)], max_delay=1)
    # x in [0, 3]. dense rows, times 3: (+12, -6), (0, 0), (+15, -30), (+42, -21).
    # conv post i hears i-1 (w=2), i (w=-1), i+1 (w=3): neuron 0 has no i-1, neuron 3 no i+1.
    lo, hi = current_bounds(net, 1)
    assert lo.tolist() == [1 - 6 - 1, -2 - 0 - 1, 0 - 30 - 1, 5 - 21 - 1]
    assert hi.tolist() == [1 + 12 + 3, -2 + 0 + 5, 0 + 15 + 5, 5 + 42 + 2]
    assert lo.dtype == hi.dtype == np.int64


def test_current_bounds_conv_kernel_longer_than_layer():
    net = Network([InputLayer(2), lif(2)],
                  [Projection("conv", 0, 1, 8, [1, 2, 4, 8, 16, 32, 64], 0)], max_delay=0)
    # post 0 hears pre 0 (k=3) and 1 (k=4); post 1 hears pre 0 (k=2) and 1 (k=3)
    lo, hi = current_bounds(net, 1)
    assert hi.tolist() == [8 + 16, 4 + 8] and lo.tolist() == [0, 0]


def test_current_bounds_taps_and_several_layers():
    net = example_net()
    assert [x.tolist() for x in current_bounds(net, 1)] == [[-5, -2, -4], [4, 8, 5]]
    assert [x.tolist() for x in current_bounds(net, 2)] == [[-1, -1], [2, 2]]
    net = Network([InputLayer(2, in_bits=3), lif(2)],
                  [Projection("taps", 0, 1, 8, [[[1, -2], [3, 0]], [[-1, -1], [0, 4]]], 0)],
                  max_delay=1)
    assert [x.tolist() for x in current_bounds(net, 1)] == [[-14, -14], [28, 28]]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_current_bounds_match_brute_force(name):
    net = VARIANTS[name]
    for dst in range(1, len(net.layers)):
        lo, hi = current_bounds(net, dst)
        assert (lo.tolist(), hi.tolist()) == _brute_bounds(net, dst)


def test_current_bounds_cannot_wrap():
    """Sums beyond int64 are computed exactly and saturate at +-2**62, so the rule still fires."""
    big = (1 << 47) - 1
    with pytest.raises(IRError) as e:
        Network([InputLayer(40000, in_bits=16), lif(1, v_bits=48, acc_bits=48)],
                [Projection("dense", 0, 1, 48, np.full((1, 40000), big), 0)], max_delay=0)
    assert e.value.rule == "accumulator"
    # partial sums that int64 might not hold (scale >= 2**62) but a true bound that fits
    w = np.zeros((1, 40000), np.int64)
    w[0, :2] = [1 << 31, -(1 << 31)]
    net = Network([InputLayer(40000, in_bits=16), lif(1, v_bits=48, acc_bits=48)],
                  [Projection("dense", 0, 1, 33, w, 0)], max_delay=0)
    lo, hi = current_bounds(net, 1)
    assert (lo.tolist(), hi.tolist()) == ([-(1 << 31) * 65535], [(1 << 31) * 65535])
    assert lo.dtype == hi.dtype == np.int64


# --------------------------------------------------------------------------------------------
# Small API

def test_properties():
    net = VARIANTS["conv"]
    dense, conv = net.projections[0], net.projections[1]
    assert not dense.recurrent and conv.recurrent and conv.n_taps == 1
    assert dense.delays_of_pre(5).tolist() == dense.delay.tolist()
    assert (dense.min_delay, dense.max_delay) == (int(dense.delay.min()), int(dense.delay.max()))
    taps = VARIANTS["taps"].projections[0]
    assert taps.n_taps == 6 and (taps.min_delay, taps.max_delay) == (1, 6)
    assert taps.delays_of_pre(8).tolist() == [1] * 8
    empty = VARIANTS["forced-empty-input"]
    assert empty.projections[0].max_delay == 0 and empty.forced_layers == [1]
    assert net.input is net.layers[0] and net.input.max_value == 15
    assert net.into(1) == [net.projections[0], net.projections[1]]
    assert net.into(2) == [net.projections[2], net.projections[3]]
    assert net.forced_layers == []
    ro = VARIANTS["readout"].layers[2]
    assert not ro.spiking and net.layers[1].spiking
    assert (ro.v_min, ro.v_max) == (-(1 << 23), (1 << 23) - 1)
    for a in (dense.weight, dense.delay, net.layers[1].bias):
        assert a.dtype == np.int64 and not a.flags.writeable
    assert net.digest == digest(net) and net.digest.startswith("sha256:")


def test_irerror_api():
    e = IRError("too big", rule="weight-range", where="projection 0->1.weight")
    assert (e.message, e.rule, e.where, e.file) == ("too big", "weight-range",
                                                     "projection 0->1.weight", None)
    assert str(e) == "weight-range [projection 0->1.weight]: too big"
    f = e.in_file("a.npz")
    assert f.file == "a.npz" and str(f) == "a.npz: weight-range [projection 0->1.weight]: too big"
    g = pickle.loads(pickle.dumps(f))
    assert (g.message, g.rule, g.where, g.file, str(g)) == (f.message, f.rule, f.where, f.file,
                                                            str(f))
    assert str(IRError("m")) == "format: m"


# --------------------------------------------------------------------------------------------
# docs/ir.md

def _code_blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_doc_lines_fit_100_columns():
    long = [i for i, l in enumerate(DOC.read_text().splitlines(), 1) if len(l) > 100]
    assert not long, f"lines over 100 columns: {long}"


def test_doc_reader_snippet(tmp_path):
    [reader] = [b for b in _code_blocks("python") if "def read_ir" in b]
    assert len(reader.strip().splitlines()) <= 20
    assert re.findall(r"^(?:import|from) (\w+)", reader, flags=re.M) == ["json", "numpy"]
    scope = {}
    exec(compile(reader, "docs/ir.md:read_ir", "exec"), scope)
    for name, net in VARIANTS.items():
        p = save(net, tmp_path / f"{name}.npz")
        header, arrays = scope["read_ir"](p)
        assert header["digest"] == net.digest and header["name"] == net.name
        for k, (ph, proj) in enumerate(zip(header["projections"], net.projections)):
            assert np.array_equal(arrays[ph["weight"]], proj.weight)
            assert np.array_equal(arrays[ph["delay"]], proj.delay)
            assert arrays[ph["weight"]].dtype == np.int64
    bad = write_raw(tmp_path / "bad.npz", {"format": "other", "version": 1}, {}, resign=False)
    with pytest.raises(ValueError):
        scope["read_ir"](bad)


def test_doc_digest_snippet(tmp_path):
    [code] = [b for b in _code_blocks("python") if "def ir_digest" in b]
    assert set(re.findall(r"^import (.*)$", code, flags=re.M)) == {"hashlib, json",
                                                                   "numpy as np"}
    scope = {}
    exec(compile(code, "docs/ir.md:ir_digest", "exec"), scope)
    for name, net in VARIANTS.items():
        p = save(net, tmp_path / f"{name}.npz")
        header, arrays = read_raw(p)
        assert scope["ir_digest"](header, arrays) == header["digest"] == net.digest
        assert indep_digest(header, arrays) == net.digest


def test_doc_example_header():
    [example] = _code_blocks("json")
    doc_header = json.loads(example)
    net = example_net()
    assert doc_header == {**header_of(net), "digest": net.digest}
    assert doc_header["digest"] == indep_digest(doc_header, arrays_of(net))
    # the arrays table of the doc lists what the example saves
    text = DOC.read_text()
    for name, a in arrays_of(net).items():
        assert f"| `{name}` | int8 | `{a.tolist()}`" in text, name


def test_doc_names_every_rule_and_field():
    text = DOC.read_text()
    for rule in RULES:
        assert f"`{rule.__name__.removeprefix('rule_').replace('_', '-')}`" in text
    for spec in (fileformat._TOP_FIELDS, fileformat._INPUT_FIELDS, fileformat._LIF_FIELDS,
                 fileformat._PROJ_FIELDS):
        for field in spec:
            assert f"- `{field}`," in text, field
    for rule in ("file", "format", "version", "missing-field", "unknown-field", "field-type",
                 "integer-dtype", "integer-range", "digest", "shape", "reset-mode",
                 "projection-kind", "integer-field"):
        assert f"`{rule}`" in text, rule

