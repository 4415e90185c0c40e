"""Datasets that work offline: scikit-learn's bundled digits, and MNIST from a local folder."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.config import get_settings

DIGIT_CLASSES = tuple(str(i) for i in range(10))
MNIST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_TRAIN_COUNT = 8000  # convention: train on the first 8,000 of the test split, evaluate on the last 2,000


@dataclass(frozen=True)
class Split:
    """Images as float32 N x 1 x H x W in [0, 1] and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class DatasetUnavailable(RuntimeError):
    """A dataset is not on this machine; the message says how to get it."""


def load_digits_split(seed: int = 0) -> Split:
    """scikit-learn's 1,797 8x8 digits, scaled to [0, 1], with a stratified 80/20 held-out split.

    The same arrays as ``sklearn.datasets.load_digits`` + ``train_test_split(test_size=0.2, random_state=seed,
    stratify=y)``, read without importing scikit-learn (whose import, with scipy and pandas, costs about 2 s of
    the app's cold start): the CSV shipped in scikit-learn's package folder, split by ``_stratified_split``
    (tests/models/test_digits_split.py checks both against scikit-learn). Falls back to scikit-learn itself
    when its data file is not where expected.
    """
    data = _digits_csv()
    if data is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        images, target = d.images, d.target
    else:
        images, target = data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
    x = (images / 16.0).astype(np.float32)[:, None]
    y = target.astype(np.int64)
    train, test = _stratified_split(y, test_size=0.2, seed=seed)
    return Split(x[train], y[train], x[test], y[test])


def _digits_csv() -> np.ndarray | None:
    """scikit-learn's ``datasets/data/digits.csv.gz`` as float64 rows (64 pixels, then the label), located
    without importing scikit-learn; None when the package or the file is missing."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt") as f:
                return np.loadtxt(f, delimiter=",")
    return None


def _stratified_split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of scikit-learn's ``train_test_split(..., test_size, random_state=seed,
    stratify=y)`` (its ``StratifiedShuffleSplit``, one split), with the same seeded ``RandomState`` draws."""
    import math

    n = len(y)
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)  # noqa: NPY002 - scikit-learn's draws, explicitly seeded
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for i in range(len(classes)):
        perm = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(perm[: n_i[i]])
        test.extend(perm[n_i[i]: n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Per-class draws of scikit-learn's ``utils.extmath._approximate_mode`` (ties broken by ``rng``)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz", folder / "MNIST" / "raw" / stem,
                      folder / "MNIST" / "raw" / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def mnist_dirs() -> list[Path]:
    """Folders searched for MNIST, in order: EXPLORER_MNIST_DIR, then the app's data cache."""
    s = get_settings()
    out = [s.mnist_dir] if s.mnist_dir else []
    out.append(s.data_dir)
    return out


def find_mnist() -> Path | None:
    """The folder holding MNIST's test split in idx format, or None."""
    for folder in mnist_dirs():
        if all(_find(folder, stem) for stem in MNIST_FILES):
            return folder
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (optionally gzipped) into a numpy array, validating its header."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path.name}: not an unsigned-byte idx file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path.name}: truncated idx file")
    return body.reshape(dims)


def load_mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """MNIST's 10,000-image test split as uint8 N x 28 x 28 and int64 labels."""
    folder = find_mnist()
    if folder is None:
        raise DatasetUnavailable(
            "MNIST is not on this machine: run `python -m explorer prefetch mnist` online, "
            "or set EXPLORER_MNIST_DIR to a folder with t10k-images-idx3-ubyte.gz"
        )
    images = read_idx(_find(folder, MNIST_FILES[0]))  # type: ignore[arg-type]
    labels = read_idx(_find(folder, MNIST_FILES[1])).astype(np.int64)  # type: ignore[arg-type]
    return images, labels


def load_mnist_split() -> Split:
    """Train on the first 8,000 images of MNIST's test split, evaluate on the last 2,000."""
    images, labels = load_mnist_arrays()
    x = (images.astype(np.float32) / 255.0)[:, None]
    n = MNIST_TRAIN_COUNT
    return Split(x[:n], labels[:n], x[n:], labels[n:])
