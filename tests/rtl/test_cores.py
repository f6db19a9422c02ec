"""The core registry (rtl.cores): one contract, one registry line per core, every caller asks it.

A test-only fourth core is registered for the duration of one test and must be offered by
``generate --core``, ``estimate --core`` and the simulated board (``run --simulate --core``),
with no other change to the project.
"""

import json
import shutil

import numpy as np
import pytest
from amaranth.hdl import Fragment

import polychrony_cli
from model.ir import InputLayer, LIFLayer, Network, Projection, save
from rtl.cores import CORES, Core, UnsupportedNetwork, core, spec_of
from rtl.cores.network import NetworkCoreSpec
from rtl.core import NetworkCore
from rtl.lean import LeanCore
from rtl.link import HostLink
from rtl.link.readout import Readout, SerialReadout
from rtl.spram import RomLoader
from rtl.stack import StackCore
from sim.randnet import random_network


class OneLaneCore(NetworkCoreSpec):
    """A trivial fourth core: the network core pinned to one lane, no knobs."""

    name = "one-lane"
    summary = "test only: the network core at one lane"
    knobs = ()

    def check(self, net, *, lanes=None, **knobs):
        if lanes not in (None, 1):
            raise UnsupportedNetwork(f"the one-lane core has one lane, got {lanes}")
        super().check(net, lanes=1, **knobs)

    def build(self, net, *, lanes=None, **knobs):
        self.check(net, lanes=lanes, **knobs)
        return super().build(net, lanes=1, **self.check_knobs(knobs))


@pytest.fixture
def one_lane(monkeypatch):
    monkeypatch.setitem(CORES, OneLaneCore.name, OneLaneCore())
    return CORES[OneLaneCore.name]


def _small_net() -> Network:
    rng = np.random.default_rng(3)
    layers = [InputLayer(n=3, in_bits=1),
              LIFLayer(n=4, v_bits=10, acc_bits=8, beta=200, beta_shift=8, threshold=6, name="h"),
              LIFLayer(n=2, v_bits=12, acc_bits=8, beta=230, beta_shift=8, threshold=None,
                       name="out")]
    projs = [Projection("dense", 0, 1, 4, rng.integers(-3, 8, (4, 3)), np.array([0, 1, 2])),
             Projection("dense", 1, 2, 4, rng.integers(-7, 8, (2, 4)), np.array(1))]
    return Network(layers=layers, projections=projs, max_delay=2, name="small")


def test_every_registered_core_honours_the_contract():
    net = _small_net()
    for name, spec in CORES.items():
        assert isinstance(spec, Core) and spec.name == name and spec.summary
        assert spec.measure in ("model", "amaranth", "verilator")
    assert CORES["network"].supports(net) is None
    # The layered cores refuse a network without their shape, and say why.
    assert CORES["stack"].supports(net) and CORES["lean"].supports(net)
    with pytest.raises(ValueError, match="takes no memories"):
        CORES["stack"].check_knobs({"memories": {"proj0.weights": "lut"}})
    with pytest.raises(ValueError, match="unknown core 'fourth'; choose one of network"):
        core("fourth")


def test_a_fourth_core_is_one_module_and_one_registry_line(one_lane, tmp_path, capsys):
    net = _small_net()
    path = save(net, tmp_path / "net.npz")

    assert polychrony_cli.main(["generate", str(path), "-o", str(tmp_path / "v"),
                                "--core", "one-lane"]) == 0
    manifest = json.loads((tmp_path / "v" / "polychrony_core.json").read_text())
    assert manifest["core"] == "one-lane" and manifest["lanes"] == 1
    assert "module polychrony_core" in (tmp_path / "v" / "polychrony_core.v").read_text()
    capsys.readouterr()

    assert polychrony_cli.main(["estimate", str(path), "--core", "one-lane", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["lanes"] == 1 and est["cycles_per_step"] > 0 and est["lut"] > 0

    # A knob the core refuses is one clear line, exit status 2.
    assert polychrony_cli.main(["generate", str(path), "-o", str(tmp_path / "w"),
                                "--core", "one-lane", "--lanes", "2"]) == 2
    assert "one-lane core has one lane" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="no C++ compiler")
def test_the_simulated_board_runs_a_fourth_core(one_lane, tmp_path, capsys):
    net = _small_net()
    path = save(net, tmp_path / "net.npz")
    x = np.random.default_rng(0).integers(0, 2, (2, 12, 3))
    np.save(tmp_path / "x.npy", x)
    assert polychrony_cli.main(["run", str(path), "--simulate", "--core", "one-lane",
                                "--inputs", str(tmp_path / "x.npy"), "--membranes", "--check",
                                "--work", str(tmp_path / "board"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["samples"]
    assert [r["match"] for r in rows] == [True, True]


@pytest.mark.parametrize("make", [
    lambda net: NetworkCore(net, lanes=0),
    lambda net: NetworkCore(net, fault="nope"),
    lambda net: StackCore(net),
    lambda net: LeanCore(net),
    lambda net: Readout(net, max_steps=0),
    lambda net: SerialReadout(net, layer=1),
], ids=["network-lanes", "network-fault", "stack", "lean", "readout", "serial-readout"])
def test_a_refused_constructor_leaves_no_half_built_component(make, unused_elaboratables):
    net = _small_net()
    with unused_elaboratables() as found:
        with pytest.raises(ValueError):
            make(net)
    assert found == []


def _stack_readout_net() -> Network:
    """A stack-shaped network whose last layer is a read-out."""
    net = random_network(1, profile="stack")
    while net.layers[-1].spiking:
        net = random_network(int(net.meta["seed"]) + 1, profile="stack")
    return net


def test_the_host_link_takes_a_built_core(one_lane):
    """HostLink wraps a built core: network, lanes and gate from the component, the read-out's
    kind from the registry entry of its class; HostLink.around builds the core as the link
    needs it (gated when the last layer is a read-out)."""
    net = _small_net()
    link = HostLink(NetworkCore(net, lanes=2), divisor=4)
    assert link.net is net and link.lanes == 2 and type(link.readout) is Readout
    assert spec_of(link.core) is CORES["network"]      # the first of two on NetworkCore
    net = _stack_readout_net()
    stack = HostLink.around(net, core="stack", lanes=2, divisor=4)
    assert type(stack.core) is StackCore and stack.core.gate
    assert type(stack.readout) is Readout
    lean = HostLink.around(net, core="lean", lanes=2, divisor=4, loader=RomLoader)
    assert type(lean.core) is LeanCore and lean.core.gate
    assert type(lean.readout) is SerialReadout and lean.loader.width == lean.core.load_width
    ungated = HostLink(StackCore(net, lanes=2), divisor=4)      # no mask port to drive
    assert not ungated.core.gate
    for top in (link, stack, lean, ungated):
        Fragment.get(top, None)


@pytest.mark.parametrize("make, why", [
    (lambda net: HostLink.around(net, core="stack", gate=False, divisor=4), "sets the core's gate"),
    (lambda net: HostLink.around(net, core="stack", observe=[1], divisor=4), "observed layers"),
    (lambda net: HostLink(StackCore(net, observe=[len(net.layers) - 1]), divisor=4),
     "observes them all"),
    (lambda net: HostLink(Readout(net, max_steps=64), divisor=4), "not the component of a core"),
], ids=["gate", "observe", "observed-subset", "not-a-core"])
def test_the_host_link_refuses_a_core_it_cannot_serve(make, why, unused_elaboratables):
    net = _stack_readout_net()
    with unused_elaboratables() as found:
        with pytest.raises(ValueError, match=why):
            make(net)
    assert not any("HostLink" in f for f in found)


def test_lane_options_include_even_splits_and_lean_keeps_powers_of_two(shaped):
    net = shaped.wm_network(144, 8, w_bits=4, seed=0)
    opts = CORES["network"].lane_options(net)
    assert opts == tuple(sorted(opts)) and len(set(opts)) == len(opts)
    assert {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128} <= set(opts)
    assert {144, 72, 36, 29, 21, 18} <= set(opts)       # 144 split into 1, 2, 4, 5, 7, 8 groups
    assert max(opts) == 144
    audio = shaped.shd_network("conv", n_in=40, n=64, classes=10, w_bits=4)
    assert all(p & (p - 1) == 0 for p in CORES["lean"].lane_options(audio))
    assert CORES["lean"].lane_options(audio)[-1] == 64


def test_wiring_is_each_cores_weight_bits_per_cycle(shaped):
    wm = shaped.wm_network(64, 8, w_bits=4, seed=0)
    assert CORES["network"].wiring(wm, lanes=32) == 32 * 4
    audio = shaped.shd_network("conv", n_in=40, n=128, classes=10, w_bits=4)
    # rows of n weights: 128 x 4 bits into layer 1, 2 x 128 x 4 into layer 2, 4 x 10 x 4 out
    assert CORES["stack"].wiring(audio, lanes=8, rows={2: 2}) == 512 + 1024 + 160
    assert CORES["stack"].wiring(audio, lanes=64, rows={2: 2}) == 512 + 1024 + 160
