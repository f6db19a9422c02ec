"""Tests of the working-memory path: targets, least squares, protocol, F1, float and integer."""

import numpy as np
import pytest
import torch

from model import ir
from model.quantise import quantise_wm, signed_bits
from model.wm.network import (WMNet, contexts, least_squares_init, make_targets, recall_float,
                              simulate_float, sparse_contexts)
from model.wm.recall import f1_from_counts, score_recall, trial_forcing
from model.wm.run import DEFAULTS, run_wm

torch.set_num_threads(1)  # tiny tensors; extra threads only fight numpy's BLAS on 2 cores


# ---------------------------------------------------------------------------- targets

def test_targets_shape_rate_determinism():
    x = make_targets(4, 64, 500, 0.05, seed=3)
    assert x.shape == (4, 64, 500) and x.dtype == bool
    assert abs(x.mean() - 0.05) < 0.003  # 128000 draws: std 0.0006
    assert np.array_equal(x, make_targets(4, 64, 500, 0.05, seed=3))
    assert not np.array_equal(x, make_targets(4, 64, 500, 0.05, seed=4))
    assert not make_targets(2, 8, 10, 0.0, seed=0).any()
    with pytest.raises(ValueError):
        make_targets(1, 2, 3, 1.5, seed=0)


# ---------------------------------------------------------------------------- least squares

def test_contexts_layout():
    x = make_targets(2, 5, 12, 0.3, seed=1)
    c, y = contexts(x, 3)
    assert c.shape == (2 * 9, 5 * 3) and y.shape == (2 * 9, 5)
    mu, tt, j, k = 1, 7, 4, 2
    assert c[mu * 9 + tt - 3, j * 3 + k] == x[mu, j, tt - 1 - k]
    assert np.array_equal(y[mu * 9 + tt - 3], x[mu, :, tt])


@pytest.mark.parametrize("solver", ["gram", "lstsq"])
def test_least_squares_reproduces_next_step_currents(solver):
    n, d, m, t, gain = 24, 8, 2, 48, 1.5  # load m (t - d) / (n d) = 0.42
    x = make_targets(m, n, t, 0.08, seed=5)
    w = least_squares_init(x, d, gain=gain, solver=solver)
    assert w.shape == (n, n, d)
    c, y = contexts(x, d)
    w_flat = w.transpose(1, 2, 0).reshape(n * d, n)  # [j * d + k, i] = W[i, j, k]
    np.testing.assert_allclose(c @ w_flat, gain * y, atol=1e-9)


@pytest.mark.parametrize("shape", [(3, 16, 40, 0.1, 8),    # rows < columns: C C^T
                                   (6, 10, 60, 0.1, 4),    # rows > columns: C^T C
                                   (2, 12, 40, 0.02, 4)])  # silent neurons, singular Gram
@pytest.mark.parametrize("f64_bytes", [256 << 20, 0])     # float64, or float32 + refinement
def test_gram_solver_equals_pinv(shape, f64_bytes, monkeypatch):
    import model.wm.network as wm
    monkeypatch.setattr(wm, "GRAM_F64_BYTES", f64_bytes)
    m, n, t, p, d = shape
    x = make_targets(m, n, t, p, seed=2)
    report = {}
    got = least_squares_init(x, d, solver="gram", report=report)
    assert report["side"] == ("C C^T" if m * (t - d) <= n * d else "C^T C")
    np.testing.assert_allclose(got, least_squares_init(x, d, solver="lstsq"), atol=1e-6)
    if not report["ridge"]:
        np.testing.assert_allclose(got, least_squares_init(x, d, solver="lstsq"), atol=1e-12)


def test_sparse_contexts_match_dense():
    x = make_targets(3, 7, 30, 0.15, seed=4)
    c, y = contexts(x, 5)
    cs, ys = sparse_contexts(x, 5)
    assert np.array_equal(cs.toarray(), c) and np.array_equal(ys, y)


# ---------------------------------------------------------------------------- protocol and F1

def test_trial_forcing_layout():
    x = make_targets(2, 10, 30, 0.2, seed=0)
    f = trial_forcing(x, 4, pre=6, p=0.5, seed=9)
    assert f.shape == (2, 36, 10) and f.dtype == bool
    assert np.array_equal(f[:, 6:10], x[:, :, :4].transpose(0, 2, 1))
    assert not f[:, 10:].any()
    assert f[:, :6].any()
    assert np.array_equal(f, trial_forcing(x, 4, pre=6, p=0.5, seed=9))
    assert not np.array_equal(f[:, :6], trial_forcing(x, 4, pre=6, p=0.5, seed=8)[:, :6])


def test_f1_known_answer():
    # Pattern 0: neuron 0 = 1 1 0 1, neuron 1 = 0 0 1 0; d = 1 scores columns 1..3.
    x = np.zeros((2, 2, 4), bool)
    x[0, 0] = [1, 1, 0, 1]
    x[0, 1] = [0, 0, 1, 0]
    pre = 2
    s = np.zeros((2, pre + 4, 2), np.uint8)
    s[0, :pre] = 1            # spikes in the noise period are not scored
    s[0, pre + 0, 1] = 1      # nor in the cue (column 0)
    s[0, pre + 1, 0] = 1      # tp (neuron 0, column 1)
    s[0, pre + 2, 0] = 1      # fp (neuron 0, column 2)
    s[0, pre + 2, 1] = 1      # tp (neuron 1, column 2); neuron 0 column 3 is a miss (fn)
    # Pattern 1: all silent, nothing recalled.
    f1, per = score_recall(x, s, 1, pre=pre)
    assert per.tolist() == [2 * 2 / (2 * 2 + 1 + 1), 1.0]
    assert f1 == pytest.approx(4 / 6)  # micro: tp 2, fp 1, fn 1 over both patterns
    # All silent everywhere: perfect agreement, defined as 1.0.
    z = np.zeros((1, 3, 5), bool)
    assert score_recall(z, np.zeros((1, 5, 3)), 1, pre=0) == (1.0, pytest.approx([1.0]))
    # Silent target, one spurious spike: 0.0.
    s1 = np.zeros((1, 5, 3))
    s1[0, 2, 0] = 1
    assert score_recall(z, s1, 1, pre=0)[0] == 0.0
    assert f1_from_counts(0, 0, 0) == 1.0 and f1_from_counts(0, 0, 3) == 0.0


# ---------------------------------------------------------------------------- float model

@pytest.mark.parametrize("reset,v_want", [
    ("zero", [0.0, 0.0, 0.8, 0.0, 0.0, 0.8, 0.4]),
    ("subtract", [0.0, 0.0, 0.8, 0.2, 0.1, 0.85, 0.425]),
])
def test_float_lif_known_answer(reset, v_want):
    # One neuron, self-synapse at delay 2 of weight 0.8, leak 1/2; forced at t = 0 and 1.
    # t=2: 0.8; t=3: 0.4 + 0.8 = 1.2 -> spike; t=5: the spike of t=3 arrives.
    w = np.array([[[0.0, 0.8]]])
    f = np.zeros((1, 7, 1), bool)
    f[0, :2] = True
    s, v = simulate_float(w, f, beta=128, beta_shift=8, threshold=1.0, reset=reset)
    assert s[0, :, 0].tolist() == [False, False, False, True, False, False, False]
    np.testing.assert_allclose(v[0, :, 0], v_want, atol=1e-12)


def test_wmnet_holds_no_state():
    net = WMNet(np.full((3, 3, 2), 0.7))
    f = torch.zeros(1, 5, 3)
    f[0, 0] = 1
    a, b = net(f), net(f)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ---------------------------------------------------------------------------- quantiser

def _wm_weights(seed=0):
    x = make_targets(2, 16, 40, 0.08, seed=seed)
    return least_squares_init(x, 6)


def test_quantise_wm_network(tmp_path):
    w = _wm_weights()
    net = quantise_wm(w, w_bits=8)
    ir.check(net)
    (lif,), (proj,) = net.layers[1:], net.projections
    assert isinstance(net.layers[0], ir.InputLayer) and net.layers[0].n == 0
    assert lif.forced and lif.n == 16 and lif.reset == "zero"
    assert (lif.beta, lif.beta_shift) == (205, 8)
    assert proj.kind == "taps" and proj.recurrent and int(proj.delay) == 1
    assert net.max_delay == 6 == proj.max_delay
    assert int(np.abs(proj.weight).max()) == 127 and proj.w_bits == 8
    scale = net.meta["scale"]
    assert scale == pytest.approx(127 / np.abs(w).max())
    assert lif.threshold == round(scale) >= 1
    np.testing.assert_array_equal(proj.weight, np.rint(scale * w))
    # acc_bits is the least width that passes the accumulator rule.
    lo, hi = ir.current_bounds(net, 1)
    assert lif.acc_bits == signed_bits(min(lo.min(), 0), max(hi.max(), 0))
    with pytest.raises(ir.IRError, match="accumulator"):
        ir.Network(layers=(net.layers[0], _with(lif, acc_bits=lif.acc_bits - 1)),
                   projections=net.projections, max_delay=net.max_delay)
    path = ir.save(net, tmp_path / "wm.npz")
    back = ir.load(path)
    assert back == net and back.meta == net.meta


def _with(layer, **changes):
    fields = {f: getattr(layer, f) for f in ("n", "v_bits", "acc_bits", "beta", "beta_shift",
                                             "threshold", "reset", "bias", "forced", "name")}
    return ir.LIFLayer(**{**fields, **changes})


def test_quantise_wm_options_and_errors():
    w = _wm_weights(1)
    net = quantise_wm(w, w_bits=6, reset="subtract", v_bits=20, beta=3, beta_shift=2)
    lif = net.layers[1]
    assert int(np.abs(net.projections[0].weight).max()) == 31
    assert (lif.v_bits, lif.reset, lif.beta, lif.beta_shift) == (20, "subtract", 3, 2)
    with pytest.raises(ValueError, match="all zeros"):
        quantise_wm(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="threshold rounds to 0"):
        quantise_wm(np.full((2, 2, 1), 100.0), w_bits=2)
    with pytest.raises(ValueError, match="shape"):
        quantise_wm(np.ones((2, 3, 1)))


def test_signed_bits():
    assert [signed_bits(0, 0), signed_bits(-2, 1), signed_bits(-3, 1), signed_bits(0, 2),
            signed_bits(-128, 127), signed_bits(-129, 0)] == [2, 2, 3, 3, 8, 9]


# ---------------------------------------------------------------------------- end to end

@pytest.mark.parametrize("seed", [0, 1])
def test_run_wm_default_recalls_perfectly(seed):
    r = run_wm(seed=seed)
    assert r["f1_float"] == 1.0 and r["f1_int"] == 1.0
    assert r["per_pattern_float"] == r["per_pattern_int"] == [1.0] * DEFAULTS["m"]
    assert r["settings"]["load"] < 0.8
    ir.check(r["net"])
    # Enough target spikes for the score to mean something.
    d = DEFAULTS["d"]
    assert r["targets"][:, :, d:].sum((1, 2)).min() >= 30


def test_float_and_integer_spikes_agree_every_step():
    x = make_targets(DEFAULTS["m"], DEFAULTS["n"], DEFAULTS["t"], DEFAULTS["p"], seed=2)
    w = least_squares_init(x, DEFAULTS["d"])
    net = quantise_wm(w)
    from sim.reference import simulate
    f = trial_forcing(x, DEFAULTS["d"], pre=10, p=DEFAULTS["p"], seed=2)
    s_float, _ = simulate_float(w, f)
    s_int = np.stack([simulate(net, forced={1: fm.astype(np.uint8)}, steps=f.shape[1]).spikes[1]
                      for fm in f])
    assert np.array_equal(s_float, s_int.astype(bool))
    assert recall_float(w, x, seed=2, p=DEFAULTS["p"])[0] == 1.0
    assert score_recall(x, s_int, DEFAULTS["d"], pre=10)[0] == 1.0


def test_over_capacity_fails():
    # load m (T - d) / (n d) = 4 * 56 / 128 = 1.75: the least-squares system cannot be solved
    # exactly, recall falls apart and the metric says so.
    r = run_wm(n=16, d=8, m=4, t=64, p=0.05, seed=0)
    assert r["settings"]["load"] > 1
    assert r["f1_float"] < 0.9 and r["f1_int"] < 0.9


# ---------------------------------------------------------------------------- Hebbian

def test_hebbian_rules_equal_their_formulas():
    from model.wm.network import hebbian_init

    x = make_targets(3, 9, 40, 0.1, seed=6)
    m, n, t = x.shape
    d, p = 5, x.mean()
    c, y = contexts(x, d)
    cov = 2.5 / (n * d * p) * (c - p).T @ (y - p)
    np.testing.assert_allclose(hebbian_init(x, d, gain=2.5),
                               cov.reshape(n, d, n).transpose(2, 0, 1), atol=1e-12)
    # The paper's text: 1/(N D p M) sum_mu sum_t s_i(t) s_j(t - 1 - k).
    want, xf = np.zeros((n, n, d)), x.astype(float)
    for k in range(d):
        for tt in range(1 + k, t):
            want[:, :, k] += np.einsum("mi,mj->ij", xf[:, :, tt], xf[:, :, tt - 1 - k])
    np.testing.assert_allclose(hebbian_init(x, d, rule="paper"), want / (n * d * p * m),
                               atol=1e-12)


def test_hebbian_paper_rule_is_silent_and_covariance_rule_recalls():
    from model.wm.event import recall
    from model.wm.network import hebbian_init

    x = make_targets(4, 256, 400, 0.004, seed=1)
    f_paper, _ = recall(hebbian_init(x, 30, rule="paper"), x, pre=20, p=0.004, seed=0)
    f_cov, _ = recall(hebbian_init(x, 30), x, pre=20, p=0.004, seed=0)
    assert f_paper < 0.05 and f_cov > 0.85


def test_refractory_targets_keep_the_rate_and_the_dead_time():
    x = make_targets(8, 200, 1000, 0.02, seed=1, refractory=4)
    assert abs(x.mean() - 0.02) < 0.001           # 1.6 M draws
    mu, i, t = np.nonzero(x)
    key = (mu * 200 + i) * 1000 + t
    same = np.diff(mu * 200 + i) == 0
    assert np.diff(key)[same].min() >= 5          # no two spikes within 4 silent steps
    assert np.array_equal(x, make_targets(8, 200, 1000, 0.02, seed=1, refractory=4))
    with pytest.raises(ValueError, match="refractory"):
        make_targets(1, 2, 10, 0.3, seed=0, refractory=4)
