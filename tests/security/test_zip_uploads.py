"""Hostile zip archives on the Projections page's path (``explorer.caching.projections.read_uploads``, which
the page calls with the uploaded files): bombs, traversal names, lying headers, pixel bombs, too many members,
nested archives, non-image members. Each refusal is one line (naming its ``EXPLORER_*`` setting where a limit
refused it) and good images, in the same upload or the next one, still work."""

from __future__ import annotations

import time
import tracemalloc
import zipfile

import pytest

from explorer.caching.projections import read_uploads
from explorer.images import UploadLimits
from explorer.images.uploads import decoded_cache
from tests.security.hostile import (
    good_png,
    lying_zip,
    make_zip,
    patch_sizes,
    pixel_bomb_zip,
    set_eocd_count,
    set_flag_bits,
    zero_png,
    zeros_member_zip,
)


def read(files, **kw):
    images, problems = read_uploads(files, **kw)
    for name, reason in problems:
        assert "\n" not in name and "\n" not in reason and "Traceback" not in reason, (name, reason)
    return images, dict(problems)


def still_works():
    images, problems = read([("ok.zip", make_zip({"d/a.png": good_png(10), "d/b.png": good_png(20)}))])
    assert [im.name for im in images] == ["ok.zip/d/a.png", "ok.zip/d/b.png"] and problems == {}


def test_pixel_bomb_zip_is_refused_from_the_headers_before_decoding():
    data = pixel_bomb_zip()  # twelve valid 6000 x 6000 RGB PNGs: 1.2 GB once decoded
    assert len(data) < 2 * 2**20
    tracemalloc.start()
    start = time.perf_counter()
    try:
        images, problems = read([("photos.zip", data)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert images == [] and list(problems) == ["photos.zip"]
    msg = problems["photos.zip"]
    assert "12 images declare 432 megapixels" in msg and "EXPLORER_MAX_DECODED_MB" in msg
    assert "nothing was decoded" in msg
    assert peak < 50 * 2**20 and len(decoded_cache()) == 0  # no image was decoded
    assert time.perf_counter() - start < 30  # (56 s and 3 GB before; a loose bound on a shared machine)
    still_works()


def test_decoded_limit_follows_the_setting_and_counts_several_files_together(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_DECODED_MB", "5")
    files = [(f"{i}.png", zero_png(1000, 1000, False, tag=b"%d" % i)) for i in range(6)]  # 6 x 1 MB grey
    images, problems = read(files)
    assert images == [] and "5 MB limit for one upload (EXPLORER_MAX_DECODED_MB)" in problems["all 6 files"]
    images, problems = read(files[:4])
    assert len(images) == 4 and problems == {}


def test_model_inputs_count_against_the_decoded_limit_when_the_shape_is_given(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_DECODED_MB", "20")
    zipped = make_zip([(f"t/{i}.png", good_png(i % 250 + 1, 8)) for i in range(40)])  # 40 tiny PNGs
    images, problems = read([("tiny.zip", zipped)])
    assert len(images) == 40 and problems == {}  # a few KB of pixels
    images, problems = read([("tiny.zip", zipped)], input_shape=(3, 224, 224))  # 40 x 0.6 MB of model input
    assert images == [] and "resized for the model" in problems["tiny.zip"]
    images, _ = read([("tiny.zip", zipped)], input_shape=(1, 28, 28))
    assert len(images) == 40


def test_zip_bomb_member_is_refused_from_its_declared_size():
    data = zeros_member_zip("big.png", 200)  # 200 MB of zeros in a ~200 KB archive
    images, problems = read([("bomb.zip", data)])
    assert images == [] and "200 MB uncompressed" in problems["bomb.zip/big.png"]
    assert "EXPLORER_MAX_UPLOAD_MB" in problems["bomb.zip/big.png"]
    still_works()


def test_lying_header_is_read_no_further_than_it_declares():
    tracemalloc.start()
    try:
        images, problems = read([("liar.zip", lying_zip(200, declared=1000))])  # says 1,000 bytes, holds 200 MB
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert images == [] and "does not match the archive's header" in problems["liar.zip/small.png"]
    assert peak < 20 * 2**20
    still_works()


def test_header_that_declares_more_than_it_holds():
    data = patch_sizes(make_zip({"a.png": good_png(50)}), "a.png", 5000)
    images, problems = read([("short.zip", data)])
    assert images == [] and "short.zip/a.png" in problems
    assert "header" in problems["short.zip/a.png"] or "extracted" in problems["short.zip/a.png"]


def test_declared_total_over_the_upload_limit_refuses_everything(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_TOTAL_UPLOAD_MB", "1")
    blob = good_png(7) + b"\x00" * 400_000  # a valid PNG padded to 0.4 MB (compresses to almost nothing)
    data = make_zip([(f"p{i}.png", blob) for i in range(3)])
    assert len(data) < 100_000
    images, problems = read([("fat.zip", data)])
    assert images == [] and "1 MB limit for one upload (EXPLORER_MAX_TOTAL_UPLOAD_MB)" in problems["fat.zip"]


@pytest.mark.parametrize("member", ["../../etc/passwd.png", "/abs/evil.png", "C:\\win\\evil.png",
                                    "a/../../b.png", "..\\up.png"])
def test_traversal_names_are_reported_and_the_good_members_used(member, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = make_zip([(member, good_png(90)), ("ok/a.png", good_png(30))])
    images, problems = read([("trav.zip", data)])
    assert [im.name for im in images] == ["trav.zip/ok/a.png"]
    (label, reason), = problems.items()
    assert "path traversal" in reason and label.startswith("trav.zip/")
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "b.png").exists()  # nothing written


def test_too_many_members_is_refused_before_the_directory_is_parsed(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_ZIP_FILES", "10")
    data = make_zip([(f"f{i}.png", good_png(5, 8)) for i in range(11)])
    images, problems = read([("many.zip", data)])
    assert images == [] and "11 entries, over the limit of 10 (EXPLORER_MAX_ZIP_FILES)" in problems["many.zip"]
    # an end record that understates the count is caught when the directory is read
    images, problems = read([("sly.zip", set_eocd_count(data, 1))])
    assert images == [] and "EXPLORER_MAX_ZIP_FILES" in problems["sly.zip"]
    still_works()


def test_default_member_limit_with_thousands_of_empty_entries():
    data = make_zip([(f"e/{i}.png", b"") for i in range(2001)], compression=zipfile.ZIP_STORED)
    images, problems = read([("empty-entries.zip", data)])
    assert images == [] and "2,001 entries, over the limit of 2,000" in problems["empty-entries.zip"]


def test_more_images_than_a_set_takes(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_SET_IMAGES", "3")
    data = make_zip([(f"s/{i}.png", good_png(i + 1, 8)) for i in range(5)])
    images, problems = read([("five.zip", data)])
    assert len(images) == 3 and set(problems) == {"five.zip/s/3.png", "five.zip/s/4.png"}
    assert all("EXPLORER_MAX_SET_IMAGES" in r for r in problems.values())


def test_nested_archives_are_not_opened():
    inner = make_zip({"deep.png": good_png(60)})
    data = make_zip([("inner.zip", inner), ("disguised.png", inner), ("x.tar.gz", b"\x1f\x8b junk"),
                     ("ok.png", good_png(70))])
    images, problems = read([("outer.zip", data)])
    assert [im.name for im in images] == ["outer.zip/ok.png"]
    assert "archives inside the archive are not read" in problems["outer.zip/inner.zip"]
    assert "ZIP archive" in problems["outer.zip/disguised.png"]  # found by its bytes, not opened
    assert "archives inside" in problems["outer.zip/x.tar.gz"]


def test_non_image_members_and_junk_are_reported_or_skipped():
    data = make_zip([("d/notes.txt", b"hello"), ("d/page.html", b"<script>alert(1)</script>"),
                     ("d/.DS_Store", b"junk"), ("__MACOSX/d/._a.png", b"junk"), ("d/sub/", b""),
                     ("d/fake.png", b"<html>not an image</html>"), ("d/a.png", good_png(80))])
    images, problems = read([("mixed.zip", data)])
    assert [im.name for im in images] == ["mixed.zip/d/a.png"]
    assert set(problems) == {"mixed.zip/d/notes.txt", "mixed.zip/d/page.html", "mixed.zip/d/fake.png"}
    assert "not an image file" in problems["mixed.zip/d/page.html"]
    assert "HTML/XML document" in problems["mixed.zip/d/fake.png"]


def test_encrypted_members_are_refused():
    data = set_flag_bits(make_zip({"secret.png": good_png(40)}), 0x1)
    images, problems = read([("locked.zip", data)])
    assert images == [] and "encrypted" in problems["locked.zip/secret.png"]


@pytest.mark.parametrize("data,fragment", [
    (b"PK\x03\x04 truncated", "not a readable zip archive"),
    (make_zip({"a.png": good_png()})[:-30], "not a readable zip archive"),
    (make_zip({}), "the archive holds no images"),
    (make_zip({"only/": b""}), "the archive holds no images"),
])
def test_broken_and_empty_archives(data, fragment):
    images, problems = read([("x.zip", data)])
    assert images == [] and fragment in problems["x.zip"]
    still_works()


def test_corrupt_member_data():
    data = bytearray(make_zip({"a.png": good_png(90, 64)}, compression=zipfile.ZIP_STORED))
    at = data.index(b"IDAT") + 8
    data[at] ^= 0xFF
    images, problems = read([("crc.zip", bytes(data))])
    assert images == [] and "crc.zip/a.png" in problems


def test_control_characters_in_member_names_stay_on_one_line():
    data = make_zip([("evil\nname\x1b.png", b"nope"), ("ok.png", good_png(5))])
    images, problems = read([("c.zip", data)])
    assert len(images) == 1 and list(problems) == ["c.zip/evil?name?.png"]


def test_files_and_archives_together_keep_upload_order():
    files = [("one.png", good_png(1)), ("set.zip", make_zip({"a.png": good_png(2), "b.txt": b"x"})),
             ("two.png", good_png(3)), ("broken.jpg", b"\xff\xd8\xff" + b"\x00" * 20)]
    images, problems = read(files)
    assert [im.name for im in images] == ["one.png", "set.zip/a.png", "two.png"]
    assert set(problems) == {"set.zip/b.txt", "broken.jpg"}


def test_a_rerun_finds_the_decoded_images_in_the_cache():
    files = [("set.zip", make_zip({f"{i}.png": good_png(i + 10) for i in range(4)}))]
    first, _ = read(files)
    cache = decoded_cache()
    hits = cache.hits
    again, _ = read(files)
    assert cache.hits - hits == 4 and all(a.pixels is b.pixels for a, b in zip(first, again))


def test_limits_object_overrides_settings():
    data = make_zip([(f"{i}.png", good_png(i + 1, 8)) for i in range(3)])
    images, problems = read([("l.zip", data)], limits=UploadLimits(max_zip_files=2))
    assert images == [] and "EXPLORER_MAX_ZIP_FILES" in problems["l.zip"]
