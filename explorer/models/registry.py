"""The model registry: every model the explorer knows, whether it can run here, and how to load it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path

from explorer.config import get_settings
from explorer.models import builtin, imagenet
from explorer.models.builtin import ProgressFn
from explorer.models.data import DIGIT_CLASSES, DatasetUnavailable, find_mnist
from explorer.models.wrapper import Classifier

ASSETS_WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "weights"
DEFAULT_MODEL = "digits-cnn"


class Status(str, Enum):
    AVAILABLE = "available"
    NEEDS_TRAINING = "needs training"  # offline-capable: trains in seconds from data on this machine
    NEEDS_DOWNLOAD = "needs download"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Availability:
    status: Status
    reason: str = ""
    fix: str = ""  # the command that makes it available

    @property
    def loadable(self) -> bool:
        """True when ``load_model`` can run without the network."""
        return self.status in (Status.AVAILABLE, Status.NEEDS_TRAINING)


@dataclass(frozen=True)
class ModelSpec:
    id: str
    name: str
    dataset: str  # digits | mnist | imagenet | user
    family: str  # builtin | torchvision | user
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    description: str
    gradcam_layer: str | None = None
    resize: int | None = None  # photos: shorter side before the centre crop

    @property
    def is_photo_model(self) -> bool:
        return self.input_shape[0] == 3


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded here; the message says why and what fixes it."""


_DATASET_NAMES = {"mnist": "MNIST", "digits": "Digits"}  # how a dataset is written in a model's name

_BUILTIN_TEXT = {
    "cnn": "small CNN (2 conv + 2 dense)",
    "mlp": "MLP (2 hidden layers)",
    "softmax": "softmax regression (no hidden layer: Szegedy et al.'s shallow model)",
    "ae": "autoencoder-based classifier (sigmoid encoder pretrained as an autoencoder, softmax on its code)",
    "cnn-wide": "wider CNN of another architecture (5x5 and 3x3 conv, 64/128 channels)",
}
_BUILTIN_NAMES = {"cnn": "CNN", "mlp": "MLP", "softmax": "softmax", "ae": "AE classifier", "cnn-wide": "wide CNN"}


@lru_cache(maxsize=1)
def _builtin_specs() -> tuple[ModelSpec, ...]:
    out = []
    for mid, r in builtin.RECIPES.items():
        data = "scikit-learn digits (8x8)" if r.dataset == "digits" else "MNIST (28x28)"
        seed = f" (seed {r.train.seed})" if r.train.seed else ""
        out.append(ModelSpec(
            id=mid, name=f"{_DATASET_NAMES.get(r.dataset, r.dataset.capitalize())} {_BUILTIN_NAMES[r.arch]}{seed}",
            dataset=r.dataset, family="builtin", input_shape=(1, r.size, r.size), class_names=DIGIT_CLASSES,
            description=f"{_BUILTIN_TEXT[r.arch]} trained by the explorer on {data}{seed.replace(' (', ', ').rstrip(')')}",
            gradcam_layer="conv2" if r.arch in ("cnn", "cnn-wide") else None,
        ))
    return tuple(out)


@lru_cache(maxsize=1)
def _imagenet_specs() -> tuple[ModelSpec, ...]:
    cats = imagenet.imagenet_categories()
    return tuple(
        ModelSpec(id=e.model_id, name=e.name, dataset="imagenet", family="torchvision", input_shape=(3, 224, 224),
                  class_names=cats, description=f"torchvision {e.weights}", gradcam_layer=e.gradcam_layer,
                  resize=e.resize)
        for e in imagenet.ENTRIES
    )


@lru_cache(maxsize=1)
def _defence_specs() -> tuple[ModelSpec, ...]:
    """Defended models (adversarial training, ensembles, noise averaging, fronts): explorer.defences.zoo."""
    from explorer.defences import zoo

    return tuple(ModelSpec(**zoo.spec_fields(e)) for e in zoo.ENTRIES)


_user_specs: dict[str, ModelSpec] = {}
_user_lock = threading.Lock()


def register_user_spec(spec: ModelSpec) -> None:
    with _user_lock:
        _user_specs[spec.id] = spec


def unregister_user_spec(model_id: str) -> None:
    """Forget an uploaded model's spec (no session owns it any more)."""
    with _user_lock:
        _user_specs.pop(model_id, None)


def list_specs(include_user: bool = True) -> list[ModelSpec]:
    specs = list(_builtin_specs()) + list(_defence_specs()) + list(_imagenet_specs())
    if include_user:
        with _user_lock:
            specs += list(_user_specs.values())
    return specs


def get_spec(model_id: str) -> ModelSpec:
    for s in _builtin_specs() + _defence_specs():
        if s.id == model_id:
            return s
    with _user_lock:
        if model_id in _user_specs:
            return _user_specs[model_id]
    for s in _imagenet_specs():
        if s.id == model_id:
            return s
    known = ", ".join(s.id for s in list_specs())
    raise KeyError(f"unknown model {model_id!r} (known: {known})")


def weights_path(model_id: str) -> Path:
    """Cached weights of a built-in model: the user cache first, then the ones shipped in assets/."""
    cached = get_settings().weights_dir / f"{model_id}.safetensors"
    if cached.is_file():
        return cached
    shipped = ASSETS_WEIGHTS / f"{model_id}.safetensors"
    return shipped if shipped.is_file() else cached


def _entry(model_id: str) -> imagenet.TorchvisionEntry:
    return imagenet.get_entry(model_id)


def availability(model_id: str) -> Availability:
    spec = get_spec(model_id)
    if spec.family == "builtin":
        if weights_path(model_id).is_file():
            return Availability(Status.AVAILABLE)
        if spec.dataset == "mnist" and find_mnist() is None:
            return Availability(Status.UNAVAILABLE, "MNIST is not on this machine",
                                "python -m explorer prefetch mnist  (or set EXPLORER_MNIST_DIR)")
        return Availability(Status.NEEDS_TRAINING, "trains on this machine in seconds",
                            f"python -m explorer train {model_id}")
    if spec.family == "torchvision":
        if imagenet.checkpoint_path(_entry(model_id)).is_file():
            return Availability(Status.AVAILABLE)
        return Availability(Status.NEEDS_DOWNLOAD, "weights not in the torch cache (not available offline)",
                            f"python -m explorer prefetch {model_id}")
    if spec.family == "defence":
        from explorer.defences import zoo

        return Availability(Status(zoo.availability(model_id)[0]), *zoo.availability(model_id)[1:])
    return Availability(Status.AVAILABLE)


def accuracy(model_id: str) -> float | None:
    """Held-out accuracy recorded with a built-in model's weights (None if untrained or not built-in)."""
    spec = get_spec(model_id)
    if spec.family == "defence":
        from explorer.defences import zoo

        return zoo.accuracy(model_id)
    path = weights_path(model_id) if spec.family == "builtin" else None
    if path is None or not path.is_file():
        return None
    meta = builtin.read_metadata(path)
    return float(meta["accuracy"]) if "accuracy" in meta else None


def train(model_id: str, progress: ProgressFn | None = None) -> Path:
    """Train a built-in model and cache its weights; returns the weights file."""
    spec = get_spec(model_id)
    if spec.family == "defence":
        from explorer.defences import zoo

        return zoo.train(model_id, progress)
    if spec.family != "builtin":
        raise ValueError(f"{model_id} is not a built-in model: only built-in models are trained here")
    try:
        result = builtin.train_builtin(model_id, progress)
    except DatasetUnavailable as exc:
        raise ModelUnavailable(str(exc)) from exc
    path = get_settings().weights_dir / f"{model_id}.safetensors"
    builtin.save_weights(result, path)
    return path


def prefetch(model_id: str, progress: ProgressFn | None = None) -> Path:
    """Make a model available offline: download torchvision weights, or train a built-in model."""
    spec = get_spec(model_id)
    if spec.family == "torchvision":
        return imagenet.fetch(_entry(model_id), progress)
    if spec.family == "builtin":
        return weights_path(model_id) if weights_path(model_id).is_file() else train(model_id, progress)
    if spec.family == "defence":
        from explorer.defences import zoo

        return train(model_id, progress) if availability(model_id).status != Status.AVAILABLE else \
            zoo.weights_file(zoo.get_entry(model_id))
    raise ValueError(f"{model_id}: user models are not prefetched")


def build_classifier(model_id: str, progress: ProgressFn | None = None,
                     allow_download: bool = False) -> Classifier:
    """Build the wrapped, frozen model on the CPU (train or download first where allowed)."""
    spec = get_spec(model_id)
    avail = availability(model_id)
    if avail.status == Status.UNAVAILABLE or (avail.status == Status.NEEDS_DOWNLOAD and not allow_download):
        raise ModelUnavailable(f"{spec.name} is not available here ({avail.status.value}): {avail.reason}. Run: {avail.fix}")
    if spec.family == "builtin":
        if avail.status == Status.NEEDS_TRAINING:
            train(model_id, progress)
        r = builtin.RECIPES[model_id]
        net = builtin.load_weights(model_id, weights_path(model_id))
        return Classifier(net, model_id=model_id, class_names=spec.class_names, input_shape=spec.input_shape,
                          mean=(r.mean,), std=(r.std,), channels_last=r.arch == "cnn")
    if spec.family == "defence":
        from explorer.defences import zoo

        try:
            return zoo.build(model_id, progress)
        except DatasetUnavailable as exc:
            raise ModelUnavailable(str(exc)) from exc
    if spec.family == "torchvision":
        entry = _entry(model_id)
        try:
            if avail.status == Status.NEEDS_DOWNLOAD:
                imagenet.fetch(entry, progress)
        except OSError as exc:
            raise ModelUnavailable(
                f"{spec.name}: download failed ({exc.__class__.__name__}); not available offline. "
                f"Run online: python -m explorer prefetch {model_id}"
            ) from exc
        try:
            net = imagenet.build(entry)
        except Exception as exc:  # a corrupt or foreign checkpoint
            raise ModelUnavailable(f"{spec.name}: cached checkpoint cannot be loaded ({exc})") from exc
        return Classifier(net, model_id=model_id, class_names=spec.class_names, input_shape=spec.input_shape,
                          mean=imagenet.IMAGENET_MEAN, std=imagenet.IMAGENET_STD,
                          channels_last=not model_id.startswith("vit"))
    from explorer.models import user

    return user.build_user(model_id)
