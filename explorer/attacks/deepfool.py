"""DeepFool (Moosavi-Dezfooli, Fawzi & Frossard, 2016, "DeepFool: a simple and accurate method to fool deep
neural networks", CVPR).

A minimal-perturbation attack: no ε budget. At each step the classifier is linearised around the current
point and the image moves to the nearest linearised decision boundary among the ``candidates`` most likely
classes, plus a small overshoot::

    f'_k = f_k(x_t) − f_y(x_t),  w_k = ∇ₓ f'_k          (k among the top candidates, k ≠ y)
    l    = argmin_k |f'_k| / ||w_k||_*                   (||·||_* the dual norm: L2 for L2, L1 for L∞)
    r_t  = (|f'_l| + 1e-4) / ||w_l||_* · normalize(w_l)
    x_{t+1} = clip_[0,1](x + (1 + overshoot) · Σ r)

Rows stop as soon as they are misclassified; the result's ``linf`` / ``l2`` are the perturbation it found.
Targeted: the step goes towards the boundary between the current leader and the target, until the target
leads. Same update as Foolbox's ``L2DeepFoolAttack`` / ``LinfDeepFoolAttack``.
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.attacks._common import LabelLike, Recorder, finish, grad_mode, prepare, succeeded
from explorer.attacks.config import check_steps
from explorer.attacks.norms import Norm, get_norm
from explorer.attacks.config import MAX_CANDIDATES
from explorer.attacks.registry import AttackSpec, Param, register, steps_param
from explorer.attacks.result import AttackResult


def _candidates(logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """N x k classes: the true class first, then the k−1 most likely other classes of the clean image."""
    k = min(k, logits.shape[1])
    others = logits.detach().scatter(1, y[:, None], float("-inf")).topk(k - 1, dim=1).indices
    return torch.cat([y[:, None], others], dim=1)


def deepfool(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: LabelLike, *, steps: int = 50,
             overshoot: float = 0.02, candidates: int = 10, norm: str | Norm = "l2",
             target: LabelLike | None = None, trace: bool = True) -> AttackResult:
    """DeepFool (Moosavi-Dezfooli et al., 2016): the smallest perturbation that crosses a linearised boundary.

    Args:
        model, x, y, target, trace: as in :func:`explorer.attacks.fgsm` (no ε: the attack finds the size).
        steps: the iteration cap (rows stop once they flip).
        overshoot: the factor 1 + overshoot applied to the accumulated perturbation (crosses the boundary).
        candidates: how many of the most likely classes (the true one included) are linearised per step.
        norm: ``"l2"`` (the paper's main variant) or ``"linf"``.
    """
    check_steps(steps)
    if overshoot < 0:
        raise ValueError(f"overshoot must be non-negative, got {overshoot}")
    if candidates < 2:
        raise ValueError(f"candidates must be at least 2, got {candidates}")
    nm = get_norm(norm)
    p = prepare(model, x, y, None, target)
    xt, yt, tt = p.x, p.y, p.target
    rec = Recorder(trace, xt, yt, tt)
    view = (-1,) + (1,) * (xt.dim() - 1)
    with grad_mode():
        r_total = torch.zeros_like(xt)
        adv = xt.clone()
        cand = None
        for it in range(steps + 1):
            adv.requires_grad_(True)
            logits = model(adv)
            if it > 0:
                rec.add(logits, adv)
            active = ~succeeded(logits.detach().argmax(dim=1), yt, tt)
            if it == steps or not bool(active.any()):
                break
            if tt is None:
                if cand is None:
                    cand = _candidates(logits, yt, candidates)
                ref = logits.gather(1, cand[:, :1]).squeeze(1)
                diffs, grads = [], []
                for j in range(1, cand.shape[1]):
                    d = logits.gather(1, cand[:, j: j + 1]).squeeze(1) - ref
                    (g,) = torch.autograd.grad(d.sum(), adv, retain_graph=j < cand.shape[1] - 1)
                    diffs.append(d.detach())
                    grads.append(g)
                f = torch.stack(diffs)  # (K-1) x N
                w = torch.stack(grads)  # (K-1) x N x C x H x W
                dual = torch.stack([nm.dual(g) for g in grads])  # (K-1) x N
                dist = f.abs() / (dual + 1e-8)
                best = dist.argmin(dim=0)  # N
                idx = torch.arange(len(xt), device=xt.device)
                f_best, w_best, dual_best = f[best, idx], w[best, idx], dual[best, idx]
            else:
                leader = logits.detach().scatter(1, tt[:, None], float("-inf")).argmax(dim=1)
                d = logits.gather(1, tt[:, None]).squeeze(1) - logits.gather(1, leader[:, None]).squeeze(1)
                (w_best,) = torch.autograd.grad(d.sum(), adv)
                f_best, dual_best = d.detach(), nm.dual(w_best)
            with torch.no_grad():
                step = ((f_best.abs() + 1e-4) / (dual_best + 1e-8)).reshape(view) * nm.normalize(w_best)
                r_total = r_total + step * active.reshape(view).to(step.dtype)
                adv = torch.clamp(xt + (1.0 + overshoot) * r_total, min=0, max=1)
    return finish(model, "deepfool", xt, adv, yt, tt, p.eps, rec, trace, final_logits=logits.detach(),
                  record_final=False)


def _run(model, x, y, c, trace=True) -> AttackResult:
    return deepfool(model, x, y, steps=c.steps, overshoot=c.overshoot, candidates=c.candidates, target=c.target,
                    trace=trace)


SPEC = register(AttackSpec(
    name="deepfool", label="DeepFool (L2)", kind="minimal", norm="l2", order=7,
    paper="Moosavi-Dezfooli et al., 2016", url="https://arxiv.org/abs/1511.04599",
    summary="walks to the nearest linearised decision boundary: no budget, it finds a small L2 perturbation.",
    params=(steps_param(50, "the iteration cap (rows stop once they flip)"),
            Param("overshoot", "Overshoot", 0.02, low=0.0, high=1.0, step=0.01, field="overshoot",
                  help="how far past the linearised boundary DeepFool steps (0.02 = 2%)"),
            Param("candidates", "Candidate classes", 10, low=2, high=MAX_CANDIDATES, kind="int",
                  field="candidates", help="the most likely classes linearised per step")),
    cost=lambda c: c.steps + 2, run=_run,
))
