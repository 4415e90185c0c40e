import numpy as np
import plotly.graph_objects as go
import pytest

from explorer.plots.attributions import (
    channel_figure,
    color_range,
    grid_figure,
    overlay_figure,
    perturbation_figure,
    to_rgb,
    upscale_factor,
    upscale_nearest,
)


def _trace(fig: go.Figure, name: str):
    return next(t for t in fig.data if t.name == name)


def test_nearest_upscaling_keeps_pixel_coordinates():
    assert upscale_factor(8, 8) == 28 and upscale_factor(28, 28) == 8 and upscale_factor(224, 224) == 1
    a = np.arange(4, dtype=np.float32).reshape(2, 2)
    up = upscale_nearest(a, 3)
    assert up.shape == (6, 6) and (up[:3, :3] == 0).all() and (up[3:, 3:] == 3).all()
    rgb = to_rgb(np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8 and rgb[0, 0, 0] == 0 and rgb[7, 7, 2] == 255
    fig = overlay_figure(np.zeros((1, 8, 8)), np.ones((8, 8)), signed=False)
    image = _trace(fig, "image")
    assert np.asarray(image.z).shape == (224, 224, 3)
    assert image.x0 + (224 - 1) * image.dx == pytest.approx(7.5 - 0.5 / 28)  # spans the model's 8 pixels


def test_signed_overlay_is_centred_on_zero_with_colour_bar():
    m = np.array([[-2.0, 1.0], [0.5, 0.0]], np.float32)
    fig = overlay_figure(np.ones((3, 2, 2)), m, signed=True, opacity=0.4, title="t")
    heat = _trace(fig, "attribution")
    assert heat.zmid == 0 and heat.zmin == -heat.zmax and heat.zmax > 0
    assert heat.showscale and heat.opacity == 0.4
    assert "0)" in heat.colorscale[len(heat.colorscale) // 2][1]  # transparent middle over the image
    alone = _trace(overlay_figure(None, m, signed=False), "attribution")
    assert alone.zmin == 0 and alone.opacity == 1.0


def test_color_range_ignores_one_outlier():
    m = np.ones((20, 20))
    m[0, 0] = 1000
    assert color_range(m, True) == (-1.0, 1.0)
    assert color_range(np.zeros((3, 3)), False) == (0.0, 1.0)


def test_grid_channels_and_perturbation_figures():
    rng = np.random.default_rng(0)
    maps = [rng.normal(size=(8, 8)) for _ in range(3)] + [rng.normal(size=(28, 28))]
    fig = grid_figure([None, np.zeros((1, 8, 8)), None, np.ones((1, 28, 28))], maps, ["a", "b", "c", "d"],
                      signed=True, cols=2)
    heats = [t for t in fig.data if t.name == "attribution"]
    assert len(heats) == 4 and sum(bool(t.showscale) for t in heats) == 1
    assert len({(t.zmin, t.zmax) for t in heats}) == 1  # one shared scale
    per_panel = grid_figure([None] * 4, maps, list("abcd"), signed=False, shared_scale=False)
    assert len({t.zmax for t in per_panel.data}) == 4
    with pytest.raises(ValueError):
        grid_figure([None], maps, ["a"], signed=True)

    ch = channel_figure(rng.normal(size=(3, 6, 6)), signed=False)
    assert [t.name for t in ch.data] == ["channel R", "channel G", "channel B"]
    assert all(t.zmin == 0 for t in ch.data)

    pert = perturbation_figure(rng.normal(size=(3, 6, 6)), rng.random((6, 6)), correlation=0.42)
    assert {t.name for t in pert.data} == {"perturbation", "saliency"}
    assert "+0.42" in pert.layout.title.text
    flat = perturbation_figure(np.ones((1, 4, 4)), np.ones((4, 4)), correlation=float("nan"))
    assert "undefined" in flat.layout.title.text
    fig.to_json()  # serialisable


def test_opaque_magnitude_scale_avoids_streamlit_theme_placeholders():
    """Streamlit's Plotly theme swaps #000001..#000010 for its own palette: the scale must not use them."""
    from explorer.plots.attributions import MAGNITUDE_OPAQUE

    placeholders = {f"#{i:06d}" for i in range(1, 11)}
    assert all(str(color).lower() not in placeholders for _, color in MAGNITUDE_OPAQUE)
    assert MAGNITUDE_OPAQUE[0][0] == 0.0 and MAGNITUDE_OPAQUE[-1][0] == 1.0
