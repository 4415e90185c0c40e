"""Uploaded images and zip archives, bounded in bytes, pixels and memory *before* anything is decoded.

Two entry points, one for each place the app takes images from a visitor:

* :func:`decode_upload` (the sidebar's "upload an image"): one file -> a :class:`LoadedImage`.
* :func:`read_uploads` (the Projections page and the Robustness lab): several files and/or zip archives of
  images -> the decoded images plus ``(name, reason)`` for every file that was not used;
  :func:`read_model_inputs` adds the conversion to a model's input (the sidebar's, one preallocated batch).

Every limit comes from :class:`UploadLimits` (by default the server's settings, :func:`explorer.config.get_settings`)
and every refusal is an :class:`ImageError` or a problem line that names its ``EXPLORER_*`` setting:

==============================  =======================================================================
``EXPLORER_MAX_UPLOAD_MB``       one file's bytes (an uploaded file, or one member of a zip, uncompressed)
``EXPLORER_MAX_TOTAL_UPLOAD_MB`` all files of one upload together (zip members counted uncompressed)
``EXPLORER_MAX_SOURCE_PIXELS``   one image's declared width x height (decompression bombs)
``EXPLORER_MAX_SIDE``            one image's longest side
``EXPLORER_MAX_ASPECT``          longest / shortest side (thin strips that a resize would stretch)
``EXPLORER_MAX_DECODED_MB``      the decoded pixels of all images of one upload together (H x W x C bytes)
``EXPLORER_MAX_ZIP_FILES``       entries of one zip archive
``EXPLORER_MAX_SET_IMAGES``      images taken from one upload (the rest are reported, not decoded)
==============================  =======================================================================

How a set is read (:func:`read_uploads`), so that no limit is checked after the memory it protects is spent:

1. **Listing, nothing decompressed.** Each file's size is checked. A zip's entry count is read from its end
   record before Python's ``zipfile`` parses the directory. Members are filtered by name: folders, hidden
   files and macOS resource forks are skipped silently; absolute or ``..`` names (path traversal), nested
   archives, encrypted members and non-image names are reported. A member whose *declared* size is over the
   one-file limit is refused, and the declared total of everything is checked against the upload limit.
2. **Headers, no pixel decoded.** Each candidate is read (zip members with a bounded read that stops one byte
   past the declared size and the limits, whatever the header says; a member that holds more or less than it
   declares is refused as lying) and its image header is checked (:func:`explorer.images.decode.probe_image`).
   The decoded size of the whole set is summed from the headers: over ``EXPLORER_MAX_DECODED_MB`` the upload
   is refused as a whole, before a single image is decoded.
3. **Decoding**, one image at a time, through :func:`decode_upload` (cached by content digest).

Nothing from an archive is ever written to disk, so a traversal name cannot reach the file system; it is
reported so the user knows the member was not used.

**Cache.** Decoded images are kept in a process-wide :class:`DecodedCache`, an LRU keyed by the sha256 of the
file's bytes and bounded in bytes (``EXPLORER_MAX_DECODED_MB``), so a rerun (every widget change reruns the
page) hashes the bytes and finds the pixels instead of decoding again. A library LRU is used rather than
``st.cache_data`` because ``st.cache_data`` pickles its result and returns a fresh copy of every array on every
hit (a 400 MB set would be copied on each rerun) and bounds entries, not bytes; the cached
:class:`LoadedImage` arrays are read-only, so one copy can be shared by every session.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from struct import error as struct_error

import numpy as np

from explorer.config import Settings, get_settings
from explorer.images.core import ImageError, LoadedImage
from explorer.images.decode import ACCEPTED_TEXT, ImageInfo, check_size, decode_image, probe_image

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp", "gif")
ARCHIVE_EXTENSIONS = ("zip",)
UPLOAD_TYPES = [*IMAGE_EXTENSIONS, *ARCHIVE_EXTENSIONS]
MB = 1024 * 1024  # Streamlit's maxUploadSize counts MB the same way
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """The limits of one upload (see the module's table). :meth:`from_settings` reads the server's."""

    max_upload_mb: int = 20
    max_total_upload_mb: int = 200
    max_source_pixels: int = 40_000_000
    max_side: int = 20_000
    max_aspect: int = 20
    max_decoded_mb: int = 400
    max_zip_files: int = 2000
    max_set_images: int = 2000

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> UploadLimits:
        s = settings or get_settings()
        return cls(max_upload_mb=s.max_upload_mb, max_total_upload_mb=s.max_total_upload_mb,
                   max_source_pixels=s.max_source_pixels, max_side=s.max_side, max_aspect=s.max_aspect,
                   max_decoded_mb=s.max_decoded_mb, max_zip_files=s.max_zip_files,
                   max_set_images=s.max_set_images)

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * MB

    @property
    def max_total_bytes(self) -> int:
        return self.max_total_upload_mb * MB

    @property
    def max_decoded_bytes(self) -> int:
        return self.max_decoded_mb * MB


# ------------------------------------------------------------------------------------------------ cache


class DecodedCache:
    """A thread-safe LRU of decoded uploads, bounded in bytes.

    Keys are content digests (``("ok", sha256)``) or, for refusals, ``("error", sha256, name, limits)``. An
    entry larger than the whole budget is not kept. ``hits`` / ``misses`` count lookups (for tests and
    benchmarks).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> object | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: tuple, value: object, nbytes: int) -> None:
        nbytes = max(1, int(nbytes))
        if nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes and self._entries:
                _, (_, n) = self._entries.popitem(last=False)
                self._bytes -= n

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


_CACHE: DecodedCache | None = None
_CACHE_LOCK = threading.Lock()


def decoded_cache() -> DecodedCache:
    """The process-wide cache of decoded uploads (``EXPLORER_MAX_DECODED_MB`` bytes, read at first use)."""
    global _CACHE
    with _CACHE_LOCK:
        if _CACHE is None:
            _CACHE = DecodedCache(get_settings().max_decoded_mb * MB)
        return _CACHE


# ------------------------------------------------------------------------------------------- one image


def _mb(n: int) -> str:
    return f"{n / MB:,.1f} MB" if n < 10 * MB else f"{n / MB:,.0f} MB"


def clean_name(name: str, limit: int = 120) -> str:
    """A file or member name safe to put in a one-line message: control characters become ``?``, long names are
    cut in the middle."""
    text = "".join(c if c.isprintable() else "?" for c in str(name or ""))
    if len(text) > limit:
        text = text[: limit // 2 - 1] + "…" + text[-(limit // 2):]
    return text or "upload"


def _check_file_size(n: int, label: str, limits: UploadLimits) -> None:
    if n > limits.max_upload_bytes:
        raise ImageError(f"{label} is {_mb(n)}, over the {limits.max_upload_mb} MB limit for one file "
                         "(EXPLORER_MAX_UPLOAD_MB).")


def decode_upload(data: bytes, name: str = "upload", limits: UploadLimits | None = None,
                  cache: DecodedCache | None = None) -> LoadedImage:
    """One uploaded image file -> :class:`LoadedImage`, within ``limits`` (default: the server's settings).

    The file size is checked first, then the header (pixels, longest side, aspect ratio), then the image is
    decoded; the result (or the refusal) is cached by the sha256 of the bytes, so the same upload on a rerun
    is not decoded again. A cached image is still checked against the current limits.

    Raises:
        ImageError: one line naming the file and, for a limit, its ``EXPLORER_*`` setting.
    """
    limits = limits or UploadLimits.from_settings()
    cache = decoded_cache() if cache is None else cache
    name = clean_name(name)
    label = f"'{name}'"
    data = b"" if data is None else (data if isinstance(data, bytes) else bytes(data))
    _check_file_size(len(data), label, limits)
    digest = hashlib.sha256(data).hexdigest()
    hit = cache.get(("ok", digest))
    if isinstance(hit, LoadedImage):
        check_size(hit.width, hit.height, label, max_pixels=limits.max_source_pixels, max_side=limits.max_side,
                   max_aspect=limits.max_aspect)
        return hit if hit.name == name else dataclasses.replace(hit, name=name)
    error_key = ("error", digest, name, limits)
    refused = cache.get(error_key)
    if isinstance(refused, str):
        raise ImageError(refused)
    try:
        img = decode_image(data, name, max_pixels=limits.max_source_pixels, max_side=limits.max_side,
                           max_aspect=limits.max_aspect)
    except ImageError as exc:
        cache.put(error_key, str(exc), 512 + len(str(exc)))
        raise
    cache.put(("ok", digest), img, img.pixels.nbytes)
    return img


def to_model_batch(images: Sequence[LoadedImage], input_shape: tuple[int, int, int],
                   resize: int | None = None) -> np.ndarray:
    """The images in a model's input, ``N x C x H x W`` float32, written into one preallocated array (no
    list of per-image arrays stacked into a second copy: the batch's size is the only memory it takes)."""
    from explorer.images.preprocess import to_model_input

    shape = tuple(int(v) for v in input_shape)
    out = np.empty((len(images), *shape), np.float32)
    for i, im in enumerate(images):
        out[i] = to_model_input(im, shape, resize=resize)
    return out


def model_input_bytes(count: int, input_shape: Sequence[int]) -> int:
    """Bytes of ``count`` images in a model's input (float32)."""
    return int(count) * int(np.prod([int(v) for v in input_shape])) * 4


# ---------------------------------------------------------------------------------------------- a set


@dataclass(frozen=True)
class _Candidate:
    """An image file of the set, not yet decoded: its label and how to get its bytes."""

    label: str
    read: Callable[[], bytes]  # may raise ImageError (a zip member that lies about its size)
    declared: int  # bytes, as declared (exact for a plain file)


def _extension(name: str) -> str:
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _is_archive(name: str, data: bytes) -> bool:
    return _extension(name) in ARCHIVE_EXTENSIONS or data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _unsafe_path(filename: str) -> bool:
    """Absolute paths, drive letters and ``..`` components: names that would escape an extraction folder."""
    path = filename.replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return True
    return any(part == ".." for part in path.split("/"))


def _zip_entry_count(data: bytes) -> int | None:
    """The entry count of a zip's end-of-central-directory record (zip64 included), read before ``zipfile``
    builds an object for every entry; None when there is no such record."""
    try:
        endrec = zipfile._EndRecData(io.BytesIO(data))  # noqa: SLF001 - the stdlib's own EOCD reader
    except (OSError, ValueError, zipfile.BadZipFile, struct_error):
        return None
    if not endrec:
        return None
    return int(endrec[zipfile._ECD_ENTRIES_TOTAL])  # noqa: SLF001


def _bounded_read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, limit: int) -> bytes:
    """A member's bytes, never more than ``limit`` + 1 of them decompressed, whatever its header declares.

    Refused (ImageError) when it holds more than ``limit`` (a zip bomb or a header that lies), or not exactly
    the declared size (a lying header), or cannot be extracted (bad CRC, encryption, unknown compression).
    """
    cap = min(limit, info.file_size)
    chunks: list[bytes] = []
    got = 0
    try:
        with archive.open(info) as member:
            while got <= cap:
                chunk = member.read(min(_READ_CHUNK, cap + 1 - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, NotImplementedError, RuntimeError,
            EOFError, struct_error) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if "crc" in detail.lower():  # zipfile stops at the declared size, then the checksum fails
            raise ImageError(f"{label}: its data does not match the archive's header ({detail}); a header that "
                             "lies about the size (possible zip bomb) or a corrupt archive is refused.") from exc
        raise ImageError(f"{label} could not be extracted from the archive ({detail}).") from exc
    if got > cap or got != info.file_size:
        raise ImageError(f"{label}: the archive declares {info.file_size:,} bytes for this file but it holds "
                         f"{'more' if got > cap else f'{got:,}'}; a header that lies is refused (possible zip bomb).")
    return b"".join(chunks)


def _list_archive(name: str, data: bytes, limits: UploadLimits, problems: list[tuple[str, str]],
                  archives: list[zipfile.ZipFile]) -> list[_Candidate]:
    """The image members of one zip as candidates (nothing decompressed); everything refused goes to
    ``problems``."""
    count = _zip_entry_count(data)
    if count is None:
        problems.append((name, "not a readable zip archive (no end-of-archive record; truncated or corrupt)"))
        return []
    if count > limits.max_zip_files:
        problems.append((name, f"the archive has {count:,} entries, over the limit of {limits.max_zip_files:,} "
                               "(EXPLORER_MAX_ZIP_FILES); nothing in it was read"))
        return []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
            struct_error) as exc:
        problems.append((name, f"not a readable zip archive ({' '.join(str(exc).split()) or type(exc).__name__})"))
        return []
    if len(members) > limits.max_zip_files:  # the end record understated it
        archive.close()
        problems.append((name, f"the archive has {len(members):,} entries, over the limit of "
                               f"{limits.max_zip_files:,} (EXPLORER_MAX_ZIP_FILES); nothing in it was read"))
        return []
    archives.append(archive)
    out: list[_Candidate] = []
    for info in members:
        filename = info.filename
        base = filename.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        if info.is_dir() or not base or base.startswith(".") or "__MACOSX/" in filename.replace("\\", "/"):
            continue
        label = clean_name(f"{name}/{filename}", 160)
        ext = _extension(filename)
        if _unsafe_path(filename):
            problems.append((label, "ignored: an absolute or '..' path inside the archive (path traversal); "
                                    "nothing is ever extracted to disk"))
        elif ext in ARCHIVE_EXTENSIONS or ext in ("gz", "tgz", "tar", "7z", "rar", "bz2", "xz"):
            problems.append((label, "not opened: archives inside the archive are not read (upload one level of "
                                    "folders)"))
        elif ext not in IMAGE_EXTENSIONS:
            problems.append((label, f"not an image file (expected {ACCEPTED_TEXT})"))
        elif info.flag_bits & 0x1:
            problems.append((label, "encrypted: password-protected archives are not read"))
        elif info.file_size > limits.max_upload_bytes:
            problems.append((label, f"{_mb(info.file_size)} uncompressed, over the {limits.max_upload_mb} MB "
                                    "limit for one file (EXPLORER_MAX_UPLOAD_MB)"))
        else:
            cap = limits.max_upload_bytes
            out.append(_Candidate(label, lambda a=archive, i=info, lb=label, c=cap: _bounded_read(a, i, lb, c),
                                  int(info.file_size)))
    return out


def _refuse_all(files: Sequence[tuple[str, bytes]], problems: list[tuple[str, str]], reason: str):
    who = clean_name(files[0][0]) if len(files) == 1 else f"all {len(files)} files"
    problems.append((who, reason))
    return [], problems


def read_uploads(files: Sequence[tuple[str, bytes]], limits: UploadLimits | None = None,
                 cache: DecodedCache | None = None, input_shape: Sequence[int] | None = None, *,
                 max_images: int | None = None) -> tuple[list[LoadedImage], list[tuple[str, str]]]:
    """Decode uploaded files (images, or zip archives of images) within ``limits`` (default: the settings).

    Returns the decoded images (in upload order, zip members in archive order, named ``archive.zip/member``)
    and ``(name, reason)`` for every file that was not used, each reason one line naming the limit's
    ``EXPLORER_*`` setting where a limit refused it. Over the total-bytes or the decoded-pixels limit the whole
    upload is refused (no image is decoded) with one reason. See the module docstring for the order of checks.

    With ``input_shape`` (the model's ``(C, H, W)``), the float32 model inputs the images will become count
    against ``EXPLORER_MAX_DECODED_MB`` too: 2,000 tiny PNGs are a few KB of pixels but 1.2 GB as 3 x 224 x 224
    inputs. ``max_images`` overrides ``EXPLORER_MAX_SET_IMAGES``.

    Not an ``st.cache_data`` entry on purpose: decoded images are cached by content digest in the byte-bounded
    LRU (:func:`decoded_cache`), which shares one read-only copy between reruns and sessions, where
    ``st.cache_data`` would unpickle a fresh copy of every array on each rerun.
    """
    limits = limits or UploadLimits.from_settings()
    if max_images is not None:
        limits = dataclasses.replace(limits, max_set_images=int(max_images))
    cache = decoded_cache() if cache is None else cache
    problems: list[tuple[str, str]] = []
    candidates: list[_Candidate] = []
    archives: list[zipfile.ZipFile] = []
    files = [(clean_name(n), d if isinstance(d, bytes) else bytes(d or b"")) for n, d in files]
    try:
        # 1. listing: sizes, names, entry counts; nothing decompressed
        for name, data in files:
            if len(data) > limits.max_upload_bytes:
                problems.append((name, f"{_mb(len(data))}, over the {limits.max_upload_mb} MB limit for one file "
                                       "(EXPLORER_MAX_UPLOAD_MB)"))
            elif _is_archive(name, data):
                before = len(problems)
                found = _list_archive(name, data, limits, problems, archives)
                if not found and len(problems) == before:
                    problems.append((name, f"the archive holds no images ({ACCEPTED_TEXT})"))
                candidates += found
            else:
                candidates.append(_Candidate(name, lambda d=data: d, len(data)))
        if len(candidates) > limits.max_set_images:
            for c in candidates[limits.max_set_images:]:
                problems.append((c.label, f"not used: only the first {limits.max_set_images:,} images of an "
                                          "upload are taken (EXPLORER_MAX_SET_IMAGES)"))
            candidates = candidates[: limits.max_set_images]
        declared = sum(c.declared for c in candidates)
        if declared > limits.max_total_bytes:
            return _refuse_all(files, problems, (
                f"the {len(candidates):,} images are {_mb(declared)} (uncompressed) together, over the "
                f"{limits.max_total_upload_mb} MB limit for one upload (EXPLORER_MAX_TOTAL_UPLOAD_MB); nothing "
                "was decoded: upload fewer or smaller files"))

        # 2. headers: bounded reads, no pixel decoded
        infos: list[tuple[_Candidate, ImageInfo]] = []
        for c in candidates:
            try:
                infos.append((c, probe_image(c.read(), c.label, max_pixels=limits.max_source_pixels,
                                             max_side=limits.max_side, max_aspect=limits.max_aspect)))
            except ImageError as exc:
                problems.append((c.label, str(exc)))
        decoded = sum(info.decoded_bytes for _, info in infos)
        if input_shape is not None:
            decoded += model_input_bytes(len(infos), input_shape)
        if decoded > limits.max_decoded_bytes:
            pixels = sum(info.pixels for _, info in infos)
            return _refuse_all(files, problems, (
                f"the {len(infos):,} images declare {pixels / 1e6:,.0f} megapixels, {_mb(decoded)} once decoded"
                f"{' and resized for the model' if input_shape is not None else ''}, "
                f"over the {limits.max_decoded_mb} MB limit for one upload (EXPLORER_MAX_DECODED_MB); nothing "
                "was decoded: upload fewer or smaller images"))

        # 3. decoding, one at a time, cached by content digest
        images: list[LoadedImage] = []
        total = 0
        for c, _ in infos:
            try:
                img = decode_upload(c.read(), c.label, limits=limits, cache=cache)
            except ImageError as exc:
                problems.append((c.label, str(exc)))
                continue
            total += img.pixels.nbytes
            if total > limits.max_decoded_bytes:  # a file whose pixels differ from its header
                problems.append((c.label, f"not used: the decoded images exceed the {limits.max_decoded_mb} MB "
                                          "limit for one upload (EXPLORER_MAX_DECODED_MB)"))
                break
            images.append(img)
        return images, problems
    finally:
        for a in archives:
            a.close()


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """An upload read by :func:`read_uploads` and converted to one model's input."""

    images: tuple[LoadedImage, ...]  # the decoded images, in upload order
    x: np.ndarray  # N x C x H x W float32 in [0, 1]: the images in the model's input
    problems: tuple[tuple[str, str], ...]  # (name, one-line reason) for every file that was not used

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(im.name for im in self.images)


def read_model_inputs(files: Sequence[tuple[str, bytes]], input_shape: Sequence[int], *, resize: int | None = None,
                      limits: UploadLimits | None = None, cache: DecodedCache | None = None,
                      max_images: int | None = None) -> ModelInputs:
    """:func:`read_uploads` (every limit, the zip checks, the decoded cache; the model inputs counted against
    ``EXPLORER_MAX_DECODED_MB``), then :func:`to_model_batch`: the sidebar's conversion, with the model's
    ``resize`` (e.g. 256 before a 224 crop)."""
    shape = tuple(int(v) for v in input_shape)
    images, problems = read_uploads(files, limits, cache, input_shape=shape, max_images=max_images)
    return ModelInputs(tuple(images), to_model_batch(images, shape, resize=resize), tuple(problems))
