"""Hostile upload files, built byte by byte, and a peak-memory probe for the worst of them.

Imported by the tests (``from tests.security.hostile import ...``) and run as a script by the memory test::

    python tests/security/hostile.py CASE [CASE ...]   # prints one JSON line: {case: extra MB, ...}

Every builder returns ``bytes`` of at most a few MB: what a visitor can send in one upload.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# ------------------------------------------------------------------------------------------------- PNG


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_ihdr(width: int, height: int, color_type: int = 0, bit_depth: int = 8) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type,
                                                                    0, 0, 0))


def header_only_png(width: int, height: int, color: bool = False) -> bytes:
    """A PNG whose header declares ``width x height`` and whose data is a few bytes (never decodable)."""
    return png_ihdr(width, height, 2 if color else 0) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        png_chunk(b"IEND", b"")


def _zero_rows(row_bytes: int, rows: int, level: int = 9) -> bytes:
    comp = zlib.compressobj(level)
    row = b"\x00" * (row_bytes + 1)  # filter byte + pixels
    parts = [comp.compress(row) for _ in range(rows)]
    parts.append(comp.flush())
    return b"".join(parts)


@functools.lru_cache(maxsize=8)
def _zero_idat(width: int, height: int, color: bool) -> bytes:
    return _zero_rows(width * (3 if color else 1), height)


def zero_png(width: int, height: int, color: bool = True, tag: bytes = b"") -> bytes:
    """A *valid* all-black PNG of any size, compressed about 1000:1 (a 36-megapixel RGB image is ~105 KB).
    ``tag`` goes into a tEXt chunk, to make otherwise identical files differ."""
    idat = _zero_idat(width, height, color)
    text = png_chunk(b"tEXt", b"Comment\x00" + tag) if tag else b""
    return png_ihdr(width, height, 2 if color else 0) + text + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def strip_png(width: int, height: int) -> bytes:
    """A real 8-bit RGB strip, e.g. 20000 x 1 (about 140 bytes of file)."""
    return zero_png(width, height, True)


def idat_bomb_png(side: int = 64, inflated_mb: int = 200) -> bytes:
    """A small image whose IDAT stream inflates to ``inflated_mb`` MB (far more than its pixels need)."""
    comp = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    idat = b"".join(comp.compress(block) for _ in range(inflated_mb)) + comp.flush()
    return png_ihdr(side, side, 0) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def text_bomb_png(kind: bytes = b"zTXt", inflated_mb: int = 200) -> bytes:
    """A 4 x 4 PNG with a compressed text (zTXt) or ICC profile (iCCP) chunk that inflates to ``inflated_mb``."""
    comp = zlib.compressobj(9)
    block = b"A" * (1 << 20)
    payload = b"".join(comp.compress(block) for _ in range(inflated_mb)) + comp.flush()
    head = b"Comment\x00\x00" if kind == b"zTXt" else b"icc\x00\x00"
    good = encode(Image.new("L", (4, 4), 128), "PNG")
    return good[:33] + png_chunk(kind, head + payload) + good[33:]


def html_text_png() -> bytes:
    """A valid PNG carrying HTML and Markdown in a tEXt chunk."""
    good = encode(Image.new("RGB", (16, 16), (10, 200, 30)), "PNG")
    payload = b"Comment\x00<script>alert(1)</script>[click](http://evil.example) <img src=x onerror=alert(2)>"
    return good[:33] + png_chunk(b"tEXt", payload) + good[33:]


# --------------------------------------------------------------------------------------- other formats


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def good_png(value: int = 90, size: int = 32) -> bytes:
    a = np.zeros((size, size), np.uint8)
    a[size // 4: 3 * size // 4, size // 3: 2 * size // 3] = value
    return encode(Image.fromarray(a), "PNG")


def noise(fmt: str, size: int = 64, seed: int = 2) -> bytes:
    a = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return encode(Image.fromarray(a), fmt)


def jpeg_bomb(width: int = 65_000, height: int = 65_000) -> bytes:
    """A tiny JPEG whose frame header (SOF0) declares ``width x height``."""
    data = bytearray(encode(Image.new("RGB", (8, 8), (200, 0, 0)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_bomb(width: int = 65_535, height: int = 65_535, screen: tuple[int, int] | None = None) -> bytes:
    """A tiny GIF whose first frame declares ``width x height``; the logical screen declares ``screen``
    (default: the same), so a small screen with a huge frame can be tried too."""
    data = bytearray(encode(Image.new("P", (8, 8)), "GIF"))
    sw, sh = screen or (width, height)
    data[6:10] = struct.pack("<HH", sw, sh)
    desc = data.index(b"\x2c", 13)  # image descriptor: 0x2C left top width height
    data[desc + 5: desc + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def bmp_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    data = bytearray(encode(Image.new("RGB", (4, 4)), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def tiff_bomb(side: int = 100_000) -> bytes:
    data = bytearray(encode(Image.new("L", (4, 4)), "TIFF"))
    ifd = struct.unpack("<I", data[4:8])[0]
    (count,) = struct.unpack("<H", data[ifd: ifd + 2])
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag = struct.unpack("<H", data[at: at + 2])[0]
        if tag in (256, 257):  # ImageWidth, ImageLength as LONG
            data[at + 2: at + 12] = struct.pack("<HII", 4, 1, side)
    return bytes(data)


def webp_bomb(side: int = 16_384) -> bytes:
    """A lossless WebP (VP8L) whose bitstream header declares ``side x side`` (16,384 is the format's maximum)."""
    data = bytearray(encode(Image.new("RGB", (8, 8), (0, 90, 200)), "WEBP", lossless=True))
    at = data.index(b"VP8L") + 8
    assert data[at] == 0x2F
    bits = struct.unpack("<I", data[at + 1: at + 5])[0]
    rest = bits & ~((1 << 28) - 1)
    data[at + 1: at + 5] = struct.pack("<I", rest | (side - 1) | ((side - 1) << 14))
    return bytes(data)


# ------------------------------------------------------------------------------------------------ zips


def make_zip(members: dict[str, bytes] | list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in items:
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return buf.getvalue()


@functools.lru_cache(maxsize=2)
def pixel_bomb_zip(count: int = 12, side: int = 6000) -> bytes:
    """``count`` valid ``side x side`` RGB PNGs (36 megapixels each by default) in one zip of ~1.3 MB."""
    return make_zip([(f"photos/p{i:02d}.png", zero_png(side, side, True, tag=str(i).encode()))
                     for i in range(count)])


def patch_sizes(data: bytes, member: str, file_size: int) -> bytes:
    """Rewrite the uncompressed size a zip declares for ``member`` (local header and central directory)."""
    out = bytearray(data)
    name = member.encode()
    at = 0
    while True:
        local = out.find(b"PK\x03\x04", at)
        if local < 0:
            break
        n, extra = struct.unpack("<HH", out[local + 26: local + 30])
        if bytes(out[local + 30: local + 30 + n]) == name:
            out[local + 22: local + 26] = struct.pack("<I", file_size)
        at = local + 4
    at = 0
    while True:
        central = out.find(b"PK\x01\x02", at)
        if central < 0:
            break
        n = struct.unpack("<H", out[central + 28: central + 30])[0]
        if bytes(out[central + 46: central + 46 + n]) == name:
            out[central + 24: central + 28] = struct.pack("<I", file_size)
        at = central + 4
    return bytes(out)


def set_flag_bits(data: bytes, bits: int) -> bytes:
    """OR ``bits`` into every member's general-purpose flags (bit 0: encrypted)."""
    out = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = 0
        while (at := out.find(sig, at)) >= 0:
            (flags,) = struct.unpack("<H", out[at + off: at + off + 2])
            out[at + off: at + off + 2] = struct.pack("<H", flags | bits)
            at += 4
    return bytes(out)


def set_eocd_count(data: bytes, count: int) -> bytes:
    out = bytearray(data)
    at = out.rfind(b"PK\x05\x06")
    out[at + 8: at + 12] = struct.pack("<HH", count, count)
    return bytes(out)


def zeros_member_zip(name: str = "big.png", mb: int = 200) -> bytes:
    """A zip holding ``mb`` MB of zeros under an image name (honest header): ~200 KB of file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as f:
            block = b"\x00" * (1 << 20)
            for _ in range(mb):
                f.write(block)
    return buf.getvalue()


def lying_zip(mb: int = 200, declared: int = 1000) -> bytes:
    """The same, but the headers say the member holds ``declared`` bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("small.png", date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w") as f:
            block = b"\x00" * (1 << 20)
            for _ in range(mb):
                f.write(block)
    return patch_sizes(buf.getvalue(), "small.png", declared)


# ------------------------------------------------------------------------------------- memory probe
#
# Each case runs in this process after the peak-RSS mark is reset (/proc/self/clear_refs), so its figure is the
# growth of the resident set *during* the case: what an upload costs the server beyond what it already holds.


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _sidebar(data: bytes, name: str, shapes, limits=None) -> str:
    """The sidebar's path: decode_upload, then to_model_input for each model shape; returns the outcome."""
    from explorer.images import ImageError, decode_upload, to_model_input

    try:
        img = decode_upload(data, name, limits=limits)
    except ImageError as exc:
        return f"refused: {exc}"
    for shape, resize in shapes:
        to_model_input(img, shape, resize=resize)
    return f"accepted {img.width}x{img.height}"


def _projections(files, shapes=((3, 224, 224, 256),)) -> str:
    from explorer.images import read_uploads, to_model_input

    images, problems = read_uploads(files)
    for c, h, w, resize in shapes:
        xs = [to_model_input(im, (c, h, w), resize=resize) for im in images]
        del xs
    return f"{len(images)} images, {len(problems)} problems: {problems[:1]}"


SHAPES = [((1, 8, 8), None), ((1, 28, 28), None), ((3, 224, 224), 256)]


def _cases():
    from explorer.images import UploadLimits

    no_aspect = UploadLimits(max_aspect=10**9)
    return {
        "control_300mb": (lambda: None, lambda _: str(np.ones(300 * 2**20 // 8).sum())),
        "strip_20000x1_no_aspect_cap": (lambda: strip_png(20_000, 1),
                                       lambda d: _sidebar(d, "strip.png", SHAPES, no_aspect)),
        "strip_1x20000_no_aspect_cap": (lambda: strip_png(1, 20_000),
                                       lambda d: _sidebar(d, "strip.png", SHAPES, no_aspect)),
        "strip_20000x1": (lambda: strip_png(20_000, 1), lambda d: _sidebar(d, "strip.png", SHAPES)),
        "largest_single_image": (lambda: zero_png(6000, 6000, True), lambda d: _sidebar(d, "big.png", SHAPES)),
        "zip_twelve_36mp_pngs": (lambda: pixel_bomb_zip(), lambda d: _projections([("photos.zip", d)])),
        "set_at_decoded_limit": (lambda: make_zip([(f"p{i}.png", zero_png(6000, 6000, True, tag=b"%d" % i))
                                                   for i in range(3)]),
                                 lambda d: _projections([("three.zip", d)])),
        "zip_member_200mb_zeros": (lambda: zeros_member_zip(), lambda d: _projections([("bomb.zip", d)])),
        "zip_lying_header": (lambda: lying_zip(), lambda d: _projections([("liar.zip", d)])),
        "png_idat_bomb": (lambda: idat_bomb_png(), lambda d: _sidebar(d, "idat.png", SHAPES)),
        "png_ztxt_bomb": (lambda: text_bomb_png(b"zTXt"), lambda d: _sidebar(d, "ztxt.png", SHAPES)),
        "png_iccp_bomb": (lambda: text_bomb_png(b"iCCP"), lambda d: _sidebar(d, "iccp.png", SHAPES)),
        "gif_small_screen_huge_frame": (lambda: gif_bomb(30_000, 30_000, screen=(10, 10)),
                                        lambda d: _sidebar(d, "frame.gif", SHAPES)),
    }


def measure(names: list[str]) -> dict[str, dict]:
    cases = _cases()
    out = {}
    for name in names:
        build, run = cases[name]
        data = build()
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
        base = _status_kb("VmRSS")
        outcome = run(data)
        peak = _status_kb("VmHWM")
        out[name] = {"extra_mb": round((peak - base) / 1024, 1), "outcome": " ".join(str(outcome).split())[:300],
                     "upload_mb": round(len(data or b"") / 2**20, 3)}
        del data
        gc.collect()
    return out


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1:] or list(_cases()))))
