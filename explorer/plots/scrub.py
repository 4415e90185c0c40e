"""The ε scrubber's frames: everything Attack Studio shows at each ε of a sweep, ready to play in the browser.

A sweep already holds the attack at every ε of its grid (``explorer.attacks.sweep``). :func:`scrub_frames` turns
it into plain JSON: per grid ε the adversarial and its amplified perturbation (small images as PNG data URLs,
photos as JPEG), the predicted class, its probability and the top five; once per sweep the original image, the
clean top five and :func:`confidence_svg`, a chart of the probabilities against ε whose green marker the browser
moves. FGSM's frames are all ``clip(x + ε·direction)``: for it only the original (lossless) and the sign map travel,
and the browser draws each frame (to within one 8-bit level of the server's rounding) — 2 images instead of 128,
which for a 224-pixel photo is about 0.2 MB instead of 6 MB. The page hands the frames to ``explorer.scrubber``, so a slider move is a lookup in the browser, with no
server round trip (TensorFlow Playground's feel, Smilkov & Carter 2016).

Every text that comes from a model or a user (class names) is escaped here for the SVG, and set as text (never
as markup) by the browser code.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

from explorer.plots.attacks import (
    CURRENT_COLOUR,
    FLIP_COLOUR,
    MARGIN_COLOUR,
    OTHER_COLOUR,
    TRUE_COLOUR,
    perturbation_image,
    short_name,
)
from explorer.plots.images import to_uint8

TOP_K = 5
PHOTO_JPEG_QUALITY = 90  # display frames of photos; the downloads stay lossless PNG
# chart geometry (SVG user units; the SVG scales to the page's width)
CHART_W, CHART_H = 900, 330
PAD_L, PAD_R, PAD_T, PAD_B = 58, 64, 16, 74


def data_url(image: np.ndarray, photo: bool) -> str:
    """A C x H x W image in [0, 1] as a data URL: PNG (exact pixels) for small images, JPEG for photos."""
    from PIL import Image

    a = to_uint8(image)
    buf = io.BytesIO()
    if photo and min(a.shape[:2]) > 64:
        Image.fromarray(a).save(buf, format="JPEG", quality=PHOTO_JPEG_QUALITY)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    Image.fromarray(a).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def direction_url(direction: np.ndarray) -> str:
    """FGSM's step direction (C x H x W, values -1, 0, 1) as a lossless PNG: 0, 128, 255 per channel."""
    d = np.clip(np.asarray(direction, np.float32), -1, 1)
    return data_url((d + 1) / 2, photo=False)


@dataclass(frozen=True)
class ChartCurve:
    """One attack's curve on the chart: x in display units (k/255 or pixel units), probabilities in [0, 1]."""

    name: str
    x: np.ndarray
    true_prob: np.ndarray
    flip_prob: np.ndarray | None = None
    margin: np.ndarray | None = None
    flip_x: float | None = None


def _ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart)."""
    span = hi - lo
    if not span > 0:
        return [lo]
    raw = span / max(1, n - 1)
    mag = 10 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = np.ceil(lo / step - 1e-9) * step
    return [float(v) for v in np.arange(first, hi + step * 1e-6, step)]


def _fmt_tick(v: float) -> str:
    return f"{v:.4g}"


def confidence_svg(main: ChartCurve, true_name: str, flip_name: str, x_title: str, other: ChartCurve | None = None,
                   x_fmt: Callable[[float], str] = _fmt_tick) -> dict:
    """The probability of the true class and of the flip class (left axis, %) and the logit margin (right axis)
    against ε, as an SVG string, with the mapping the browser needs to move the current-ε marker.

    Returns ``{"svg", "x0", "x1", "xmin", "xmax"}``: ``x0``/``x1`` are the plot's left and right edges in SVG
    units, ``xmin``/``xmax`` the ε (display units) they stand for. The marker is the element with
    ``data-role="marker"``, its label ``data-role="marker-label"``.
    """
    x = np.asarray(main.x, np.float64)
    xmin, xmax = float(x.min()), float(x.max()) if float(x.max()) > float(x.min()) else float(x.min()) + 1.0
    x0, x1, y0, y1 = PAD_L, CHART_W - PAD_R, PAD_T, CHART_H - PAD_B

    def px(v: float) -> float:
        return x0 + (float(v) - xmin) / (xmax - xmin) * (x1 - x0)

    def py(p: float) -> float:  # probability in [0, 1]
        return y1 - float(p) * (y1 - y0)

    margin = None if main.margin is None else np.asarray(main.margin, np.float64)
    span = float(np.nanmax(np.abs(margin))) if margin is not None and margin.size else 1.0
    span = span if np.isfinite(span) and span > 0 else 1.0

    def pm(m: float) -> float:  # margin in [-span, span] on the right axis
        return y1 - (float(m) + 1.05 * span) / (2.1 * span) * (y1 - y0)

    def path(xs: np.ndarray, ys: Sequence[float], fy: Callable[[float], float]) -> str:
        pts = [f"{px(a):.1f},{fy(b):.1f}" for a, b in zip(xs, ys) if np.isfinite(b)]
        return "M" + " L".join(pts) if pts else ""

    out: list[str] = [f'<svg viewBox="0 0 {CHART_W} {CHART_H}" xmlns="http://www.w3.org/2000/svg" role="img" '
                      f'aria-label="probability against epsilon" font-family="sans-serif" font-size="12">']
    # grid and axes
    for p in (0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{py(p):.1f}" y2="{py(p):.1f}" stroke="#e6e6e6"/>'
                   f'<text x="{x0 - 6}" y="{py(p) + 4:.1f}" text-anchor="end" fill="#555">{p * 100:.0f}</text>')
    for t in _ticks(xmin, xmax):
        out.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{y1}" y2="{y1 + 5}" stroke="#888"/>'
                   f'<text x="{px(t):.1f}" y="{y1 + 19}" text-anchor="middle" fill="#555">{escape(x_fmt(t))}</text>')
    out.append(f'<line x1="{x0}" x2="{x1}" y1="{y1}" y2="{y1}" stroke="#888"/>')
    out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{y1 + 38}" text-anchor="middle" fill="#333">{escape(x_title)}</text>')
    out.append(f'<text transform="translate(14,{(y0 + y1) / 2:.1f}) rotate(-90)" text-anchor="middle" '
               f'fill="#333">probability (%)</text>')
    if margin is not None:
        for m in _ticks(-span, span, 5):
            out.append(f'<text x="{x1 + 6}" y="{pm(m) + 4:.1f}" fill="#777">{m:.3g}</text>')
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{pm(0):.1f}" y2="{pm(0):.1f}" stroke="#c7c7c7" '
                   f'stroke-dasharray="2,3"/>')
        out.append(f'<text transform="translate({CHART_W - 8},{(y0 + y1) / 2:.1f}) rotate(90)" text-anchor="middle" '
                   f'fill="#777">logit margin (&gt; 0: not flipped yet)</text>')
        out.append(f'<path d="{path(x, margin, pm)}" fill="none" stroke="{MARGIN_COLOUR}" stroke-width="1.5" '
                   f'stroke-dasharray="2,3"/>')
    # curves
    if other is not None:
        out.append(f'<path d="{path(np.asarray(other.x), other.true_prob, py)}" fill="none" stroke="{OTHER_COLOUR}" '
                   f'stroke-width="2" stroke-dasharray="7,4"/>')
    if main.flip_prob is not None:
        out.append(f'<path d="{path(x, main.flip_prob, py)}" fill="none" stroke="{FLIP_COLOUR}" stroke-width="3"/>')
    out.append(f'<path d="{path(x, main.true_prob, py)}" fill="none" stroke="{TRUE_COLOUR}" stroke-width="3"/>')
    # flip markers, their labels on their own rows
    row = 1
    for curve, colour, dash in ((main, FLIP_COLOUR, "6,4"), (other, OTHER_COLOUR, "2,3")):
        if curve is None or curve.flip_x is None:
            continue
        fx = px(curve.flip_x)
        out.append(f'<line x1="{fx:.1f}" x2="{fx:.1f}" y1="{y0}" y2="{y1}" stroke="{colour}" stroke-width="2" '
                   f'stroke-dasharray="{dash}"/>')
        anchor = "end" if fx > (x0 + x1) / 2 else "start"
        out.append(f'<text x="{fx + (-5 if anchor == "end" else 5):.1f}" y="{y0 + 14 + 16 * row}" fill="{colour}" '
                   f'text-anchor="{anchor}">{escape(curve.name)} flips at {escape(x_fmt(curve.flip_x))}</text>')
        row += 1
    # the current ε (moved by the browser)
    out.append(f'<line data-role="marker" x1="{x0}" x2="{x0}" y1="{y0}" y2="{y1}" stroke="{CURRENT_COLOUR}" '
               f'stroke-width="2.5"/>')
    out.append(f'<text data-role="marker-label" x="{x0 + 5}" y="{y0 + 12}" fill="{CURRENT_COLOUR}"></text>')
    # legend, below the axis title
    items = [(TRUE_COLOUR, "", f"p({true_name}) · {main.name}")]
    if main.flip_prob is not None:
        items.append((FLIP_COLOUR, "", f"p({flip_name}) · {main.name}"))
    if other is not None:
        items.append((OTHER_COLOUR, "7,4", f"p({true_name}) · {other.name}"))
    if margin is not None:
        items.append((MARGIN_COLOUR, "2,3", f"margin · {main.name}"))
    lx, ly = x0, CHART_H - 10
    for colour, dash, text in items:
        label = escape(text)
        out.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="3"'
                   + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
                   f'<text x="{lx + 27}" y="{ly}" fill="#333">{label}</text>')
        lx += 40 + 6.6 * len(text)
    # invisible hover targets: one per grid ε, with the numbers as a tooltip
    step = (x1 - x0) / max(1, len(x) - 1)
    for a, pt, pf in zip(x, main.true_prob, main.flip_prob if main.flip_prob is not None else main.true_prob):
        tip = f"ε {x_fmt(a)}: p({true_name}) {pt * 100:.1f}%"
        if main.flip_prob is not None:
            tip += f", p({flip_name}) {pf * 100:.1f}%"
        out.append(f'<rect x="{px(a) - step / 2:.1f}" y="{y0}" width="{step:.1f}" height="{y1 - y0}" '
                   f'fill="transparent"><title>{escape(tip)}</title></rect>')
    out.append("</svg>")
    return {"svg": "".join(out), "x0": x0, "x1": x1, "xmin": xmin, "xmax": xmax}


def _top(probs: np.ndarray, k: int = TOP_K) -> list[list[float]]:
    p = np.asarray(probs, np.float64)
    order = np.argsort(-p, kind="stable")[:k]
    return [[int(i), round(float(p[i]), 5)] for i in order]


def scrub_frames(sw, x: np.ndarray, class_names: Sequence[str], *, y: int, target: int | None, photo: bool,
                 eps_fmt: Callable[[float], str], x_scale: float, x_title: str, x_suffix: str, attack_name: str,
                 other=None, other_name: str = "") -> dict:
    """Everything the browser shows at each ε of ``sw`` (a ``SweepResult`` on the C x H x W image ``x``).

    ``y``: the true class; ``target``: the target class of a targeted attack or None; ``eps_fmt`` formats ε
    for people (``explorer.runs.rules.eps_text``); ``x_scale``/``x_title``/``x_suffix`` the chart's ε axis
    (``rules.eps_axis``); ``other``: a comparison sweep on the same grid (dashed on the chart).
    Returns a JSON-able dict (see ``explorer.scrubber`` for how the browser reads it).
    """
    eps = np.asarray(sw.eps, np.float64)
    name = lambda k: short_name(class_names[int(k)], 28)  # noqa: E731
    drawn_by_browser = sw.direction is not None  # FGSM: every frame is clip(x + ε·direction)
    frames, used = [], {int(y)} | ({int(target)} if target is not None else set())
    for i, e in enumerate(eps):
        adv = np.asarray(sw.image_at(x, float(e)), np.float32)
        delta = adv - np.asarray(x, np.float32)
        pert, amp = perturbation_image(delta)
        top = _top(sw.probs[i])
        used |= {t[0] for t in top}
        pred, p = int(sw.pred[i]), float(sw.probs[i][int(sw.pred[i])])
        if target is not None:
            verdict, tone = ((f"reached the target {name(target)}", "red") if pred == int(target)
                             else ("target not reached", "orange"))
        else:
            verdict, tone = ("label flipped", "red") if pred != int(y) else ("still the true class", "green")
        linf = float(np.abs(delta).max()) if delta.size else 0.0
        text = eps_fmt(float(e))
        images = {} if drawn_by_browser else {"adv": data_url(adv, photo), "pert": data_url(pert, photo)}
        frames.append({**images, "pred": pred, "top": top,
                       "label": name(pred), "note": f"{p * 100:.1f}% at ε = {text} · ", "verdict": verdict,
                       "tone": tone, "adv_caption": f"adversarial: “{name(pred)}” ({p * 100:.1f}%)",
                       "pert_caption": f"perturbation δ, amplified ×{amp:.1f} (grey = unchanged, "
                                       f"max |δ| = {linf:.4f})",
                       "bars_title": f"Adversarial (ε = {text}): top 5"})
    clean_top = _top(sw.clean_probs)
    used |= {t[0] for t in clean_top} | {int(sw.clean_pred)}
    if sw.flip_class is not None:
        used.add(int(sw.flip_class))
    flip_cls = int(sw.flip_class) if sw.flip_class is not None else int(y)
    to_x = lambda v: float(v) * x_scale  # noqa: E731
    main = ChartCurve(attack_name, eps * x_scale, sw.true_prob, sw.flip_prob, sw.margin,
                      None if sw.flip_eps is None else to_x(sw.flip_eps))
    other_curve = None if other is None else ChartCurve(
        other_name, np.asarray(other.eps) * x_scale, other.true_prob,
        flip_x=None if other.flip_eps is None else to_x(other.flip_eps))
    chart = confidence_svg(main, short_name(class_names[y]), short_name(class_names[flip_cls]), x_title,
                           other_curve, x_fmt=lambda v: f"{v:.3g}{x_suffix}")
    return {
        "eps": [float(e) for e in eps],
        "eps_text": [eps_fmt(float(e)) for e in eps],
        "eps_x": [to_x(e) for e in eps],
        "x_suffix": x_suffix,
        "names": {str(i): short_name(class_names[i], 28) for i in sorted(used)},
        "y": int(y), "target": None if target is None else int(target),
        "clean_pred": int(sw.clean_pred), "clean_top": clean_top,
        # FGSM's frames are drawn by the browser from the original (lossless) and the sign map: 2 images, not 128
        "orig": data_url(np.asarray(x, np.float32), photo and not drawn_by_browser),
        "direction": direction_url(sw.direction) if drawn_by_browser else None,
        "pixelated": not photo or min(np.asarray(x).shape[-2:]) <= 64,
        "attack_name": attack_name,
        "flip_eps_text": None if sw.flip_eps is None else eps_fmt(float(sw.flip_eps)),
        "frames": frames,
        "chart": chart,
    }
