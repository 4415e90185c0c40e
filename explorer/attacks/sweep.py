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

from explorer.attacks._common import as_images, as_labels, classify, num_classes_of
from explorer.attacks import registry
from explorer.attacks.config import (
    AttackConfig,
    check_config,
    check_eps,
    eps_upper,
    max_batch_allowed,
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


def declared_photo(model: torch.nn.Module, input_shape) -> bool:
    """Whether the model's ε scale is the photo one, by its DECLARED kind (``explorer.runs.rules.model_kind``:
    the model's dataset, or for a user model its declared input size), never by its channel count."""
    from explorer.runs.rules import model_kind

    return model_kind(getattr(model, "model_id", None), input_shape) == "photo"


def norm_of(attack: str) -> Norm:
    """The norm plug-in ε is measured in for ``attack`` (from its registry spec)."""
    return L2_NORM if registry.get(attack).norm == "l2" else LINF


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

    def image_digest_at(self, x: np.ndarray, eps: float) -> str:
        """The sha256 digest of ``image_at(x, eps)`` (the cache key of checks on that adversarial)."""
        from explorer.digest import array_digest

        return array_digest(np.asarray(self.image_at(x, eps), np.float32))

    def image_at(self, x: np.ndarray, eps: float) -> np.ndarray:
        """The adversarial of ``x`` (C x H x W) at ``eps``: rebuilt from FGSM's direction for any ε (bit-identical
        to an ``fgsm`` call), else the kept image at that ε (``images_at``)."""
        if self.direction is not None:
            from explorer.attacks.fgsm import fgsm_step

            x1 = torch.as_tensor(np.asarray(x, np.float32))
            with torch.no_grad():
                return fgsm_step(x1, torch.as_tensor(self.direction), float(eps)).numpy()
        if self.images is None or self.images_eps is None:
            raise ValueError("this sweep kept no images: run it with images_at='grid' (or the ε you need)")
        hits = np.flatnonzero(self.images_eps == eps)
        if not len(hits):
            raise ValueError(f"this sweep kept no image at ε = {eps:g}")
        return self.images[hits[0]]


def _grad_batch(x: torch.Tensor, max_batch: int) -> int:
    """Rows per gradient batch: bounded by the server cap and by ~4M input values (activation memory)."""
    per_row = int(np.prod(x.shape[1:]))
    return max(1, min(max_batch, (1 << 22) // max(per_row, 1)))


def _even(n: int, cap: int) -> int:
    """Rows per chunk so that ``n`` rows split into equal chunks of at most ``cap``."""
    chunks = max(1, -(-n // max(cap, 1)))
    return -(-n // chunks)


def _call_cost(x: torch.Tensor) -> float:
    """The fixed cost of one forward call in units of one image's cost (measured on a 2-core CPU: about 10
    for 8 x 8 digits, under 1 for 28 x 28, nearly 0 for 224 x 224 photos)."""
    return 640.0 / float(x.shape[-1] * x.shape[-2])


def _probes_per_round(ratio: float, call_cost: float, cap: int) -> int:
    """Probes per round that shrink an interval by ``ratio`` at the least cost r·(call_cost + k).

    r rounds of k probes shrink it (k + 1)^r times: for each r take the smallest such k, keep the cheapest.
    """
    if ratio <= 1:
        return 1
    best_k, best_cost = 1, float("inf")
    for r in range(1, 40):
        k = max(1, math.ceil(ratio ** (1.0 / r) - 1e-9) - 1)
        while (k + 1) ** r < ratio:
            k += 1
        cost = r * (call_cost + k)
        if k <= cap and cost < best_cost:
            best_k, best_cost = k, cost
        if k == 1:
            break
    return best_k


Evaluator = Callable[[np.ndarray, bool], tuple[torch.Tensor, torch.Tensor | None]]


def _fgsm_evaluator(model, x1, direction, batch: int) -> Evaluator:
    def run(eps: np.ndarray, keep: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits, imgs = [], []
        step = _even(len(eps), batch)
        with torch.inference_mode():
            for i in range(0, len(eps), step):
                adv = fgsm_step(x1, direction, eps[i: i + step])
                logits.append(model(adv))
                if keep:
                    imgs.append(adv)
        out = logits[0] if len(logits) == 1 else torch.cat(logits)
        return out, ((imgs[0] if len(imgs) == 1 else torch.cat(imgs)) if keep else None)
    return run


def _rows_evaluator(model, x1, y1, t1, config: AttackConfig, batch: int) -> Evaluator:
    """A budget attack's batched rows (its spec's ``rows`` adapter), one row per ε, classified afterwards."""
    rows_fn = registry.get(config.attack).rows

    def run(eps: np.ndarray, keep: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits, imgs = [], []
        step = _even(len(eps), batch)
        for i in range(0, len(eps), step):
            e = np.asarray(eps[i: i + step], np.float64)
            n = len(e)
            xs = x1.expand(n, *x1.shape[1:]).clone()
            ys = y1.expand(n).clone()
            ts = None if t1 is None else t1.expand(n).clone()
            adv = rows_fn(model, xs, ys, ts, e, config)
            logits.append(classify(model, adv))
            imgs.append(adv)
        return torch.cat(logits), torch.cat(imgs)
    return run


def _refine(evaluate: Evaluator, is_flip: Callable[[torch.Tensor], np.ndarray], lo: float, hi: float,
            tol: float, points: int | Callable[[float], int], rounds: int | None) -> tuple[float, int]:
    """Shrink (lo, hi] (lo does not flip, hi flips) with ``points`` probes per round (a number, or a function
    of the shrink ratio still needed); returns (hi, number of probes)."""
    evals = 0
    done = 0
    while hi - lo > tol and (rounds is None or done < rounds):
        needed = max(1, math.ceil((hi - lo) / tol) - 1)
        k = min(points(needed + 1) if callable(points) else points, needed)
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


def _margin(logits: np.ndarray, y: int, target: int | None) -> np.ndarray:
    """Same definition as ``explorer.attacks._common.margin`` (positive: not yet successful), in numpy."""
    cls = y if target is None else target
    others = logits.copy()
    others[:, cls] = -np.inf
    best_other = others.max(axis=1)
    return (logits[:, cls] - best_other) if target is None else (best_other - logits[:, cls])


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
        refine_points: probes per bisection round (default: FGSM, the cheapest plan for the image size, from
            plain bisection for photos to a dozen probes per batched forward for 8 x 8 digits; iterative 8).
        refine_rounds: bisection rounds (default: FGSM until ``tol``, iterative 1).
        images_at: ``"grid"`` keeps every grid adversarial; a list of ε keeps the adversarials at those ε.
        max_batch: rows per forward (default ``EXPLORER_MAX_BATCH``).
    """
    attack = config.attack
    spec = registry.get(attack)
    if spec.minimal or (spec.rows is None and not spec.direction):
        raise ValueError(f"a sweep runs one of {', '.join(registry.budget_names())}, not {attack!r}")
    x1 = as_images(model, x)
    if len(x1) != 1:
        raise ValueError(f"a sweep takes one image, got {len(x1)}")
    k = num_classes_of(model)
    y = int(y)
    shape = tuple(x1.shape[1:])
    check_config(config, k, y, input_shape=shape)
    if eps_values is None:
        eps = default_eps_grid(declared_photo(model, shape))
    else:
        eps = np.asarray(eps_values, np.float64).reshape(-1)
    upper = eps_upper(attack, shape)
    check_eps(eps.tolist(), "eps_values", upper=upper)
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol}")
    if isinstance(images_at, str) and images_at != "grid":
        raise ValueError(f"images_at must be 'grid' or a list of eps, got {images_at!r}")
    y1 = as_labels(y, 1, x1.device, k, "y")
    target = None if config.target is None else int(config.target)
    t1 = as_labels(target, 1, x1.device, k, "target")
    cap = int(max_batch or max_batch_allowed())

    direction = None
    if spec.direction:
        direction, clean = fgsm_direction(model, x1, y1, t1, norm_of(attack))
        evaluate = _fgsm_evaluator(model, x1, direction, cap)
        call_cost = _call_cost(x1)
        points = refine_points or (lambda ratio: _probes_per_round(ratio, call_cost, cap))
        rounds = refine_rounds
    else:
        clean = classify(model, x1)
        evaluate = _rows_evaluator(model, x1, y1, t1, config, _grad_batch(x1, cap))
        points = refine_points or 8
        rounds = 1 if refine_rounds is None else refine_rounds

    def flips_of(pred: np.ndarray) -> np.ndarray:
        return pred != y if target is None else pred == target

    def is_flip(lg: torch.Tensor) -> np.ndarray:
        return flips_of(lg.argmax(1).cpu().numpy())

    # the grid, plus any extra ε whose images an iterative attack must keep (same batch)
    keep_grid = images_at == "grid"
    want = None if images_at is None or keep_grid else np.asarray(images_at, np.float64).reshape(-1)
    extra = np.zeros(0)
    if want is not None:
        check_eps(want.tolist(), "images_at", upper=upper)
        if not spec.direction:
            extra = np.array([e for e in want if not np.any(eps == e)])
    n = len(eps)
    logits_t, imgs_t = evaluate(np.concatenate([eps, extra]) if len(extra) else eps, True)
    # bookkeeping in numpy: a handful of tiny arrays, where each torch call would cost more than its work
    with torch.no_grad():
        both = torch.cat([clean.detach().float(), logits_t[:n].float()]).cpu().numpy()
        imgs_np = imgs_t.detach().cpu().numpy()
    x_np = x1.cpu().numpy()
    delta = (imgs_np[:n] - x_np).reshape(n, -1)
    linf = np.abs(delta).max(axis=1).astype(np.float32)
    l2 = np.sqrt(np.einsum("ij,ij->i", delta, delta, dtype=np.float64)).astype(np.float32)
    z = np.exp(both - both.max(axis=1, keepdims=True))
    both_probs = (z / z.sum(axis=1, keepdims=True)).astype(np.float32)
    clean_np, clean_probs = both[0], both_probs[0]
    logits, probs = both[1:], both_probs[1:]
    pred = logits.argmax(axis=1)
    flipped = flips_of(pred)
    clean_flipped = bool(flips_of(clean_np.argmax()[None])[0])

    order = np.argsort(eps, kind="stable")
    flip_eps = None
    bracket = None
    evals = 0
    hits = order[flipped[order]]
    first = int(hits[0]) if len(hits) else None
    if first is not None:
        hi = float(eps[first])
        below = eps[eps < hi]
        if hi == 0.0 or (clean_flipped and not len(below)):
            flip_eps, bracket = (0.0, (0.0, hi)) if clean_flipped else (hi, (hi, hi))
        else:
            lo = float(below.max()) if len(below) else 0.0
            bracket = (lo, hi)
            flip_eps = hi
            if refine and hi - lo > tol:
                flip_eps, evals = _refine(evaluate, is_flip, lo, hi, tol, points, rounds)

    if target is not None:
        flip_class = target
    elif first is not None:
        flip_class = int(pred[first])
    else:
        last = logits[order[-1]].copy()
        last[y] = -np.inf
        flip_class = int(last.argmax())

    images = images_eps = None
    if keep_grid:
        images, images_eps = imgs_np[:n], eps.copy()
    elif want is not None:
        if spec.direction:
            with torch.no_grad():
                images = fgsm_step(x1, direction, want).cpu().numpy()
        else:
            pool = np.concatenate([eps, extra])
            images = imgs_np[[int(np.nonzero(pool == e)[0][0]) for e in want]]
        images_eps = want.copy()

    return SweepResult(
        attack=attack, y=y, target=target, eps=eps, logits=logits, probs=probs, pred=pred.astype(np.int64),
        true_prob=probs[:, y], flip_class=flip_class, flip_prob=probs[:, flip_class],
        margin=_margin(logits, y, target).astype(np.float32), linf=linf, l2=l2, flipped=flipped,
        flip_eps=flip_eps, flip_bracket=bracket, clean_logits=clean_np, clean_probs=clean_probs,
        clean_pred=int(clean_np.argmax()), refine_evals=evals, images=images, images_eps=images_eps,
        direction=None if direction is None else direction.cpu().numpy()[0],
    )
