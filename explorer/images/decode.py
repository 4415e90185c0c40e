"""Decoding uploaded bytes into a :class:`LoadedImage`, with one clear line for every kind of bad input.

Accepted formats: PNG, JPEG, WebP, BMP and GIF (first frame). Only those Pillow plugins are tried, so
a file is never handed to a parser the app does not need. The steps:

1. Empty input is refused.
2. The header is read (``Image.open`` is lazy) and the declared size is checked *before* any pixel is
   decoded: a side of 0 or longer than ``max_side``, or more than ``max_pixels`` pixels in all
   (a decompression bomb), is refused. Pillow's own ``DecompressionBombError`` becomes an
   :class:`ImageError` too. ``Image.MAX_IMAGE_PIXELS`` is never changed.
3. The whole image is decoded (``img.load()``), so a truncated or corrupt file fails here, not later.
4. EXIF orientation is applied, then the mode is normalised: grayscale (``1``, ``L``, ``LA``, 16-bit
   ``I;16``/``I``, float ``F``) stays one channel, everything with colour becomes RGB; transparency is
   composited on white; 16-bit and float values are scaled to 8 bits over their range, never clipped.

Pillow's warnings are recorded and dropped inside the decoder: none escapes to the caller.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explorer.images.core import ImageError, LoadedImage, make_loaded

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
ACCEPTED_TEXT = "PNG, JPEG, WebP, BMP or GIF"
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_SIDE = 20_000

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
               max_side: int = DEFAULT_MAX_SIDE) -> None:
    """Refuse a declared size before decoding: a zero side, a bomb, or an absurd side length."""
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: the image declares {width} x {height} pixels; an image needs at least 1 x 1.")
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: the image declares {width:,} x {height:,} pixels ({_format_pixels(width * height)}), "
            f"over the limit of {_format_pixels(max_pixels)} (possible decompression bomb); "
            "please upload a smaller image."
        )
    if max(width, height) > max_side:
        raise ImageError(
            f"{name}: {width:,} x {height:,} pixels is not a sensible image size "
            f"(the longest side allowed is {max_side:,} pixels)."
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
    # RGB, RGBX, CMYK, YCbCr, LAB, HSV, ...
    return np.asarray(img.convert("RGB"))


def decode_image(data: bytes, name: str = "upload", max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_side: int = DEFAULT_MAX_SIDE) -> LoadedImage:
    """Decode an uploaded file into a :class:`LoadedImage` (``source="upload"``).

    Raises:
        ImageError: one readable line: empty file, not an image / unsupported format, truncated or
            corrupt data, a decompression bomb (over ``max_pixels``), or absurd dimensions (a side of 0
            or longer than ``max_side``).
    """
    label = f"'{name}'" if name else "The file"
    if data is None or len(data) == 0:
        raise ImageError(f"{label} is empty (0 bytes); please choose an image file ({ACCEPTED_TEXT}).")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            img = Image.open(io.BytesIO(bytes(data)), formats=ACCEPTED_FORMATS)
        except Image.DecompressionBombError as exc:
            raise ImageError(
                f"{label} declares too many pixels to decode safely (possible decompression bomb); "
                f"the limit is {_format_pixels(max_pixels)}."
            ) from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
            what = _describe_unknown(bytes(data[:4096]))
            if what.startswith("a damaged"):
                raise ImageError(f"{label} could not be decoded: it looks like {what} "
                                 "(truncated or corrupt).") from exc
            prefix = f"{label} is {what}" if what != "not a recognised image" else f"{label} is not a recognised image"
            raise ImageError(f"{prefix}; accepted formats are {ACCEPTED_TEXT}.") from exc
        try:
            width, height = img.size
            check_size(width, height, label, max_pixels=max_pixels, max_side=max_side)
            fmt = img.format or "image"
            try:
                img.seek(0)  # animated GIF / WebP: the first frame
                img.load()
            except Image.DecompressionBombError as exc:
                raise ImageError(f"{label} declares too many pixels to decode safely "
                                 "(possible decompression bomb).") from exc
            except MemoryError as exc:
                raise ImageError(f"{label} is too large to decode in memory.") from exc
            except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, struct.error...
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if "truncated" in detail.lower():
                    reason = f"the {_pretty(fmt)} data is truncated (the file is incomplete)"
                else:
                    reason = f"the {_pretty(fmt)} data is corrupt ({detail})"
                raise ImageError(f"{label} could not be decoded: {reason}.") from exc
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception:  # broken EXIF: keep the pixels as stored
                oriented = img
            if oriented is None:
                oriented = img
            try:
                pixels = to_array(oriented)
            except Exception as exc:
                raise ImageError(f"{label}: unsupported {_pretty(fmt)} pixel mode {oriented.mode!r}.") from exc
        finally:
            img.close()
    del caught  # Pillow's warnings (bomb warnings included) are handled above, never re-raised.
    return make_loaded(pixels, name=name or "upload", source="upload")


def _pretty(fmt: str) -> str:
    return {"WEBP": "WebP"}.get(fmt, fmt)
