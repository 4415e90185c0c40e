"""ε sweeps: one call classifies an image's adversarials over a whole grid of ε and finds the flip ε.

* FGSM: ONE forward + backward for the gradient, then every ε is a cheap image ``clip(x + ε·sign(g))``
  classified in batched forwards under ``torch.inference_mode()``. Each row is bit-identical to a separate
  ``fgsm`` call at that ε.
* Iterative attacks (BIM, PGD, PGD-L2, MI-FGSM): the image is repeated once per ε and the whole grid runs as
  one batch with a per-row ε and a per-row step ``α = alpha_fraction · ε`` (PGD's random start shares one unit
  draw across rows, so every row starts from the same relative position).
* The flip ε, the smallest ε whose top-1 label is not the true class (untargeted) or is the target
  (targeted), is found on the grid and refined by bisection inside the grid interval where the flip happens:
  FGSM to ``tol`` (1e-4) with batched probes; iterative attacks with a few extra ε per round, rerun as one
  batched attack.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from explorer.attacks._common import as_images, as_labels, classify, margin, num_classes_of, succeeded
from explorer.attacks._iterative import run_iterative
from explorer.attacks.config import (
    GRADIENT_ATTACKS,
    AttackConfig,
    alpha_fraction,
    check_config,
    check_eps,
    eps_upper,
)
from explorer.attacks.fgsm import fgsm_direction, fgsm_step
from explorer.attacks.norms import L2_NORM, LINF, Norm

PHOTO_EPS_MAX = 16 / 255
DIGIT_EPS_MAX = 0.5


def default_eps_grid(is_photo: bool, n: int = 64, eps_max: float | None = None) -> np.ndarray:
    """``n`` evenly spaced ε from 0: up to 16/255 for photos, 0.5 for digits (or ``eps_max``)."""
    if n < 2:
        raise ValueError(f"a grid needs at least 2 values, got n = {n}")
    top = (PHOTO_EPS_MAX if is_photo else DIGIT_EPS_MAX) if eps_max is None else float(eps_max)
    check_eps(top, "eps_max")
    if top <= 0:
        raise ValueError("eps_max must be positive")
    return np.linspace(0.0, top, int(n))


def norm_of(attack: str) -> Norm:
    return L2_NORM if attack == "pgd-l2" else LINF


@dataclass(frozen=True)
class SweepResult:
    """A sweep of one image over E values of ε (numpy arrays; rows follow ``eps`` as given).

    margin: positive while the attack has not succeeded (see ``explorer.attacks.result``).
    flip_class: the target (targeted), else the class the image flips to at the flip ε, else (no flip) the
    runner-up at the largest ε. flip_prob: the probability of ``flip_class`` at each ε.
    flip_eps: the smallest ε found that flips (refined), or None when no ε of the grid flips;
    flip_bracket: the grid interval (lo, hi] that holds it. images / images_eps: adversarials kept on request
    (``images_at``); direction: FGSM's unit step (C x H x W), so any ε is ``clip(x + ε·direction)``.
    """

    attack: str
    y: int
    target: int | None
    eps: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    pred: np.ndarray
    true_prob: np.ndarray
    flip_class: int | None
    flip_prob: np.ndarray
    margin: np.ndarray
    linf: np.ndarray
    l2: np.ndarray
    flipped: np.ndarray
    flip_eps: float | None
    flip_bracket: tuple[float, float] | None
    clean_logits: np.ndarray
    clean_probs: np.ndarray
    clean_pred: int
    refine_evals: int = 0
    images: np.ndarray | None = None
    images_eps: np.ndarray | None = None
    direction: np.ndarray | None = None

    def nearest(self, eps: float) -> int:
        """Index of the grid ε closest to ``eps``."""
        return int(np.abs(self.eps - float(eps)).argmin())


def _grad_batch(x: torch.Tensor, max_batch: int) -> int:
    """Rows per gradient batch: bounded by the server cap and by ~4M input values (activation memory)."""
    per_row = int(np.prod(x.shape[1:]))
    return max(1, min(max_batch, (1 << 22) // max(per_row, 1)))


def _probe_batch(x: torch.Tensor) -> int:
    """FGSM probes per bisection round: many for tiny images (calls dominate), one for photos."""
    return max(1, min(64, 4096 // int(x.shape[-1] * x.shape[-2])))


Evaluator = Callable[[np.ndarray, bool], tuple[torch.Tensor, torch.Tensor | None]]


def _fgsm_evaluator(model, x1, direction, batch: int) -> Evaluator:
    def run(eps: np.ndarray, keep: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits, imgs = [], []
        with torch.inference_mode():
            for i in range(0, len(eps), batch):
                adv = fgsm_step(x1, direction, eps[i: i + batch])
                logits.append(model(adv))
                if keep:
                    imgs.append(adv)
        return torch.cat(logits), (torch.cat(imgs) if keep else None)
    return run


def _iterative_evaluator(model, x1, y1, t1, config: AttackConfig, batch: int) -> Evaluator:
    attack = config.attack
    frac = alpha_fraction(attack, config.steps, config.eps, config.alpha)
    norm = norm_of(attack)

    def run(eps: np.ndarray, keep: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits, imgs = [], []
        for i in range(0, len(eps), batch):
            e = np.asarray(eps[i: i + batch], np.float64)
            n = len(e)
            xs = x1.expand(n, *x1.shape[1:]).clone()
            ys = y1.expand(n).clone()
            ts = None if t1 is None else t1.expand(n).clone()
            res = run_iterative(
                model, attack, xs, ys, ts, e, e * frac, config.steps, norm,
                random_start=config.random_start and attack in ("pgd", "pgd-l2"), seed=config.seed,
                decay=config.decay if attack == "mifgsm" else None, shared_start=True, trace=False,
            )
            logits.append(classify(model, res.adversarial))
            imgs.append(res.adversarial)
        return torch.cat(logits), torch.cat(imgs)
    return run


def _refine(evaluate: Evaluator, is_flip: Callable[[torch.Tensor], np.ndarray], lo: float, hi: float,
            tol: float, points: int, rounds: int | None) -> tuple[float, int]:
    """Shrink (lo, hi] (lo does not flip, hi flips) with ``points`` probes per round; returns (hi, probes)."""
    evals = 0
    done = 0
    while hi - lo > tol and (rounds is None or done < rounds):
        needed = max(1, math.ceil((hi - lo) / tol) - 1)
        k = min(points, needed)
        probes = np.linspace(lo, hi, k + 2)[1:-1]
        logits, _ = evaluate(probes, False)
        flips = is_flip(logits)
        evals += k
        done += 1
        if flips.any():
            first = int(np.argmax(flips))
            hi = float(probes[first])
            lo = float(probes[first - 1]) if first > 0 else lo
        else:
            lo = float(probes[-1])
    return hi, evals


def sweep(model: torch.nn.Module, x, y: int, config: AttackConfig, eps_values: Sequence[float] | None = None, *,
          refine: bool = True, tol: float = 1e-4, refine_points: int | None = None, refine_rounds: int | None = None,
          images_at: Sequence[float] | str | None = None, max_batch: int | None = None) -> SweepResult:
    """Attack one image at every ε of a grid in batched calls, and find the flip ε.

    Args:
        model: a frozen classifier (``explorer.models.Classifier``).
        x: one image, 1 x C x H x W (or C x H x W), values in [0, 1].
        y: its true label.
        config: the attack (one of fgsm, bim, pgd, pgd-l2, mifgsm) with its steps / α / seed / target; α is
            applied as the fraction ``alpha / config.eps`` of each row's ε (``alpha_fraction``).
        eps_values: the grid (default ``default_eps_grid`` for the model: photos 0..16/255, digits 0..0.5).
        refine: refine the flip ε by bisection inside the grid interval where it happens.
        tol: the bisection's target width (FGSM reaches it; iterative attacks stop after ``refine_rounds``).
        refine_points: probes per bisection round (default: FGSM by image size, iterative 8).
        refine_rounds: bisection rounds (default: FGSM until ``tol``, iterative 1).
        images_at: ``"grid"`` keeps every grid adversarial; a list of ε keeps the adversarials at those ε.
        max_batch: rows per forward (default ``EXPLORER_MAX_BATCH``).
    """
    from explorer.config import get_settings

    attack = config.attack
    if attack not in GRADIENT_ATTACKS:
        raise ValueError(f"a sweep runs one of {', '.join(GRADIENT_ATTACKS)}, not {attack!r}")
    x1 = as_images(model, x)
    if len(x1) != 1:
        raise ValueError(f"a sweep takes one image, got {len(x1)}")
    k = num_classes_of(model)
    y = int(y)
    check_config(config, k, y, input_shape=tuple(x1.shape[1:]))
    if eps_values is None:
        eps = default_eps_grid(x1.shape[1] == 3)
    else:
        eps = np.asarray(eps_values, np.float64).reshape(-1)
    check_eps(eps.tolist(), "eps_values", upper=eps_upper(attack, tuple(x1.shape[1:])))
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol}")
    y1 = as_labels(y, 1, x1.device, k, "y")
    t1 = as_labels(config.target, 1, x1.device, k, "target")
    cap = int(max_batch or get_settings().max_batch)

    direction = None
    if attack == "fgsm":
        d, clean = fgsm_direction(model, x1, y1, t1, norm_of(attack))
        direction = d
        evaluate = _fgsm_evaluator(model, x1, d, cap)
        points = refine_points or _probe_batch(x1)
        rounds = refine_rounds
    else:
        clean = classify(model, x1)
        evaluate = _iterative_evaluator(model, x1, y1, t1, config, _grad_batch(x1, cap))
        points = refine_points or 8
        rounds = 1 if refine_rounds is None else refine_rounds

    def is_flip(lg: torch.Tensor) -> np.ndarray:
        n = len(lg)
        return succeeded(lg.argmax(1), y1.expand(n), None if t1 is None else t1.expand(n)).cpu().numpy()

    # the grid (plus any extra ε whose images an iterative attack must keep: same batch)
    extra = np.zeros(0)
    keep_grid = isinstance(images_at, str)
    if isinstance(images_at, str) and images_at != "grid":
        raise ValueError(f"images_at must be 'grid' or a list of eps, got {images_at!r}")
    want = None if images_at is None or keep_grid else np.asarray(images_at, np.float64).reshape(-1)
    if want is not None:
        check_eps(want.tolist(), "images_at", upper=eps_upper(attack, tuple(x1.shape[1:])))
        if attack != "fgsm":
            extra = np.array([e for e in want if not np.any(eps == e)])
    keep = keep_grid or (want is not None and attack != "fgsm")
    logits_all, imgs_all = evaluate(np.concatenate([eps, extra]), keep)
    logits = logits_all[: len(eps)]

    with torch.no_grad():
        n = len(eps)
        ys = y1.expand(n)
        ts = None if t1 is None else t1.expand(n)
        probs = torch.softmax(logits.float(), 1)
        pred = logits.argmax(1)
        flipped = succeeded(pred, ys, ts)
        marg = margin(logits, ys, ts)
        clean_flipped = bool(succeeded(clean.argmax(1), y1, t1)[0])
        if imgs_all is not None:
            delta = imgs_all[:n] - x1
        else:
            delta = fgsm_step(x1, direction, eps) - x1 if direction is not None else None
        linf = LINF.size(delta).cpu().numpy() if delta is not None else np.zeros(n)
        l2 = L2_NORM.size(delta).cpu().numpy() if delta is not None else np.zeros(n)

    pred_np = pred.cpu().numpy().astype(np.int64)
    flipped_np = flipped.cpu().numpy()
    order = np.argsort(eps, kind="stable")
    flip_eps = None
    bracket = None
    evals = 0
    first = next((i for i in order if flipped_np[i]), None)
    if first is not None:
        hi = float(eps[first])
        below = [float(eps[i]) for i in order if eps[i] < hi]
        if hi == 0.0 or (clean_flipped and not below):
            flip_eps, bracket = (0.0, (0.0, hi)) if clean_flipped else (hi, (hi, hi))
        else:
            lo = max(below) if below else 0.0
            bracket = (lo, hi)
            flip_eps = hi
            if refine and hi - lo > tol:
                flip_eps, evals = _refine(evaluate, is_flip, lo, hi, tol, points, rounds)

    if t1 is not None:
        flip_class = int(t1[0])
    elif first is not None:
        flip_class = int(pred_np[first])
    else:
        top = order[-1]
        lg = logits[top].clone()
        lg[y] = float("-inf")
        flip_class = int(lg.argmax())

    images = images_eps = None
    if keep_grid:
        images, images_eps = imgs_all[: len(eps)].cpu().numpy(), eps.copy()
    elif want is not None:
        if attack == "fgsm":
            with torch.no_grad():
                images = fgsm_step(x1, direction, want).cpu().numpy()
        else:
            pool = np.concatenate([eps, extra])
            idx = [int(np.nonzero(pool == e)[0][0]) for e in want]
            images = imgs_all[idx].cpu().numpy()
        images_eps = want.copy()

    probs_np = probs.cpu().numpy()
    clean_np = clean.float().cpu().numpy()[0]
    return SweepResult(
        attack=attack, y=y, target=config.target, eps=eps, logits=logits.float().cpu().numpy(), probs=probs_np,
        pred=pred_np, true_prob=probs_np[:, y], flip_class=flip_class,
        flip_prob=probs_np[:, flip_class] if flip_class is not None else np.zeros(len(eps), np.float32),
        margin=marg.float().cpu().numpy(), linf=linf.astype(np.float32), l2=l2.astype(np.float32),
        flipped=flipped_np, flip_eps=flip_eps, flip_bracket=bracket, clean_logits=clean_np,
        clean_probs=torch.softmax(clean.float(), 1).cpu().numpy()[0], clean_pred=int(clean_np.argmax()),
        refine_evals=evals, images=images, images_eps=images_eps,
        direction=None if direction is None else direction.cpu().numpy()[0],
    )
