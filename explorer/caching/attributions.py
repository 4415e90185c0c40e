"""Cached attribution maps for the pages: keyed by (model id, image digest, targets, settings, device).

The image travels as ``_x`` (never hashed: its sha256 digest is the key). Moving the opacity slider or the ε
slider never recomputes a map that was already computed for the same image.

Progress: the slow methods (SmoothGrad, Integrated Gradients, occlusion) report progress between batches.
The bar is created *inside* the cached function, on its first report, and emptied before the function
returns, so Streamlit's replay of a cache hit draws nothing and touches no element created outside the
function (which would make the replay fail). Fast methods never report, so they never draw a bar.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.attributions import AttributionConfig
from explorer.caching import ProgressBar
from explorer.runs import run
from explorer.runs.requests import AttributionRequest

MAP_ENTRIES = 128


def compute_maps(model_id: str, device: str | None, x: np.ndarray, targets: tuple[int, ...],
                 config: AttributionConfig, label: str = "", image_digest: str | None = None) -> np.ndarray:
    """Uncached: ``len(targets)`` maps of one C x H x W image (T x C' x H x W float32), with a progress bar."""
    from explorer.digest import array_digest

    bar = ProgressBar(label or f"{config.method} on {model_id}")
    try:
        digest = image_digest or array_digest(np.asarray(x, np.float32))
        return run(AttributionRequest(model_id, digest, tuple(targets), config, device, x), progress=bar)
    finally:
        bar.close()


@st.cache_data(max_entries=MAP_ENTRIES, show_spinner=False)
def maps(model_id: str, image_digest: str, target: int | tuple[int, ...], config: AttributionConfig,
         device: str | None, _x: np.ndarray, _label: str = "") -> np.ndarray:
    """Attribution maps of one C x H x W image ``_x`` (digest ``image_digest``) for each class in ``target``.

    Returns T x C x H x W (or T x 1 x H x W for Grad-CAM and occlusion) float32, one map per target, in the
    order given. Raises ``ValueError`` with a one-line message for settings the model cannot take (e.g.
    Grad-CAM on a model without a convolutional layer); errors are not cached.
    """
    targets = (int(target),) if isinstance(target, (int, np.integer)) else tuple(int(t) for t in target)
    return compute_maps(model_id, device, _x, targets, config, _label, image_digest)


def maps_or_job(model_id: str, image_digest: str, target: int | tuple[int, ...], config: AttributionConfig,
                device: str | None, x: np.ndarray, label: str = "", *, slot: str) -> np.ndarray | None:
    """``maps`` when the request is light; else a queued job (None while it waits or runs, its status box drawn
    where the call is). SmoothGrad or Integrated Gradients on a photo model is the heavy case."""
    from explorer.caching import jobs

    targets = (int(target),) if isinstance(target, (int, np.integer)) else tuple(int(t) for t in target)
    request = AttributionRequest(model_id, image_digest, targets, config, device, x)
    return jobs.run_or_queue(request, slot=slot, label=label or f"{config.method} on {model_id}",
                             inline=lambda: maps(model_id, image_digest, targets, config, device, x, _label=label))
