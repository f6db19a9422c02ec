"""The IR file (model/ir/fileformat.py): round trips, determinism, and every malformed file refused
with its rule, place and file named."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from model.ir import InputLayer, IRError, Network, Projection, digest, load, save
from .helpers import VARIANTS, indep_digest, lif, read_raw, refused, small, write_raw


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


def test_a_header_that_inflates_to_gigabytes_is_refused_unread(tmp_path):
    """A few kB of deflated header that would inflate past the JSON limit: refused from the
    zip directory's declared size, before anything is inflated."""
    import io
    import zipfile

    from model.ir import IRError, load
    from model.ir.archive import MAX_JSON_BYTES
    size = MAX_JSON_BYTES * 3
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "|u1", "fortran_order": False,
                                               "shape": (size,)})
    path = tmp_path / "bomb.npz"
    info = zipfile.ZipInfo("header.npy")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as z, z.open(info, "w") as f:
        f.write(hdr.getvalue())
        for _ in range(size >> 20):
            f.write(b" " * (1 << 20))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(IRError, match="inflates to .* more than the 16,777,216") as e:
        load(path)
    assert e.value.rule == "file" and e.value.where == "header"
