"""MI-FGSM: the Momentum Iterative Fast Gradient Sign Method (Dong, Liao, Pang, Su, Zhu, Hu & Li, 2018,
"Boosting Adversarial Attacks with Momentum", CVPR).

BIM with an accumulated, L1-normalised gradient (stabler directions, better transfer)::

    g_{t+1} = μ · g_t + ∇ₓ CE(f(x_t), y) / mean|∇ₓ CE(f(x_t), y)|
    x_{t+1} = clip_{x,ε}(x_t + α · sign(g_{t+1}))

The default α is ε / steps and μ = 1.0, as in the paper. Written op for op like torchattacks' ``MIFGSM``.
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.attacks._common import EpsLike, LabelLike, l2_upper, prepare
from explorer.attacks._iterative import iterative_rows, run_iterative
from explorer.attacks.bim import step_sizes
from explorer.attacks.config import check_steps
from explorer.attacks.norms import Norm, get_norm
from explorer.attacks.registry import ALPHA, AttackSpec, Param, register, steps_param
from explorer.attacks.result import AttackResult


def mifgsm(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: LabelLike, eps: EpsLike = 8 / 255, *,
           steps: int = 10, alpha: float | None = None, decay: float = 1.0, target: LabelLike | None = None,
           norm: str | Norm = "linf", trace: bool = True) -> AttackResult:
    """Momentum Iterative FGSM (Dong et al., 2018).

    Args:
        model, x, y, eps, target, norm, trace: as in :func:`explorer.attacks.fgsm`.
        steps: iterations (capped by ``EXPLORER_MAX_STEPS``).
        alpha: absolute step size (default ε / steps per row).
        decay: the momentum factor μ (0 gives BIM).
    """
    check_steps(steps)
    if decay < 0:
        raise ValueError(f"decay must be non-negative, got {decay}")
    nm = get_norm(norm)
    p = prepare(model, x, y, eps, target, eps_upper=1.0 if nm.name == "linf" else l2_upper(x))
    return run_iterative(model, "mifgsm", p.x, p.y, p.target, p.eps, step_sizes("mifgsm", p.eps, steps, alpha),
                         steps, nm, decay=float(decay), trace=trace)


def _run(model, x, y, c, trace=True) -> AttackResult:
    return mifgsm(model, x, y, c.eps, steps=c.steps, alpha=c.alpha, decay=c.decay, target=c.target, trace=trace)


SPEC = register(AttackSpec(
    name="mifgsm", label="MI-FGSM", kind="budget", norm="linf", order=4,
    paper="Dong et al., 2018", url="https://arxiv.org/abs/1710.06081",
    summary="BIM with momentum μ: the step follows a running average of normalised gradients.",
    params=(steps_param(), ALPHA,
            Param("momentum", "Momentum μ", 1.0, low=0.0, high=5.0, step=0.1, field="decay",
                  help="decay of the running gradient average (Dong et al. use 1.0)")),
    cost=lambda c: c.steps + 2, run=_run, rows=iterative_rows("mifgsm", "linf", momentum=True),
    alpha_fraction=lambda steps: 1.0 / steps, compare="fgsm",
))
