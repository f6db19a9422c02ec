"""DelRec / ConvDelRec (model/audio/delrec.py): shapes, the delay kernel, float vs integer,
quantisation and the IR; training is in test_train.py."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from model import ir
from model.audio import delrec
from model.audio.train import AudioConfig, load_audio
from model.audio.delrec import (DelRecNet, ModelConfig, delay_band, delay_kernel, parameter_counts,
                          round_delays, to_network)
from model.int_forward import integer_forward
from model.quantise import fold_batchnorm, quantise_audio
from sim.randnet import random_network, random_stimulus
from model.ir import Trace
from sim.reference import simulate

torch.set_num_threads(1)



def _tiny(arch="dense", **kw):
    base = dict(arch=arch, n_in=10, hidden=12, n_out=4, kernel=3, dmax=6)
    base.update(kw)
    return ModelConfig(**base)


def _randomise_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in [model.bn1, model.bn2] + [m.bn for m in model.more]:
            bn.running_mean.uniform_(-0.3, 0.3, generator=g)
            bn.running_var.uniform_(0.05, 0.3, generator=g)
            bn.weight.uniform_(0.5, 1.5, generator=g)
            bn.bias.uniform_(-0.2, 0.5, generator=g)


def _counts(b, t, n, hi=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, hi + 1, (b, t, n), generator=g)


def _trace(tr, b):
    return Trace(spikes={l: s[b].numpy() for l, s in tr.spikes.items()},
                 v={l: v[b].numpy() for l, v in tr.v.items()},
                 prediction=None if tr.prediction is None else int(tr.prediction[b]))


# ---------------------------------------------------------------------------- shapes, counts

@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_shapes_and_parameter_counts(arch):
    h, k = 16, 5
    m = DelRecNet(ModelConfig(arch=arch, n_in=20, hidden=h, n_out=6, kernel=k, dmax=8))
    out = m(torch.rand(3, 11, 20) * 3)
    assert out.logits.shape == (3, 6) and out.v.shape == (3, 11, 6)
    assert out.s1.shape == out.s2.shape == (3, 11, h)
    rec = h * h + h if arch == "dense" else k + h
    counts = parameter_counts(m)
    assert counts["recurrent"] == rec
    ff = 20 * h + h * h + h * 6 + 6 + 4 * h  # Linear weights, read-out bias, 2 BN affine
    assert counts["total"] == ff + rec


def test_paper_sizes():
    # DelRec's SHD network: recurrent 65,792 (dense) vs 259 (conv, K=3), -99.6 %.
    d = DelRecNet(ModelConfig(arch="dense")).recurrent_parameters()
    c = DelRecNet(ModelConfig(arch="conv", kernel=3)).recurrent_parameters()
    assert (d, c) == (65792, 259) and 1 - c / d > 0.996


# ---------------------------------------------------------------------------- delay kernel

def test_delay_kernel_properties():
    L = 12
    d = torch.tensor([0.0, 3.0, 4.5, 7.25, 11.0], dtype=torch.float64)
    for sigma in (0.0, 0.3, 2.0, 10.0):
        m = delay_kernel(d, sigma, L)
        assert m.shape == (5, L) and (m >= 0).all()
        torch.testing.assert_close(m.sum(1), torch.ones(5, dtype=torch.float64))
        # the band is the kernel's non-zero part
        start, w = delay_band(d, sigma, L)
        pos = start[:, None] + torch.arange(w.shape[1])
        assert (w[(pos < 0) | (pos >= L)] == 0).all()
        dense = torch.zeros(5, L, dtype=torch.float64).scatter_add_(1, pos.clamp(0, L - 1), w)
        torch.testing.assert_close(dense, m)
    m0 = delay_kernel(d, 0.0, L)
    assert torch.equal(m0[[0, 1, 4]], torch.eye(L, dtype=torch.float64)[[0, 3, 11]])
    assert m0[2, 4] == m0[2, 5] == 0.5 and m0[3, 7] == 0.75 and m0[3, 8] == 0.25
    # wide kernels are symmetric about an interior delay
    m = delay_kernel(torch.tensor([6.0]), 3.0, 13)[0]
    torch.testing.assert_close(m, m.flip(0))


def test_delay_kernel_gradient_moves_delay():
    d = torch.tensor([4.3], requires_grad=True)
    target = torch.zeros(1, 10)
    target[0, 7] = 1.0
    loss = -(delay_kernel(d, 3.0, 10) * target).sum()  # 7 lies in the support
    loss.backward()
    assert d.grad.item() < 0  # the loss falls when the delay grows towards 7


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_self_connection_is_kept_below_the_threshold(arch):
    m = DelRecNet(_tiny(arch))
    with torch.no_grad():
        m.w_rec.fill_(2.0)
    m.clamp_self_()
    w = m.w_rec.detach()
    lim = torch.tensor(0.9)
    if arch == "dense":
        assert (w.diagonal() == lim).all() and (w.sum() - w.diagonal().sum()) == 2.0 * 132
    else:
        assert torch.equal(w, torch.stack([torch.tensor(2.0), lim, torch.tensor(2.0)]))


def test_tonotopic_init_is_local_and_changes_only_the_feed_forward_weights():
    cfg = ModelConfig(arch="conv", n_in=140, hidden=256, kernel=31)
    torch.manual_seed(3)
    plain = DelRecNet(cfg)
    torch.manual_seed(3)
    topo = DelRecNet(dataclasses.replace(cfg, tonotopic=0.05))
    for (name, p), (_, q) in zip(plain.named_parameters(), topo.named_parameters()):
        assert torch.equal(p, q) == (name not in ("fc1.weight", "fc2.weight")), name
    for fc, n_in in ((topo.fc1, 140), (topo.fc2, 256)):
        w = fc.weight.detach().abs()
        # Each neuron's strongest input lies near its own position on the frequency axis,
        # and its weights keep their variance (the envelope is renormalised per row).
        centre = torch.linspace(0, n_in - 1, w.shape[0])
        assert (w.argmax(dim=1) - centre).abs().max() <= 0.15 * n_in
        ratio = (fc.weight ** 2).sum(1) / (plain.fc1 if fc is topo.fc1 else plain.fc2
                                           ).weight.pow(2).sum(1)
        assert 0.5 < float(ratio.median()) < 2.0
    with pytest.raises(ValueError, match="tonotopic"):
        ModelConfig(tonotopic=1.5)


def test_round_delays_clamps():
    d = torch.tensor([-3.0, 0.4, 2.5, 3.5, 99.0])
    assert round_delays(d, 6).tolist() == [0, 0, 2, 4, 5]


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_kernel_at_integer_delays_is_an_exact_shift(arch):
    """Training's triangle path with sigma = 0 and integer delays == evaluation's gather."""
    torch.manual_seed(1)
    m = DelRecNet(_tiny(arch, batchnorm=False, dropout=0.0))
    with torch.no_grad():
        m.delay.copy_(torch.randint(0, 6, (12,)).float())
        m.fc1.weight.mul_(3)
        m.fc2.weight.mul_(4)
        m.w_rec.mul_(3)
    x = _counts(4, 25, 10).float()
    m.train()
    a = m(x)
    m.eval()
    b = m(x)
    assert a.s2.sum() > 0
    assert torch.equal(a.s1, b.s1) and torch.equal(a.s2, b.s2) and torch.equal(a.v, b.v)


@pytest.mark.parametrize("arch", ["dense", "conv"])
@pytest.mark.parametrize("quant,kernel", [(False, True), (False, False), (True, False)])
def test_fused_recurrent_layer_gradients_equal_autograd(arch, quant, kernel):
    """The hand-written BPTT of the recurrent layer == step-by-step autograd (float64)."""
    torch.manual_seed(0)
    m = DelRecNet(ModelConfig(arch=arch, n_in=5, hidden=10, n_out=3, kernel=3,
                              dmax=7)).double()
    m.sigma.fill_(1.5)
    i = (torch.rand(4, 30, 10, dtype=torch.float64) * 1.2).requires_grad_()
    w = (m.w_rec.detach() * 2).requires_grad_()
    r = torch.randn(4, 30, 10, dtype=torch.float64)
    th = 3.0 if quant else 1.0
    got = []
    for f in (m._lif_rec, m._lif_rec_reference):
        ii = i * 3 if quant else i
        if quant:  # integer currents, as in quant mode
            ii = ii + (ii.round() - ii).detach()
        out = f(ii, w, th, quant, kernel, m.delay)
        (out * r).sum().backward()
        got.append((out.detach(), i.grad, w.grad, m.delay.grad))
        i.grad = w.grad = m.delay.grad = None
    (a, *ga), (b, *gb) = got
    assert torch.equal(a, b) and 0.05 < a.mean() < 0.5
    for x, y in zip(ga, gb):
        if y is None:
            assert x is None
        else:
            torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)
    assert (gb[2] is not None) == kernel


@pytest.mark.parametrize("n,k", [(10, 3), (16, 7), (5, 9), (4, 11), (1, 3)])
def test_banded_matrix_is_the_zero_padded_convolution_and_its_gradient(n, k):
    """The training path's banded matrix == F.conv1d with 'same' zero padding (also for
    kernels wider than the layer), and its tap gradient == autograd's."""
    g = torch.Generator().manual_seed(n * 100 + k)
    w = torch.randn(k, dtype=torch.float64, generator=g).requires_grad_()
    z = torch.randn(6, n, dtype=torch.float64, generator=g)
    m = delrec._band(w, n)
    conv = torch.nn.functional.conv1d(z.unsqueeze(1), w.view(1, 1, -1),
                                      padding=(k - 1) // 2).squeeze(1)
    torch.testing.assert_close(z @ m.T, conv, rtol=1e-12, atol=1e-12)
    a = torch.randn(n, n, dtype=torch.float64, generator=g)
    (m * a).sum().backward()
    torch.testing.assert_close(delrec._band_grad(a, k), w.grad, rtol=1e-12, atol=1e-12)
    used = (torch.arange(k) - (k - 1) // 2).abs() < n     # taps that reach a neuron
    assert (w.grad[used] != 0).all() and (w.grad[~used] == 0).all()


# ---------------------------------------------------------------------------- float vs integer

def _integer_compatible(arch, beta, scale=16.0, seed=0):
    """A model whose weights are multiples of 1/scale with max|W| = 127/scale per layer, so
    quantisation at w_bits = 8 is exact (layer scale == scale, threshold == scale)."""
    cfg = _tiny(arch, batchnorm=False, dropout=0.0, beta=beta, out_beta=beta)
    m = DelRecNet(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for fc in (m.fc1, m.fc2, m.fc3):
            w = torch.randint(-40, 48, fc.weight.shape, generator=g).float()
            w.view(-1)[0] = 127
            fc.weight.copy_(w / scale)
            fc.bias.copy_(torch.randint(-8, 9, fc.bias.shape, generator=g).float() / scale)
        m.w_rec.copy_(torch.randint(-60, 60, m.w_rec.shape, generator=g).float() / scale)
        m.delay.copy_(torch.randint(0, 6, (12,), generator=g).float())
    return m


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_float_model_matches_integer_network(arch):
    x = _counts(6, 30, 10, seed=2)
    m = _integer_compatible(arch, beta=0)            # no leak: nothing to floor
    net = to_network(m, in_bits=2)
    assert [l.threshold for l in net.layers[1:]] == [16, 16, None]
    with torch.no_grad():
        out = m(x.float())
    tr = integer_forward(net, x)
    assert out.s1.sum() > 0 and out.s2.sum() > 0
    assert torch.equal(out.s1.to(torch.uint8), tr.spikes[1])
    assert torch.equal(out.s2.to(torch.uint8), tr.spikes[2])
    assert torch.equal((out.v * 16).round().long(), tr.v[3])
    # with the leak the integer floor differs by < 1 unit per step: spikes agree closely
    m = _integer_compatible(arch, beta=12)
    net = to_network(m, in_bits=2)
    with torch.no_grad():
        out = m(x.float())
    tr = integer_forward(net, x)
    agree = (out.s2.to(torch.uint8) == tr.spikes[2]).float().mean().item()
    assert agree > 0.95
    assert (out.v.sum(1).argmax(1) == tr.prediction).float().mean() >= 0.8


@pytest.mark.parametrize("arch,layers", [("dense", 2), ("conv", 2), ("dense", 3),
                                         ("conv", 4)])
def test_quant_mode_is_the_integer_network(arch, layers):
    """QAT's forward in eval == model.int_forward == sim.reference, every step (also with
    more recurrent layers, as the ConvDelRec authors' 4-layer network)."""
    torch.manual_seed(3)
    m = DelRecNet(_tiny(arch, w_bits=6, layers=layers))
    _randomise_bn(m, 3)
    m.eval()
    x = _counts(5, 30, 10, seed=4)
    net = to_network(m, in_bits=2)
    assert len(net.layers) == layers + 2 and len(net.projections) == 2 * layers
    with torch.no_grad():
        out = m(x.float(), mode="quant")
    tr = integer_forward(net, x)
    spikes = [out.s1, out.s2, *out.more]
    assert len(spikes) == layers
    for l, s in enumerate(spikes, 1):
        assert s.sum() > 0, l
        assert torch.equal(s.to(torch.uint8), tr.spikes[l]), l
    assert torch.equal(out.v.long(), tr.v[layers + 1])
    assert torch.equal(out.logits.argmax(1), tr.prediction)
    for b in range(2):
        ref = simulate(net, x[b].numpy())
        assert ref.first_mismatch(_trace(tr, b)) is None


def test_integer_forward_matches_reference_on_random_networks():
    """Every projection kind, delays, forced layers, saturation (sim.randnet's full profile)."""
    for seed in range(12):
        net = random_network(seed)
        stims = [random_stimulus(net, 25, 100 * seed + b) for b in range(2)]
        x = np.stack([s[0] for s in stims])
        forced = {l: np.stack([s[1][l] for s in stims]) for l in stims[0][1]}
        tr = integer_forward(net, x, forced=forced)
        for b, (xb, fb) in enumerate(stims):
            mism = simulate(net, xb, fb).first_mismatch(_trace(tr, b))
            assert mism is None, f"seed {seed} sample {b}: {mism}"


def test_fold_batchnorm_same_floats_in_torch_and_numpy():
    torch.manual_seed(5)
    m = DelRecNet(_tiny())
    _randomise_bn(m, 5)
    f = m.folded()
    got = {1: (f["w1"], f["b1"]), 2: (f["rec"][0]["w"], f["rec"][0]["b"])}
    for k, fc, bn in ((1, m.fc1, m.bn1), (2, m.fc2, m.bn2)):
        w, b = fold_batchnorm(fc.weight.detach().double().numpy(), None,
                              bn.weight.detach().double().numpy(),
                              bn.bias.detach().double().numpy(),
                              bn.running_mean.double().numpy(), bn.running_var.double().numpy(),
                              bn.eps)
        assert np.array_equal(w, got[k][0].detach().numpy())
        assert np.array_equal(b, got[k][1].detach().numpy())


# ---------------------------------------------------------------------------- the IR

@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_network_passes_check_and_round_trips(arch, tmp_path):
    torch.manual_seed(6)
    m = DelRecNet(_tiny(arch))
    _randomise_bn(m, 6)
    net = to_network(m, in_bits=3, meta={"float_test_acc": 0.5})
    ir.check(net)
    assert net.max_delay == 6 and net.input.in_bits == 3
    kinds = [(p.kind, p.src, p.dst) for p in net.projections]
    assert kinds == [("dense", 0, 1), ("dense", 1, 2), (arch, 2, 2), ("dense", 2, 3)]
    rec = net.projections[2]
    assert np.array_equal(rec.delay, m.int_delays().numpy())
    assert 1 <= rec.min_delay and rec.max_delay <= 6
    assert all(abs(p.weight).max() <= 127 for p in net.projections)
    assert net.layers[3].threshold is None
    assert net.meta["float_test_acc"] == 0.5 and net.meta["model"]["arch"] == arch
    json.dumps(net.meta)
    path = ir.save(net, tmp_path / "n.npz")
    back = ir.load(path)
    assert back == net and back.digest == net.digest


def test_more_recurrent_layers_in_the_network_and_its_ir():
    """layers=3: hidden layer 3 is recurrent like layer 2 (its own weights, delays, scale);
    a 2-layer network is unchanged by the option (parameters, names, IR meta)."""
    torch.manual_seed(6)
    two = DelRecNet(_tiny("conv"))
    torch.manual_seed(6)
    three = DelRecNet(_tiny("conv", layers=3))
    for (n, p), (n3, p3) in zip(two.named_parameters(), three.named_parameters()):
        assert n == n3 and torch.equal(p, p3)
    assert sorted(n for n, _ in three.named_parameters() if n.startswith("more.")) == \
        ["more.0.bn.bias", "more.0.bn.weight", "more.0.delay", "more.0.fc.weight",
         "more.0.w_rec"]
    assert len(list(three.parameters())) == len(list(two.parameters())) + 5
    assert three.recurrent_parameters() == 2 * two.recurrent_parameters() == 2 * (3 + 12)
    assert len(three.delays()) == 2 and three.delays()[1] is three.more[0].delay
    assert all(p is not three.more[0].delay for p in three.weight_parameters())
    _randomise_bn(three, 6)
    net = to_network(three, in_bits=3)
    ir.check(net)
    assert [(p.kind, p.src, p.dst) for p in net.projections] == [
        ("dense", 0, 1), ("dense", 1, 2), ("conv", 2, 2), ("dense", 2, 3), ("conv", 3, 3),
        ("dense", 3, 4)]
    assert [l.name for l in net.layers[1:]] == ["hidden1", "hidden2", "hidden3", "readout"]
    assert np.array_equal(net.projections[4].delay, three.int_delays(1).numpy())
    assert len(net.meta["scales"]) == 4 and net.meta["model"]["layers"] == 3
    assert "layers" not in to_network(two, in_bits=3).meta["model"]
    with torch.no_grad():           # the clamps reach every recurrent layer
        three.more[0].delay.fill_(99.0)
        three.more[0].w_rec.fill_(5.0)
    three.clamp_delays_()
    three.clamp_self_()
    assert float(three.more[0].delay.max()) == 5.0
    assert float(three.more[0].w_rec[1]) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="layers must be >= 2"):
        ModelConfig(layers=1)


def test_quantise_audio_rejects_bad_input():
    h = 4
    args = [np.ones((h, 3)), np.zeros(h), np.ones((h, h)), np.zeros(h), np.ones(3),
            np.ones(h, np.int64), np.ones((2, h)), np.zeros(2)]
    quantise_audio(*args, in_bits=2, max_delay=4)
    bad = list(args)
    bad[4] = np.ones(4)  # even kernel
    with pytest.raises(ValueError, match="w_rec"):
        quantise_audio(*bad, in_bits=2, max_delay=4)
    bad = list(args)
    bad[5] = np.array([1, 2, 5, 1])
    with pytest.raises(ValueError, match="rec_delay"):
        quantise_audio(*bad, in_bits=2, max_delay=4)
    bad[5] = np.zeros(h, np.int64)
    with pytest.raises(ValueError, match="rec_delay"):
        quantise_audio(*bad, in_bits=2, max_delay=4)


def test_inputs_beyond_in_bits_are_an_error_unless_clipped():
    torch.manual_seed(7)
    net = to_network(DelRecNet(_tiny()), in_bits=2)
    x = _counts(2, 5, 10, hi=3)
    x[0, 0, 0] = 4
    with pytest.raises(ValueError, match="in_bits"):
        integer_forward(net, x)
    clipped = integer_forward(net, x, clip=True)
    x[0, 0, 0] = 3
    assert torch.equal(clipped.v[3], integer_forward(net, x).v[3])
    cfg = AudioConfig(data="random", in_bits=2, limit=20, steps=10)
    with pytest.raises(ValueError, match="clip"):
        load_audio(cfg)
    cfg.clip_inputs = True
    assert load_audio(cfg).x_train.max() == 3
