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

from explorer.attacks._common import EpsLike, LabelLike, as_images, l2_upper, prepare
from explorer.attacks._iterative import iterative_rows, pgd_iterates, run_iterative
from explorer.attacks.bim import step_sizes
from explorer.attacks.config import check_steps
from explorer.attacks.norms import Norm, get_norm
from explorer.attacks.registry import ALPHA, RANDOM_START, SEED, AttackSpec, register, steps_param
from explorer.attacks.result import AttackResult


def pgd(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: LabelLike, eps: EpsLike = 8 / 255, *,
        steps: int = 10, alpha: float | None = None, norm: str | Norm = "linf", random_start: bool = True,
        seed: int | None = 0, generator: torch.Generator | None = None, target: LabelLike | None = None,
        trace: bool = True, start: np.ndarray | torch.Tensor | None = None) -> AttackResult:
    """Projected Gradient Descent (Madry et al., 2018), L∞ or L2.

    Args:
        model, x, y, eps, target, trace: as in :func:`explorer.attacks.fgsm` (for L2, ε is the radius).
        steps: iterations (capped by ``EXPLORER_MAX_STEPS``).
        alpha: absolute step size (default 2.5·ε / steps per row).
        norm: ``"linf"`` or ``"l2"`` (or a plug-in from :mod:`explorer.attacks.norms`).
        random_start: start uniformly in the ε-ball (drawn from ``generator``, or a CPU generator seeded
            with ``seed``; the global RNG is never used). With a list of ε for one image, every row shares
            the same unit draw, so row i equals a separate call at ε_i: bit for bit in L∞ (the sign absorbs
            rounding); in L2 to about 1e-7, because the float32 rounding of the gradient (and of its norm)
            depends on the batch size (tested to 1e-5 in ``tests/runs/test_requests.py``). The input gradient
            itself differs by ~3e-9 between a batch of 7 and a batch of 1 (the conv/linear backward kernels
            block differently, even on one thread), so exact L2 rows would need one backward per row.
        start: an explicit starting point (same shape as ``x``), projected onto the ε-ball and [0, 1]; it
            replaces the random start (pass a peer library's own draw to compare random-start PGD exactly).
    """
    check_steps(steps)
    nm = get_norm(norm)
    p = prepare(model, x, y, eps, target, eps_upper=1.0 if nm.name == "linf" else l2_upper(x))
    name = "pgd" if nm.name == "linf" else "pgd-l2"
    s0 = None
    if start is not None:
        s0 = as_images(model, start)
        if s0.shape[1:] != p.x.shape[1:] or len(s0) not in (1, len(p.x)):
            raise ValueError(f"start has shape {tuple(s0.shape)}; it must match the images {tuple(p.x.shape)}")
        s0 = s0.expand_as(p.x)
    return run_iterative(model, name, p.x, p.y, p.target, p.eps, step_sizes("pgd", p.eps, steps, alpha), steps, nm,
                         random_start=random_start, seed=seed, generator=generator, shared_start=p.expanded,
                         trace=trace, start=s0)


def pgd_path(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: LabelLike, eps: float, norm: str | Norm = "linf",
             steps: int = 10, step_size: float | None = None,
             bounds: tuple[float, float] | None = None) -> list[torch.Tensor]:
    """PGD iterates ``[x, x_1, ..., x_steps]`` of any batch (rows: ``N x D`` points or ``N x C x H x W``
    images), untargeted, no random start, clipped to ``bounds`` (default: no box, as for points of a plane).

    The same step as :func:`pgd` (``explorer.attacks._iterative.ascent_step``); ``steps=1`` with
    ``step_size=eps`` is FGSM (the fast gradient method for L2). ``step_size`` defaults to 2.5·ε / steps.
    """
    if eps < 0 or steps < 1:
        raise ValueError("eps must be >= 0 and steps >= 1")
    xt = torch.as_tensor(x).detach().float()
    yt = torch.as_tensor(np.asarray(y, np.int64) if not isinstance(y, torch.Tensor) else y).reshape(-1).long()
    alpha = 2.5 * eps / steps if step_size is None else float(step_size)
    return pgd_iterates(model, xt, yt.to(xt.device), float(eps), steps, alpha, get_norm(norm), bounds)


def _runner(norm: str):
    def run(model, x, y, c, trace=True) -> AttackResult:
        return pgd(model, x, y, c.eps, steps=c.steps, alpha=c.alpha, norm=norm, random_start=c.random_start,
                   seed=c.seed, target=c.target, trace=trace)
    return run


_PAPER = ("Madry et al., 2018", "https://arxiv.org/abs/1706.06083")
SPEC = register(AttackSpec(
    name="pgd", label="PGD (L∞)", kind="budget", norm="linf", order=2, paper=_PAPER[0], url=_PAPER[1],
    summary="BIM from a random start inside the ε-box: the standard strong L∞ attack.",
    params=(steps_param(), ALPHA, RANDOM_START, SEED), cost=lambda c: c.steps + 2, run=_runner("linf"),
    rows=iterative_rows("pgd", "linf", seeded=True), alpha_fraction=lambda steps: 2.5 / steps, seeded=True,
    compare="fgsm",
))
SPEC_L2 = register(AttackSpec(
    name="pgd-l2", label="PGD (L2)", kind="budget", norm="l2", order=3, paper=_PAPER[0], url=_PAPER[1],
    summary="PGD whose steps follow the gradient's direction and whose budget ε bounds the L2 length of the "
            "whole perturbation (a few pixels may move a lot).",
    params=(steps_param(), ALPHA, RANDOM_START, SEED), cost=lambda c: c.steps + 2, run=_runner("l2"),
    rows=iterative_rows("pgd-l2", "l2", seeded=True), alpha_fraction=lambda steps: 2.5 / steps, seeded=True,
))
