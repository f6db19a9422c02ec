"""A NIR graph with Delay nodes, written with the ``nir`` package as another tool would, goes
through ``polychrony import`` -> ``cosim`` on Icarus and Verilator (bit-exact with the
reference at every step) -> ``build`` (a routed, timing-met bitstream)."""

from __future__ import annotations

import json
import subprocess
import sys

import nir
import numpy as np
import pytest

from model.ir import load
from model.nir import DT


def _cli(*args, timeout=1800):
    return subprocess.run([sys.executable, "-m", "polychrony_cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def delayed_graph(seed: int = 0) -> "nir.NIRGraph":
    """8 inputs -> Delay (0..3 steps per input) -> Affine -> 12 LIF with a recurrence through
    a Delay (2 more steps per neuron, different ones) -> Linear -> 3 LI read-outs."""
    rng = np.random.default_rng(seed)
    n0, n1, n2 = 8, 12, 3
    tau = np.full(n1, 4e-4)
    nodes = {
        "in": nir.Input(input_type={"input": np.array([n0])}),
        "d_in": nir.Delay(delay=rng.integers(0, 4, n0) * DT),
        "w_in": nir.Affine(weight=rng.normal(0, 1.0, (n1, n0)), bias=rng.normal(0, 0.1, n1)),
        "hid": nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(n1), v_threshold=np.full(n1, 1.0),
                       v_reset=np.zeros(n1)),
        "d_rec": nir.Delay(delay=rng.integers(0, 3, n1) * DT),
        "w_rec": nir.Linear(weight=rng.normal(0, 0.4, (n1, n1))),
        "w_out": nir.Linear(weight=rng.normal(0, 1.0, (n2, n1))),
        "out": nir.LI(tau=np.full(n2, 1e-3), r=np.full(n2, 10.0), v_leak=np.zeros(n2)),
        "o": nir.Output(output_type={"output": np.array([n2])}),
    }
    edges = [("in", "d_in"), ("d_in", "w_in"), ("w_in", "hid"), ("hid", "d_rec"),
             ("d_rec", "w_rec"), ("w_rec", "hid"), ("hid", "w_out"), ("w_out", "out"),
             ("out", "o")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.slow
def test_nir_graph_with_delays_to_cosim_and_bitstream(tmp_path):
    nir.write(tmp_path / "net.nir", delayed_graph())
    x = (np.random.default_rng(1).random((2, 40, 8)) < 0.3).astype(np.int64)
    np.save(tmp_path / "cal.npy", x)
    out = _cli("import", tmp_path / "net.nir", "-o", tmp_path / "net.npz", "--w-bits", "6",
               "--calibration", tmp_path / "cal.npy", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["mode"] == "quantised"
    net = load(tmp_path / "net.npz")
    ff, rec, _ = net.projections
    assert ff.delay.shape == (8,) and ff.delay.max() > 0      # the input Delay node
    assert rec.recurrent and rec.delay.shape == (12,) and rec.delay.min() >= 1
    # co-simulation on the saved workload (the calibration inputs), both simulators
    out = _cli("cosim", tmp_path / "net.npz", "--sim", "icarus", "--sim", "verilator",
               "--work", tmp_path / "cosim", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout)
    assert sorted(res) == ["icarus", "verilator"]
    for sim, runs in res.items():
        assert len(runs) == 2
        for r in runs:  # the cosim compares every step and counts the divergences
            assert r["steps"] == 40 and r["mismatches"] == 0 and r["ok"], (sim, r)
    # and a bitstream for the iCEBreaker, chosen with no knobs
    out = _cli("build", tmp_path / "net.npz", "--board", "icebreaker", "-o", tmp_path / "b",
               "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    assert r["timing_met"] and r["fmax_mhz"] >= r["clock_mhz"]
    assert (tmp_path / "b").exists()
