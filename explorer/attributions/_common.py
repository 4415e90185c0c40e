"""Shared plumbing of the attribution methods: inputs, targets, chunking, the target-logit gradient.

Every method works in image space ([0, 1] inputs; the Classifier normalises inside) and differentiates the
*logit* of the target class (pre-softmax), as in the papers and as Captum does for a logit model.
Gradients come only from ``torch.autograd.grad`` on fresh leaves: the shared model's parameters never get
``.grad`` and its train/eval mode is never touched.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from explorer.device import model_device
from explorer.digest import array_digest

ProgressFn = Callable[[float, str], None]
TargetLike = int | Sequence[int] | np.ndarray | torch.Tensor

# Auto chunk size: about this many input elements per forward/backward pass (3 x 224 x 224 -> 13 images,
# 1 x 8 x 8 -> the cap). Activations scale with the input, so this bounds memory for any model size.
CHUNK_ELEMENTS = 2**21
MAX_CHUNK = 256


@contextmanager
def grad_mode() -> Iterator[None]:
    """Autograd on, even when the caller runs under ``torch.no_grad()`` or ``torch.inference_mode()``."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def autograd_enabled(fn: Callable) -> Callable:
    """Run ``fn`` with inference mode off and autograd on, so every tensor it makes can enter autograd."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with grad_mode():
            return fn(*args, **kwargs)

    return wrapper


def as_batch(model: nn.Module, x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A fresh (non-inference, detached) float32 N x C x H x W tensor on the model's device."""
    with torch.inference_mode(False):
        t = torch.as_tensor(x)
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4:
            raise ValueError(f"expected N x C x H x W (or C x H x W) images, got shape {tuple(t.shape)}")
        return t.detach().to(device=model_device(model), dtype=torch.float32).clone()


def as_targets(target: TargetLike, n: int, device: torch.device) -> torch.Tensor:
    """One int64 class index per image (a single int is broadcast)."""
    with torch.inference_mode(False):
        if isinstance(target, torch.Tensor):
            arr = target.detach().cpu().numpy()
        else:
            arr = np.asarray(target)
        arr = arr.astype(np.int64).reshape(-1)
        if arr.size == 1:
            arr = np.full(n, arr[0], dtype=np.int64)
        elif arr.size != n:
            raise ValueError(f"got {arr.size} targets for {n} images")
        return torch.as_tensor(arr, dtype=torch.long, device=device)


def batch_and_targets(model: nn.Module, x: np.ndarray | torch.Tensor,
                      target: TargetLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Every method's inputs: the images as ``as_batch`` makes them and one target per image (``as_targets``)."""
    xb = as_batch(model, x)
    return xb, as_targets(target, len(xb), xb.device)


def chunk_size(sample_shape: Sequence[int], requested: int = 0) -> int:
    """Copies per forward/backward pass: ``requested`` if > 0, else sized from the input (CHUNK_ELEMENTS)."""
    if requested and requested > 0:
        return int(requested)
    numel = int(np.prod(sample_shape))
    return int(max(1, min(MAX_CHUNK, CHUNK_ELEMENTS // max(1, numel))))


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


def report(progress: ProgressFn | None, frac: float, text: str) -> None:
    if progress is not None:
        progress(float(min(1.0, max(0.0, frac))), text)


def target_logit_grad(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d logit[target] / d x for a batch (samples are independent: the model is in eval mode)."""
    with grad_mode():
        leaf = x.detach().clone().requires_grad_(True)
        logits = model(leaf)
        selected = logits.gather(1, target.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(selected, leaf)
    return grad.detach()


def image_seed(seed: int, image: torch.Tensor) -> int:
    """The seed of one image's random draws: a function of ``seed`` and the image's content only.

    sha256 over the seed and the image's float32 bytes (``array_digest``), first 63 bits. Seeded noise then
    does not depend on the image's position in a batch, nor on the other images in it.
    """
    digest = hashlib.sha256(f"{int(seed)}:{array_digest(image.detach().float())}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def per_image_draw(x: torch.Tensor, seed: int, draw: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
    """``draw(generator)`` once per image of ``x``, each from a CPU ``Generator(image_seed(seed, image))``,
    stacked on axis 1 when the draws have a leading sample axis (S x C x H x W -> S x N x C x H x W), else 0.

    Drawn on the CPU so a seed gives the same numbers on every device; moved to ``x``'s device.
    """
    draws = [draw(torch.Generator(device="cpu").manual_seed(image_seed(seed, img))) for img in x]
    if not draws:
        return torch.zeros((0, *x.shape[1:]), dtype=torch.float32, device=x.device)
    axis = 1 if draws[0].dim() == x.dim() else 0
    return torch.stack(draws, dim=axis).to(x.device)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().astype(np.float32, copy=False)
