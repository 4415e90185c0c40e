"""Cached attacks for the pages: keyed by (model id, image digest, label, attack settings, device).

Moving a slider never recomputes: a whole ε sweep is one cache entry, and so is a single attack.

Progress: a sweep or an attack that runs longer than about half a second draws a progress bar. Progress is
counted in images pushed through the model (a thin counting wrapper around the shared model: the model itself
is never touched). As in ``explorer.caching.attributions``, the bar is created *inside* the cached function
and emptied before it returns, so a cache hit replays nothing visible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import streamlit as st
import torch

from explorer.attacks import (
    ATTACK_NAMES,
    AttackConfig,
    AttackResult,
    EightBitCheck,
    ImageMetrics,
    NoiseBaseline,
    SweepResult,
    eight_bit_check,
    image_metrics,
    noise_baseline,
    run_attack,
    sweep,
)
from explorer.caching import ProgressBar
from explorer.device import model_device
from explorer.inference import model_cache

PROGRESS_AFTER_S = 0.5
NOISE_DRAWS = 8


class _Progress(ProgressBar):
    """Counts images through the model; draws the bar (``label (NN%)``) once the work has taken
    ``PROGRESS_AFTER_S``, never past 99% (the count is an estimate)."""

    def __init__(self, label: str, total: float) -> None:
        super().__init__(label)
        self.total = max(float(total), 1.0)
        self.done = 0.0
        self.start = time.perf_counter()

    def format(self, frac: float, text: str) -> str:
        return f"{self.label} ({frac * 100:.0f}%)"

    def add(self, rows: int) -> None:
        self.done += rows
        if self.bar is None and time.perf_counter() - self.start < PROGRESS_AFTER_S:
            return
        self(min(self.done / self.total, 0.99))


class _Counting(torch.nn.Module):
    """The shared model behind a wrapper that reports how many images each forward pass takes."""

    def __init__(self, model: torch.nn.Module, progress: _Progress) -> None:
        super().__init__()
        self.inner = model
        self.training = False  # this wrapper's flag only (never .eval(): it would recurse into the shared model)
        object.__setattr__(self, "_progress", progress)

    @property
    def num_classes(self):
        return getattr(self.inner, "num_classes", None)

    @property
    def device(self):
        return model_device(self.inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._progress.add(int(x.shape[0]))
        return self.inner(x)


def sweep_work(config: AttackConfig, n: int) -> float:
    """Images through the model in a sweep of ``n`` ε (an estimate: the bisection's probes vary)."""
    if config.attack == "fgsm":
        return 1 + n + 16
    return (n + 8) * (config.steps + 1) + 1


def attack_work(config: AttackConfig) -> float:
    """Forward passes of one single-image attack (DeepFool may stop earlier)."""
    if config.attack == "cw":
        return config.cw_steps * config.cw_search_steps + 1
    if config.attack == "fgsm":
        return 2
    return config.steps + 2


@st.cache_data(max_entries=32, show_spinner=False)
def eps_sweep(model_id: str, image_digest: str, label: int, config: AttackConfig, eps_grid: tuple[float, ...],
              device: str | None, _x: np.ndarray, keep_images: bool = False) -> SweepResult:
    """The attack at every ε of ``eps_grid`` on one C x H x W image (flip ε refined by bisection).

    ``keep_images``: keep every grid adversarial (iterative attacks; FGSM's are rebuilt from ``direction``).
    """
    model = model_cache().get(model_id, device)
    text = f"Running {ATTACK_NAMES[config.attack]} at {len(eps_grid)} values of ε (once: cached afterwards)"
    progress = _Progress(text, sweep_work(config, len(eps_grid)))
    try:
        return sweep(_Counting(model, progress), _x[None], label, config, list(eps_grid),
                     images_at="grid" if keep_images else None)
    finally:
        progress.close()


@st.cache_data(max_entries=128, show_spinner=False)
def attack(model_id: str, image_digest: str, label: int, config: AttackConfig, device: str | None,
           _x: np.ndarray) -> AttackResult:
    """One attack call on one C x H x W image."""
    model = model_cache().get(model_id, device)
    progress = _Progress(f"Running {ATTACK_NAMES[config.attack]} (once: cached afterwards)", attack_work(config))
    try:
        return run_attack(_Counting(model, progress), _x[None], label, config)
    finally:
        progress.close()


def adversarial(model_id: str, image_digest: str, label: int, config: AttackConfig, device: str | None,
                x: np.ndarray) -> np.ndarray:
    """The adversarial image (C x H x W float32 in [0, 1]) for ``config`` on ``x``, cached."""
    result = attack(model_id, image_digest, label, config, device, x)
    return result.adversarial[0].detach().cpu().numpy()


@dataclass(frozen=True)
class PointChecks:
    """What the page shows about one adversarial: its size, the 8-bit check and the random-noise baseline.

    ``noise.images`` holds the first noisy draw only (the cache stays small for photos).
    """

    metrics: ImageMetrics
    eight_bit: EightBitCheck
    noise: NoiseBaseline


@st.cache_data(max_entries=256, show_spinner=False)
def point_checks(model_id: str, image_digest: str, adv_digest: str, label: int, target: int | None,
                 noise_seed: int, device: str | None, _x: np.ndarray, _adv: np.ndarray) -> PointChecks:
    """L∞ / L2 / PSNR / SSIM of ``_adv`` against ``_x``, its 8-bit check, and ``NOISE_DRAWS`` random ±ε
    perturbations of ``_x`` with the same L∞ size (both C x H x W; ``adv_digest`` keys the adversarial)."""
    model = model_cache().get(model_id, device)
    metrics = image_metrics(_x, _adv)
    eight = eight_bit_check(model, _adv[None], label, target)
    noise = noise_baseline(model, _x[None], label, min(1.0, float(metrics.linf)), seed=noise_seed, n=NOISE_DRAWS)
    return PointChecks(metrics=metrics, eight_bit=eight, noise=replace(noise, images=noise.images[:1]))
