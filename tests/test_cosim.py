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
    assert set(m) == {"t", "layer", "neuron", "field", "expected", "got"}
    # It really is the first: the saved traces agree on everything before (t, neuron).
    got = np.load(res.got_trace)
    exp = np.load(res.expected_trace)
    flat = m["t"] * net.layers[1].n + m["neuron"]
    for name in ("spikes.1", "v.1"):
        assert (got[name].reshape(-1)[:flat] == exp[name].reshape(-1)[:flat]).all()
    assert m["expected"] != m["got"]
    assert "first mismatch at t=" in res.describe()


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
    from rtl.core import memory_kinds
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
    from rtl.core import memory_kinds
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
