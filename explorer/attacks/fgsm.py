"""FGSM: the Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, 2015, "Explaining and Harnessing
Adversarial Examples", ICLR).

One gradient, one step to the corner of the ε-ball::

    x' = clip_[0,1](x + ε · sign(∇ₓ CE(f(x), y)))          untargeted
    x' = clip_[0,1](x − ε · sign(∇ₓ CE(f(x), t)))          targeted (towards class t)

With the L2 plug-in the step is ``ε · g / ||g||₂`` (the "fast gradient method"). Bit-identical to torchattacks'
``FGSM`` and Foolbox's ``FGSM`` (L∞) on the same model and input.
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.attacks._common import (
    EpsLike,
    LabelLike,
    Recorder,
    finish,
    grad_mode,
    l2_upper,
    prepare,
    rows,
    summed_objective,
)
from explorer.attacks.norms import Norm, get_norm
from explorer.attacks.registry import AttackSpec, register
from explorer.attacks.result import AttackResult


def fgsm_direction(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                   norm: Norm) -> tuple[torch.Tensor, torch.Tensor]:
    """The unit step ``±norm.normalize(∇ₓ CE)`` at ``x`` and the logits of ``x`` (one forward + backward)."""
    with grad_mode():
        xg = (x.clone() if x.is_inference() else x.detach()).requires_grad_(True)  # a new leaf; x untouched
        logits = model(xg)
        (grad,) = torch.autograd.grad(summed_objective(logits, y, target), xg)
    return norm.normalize(grad), logits.detach()


def fgsm_step(x: torch.Tensor, direction: torch.Tensor, eps: float | np.ndarray | torch.Tensor) -> torch.Tensor:
    """``clip_[0,1](x + ε · direction)`` with one ε or a per-row ε (x and direction broadcast over rows).

    A scalar ε is rounded to float32 inside the kernel, a per-row ε before it: the same bits either way.
    """
    if isinstance(eps, (int, float)):
        return torch.clamp(x + float(eps) * direction, min=0, max=1)
    e = eps if isinstance(eps, torch.Tensor) else rows(eps, direction)
    return torch.clamp(x + e.reshape(-1, *([1] * (direction.dim() - 1))) * direction, min=0, max=1)


def fgsm(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: LabelLike, eps: EpsLike = 8 / 255, *,
         target: LabelLike | None = None, norm: str | Norm = "linf", trace: bool = True) -> AttackResult:
    """Fast Gradient Sign Method (Goodfellow et al., 2015).

    Args:
        model: a frozen classifier taking [0, 1] images (``explorer.models.Classifier``).
        x: N x C x H x W (or C x H x W) images in [0, 1].
        y: true labels (an int, or one per image).
        eps: the budget: a float, one per image, or a list of ε for a single image (one row per ε; the
            gradient is computed once, so each row is bit-identical to a separate call at that ε).
        target: a class to reach (targeted FGSM minimises the cross-entropy to it), or None.
        norm: ``"linf"`` (sign step) or ``"l2"`` (normalised gradient step).
        trace: classify the result and record the one-step trace (``False``: the adversarial batch only).
    """
    nm = get_norm(norm)
    p = prepare(model, x, y, eps, target, eps_upper=1.0 if nm.name == "linf" else l2_upper(x))
    rec = Recorder(trace, p.x, p.y, p.target)
    if p.expanded:  # one image, many ε: one gradient for all rows
        t0 = None if p.target is None else p.target[:1]
        direction, _ = fgsm_direction(model, p.x[:1], p.y[:1], t0, nm)
    else:
        direction, _ = fgsm_direction(model, p.x, p.y, p.target, nm)
    uniform = bool(np.all(p.eps == p.eps[0]))
    adv = fgsm_step(p.x, direction, float(p.eps[0]) if uniform else p.eps)
    return finish(model, "fgsm", p.x, adv, p.y, p.target, p.eps, rec, trace)


def _run(model, x, y, c, trace=True) -> AttackResult:
    return fgsm(model, x, y, c.eps, target=c.target, trace=trace)


SPEC = register(AttackSpec(
    name="fgsm", label="FGSM", kind="budget", norm="linf", order=0,
    paper="Goodfellow et al., 2015", url="https://arxiv.org/abs/1412.6572",
    summary="one gradient, one step of size ε along its sign: every pixel moves by exactly ±ε.",
    params=(), cost=lambda c: 2, run=_run, direction=True, compare="pgd",
))
