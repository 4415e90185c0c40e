"""Plotly figures for decision boundaries: the 2-D lab and slices through image space.

Every function takes numpy arrays (as produced by ``explorer.boundaries``) and returns a ``go.Figure``;
nothing here runs a model. Traces carry stable names so pages and tests can find them:

* two-panel figure: ``"p(blue)"``, ``"boundary (p = 0.5)"``, ``"class 0 (red)"``, ``"class 1 (blue)"``,
  ``"|∇p|"`` (log₁₀ magnitude), ``"∇ field"`` (+ ``"∇ field (...)"`` for fainter magnitude bins);
* attack overlay: ``"picked point"``, ``"FGSM step"``, ``"PGD path"``, ``"PGD end"``,
  ``"ε ball (L∞)"`` / ``"ε ball (L2)"``;
* slice: ``"classes"`` (the heatmap), one legend entry per class name, ``"original"``, ``"FGSM"``, ``"PGD"``,
  ``"ε ball"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

RED = "#d62728"
BLUE = "#1f77b4"
PROB_COLORSCALE = [[0.0, "#e8827a"], [0.5, "#f7f7f7"], [1.0, "#7fa8d6"]]
CLASS_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
                 "#17becf", "#7f7f7f")
OTHER_COLOUR = "#d9d9d9"
NORM_TEXT = {"linf": "L∞", "l2": "L2"}


# ------------------------------------------------------------------------------------------- helpers
def segments_xy(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``M x 2 x 2`` line segments → x, y arrays with NaN separators (one line trace)."""
    seg = np.asarray(segments, np.float32).reshape(-1, 2, 2)
    out = np.full((len(seg), 3, 2), np.nan, np.float32)
    out[:, :2] = seg
    out = out.reshape(-1, 2)
    return out[:, 0], out[:, 1]


def quiver_arrows(xs: np.ndarray, ys: np.ndarray, grad: np.ndarray, every: int = 10, scale: str = "unit",
                  head: float = 0.3, min_frac: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Arrows of a gradient field (``grad[iy, ix] = (gx, gy)``) on every ``every``-th grid point.

    Returns the segments ``K x 3 x 2 x 2`` (per arrow: shaft and a two-stroke head; segment, end, xy) and
    each arrow's magnitude relative to the largest one (``K``). ``scale``: ``"unit"`` every arrow 0.9 of the
    arrow spacing (directions only; zero gradients dropped), ``"max"`` lengths ∝ |∇| with the longest 0.9 of
    the spacing, ``"sqrt"`` lengths ∝ √|∇|; with "max"/"sqrt" arrows shorter than ``min_frac`` of the
    spacing are dropped.
    """
    every = max(1, int(every))
    off = (every // 2) if len(xs) > every else 0
    ix = np.arange(off, len(xs), every)
    iy = np.arange(off, len(ys), every)
    gx, gy = np.meshgrid(xs[ix], ys[iy])
    g = np.asarray(grad, np.float64)[np.ix_(iy, ix)].reshape(-1, 2)
    p = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float64)
    spacing = float(min(xs[-1] - xs[0], ys[-1] - ys[0])) / max(1, len(xs) - 1) * every
    norm = np.linalg.norm(g, axis=1)
    norm[~np.isfinite(norm)] = 0.0
    big = float(norm.max()) if len(norm) else 0.0
    if big <= 0:
        return np.zeros((0, 3, 2, 2), np.float32), np.zeros(0, np.float32)
    rel = norm / big
    unit = g / np.maximum(norm, 1e-300)[:, None]
    if scale == "unit":
        length = np.full_like(norm, 0.9 * spacing)
        keep = norm > 0
    elif scale in ("max", "sqrt"):
        length = 0.9 * spacing * (rel if scale == "max" else np.sqrt(rel))
        keep = length >= min_frac * spacing
    else:
        raise ValueError(f"scale must be 'unit', 'max' or 'sqrt', got {scale!r}")
    p, vec, rel = p[keep], unit[keep] * length[keep, None], rel[keep]
    tip = p + vec
    back = -vec * head
    c, s = np.cos(np.pi / 7), np.sin(np.pi / 7)
    left = np.stack([c * back[:, 0] - s * back[:, 1], s * back[:, 0] + c * back[:, 1]], 1)
    right = np.stack([c * back[:, 0] + s * back[:, 1], -s * back[:, 0] + c * back[:, 1]], 1)
    segs = np.stack([np.stack([p, tip], 1), np.stack([tip, tip + left], 1), np.stack([tip, tip + right], 1)], 1)
    return segs.astype(np.float32), rel.astype(np.float32)


# Arrows are drawn in four shades by relative magnitude (one line trace each).
_ARROW_BINS = ((1e-1, "#000000", "≥ 10% of max"), (1e-2, "#4d4d4d", "1–10%"), (1e-3, "#8c8c8c", "0.1–1%"),
               (0.0, "#c8c8c8", "< 0.1%"))


def _arrow_traces(segs: np.ndarray, rel: np.ndarray, axes: tuple[str, str]) -> list[dict]:
    out = []
    upper = np.inf
    first = True
    for lo, colour, text in _ARROW_BINS:
        sel = (rel >= lo) & (rel < upper)
        upper = lo
        if not sel.any():
            continue
        ax, ay = segments_xy(segs[sel])
        out.append(dict(type="scatter", x=ax, y=ay, mode="lines", name="∇ field" if first else f"∇ field ({text})",
                        legendgroup="field", showlegend=first, line=dict(color=colour, width=1.2),
                        hoverinfo="skip", xaxis=axes[0], yaxis=axes[1]))
        first = False
    return out


def _points_traces(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], showlegend: bool,
                   size: int = 6, axes: tuple[str, str] = ("x", "y")) -> list[dict]:
    points = np.asarray(points, np.float32)
    labels = np.asarray(labels)
    out = []
    for k, colour in ((0, RED), (1, BLUE)):
        sel = points[labels == k]
        out.append(dict(
            type="scatter", x=sel[:, 0], y=sel[:, 1], mode="markers", name=f"class {k} ({class_names[k]})",
            legendgroup=f"class{k}", showlegend=showlegend, xaxis=axes[0], yaxis=axes[1],
            marker=dict(color=colour, size=size, line=dict(color="white", width=0.6)),
            hovertemplate=f"{class_names[k]}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
        ))
    return out


def _boundary_trace(contour: np.ndarray, showlegend: bool, level: float = 0.5,
                    axes: tuple[str, str] = ("x", "y")) -> dict:
    bx, by = segments_xy(contour)
    return dict(type="scatter", x=bx, y=by, mode="lines", name=f"boundary (p = {level:g})", legendgroup="boundary",
                showlegend=showlegend, line=dict(color="black", width=2), hoverinfo="skip",
                xaxis=axes[0], yaxis=axes[1])


# ------------------------------------------------------------------------------------- two-panel figure
_LEFT, _RIGHT = ("x", "y"), ("x2", "y2")
_DOMAINS = ((0.0, 0.44), (0.56, 1.0))


def two_panel_figure(xs: np.ndarray, ys: np.ndarray, prob: np.ndarray, grad: np.ndarray, contour: np.ndarray,
                     points: np.ndarray, labels: np.ndarray, *, every: int = 10, arrow_scale: str = "unit",
                     output_name: str = "p(blue)", class_names: Sequence[str] = ("red", "blue"),
                     level: float = 0.5, title: str | None = None, height: int = 480) -> go.Figure:
    """Left: the points over p(blue) with the ``level`` contour; right: the gradient field of ``output_name``
    as arrows over log₁₀ of its magnitude, with the same points and boundary. Arrays are indexed ``[iy, ix]``.

    Arrows are on every ``every``-th grid point, scaled by ``arrow_scale`` (see ``quiver_arrows``; the default
    ``"unit"`` shows directions, shaded by magnitude: a saturated p(blue) has gradients spanning many decades).

    The left panel uses axes ``x``/``y``, the right ``x2``/``y2`` (built in one ``go.Figure`` call: a few ms).
    """
    mag = np.linalg.norm(np.asarray(grad, np.float32), axis=-1)
    top = float(mag.max()) if mag.size else 0.0
    log_mag = np.log10(np.maximum(mag, top * 1e-6 if top > 0 else 1e-30))
    segs, rel = quiver_arrows(xs, ys, grad, every, arrow_scale)
    grad_name = "|∇p|" if output_name == "p(blue)" else f"|∇ {output_name}|"
    data: list[dict] = [
        dict(type="heatmap", x=xs, y=ys, z=prob, zmin=0.0, zmax=1.0, colorscale=PROB_COLORSCALE, name="p(blue)",
             colorbar=dict(title=dict(text="p(blue)"), x=0.5, xanchor="center", len=0.8, thickness=12),
             hovertemplate="(%{x:.2f}, %{y:.2f})<br>p(blue) = %{z:.3f}<extra></extra>", xaxis="x", yaxis="y"),
        _boundary_trace(contour, True, level, _LEFT),
        *_points_traces(points, labels, class_names, True, 6, _LEFT),
        dict(type="heatmap", x=xs, y=ys, z=log_mag, colorscale="Greys", name=grad_name, opacity=0.5,
             showscale=False,
             hovertemplate=f"(%{{x:.2f}}, %{{y:.2f}})<br>log₁₀ {grad_name} = %{{z:.2f}}<extra></extra>",
             xaxis="x2", yaxis="y2"),
        *_arrow_traces(segs, rel, _RIGHT),
        _boundary_trace(contour, False, level, _RIGHT),
        *_points_traces(points, labels, class_names, False, 5, _RIGHT),
    ]
    x0, x1, y0, y1 = float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1])
    titles = ("p(blue) and the decision boundary", f"∇ₓ {output_name}")
    layout = dict(
        # a title of several lines (<br>) hangs from the top; the margin leaves room for it above the panel titles
        height=height, plot_bgcolor="white",
        title=dict(text=title, yref="container", y=1.0, yanchor="top", pad=dict(t=26)) if title else None,
        margin=dict(l=10, r=10, t=(58 + 24 * ((title or "").count("<br>") + 1)) if title else 40, b=10),
        legend=dict(orientation="h", y=-0.12),
        annotations=[dict(text=t, xref="paper", yref="paper", x=(d[0] + d[1]) / 2, y=1.0, yanchor="bottom",
                          xanchor="center", showarrow=False, font=dict(size=15)) for t, d in zip(titles, _DOMAINS)],
    )
    for i, (ax, ay) in enumerate((_LEFT, _RIGHT)):
        sx = "" if i == 0 else "2"
        layout[f"xaxis{sx}"] = dict(domain=list(_DOMAINS[i]), anchor=ay, range=[x0, x1], constrain="domain",
                                    title=dict(text="x₁"))
        layout[f"yaxis{sx}"] = dict(anchor=ax, range=[y0, y1], scaleanchor=ax, scaleratio=1, constrain="domain",
                                    title=dict(text="x₂"))
    return go.Figure(data=data, layout=layout)


def ball_outline(centre: np.ndarray, eps: float, norm: str, n: int = 121) -> np.ndarray:
    """Closed outline ``K x 2`` of the 2-D ``eps`` ball: a square for L∞, a circle for L2."""
    cx, cy = float(centre[0]), float(centre[1])
    if norm == "linf":
        sq = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], np.float64) * eps
        return (sq + [cx, cy]).astype(np.float32)
    if norm == "l2":
        th = np.linspace(0, 2 * np.pi, n)
        return np.stack([cx + eps * np.cos(th), cy + eps * np.sin(th)], 1).astype(np.float32)
    raise ValueError(f"norm must be linf or l2, got {norm!r}")


def add_point_attack(fig: go.Figure, point: np.ndarray, fgsm: np.ndarray, pgd: np.ndarray, eps: float,
                     norm: str = "linf", *, flips: tuple[bool, bool] | None = None,
                     cols: Sequence[int] = (1, 2)) -> go.Figure:
    """Overlay one attacked point on the two-panel figure: the ε ball, the FGSM step (an arrow), the PGD
    trajectory and its end. ``flips`` = (FGSM flips, PGD flips) goes into the legend text."""
    point = np.asarray(point, np.float32).reshape(2)
    fgsm = np.asarray(fgsm, np.float32).reshape(2)
    pgd = np.asarray(pgd, np.float32).reshape(-1, 2)
    ball = ball_outline(point, eps, norm)
    ftxt = "" if flips is None else (" → flips" if flips[0] else " → holds")
    ptxt = "" if flips is None else (" → flips" if flips[1] else " → holds")
    traces: list[dict] = []
    for i, col in enumerate(cols):
        show = i == 0
        ax = dict(xaxis="x" if col == 1 else f"x{col}", yaxis="y" if col == 1 else f"y{col}")
        traces += [
            dict(type="scatter", x=ball[:, 0], y=ball[:, 1], mode="lines", name=f"ε ball ({NORM_TEXT[norm]})",
                 legendgroup="ball", showlegend=show, line=dict(color="#555", dash="dash", width=1.5),
                 hoverinfo="skip", **ax),
            dict(type="scatter", x=pgd[:, 0], y=pgd[:, 1], mode="lines+markers", name=f"PGD path{ptxt}",
                 legendgroup="pgd", showlegend=show, line=dict(color="#9467bd", width=2), marker=dict(size=4),
                 hovertemplate="PGD (%{x:.2f}, %{y:.2f})<extra></extra>", **ax),
            dict(type="scatter", x=[pgd[-1, 0]], y=[pgd[-1, 1]], mode="markers", name="PGD end", legendgroup="pgd",
                 showlegend=False, marker=dict(symbol="diamond", size=10, color="#9467bd",
                                               line=dict(color="white", width=1)),
                 hovertemplate="PGD end (%{x:.2f}, %{y:.2f})<extra></extra>", **ax),
            dict(type="scatter", x=[point[0], fgsm[0]], y=[point[1], fgsm[1]], mode="lines+markers",
                 name=f"FGSM step{ftxt}", legendgroup="fgsm", showlegend=show, line=dict(color="#ff7f0e", width=3),
                 marker=dict(symbol="arrow", angleref="previous", size=[0, 14], color="#ff7f0e"),
                 hovertemplate="FGSM (%{x:.2f}, %{y:.2f})<extra></extra>", **ax),
            dict(type="scatter", x=[point[0]], y=[point[1]], mode="markers", name="picked point",
                 legendgroup="picked", showlegend=show,
                 marker=dict(symbol="star", size=16, color="gold", line=dict(color="black", width=1)),
                 hovertemplate="picked (%{x:.2f}, %{y:.2f})<extra></extra>", **ax),
        ]
    fig.add_traces(traces)
    return fig


# -------------------------------------------------------------------------------------------- margins
def margin_histograms(standard: np.ndarray, robust: np.ndarray, *, norm: str = "linf", cap: float | None = None,
                      eps: float | None = None, bins: int = 30,
                      names: tuple[str, str] = ("standard training", "adversarial training"),
                      height: int = 340) -> go.Figure:
    """Side-by-side histograms of margins (distance to the boundary along the attack direction) on shared
    bins, with each mean and the training ε marked; distances at ``cap`` were not reached (≥ cap)."""
    a = np.asarray(standard, np.float64).ravel()
    b = np.asarray(robust, np.float64).ravel()
    hi = cap if cap is not None else float(max(a.max(initial=0.0), b.max(initial=0.0), 1e-6))
    edges = np.linspace(0.0, hi * (1 + 1e-9), bins + 1)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06, subplot_titles=names)
    unit = NORM_TEXT.get(norm, norm)
    for col, (vals, colour) in enumerate(((a, "#7f7f7f"), (b, "#2ca02c")), start=1):
        counts, _ = np.histogram(np.clip(vals, 0.0, hi), edges)
        centres = (edges[:-1] + edges[1:]) / 2
        capped = int(np.sum(vals >= hi)) if cap is not None else 0
        mean = float(vals.mean()) if len(vals) else 0.0
        fig.add_trace(go.Bar(x=centres, y=counts, width=np.diff(edges), name=names[col - 1],
                             marker=dict(color=colour), showlegend=False,
                             hovertemplate="margin %{x:.3f}: %{y} points<extra></extra>"), row=1, col=col)
        fig.add_vline(x=mean, line=dict(color="black", dash="dot"), row=1, col=col,
                      annotation_text=f"mean {mean:.3f}" + (f" ({capped} ≥ cap)" if capped else ""),
                      annotation_position="top right")
        if eps is not None:
            fig.add_vline(x=eps, line=dict(color=RED, dash="dash"), row=1, col=col,
                          annotation_text=f"ε = {eps:g}", annotation_position="top left")
        fig.update_xaxes(title_text=f"distance to the boundary along the attack direction ({unit})",
                         range=[0, hi], row=1, col=col)
    fig.update_yaxes(title_text="training points", row=1, col=1)
    fig.update_layout(height=height, bargap=0.05, margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white")
    return fig


# ---------------------------------------------------------------------------------------------- slices
def class_order(pred: np.ndarray, max_classes: int = 10) -> tuple[list[int], np.ndarray]:
    """Classes present in ``pred`` by area (largest first), at most ``max_classes``, and ``pred`` recoded
    to indices into that list (``len(list)`` for every other class, shown as "other")."""
    vals, counts = np.unique(np.asarray(pred), return_counts=True)
    order = vals[np.argsort(-counts, kind="stable")]
    shown = [int(v) for v in order[:max_classes]]
    lut = {c: i for i, c in enumerate(shown)}
    flat = np.asarray(pred).ravel()
    idx = np.full(flat.shape, len(shown), np.int64)
    for c, i in lut.items():
        idx[flat == c] = i
    return shown, idx.reshape(np.asarray(pred).shape)


def _discrete_scale(colours: Sequence[str]) -> list[list]:
    k = len(colours)
    out: list[list] = []
    for i, c in enumerate(colours):
        out += [[i / k, c], [(i + 1) / k, c]]
    return out


def slice_figure(coords: np.ndarray, pred: np.ndarray, class_names: Sequence[str], *,
                 max_prob: np.ndarray | None = None, axis1: str = "ε along sign(∇ₓL), L∞ units",
                 axis2: str = "random direction ⟂, same L2 norm",
                 markers: Mapping[str, tuple[float, float]] | None = None,
                 ball: np.ndarray | None = None, eps: float | None = None, max_classes: int = 10,
                 title: str | None = None, height: int = 520) -> go.Figure:
    """A slice coloured by predicted class (discrete colours, a legend of class names, hover text).

    ``pred[row, col]`` is the class at ``(coords[col], coords[row])``. ``markers`` maps a name ("FGSM",
    "PGD", ...) to plane coordinates; the original is always marked at the centre. ``ball`` is the ε-ball
    section polygon (``K x 2``); with only ``eps`` the square ``[-ε, ε]²`` is drawn.
    """
    coords = np.asarray(coords, np.float32)
    pred = np.asarray(pred)
    shown, idx = class_order(pred, max_classes)
    has_other = bool((idx == len(shown)).any())
    colours = [CLASS_PALETTE[i % len(CLASS_PALETTE)] for i in range(len(shown))] + ([OTHER_COLOUR] if has_other else [])
    labels = np.array([str(class_names[c]) if 0 <= c < len(class_names) else str(c) for c in shown]
                      + (["other"] if has_other else []), dtype=object)
    names = labels[np.minimum(idx, len(labels) - 1)]
    full_names = np.array([str(n) for n in class_names], dtype=object)
    if has_other:
        other = idx == len(shown)
        names = names.copy()
        names[other] = full_names[pred[other]] if len(full_names) > int(pred.max()) else pred[other].astype(str)
    if max_prob is not None:
        text = [[f"{n}<br>p = {p:.3f}" for n, p in zip(rn, rp)] for rn, rp in zip(names, np.asarray(max_prob))]
    else:
        text = names.tolist()
    k = len(colours)
    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        x=coords, y=coords, z=idx, zmin=-0.5, zmax=k - 0.5, colorscale=_discrete_scale(colours), showscale=False,
        name="classes", text=text, hovertemplate="a = %{x:.3f}, b = %{y:.3f}<br>%{text}<extra></extra>",
    ))
    for lab, colour in zip(labels, colours):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=str(lab), legendgroup="classes",
                                 marker=dict(symbol="square", size=12, color=colour), showlegend=True))
    if ball is not None or eps is not None:
        poly = np.asarray(ball, np.float32) if ball is not None else (
            np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], np.float32) * float(eps))
        fig.add_trace(go.Scatter(x=poly[:, 0], y=poly[:, 1], mode="lines", name="ε ball",
                                 line=dict(color="black", dash="dash", width=1.5), hoverinfo="skip"))
    styles = {"FGSM": ("x", "#000000"), "PGD": ("diamond", "#000000")}
    for name, (a, b) in (markers or {}).items():
        sym, colour = styles.get(name.split(" ")[0], ("circle", "#000000"))  # "PGD (projected)" styles as PGD
        fig.add_trace(go.Scatter(x=[a], y=[b], mode="markers", name=name,
                                 marker=dict(symbol=sym, size=12, color=colour, line=dict(color="white", width=1.5)),
                                 hovertemplate=f"{name}: a = %{{x:.3f}}, b = %{{y:.3f}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0.0], y=[0.0], mode="markers", name="original",
                             marker=dict(symbol="star", size=16, color="white", line=dict(color="black", width=1.5)),
                             hovertemplate="original image<extra></extra>"))
    lim = float(np.abs(coords).max()) if len(coords) else 1.0
    step = float(coords[1] - coords[0]) / 2 if len(coords) > 1 else 0.5
    fig.update_xaxes(title_text=axis1, range=[-lim - step, lim + step], constrain="domain")
    fig.update_yaxes(title_text=axis2, range=[-lim - step, lim + step], scaleanchor="x", scaleratio=1,
                     constrain="domain")
    fig.update_layout(height=height, title=title, margin=dict(l=10, r=10, t=50 if title else 20, b=10),
                      legend=dict(title="predicted class"), plot_bgcolor="white")
    return fig


# --------------------------------------------------------------------------------------------- profile
def profile_figure(t: np.ndarray, loss_adv: np.ndarray, logits_adv: np.ndarray, loss_rand: np.ndarray,
                   logits_rand: np.ndarray, class_names: Sequence[str], label: int, *, max_classes: int = 10,
                   height: int = 520) -> go.Figure:
    """Goodfellow's linearity picture: logits (top) and loss (bottom) along ``sign(∇ₓL)`` (left) and along a
    random sign direction of the same length (right). Shown classes: the true class and every class that is
    ever the top logit, then the highest logits, up to ``max_classes``; one colour per class in both panels."""
    t = np.asarray(t, np.float32)
    la, lr = np.asarray(logits_adv, np.float32), np.asarray(logits_rand, np.float32)
    winners = set(np.unique(la.argmax(1)).tolist()) | set(np.unique(lr.argmax(1)).tolist()) | {int(label)}
    peak = np.maximum(la.max(0), lr.max(0))
    ranked = sorted(winners, key=lambda c: -peak[c]) + [int(c) for c in np.argsort(-peak) if int(c) not in winners]
    shown = ranked[:max_classes]
    fig = make_subplots(rows=2, cols=2, shared_xaxes=True, vertical_spacing=0.08, horizontal_spacing=0.08,
                        subplot_titles=("logits along sign(∇ₓL)", "logits along a random sign direction",
                                        "loss along sign(∇ₓL)", "loss along a random sign direction"))
    for i, c in enumerate(shown):
        name = str(class_names[c]) if 0 <= c < len(class_names) else str(c)
        name = f"{name} (true)" if c == int(label) else name
        colour = CLASS_PALETTE[i % len(CLASS_PALETTE)]
        for col, lg in ((1, la), (2, lr)):
            fig.add_trace(go.Scatter(x=t, y=lg[:, c], mode="lines", name=name, legendgroup=f"c{c}",
                                     showlegend=col == 1, line=dict(color=colour, width=3 if c == int(label) else 1.5),
                                     hovertemplate=f"{name}: %{{y:.2f}} at ε = %{{x:.3f}}<extra></extra>"),
                          row=1, col=col)
    for col, loss in ((1, loss_adv), (2, loss_rand)):
        fig.add_trace(go.Scatter(x=t, y=np.asarray(loss, np.float32), mode="lines", name="cross-entropy loss",
                                 legendgroup="loss", showlegend=col == 1, line=dict(color="black", width=2),
                                 hovertemplate="loss %{y:.3f} at ε = %{x:.3f}<extra></extra>"), row=2, col=col)
    fig.update_xaxes(title_text="ε along sign(∇ₓL), L∞ units", row=2, col=1)
    fig.update_xaxes(title_text="ε along a random sign direction, L∞ units", row=2, col=2)
    fig.update_yaxes(title_text="logit", row=1, col=1)
    fig.update_yaxes(title_text="loss", row=2, col=1)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white")
    return fig
