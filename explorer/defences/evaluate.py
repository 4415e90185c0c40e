"""Three-way evaluation of a defence (Athalye, Carlini & Wagner 2018: most defences only hid the gradient).

For a defence and its undefended baseline, at every ε, on the same images:

* **transfer**: adversarials made on the baseline, classified by the defence (what the ensemble blog measured);
* **white-box**: the attack run end to end through the defence's own forward and backward (for a noise-averaged
  model, with fresh noise at every forward, as a deployed randomised defence behaves; for max / vote ensembles,
  the registry model's documented surrogate gradient);
* **adaptive**: per sample, the worst case over the white-box attack and the attacks adapted to the defence:
  EOT (``eot_samples`` fresh noise draws per gradient step, gradients averaged) for randomised models; BPDA
  (straight-through) for non-differentiable steps: the mean ensemble's gradient for max / vote ensembles (and the
  exact autograd view), the identity for a quantising front, the classifier's gradient for a denoiser front.

Accuracy is always measured with the defence's own forward (its fixed noise seed for noise averaging: the
attacker does not know those draws). :func:`hidden_not_robust_check` flags a transfer accuracy far above the
adaptive one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.attacks import fgsm, pgd
from explorer.defences.ensemble import StackedEnsemble, mean_surrogate, with_backward
from explorer.defences.fronts import bpda_view, straight_through
from explorer.defences.noise import NoiseAverage, resampling
from explorer.models.wrapper import Classifier

ProgressFn = Callable[[float, str], None]

HIDDEN_NOT_ROBUST = (
    "Adversarials made on another model, or by an attack that follows a masked gradient, only show that this "
    "defence's noise, vote or quantising front hides the gradient, not that no adversarial image lies close by. "
    "An attack adapted to the defence (EOT over its randomness, BPDA through its non-differentiable steps) finds "
    "those images, so transfer accuracy far above adaptive accuracy means the robustness is hidden, not real."
)


@dataclass(frozen=True)
class ThreeWayConfig:
    """The attack used for all three columns (``fgsm`` or L∞ ``pgd`` with ``steps`` of ``alpha``, default
    2.5·ε/steps, random start from ``seed``), the EOT sample count and the batch size."""

    attack: str = "pgd"
    steps: int = 40
    alpha: float | None = None
    eot_samples: int = 16
    seed: int = 0
    batch_size: int = 250


@dataclass(frozen=True, eq=False)
class ThreeWayResult:
    """Per-sample correctness (booleans): ``clean`` (N,), and ``transfer`` / ``white_box`` / ``adaptive`` (E, N)."""

    eps: np.ndarray
    clean: np.ndarray
    transfer: np.ndarray
    white_box: np.ndarray
    adaptive: np.ndarray
    adaptive_method: str
    config: ThreeWayConfig
    baseline_own: np.ndarray | None = None  # the baseline on its own adversarials (E, N)
    notes: tuple[str, ...] = field(default=())

    def accuracy(self, which: str) -> np.ndarray:
        """Accuracy per ε of ``transfer`` / ``white_box`` / ``adaptive`` / ``baseline_own`` (clean: a scalar array)."""
        a = getattr(self, which)
        return np.asarray(a.mean(axis=-1), np.float64)

    def to_dict(self) -> dict:
        return {
            "eps": self.eps.tolist(), "n": int(self.clean.shape[0]), "clean": float(self.clean.mean()),
            "transfer": self.accuracy("transfer").tolist(), "white_box": self.accuracy("white_box").tolist(),
            "adaptive": self.accuracy("adaptive").tolist(), "adaptive_method": self.adaptive_method,
            "attack": self.config.attack, "steps": self.config.steps if self.config.attack == "pgd" else 1,
            "eot_samples": self.config.eot_samples,
            "baseline_own": None if self.baseline_own is None else self.accuracy("baseline_own").tolist(),
        }


def correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Per-sample correctness of ``model`` (inference mode, batched)."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            out.append((model(x[i: i + batch_size]).argmax(1) == y[i: i + batch_size]).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, bool)


def attack_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, config: ThreeWayConfig,
                 seed: int) -> torch.Tensor:
    """The configured attack (explorer.attacks' FGSM or L∞ PGD) on one batch; the adversarial batch."""
    if config.attack == "fgsm":
        return fgsm(model, x, y, eps, trace=False).adversarial
    if config.attack == "pgd":
        return pgd(model, x, y, eps, steps=config.steps, alpha=config.alpha, random_start=True, seed=seed,
                   trace=False).adversarial
    raise ValueError(f"three-way evaluation supports fgsm and pgd, not {config.attack!r}")


def eot_attack_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, config: ThreeWayConfig,
                     seed: int) -> torch.Tensor:
    """FGSM / L∞ PGD with EOT: each gradient is the mean of ∇ CE over ``eot_samples`` forwards of a randomised
    ``model`` (fresh noise on every call), the same arithmetic as explorer.attacks otherwise."""
    k = max(1, int(config.eot_samples))

    def grad(adv: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            a = adv.detach().clone().requires_grad_(True)
            rep = a.unsqueeze(0).expand(k, *a.shape).reshape(k * len(a), *a.shape[1:])
            loss = F.cross_entropy(model(rep), y.repeat(k), reduction="sum") / k
            (g,) = torch.autograd.grad(loss, a)
        return g

    if config.attack == "fgsm":
        return torch.clamp(x + eps * grad(x).sign(), 0, 1).detach()
    from explorer.attacks import LINF
    from explorer.attacks._iterative import pgd_loop

    steps = config.steps
    alpha = 2.5 * eps / steps if config.alpha is None else config.alpha
    gen = torch.Generator().manual_seed(seed)
    start = torch.clamp(x + eps * (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device), 0, 1)
    return pgd_loop(grad, x, start, eps, steps, alpha, LINF)


def adaptive_views(defence: Classifier, seed: int) -> tuple[list[tuple[str, nn.Module, bool]], str]:
    """The attacks adapted to ``defence``: (name, model whose gradient drives the attack, uses EOT), and a summary."""
    inner = defence.net
    if isinstance(inner, NoiseAverage):
        return [("EOT", resampling(defence, seed + 2), True)], "EOT"
    if isinstance(inner, StackedEnsemble) and inner.combine != "mean":
        views: list[tuple[str, nn.Module, bool]] = [
            ("BPDA→mean", straight_through(defence, mean_surrogate(defence)), False)]
        if inner.backward != "exact" and inner.combine == "max":
            views.append(("exact", with_backward(defence, "exact"), False))
        return views, "BPDA (straight-through to the mean ensemble)"
    bp = bpda_view(defence)
    if bp is not None:
        return [("BPDA", bp, False)], "BPDA (straight-through front)"
    return [], "white-box (deterministic and differentiable: nothing to adapt)"


def white_box_model(defence: Classifier, seed: int) -> nn.Module:
    """What the white-box attack differentiates: the defence itself, with fresh noise for a noise-averaged model."""
    return resampling(defence, seed + 1) if isinstance(defence.net, NoiseAverage) else defence


def three_way(defence: Classifier, baseline: Classifier, x: np.ndarray | torch.Tensor, y: np.ndarray | Sequence[int],
              eps: Sequence[float], config: ThreeWayConfig = ThreeWayConfig(), *,
              baseline_adversarials: Sequence[np.ndarray | torch.Tensor] | None = None,
              progress: ProgressFn | None = None) -> ThreeWayResult:
    """Transfer / white-box / adaptive correctness of ``defence`` at every ε (see the module docstring).

    Args:
        defence, baseline: frozen Classifiers with the same input shape.
        x: N x C x H x W images in [0, 1]; y: their labels.
        eps: the L∞ budgets ([0, 1] pixel units).
        baseline_adversarials: one N x C x H x W batch per ε made on the baseline (reused, e.g. from a
            transfer matrix); made here with ``config``'s attack otherwise.
    """
    if tuple(defence.input_shape) != tuple(baseline.input_shape):
        raise ValueError(f"{defence.model_id} and {baseline.model_id} take different input shapes")
    xt = torch.as_tensor(np.asarray(x, np.float32)) if not isinstance(x, torch.Tensor) else x.float()
    yt = torch.as_tensor(np.asarray(y, np.int64))
    eps_a = np.asarray(list(eps), np.float64)
    if baseline_adversarials is not None and len(baseline_adversarials) != len(eps_a):
        raise ValueError("baseline_adversarials needs one batch per ε")
    cfg = config
    views, method = adaptive_views(defence, cfg.seed)
    wb = white_box_model(defence, cfg.seed)
    n, bs = len(xt), max(1, cfg.batch_size)
    clean = correct(defence, xt, yt)
    shape = (len(eps_a), n)
    tr, wbc, ad, own = (np.zeros(shape, bool) for _ in range(4))
    total = len(eps_a) * ((n + bs - 1) // bs)
    done = 0
    for e, ep in enumerate(eps_a):
        for i in range(0, n, bs):
            xb, yb = xt[i: i + bs], yt[i: i + bs]
            seed = cfg.seed + 7919 * e + i
            if baseline_adversarials is not None:
                adv_b = torch.as_tensor(np.asarray(baseline_adversarials[e][i: i + bs], np.float32))
            else:
                adv_b = attack_batch(baseline, xb, yb, float(ep), cfg, seed)
            tr[e, i: i + bs] = correct(defence, adv_b, yb)
            own[e, i: i + bs] = correct(baseline, adv_b, yb)
            adv_w = attack_batch(wb, xb, yb, float(ep), cfg, seed)
            ok = correct(defence, adv_w, yb)
            wbc[e, i: i + bs] = ok
            for _name, model, eot in views:
                fn = eot_attack_batch if eot else attack_batch
                ok = ok & correct(defence, fn(model, xb, yb, float(ep), cfg, seed), yb)
            ad[e, i: i + bs] = ok
            done += 1
            if progress:
                progress(done / total, f"{defence.model_id}: ε {ep:g}, images {min(n, i + bs)}/{n}")
    notes = (f"adaptive = per-sample worst case of white-box and {method}"
             + (f" with {cfg.eot_samples} EOT samples per step" if method == "EOT" else ""),)
    return ThreeWayResult(eps_a, clean, tr, wbc, ad, method, cfg, own, notes)


@dataclass(frozen=True)
class DefenceCheck:
    """A pass / warn row: ``status``, a one-line ``detail`` and the two-sentence ``explanation``."""

    name: str
    status: str
    detail: str
    explanation: str = HIDDEN_NOT_ROBUST


def hidden_not_robust_check(result: ThreeWayResult, gap: float = 0.2) -> DefenceCheck:
    """Warn when the transfer (or the naive white-box) accuracy exceeds the adaptive accuracy by more than ``gap``
    at some ε, for a defence with something to adapt to (randomness or a non-differentiable step).

    A deterministic, differentiable defence (``adaptive_method`` "white-box ...": its gradients are exact, the
    white-box attack already is the adaptive one) hides nothing: a transfer far above its white-box accuracy only
    says a transferred attack is weaker, and the check passes with a note saying which number to trust.
    """
    tr, wb, ad = result.accuracy("transfer"), result.accuracy("white_box"), result.accuracy("adaptive")
    if not len(ad):
        return DefenceCheck("transfer accuracy is not far above adaptive accuracy", "pass", "no ε evaluated")
    name = "transfer accuracy is not far above adaptive accuracy"
    exact = result.adaptive_method.startswith("white-box")
    d_tr, d_wb = tr - ad, wb - ad
    e = int(np.argmax(np.maximum(d_tr, d_wb)))
    worst = float(max(d_tr[e], d_wb[e]))
    if exact:
        if float(d_tr.max()) > gap:
            k = int(np.argmax(d_tr))
            return DefenceCheck(name, "pass", f"exact end-to-end gradients, nothing hidden: at ε = {result.eps[k]:g} "
                                f"transfer {tr[k]:.2f} only overstates the white-box {ad[k]:.2f} (a transferred "
                                "attack is weaker); trust the white-box column")
        return DefenceCheck(name, "pass", f"exact end-to-end gradients; largest transfer gap {float(d_tr.max()):.2f}")
    if worst > gap:
        which = "transfer" if d_tr[e] >= d_wb[e] else "naive white-box"
        val = tr[e] if which == "transfer" else wb[e]
        return DefenceCheck(name, "warn", f"at ε = {result.eps[e]:g}: {which} {val:.2f} vs adaptive {ad[e]:.2f} "
                            f"(gap {worst:.2f} > {gap:.2f}): hidden, not robust")
    return DefenceCheck(name, "pass", f"largest gap {worst:.2f} (at ε = {result.eps[e]:g}) ≤ {gap:.2f}")
