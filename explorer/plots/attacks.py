"""Figures and images for Attack Studio, built from numpy arrays (no streamlit, no model).

* :func:`perturbation_image`: the perturbation δ amplified around mid-grey, with the factor it was scaled by;
* :func:`trace_figure`: an iterative attack's loss and margin per step (trace names ``"loss"``, ``"margin"``).

The confidence chart against ε is ``explorer.plots.scrub.confidence_svg``: its marker moves in the browser.
"""

from __future__ import annotations

from collections.abc import Sequence

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
