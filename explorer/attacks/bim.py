"""BIM / I-FGSM: the Basic Iterative Method (Kurakin, Goodfellow & Bengio, 2016, "Adversarial Examples in the
Physical World", arXiv:1607.02533).

FGSM repeated with a small step α, clipping back into the ε-ball and [0, 1] after every step, starting at x::

    x_{t+1} = clip_{x,ε}(x_t + α · sign(∇ₓ CE(f(x_t), y)))

The default α is ε / steps (the last step can just reach the boundary). PGD without a random start.
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.attacks._common import EpsLike, LabelLike, l2_upper, prepare
from explorer.attacks._iterative import iterative_rows, run_iterative
from explorer.attacks.config import alpha_fraction, check_steps
from explorer.attacks.norms import Norm, get_norm
from explorer.attacks.registry import ALPHA, AttackSpec, register, steps_param
from explorer.attacks.result import AttackResult


def step_sizes(attack: str, eps: np.ndarray, steps: int, alpha: float | None) -> np.ndarray:
    """Per-row α: the given absolute α for every row, else ``alpha_fraction(attack, steps) · ε``."""
    if alpha is not None:
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        return np.full(len(eps), float(alpha))
    return np.asarray(eps, np.float64) * alpha_fraction(attack, steps)


def bim(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: LabelLike, eps: EpsLike = 8 / 255, *,
        steps: int = 10, alpha: float | None = None, target: LabelLike | None = None, norm: str | Norm = "linf",
        trace: bool = True) -> AttackResult:
    """Basic Iterative Method / I-FGSM (Kurakin et al., 2016).

    Args:
        model, x, y, eps, target, norm, trace: as in :func:`explorer.attacks.fgsm`.
        steps: iterations (capped by ``EXPLORER_MAX_STEPS``).
        alpha: absolute step size (default ε / steps per row).
    """
    check_steps(steps)
    nm = get_norm(norm)
    p = prepare(model, x, y, eps, target, eps_upper=1.0 if nm.name == "linf" else l2_upper(x))
    return run_iterative(model, "bim", p.x, p.y, p.target, p.eps, step_sizes("bim", p.eps, steps, alpha), steps,
                         nm, trace=trace)


def _run(model, x, y, c, trace=True) -> AttackResult:
    return bim(model, x, y, c.eps, steps=c.steps, alpha=c.alpha, target=c.target, trace=trace)


SPEC = register(AttackSpec(
    name="bim", label="BIM / I-FGSM", kind="budget", norm="linf", order=1,
    paper="Kurakin et al., 2016", url="https://arxiv.org/abs/1607.02533",
    summary="FGSM repeated in small steps of α, clipped back into the ε-box after each step.",
    params=(steps_param(help_text="iterations"), ALPHA), cost=lambda c: c.steps + 2, run=_run,
    rows=iterative_rows("bim", "linf"), alpha_fraction=lambda steps: 1.0 / steps, compare="fgsm",
))
