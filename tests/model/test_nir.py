"""model.nir: IR -> NIR -> IR byte for byte, float NIR graphs quantised, bad files refused."""

from __future__ import annotations

import json

import h5py
import nir
import numpy as np
import pytest

from model.ir import InputLayer, LIFLayer, Network, load, load_workload, save
from model.nir import DT, NIRError, from_nir, read_graph, read_nir, to_nir, write_nir
from model.nir.graph import MAX_ELEMENTS
from sim.randnet import random_network
from sim.reference import simulate
from tests import ROOT
from tests.nets import tiny_net

BENCH = ("delrec", "convdelrec_k31", "convdelrec_k31_w4")


def _round_trip_bytes(net: Network, tmp_path) -> tuple[bytes, bytes]:
    write_nir(net, tmp_path / "n.nir")
    back, report = read_nir(tmp_path / "n.nir")
    assert report.mode == "exact"
    return (save(net, tmp_path / "a.npz").read_bytes(),
            save(back, tmp_path / "b.npz").read_bytes())


@pytest.mark.parametrize("name", BENCH)
def test_bench_networks_round_trip_byte_identical(name, tmp_path):
    path = ROOT / f"bench/networks/{name}.npz"
    a, b = _round_trip_bytes(load(path), tmp_path)
    assert a == b == path.read_bytes()


def test_demo_and_tiny_networks_round_trip(tmp_path):
    from model.wm.run import run_wm
    for net in (run_wm(seed=0)["net"], tiny_net(), tiny_net(forced=False)):
        a, b = _round_trip_bytes(net, tmp_path)
        assert a == b


@pytest.mark.parametrize("profile,seeds", [("full", range(200)), ("wm", range(20)),
                                           ("stack", range(30))])
def test_random_networks_round_trip(profile, seeds, tmp_path):
    kinds, recurrent, forced, subtract = set(), 0, 0, 0
    for seed in seeds:
        net = random_network(seed, profile=profile)
        kinds |= {p.kind for p in net.projections}
        recurrent += any(p.recurrent for p in net.projections)
        forced += bool(net.forced_layers)
        subtract += any(l.reset == "subtract" for l in net.layers[1:])
        a, b = _round_trip_bytes(net, tmp_path)
        assert a == b, f"{profile} seed {seed}"
    if profile == "full":  # the sample covers every feature the export carries
        assert kinds == {"dense", "taps", "conv"} and recurrent and forced and subtract


def test_export_is_a_nir_graph_with_delay_nodes(tmp_path):
    net = load(ROOT / "bench/networks/delrec.npz")
    g = to_nir(net)
    kinds = {k: type(n).__name__ for k, n in g.nodes.items()}
    assert kinds["layer1"] == "LIF" and kinds["layer3"] == "LI"
    # DelRec's recurrent projection has one delay per presynaptic neuron: a Delay node of
    # (d - 1) steps, the discrete-time reader adding the last step on the cycle.
    rec = next(k for k, p in enumerate(net.projections) if p.recurrent)
    d = g.nodes[f"proj{rec}.delay"].delay
    assert np.allclose(d, (net.projections[rec].delay - 1) * DT)
    assert (f"proj{rec}", f"layer{net.projections[rec].dst}") in g.edges
    lif = g.nodes["layer1"]
    layer = net.layers[1]
    beta = layer.beta / 2 ** layer.beta_shift
    assert np.allclose(1 - DT / lif.tau, beta) and np.allclose(lif.r, lif.tau / DT)
    assert np.all(lif.v_threshold == layer.threshold - 0.5) and np.all(lif.v_reset == 0)
    write_nir(net, tmp_path / "d.nir")
    assert type(nir.read(tmp_path / "d.nir")).__name__ == "NIRGraph"  # nir's own reader


def test_taps_become_one_delay_and_linear_branch_per_tap():
    net = tiny_net()
    g = to_nir(net)
    p = net.projections[0]
    for t in range(p.n_taps):
        w = g.nodes[f"proj0.tap{t}"].weight
        assert np.array_equal(w, p.weight[:, :, t])
        delay = int(p.delay) + t - 1  # recurrent: one step less
        if delay:
            assert np.allclose(g.nodes[f"proj0.tap{t}.delay"].delay, delay * DT)
        else:
            assert f"proj0.tap{t}.delay" not in g.nodes


@pytest.mark.parametrize("name", BENCH)
def test_requantised_export_runs_like_the_original(name, tmp_path):
    """The float path (metadata ignored) reads only the nodes; with weights already on the
    integer grid it must give back a network that runs exactly like the original."""
    net = load(ROOT / f"bench/networks/{name}.npz")
    wl = load_workload(ROOT / f"bench/networks/{name}.workload.npz", net)
    write_nir(net, tmp_path / "n.nir")
    w_bits = max(p.w_bits for p in net.projections)
    back, report = read_nir(tmp_path / "n.nir", requantise=True, w_bits=w_bits,
                            in_bits=net.input.in_bits, calibration=wl.x[:2])
    assert report.mode == "quantised"
    assert [i["scale"] for i in report.layers] == [1.0] * (len(net.layers) - 1)
    assert [p.kind for p in back.projections] == [
        "conv" if p.kind == "conv" else p.kind for p in net.projections]
    for x in wl.x[:2]:
        a, b = simulate(net, x), simulate(back, x)
        assert a.prediction == b.prediction
        for l in range(1, len(net.layers)):
            assert np.array_equal(a.v[l], b.v[l]), (name, l)


def _lif(n, th, tau=2e-4, **kw):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n),
                   v_threshold=np.full(n, th), v_reset=np.zeros(n), **kw)


def _foreign(n0=3, n1=5, n2=2, *, rec_delay=2.0, seed=0):
    """A float graph written with nir directly: Delay nodes before the input weights and on
    the recurrence, LIF hidden layer, LI read-out."""
    rng = np.random.default_rng(seed)
    nodes = {
        "in": nir.Input(input_type={"input": np.array([n0])}),
        "d_in": nir.Delay(delay=np.array([0.0, 1.0, 3.0])[:n0] * DT),
        "w_in": nir.Affine(weight=rng.normal(0, 1, (n1, n0)), bias=rng.normal(0, 0.1, n1)),
        "hid": _lif(n1, 1.0),
        "d_rec": nir.Delay(delay=np.full(n1, rec_delay * DT)),
        "w_rec": nir.Linear(weight=rng.normal(0, 0.3, (n1, n1))),
        "w_out": nir.Linear(weight=rng.normal(0, 1, (n2, n1))),
        "out": nir.LI(tau=np.full(n2, 1e-3), r=np.full(n2, 10.0), v_leak=np.zeros(n2)),
        "o": nir.Output(output_type={"output": np.array([n2])}),
    }
    edges = [("in", "d_in"), ("d_in", "w_in"), ("w_in", "hid"), ("hid", "d_rec"),
             ("d_rec", "w_rec"), ("w_rec", "hid"), ("hid", "w_out"), ("w_out", "out"),
             ("out", "o")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_foreign_graph_with_delays_is_quantised_and_reported():
    net, report = from_nir(_foreign(), w_bits=6)
    assert report.mode == "quantised"
    ff, rec, out = net.projections
    assert (ff.kind, ff.src, ff.dst) == ("dense", 0, 1)
    assert list(ff.delay) == [0, 1, 3]                  # the input's Delay node, per channel
    assert rec.recurrent and int(rec.delay) == 3        # 2 steps + the cycle's implicit one
    assert out.dst == 2 and net.layers[2].threshold is None
    assert max(int(np.abs(p.weight).max()) for p in (ff, rec)) == 31
    hid = report.layers[0]
    assert hid["leak"]["float"] == pytest.approx(0.5) and hid["leak"]["integer"] == "2048/2**12"
    assert any("worst-case" in n for n in report.notes)
    assert net.meta["source"] == "nir"


def test_delay_rounding_and_euler_limits_are_reported_or_refused():
    g = _foreign()
    g.nodes["d_rec"].delay = np.full(5, 2.3 * DT)
    _, report = from_nir(g)
    assert any("rounded to whole steps" in n and "0.3" in n for n in report.notes)
    g = _foreign()
    g.nodes["hid"] = _lif(5, 1.0, tau=0.5 * DT)
    with pytest.raises(NIRError, match="shorter than the step"):
        from_nir(g)
    _, report = from_nir(g, dt=0.25 * DT)  # a finer step accepts it
    assert report.dt == 0.25 * DT


def test_calibration_sizes_membranes_without_changing_the_run():
    g = _foreign()
    x = (np.random.default_rng(1).random((2, 40, 3)) < 0.5).astype(np.int64)
    net, report = from_nir(g, calibration=x)
    wide, _ = from_nir(g, v_bits=48)
    assert any("calibration" in n for n in report.notes)
    for s in x:
        a, b = simulate(net, s), simulate(wide, s)
        for l in (1, 2):
            assert np.array_equal(a.v[l], b.v[l])
    assert all(l.v_bits < 48 for l in net.layers[1:])


def test_conv1d_node_becomes_a_conv_projection():
    n = 7
    k = np.array([1.0, -2.0, 3.0])
    nodes = {"in": nir.Input(input_type={"input": np.array([n])}),
             "w": nir.Linear(weight=np.eye(n) * 4), "h": _lif(n, 2.0),
             "c": nir.Conv1d(input_shape=n, weight=k.reshape(1, 1, 3), stride=1, padding=1,
                             dilation=1, groups=1, bias=np.zeros(1)),
             "f": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([1, n])}),
             "o": nir.Output(output_type={"output": np.array([n])})}
    edges = [("in", "w"), ("w", "h"), ("h", "c"), ("c", "f"), ("f", "h"), ("h", "o")]
    net, _ = from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), w_bits=4)
    conv = net.projections[1]
    assert conv.kind == "conv" and conv.recurrent and int(conv.delay) == 1
    assert list(conv.weight) == [1, -2, 3]  # integers that fit are kept as they are


def test_per_neuron_thresholds_are_folded_into_the_weights():
    g = _foreign()
    th = np.array([1.0, 2.0, 0.5, 1.0, 4.0])
    g.nodes["hid"] = nir.LIF(tau=np.full(5, 2e-4), r=np.full(5, 2.0), v_leak=np.zeros(5),
                             v_threshold=th, v_reset=np.zeros(5))
    net, report = from_nir(g, w_bits=8)
    assert any("thresholds differ" in n for n in report.notes)
    assert net.layers[1].threshold >= 1


@pytest.mark.parametrize("mutate,match", [
    (lambda g: g.nodes.__setitem__("hid", nir.CubaLIF(
        tau_syn=np.full(5, 1e-3), tau_mem=np.full(5, 1e-3), r=np.ones(5), v_leak=np.zeros(5),
        v_threshold=np.ones(5))), "node 'hid': CubaLIF is not supported: its synaptic current"),
    (lambda g: g.nodes["w_in"].weight.__setitem__((0, 0), np.nan),
     "node 'w_in': weight holds NaN"),
    (lambda g: g.nodes.__setitem__("w_out", nir.Linear(weight=np.ones((2, 4)))),
     "node 'w_out': Linear takes 4 inputs but receives 5"),
    (lambda g: g.nodes["hid"].v_reset.__setitem__(0, 0.5), "a reset potential"),
    (lambda g: g.edges.append(("w_rec", "d_rec")), "cycle through synapse nodes only"),
    (lambda g: (g.nodes.__setitem__("w_fb", nir.Linear(weight=np.ones((5, 2)))),
                g.edges.extend([("out", "w_fb"), ("w_fb", "hid")])),
     "takes feed-forward input from"),
    (lambda g: g.nodes["d_rec"].delay.__setitem__(0, -1.0), "delays must be >= 0"),
])
def test_unsupported_graphs_are_refused_by_name(mutate, match):
    g = _foreign()
    mutate(g)
    with pytest.raises(NIRError, match=match.replace("(", r"\(")):
        from_nir(g)


def _h5(path, build):
    with h5py.File(path, "w") as f:
        build(f)
    return path


@pytest.mark.parametrize("make,match", [
    (lambda p: p.write_bytes(b"not hdf5 at all"), "not an HDF5 file"),
    (lambda p: _h5(p, lambda f: f.create_dataset("x", data=[1, 2])), "without a NIR graph"),
    (lambda p: _h5(p, lambda f: (f.create_group("node"), f["node"].create_dataset(
        "type", data="NIRGraph"), f["node"].create_group("nodes"),
        f["node"]["nodes"].create_group("a").create_dataset("type", data="Foo"),
        f["node"].create_dataset("edges", data=np.zeros((0, 2), "S1")))),
     "not a valid NIR graph"),
    (lambda p: _h5(p, lambda f: (f.create_group("node"), f["node"].create_dataset(
        "type", data="NIRGraph"), f["node"].create_dataset(
        "big", shape=(MAX_ELEMENTS + 1,), dtype="f4", chunks=(1 << 20,),
        compression="gzip"))), "array values, more than"),
])
def test_bad_files_get_one_clear_error(make, match, tmp_path):
    path = tmp_path / "bad.nir"
    make(path)
    with pytest.raises(NIRError, match=match) as e:
        read_graph(path)
    assert str(path) in str(e.value)


def test_cli_export_import_and_refusals(tmp_path, capsys):
    from polychrony_cli import main
    src = ROOT / "bench/networks/convdelrec_k31_w4.npz"
    assert main(["export", str(src), "-o", str(tmp_path / "c.nir"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["types"]["Delay"] == 1 and info["dt"] == DT
    assert main(["import", str(tmp_path / "c.nir"), "-o", str(tmp_path / "c.npz")]) == 0
    assert "imported exactly" in capsys.readouterr().out
    assert (tmp_path / "c.npz").read_bytes() == src.read_bytes()
    # a float graph with calibration inputs: report, and the inputs saved as its workload
    nir.write(tmp_path / "f.nir", _foreign())
    np.save(tmp_path / "cal.npy", np.ones((30, 3), np.int64))
    assert main(["import", str(tmp_path / "f.nir"), "-o", str(tmp_path / "f.npz"),
                 "--calibration", str(tmp_path / "cal.npy"), "--w-bits", "6"]) == 0
    out = capsys.readouterr().out
    assert "quantised" in out and "threshold" in out and "workload" in out
    net = load(tmp_path / "f.npz")
    assert load_workload(tmp_path / "f.workload.npz", net).x.shape == (1, 30, 3)
    # refusals: one line on stderr, exit 2, nothing written
    (tmp_path / "bad.nir").write_text("hello")
    for argv, msg in [
        (["import", str(tmp_path / "bad.nir"), "-o", str(tmp_path / "x.npz")],
         "not an HDF5 file"),
        (["import", str(tmp_path / "f.nir"), "-o", str(tmp_path / "x.npz"), "--calibration",
          str(tmp_path / "bad.nir")], "--calibration"),
        (["import", str(tmp_path / "f.nir"), "-o", str(tmp_path / "x.npz"), "--w-bits", "0"],
         "argument --w-bits: must be at least 1"),
        (["export", str(src), "-o", str(tmp_path / "x.npz")], "expected a .nir"),
        (["export", str(src), "-o", str(tmp_path / "x.nir"), "--dt", "-1"], "--dt"),
    ]:
        try:
            code = main(argv)
        except SystemExit as e:  # refused by argparse: usage, then one error line
            code = e.code
        assert code == 2, argv
        err = capsys.readouterr().err.strip()
        assert msg in err.splitlines()[-1] and "Traceback" not in err
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "x.nir").exists()


def test_an_input_without_edges_still_exports(tmp_path):
    """A working memory has no input channels: the export still hangs every layer from the
    input (zero weights), as NIR readers find layers by following edges."""
    net = Network(layers=[InputLayer(n=0),
                          LIFLayer(n=3, v_bits=8, acc_bits=8, beta=1, beta_shift=1,
                                   threshold=5, bias=np.array([1, 2, 3]), name="a")],
                  projections=[], max_delay=0)
    g = to_nir(net)
    assert ("input", "link1") in g.edges and np.array_equal(g.nodes["link1"].bias, [1, 2, 3])
    a, b = _round_trip_bytes(net, tmp_path)
    assert a == b


def test_docs_python_example_runs(tmp_path, monkeypatch):
    import re
    text = (ROOT / "docs/nir.md").read_text()
    assert max(len(l) for l in text.splitlines() if not l.startswith("|")) <= 100
    [block] = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/nir.md", "exec"), {})
    assert (tmp_path / "example.nir").exists()


def test_docs_worked_example_numbers():
    n = 2
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([2])}),
               "w": nir.Linear(weight=np.array([[0.9, 0.45], [-0.3, 0.2]])),
               "lif": _lif(n, 1.0, tau=5e-4),
               "out": nir.Output(output_type={"output": np.array([n])})},
        edges=[("in", "w"), ("w", "lif"), ("lif", "out")], type_check=False)
    net, report = from_nir(graph, w_bits=8)
    layer = report.layers[0]
    assert layer["leak"]["integer"] == "3277/2**12"
    assert layer["leak"]["error"] == pytest.approx(4.9e-5, abs=1e-6)
    assert layer["scale"] == pytest.approx(141.11, abs=0.01)
    assert net.layers[1].threshold == 142 and net.projections[0].weight[0, 1] == 64


def test_options_do_not_change_an_exact_import(tmp_path):
    net = load(ROOT / "bench/networks/convdelrec_k31_w4.npz")
    write_nir(net, tmp_path / "c.nir", dt=1e-3)
    back, report = read_nir(tmp_path / "c.nir", dt=1e-4, w_bits=8)
    assert back == net and report.dt == 1e-3
    assert any("keeps its own dt, w_bits" in n for n in report.notes)
