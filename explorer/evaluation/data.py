"""The image sets a dataset evaluation runs on, as arrays + labels, whatever their origin.

* ``digits``: scikit-learn's 360 held-out 8x8 digits (``load_digits_split().x_test``; offline, always there);
* ``mnist``: MNIST's held-out 2,000 (the last 2,000 of its test split) when MNIST is on this machine;
* ``photos``: the sample photos (centre crops, then seeded augmentations) for ImageNet-shaped models;
* ``set:<digest>``: any arrays a caller registered with :func:`register_set` (a user's uploaded images,
  converted to the models' input shape), kept in the result store under their digest.

Photos and uploads have no true labels: each model is scored against its own clean prediction
(``labels_are_predictions``), so its clean accuracy is 100% by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.digest import array_digest
from explorer.runs.store import storable

BUILTIN_SETS = ("digits", "mnist", "photos")
SET_PREFIX = "set:"
SET_LABELS = {
    "digits": "scikit-learn digits, 360 held out (8x8)",
    "mnist": "MNIST, 2,000 held out (28x28)",
    "photos": "sample photos (ImageNet models)",
}
FULL_SIZE = {"digits": 360, "mnist": 2000}


@storable
@dataclass(frozen=True)
class EvalSet:
    """float32 N x C x H x W images in [0, 1] with int64 labels (empty when ``labels_are_predictions``)."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    labels_are_predictions: bool
    sources: tuple[str, ...]  # per image, where it came from
    sample_ids: tuple[str, ...]  # per image, an Attack Studio sample id ("digits:12"), or "" when none

    def __len__(self) -> int:
        return int(len(self.images))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.images.shape[1:])  # type: ignore[return-value]


def set_digest(images: np.ndarray, labels: np.ndarray | None) -> str:
    lab = np.zeros(0, np.int64) if labels is None else np.asarray(labels, np.int64)
    return array_digest(np.ascontiguousarray(images, np.float32))[:32] + array_digest(lab)[:32]


def make_set(images: np.ndarray, labels: np.ndarray | None = None, name: str = "uploads",
             sources: tuple[str, ...] | None = None) -> EvalSet:
    """An :class:`EvalSet` from arrays (one-line ``ValueError`` on anything unusable)."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError("the image set is empty: give at least one valid image" if x.size == 0 or x.ndim == 4
                         else f"images must be N x C x H x W, got shape {x.shape}")
    x = np.ascontiguousarray(x, np.float32)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("images must hold values in [0, 1]")
    if labels is not None:
        y = np.asarray(labels, np.int64).reshape(-1)
        if len(y) != len(x):
            raise ValueError(f"{len(y)} labels for {len(x)} images")
    else:
        y = np.zeros(0, np.int64)
    src = tuple(sources) if sources is not None else tuple(f"{name} #{i}" for i in range(len(x)))
    if len(src) != len(x):
        raise ValueError("one source name per image is needed")
    return EvalSet(name, x, y, labels is None, src, ("",) * len(x))


def register_set(s: EvalSet) -> str:
    """Keep ``s`` in the result store and return the dataset name a request uses for it (``set:<digest>``)."""
    from explorer.runs.store import default_store

    digest = set_digest(s.images, None if s.labels_are_predictions else s.labels)
    default_store().put(digest, s)
    return SET_PREFIX + digest


def fits(dataset: str, input_shape: tuple[int, ...]) -> str | None:
    """None when ``dataset`` can feed a model of ``input_shape``, else the reason it cannot."""
    shape = tuple(int(v) for v in input_shape)
    if dataset == "digits" and shape != (1, 8, 8):
        return f"digits are 1x8x8 images; this model takes {'x'.join(map(str, shape))}"
    if dataset == "mnist" and shape != (1, 28, 28):
        return f"MNIST images are 1x28x28; this model takes {'x'.join(map(str, shape))}"
    if dataset == "photos" and shape[0] != 3:
        return f"photos are colour images; this model takes {'x'.join(map(str, shape))}"
    return None


def load_set(dataset: str, n: int, seed: int = 0, input_shape: tuple[int, ...] | None = None) -> EvalSet:
    """The first ``n`` images of a built-in set (photos need the models' ``input_shape``), or a registered set."""
    n = int(n)
    if dataset.startswith(SET_PREFIX):
        from explorer.runs.store import default_store

        s = default_store().get(dataset[len(SET_PREFIX):])
        if not isinstance(s, EvalSet):
            raise ValueError("this image set is no longer in the cache: upload it again")
        keep = slice(0, min(n, len(s)))
        return EvalSet(s.name, s.images[keep], s.labels[keep] if len(s.labels) else s.labels,
                       s.labels_are_predictions, s.sources[keep], s.sample_ids[keep])
    if dataset == "digits":
        from explorer.models.data import load_digits_split

        sp = load_digits_split()
        m = min(n, len(sp.x_test))
        return EvalSet("digits", np.ascontiguousarray(sp.x_test[:m]), sp.y_test[:m].copy(), False,
                       tuple(f"digits test #{i}" for i in range(m)), tuple(f"digits:{i}" for i in range(m)))
    if dataset == "mnist":
        from explorer.models.data import MNIST_TRAIN_COUNT, load_mnist_split

        sp = load_mnist_split()
        m = min(n, len(sp.x_test))
        return EvalSet("mnist", np.ascontiguousarray(sp.x_test[:m]), sp.y_test[:m].copy(), False,
                       tuple(f"mnist test #{MNIST_TRAIN_COUNT + i}" for i in range(m)),
                       tuple(f"mnist:{MNIST_TRAIN_COUNT + i}" for i in range(m)))
    if dataset == "photos":
        if input_shape is None or int(input_shape[0]) != 3:
            raise ValueError("photos need a colour (ImageNet) model")
        from explorer.projections.datasets import PHOTO_NAMES, _augment, _centre_crop, _resize, sample_photos

        c, h, w = (int(v) for v in input_shape)
        photos = sample_photos()
        names = [p for p in PHOTO_NAMES if p in photos] + [p for p in photos if p not in PHOTO_NAMES]
        rng = np.random.default_rng(seed)
        out = np.empty((n, 3, h, w), np.float32)
        sources, ids = [], []
        for i in range(n):
            name = names[i % len(names)]
            if i < len(names):
                x = _resize(_centre_crop(photos[name]), (h, w))
                sources.append(name)
                ids.append(f"photo:{name}")
            else:
                x = _augment(photos[name], (h, w), rng)
                sources.append(f"{name} (augmented {i // len(names)})")
                ids.append("")
            out[i] = x.transpose(2, 0, 1)
        return EvalSet("photos", out, np.zeros(0, np.int64), True, tuple(sources), tuple(ids))
    raise ValueError(f"unknown dataset {dataset!r}: choose digits, mnist, photos or an uploaded set")
