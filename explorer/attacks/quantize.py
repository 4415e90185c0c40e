"""The 8-bit check: does an adversarial survive being saved as a PNG?

An attack works in float32; a PNG stores 8 bits per channel. ``to_uint8`` rounds as an image writer does
(``floor(255·x + 0.5)``, clipped, the same as ``torchvision.utils.save_image``), ``eight_bit_check``
classifies the float and the rounded image and says whether the attack's effect survives.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch

from explorer.attacks._common import as_images, as_labels, classify, num_classes_of, succeeded


def to_uint8(x) -> np.ndarray:
    """[0, 1] floats (array or tensor, any shape) to uint8, rounded half up and clipped."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float32)
    return np.floor(np.clip(a, 0.0, 1.0) * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)


def from_uint8(u: np.ndarray) -> np.ndarray:
    """uint8 back to float32 in [0, 1] (``u / 255``)."""
    return np.asarray(u, dtype=np.float32) / np.float32(255.0)


def quantize(x):
    """Round to the 8-bit grid and back: the image a PNG round trip gives (same type as the input)."""
    q = from_uint8(to_uint8(x))
    if isinstance(x, torch.Tensor):
        return torch.from_numpy(q).to(device=x.device)
    return q


def to_png_bytes(image) -> bytes:
    """A C x H x W (or 1 x C x H x W) [0, 1] image as PNG bytes (grey for 1 channel, RGB for 3)."""
    from PIL import Image

    u = to_uint8(image)
    if u.ndim == 4:
        u = u[0]
    hwc = np.transpose(u, (1, 2, 0))
    pil = Image.fromarray(np.ascontiguousarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc))
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def from_png_bytes(data: bytes) -> np.ndarray:
    """PNG bytes back to a float32 C x H x W image in [0, 1]."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        a = np.asarray(im)
    if a.ndim == 2:
        a = a[:, :, None]
    return from_uint8(np.transpose(a, (2, 0, 1)))


@dataclass(frozen=True)
class EightBitCheck:
    """Per image (N,): predictions and probabilities before and after 8-bit rounding."""

    pred_float: np.ndarray
    pred_8bit: np.ndarray
    probs_float: np.ndarray  # N x K
    probs_8bit: np.ndarray  # N x K
    success_float: np.ndarray  # attack succeeded on the float image (misclassified / reached the target)
    success_8bit: np.ndarray  # ... and after rounding
    max_change: np.ndarray  # largest pixel change made by the rounding (≤ 1/510)

    @property
    def survives(self) -> np.ndarray:
        """True where the float adversarial succeeded and the saved one still does."""
        return self.success_float & self.success_8bit


def eight_bit_check(model: torch.nn.Module, adversarial, y, target=None) -> EightBitCheck:
    """Classify ``adversarial`` as float32 and after rounding to uint8 (as saving a PNG would)."""
    x = as_images(model, adversarial)
    q = quantize(x)
    k = num_classes_of(model)
    yt = as_labels(y, len(x), x.device, k, "y")
    tt = as_labels(target, len(x), x.device, k, "target")
    lf, lq = classify(model, x), classify(model, q)
    pf, pq = lf.argmax(1), lq.argmax(1)
    return EightBitCheck(
        pred_float=pf.cpu().numpy(), pred_8bit=pq.cpu().numpy(),
        probs_float=torch.softmax(lf, 1).cpu().numpy(), probs_8bit=torch.softmax(lq, 1).cpu().numpy(),
        success_float=succeeded(pf, yt, tt).cpu().numpy(), success_8bit=succeeded(pq, yt, tt).cpu().numpy(),
        max_change=(q - x).abs().flatten(1).amax(1).cpu().numpy(),
    )
