"""Weights in SPRAM: the flash loader against a behavioural SPI flash, and the schedule top
that loads them from flash and then runs bit-exact."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from boards.flash import FlashLoader, flash_image
from boards.icebreaker import icebreaker_platform
from boards.schedule import ScheduleTop, default_schedule
from sim.reference import simulate
from sim.spi_flash import SpiFlashModel
from tests.nets import raster, tiny_net


def _load(words, width, *, offset=0x100000, stall=0.3, wake_us=20.0, seed=0):
    """Run a FlashLoader against the flash model; return (words received, model)."""
    dut = FlashLoader(words=len(words), width=width, offset=offset, clk_hz=12e6,
                      wake_us=wake_us)
    model = SpiFlashModel(flash_image(words, width), offset=offset, wake_cycles=36)
    rng = random.Random(seed)
    got = []

    async def sink(ctx):
        budget = 200 + len(words) * (2 * 8 * ((width + 7) // 8) + 40) + 400
        for _ in range(budget):
            ready = int(rng.random() >= stall)
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload, done = await ctx.tick().sample(dut.o.valid, dut.o.payload,
                                                                 dut.done)
            if ready and valid:
                got.append(int(payload))
            if done:
                return

    sim = Simulator(dut)
    sim.add_clock(1 / 12e6)
    sim.add_process(model.clock)
    sim.add_process(model.process(dut.sck, dut.cs, dut.copi, dut.cipo))
    sim.add_testbench(sink)
    sim.run()
    return got, model


@pytest.mark.parametrize("width", [1, 8, 12, 16, 32, 40])
def test_loader_reads_every_word(width):
    rng = np.random.default_rng(width)
    words = [int(w) for w in rng.integers(0, 1 << width, 37, dtype=np.uint64)]
    got, model = _load(words, width, seed=width)
    assert model.errors == []
    assert model.reads == [0x100000]
    assert got == words


def test_loader_wake_gap_is_needed():
    """A loader that selects the flash too soon after the release reads only 0xFF: the model
    enforces t_RES1, so the real gap is tested."""
    words = [0x1234, 0x0042, 0xBEEF]
    got, model = _load(words, 16, wake_us=0.1)
    assert model.errors and "after release" in model.errors[0]
    assert got == [0xFFFF] * 3


def test_loader_rejects_bad_geometry(unused_elaboratables):
    with unused_elaboratables() as found:
        with pytest.raises(ValueError, match="words >= 1"):
            FlashLoader(words=0, width=8)
        with pytest.raises(ValueError, match="16 MiB"):
            FlashLoader(words=10, width=16, offset=(1 << 24) - 4)
    assert found == []      # the geometry is checked before the loader exists
    with pytest.raises(ValueError, match="does not fit 4 unsigned bits"):
        flash_image([3, 16], 4)


def test_flash_image_is_little_endian_words():
    assert flash_image([0x0201, 0xBCD], 12) == bytes([0x01, 0x02, 0xCD, 0x0B])


def test_schedule_top_loads_spram_weights_from_flash():
    """The top's weights live in SPRAM: after reset it reads them from (modelled) flash, then
    replays its schedule bit-exact with the reference."""
    net = tiny_net()
    schedule = default_schedule(net, steps=6, p=0.5)
    steps = len(schedule) + 2
    top = ScheduleTop(net, schedule, step_hz=None, hold_hz=12e6,
                        memories={"proj0.weights": "spram"}, lanes=2)
    assert top.loader is not None and len(top.image) == 8 * 3 * 4
    model = SpiFlashModel(top.flash_image(), offset=top.loader.offset, wake_cycles=200)
    core = top.core
    n = net.layers[1].n
    spikes = np.zeros((steps, n), np.uint8)
    v = np.zeros((steps, n), np.int64)

    async def monitor(ctx):
        t = 0
        while t < steps:
            _, _, valid, rec = await ctx.tick().sample(core.o.valid, core.o.payload)
            if valid:
                for k in range(2):
                    spikes[t, rec.index + k] = rec.spike >> k & 1
                    v[t, rec.index + k] = rec.v[k]
                t += rec.last

    sim = Simulator(top)
    sim.add_clock(1 / 12e6)
    sim.add_process(model.clock)
    sim.add_process(model.process(top.loader.sck, top.loader.cs, top.loader.copi,
                                  top.loader.cipo))
    sim.add_testbench(monitor)
    sim.run()
    assert model.errors == []
    ref = simulate(net, forced={1: raster(schedule, steps, n)}, steps=steps)
    np.testing.assert_array_equal(spikes, ref.spikes[1])
    np.testing.assert_array_equal(v, ref.v[1])
    assert spikes.any()


def test_schedule_top_on_icebreaker_wires_the_flash_pins():
    top = ScheduleTop(tiny_net(), memories={"proj0.weights": "spram"})
    pcf = icebreaker_platform().prepare(top).files["top.pcf"]
    for pin, ball in (("cs", 16), ("clk", 15), ("copi", 14), ("cipo", 17)):
        assert f"set_io spi_flash_1x_0__{pin}__io {ball}" in pcf
