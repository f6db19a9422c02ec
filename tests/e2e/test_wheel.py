"""Installed like a Python package: the wheel, built from this checkout, installed into a fresh
venv outside it (without torch), runs the tool from a directory that is not the checkout."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from model.ir import InputLayer, LIFLayer, Network, Projection, save
from tests import ROOT


def _run(*args, cwd, timeout=900):
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_wheel_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    out = _run(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "--no-build-isolation",
               "-w", dist, "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    [wheel] = dist.glob("polychrony-*.whl")
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    out = _run(venv / "bin/python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path,
               timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    exe = venv / "bin/polychrony"

    def cli(*args):
        return _run(exe, *args, cwd=work)

    assert cli("--version").stdout.startswith("polychrony 0.1.0")
    # the package is the installed one, not this checkout
    where = _run(venv / "bin/python", "-c", "import model, rtl; print(model.__file__)",
                 cwd=work).stdout
    assert str(venv) in where and str(ROOT) not in where
    net = Network(layers=[InputLayer(n=3),
                          LIFLayer(n=4, v_bits=8, acc_bits=8, beta=3, beta_shift=2,
                                   threshold=4, name="h")],
                  projections=[Projection("dense", 0, 1, 4,
                                          np.array([[1, 2, 3], [3, -2, 1], [0, 5, 1],
                                                    [2, 2, 2]]), np.array([0, 1, 2]))],
                  max_delay=2, name="tiny")
    save(net, work / "tiny.npz")
    np.save(work / "x.npy", (np.random.default_rng(0).random((2, 20, 3)) < 0.4)
            .astype(np.int64))
    out = cli("check", "tiny.npz")
    assert out.returncode == 0 and "valid polychrony IR" in out.stdout, out.stderr
    out = cli("data", "info", "default")        # the embedded data set is package data
    assert out.returncode == 0 and "3000" in out.stdout, out.stderr
    out = cli("generate", "tiny.npz", "-o", "v")
    assert out.returncode == 0 and (work / "v/polychrony_core.v").exists(), out.stderr
    out = cli("cosim", "tiny.npz", "--sim", "icarus", "--sim", "verilator", "--steps", "30",
              "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    assert all(res[s]["mismatches"] == 0 and res[s]["steps"] == 30
               for s in ("icarus", "verilator"))
    out = cli("run", "tiny.npz", "--simulate", "--inputs", "x.npy", "--check", "--json")
    assert out.returncode == 0, out.stderr[-2000:]   # the simulated board's C++ is package data
    assert all(r["match"] for r in json.loads(out.stdout)["samples"])
    out = cli("train", "wm", "-o", "w.npz")         # torch is an extra: one clear line
    assert out.returncode == 2 and "pip install 'polychrony[train]'" in out.stderr
    assert "Traceback" not in out.stderr
