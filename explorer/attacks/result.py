"""What an attack returns: the adversarial batch, its classification, and a per-step trace.

Sign convention of the **margin** (the same everywhere in ``explorer.attacks``): positive means the attack has
not succeeded yet, negative means it has.

* untargeted: ``logit[y] - max_{k≠y} logit[k]``  (the true class's lead over the runner-up);
* targeted:   ``max_{k≠t} logit[k] - logit[t]``  (how far the target is behind the leader).

The trace's **loss** is the cross-entropy to the class the attack is about: the true class (the attack pushes
it up) or the target class (the attack pushes it down). Carlini-Wagner's trace holds its own objective
``||δ||₂² + c·max(margin, -κ)`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AttackTrace:
    """Per-step values, each of shape T x N (T steps, N images).

    Row ``t`` describes the iterate after step ``t + 1``: the last row is the returned adversarial for
    FGSM, BIM, PGD, MI-FGSM and DeepFool. Minimal-perturbation attacks may stop early (T ≤ steps);
    Carlini-Wagner records every optimisation iterate of every binary-search round (T = steps · rounds).
    """

    loss: np.ndarray
    margin: np.ndarray
    pred: np.ndarray
    linf: np.ndarray
    l2: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.loss.shape[0])


@dataclass(frozen=True)
class AttackResult:
    """The output of one attack call.

    adversarial: N x C x H x W float32 tensor in [0, 1] (detached, on the model's device).
    eps: (N,) the budget of each row (0 for minimal-perturbation attacks). y: (N,) true labels; target: (N,)
    or None. linf / l2: (N,) size of ``adversarial - x``. logits / pred / success / margin: the adversarial's
    classification. trace: per-step values. With ``trace=False`` an attack returns the adversarial batch only
    (linf, l2, logits, pred, success, margin and trace are None).
    """

    attack: str
    adversarial: torch.Tensor
    eps: np.ndarray
    y: np.ndarray
    target: np.ndarray | None
    linf: np.ndarray | None = None
    l2: np.ndarray | None = None
    logits: np.ndarray | None = None
    pred: np.ndarray | None = None
    success: np.ndarray | None = None
    margin: np.ndarray | None = None
    trace: AttackTrace | None = None

    @property
    def probs(self) -> np.ndarray | None:
        """Softmax of ``logits`` (N x K), or None."""
        if self.logits is None:
            return None
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(z.astype(np.float64))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    @property
    def targeted(self) -> bool:
        return self.target is not None

    def __len__(self) -> int:
        return int(self.adversarial.shape[0])
