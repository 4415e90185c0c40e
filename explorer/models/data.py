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
    """scikit-learn's 1,797 8x8 digits, scaled to [0, 1], with a stratified 80/20 held-out split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return Split(xtr, ytr, xte, yte)


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
