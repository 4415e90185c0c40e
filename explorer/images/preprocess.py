"""From a displayed image to a model's input: channels, resize / centre crop, polarity.

:func:`to_model_input` returns float32 ``C x H x W`` in [0, 1] (the model contract in DEVELOPERS.md):

* **Channels.** A 1-channel model gets luminance (ITU-R 601: 0.299 R + 0.587 G + 0.114 B, computed in
  float); a 3-channel model gets grayscale replicated.
* **Size.** With ``resize=S`` the shorter side is scaled to ``S`` and the centre ``H x W`` is cropped
  (torchvision's ``Resize(S)`` + ``CenterCrop((H, W))``, padding with 0 if ``S`` is smaller than the crop).
  Without it the image is scaled so that it just covers ``H x W`` (aspect kept) and centre-cropped.
  Resampling is Pillow's bilinear filter on float data, which widens its support when downscaling, i.e.
  it is antialiased (like torchvision's ``antialias=True``): a photo shrunk to 8 x 8 averages areas
  instead of picking pixels. An image already at ``H x W`` is not resampled at all.
* **Polarity.** ``invert="auto"`` (1-channel models only; a no-op for 3 channels) inverts when the
  border of the image is brighter than its centre (a dark digit on white paper), so digits come out white on black like digits / MNIST;
  digits / MNIST samples are already in that polarity and are never auto-inverted. ``"always"`` /
  ``"never"`` force the choice (``"always"`` for any channel count).
* **Exactness.** A sample carrying :attr:`LoadedImage.exact` (scikit-learn digits, whose ``k / 16`` values
  ``uint8`` cannot hold) starts from those floats; when the model's input shape matches, the result is
  bit-identical to the dataset array. MNIST pixels are ``uint8`` already and ``pixels / 255`` in float32 is
  exactly what the MNIST models were trained on.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from explorer.images.core import LoadedImage
from explorer.images.samples import is_dataset_sample

INVERT_CHOICES = ("auto", "never", "always")
_LUMA = (0.299, 0.587, 0.114)
_RESAMPLE = Image.Resampling.BILINEAR


def _as_hwc_float(image: LoadedImage | np.ndarray) -> np.ndarray:
    """``H x W x C`` float32 in [0, 1] (C in 1, 3), from ``exact`` when the image carries it."""
    if isinstance(image, LoadedImage):
        if image.exact is not None:
            return np.transpose(image.exact, (1, 2, 0))
        arr = image.pixels
    else:
        arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"expected an H x W, H x W x 1 or H x W x 3 image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0)
    raise ValueError(f"expected a uint8 or float image, got dtype {arr.dtype}")


def _to_channels(hwc: np.ndarray, channels: int) -> np.ndarray:
    if channels == hwc.shape[2]:
        return hwc
    if channels == 1:
        r, g, b = hwc[:, :, 0], hwc[:, :, 1], hwc[:, :, 2]
        luma = _LUMA[0] * r.astype(np.float64) + _LUMA[1] * g + _LUMA[2] * b
        return np.clip(luma, 0.0, 1.0).astype(np.float32)[:, :, None]
    return np.repeat(hwc, 3, axis=2)


def _resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))  # mode "F"
    return np.asarray(img.resize((width, height), resample=_RESAMPLE), dtype=np.float32)


def _resize(hwc: np.ndarray, height: int, width: int) -> np.ndarray:
    if hwc.shape[:2] == (height, width):
        return hwc
    planes = [_resize_plane(hwc[:, :, c], height, width) for c in range(hwc.shape[2])]
    return np.clip(np.stack(planes, axis=2), 0.0, 1.0)


def _center_crop(hwc: np.ndarray, height: int, width: int) -> np.ndarray:
    """torchvision's CenterCrop: pad with 0 where the image is smaller, then crop the centre."""
    h, w = hwc.shape[:2]
    if h < height or w < width:
        pad_top = (height - h) // 2 if h < height else 0
        pad_left = (width - w) // 2 if w < width else 0
        pad_bottom = (height - h + 1) // 2 if h < height else 0
        pad_right = (width - w + 1) // 2 if w < width else 0
        hwc = np.pad(hwc, ((pad_top, pad_bottom), (pad_left, pad_right), (0, 0)))
        h, w = hwc.shape[:2]
    top = int(round((h - height) / 2.0))
    left = int(round((w - width) / 2.0))
    return hwc[top:top + height, left:left + width]


def _fit_size(h: int, w: int, height: int, width: int, resize: int | None) -> tuple[int, int]:
    """The size to resample to before the centre crop."""
    if resize is not None:
        # torchvision Resize(int): the shorter side becomes ``resize``, the longer keeps the aspect.
        if w <= h:
            return max(1, int(resize * h / w)), resize
        return resize, max(1, int(resize * w / h))
    if (h, w) == (height, width):
        return h, w
    scale = max(height / h, width / w)
    return max(height, round(h * scale)), max(width, round(w * scale))


def should_invert(gray: np.ndarray) -> bool:
    """True when the border of a 2-D image in [0, 1] is brighter than its centre (dark ink on paper)."""
    h, w = gray.shape
    bh, bw = max(1, h // 8), max(1, w // 8)
    border = np.ones((h, w), dtype=bool)
    border[bh:h - bh, bw:w - bw] = False
    centre = np.zeros((h, w), dtype=bool)
    centre[h // 4:h - h // 4, w // 4:w - w // 4] = True
    if not border.any() or not centre.any():
        return False
    return float(gray[border].mean()) > float(gray[centre].mean())


def to_model_input(image: LoadedImage | np.ndarray, input_shape: tuple[int, int, int],
                   resize: int | None = None, invert: str = "auto") -> np.ndarray:
    """Float32 ``C x H x W`` in [0, 1] for a model whose ``input_shape`` is ``(C, H, W)``.

    Args:
        image: a :class:`LoadedImage`, or an ``H x W`` / ``H x W x C`` array (uint8, or float in [0, 1]).
        input_shape: the model's ``(C, H, W)``, ``C`` in (1, 3).
        resize: scale the shorter side to this before the centre crop (e.g. 256 for a 224 ImageNet
            crop); ``None`` scales the image just enough to cover ``H x W``.
        invert: ``"auto"`` (1-channel models: invert dark-on-light images), ``"never"`` or ``"always"``
            (``1 - x``, for any channel count).

    Returns a new, writable array; the input is never modified.
    """
    if invert not in INVERT_CHOICES:
        raise ValueError(f"invert must be one of {INVERT_CHOICES}, got {invert!r}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    channels, height, width = (int(v) for v in input_shape)
    if channels not in (1, 3) or height < 1 or width < 1:
        raise ValueError(f"input_shape must be (C, H, W) with C in (1, 3), got {input_shape!r}")
    if resize is not None and int(resize) < 1:
        raise ValueError(f"resize must be a positive side length, got {resize!r}")

    hwc = _as_hwc_float(image)
    hwc = _to_channels(hwc, channels)
    fit_h, fit_w = _fit_size(hwc.shape[0], hwc.shape[1], height, width,
                             None if resize is None else int(resize))
    hwc = _center_crop(_resize(hwc, fit_h, fit_w), height, width)

    if invert == "always":
        hwc = np.float32(1.0) - hwc
    elif invert == "auto" and channels == 1:
        known_polarity = isinstance(image, LoadedImage) and is_dataset_sample(image)
        if not known_polarity and should_invert(hwc[:, :, 0]):
            hwc = np.float32(1.0) - hwc
    return np.ascontiguousarray(np.transpose(hwc, (2, 0, 1)), dtype=np.float32).copy()
