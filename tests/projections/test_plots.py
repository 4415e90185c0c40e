"""The projection figures: traces, symbols, segments with gaps, customdata for selections."""

from __future__ import annotations

import numpy as np

from explorer.plots.projections import (
    ADV_SYMBOL,
    CLEAN_SYMBOL,
    distance_figure,
    distance_histogram,
    layer_growth_bars,
    layer_growth_figure,
    projection_scatter,
    segment_coordinates,
)
from explorer.projections import LayerGrowth, nearest_clean_distances


def test_scatter_traces_and_customdata():
    rng = np.random.default_rng(0)
    clean, adv = rng.normal(size=(12, 2)), rng.normal(size=(12, 2))
    y = np.arange(12) % 3
    pred = (y + 1) % 3
    fig = projection_scatter(clean, adv, y, ["zero", "one", "two"], clean_pred=y, adv_pred=pred,
                             sources=[f"img{i}" for i in range(12)], title="UMAP")
    names = [t.name for t in fig.data]
    assert names[0] == "clean → adversarial" and fig.data[0].mode == "lines"
    assert "zero" in names and "two" in names and names[-2:] == ["clean", "adversarial"]
    cls = [t for t in fig.data if t.legendgroup == "class-1"]
    assert [t.marker.symbol for t in cls] == [CLEAN_SYMBOL, ADV_SYMBOL]
    assert cls[0].marker.color == cls[1].marker.color
    adv_trace = cls[1]
    row = list(adv_trace.customdata[0])
    assert row == [1, "adversarial", "one", "two", "img1"]
    np.testing.assert_allclose(adv_trace.x, adv[y == 1, 0])
    # 12 segments, one trace, NaN gaps
    xs = list(fig.data[0].x)
    assert len(xs) == 36 and all(v is None for v in xs[2::3]) and xs[:2] == [clean[0, 0], adv[0, 0]]
    assert len(fig.data) == 1 + 3 * 2 + 2
    assert fig.layout.title.text == "UMAP"


def test_scatter_without_segments_webgl_and_many_classes():
    rng = np.random.default_rng(1)
    y = np.arange(60) % 15
    fig = projection_scatter(rng.normal(size=(60, 2)), rng.normal(size=(60, 2)), y,
                             [f"c{i}" for i in range(1000)], segments=False, webgl=True)
    assert all(t.type in ("scattergl", "scatter") for t in fig.data)
    assert not any(t.mode == "lines" for t in fig.data)
    colours = {t.marker.color for t in fig.data if t.legendgroup and t.legendgroup.startswith("class-")}
    assert len(colours) == 15


def test_segments_coordinates():
    xs, ys = segment_coordinates(np.array([[0, 0], [1, 1]]), np.array([[2, 3], [4, 5]]))
    np.testing.assert_array_equal(xs[[0, 1, 3, 4]], [0, 2, 1, 4])
    np.testing.assert_array_equal(ys[[0, 1, 3, 4]], [0, 3, 1, 5])


def test_growth_and_distance_figures():
    g = LayerGrowth(("input", "conv1", "fc"), np.array([0.1, 0.3, 0.9]), np.array([0.1, 0.12, 0.15]),
                    np.zeros((2, 3)), np.zeros((2, 3)))
    fig = layer_growth_figure(g, log_y=True)
    assert [t.name for t in fig.data] == ["adversarial", "random noise, same L∞"]
    assert list(fig.data[0].x) == ["input", "conv1", "fc"] and fig.layout.yaxis.type == "log"
    np.testing.assert_allclose(fig.data[0].customdata, [1.0, 2.5, 6.0])
    assert layer_growth_bars(["a"], [1.0], [0.0]).data[0].y[0] == 1.0
    x = np.random.default_rng(0).normal(size=(30, 4))
    d = nearest_clean_distances(x, x + 3)
    fig = distance_figure(d, title="d")
    assert len(fig.data) == 2 and len(fig.layout.shapes) == 2
    assert len(distance_histogram([], []).data) == 2


def test_mark_pair_rings_one_clean_point_and_its_twin_outside_the_legend():
    from explorer.plots.projections import mark_pair, projection_scatter

    rng = np.random.default_rng(0)
    c, a = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    fig = projection_scatter(c, a, np.array([0, 1, 0, 1, 0, 1]), ("a", "b"))
    before = len(fig.data)
    mark_pair(fig, c[2], a[2])
    assert len(fig.data) == before + 1
    t = fig.data[-1]
    assert list(t.x) == [c[2, 0], a[2, 0]] and list(t.y) == [c[2, 1], a[2, 1]]
    assert t.showlegend is False and t.hoverinfo == "skip"
