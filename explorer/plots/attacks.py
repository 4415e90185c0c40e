"""Figures and images for Attack Studio, built from numpy arrays (no streamlit, no model).

* :func:`perturbation_image`: the perturbation δ amplified around mid-grey, with the factor it was scaled by;
* :func:`confidence_figure`: probability of the true class and of the flip class against ε, the logit margin
  on a secondary axis, markers at the current ε and at the flip ε, a comparison attack overlaid;
* :func:`trace_figure`: an iterative attack's loss and margin per step.

Trace names are stable so pages and tests can find them: ``"p(true) · ATTACK"``, ``"p(flip) · ATTACK"``,
``"margin · ATTACK"``, ``"p(true) · OTHER"`` and, in the trace figure, ``"loss"`` and ``"margin"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

TRUE_COLOUR = "#1f77b4"
FLIP_COLOUR = "#d62728"
MARGIN_COLOUR = "#7f7f7f"
OTHER_COLOUR = "#9467bd"
CURRENT_COLOUR = "#2ca02c"


def perturbation_image(delta: np.ndarray) -> tuple[np.ndarray, float]:
    """δ (C x H x W) as a [0, 1] image ``0.5 + scale·δ``: grey is "unchanged", the largest |δ| reaches black or
    white. Returns (image, scale); scale is 1 for a zero perturbation."""
    d = np.asarray(delta, np.float32)
    peak = float(np.abs(d).max()) if d.size else 0.0
    scale = 0.5 / peak if peak > 0 else 1.0
    return np.clip(0.5 + scale * d, 0.0, 1.0).astype(np.float32), scale


@dataclass(frozen=True)
class Curve:
    """One attack's sweep for the chart: x in display units, probabilities in [0, 1]."""

    name: str  # e.g. "FGSM"
    x: np.ndarray
    true_prob: np.ndarray
    flip_prob: np.ndarray | None = None
    margin: np.ndarray | None = None
    flip_x: float | None = None


def _vline(x: float, colour: str, dash: str, text: str, row: int) -> tuple[dict, dict]:
    """A vertical marker and its label, the label on its own row from the top of the plot (no overlaps)."""
    shape = dict(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper", line=dict(color=colour, width=2, dash=dash))
    note = dict(x=x, y=1 - 0.085 * row, yref="paper", text=text, showarrow=False, xanchor="left", yanchor="top",
                font=dict(color=colour, size=12), xshift=4, bgcolor="rgba(255,255,255,0.55)")
    return shape, note


def confidence_figure(main: Curve, true_name: str, flip_name: str, current_x: float, x_title: str,
                      other: Curve | None = None, x_fmt=None, height: int = 440) -> go.Figure:
    """Probabilities (%, left axis) and the logit margin (right axis) against ε.

    ``main``: the selected attack (true class, flip class, margin). ``other``: the comparison attack (true
    class only, dashed). Vertical markers: the current ε (green) and the flip ε of each attack (red).
    ``x_fmt`` formats marker labels (default ``:.3g``).
    """
    fmt = x_fmt or (lambda v: f"{v:.3g}")
    data = [
        go.Scatter(x=main.x, y=main.true_prob * 100, name=f"p(true) · {main.name}", mode="lines",
                   line=dict(color=TRUE_COLOUR, width=3),
                   hovertemplate=f"ε %{{x:.4g}}: p({true_name}) %{{y:.1f}}%<extra>{main.name}</extra>"),
    ]
    if main.flip_prob is not None:
        data.append(go.Scatter(x=main.x, y=main.flip_prob * 100, name=f"p(flip) · {main.name}", mode="lines",
                               line=dict(color=FLIP_COLOUR, width=3),
                               hovertemplate=f"ε %{{x:.4g}}: p({flip_name}) %{{y:.1f}}%<extra>{main.name}</extra>"))
    if other is not None:
        data.append(go.Scatter(x=other.x, y=other.true_prob * 100, name=f"p(true) · {other.name}", mode="lines",
                               line=dict(color=OTHER_COLOUR, width=2, dash="dash"),
                               hovertemplate=f"ε %{{x:.4g}}: p({true_name}) %{{y:.1f}}%<extra>{other.name}</extra>"))
    if main.margin is not None:
        data.append(go.Scatter(x=main.x, y=main.margin, name=f"margin · {main.name}", mode="lines", yaxis="y2",
                               line=dict(color=MARGIN_COLOUR, width=1.5, dash="dot"),
                               hovertemplate="ε %{x:.4g}: margin %{y:.2f}<extra>logit margin</extra>"))
    shapes, notes = [], []
    s, n = _vline(float(current_x), CURRENT_COLOUR, "solid", f"current ε = {fmt(current_x)}", 0)
    shapes.append(s)
    notes.append(n)
    if main.flip_x is not None:
        s, n = _vline(float(main.flip_x), FLIP_COLOUR, "dash", f"{main.name} flips at {fmt(main.flip_x)}", 1)
        shapes.append(s)
        notes.append(n)
    if other is not None and other.flip_x is not None:
        s, n = _vline(float(other.flip_x), OTHER_COLOUR, "dot", f"{other.name} flips at {fmt(other.flip_x)}", 2)
        shapes.append(s)
        notes.append(n)
    # the zero line of the margin: where the label flips
    shapes.append(dict(type="line", x0=0, x1=1, xref="paper", y0=0, y1=0, yref="y2",
                       line=dict(color="#c7c7c7", width=1, dash="dot")))
    span = float(np.nanmax(np.abs(main.margin))) if main.margin is not None and len(main.margin) else 1.0
    span = span if np.isfinite(span) and span > 0 else 1.0
    fig = go.Figure(data=data, layout=dict(
        height=height, margin=dict(l=10, r=10, t=10, b=40), hovermode="x unified",
        xaxis=dict(title=dict(text=x_title), zeroline=False),
        yaxis=dict(title=dict(text="probability (%)"), range=[-2, 102], zeroline=False, tickmode="auto"),
        yaxis2=dict(title=dict(text="logit margin (> 0: not flipped yet)"), overlaying="y", side="right",
                    range=[-1.05 * span, 1.05 * span], showgrid=False, zeroline=False, tickmode="auto", nticks=7),
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0, xanchor="left"),
        shapes=shapes, annotations=notes,
    ))
    return fig


def trace_figure(loss: np.ndarray, margin: np.ndarray, loss_title: str = "cross-entropy loss",
                 height: int = 300) -> go.Figure:
    """Per-step loss (left axis) and logit margin (right axis) of one attack run (step 1 … T)."""
    loss = np.asarray(loss, np.float64).reshape(-1)
    margin = np.asarray(margin, np.float64).reshape(-1)
    steps = np.arange(1, len(loss) + 1)
    mode = "lines+markers" if len(steps) <= 60 else "lines"
    fig = go.Figure(data=[
        go.Scatter(x=steps, y=loss, name="loss", mode=mode, line=dict(color=TRUE_COLOUR, width=2),
                   hovertemplate="step %{x}: loss %{y:.3f}<extra></extra>"),
        go.Scatter(x=steps, y=margin, name="margin", mode=mode, yaxis="y2", line=dict(color=FLIP_COLOUR, width=2),
                   hovertemplate="step %{x}: margin %{y:.3f}<extra></extra>"),
    ], layout=dict(
        height=height, margin=dict(l=10, r=10, t=30, b=40), hovermode="x unified",
        xaxis=dict(title=dict(text="step"), dtick=None if len(steps) > 20 else 1),
        yaxis=dict(title=dict(text=loss_title, font=dict(color=TRUE_COLOUR)), tickmode="auto"),
        yaxis2=dict(title=dict(text="logit margin (< 0: succeeded)", font=dict(color=FLIP_COLOUR)),
                    overlaying="y", side="right", showgrid=False, zeroline=True, zerolinecolor="#bbbbbb",
                    tickmode="auto", nticks=6),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    ))
    return fig


def short_name(name: str, n: int = 22) -> str:
    """A class name cut to ``n`` characters (the first synonym of an ImageNet name)."""
    name = name.split(",")[0]
    return name if len(name) <= n else name[: n - 1] + "…"


def names_for(indices: Sequence[int], class_names: Sequence[str]) -> list[str]:
    return [short_name(class_names[int(i)]) for i in indices]
