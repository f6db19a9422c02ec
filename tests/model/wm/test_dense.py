"""The dense working-memory baseline (model.wm.dense) against our model."""

import numpy as np
import pytest
import torch

from model.wm.dense import (DenseWM, dense_contexts, dense_eval, dense_pinv_init, dense_simulate,
                            dense_train_step, linear_to_w, w_to_linear)
from model.wm.network import (contexts, least_squares_init, make_targets, recall_float,
                              simulate_float)
from model.wm.recall import score_recall, trial_forcing

N, D, M, T, P, PRE, SEED = 24, 8, 2, 48, 0.08, 10, 3


@pytest.fixture(scope="module")
def targets():
    return make_targets(M, N, T, P, seed=SEED)


@pytest.fixture(scope="module")
def w_ours(targets):
    return least_squares_init(targets, D, gain=1.5, solver="lstsq")


def test_layout_round_trip_and_contexts(targets):
    w = np.random.default_rng(0).standard_normal((N, N, D))
    lin = w_to_linear(w, torch.float64)
    assert lin.shape == (N, N * D)
    assert lin[5, 7 * D + 3] == w[5, 7, 3]  # column j * D + k: pre j at delay 1 + k
    np.testing.assert_array_equal(linear_to_w(lin, D), w)
    c, y = dense_contexts(targets, D, torch.float64)
    c0, y0 = contexts(targets, D)
    np.testing.assert_array_equal(c.numpy(), c0)
    np.testing.assert_array_equal(y.numpy(), y0)


def test_pinv_matches_least_squares(targets, w_ours):
    w = dense_pinv_init(targets, D, gain=1.5, dtype=torch.float64)
    assert w.shape == (N, N, D) and w.dtype == np.float64
    assert np.abs(w_ours).max() > 0.1  # not a trivially zero solution
    np.testing.assert_allclose(w, w_ours, rtol=0, atol=1e-8)


def test_eval_matches_recall_float(targets, w_ours):
    f = trial_forcing(targets, D, pre=PRE, p=P, seed=SEED)
    s_dense = dense_simulate(w_ours, f, dtype=torch.float64)
    s_ours, _ = simulate_float(w_ours, f)
    np.testing.assert_array_equal(s_dense, s_ours)
    f1, per = dense_eval(w_ours, targets, pre=PRE, p=P, seed=SEED, dtype=torch.float64)
    f1_ref, per_ref = recall_float(w_ours, targets, pre=PRE, p=P, seed=SEED)
    assert f1 == f1_ref
    np.testing.assert_array_equal(per, per_ref)
    # the subtractive reset too, on a network that does fire spuriously (weights scaled up)
    f1s, _ = dense_eval(1.7 * w_ours, targets, pre=PRE, p=P, seed=SEED, reset="subtract",
                        dtype=torch.float64)
    f1s_ref, _ = recall_float(1.7 * w_ours, targets, pre=PRE, p=P, seed=SEED, reset="subtract")
    assert f1s == f1s_ref


def _reference_grad(w, targets, *, pre, p, seed, slope=15.0, beta=205 / 256, theta=1.0):
    """Independent BPTT: W[i, j, k] used directly (einsum over a list of past emitted spikes),
    surrogate by the straight-through trick with the fast sigmoid's antiderivative
    x / (1 + slope |x|), and the soft-F1 loss written from tp / fp / fn."""
    d = w.shape[2]
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    f = torch.as_tensor(trial_forcing(targets, d, pre=pre, p=p, seed=seed), dtype=torch.float64)
    b, steps, n = f.shape
    past = [torch.zeros(b, n, dtype=torch.float64)] * d  # past[k] = e(t - 1 - k)
    v = torch.zeros(b, n, dtype=torch.float64)
    out = []
    for t in range(steps):
        i_in = sum(torch.einsum("ij,bj->bi", wt[:, :, k], past[k]) for k in range(d))
        x = beta * v + i_in - theta
        g = x / (1 + slope * x.abs())
        s = (x >= 0).double() + g - g.detach()
        v = (x + theta) * (1 - s.detach())
        e = 1 - (1 - s) * (1 - f[:, t])
        past = [e] + past[:-1]
        out.append(s)
    s = torch.stack(out, 1)[:, pre + d:pre + targets.shape[2]]
    y = torch.as_tensor(targets[:, :, d:].transpose(0, 2, 1), dtype=torch.float64)
    tp, fp, fn = (s * y).sum(), (s * (1 - y)).sum(), ((1 - s) * y).sum()
    loss = 1 - 2 * tp / (2 * tp + fp + fn)
    loss.backward()
    return float(loss.detach()), wt.grad.numpy()


def test_train_step(targets, w_ours):
    # a perturbed start so that recall is imperfect and the loss is not ~0
    w0 = 1.2 * w_ours
    lr = 0.05
    r = dense_train_step(w0, targets, pre=PRE, p=P, seed=SEED, lr=lr, dtype=torch.float64)
    # (a) the loss is 1 - micro-F1 of the forward spikes, from score_recall's counts
    f = trial_forcing(targets, D, pre=PRE, p=P, seed=SEED)
    f1_ref, _ = score_recall(targets, simulate_float(w0, f)[0], D, pre=PRE)
    assert 0.05 < r["loss"] < 0.95
    assert r["loss"] == pytest.approx(1 - f1_ref, abs=1e-12)
    assert r["f1"] == f1_ref
    # (b) the gradient: shape, finite, non-zero, and equal to an independent BPTT
    g = r["grad"]
    assert g.shape == (N, N, D) and g.dtype == np.float64
    assert np.isfinite(g).all() and np.abs(g).max() > 1e-6
    loss_ref, g_ref = _reference_grad(w0, targets, pre=PRE, p=P, seed=SEED)
    assert r["loss"] == pytest.approx(loss_ref, abs=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-12 * np.abs(g_ref).max())
    # (c) plain SGD: exactly W - lr * grad
    np.testing.assert_array_equal(r["w"], w0 - lr * g)
    assert r["forward_s"] > 0 and r["backward_s"] > 0


def test_train_step_float32_runs(targets, w_ours):
    r = dense_train_step(w_ours, targets, pre=PRE, p=P, seed=SEED, lr=1e-3)
    assert r["w"].dtype == np.float32 and r["grad"].shape == (N, N, D)
    assert np.isfinite(r["grad"]).all()
    f1, _ = dense_eval(w_ours, targets, pre=PRE, p=P, seed=SEED)
    assert r["loss"] == pytest.approx(1 - f1, abs=1e-6)


def test_dense_wm_rejects_bad_shapes():
    with pytest.raises(ValueError):
        DenseWM(np.zeros((3, 4, 2)))
    with pytest.raises(ValueError):
        DenseWM(np.zeros((3, 3, 2)), reset="none")
