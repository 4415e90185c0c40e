"""Hostile image uploads through the sidebar's path (``decode_upload`` then ``to_model_input``, as
``explorer.state._uploaded_image`` and ``state.sidebar`` do) and the Projections page's path
(``explorer.caching.projections.read_uploads``): each refusal is one line naming its limit, and a good image
still works right after. The last test measures the resident memory of the worst cases in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.caching.projections import read_uploads as page_read_uploads
from explorer.images import DecodedCache, ImageError, UploadLimits, decode_upload, to_model_input
from explorer.images.uploads import decoded_cache
from tests.security.hostile import (
    bmp_bomb,
    encode,
    gif_bomb,
    good_png,
    header_only_png,
    html_text_png,
    idat_bomb_png,
    jpeg_bomb,
    make_zip,
    noise,
    strip_png,
    text_bomb_png,
    tiff_bomb,
    webp_bomb,
    zero_png,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL_SHAPES = [((1, 8, 8), None), ((1, 28, 28), None), ((3, 224, 224), 256)]  # digits, MNIST, ImageNet crops


def sidebar(data: bytes, name: str):
    """What the sidebar does with an upload: decode (limits, cache) and convert for every kind of model."""
    img = decode_upload(data, name)
    return img, [to_model_input(img, shape, resize=resize) for shape, resize in MODEL_SHAPES]


def refused(data: bytes, name: str, *fragments: str) -> str:
    """The sidebar refuses ``data`` with one line holding ``fragments``; the Projections path gives the same
    reason for it; then a good image works on both paths."""
    with pytest.raises(ImageError) as info:
        sidebar(data, name)
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg and msg == msg.strip(), msg
    for frag in fragments:
        assert frag.lower() in msg.lower(), msg
    images, problems = page_read_uploads([(name, data)])
    assert images == [] and len(problems) == 1 and problems[0][0] == name, problems
    for frag in fragments:
        assert frag.lower() in problems[0][1].lower(), problems
    still_works()
    return msg


def still_works() -> None:
    img, xs = sidebar(good_png(value=200), "good.png")
    assert img.pixels.shape == (32, 32, 1) and all(x.max() > 0.5 for x in xs)
    images, problems = page_read_uploads([("a.png", good_png(10)), ("b.png", good_png(20))])
    assert len(images) == 2 and problems == []


# ------------------------------------------------------------------------------------------ not images


def test_empty_file():
    refused(b"", "empty.png", "empty (0 bytes)")


def test_text_file_with_an_image_name():
    refused(b"name,score\nalice,3\n" * 50, "photo.png", "text file", "accepted formats")


@pytest.mark.parametrize("data,what", [
    (b"<html><body><script>alert(1)</script></body></html>", "HTML/XML document"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "SVG drawing"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF document"),
    (np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes(), "not a recognised image"),
])
def test_documents_and_noise(data, what):
    refused(data, "upload.png", what)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_truncated_in_each_format(fmt):
    data = noise(fmt)
    refused(data[: len(data) // 2], f"half.{fmt.lower()}", "could not be decoded")


def test_file_over_the_one_file_limit(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_UPLOAD_MB", "1")
    data = zero_png(64, 64) + b"\x00" * (1024 * 1024 + 1)  # a valid PNG with 1 MB of trailing bytes
    refused(data, "padded.png", "over the 1 MB limit for one file", "EXPLORER_MAX_UPLOAD_MB")


# ------------------------------------------------------------------------------- decompression bombs


@pytest.mark.parametrize("name,build", [
    ("bomb.png", lambda: header_only_png(100_000, 100_000)),
    ("bomb.jpg", lambda: jpeg_bomb(65_000, 65_000)),
    ("bomb.gif", lambda: gif_bomb(65_535, 65_535)),
    ("bomb.bmp", lambda: bmp_bomb(50_000, 50_000)),
    ("bomb.webp", lambda: webp_bomb(16_384)),
])
def test_pixel_bomb_in_each_format_refused_from_the_header(name, build):
    data = build()
    assert len(data) < 5_000
    tracemalloc.start()
    try:
        refused(data, name, "decompression bomb", "EXPLORER_MAX_SOURCE_PIXELS")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # nothing near the declared size was allocated


@pytest.mark.parametrize("name,build", [
    ("mid.png", lambda: header_only_png(9_000, 9_000)),
    ("mid.jpg", lambda: jpeg_bomb(9_000, 9_000)),
    ("mid.gif", lambda: gif_bomb(9_000, 9_000)),
    ("mid.bmp", lambda: bmp_bomb(9_000, 9_000)),
])
def test_over_our_limit_but_under_pillows_is_refused_by_ours(name, build):
    # 81 megapixels: Pillow would decode it (its own limit is 179), the source-pixel setting refuses it
    refused(build(), name, "9,000 x 9,000", "81.0 megapixels", "EXPLORER_MAX_SOURCE_PIXELS")


def test_source_pixel_limit_follows_the_setting(monkeypatch):
    data = zero_png(1000, 1000, False)
    monkeypatch.setenv("EXPLORER_MAX_SOURCE_PIXELS", "500000")
    refused(data, "mp.png", "1.0 megapixels", "0.5 megapixels", "EXPLORER_MAX_SOURCE_PIXELS")
    monkeypatch.setenv("EXPLORER_MAX_SOURCE_PIXELS", "2000000")
    assert sidebar(data, "mp.png")[0].pixels.shape == (1000, 1000, 1)


def test_gif_with_a_small_screen_and_a_huge_frame():
    refused(gif_bomb(30_000, 30_000, screen=(10, 10)), "frame.gif", "decompression bomb")


def test_tiff_bomb_is_refused_as_an_unaccepted_format():
    refused(tiff_bomb(100_000), "scan.tif", "TIFF image", "accepted formats")


def test_png_text_and_icc_chunk_bombs():
    refused(text_bomb_png(b"zTXt", 100), "ztxt.png", "inflates past the safe limit")
    refused(text_bomb_png(b"iCCP", 100), "iccp.png", "inflates past the safe limit")


def test_png_whose_data_inflates_far_past_its_pixels_decodes_only_its_pixels():
    img, xs = sidebar(idat_bomb_png(64, 100), "idat.png")  # 100 MB of zlib data behind a 64 x 64 header
    assert img.pixels.shape == (64, 64, 1) and xs[2].shape == (3, 224, 224)
    still_works()


# ------------------------------------------------------------------------------------- absurd headers


@pytest.mark.parametrize("name,data,fragments", [
    ("zero.png", header_only_png(0, 10), ("could not be decoded",)),
    ("wide.png", header_only_png(2**31 - 1, 1), ("decompression bomb",)),
    ("line.png", header_only_png(25_000, 1_500),
     ("25,000 x 1,500", "longest side allowed is 20,000", "EXPLORER_MAX_SIDE")),
    ("zero.gif", gif_bomb(0, 0), ("could not be decoded",)),
    ("negative.bmp", bmp_bomb(-5, 4), ("decompression bomb",)),
])
def test_absurd_headers(name, data, fragments):
    refused(data, name, *fragments)


def test_a_top_down_bmp_is_a_normal_image():
    img, _ = sidebar(bmp_bomb(4, -4), "topdown.bmp")  # a negative height is the legal top-down layout
    assert img.pixels.shape == (4, 4, 3)


# -------------------------------------------------------------------------------------- thin strips


@pytest.mark.parametrize("width,height", [(20_000, 1), (1, 20_000), (5_000, 100)])
def test_thin_strips_are_refused_by_the_aspect_limit(width, height):
    ratio = f"{max(width, height) // min(width, height):,}:1"
    refused(strip_png(width, height), "strip.png", ratio, "limit is 20:1", "EXPLORER_MAX_ASPECT")


@pytest.mark.parametrize("width,height", [(20_000, 1), (1, 20_000)])
def test_thin_strips_resized_for_every_model_stay_small_even_without_the_aspect_limit(monkeypatch, width, height):
    monkeypatch.setenv("EXPLORER_MAX_ASPECT", "1000000")
    data = strip_png(width, height)
    assert len(data) < 200  # a 140-byte file
    tracemalloc.start()
    try:
        img, xs = sidebar(data, "strip.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [x.shape for x in xs] == [(1, 8, 8), (1, 28, 28), (3, 224, 224)]
    # Only the crop window is resampled: the 256 x 5,120,000 resize (12 GB as float32 x 3) is never made.
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MB"


def test_aspect_limit_follows_the_setting(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_ASPECT", "4")
    refused(zero_png(50, 10, True), "wide.png", "5:1", "limit is 4:1", "EXPLORER_MAX_ASPECT")


# ------------------------------------------------------------------------------------------ polyglots


def test_png_that_is_also_a_zip_is_one_image():
    data = good_png(120) + make_zip({"inner.png": good_png(30), "evil.txt": b"x"})
    img, _ = sidebar(data, "poly.png")
    assert img.pixels.shape == (32, 32, 1)
    images, problems = page_read_uploads([("poly.png", data)])  # named as an image: the zip is never opened
    assert [im.name for im in images] == ["poly.png"] and problems == []


def test_html_in_a_png_text_chunk_is_never_read():
    img, _ = sidebar(html_text_png(), "<b>x</b>.png")
    assert img.pixels.shape == (16, 16, 3) and (img.pixels == (10, 200, 30)).all()
    assert img.name == "<b>x</b>.png"  # the name is kept as text (pages escape it); no chunk text is kept


def test_control_characters_in_a_name_stay_on_one_line():
    with pytest.raises(ImageError) as info:
        decode_upload(b"", "evil\nname\r\x1b[31m.png")
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value) and "evil?name" in str(info.value)


# ---------------------------------------------------------------------------------------------- cache


def test_the_same_upload_is_decoded_once():
    cache = DecodedCache(64 * 2**20)
    data = noise("PNG", 128)
    first = decode_upload(data, "a.png", cache=cache)
    again = decode_upload(bytearray(data), "renamed.png", cache=cache)  # same bytes, another name
    assert cache.hits == 1 and len(cache) == 1  # found by digest: no second decode
    assert again.pixels is first.pixels and again.name == "renamed.png" and again.digest == first.digest
    assert not again.pixels.flags.writeable  # shared between sessions: read-only
    with pytest.raises(ImageError, match="EXPLORER_MAX_SOURCE_PIXELS"):  # a hit still obeys the limits
        decode_upload(data, "a.png", cache=cache, limits=UploadLimits(max_source_pixels=1000))


def test_a_refusal_is_cached_too_and_the_cache_is_bounded_in_bytes():
    cache = DecodedCache(3 * 64 * 64 * 3)  # room for three 64 x 64 colour images
    bad = noise("PNG")[:500]
    for _ in range(2):
        with pytest.raises(ImageError, match="could not be decoded"):
            decode_upload(bad, "bad.png", cache=cache)
    assert cache.hits == 1
    for seed in range(5):
        decode_upload(encode(Image.fromarray(np.full((64, 64, 3), seed * 40, np.uint8)), "PNG"), f"{seed}.png",
                      cache=cache)
    assert cache.nbytes <= cache.max_bytes and len(cache) == 3
    assert decoded_cache().max_bytes == 400 * 2**20  # the process-wide one: EXPLORER_MAX_DECODED_MB (local)


# --------------------------------------------------------------------------------------------- memory


def test_no_upload_of_at_most_20_mb_makes_the_server_use_1_gb_more():
    """Peak resident memory of the worst cases, each measured in a fresh subprocess (VmHWM reset per case)."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to reset the peak-RSS mark")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("EXPLORER_MAX_") and k != "EXPLORER_PROFILE"}
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "security" / "hostile.py")], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["control_300mb"]["extra_mb"] > 250  # the probe sees a real allocation
    for case, fig in figures.items():
        assert fig["upload_mb"] <= 20, (case, fig)
        if case != "control_300mb":
            assert fig["extra_mb"] < 1024, (case, fig)
    # the two reports, now refused before decoding and nearly free
    assert figures["zip_twelve_36mp_pngs"]["extra_mb"] < 50 and "EXPLORER_MAX_DECODED_MB" in \
        figures["zip_twelve_36mp_pngs"]["outcome"]
    assert figures["strip_20000x1"]["extra_mb"] < 50 and "EXPLORER_MAX_ASPECT" in figures["strip_20000x1"]["outcome"]
    assert figures["strip_20000x1_no_aspect_cap"]["extra_mb"] < 50
    print(json.dumps(figures, indent=1))
