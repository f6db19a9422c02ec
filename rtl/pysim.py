"""Run a network core in Amaranth's simulator: drive its input stream, collect its outputs."""

from __future__ import annotations

import random
from dataclasses import dataclass
from math import ceil

import numpy as np
from amaranth.sim import Simulator

from model.ir import Network
from .core import NetworkCore
from .interface import stimulus_records

__all__ = ["CoreRun", "LeanRun", "run_core", "run_lean_readout"]


def _cycle_counter():
    """A one-element list that counts clock cycles, and the process that counts them."""
    now = [0]

    async def count(ctx):
        async for _ in ctx.tick():
            now[0] += 1
    return now, count


async def _load(ctx, dut, image, pause) -> None:
    """Stream ``image`` on ``dut``'s ``wl`` load stream, an idle cycle before a word while
    ``pause()``."""
    for word in image:
        while pause():
            await ctx.tick()
        ctx.set(dut.wl.valid, 1)
        ctx.set(dut.wl.payload, word)
        await ctx.tick().until(dut.wl.ready)
        ctx.set(dut.wl.valid, 0)


@dataclass(frozen=True)
class CoreRun:
    """What the core produced, per LIF layer, and the cycles each step took."""

    spikes: dict[int, np.ndarray]   # spiking layer -> (T, n) uint8
    v: dict[int, np.ndarray]        # LIF layer -> (T, n) int64
    cycles: np.ndarray              # (T,) from a step's last input record to its last output
    ends: np.ndarray | None = None  # (T,) the cycle of each step's last output record


def run_core(net: Network, steps: int, x: np.ndarray | None = None,
             forced: dict[int, np.ndarray] | None = None, *, lanes: int = 1,
             idle: float = 0.0, stall: float = 0.0, seed: int = 0, fault=None,
             family: str | None = None, bank_depth: int | None = None,
             memories: dict[str, str] | None = None, vcd: str | None = None,
             dut=None) -> CoreRun:
    """Simulate ``steps`` timesteps of :class:`NetworkCore` for ``net``.

    ``x`` is the (T, n0) input, ``forced`` maps a forced layer to its (T, n) raster. ``idle`` is
    the probability that the producer inserts an idle cycle before a record; ``stall`` the
    probability that the consumer is not ready in a cycle (back-pressure); both seeded. When
    weight arrays are in SPRAM (``memories``, ``family``), the producer first streams
    :meth:`~rtl.core.NetworkCore.load_image` on ``wl``, with the same idle cycles. ``dut``
    runs another core with the same ports and records (e.g. :class:`rtl.stack.StackCore`
    observing every layer, built with ``lanes``) instead.
    """
    if dut is None:
        dut = NetworkCore(net, lanes=lanes, fault=fault, family=family,
                          bank_depth=bank_depth, memories=memories)
    image = dut.load_image() if hasattr(dut, "load_image") else []
    rng = random.Random(seed)
    lif = list(range(1, len(net.layers)))
    spikes = {l: np.zeros((steps, net.layers[l].n), np.uint8) for l in lif
              if net.layers[l].spiking}
    v = {l: np.zeros((steps, net.layers[l].n), np.int64) for l in lif}
    order = [(l, g) for l in lif for g in range(ceil(net.layers[l].n / lanes))]
    cycles = np.zeros(steps, np.int64)
    ends = np.zeros(steps, np.int64)
    last_in = [0] * steps
    now, clock_counter = _cycle_counter()

    async def producer(ctx):
        await _load(ctx, dut, image, lambda: rng.random() < idle)
        for t in range(steps):
            for rec in stimulus_records(x, forced, t):
                while rng.random() < idle:
                    await ctx.tick()
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, rec)
                await ctx.tick().until(dut.i.ready)
                if rec["last"]:
                    last_in[t] = now[0]
                ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        for t in range(steps):
            for q, (l, g) in enumerate(order):
                while True:
                    ready = int(rng.random() >= stall)
                    ctx.set(dut.o.ready, ready)
                    _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
                    if ready and valid:
                        break
                want_last = q == len(order) - 1
                if payload.layer != l or payload.index != g * lanes or payload.last != want_last:
                    raise AssertionError(
                        f"step {t}: expected the record of layer {l} neurons {g * lanes}.. "
                        f"(last={want_last}), core sent layer {payload.layer} index "
                        f"{payload.index} last={payload.last}")
                n = net.layers[l].n
                for k in range(min(lanes, n - g * lanes)):
                    if l in spikes:
                        spikes[l][t, g * lanes + k] = (payload.spike >> k) & 1
                    v[l][t, g * lanes + k] = payload.v[k]
            cycles[t] = now[0] - last_in[t]
            ends[t] = now[0]
        ctx.set(dut.o.ready, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(clock_counter)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return CoreRun(spikes=spikes, v=v, cycles=cycles, ends=ends)


@dataclass(frozen=True)
class LeanRun:
    """A sample through the lean core and the serial read-out, as on the iCEBreaker asked for
    predictions only: cycles per step and the read-out's membranes and prediction."""

    cycles_per_step: float          # mean over steps, from the first record to the last
    v: np.ndarray                   # (T, n) read-out membranes
    prediction: int


def run_lean_readout(net: Network, x: np.ndarray, *, lanes: int = 4,
                     max_steps: int = 4096) -> LeanRun:
    """Simulate :class:`rtl.lean.LeanCore` (read-out layer observed) with
    :class:`rtl.link.readout.SerialReadout` holding its output's ready as the host link does; the
    inputs arrive one record per cycle. The cycles are the board's (the load excluded)."""
    from amaranth.hdl import Module
    from .lean import LeanCore
    from .link.readout import SerialReadout

    T, last = len(x), len(net.layers) - 1
    core = LeanCore(net, lanes=lanes, observe=[last])
    ro = SerialReadout(net, lanes=lanes, max_steps=max_steps)
    top = Module()
    top.submodules.core, top.submodules.ro = core, ro
    top.d.comb += [ro.rec.eq(core.o.payload), ro.fire.eq(core.o.valid & core.o.ready),
                   core.o.ready.eq(ro.ready)]
    image = core.load_image()
    n = net.layers[last].n
    v = np.zeros((T, n), np.int64)
    ends, start, pred = [], [None], [None]
    now, clock_counter = _cycle_counter()

    async def producer(ctx):
        await _load(ctx, core, image, lambda: False)
        for t in range(T):
            for rec in stimulus_records(x, None, t):
                ctx.set(core.i.valid, 1)
                ctx.set(core.i.payload, rec)
                await ctx.tick().until(core.i.ready)
                if start[0] is None:          # the run's cycles start at its first record
                    start[0] = now[0]
            ctx.set(core.i.valid, 0)

    async def consumer(ctx):
        ctx.set(ro.last_step, int(T == 1))
        t = 0
        while t < T:
            _, _, fire, rec = await ctx.tick().sample(ro.fire, ro.rec)
            if fire:
                for k in range(lanes):
                    if rec.index + k < n:
                        v[t, rec.index + k] = rec.v[k]
                if rec.last:
                    ends.append(now[0])
                    t += 1
                    ctx.set(ro.last_step, int(t == T - 1))
        await ctx.tick().until(ro.valid)
        pred[0] = ctx.get(ro.prediction)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_process(clock_counter)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return LeanRun(cycles_per_step=(ends[-1] - start[0]) / T, v=v, prediction=int(pred[0]))
