"""APGD-CE: Auto-PGD on the cross-entropy (Croce & Hein, 2020, "Reliable evaluation of adversarial robustness
with an ensemble of diverse parameter-free attacks", ICML; the core of AutoAttack). L∞ and L2.

PGD without a step size to tune: the step starts at 2ε and is halved at checkpoints where progress stalled, and
each step mixes the gradient step with the previous one (momentum 0.75)::

    z_{k+1} = Π_ε(x_k + η_k · normalize(∇ CE(x_k)))
    x_{k+1} = Π_ε(x_k + 0.75 · (z_{k+1} − x_k) + 0.25 · (x_k − x_{k−1}))     (first step: z_1 alone)

Checkpoints every p_j·N iterations (first at 0.22·N, then shrinking by 0.03·N down to 0.06·N): the step is
halved (and the iterate reset to the best point so far) where the loss rose in fewer than ρ = 0.75 of the
steps since the last checkpoint, or where the step was not halved and the best loss did not improve. Restarts
attack only the images not yet fooled, each from a new random start (drawn from ``seed``).

Oracle: this is written op for op like ``torchattacks.APGD`` (3.5.1, ``loss="ce"``), and with the same random
start (``start=`` its draw, or the same ``seed`` on the CPU: the draws follow its order) the adversarials of the
images it fools are **bit-identical** (``tests/attacks/test_apgd.py``). Where the attack fails, torchattacks
returns the clean image; we return the highest-loss iterate (a view of how close it came), flagged
``success=False``. Targeted (an extension, not in the paper's APGD-CE): the same schedule ascends −CE(target).
ε may differ per row (a sweep); a single image repeated for a list of ε shares one random draw per restart, so
row i equals a separate call at ε_i.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from explorer.attacks._common import (
    EpsLike,
    LabelLike,
    Recorder,
    class_of_interest,
    classify,
    finish,
    grad_mode,
    l2_upper,
    prepare,
    rows,
    succeeded,
)
from explorer.attacks.config import check_steps
from explorer.attacks.registry import SEED, AttackSpec, Param, register, steps_param
from explorer.attacks.result import AttackResult


def _loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Per-row loss to increase: CE(y) untargeted, −CE(target) targeted."""
    ce = F.cross_entropy(logits, class_of_interest(y, target), reduction="none")
    return ce if target is None else -ce


def _not_fooled(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    return ~succeeded(logits.detach().max(1)[1], y, target)


def _random_start(x: torch.Tensor, eps, shape: tuple[int, ...], norm: str,
                  generator: torch.Generator) -> torch.Tensor:
    """torchattacks' start, op for op: ``x + ε·t / max|t|`` with t ~ U[-1, 1] (L∞), ``x + ε·t / ||t||₂`` with
    t ~ N(0, 1) (L2); t drawn on the CPU from ``generator`` (``shape``'s first axis may be 1: shared by rows)."""
    dims = tuple(range(1, len(shape)))
    ones = torch.ones([x.shape[0]] + [1] * (x.dim() - 1), device=x.device)
    if norm == "linf":
        t = (2 * torch.rand(shape, generator=generator) - 1).to(x.device)
        return x + eps * ones * t / t.reshape([t.shape[0], -1]).abs().max(dim=1, keepdim=True)[0].reshape(
            [-1] + [1] * len(dims))
    t = torch.randn(shape, generator=generator).to(x.device)
    return x + eps * ones * t / ((t ** 2).sum(dim=dims, keepdim=True).sqrt() + 1e-12)


def _oscillation(losses: np.ndarray, j: int, k: int, rho: float) -> np.ndarray:
    t = np.zeros(losses.shape[1])
    for c in range(k):
        t += losses[j - c] > losses[j - c - 1]
    return t <= k * rho * np.ones(t.shape)


def _single_run(model, x, y, target, eps, x_adv, steps: int, norm: str, rho: float, momentum: float,
                rec: Recorder | None, rec_rows: torch.Tensor):
    """One APGD run from ``x_adv`` (already in the ball); returns (best-loss point, not-fooled, best loss,
    last fooled iterate). ``eps`` is a Python float or an N x 1 x ... tensor."""
    dims = tuple(range(1, x.dim()))
    steps_2, steps_min, size_decr = max(int(0.22 * steps), 1), max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    ones = torch.ones([x.shape[0]] + [1] * (x.dim() - 1), device=x.device)
    x_adv = x_adv.clamp(0.0, 1.0)
    x_best = x_adv.clone()
    x_best_adv = x_adv.clone()
    loss_steps = torch.zeros([steps, x.shape[0]])
    x_adv.requires_grad_()
    with grad_mode():
        logits = model(x_adv)
        loss_indiv = _loss(logits, y, target)
        loss = loss_indiv.sum()
        grad = torch.autograd.grad(loss, [x_adv])[0].detach().contiguous()  # layout as the peer: sums in one order
    grad_best = grad.clone()
    acc = _not_fooled(logits, y, target)
    loss_best = loss_indiv.detach().clone()
    step_size = eps * ones * torch.Tensor([2.0]).to(x.device).reshape([1] * x.dim())
    x_adv_old = x_adv.clone()
    k = steps_2 + 0
    u = np.arange(x.shape[0])
    counter3 = 0
    loss_best_last_check = loss_best.clone()
    reduced_last_check = np.zeros(loss_best.shape) == np.zeros(loss_best.shape)
    eps_full = eps * torch.ones(x.shape, device=x.device) if norm == "l2" else None
    for i in range(steps):
        with torch.no_grad():
            x_adv = x_adv.detach()
            grad2 = x_adv - x_adv_old
            x_adv_old = x_adv.clone()
            a = momentum if i > 0 else 1.0
            if norm == "linf":
                x_adv_1 = x_adv + step_size * torch.sign(grad)
                x_adv_1 = torch.clamp(torch.min(torch.max(x_adv_1, x - eps), x + eps), 0.0, 1.0)
                x_adv_1 = torch.clamp(torch.min(torch.max(x_adv + (x_adv_1 - x_adv) * a + grad2 * (1 - a),
                                                          x - eps), x + eps), 0.0, 1.0)
            else:
                x_adv_1 = x_adv + step_size * grad / ((grad ** 2).sum(dim=dims, keepdim=True).sqrt() + 1e-12)
                x_adv_1 = torch.clamp(x + (x_adv_1 - x) / (((x_adv_1 - x) ** 2).sum(dim=dims, keepdim=True).sqrt()
                                                           + 1e-12)
                                      * torch.min(eps_full, ((x_adv_1 - x) ** 2).sum(dim=dims, keepdim=True).sqrt()),
                                      0.0, 1.0)
                x_adv_1 = x_adv + (x_adv_1 - x_adv) * a + grad2 * (1 - a)
                x_adv_1 = torch.clamp(x + (x_adv_1 - x) / (((x_adv_1 - x) ** 2).sum(dim=dims, keepdim=True).sqrt()
                                                           + 1e-12)
                                      * torch.min(eps_full, ((x_adv_1 - x) ** 2).sum(dim=dims, keepdim=True).sqrt()
                                                  + 1e-12), 0.0, 1.0)
            x_adv = x_adv_1 + 0.0
        x_adv.requires_grad_()
        with grad_mode():
            logits = model(x_adv)
            loss_indiv = _loss(logits, y, target)
            loss = loss_indiv.sum()
            grad = torch.autograd.grad(loss, [x_adv])[0].detach().contiguous()  # layout as the peer: sums in one order
        pred = _not_fooled(logits, y, target)
        if rec is not None:
            rec(logits.detach(), x_adv.detach(), loss_indiv.detach(), rec_rows)
        acc = torch.min(acc, pred)
        fooled = ~pred
        x_best_adv[fooled] = x_adv[fooled].detach() + 0.0
        with torch.no_grad():
            y1 = loss_indiv.detach().clone()
            loss_steps[i] = y1.cpu() + 0
            ind = y1 > loss_best
            x_best[ind] = x_adv[ind].clone()
            grad_best[ind] = grad[ind].clone()
            loss_best[ind] = y1[ind] + 0
            counter3 += 1
            if counter3 == k:
                fl_osc = _oscillation(loss_steps.detach().cpu().numpy(), i, k, rho)
                fl_reduce_no_impr = (~reduced_last_check) * (loss_best_last_check.cpu().numpy()
                                                             >= loss_best.cpu().numpy())
                fl_osc = ~(~fl_osc * ~fl_reduce_no_impr)
                reduced_last_check = np.copy(fl_osc)
                loss_best_last_check = loss_best.clone()
                if np.sum(fl_osc) > 0:
                    step_size[u[fl_osc]] /= 2.0
                    where = np.where(fl_osc)
                    x_adv = x_adv.detach()
                    x_adv[where] = x_best[where].clone()
                    grad[where] = grad_best[where].clone()
                counter3 = 0
                k = np.maximum(k - size_decr, steps_min)
    return x_best.detach(), acc, loss_best, x_best_adv.detach()


def apgd(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: LabelLike, eps: EpsLike = 8 / 255, *,
         steps: int = 10, norm: str = "linf", restarts: int = 1, seed: int = 0, rho: float = 0.75,
         momentum: float = 0.75, target: LabelLike | None = None, start: np.ndarray | torch.Tensor | None = None,
         trace: bool = True) -> AttackResult:
    """APGD-CE (Croce & Hein, 2020), L∞ or L2.

    Args:
        model, x, y, eps, target, trace: as in :func:`explorer.attacks.fgsm` (for L2, ε is the radius).
        steps: iterations per restart (capped by ``EXPLORER_MAX_STEPS``).
        norm: ``"linf"`` or ``"l2"``.
        restarts: runs from new random starts for the images not fooled yet.
        seed: the random starts come from ``torch.Generator().manual_seed(seed)`` (never the global RNG).
        rho: the checkpoint threshold ρ (the step is halved where the loss rose in fewer than ρ of the steps).
        momentum: the weight of the new step against the previous one (0.75 in the paper; 1 = no momentum).
        start: the first restart's starting point (same shape as ``x``; used as given, then clipped to
            [0, 1]), in place of the random draw: an oracle comparison passes the peer's own draw.
    """
    check_steps(steps)
    if norm not in ("linf", "l2"):
        raise ValueError(f"unknown norm {norm!r}: use 'linf' or 'l2'")
    if not 1 <= int(restarts) <= 100:
        raise ValueError(f"restarts must be between 1 and 100, got {restarts}")
    if not 0 < rho <= 1 or not 0 < momentum <= 1:
        raise ValueError("rho and momentum must be in (0, 1]")
    p = prepare(model, x, y, eps, target, eps_upper=1.0 if norm == "linf" else l2_upper(x))
    xt, yt, tt = p.x, p.y, p.target
    n = len(xt)
    view = (-1,) + (1,) * (xt.dim() - 1)
    uniform = bool(len(p.eps)) and bool(np.all(p.eps == p.eps[0]))
    eps_rows = rows(p.eps, xt).reshape(view)
    s0 = None
    if start is not None:
        s0 = torch.as_tensor(start).detach().to(device=xt.device, dtype=torch.float32).reshape(-1, *xt.shape[1:]) \
            if torch.as_tensor(start).numel() % max(int(np.prod(xt.shape[1:])), 1) == 0 else torch.as_tensor(start)
        if not bool(torch.isfinite(s0).all()):
            raise ValueError("start must hold finite values")
        if s0.shape[1:] != xt.shape[1:] or len(s0) not in (1, n):
            raise ValueError(f"start has shape {tuple(s0.shape)}; it must match the images {tuple(xt.shape)}")
        s0 = s0.expand_as(xt)
    gen = torch.Generator().manual_seed(int(seed))
    recorder = Recorder(trace, xt, yt, tt)
    clean_logits = classify(model, xt)
    # the trace: every row's current iterate (rows a restart does not attack keep their last value)
    state = {"loss": F.cross_entropy(clean_logits, class_of_interest(yt, tt), reduction="none").detach().float(),
             "logits": clean_logits.detach(), "adv": xt.clone()}

    def record(logits, adv, loss_indiv, idx):
        lg = state["logits"].clone()
        lg[idx] = logits
        ad = state["adv"].clone()
        ad[idx] = adv
        ls = state["loss"].clone()
        ls[idx] = loss_indiv.float() if tt is None else -loss_indiv.float()
        state.update(logits=lg, adv=ad, loss=ls)
        recorder.add(lg, ad, ls)

    adv = xt.clone()
    best = xt.clone()
    best_loss = torch.full((n,), -float("inf"), device=xt.device)
    acc = _not_fooled(clean_logits, yt, tt)
    for r in range(int(restarts)):
        ind = acc.nonzero().reshape(-1)
        if ind.numel() == 0:
            break
        xs, ys = xt[ind].clone(), yt[ind].clone()
        ts = None if tt is None else tt[ind].clone()
        e = float(p.eps[0]) if uniform else eps_rows[ind]
        if r == 0 and s0 is not None:
            x_start = s0[ind].clone()
        else:
            shape = (1, *xs.shape[1:]) if p.expanded else tuple(xs.shape)
            x_start = _random_start(xs, e, shape, norm, gen)
        b, acc_r, loss_r, adv_r = _single_run(model, xs, ys, ts, e, x_start, steps, norm, float(rho),
                                              float(momentum), record if trace else None, ind)
        fooled = ~acc_r
        acc[ind[fooled]] = False
        adv[ind[fooled]] = adv_r[fooled].clone()
        better = loss_r > best_loss[ind]
        best[ind[better]] = b[better]
        best_loss[ind[better]] = loss_r[better]
    # images never fooled: their highest-loss iterate (torchattacks returns the clean image there)
    never = acc & torch.isfinite(best_loss)
    adv[never] = best[never]
    name = "apgd" if norm == "linf" else "apgd-l2"
    return finish(model, name, xt, adv, yt, tt, p.eps, recorder, trace, record_final=False)


# ------------------------------------------------------------------------------------------------ spec

_PARAMS = (
    steps_param(10, "iterations per restart"),
    Param("restarts", "Restarts", 1, low=1, high=100, kind="int",
          help="new random starts for the images not fooled yet"),
    SEED,
    Param("rho", "Checkpoint ρ", 0.75, low=0.05, high=1.0, step=0.05,
          help="the step is halved where the loss rose in fewer than ρ of the steps since the last checkpoint"),
    Param("momentum", "Momentum", 0.75, low=0.05, high=1.0, step=0.05,
          help="weight of the new step against the previous one (0.75 in the paper; 1: none)"),
)


def _runner(norm: str):
    def run(model, x, y, c, trace=True) -> AttackResult:
        return apgd(model, x, y, c.eps, steps=c.steps, norm=norm, restarts=c.value("restarts"), seed=c.seed,
                    rho=c.value("rho"), momentum=c.value("momentum"), target=c.target, trace=trace)
    return run


def _rows(norm: str):
    def rows_fn(model, x, y, target, eps, c) -> torch.Tensor:
        return apgd(model, x[:1], y[:1], np.asarray(eps, np.float64), steps=c.steps, norm=norm,
                    restarts=c.value("restarts"), seed=c.seed, rho=c.value("rho"), momentum=c.value("momentum"),
                    target=None if target is None else target[:1], trace=False).adversarial
    return rows_fn


def _cost(c) -> float:
    return (c.steps + 2) * c.value("restarts") + 1


_PAPER = ("Croce & Hein, 2020", "https://arxiv.org/abs/2003.01690")
SPEC = register(AttackSpec(
    name="apgd", label="APGD-CE (L∞)", kind="budget", norm="linf", order=5, paper=_PAPER[0], url=_PAPER[1],
    summary="PGD without a step size to tune: it starts with steps of 2ε, halves them where the loss stalls, and "
            "mixes in momentum (the core of AutoAttack).",
    params=_PARAMS, cost=_cost, run=_runner("linf"), rows=_rows("linf"), seeded=True, compare="fgsm",
))
SPEC_L2 = register(AttackSpec(
    name="apgd-l2", label="APGD-CE (L2)", kind="budget", norm="l2", order=6, paper=_PAPER[0], url=_PAPER[1],
    summary="APGD in an L2 ball: normalised gradient steps of adaptive size inside the radius ε.",
    params=_PARAMS, cost=_cost, run=_runner("l2"), rows=_rows("l2"), seeded=True,
))
