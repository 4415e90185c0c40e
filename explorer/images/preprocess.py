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
* **Memory.** Only the crop window is resampled (Pillow's ``resize(box=...)`` over the source region that maps
  onto it, with the same filter scale and centres as the full resize), one source plane at a time, and the
  channels are set at the model's size (luminance and replication are per-pixel linear maps, so the order does
  not change the values beyond float rounding, ~1e-5). A 20,000 x 1 strip resized for a 3 x 224 x 224 model
  allocates about the model's input, never the 256 x 5,120,000 intermediate.
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


def _source(image: LoadedImage | np.ndarray) -> tuple[np.ndarray, bool]:
    """The ``H x W x C`` source (C in 1, 3), without converting it, and whether it is uint8 (0-255).

    ``exact`` (dataset samples) comes back as float32 HWC in [0, 1]; float arrays are clipped to [0, 1].
    No full-size float copy of a large uint8 upload is made here: planes are converted one at a time.
    """
    if isinstance(image, LoadedImage):
        if image.exact is not None:
            return np.transpose(image.exact, (1, 2, 0)), False
        arr = image.pixels
    else:
        arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"expected an H x W, H x W x 1 or H x W x 3 image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr, True
    if arr.dtype == np.bool_:
        return arr.astype(np.float32), False
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0), False
    raise ValueError(f"expected a uint8 or float image, got dtype {arr.dtype}")


def _fit_size(h: int, w: int, height: int, width: int, resize: int | None) -> tuple[int, int]:
    """The size the image would be resampled to before the centre crop (never allocated at this size)."""
    if resize is not None:
        # torchvision Resize(int): the shorter side becomes ``resize``, the longer keeps the aspect.
        if w <= h:
            return max(1, int(resize * h / w)), resize
        return resize, max(1, int(resize * w / h))
    if (h, w) == (height, width):
        return h, w
    scale = max(height / h, width / w)
    return max(height, round(h * scale)), max(width, round(w * scale))


def _window(fit: int, target: int) -> tuple[int, int, int]:
    """One axis of torchvision's ``CenterCrop`` on a resampled axis of length ``fit``: ``(start, length,
    offset)``, i.e. ``fit[start:start + length]`` lands at ``out[offset:offset + length]`` (zero padding
    around it when ``fit`` is shorter than ``target``)."""
    if fit >= target:
        return int(round((fit - target) / 2.0)), target, 0
    return 0, fit, (target - fit) // 2


def _plane_window(plane: np.ndarray, is_uint8: bool, fit: tuple[int, int], rows: tuple[int, int],
                  cols: tuple[int, int]) -> np.ndarray:
    """``resample(plane, fit)[r0:r0 + nr, c0:c0 + nc]`` as float32 in [0, 1], computed without the full
    resampled plane: Pillow resamples just the source box that maps onto the window (same filter scale and
    centres as the full resize; only the window is allocated, so a 20,000 x 1 strip costs no more than the
    model's input)."""
    h, w = plane.shape
    (r0, nr), (c0, nc) = rows, cols
    if fit == (h, w):  # no resampling: a plain crop, exact values
        win = plane[r0:r0 + nr, c0:c0 + nc]
        return win.astype(np.float32) / np.float32(255.0) if is_uint8 else win.astype(np.float32)
    if is_uint8:  # Pillow converts to 32-bit float itself: no float copy of the whole source in numpy
        img = Image.frombuffer("L", (w, h), np.ascontiguousarray(plane), "raw", "L", 0, 1).convert("F")
    else:
        img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))  # mode "F"
    sy, sx = h / fit[0], w / fit[1]
    box = (c0 * sx, r0 * sy, (c0 + nc) * sx, (r0 + nr) * sy)
    out = np.asarray(img.resize((nc, nr), resample=_RESAMPLE, box=box), dtype=np.float32)
    img.close()
    if is_uint8:
        out = out / np.float32(255.0)
    return np.clip(out, 0.0, 1.0)


def _luma(planes: list[np.ndarray]) -> np.ndarray:
    r, g, b = planes
    luma = _LUMA[0] * r.astype(np.float64) + _LUMA[1] * g + _LUMA[2] * b
    return np.clip(luma, 0.0, 1.0).astype(np.float32)


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

    src, is_uint8 = _source(image)
    h, w = src.shape[:2]
    fit = _fit_size(h, w, height, width, None if resize is None else int(resize))
    (r0, nr, rt), (c0, nc, ct) = _window(fit[0], height), _window(fit[1], width)
    # Resample each source plane to the crop window only, then set the channels at the model's size
    # (luminance and replication are per-pixel linear maps, so this order gives the same values as
    # converting first, without a full-size float or 3-channel copy of the source).
    planes = [_plane_window(src[:, :, c], is_uint8, fit, (r0, nr), (c0, nc)) for c in range(src.shape[2])]
    if channels == 1 and len(planes) == 3:
        planes = [_luma(planes)]
    elif channels == 3 and len(planes) == 1:
        planes = planes * 3
    hwc = np.zeros((height, width, channels), np.float32)
    for c, plane in enumerate(planes):
        hwc[rt:rt + nr, ct:ct + nc, c] = plane

    if invert == "always":
        hwc = np.float32(1.0) - hwc
    elif invert == "auto" and channels == 1:
        known_polarity = isinstance(image, LoadedImage) and is_dataset_sample(image)
        if not known_polarity and should_invert(hwc[:, :, 0]):
            hwc = np.float32(1.0) - hwc
    return np.ascontiguousarray(np.transpose(hwc, (2, 0, 1)), dtype=np.float32).copy()
