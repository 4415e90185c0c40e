"""Grid evaluation, the 0.5 contour and 2-D point attacks against analytic answers (a linear model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.boundaries.grid import evaluate_points, grid, marching_squares
from explorer.boundaries.points import attack_point, fgsm_point, margins, pgd_trajectory
from explorer.boundaries.toy import MLPConfig, ToyDataConfig, linear_model, make_dataset, train_mlp

W = np.array([1.5, -0.8])
B = 0.3


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def lin():
    return linear_model(tuple(W), B)


@pytest.fixture(scope="module")
def mlp():
    d = make_dataset(ToyDataConfig(n=150))
    return d, train_mlp(d, MLPConfig(depth=2, width=16, steps=80, activation="tanh")).model


def test_linear_model_probabilities_and_gradient_field_are_analytic(lin):
    g = grid(lin, resolution=101)
    gx, gy = np.meshgrid(g.xs, g.ys)
    z = W[0] * gx + W[1] * gy + B
    p = sigmoid(z)
    np.testing.assert_allclose(g.prob, p, atol=1e-6)
    np.testing.assert_allclose(g.grad[..., 0], p * (1 - p) * W[0], atol=1e-6)
    np.testing.assert_allclose(g.grad[..., 1], p * (1 - p) * W[1], atol=1e-6)
    # The log-odds field is constant: w everywhere.
    lo = grid(lin, resolution=21, output="logodds")
    np.testing.assert_allclose(lo.grad.reshape(-1, 2), np.broadcast_to(W, (21 * 21, 2)), rtol=1e-6)
    lg = grid(lin, resolution=21, output="logit")
    np.testing.assert_allclose(lg.grad.reshape(-1, 2), np.broadcast_to(W, (21 * 21, 2)), rtol=1e-6)


def test_linear_model_boundary_is_the_analytic_line(lin):
    g = grid(lin, resolution=200)
    ends = g.contour.reshape(-1, 2).astype(np.float64)
    assert len(g.contour) > 100
    # Every contour vertex lies on w·x + b = 0 ...
    dist = np.abs(ends @ W + B) / np.linalg.norm(W)
    assert dist.max() < 1e-4
    # ... and the contour spans the whole line across the plot (x from the left edge to the right one).
    # With this w the line enters at the bottom edge and leaves at the top edge of the plot.
    x0, x1, y0, y1 = g.bounds
    x_at = lambda yv: -(W[1] * yv + B) / W[0]  # noqa: E731
    assert x0 < x_at(y0) < x_at(y1) < x1
    assert ends[:, 0].min() == pytest.approx(x_at(y0), abs=0.05)
    assert ends[:, 0].max() == pytest.approx(x_at(y1), abs=0.05)
    xy_x, xy_y = g.contour_xy()
    assert len(xy_x) == 3 * len(g.contour) and np.isnan(xy_x[2::3]).all()


def test_grid_equals_point_by_point(mlp):
    _, model = mlp
    g = grid(model, resolution=60)
    rng = np.random.default_rng(0)
    for iy, ix in rng.integers(0, 60, size=(8, 2)):
        x = torch.tensor([[g.xs[ix], g.ys[iy]]], requires_grad=True)
        logits = model(x)
        p = torch.softmax(logits, 1)[0, 1]
        (gr,) = torch.autograd.grad(p, x)
        assert g.prob[iy, ix] == pytest.approx(float(p.detach()), abs=1e-6)
        np.testing.assert_allclose(g.grad[iy, ix], gr[0].numpy(), atol=1e-6)
    prob, grad = evaluate_points(model, np.array([[g.xs[5], g.ys[7]]]))
    assert prob[0] == pytest.approx(g.prob[7, 5], abs=1e-6)


def test_grid_is_deterministic(mlp):
    _, model = mlp
    a, b = grid(model, resolution=50), grid(model, resolution=50)
    np.testing.assert_array_equal(a.prob, b.prob)
    np.testing.assert_array_equal(a.grad, b.grad)
    np.testing.assert_array_equal(a.contour, b.contour)


def test_marching_squares_circle_and_saddle():
    xs = np.linspace(-2, 2, 81)
    gx, gy = np.meshgrid(xs, xs)
    f = gx**2 + gy**2
    seg = marching_squares(f, xs, xs, level=0.91)  # a radius that passes through no grid vertex
    r = np.linalg.norm(seg.reshape(-1, 2), axis=1)
    assert np.abs(r - np.sqrt(0.91)).max() < 5e-3
    # A closed curve: every vertex is shared by exactly two segments.
    _, counts = np.unique(np.round(seg.reshape(-1, 2), 5), axis=0, return_counts=True)
    assert (counts == 2).all()
    # A saddle cell gives two segments, never a crossing.
    sad = marching_squares(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.0, 1.0]), np.array([0.0, 1.0]), 0.5)
    assert sad.shape == (2, 2, 2)
    assert marching_squares(np.zeros((5, 5)), np.arange(5.0), np.arange(5.0), 0.5).shape == (0, 2, 2)


def test_fgsm_and_pgd_on_a_linear_model(lin):
    p = np.array([-0.5, 0.2], np.float32)  # red side: w·p + b = -0.61
    assert float(p @ W + B) < 0
    eps = 0.25
    # Label red: the loss grows towards blue, i.e. along +w.
    np.testing.assert_allclose(fgsm_point(lin, p, 0, eps, "linf"), p + eps * np.sign(W), atol=1e-6)
    np.testing.assert_allclose(fgsm_point(lin, p, 0, eps, "l2"), p + eps * W / np.linalg.norm(W), atol=1e-6)
    traj = pgd_trajectory(lin, p, 0, eps, "linf", steps=7)
    assert traj.shape == (8, 2)
    np.testing.assert_array_equal(traj[0], p)
    assert np.abs(traj - p).max() <= eps + 1e-6
    traj2 = pgd_trajectory(lin, p, 0, eps, "l2", steps=7)
    assert np.linalg.norm(traj2 - p, axis=1).max() <= eps + 1e-6
    # The L∞ distance to the boundary is |w·p + b| / ||w||₁ = 0.61 / 2.3 ≈ 0.265: eps 0.25 holds, 0.3 flips.
    assert not attack_point(lin, p, 0, 0.25).pgd_flips
    a = attack_point(lin, p, 0, 0.3, steps=10)
    assert a.pred_clean == 0 and a.fgsm_flips and a.pgd_flips


def test_margins_of_a_linear_model_are_analytic(lin):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.5, 1.5, (200, 2)).astype(np.float32)
    z = x.astype(np.float64) @ W + B
    y = (z > 0).astype(np.int64)
    y[:10] = 1 - y[:10]  # ten misclassified points
    m_inf = margins(lin, x, y, "linf", cap=5.0)
    m_l2 = margins(lin, x, y, "l2", cap=5.0)
    ok = np.arange(200) >= 10
    np.testing.assert_allclose(m_inf.distance[ok], np.abs(z[ok]) / np.abs(W).sum(), atol=2e-4)
    np.testing.assert_allclose(m_l2.distance[ok], np.abs(z[ok]) / np.linalg.norm(W), atol=2e-4)
    assert (m_inf.distance[~ok] == 0).all() and m_inf.misclassified[:10].all()
    capped = margins(lin, x, y, "l2", cap=0.1)
    far = ok & (np.abs(z) / np.linalg.norm(W) > 0.1)
    np.testing.assert_allclose(capped.distance[far], 0.1)
    assert not capped.reached[far].any()
