"""Carlini-Wagner L2 (Carlini & Wagner, 2017, "Towards Evaluating the Robustness of Neural Networks",
IEEE S&P).

A minimal-perturbation attack solved as an optimisation in tanh space (so the image stays in [0, 1])::

    x'(w) = (tanh(w) + 1) / 2
    minimise ||x'(w) − x||₂² + c · max(Z_y − max_{k≠y} Z_k, −κ)        untargeted
    minimise ||x'(w) − x||₂² + c · max(max_{k≠t} Z_k − Z_t, −κ)        targeted

with Adam on w, and a binary search over c per image (multiply by 10 until an image flips, then bisect).
The result is, per image, the smallest-L2 iterate that was misclassified (or reached the target); images
that never flipped return the last iterate with ``success`` False.
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.attacks._common import LabelLike, Recorder, finish, grad_mode, margin, prepare, succeeded
from explorer.attacks.config import MAX_CW_SEARCH_STEPS, check_steps
from explorer.attacks.result import AttackResult
from explorer.attacks.registry import AttackSpec, Param, register, steps_param


def carlini_wagner(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: LabelLike, *, c: float = 1.0,
                   kappa: float = 0.0, steps: int = 100, lr: float = 0.01, search_steps: int = 3,
                   target: LabelLike | None = None, trace: bool = True) -> AttackResult:
    """Carlini-Wagner L2 attack (Carlini & Wagner, 2017).

    Args:
        model, x, y, target, trace: as in :func:`explorer.attacks.fgsm` (no ε: the attack finds the size).
        c: the initial trade-off constant between distance and misclassification.
        kappa: the confidence κ (how far past the boundary the logits must go before the loss stops pushing).
        steps: Adam steps per binary-search round (capped by ``EXPLORER_MAX_STEPS``).
        lr: Adam's learning rate on the tanh-space variable.
        search_steps: binary-search rounds over c (1 = no search).
    """
    check_steps(steps, name="cw steps")
    if not 1 <= search_steps <= MAX_CW_SEARCH_STEPS:
        raise ValueError(f"search_steps must be between 1 and {MAX_CW_SEARCH_STEPS}, got {search_steps}")
    if not c > 0 or not lr > 0 or kappa < 0:
        raise ValueError("c and lr must be positive and kappa non-negative")
    p = prepare(model, x, y, None, target)
    xt, yt, tt = p.x, p.y, p.target
    n = len(xt)
    rec = Recorder(trace, xt, yt, tt)
    dims = tuple(range(1, xt.dim()))
    view = (-1,) + (1,) * (xt.dim() - 1)
    b1, b2, adam_eps = 0.9, 0.999, 1e-8
    with grad_mode():
        w0 = torch.atanh(torch.clamp(xt * 2 - 1, min=-1 + 1e-6, max=1 - 1e-6))
        c_rows = torch.full((n,), float(c), device=xt.device)
        lower = torch.zeros(n, device=xt.device)
        upper = torch.full((n,), float("inf"), device=xt.device)
        best_adv = xt.clone()
        best_l2 = torch.full((n,), float("inf"), device=xt.device)
        last_adv = xt.clone()
        for _ in range(search_steps):
            w = w0.clone()
            m = torch.zeros_like(w)
            v = torch.zeros_like(w)
            flipped = torch.zeros(n, dtype=torch.bool, device=xt.device)
            for it in range(steps):
                w.requires_grad_(True)
                adv = (torch.tanh(w) + 1) / 2
                logits = model(adv)
                l2sq = ((adv - xt) ** 2).sum(dim=dims)
                loss = l2sq + c_rows * torch.clamp(margin(logits, yt, tt), min=-kappa)
                (g,) = torch.autograd.grad(loss.sum(), w)
                with torch.no_grad():
                    adv = adv.detach()
                    rec.add(logits, adv, loss)
                    ok = succeeded(logits.argmax(dim=1), yt, tt)
                    better = ok & (l2sq.detach() < best_l2)
                    best_l2 = torch.where(better, l2sq.detach(), best_l2)
                    best_adv = torch.where(better.reshape(view), adv, best_adv)
                    flipped |= ok
                    last_adv = adv
                    m = b1 * m + (1 - b1) * g
                    v = b2 * v + (1 - b2) * g * g
                    m_hat = m / (1 - b1 ** (it + 1))
                    v_hat = v / (1 - b2 ** (it + 1))
                    w = w.detach() - lr * m_hat / (torch.sqrt(v_hat) + adam_eps)
            upper = torch.where(flipped, torch.minimum(upper, c_rows), upper)
            lower = torch.where(flipped, lower, torch.maximum(lower, c_rows))
            c_rows = torch.where(torch.isinf(upper), c_rows * 10, (lower + upper) / 2)
        found = torch.isfinite(best_l2)
        adv = torch.where(found.reshape(view), best_adv, last_adv)
    return finish(model, "cw", xt, adv, yt, tt, p.eps, rec, trace, record_final=False)


def _run(model, x, y, c, trace=True) -> AttackResult:
    return carlini_wagner(model, x, y, c=c.cw_c, kappa=c.cw_kappa, steps=c.cw_steps, lr=c.cw_lr,
                          search_steps=c.cw_search_steps, target=c.target, trace=trace)


def _check(c, max_steps) -> None:
    if not c.cw_c > 0 or not c.cw_lr > 0 or c.cw_kappa < 0:
        raise ValueError("cw_c and cw_lr must be positive and cw_kappa non-negative")


SPEC = register(AttackSpec(
    name="cw", label="Carlini-Wagner (L2)", kind="minimal", norm="l2", order=8,
    paper="Carlini & Wagner, 2017", url="https://arxiv.org/abs/1608.04644",
    summary="optimises ‖δ‖₂² + c·(margin) with Adam: no budget, it finds a small L2 perturbation.",
    params=(Param("c", "Constant c", 1.0, low=0.01, high=100.0, step=0.5, field="cw_c", aliases=("--cw-c",),
                  help="the trade-off between a small ‖δ‖₂ and a large margin (binary-searched)"),
            steps_param(100, "Adam steps per binary-search round", name="adam_steps", field_name="cw_steps",
                        label="Adam steps"),
            Param("lr", "Adam learning rate", 0.01, low=1e-4, high=1.0, step=0.01, field="cw_lr",
                  help="the learning rate on the tanh-space variable"),
            Param("kappa", "Confidence κ", 0.0, low=0.0, high=100.0, step=0.5, field="cw_kappa",
                  help="how far past the boundary the logits must go"),
            Param("search_steps", "Search rounds", 3, low=1, high=MAX_CW_SEARCH_STEPS, kind="int",
                  field="cw_search_steps", help="binary-search rounds over c")),
    cost=lambda c: c.cw_steps * c.cw_search_steps + 1, run=_run, check=_check,
))
