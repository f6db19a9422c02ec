"""The stack core (rtl/stack.py): bit-exact against the reference on random stack-shaped
networks, in Amaranth's simulator, in Verilator and behind the host link."""

from __future__ import annotations

import numpy as np
import pytest

from model.ir import InputLayer, LIFLayer, Network, Projection
from rtl.cores import UnsupportedNetwork
from rtl.pysim import run_core
from rtl.stack import StackCore
from rtl.stack_plan import auto_rows, stack_plan
from sim.randnet import random_network, random_stimulus
from model.ir import Trace
from sim.reference import simulate


def _got(run) -> Trace:
    return Trace.from_outputs(run.spikes, run.v)


@pytest.mark.parametrize("seed", range(24))
def test_random_stack_networks_bit_exact(seed, random_net):
    net = random_net(seed, profile="stack")
    T = 24
    x, _ = random_stimulus(net, T, seed, rate=0.4)
    ref = simulate(net, x, steps=T)
    lanes = (1, 2, 3, 5)[seed % 4]
    rows = 1 + seed % 3
    run = run_core(net, T, x, lanes=lanes, idle=0.3, stall=0.3, seed=seed,
                   dut=StackCore(net, lanes=lanes, rows=rows))
    mism = ref.first_mismatch(_got(run))
    assert mism is None, f"{net.name} lanes={lanes} rows={rows}: {mism}"


def test_random_stack_profile_covers_the_shape(random_net):
    nets = [random_net(s, profile="stack") for s in range(24)]
    for net in nets:
        stack_plan(net)                    # every one is buildable
    assert any(not n.layers[-1].spiking for n in nets)
    assert any(p.kind == "conv" and p.delay.ndim == 1 for n in nets for p in n.projections)
    assert any(p.kind == "conv" and p.delay.ndim == 0 for n in nets for p in n.projections)
    assert any(n.layers[0].in_bits > 1 for n in nets)
    assert any(len(n.layers) == 4 for n in nets)


def test_pipelined_layers_overlap_steps():
    """A busy three-layer network at full rate: the layers work on different steps at once,
    so a step costs far fewer cycles than the layers' updates one after the other."""
    net = random_network(8, profile="stack")
    assert len(net.layers) == 4
    T = 40
    x, _ = random_stimulus(net, T, 1, rate=0.5)
    ref = simulate(net, x, steps=T)
    run = run_core(net, T, x, lanes=2, dut=StackCore(net, lanes=2))
    assert ref.first_mismatch(_got(run)) is None
    # A layer's update alone takes ceil(n / lanes) + 6 cycles per step; one after the other
    # they would take the sum. Observing every layer, the output port carries one record
    # per group per step, which bounds the rate from below.
    groups = [-(-net.layers[l].n // 2) for l in range(1, len(net.layers))]
    serial = sum(g + 6 for g in groups)
    per_step = float(np.diff(run.ends[T // 2:]).mean())      # steady state
    assert max(sum(groups), max(groups) + 6) <= per_step < 0.65 * serial, (per_step, serial)


def _wide_conv_net(seed: int, K: int) -> Network:
    """A conv recurrence reaching further than a group either side (K = 15: 7 neurons)."""
    rng = np.random.default_rng(seed)
    kern = rng.integers(-9, 12, K)
    kern[kern == 0] = 5                  # every tap, the farthest too, carries a weight
    layers = [InputLayer(n=6, in_bits=2),
              LIFLayer(n=11, v_bits=12, acc_bits=16, beta=200, beta_shift=8, threshold=12,
                       bias=rng.integers(-2, 3, 11), name="h"),
              LIFLayer(n=3, v_bits=14, acc_bits=16, beta=230, beta_shift=8, threshold=None,
                       bias=np.zeros(3, np.int64), name="out")]
    projs = [Projection("dense", 0, 1, 6, rng.integers(-10, 25, (11, 6)), np.array(0)),
             Projection("conv", 1, 1, 5, kern, rng.integers(1, 4, 11)),
             Projection("dense", 1, 2, 6, rng.integers(-20, 21, (3, 11)), np.array(0))]
    return Network(layers=layers, projections=projs, max_delay=3)


@pytest.mark.parametrize("lanes", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_conv_window_wider_than_the_pipeline(lanes, seed):
    """With one lane a K = 15 kernel reaches 7 groups either side: the spikes' write-back is
    delayed and the steps spaced so that no group reads a neighbour too early or too late."""
    net = _wide_conv_net(lanes + 10 * seed, 15)
    T = 40
    x, _ = random_stimulus(net, T, lanes + seed, rate=0.5)
    ref = simulate(net, x, steps=T)
    assert ref.spikes[1].mean() > 0.1
    run = run_core(net, T, x, lanes=lanes, idle=0.2, stall=0.2, seed=lanes,
                   dut=StackCore(net, lanes=lanes))
    assert ref.first_mismatch(_got(run)) is None, ref.first_mismatch(_got(run))


def _net(**change) -> Network:
    inp = InputLayer(n=3, in_bits=2)
    l1 = LIFLayer(n=4, v_bits=10, acc_bits=10, beta=3, beta_shift=2, threshold=9,
                  bias=np.zeros(4, np.int64), forced=change.get("forced", False))
    ff = Projection("dense", 0, 1, 4, np.ones((4, 3), np.int64), np.array(change.get("d", 0)))
    projs = [ff] + change.get("extra", [])
    return Network(layers=[inp, l1], projections=projs, max_delay=3)


@pytest.mark.parametrize("change, match", [
    (dict(forced=True), "forced raster"),
    (dict(d=1), "delay 0"),
    (dict(extra=[Projection("dense", 1, 1, 4, np.ones((4, 4), np.int64), np.array(1))]),
     "conv projection"),
    (dict(extra=[Projection("taps", 1, 1, 4, np.ones((4, 4, 2), np.int64), np.array(1))]),
     "conv projection"),
])
def test_unsupported_networks_are_named(change, match):
    with pytest.raises(UnsupportedNetwork, match=match):
        StackCore(_net(**change))


def test_bad_knobs_are_refused():
    net = _net()
    with pytest.raises(UnsupportedNetwork, match="lanes"):
        StackCore(net, lanes=0)
    with pytest.raises(UnsupportedNetwork, match="observe"):
        StackCore(net, observe=[2])
    with pytest.raises(UnsupportedNetwork, match="layer 1 takes one input record"):
        StackCore(net, rows={1: 2})
    with pytest.raises(UnsupportedNetwork, match=r"rows must be an integer in \[1, 8\]"):
        StackCore(net, rows=9)
    assert auto_rows(256) == 1 and auto_rows(64) == 2 and auto_rows(20) == 4


def test_verilog_is_deterministic(tmp_path):
    from rtl.export import generate
    net = random_network(3, profile="stack")
    a = generate(net, tmp_path / "a", lanes=4, core="stack")
    b = generate(net, tmp_path / "b", lanes=4, core="stack")
    assert a["core"] == "stack" and a["observe"] == list(range(1, len(net.layers)))
    assert (tmp_path / "a" / a["verilog"]).read_bytes() == \
        (tmp_path / "b" / b["verilog"]).read_bytes()


@pytest.mark.parametrize("observe", [None, "last"])
def test_verilator_cosim_whole_run(tmp_path, observe):
    """Generated Verilog in Verilator, inputs streamed at full rate while outputs drain (the
    steps overlap), compared at every step; observing only the last layer compares that."""
    from rtl.export import generate
    from sim.cosim import Stimulus, run_cosim_batch
    net = random_network(7, profile="stack")
    obs = None if observe is None else [len(net.layers) - 1]
    generate(net, tmp_path / "v", lanes=3, core="stack", observe=obs)
    stimuli = []
    for s in range(2):
        x, _ = random_stimulus(net, 30, s, rate=0.5)
        stimuli.append(Stimulus(simulate(net, x, steps=30), x, None))
    res = run_cosim_batch(tmp_path / "v", stimuli, simulator="verilator", work_dir=tmp_path,
                          idle=0, stall=0, fast=False)
    assert res.ok and len(res.results) == 2
    for r in res.results:
        assert r.ok and r.steps == 30 and r.mismatches == 0, r.describe()
    got = np.load(res.results[0].got_trace)
    want = {f"v.{l}" for l in (obs or range(1, len(net.layers)))}
    assert want <= set(got.files) and not any(f"v.{l}" in got.files for l in range(1, 9)
                                               if f"v.{l}" not in want)


def test_host_link_with_the_stack_core(tmp_path_factory):
    """The same driver and protocol as the network core: bit-exact traces, spikes and
    predictions; a prediction-only run gates the hidden layers' records off."""
    from amaranth.back import verilog
    from boards.host import Board
    from boards.simboard import SimBoard, build_simboard
    from rtl.cores import core
    from rtl.link import HostLink
    net = random_network(1, profile="stack")
    while net.layers[-1].spiking or len(net.layers) < 3:
        net = random_network(int(net.meta["seed"]) + 1, profile="stack")
    d = tmp_path_factory.mktemp("stackboard")
    # The link takes a built core: gated, as HostLink.around builds it for a read-out network.
    top = HostLink(core("stack").build(net, lanes=2, gate=True), divisor=4, clock_hz=1_000_000,
                   baud=250_000, heartbeat=False, max_steps=64)
    (d / "board.v").write_text(verilog.convert(top, name="board",
                                               ports=[top.rx, top.tx, top.leds]))
    exe = build_simboard(d / "board.v", "board", d / "work")
    with SimBoard(exe, 4) as sb, Board(sb.port, net=net, timeout=10) as b:
        for seed in range(2):
            # Prediction only (the core sends only the read-out's records), then spikes, then
            # everything: the core's output gate changes between commands.
            x, _ = random_stimulus(net, 30, seed, rate=0.4)
            ref = simulate(net, x, steps=30)
            alone = b.run(x, steps=30, membranes=False, spikes=False)
            assert alone.prediction == ref.prediction and alone.spikes == {}
            sparse = b.run(x, steps=30, membranes=False)
            assert all(np.array_equal(sparse.spikes[l], ref.spikes[l]) for l in ref.spikes)
            got = b.run(x, steps=30)
            assert ref.first_mismatch(got) is None, ref.first_mismatch(got)


def test_estimate_counts_blocks_per_row_copy_and_a_leak_per_live_lane():
    from rtl.stack_plan import estimate
    net = _wide_conv_net(0, 5)
    kw = dict(family="ecp5", clock_mhz=50, cycles_per_step=10, cycles_max=12,
              steps_per_sample=30)
    one = estimate(net, lanes=4, rows=1, **kw)
    four = estimate(net, lanes=4, rows=4, **kw)
    assert four.blocks["proj2.weights"] == 4 * one.blocks["proj2.weights"]
    assert four.blocks["proj0.weights"] == one.blocks["proj0.weights"]   # layer 1: one row
    assert four.lut > one.lut
    # beta 200 and 230 are not powers of two: one multiplier per live lane of each layer.
    assert one.dsp == min(4, 11) + min(4, 3)
    assert estimate(net, lanes=8, **kw).lut > one.lut
    assert one.samples_per_s == pytest.approx(50e6 / 10 / 30)


def test_command_line_generate_and_cosim_with_the_stack_core(tmp_path):
    import subprocess
    import sys
    from model.ir import save
    net = random_network(2, profile="stack")
    path = tmp_path / "net.npz"
    save(net, path)
    run = lambda *a: subprocess.run([sys.executable, "-m", "polychrony_cli", *a],
                                    capture_output=True, text=True)
    assert len(net.layers) >= 3
    out = run("cosim", str(path), "--core", "stack", "--lanes", "2", "--steps", "20",
              "--rows", "2=3", "--sim", "verilator", "--work", str(tmp_path / "w"))
    assert out.returncode == 0 and "bit-exact" in out.stdout, out.stdout + out.stderr
    for bad_rows, word in ((["--rows", "2=2"], "--core stack"),
                           (["--core", "stack", "--rows", "two"], "LAYER=R"),
                           (["--core", "stack", "--rows", "1=2"], "layer 1")):
        out = run("generate", str(path), "-o", str(tmp_path / "g"), *bad_rows)
        assert out.returncode != 0 and word in out.stderr and "Traceback" not in out.stderr, \
            out.stderr
    bad = random_network(0, profile="full")
    while not bad.forced_layers:
        bad = random_network(int(bad.meta["seed"]) + 1, profile="full")
    save(bad, tmp_path / "bad.npz")
    out = run("generate", str(tmp_path / "bad.npz"), "--core", "stack", "-o",
              str(tmp_path / "v"))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "stack core" in out.stderr and "the network core builds it" in out.stderr, out.stderr
