"""Cached attacks for the pages: ``st.cache_data`` over the run layer's requests (``explorer.runs``).

Keyed by (model id, image digest, label, attack settings, device); the image travels as ``_x`` (never hashed).
Moving a slider never recomputes: a whole ε sweep is one cache entry, and so is a single attack. Every cached
value is numpy (``AttackOutcome``, ``SweepResult``, ``PointChecks``).

Progress: work that runs longer than about half a second draws a bar, created *inside* the cached function and
emptied before it returns, so a cache hit replays nothing visible.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from explorer.attacks import ATTACK_NAMES, AttackConfig, SweepResult, registry
from explorer.caching import ProgressBar
from explorer.runs import run
from explorer.runs.requests import (
    AttackOutcome,
    AttackRequest,
    PointChecks,
    PointChecksRequest,
    SweepRequest,
    attack_work,
    sweep_work,
)

PROGRESS_AFTER_S = 0.5
__all__ = ["PointChecks", "adversarial", "attack", "attack_work", "eps_sweep", "point_checks", "scrub_frames",
           "sweep_or_job", "sweep_work"]


class _Progress(ProgressBar):
    """Draws the bar (``label (NN%)``) once the work has taken ``PROGRESS_AFTER_S``."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.start = time.perf_counter()

    def format(self, frac: float, text: str) -> str:
        return f"{self.label} ({frac * 100:.0f}%)"

    def __call__(self, frac: float, text: str = "") -> None:
        if self.bar is None and time.perf_counter() - self.start < PROGRESS_AFTER_S:
            return
        super().__call__(frac, text)


@st.cache_data(max_entries=32, show_spinner=False)
def eps_sweep(model_id: str, image_digest: str, label: int, config: AttackConfig, eps_grid: tuple[float, ...],
              device: str | None, _x: np.ndarray, keep_images: bool = False) -> SweepResult:
    """The attack at every ε of ``eps_grid`` on one C x H x W image (``SweepRequest``)."""
    label_text = registry.get(config.attack).label
    bar = _Progress(f"Running {label_text} at {len(eps_grid)} values of ε (once: cached afterwards)")
    try:
        return run(SweepRequest(model_id, image_digest, int(label), config, tuple(eps_grid), device, _x,
                                keep_images=keep_images), progress=bar)
    finally:
        bar.close()


@st.cache_data(max_entries=128, show_spinner=False)
def attack(model_id: str, image_digest: str, label: int, config: AttackConfig, device: str | None,
           _x: np.ndarray) -> AttackOutcome:
    """One attack call on one C x H x W image (``AttackRequest``): numpy, with the adversarial's digest."""
    bar = _Progress(f"Running {registry.get(config.attack).label} (once: cached afterwards)")
    try:
        return run(AttackRequest(model_id, image_digest, int(label), config, device, _x), progress=bar)
    finally:
        bar.close()


def sweep_or_job(model_id: str, image_digest: str, label: int, config: AttackConfig, eps_grid: tuple[float, ...],
                 device: str | None, x: np.ndarray, keep_images: bool = False, *, slot: str) -> SweepResult | None:
    """The sweep, computed here (cached, with its bar) when it is light, else a queued job shared with every
    session that asks for it: None while it waits or runs (its status box is drawn where the call is)."""
    from explorer.caching import jobs

    request = SweepRequest(model_id, image_digest, int(label), config, tuple(eps_grid), device, x,
                           keep_images=keep_images)
    return jobs.run_or_queue(
        request, slot=slot, label=f"{registry.get(config.attack).label} at {len(eps_grid)} values of ε",
        inline=lambda: eps_sweep(model_id, image_digest, label, config, tuple(eps_grid), device, x, keep_images))


def adversarial(model_id: str, image_digest: str, label: int, config: AttackConfig, device: str | None,
                x: np.ndarray) -> np.ndarray:
    """The adversarial image (C x H x W float32 in [0, 1]) for ``config`` on ``x``, cached."""
    return attack(model_id, image_digest, label, config, device, x).adversarial


@st.cache_data(max_entries=256, show_spinner=False)
def point_checks(model_id: str, image_digest: str, adv_digest: str, label: int, target: int | None,
                 noise_seed: int, device: str | None, _x: np.ndarray, _adv: np.ndarray) -> PointChecks:
    """Size, 8-bit check and noise baseline of ``_adv`` (``PointChecksRequest``; ``adv_digest`` keys it)."""
    return run(PointChecksRequest(model_id, image_digest, adv_digest, int(label), target, int(noise_seed), device,
                                  _x, _adv))


@st.cache_data(max_entries=16, show_spinner=False)
def scrub_frames(model_id: str, image_digest: str, label: int, config: AttackConfig, eps_grid: tuple[float, ...],
                 device: str | None, photo: bool, other_config: AttackConfig | None, _sw: SweepResult,
                 _other: SweepResult | None, _x: np.ndarray, _class_names) -> dict:
    """The browser frames of a cached sweep (``explorer.plots.scrub.scrub_frames``), keyed like the sweep it
    reads (``_sw``; ``_other``: the comparison sweep on the same grid, or None). ``frames["id"]`` names it."""
    from explorer.plots.scrub import scrub_frames as build
    from explorer.runs import rules
    from explorer.runs.base import content_digest

    attack = config.attack
    x_scale, x_title, x_suffix = rules.eps_axis(attack, photo)
    frames = build(_sw, _x, _class_names, y=int(label), target=config.target, photo=photo,
                   eps_fmt=lambda e: rules.eps_text(e, photo, attack), x_scale=x_scale, x_title=x_title,
                   x_suffix=x_suffix, attack_name=ATTACK_NAMES[attack], other=_other,
                   other_name="" if other_config is None else ATTACK_NAMES[other_config.attack])
    frames["id"] = content_digest("scrub", (model_id, image_digest, int(label), repr(config), tuple(eps_grid),
                                            device, photo, repr(other_config)))[:16]
    return frames
