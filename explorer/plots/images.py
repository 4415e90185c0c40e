"""Images and probability charts built from arrays (no streamlit)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go


def to_uint8(x: np.ndarray) -> np.ndarray:
    """A C x H x W float image in [0, 1] (or H x W x C uint8) as H x W x C uint8 (C = 1 squeezed to H x W)."""
    a = np.asarray(x)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(np.asarray(a, np.float32) * 255.0), 0, 255).astype(np.uint8)
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
            a = a.transpose(1, 2, 0)
        elif a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[0] != a.shape[-1]:
            a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return a


def upscale(image: np.ndarray, min_side: int = 224) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor so small digits (8x8, 28x28) show crisp pixels."""
    a = to_uint8(image)
    factor = max(1, int(np.ceil(min_side / min(a.shape[:2]))))
    if factor == 1:
        return a
    return np.repeat(np.repeat(a, factor, axis=0), factor, axis=1)


def upscaled_png_bytes(image: np.ndarray, min_side: int = 448) -> bytes:
    """A PNG of ``upscale(image, min_side)`` (crisp nearest-neighbour pixels): a view of a small image to look at,
    beside the model-resolution file."""
    import io

    from PIL import Image

    a = upscale(image, min_side)
    buf = io.BytesIO()
    Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a).save(buf, format="PNG")
    return buf.getvalue()


def topk_bars(probs: np.ndarray, class_names: tuple[str, ...] | list[str], k: int = 5, title: str = "",
              highlight: int | None = None, color: str = "#4C78A8") -> go.Figure:
    """Horizontal bars of the top-k class probabilities (highest on top); ``highlight`` in red."""
    p = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-p)[:k][::-1]
    colors = ["#E45756" if i == highlight else color for i in order]
    fig = go.Figure(go.Bar(
        x=p[order] * 100, y=[f"{class_names[i]}" for i in order], orientation="h", marker_color=colors,
        text=[f"{p[i] * 100:.1f}%" for i in order], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.2f}%<extra></extra>",
    ))
    fig.update_layout(title=title, height=60 + 32 * len(order), margin=dict(l=10, r=10, t=(40 + 18 * title.count("<br>")) if title else 10, b=30),
                      xaxis=dict(title="probability (%)", range=[0, 100]), yaxis=dict(type="category"),
                      showlegend=False)
    return fig
