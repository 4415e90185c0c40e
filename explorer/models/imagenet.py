"""ImageNet classifiers through torchvision's weights API, downloaded once into TORCH_HOME.

Offline and not cached, a model is "needs download", never a crash. Loading reads the checkpoint with
``torch.load(weights_only=True)``: no pickle code runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class TorchvisionEntry:
    model_id: str
    arch: str  # torchvision.models.get_model name
    weights: str  # weights enum member, e.g. "ResNet18_Weights.IMAGENET1K_V1"
    name: str
    gradcam_layer: str
    filename: str  # torchvision's checkpoint file name (kept here so listing models never imports torchvision)
    resize: int = 256


ENTRIES: tuple[TorchvisionEntry, ...] = (
    TorchvisionEntry("resnet18", "resnet18", "ResNet18_Weights.IMAGENET1K_V1", "ResNet-18", "layer4",
                     "resnet18-f37072fd.pth"),
    TorchvisionEntry("resnet50", "resnet50", "ResNet50_Weights.IMAGENET1K_V2", "ResNet-50", "layer4",
                     "resnet50-11ad3fa6.pth", 232),
    TorchvisionEntry("mobilenet_v3_large", "mobilenet_v3_large", "MobileNet_V3_Large_Weights.IMAGENET1K_V2",
                     "MobileNetV3-Large", "features", "mobilenet_v3_large-5c1a4163.pth", 232),
    TorchvisionEntry("efficientnet_b0", "efficientnet_b0", "EfficientNet_B0_Weights.IMAGENET1K_V1",
                     "EfficientNet-B0", "features", "efficientnet_b0_rwightman-7f5810bc.pth"),
    TorchvisionEntry("convnext_tiny", "convnext_tiny", "ConvNeXt_Tiny_Weights.IMAGENET1K_V1", "ConvNeXt-Tiny",
                     "features", "convnext_tiny-983f1562.pth", 236),
    TorchvisionEntry("vit_b_16", "vit_b_16", "ViT_B_16_Weights.IMAGENET1K_V1", "ViT-B/16", "encoder", "vit_b_16-c867db91.pth"),
)


def get_entry(model_id: str) -> TorchvisionEntry:
    """The torchvision entry of ``model_id`` (``KeyError`` for an id that is not one of ``ENTRIES``)."""
    for entry in ENTRIES:
        if entry.model_id == model_id:
            return entry
    raise KeyError(f"{model_id!r} is not a torchvision model (one of {', '.join(e.model_id for e in ENTRIES)})")


def _weights(entry: TorchvisionEntry):
    from torchvision.models import get_weight

    return get_weight(entry.weights)


CATEGORIES_FILE = Path(__file__).resolve().parents[2] / "assets" / "imagenet_classes.json"


def imagenet_categories() -> tuple[str, ...]:
    """ImageNet's 1,000 class names as in torchvision's weights metadata (a copy in assets/, so that listing
    models stays light; a test checks it equals ``weights.meta["categories"]``)."""
    return tuple(json.loads(CATEGORIES_FILE.read_text()))


def checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def checkpoint_path(entry: TorchvisionEntry) -> Path:
    """Where torchvision keeps this checkpoint: $TORCH_HOME/hub/checkpoints/<file name of the URL>."""
    return checkpoint_dir() / entry.filename


def download(url: str, dst: Path, progress: ProgressFn | None = None, timeout: float = 20.0) -> Path:
    """Download ``url`` to ``dst`` with progress, checking torchvision's sha256 prefix in the file name."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    m = re.search(r"-([a-f0-9]{6,})\.", os.path.basename(url))
    prefix = m.group(1) if m else None
    h = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if progress:
                    frac = done / total if total else 0.0
                    progress(min(frac, 1.0), f"{os.path.basename(url)}: {done / 2**20:.0f} / {total / 2**20:.0f} MB")
        if prefix and not h.hexdigest().startswith(prefix):
            raise RuntimeError(f"{os.path.basename(url)}: checksum mismatch, download corrupted")
        os.replace(tmp_name, dst)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return dst


def fetch(entry: TorchvisionEntry, progress: ProgressFn | None = None) -> Path:
    path = checkpoint_path(entry)
    if path.is_file():
        return path
    return download(_weights(entry).url, path, progress)


def build(entry: TorchvisionEntry) -> nn.Module:
    """The architecture with the cached checkpoint loaded safely (weights_only)."""
    from torchvision.models import get_model

    path = checkpoint_path(entry)
    net = get_model(entry.arch, weights=None)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.eval()
    return net


def save_random_checkpoint(model_id: str, seed: int = 0) -> Path:
    """Write a randomly initialised state_dict of ``model_id``'s architecture under the file name torchvision's
    download would use in $TORCH_HOME (``checkpoint_path``), and return that path.

    For offline tests and timing benchmarks: the model then loads through the real path (``build``) without a
    download. Never used by the app (random weights: the predictions mean nothing). The weights come from
    ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng()``: the global RNG state is left as it was.
    Point TORCH_HOME at a temporary folder first.
    """
    from torchvision.models import get_model

    entry = get_entry(model_id)
    path = checkpoint_path(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = get_model(entry.arch, weights=None)
    torch.save(net.state_dict(), path)
    return path
