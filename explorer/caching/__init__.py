"""The one place that knows about Streamlit's caches.

* Models live in the process-wide, bounded, thread-safe ``explorer.inference.ModelCache`` (shared by all
  sessions, never mutated); this module only adds progress bars and friendly errors around it.
* Results are ``st.cache_data`` entries keyed by (model id, image sha256 digest, settings). Arrays travel as
  ``_underscored`` arguments, so Streamlit never hashes them (it samples large arrays: collisions).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.inference import model_cache, predict_proba
from explorer.models import Classifier, ModelUnavailable, get_spec

RESULT_ENTRIES = 256


class ProgressBar:
    """A ``progress(frac, text="")`` callback for slow work inside a cached function.

    The bar is drawn lazily, on the first report (work that never reports draws nothing), and redrawn only when
    the fraction moved by at least 2% (or reached 1). Call ``close()`` in a ``finally`` before the cached function
    returns: it empties the bar, so Streamlit's replay of a cache hit draws nothing and touches no element created
    outside the function (which would make the replay fail). The bar reads ``label: text`` (``label`` alone
    without a text); subclasses may override ``format``.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None
        self.last = -1.0

    def format(self, frac: float, text: str) -> str:
        return f"{self.label}: {text}" if text else self.label

    def __call__(self, frac: float, text: str = "") -> None:
        frac = float(min(max(frac, 0.0), 1.0))
        if self.bar is None:
            self.bar = st.progress(0.0, text=self.label)
        if frac - self.last >= 0.02 or frac >= 1.0:
            self.last = frac
            self.bar.progress(frac, text=self.format(frac, text))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.empty()
            self.bar = None


def get_model(model_id: str, device: str | None = None, allow_download: bool = False) -> Classifier:
    """The shared model, loading it with a progress bar the first time (training or downloading if needed)."""
    spec = get_spec(model_id)
    cache = model_cache()
    bar = None

    def progress(frac: float, text: str) -> None:
        nonlocal bar
        if bar is None:
            bar = st.progress(0.0, text=f"Preparing {spec.name}…")
        bar.progress(min(max(frac, 0.0), 1.0), text=text)

    try:
        return cache.get(model_id, device, progress=progress, allow_download=allow_download)
    finally:
        if bar is not None:
            bar.empty()


def require_model(model_id: str, device: str | None = None, image=None) -> Classifier:
    """``get_model`` for pages: an unavailable model stops this page only, with ONE card that says what to run,
    and (given ``image``, a LoadedImage) the picked image, so the page never goes blank. The sidebar keeps every
    other setting: pick a ready model there and the page comes back as it was."""
    try:
        return get_model(model_id, device)
    except (ModelUnavailable, ValueError) as exc:
        unavailable_card(model_id, str(exc), image)
        st.stop()
        raise  # unreachable: st.stop raises


def unavailable_card(model_id: str, message: str, image=None) -> None:
    """The one card an unavailable model gets: what is missing, the command that fixes it, the picked image."""
    from explorer.models import availability, list_specs
    from explorer.urlstate import escape_md  # an uploaded model's name carries the visitor's file name

    spec = get_spec(model_id)
    avail = availability(model_id)
    # other sessions' uploads stay private: only built-in, defended and torchvision models are named
    photos = ("imagenet", "user")  # datasets that take the same images
    same = (lambda d: d in photos) if spec.dataset in photos else (lambda d: d == spec.dataset)
    ready = [escape_md(s.name) for s in list_specs(include_user=False) if same(s.dataset)
             and s.id != model_id and availability(s.id).loadable]
    with st.container(border=True):
        cols = st.columns([1, 2], gap="large") if image is not None else [st.container()]
        if image is not None:
            px = image.pixels[..., 0] if image.pixels.shape[-1] == 1 else image.pixels
            cols[0].image(px, caption=f"{escape_md(image.name)} (picked; shown as loaded)", width=260)
        with cols[-1]:
            st.markdown(f"#### {escape_md(spec.name)} is not ready on this machine")
            text = " ".join(message.split())
            if avail.fix and avail.fix in text:  # say the command once, in the code block below
                text = f"Why: {avail.reason or 'its weights are not on this machine'}."
            st.markdown(escape_md(text))
            if avail.fix:
                st.markdown("Run this where there is internet, then restart the app (or copy the cache over):")
                st.code(avail.fix, language="bash")
            st.caption("Ready here with these images: " + (", ".join(ready) if ready else "none yet")
                       + ". Pick one in the sidebar: your image and your other settings stay as they are.")


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner=False)
def probabilities(model_id: str, image_digest: str, device: str | None, _images: np.ndarray) -> np.ndarray:
    """Class probabilities of a batch of images, cached by the images' digest."""
    return predict_proba(model_cache().get(model_id, device), _images)


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner=False)
def _model_input(model_id: str, image_digest: str, _image) -> tuple[np.ndarray, str]:
    from explorer.digest import array_digest
    from explorer.images import to_model_input

    spec = get_spec(model_id)
    x = to_model_input(_image, spec.input_shape, resize=spec.resize)
    return x, array_digest(x)


def model_input(image, model_id: str) -> tuple[np.ndarray, str]:
    """An image preprocessed to ``model_id``'s input, and its digest (the key of everything computed on it)."""
    return _model_input(model_id, image.digest, image)
