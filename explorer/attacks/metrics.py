"""How big is a perturbation, and how visible: L∞, L2, PSNR and SSIM between two [0, 1] images.

Images are C x H x W (or 1 x C x H x W) numpy arrays or tensors with values in [0, 1]. SSIM (Wang, Bovik,
Sheikh & Simoncelli, 2004) is scikit-image's ``structural_similarity`` with ``data_range=1`` over the channel
axis, with a window small enough for tiny images (8 x 8 digits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageMetrics:
    linf: float
    l2: float
    psnr: float  # dB; inf for identical images
    ssim: float  # 1 for identical images


def _image(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"expected a C x H x W image, got shape {a.shape}")
    return a


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    x, y = _image(a), _image(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} vs {y.shape}")
    return x, y


def linf(a, b) -> float:
    x, y = _pair(a, b)
    return float(np.abs(x - y).max()) if x.size else 0.0


def l2(a, b) -> float:
    x, y = _pair(a, b)
    return float(np.sqrt(((x - y) ** 2).sum()))


def psnr(a, b, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: 10·log10(range² / MSE); ``inf`` for identical images."""
    x, y = _pair(a, b)
    mse = float(((x - y) ** 2).mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range ** 2 / mse)


def ssim_win_size(height: int, width: int) -> int:
    """scikit-image's default window 7, or the largest odd size that fits a smaller image (at least 3)."""
    side = min(int(height), int(width), 7)
    if side % 2 == 0:
        side -= 1
    return max(side, 3)


def ssim(a, b) -> float:
    """Mean structural similarity over the image (1 for identical images)."""
    from skimage.metrics import structural_similarity

    x, y = _pair(a, b)
    if np.array_equal(x, y):
        return 1.0
    _, h, w = x.shape
    if min(h, w) < 3:
        raise ValueError(f"SSIM needs images of at least 3 x 3 pixels, got {h} x {w}")
    return float(structural_similarity(x, y, data_range=1.0, channel_axis=0, win_size=ssim_win_size(h, w)))


def image_metrics(a, b) -> ImageMetrics:
    """L∞, L2, PSNR and SSIM of ``b`` against ``a`` (one image each)."""
    return ImageMetrics(linf=linf(a, b), l2=l2(a, b), psnr=psnr(a, b), ssim=ssim(a, b))
