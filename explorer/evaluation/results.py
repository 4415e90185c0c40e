"""What a dataset evaluation and a transfer run return: numpy dataclasses, stored by request digest.

Robust accuracy follows AutoAttack's convention: a sample counts as robust at ε only if the model classifies
the clean image correctly **and** the attack at ε fails. The worst case over attacks counts a sample as robust
only if every chosen attack fails on it. Intervals are 95% Clopper–Pearson.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.evaluation.stats import clopper_pearson
from explorer.runs.store import storable


@storable
@dataclass(frozen=True)
class ModelProbe:
    """Extra measurements per model behind the honest-evaluation checks (on the first ``n`` samples).

    max_diff: largest change of any output between two identical forwards (randomised model if > 0).
    outputs_probabilities: every output row lies in [0, 1] and sums to 1 (softmax, not logits).
    zero_grad_share: share of samples whose input gradient of the loss is exactly zero everywhere.
    big_eps_acc: robust accuracy under ``big_eps_attack`` (no random start) at ε = ``big_eps`` (L∞).
    steps_attack: the iterative attack re-run with 2x steps and with a restart (another seed) at
    ``steps_eps``: acc_base (as evaluated), acc_double, acc_restart (worst of base and the restart).
    plain_eps / plain_acc: ``steps_attack``'s accuracy at each grid ε > 0 with every (sample, ε) run on its own
    (no reuse of smaller-ε adversarials), for check 1: a reused curve is monotone by construction.
    """

    model_id: str
    n: int
    max_diff: float
    outputs_probabilities: bool
    zero_grad_share: float
    big_eps: float
    big_eps_attack: str
    big_eps_acc: float
    steps_attack: str
    steps: int
    steps_eps: float
    acc_base: float
    acc_double: float
    acc_restart: float
    plain_eps: tuple[float, ...] = ()
    plain_acc: tuple[float, ...] = ()


@storable
@dataclass(frozen=True)
class CheckRow:
    """One honest-evaluation check: ``status`` is "pass", "warn" or "skip" (not applicable here)."""

    check: str
    status: str
    model: str
    message: str


@storable
@dataclass(frozen=True)
class Evaluation:
    """M models x A attacks x E values of ε over N samples.

    labels: (M, N) what each model is scored against (true labels, or its own clean prediction for photos and
    uploads). clean_pred: (M, N). pred: (M, A, E, N) the adversarial's class. flip_eps: (M, A, N) the smallest
    ε found that fools the model (0: clean already wrong; inf: no ε of the grid), flip_width: its bracket's
    width. example_*: up to K failing samples per (model, attack, ε), index -1 = none.
    """

    digest: str
    dataset: str
    dataset_label: str
    models: tuple[str, ...]
    attacks: tuple[str, ...]
    steps: int
    seed: int
    eps: np.ndarray
    labels: np.ndarray
    labels_are_predictions: bool
    sources: tuple[str, ...]
    sample_ids: tuple[str, ...]
    clean_pred: np.ndarray
    pred: np.ndarray
    flip_eps: np.ndarray
    flip_width: np.ndarray
    example_idx: np.ndarray
    example_pred: np.ndarray
    examples: np.ndarray
    probes: tuple[ModelProbe, ...]
    skipped: tuple[tuple[str, str], ...]  # (model, why it was not evaluated)
    seconds: float
    attacked_rows: int  # sample × ε rows attacked (grid + bisection probes)

    @property
    def n(self) -> int:
        return int(self.labels.shape[1])

    def clean_correct(self) -> np.ndarray:
        """(M, N)"""
        return self.clean_pred == self.labels

    def correct(self) -> np.ndarray:
        """(M, A, E, N): clean right and the attack at ε failed."""
        return (self.pred == self.labels[:, None, None, :]) & self.clean_correct()[:, None, None, :]

    def worst_correct(self) -> np.ndarray:
        """(M, E, N): robust to every chosen attack."""
        return self.correct().all(axis=1)

    def clean_accuracy(self) -> np.ndarray:
        return self.clean_correct().mean(axis=1)

    def accuracy(self) -> np.ndarray:
        """(M, A, E) robust accuracy."""
        return self.correct().mean(axis=-1)

    def worst_accuracy(self) -> np.ndarray:
        """(M, E)"""
        return self.worst_correct().mean(axis=-1)

    def interval(self, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """95% Clopper–Pearson bounds of ``correct.mean(-1)``."""
        return clopper_pearson(correct.sum(axis=-1), correct.shape[-1])

    def flip_accuracy(self, eps: np.ndarray | None = None) -> np.ndarray:
        """(M, A, len(eps)) share of samples whose flip ε is above each ε: the curve read off the bisection."""
        e = self.eps if eps is None else np.asarray(eps, np.float64)
        return (self.flip_eps[..., None, :] > e[:, None]).mean(axis=-1)

    def worst_flip_eps(self) -> np.ndarray:
        """(M, N) the smallest flip ε over the attacks."""
        return self.flip_eps.min(axis=1)

    def worst_flip_accuracy(self, eps: np.ndarray | None = None) -> np.ndarray:
        e = self.eps if eps is None else np.asarray(eps, np.float64)
        return (self.worst_flip_eps()[:, None, :] > e[:, None]).mean(axis=-1)

    def nonmonotone(self) -> np.ndarray:
        """(M, A) samples that one ε fools and a larger ε of the grid does not (grid and flip-ε curves may
        differ by these)."""
        order = np.argsort(self.eps, kind="stable")
        c = self.correct()[:, :, order, :]
        fooled_before = np.maximum.accumulate(~c, axis=2)
        return (fooled_before & c).any(axis=2).sum(axis=-1)

    def model_index(self, model: str) -> int:
        return self.models.index(model)

    def failing(self, model: str, attack: str | None, eps_index: int) -> list[tuple[int, int, np.ndarray | None]]:
        """Failing samples at (model, attack, ε): (sample index, adversarial class, adversarial image or None).
        ``attack=None``: the worst case (samples some attack fools), with the first attack's images."""
        m = self.model_index(model)
        if attack is not None:
            a = self.attacks.index(attack)
            out = []
            for k, idx in enumerate(self.example_idx[m, a, eps_index]):
                if idx >= 0:
                    out.append((int(idx), int(self.example_pred[m, a, eps_index, k]),
                                self.examples[m, a, eps_index, k]))
            return out
        return [item[:3] for item in self.failing_by_attack(model, eps_index)]

    def failing_by_attack(self, model: str, eps_index: int) -> list[tuple[int, int, np.ndarray, str]]:
        """The worst case's failing samples at (model, ε) with the attack whose adversarial is shown: (sample
        index, adversarial class, adversarial image, attack)."""
        m = self.model_index(model)
        fooled = ~self.worst_correct()[m, eps_index] & self.clean_correct()[m]
        out: list[tuple[int, int, np.ndarray, str]] = []
        for a, attack in enumerate(self.attacks):
            for k, idx in enumerate(self.example_idx[m, a, eps_index]):
                if idx >= 0 and fooled[idx] and all(o[0] != idx for o in out):
                    out.append((int(idx), int(self.example_pred[m, a, eps_index, k]),
                                self.examples[m, a, eps_index, k], attack))
        return out


@storable
@dataclass(frozen=True)
class TransferResult:
    """Adversarials made on model i (rows, white-box attack at one ε) evaluated on model j (columns).

    correct: (S, T, N) the target classifies its clean image right and the source's adversarial right too
    (all False where the pair was skipped); skipped pairs have ``valid`` False and a reason in ``skipped``.
    example_*: up to K samples per cell that the transferred adversarial fools (index -1 = none).
    """

    digest: str
    dataset: str
    dataset_label: str
    models: tuple[str, ...]
    attack: str
    eps: float
    steps: int
    seed: int
    labels: np.ndarray  # (T, N)
    labels_are_predictions: bool
    sample_ids: tuple[str, ...]
    clean_pred: np.ndarray  # (T, N)
    pred: np.ndarray  # (S, T, N), -1 where skipped
    valid: np.ndarray  # (S, T)
    skipped: tuple[tuple[str, str, str], ...]  # (source, target, reason)
    example_idx: np.ndarray  # (S, T, K)
    example_pred: np.ndarray  # (S, T, K)
    examples: np.ndarray  # (S, T, K, C, H, W) the source's adversarials that fool the target
    seconds: float

    @property
    def n(self) -> int:
        return int(self.labels.shape[1])

    def correct(self) -> np.ndarray:
        clean_ok = self.clean_pred == self.labels
        return (self.pred == self.labels[None]) & clean_ok[None] & self.valid[..., None]

    def accuracy(self) -> np.ndarray:
        """(S, T), NaN where skipped."""
        acc = self.correct().mean(axis=-1)
        return np.where(self.valid, acc, np.nan)

    def interval(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = clopper_pearson(self.correct().sum(axis=-1), self.n)
        return np.where(self.valid, lo, np.nan), np.where(self.valid, hi, np.nan)

    def clean_accuracy(self) -> np.ndarray:
        return (self.clean_pred == self.labels).mean(axis=1)

    def failing(self, source: str, target: str) -> list[tuple[int, int, np.ndarray]]:
        s, t = self.models.index(source), self.models.index(target)
        return [(int(i), int(self.example_pred[s, t, k]), self.examples[s, t, k])
                for k, i in enumerate(self.example_idx[s, t]) if i >= 0]
