"""SmoothGrad: the input gradient averaged over noisy copies of the image.

Smilkov, Thorat, Kim, Viégas & Wattenberg (2017), "SmoothGrad: removing noise by adding noise",
https://arxiv.org/abs/1706.03825 : ``M(x) = 1/n sum_i grad f_c(x + N(0, sigma^2))``, with the noise level
given as a fraction of the input's range, ``sigma / (x_max - x_min)`` (the paper finds 10-20% works well).

Ours rather than Captum's ``NoiseTunnel``: the noise is drawn from an explicit ``torch.Generator`` per image,
seeded from (seed, image content) (Captum draws from the global RNG), every noisy copy of every image goes through one or a few batched
forward/backward passes, and a progress callback runs between chunks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from explorer.attributions._common import (
    ProgressFn,
    TargetLike,
    autograd_enabled,
    batch_and_targets,
    chunk_size,
    chunks,
    per_image_draw,
    report,
    target_logit_grad,
    to_numpy,
)


def noise_scale(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Per-image standard deviation: ``sigma * (x_max - x_min)`` of that image (1 where the image is flat)."""
    flat = x.reshape(len(x), -1)
    rng = flat.amax(1) - flat.amin(1)
    rng = torch.where(rng > 0, rng, torch.ones_like(rng))
    return (sigma * rng).view(-1, 1, 1, 1)


def smoothgrad_noise(x: torch.Tensor, n_samples: int, sigma: float, seed: int) -> torch.Tensor:
    """The noise SmoothGrad adds: n_samples x N x C x H x W.

    Image i's noise is drawn on the CPU from ``Generator(image_seed(seed, x[i]))``: a function of the seed
    and that image alone, so an image gets the same map whatever else is in the batch (and on every device).
    """
    eps = per_image_draw(x, seed, lambda gen: torch.randn((n_samples, *x.shape[1:]), generator=gen,
                                                          dtype=torch.float32))
    if len(x) == 0:
        eps = torch.zeros((n_samples, *x.shape), dtype=torch.float32, device=x.device)
    return eps * noise_scale(x, sigma).unsqueeze(0)


@autograd_enabled
def smoothgrad(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    target: TargetLike,
    n_samples: int = 25,
    sigma: float = 0.15,
    seed: int = 0,
    batch_size: int = 0,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017): mean target-logit gradient over ``n_samples`` noisy copies.

    ``sigma`` is the noise standard deviation as a fraction of each image's range (x_max - x_min); noisy
    copies are not clipped to [0, 1] (as in the paper). All ``n_samples x N`` copies are processed in chunks
    of ``batch_size`` (0: sized from the input), one forward and one backward per chunk. ``sigma = 0`` gives
    the plain gradient. Returns the signed mean gradient, N x C x H x W float32.
    """
    if n_samples < 1:
        raise ValueError("n_samples must be at least 1")
    if sigma < 0:
        raise ValueError("sigma must be >= 0")
    xb, targets = batch_and_targets(model, x, target)
    n = len(xb)
    noise = smoothgrad_noise(xb, n_samples, sigma, seed)  # S x N x C x H x W
    copies = (xb.unsqueeze(0) + noise).reshape(n_samples * n, *xb.shape[1:])
    copy_targets = targets.repeat(n_samples)
    total = torch.zeros_like(xb)
    size = chunk_size(xb.shape[1:], batch_size)
    done = 0
    for start, stop in chunks(len(copies), size):
        grad = target_logit_grad(model, copies[start:stop], copy_targets[start:stop])
        # copy k is noisy sample k // n of image k % n
        total.index_add_(0, torch.arange(start, stop, device=xb.device) % n, grad)
        done = stop
        report(progress, done / len(copies), f"SmoothGrad: {done}/{len(copies)} noisy copies")
    return to_numpy(total / n_samples)
