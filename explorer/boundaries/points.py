"""Attacks on single 2-D points and margins of a whole training set.

* ``attack_point``: the FGSM step and the PGD trajectory of one point, with the predictions at each end.
* ``margins``: for every training point, the distance to the decision boundary along its attack
  direction (``sign(∇ₓL)`` measured in L∞ units, or ``∇ₓL / ||∇ₓL||`` in L2 units), found by a batched
  scan along the ray followed by bisection. Distances are capped; misclassified points have margin 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explorer.boundaries.toy import NORMS, _loss_grad, attack_direction, pgd_path


@dataclass(frozen=True, eq=False)
class PointAttack:
    """One point attacked in the ``norm`` ball of ``eps``: its FGSM end point and PGD trajectory."""

    point: np.ndarray  # (2,)
    label: int
    eps: float
    norm: str
    fgsm: np.ndarray  # (2,)
    pgd: np.ndarray  # (steps + 1, 2); pgd[0] is the point
    pred_clean: int
    pred_fgsm: int
    pred_pgd: int

    @property
    def fgsm_flips(self) -> bool:
        return self.pred_fgsm != self.label

    @property
    def pgd_flips(self) -> bool:
        return self.pred_pgd != self.label


def _as_points(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, np.float32)).reshape(-1, 2)


def fgsm_point(model: nn.Module, point: np.ndarray, label: int, eps: float, norm: str = "linf") -> np.ndarray:
    """The FGSM end point ``x + eps · sign(∇ₓL)`` (L∞) or ``x + eps · ∇ₓL / ||∇ₓL||₂`` (L2)."""
    x = _as_points(point)
    y = torch.tensor([int(label)])
    return pgd_path(model, x, y, eps, norm, steps=1, step_size=eps)[-1][0].numpy()


def pgd_trajectory(model: nn.Module, point: np.ndarray, label: int, eps: float, norm: str = "linf",
                   steps: int = 20, step_size: float | None = None) -> np.ndarray:
    """The PGD iterates (``steps + 1`` x 2, starting at the point), projected onto the ``eps`` ball."""
    x = _as_points(point)
    y = torch.tensor([int(label)])
    return torch.cat(pgd_path(model, x, y, eps, norm, steps, step_size)).numpy()


def attack_point(model: nn.Module, point: np.ndarray, label: int, eps: float, norm: str = "linf",
                 steps: int = 20, step_size: float | None = None) -> PointAttack:
    """FGSM and PGD on one point, with the model's predictions at the point and both end points."""
    p = np.asarray(point, np.float32).reshape(2)
    fg = fgsm_point(model, p, label, eps, norm)
    traj = pgd_trajectory(model, p, label, eps, norm, steps, step_size)
    with torch.inference_mode():
        pred = model(torch.from_numpy(np.stack([p, fg, traj[-1]]))).argmax(1).tolist()
    return PointAttack(p, int(label), float(eps), norm, fg, traj, pred[0], pred[1], pred[2])


@dataclass(frozen=True, eq=False)
class Margins:
    """Distance of each point to the boundary along its attack direction, in ``norm`` units.

    ``distance`` is ``cap`` where no crossing was found within the cap (``reached`` False) and 0 for
    points the model already misclassifies (``misclassified`` True).
    """

    distance: np.ndarray
    reached: np.ndarray
    misclassified: np.ndarray
    norm: str
    cap: float

    @property
    def mean(self) -> float:
        """Mean distance (capped points count as ``cap``: a lower bound)."""
        return float(self.distance.mean()) if len(self.distance) else 0.0

    @property
    def median(self) -> float:
        return float(np.median(self.distance)) if len(self.distance) else 0.0


def _predict(model: nn.Module, pts: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(pts).argmax(1)


def margins(model: nn.Module, x: np.ndarray, y: np.ndarray, norm: str = "linf", cap: float = 2.0,
            scan: int = 64, iters: int = 20) -> Margins:
    """Distance from each point to the boundary along its attack direction at the clean point.

    The ray ``x + t·d`` (``d = sign(∇ₓL)`` for L∞, so ``||t·d||∞ = t``; ``d = ∇ₓL/||∇ₓL||₂`` for L2) is scanned
    at ``scan`` points in ``(0, cap]`` for the first change of prediction, then bisected ``iters`` times:
    the returned distance is within ``cap / scan / 2**iters`` above the first crossing.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if cap <= 0 or scan < 1 or iters < 0:
        raise ValueError("cap must be > 0, scan >= 1, iters >= 0")
    xt = _as_points(x)
    yt = torch.as_tensor(np.asarray(y, np.int64)).reshape(-1)
    n = len(xt)
    d = attack_direction(_loss_grad(model, xt, yt), norm)
    wrong = _predict(model, xt) != yt
    ts = torch.arange(1, scan + 1, dtype=torch.float32) * (cap / scan)
    ray = xt[:, None, :] + ts[None, :, None] * d[:, None, :]  # (n, scan, 2)
    flipped = (_predict(model, ray.reshape(-1, 2)).reshape(n, scan) != yt[:, None])
    reached = flipped.any(1)
    k = flipped.float().argmax(1)  # first flipped scan index (0 where none)
    hi = ts[k]
    lo = torch.where(k > 0, ts[(k - 1).clamp_min(0)], torch.zeros(n))
    for _ in range(iters):
        mid = (lo + hi) / 2
        f = _predict(model, xt + mid[:, None] * d) != yt
        hi = torch.where(f, mid, hi)
        lo = torch.where(f, lo, mid)
    dist = torch.where(reached, hi, torch.full((n,), float(cap)))
    dist = torch.where(wrong, torch.zeros(n), dist)
    return Margins(dist.numpy().astype(np.float32), (reached | wrong).numpy(), wrong.numpy(), norm, float(cap))
