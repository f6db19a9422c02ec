"""The host-link top on every board (elaboration), real bitstreams of a trained network through
`polychrony build`, and `polychrony run` against the simulated board."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from boards.catalog import BOARDS
from boards.top import board_platform, host_top
from model.ir import InputLayer, LIFLayer, Network, Projection, save
from sim.reference import simulate


def tiny_net() -> Network:
    w = np.random.default_rng(2).integers(-10, 14, (8, 8, 3))
    return Network(layers=[InputLayer(n=0),
                           LIFLayer(n=8, v_bits=10, acc_bits=10, beta=3, beta_shift=2,
                                    threshold=30, forced=True, name="pop")],
                   projections=[Projection("taps", 1, 1, 6, w, np.array(1))], max_delay=3,
                   name="wm8")


def _cli(*args, timeout=1200):
    return subprocess.run([sys.executable, "-m", "polychrony_cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_host_link_top_elaborates_on_every_board(name):
    top = host_top(tiny_net(), name, lanes=2)
    assert top.inner.divisor == round(top.achieved_clock_hz / top.board.uart_baud)
    plan = board_platform(name).prepare(top, name="top")
    files = dict(plan.files)
    assert "top.il" in files
    constraints = files.get("top.pcf") or files.get("top.lpf")
    assert constraints and "uart" in constraints


def test_icebreaker_spram_top_loads_weights_from_flash():
    """SPRAM weights: the host-link top gets a flash loader and requests the flash pins."""
    top = host_top(tiny_net(), "icebreaker", memories={"proj0.weights": "spram"})
    assert top.inner.loader is not None and top.inner.core.load_width > 0
    files = dict(board_platform("icebreaker").prepare(top, name="top").files)
    assert "spi_flash" in files["top.pcf"]


def test_host_link_refuses_impossible_baud():
    with pytest.raises(ValueError, match="baud"):
        host_top(tiny_net(), "icebreaker", clock_hz=12e6, baud=4_000_000)


# --------------------------------------------------------------------------------------------
# `polychrony run` against the simulated board.

@pytest.fixture(scope="module")
def wm_ir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    path = save(tiny_net(), d / "net.npz")
    rng = np.random.default_rng(0)
    cue = (rng.random((2, 30, 8)) < 0.3).astype(np.uint8)
    cue[:, 6:] = 0
    np.save(d / "cue.npy", cue)
    return d, path, cue


def test_run_simulated_board_matches_reference(wm_ir):
    d, path, cue = wm_ir
    out = _cli("run", path, "--simulate", "--forced", d / "cue.npy", "--check", "--membranes",
               "--json", "--work", d / "sim")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)
    assert len(rows) == 2 and all(r["match"] for r in rows)
    for r, f in zip(rows, cue):
        ref = simulate(tiny_net(), None, {1: f}, steps=30)
        assert r["spikes"] == {"1": int(ref.spikes[1].sum())} and r["steps"] == 30


@pytest.mark.parametrize("args, message", [
    ([], "exactly one of --port"),
    (["--simulate", "--port", "/dev/null"], "exactly one of --port"),
    (["--simulate"], "forced layer: give --forced"),
    (["--simulate", "--forced", "{cue}", "--prediction-only"], "needs a network whose last"),
])
def test_run_argument_errors(wm_ir, args, message):
    d, path, _ = wm_ir
    out = _cli("run", path, *[a.format(cue=d / "cue.npy") for a in args])
    assert out.returncode == 2 and message in out.stderr


def test_run_rejects_bad_forced_file(wm_ir, tmp_path):
    _, path, _ = wm_ir
    np.save(tmp_path / "bad.npy", np.zeros((2, 30, 5), np.uint8))
    out = _cli("run", path, "--simulate", "--forced", tmp_path / "bad.npy")
    assert out.returncode == 2 and "bad.npy" in out.stderr and "n=8" in out.stderr
    np.save(tmp_path / "two.npy", np.full((30, 8), 2, np.uint8))
    out = _cli("run", path, "--simulate", "--forced", tmp_path / "two.npy")
    assert out.returncode == 2 and "0 or 1" in out.stderr


def test_run_missing_port_is_a_clear_error(wm_ir):
    d, path, _ = wm_ir
    out = _cli("run", path, "--port", "/dev/polychrony-no-such-port", "--forced", d / "cue.npy")
    assert out.returncode == 2 and "cannot open serial port" in out.stderr


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
    assert md.count("\n") == 3 and "| wm | ulx3s-85f | 1 |" in md


@pytest.mark.slow
@pytest.mark.parametrize("name", ["convdelrec_k31", "delrec"])
def test_trained_audio_network_on_the_simulated_board(tmp_path, name):
    """The trained audio networks (bench/networks: ConvDelRec and DelRec) through the host
    link: the board's predictions and spikes equal the reference's on whole test samples."""
    net = Path(__file__).resolve().parent.parent / f"bench/networks/{name}.npz"
    out = _cli("data", "frames", "default-test", "-o", tmp_path / "x.npy", "--count", "2",
               "--steps", "136")
    assert out.returncode == 0, out.stderr[-2000:]
    out = _cli("run", net, "--simulate", "--inputs", tmp_path / "x.npy", "--check", "--json",
               "--lanes", "8", "--work", tmp_path / "sim", "--timeout", "30")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)
    assert len(rows) == 2 and all(r["match"] and r["steps"] == 136 for r in rows)
    assert all(r["prediction"] == r["reference_prediction"] for r in rows)


def test_board_report_round_trip_and_rows():
    """The report's JSON re-renders the same row; a missed clock and a design that does not
    fit are said so in the table."""
    from boards.catalog import board
    from boards.report import LINK_LUT, BoardReport
    from bench.boards import markdown
    est = {"lut": 1000, "blocks_total": 3, "spram_total": 0}
    rep = BoardReport("net", board("ulx3s-85f"), 4, 50.0, 42.0, False, est,
                      {"logic": (2100, 83640), "bram": (4, 208), "dsp": (1, 156)},
                      250.0, 100, "top.bit", 12.0)
    again = BoardReport.from_json(rep.to_json())
    assert again.markdown_row() == rep.markdown_row()
    assert rep.lut_estimate == 1000 + LINK_LUT["ecp5"]
    assert "42.0 (not met)" in rep.markdown_row() and "| 200,000 | 2,000.0 |" in rep.markdown_row()
    failed = {"key": "x", "network": "big", "board": "icebreaker", "lanes": 4,
              "estimate": est, "yosys_lut4": 7538,
              "error": "ERROR: Unable to place cell 'a', no BELs remaining to implement cell "
                       "type 'ICESTORM_LC'"}
    table = markdown([rep.to_json() | {"key": "y"}, failed])
    assert "does not fit: placement ran out of ICESTORM_LC cells (Yosys: 7,538 LUT4)" in table
    # A design that does not fit shows the same estimate as a built one: core plus link.
    assert f"| big | icebreaker | 4 | {1000 + LINK_LUT['ice40']:,} | does not fit" in table
    assert all(row.count("|") == 15 for row in table.strip().splitlines())
