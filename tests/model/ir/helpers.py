"""Networks and independent file readers that the IR tests share (written from docs/ir.md,
not from model.ir's private helpers)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from model.ir import InputLayer, IRError, LIFLayer, Network, Projection, load
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


def variants():
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


VARIANTS = variants()


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
