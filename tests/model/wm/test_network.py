"""model.wm.network: targets, least squares, the float model, Hebbian rules."""

import numpy as np
import pytest
import torch

from model.wm.network import (WMNet, contexts, least_squares_init, make_targets, simulate_float,
                              sparse_contexts)


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
