"""boards.build: the build step, nextpnr reports, a real iCEBreaker bitstream."""

import re

import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth_boards.icebreaker import ICEBreakerPlatform

from boards.build import (BuildError, ClockTiming, Utilisation, build, design_fingerprint,
                          fingerprint, parse_report)
from boards.icebreaker import icebreaker_platform
from boards.schedule import build_schedule
from tests.nets import tiny_net


# --------------------------------------------------------------------------------------------
# Build step and report.

REPORT = {
    "utilization": {"ICESTORM_LC": {"used": 503, "available": 5280},
                    "ICESTORM_RAM": {"used": 4, "available": 30},
                    "ICESTORM_DSP": {"used": 1, "available": 8},
                    "SB_IO": {"used": 9, "available": 39}},
    "fmax": {"cd_sync.clk": {"achieved": 20.4, "constraint": 12.0},
             "cd_fast.clk": {"achieved": 50.0, "constraint": 48.0}},
    "critical_paths": [],
}


def test_parse_report_known_answer():
    r = parse_report(REPORT)
    assert r.utilisation["ICESTORM_RAM"] == Utilisation(4, 30)
    assert r.resources == {"logic": Utilisation(503, 5280), "bram": Utilisation(4, 30),
                           "dsp": Utilisation(1, 8), "io": Utilisation(9, 39)}
    # The critical clock is the one with the least margin, not the slowest.
    assert r.critical_clock == "cd_fast.clk"
    assert (r.fmax_mhz, r.constraint_mhz) == (50.0, 48.0)
    assert r.timing_met
    assert ClockTiming(11.0, 12.0).met is False


def test_parse_report_with_headroom_judges_timing_at_the_clock():
    """A build that asked nextpnr for 1 + headroom times each clock: the constraint is the
    clock (nextpnr's divided back), nextpnr's is kept as asked; met means the clock is
    reached, even when nextpnr's own constraint is not."""
    r = parse_report(REPORT, headroom=0.25)
    assert r.clocks["cd_fast.clk"] == ClockTiming(50.0, 48.0 / 1.25, 48.0)
    assert r.clocks["cd_sync.clk"] == ClockTiming(20.4, 12.0 / 1.25, 12.0)
    assert r.timing_met and (r.fmax_mhz, r.constraint_mhz) == (50.0, 48.0 / 1.25)
    short = dict(REPORT, fmax={"c": {"achieved": 45.0, "constraint": 55.0}})
    assert not parse_report(short).timing_met
    assert parse_report(short, headroom=0.25).timing_met        # the clock: 55 / 1.25 = 44
    assert not parse_report(short, headroom=0.2).timing_met     # 55 / 1.2 = 45.8
    assert parse_report(REPORT).clocks["cd_fast.clk"].asked_mhz is None
    for bad in (-0.1, 1.5, True, "0.25", float("nan")):
        with pytest.raises(ValueError, match="headroom must be a number from 0 to 1"):
            parse_report(REPORT, headroom=bad)
        with pytest.raises(ValueError, match="headroom must be"):
            fingerprint(_Blinky, ICEBreakerPlatform, headroom=bad)


def test_parse_report_rejects_other_json():
    with pytest.raises(ValueError, match="not a nextpnr report"):
        parse_report({"fmax": {}})


class _Blinky(Elaboratable):
    def elaborate(self, platform):
        m = Module()
        count = Signal(22)
        m.d.sync += count.eq(count + 1)
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += led.o.eq(count[-1])
        return m


def test_build_refuses_used_platform(tmp_path):
    platform = icebreaker_platform()
    platform.prepare(_Blinky())
    with pytest.raises(ValueError, match="already been used"):
        build(_Blinky, platform, build_dir=tmp_path)


@pytest.fixture(scope="module")
def icebreaker_build(tmp_path_factory):
    return build_schedule(tiny_net(), "icebreaker",
                          build_dir=tmp_path_factory.mktemp("icebreaker"))


@pytest.mark.slow
def test_icebreaker_bitstream(icebreaker_build):
    r = icebreaker_build
    assert r.bitstream.name == "top.bin" and r.bitstream.stat().st_size > 0
    assert r.constraint_mhz == pytest.approx(12.0, abs=0.01)
    assert r.fmax_mhz > 12.0 and r.timing_met
    util = r.utilisation
    assert 0 < util["ICESTORM_LC"].used <= util["ICESTORM_LC"].available == 5280
    assert 0 < util["ICESTORM_RAM"].used <= util["ICESTORM_RAM"].available == 30
    assert r.resources["logic"] == util["ICESTORM_LC"]
    assert r.seconds > 0 and all(p.exists() for p in r.logs.values())
    assert "synth_ice40 -dsp" in (r.build_dir / "top.ys").read_text()
    assert "--seed 1 --report report.json" in (r.build_dir / "build_top.sh").read_text()


@pytest.mark.slow
def test_parse_real_report(icebreaker_build):
    """The parser reads what this nextpnr writes; the figures match its log."""
    r = parse_report(icebreaker_build.report_path)
    assert r == icebreaker_build.report
    assert set(r.clocks) == {"cd_sync.clk"}
    log = icebreaker_build.logs["nextpnr"].read_text()
    assert f"{r.fmax_mhz:.2f} MHz" in log
    lc = r.utilisation["ICESTORM_LC"]
    assert re.search(rf"ICESTORM_LC:\s+{lc.used}/\s+{lc.available}\s", log)


@pytest.mark.slow
def test_build_is_repeatable(tmp_path):
    a = build(_Blinky, ICEBreakerPlatform, build_dir=tmp_path / "a", seed=3)
    b = build(_Blinky, ICEBreakerPlatform, build_dir=tmp_path / "b", seed=3)
    assert a.bitstream.read_bytes() == b.bitstream.read_bytes()
    assert a.report == b.report
    # The design a build records is the one known without building.
    assert a.design == b.design == fingerprint(_Blinky, ICEBreakerPlatform)


def test_design_fingerprint_is_the_netlist_and_constraints_not_where_the_code_lies():
    """Source locations, scripts and the tools' options do not change it; a netlist or a
    constraint does."""
    il = 'module \\top\n  attribute \\src "/tmp/a/rtl/core.py:12"\n  wire \\x\nend\n'
    files = {"top.il": il, "top.pcf": "set_io clk 35\n", "build_top.sh": "nextpnr --seed 1\n",
             "top.debug.v": "// /tmp/a\n"}
    fp = design_fingerprint(files)
    moved = dict(files, **{"top.il": il.replace("/tmp/a", "/work/b"),
                           "build_top.sh": "nextpnr --seed 2\n", "top.debug.v": "// /work/b\n"})
    assert design_fingerprint(moved) == fp
    assert design_fingerprint(dict(files, **{"top.il": il.replace("x", "y")})) != fp
    assert design_fingerprint(dict(files, **{"top.pcf": "set_io clk 36\n"})) != fp
    assert design_fingerprint({k: v.encode() for k, v in files.items()}) == fp
    assert fingerprint(_Blinky, ICEBreakerPlatform) == fingerprint(_Blinky(), ICEBreakerPlatform())
    # Headroom raises the clock constraint nextpnr gets: another design to build.
    assert fingerprint(_Blinky, ICEBreakerPlatform, headroom=0.25) != \
        fingerprint(_Blinky, ICEBreakerPlatform)


@pytest.mark.slow
def test_build_error_carries_log_tail(tmp_path):
    with pytest.raises(BuildError, match="unrecognised option '--bogus'") as e:
        build(_Blinky(), ICEBreakerPlatform, build_dir=tmp_path, nextpnr_opts="--bogus")
    assert e.value.log.exists()


@pytest.mark.slow
def test_build_timing_failure(tmp_path):
    platform = ICEBreakerPlatform()
    from amaranth.build import Clock
    # The platform's resources are shared by every instance of its class: restore the clock,
    # or later platforms in this process would claim a 500 MHz oscillator.
    clk = platform.resources["clk12", 0]
    saved, clk.clock = clk.clock, Clock(500e6)
    try:
        with pytest.raises(BuildError, match="FAIL at 500.00 MHz") as e:
            build(_Blinky(), platform, build_dir=tmp_path)
    finally:
        clk.clock = saved
    assert e.value.report is not None and not e.value.report.timing_met
    assert ICEBreakerPlatform().resources["clk12", 0].clock.frequency == 12e6


@pytest.mark.slow
def test_build_with_headroom(tmp_path):
    """nextpnr is asked for 1.25 times the 12 MHz clock (its constraint file and report say
    15 MHz) and the result is judged at 12; the platform class keeps its 12 MHz oscillator. A
    build that misses its clock with headroom raises like one without, naming the clock."""
    from amaranth.build import Clock
    r = build(_Blinky, ICEBreakerPlatform, build_dir=tmp_path / "a", headroom=0.25)
    t = r.report.clocks[r.report.critical_clock]
    assert t.asked_mhz == pytest.approx(15.0, abs=0.01)
    assert r.constraint_mhz == pytest.approx(12.0, abs=0.01) and r.timing_met
    assert r.headroom == 0.25
    assert "set_frequency clk12_0__io 15.0" in (r.build_dir / "top.pcf").read_text()
    assert "nextpnr asked for 15.00" in r.summary()
    assert ICEBreakerPlatform().resources["clk12", 0].clock.frequency == 12e6
    assert r.design == fingerprint(_Blinky, ICEBreakerPlatform, headroom=0.25)

    platform = ICEBreakerPlatform()
    clk = platform.resources["clk12", 0]
    saved, clk.clock = clk.clock, Clock(500e6)     # shared by every instance: restored below
    try:
        with pytest.raises(BuildError,
                           match=r"missed timing: clock \S+ reached [\d.]+ MHz of 500\.\d\d ") as e:
            build(_Blinky(), platform, build_dir=tmp_path / "b", headroom=0.1)
        # with timing_allow_fail the bitstream is kept and the miss is in the result
        platform = ICEBreakerPlatform()
        missed = build(_Blinky(), platform, build_dir=tmp_path / "c", headroom=0.1,
                       timing_allow_fail=True)
    finally:
        clk.clock = saved
    assert e.value.report is not None and not e.value.report.timing_met
    assert not missed.timing_met and missed.bitstream.exists()
    assert missed.report.clocks[missed.report.critical_clock].asked_mhz == \
        pytest.approx(550.0, abs=0.1)


def test_build_over_its_time_limit_is_stopped_with_its_tools(tmp_path, wm8):
    """A build still running at ``time_limit`` raises and leaves no tool behind (a host-link
    build takes far longer than its five seconds: Yosys is busy by then)."""
    import os
    import time
    from pathlib import Path
    from boards.top import build_board

    def running_here():
        pids = []
        for d in Path("/proc").iterdir():
            try:
                if d.name.isdigit() and os.readlink(d / "cwd").startswith(str(tmp_path)):
                    pids.append(int(d.name))
            except OSError:         # gone, or not ours to look at
                pass
        return pids

    t0 = time.monotonic()
    with pytest.raises(BuildError, match=r"did not finish within 0\.1 minutes \(stopped\)"):
        build_board(wm8, "icebreaker", build_dir=tmp_path, time_limit=6)
    assert time.monotonic() - t0 < 60
    for _ in range(10):             # SIGKILL is immediate, reaping may lag a little
        if not running_here():
            break
        time.sleep(0.05)
    assert running_here() == []
