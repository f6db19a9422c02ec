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

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


def _field(word: int, f: dict) -> int:
    val = (word >> f["offset"]) & ((1 << f["width"]) - 1)
    if f["signed"] and val >> (f["width"] - 1):
        val -= 1 << f["width"]
    return val


def _bit(signal) -> int:
    # Icarus leaves combinational outputs at X until their inputs first change: read X as 0.
    return int(str(signal.value) == "1")


def _pack(fields: dict, **values) -> int:
    word = 0
    for name, val in values.items():
        f = fields[name]
        word |= (int(val) & ((1 << f["width"]) - 1)) << f["offset"]
    return word


@cocotb.test()
async def replay(dut):
    job = json.loads(open(os.environ["POLYCHRONY_COSIM"]).read())
    man = job["manifest"]
    vec = np.load(job["vectors"], allow_pickle=False)
    exp_spikes, exp_v = vec["spikes"], vec["v"]
    forced = vec["forced"] if "forced" in vec.files else None
    steps, n = exp_spikes.shape
    rng = random.Random(job["seed"])
    idle, stall = job["idle"], job["stall"]
    fin, fout = man["in"]["fields"], man["out"]["fields"]
    i_payload, i_valid, i_ready = (getattr(dut, man["in"][k]) for k in ("payload", "valid", "ready"))
    o_payload, o_valid, o_ready = (getattr(dut, man["out"][k]) for k in ("payload", "valid", "ready"))

    records = []
    for t in range(steps):
        idx = [] if forced is None else [int(j) for j in np.flatnonzero(forced[t])]
        if not idx:
            records.append(_pack(fin, index=0, valid=0, last=1))
        else:
            records += [_pack(fin, index=j, valid=1, last=int(q == len(idx) - 1))
                        for q, j in enumerate(idx)]

    got_spikes = np.zeros((steps, n), np.uint8)
    got_v = np.zeros((steps, n), np.int64)
    mismatch = None

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    i_valid.value = 0
    o_ready.value = 0
    i_payload.value = 0
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    nxt = 0                # next input record
    presenting = False
    t, i = 0, 0            # next expected output (step, neuron)
    cycles = 0
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
            # valid is dropped or replaced at the next falling edge
        # Consumer: random back-pressure.
        ready = int(rng.random() >= stall)
        o_ready.value = ready
        if ready and _bit(o_valid):
            word = o_payload.value.to_unsigned()
            index, spike = _field(word, fout["index"]), _field(word, fout["spike"])
            v, last = _field(word, fout["v"]), _field(word, fout["last"])
            got_spikes[t, i], got_v[t, i] = spike, v
            if mismatch is None:
                for field, e, g in (("index", i, index), ("last", int(i == n - 1), last),
                                    ("spike", int(exp_spikes[t, i]), spike),
                                    ("v", int(exp_v[t, i]), v)):
                    if e != g:
                        mismatch = {"t": t, "layer": 1, "neuron": i, "field": field,
                                    "expected": e, "got": g}
                        break
            i += 1
            if i == n:
                t, i = t + 1, 0
            if mismatch is not None and job["stop_at_first"]:
                break
    if presenting:
        i_valid.value = 0

    result = {"steps": int(t), "steps_expected": int(steps), "cycles": cycles,
              "mismatch": mismatch, "timed_out": bool(t < steps and mismatch is None)}
    np.savez(job["got"], spikes=got_spikes[:t], v=got_v[:t])
    with open(job["result"], "w") as f:
        json.dump(result, f)
    assert not result["timed_out"], f"core stalled: {t} of {steps} steps in {cycles} cycles"
    assert mismatch is None, f"first mismatch: {mismatch}"
