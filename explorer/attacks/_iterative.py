"""The one gradient loop behind BIM, PGD (L∞ / L2) and MI-FGSM; the norm plug-in supplies the geometry.

Each step (written op for op like torchattacks / Foolbox, so L∞ runs are bit-identical to theirs)::

    g     = ∇ₓ objective(x_t)                     (Σ CE(y), or −Σ CE(target))
    g     = g / mean|g| + μ · g_prev               (MI-FGSM only)
    x'    = x_t + α · norm.normalize(g)
    x_t+1 = clip_[0,1](x + norm.project(x' − x, ε))

ε and α are per-row tensors: a batch may hold one image at many ε (a sweep) or many images at one ε.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from explorer.attacks._common import (
    Recorder,
    ascent_objective,
    cross_entropy,
    finish,
    generator_for,
    grad_mode,
    rows,
    summed_objective,
)
from explorer.attacks.norms import Norm
from explorer.attacks.result import AttackResult


def random_start_point(x: torch.Tensor, eps_r: float | torch.Tensor, norm: Norm, generator: torch.Generator,
                       shared: bool) -> torch.Tensor:
    """x + ε·u clipped to [0, 1], u uniform in the unit ball, drawn on the CPU from ``generator``.

    ``shared=True`` draws one u for all rows (a sweep of one image: row i equals a separate call at ε_i
    with the same seed).
    """
    shape = (1, *x.shape[1:]) if shared else tuple(x.shape)
    unit = norm.random(shape, generator).to(x.device)
    scale = eps_r.reshape(-1, *([1] * (x.dim() - 1))) if isinstance(eps_r, torch.Tensor) else eps_r
    return torch.clamp(x + scale * unit, min=0, max=1)


def ascent_step(adv: torch.Tensor, x: torch.Tensor, grad: torch.Tensor, alpha: float | torch.Tensor,
                eps: float | torch.Tensor, norm: Norm,
                bounds: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """One PGD step, the only one in the explorer: ``x + Π_ε(adv + α·normalize(g) − x)``, clipped to ``bounds``
    (``None``: no box, for points of a plane such as the 2-D lab's). Rows are any ``N x ...`` shape."""
    adv = adv + alpha * norm.normalize(grad)
    delta = norm.project(adv - x, eps)
    return x + delta if bounds is None else torch.clamp(x + delta, min=bounds[0], max=bounds[1])


def pgd_loop(grad: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, start: torch.Tensor, eps: float,
             steps: int, alpha: float, norm: Norm, bounds: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """``steps`` PGD steps (:func:`ascent_step`) from ``start`` around ``x`` with the gradient the caller computes:
    adversarial training's (the model in training mode) and EOT's (a gradient averaged over noise draws,
    Athalye et al. 2018) use it, so the explorer has one PGD loop."""
    cur = start.detach()
    for _ in range(int(steps)):
        cur = ascent_step(cur, x, grad(cur), alpha, eps, norm, bounds).detach()
    return cur


def pgd_iterates(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, alpha: float,
                 norm: Norm, bounds: tuple[float, float] | None = None) -> list[torch.Tensor]:
    """Untargeted PGD iterates ``[x, x_1, ..., x_steps]`` of a batch of any shape (``N x D`` points or
    ``N x C x H x W`` images), no random start: the loop of :func:`run_iterative` (same objective, same
    :func:`ascent_step`) without its image checks, trace or result, for inputs that are not [0, 1] images."""
    x0 = x.detach()
    out = [x0]
    cur = x0
    with grad_mode():
        for _ in range(int(steps)):
            leaf = cur.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(summed_objective(model(leaf), y, None), leaf)
            cur = ascent_step(cur, x0, grad, alpha, eps, norm, bounds).detach()
            out.append(cur)
    return out


def run_iterative(model: torch.nn.Module, attack: str, x: torch.Tensor, y: torch.Tensor,
                  target: torch.Tensor | None, eps: np.ndarray, alpha: np.ndarray, steps: int, norm: Norm, *,
                  random_start: bool = False, seed: int | None = None, generator: torch.Generator | None = None,
                  decay: float | None = None, shared_start: bool = False, trace: bool = True,
                  start: torch.Tensor | None = None) -> AttackResult:
    """Run the loop on prepared inputs (see ``explorer.attacks._common.prepare``).

    ``start``: an explicit first iterate (N x ... like ``x``), projected onto the ε-ball and [0, 1]; it
    replaces the random start (an oracle comparison of random-start PGD passes the peer's own draw).
    """
    view = (-1,) + (1,) * (x.dim() - 1)
    if len(eps) and np.all(eps == eps[0]) and np.all(alpha == alpha[0]):
        # one ε for every row: Python scalars, op for op the peers' arithmetic (a scalar is rounded to
        # float32 inside each kernel, so the per-row path below gives the same bits)
        eps_r: float | torch.Tensor = float(eps[0])
        alpha_r: float | torch.Tensor = float(alpha[0])
    else:
        eps_r = rows(eps, x).reshape(view)
        alpha_r = rows(alpha, x).reshape(view)
    rec = Recorder(trace, x, y, target)
    with grad_mode():
        if start is not None:
            adv = torch.clamp(x + norm.project(start.to(x) - x, eps_r), min=0, max=1)
        elif random_start:
            adv = random_start_point(x, eps_r, norm, generator_for(seed, generator), shared_start)
        else:
            adv = x.clone()
        momentum = torch.zeros_like(x) if decay is not None else None
        for step in range(steps):
            adv.requires_grad_(True)
            logits = model(adv)
            if trace:
                ce = cross_entropy(logits, y, target)
                if step > 0:
                    rec.add(logits, adv, ce)
                objective = ascent_objective(ce, target)
            else:
                objective = summed_objective(logits, y, target)
            (grad,) = torch.autograd.grad(objective, adv)
            adv = adv.detach()
            if momentum is not None:
                grad = grad / torch.mean(torch.abs(grad), dim=tuple(range(1, grad.dim())), keepdim=True).clamp_min(
                    1e-12)
                grad = grad + momentum * decay
                momentum = grad
            adv = ascent_step(adv, x, grad, alpha_r, eps_r, norm)
    return finish(model, attack, x, adv, y, target, eps, rec, trace)


def iterative_rows(attack: str, norm: str, *, seeded: bool = False, momentum: bool = False):
    """The sweep adapter of an attack that runs this loop: one image repeated once per ε (``x``: E rows), each
    row with its own ε and ``α = alpha_fraction · ε``; the random start (``seeded``) shares one unit draw across
    rows, so row i equals a separate call at ε_i."""
    from explorer.attacks.config import alpha_fraction
    from explorer.attacks.norms import get_norm

    nm = get_norm(norm)

    def rows_fn(model, x, y, target, eps: np.ndarray, config) -> torch.Tensor:
        frac = alpha_fraction(attack, config.steps, config.eps, config.alpha)
        e = np.asarray(eps, np.float64)
        res = run_iterative(model, attack, x, y, target, e, e * frac, config.steps, nm,
                            random_start=seeded and config.random_start, seed=config.seed,
                            decay=config.decay if momentum else None, shared_start=True, trace=False)
        return res.adversarial

    return rows_fn
