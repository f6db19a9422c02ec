"""Cost model of the network core: cycles per step from activity, memory blocks, logic."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

import numpy as np

from model.ir import Network
from .memplan import (block_membranes, projection_plan, memory_bits, memory_kinds,
                      memory_shapes, supported, weight_bank_depth, weight_rows)
from .words import live_bits
from .delay_line import line_capacity
from .calibration import PATH, calibration
from .devices import Device, largest, planned, target
from .families import FAMILIES, blocks_of
from .lif import leak_multipliers

__all__ = ["FAMILIES", "step_cycles", "activity", "job_costs", "memory_port_bound",
           "memory_blocks", "weight_blocks", "spram_blocks", "offchip_bits", "memory_shapes",
           "logic_estimate", "with_membranes", "Estimate", "estimate"]

def activity(net: Network, trace, x: np.ndarray | None, forced: dict | None) -> dict:
    """What the core's work depends on, from a reference run.

    Returns ``{"emit": {layer: (T, n) bool}, "records": (T,) input records}``: the values each
    layer hands on (non-zero inputs for layer 0, own spikes OR forced for LIF layers) and the
    step's input records (non-zero inputs and forced neurons, at least one per step), and
    whether each step's last record is an input value.
    """
    steps = trace.steps
    emitted = {0: (np.zeros((steps, 0), bool) if x is None or not np.asarray(x).size
                   else np.asarray(x) != 0)}
    for l in range(1, len(net.layers)):
        s = trace.spikes.get(l, np.zeros((steps, net.layers[l].n), np.uint8)).astype(bool)
        f = (forced or {}).get(l)
        emitted[l] = s | (np.asarray(f).astype(bool) if f is not None else False)
    inputs = emitted[0].sum(1) if emitted[0].shape[1] else np.zeros(steps, np.int64)
    records = inputs.copy()
    for f in (forced or {}).values():
        records = records + np.asarray(f).astype(bool).sum(1)
    # The step's last record is an input value (not a forced neuron, not an empty record).
    return {"emit": emitted, "records": np.maximum(1, records),
            "last_is_input": (inputs > 0) & (records == inputs)}


def _arrivals(pp, emitted: np.ndarray, steps: int, tap: int) -> np.ndarray:
    """(T, n_pre) bool: which presynaptic values a gather job of ``pp`` (tap ``tap``) reads."""
    n = pp.pre.n
    if emitted.shape[1] == 0:
        return np.zeros((steps, n), bool)
    d = pp.p.delays_of_pre(n) + tap
    out = np.zeros((steps, n), bool)
    for j in range(n):
        if d[j] < steps:
            out[d[j]:, j] = emitted[:steps - d[j], j]
    return out


def job_costs(net: Network, act: dict, *, lanes: int) -> dict:
    """Per layer, per step: gather cycles and pairs E (see ``docs/hardware.md``).

    A dense/taps job that walks a list (one delay for the projection, or the whole window of a
    taps projection's delays) costs 1 cycle when the list is empty, else 3 + the sum over its
    entries of the entry's non-zero elements; a job that scans
    per-neuron delays costs 3 + the sum over all G_pre words of max(1, non-zero elements)
    (a word's read, its arrival register A and W: 3 cycles before W's first pair).
    Pairs are the non-zero elements of these jobs; ``last_emits`` tells whether the layer's
    last job ends on a pair (which then hands group 0 off itself). A conv projection's loader runs
    beside them (a word's read, then its arrival register); ``ready`` is the cycle from which
    the group-0 marker may go: for a list, 1 if empty else entries + 3; for a per-neuron scan,
    the number of words group 0 needs + 2.
    """
    P = lanes
    steps = len(next(iter(act["emit"].values())))
    out = {l: {"gather": np.zeros(steps, np.int64), "pairs": np.zeros(steps, np.int64),
               "ready": np.zeros(steps, np.int64), "jobs": 0,
               "last_emits": np.zeros(steps, bool)}
           for l in range(1, len(net.layers))}
    for pp in projection_plan(net):
        em = act["emit"][pp.p.src]
        n = pp.pre.n
        G = ceil(n / P)
        # A taps projection is one job over the non-zero words of its whole window.
        reads = [list(range(pp.taps))] if pp.mode == "window" else \
            [[tap] for tap in range(pp.taps)]
        for taps in reads:
            per_word = 0
            entries = 0
            for tap in taps:
                a = _arrivals(pp, em, steps, tap)
                pad = np.zeros((steps, G * P), bool)
                pad[:, :n] = a
                pw = pad.reshape(steps, G, P).sum(2)
                # Input lines list one entry per non-zero element, LIF lines one per word.
                entries = entries + (pw.sum(1) if pp.p.src == 0 else (pw > 0).sum(1))
                per_word = per_word + pw
            o = out[pp.p.dst]
            if pp.p.kind == "conv":
                if pp.per_lane:
                    c = (pp.p.weight.shape[0] - 1) // 2
                    ready = np.full(steps, min(G, (P - 1 + c) // P + 1) + 2)
                else:
                    ready = np.where(entries > 0, entries + 3, 1)
                o["ready"] = np.maximum(o["ready"], ready)
                continue
            o["jobs"] += 1
            if pp.per_lane:
                cost = 3 + np.maximum(1, per_word).sum(1)
                o["last_emits"] = per_word[:, -1] > 0
            else:
                cost = np.where(entries > 0, 3 + per_word.sum(1), 1)
                o["last_emits"] = entries > 0
            o["gather"] += cost
            o["pairs"] += per_word.sum(1)
    return out


#: Cycles from the last token issued by a layer to the moment the next layer starts: the
#: token stages T0 and T1, H, S, R, B2, and the registered end (see ``docs/hardware.md``);
#: layers with weights add T2 (and T3, T4 with input values).
TAIL = 7
#: For the last layer: from its last token to the acceptance of its last output record.
TAIL_LAST = 6


def step_cycles(net: Network, act: dict, *, lanes: int = 1) -> np.ndarray:
    """Cycles from accepting a step's last input record to accepting its last output record,
    per step, with ``o`` always ready (see ``docs/hardware.md`` for the derivation)."""
    supported(net, lanes=lanes)
    plan = projection_plan(net)
    steps = len(next(iter(act["emit"].values())))
    total = np.ones(steps, np.int64)                      # WAIT0
    # WAIT0 also waits for the write of the last input record when it is an input value.
    if any(pp.p.src == 0 for pp in plan):
        total += act["last_is_input"]
    jobs = job_costs(net, act, lanes=lanes)
    last = len(net.layers) - 1
    for l in range(1, len(net.layers)):
        G = ceil(net.layers[l].n / lanes)
        j = jobs[l]
        # Jobs and conv loaders, then the marker of group 0 (unless the last pair handed it
        # off), then the replay: E pairs per group, or one marker when E = 0.
        handed = j["last_emits"] & (j["ready"] <= j["gather"] - 1)
        start = np.where(handed, j["gather"], np.maximum(j["gather"], j["ready"]) + 1)
        total += start + (G - 1) * np.maximum(j["pairs"], 1)
        conv = any(pp.p.kind == "conv" for pp in plan if pp.p.dst == l)
        # The replay's tokens pass a register behind the pair list (rp) before T0: one
        # cycle more, unless they queue anyway behind groups held four cycles (a conv
        # layer whose groups have at most two pairs; see below).
        if G > 1:
            total += (j["pairs"] >= 3) if conv else 1
        if conv:
            # H holds a group four cycles (the kernel's sums take three registered stages):
            # groups at least four cycles apart, and the last group fires three cycles later,
            # one less when it already waited for the one before (G > 1 and E < 4).
            e = j["pairs"]
            total += (G - 1) * (np.maximum(e, 4) - np.maximum(e, 1)) + 3 - ((G > 1) & (e <= 3))
        if l == last:
            total += TAIL_LAST - (1 if G == 1 else 0)
        else:
            # The next layer starts once the last group's spikes, written from a register
            # a cycle after B2, have landed in the delay lines.
            total += TAIL - (1 if G == 1 else 0) + any(pp.p.src == l for pp in plan)
        # Token stages after the weight read: T2 (the registered weight word) in a layer with
        # dense/taps projections, T3 and T4 (the selected weight, then the product, each
        # registered) when one carries input values.
        weighted = [pp for pp in plan if pp.p.dst == l and pp.p.kind != "conv"]
        total += bool(weighted) + 2 * any(pp.value_bits for pp in weighted)
    return total


def memory_port_bound(net: Network, act: dict, *, lanes: int = 1,
                      fixed: int = 0) -> np.ndarray:
    """The memory-port lower bound per step: sum over layers of (E_l + 1) * ceil(n_l / P)
    plus ``fixed`` cycles per layer (see ``docs/hardware.md``)."""
    jobs = job_costs(net, act, lanes=lanes)
    total = 0
    for l in range(1, len(net.layers)):
        total = total + (jobs[l]["pairs"] + 1) * ceil(net.layers[l].n / lanes) + fixed
    return np.asarray(total)


def memory_blocks(shapes: dict[str, tuple], family: str,
                  kinds: dict[str, str] | None = None) -> dict[str, int]:
    """Block RAMs per array given ``{name: (depth, width[, count])}`` and the weight arrays'
    memory ``kinds``: arrays in SPRAM, LUT RAM or off chip (``loaded``) take none; arrays
    without a kind take what Yosys would choose for them (:func:`~rtl.families.blocks_of`
    ``"auto"``)."""
    kinds = kinds or {}
    out = {}
    for name, shape in shapes.items():
        kind = kinds.get(name)
        if kind is None:      # no ram_style: what Yosys picks (bias and weights are ROMs)
            out[name] = blocks_of("auto", family, *shape,
                                  rom=name.endswith((".bias", ".weights")))
        else:
            out[name] = blocks_of(kind, family, *shape) if kind == "block" else 0
    return out


def weight_blocks(net: Network, blocks: dict[str, int], kinds: dict[str, str], *,
                  lanes: int, family: str) -> dict[str, int]:
    """``blocks`` with each weight array in block RAM counted as Yosys maps it: bank by bank
    (:func:`~rtl.memplan.weight_bank_depth`), each without the bit columns that are constant
    in that bank (:func:`rtl.words.live_bits`; a sparse or one-signed working memory has many)."""
    out = dict(blocks)
    for pp in projection_plan(net):
        name = f"proj{pp.index}.weights"
        if pp.p.kind == "conv" or kinds.get(name) != "block":
            continue
        bank = weight_bank_depth(net, pp.index, lanes=lanes, family=family)
        rows = weight_rows(pp, lanes)
        live = live_bits(rows, pp.p.w_bits, bank)
        out[name] = sum(blocks_of("block", family, min(bank, len(rows) - b * bank), bits)
                        for b, bits in enumerate(live))
    return out


def spram_blocks(shapes: dict[str, tuple], kinds: dict[str, str]) -> dict[str, int]:
    """SPRAM blocks per array in SPRAM."""
    return {name: blocks_of("spram", "ice40", *shapes[name])
            for name, kind in kinds.items() if kind == "spram"}


def offchip_bits(shapes: dict[str, tuple], kinds: dict[str, str]) -> dict[str, int]:
    """Bits per ``loaded`` array: kept off chip (an external memory, a host upload), loaded
    through ``wl`` at one word per cycle."""
    out = {}
    for name, kind in kinds.items():
        if kind == "loaded":
            depth, width, *count = shapes[name]
            out[name] = depth * width * (count[0] if count else 1)
    return out


#: Names of :func:`logic_features`, in order.
FEATURES = ("control", "registers", "adders", "leak", "select", "lines", "small_memory")


def lut_fit(family: str) -> tuple[float, ...]:
    """LUT4 per unit of each feature (in the order of :data:`FEATURES`) on ``family``:
    ``network_lut`` of ``rtl/calibration.json``, fitted by ``bench/calibrate_logic.py`` to
    real builds."""
    data = calibration()
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{PATH}: features {data['features']} are not {list(FEATURES)}")
    return tuple(float(c) for c in data["network_lut"][family])


def with_membranes(net: Network, kinds: dict[str, str], *, lanes: int,
                   device: Device) -> dict[str, str]:
    """``kinds`` and ``block`` for the membrane arrays the core puts in block RAM
    (:func:`~rtl.memplan.block_membranes`): the kinds :func:`memory_blocks` counts by."""
    return {**kinds, **{name: "block" for name in
                        block_membranes(net, kinds, lanes=lanes, device=device)}}


def logic_features(net: Network, *, lanes: int = 1, family: str | None = None,
                   kinds: dict[str, str] | None = None,
                   device: str | Device | None = None) -> dict[str, float]:
    """Bit counts that the core's logic grows with:

    * ``control`` — layers plus gather jobs (the state machine and its sequencing);
    * ``registers`` — pipeline registers per lane (accumulator, H, S, R, weight words, value
      products), the conv register vectors and windows, the word extractors;
    * ``adders`` — adder and comparator bits per lane (accumulate, bias + conv + leak, saturate,
      threshold, reset; the conv kernel's terms; the shifted adds of input values);
    * ``leak`` — the leak multiplies done as shifted adds (set bits of beta x v_bits): leaks of
      at most two set bits, and those beyond the device's multiplier blocks;
    * ``select`` — multiplexer bits: weight banks and projections, conv windows;
    * ``lines`` — delay-line counts and pointers;
    * ``small_memory`` — bits of memories too small for a block RAM (kept in logic) or put in
      LUT RAM.

    The core is planned for ``device``, else for the largest device of ``family`` (default
    the iCE40UP5K, see :func:`rtl.devices.target`); ``kinds`` are the weight arrays' memory kinds (default:
    :func:`~rtl.memplan.memory_kinds`).
    """
    dev = target(family, device) or largest("ice40")
    family = dev.family
    if kinds is None:
        kinds = memory_kinds(net, lanes=lanes, device=dev)
    plan = projection_plan(net)
    P = lanes
    f = dict.fromkeys(FEATURES, 0.0)
    f["control"] = len(net.layers)
    on_dsp = leak_multipliers(net.layers[1:], P, dev.dsp, family=dev.family)
    for l, layer in enumerate(net.layers[1:], 1):
        A, V = layer.acc_bits, layer.v_bits
        G = ceil(layer.n / P)
        incoming = [pp for pp in plan if pp.p.dst == l]
        weighted = [pp for pp in incoming if pp.p.kind != "conv"]
        f["control"] += len(weighted)
        f["registers"] += P * (3 * A + 2 * V + 6)
        f["adders"] += P * (2 * A + 3 * V)
        if layer.beta not in (0, 1 << layer.beta_shift):
            f["leak"] += (P - sum(on_dsp[l - 1])) * bin(layer.beta).count("1") * V
        if weighted:
            wmax = max(pp.p.w_bits for pp in weighted)
            vb = max(pp.value_bits for pp in weighted)
            banks = sum(ceil(pp.weight_depth(P) / weight_bank_depth(
                net, pp.index, lanes=P, family=family,
                kind=kinds.get(f"proj{pp.index}.weights", "block"))) for pp in weighted)
            f["registers"] += P * (A + wmax * (banks + (2 if vb else 0)))
            f["adders"] += P * (A + wmax * vb)
            f["select"] += P * wmax * (banks - 1 + len(weighted) - 1)
            eb = max(pp.element_bits for pp in weighted)
            f["registers"] += P * (1 + eb)
        for pp in incoming:
            if pp.p.kind == "conv":
                K, eb = pp.p.weight.shape[0], pp.element_bits
                f["registers"] += pp.pre.n * eb + (P + K - 1) * eb
                f["adders"] += P * K * (pp.p.w_bits + 2)
                # the window pick: a G-way multiplexer, about three inputs per LUT4
                f["select"] += ((G - 1) * (P + K - 1) * eb) / 3 + pp.pre.n * eb
    for pp in plan:
        cb = max(1, line_capacity(pp.pre.n, lanes, sparse=pp.p.src == 0).bit_length())
        if pp.mode == "window":     # start pointers into the FIFO rather than counts
            cb += max(1, pp.slots.bit_length())
        f["lines"] += pp.slots * cb + 4 * (cb + max(1, pp.slots.bit_length()))
        if pp.per_lane:
            f["lines"] += P * 2 * max(1, (pp.slots * ceil(pp.pre.n / P)).bit_length())
    shapes = memory_shapes(net, lanes=lanes)
    blocks = memory_blocks(shapes, family, with_membranes(net, kinds, lanes=lanes, device=dev))
    f["small_memory"] = float(sum(s.depth * s.width * s.count for k, s in shapes.items()
                                  if blocks[k] == 0 and kinds.get(k) not in ("spram",
                                                                             "loaded")))
    return f


def logic_estimate(net: Network, *, lanes: int = 1, family: str | None = None,
                   kinds: dict[str, str] | None = None,
                   device: str | Device | None = None) -> dict[str, int]:
    """LUT4 and multiplier estimate: the fitted per-family cost of :func:`logic_features`
    (planned for ``device``, else the largest device of ``family``)."""
    dev = target(family, device) or largest("ice40")
    family = dev.family
    feats = logic_features(net, lanes=lanes, kinds=kinds, device=dev)
    luts = sum(c * feats[k] for c, k in zip(lut_fit(family), FEATURES))
    # The leak multiplies on multiplier blocks (the rest are shifted adds, counted by the
    # ``leak`` feature); the core makes the same choice.
    dsps = sum(map(sum, leak_multipliers(net.layers[1:], lanes, dev.dsp, family=dev.family)))
    return {"lut": int(round(luts)), "dsp": int(dsps)}


@dataclass
class Estimate:
    """What the core for a network costs on a device, before synthesis."""

    family: str
    lanes: int
    clock_mhz: float
    memory_bits: dict[str, int]
    blocks: dict[str, int]            # block RAMs per array
    lut: int
    dsp: int
    cycles_per_step: float            # mean over the activity given
    cycles_max: int
    steps_per_sample: int
    kinds: dict[str, str] = field(default_factory=dict)    # weight arrays' memory kinds
    spram: dict[str, int] = field(default_factory=dict)    # SPRAM blocks per array
    offchip: dict[str, int] = field(default_factory=dict)  # bits per loaded (off-chip) array
    device: str = ""                  # the device planned for (a name of rtl.devices.DEVICES)

    @property
    def steps_per_s(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_step

    @property
    def samples_per_s(self) -> float:
        return self.steps_per_s / self.steps_per_sample

    def to_json(self) -> dict:
        return {"family": self.family, "device": self.device, "lanes": self.lanes,
                "clock_mhz": self.clock_mhz,
                "memory_bits": self.memory_bits,
                "memory_bits_total": sum(self.memory_bits.values()),
                "blocks": self.blocks, "blocks_total": sum(self.blocks.values()),
                "memory_kinds": self.kinds, "spram": self.spram,
                "spram_total": sum(self.spram.values()),
                "offchip_bits": self.offchip, "offchip_bits_total": sum(self.offchip.values()),
                "lut": self.lut, "dsp": self.dsp,
                "cycles_per_step": round(self.cycles_per_step, 1), "cycles_max": self.cycles_max,
                "steps_per_sample": self.steps_per_sample,
                "steps_per_s": round(self.steps_per_s, 1),
                "samples_per_s": round(self.samples_per_s, 2)}


def estimate(net: Network, act: dict, *, family: str | None = None, clock_mhz: float,
             lanes: int = 1, records_per_step: float | None = None,
             memories: dict[str, str] | None = None,
             device: str | Device | None = None) -> Estimate:
    """Estimate memories, logic and speed of the core for ``net`` on ``device`` (else the
    largest device of ``family``; weight arrays' memory kinds: ``memories``, the others
    automatic, see :func:`~rtl.memplan.memory_kinds`). ``loaded`` arrays count no block
    (``offchip`` lists their bits); a weight array larger than the device's on-chip RAM and
    not ``loaded`` raises :class:`ValueError`."""
    dev = planned(family, device)
    family = dev.family
    cycles = step_cycles(net, act, lanes=lanes)
    records = act["records"] if records_per_step is None else \
        np.full_like(cycles, records_per_step)
    per_step = cycles + records + 2      # + the input records, END and the RECV hand-over
    shapes = memory_shapes(net, lanes=lanes)
    kinds = memory_kinds(net, lanes=lanes, memories=memories, device=dev)
    logic = logic_estimate(net, lanes=lanes, kinds=kinds, device=dev)
    return Estimate(family=family, lanes=lanes, clock_mhz=clock_mhz,
                    memory_bits=memory_bits(net, lanes=lanes),
                    blocks=weight_blocks(net, memory_blocks(
                        shapes, family, with_membranes(net, kinds, lanes=lanes, device=dev)),
                        kinds, lanes=lanes, family=family), lut=logic["lut"],
                    dsp=logic["dsp"], kinds=kinds, spram=spram_blocks(shapes, kinds),
                    offchip=offchip_bits(shapes, kinds), device=dev.name,
                    cycles_per_step=float(per_step.mean()), cycles_max=int(per_step.max()),
                    steps_per_sample=len(cycles))
