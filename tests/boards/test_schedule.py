"""The schedule top (player, register slice, LEDs, read-out), the build step, nextpnr reports."""

import random
import re

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth.sim import Simulator
from amaranth_boards.icebreaker import ICEBreakerPlatform

from model.ir import InputLayer, LIFLayer, Network, Projection
from sim.reference import simulate
from boards.build import BuildError, ClockTiming, Utilisation, build, parse_report
from boards.icebreaker import icebreaker_platform
from boards.schedule import (RegisterSlice, SchedulePlayer, ScheduleTop, build_schedule,
                             default_schedule, schedule_records, schedule_stimulus)
from tests.test_board_tops import unused_elaboratables


def tiny_net(*, forced=True, seed=2) -> Network:
    """8 recurrent LIF neurons, 3 taps from delay 1: mixed activity under a cue."""
    w = np.random.default_rng(seed).integers(-10, 14, (8, 8, 3))
    return Network(
        layers=[InputLayer(n=0),
                LIFLayer(n=8, v_bits=10, acc_bits=10, beta=3, beta_shift=2, threshold=30,
                         forced=forced, name="pop")],
        projections=[Projection("taps", 1, 1, 6, w, np.array(1))], max_delay=3)


def raster(schedule, steps: int, n: int) -> np.ndarray:
    """The forced raster of ``schedule`` replayed for ``steps`` steps."""
    f = np.zeros((steps, n), np.uint8)
    for t in range(steps):
        f[t, list(schedule[t % len(schedule)])] = 1
    return f


# --------------------------------------------------------------------------------------------
# Schedules.

def test_schedule_records_known_answer():
    recs = schedule_records(tiny_net(), [[3, 1, 3], [], [7]])
    assert recs == [{"index": 1, "value": 1, "layer": 1, "valid": 1, "last": 0},
                    {"index": 3, "value": 1, "layer": 1, "valid": 1, "last": 1},
                    {"index": 0, "value": 0, "layer": 0, "valid": 0, "last": 1},
                    {"index": 7, "value": 1, "layer": 1, "valid": 1, "last": 1}]


def test_default_schedule_is_cue_then_free_recall():
    net = tiny_net()
    s = default_schedule(net, p=0.5)
    assert len(s) == 16 and all(s[t] == [] for t in range(3, 16))
    assert any(s[t] for t in range(3))
    assert s == default_schedule(net, p=0.5)               # seeded
    assert default_schedule(tiny_net(forced=False)) == [[]] * 16


@pytest.mark.parametrize("schedule, match", [
    ([], "at least one step"),
    ([[8]], r"indices must be in \[0, 7\]"),
    ([[-1]], r"indices must be in \[0, 7\]"),
    ([[(3, 2)]], r"value of index 3 must be in \[1, 1\]"),
])
def test_schedule_rejected(schedule, match):
    with pytest.raises(ValueError, match=match):
        schedule_records(tiny_net(), schedule)


def test_schedule_needs_forced_layer():
    with pytest.raises(ValueError, match="has no forced layer"):
        schedule_records(tiny_net(forced=False), [[1]])


# --------------------------------------------------------------------------------------------
# Schedule player, in simulation.

@pytest.mark.parametrize("step_cycles", [None, 1, 9])
def test_player_replays_schedule(step_cycles):
    net = tiny_net()
    schedule = [[1, 2], [], [5], [0, 6, 7]]
    dut = SchedulePlayer(net, schedule, step_cycles=step_cycles)
    expect = schedule_records(net, schedule) * 3
    rng = random.Random(step_cycles)
    got, starts = [], []

    async def consumer(ctx):
        cycle, in_step = 0, False
        while len(got) < len(expect):
            ready = int(rng.random() < 0.7)      # back-pressure
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and not in_step:            # the pace bounds when a step is offered
                starts.append(cycle)
                in_step = True
            if valid and ready:
                got.append({"index": payload.index, "value": payload.value,
                            "layer": payload.layer, "valid": payload.valid,
                            "last": payload.last})
                in_step = not payload.last
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(consumer)
    sim.run()
    assert got == expect
    if step_cycles is not None:
        assert min(np.diff(starts)) >= step_cycles


# --------------------------------------------------------------------------------------------
# The schedule top.

def test_schedule_top_runs_schedule_bit_exact():
    """The top replays its schedule into the real core forever (no reset between loops): the
    core's outputs match the reference on the replayed raster, the heartbeat toggles once per
    step and the spike LEDs show the step's spikes."""
    net = tiny_net()
    schedule = default_schedule(net, steps=8, p=0.5)
    steps = 2 * len(schedule) + 3
    # hold_hz = clock: the LEDs refresh at every step end.
    top = ScheduleTop(net, schedule, step_hz=None, hold_hz=12e6)
    core = top.core
    n = net.layers[1].n
    spikes = np.zeros((steps, n), np.uint8)
    v = np.zeros((steps, n), np.int64)

    async def monitor(ctx):
        t, beat, check = 0, 0, None
        while t < steps:
            _, _, valid, rec, hb, leds = await ctx.tick().sample(
                core.o.valid, core.o.payload, top.heartbeat, top.spike_leds)
            if check is not None:                # LEDs of the step completed at the last edge
                assert (hb, leds) == check, f"step {t - 1}: LEDs {(hb, leds)} != {check}"
                check = None
            if valid:
                spikes[t, rec.index], v[t, rec.index] = rec.spike, rec.v[0]
                if rec.last:
                    beat ^= 1
                    row = spikes[t]
                    want = int(row.any()) | sum(int(row[q]) << (1 + k)
                                                for k, q in enumerate(top.show))
                    check = (beat, want)
                    t += 1

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(monitor)
    sim.run()
    ref = simulate(net, forced={1: raster(schedule, steps, n)}, steps=steps)
    np.testing.assert_array_equal(spikes, ref.spikes[1])
    np.testing.assert_array_equal(v, ref.v[1])
    assert 0 < spikes.sum() < spikes.size          # the LED checks saw both values


def test_schedule_top_elaborates_on_icebreaker():
    top = ScheduleTop(tiny_net())
    plan = icebreaker_platform().prepare(top)
    assert {"top.il", "top.pcf", "top.ys", "build_top.sh"} <= set(plan.files)
    pcf = plan.files["top.pcf"]
    assert "set_frequency clk12_0__io 12.0" in pcf
    assert "set_io button_0__io 10" in pcf                 # the user button is the reset
    for k, pin in enumerate([11, 37, 26, 27, 25, 23, 21]):  # red, green, break-off PMOD
        assert f"set_io led_{k}__io {pin}" in pcf


def test_schedule_top_on_icebreaker_without_break_off_pmod():
    plan = icebreaker_platform(break_off_pmod=False).prepare(ScheduleTop(tiny_net()))
    pcf = plan.files["top.pcf"]
    assert "led_1__io" in pcf and "led_2__io" not in pcf


@pytest.mark.parametrize("args, kwargs, match", [
    ((), {"show": [0, 1, 2, 3, 4, 5]}, "show"),
    ((), {"show": [8]}, "show"),
    ((), {"step_hz": 0}, "step_hz"),
    (([[9]],), {}, "indices"),
])
def test_schedule_top_rejects_bad_knobs(args, kwargs, match):
    with unused_elaboratables() as found:
        with pytest.raises(ValueError, match=match):
            ScheduleTop(tiny_net(), *args, **kwargs)
    assert found == []      # the knobs are checked before the top exists


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


def test_schedule_top_predicts_with_a_readout():
    """A network with a read-out layer: the top treats each loop of the schedule as a sample
    and latches argmax_i sum_t v_i(t), equal to the reference prediction of the first loop."""
    base = tiny_net()
    w_out = np.random.default_rng(5).integers(-12, 13, (6, 8))
    net = Network(layers=[*base.layers,
                          LIFLayer(n=6, v_bits=12, acc_bits=12, beta=3, beta_shift=2,
                                   threshold=None, name="out")],
                  projections=[*base.projections,
                               Projection("dense", 1, 2, 5, w_out, np.array(1))],
                  max_delay=3)
    schedule = default_schedule(net, steps=9, p=0.5)
    top = ScheduleTop(net, schedule, step_hz=None, hold_hz=12e6, lanes=4)
    seen = []

    async def monitor(ctx):
        while not seen:
            _, _, valid, pred = await ctx.tick().sample(top.prediction_valid, top.prediction)
            if valid:
                seen.append(pred)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(monitor)
    sim.run()
    ref = simulate(net, forced={1: raster(schedule, len(schedule), 8)}, steps=len(schedule))
    assert ref.v[2].any()
    assert seen == [ref.prediction]


def _input_net() -> Network:
    """6 multi-bit inputs (3 bits) -> 8 LIF with per-input delays -> 4 read-out."""
    rng = np.random.default_rng(7)
    layers = [InputLayer(n=6, in_bits=3),
              LIFLayer(n=8, v_bits=12, acc_bits=12, beta=3, beta_shift=2, threshold=20,
                       name="h"),
              LIFLayer(n=4, v_bits=14, acc_bits=14, beta=7, beta_shift=3, threshold=None,
                       name="out")]
    projs = [Projection("dense", 0, 1, 5, rng.integers(-6, 12, (8, 6)),
                        rng.integers(0, 3, 6)),
             Projection("dense", 1, 2, 5, rng.integers(-12, 13, (4, 8)), np.array(1))]
    return Network(layers=layers, projections=projs, max_delay=3)


def test_input_schedule_known_answer():
    net = _input_net()
    assert schedule_records(net, [[(4, 7), 1], []]) == [
        {"index": 1, "value": 1, "layer": 0, "valid": 1, "last": 0},
        {"index": 4, "value": 7, "layer": 0, "valid": 1, "last": 1},
        {"index": 0, "value": 0, "layer": 0, "valid": 0, "last": 1}]
    with pytest.raises(ValueError, match=r"value of index 2 must be in \[1, 7\]"):
        schedule_records(net, [[(2, 8)]])
    with pytest.raises(ValueError, match="given twice with different values"):
        schedule_records(net, [[(2, 3), (2, 4)]])
    sched = default_schedule(net, steps=20, seed=1)
    assert len(sched) == 20 and all(1 <= v <= 7 for step in sched for _, v in step)
    assert any(sched[:3]) and not any(sched[3:])
    x, forced = schedule_stimulus(net, sched, 25)
    assert forced is None and x.shape == (25, 6) and (x[20:23] == x[:3]).all()


def test_schedule_top_runs_input_schedule_bit_exact():
    """An input network (multi-bit values on layer 0) with a read-out: the top replays input
    events and its prediction equals the reference's."""
    net = _input_net()
    schedule = default_schedule(net, steps=10, p=0.6, seed=2)
    steps = len(schedule)
    top = ScheduleTop(net, schedule, step_hz=None, hold_hz=12e6, lanes=2)
    v = np.zeros((steps, 8), np.int64)
    seen = []

    async def monitor(ctx):
        t = 0
        while not seen:
            _, _, valid, rec, pv, pred = await ctx.tick().sample(
                top.core.o.valid, top.core.o.payload, top.prediction_valid, top.prediction)
            if valid and t < steps:
                if rec.layer == 1:
                    v[t, rec.index:rec.index + 2] = [rec.v[0], rec.v[1]]
                t += rec.last
            if pv:
                seen.append(pred)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(monitor)
    sim.run()
    x, forced = schedule_stimulus(net, schedule, steps)
    ref = simulate(net, x, forced, steps=steps)
    assert ref.spikes[1].any()
    np.testing.assert_array_equal(v, ref.v[1])
    assert seen == [ref.prediction]


def test_register_slice_keeps_order_under_stalls():
    from amaranth.hdl import unsigned
    dut = RegisterSlice(unsigned(8))
    rng = random.Random(3)
    sent, got = list(range(1, 60)), []

    async def producer(ctx):
        for x in sent:
            while rng.random() < 0.3:
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, x)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        while len(got) < len(sent):
            ready = int(rng.random() < 0.6)
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if ready and valid:
                got.append(int(payload))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert got == sent
