"""Session and URL state: the shared sidebar (model, image, device) that every page reads.

The model and a sample image live in the URL (``?model=digits-cnn&image=digits:17``) so a view can be shared;
uploads stay in the session only. Bad input (a broken upload, an unknown id in a URL, an unavailable model)
gets one clear message and never loses the current selection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from explorer.device import available_devices
from explorer.digest import array_digest
from explorer.images import ImageError, LoadedImage, decode_image, list_samples, load_sample, to_model_input
from explorer.models import DEFAULT_MODEL, ModelSpec, Status, availability, get_spec, list_specs

SAMPLE_KIND = {"digits": "digits", "mnist": "mnist", "imagenet": "photo", "user": "photo"}
DEFAULT_IMAGE = {"digits": "digits:0", "mnist": "mnist:8000", "photo": "photo:chelsea"}


@dataclass(frozen=True)
class Selection:
    """What every page works on: the model, the image, and its preprocessed input."""

    model_id: str
    spec: ModelSpec
    image: LoadedImage
    x: np.ndarray  # float32 C x H x W in [0, 1], the model's input
    digest: str  # sha256 of x: the cache key of everything computed on it
    device: str | None
    label: int | None  # the dataset's true label, when the image is a dataset sample


def query(key: str, default: str | None = None) -> str | None:
    value = st.query_params.get(key)
    return value if value else default


def set_query(**values: str | None) -> None:
    """Write page state into the URL (None removes a key); unchanged values are not rewritten."""
    for key, value in values.items():
        if value is None:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != str(value):
            st.query_params[key] = str(value)


def _model_label(spec: ModelSpec) -> str:
    status = availability(spec.id).status
    return spec.name if status in (Status.AVAILABLE, Status.NEEDS_TRAINING) else f"{spec.name} ({status.value})"


def _pick_model() -> str:
    specs = {s.id: s for s in list_specs()}
    wanted = query("model", DEFAULT_MODEL)
    if wanted not in specs:
        st.sidebar.warning(f"Unknown model {wanted!r} in the link; showing {get_spec(DEFAULT_MODEL).name}.")
        wanted = DEFAULT_MODEL
    ids = list(specs)
    model_id = st.sidebar.selectbox(
        "Model", ids, index=ids.index(wanted), format_func=lambda i: _model_label(specs[i]), key="model_pick",
        help="Built-in digit models run offline. ImageNet models need their torchvision weights once.",
    )
    spec = specs[model_id]
    avail = availability(model_id)
    if avail.status == Status.NEEDS_DOWNLOAD:
        st.sidebar.info(f"{spec.name} needs its weights (not available offline). Run `{avail.fix}` once, "
                        "or download now if this server is online.")
    elif avail.status == Status.UNAVAILABLE:
        st.sidebar.warning(f"{spec.name} is unavailable: {avail.reason}. Fix: `{avail.fix}`")
    return model_id


def _uploaded_image() -> LoadedImage | None:
    upload = st.sidebar.file_uploader("…or upload an image", type=["png", "jpg", "jpeg", "webp", "bmp", "gif"],
                                      key="upload")
    if upload is None:
        st.session_state.pop("upload_image", None)
        return None
    previous: LoadedImage | None = st.session_state.get("upload_image")
    if previous is not None and st.session_state.get("upload_id") == upload.file_id:
        return previous
    try:
        img = decode_image(upload.getvalue(), upload.name)
    except ImageError as exc:
        st.sidebar.error(f"{upload.name}: {exc}")
        return None
    st.session_state["upload_image"] = img
    st.session_state["upload_id"] = upload.file_id
    return img


def _pick_image(spec: ModelSpec) -> LoadedImage:
    kind = SAMPLE_KIND.get(spec.dataset, "photo")
    samples = [s for s in list_samples() if s.kind == kind] or list_samples("photo")
    ids = [s.id for s in samples]
    names = {s.id: s.name for s in samples}
    wanted = query("image", DEFAULT_IMAGE.get(kind))
    if wanted not in names:
        try:
            extra = load_sample(wanted) if wanted else None
        except (KeyError, ValueError):
            extra = None
        if extra is not None and extra.sample_id and extra.sample_id.split(":")[0] == kind:
            wanted = extra.sample_id
            if wanted not in names:
                ids.insert(0, wanted)
                names[wanted] = extra.name
        else:
            wanted = DEFAULT_IMAGE.get(kind, ids[0]) if DEFAULT_IMAGE.get(kind) in names else ids[0]
    sample_id = st.sidebar.selectbox("Image", ids, index=ids.index(wanted), format_func=lambda i: names[i],
                                     key=f"image_pick_{kind}", help="Samples ship with installed packages: "
                                     "they work offline.")
    upload = _uploaded_image()
    if upload is not None:
        return upload
    set_query(image=sample_id)
    return load_sample(sample_id)


def _pick_device() -> str | None:
    devices = available_devices()
    if len(devices) == 1:
        return None
    choice = st.sidebar.selectbox("Device", ["auto", *devices], key="device_pick",
                                  help="auto picks CUDA > MPS > CPU (EXPLORER_DEVICE overrides the default)")
    return None if choice == "auto" else choice


def ensure_navigation() -> None:
    """Route a deep link on a fresh server through ``streamlit_app.py``.

    With a top-level ``pages/`` folder, Streamlit runs the very first request of a new server in its old
    folder-discovery mode: a deep link such as ``/boundaries`` would execute the page file alone, without our
    ``st.navigation`` (wrong menu, no page config). Switching the process to ``st.navigation`` mode and
    rerunning sends the request through the entry point to the same page.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - a Streamlit without this internal
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def sidebar() -> Selection:
    """Render the shared pickers and return the current selection (same on every page)."""
    ensure_navigation()
    st.sidebar.markdown("### Model and image")
    model_id = _pick_model()
    set_query(model=model_id)
    spec = get_spec(model_id)
    image = _pick_image(spec)
    device = _pick_device()
    x = to_model_input(image, spec.input_shape, resize=spec.resize)
    return Selection(model_id=model_id, spec=spec, image=image, x=x, digest=array_digest(x), device=device,
                     label=image.label)
