"""The inference layer: one process-wide model cache, batched predictions, input gradients.

* Models are loaded once per (id, device), kept in a bounded LRU shared by every session, and never mutated.
* Predictions run in batches under ``torch.inference_mode()`` (optionally with fp16/bf16 autocast on a GPU).
* Input gradients use ``torch.autograd.grad`` so shared weights never receive ``.grad``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from explorer.config import get_settings
from explorer.device import pick_device
from explorer.models.registry import build_classifier
from explorer.models.wrapper import Classifier

ProgressFn = Callable[[float, str], None]


class ModelCache:
    """A thread-safe LRU of loaded Classifiers keyed by (model id, device).

    Concurrent requests for the same model wait for one load instead of loading twice.
    """

    def __init__(self, max_models: int) -> None:
        self.max_models = max(1, max_models)
        self._models: OrderedDict[tuple[str, str], Classifier] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}

    def __contains__(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._models

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)

    def get(self, model_id: str, device: str | torch.device | None = None,
            progress: ProgressFn | None = None, allow_download: bool = False) -> Classifier:
        dev = pick_device(str(device) if device is not None else None)
        key = (model_id, str(dev))
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._models:
                    self._models.move_to_end(key)
                    return self._models[key]
            model = build_classifier(model_id, progress, allow_download=allow_download).to(dev)
            with self._lock:
                self._models[key] = model
                self._models.move_to_end(key)
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
                self._loading.pop(key, None)
            return model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()

    def discard(self, model_id: str) -> None:
        """Drop every loaded copy of one model (an upload that no session owns any more)."""
        with self._lock:
            for key in [k for k in self._models if k[0] == model_id]:
                del self._models[key]


_cache: ModelCache | None = None
_cache_lock = threading.Lock()


def model_cache() -> ModelCache:
    """The process-wide model cache (bounded by EXPLORER_MAX_MODELS)."""
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = ModelCache(get_settings().max_models)
        return _cache


def _autocast(device: torch.device, precision: str):
    if precision == "fp32" or device.type != "cuda":
        return torch.autocast(device_type="cpu", enabled=False)
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def as_tensor(images: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """A float32 N x C x H x W tensor on ``device`` (a single C x H x W image gets a batch axis)."""
    t = torch.as_tensor(images)
    if t.dim() == 3:
        t = t.unsqueeze(0)
    return t.to(device=device, dtype=torch.float32)


def predict_logits(model: Classifier, images: np.ndarray | torch.Tensor, batch_size: int = 64,
                   precision: str = "fp32") -> np.ndarray:
    """Logits for a batch of [0,1] images, computed in batches under inference mode (float32 numpy)."""
    x = as_tensor(images, model.device)
    out = []
    with torch.inference_mode(), _autocast(model.device, precision):
        for i in range(0, len(x), batch_size):
            out.append(model(x[i: i + batch_size]).float().cpu())
    if not out:
        return np.zeros((0, model.num_classes), np.float32)
    return torch.cat(out).numpy()


def predict_proba(model: Classifier, images: np.ndarray | torch.Tensor, batch_size: int = 64,
                  precision: str = "fp32") -> np.ndarray:
    logits = predict_logits(model, images, batch_size, precision)
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


def input_gradient(model: Classifier, images: np.ndarray | torch.Tensor, target: int | np.ndarray | torch.Tensor,
                   kind: str = "loss") -> np.ndarray:
    """Gradient of the cross-entropy loss (``kind="loss"``) or of the target logit (``"logit"``) w.r.t. the input.

    Uses ``torch.autograd.grad`` on a fresh input, so the model's parameters never receive ``.grad``.
    """
    x = as_tensor(images, model.device).clone().requires_grad_(True)
    y = torch.as_tensor(np.broadcast_to(np.asarray(target), (len(x),)).copy(), dtype=torch.long, device=x.device)
    logits = model(x)
    if kind == "loss":
        value = F.cross_entropy(logits, y, reduction="sum")
    elif kind == "logit":
        value = logits.gather(1, y[:, None]).sum()
    else:
        raise ValueError(f"kind must be 'loss' or 'logit', got {kind!r}")
    (grad,) = torch.autograd.grad(value, x)
    return grad.detach().cpu().numpy()
