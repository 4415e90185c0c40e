"""The offline sample gallery: photos shipped inside installed packages, and dataset samples.

Sample ids (also used in URLs, e.g. ``?image=digits:123``):

* ``photo:<name>``: scikit-image's chelsea, coffee, astronaut and rocket; scikit-learn's china and
  flower; matplotlib's grace_hopper when matplotlib is installed. The files are read from the
  installed packages' folders, so listing them imports nothing heavy and nothing is downloaded.
* ``digits:<i>``: image ``i`` of the *held-out test split* of scikit-learn's 8x8 digits
  (``explorer.models.data.load_digits_split().x_test[i]``). Display pixels are ``round(x * 255)``;
  the exact ``k / 16`` values ride along in :attr:`LoadedImage.exact`, so ``to_model_input`` gives the
  model exactly what it was evaluated on.
* ``mnist:<i>``: image ``i`` of MNIST's 10,000-image test split when MNIST is on this machine. Indices
  ``>= 8000`` are the part the built-in MNIST models never trained on; the curated gallery uses only
  those, but every index ``0..9999`` loads.

:func:`list_samples` gives a curated gallery (two images per class for digits and MNIST); :func:`load_sample`
accepts any valid id. Loaded samples are cached (they are immutable).
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.images.core import LoadedImage, make_loaded

KINDS = ("photo", "digits", "mnist")
PER_CLASS = 2
MNIST_HELD_OUT_START = 8000

# The first image of the held-out digits split (a "7"); it is in the curated gallery (tests check it).
DEFAULT_SAMPLE = "digits:0"


@dataclass(frozen=True)
class Sample:
    """One entry of the gallery: ``id`` for :func:`load_sample`, a display ``name``, its ``kind``
    (``"photo"``, ``"digits"`` or ``"mnist"``) and the true class index for dataset samples."""

    id: str
    name: str
    kind: str
    label: int | None


class SampleNotFound(KeyError):
    """An unknown or unavailable sample id; ``str(err)`` is the plain message (no KeyError quoting)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class _Photo:
    key: str
    package: str
    relative: str
    credit: str


_PHOTOS = (
    _Photo("chelsea", "skimage", "data/chelsea.png", "scikit-image"),
    _Photo("coffee", "skimage", "data/coffee.png", "scikit-image"),
    _Photo("astronaut", "skimage", "data/astronaut.png", "scikit-image"),
    _Photo("rocket", "skimage", "data/rocket.jpg", "scikit-image"),
    _Photo("china", "sklearn", "datasets/images/china.jpg", "scikit-learn"),
    _Photo("flower", "sklearn", "datasets/images/flower.jpg", "scikit-learn"),
    _Photo("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "matplotlib"),
)
_PHOTO_BY_KEY = {p.key: p for p in _PHOTOS}


def _photo_path(photo: _Photo) -> Path | None:
    """The sample file inside its installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(photo.package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / photo.relative
        if path.is_file():
            return path
    return None


def _photo_name(photo: _Photo) -> str:
    return f"{photo.key.replace('_', ' ')} ({photo.credit})"


@functools.lru_cache(maxsize=1)
def _digits_test() -> tuple[np.ndarray, np.ndarray]:
    from explorer.models.data import load_digits_split

    split = load_digits_split()
    x = np.ascontiguousarray(split.x_test, dtype=np.float32)
    y = np.asarray(split.y_test, dtype=np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def _mnist_folder() -> Path | None:
    from explorer.models.data import find_mnist

    return find_mnist()


@functools.lru_cache(maxsize=2)
def _mnist_arrays(folder: str) -> tuple[np.ndarray, np.ndarray]:
    from explorer.models.data import load_mnist_arrays

    images, labels = load_mnist_arrays()
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _mnist() -> tuple[np.ndarray, np.ndarray] | None:
    folder = _mnist_folder()
    return None if folder is None else _mnist_arrays(str(folder))


def _curate(labels: np.ndarray, start: int = 0) -> list[int]:
    """The first ``PER_CLASS`` indices (``>= start``) of each class, ordered by class then index."""
    out: list[int] = []
    for cls in range(10):
        idx = np.flatnonzero(labels[start:] == cls)[:PER_CLASS] + start
        out.extend(int(i) for i in idx)
    return out


def _digits_name(i: int, label: int) -> str:
    return f"digit {label} (digits test #{i})"


def _mnist_name(i: int, label: int) -> str:
    return f"digit {label} (MNIST #{i})"


def list_samples(kind: str | None = None) -> list[Sample]:
    """The curated gallery available on this machine, photos first, then digits, then MNIST.

    ``kind`` filters to ``"photo"``, ``"digits"`` or ``"mnist"``; MNIST entries appear only when MNIST is
    present (``explorer.models.data.find_mnist()``).
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; expected one of {', '.join(KINDS)}")
    out: list[Sample] = []
    if kind in (None, "photo"):
        out += [Sample(f"photo:{p.key}", _photo_name(p), "photo", None) for p in _PHOTOS if _photo_path(p)]
    if kind in (None, "digits"):
        _, y = _digits_test()
        out += [Sample(f"digits:{i}", _digits_name(i, int(y[i])), "digits", int(y[i])) for i in _curate(y)]
    if kind in (None, "mnist"):
        mnist = _mnist()
        if mnist is not None:
            _, y = mnist
            out += [Sample(f"mnist:{i}", _mnist_name(i, int(y[i])), "mnist", int(y[i]))
                    for i in _curate(y, MNIST_HELD_OUT_START)]
    return out


_ID = re.compile(r"^(photo|digits|mnist):([A-Za-z0-9_]{1,32})$")


def parse_sample_id(sample_id: str) -> tuple[str, str]:
    """Split ``"kind:key"``; raises :class:`SampleNotFound` for anything malformed."""
    m = _ID.match(sample_id.strip()) if isinstance(sample_id, str) else None
    if m is None:
        raise SampleNotFound(f"unknown sample {sample_id!r}: expected 'photo:<name>', 'digits:<index>' "
                             "or 'mnist:<index>'")
    return m.group(1), m.group(2)


def _index(kind: str, key: str, count: int) -> int:
    if not key.isascii() or not key.isdigit():
        raise SampleNotFound(f"unknown sample '{kind}:{key}': the part after '{kind}:' must be an index "
                             f"0..{count - 1}")
    i = int(key)
    if not 0 <= i < count:
        raise SampleNotFound(f"unknown sample '{kind}:{key}': {kind} has {count} images, index must be "
                             f"0..{count - 1}")
    return i


def load_sample(sample_id: str) -> LoadedImage:
    """Load a sample by id (any valid index for digits/MNIST, not only the curated ones).

    Raises:
        SampleNotFound (a ``KeyError``): unknown id, index out of range, or a sample that is not on
            this machine (photo package or MNIST missing); ``str(err)`` says which.
    """
    kind, key = parse_sample_id(sample_id)
    if kind == "photo":
        photo = _PHOTO_BY_KEY.get(key)
        if photo is None:
            names = ", ".join(p.key for p in _PHOTOS)
            raise SampleNotFound(f"unknown sample 'photo:{key}': photos are {names}")
        if _photo_path(photo) is None:
            raise SampleNotFound(f"sample 'photo:{key}' is not available: the {photo.package} package "
                                 "is not installed")
        return _load_photo(key)
    if kind == "digits":
        x, _ = _digits_test()
        return _load_digit(_index(kind, key, len(x)))
    mnist = _mnist()
    if mnist is None:
        raise SampleNotFound(f"sample 'mnist:{key}' is not available: MNIST is not on this machine "
                             "(set EXPLORER_MNIST_DIR or run `python -m explorer prefetch mnist`)")
    i = _index(kind, key, len(mnist[0]))
    return _load_mnist(str(_mnist_folder()), i)


def sample_available(sample_id: str) -> bool:
    """Whether ``load_sample(sample_id)`` would find its image on this machine (a cheap check: the photo's file,
    MNIST's folder; an unknown id is not available)."""
    try:
        kind, key = parse_sample_id(sample_id)
    except SampleNotFound:
        return False
    if kind == "photo":
        photo = _PHOTO_BY_KEY.get(key)
        return photo is not None and _photo_path(photo) is not None
    if kind == "mnist":
        return _mnist_folder() is not None
    return True


@functools.lru_cache(maxsize=16)
def _load_photo(key: str) -> LoadedImage:
    from explorer.images.decode import decode_image

    photo = _PHOTO_BY_KEY[key]
    path = _photo_path(photo)
    assert path is not None
    img = decode_image(path.read_bytes(), name=_photo_name(photo))
    return make_loaded(img.pixels, name=_photo_name(photo), source="sample", sample_id=f"photo:{key}")


@functools.lru_cache(maxsize=512)
def _load_digit(i: int) -> LoadedImage:
    x, y = _digits_test()
    exact = x[i]  # 1 x 8 x 8 float32, values k / 16
    pixels = np.rint(exact[0] * 255.0).astype(np.uint8)[:, :, None]
    label = int(y[i])
    return make_loaded(pixels, name=_digits_name(i, label), source="sample", sample_id=f"digits:{i}",
                       label=label, exact=exact)


@functools.lru_cache(maxsize=512)
def _load_mnist(folder: str, i: int) -> LoadedImage:
    images, labels = _mnist_arrays(folder)
    label = int(labels[i])
    return make_loaded(images[i][:, :, None], name=_mnist_name(i, label), source="sample",
                       sample_id=f"mnist:{i}", label=label)


def is_dataset_sample(image: LoadedImage) -> bool:
    """True for digits / MNIST samples (white digit on black, already in the datasets' polarity)."""
    return image.source == "sample" and (image.sample_id or "").split(":", 1)[0] in ("digits", "mnist")
