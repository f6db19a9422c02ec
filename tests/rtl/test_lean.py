"""The lean core (rtl/lean.py): bit-exact against the reference on random stack-shaped
networks and on the trained ConvDelRec, in Amaranth's simulator, in Verilator and behind the
host link; its weight image; its refusals."""

from __future__ import annotations


import numpy as np
import pytest

from model.ir import InputLayer, LIFLayer, Network, Projection, load
from rtl.cores import UnsupportedNetwork
from rtl.lean import LeanCore
from rtl.lean_layout import lean_image, lean_layout
from rtl.pysim import run_core
from sim.randnet import random_stimulus
from model.ir import Trace
from sim.reference import simulate
from tests import ROOT



def _got(run) -> Trace:
    return Trace.from_outputs(run.spikes, run.v)


@pytest.mark.parametrize("seed", range(24))
def test_random_stack_networks_bit_exact(seed, random_net):
    net = random_net(seed, profile="stack")
    T = 24
    x, _ = random_stimulus(net, T, seed, rate=0.4)
    ref = simulate(net, x, steps=T)
    lanes = (1, 2, 4)[seed % 3]
    run = run_core(net, T, x, lanes=lanes, idle=0.3, stall=0.3, seed=seed,
                   dut=LeanCore(net, lanes=lanes))
    mism = ref.first_mismatch(_got(run))
    assert mism is None, f"{net.name} lanes={lanes}: {mism}"


def _wide_net(seed: int, n: int = 40, K: int = 15, w_bits: int = 4) -> Network:
    """A layer wider than a word's slots with a kernel reaching across chunks, delays up to
    the ring's size, multi-bit inputs, a read-out."""
    rng = np.random.default_rng(seed)
    hi = (1 << (w_bits - 1)) - 1
    kern = rng.integers(-hi, hi + 1, K)
    kern[kern == 0] = 1                  # every tap, the farthest too, carries a weight
    layers = [InputLayer(n=9, in_bits=3),
              LIFLayer(n=n, v_bits=12, acc_bits=16, beta=200, beta_shift=8, threshold=6,
                       bias=rng.integers(-2, 3, n), name="h"),
              LIFLayer(n=5, v_bits=14, acc_bits=16, beta=230, beta_shift=8, threshold=None,
                       bias=np.zeros(5, np.int64), name="out")]
    projs = [Projection("dense", 0, 1, w_bits, rng.integers(-hi, hi + 1, (n, 9)), np.array(0)),
             Projection("conv", 1, 1, w_bits, kern, rng.integers(1, 9, n)),
             Projection("dense", 1, 2, w_bits, rng.integers(-hi, hi + 1, (5, n)), np.array(0))]
    return Network(layers=layers, projections=projs, max_delay=8)


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_conv_rows_across_chunks(lanes):
    """40 neurons in chunks of 16, a K = 15 kernel whose rows span 2 chunks, delays 1-8 (the
    ring wraps), inputs of several bits."""
    net = _wide_net(lanes)
    T = 40
    x, _ = random_stimulus(net, T, lanes, rate=0.5)
    ref = simulate(net, x, steps=T)
    assert ref.spikes[1].mean() > 0.05
    core = LeanCore(net, lanes=lanes)
    assert core.layout.slots == 16 and core.layout.cv_chunks[1] == 2
    run = run_core(net, T, x, lanes=lanes, idle=0.2, stall=0.2, seed=lanes, dut=core)
    assert ref.first_mismatch(_got(run)) is None, ref.first_mismatch(_got(run))


def _deep_net(seed: int) -> Network:
    """Two hidden layers wider than a word's slots, each with a conv recurrence (the second's
    delays include 1, which bypasses the ring), and a read-out: the walker takes the second
    layer's delayed spikes into its other region of sums while that layer's update runs,
    and the next step's inputs while the read-out's sums are added."""
    rng = np.random.default_rng(seed)
    kern1, kern2 = rng.integers(-7, 8, 15), rng.integers(-7, 8, 7)
    kern1[kern1 == 0] = 1
    kern2[kern2 == 0] = -1
    layers = [InputLayer(n=9, in_bits=3),
              LIFLayer(n=40, v_bits=12, acc_bits=16, beta=200, beta_shift=8, threshold=6,
                       bias=rng.integers(-2, 3, 40), name="h1"),
              LIFLayer(n=36, v_bits=12, acc_bits=16, beta=220, beta_shift=8, threshold=7,
                       bias=rng.integers(-2, 3, 36), reset="subtract", name="h2"),
              LIFLayer(n=5, v_bits=14, acc_bits=16, beta=230, beta_shift=8, threshold=None,
                       bias=np.zeros(5, np.int64), name="out")]
    projs = [Projection("dense", 0, 1, 4, rng.integers(-7, 8, (40, 9)), np.array(0)),
             Projection("conv", 1, 1, 4, kern1, rng.integers(1, 9, 40)),
             Projection("dense", 1, 2, 4, rng.integers(-7, 8, (36, 40)), np.array(0)),
             Projection("conv", 2, 2, 4, kern2, rng.integers(1, 4, 36)),
             Projection("dense", 2, 3, 4, rng.integers(-7, 8, (5, 36)), np.array(0))]
    return Network(layers=layers, projections=projs, max_delay=8)


@pytest.mark.parametrize("lanes", [2, 4])
def test_overlapped_layers_with_two_conv_layers(lanes):
    """Phase B of one layer runs while the walker adds the next layer's rows, the second conv
    layer's next-step events and the next step's inputs; every step bit-exact with random
    idle and back-pressure cycles."""
    net = _deep_net(lanes)
    T = 32
    x, _ = random_stimulus(net, T, lanes, rate=0.5)
    ref = simulate(net, x, steps=T)
    assert ref.spikes[1].mean() > 0.05 and ref.spikes[2].mean() > 0.05
    core = LeanCore(net, lanes=lanes)
    assert core.layout.early == 2 and core.layout.acc_alt == core.layout.acc_depth - 3
    run = run_core(net, T, x, lanes=lanes, idle=0.2, stall=0.2, seed=lanes, dut=core)
    assert ref.first_mismatch(_got(run)) is None, ref.first_mismatch(_got(run))


def test_trained_convdelrec_bit_exact():
    """The 4-bit ConvDelRec (140-256-256-20, K = 31) on a test sample's first 40 steps."""
    from model.audio.pack import default_data
    from model.audio.shd import bin_counts, load as load_shd
    net = load(ROOT / "bench/networks/convdelrec_k31_w4.npz")
    x = bin_counts(load_shd(default_data()[1]), steps=136).x[3, :40].astype(np.int64)
    ref = simulate(net, x)
    run = run_core(net, 40, x, lanes=4, dut=LeanCore(net, lanes=4))
    assert ref.first_mismatch(_got(run)) is None, ref.first_mismatch(_got(run))


def _decode(word: int, S: int, sw: int) -> list[int]:
    out = []
    for k in range(S):
        v = (word >> (k * sw)) & ((1 << sw) - 1)
        out.append(v - (1 << sw) if v >> (sw - 1) else v)
    return out


def test_image_holds_every_weight_and_kernel_tap():
    """Decoding the load image gives back the feed-forward weights, and the conv rows add up
    to the reference's conv current for each single presynaptic spike."""
    net = _wide_net(3, n=37, K=9)
    L = lean_layout(net, 2)
    img = lean_image(net, L)
    S, sw = L.slots, L.slot_bits
    for l in (1, 2):
        ff = next(p for p in net.into(l) if p.src == l - 1)
        n = net.layers[l].n
        for j in range(ff.weight.shape[1]):
            row = sum((_decode(img[L.ff_base[l] + j * L.ff_stride[l] + c], S, sw)
                       for c in range(L.chunks[l])), [])
            assert row[:n] == ff.weight[:, j].tolist() and not any(row[n:])
    kern, pad, _ = L.conv[1]
    n = net.layers[1].n
    from rtl.lean_layout import conv_first_chunk
    for j in range(n):
        got = np.zeros(L.chunks[1] * S, np.int64)
        c0 = conv_first_chunk(L, 1, j)
        for q in range(L.cv_chunks[1]):
            word = img[L.cv_base[1] + j * L.cv_stride[1] + q]
            got[(c0 + q) * S:(c0 + q + 1) * S] += _decode(word, S, sw)
        want = np.zeros(n, np.int64)
        for i in range(n):
            if 0 <= j - i + pad < len(kern):
                want[i] = kern[j - i + pad]
        assert got[:n].tolist() == want.tolist() and not got[n:].any(), j


def _net(**change) -> Network:
    inp = InputLayer(n=3, in_bits=2)
    l1 = LIFLayer(n=4, v_bits=10, acc_bits=10, beta=3, beta_shift=2, threshold=9,
                  bias=np.zeros(4, np.int64), forced=change.get("forced", False))
    ff = Projection("dense", 0, 1, change.get("w_bits", 4),
                    np.ones((4, 3), np.int64), np.array(change.get("d", 0)))
    projs = [ff] + change.get("extra", [])
    return Network(layers=[inp, l1], projections=projs, max_delay=3)


def test_refusals_name_the_limit():
    with pytest.raises(UnsupportedNetwork, match="power of two"):
        LeanCore(_net(), lanes=3)
    with pytest.raises(UnsupportedNetwork, match="at most the 4 weights"):
        LeanCore(_net(w_bits=16), lanes=8)
    with pytest.raises(UnsupportedNetwork, match="forced raster"):
        LeanCore(_net(forced=True))
    with pytest.raises(UnsupportedNetwork, match="delay 0"):
        LeanCore(_net(d=1))
    with pytest.raises(UnsupportedNetwork, match="observe"):
        LeanCore(_net(), observe=[2])
    # 1,000 inputs x 1,024 neurons of 8 bits: 128,000 words, far past the SPRAM's 16,384.
    big = Network(layers=[InputLayer(n=1000, in_bits=1),
                          LIFLayer(n=1024, v_bits=12, acc_bits=20, beta=3, beta_shift=2,
                                   threshold=9, bias=np.zeros(1024, np.int64))],
                  projections=[Projection("dense", 0, 1, 8, np.ones((1024, 1000), np.int64),
                                          np.array(0))], max_delay=1)
    with pytest.raises(UnsupportedNetwork, match="16384"):
        lean_layout(big, 4)


def test_trained_networks_fit_the_spram():
    """Both trained ConvDelRec networks fit the four SPRAM blocks (4-bit: 16 weights a word;
    8-bit: 8)."""
    for name, S in (("convdelrec_k31_w4", 16), ("convdelrec_k31", 8)):
        L = lean_layout(load(ROOT / f"bench/networks/{name}.npz"), 4)
        assert L.slots == S and L.words <= 16384 and L.cv_chunks[2] == (3 if S == 16 else 5)


def test_verilog_is_deterministic_and_cosimulates(tmp_path):
    """Generated twice, the same bytes; in Verilator (the weights streamed on wl first),
    bit-exact at every step of two runs with a reset between them."""
    from rtl.export import generate
    from sim.cosim import Stimulus, run_cosim_batch
    net = _wide_net(5)
    a = generate(net, tmp_path / "a", lanes=2, core="lean")
    b = generate(net, tmp_path / "b", lanes=2, core="lean")
    assert a["core"] == "lean" and a["load"]["width"] == 64
    assert (tmp_path / "a" / a["verilog"]).read_bytes() == \
        (tmp_path / "b" / b["verilog"]).read_bytes()
    stimuli = []
    for s in range(2):
        x, _ = random_stimulus(net, 30, s, rate=0.5)
        stimuli.append(Stimulus(simulate(net, x, steps=30), x, None))
    res = run_cosim_batch(tmp_path / "a", stimuli, simulator="verilator", work_dir=tmp_path,
                          idle=0.2, stall=0.2)
    assert res.ok and len(res.results) == 2
    for r in res.results:
        assert r.ok and r.steps == 30 and r.mismatches == 0, r.describe()


def test_host_link_with_the_lean_core(tmp_path_factory):
    """The driver against the simulated board with the lean core: weights streamed from a
    ROM loader after configuration, bit-exact traces and predictions (the serial read-out),
    prediction-only then full runs, a RESET between samples."""
    from amaranth.back import verilog
    from boards.host import Board
    from boards.simboard import SimBoard, build_simboard
    from rtl.link import HostLink
    from rtl.spram import RomLoader
    net = _wide_net(7, n=20, K=5)
    image = lean_image(net, lean_layout(net, 2))
    d = tmp_path_factory.mktemp("leanboard")
    top = HostLink.around(net, core="lean", lanes=2, divisor=4, clock_hz=1_000_000,
                          baud=250_000, heartbeat=False, max_steps=64, loader=RomLoader)
    assert top.image == image and top.loader.width == 64   # the loader got the core's image
    (d / "board.v").write_text(verilog.convert(top, name="board",
                                               ports=[top.rx, top.tx, top.leds]))
    exe = build_simboard(d / "board.v", "board", d / "work")
    with SimBoard(exe, 4) as sb, Board(sb.port, net=net, timeout=10) as b:
        for seed in range(3):
            x, _ = random_stimulus(net, 30, seed, rate=0.4)
            ref = simulate(net, x, steps=30)
            alone = b.run(x, steps=30, membranes=False, spikes=False)
            assert alone.prediction == ref.prediction and alone.spikes == {}
            got = b.run(x, steps=30)
            assert ref.first_mismatch(got) is None, ref.first_mismatch(got)


def test_estimate_counts_the_core_blocks():
    """16 accumulator banks, the membranes (4 lanes x 14 bits: 4 blocks 16 wide), a ring
    bank per lane, the two event lists, the biases (4 x 4 bits: one block) and the delays
    (4 x 5 bits: two blocks 16 wide), and the serial read-out's 20 sums of 28 bits (two
    blocks); the four SPRAM blocks; a multiplier per lane. With the link's frame buffer that
    is 32 blocks at 4 lanes, more than the UP5K's 30 (as Yosys found), and 29 at 2 lanes."""
    from rtl.lean_layout import estimate
    net = load(ROOT / "bench/networks/convdelrec_k31_w4.npz")
    est = estimate(net, family="ice40", clock_mhz=22, lanes=4, cycles_per_step=520,
                   cycles_max=600, steps_per_sample=136)
    assert est.blocks == {"acc": 16, "v": 4, "ring": 4, "lists": 2, "bias": 1, "delays": 2,
                          "readout": 2}
    two = estimate(net, family="ice40", clock_mhz=22, lanes=2, cycles_per_step=1,
                   cycles_max=1, steps_per_sample=1)
    assert sum(est.blocks.values()) + 1 == 32 and sum(two.blocks.values()) + 1 == 29
    assert est.spram == {"weights": 4} and est.dsp == 4
    assert est.samples_per_s == pytest.approx(22e6 / 520 / 136)
    assert estimate(net, family="ice40", clock_mhz=22, lanes=2, cycles_per_step=1,
                    cycles_max=1, steps_per_sample=1).lut < est.lut
    with pytest.raises(ValueError, match="iCE40 UltraPlus"):
        estimate(net, family="ecp5", clock_mhz=22, lanes=4, cycles_per_step=1,
                 cycles_max=1, steps_per_sample=1)


def test_command_line_generate_and_cosim_with_the_lean_core(tmp_path):
    import subprocess
    import sys
    from model.ir import save
    net = _wide_net(2, n=24, K=7)
    path = tmp_path / "net.npz"
    save(net, path)
    run = lambda *a: subprocess.run([sys.executable, "-m", "polychrony_cli", *a],
                                    capture_output=True, text=True)
    out = run("cosim", str(path), "--core", "lean", "--lanes", "2", "--steps", "20",
              "--sim", "verilator", "--work", str(tmp_path / "w"))
    assert out.returncode == 0 and "bit-exact" in out.stdout, out.stdout + out.stderr
    out = run("generate", str(path), "-o", str(tmp_path / "g"), "--core", "lean",
              "--lanes", "3")
    assert out.returncode != 0 and "power of two" in out.stderr and \
        "Traceback" not in out.stderr, out.stderr
    out = run("generate", str(path), "-o", str(tmp_path / "g"), "--core", "lean",
              "--lanes", "2")
    assert out.returncode == 0 and "wl after reset" in out.stdout, out.stdout + out.stderr
    # build: real samples for the cycles (--inputs) or a bundle (--vectors), not both; a
    # wrong file is named before anything is built.
    np.save(tmp_path / "bad.npy", np.zeros((2, 5, 3), np.int64))
    out = run("build", str(path), "--board", "icebreaker", "--core", "lean", "--lanes", "2",
              "--inputs", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "b"))
    assert out.returncode != 0 and "bad.npy" in out.stderr and "n0=9" in out.stderr and \
        "Traceback" not in out.stderr, out.stderr
    out = run("build", str(path), "--board", "icebreaker", "--core", "lean", "--inputs",
              str(tmp_path / "bad.npy"), "--vectors", "v.npz", "-o", str(tmp_path / "b"))
    assert out.returncode != 0 and "not both" in out.stderr, out.stderr
    # The simulated board with the lean core: every sample checked against the reference.
    x = np.stack([random_stimulus(net, 20, s, rate=0.4)[0] for s in range(2)])
    np.save(tmp_path / "x.npy", x)
    out = run("run", str(path), "--simulate", "--core", "lean", "--lanes", "2", "--inputs",
              str(tmp_path / "x.npy"), "--check", "--membranes", "--work",
              str(tmp_path / "sb"))
    assert out.returncode == 0 and out.stdout.count("matches the reference") == 2, \
        out.stdout + out.stderr


def test_reset_during_the_weight_load_reloads_cleanly():
    """A RESET that arrives while the weights are still streaming in (a host that connects
    right after configuration) restarts the load on both sides: the sample that follows is
    bit-exact. Amaranth simulation of the host link, bytes on its UART pins."""
    from amaranth.sim import Simulator
    from rtl.link import protocol as Pr
    from rtl.link import HostLink
    from rtl.spram import RomLoader
    from model.audio.pack import default_data
    from model.audio.shd import bin_counts, load as load_shd
    net = load(ROOT / "bench/networks/convdelrec_k31_w4.npz")
    image = lean_image(net, lean_layout(net, 4))
    div = 4
    top = HostLink.around(net, core="lean", lanes=4, divisor=div, clock_hz=1_000_000,
                          baud=250_000, heartbeat=False, max_steps=64, loader=RomLoader)
    info = Pr.parse_ident(top.ident)
    T = 3
    x = bin_counts(load_shd(default_data()[1]), steps=136).x[0, 20:20 + T].astype(np.int64)
    ref = simulate(net, x)
    events = [[(0, int(j), int(x[t, j])) for j in np.flatnonzero(x[t])] for t in range(T)]
    (payload, n), = Pr.step_chunks(info, events, Pr.FLAG_SPIKES)
    to_send = Pr.frame(Pr.CMD_RESET, 1) + Pr.frame(Pr.CMD_STEP, 2, payload)
    got, now, reset_at = [], [0], []

    async def host_tx(ctx):
        for q, byte in enumerate(to_send):
            if q == len(Pr.frame(Pr.CMD_RESET, 1)):
                reset_at.append(now[0])        # the RESET frame is all sent by here
                while not got:                 # the board's answer, as the driver waits
                    await ctx.tick()
            for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                ctx.set(top.rx, bit)
                await ctx.tick().repeat(div)

    async def host_rx(ctx):
        dec = Pr.FrameDecoder()
        while not any(f[0] in (Pr.CMD_STEP | Pr.RESPONSE, Pr.CMD_ERROR) for f in got
                      if isinstance(f, tuple)):
            await ctx.tick().until(top.tx == 0)
            await ctx.tick().repeat(div // 2)
            byte = 0
            for k in range(8):
                await ctx.tick().repeat(div)
                byte |= ctx.get(top.tx) << k
            await ctx.tick().repeat(div)
            got.extend(dec.feed(bytes([byte])))

    async def count(ctx):
        async for _ in ctx.tick():
            now[0] += 1
            # Without the reload the core waits for words that never come: no answer.
            assert now[0] < 100_000, f"no STEP answer after {now[0]} cycles; frames: {got}"

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_process(count)
    sim.add_testbench(host_tx, background=True)
    sim.add_testbench(host_rx)
    sim.run()
    assert reset_at[0] < len(image)            # the load was still running at the RESET
    assert got[0] == (Pr.CMD_RESET | Pr.RESPONSE, 1, b"")
    step = got[1]
    assert step[:2] == (Pr.CMD_STEP | Pr.RESPONSE, 2), step
    out = Pr.parse_step_response(info, step[2], n, payload[0])
    for l in (1, 2):
        assert np.array_equal(out.spikes[l], ref.spikes[l]), l
    assert ref.spikes[2].sum() > 0
