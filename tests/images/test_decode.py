"""decode_image: every accepted format and mode, and a clear one-line ImageError for every bad input."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from explorer.digest import array_digest
from explorer.images import ImageError, LoadedImage, decode_image
from explorer.images.decode import check_size, to_array


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def blocks_rgb() -> np.ndarray:
    """16 x 24 RGB made of four flat colour blocks (survives JPEG nearly unchanged)."""
    a = np.zeros((16, 24, 3), np.uint8)
    a[:8, :12] = (255, 0, 0)
    a[:8, 12:] = (0, 255, 0)
    a[8:, :12] = (0, 0, 255)
    a[8:, 12:] = (255, 255, 255)
    return a


def assert_error(data: bytes, *fragments: str, **kw) -> str:
    with pytest.raises(ImageError) as info:
        decode_image(data, **kw)
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg and msg.strip() == msg
    for frag in fragments:
        assert frag.lower() in msg.lower(), msg
    return msg


@pytest.fixture(autouse=True)
def no_warning_escapes():
    """Any warning leaking out of decode_image fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("BMP", {}), ("WEBP", {"lossless": True})])
def test_lossless_formats_round_trip(fmt, kw):
    a = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    img = decode_image(encode(Image.fromarray(a), fmt, **kw), name=f"x.{fmt.lower()}")
    assert isinstance(img, LoadedImage)
    np.testing.assert_array_equal(img.pixels, a)
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == (20, 30, 3)
    assert (img.name, img.source, img.sample_id, img.label, img.exact) == (f"x.{fmt.lower()}", "upload", None,
                                                                           None, None)
    assert img.digest == array_digest(img.pixels)
    assert not img.pixels.flags.writeable


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_lossy_formats_close_to_original(fmt):
    a = blocks_rgb()
    img = decode_image(encode(Image.fromarray(a), fmt, quality=95), name="photo")
    assert img.pixels.shape == (16, 24, 3)
    # Block centres survive compression.
    for y, x in [(3, 4), (3, 18), (12, 4), (12, 18)]:
        assert np.abs(img.pixels[y, x].astype(int) - a[y, x]).max() < 40


def test_animated_gif_gives_first_frame():
    red = Image.new("RGB", (10, 6), (255, 0, 0))
    blue = Image.new("RGB", (10, 6), (0, 0, 255))
    data = encode(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    img = decode_image(data, name="anim.gif")
    assert img.pixels.shape == (6, 10, 3)
    assert (img.pixels == np.array([255, 0, 0], np.uint8)).all()


def test_exif_orientation_6_rotates():
    a = np.zeros((8, 16, 3), np.uint8)  # 16 wide, 8 high; left half red, right half blue
    a[:, :8] = (255, 0, 0)
    a[:, 8:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    data = encode(Image.fromarray(a), "JPEG", quality=95, exif=exif.tobytes())
    img = decode_image(data, name="phone.jpg")
    assert img.pixels.shape == (16, 8, 3)  # now portrait
    # Clockwise: the left (red) half ends up on top, the right (blue) half at the bottom.
    assert img.pixels[2, 4, 0] > 200 and img.pixels[2, 4, 2] < 60
    assert img.pixels[13, 4, 2] > 200 and img.pixels[13, 4, 0] < 60


def test_palette_with_transparency_composited_on_white():
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    p.paste(1, (2, 0, 4, 4))  # right half: index 1 (red); left half: index 0 (transparent)
    for fmt in ("PNG", "GIF"):
        img = decode_image(encode(p, fmt, transparency=0), name=f"pal.{fmt.lower()}")
        assert img.pixels.shape == (4, 4, 3), fmt
        assert (img.pixels[:, :2] == 255).all(), fmt  # transparent -> white, not black
        assert (img.pixels[:, 2:] == np.array([255, 0, 0], np.uint8)).all(), fmt


def test_gray_palette_stays_grayscale():
    p = Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16).convert("P")
    img = decode_image(encode(p, "GIF"), name="gray.gif")
    assert img.pixels.shape == (4, 4, 1)


def test_rgba_composited_on_white():
    a = np.zeros((2, 3, 4), np.uint8)
    a[0, 0] = (255, 0, 0, 255)  # opaque red
    a[0, 1] = (0, 0, 0, 0)  # transparent -> white
    a[0, 2] = (0, 0, 0, 128)  # half black over white -> mid gray
    a[1] = (0, 255, 0, 255)
    img = decode_image(encode(Image.fromarray(a, "RGBA"), "PNG"), name="alpha.png")
    assert img.pixels.shape == (2, 3, 3)
    assert tuple(img.pixels[0, 0]) == (255, 0, 0)
    assert tuple(img.pixels[0, 1]) == (255, 255, 255)
    assert all(120 <= v <= 135 for v in img.pixels[0, 2])
    assert tuple(img.pixels[1, 1]) == (0, 255, 0)


def test_la_stays_grayscale_on_white():
    a = np.zeros((2, 2, 2), np.uint8)
    a[..., 0] = 10
    a[0, 0, 1] = 255
    img = decode_image(encode(Image.fromarray(a, "LA"), "PNG"), name="la.png")
    assert img.pixels.shape == (2, 2, 1)
    assert img.pixels[0, 0, 0] == 10 and img.pixels[1, 1, 0] == 255


def test_16bit_png_gradient_keeps_its_range():
    g = np.linspace(0, 65535, 16 * 64).round().astype(np.uint16).reshape(16, 64)  # 4:1, under EXPLORER_MAX_ASPECT
    data = encode(Image.fromarray(g), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    img = decode_image(data, name="deep.png")
    assert img.pixels.shape == (16, 64, 1)
    flat = img.pixels[..., 0].ravel()
    assert flat.min() == 0 and flat.max() == 255
    assert np.all(np.diff(flat.astype(int)) >= 0)  # monotone, not clipped to a few values
    assert len(np.unique(flat)) > 200
    np.testing.assert_allclose(flat.astype(float), g.ravel() / 257.0, atol=0.51)


def test_cmyk_jpeg_to_rgb():
    cmyk = Image.new("CMYK", (8, 8), (255, 0, 0, 0))  # pure cyan
    img = decode_image(encode(cmyk, "JPEG", quality=95), name="print.jpg")
    assert img.pixels.shape == (8, 8, 3)
    r, g, b = img.pixels[4, 4].astype(int)
    assert r < 30 and g > 225 and b > 225


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "JPEG"])
def test_grayscale_stays_one_channel(fmt):
    a = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    img = decode_image(encode(Image.fromarray(a, "L"), fmt, **({"quality": 100} if fmt == "JPEG" else {})))
    assert img.pixels.shape == (8, 8, 1)
    if fmt != "JPEG":
        np.testing.assert_array_equal(img.pixels[..., 0], a)


def test_bilevel_image_is_grayscale_0_255():
    b = Image.new("1", (5, 3), 0)
    b.putpixel((1, 1), 1)
    img = decode_image(encode(b, "PNG"))
    assert img.pixels.shape == (3, 5, 1)
    assert set(np.unique(img.pixels)) == {0, 255} and img.pixels[1, 1, 0] == 255


def test_float_and_int32_modes_scale_without_clipping():
    f = Image.fromarray(np.array([[0.0, 0.5], [0.25, 1.0]], np.float32))
    assert f.mode == "F"
    np.testing.assert_array_equal(to_array(f)[..., 0], [[0, 128], [64, 255]])
    wide = Image.fromarray(np.array([[-1000, 0], [500, 3000]], np.int32))
    assert wide.mode == "I"
    out = to_array(wide)[..., 0]
    assert out.min() == 0 and out.max() == 255 and out[0, 1] < out[1, 0] < out[1, 1]


def test_equal_content_equal_digest_and_one_pixel_differs():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    da = decode_image(encode(Image.fromarray(a), "PNG"), name="a.png")
    db = decode_image(encode(Image.fromarray(b), "PNG"), name="a.png")
    assert da.digest != db.digest
    assert da == decode_image(encode(Image.fromarray(a), "PNG"), name="a.png")
    assert len({da, db}) == 2


# ---------------------------------------------------------------- errors


def test_empty_file():
    assert_error(b"", "empty", name="nothing.png")


def test_random_bytes():
    data = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    assert_error(data, "not a recognised image", "PNG, JPEG, WebP, BMP or GIF", name="noise.bin")


def test_text_file():
    assert_error(b"hello,world\n1,2\n" * 20, "notes.csv", "text file", "PNG, JPEG, WebP, BMP or GIF",
                 name="notes.csv")


def test_unsupported_image_format_is_named():
    data = encode(Image.new("RGB", (4, 4)), "TIFF")
    assert_error(data, "TIFF", "accepted formats", name="scan.tif")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP"])
def test_truncated_file(fmt):
    a = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(a), fmt)
    assert_error(data[: len(data) // 2], "could not be decoded", "truncated", name=f"half.{fmt.lower()}")


def test_truncated_webp():
    a = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(a), "WEBP")
    assert_error(data[: len(data) // 2], "could not be decoded", "damaged WebP", name="half.webp")


def test_corrupt_png_data():
    data = bytearray(encode(Image.fromarray(blocks_rgb()), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # breaks the chunk's CRC / the zlib stream
    assert_error(bytes(data), "could not be decoded", "corrupt", name="bad.png")


def test_decompression_bomb_refused_from_header():
    data = encode(Image.new("1", (10_000, 10_000)), "PNG")  # tiny file, 100 megapixels declared
    assert len(data) < 100_000
    assert_error(data, "bomb.png", "10,000 x 10,000", "100.0 megapixels", "decompression bomb", name="bomb.png")


def test_max_pixels_is_configurable():
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    assert_error(data, "decompression bomb", max_pixels=5_000)
    assert decode_image(data, max_pixels=10_000).pixels.shape == (100, 100, 3)


def test_pillow_bomb_error_converted(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # restored after the test
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    assert_error(data, "decompression bomb", max_pixels=10**9)


def test_pillow_bomb_warning_does_not_escape(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6_000)  # 10,000 pixels: Pillow warns, below its error
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    assert decode_image(data, max_pixels=10**6).pixels.shape == (100, 100, 3)  # the caller's limit rules
    assert_error(data, "decompression bomb", max_pixels=5_000)


def test_absurd_dimensions():
    data = encode(Image.new("1", (1, 100_000)), "PNG")
    assert_error(data, "1 x 100,000", "longest side allowed is 20,000", name="line.png")


def test_zero_side_refused():
    with pytest.raises(ImageError, match="at least 1 x 1"):
        check_size(0, 10, "'z.png'")
    with pytest.raises(ImageError, match="at least 1 x 1"):
        check_size(10, 0, "'z.png'")


def test_image_error_is_value_error_and_one_line():
    err = ImageError("line one\nline two")
    assert isinstance(err, ValueError) and str(err) == "line one line two"
