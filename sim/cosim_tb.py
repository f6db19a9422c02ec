"""cocotb testbench: replay reference vectors into the generated core and check every step.

Loaded by the simulator (Icarus or Verilator) through :mod:`sim.cosim`; not imported otherwise.
It reads its job from the JSON file named by ``POLYCHRONY_COSIM``: the port manifest, the
stimulus/expected-trace ``.npz``, the seed, idle and stall probabilities and where to write the
result. Inputs are driven and outputs sampled on the falling clock edge, so that each handshake
decision is taken on settled values and lands on the next rising edge.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


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


@cocotb.test()
async def replay(dut):
    job = json.loads(open(os.environ["POLYCHRONY_COSIM"]).read())
    man = job["manifest"]
    vec = np.load(job["vectors"], allow_pickle=False)
    lanes = man["lanes"]
    sizes = [l["n"] for l in man["layers"]]
    lif = list(range(1, len(sizes)))
    exp_v = {l: vec[f"v.{l}"] for l in lif}
    exp_s = {l: vec[f"spikes.{l}"] for l in lif if f"spikes.{l}" in vec.files}
    x = vec["x"] if "x" in vec.files else None
    forced = {int(k.split(".")[1]): vec[k] for k in vec.files if k.startswith("forced.")}
    steps = exp_v[lif[0]].shape[0]
    order = [(l, g) for l in lif for g in range(-(-sizes[l] // lanes))]
    rng = random.Random(job["seed"])
    idle, stall = job["idle"], job["stall"]
    fin, fout = man["in"]["fields"], man["out"]["fields"]
    ports = ("payload", "valid", "ready")
    i_payload, i_valid, i_ready = (getattr(dut, man["in"][k]) for k in ports)
    o_payload, o_valid, o_ready = (getattr(dut, man["out"][k]) for k in ports)

    records = [r for t in range(steps) for r in _records(fin, x, forced, t)]
    got_v = {l: np.zeros_like(exp_v[l]) for l in lif}
    got_s = {l: np.zeros_like(exp_s[l]) for l in exp_s}
    mismatch = None

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    i_valid.value = 0
    o_ready.value = 0
    i_payload.value = 0
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    cycles = 0
    load = man.get("load")
    if load:   # weight arrays in SPRAM: stream their words first, with idle cycles
        words = [int(w, 16) for w in
                 (Path(job["manifest_dir"]) / load["image"]).read_text().split()]
        if len(words) != load["words"]:
            raise ValueError(f"{load['image']}: {len(words)} words, manifest says "
                             f"{load['words']}")
        l_payload, l_valid, l_ready = (getattr(dut, load[k]) for k in ports)
        l_valid.value = 0
        k, presenting = 0, False
        while k < len(words) and cycles < job["max_cycles"]:
            await FallingEdge(dut.clk)
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
        await FallingEdge(dut.clk)
        l_valid.value = 0

    nxt = 0                # next input record
    presenting = False
    t, q = 0, 0            # next expected output: step t, record q of `order`
    budget = job["max_cycles"]
    while t < steps and cycles < budget:
        await FallingEdge(dut.clk)
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
                mismatch = mismatch or {"t": t, "layer": order[q][0], "neuron": -1,
                                        "field": "payload", "expected": "0/1 bits",
                                        "got": str(raw)}
                break
            word = raw.to_unsigned()
            l, g = order[q]
            checks = [("layer", l, _field(word, fout["layer"]), -1),
                      ("index", g * lanes, _field(word, fout["index"]), -1),
                      ("last", int(q == len(order) - 1), _field(word, fout["last"]), -1)]
            for k in range(min(lanes, sizes[l] - g * lanes)):
                i = g * lanes + k
                spike = (_field(word, fout["spike"]) >> k) & 1
                v = _field(word, fout["v"], k)
                got_v[l][t, i] = v
                if l in exp_s:
                    got_s[l][t, i] = spike
                    checks.append(("spike", int(exp_s[l][t, i]), spike, i))
                checks.append(("v", int(exp_v[l][t, i]), v, i))
            if mismatch is None:
                for field, e, g_, i in checks:
                    if e != g_:
                        mismatch = {"t": t, "layer": l, "neuron": i, "field": field,
                                    "expected": e, "got": g_}
                        break
            q += 1
            if q == len(order):
                t, q = t + 1, 0
            if mismatch is not None and job["stop_at_first"]:
                break
    if presenting:
        i_valid.value = 0

    result = {"steps": int(t), "steps_expected": int(steps), "cycles": cycles,
              "mismatch": mismatch, "timed_out": bool(t < steps and mismatch is None)}
    if result["timed_out"]:
        # A stalled core is usually an X somewhere: name the signals that hold one.
        result["x_signals"] = [n for n in _unresolved(dut) if not n.startswith(("$", "_"))][:40]
    np.savez(job["got"], **{f"v.{l}": a[:t] for l, a in got_v.items()},
             **{f"spikes.{l}": a[:t] for l, a in got_s.items()})
    with open(job["result"], "w") as f:
        json.dump(result, f)
    assert not result["timed_out"], f"core stalled: {t} of {steps} steps in {cycles} cycles"
    assert mismatch is None, f"first mismatch: {mismatch}"
