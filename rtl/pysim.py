"""Run a network core in Amaranth's simulator: drive its input stream, collect its outputs."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from model.ir import Network
from .core import NetworkCore
from .interface import step_records

__all__ = ["CoreRun", "run_core"]


@dataclass(frozen=True)
class CoreRun:
    """What the core produced: per step, every neuron's spike and membrane, and the cycles."""

    spikes: np.ndarray      # (T, n) uint8
    v: np.ndarray           # (T, n) int64
    cycles: np.ndarray      # (T,) cycles from a step's last input record to its last output


def run_core(net: Network, steps: int, forced: np.ndarray | None = None, *,
             idle: float = 0.0, stall: float = 0.0, seed: int = 0, fault=None,
             vcd: str | None = None) -> CoreRun:
    """Simulate ``steps`` timesteps of :class:`NetworkCore` for ``net``.

    ``forced`` is the (T, n) forced raster of layer 1 (or None). ``idle`` is the probability
    that the producer inserts an idle cycle before a record; ``stall`` the probability that
    the consumer is not ready in a cycle (back-pressure). Both are seeded by ``seed``.
    """
    dut = NetworkCore(net, fault=fault)
    n = dut.n
    rng = random.Random(seed)
    spikes = np.zeros((steps, n), np.uint8)
    v = np.zeros((steps, n), np.int64)
    cycles = np.zeros(steps, np.int64)
    last_in = [0] * steps
    now = [0]

    async def clock_counter(ctx):
        async for _ in ctx.tick():
            now[0] += 1

    async def producer(ctx):
        for t in range(steps):
            for rec in step_records([] if forced is None else np.flatnonzero(forced[t])):
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
            for i in range(n):
                while True:
                    ready = int(rng.random() >= stall)
                    ctx.set(dut.o.ready, ready)
                    _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
                    if ready and valid:
                        break
                if payload.index != i or payload.last != (i == n - 1):
                    raise AssertionError(f"step {t}: expected neuron {i} (last={i == n - 1}), "
                                         f"core sent index {payload.index} "
                                         f"last={payload.last}")
                spikes[t, i] = payload.spike
                v[t, i] = payload.v
            cycles[t] = now[0] - last_in[t]
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
    return CoreRun(spikes=spikes, v=v, cycles=cycles)
