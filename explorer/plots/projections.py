"""Figures for the embedding-projection view: the clean/adversarial map, layer growth, nearest-clean distances.

Built from numpy arrays (and the dataclasses of ``explorer.projections``); no streamlit.

Thumbnails: Plotly hover labels render text only (an inline base64 ``<img>`` is stripped), so instead every
point carries ``customdata = [index, kind, true, predicted, source]`` (``kind`` is ``"clean"`` or
``"adversarial"``): the page reads it from a selection event (``st.plotly_chart(on_select=...)``) and shows
that image, or links it to Attack Studio.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

CLEAN_SYMBOL = "circle"
ADV_SYMBOL = "x"
SEGMENT_COLOR = "rgba(120, 120, 120, 0.35)"
ADV_COLOR = "#E45756"
NOISE_COLOR = "#9D9D9D"
CLEAN_COLOR = "#4C78A8"
WEBGL_ABOVE = 5000  # points: switch to WebGL traces (SVG gets slow beyond a few thousand markers)


def class_palette(n: int) -> list[str]:
    """A qualitative palette with ``n`` colours (Tableau 10, then Alphabet's 26; cycles beyond)."""
    base = qualitative.T10 if n <= 10 else qualitative.Alphabet
    return [base[i % len(base)] for i in range(n)]


def _names(values: np.ndarray | None, class_names: Sequence[str], n: int) -> np.ndarray:
    if values is None:
        return np.full(n, "", dtype=object)
    v = np.asarray(values).astype(int)
    return np.array([class_names[i] if 0 <= i < len(class_names) else str(i) for i in v], dtype=object)


def _custom(idx: np.ndarray, kind: str, true: np.ndarray, pred: np.ndarray, src: np.ndarray) -> np.ndarray:
    out = np.empty((len(idx), 5), dtype=object)
    out[:, 0] = idx
    out[:, 1] = kind
    out[:, 2] = true
    out[:, 3] = pred
    out[:, 4] = src
    return out


def segment_coordinates(clean_2d: np.ndarray, adv_2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y of one line trace joining clean point i to adversarial point i, segments split by NaN (None)."""
    c = np.asarray(clean_2d, np.float64)
    a = np.asarray(adv_2d, np.float64)
    n = min(len(c), len(a))
    xs = np.full(3 * n, np.nan)
    ys = np.full(3 * n, np.nan)
    xs[0::3], xs[1::3] = c[:n, 0], a[:n, 0]
    ys[0::3], ys[1::3] = c[:n, 1], a[:n, 1]
    return xs, ys


def projection_scatter(clean_2d: np.ndarray, adv_2d: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                       clean_pred: np.ndarray | None = None, adv_pred: np.ndarray | None = None,
                       sources: Sequence[str] | None = None, segments: bool = True, title: str = "",
                       webgl: bool | None = None, height: int = 600, axis_title: str = "") -> go.Figure:
    """Clean (circles) and adversarial (x) points coloured by true class, with optional displacement segments.

    ``labels``: true class per image (adversarial point i is the twin of clean point i). Legend: one entry per
    class (clicking it toggles that class's clean and adversarial points), the two symbols, and the segments.
    Each point's ``customdata`` is ``[index, "clean" | "adversarial", true, predicted, source]``.
    """
    clean_2d = np.asarray(clean_2d, np.float64).reshape(-1, 2)
    adv_2d = np.asarray(adv_2d, np.float64).reshape(-1, 2)
    labels = np.asarray(labels).astype(int)
    n = len(clean_2d)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} clean points")
    twins = len(adv_2d) == n
    if webgl is None:
        webgl = n + len(adv_2d) > WEBGL_ABOVE
    scatter = go.Scattergl if webgl else go.Scatter
    src = np.asarray(list(sources) if sources is not None else [""] * n, dtype=object)
    true_names = _names(labels, class_names, n)
    clean_names = _names(clean_pred, class_names, n)
    adv_names = _names(adv_pred, class_names, len(adv_2d))
    idx = np.arange(max(n, len(adv_2d)))

    fig = go.Figure()
    if segments and twins and n:
        xs, ys = segment_coordinates(clean_2d, adv_2d)
        # plain lists with None gaps (a NaN inside a binary-encoded array is not a gap everywhere)
        xs, ys = ([None if np.isnan(v) else v for v in a.tolist()] for a in (xs, ys))
        fig.add_trace(scatter(x=xs, y=ys, mode="lines", line=dict(color=SEGMENT_COLOR, width=1),
                              name="clean → adversarial", hoverinfo="skip", connectgaps=False,
                              legendgroup="segments"))
    present = sorted(set(labels.tolist()))
    fixed = 0 < len(class_names) <= 10  # few classes: a class keeps its colour whichever are present
    palette = class_palette(len(class_names) if fixed else max(1, len(present)))
    hover = ("#%{customdata[0]} %{customdata[1]}<br>true: %{customdata[2]}<br>"
             "predicted: %{customdata[3]}<br>%{customdata[4]}<extra></extra>")
    for rank, cls in enumerate(present):
        color = palette[cls % len(palette)] if fixed else palette[rank]
        name = class_names[cls] if 0 <= cls < len(class_names) else str(cls)
        sel = np.flatnonzero(labels == cls)
        fig.add_trace(scatter(
            x=clean_2d[sel, 0], y=clean_2d[sel, 1], mode="markers", name=name, legendgroup=f"class-{cls}",
            marker=dict(symbol=CLEAN_SYMBOL, size=6, color=color, opacity=0.75, line=dict(width=0)),
            customdata=_custom(idx[sel], "clean", true_names[sel], clean_names[sel], src[sel]),
            hovertemplate=hover,
        ))
        if twins:
            fig.add_trace(scatter(
                x=adv_2d[sel, 0], y=adv_2d[sel, 1], mode="markers", name=f"{name} (adversarial)",
                legendgroup=f"class-{cls}", showlegend=False,
                marker=dict(symbol=ADV_SYMBOL, size=7, color=color, opacity=0.9, line=dict(width=0)),
                customdata=_custom(idx[sel], "adversarial", true_names[sel], adv_names[sel], src[sel]),
                hovertemplate=hover,
            ))
    if not twins and len(adv_2d):  # adversarial points without clean twins: one grey trace
        fig.add_trace(scatter(
            x=adv_2d[:, 0], y=adv_2d[:, 1], mode="markers", name="adversarial",
            marker=dict(symbol=ADV_SYMBOL, size=7, color="#555555"),
            customdata=_custom(idx[: len(adv_2d)], "adversarial", np.full(len(adv_2d), "", object), adv_names,
                               np.full(len(adv_2d), "", object)),
            hovertemplate=hover,
        ))
    for label, symbol in (("clean", CLEAN_SYMBOL), ("adversarial", ADV_SYMBOL)):  # symbol key in the legend
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=label, legendgroup="symbols",
                                 marker=dict(symbol=symbol, size=8, color="#333333"), hoverinfo="skip"))
    fig.update_layout(
        title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        legend=dict(itemsizing="constant", groupclick="togglegroup"), dragmode="lasso", hovermode="closest",
        xaxis=dict(title=f"{axis_title} 1" if axis_title else "", zeroline=False, showticklabels=False),
        yaxis=dict(title=f"{axis_title} 2" if axis_title else "", zeroline=False, showticklabels=False,
                   scaleanchor="x", scaleratio=1),
    )
    return fig


def layer_growth_bars(layers: Sequence[str], adversarial: np.ndarray, noise: np.ndarray, title: str = "",
                      log_y: bool = False, height: int = 380) -> go.Figure:
    """Grouped bars per layer: relative activation change under the attack vs random noise of the same L∞ size.

    Accepts the fields of ``explorer.projections.LayerGrowth`` (``layers``, ``adversarial``, ``noise``).
    """
    adv = np.asarray(adversarial, np.float64)
    noi = np.asarray(noise, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = adv / noi
    layers = list(layers)
    fig = go.Figure([
        go.Bar(x=layers, y=adv, name="adversarial", marker_color=ADV_COLOR, customdata=ratio,
               hovertemplate="%{x}<br>adversarial: %{y:.3f}<br>× noise: %{customdata:.2f}<extra></extra>"),
        go.Bar(x=layers, y=noi, name="random noise, same L∞", marker_color=NOISE_COLOR,
               hovertemplate="%{x}<br>noise: %{y:.3f}<extra></extra>"),
    ])
    fig.update_layout(
        title=title, barmode="group", height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        xaxis=dict(title="layer (input → output)", type="category"),
        yaxis=dict(title="‖f(x′) − f(x)‖ / ‖f(x)‖", type="log" if log_y else "linear"),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0),
    )
    return fig


def layer_growth_figure(growth, title: str = "", log_y: bool = False) -> go.Figure:
    """``layer_growth_bars`` from a ``LayerGrowth``."""
    return layer_growth_bars(growth.layers, growth.adversarial, growth.noise, title=title, log_y=log_y)


def distance_histogram(adv_to_clean: np.ndarray, clean_to_clean: np.ndarray, title: str = "", bins: int = 40,
                       height: int = 340) -> go.Figure:
    """Overlaid histograms: each adversarial feature's distance to the nearest clean feature vs each clean
    feature's distance to its nearest other clean feature; dashed lines at the medians."""
    a = np.asarray(adv_to_clean, np.float64)
    c = np.asarray(clean_to_clean, np.float64)
    a, c = a[np.isfinite(a)], c[np.isfinite(c)]
    both = np.concatenate([a, c])
    lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
    size = (hi - lo) / bins if hi > lo else 1.0
    xbins = dict(start=lo, end=hi + size, size=size)
    fig = go.Figure([
        go.Histogram(x=c, name="clean → nearest other clean", marker_color=CLEAN_COLOR, opacity=0.6, xbins=xbins,
                     hovertemplate="%{x}<br>%{y} clean points<extra></extra>"),
        go.Histogram(x=a, name="adversarial → nearest clean", marker_color=ADV_COLOR, opacity=0.6, xbins=xbins,
                     hovertemplate="%{x}<br>%{y} adversarial points<extra></extra>"),
    ])
    for values, color in ((c, CLEAN_COLOR), (a, ADV_COLOR)):
        if len(values):
            fig.add_vline(x=float(np.median(values)), line=dict(color=color, dash="dash", width=2))
    fig.update_layout(
        title=title, barmode="overlay", height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        xaxis=dict(title="distance in feature space"), yaxis=dict(title="images"),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0),
    )
    return fig


def distance_figure(distances, title: str = "") -> go.Figure:
    """``distance_histogram`` from a ``NearestCleanDistances``."""
    return distance_histogram(distances.adv_to_clean, distances.clean_to_clean, title=title)


def mark_pair(fig: go.Figure, clean_xy: Sequence[float], adv_xy: Sequence[float], color: str = "#1F2430") -> go.Figure:
    """Ring one clean point and its adversarial twin and join them (the point picked on the page); drawn last,
    outside the legend, never hovered."""
    fig.add_trace(go.Scatter(
        x=[float(clean_xy[0]), float(adv_xy[0])], y=[float(clean_xy[1]), float(adv_xy[1])], mode="lines+markers",
        line=dict(color=color, width=2), name="picked", showlegend=False, hoverinfo="skip",
        marker=dict(symbol=["circle-open", "x-open"], size=16, color=color, line=dict(width=2.5)),
    ))
    return fig
