"""Sets of images to project, all offline: digits, MNIST when present, augmented sample photos, uploads.

Every set is float32 N x C x H x W in [0, 1] in the model's input shape, with int64 labels. Digits and MNIST
carry their true labels (held-out images first, then training images); photos and uploads have none, so
their label is the model's clean prediction (``labels_are_predictions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from explorer.models.wrapper import Classifier

if TYPE_CHECKING:
    from explorer.images import LoadedImage

DATASETS = ("digits", "mnist", "photos", "uploads")
DATASET_LABELS = {
    "digits": "scikit-learn digits (8x8)",
    "mnist": "MNIST (28x28)",
    "photos": "sample photos, augmented",
    "uploads": "your images",
}
PHOTO_NAMES = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower")


@dataclass(frozen=True, eq=False)
class ImageSet:
    name: str  # one of DATASETS
    images: np.ndarray  # float32 N x C x H x W in [0, 1]
    labels: np.ndarray  # int64, N
    class_names: tuple[str, ...]
    sources: tuple[str, ...]  # per image, where it came from ("digits test #3", "chelsea (crop 7)")
    labels_are_predictions: bool = False

    def __len__(self) -> int:
        return len(self.images)


def available_datasets(model: Classifier) -> list[str]:
    """The sets that fit ``model``'s input (uploads always fit: they are resized)."""
    from explorer.models.data import find_mnist

    shape = tuple(model.input_shape)
    out = []
    if shape == (1, 8, 8):
        out.append("digits")
    if shape == (1, 28, 28) and find_mnist() is not None:
        out.append("mnist")
    if shape[0] == 3:
        out.append("photos")
    out.append("uploads")
    return out


def _check_shape(model: Classifier, shape: tuple[int, ...], name: str) -> None:
    if tuple(model.input_shape) != tuple(shape):
        raise ValueError(f"{name} images are {shape}; {model.model_id} expects {tuple(model.input_shape)}")


def _predicted(model: Classifier, images: np.ndarray) -> np.ndarray:
    from explorer.inference import predict_logits

    return predict_logits(model, images).argmax(1).astype(np.int64)


def _take(splits: Sequence[tuple[str, np.ndarray, np.ndarray]], n: int | None) -> tuple[np.ndarray, np.ndarray, tuple]:
    xs, ys, srcs = [], [], []
    for tag, x, y in splits:
        xs.append(x)
        ys.append(y)
        srcs += [f"{tag} #{i}" for i in range(len(x))]
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    n = len(x) if n is None else max(0, min(int(n), len(x)))
    return np.ascontiguousarray(x[:n], np.float32), y[:n].astype(np.int64), tuple(srcs[:n])


def digits_images(n: int | None = 1000) -> ImageSet:
    """scikit-learn's digits: the 360 held-out images first, then the 1,437 training images (up to ``n``)."""
    from explorer.models.data import DIGIT_CLASSES, load_digits_split

    s = load_digits_split()
    x, y, src = _take([("digits test", s.x_test, s.y_test), ("digits train", s.x_train, s.y_train)], n)
    return ImageSet("digits", x, y, DIGIT_CLASSES, src)


def mnist_images(n: int | None = 1000) -> ImageSet:
    """MNIST (when on this machine): the 2,000 held-out images first, then the 8,000 training images."""
    from explorer.models.data import DIGIT_CLASSES, load_mnist_split

    s = load_mnist_split()
    x, y, src = _take([("mnist test", s.x_test, s.y_test), ("mnist train", s.x_train, s.y_train)], n)
    return ImageSet("mnist", x, y, DIGIT_CLASSES, src)


def sample_photos() -> dict[str, np.ndarray]:
    """The photos that ship with scikit-image and scikit-learn, as uint8 H x W x 3."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    out = {name: getattr(data, name)() for name in ("chelsea", "coffee", "astronaut", "rocket")}
    sk = load_sample_images()
    for path, img in zip(sk.filenames, sk.images):
        out[path.replace("\\", "/").rsplit("/", 1)[-1].split(".")[0]] = img
    return {k: np.asarray(v)[..., :3] for k, v in out.items()}


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 H x W x C -> float32 size[0] x size[1] x C in [0, 1] (Pillow's antialiased bilinear)."""
    from PIL import Image

    h, w = size
    pil = Image.fromarray(img if img.shape[-1] == 3 else img[..., 0])
    out = np.asarray(pil.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0
    return out if out.ndim == 3 else out[..., None]


def _centre_crop(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return img[top: top + s, left: left + s]


def _augment(img: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random resized crop (35-100% of the area, aspect 3:4-4:3), a coin-flip mirror and a mild colour
    jitter (brightness, contrast, saturation within ±20%)."""
    h, w = img.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(0.35, 1.0)
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            break
    else:
        ch = cw = min(h, w)
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    x = _resize(img[top: top + ch, left: left + cw], size)
    if rng.random() < 0.5:
        x = x[:, ::-1]
    b, c, s = rng.uniform(0.8, 1.2, size=3)
    x = x * b
    x = (x - x.mean()) * c + x.mean()
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * s + grey
    return np.clip(x, 0, 1).astype(np.float32)


def photo_images(model: Classifier, n: int = 64, seed: int = 0) -> ImageSet:
    """The sample photos (centre crops first), then seeded augmentations of them, cycling through the photos,
    in the model's input size; labelled by the model's clean prediction.

    Memory: a 224 x 224 image is 0.6 MB as float32, so keep ``n`` in the hundreds.
    """
    c, h, w = model.input_shape
    if c != 3:
        raise ValueError(f"photos are colour images; {model.model_id} expects {c} channel(s)")
    photos = sample_photos()
    names = [p for p in PHOTO_NAMES if p in photos] + [p for p in photos if p not in PHOTO_NAMES]
    rng = np.random.default_rng(seed)
    n = max(0, int(n))
    out = np.empty((n, 3, h, w), np.float32)
    sources = []
    for i in range(n):
        name = names[i % len(names)]
        if i < len(names):
            x = _resize(_centre_crop(photos[name]), (h, w))
            sources.append(name)
        else:
            x = _augment(photos[name], (h, w), rng)
            sources.append(f"{name} (augmented {i // len(names)})")
        out[i] = x.transpose(2, 0, 1)
    labels = _predicted(model, out) if n else np.zeros(0, np.int64)
    return ImageSet("photos", out, labels, tuple(model.class_names), tuple(sources), labels_are_predictions=True)


def to_model_input(image: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    """One user image (H x W, H x W x C or C x H x W; uint8 0-255 or float 0-1) -> float32 C x H x W in [0, 1]:
    centre-cropped to a square when the model's input is square, resized, then grey <-> colour as needed.

    Memory is bounded by the source and the model's input: the image is resized (Pillow, in uint8) before any
    float or channel conversion, so a large upload is never copied at 8 bytes a pixel or 3 channels wide.
    """
    c, h, w = (int(v) for v in input_shape)
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = a.transpose(1, 2, 0)  # C x H x W -> H x W x C
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"an image must be H x W or H x W x C, got shape {np.asarray(image).shape}")
    a = a[..., :3] if a.shape[-1] >= 3 else a[..., :1]
    if h == w:
        a = _centre_crop(a)
    if a.dtype != np.uint8:
        a = np.asarray(a, np.float32)
        scale = np.float32(255.0) if a.size and float(np.nanmax(a)) <= 1.0 else np.float32(1.0)
        a = np.clip(np.rint(np.nan_to_num(a) * scale), 0, 255).astype(np.uint8)
    x = _resize(np.ascontiguousarray(a), (h, w))  # float32 h x w x C in [0, 1]
    if c == 1 and x.shape[-1] == 3:
        x = np.clip(x.astype(np.float64) @ np.array([0.299, 0.587, 0.114]), 0, 1).astype(np.float32)[..., None]
    elif c == 3 and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return np.ascontiguousarray(x.transpose(2, 0, 1), np.float32)


def user_images(model: Classifier, images: Sequence[np.ndarray | LoadedImage],
                names: Sequence[str] | None = None) -> ImageSet:
    """User-provided images converted to the model's input; labelled by the model's clean prediction.

    Decoded uploads (:class:`explorer.images.LoadedImage`, from :func:`explorer.images.read_uploads`) go through
    the sidebar's conversion (:func:`explorer.images.to_model_input`, with the model's ``resize`` where its spec
    has one); plain arrays through :func:`to_model_input` above. Either way no step allocates more than the
    source and the model's input.
    """
    from explorer.images import LoadedImage
    from explorer.images import to_model_input as image_to_model_input

    shape = tuple(int(v) for v in model.input_shape)

    def convert(im) -> np.ndarray:
        if isinstance(im, LoadedImage):
            return image_to_model_input(im, shape, resize=_spec_resize(model))
        return to_model_input(im, shape)

    x = np.stack([convert(im) for im in images]) if len(images) else np.zeros((0, *shape), np.float32)
    if names is None:
        names = tuple(im.name if isinstance(im, LoadedImage) else f"upload #{i}" for i, im in enumerate(images))
    names = tuple(names)
    if len(names) != len(x):
        raise ValueError("one name per image is needed")
    labels = _predicted(model, x) if len(x) else np.zeros(0, np.int64)
    return ImageSet("uploads", x.astype(np.float32), labels, tuple(model.class_names), names,
                    labels_are_predictions=True)


def _spec_resize(model: Classifier) -> int | None:
    """The registered model's ``resize`` (e.g. 256 for a 224 ImageNet crop), None for unregistered models."""
    from explorer.models import get_spec

    try:
        return get_spec(model.model_id).resize
    except (KeyError, ValueError, AttributeError):
        return None


def load_images(name: str, model: Classifier, n: int = 1000, seed: int = 0,
                uploads: Sequence[np.ndarray | LoadedImage] | None = None,
                upload_names: Sequence[str] | None = None) -> ImageSet:
    """The image set ``name`` (one of ``DATASETS``) for ``model``, up to ``n`` images."""
    if name == "digits":
        s = digits_images(n)
        _check_shape(model, s.images.shape[1:], "digits")
        return s
    if name == "mnist":
        _check_shape(model, (1, 28, 28), "MNIST")
        return mnist_images(n)
    if name == "photos":
        return photo_images(model, n, seed)
    if name == "uploads":
        ims = list(uploads or [])[: max(0, int(n))]
        names = list(upload_names)[: len(ims)] if upload_names is not None else None
        return user_images(model, ims, names)
    raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")


def sample_id_for(source: str) -> str | None:
    """The gallery id (``?image=...``) of a dataset image, from its ``ImageSet.sources`` entry, where one exists.

    ``explorer.projections.datasets`` names images ``"digits test #i"`` (``load_digits_split().x_test[i]``,
    which is exactly the gallery's ``digits:i``), ``"mnist test #i"`` (MNIST test-file image ``8000 + i``) and
    ``"mnist train #i"`` (test-file image ``i``). Training digits have no gallery id: ``None``, as for photos
    and uploads.
    """
    kind, _, index = source.rpartition(" #")
    if not index.isdigit():
        return None
    i = int(index)
    if kind == "digits test":
        return f"digits:{i}"
    if kind == "mnist test":
        from explorer.models.data import MNIST_TRAIN_COUNT

        return f"mnist:{MNIST_TRAIN_COUNT + i}"
    if kind == "mnist train":
        return f"mnist:{i}"
    return None
