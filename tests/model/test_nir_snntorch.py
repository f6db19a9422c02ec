"""NIR with a real producer and consumer: snnTorch 1.0 writes graphs that polychrony imports,
and reads graphs that polychrony exports. Exact spike trains where the weights sit on the
integer grid; a measured agreement where they do not (figures in docs/nir.md)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")

from snntorch import utils as snn_utils  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402

from model.int_forward import integer_forward  # noqa: E402
from model.ir import InputLayer, LIFLayer, Network, Projection  # noqa: E402
from model.nir import from_nir, to_nir  # noqa: E402

N0, N1, N2, T = 6, 10, 4, 60


def _leaky(n, beta, th, **kw):
    # per-neuron parameters: snnTorch's exporter writes scalar ones with shape (), which
    # its own type check then refuses
    return snn.Leaky(beta=torch.full((n,), float(beta)), threshold=torch.full((n,), float(th)),
                     reset_mechanism="zero", reset_delay=False, **kw)


def _spikes(x):
    return (torch.rand(x) < 0.35).float()


def _integer_weights(*layers, lo=-7, hi=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for lin in layers:
            lin.weight.copy_(torch.randint(lo, hi, lin.weight.shape, generator=g).float())
            if lin.bias is not None:
                lin.bias.copy_(torch.randint(-2, 3, lin.bias.shape, generator=g).float())


def test_snntorch_feedforward_export_imports_exactly():
    """beta = 1 (tau = inf) and beta = 0 (tau = dt): float and integer leaks agree exactly,
    so every spike of both layers must match at every step."""
    torch.manual_seed(0)
    l1, l2 = torch.nn.Linear(N0, N1), torch.nn.Linear(N1, N2, bias=False)
    _integer_weights(l1, l2)
    a, b = _leaky(N1, 1.0, 5.0, init_hidden=True), _leaky(N2, 0.0, 3.0, init_hidden=True,
                                                           output=True)
    seq = torch.nn.Sequential(l1, a, l2, b)
    graph = export_to_nir(seq, torch.zeros(1, N0), ignore_dims=[0])
    snn_utils.reset(seq)  # the export ran the network once: start from rest
    net, report = from_nir(graph, w_bits=4)
    assert [p.kind for p in net.projections] == ["dense", "dense"]
    assert [l.threshold for l in net.layers[1:]] == [6, 4]  # v > 5.0 is v >= 6 over integers
    x = _spikes((T, N0))
    s1, s2 = [], []
    with torch.no_grad():
        for t in range(T):
            k1 = a(l1(x[t:t + 1]))
            k2, _ = b(l2(k1))
            s1.append(k1[0])
            s2.append(k2[0])
    tr = integer_forward(net, x.long().numpy()[None])
    for t in range(T):
        assert torch.equal(tr.spikes[1][0, t], torch.stack(s1)[t].to(torch.uint8)), t
        assert torch.equal(tr.spikes[2][0, t], torch.stack(s2)[t].to(torch.uint8)), t
    assert tr.spikes[1].sum() > 0 and tr.spikes[2].sum() > 0


def test_snntorch_recurrent_layer_imports_exactly():
    """An RLeaky (exported by snnTorch as a cycle LIF <-> Affine) becomes a recurrent dense
    projection with delay 1: the implicit step of the discrete-time cycle."""
    torch.manual_seed(1)
    l1, l2 = torch.nn.Linear(N0, N1, bias=False), torch.nn.Linear(N1, N2, bias=False)
    rl = snn.RLeaky(beta=torch.zeros(N1), threshold=torch.full((N1,), 4.0),
                    reset_mechanism="zero", reset_delay=False, all_to_all=True,
                    linear_features=N1, init_hidden=True)
    out = _leaky(N2, 0.0, 2.0, init_hidden=True, output=True)
    _integer_weights(l1, l2, rl.recurrent, seed=1)
    with torch.no_grad():
        rl.recurrent.bias.zero_()
    seq = torch.nn.Sequential(l1, rl, l2, out)
    graph = export_to_nir(seq, torch.zeros(1, N0), ignore_dims=[0])
    snn_utils.reset(seq)
    assert any((b, a) in graph.edges for a, b in graph.edges)  # the LIF <-> weights cycle
    net, _ = from_nir(graph, w_bits=4)
    rec = [p for p in net.projections if p.recurrent]
    assert len(rec) == 1 and int(rec[0].delay) == 1
    x = _spikes((T, N0))
    spk = torch.zeros(1, N1)
    mem = torch.zeros(1, N1)
    got1, got2 = [], []
    rl2 = snn.RLeaky(beta=torch.zeros(N1), threshold=torch.full((N1,), 4.0),
                     reset_mechanism="zero", reset_delay=False, all_to_all=True,
                     linear_features=N1)
    rl2.recurrent.load_state_dict(rl.recurrent.state_dict())
    with torch.no_grad():
        for t in range(T):
            spk, mem = rl2(l1(x[t:t + 1]), spk, mem)
            o, _ = out(l2(spk))
            got1.append(spk[0])
            got2.append(o[0])
    tr = integer_forward(net, x.long().numpy()[None])
    assert torch.equal(tr.spikes[1][0], torch.stack(got1).to(torch.uint8))
    assert torch.equal(tr.spikes[2][0], torch.stack(got2).to(torch.uint8))
    assert tr.spikes[1].sum() > 0


def _task(n, steps, seed):
    """Two classes of Poisson inputs: class c fires its half of the channels more often."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    rate = torch.full((n, 1, N0), 0.08)
    half = N0 // 2
    for i in range(n):
        rate[i, 0, :half] = 0.4 if y[i] == 0 else 0.08
        rate[i, 0, half:] = 0.08 if y[i] == 0 else 0.4
    x = (torch.rand((n, steps, N0), generator=g) < rate).float()
    return x, y


def test_trained_snntorch_network_agrees_after_quantisation():
    """A float network trained a few steps in snnTorch (beta = 0.9, float weights), exported
    by snnTorch, imported and quantised to 8 bits: measured spike agreement and accuracy."""
    torch.manual_seed(2)
    l1, l2 = torch.nn.Linear(N0, N1), torch.nn.Linear(N1, N2)
    a = _leaky(N1, 0.9, 1.0, learn_beta=False)
    b = _leaky(N2, 0.9, 1.0, learn_beta=False)
    opt = torch.optim.Adam([*l1.parameters(), *l2.parameters()], lr=0.05)

    def run(x):
        m1, m2 = a.init_leaky(), b.init_leaky()
        s1s, s2s = [], []
        for t in range(x.shape[1]):
            s1, m1 = a(l1(x[:, t]), m1)
            s2, m2 = b(l2(s1), m2)
            s1s.append(s1)
            s2s.append(s2)
        return torch.stack(s1s, 1), torch.stack(s2s, 1)

    x, y = _task(64, 30, seed=3)
    for _ in range(40):
        _, s2 = run(x)
        loss = torch.nn.functional.cross_entropy(s2.sum(1)[:, :2], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt, yt = _task(128, 30, seed=4)
    with torch.no_grad():
        f1, f2 = run(xt)
    float_pred = f2.sum(1)[:, :2].argmax(1)
    float_acc = (float_pred == yt).float().mean().item()
    graph = export_to_nir(torch.nn.Sequential(l1, _leaky(N1, 0.9, 1.0, init_hidden=True), l2,
                                              _leaky(N2, 0.9, 1.0, init_hidden=True,
                                                     output=True)),
                          torch.zeros(1, N0), ignore_dims=[0])
    net, report = from_nir(graph, w_bits=8, calibration=x[:8].long().numpy())
    tr = integer_forward(net, xt.long().numpy())
    i1, i2 = tr.spikes[1].float(), tr.spikes[2].float()
    agree = torch.cat([(i1 == f1).flatten(), (i2 == f2).flatten()]).float().mean().item()
    counts = i2.sum(1)[:, :2]
    int_acc = (counts.argmax(1) == yt).float().mean().item()
    print(f"float accuracy {float_acc:.3f}, integer {int_acc:.3f}, spike agreement "
          f"{agree:.4f}; leak {report.layers[0]['leak']}")
    assert float_acc >= 0.8, "training a few steps should learn this toy task"
    assert agree >= 0.95 and abs(int_acc - float_acc) <= 0.05


def test_polychrony_export_read_by_snntorch():
    """A delay-free polychrony network (feed-forward, beta = 0) read back by snnTorch's NIR
    import gives the same output spikes at every step."""
    rng = np.random.default_rng(5)

    def lif(n, th, name):
        return LIFLayer(n=n, v_bits=10, acc_bits=10, beta=0, beta_shift=4, threshold=th,
                        reset="zero", bias=rng.integers(-2, 3, n), name=name)

    net = Network(layers=[InputLayer(n=N0), lif(N1, 4, "h"), lif(N2, 3, "o")], projections=[
        Projection("dense", 0, 1, 4, rng.integers(-7, 8, (N1, N0)), np.int64(0)),
        Projection("dense", 1, 2, 4, rng.integers(-7, 8, (N2, N1)), np.int64(0))],
        max_delay=0)
    module = import_from_nir(to_nir(net))
    x = (rng.random((T, N0)) < 0.4).astype(np.int64)
    tr = integer_forward(net, x[None])
    state, outs = None, []
    with torch.no_grad():
        for t in range(T):
            o, state = module(torch.tensor(x[t:t + 1], dtype=torch.float32), state)
            outs.append(o[0])
    got = torch.stack(outs).to(torch.uint8)
    assert torch.equal(got, tr.spikes[2][0]) and got.sum() > 0
