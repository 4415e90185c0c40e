"""Figures of the defences: the three-way accuracy curves and the ensemble blog's accuracy against N."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

COLOURS = {"transfer": "#2ca02c", "white_box": "#ff7f0e", "adaptive": "#d62728", "baseline_own": "#7f7f7f"}
NAMES = {"transfer": "transfer from the baseline", "white_box": "white-box", "adaptive": "adaptive",
         "baseline_own": "baseline on its own adversarials"}


def three_way_figure(eps: np.ndarray, columns: dict[str, np.ndarray], title: str = "", height: int = 380
                     ) -> go.Figure:
    """Accuracy (%) against ε, one line per column (``transfer``, ``white_box``, ``adaptive``, ``baseline_own``)."""
    fig = go.Figure()
    for key, acc in columns.items():
        fig.add_trace(go.Scatter(x=np.asarray(eps), y=np.asarray(acc) * 100, mode="lines+markers",
                                 name=NAMES.get(key, key),
                                 line=dict(color=COLOURS.get(key), width=3 if key == "adaptive" else 2,
                                           dash="dot" if key == "baseline_own" else "solid")))
    fig.update_layout(title=title or None, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", y=-0.25), hovermode="x unified")
    fig.update_xaxes(title_text="ε (L∞, [0, 1] pixel units)")
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 101])
    return fig


def ensemble_vs_n_figure(rows: list[dict], height: int = 420) -> go.Figure:
    """Adversarial accuracy (%) against the ensemble size N: colour = column (transfer / white-box / adaptive),
    dash = combination (mean solid, max dashed), marker = sampling (uniform circle, bootstrap square); the blog's
    published transfer figures as grey crosses."""
    fig = go.Figure()
    ens = [r for r in rows if r.get("n") is not None]
    for sampling, symbol in (("uniform", "circle"), ("bootstrap", "square")):
        for combine, dash in (("mean", "solid"), ("max", "dash")):
            pick = sorted((r for r in ens if r.get("sampling") == sampling and r.get("combine") == combine),
                          key=lambda r: r["n"])
            if not pick:
                continue
            ns = [r["n"] for r in pick]
            for key in ("transfer", "white_box", "adaptive"):
                fig.add_trace(go.Scatter(
                    x=ns, y=[None if r.get(key) is None else r[key] * 100 for r in pick], mode="lines+markers",
                    name=f"{NAMES[key]} · {sampling} {combine}", legendgroup=key,
                    line=dict(color=COLOURS[key], dash=dash), marker=dict(symbol=symbol, size=9)))
            pub = [(r["n"], r["transfer_published"]) for r in pick if r.get("transfer_published") is not None]
            if pub:
                fig.add_trace(go.Scatter(x=[p[0] for p in pub], y=[p[1] * 100 for p in pub], mode="markers",
                                         name=f"blog (published transfer) · {sampling} {combine}",
                                         legendgroup="blog", marker=dict(symbol="x", size=10, color="#555")))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend=dict(font=dict(size=10)))
    fig.update_xaxes(title_text="ensemble size N (members)", type="log",
                     tickvals=sorted({r["n"] for r in ens}) or None)
    fig.update_yaxes(title_text="accuracy on FGSM adversarials (%)", range=[0, 101])
    return fig
