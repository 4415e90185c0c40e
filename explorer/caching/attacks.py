"""Cached attacks for the pages: keyed by (model id, image digest, label, attack settings, device).

Moving a slider never recomputes: a whole ε sweep is one cache entry, and so is a single attack.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.attacks import AttackConfig, AttackResult, SweepResult, run_attack, sweep
from explorer.inference import model_cache


@st.cache_data(max_entries=32, show_spinner=False)
def eps_sweep(model_id: str, image_digest: str, label: int, config: AttackConfig, eps_grid: tuple[float, ...],
              device: str | None, _x: np.ndarray, keep_images: bool = False) -> SweepResult:
    """The attack at every ε of ``eps_grid`` on one C x H x W image (flip ε refined by bisection).

    ``keep_images``: keep every grid adversarial (iterative attacks; FGSM's are rebuilt from ``direction``).
    """
    model = model_cache().get(model_id, device)
    return sweep(model, _x[None], label, config, list(eps_grid), images_at="grid" if keep_images else None)


@st.cache_data(max_entries=128, show_spinner=False)
def attack(model_id: str, image_digest: str, label: int, config: AttackConfig, device: str | None,
           _x: np.ndarray) -> AttackResult:
    """One attack call on one C x H x W image."""
    model = model_cache().get(model_id, device)
    return run_attack(model, _x[None], label, config)


def adversarial(model_id: str, image_digest: str, label: int, config: AttackConfig, device: str | None,
                x: np.ndarray) -> np.ndarray:
    """The adversarial image (C x H x W float32 in [0, 1]) for ``config`` on ``x``, cached."""
    result = attack(model_id, image_digest, label, config, device, x)
    return result.adversarial[0].detach().cpu().numpy()
