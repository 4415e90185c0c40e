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
* **Slices: ``st.cache_data``** keyed by ``(model_id, image digest, label, SliceConfig, device)`` with the
  image as ``_x`` (never hashed). The PGD perturbation comes from ``explorer.caching.attacks`` with the same
  ``AttackConfig`` Attack Studio uses, so the PGD marker is the very attack shown there (and cached once).

Progress: training, slices and profiles report progress through a bar that is created *inside* the cached
function on its first report and emptied before the function returns, so a cache hit replays nothing (no
bar flashes) and no element created outside the function is touched.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.attacks import AttackConfig
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
    compute_slice,
    grid,
    linearity_profile,
    make_dataset,
    margins,
    train_mlp,
)
from explorer.caching import ProgressBar
from explorer.caching.attacks import adversarial
from explorer.inference import model_cache

GRID_RESOLUTION = 150
PGD_STEPS = 10  # the slice's PGD marker (and the "pgd/random" plane): Attack Studio's default PGD-10
POINT_PGD_STEPS = 20
MARGIN_CAP = 2.0


def pgd_config(eps: float, steps: int = PGD_STEPS) -> AttackConfig:
    """The PGD of the slice: Attack Studio's PGD at this ε (default α, its seeded random start)."""
    return AttackConfig(attack="pgd", eps=float(eps), steps=int(steps))


# ---------------------------------------------------------------------------------------------- 2-D lab
@st.cache_data(max_entries=64, show_spinner=False)
def dataset(data: ToyDataConfig) -> ToyData:
    """The toy dataset of ``data`` (deterministic for its seed)."""
    return make_dataset(data)


def describe_training(adv: AdvTrainConfig) -> str:
    if adv.method == "none":
        return "standard training"
    unit = "L∞" if adv.norm == "linf" else "L2"
    return f"{adv.method.upper()} adversarial training ({unit} ε = {adv.eps:g})"


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
@st.cache_data(max_entries=32, show_spinner=False)
def image_slice(model_id: str, image_digest: str, label: int, config: SliceConfig, device: str | None,
                _x: np.ndarray) -> Slice:
    """The slice ``config`` through image ``_x`` (C x H x W in [0, 1]; digest ``image_digest``).

    The PGD marker (and the "pgd/random" plane's first direction) is Attack Studio's cached PGD at
    ``config.eps``. Raises ``ValueError`` with a one-line message for a plane that cannot be built (e.g. a
    target equal to the true class); errors are not cached.
    """
    model = model_cache().get(model_id, device)
    adv = adversarial(model_id, image_digest, int(label), pgd_config(config.eps, config.pgd_steps), device, _x)
    delta = (adv - np.asarray(_x, np.float32)).astype(np.float32)
    bar = ProgressBar(f"Classifying {config.resolution}×{config.resolution} images on the plane")
    try:
        return compute_slice(model, _x, int(label), config, delta=delta, progress=bar)
    finally:
        bar.close()


@st.cache_data(max_entries=32, show_spinner=False)
def profile(model_id: str, image_digest: str, label: int, extent: float, n: int, seed: int, clip: bool,
            device: str | None, _x: np.ndarray) -> Profile:
    """Loss and logits along sign(∇ₓL) and along a random sign direction of the same length (``n`` points)."""
    model = model_cache().get(model_id, device)
    bar = ProgressBar("Walking along the adversarial and a random direction")
    try:
        return linearity_profile(model, _x, int(label), extent=extent, n=n, seed=seed, clip=clip, progress=bar)
    finally:
        bar.close()
