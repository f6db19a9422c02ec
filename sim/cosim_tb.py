"""cocotb testbench: replay reference vectors into the generated core and check every step.

Loaded by the simulator (Icarus or Verilator) through :mod:`sim.cosim`; not imported otherwise.
It reads its job from the JSON file named by ``POLYCHRONY_COSIM``: the port manifest, one or
more runs (each a stimulus/expected-trace ``.npz`` and where to write what the core produced),
the seed, idle and stall probabilities and where to write the result. Inputs are driven and
outputs sampled on the falling clock edge, so that each handshake decision is taken on settled
values and lands on the next rising edge.

The core is reset once, takes its load image on ``wl`` (if it has one), then runs the
stimuli one after the other with a reset between them: the weights stay loaded (the core's
``loaded`` flag survives resets), so a recall experiment of many patterns compiles the model
and loads the weights once. Every output record of every step is compared with the one the
reference trace implies (all fields, bit for bit); a run stops at its first divergence when
``stop_at_first`` is set, and then no later run starts.

With ``idle = stall = 0`` the testbench does not wake on every clock: it waits for the ready
and valid signals to rise (the core spends most cycles computing), which makes long runs on
Verilator several times faster; the cycle counts are the same as with the per-cycle loop.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import FallingEdge, First, RisingEdge, Timer

PERIOD_NS = 10


def _field(word: int, f: dict, k: int = 0) -> int:
    """Element ``k`` of field ``f`` of a flattened payload word."""
    val = (word >> (f["offset"] + k * f["width"])) & ((1 << f["width"]) - 1)
    if f["signed"] and val >> (f["width"] - 1):
        val -= 1 << f["width"]
    return val


def _bit(signal) -> int:
    # Icarus leaves combinational outputs at X until their inputs first change: read X as 0.
    return int(str(signal.value) == "1")


def _unresolved(dut) -> list[str]:
    names = []
    for handle in dut:
        try:
            value = handle.value
        except Exception:  # memories, scopes
            continue
        if hasattr(value, "is_resolvable") and not value.is_resolvable:
            names.append(handle._name)
    return sorted(names)


def _pack(fields: dict, **values) -> int:
    word = 0
    for name, val in values.items():
        f = fields[name]
        word |= (int(val) & ((1 << f["width"]) - 1)) << f["offset"]
    return word


def _records(fin: dict, x, forced: dict, t: int) -> list[int]:
    """The input records of step t (same order as rtl.interface.stimulus_records)."""
    events = []
    if x is not None:
        events += [(0, j, int(x[t, j])) for j in np.flatnonzero(x[t])]
    for l in sorted(forced):
        events += [(l, j, 1) for j in np.flatnonzero(forced[l][t])]
    if not events:
        return [_pack(fin, index=0, value=0, layer=0, valid=0, last=1)]
    return [_pack(fin, index=j, value=v, layer=l, valid=1, last=int(q == len(events) - 1))
            for q, (l, j, v) in enumerate(events)]


def _payload_bits(fields: dict) -> int:
    return max(f["offset"] + f["width"] * f["count"] for f in fields.values())


def _to_ints(bits: np.ndarray) -> list[int]:
    """Rows of a (rows, width) 0/1 matrix as integers (column 0 the least significant)."""
    packed = np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")
    return [int.from_bytes(r.tobytes(), "little") for r in packed]


def _from_ints(words: list[int], width: int) -> np.ndarray:
    """Inverse of :func:`_to_ints`: a (len(words), width) uint8 bit matrix."""
    nbytes = (width + 7) // 8
    raw = np.frombuffer(b"".join(w.to_bytes(nbytes, "little") for w in words), np.uint8)
    return np.unpackbits(raw.reshape(len(words), nbytes), axis=1,
                         bitorder="little")[:, :width]


def _put(bits: np.ndarray, f: dict, values: np.ndarray) -> None:
    """Write ``values`` ((rows, count) integers) into field ``f`` of a bit matrix."""
    w = f["width"]
    v = np.asarray(values, np.int64).reshape(len(bits), -1) & ((1 << w) - 1)
    for k in range(v.shape[1]):
        for b in range(w):
            bits[:, f["offset"] + k * w + b] = (v[:, k] >> b) & 1


def _get(bits: np.ndarray, f: dict) -> np.ndarray:
    """Field ``f`` of a bit matrix as (rows, count) integers, sign-extended when signed."""
    w = f["width"]
    out = np.zeros((len(bits), f["count"]), np.int64)
    for k in range(f["count"]):
        for b in range(w):
            out[:, k] |= bits[:, f["offset"] + k * w + b].astype(np.int64) << b
    if f["signed"]:
        out = np.where(out >> (w - 1) & 1, out - (1 << w), out)
    return out


class Checker:
    """The output records one run expects, as whole payload words, and what came back."""

    def __init__(self, man: dict, vec):
        self.lanes = lanes = man["lanes"]
        self.sizes = sizes = [l["n"] for l in man["layers"]]
        # The layers whose records the core sends (a stack core may observe fewer).
        self.lif = lif = man.get("observe") or list(range(1, len(sizes)))
        self.exp_v = {l: vec[f"v.{l}"] for l in lif}
        self.exp_s = {l: vec[f"spikes.{l}"] for l in lif if f"spikes.{l}" in vec.files}
        self.steps = steps = self.exp_v[lif[0]].shape[0]
        self.order = order = [(l, g) for l in lif for g in range(-(-sizes[l] // lanes))]
        self.fout = fout = man["out"]["fields"]
        self.width = width = _payload_bits(fout)
        # Expected words, row t * len(order) + q; a layer without a spike raster (read-out)
        # is not compared on its spike field.
        bits = np.zeros((steps, len(order), width), np.uint8)
        self.masks = []
        q0 = 0
        full = (1 << width) - 1
        for l in lif:
            G = -(-sizes[l] // lanes)
            rows = bits[:, q0:q0 + G].reshape(steps * G, width)
            pad = np.zeros((steps, G * lanes), np.int64)
            pad[:, :sizes[l]] = self.exp_v[l]
            _put(rows, fout["v"], pad.reshape(steps * G, lanes))
            if l in self.exp_s:
                sp = np.zeros((steps, G * lanes), np.int64)
                sp[:, :sizes[l]] = self.exp_s[l]
                # One bit per lane, written as bits: a word of 64 lanes overflows int64.
                f = fout["spike"]
                assert f["width"] * f["count"] == lanes, f
                rows[:, f["offset"]:f["offset"] + lanes] = sp.reshape(steps * G, lanes)
            _put(rows, fout["layer"], np.full((steps * G, 1), l))
            _put(rows, fout["index"], np.tile(np.arange(G) * lanes, steps)[:, None])
            if l == lif[-1]:
                last = np.zeros((steps, G), np.int64)
                last[:, -1] = 1
                _put(rows, fout["last"], last.reshape(-1, 1))
            bits[:, q0:q0 + G] = rows.reshape(steps, G, width)
            f = fout["spike"]
            spike_bits = ((1 << (f["width"] * f["count"])) - 1) << f["offset"]
            self.masks += [full if l in self.exp_s else full & ~spike_bits] * G
            q0 += G
        self.expected = _to_ints(bits.reshape(steps * len(order), width)) if steps else []
        self.got: list[int] = []
        self.mismatch = None

    def check(self, t: int, q: int, word: int) -> None:
        """Record output record q of step t; note the first divergence."""
        self.got.append(word)
        if self.mismatch is not None:
            return
        mask = self.masks[q]
        if (word ^ self.expected[t * len(self.order) + q]) & mask == 0:
            return
        fout, lanes, sizes = self.fout, self.lanes, self.sizes
        l, g = self.order[q]
        checks = [("layer", l, _field(word, fout["layer"]), -1),
                  ("index", g * lanes, _field(word, fout["index"]), -1),
                  ("last", int(q == len(self.order) - 1), _field(word, fout["last"]), -1)]
        for k in range(min(lanes, sizes[l] - g * lanes)):
            i = g * lanes + k
            if l in self.exp_s:
                checks.append(("spike", int(self.exp_s[l][t, i]),
                               (_field(word, fout["spike"]) >> k) & 1, i))
            checks.append(("v", int(self.exp_v[l][t, i]), _field(word, fout["v"], k), i))
        for field, e, g_, i in checks:
            if e != g_:
                self.mismatch = {"t": t, "layer": l, "neuron": i, "field": field,
                                 "expected": e, "got": g_, "sim_ns": get_sim_time("ns")}
                return
        # Bits outside the fields the reference defines (lanes past a layer's end).
        self.mismatch = {"t": t, "layer": l, "neuron": -1, "field": "payload",
                         "expected": hex(self.expected[t * len(self.order) + q] & mask),
                         "got": hex(word & mask), "sim_ns": get_sim_time("ns")}

    def save(self, path: str) -> int:
        """Write the complete steps that came back (arrays ``v.<l>``, ``spikes.<l>``)."""
        done = len(self.got) // len(self.order)
        got_v = {l: np.zeros((done, self.sizes[l]), np.int64) for l in self.lif}
        got_s = {l: np.zeros((done, self.sizes[l]), np.uint8) for l in self.exp_s}
        if done:
            bits = _from_ints(self.got[:done * len(self.order)], self.width).reshape(
                done, len(self.order), self.width)
            q0 = 0
            for l in self.lif:
                G = -(-self.sizes[l] // self.lanes)
                rows = bits[:, q0:q0 + G].reshape(done * G, self.width)
                v = _get(rows, self.fout["v"]).reshape(done, G * self.lanes)
                got_v[l][:] = v[:, :self.sizes[l]]
                if l in got_s:
                    off = self.fout["spike"]["offset"]
                    sp = rows[:, off:off + self.lanes].reshape(done, G * self.lanes)
                    got_s[l][:] = sp[:, :self.sizes[l]]
                q0 += G
        np.savez(path, **{f"v.{l}": a for l, a in got_v.items()},
                 **{f"spikes.{l}": a for l, a in got_s.items()})
        return done


@cocotb.test()
async def replay(dut):
    job = json.loads(Path(os.environ["POLYCHRONY_COSIM"]).read_text())
    man = job["manifest"]
    rng = random.Random(job["seed"])
    idle, stall = job["idle"], job["stall"]
    fast = job["fast"]
    fin = man["in"]["fields"]
    ports = ("payload", "valid", "ready")
    i_payload, i_valid, i_ready = (getattr(dut, man["in"][k]) for k in ports)
    o_payload, o_valid, o_ready = (getattr(dut, man["out"][k]) for k in ports)
    clk = dut.clk

    def now() -> float:
        return get_sim_time("ns")

    async def reset():
        i_valid.value = 0
        o_ready.value = 0
        i_payload.value = 0
        dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(clk)
        dut.rst.value = 0
        return now()

    def cycles_since(t0: float) -> int:
        # At a falling edge: the falling edges since the rising edge at t0.
        return int(round((now() - t0) / PERIOD_NS + 0.5))

    async def until_high(signal, t0: float, budget: int) -> bool:
        """At a falling edge: wait for one where ``signal`` reads 1 (False past the budget).
        The core's outputs change only after rising edges."""
        while not _bit(signal):
            left = budget - cycles_since(t0)
            if left <= 0:
                return False
            await First(RisingEdge(signal), Timer(left * PERIOD_NS, unit="ns"))
            await FallingEdge(clk)
        return True

    cocotb.start_soon(Clock(clk, PERIOD_NS, unit="ns").start())
    t_rel = await reset()

    load_cycles = 0
    load = man.get("load")
    if load:   # weight arrays in SPRAM or loaded: stream their words first, with idle cycles
        words = [int(w, 16) for w in
                 (Path(job["manifest_dir"]) / load["image"]).read_text().split()]
        if len(words) != load["words"]:
            raise ValueError(f"{load['image']}: {len(words)} words, manifest says "
                             f"{load['words']}")
        l_payload, l_valid, l_ready = (getattr(dut, load[k]) for k in ports)
        l_valid.value = 0
        k, presenting, cycles = 0, False, 0
        budget = job["max_cycles"] + 4 * len(words)
        while k < len(words) and cycles < budget:
            await FallingEdge(clk)
            cycles += 1
            if not presenting:      # a word once offered stays until accepted
                if rng.random() < idle:
                    l_valid.value = 0
                    continue
                l_payload.value = words[k]
                l_valid.value = 1
                presenting = True
            if _bit(l_ready):
                k += 1             # accepted at the coming rising edge
                presenting = False
        await FallingEdge(clk)
        l_valid.value = 0
        load_cycles = cycles_since(t_rel)
        t_rel = now() + PERIOD_NS / 2       # the run's cycles start after the load

    shown = [0.0]

    def report(r: int, t: int, force: bool = False) -> None:
        """Run ``r`` has its first ``t`` steps back: said in the progress file (at most twice
        a second), which the parent process reads for its progress bar."""
        path = job.get("progress")
        if path is None or not (force or time.monotonic() - shown[0] >= 0.5):
            return
        shown[0] = time.monotonic()
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{r} {t}\n")
        os.replace(tmp, path)

    results = []
    for r, run in enumerate(job["runs"]):
        report(r, 0, force=True)
        if r:
            t_rel = await reset()
        wall = time.monotonic()
        vec = np.load(run["vectors"], allow_pickle=False)
        chk = Checker(man, vec)
        x = vec["x"] if "x" in vec.files else None
        forced = {int(k.split(".")[1]): vec[k] for k in vec.files if k.startswith("forced.")}
        steps, order = chk.steps, chk.order
        per_step = [_records(fin, x, forced, t) for t in range(steps)]
        budget = job["max_cycles"]
        t, q = 0, 0            # next expected output: step t, record q of `order`
        cycles = 0
        if fast:
            await FallingEdge(clk)
            while t < steps:
                # Not ready while the step's records go in: a record the core sent out of
                # turn waits, and is compared as the step's first output (never lost).
                o_ready.value = 0
                for rec in per_step[t]:
                    i_payload.value = rec
                    i_valid.value = 1
                    if not await until_high(i_ready, t_rel, budget):
                        break
                    await FallingEdge(clk)      # accepted at the rising edge before it
                else:
                    i_valid.value = 0
                    o_ready.value = 1
                    for q in range(len(order)):
                        if not await until_high(o_valid, t_rel, budget):
                            break
                        raw = o_payload.value
                        if not raw.is_resolvable:
                            chk.mismatch = chk.mismatch or {
                                "t": t, "layer": order[q][0], "neuron": -1,
                                "field": "payload", "expected": "0/1 bits", "got": str(raw)}
                            break
                        chk.check(t, q, raw.to_unsigned())
                        if chk.mismatch is not None and job["stop_at_first"]:
                            break
                        if q == len(order) - 1:
                            cycles = cycles_since(t_rel)
                        await FallingEdge(clk)      # taken at the rising edge before it
                    else:
                        t, q = t + 1, 0
                        report(r, t)
                        continue
                break
            if t < steps:
                cycles = cycles_since(t_rel)
            i_valid.value = 0
            o_ready.value = 0
        else:
            records = [rec for recs in per_step for rec in recs]
            nxt = 0                # next input record
            presenting = False
            while t < steps and cycles < budget:
                await FallingEdge(clk)
                cycles += 1
                # Producer: once a record is offered it stays until accepted (stream rule).
                if not presenting and nxt < len(records) and rng.random() >= idle:
                    i_payload.value = records[nxt]
                    i_valid.value = 1
                    presenting = True
                elif not presenting:
                    i_valid.value = 0
                if presenting and _bit(i_ready):
                    nxt += 1           # accepted at the coming rising edge
                    presenting = False
                # Consumer: random back-pressure.
                ready = int(rng.random() >= stall)
                o_ready.value = ready
                if ready and _bit(o_valid):
                    raw = o_payload.value
                    if not raw.is_resolvable:
                        chk.mismatch = chk.mismatch or {
                            "t": t, "layer": order[q][0], "neuron": -1, "field": "payload",
                            "expected": "0/1 bits", "got": str(raw)}
                        break
                    chk.check(t, q, raw.to_unsigned())
                    q += 1
                    if q == len(order):
                        t, q = t + 1, 0
                        report(r, t)
                    if chk.mismatch is not None and job["stop_at_first"]:
                        break
            i_valid.value = 0
            o_ready.value = 0
        done = chk.save(run["got"])
        report(r, int(done), force=True)
        res = {"steps": int(done), "steps_expected": int(steps), "cycles": int(cycles),
               "mismatch": chk.mismatch, "seconds": time.monotonic() - wall,
               "timed_out": bool(done < steps and chk.mismatch is None)}
        if res["timed_out"]:
            # A stalled core is usually an X somewhere: name the signals that hold one.
            res["x_signals"] = [n for n in _unresolved(dut)
                                if not n.startswith(("$", "_"))][:40]
        results.append(res)
        if not (res["mismatch"] is None and not res["timed_out"]) and job["stop_at_first"]:
            break
    with open(job["result"], "w") as f:
        json.dump({"load_cycles": load_cycles, "runs": results}, f)
    for r, res in enumerate(results):
        assert not res["timed_out"], f"run {r}: core stalled: {res['steps']} of " \
                                     f"{res['steps_expected']} steps in {res['cycles']} cycles"
        assert res["mismatch"] is None, f"run {r}: first mismatch: {res['mismatch']}"
