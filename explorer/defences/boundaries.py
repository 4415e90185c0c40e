"""Boundary views of defences (library side of the Boundaries page).

* Image slices: :func:`explorer.boundaries.slices.compute_slice` takes any module with the Classifier contract, so
  every defended registry model (``digits-lenet-noise``, ``mnist-lenet-ens25-bootstrap-max``, ...) is sliced as
  is; :func:`defended_slice` slices a base model and its noise-averaged version on the *same* plane, so their
  class regions can be compared cell for cell.
* The 2-D lab: :class:`ToyNoiseAverage` wraps the lab's MLP in Monte-Carlo noise averaging (Gaussian noise of σ in
  the plane's own units, no clipping: the plane is not an image); :func:`defended_grid` evaluates it on the lab's
  grid with :func:`explorer.boundaries.grid.grid` (``defence="noise"``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from explorer.boundaries.grid import BOUNDS, GridResult, grid
from explorer.boundaries.slices import SliceConfig, SliceResult, compute_slice, evaluate_plane
from explorer.defences.noise import noise_averaged
from explorer.models.wrapper import Classifier

DEFENCES_2D: tuple[str, ...] = ("none", "noise")


class ToyNoiseAverage(nn.Module):
    """``log((1/n) Σ softmax(model(x + σ ε_i)))`` for 2-D points, the same draws ε_i (from ``seed``) on every call."""

    def __init__(self, model: nn.Module, n: int = 32, sigma: float = 0.3, seed: int = 0) -> None:
        super().__init__()
        if n < 1 or sigma < 0:
            raise ValueError("n must be >= 1 and σ >= 0")
        self.model, self.n, self.sigma, self.seed = model, int(n), float(sigma), int(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eps = torch.randn((self.n, 1, x.shape[1]), generator=torch.Generator().manual_seed(self.seed)).to(x)
        noisy = (x.unsqueeze(0) + self.sigma * eps).reshape(-1, x.shape[1])
        logp = torch.log_softmax(self.model(noisy), -1).reshape(self.n, len(x), -1)
        return torch.logsumexp(logp, 0) - float(np.log(self.n))


def defended_grid(model: nn.Module, defence: str = "noise", *, n: int = 32, sigma: float = 0.3, seed: int = 0,
                  bounds: tuple[float, float, float, float] = BOUNDS, resolution: int = 200) -> GridResult:
    """The 2-D lab's grid for ``model`` behind ``defence`` ("none" or "noise")."""
    if defence not in DEFENCES_2D:
        raise ValueError(f"unknown defence {defence!r} (known: {', '.join(DEFENCES_2D)})")
    wrapped = model if defence == "none" else ToyNoiseAverage(model, n, sigma, seed)
    return grid(wrapped, bounds, resolution)


def defended_slice(base: Classifier, x: np.ndarray, y: int | None, config: SliceConfig = SliceConfig(), *,
                   n: int = 16, sigma: float = 0.25, seed: int = 0) -> tuple[SliceResult, SliceResult]:
    """The base model's slice and its noise-averaged version's on the same plane (the base model's directions)."""
    sl = compute_slice(base, x, y, config)
    avg = noise_averaged(base, n, sigma, seed)
    smooth = evaluate_plane(avg, x, sl.plane.d1, sl.plane.d2, config.extent, config.resolution, clip=config.clip)
    return sl.result, smooth


def speckles(pred: np.ndarray) -> int:
    """Cells whose class differs from all four neighbours: isolated "speckles" of a class map."""
    p = np.asarray(pred)
    c = p[1:-1, 1:-1]
    iso = (c != p[:-2, 1:-1]) & (c != p[2:, 1:-1]) & (c != p[1:-1, :-2]) & (c != p[1:-1, 2:])
    return int(iso.sum())


SPECKLE_CELLS = 4
"""A speckle: a connected (4-neighbour) region of one class of at most this many cells."""


def speckle_fraction(pred: np.ndarray, max_cells: int = SPECKLE_CELLS) -> float:
    """Fraction of the cells of a class map that lie in speckles: connected same-class regions (4-neighbour) of
    at most ``max_cells`` cells, the isolated islands and thin slivers that noise averaging smooths away."""
    from scipy import ndimage

    p = np.asarray(pred)
    if p.size == 0:
        return 0.0
    small = 0
    for k in np.unique(p):
        labels, count = ndimage.label(p == k)
        if count:
            sizes = np.bincount(labels.ravel())[1:]
            small += int(sizes[sizes <= max_cells].sum())
    return small / p.size


def region_count(pred: np.ndarray) -> int:
    """Connected (4-neighbour) one-class regions of a class map: 1 per class for clean regions, more when split."""
    from scipy import ndimage

    p = np.asarray(pred)
    return int(sum(ndimage.label(p == k)[1] for k in np.unique(p)))


def grid_speckle_fraction(g: GridResult) -> float:
    """Speckle fraction of the 2-D lab's class map (p(blue) > 0.5) on its grid."""
    return speckle_fraction(np.asarray(g.prob) > 0.5)
