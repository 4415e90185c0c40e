"""The random-noise baseline: a perturbation of the same L∞ size as the attack, but in a random direction.

Each pixel moves by ±ε with equal probability (uniform random signs, drawn from an explicit seed), then the
image is clipped to [0, 1]. Against a standard classifier, noise of the ε that an attack needs barely moves the
prediction: the attack's direction, not its size, is what fools the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.attacks._common import as_images, as_labels, classify, num_classes_of
from explorer.attacks.config import check_eps


def sign_noise(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Uniform random signs (±1) of ``shape``, from ``torch.Generator().manual_seed(seed)`` on the CPU."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, 2, shape, generator=gen, dtype=torch.int64).to(torch.float32) * 2 - 1


def noisy(x: torch.Tensor, eps: float, seed: int = 0, n: int = 1) -> torch.Tensor:
    """``n`` noisy copies of one image (1 x C x H x W): clip_[0,1](x + ε·s), s uniform random signs."""
    s = sign_noise((n, *x.shape[1:]), seed).to(x.device)
    return torch.clamp(x + float(eps) * s, min=0, max=1)


@dataclass(frozen=True)
class NoiseBaseline:
    eps: float
    images: np.ndarray  # n x C x H x W
    pred: np.ndarray  # (n,)
    probs: np.ndarray  # n x K
    true_prob: np.ndarray  # (n,) probability of the true class
    flip_rate: float  # fraction of draws whose top-1 label is not y
    linf: np.ndarray  # (n,) actual L∞ size after clipping


def noise_baseline(model: torch.nn.Module, x, y: int, eps: float, seed: int = 0, n: int = 8) -> NoiseBaseline:
    """Classify ``n`` random-sign perturbations of size ε of one image (seeded, reproducible)."""
    check_eps(eps)
    if not 1 <= n <= 1024:
        raise ValueError(f"n must be between 1 and 1024, got {n}")
    x1 = as_images(model, x)
    if len(x1) != 1:
        raise ValueError(f"noise_baseline takes one image, got {len(x1)}")
    yt = as_labels(y, n, x1.device, num_classes_of(model), "y")
    imgs = noisy(x1, eps, seed, n)
    logits = classify(model, imgs)
    probs = torch.softmax(logits, 1)
    pred = logits.argmax(1)
    return NoiseBaseline(
        eps=float(eps), images=imgs.cpu().numpy(), pred=pred.cpu().numpy(), probs=probs.cpu().numpy(),
        true_prob=probs.gather(1, yt[:, None]).squeeze(1).cpu().numpy(),
        flip_rate=float((pred != yt).float().mean()),
        linf=(imgs - x1).abs().flatten(1).amax(1).cpu().numpy(),
    )
