"""Figures of the Robustness lab: accuracy-vs-ε curves with 95% bands, and the transfer matrix."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.evaluation.results import Evaluation, TransferResult

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
DASH = {0: "solid", 1: "dash", 2: "dot", 3: "dashdot", 4: "longdash", 5: "longdashdot"}


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i: i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def accuracy_figure(ev: Evaluation, photo: bool = False, show_flip: bool = True) -> go.Figure:
    """One line per model × attack (colour: model, dash: attack) with its 95% Clopper–Pearson band; the worst
    case over attacks in bold; the curve read off each sample's flip ε as a thin step line. Every marker
    carries ``customdata = [model, attack or "worst", ε index]`` for click-to-inspect."""
    x = ev.eps * (255 if photo else 1)
    acc = ev.accuracy() * 100
    lo, hi = ev.interval(ev.correct())
    wacc = ev.worst_accuracy() * 100
    wlo, whi = ev.interval(ev.worst_correct())
    fig = go.Figure()
    fine = np.linspace(float(ev.eps.min()), float(ev.eps.max()), 200)
    for m, model in enumerate(ev.models):
        colour = PALETTE[m % len(PALETTE)]
        curves = [(a, attack, acc[m, a], lo[m, a] * 100, hi[m, a] * 100) for a, attack in enumerate(ev.attacks)]
        if len(ev.attacks) > 1:
            curves.append((-1, "worst", wacc[m], wlo[m] * 100, whi[m] * 100))
        for a, attack, y, l, h in curves:
            worst = a < 0
            name = f"{model} · {'worst case' if worst else attack}"
            group = f"{model}:{attack}"
            fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([h, l[::-1]]), fill="toself",
                                     fillcolor=_rgba(colour, 0.10 if not worst else 0.16), line={"width": 0},
                                     hoverinfo="skip", showlegend=False, legendgroup=group))
            fig.add_trace(go.Scatter(
                x=x, y=y, mode="lines+markers", name=name, legendgroup=group,
                line={"color": colour, "width": 4.5 if worst else 1.6, "dash": "solid" if worst else DASH[a % 6]},
                marker={"size": 9 if worst else 6},
                customdata=[[model, attack, k] for k in range(len(x))],
                hovertemplate=f"<b>{name}</b><br>ε = %{{x:.4g}}<br>accuracy %{{y:.1f}}% "
                              "(95% CI %{text})<extra>click: failing images</extra>",
                text=[f"{a_:.1f}–{b_:.1f}%" for a_, b_ in zip(l, h)],
            ))
            if show_flip and not worst:
                f = (ev.flip_eps[m, a][None, :] > fine[:, None]).mean(axis=1) * 100
                fig.add_trace(go.Scatter(x=fine * (255 if photo else 1), y=f, mode="lines", line_shape="hv",
                                         line={"color": colour, "width": 0.8, "dash": "dot"}, opacity=0.7,
                                         name=f"{model} · {attack} (flip ε)", legendgroup=group, showlegend=False,
                                         hovertemplate="from flip ε: %{y:.1f}%<extra></extra>"))
    fig.update_layout(
        xaxis_title="ε (L∞, k/255)" if photo else "ε (L∞, pixel values in [0, 1])",
        yaxis_title="robust accuracy (%)", yaxis_range=[-2, 102], height=460, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "v", "font": {"size": 11}}, hovermode="closest", clickmode="event+select",
    )
    return fig


def transfer_figure(tr: TransferResult) -> go.Figure:
    """The matrix as an annotated heat map (accuracy %, rows = source, columns = target); the white-box
    diagonal is outlined; skipped pairs are blank with the reason on hover. Each cell is clickable: an invisible
    marker at its centre has ``customdata = [source, target]``."""
    acc = tr.accuracy() * 100
    lo, hi = tr.interval()
    reasons = {(s, t): why for s, t, why in tr.skipped}
    labels = list(tr.models)
    text, hover = [], []
    for i, s in enumerate(labels):
        trow, hrow = [], []
        for j, t in enumerate(labels):
            if not tr.valid[i, j]:
                trow.append("skipped")
                hrow.append(reasons.get((s, t), "skipped"))
            else:
                trow.append(f"{acc[i, j]:.1f}%" + (" ◆" if i == j else ""))
                hrow.append(f"{t} on {tr.attack} adversarials from {s}: {acc[i, j]:.1f}% "
                            f"(95% CI {lo[i, j] * 100:.1f}–{hi[i, j] * 100:.1f}%)" + (" — white-box" if i == j else ""))
        text.append(trow)
        hover.append(hrow)
    fig = go.Figure(go.Heatmap(
        z=np.where(np.isfinite(acc), acc, None), x=labels, y=labels, text=text, texttemplate="%{text}",
        hoverinfo="skip", zmin=0, zmax=100, colorscale="Viridis", colorbar={"title": "accuracy %"},
    ))
    # Plotly cannot select a heat map's cells, so every cell carries an invisible marker: a click selects it
    # (``customdata = [source, target]``) and its hover text is the cell's
    cells = [(s, t, hover[i][j]) for i, s in enumerate(labels) for j, t in enumerate(labels)]
    fig.add_trace(go.Scatter(
        x=[t for _, t, _ in cells], y=[s for s, _, _ in cells], mode="markers", showlegend=False,
        marker={"symbol": "square", "size": 48, "opacity": 0, "color": "white"},
        selected={"marker": {"opacity": 0}}, unselected={"marker": {"opacity": 0}},
        customdata=[[s, t] for s, t, _ in cells], hovertext=[h for _, _, h in cells],
        hovertemplate="%{hovertext}<extra>click: failing images</extra>",
    ))
    for i in range(len(labels)):
        if tr.valid[i, i]:
            fig.add_shape(type="rect", x0=i - 0.5, x1=i + 0.5, y0=i - 0.5, y1=i + 0.5,
                          line={"color": "white", "width": 3})
    fig.update_layout(xaxis_title="target model (evaluated)", yaxis_title="source model (attacked, white-box)",
                      xaxis_range=[-0.5, len(labels) - 0.5], yaxis_range=[len(labels) - 0.5, -0.5],
                      height=120 + 70 * len(labels),
                      margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig
