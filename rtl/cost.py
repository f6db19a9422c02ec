"""Cost model of the network core: cycles per step from activity, memory blocks, logic."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

import numpy as np

from model.ir import Network
from .core import _plan, memory_shapes, supported

__all__ = ["FAMILIES", "step_cycles", "activity", "memory_blocks", "memory_shapes",
           "logic_estimate",
           "Estimate", "estimate"]

#: Block RAM of each family: (bits per block, [(depth, width) configurations]).
FAMILIES = {
    "ice40": (4096, [(256, 16), (512, 8), (1024, 4), (2048, 2)]),
    "ecp5": (18432, [(512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)]),
}


def activity(net: Network, trace, x: np.ndarray | None, forced: dict | None) -> dict:
    """Per-step event counts the core's work depends on, from a reference run.

    Returns ``{"jobs": {(layer, job): (T,) events}, "emit": {layer: (T, n) emitted},
    "records": (T,) input records}`` where a job is one gather pass (one per dense/conv
    projection, one per tap of a taps projection) and the records are the step's non-zero
    inputs and forced neurons (at least one record per step).
    """
    steps = trace.steps
    emitted = {0: (np.zeros((steps, 0), bool) if x is None or not np.asarray(x).size
                   else np.asarray(x) != 0)}
    for l in range(1, len(net.layers)):
        s = trace.spikes.get(l, np.zeros((steps, net.layers[l].n), np.uint8)).astype(bool)
        f = (forced or {}).get(l)
        emitted[l] = s | (np.asarray(f).astype(bool) if f is not None else False)
    records = emitted[0].sum(1) if emitted[0].shape[1] else np.zeros(steps, np.int64)
    for f in (forced or {}).values():
        records = records + np.asarray(f).astype(bool).sum(1)
    jobs = {}
    for pp in _plan(net):
        e = emitted[pp.p.src]
        if e.shape[1] == 0:
            e = np.zeros((steps, pp.pre.n), bool)
        d = pp.p.delays_of_pre(pp.pre.n)
        for k in range(pp.taps):
            counts = np.zeros(steps, np.int64)
            for t in range(steps):
                src_t = t - d - k
                ok = src_t >= 0
                counts[t] = int(e[src_t[ok], np.flatnonzero(ok)].sum())
            jobs[(pp.p.dst, pp.index, k)] = counts
    return {"jobs": jobs, "emit": emitted, "records": np.maximum(1, records)}


def _has_rom(pp) -> bool:
    """The delay line looks delays up in a ROM (two push stages instead of one)."""
    return pp.mode == "arrival" and len(set(pp.p.delays_of_pre(pp.pre.n).tolist())) > 1


def _update_cycles(acc_cycles: list[int], emits: list[int], *, drains: bool,
                   tail_pending: int, last: bool) -> int:
    """Cycles of one layer's update phase, from its first HAND/ACC cycle to the end of DONE
    (or, for the last layer, to the acceptance of its last output record).

    ``acc_cycles[g]`` is the time group g spends in ACC before HAND, ``emits[g]`` its
    emitted neurons. A cycle-level replay of the accumulator, the hand-off register H, the fire
    stages S, R and B2 and the drain, with ``o`` always ready.
    """
    G = len(acc_cycles)
    g_a, a_left = 0, acc_cycles[0]          # accumulator: group, ACC cycles still to spend
    h = s = r = None                        # group in H / in S / in R
    drain, queued = 0, 0                    # neurons left to push; a queued group's neurons
    last_push = -10
    cycle = 0
    a_done = False
    while True:
        b2_take = r is not None and (not drains or not queued)
        s_take = s is not None and (r is None or b2_take)
        b1 = h is not None and (s is None or s_take)
        hand = not a_done and a_left == 0 and (h is None or s is None or s_take)
        if last and b2_take and r == G - 1:
            return cycle + 1
        if a_done and h is None and s is None and r is None and drain == 0 and not queued \
                and not last and cycle - last_push > tail_pending:
            return cycle + 2                # the layer's end sees `idle` a cycle late
        # Clock edge.
        new = emits[r] if b2_take and drains else 0
        if drain:
            drain -= 1
            last_push = cycle
        if drain == 0:
            if queued:
                drain, queued = queued, new
            elif new:
                drain = new
        elif new:
            queued = new
        new_r = s if s_take else (None if b2_take else r)
        new_s = h if b1 else (None if s_take else s)
        new_h = h
        if b1:
            new_h = None
        if hand:
            new_h = g_a
            if g_a == G - 1:
                a_done = True
            else:
                g_a += 1
                a_left = acc_cycles[g_a]
        elif not a_done and a_left:
            a_left -= 1
        h, s, r = new_h, new_s, new_r
        cycle += 1


def step_cycles(net: Network, act: dict, *, lanes: int = 1) -> np.ndarray:
    """Cycles from accepting a step's last input record to accepting its last output record,
    per step, with ``o`` always ready (see ``docs/hardware.md`` for the derivation)."""
    supported(net, lanes=lanes)
    plan = _plan(net)
    steps = len(next(iter(act["emit"].values())))
    total = np.ones(steps, np.int64)                      # WAIT0
    # WAIT0 also waits for the pushes of the last input record (input events come first).
    lines0 = [pp for pp in plan if pp.p.src == 0]
    if lines0 and act["emit"][0].shape[1] and not net.forced_layers:
        x0 = act["emit"][0]
        total += x0.any(1) * (1 + any(_has_rom(pp) for pp in lines0))
    last = len(net.layers) - 1
    for l in range(1, len(net.layers)):
        layer = net.layers[l]
        g = ceil(layer.n / lanes)
        incoming = [pp for pp in plan if pp.p.dst == l]
        weighted = any(pp.p.kind != "conv" for pp in incoming)
        emits = any(pp.p.src == l for pp in plan)
        rom = 1 if any(pp.p.src == l and _has_rom(pp) for pp in plan) else 0
        pairs = np.zeros(steps, np.int64)
        n_jobs = 0
        for (dst, q, k), counts in act["jobs"].items():
            if dst != l:
                continue
            n_jobs += 1
            total += counts + 1
            if net.projections[q].kind != "conv":
                pairs += counts
        if not n_jobs:
            total += 1
        if weighted:
            total += 1                                     # SETTLE: the last pair write
        e = act["emit"][l].astype(np.int64)
        padded = np.zeros((steps, g * lanes), np.int64)
        padded[:, :layer.n] = e
        per_group = padded.reshape(steps, g, lanes).sum(2)
        for t in range(steps):
            if weighted:
                acc = [pairs[t] + 2] * g if pairs[t] else [1] + [0] * (g - 1)
            else:
                acc = [0] * g
            total[t] += _update_cycles(acc, per_group[t].tolist(), drains=emits,
                                       tail_pending=rom, last=l == last)
    return total


def memory_blocks(bits_by_array: dict[str, tuple[int, int]], family: str) -> dict[str, int]:
    """Blocks per array given ``{name: (depth, width)}``; tiny arrays (< 1/4 block) count 0
    (synthesis keeps them in logic)."""
    block_bits, configs = FAMILIES[family]
    out = {}
    for name, (depth, width) in bits_by_array.items():
        if depth * width < block_bits // 4:
            out[name] = 0
            continue
        out[name] = min(ceil(width / w) * ceil(depth / d) for d, w in configs)
    return out


#: ``lut = offset + scale * raw`` per family, fitted by ``bench/calibrate_logic.py``.
LUT_FIT = {"ice40": (-171.8, 1.650), "ecp5": (0.0, 1.0)}  # ecp5: not fitted yet


def logic_estimate(net: Network, *, lanes: int = 1, family: str = "ice40",
                   raw: bool = False) -> dict[str, int]:
    """A first-order LUT4 and multiplier estimate; ``raw`` skips the per-family fit."""
    plan = _plan(net)
    luts = 120                                             # stream, step FSM
    dsps = 0
    for l, layer in enumerate(net.layers[1:], 1):
        incoming = [pp for pp in plan if pp.p.dst == l]
        per_lane = 2 * layer.v_bits + 2 * layer.acc_bits   # saturating add, compare, reset
        per_lane += sum(pp.p.w_bits + layer.acc_bits for pp in incoming
                        if pp.p.kind != "conv")            # weight select + accumulate
        per_lane += sum(pp.p.weight.shape[0] * (pp.p.w_bits + 2) for pp in incoming
                        if pp.p.kind == "conv")
        luts += lanes * per_lane + 60 + 25 * len(incoming)
        if layer.beta not in (0, 1 << layer.beta_shift):
            dsps += lanes                                  # the leak multiply
    for pp in plan:
        luts += 40 + 3 * pp.slots * pp.pre.n.bit_length()  # counts and slot logic
    if not raw:
        offset, scale = LUT_FIT[family]
        luts = offset + scale * luts
    return {"lut": int(round(luts)), "dsp": int(dsps)}


@dataclass
class Estimate:
    """What the core for a network costs on a family, before synthesis."""

    family: str
    lanes: int
    clock_mhz: float
    memory_bits: dict[str, int]
    blocks: dict[str, int]
    lut: int
    dsp: int
    cycles_per_step: float            # mean over the activity given
    cycles_max: int
    steps_per_sample: int
    extra: dict = field(default_factory=dict)

    @property
    def steps_per_s(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_step

    @property
    def samples_per_s(self) -> float:
        return self.steps_per_s / self.steps_per_sample

    def to_json(self) -> dict:
        return {"family": self.family, "lanes": self.lanes, "clock_mhz": self.clock_mhz,
                "memory_bits": self.memory_bits,
                "memory_bits_total": sum(self.memory_bits.values()),
                "blocks": self.blocks, "blocks_total": sum(self.blocks.values()),
                "lut": self.lut, "dsp": self.dsp,
                "cycles_per_step": round(self.cycles_per_step, 1), "cycles_max": self.cycles_max,
                "steps_per_sample": self.steps_per_sample,
                "steps_per_s": round(self.steps_per_s, 1),
                "samples_per_s": round(self.samples_per_s, 2)}


def estimate(net: Network, act: dict, *, family: str, clock_mhz: float, lanes: int = 1,
             records_per_step: float | None = None) -> Estimate:
    """Estimate memories, logic and speed of the core for ``net`` on ``family``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    cycles = step_cycles(net, act, lanes=lanes)
    records = act["records"] if records_per_step is None else \
        np.full_like(cycles, records_per_step)
    per_step = cycles + records + 2      # + the input records, END and the RECV hand-over
    shapes = memory_shapes(net, lanes=lanes)
    logic = logic_estimate(net, lanes=lanes, family=family)
    return Estimate(family=family, lanes=lanes, clock_mhz=clock_mhz,
                    memory_bits={k: d * w for k, (d, w) in shapes.items()},
                    blocks=memory_blocks(shapes, family), lut=logic["lut"], dsp=logic["dsp"],
                    cycles_per_step=float(per_step.mean()), cycles_max=int(per_step.max()),
                    steps_per_sample=len(cycles))
