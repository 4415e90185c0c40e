"""Plotly figures for attribution maps: heat-map overlays on the image, per-channel views, comparison grids.

Every function takes numpy arrays (images C x H x W or H x W in [0, 1]; maps as produced by
``explorer.attributions.to_display``) and returns a ``go.Figure``; nothing here runs a model.

* Signed maps use a diverging colour map centred on zero (symmetric range, blue < 0 < red) whose middle is
  transparent, so the image shows through where the map is near zero; magnitude maps use a sequential map that
  fades in from transparent. Both carry a colour bar.
* Small images (8 x 8 digits, 28 x 28 MNIST) are upscaled nearest-neighbour for display while keeping pixel
  coordinates (hover shows the model's own pixel indices); the heat map itself is drawn as crisp cells.
* Trace names are stable so pages and tests can find them: ``"image"``, ``"attribution"`` (overlay and grid
  panels), ``"channel <name>"``, ``"perturbation"``, ``"saliency"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# RdBu reversed, with a transparent middle: negative blue, positive red, zero lets the image through.
SIGNED_COLORSCALE = [
    [0.0, "rgba(5,48,97,1)"], [0.2, "rgba(33,102,172,0.95)"], [0.4, "rgba(146,197,222,0.6)"],
    [0.5, "rgba(247,247,247,0)"],
    [0.6, "rgba(244,165,130,0.6)"], [0.8, "rgba(214,96,77,0.95)"], [1.0, "rgba(103,0,31,1)"],
]
# 'hot'-like, fading in from transparent: small magnitudes let the image through.
MAGNITUDE_COLORSCALE = [
    [0.0, "rgba(0,0,0,0)"], [0.15, "rgba(120,0,0,0.35)"], [0.4, "rgba(220,30,0,0.75)"],
    [0.7, "rgba(255,160,0,0.9)"], [1.0, "rgba(255,255,160,1)"],
]
# Opaque versions for maps shown without the image underneath.
_INFERNO = plotly.colors.sequential.Inferno
SIGNED_OPAQUE = "RdBu_r"
# Inferno, except that its first colour #000004 becomes #01000a: Streamlit's Plotly theme treats #000001..#000010
# as placeholders for its own palette and would paint the smallest magnitudes pink.
MAGNITUDE_OPAQUE = [
    [i / (len(_INFERNO) - 1), "#01000a" if c.lower() == "#000004" else c] for i, c in enumerate(_INFERNO)
]
DISPLAY_SIZE = 224  # small images are upscaled to at least this many pixels on their longer side


def upscale_factor(height: int, width: int, target: int = DISPLAY_SIZE) -> int:
    """Integer nearest-neighbour factor bringing the longer side to at least ``target`` (1 for big images)."""
    return max(1, int(np.ceil(target / max(1, height, width))))


def upscale_nearest(array: np.ndarray, factor: int) -> np.ndarray:
    """Repeat every pixel ``factor`` times along the last two axes (H x W, C x H x W or H x W x 3 uint8 RGB)."""
    a = np.asarray(array)
    if factor <= 1:
        return a
    if a.ndim == 3 and a.shape[-1] == 3 and a.dtype == np.uint8:  # H x W x 3
        return a.repeat(factor, axis=0).repeat(factor, axis=1)
    return a.repeat(factor, axis=-2).repeat(factor, axis=-1)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """[0, 1] image (H x W, 1 x H x W or 3 x H x W) -> H x W x 3 uint8 for ``go.Image``."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"expected an H x W, 1 x H x W or 3 x H x W image, got shape {a.shape}")
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    return (np.clip(a, 0.0, 1.0).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)


def _as_map(attr: np.ndarray) -> np.ndarray:
    a = np.asarray(attr, dtype=np.float32)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"expected one H x W map (reduce channels with to_display first), got shape {a.shape}")
    return a


def color_range(maps: np.ndarray | Sequence[np.ndarray], signed: bool, percentile: float = 99.5) -> tuple[float, float]:
    """(zmin, zmax) shared by ``maps``: symmetric about zero for signed maps, from zero for magnitudes.

    The ``percentile`` of the magnitudes, so a single extreme pixel does not wash out the rest.
    """
    flat = np.concatenate([np.abs(np.asarray(m, dtype=np.float64)).ravel() for m in
                           (maps if isinstance(maps, (list, tuple)) else [maps])])
    flat = flat[np.isfinite(flat)]
    top = float(np.percentile(flat, percentile)) if flat.size else 0.0
    if top <= 0:
        top = float(flat.max()) if flat.size and flat.max() > 0 else 1.0
    return (-top, top) if signed else (0.0, top)


def _colorscale(signed: bool, over_image: bool):
    if over_image:
        return SIGNED_COLORSCALE if signed else MAGNITUDE_COLORSCALE
    return SIGNED_OPAQUE if signed else MAGNITUDE_OPAQUE


def _image_trace(image: np.ndarray, height: int, width: int, factor: int | None = None) -> go.Image:
    k = factor or upscale_factor(height, width)
    rgb = upscale_nearest(to_rgb(image), k)
    # keep the model's pixel coordinates: pixel i spans [i - 0.5, i + 0.5] whatever the upscaling
    return go.Image(z=rgb, x0=-0.5 + 0.5 / k, dx=1.0 / k, y0=-0.5 + 0.5 / k, dy=1.0 / k, name="image",
                    hoverinfo="skip")


def _heatmap(m: np.ndarray, signed: bool, zrange: tuple[float, float], opacity: float, over_image: bool,
             colorbar: dict | None, name: str = "attribution") -> go.Heatmap:
    return go.Heatmap(
        z=m, zmin=zrange[0], zmax=zrange[1], zmid=0.0 if signed else None, colorscale=_colorscale(signed, over_image),
        opacity=float(opacity), showscale=colorbar is not None, colorbar=colorbar, name=name,
        hovertemplate="x=%{x}, y=%{y}<br>%{z:.3g}<extra></extra>", zsmooth=False,
    )


def _square_axes(fig: go.Figure, height: int, width: int, rows: int = 1, cols: int = 1) -> None:
    for i in range(1, rows * cols + 1):
        suffix = "" if i == 1 else str(i)
        fig.layout[f"xaxis{suffix}"].update(showticklabels=False, showgrid=False, zeroline=False,
                                            range=[-0.5, width - 0.5], constrain="domain")
        fig.layout[f"yaxis{suffix}"].update(showticklabels=False, showgrid=False, zeroline=False,
                                            range=[height - 0.5, -0.5], scaleanchor=f"x{suffix}",
                                            constrain="domain")


def overlay_figure(image: np.ndarray | None, attr: np.ndarray, *, signed: bool, opacity: float = 0.7,
                   title: str | None = None, zrange: tuple[float, float] | None = None,
                   colorbar_title: str | None = None, height: int = 360) -> go.Figure:
    """One attribution map over its image (``image=None``: the map alone, opaque colours).

    ``attr``: H x W (``to_display`` output). ``opacity`` is the map's opacity over the image. ``zrange``
    defaults to ``color_range(attr, signed)``; pass a shared one to compare several figures.
    """
    m = _as_map(attr)
    h, w = m.shape
    zr = zrange or color_range(m, signed)
    fig = go.Figure()
    if image is not None:
        fig.add_trace(_image_trace(image, h, w))
    fig.add_trace(_heatmap(m, signed, zr, opacity if image is not None else 1.0, image is not None,
                           dict(title=colorbar_title or ("attribution" if signed else "|attribution|"), len=0.9)))
    _square_axes(fig, h, w)
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      plot_bgcolor="white")
    return fig


def grid_figure(images: Sequence[np.ndarray | None], maps: Sequence[np.ndarray], titles: Sequence[str], *,
                signed: bool, opacity: float = 0.7, cols: int = 2, shared_scale: bool = True,
                colorbar_title: str | None = None, panel_height: int = 280) -> go.Figure:
    """Maps side by side (clean vs adversarial, true vs flipped class, or one image on several models).

    ``shared_scale``: one colour range and one colour bar for every panel (compare magnitudes); otherwise
    each panel is scaled to itself and the colour bar shows the last panel's range. Maps may differ in size
    (models with different inputs).
    """
    if not (len(images) == len(maps) == len(titles)):
        raise ValueError("images, maps and titles must have the same length")
    if not maps:
        raise ValueError("no maps to show")
    ms = [_as_map(m) for m in maps]
    cols = max(1, min(cols, len(ms)))
    rows = int(np.ceil(len(ms) / cols))
    lines = max((t.count("<br>") + 1 for t in titles), default=1)  # room for titles of several lines
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles), horizontal_spacing=0.03,
                        vertical_spacing=min(0.3, max(0.08, (16 * lines + 12) / (panel_height * rows))))
    shared = color_range(ms, signed) if shared_scale else None
    for i, (img, m) in enumerate(zip(images, ms)):
        r, c = divmod(i, cols)
        h, w = m.shape
        if img is not None:
            fig.add_trace(_image_trace(img, h, w), row=r + 1, col=c + 1)
        last = i == len(ms) - 1
        bar = dict(title=colorbar_title or ("attribution" if signed else "|attribution|"), len=0.9) if last else None
        fig.add_trace(_heatmap(m, signed, shared or color_range(m, signed), opacity if img is not None else 1.0,
                               img is not None, bar), row=r + 1, col=c + 1)
    for i, m in enumerate(ms):
        suffix = "" if i == 0 else str(i + 1)
        h, w = m.shape
        fig.layout[f"xaxis{suffix}"].update(showticklabels=False, showgrid=False, zeroline=False,
                                            range=[-0.5, w - 0.5], constrain="domain")
        fig.layout[f"yaxis{suffix}"].update(showticklabels=False, showgrid=False, zeroline=False,
                                            range=[h - 0.5, -0.5], scaleanchor=f"x{suffix}", constrain="domain")
    fig.update_layout(height=panel_height * rows + 40, margin=dict(l=10, r=10, t=max(40, 20 * lines + 16), b=10),
                      plot_bgcolor="white")
    return fig


def channel_figure(attr: np.ndarray, *, signed: bool, channel_names: Sequence[str] | None = None,
                   panel_height: int = 260) -> go.Figure:
    """One panel per input channel (C x H x W raw attributions), one shared colour range and colour bar.

    Magnitude mode (``signed=False``) shows |attribution|.
    """
    a = np.asarray(attr, dtype=np.float32)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3:
        raise ValueError(f"expected C x H x W attributions, got shape {a.shape}")
    c = a.shape[0]
    default = ["R", "G", "B"] if c == 3 else [f"channel {i}" for i in range(c)]
    names = list(channel_names) if channel_names else default
    if len(names) != c:
        raise ValueError(f"{c} channels but {len(names)} names")
    shown = a if signed else np.abs(a)
    zr = color_range(shown, signed)
    fig = make_subplots(rows=1, cols=c, subplot_titles=names, horizontal_spacing=0.03)
    for i in range(c):
        bar = dict(title="attribution" if signed else "|attribution|", len=0.9) if i == c - 1 else None
        fig.add_trace(_heatmap(shown[i], signed, zr, 1.0, False, bar, name=f"channel {names[i]}"), row=1, col=i + 1)
    _square_axes(fig, a.shape[1], a.shape[2], 1, c)
    fig.update_layout(height=panel_height + 40, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white")
    return fig


def perturbation_figure(perturbation: np.ndarray, saliency: np.ndarray, *, correlation: float | None = None,
                        saliency_title: str = "saliency", panel_height: int = 280) -> go.Figure:
    """The attack's perturbation |δ| (max over channels) next to a saliency map, with their correlation.

    ``correlation`` (from ``explorer.attributions.alignment``) goes in the title: does the attack push where
    the gradient is large? Each panel has its own magnitude scale and colour bar.
    """
    p = np.abs(np.asarray(perturbation, dtype=np.float32))
    if p.ndim == 4 and p.shape[0] == 1:
        p = p[0]
    p = p.max(axis=0) if p.ndim == 3 else p
    s = np.abs(_as_map(saliency))
    fig = make_subplots(rows=1, cols=2, subplot_titles=["|perturbation| (max over channels)", saliency_title],
                        horizontal_spacing=0.12)
    zp, zs = color_range(p, False), color_range(s, False)
    fig.add_trace(_heatmap(p, False, zp, 1.0, False, dict(title="|δ|", len=0.9, x=0.44), name="perturbation"),
                  row=1, col=1)
    fig.add_trace(_heatmap(s, False, zs, 1.0, False, dict(title="|s|", len=0.9), name="saliency"), row=1, col=2)
    _square_axes(fig, p.shape[0], p.shape[1], 1, 1)
    fig.layout["xaxis2"].update(showticklabels=False, showgrid=False, zeroline=False, range=[-0.5, s.shape[1] - 0.5],
                                constrain="domain")
    fig.layout["yaxis2"].update(showticklabels=False, showgrid=False, zeroline=False, range=[s.shape[0] - 0.5, -0.5],
                                scaleanchor="x2", constrain="domain")
    if correlation is not None:
        text = "undefined (a map is constant)" if not np.isfinite(correlation) else f"{correlation:+.2f}"
        title = f"Pearson correlation of |δ| and |saliency| over pixels: {text}"
    else:
        title = None
    fig.update_layout(title=title, height=panel_height + (70 if title else 40),
                      margin=dict(l=10, r=10, t=70 if title else 40, b=10), plot_bgcolor="white")
    return fig
