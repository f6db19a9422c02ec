"""The fit verdict: an estimate plus the host link against one board's device."""

import json
import subprocess
import sys

import numpy as np
import pytest

from boards.catalog import board
from boards.fit import MARGIN, Fit, Need, board_fit, link_cost
from model.ir import save
from rtl.cost import activity, estimate
from rtl.devices import DEVICES
from sim.randnet import random_stimulus
from sim.reference import simulate


@pytest.mark.parametrize("used, verdict", [
    (0, "fits"), (90, "fits"), (91, "tight"), (100, "tight"), (101, "does not fit")])
def test_need_verdict_at_the_margin(used, verdict):
    """Logic near the device's LUT count is tight; hard blocks fit until all are used."""
    assert MARGIN == 0.10
    assert Need("lut", used, 100).verdict == verdict
    assert Need("bram", used, 100).verdict == ("does not fit" if used > 100 else "fits")


def test_fit_is_the_worst_resource_and_names_what_fails():
    dev = DEVICES["iCE40UP5K"]
    fit = Fit(dev, (Need("lut", 5000, 5280), Need("bram", 452, 30), Need("dsp", 2, 8)))
    assert fit.verdict == "does not fit" and not fit.fits
    assert [n.resource for n in fit.failing] == ["bram"]
    assert fit.line() == ("does not fit the iCE40UP5K: block RAM needs 452 of 30 "
                          "(422 over, 15.1x the device)")
    tight = Fit(dev, (Need("lut", 5000, 5280), Need("bram", 30, 30)))
    assert tight.verdict == "tight" and tight.fits
    assert tight.line().startswith("fits the iCE40UP5K with less than 10% margin: "
                                   "logic (LUT4) 5,000 of 5,280 (95%)")
    easy = Fit(dev, (Need("lut", 100, 5280), Need("bram", 15, 30)))
    assert easy.verdict == "fits" and easy.line() == "fits the iCE40UP5K (fullest: block RAM, 50%)"
    assert easy.to_json() == {"device": "iCE40UP5K", "verdict": "fits", "resources": {
        "lut": {"used": 100, "available": 5280, "verdict": "fits"},
        "bram": {"used": 15, "available": 30, "verdict": "fits"}}}


def _estimate(net, lanes, device, **kw):
    x, forced = random_stimulus(net, 5, 0)
    act = activity(net, simulate(net, x, forced, steps=5), x, forced)
    return estimate(net, act, device=device, clock_mhz=12, lanes=lanes, **kw)


def test_board_fit_adds_the_host_link_and_reads_the_boards_own_device(shaped):
    """The same core is judged against each board's device: the ULX3S-12F with the 12F's
    block RAM, the 85F with its own; the host link adds its logic and its frame buffer."""
    net = shaped.shd_network("dense", w_bits=8)
    small, big = board("ulx3s-12f"), board("ulx3s-85f")
    est = _estimate(net, 8, big.fpga)
    fit = board_fit(est, big)
    needs = {n.resource: n for n in fit.needs}
    assert needs["lut"].used == est.lut + link_cost("ecp5", 8)["lut"]
    assert link_cost("ecp5", 8)["lut"] > link_cost("ecp5", 1)["lut"]
    assert needs["bram"].used == sum(est.blocks.values()) + 1
    assert needs["bram"].available == 208 and fit.fits
    core_only = {n.resource: n.used for n in board_fit(est, big, link=False).needs}
    assert core_only["bram"] == sum(est.blocks.values()) and core_only["lut"] == est.lut
    small_fit = board_fit(_estimate(net, 8, small.fpga), small)
    assert not small_fit.fits and small_fit.failing[0].resource == "bram"
    assert small_fit.failing[0].available == 32
    assert "does not fit the ECP5-12F: block RAM needs" in small_fit.line()


def test_spram_on_a_device_without_it_does_not_fit(shaped):
    net = shaped.shd_network("conv", w_bits=4)
    est = _estimate(net, 4, "iCE40UP5K", memories={"proj0.weights": "spram"})
    assert sum(est.spram.values()) > 0
    fit = board_fit(est, board("ulx3s-85f"))
    assert [n.resource for n in fit.failing] == ["spram"] and fit.failing[0].available == 0


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "polychrony_cli", *args], capture_output=True,
                          text=True)


def test_estimate_prints_the_verdict_and_require_fit_exits_non_zero(tmp_path, shaped):
    path = tmp_path / "conv.npz"
    save(shaped.shd_network("conv", w_bits=4), path)
    big = _cli("estimate", str(path), "--board", "icebreaker", "--core", "network", "--lanes",
               "256", "--steps", "5", "--require-fit")
    assert big.returncode == 3, big.stderr
    assert "does not fit the iCE40UP5K: logic (LUT4) needs" in big.stdout
    err = big.stderr.strip().splitlines()
    assert len(err) == 1 and "does not fit the iCE40UP5K" in err[0] and "Traceback" not in big.stderr
    # Without --require-fit the verdict is printed and the exit is 0; --json carries it.
    js = _cli("estimate", str(path), "--core", "network", "--lanes", "256", "--steps", "5",
              "--json")
    assert js.returncode == 0, js.stderr
    fit = json.loads(js.stdout)["fit"]
    assert fit["device"] == "iCE40UP5K" and fit["verdict"] == "does not fit"
    assert fit["resources"]["bram"]["verdict"] == "does not fit"
    ok = _cli("estimate", str(path), "--board", "ulx3s-85f", "--core", "network", "--lanes", "4",
              "--steps", "5", "--require-fit", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["fit"]["verdict"] == "fits"
    assert np.isfinite(json.loads(ok.stdout)["samples_per_s"])


def test_build_refuses_a_design_that_does_not_fit_before_synthesis(tmp_path, shaped):
    path = tmp_path / "conv.npz"
    save(shaped.shd_network("conv", w_bits=4), path)
    out = _cli("build", str(path), "--board", "icebreaker", "--core", "network", "--lanes",
               "256", "--steps", "5", "-o", str(tmp_path / "b"))
    assert out.returncode == 3 and "Traceback" not in out.stderr
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "fits nowhere on the icebreaker (iCE40UP5K)" in err[0]
    assert "needs logic (LUT4)" in err[0] and "of 5,280 (" in err[0] and " over)" in err[0]
    assert "nothing was built" in err[0] and "--force" in err[0]
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").rglob("*.bin"))
