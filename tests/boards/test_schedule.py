"""boards.schedule: schedules, the player, the schedule top (LEDs, read-out), the register slice."""

import random

import numpy as np
import pytest

from model.ir import InputLayer, LIFLayer, Network, Projection
from sim.reference import simulate
from boards.icebreaker import icebreaker_platform
from boards.schedule import (RegisterSlice, SchedulePlayer, ScheduleTop, default_schedule,
                             schedule_records, schedule_stimulus)
from tests.nets import raster, tiny_net
from tests.streams import run_testbenches, stream_get, stream_put


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

    run_testbenches(dut, consumer)
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

    run_testbenches(top, monitor)
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
def test_schedule_top_rejects_bad_knobs(args, kwargs, match, unused_elaboratables):
    with unused_elaboratables() as found:
        with pytest.raises(ValueError, match=match):
            ScheduleTop(tiny_net(), *args, **kwargs)
    assert found == []      # the knobs are checked before the top exists


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

    run_testbenches(top, monitor)
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

    run_testbenches(top, monitor)
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
            await stream_put(ctx, dut.i, x)

    async def consumer(ctx):
        while len(got) < len(sent):
            got.append(int(await stream_get(ctx, dut.o, rng=rng, p_ready=0.6)))

    run_testbenches(dut, producer, consumer)
    assert got == sent
