"""The command line: errors are one clear line and a non-zero exit, never a traceback."""

import json
import subprocess
import sys

import numpy as np
import pytest

from model.ir import InputLayer, LIFLayer, Network, Projection, save
from model.ir.canonical import content_digest


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "polychrony_cli", *args], capture_output=True,
                          text=True, cwd=cwd)


def _net(n=4, d=2):
    rng = np.random.default_rng(0)
    return Network(layers=[InputLayer(n=0), LIFLayer(n=n, v_bits=10, acc_bits=10, beta=3,
                                                     beta_shift=2, threshold=16, forced=True,
                                                     name="pop")],
                   projections=[Projection("taps", 1, 1, 6, rng.integers(-4, 12, (n, n, d)),
                                           np.array(1))], max_delay=d)


def _rewrite(src, dst, **changes):
    """Copy an IR file, replacing archive entries (header dict or arrays)."""
    with np.load(src) as z:
        entries = {k: z[k] for k in z.files}
    header = json.loads(bytes(entries["header"]).decode())
    if "header" in changes:
        header = changes.pop("header")(header)
    entries["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    entries.update(changes)
    arrays = {k: v for k, v in entries.items() if k != "header"}
    if all(a.dtype.kind in "iu" for a in arrays.values()):
        # Re-seal, so that the file fails on the rule under test and not on its digest.
        header["digest"] = content_digest(header, arrays)
    entries["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(dst, **entries)
    return dst


@pytest.fixture
def good(tmp_path):
    return save(_net(), tmp_path / "good.npz")


def test_check_accepts_a_valid_file(good):
    out = _run("check", str(good))
    assert out.returncode == 0, out.stderr
    assert "valid polychrony IR" in out.stdout


def _drop_v_bits(h):
    del h["layers"][1]["v_bits"]
    return h


def _version(h):
    h["version"] = 99
    return h


@pytest.mark.parametrize("case, expect", [
    ("missing", ["v_bits", "missing-field"]),
    ("float", ["proj0.weight", "integer-dtype"]),
    ("version", ["version", "99"]),
    ("object", ["proj0.weight", "integer-dtype"]),
    ("range", ["weight", "w_bits"]),
    ("delay", ["max_delay", "delay"]),
    ("overflow", ["acc_bits", "overflow"]),
])
def test_malformed_ir_is_refused_by_every_command(tmp_path, good, case, expect):
    bad = tmp_path / f"{case}.npz"
    w = np.load(good)["proj0.weight"]
    if case == "missing":
        _rewrite(good, bad, header=_drop_v_bits)
    elif case == "float":
        _rewrite(good, bad, **{"proj0.weight": w.astype(np.float32)})
    elif case == "version":
        _rewrite(good, bad, header=_version)
    elif case == "object":
        with np.load(good) as z:
            entries = {k: z[k] for k in z.files}
        entries["proj0.weight"] = np.array([{"x": 1}], dtype=object)
        np.savez(bad, allow_pickle=True, **entries)
    elif case == "range":
        _rewrite(good, bad, **{"proj0.weight": np.full(w.shape, 100, np.int64)})
    elif case == "delay":
        _rewrite(good, bad, **{"proj0.delay": np.array(5)})
    elif case == "overflow":
        def shrink(h):
            h["layers"][1]["acc_bits"] = 4
            return h
        _rewrite(good, bad, header=shrink)
    for cmd in (["check"], ["generate", "-o", str(tmp_path / "v")], ["cosim", "--steps", "2"],
                ["build"]):
        out = _run(cmd[0], str(bad), *cmd[1:])
        assert out.returncode != 0
        assert "Traceback" not in out.stderr, out.stderr
        assert str(bad) in out.stderr
        for word in expect:
            assert word in out.stderr, (word, out.stderr)


def test_unsupported_knob_is_a_clean_error(tmp_path, good):
    out = _run("generate", str(good), "-o", str(tmp_path / "v"), "--lanes", "0")
    assert out.returncode == 2
    assert "lanes" in out.stderr and "Traceback" not in out.stderr


def test_generate_and_cosim_a_feed_forward_network(tmp_path):
    rng = np.random.default_rng(3)
    net = Network(layers=[InputLayer(n=3, in_bits=2),
                          LIFLayer(n=4, v_bits=10, acc_bits=10, beta=1, beta_shift=1,
                                   threshold=5, name="a")],
                  projections=[Projection("dense", 0, 1, 4, rng.integers(-3, 8, (4, 3)),
                                          np.array([0, 1, 2]))],
                  max_delay=2)
    path = save(net, tmp_path / "ff.npz")
    out = _run("cosim", str(path), "--lanes", "2", "--steps", "30", "--json",
               "--work", str(tmp_path / "w"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["icarus"]["mismatches"] == 0


def test_cosim_command_json(tmp_path, good):
    out = _run("cosim", str(good), "--sim", "icarus", "--steps", "20", "--seed", "3", "--json",
               "--work", str(tmp_path / "w"))
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)["icarus"]
    assert res["steps"] == 20 and res["mismatches"] == 0 and res["ok"]


def test_bad_arguments_are_refused(good):
    out = _run("cosim", str(good), "--stall", "1.5")
    assert out.returncode == 2 and "--stall" in out.stderr
    out = _run("cosim", str(good), "--steps", "0")
    assert out.returncode == 2 and "--steps" in out.stderr


def test_train_wm_defaults_are_the_demo_defaults():
    """The flags default to model.wm.run.DEFAULTS at run time; the help text must say the same."""
    from polychrony_cli import build_parser
    from model.wm.run import DEFAULTS
    parser = build_parser()
    args = parser.parse_args(["train", "wm"])
    assert all(getattr(args, k) is None for k in ("n", "d", "m", "t", "p", "w_bits", "pre"))
    sub = next(a for a in parser._actions if a.dest == "cmd").choices["train"]
    wm = next(a for a in sub._actions if a.dest == "what").choices["wm"]
    helps = {a.dest: a.help for a in wm._actions}
    for key in ("n", "d", "m", "t", "p", "w_bits", "pre"):
        assert helps[key].startswith(f"(default {DEFAULTS[key]},"), key


def test_train_wm_writes_a_checked_ir(tmp_path):
    out = _run("train", "wm", "-o", str(tmp_path / "wm.npz"), "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["f1_float"] == 1.0 and s["f1_int"] == 1.0
    from model.wm.run import DEFAULTS
    assert {k: s["settings"][k] for k in DEFAULTS} == DEFAULTS
    assert s["workload"] == str(tmp_path / "wm.workload.npz")
    chk = _run("check", str(tmp_path / "wm.npz"))
    assert chk.returncode == 0
    assert f"cued recall of {DEFAULTS['m']} stored patterns" in chk.stdout
    # A workload that does not belong to the IR is one clear line naming both.
    _run("train", "wm", "-o", str(tmp_path / "other.npz"), "--seed", "1")
    (tmp_path / "wm.workload.npz").write_bytes((tmp_path / "other.workload.npz").read_bytes())
    bad = _run("check", str(tmp_path / "wm.npz"))
    assert bad.returncode == 2 and "wm.workload.npz" in bad.stderr and "made for IR" in bad.stderr


def test_memory_option(tmp_path, good):
    """--memory puts a weight array in SPRAM: estimate reports it, generate writes the load
    image; a bad name, kind or spec is one clear error line."""
    out = _run("estimate", str(good), "--memory", "proj0.weights=spram", "--json", "--lanes",
               "1")
    assert out.returncode == 0, out.stderr
    est = json.loads(out.stdout)
    assert est["memory_kinds"]["proj0.weights"] == "spram" and est["spram_total"] == 1
    assert est["blocks"]["proj0.weights"] == 0
    out = _run("generate", str(good), "-o", str(tmp_path / "v"), "--memory",
               "proj0.weights=spram", "--spram-cells")
    assert out.returncode == 0, out.stderr
    assert "on wl after reset" in out.stdout
    assert (tmp_path / "v" / "polychrony_core_load.hex").exists()
    assert "SB_SPRAM256KA" in (tmp_path / "v" / "polychrony_core.v").read_text()
    for spec, match in (("proj0.weights", "NAME=KIND"), ("proj7.weights=block", "proj7"),
                        ("proj0.weights=bram", "kind must be one of")):
        out = _run("estimate", str(good), "--memory", spec)
        assert out.returncode == 2 and match in out.stderr and "Traceback" not in out.stderr
    out = _run("estimate", str(good), "--board", "ulx3s-85f", "--memory",
               "proj0.weights=spram")
    assert out.returncode == 2 and "only on iCE40" in out.stderr
