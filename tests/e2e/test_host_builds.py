"""Real bitstreams of a trained network through `polychrony build`, and the trained
audio networks on the simulated board."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model.ir import save
from tests import ROOT


def _cli(*args, timeout=1200):
    return subprocess.run([sys.executable, "-m", "polychrony_cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------------------------
# A real ECP5 bitstream of a trained network (the demo builds the iCE40 one).

@pytest.mark.slow
def test_build_trained_network_for_ecp5(tmp_path):
    from model.wm.run import run_wm
    net = run_wm(seed=1)["net"]
    path = save(net, tmp_path / "wm.npz")
    out = _cli("build", path, "--board", "ulx3s-85f", "-o", tmp_path / "build", "--json",
               "--markdown", tmp_path / "report.md")
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    assert Path(r["bitstream"]).stat().st_size > 100_000
    assert r["board"] == "ulx3s-85f" and r["timing_met"] and r["fmax_mhz"] >= r["clock_mhz"]
    assert r["nextpnr"]["logic"]["used"] > 0 and r["estimate"]["lut"] > 0
    assert r["cycles_per_step"] > 0
    assert r["steps_per_s"] == pytest.approx(r["clock_mhz"] * 1e6 / r["cycles_per_step"],
                                             rel=1e-3)
    md = (tmp_path / "report.md").read_text()
    assert md.count("\n") == 3 and f"| wm | ulx3s-85f | {r['lanes']} |" in md
    # No knobs: the tool chose the configuration, the first of its ranking, at its clock.
    first = r["choice"]["ranked"][0]
    assert (r["core"], r["lanes"]) == (first["core"], first["lanes"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["convdelrec_k31", "delrec"])
def test_trained_audio_network_on_the_simulated_board(tmp_path, name):
    """The trained audio networks (bench/networks: ConvDelRec and DelRec) through the host
    link: the board's predictions and spikes equal the reference's on whole test samples."""
    net = ROOT / f"bench/networks/{name}.npz"
    out = _cli("data", "frames", "default-test", "-o", tmp_path / "x.npy", "--count", "2",
               "--window", "136")
    assert out.returncode == 0, out.stderr[-2000:]
    out = _cli("run", net, "--simulate", "--inputs", tmp_path / "x.npy", "--check", "--json",
               "--lanes", "8", "--work", tmp_path / "sim", "--timeout", "30")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)["samples"]
    assert len(rows) == 2 and all(r["match"] and r["steps"] == 136 for r in rows)
    assert all(r["prediction"] == r["reference_prediction"] for r in rows)
