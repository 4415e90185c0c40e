"""Decoding uploaded bytes into a :class:`LoadedImage`, with one clear line for every kind of bad input.

Accepted formats: PNG, JPEG, WebP, BMP and GIF (first frame). Only those Pillow plugins are tried, so
a file is never handed to a parser the app does not need. The steps:

1. Empty input is refused.
2. The header is read (``Image.open`` is lazy) and the declared size is checked *before* any pixel is
   decoded: a side of 0 or longer than ``max_side``, more than ``max_pixels`` pixels in all
   (a decompression bomb), or a longest / shortest side over ``max_aspect`` (a thin strip that would be
   stretched to millions of pixels when resized for a model) is refused. The limits default to the
   server's settings (``EXPLORER_MAX_SOURCE_PIXELS``, ``EXPLORER_MAX_SIDE``, ``EXPLORER_MAX_ASPECT``) and
   every message names the setting. Pillow's own ``DecompressionBombError`` becomes an
   :class:`ImageError` too. ``Image.MAX_IMAGE_PIXELS`` is never changed. :func:`probe_image` does this
   step alone (no pixel decoded), so a set of uploads can be sized before any of them is decoded.
3. The whole image is decoded (``img.load()``), so a truncated or corrupt file fails here, not later.
4. EXIF orientation is applied, then the mode is normalised: grayscale (``1``, ``L``, ``LA``, 16-bit
   ``I;16``/``I``, float ``F``) stays one channel, everything with colour becomes RGB; transparency is
   composited on white; 16-bit and float values are scaled to 8 bits over their range, never clipped.

Pillow's warnings are recorded and dropped inside the decoder: none escapes to the caller.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explorer.images.core import ImageError, LoadedImage, make_loaded

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
ACCEPTED_TEXT = "PNG, JPEG, WebP, BMP or GIF"
DEFAULT_MAX_PIXELS = 40_000_000  # the local profile's EXPLORER_MAX_SOURCE_PIXELS
DEFAULT_MAX_SIDE = 20_000  # the local profile's EXPLORER_MAX_SIDE
DEFAULT_MAX_ASPECT = 20  # the local profile's EXPLORER_MAX_ASPECT
#: Pillow modes whose decoded image keeps one channel (the rest become RGB, 3 bytes a pixel)
GRAY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")

# Magic numbers of formats people commonly try, for a more helpful refusal.
_KNOWN_OTHER = (
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"GIF8", "a damaged GIF file"),
    (b"\x89PNG", "a damaged PNG file"),
    (b"\xff\xd8\xff", "a damaged JPEG file"),
)


def _describe_unknown(data: bytes) -> str:
    """A short guess at what a non-image file is (used only in the error message)."""
    head = data[:64]
    for magic, what in _KNOWN_OTHER:
        if head.startswith(magic):
            return what
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
            return "a HEIC image"
        if brand in (b"avif", b"avis"):
            return "an AVIF image"
        return "a video or ISO media file"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a damaged WebP file"
    stripped = head.lstrip()
    if stripped.startswith(b"<"):
        low = data[:512].lower()
        return "an SVG drawing" if b"<svg" in low else "an HTML/XML document"
    sample = data[:4096]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        return "a text file"
    return "not a recognised image"


def _format_pixels(n: int) -> str:
    return f"{n / 1e6:.1f} megapixels"


def check_size(width: int, height: int, name: str, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_side: int = DEFAULT_MAX_SIDE, max_aspect: int | None = None) -> None:
    """Refuse a declared size before decoding: a zero side, a bomb, an absurd side length, a thin strip.

    ``max_aspect`` (longest / shortest side) is checked only when given.
    """
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: the image declares {width} x {height} pixels; an image needs at least 1 x 1.")
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: the image declares {width:,} x {height:,} pixels ({_format_pixels(width * height)}), "
            f"over the limit of {_format_pixels(max_pixels)} (EXPLORER_MAX_SOURCE_PIXELS; possible "
            "decompression bomb); please upload a smaller image."
        )
    if max(width, height) > max_side:
        raise ImageError(
            f"{name}: {width:,} x {height:,} pixels is not a sensible image size "
            f"(the longest side allowed is {max_side:,} pixels, EXPLORER_MAX_SIDE)."
        )
    if max_aspect is not None and max(width, height) > max_aspect * min(width, height):
        ratio = max(width, height) / min(width, height)
        raise ImageError(
            f"{name}: {width:,} x {height:,} pixels is a strip with an aspect ratio of {ratio:,.0f}:1; images are "
            f"resized for the model, and the limit is {max_aspect}:1 (EXPLORER_MAX_ASPECT)."
        )


def _scale_to_uint8(a: np.ndarray, full_range: float | None) -> np.ndarray:
    """Map numeric data to uint8 without clipping: by ``full_range`` when given and valid, else min-max."""
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
    if full_range is not None and lo >= 0 and hi <= full_range:
        scaled = a * (255.0 / full_range)
    elif lo >= 0 and hi <= 255:
        scaled = a
    elif hi > lo:
        scaled = (a - lo) * (255.0 / (hi - lo))
    else:
        scaled = np.zeros_like(a)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _composite_on_white(img: Image.Image) -> Image.Image:
    """RGBA / LA on a white background, returning RGB / L."""
    if img.mode == "LA":
        bg = Image.new("LA", img.size, (255, 255))
        return Image.alpha_composite(bg.convert("RGBA"), img.convert("RGBA")).convert("L")
    bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, img.convert("RGBA")).convert("RGB")


def _has_transparency(img: Image.Image) -> bool:
    return "transparency" in img.info


def to_array(img: Image.Image) -> np.ndarray:
    """A decoded Pillow image as ``H x W x C`` uint8, ``C`` == 1 for grayscale and 3 for colour."""
    mode = img.mode
    if mode.startswith("I;16"):
        return _scale_to_uint8(np.asarray(img), 65535.0)[:, :, None]
    if mode == "I":
        # 32-bit integers: 16-bit data when it fits (older Pillow opens 16-bit PNG as "I"), else min-max.
        return _scale_to_uint8(np.asarray(img), 65535.0)[:, :, None]
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        return _scale_to_uint8(arr, 1.0)[:, :, None]
    if mode == "1":
        return np.asarray(img.convert("L"))[:, :, None]
    if mode == "L":
        if _has_transparency(img):  # grayscale with one transparent level (tRNS chunk)
            return np.asarray(_composite_on_white(img.convert("LA")))[:, :, None]
        return np.asarray(img)[:, :, None]
    if mode in ("LA", "La"):
        return np.asarray(_composite_on_white(img.convert("LA")))[:, :, None]
    if mode in ("P", "PA"):
        rgba = img.convert("RGBA")
        has_alpha = mode == "PA" or _has_transparency(img)
        rgb = np.asarray(_composite_on_white(rgba) if has_alpha else rgba.convert("RGB"))
        # A palette of grays (common in GIF) is a grayscale image.
        if np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 1], rgb[:, :, 2]):
            return np.ascontiguousarray(rgb[:, :, :1])
        return rgb
    if mode in ("RGBA", "RGBa"):
        return np.asarray(_composite_on_white(img.convert("RGBA")))
    if mode == "RGB" and _has_transparency(img):
        # RGB with a single transparent colour (tRNS chunk).
        return np.asarray(_composite_on_white(img.convert("RGBA")))
    if mode == "RGB":
        return np.asarray(img)  # no intermediate copy of a large photo
    # RGBX, CMYK, YCbCr, LAB, HSV, ...
    return np.asarray(img.convert("RGB"))


@dataclass(frozen=True)
class ImageInfo:
    """What a file's header declares, read without decoding a pixel (:func:`probe_image`)."""

    width: int
    height: int
    format: str  # Pillow's format name: PNG, JPEG, WEBP, BMP, GIF
    mode: str  # Pillow's mode before normalisation

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def channels(self) -> int:
        """Channels of the decoded :class:`LoadedImage` (1 grayscale, 3 colour; a palette counts as colour)."""
        return 1 if self.mode in GRAY_MODES else 3

    @property
    def decoded_bytes(self) -> int:
        """Bytes of the decoded ``H x W x C`` uint8 pixels this file becomes."""
        return self.pixels * self.channels


def _limits(max_pixels: int | None, max_side: int | None, max_aspect: int | None) -> tuple[int, int, int]:
    """The given limits, the server's settings for those left ``None``."""
    if max_pixels is None or max_side is None or max_aspect is None:
        from explorer.config import get_settings

        s = get_settings()
        max_pixels = s.max_source_pixels if max_pixels is None else max_pixels
        max_side = s.max_side if max_side is None else max_side
        max_aspect = s.max_aspect if max_aspect is None else max_aspect
    return int(max_pixels), int(max_side), int(max_aspect)


def _label(name: str) -> str:
    return f"'{name}'" if name else "The file"


def _open(data: bytes, label: str, max_pixels: int) -> Image.Image:
    """Pillow's lazy open (header only), restricted to the accepted formats; every failure an ImageError."""
    if data is None or len(data) == 0:
        raise ImageError(f"{label} is empty (0 bytes); please choose an image file ({ACCEPTED_TEXT}).")
    try:
        return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{label} declares too many pixels to decode safely (possible decompression bomb); "
            f"the limit is {_format_pixels(max_pixels)} (EXPLORER_MAX_SOURCE_PIXELS)."
        ) from exc
    except MemoryError as exc:
        raise ImageError(f"{label} has a header too large to read in memory.") from exc
    except Exception as exc:  # UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error
        if "decompressed data too large" in str(exc).lower():  # Pillow's cap on zTXt / iCCP / iTXt chunks
            raise ImageError(f"{label} has a compressed text or colour-profile chunk that inflates past the safe "
                             "limit (possible decompression bomb).") from exc
        what = _describe_unknown(bytes(data[:4096]))
        if what.startswith("a damaged"):
            raise ImageError(f"{label} could not be decoded: it looks like {what} "
                             "(truncated or corrupt).") from exc
        prefix = f"{label} is {what}" if what != "not a recognised image" else f"{label} is not a recognised image"
        raise ImageError(f"{prefix}; accepted formats are {ACCEPTED_TEXT}.") from exc


def probe_image(data: bytes, name: str = "upload", max_pixels: int | None = None, max_side: int | None = None,
                max_aspect: int | None = None) -> ImageInfo:
    """Read and check an upload's header without decoding any pixel (cheap even for a bomb).

    The limits default to the server's settings. Raises :class:`ImageError` exactly as :func:`decode_image`
    would for an empty file, a file that is not an accepted image, or a declared size over a limit.
    """
    max_pixels, max_side, max_aspect = _limits(max_pixels, max_side, max_aspect)
    label = _label(name)
    data = bytes(data) if data is not None and not isinstance(data, bytes) else data
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        img = _open(data, label, max_pixels)
        try:
            width, height = img.size
            check_size(width, height, label, max_pixels=max_pixels, max_side=max_side, max_aspect=max_aspect)
            return ImageInfo(int(width), int(height), str(img.format or "image"), str(img.mode))
        finally:
            img.close()


def decode_image(data: bytes, name: str = "upload", max_pixels: int | None = None,
                 max_side: int | None = None, max_aspect: int | None = None) -> LoadedImage:
    """Decode an uploaded file into a :class:`LoadedImage` (``source="upload"``).

    The limits default to the server's settings (``EXPLORER_MAX_SOURCE_PIXELS``, ``EXPLORER_MAX_SIDE``,
    ``EXPLORER_MAX_ASPECT``). Uploads should go through :func:`explorer.images.uploads.decode_upload`, which adds
    the file-size limit and a cache by content digest.

    Raises:
        ImageError: one readable line: empty file, not an image / unsupported format, truncated or
            corrupt data, a decompression bomb (over ``max_pixels``), absurd dimensions (a side of 0
            or longer than ``max_side``) or a thin strip (aspect ratio over ``max_aspect``).
    """
    max_pixels, max_side, max_aspect = _limits(max_pixels, max_side, max_aspect)
    label = _label(name)
    data = bytes(data) if data is not None and not isinstance(data, bytes) else data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        img = _open(data, label, max_pixels)
        try:
            width, height = img.size
            check_size(width, height, label, max_pixels=max_pixels, max_side=max_side, max_aspect=max_aspect)
            fmt = img.format or "image"
            try:
                img.seek(0)  # animated GIF / WebP: the first frame
                if img.size != (width, height):  # a frame that grows the canvas (GIF) is checked again
                    check_size(*img.size, label, max_pixels=max_pixels, max_side=max_side, max_aspect=max_aspect)
                img.load()
            except ImageError:
                raise
            except Image.DecompressionBombError as exc:
                raise ImageError(f"{label} declares too many pixels to decode safely "
                                 "(possible decompression bomb; EXPLORER_MAX_SOURCE_PIXELS).") from exc
            except MemoryError as exc:
                raise ImageError(f"{label} is too large to decode in memory.") from exc
            except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, struct.error...
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if "truncated" in detail.lower():
                    reason = f"the {_pretty(fmt)} data is truncated (the file is incomplete)"
                else:
                    reason = f"the {_pretty(fmt)} data is corrupt ({detail})"
                raise ImageError(f"{label} could not be decoded: {reason}.") from exc
            if img.size != (width, height):
                check_size(*img.size, label, max_pixels=max_pixels, max_side=max_side, max_aspect=max_aspect)
            try:
                # In place: without an orientation tag Pillow would otherwise return a full copy.
                ImageOps.exif_transpose(img, in_place=True)
            except Exception:  # broken EXIF: keep the pixels as stored
                pass
            try:
                pixels = to_array(img)
            except MemoryError as exc:
                raise ImageError(f"{label} is too large to decode in memory.") from exc
            except Exception as exc:
                raise ImageError(f"{label}: unsupported {_pretty(fmt)} pixel mode {img.mode!r}.") from exc
        finally:
            img.close()
    del caught  # Pillow's warnings (bomb warnings included) are handled above, never re-raised.
    return make_loaded(pixels, name=name or "upload", source="upload", copy=False)


def _pretty(fmt: str) -> str:
    return {"WEBP": "WebP"}.get(fmt, fmt)
