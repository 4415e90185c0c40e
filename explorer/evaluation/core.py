"""Attacking a batch of samples at every ε of a grid at once, and finding each sample's flip ε.

The batch is repeated once per ε with a per-row ε (``explorer.attacks.sweep`` does the same for one image),
cut into chunks of at most ``rows`` rows (``EXPLORER_MAX_BATCH``), and attacked through
``explorer.attacks.run_attack`` with ``AttackConfig(attack=name, eps=<one ε per row>, ...)``; FGSM takes one
gradient per sample and builds every ε from it (bit-identical to separate ``fgsm`` calls). The flip ε (the
smallest ε at which the attack succeeds) starts from the grid interval where a sample first fails and is
refined by batched bisection: each round probes a few ε inside every open interval, all samples in one batch.

A shard (one model, one attack, one batch of samples) is the unit of work an executor runs: a module-level
function of plain data, so a Ray worker can run it; the model comes from the process-wide model cache, so
each worker loads it once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from explorer.runs.store import storable

#: failing examples kept per (model, attack, ε) for display
KEEP_EXAMPLES = 6
KEEP_EXAMPLES_PHOTO = 3


@dataclass(frozen=True)
class AttackSettings:
    """One attack of an evaluation (plain, hashable). alpha: absolute step (None: the attack's default, a
    fraction of each row's ε). The random start of each chunk is seeded from (seed, sample offset, chunk)."""

    attack: str
    steps: int = 10
    alpha: float | None = None
    random_start: bool = True
    seed: int = 0


def default_refine(attack: str) -> tuple[int, int]:
    """(bisection rounds, probes per round) of the flip ε: FGSM probes are forwards only (4 rounds of 7: the
    grid interval shrinks 4,096 times); an iterative attack reruns per probe (1 round of 3: 4 times)."""
    return (4, 7) if attack == "fgsm" else (1, 3)


def _chunk_seed(seed: int, start: int, chunk: int) -> int:
    """A seed for one chunk of rows, in the attack's seed range [0, 2**31)."""
    return int(np.random.SeedSequence([int(seed), int(start), int(chunk)]).generate_state(1)[0]) & 0x7FFFFFFF


def _config(settings: AttackSettings, eps_rows: np.ndarray, seed: int):
    from explorer.attacks import AttackConfig

    e = tuple(float(v) for v in eps_rows)
    return AttackConfig(attack=settings.attack, eps=e if len(set(e)) > 1 else e[0], steps=int(settings.steps),
                        alpha=settings.alpha, random_start=bool(settings.random_start), seed=seed)


def attack_rows(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, eps_rows: np.ndarray,
                settings: AttackSettings, *, rows: int, start: int = 0, tag: int = 0,
                keep_images: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Attack row i of ``x`` (N x C x H x W, labels ``y``) at ``eps_rows[i]``; returns (predicted class per row,
    the adversarial rows or None). Rows go in chunks of at most ``rows``; FGSM shares one gradient per
    distinct image (rows are grouped by image so the gradient is taken once)."""
    from explorer.attacks import run_attack
    from explorer.attacks._common import classify

    n = len(x)
    preds = np.empty(n, np.int64)
    imgs = np.empty_like(x) if keep_images else None
    for c, i in enumerate(range(0, n, max(1, rows))):
        j = min(n, i + rows)
        res = run_attack(model, x[i:j], y[i:j], _config(settings, eps_rows[i:j], _chunk_seed(
            settings.seed, start + tag * 1_000_003, c)), trace=False)
        logits = classify(model, res.adversarial)
        preds[i:j] = logits.argmax(1).cpu().numpy()
        if imgs is not None:
            imgs[i:j] = res.adversarial.detach().cpu().numpy()
    return preds, imgs


class _Grid:
    """Adversarial predictions of B samples at E values of ε, and the images on request."""

    def __init__(self, model, x: np.ndarray, y: np.ndarray, settings: AttackSettings, rows: int, start: int):
        self.model, self.x, self.y, self.s, self.rows, self.start = model, x, y, settings, rows, start
        self.calls = 0
        self.direction = None
        if settings.attack == "fgsm":
            from explorer.attacks._common import as_images, as_labels
            from explorer.attacks.fgsm import fgsm_direction
            from explorer.attacks.norms import LINF

            xt = as_images(model, x)
            yt = as_labels(y, len(xt), xt.device, getattr(model, "num_classes", None))
            dirs = []
            for i in range(0, len(xt), max(1, rows)):
                d, _ = fgsm_direction(model, xt[i: i + rows], yt[i: i + rows], None, LINF)
                dirs.append(d)
            self.xt = xt
            self.direction = torch.cat(dirs) if dirs else torch.zeros_like(xt)

    def run(self, idx: np.ndarray, eps: np.ndarray, keep: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions for (sample idx[k], ε eps[k]) pairs."""
        self.calls += 1
        if len(idx) == 0:
            return np.zeros(0, np.int64), (np.zeros((0, *self.x.shape[1:]), np.float32) if keep else None)
        if self.direction is not None:
            from explorer.attacks._common import classify, rows as per_row
            from explorer.attacks.fgsm import fgsm_step

            preds = np.empty(len(idx), np.int64)
            imgs = np.empty((len(idx), *self.x.shape[1:]), np.float32) if keep else None
            t = torch.as_tensor(idx)
            with torch.inference_mode():
                for i in range(0, len(idx), self.rows):
                    sl = slice(i, i + self.rows)
                    adv = fgsm_step(self.xt[t[sl]], self.direction[t[sl]], per_row(eps[sl], self.xt))
                    preds[sl] = classify(self.model, adv).argmax(1).cpu().numpy()
                    if imgs is not None:
                        imgs[sl] = adv.cpu().numpy()
            return preds, imgs
        return attack_rows(self.model, self.x[idx], self.y[idx], eps, self.s, rows=self.rows, start=self.start,
                           tag=self.calls, keep_images=keep)


@storable
@dataclass(frozen=True)
class ShardResult:
    """One model × attack × batch of samples (B samples, E ε).

    clean_pred: (B,). pred: (E, B) the adversarial's class at each ε. flip_eps: (B,) the smallest ε found that
    fools the model (0 when the clean image is already wrong, inf when no ε of the grid does), refined by
    bisection to ``flip_width`` or better. example_idx / example_pred / examples: up to K failing samples per ε
    (clean right, adversarial wrong; index into the whole set, -1 = none) with their adversarial images.
    """

    model_id: str
    attack: str
    start: int
    clean_pred: np.ndarray
    pred: np.ndarray
    flip_eps: np.ndarray
    flip_width: np.ndarray
    example_idx: np.ndarray
    example_pred: np.ndarray
    examples: np.ndarray
    attack_calls: int
    seconds: float


def evaluate_batch(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, eps: np.ndarray, settings: AttackSettings,
                   *, rows: int, start: int = 0, refine_rounds: int | None = None, refine_points: int | None = None,
                   keep: int | None = None, model_id: str = "", reuse: bool | None = None) -> ShardResult:
    """Attack B samples at every ε of ``eps``, then refine every sample's flip ε.

    ``y`` are the labels the attack works against (for photos and uploads: the model's clean prediction).

    ``reuse`` (default: every attack but FGSM): walk the grid from the smallest ε up and attack, at each ε, only
    the samples no smaller ε has fooled yet (all of them in one batch). An adversarial found at ε_k lies inside
    every larger ε-ball, so the sample counts as fooled at every larger ε of the grid, with that adversarial as
    its witness: a robust-accuracy curve is the share of samples for which *no* perturbation of size ≤ ε was
    found. Each (sample, ε) row that is run is computed exactly as in a plain run; the curve differs from a plain
    run's only where the plain run is not monotone (a larger ε failing on a sample a smaller ε fooled), and then
    it is lower. FGSM builds every ε from one gradient (forwards only), so it runs every row, keeping the
    non-monotone curves that check 1 looks for. ``reuse=False``: every (sample, ε) row as one batched run.
    The flip-ε bisection probes the points of each interval from the smallest up and stops at the first that
    fools (the same answer as probing them all).
    """
    from explorer.inference import predict_logits

    t0 = time.perf_counter()
    d_rounds, d_points = default_refine(settings.attack)
    refine_rounds = d_rounds if refine_rounds is None else refine_rounds
    refine_points = d_points if refine_points is None else refine_points
    reuse = settings.attack != "fgsm" if reuse is None else bool(reuse)
    eps = np.asarray(eps, np.float64)
    b, e = len(x), len(eps)
    keep = (KEEP_EXAMPLES if x.shape[1] == 1 else KEEP_EXAMPLES_PHOTO) if keep is None else keep
    clean = predict_logits(model, x, batch_size=max(1, rows)).argmax(1).astype(np.int64)
    right = clean == y
    grid = _Grid(model, x, y, settings, rows, start)
    order = np.argsort(eps, kind="stable")
    # ε = 0 leaves every image as it is (every attack clips to the ε-ball): its answer is the clean one
    pred = np.tile(clean, (e, 1))
    imgs = np.tile(x[None], (e, 1, 1, 1, 1)) if keep > 0 else None
    if reuse:
        first = np.full(b, -1)  # position in ``order`` of the first ε that fools (clean-wrong: before the grid)
        first[~right] = -2
        for pos, k in enumerate(order):
            if eps[k] <= 0:
                continue
            todo = np.flatnonzero(first == -1)
            if len(todo):
                p_k, i_k = grid.run(todo, np.full(len(todo), eps[k]), keep > 0)
                pred[k, todo] = p_k
                if imgs is not None and i_k is not None:
                    imgs[k, todo] = i_k
                first[todo[p_k != y[todo]]] = pos
            done = np.flatnonzero(first >= 0)
            done = done[first[done] < pos]  # fooled at a smaller ε: the witness answers for this ε too
            if len(done):
                src = order[first[done]]
                pred[k, done] = pred[src, done]
                if imgs is not None:
                    imgs[k, done] = imgs[src, done]
    else:
        idx = np.tile(np.arange(b), e)  # ε-major: row j is sample j % B at ε j // B
        eps_rows = np.repeat(eps, b)
        moved = eps_rows > 0
        pred_flat = pred.reshape(-1)
        p_moved, i_moved = grid.run(idx[moved], eps_rows[moved], keep > 0)
        pred_flat[moved] = p_moved
        if imgs is not None and i_moved is not None:
            imgs.reshape(e * b, *x.shape[1:])[moved] = i_moved
    fooled = pred != y[None, :]

    # failing examples for display: clean right, adversarial wrong
    ex_idx = np.full((e, keep), -1, np.int64)
    ex_pred = np.full((e, keep), -1, np.int64)
    ex_img = np.zeros((e, keep, *x.shape[1:]), np.float32)
    if keep > 0 and imgs is not None:
        for k in range(e):
            hits = np.flatnonzero(fooled[k] & right)[:keep]
            ex_idx[k, : len(hits)] = hits + start
            ex_pred[k, : len(hits)] = pred[k, hits]
            ex_img[k, : len(hits)] = imgs[k, hits]

    # flip ε: the first grid ε that fools, refined inside (previous grid ε, that ε]
    se = eps[order]
    first = np.where(fooled[order].any(axis=0), fooled[order].argmax(axis=0), -1)
    flip = np.full(b, np.inf)
    lo = np.zeros(b)
    hi = np.full(b, np.inf)
    has = first >= 0
    hi[has] = se[first[has]]
    lo[has] = np.where(first[has] > 0, se[np.maximum(first[has] - 1, 0)], 0.0)
    flip[has] = hi[has]
    flip[~right] = 0.0
    open_ = has & right & (hi > lo) & (hi > 0)
    lo[~open_] = hi[~open_] = 0.0
    for _ in range(max(0, int(refine_rounds))):
        act = np.flatnonzero(open_)
        if not len(act):
            break
        k = max(1, int(refine_points))
        frac = np.arange(1, k + 1) / (k + 1)
        probe = lo[act, None] + (hi[act] - lo[act])[:, None] * frac[None, :]
        if reuse:  # from the smallest probe up; a sample leaves at its first hit (the answer probing all gives)
            hit = np.zeros((len(act), k), bool)
            live = np.arange(len(act))
            for j in range(k):
                if not len(live):
                    break
                p_pred, _ = grid.run(act[live], probe[live, j], False)
                h = p_pred != y[act[live]]
                hit[live[h], j] = True
                live = live[~h]
        else:
            p_idx = np.repeat(act, k)
            p_pred, _ = grid.run(p_idx, probe.reshape(-1), False)
            hit = (p_pred != y[p_idx]).reshape(len(act), k)
        any_hit = hit.any(axis=1)
        j = hit.argmax(axis=1)
        new_hi = np.where(any_hit, probe[np.arange(len(act)), j], hi[act])
        new_lo = np.where(any_hit, np.where(j > 0, probe[np.arange(len(act)), np.maximum(j - 1, 0)], lo[act]),
                          probe[:, -1])
        hi[act], lo[act] = new_hi, new_lo
        flip[act] = new_hi
    width = np.where(open_, hi - lo, 0.0)
    return ShardResult(
        model_id=model_id, attack=settings.attack, start=int(start), clean_pred=clean, pred=pred.astype(np.int64),
        flip_eps=flip, flip_width=width, example_idx=ex_idx, example_pred=ex_pred, examples=ex_img,
        attack_calls=grid.calls, seconds=time.perf_counter() - t0,
    )
