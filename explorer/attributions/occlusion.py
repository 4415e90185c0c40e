"""Occlusion sensitivity.

Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional Networks", ECCV,
https://arxiv.org/abs/1311.2901 : slide a grey (here: ``fill_value``) square over the image and record how
much the class score drops; each pixel gets the mean drop over the windows that cover it.

Ours rather than Captum's ``Occlusion``: every occluded copy of an image runs in a few large batches under
``torch.inference_mode`` (Captum's ``perturbations_per_eval`` defaults to 1: one forward per position),
the drop can be taken in probability (as in the paper) or in logit, windows always reach the right and
bottom edges (Captum leaves a strip unattributed when the stride does not divide the size), and a
progress callback runs between batches. Where the stride divides the size, the logit version equals
Captum's ``Occlusion`` with a window over all channels, which the tests check.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from explorer.attributions._common import (
    ProgressFn,
    TargetLike,
    batch_and_targets,
    chunk_size,
    chunks,
    report,
    to_numpy,
)

OUTPUTS = ("prob", "logit")


def default_window(size: int) -> int:
    """An eighth of the image side (at least 1 pixel): 1 on 8 x 8 digits, 3 on MNIST, 28 on 224 x 224."""
    return max(1, size // 8)


def positions(size: int, window: int, stride: int) -> list[int]:
    """Window start offsets along one axis; the last window always ends at the edge."""
    if window > size:
        raise ValueError(f"window {window} is larger than the image side {size}")
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def occlusion(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    target: TargetLike,
    window: int | None = None,
    stride: int | None = None,
    fill_value: float = 0.0,
    output: str = "prob",
    batch_size: int = 0,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Occlusion sensitivity (Zeiler & Fergus 2014): N x 1 x H x W float32, signed.

    A ``window x window`` square over all channels is set to ``fill_value`` at every ``stride`` step;
    each pixel's value is the mean of ``score(x) - score(occluded)`` over the windows covering it, where the
    score is the target's softmax probability (``output="prob"``) or its logit (``"logit"``). Positive:
    hiding the pixel lowers the score. ``window`` defaults to ``default_window``, ``stride`` to half the window.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    xb, targets = batch_and_targets(model, x, target)
    n, c, h, w = xb.shape
    win = int(window) if window else default_window(min(h, w))
    step = int(stride) if stride else max(1, win // 2)
    if win < 1 or step < 1:
        raise ValueError("window and stride must be positive")
    rows, cols = positions(h, win, step), positions(w, win, step)
    corners = [(r, q) for r in rows for q in cols]
    size = chunk_size((c, h, w), batch_size)
    total = len(corners) * n
    done = 0
    maps = []
    with torch.inference_mode():
        masks = torch.zeros(len(corners), 1, h, w, device=xb.device)
        for k, (r, q) in enumerate(corners):
            masks[k, :, r:r + win, q:q + win] = 1.0
        coverage = masks.sum(0)  # 1 x H x W, >= 1 everywhere
        for i in range(n):
            image, t = xb[i:i + 1], int(targets[i])
            score = _score(model(image), t, output)[0]
            acc = torch.zeros(1, h, w, device=xb.device)
            for start, stop in chunks(len(corners), size):
                m = masks[start:stop]
                occluded = image * (1.0 - m) + fill_value * m
                drop = score - _score(model(occluded), t, output)
                acc += (drop.view(-1, 1, 1, 1) * m).sum(0)
                done += stop - start
                report(progress, done / total, f"Occlusion: {done}/{total} windows")
            maps.append(acc / coverage)
    return to_numpy(torch.stack(maps))


def _score(logits: torch.Tensor, target: int, output: str) -> torch.Tensor:
    if output == "prob":
        return torch.softmax(logits.float(), dim=1)[:, target]
    return logits[:, target].float()
