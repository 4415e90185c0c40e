"""Integrated Gradients.

Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep Networks", ICML,
https://arxiv.org/abs/1703.01365 : ``IG_i(x) = (x_i - x'_i) * integral_0^1 d f(x' + a (x - x')) / d x_i da``,
which satisfies completeness: the attributions sum to ``f(x) - f(x')``.

Baselines ``x'``: "black" (zeros), "blurred" (a Gaussian blur of the input) and "noise" (uniform noise from a
seed and the image), after Sturmfels, Lundberg & Lee (2020), "Visualizing the Impact of Feature Attribution Baselines",
Distill. The integral is a trapezoid rule or Gauss-Legendre quadrature (Captum's default rule).

Ours rather than Captum's ``IntegratedGradients``: chunked batches over (image, step) pairs with progress
between chunks, the baselines above, and a trapezoid rule whose weights sum to 1 (Captum's
"riemann_trapezoid" uses step 1/n with halved ends, which sums to (n-1)/n and under-counts by 1/n).
Captum's Gauss-Legendre nodes and weights are the same as ours, which the tests check.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.attributions._common import (
    ProgressFn,
    TargetLike,
    as_batch,
    autograd_enabled,
    batch_and_targets,
    chunk_size,
    chunks,
    per_image_draw,
    report,
    target_logit_grad,
    to_numpy,
)

BASELINES = ("black", "blurred", "noise")
RULES = ("gausslegendre", "riemann_trapezoid")


def quadrature(steps: int, rule: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``alphas`` in [0, 1] and weights summing to 1 for ``integral_0^1 g(a) da``."""
    if rule == "gausslegendre":
        if steps < 1:
            raise ValueError("Gauss-Legendre needs at least 1 step")
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (nodes + 1.0), 0.5 * weights
    if rule == "riemann_trapezoid":
        if steps < 2:
            raise ValueError("the trapezoid rule needs at least 2 steps")
        alphas = np.linspace(0.0, 1.0, steps)
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return alphas, weights
    raise ValueError(f"unknown rule {rule!r} (choose from {', '.join(RULES)})")


def gaussian_blur(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of N x C x H x W images (replicate padding, kernel radius 3 sigma)."""
    if sigma_px <= 0:
        return x.clone()
    radius = max(1, int(math.ceil(3 * sigma_px)))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma_px) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    out = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def default_blur_sigma(shape: tuple[int, ...]) -> float:
    """A heavy blur: a tenth of the longer image side in pixels (at least one pixel)."""
    return max(1.0, max(shape[-2:]) / 10.0)


def make_baseline(x: torch.Tensor, baseline: str = "black", seed: int = 0,
                  blur_sigma: float | None = None) -> torch.Tensor:
    """The reference image ``x'``: "black" (zeros), "blurred" (Gaussian blur of x) or "noise" (uniform [0,1],
    per image from ``image_seed(seed, image)``)."""
    if baseline == "black":
        return torch.zeros_like(x)
    if baseline == "blurred":
        return gaussian_blur(x, default_blur_sigma(tuple(x.shape)) if blur_sigma is None else blur_sigma)
    if baseline == "noise":
        if len(x) == 0:
            return torch.zeros_like(x)
        # one generator per image, seeded from (seed, image): independent of the rest of the batch
        return per_image_draw(x, seed, lambda gen: torch.rand(tuple(x.shape[1:]), generator=gen,
                                                              dtype=torch.float32))
    raise ValueError(f"unknown baseline {baseline!r} (choose from {', '.join(BASELINES)})")


@autograd_enabled
def integrated_gradients(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    target: TargetLike,
    steps: int = 64,
    baseline: str | np.ndarray | torch.Tensor = "black",
    rule: str = "gausslegendre",
    seed: int = 0,
    batch_size: int = 0,
    progress: ProgressFn | None = None,
    return_delta: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Integrated Gradients (Sundararajan et al. 2017) of the target logit, N x C x H x W float32, signed.

    ``baseline`` is a name from ``BASELINES`` (the "noise" baseline is drawn from ``seed``) or an explicit
    image (broadcast to x). The ``N x steps`` interpolated images go through chunks of ``batch_size``
    (0: sized from the input), one forward and one backward per chunk. With ``return_delta`` also returns the
    completeness error per image, ``sum(attributions) - (f(x) - f(x'))``.
    """
    xb, targets = batch_and_targets(model, x, target)
    n = len(xb)
    if isinstance(baseline, str):
        base = make_baseline(xb, baseline, seed)
    else:
        base = as_batch(model, baseline).expand_as(xb).clone()
    alphas_np, weights_np = quadrature(steps, rule)
    alphas = torch.as_tensor(alphas_np, dtype=torch.float32, device=xb.device)
    weights = torch.as_tensor(weights_np, dtype=torch.float32, device=xb.device)
    diff = xb - base
    total = torch.zeros_like(xb)
    count = n * steps
    size = chunk_size(xb.shape[1:], batch_size)
    for start, stop in chunks(count, size):
        idx = torch.arange(start, stop, device=xb.device)
        img, step = idx // steps, idx % steps  # image-major: one image's path stays in few chunks
        path = base[img] + alphas[step].view(-1, 1, 1, 1) * diff[img]
        grad = target_logit_grad(model, path, targets[img])
        total.index_add_(0, img, grad * weights[step].view(-1, 1, 1, 1))
        report(progress, stop / count, f"Integrated Gradients: {stop}/{count} path points")
    attributions = diff * total
    if not return_delta:
        return to_numpy(attributions)
    with torch.no_grad():
        ends = model(torch.cat([xb, base]))
        f = ends.gather(1, torch.cat([targets, targets]).view(-1, 1)).view(-1).double()
    delta = attributions.reshape(n, -1).sum(1).double() - (f[:n] - f[n:])
    return to_numpy(attributions), delta.cpu().numpy()
