"""Generated Verilog under cocotb (Icarus and Verilator) against the reference, every step."""

import numpy as np
import pytest

from rtl.export import generate
from sim.cosim import CosimError, run_cosim
from sim.randnet import random_network, random_stimulus
from sim.reference import simulate

STEPS = 100


def _vectors(seed, steps=STEPS, profile="full"):
    net = random_network(seed, profile=profile)
    x, forced = random_stimulus(net, steps, seed)
    trace = simulate(net, x, forced, steps=steps)
    return net, x, forced, trace


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("seed, lanes, profile", [(100, 1, "full"), (101, 2, "full"),
                                                  (102, 3, "full"), (103, 4, "full"),
                                                  (104, 2, "wm")])
def test_random_networks_bit_exact(tmp_path, simulator, seed, lanes, profile):
    net, x, forced, trace = _vectors(seed, profile=profile)
    generate(net, tmp_path / "v", lanes=lanes)
    res = run_cosim(tmp_path / "v", trace, x, forced, simulator=simulator,
                    work_dir=tmp_path / "w", seed=seed, idle=0.2, stall=0.3)
    assert res.steps == STEPS
    assert res.mismatches == 0, res.describe()
    assert res.ok
    assert any(s.any() for s in trace.spikes.values()), "no spike at all tests little"


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_planted_delay_fault_is_reported(tmp_path, simulator):
    """A delay off by one in the RTL: the first divergence is found and both traces kept."""
    net, x, forced, trace = _vectors(104, profile="wm")
    generate(net, tmp_path / "v", fault="delay+1")
    res = run_cosim(tmp_path / "v", trace, x, forced, simulator=simulator,
                    work_dir=tmp_path / "w", seed=1)
    assert not res.ok and res.mismatches > 0
    m = res.first_mismatch
    assert set(m) == {"t", "layer", "neuron", "field", "expected", "got", "sim_ns"}
    # It really is the first: the saved traces agree on everything before (t, neuron).
    got = np.load(res.got_trace)
    exp = np.load(res.expected_trace)
    flat = m["t"] * net.layers[1].n + m["neuron"]
    for name in ("spikes.1", "v.1"):
        assert (got[name].reshape(-1)[:flat] == exp[name].reshape(-1)[:flat]).all()
    assert m["expected"] != m["got"]
    assert "first mismatch at t=" in res.describe()


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_waves_of_a_mismatch_name_the_file_and_time(tmp_path, simulator):
    """--waves: the dump exists, and the report points into it at the divergence."""
    net, x, forced, trace = _vectors(104, steps=30, profile="wm")
    generate(net, tmp_path / "v", fault="delay+1")
    res = run_cosim(tmp_path / "v", trace, x, forced, simulator=simulator,
                    work_dir=tmp_path / "w", seed=1, waves=True)
    assert not res.ok and res.waves is not None
    from pathlib import Path
    wave = Path(res.waves)
    assert wave.stat().st_size > 1000 and wave.suffix == (".fst" if simulator == "icarus"
                                                          else ".vcd")
    ns = res.first_mismatch["sim_ns"]
    assert ns > 0 and f"waves: {wave}, at {ns:g} ns" in res.describe()


def test_unknown_simulator_is_refused(tmp_path):
    net, x, forced, trace = _vectors(100, steps=5)
    generate(net, tmp_path / "v")
    with pytest.raises(CosimError, match="unknown simulator"):
        run_cosim(tmp_path / "v", trace, x, forced, simulator="modelsim",
                  work_dir=tmp_path / "w")


def test_generated_verilog_is_byte_identical(tmp_path):
    net = _vectors(7, steps=1)[0]
    generate(net, tmp_path / "a", lanes=2)
    generate(net, tmp_path / "b", lanes=2)
    for name in ("polychrony_core.v", "polychrony_core.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_spram_primitives_bit_exact(tmp_path, simulator):
    """Every weight array in SPRAM, built from SB_SPRAM256KA primitives as on the iCE40 (with
    Yosys's cell model): the testbench first streams the load image on ``wl`` (with idle
    cycles), then the run is bit-exact."""
    from rtl.memplan import memory_kinds
    net, x, forced, trace = _vectors(4, steps=40)
    memories = {k: "spram" for k in memory_kinds(net, lanes=2)}
    assert len(memories) >= 3
    man = generate(net, tmp_path / "v", lanes=2, memories=memories, spram_cells=True)
    assert man["cell_models"] == ["ice40"] and man["load"]["words"] > 0
    assert "SB_SPRAM256KA" in (tmp_path / "v" / man["verilog"]).read_text()
    res = run_cosim(tmp_path / "v", trace, x, forced, simulator=simulator,
                    work_dir=tmp_path / "w", seed=4, idle=0.2, stall=0.3)
    assert res.steps == 40 and res.mismatches == 0, res.describe()


def test_spram_load_image_matters(tmp_path):
    """The SPRAM starts empty: a load image with one word changed is caught."""
    from rtl.memplan import memory_kinds
    net, x, forced, trace = _vectors(4, steps=40)
    memories = {k: "spram" for k in memory_kinds(net, lanes=2)}
    man = generate(net, tmp_path / "v", lanes=2, memories=memories)
    hex_path = tmp_path / "v" / man["load"]["image"]
    words = hex_path.read_text().split()
    digits = len(words[0])
    words = [f"{(int(w, 16) ^ ((1 << man['load']['width']) - 1)):0{digits}x}" for w in words]
    hex_path.write_text("\n".join(words) + "\n")
    res = run_cosim(tmp_path / "v", trace, x, forced, simulator="icarus",
                    work_dir=tmp_path / "w", seed=4)
    assert res.mismatches > 0 and res.first_mismatch is not None


# --------------------------------------------------------------------------------------------
# Weights of memory kind "loaded" (filled through wl), several stimuli on one build.

def _wm_like(n=24, d=6, steps=40, runs=3, seed=7):
    """A working-memory-shaped network (one forced population, one recurrent taps projection
    of D delays, 8-bit weights) and ``runs`` cue rasters: forced for the first half of the
    run, free after (the network keeps firing on its own)."""
    from model.quantise import quantise_wm
    rng = np.random.default_rng(seed)
    net = quantise_wm(rng.normal(-0.1, 1.0, (n, n, d)), w_bits=8, threshold_float=3.0,
                      reset="zero")
    stims = []
    for r in range(runs):
        f = (np.random.default_rng([seed, r]).random((steps, n)) < 0.15) & \
            (np.arange(steps)[:, None] < steps // 2)
        forced = {1: f.astype(np.uint8)}
        stims.append((simulate(net, None, forced, steps=steps), None, forced))
    return net, stims


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_loaded_weights_many_stimuli_one_build(tmp_path, simulator):
    """The weight array as a 'loaded' RAM (no initial contents): one model build, the load
    image once, then three cue rasters back to back with a reset between them, each bit-exact
    at every step (Icarus with random idle and back-pressure, Verilator with the fast loop)."""
    from sim.cosim import run_cosim_batch
    net, stims = _wm_like()
    man = generate(net, tmp_path / "v", lanes=4, memories={"proj0.weights": "loaded"})
    assert man["memory_kinds"] == {"proj0.weights": "loaded"}
    assert man["load"]["words"] == 24 * 6 * 6 and man["load"]["width"] == 32
    text = (tmp_path / "v" / man["verilog"]).read_text()
    assert "module polychrony_loaded_ram" in text and "initial" not in \
        text[text.index("module polychrony_loaded_ram"):]
    idle, stall = (0.2, 0.3) if simulator == "icarus" else (0.0, 0.0)
    calls = []
    b = run_cosim_batch(tmp_path / "v", stims, simulator=simulator, work_dir=tmp_path / "w",
                        seed=3, idle=idle, stall=stall,
                        progress=lambda *a: calls.append(a))
    assert b.ok, b.describe()
    assert len(b.results) == 3 and b.load_cycles >= man["load"]["words"]
    # progress: the build, then steps compared over all three runs, never back, to the end
    assert calls[0] == ("build", 0, 120) and calls[-1] == ("run", 120, 120)
    done = [d for stage, d, _ in calls if stage == "run"]
    assert done == sorted(done)
    for (trace, _, _), r in zip(stims, b.results):
        assert r.steps == 40 and r.mismatches == 0 and r.cycles > 40
        got = np.load(r.got_trace)
        np.testing.assert_array_equal(got["spikes.1"], trace.spikes[1])
        np.testing.assert_array_equal(got["v.1"], trace.v[1])
        assert trace.spikes[1][20:].any(), "the free-running half should spike"


def test_batch_stops_at_first_divergence_and_fast_loop_counts_alike(tmp_path):
    """A batch fails on the first divergence: run 1's reference has one spike flipped at
    t=25, neuron 3; the batch stops there and run 2 never starts. The fast testbench loop
    (waits on ready/valid) counts exactly the cycles of the per-cycle loop."""
    from sim.cosim import run_cosim_batch
    from model.ir import Trace
    net, stims = _wm_like()
    generate(net, tmp_path / "v", lanes=4, memories={"proj0.weights": "loaded"})
    trace = stims[1][0]
    spikes = {1: trace.spikes[1].copy()}
    spikes[1][25, 3] ^= 1
    bad = (Trace(spikes=spikes, v=trace.v, prediction=None), None, stims[1][2])
    b = run_cosim_batch(tmp_path / "v", [stims[0], bad, stims[2]], simulator="icarus",
                        work_dir=tmp_path / "w", idle=0, stall=0)
    assert not b.ok and b.first_failure == 1 and len(b.results) == 2
    m = b.results[1].first_mismatch
    assert (m["t"], m["layer"], m["neuron"], m["field"]) == (25, 1, 3, "spike")
    assert m["expected"] == spikes[1][25, 3] and m["got"] == trace.spikes[1][25, 3]
    assert b.results[0].ok and "run 1 of 3" in b.describe()
    cycles = {}
    for fast in (True, False):
        r = run_cosim_batch(tmp_path / "v", stims[:2], simulator="icarus",
                            work_dir=tmp_path / f"w{fast}", idle=0, stall=0, fast=fast)
        assert r.ok, r.describe()
        cycles[fast] = [x.cycles for x in r.results] + [r.load_cycles]
    assert cycles[True] == cycles[False]


def test_loaded_load_image_matters(tmp_path):
    """The loaded RAM starts empty: one corrupted word of the load image (the weights from a
    neuron forced at step 0, delay 1, to the first 4 neurons) is caught."""
    net, stims = _wm_like(runs=1)
    trace, _, forced = stims[0]
    man = generate(net, tmp_path / "v", lanes=4, memories={"proj0.weights": "loaded"})
    j = int(np.flatnonzero(forced[1][0])[0])
    word = (j * 6 + 0) * 6 + 0          # row j*D + k, group 0 (G = 24 / 4 = 6)
    hex_path = tmp_path / "v" / man["load"]["image"]
    words = hex_path.read_text().split()
    words[word] = f"{int(words[word], 16) ^ 0xFFFFFFFF:08x}"
    hex_path.write_text("\n".join(words) + "\n")
    res = run_cosim(tmp_path / "v", trace, None, forced, simulator="icarus",
                    work_dir=tmp_path / "w", idle=0, stall=0)
    assert not res.ok and res.first_mismatch is not None
    assert res.first_mismatch["t"] == 1 and res.first_mismatch["neuron"] < 4


def test_huge_weight_array_is_emitted_without_contents(tmp_path, shaped):
    """A 5.4 Mbit weight array (N=128, D=41, 8-bit) is 'loaded' automatically for generic
    Verilog: the Verilog instantiates a RAM without initial contents (an initialised memory
    would be 83,968 'initial' lines here, 671,744 at the paper's size), and the words go to
    the load image instead."""
    net = shaped.wm_network(128, 41, seed=1)
    man = generate(net, tmp_path / "v", lanes=8)
    assert man["memory_kinds"] == {"proj0.weights": "loaded"}
    assert man["load"]["words"] == 128 * 41 * 16 and man["load"]["width"] == 64
    text = (tmp_path / "v" / man["verilog"]).read_text()
    assert len(text) < 2_000_000 and text.count("\n") < 40_000
    assert ".DEPTH(32'd83968)" in text
    assert len((tmp_path / "v" / man["load"]["image"]).read_text().split()) == 83968


def test_64_lanes_bit_exact_with_the_top_lane_spiking(tmp_path):
    """64 lanes: a spike in lane 63 sets the top bit of a 64-bit spike word (it once
    overflowed the testbench's signed 64-bit packing), through a window delay line of a
    working memory with N = 72 (two groups)."""
    from model.wm.recall import trial_forcing
    from model.wm.run import run_wm
    wm = run_wm(n=72, d=6, m=2, t=60, p=0.05, w_bits=4, seed=0)
    net, s = wm["net"], wm["settings"]
    forced = {1: trial_forcing(wm["targets"], s["d"], pre=s["pre"], p=s["p"],
                               seed=0)[0].astype(np.uint8)}
    steps = forced[1].shape[0]
    trace = simulate(net, None, forced, steps=steps)
    assert trace.spikes[1][:, 63].any() and trace.spikes[1][:, 64:].any()
    generate(net, tmp_path / "v", lanes=64)
    res = run_cosim(tmp_path / "v", trace, None, forced, simulator="verilator",
                    work_dir=tmp_path / "w", seed=3, idle=0.1, stall=0.2)
    assert res.steps == steps
    assert res.mismatches == 0, res.describe()
    assert res.ok
