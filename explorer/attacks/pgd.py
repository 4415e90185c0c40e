"""PGD: Projected Gradient Descent (Madry, Makelov, Schmidt, Tsipras & Vladu, 2018, "Towards Deep Learning
Models Resistant to Adversarial Attacks", ICLR).

BIM from a uniformly random start in the ε-ball, in L∞ (sign steps, clipping) or L2 (normalised steps,
rescaling onto the ball)::

    x_0     = clip_[0,1](x + ε·u),  u ~ U(unit ball)    (random_start; u from an explicit seed)
    x_{t+1} = clip_[0,1](x + Π_ε(x_t + α · normalize(∇ₓ CE(f(x_t), y)) − x))

The default α is 2.5·ε / steps. Without a random start, L∞ PGD is bit-identical to torchattacks' ``PGD`` and
Foolbox's ``LinfPGD`` (same α, steps) on the same model and input.
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.attacks._common import EpsLike, LabelLike, l2_upper, prepare
from explorer.attacks._iterative import run_iterative
from explorer.attacks.bim import step_sizes
from explorer.attacks.config import check_steps
from explorer.attacks.norms import Norm, get_norm
from explorer.attacks.result import AttackResult


def pgd(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: LabelLike, eps: EpsLike = 8 / 255, *,
        steps: int = 10, alpha: float | None = None, norm: str | Norm = "linf", random_start: bool = True,
        seed: int | None = 0, generator: torch.Generator | None = None, target: LabelLike | None = None,
        trace: bool = True) -> AttackResult:
    """Projected Gradient Descent (Madry et al., 2018), L∞ or L2.

    Args:
        model, x, y, eps, target, trace: as in :func:`explorer.attacks.fgsm` (for L2, ε is the radius).
        steps: iterations (capped by ``EXPLORER_MAX_STEPS``).
        alpha: absolute step size (default 2.5·ε / steps per row).
        norm: ``"linf"`` or ``"l2"`` (or a plug-in from :mod:`explorer.attacks.norms`).
        random_start: start uniformly in the ε-ball (drawn from ``generator``, or a CPU generator seeded
            with ``seed``; the global RNG is never used). With a list of ε for one image, every row shares
            the same unit draw, so row i equals a separate call at ε_i.
    """
    check_steps(steps)
    nm = get_norm(norm)
    p = prepare(model, x, y, eps, target, eps_upper=1.0 if nm.name == "linf" else l2_upper(x))
    name = "pgd" if nm.name == "linf" else "pgd-l2"
    return run_iterative(model, name, p.x, p.y, p.target, p.eps, step_sizes("pgd", p.eps, steps, alpha), steps, nm,
                         random_start=random_start, seed=seed, generator=generator, shared_start=p.expanded,
                         trace=trace)
