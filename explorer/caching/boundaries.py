"""Cached results of the Boundaries page: the 2-D lab's trained networks, grids, margins and point attacks,
and slices through image space around a real image.

Which cache holds what
----------------------
* **Trained toy networks: ``st.cache_resource``**, keyed by the three frozen configs (data, network,
  adversarial training). ``TrainedMLP`` holds a live ``nn.Module``: ``st.cache_data`` would pickle and unpickle
  it on every hit (and hand each rerun a fresh copy), while a cache resource hands back the one shared object
  at no cost. Sharing is safe for the same reason the model zoo is shared: ``train_mlp`` returns the network
  frozen (eval mode, ``requires_grad=False``), every caller only reads it and takes input gradients with
  ``torch.autograd.grad``, and nothing ever mutates it.
* **Everything derived from it: ``st.cache_data``** (plain numpy results): the probability / gradient grid, the
  margins, the attack on one picked point. Keyed by the same configs plus their own settings.
* **Slices, profiles, noise-averaged slices: run-layer requests**, keyed by their request digest (the image
  by its digest, never hashed). Light ones run inline through ``st.cache_data``; heavy ones (a photo model's
  slice, a noise-averaged slice) are jobs on the server's queue. The PGD perturbation comes from
  ``explorer.caching.attacks`` with the same ``AttackConfig`` Attack Studio uses, so the PGD marker is the very
  attack shown there (and cached once).

Progress: training, slices and profiles report progress through a bar that is created *inside* the cached
function on its first report and emptied before the function returns, so a cache hit replays nothing (no
bar flashes) and no element created outside the function is touched.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.boundaries import (
    AdvTrainConfig,
    GridResult,
    Margins,
    MLPConfig,
    PointAttack,
    Profile,
    Slice,
    SliceConfig,
    ToyData,
    ToyDataConfig,
    TrainedMLP,
    attack_point,
    grid,
    make_dataset,
    margins,
    train_mlp,
)
from explorer.caching import ProgressBar
from explorer.boundaries.toy import describe_training
from explorer.caching.attacks import adversarial
from explorer.runs import run
from explorer.runs.requests import ProfileRequest, SliceRequest, slice_pgd_config

__all__ = ["GRID_RESOLUTION", "smoothed_lab_grid", "smoothed_slice", "MARGIN_CAP", "PGD_STEPS", "POINT_PGD_STEPS", "dataset", "describe_training",
           "image_slice", "lab_grid", "lab_margins", "pgd_config", "point_attack", "profile", "trained"]

GRID_RESOLUTION = 150
PGD_STEPS = 10  # the slice's PGD marker (and the "pgd/random" plane): Attack Studio's default PGD-10
POINT_PGD_STEPS = 20
MARGIN_CAP = 2.0


pgd_config = slice_pgd_config  # the slice's PGD: Attack Studio's PGD at this ε (explorer.runs.requests)


# ---------------------------------------------------------------------------------------------- 2-D lab
@st.cache_data(max_entries=64, show_spinner=False)
def dataset(data: ToyDataConfig) -> ToyData:
    """The toy dataset of ``data`` (deterministic for its seed)."""
    return make_dataset(data)


@st.cache_resource(max_entries=48, show_spinner=False)
def trained(data: ToyDataConfig, mlp: MLPConfig, adv: AdvTrainConfig) -> TrainedMLP:
    """The frozen network trained on ``data`` (shared and never mutated: see the module docstring)."""
    points = dataset(data)
    bar = ProgressBar(f"Training ({describe_training(adv)})")
    try:
        return train_mlp(points, mlp, adv, progress=bar)
    finally:
        bar.close()


@st.cache_data(max_entries=64, show_spinner=False)
def lab_grid(data: ToyDataConfig, mlp: MLPConfig, adv: AdvTrainConfig,
             resolution: int = GRID_RESOLUTION) -> GridResult:
    """p(blue), its input gradient and the 0.5 contour on the lab's fixed square."""
    return grid(trained(data, mlp, adv).model, resolution=resolution)


@st.cache_data(max_entries=64, show_spinner=False)
def lab_margins(data: ToyDataConfig, mlp: MLPConfig, adv: AdvTrainConfig, norm: str,
                cap: float = MARGIN_CAP) -> Margins:
    """Distance of every training point to the boundary along its attack direction (``norm`` units)."""
    points = dataset(data)
    return margins(trained(data, mlp, adv).model, points.x, points.y, norm=norm, cap=cap)


@st.cache_data(max_entries=256, show_spinner=False)
def point_attack(data: ToyDataConfig, mlp: MLPConfig, adv: AdvTrainConfig, index: int, eps: float, norm: str,
                 steps: int = POINT_PGD_STEPS) -> PointAttack:
    """FGSM and a ``steps``-step PGD on training point ``index`` of ``data`` (its true label)."""
    points = dataset(data)
    return attack_point(trained(data, mlp, adv).model, points.x[index], int(points.y[index]), eps, norm, steps)


# ----------------------------------------------------------------------------------------------- slices
# Each of these is a run-layer request: light ones (a digits slice) run here, through ``st.cache_data`` with a
# progress bar; heavy ones (a photo model's slice, a noise-averaged slice) are jobs on the server's queue
# (``explorer.caching.jobs``): the function returns None while the job waits or runs, with its status box drawn
# where the result will appear.
def _slice_request(model_id: str, image_digest: str, label: int, config: SliceConfig, device: str | None,
                   x: np.ndarray) -> SliceRequest:
    adv = adversarial(model_id, image_digest, int(label), pgd_config(config.eps, config.pgd_steps), device, x)
    return SliceRequest(model_id, image_digest, int(label), config, device, x, adversarial=adv)


@st.cache_data(max_entries=32, show_spinner=False)
def _image_slice(digest: str, _request: SliceRequest) -> Slice:
    c = _request.config
    bar = ProgressBar(f"Classifying {c.resolution}×{c.resolution} images on the plane")
    try:
        return run(_request, progress=bar)
    finally:
        bar.close()


def image_slice(model_id: str, image_digest: str, label: int, config: SliceConfig, device: str | None,
                x: np.ndarray) -> Slice | None:
    """The slice ``config`` through image ``x`` (C x H x W in [0, 1]; digest ``image_digest``), or None while its
    job waits or runs.

    The PGD marker (and the "pgd/random" plane's first direction) is Attack Studio's cached PGD at
    ``config.eps``. Raises ``ValueError`` with a one-line message for a plane that cannot be built (e.g. a
    target equal to the true class); errors are not cached.
    """
    from explorer.caching import jobs

    request = _slice_request(model_id, image_digest, label, config, device, x)
    request.validate()
    return jobs.run_or_queue(request, slot="boundaries.slice",
                             label=f"Slice of {config.resolution}×{config.resolution} images",
                             inline=lambda: _image_slice(request.digest(), request))


@st.cache_data(max_entries=32, show_spinner=False)
def _profile(digest: str, _request: ProfileRequest) -> Profile:
    bar = ProgressBar("Walking along the adversarial and a random direction")
    try:
        return run(_request, progress=bar)
    finally:
        bar.close()


def profile(model_id: str, image_digest: str, label: int, extent: float, n: int, seed: int, clip: bool,
            device: str | None, x: np.ndarray) -> Profile | None:
    """Loss and logits along sign(∇ₓL) and along a random sign direction of the same length (``n`` points);
    None while its job waits or runs."""
    from explorer.caching import jobs

    request = ProfileRequest(model_id, image_digest, int(label), extent, n, seed, clip, device, x)
    request.validate()
    return jobs.run_or_queue(request, slot="boundaries.profile", label="Linearity profile",
                             inline=lambda: _profile(request.digest(), request))


# ------------------------------------------------------------------------------------- noise averaging
@st.cache_data(max_entries=32, show_spinner=False)
def _smoothed_slice(digest: str, _request):
    bar = ProgressBar(f"Classifying {_request.resolution}×{_request.resolution} images × {_request.n_samples} "
                      "noise draws")
    try:
        return run(_request, progress=bar)
    finally:
        bar.close()


def smoothed_slice(model_id: str, image_digest: str, label: int, config: SliceConfig, device: str | None,
                   sigma: float, n: int, x: np.ndarray, sl: Slice):
    """The noise-averaged model (``n`` fixed Gaussian draws of σ around ``model_id``) on the plane of ``sl``
    (the slice of the same key), with the speckle fractions before and after
    (``explorer.runs.defences.SmoothedSliceRequest``); None while its job waits or runs."""
    from explorer.caching import jobs
    from explorer.digest import array_digest
    from explorer.runs.defences import SmoothedSliceRequest

    plane = sl.plane
    request = SmoothedSliceRequest(model_id, image_digest, array_digest(np.stack([plane.d1, plane.d2])),
                                   float(config.extent), int(config.resolution), bool(config.clip), float(sigma),
                                   int(n), 0, device, x, plane.d1, plane.d2, sl.result.pred)
    request.validate()
    return jobs.run_or_queue(request, slot="boundaries.smoothed", label=f"Noise-averaged slice (n = {n})",
                             inline=lambda: _smoothed_slice(request.digest(), request))


@st.cache_data(max_entries=64, show_spinner=False)
def smoothed_lab_grid(data: ToyDataConfig, mlp: MLPConfig, adv: AdvTrainConfig, sigma: float, n: int,
                      resolution: int = GRID_RESOLUTION) -> GridResult:
    """The 2-D lab's grid for its network behind Monte-Carlo noise averaging (``n`` fixed draws of σ, in the
    plane's own units): ``explorer.defences.boundaries.defended_grid``."""
    from explorer.defences.boundaries import defended_grid

    return defended_grid(trained(data, mlp, adv).model, "noise", n=int(n), sigma=float(sigma), seed=0,
                         resolution=resolution)
