"""A 2-D model on a grid: probability of the blue class, its input gradient, and the 0.5 contour.

One batched forward and one batched backward (``torch.autograd.grad``) over every grid point; the
contour comes from a vectorised marching-squares pass over the probability grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explorer.boundaries.toy import BOUNDS

OUTPUTS: tuple[str, ...] = ("prob", "logit", "logodds")
"""What the gradient field differentiates: p(blue), the blue logit z₁, or the log-odds z₁ − z₀."""


@dataclass(frozen=True, eq=False)
class GridResult:
    """A model sampled on a ``resolution x resolution`` grid. Arrays are indexed ``[iy, ix]``.

    * ``prob``: p(blue) (softmax of the 2 logits, class 1), float32 ``R x R``.
    * ``grad``: gradient of ``output`` (p(blue) by default) w.r.t. (x, y), float32 ``R x R x 2``.
    * ``contour``: the ``level`` set of ``prob`` as line segments, float32 ``M x 2 x 2`` (segment, end, xy).
    """

    xs: np.ndarray
    ys: np.ndarray
    prob: np.ndarray
    grad: np.ndarray
    contour: np.ndarray
    output: str = "prob"
    level: float = 0.5

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return float(self.xs[0]), float(self.xs[-1]), float(self.ys[0]), float(self.ys[-1])

    @property
    def resolution(self) -> int:
        return len(self.xs)

    def contour_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """The contour segments as x / y arrays with NaN separators (one Plotly line trace)."""
        return segments_to_xy(self.contour)


def grid_points(bounds: tuple[float, float, float, float] = BOUNDS, resolution: int = 200
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``xs``, ``ys`` (float32) and the ``R² x 2`` points in row-major ``[iy, ix]`` order."""
    if resolution < 2:
        raise ValueError("resolution must be at least 2")
    x0, x1, y0, y1 = bounds
    xs = np.linspace(x0, x1, resolution, dtype=np.float32)
    ys = np.linspace(y0, y1, resolution, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, np.stack([gx.ravel(), gy.ravel()], 1)


def _output(logits: torch.Tensor, output: str) -> torch.Tensor:
    if output == "prob":
        return torch.sigmoid(logits[:, 1] - logits[:, 0])  # = softmax(z)[1] for 2 logits, and cheaper
    if output == "logit":
        return logits[:, 1]
    if output == "logodds":
        return logits[:, 1] - logits[:, 0]
    raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")


def evaluate_points(model: nn.Module, points: np.ndarray, output: str = "prob"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """p(blue) and the input gradient of ``output`` at each point (one batched forward + backward).

    Rows are independent (no batch statistics in a toy MLP), so the gradient of the sum is the
    per-point gradient.
    """
    x = torch.as_tensor(np.asarray(points, np.float32)).clone().requires_grad_(True)
    logits = model(x)
    value = _output(logits, output)
    (g,) = torch.autograd.grad(value.sum(), x)
    prob = value.detach() if output == "prob" else torch.sigmoid(logits[:, 1] - logits[:, 0]).detach()
    return prob.numpy(), g.numpy()


def grid(model: nn.Module, bounds: tuple[float, float, float, float] = BOUNDS, resolution: int = 200,
         output: str = "prob", level: float = 0.5) -> GridResult:
    """Evaluate a 2-logit 2-D model on a grid: probabilities, input gradients and the ``level`` contour."""
    xs, ys, pts = grid_points(bounds, resolution)
    prob, g = evaluate_points(model, pts, output)
    prob = prob.reshape(resolution, resolution)
    g = g.reshape(resolution, resolution, 2)
    return GridResult(xs, ys, prob, g, marching_squares(prob, xs, ys, level), output, level)


# ------------------------------------------------------------------------------------ marching squares
# Cell corners: 0 = (iy, ix), 1 = (iy, ix+1), 2 = (iy+1, ix+1), 3 = (iy+1, ix).
# Edges: 0 = bottom (c0-c1), 1 = right (c1-c2), 2 = top (c3-c2), 3 = left (c0-c3).
# Each corner touches two edges; in an ambiguous (saddle) cell the two corners whose sign differs from the
# cell centre's are cut off, one segment each.
_CORNER_EDGES = ((3, 0), (0, 1), (1, 2), (2, 3))


def marching_squares(field: np.ndarray, xs: np.ndarray, ys: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Line segments (``M x 2 x 2``, float32) of the ``level`` set of ``field[iy, ix]`` sampled at ``xs``, ``ys``.

    Crossings are linearly interpolated along cell edges; saddle cells are resolved by the centre value.
    """
    f = np.asarray(field, np.float64) - level
    xs = np.asarray(xs, np.float64)
    ys = np.asarray(ys, np.float64)
    c = np.stack([f[:-1, :-1], f[:-1, 1:], f[1:, 1:], f[1:, :-1]], -1)  # (Ry-1, Rx-1, 4)
    s = c > 0
    # Only cells where the sign changes matter.
    iy, ix = np.nonzero(s.any(-1) & ~s.all(-1))
    if len(iy) == 0:
        return np.zeros((0, 2, 2), np.float32)
    c = c[iy, ix]
    s = s[iy, ix]
    x0, x1, y0, y1 = xs[ix], xs[ix + 1], ys[iy], ys[iy + 1]

    def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = a - b
        return np.divide(a, d, out=np.zeros_like(a), where=d != 0)

    tb, tr, tt, tl = cross(c[:, 0], c[:, 1]), cross(c[:, 1], c[:, 2]), cross(c[:, 3], c[:, 2]), cross(c[:, 0], c[:, 3])
    pts = np.stack([
        np.stack([x0 + tb * (x1 - x0), y0], -1),
        np.stack([x1, y0 + tr * (y1 - y0)], -1),
        np.stack([x0 + tt * (x1 - x0), y1], -1),
        np.stack([x0, y0 + tl * (y1 - y0)], -1),
    ], 1)  # (K, 4 edges, 2)
    crossed = np.stack([s[:, 0] != s[:, 1], s[:, 1] != s[:, 2], s[:, 3] != s[:, 2], s[:, 0] != s[:, 3]], -1)
    n = crossed.sum(-1)
    rows = np.arange(len(c))
    segs = []
    two = n == 2
    if two.any():
        e = np.argsort(~crossed[two], axis=1, kind="stable")[:, :2]
        r = rows[two]
        segs.append(np.stack([pts[r, e[:, 0]], pts[r, e[:, 1]]], 1))
    four = n == 4
    if four.any():
        r = rows[four]
        centre_pos = c[r].mean(-1) > 0
        for corner, (ea, eb) in enumerate(_CORNER_EDGES):
            cut = r[s[r, corner] != centre_pos]
            if len(cut):
                segs.append(np.stack([pts[cut, ea], pts[cut, eb]], 1))
    return np.concatenate(segs).astype(np.float32) if segs else np.zeros((0, 2, 2), np.float32)


def segments_to_xy(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``M x 2 x 2`` segments → x, y arrays ``[x0, x1, nan, x0, x1, nan, ...]`` (one Plotly line trace)."""
    segments = np.asarray(segments, np.float32).reshape(-1, 2, 2)
    m = len(segments)
    out = np.full((m, 3, 2), np.nan, np.float32)
    out[:, :2] = segments
    out = out.reshape(-1, 2)
    return out[:, 0], out[:, 1]
