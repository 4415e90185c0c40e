"""Figures of explorer.plots.boundaries build from arrays with the expected traces."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.boundaries.grid import grid
from explorer.boundaries.points import attack_point
from explorer.boundaries.toy import ToyDataConfig, linear_model, make_dataset
from explorer.plots.boundaries import (
    add_point_attack,
    ball_outline,
    class_order,
    margin_histograms,
    profile_figure,
    quiver_arrows,
    slice_figure,
    two_panel_figure,
)

W = (1.0, 2.0)


@pytest.fixture(scope="module")
def lab():
    model = linear_model(W, -0.5)
    data = make_dataset(ToyDataConfig(n=60))
    return model, data, grid(model, resolution=80)


def names(fig):
    return [t.name for t in fig.data]


def test_two_panel_figure(lab):
    _, data, g = lab
    fig = two_panel_figure(g.xs, g.ys, g.prob, g.grad, g.contour, data.x, data.y, every=8)
    n = names(fig)
    for want in ("p(blue)", "boundary (p = 0.5)", "class 0 (red)", "class 1 (blue)", "|∇p|", "∇ field"):
        assert want in n
    assert n.count("boundary (p = 0.5)") == 2 and n.count("class 1 (blue)") == 2
    heat = fig.data[n.index("p(blue)")]
    np.testing.assert_array_equal(np.asarray(heat.z), g.prob)
    assert heat.xaxis == "x" and fig.data[n.index("∇ field")].xaxis == "x2"
    pts = sum(len(t.x) for t in fig.data if t.name and t.name.startswith("class ")) // 2
    assert pts == len(data.x)
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis2.scaleanchor == "x2"


def test_quiver_arrows_follow_the_gradient(lab):
    _, _, g = lab
    segs, rel = quiver_arrows(g.xs, g.ys, g.grad, every=10, scale="unit")
    assert segs.shape[1:] == (3, 2, 2) and len(segs) == len(rel) == 64
    shaft = segs[:, 0, 1] - segs[:, 0, 0]
    unit = shaft / np.linalg.norm(shaft, axis=1, keepdims=True)
    np.testing.assert_allclose(unit, np.broadcast_to(np.array(W) / np.linalg.norm(W), unit.shape), atol=1e-5)
    assert rel.max() == pytest.approx(1.0)
    lin, _ = quiver_arrows(g.xs, g.ys, g.grad, every=10, scale="max", min_frac=0.0)
    lengths = np.linalg.norm(lin[:, 0, 1] - lin[:, 0, 0], axis=1)
    assert lengths.max() == pytest.approx(0.9 * (g.xs[1] - g.xs[0]) * 10, rel=1e-4)
    with pytest.raises(ValueError):
        quiver_arrows(g.xs, g.ys, g.grad, scale="log")


def test_point_attack_overlay(lab):
    model, data, g = lab
    fig = two_panel_figure(g.xs, g.ys, g.prob, g.grad, g.contour, data.x, data.y)
    before = len(fig.data)
    a = attack_point(model, data.x[0], int(data.y[0]), 0.3, "l2", steps=5)
    add_point_attack(fig, a.point, a.fgsm, a.pgd, a.eps, a.norm, flips=(a.fgsm_flips, a.pgd_flips))
    added = names(fig)[before:]
    assert len(added) == 10
    assert {"ε ball (L2)", "picked point", "PGD end"} <= set(added)
    assert any(n.startswith("FGSM step") for n in added) and any(n.startswith("PGD path") for n in added)
    pgd = next(t for t in fig.data[before:] if t.name.startswith("PGD path"))
    assert len(pgd.x) == 6
    sq = ball_outline(np.zeros(2), 0.5, "linf")
    assert np.abs(sq).max() == pytest.approx(0.5) and len(sq) == 5


def test_margin_histograms():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, 100), rng.uniform(0.5, 2, 80)
    fig = margin_histograms(a, b, cap=2.0, eps=0.3, bins=20)
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 2
    assert int(np.sum(bars[0].y)) == 100 and int(np.sum(bars[1].y)) == 80
    np.testing.assert_array_equal(bars[0].x, bars[1].x)  # shared bins
    assert "L∞" in fig.layout.xaxis.title.text


def test_slice_figure_legend_hover_and_markers():
    coords = np.linspace(-1, 1, 5).astype(np.float32)
    pred = np.array([[3] * 5, [3] * 5, [3, 3, 7, 7, 7], [1] * 5, [1] * 5])
    prob = np.full((5, 5), 0.9, np.float32)
    class_names = [f"digit {i}" for i in range(10)]
    fig = slice_figure(coords, pred, class_names, max_prob=prob, markers={"FGSM": (0.5, 0.0), "PGD": (0.3, 0.1)},
                       eps=0.5, axis1="ε along sign(∇ₓL), L∞ units")
    n = names(fig)
    assert n[0] == "classes"
    assert n[1:4] == ["digit 3", "digit 1", "digit 7"]  # by area
    assert {"FGSM", "PGD", "ε ball", "original"} <= set(n)
    orig = fig.data[n.index("original")]
    assert (orig.x[0], orig.y[0]) == (0.0, 0.0)
    heat = fig.data[0]
    assert "digit 7" in heat.text[2][2] and "p = 0.900" in heat.text[2][2]
    assert fig.layout.xaxis.title.text == "ε along sign(∇ₓL), L∞ units"


def test_slice_figure_more_than_ten_classes():
    pred = np.arange(144).reshape(12, 12) % 12
    pred = pred[:11, :11]
    shown, idx = class_order(pred, max_classes=10)
    assert len(shown) == 10 and idx.max() == 10
    fig = slice_figure(np.linspace(-1, 1, 11), pred, [f"c{i}" for i in range(12)])
    legend = [t.name for t in fig.data if t.type == "scatter" and t.legendgroup == "classes"]
    assert len(legend) == 11 and legend[-1] == "other"
    # Hover still names the real class of an "other" cell.
    other_cell = tuple(np.argwhere(idx == 10)[0])
    assert fig.data[0].text[other_cell[0]][other_cell[1]] == f"c{pred[other_cell]}"


def test_profile_figure():
    t = np.linspace(-0.2, 0.2, 11)
    la = np.stack([np.linspace(5, -5, 11), np.linspace(-5, 5, 11), np.zeros(11)], 1)
    lr = np.stack([np.full(11, 5.0), np.zeros(11), np.zeros(11)], 1)
    fig = profile_figure(t, np.linspace(0, 3, 11), la, np.zeros(11), lr, ["cat", "dog", "fox"], 0, max_classes=2)
    n = names(fig)
    assert n.count("cat (true)") == 2 and n.count("dog") == 2 and "fox" not in n
    assert n.count("cross-entropy loss") == 2
    assert "L∞" in fig.layout.xaxis3.title.text
