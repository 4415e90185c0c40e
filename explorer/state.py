"""Session and URL state: the shared sidebar (model, image, device) that every page reads.

The model and a sample image live in the URL (``?model=digits-cnn&image=digits:17``) so a view can be shared;
uploads stay in the session only. Bad input (a broken upload, an unknown id in a URL, an unavailable model)
gets one clear message and never loses the current selection.

The attack settings are shared by Attack Studio, Gradient maps and Projections through the URL keys
``attack``, ``eps``, ``steps`` and ``target``, with a session copy (``st.session_state["shared_attack"]``)
for page switches that drop the query: ``read_shared_attack`` (or its parts) reads and validates them,
``write_shared_attack`` writes them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

from explorer.runs.rules import eps_text, norm_name, parse_eps
from explorer.attacks.config import ATTACKS, check_steps, eps_upper
from explorer.device import available_devices
from explorer.digest import array_digest
from explorer.images import ImageError, LoadedImage, decode_upload, list_samples, load_sample, to_model_input
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


def seed_widget(key: str, value) -> None:
    """Give a widget (by its ``key``) its starting value, e.g. from the URL, the first time it is drawn in this
    session; later runs keep what the user chose."""
    if key not in st.session_state:
        st.session_state[key] = value


# ------------------------------------------------------------------------------ shared attack settings

SHARED_ATTACK = "shared_attack"  # session key: the last attack settings any page used (a dict of URL strings)
DEFAULT_ATTACK = "fgsm"
DEFAULT_STEPS = 10


@dataclass(frozen=True)
class SharedAttack:
    """The shared attack settings, validated: what a page's widgets start from."""

    attack: str
    eps: float
    steps: int
    target: int | None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def shared_value(key: str) -> str | None:
    """The URL's value of a shared attack key, else the one this session last used on any page."""
    value = query(key)
    if value is None:
        value = st.session_state.get(SHARED_ATTACK, {}).get(key)
    return value


def shared_attack_name() -> str:
    """The shared ``attack`` (one of ``ATTACKS``); an unknown name warns and gives FGSM."""
    attack = shared_value("attack") or DEFAULT_ATTACK
    if attack not in ATTACKS:
        st.warning(f"Unknown attack {attack!r} in the link; using FGSM (choose from {', '.join(ATTACKS)}).")
        attack = DEFAULT_ATTACK
    return attack


def shared_eps(raw: str | None, attack: str, input_shape: Sequence[int] | None, fallback: float,
               photo: bool) -> float:
    """A shared ``eps`` (``"0.1"``, ``"8/255"``) checked against the attacks library's own bound for ``attack``
    (``eps_upper``: 1 for L∞, the image's diagonal for an L2 radius); ``fallback`` when absent, and with a
    one-line warning when it is not a number in that range."""
    if raw is None:
        return fallback
    upper = eps_upper(attack, input_shape)
    unit = "L2 radius" if norm_name(attack) == "l2" else "pixel units"
    try:
        eps = parse_eps(raw)
        if not 0.0 <= eps <= upper:
            raise ValueError(f"ε = {raw} is outside [0, {upper:g}] ({unit})")
    except ValueError as exc:
        st.warning(f"{_one_line(exc)}; using ε = {eps_text(fallback, photo, attack)}.")
        return fallback
    return eps


def shared_steps() -> int:
    """The shared ``steps`` (1 to the server's cap, ``EXPLORER_MAX_STEPS``); else a warning and 10."""
    raw = shared_value("steps")
    if raw is None:
        return DEFAULT_STEPS
    try:
        steps = int(raw)
        check_steps(steps)
    except ValueError as exc:
        msg = _one_line(exc) if raw.strip().lstrip("-").isdigit() else f"steps = {raw!r} is not a whole number"
        st.warning(f"{msg}; using {DEFAULT_STEPS} steps.")
        return DEFAULT_STEPS
    return steps


def shared_target(num_classes: int) -> int | None:
    """The shared ``target`` class index (0 to ``num_classes`` - 1); absent or invalid (warned): None."""
    raw = shared_value("target")
    if raw is None:
        return None
    try:
        target = int(raw)
        if not 0 <= target < num_classes:
            raise ValueError
    except ValueError:
        st.warning(f"target = {raw!r} in the link is not a class index from 0 to {num_classes - 1}; "
                   "running untargeted.")
        return None
    return target


def read_shared_attack(*, photo: bool, input_shape: Sequence[int] | None, default_eps: float,
                       num_classes: int | None = None) -> SharedAttack:
    """Attack, ε, steps and (given ``num_classes``) target from the URL or this session, each validated with a
    one-line warning and its default on bad input. Without ``num_classes`` the target is not read (None)."""
    attack = shared_attack_name()
    eps = shared_eps(shared_value("eps"), attack, input_shape, default_eps, photo)
    steps = shared_steps()
    target = None if num_classes is None else shared_target(num_classes)
    return SharedAttack(attack=attack, eps=eps, steps=steps, target=target)


def write_shared_attack(**values: str | None) -> None:
    """Write shared attack keys (URL strings; None removes one from the URL) to the URL and the session copy.
    Keys not given keep their session value."""
    set_query(**values)
    st.session_state[SHARED_ATTACK] = {**st.session_state.get(SHARED_ATTACK, {}), **values}


# ------------------------------------------------------------------------------------------- sidebar


def _model_label(spec: ModelSpec) -> str:
    """The picker's groups (ordered by ``_group_rank``): a ready model by its name, the others marked
    "needs download" or "unavailable here"."""
    status = availability(spec.id).status
    if status in (Status.AVAILABLE, Status.NEEDS_TRAINING):
        return spec.name
    return f"{spec.name} · " + ("needs download" if status == Status.NEEDS_DOWNLOAD else "unavailable here")


def _group_rank(model_id: str) -> int:
    """Order of the picker's groups: ready here, then needs download, then unavailable."""
    status = availability(model_id).status
    return 0 if status in (Status.AVAILABLE, Status.NEEDS_TRAINING) else 1 if status == Status.NEEDS_DOWNLOAD else 2


USER_MODELS_KEY = "user_models"  # ids of the models this session uploaded (others' uploads stay private)


def _visible_specs(wanted: str | None) -> dict[str, ModelSpec]:
    """Built-in and torchvision models, this session's uploads, and a user model a shared link names."""
    mine = set(st.session_state.get(USER_MODELS_KEY, ()))
    return {s.id: s for s in list_specs() if s.family != "user" or s.id in mine or s.id == wanted}


def _download_now(spec: ModelSpec) -> None:
    """Fetch torchvision weights from this server (progress bar); offline, one line saying what to run."""
    from explorer.caching import get_model
    from explorer.models import ModelUnavailable

    try:
        get_model(spec.id, allow_download=True)
    except (ModelUnavailable, OSError) as exc:
        st.sidebar.error(_one_line(exc))
    else:
        st.rerun()


def _pick_model() -> str:
    wanted = query("model", DEFAULT_MODEL)
    pending = st.session_state.pop("_pending_model", None)
    if pending:
        st.session_state["model_pick"] = wanted = pending
    specs = _visible_specs(wanted)
    if wanted not in specs:
        st.sidebar.warning(f"Unknown model {wanted!r} in the link; showing {get_spec(DEFAULT_MODEL).name}.")
        wanted = DEFAULT_MODEL
    ids = sorted(specs, key=_group_rank)  # stable: the registry's order within each group
    if st.session_state.get("model_pick") not in specs:
        st.session_state.pop("model_pick", None)
    model_id = st.sidebar.selectbox(
        "Model", ids, index=ids.index(wanted), format_func=lambda i: _model_label(specs[i]), key="model_pick",
        help="Built-in digit models run offline. ImageNet models need their torchvision weights once.",
    )
    spec = specs[model_id]
    avail = availability(model_id)
    if avail.status == Status.NEEDS_DOWNLOAD:
        # one short line: the page's card says what to run (the full text is not repeated here)
        st.sidebar.caption(f"{spec.name} needs its weights once: see the page.")
        if st.sidebar.button(f"Download {spec.name} now", key=f"download_{model_id}", icon=":material/download:"):
            _download_now(spec)
    elif avail.status == Status.UNAVAILABLE:
        st.sidebar.caption(f"{spec.name} is unavailable here: see the page.")
    _user_model_form()
    return model_id


def _user_model_form() -> None:
    """Upload your own model: TorchScript, or a torchvision architecture + state_dict, with class names."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from explorer.models.user import UserModelError, UserModelRequest, parse_class_names, register_user_model

    with st.sidebar.expander("Your own model", icon=":material/upload_file:"):
        with st.form("user_model_form", border=False):
            weights = st.file_uploader("Model file", type=["pt", "pth", "ts", "safetensors"],
                                       help="TorchScript (torch.jit.save), or a state_dict (torch.save or "
                                            "safetensors) for the architecture below. Pickles that would run code "
                                            "are refused.")
            arch = st.text_input("torchvision architecture (empty: TorchScript)", placeholder="e.g. resnet18",
                                 help="Any name from torchvision.models.list_models(); the number of outputs is "
                                      "read from the weights.")
            names = st.file_uploader("Class names (optional)", type=["txt", "json"],
                                     help="One name a line, a JSON list, or {\"0\": \"cat\", ...}")
            c1, c2 = st.columns(2)
            channels = c1.selectbox("Channels", [3, 1])
            size = c2.number_input("Input size (px)", min_value=8, max_value=1024, value=224, step=1)
            submitted = st.form_submit_button("Add model", icon=":material/add:")
        if not submitted:
            return
        if weights is None:
            st.error("Choose a model file first.")
            return
        try:
            class_names = parse_class_names(names.getvalue().decode("utf-8", "replace")) if names else None
            ctx = get_script_run_ctx()
            spec = register_user_model(UserModelRequest(
                weights.getvalue(), weights.name, arch=arch.strip() or None, class_names=class_names,
                input_shape=(int(channels), int(size), int(size))), session=ctx.session_id if ctx else "local")
        except UserModelError as exc:
            st.error(f"{weights.name}: {exc}")
            return
        st.session_state.setdefault(USER_MODELS_KEY, []).append(spec.id)
        st.session_state["_pending_model"] = spec.id
        set_query(model=spec.id)
        st.rerun()


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
        img = decode_upload(upload.getvalue(), upload.name)  # limits + cache by digest
    except ImageError as exc:
        st.sidebar.error(f"{upload.name}: {exc}")
        return None
    st.session_state["upload_image"] = img
    st.session_state["upload_id"] = upload.file_id
    return img


SAMPLE_USERS = {  # which models can use each kind of sample (the image picker's help)
    "photo": "Photos are for the ImageNet models (ResNet, MobileNet, EfficientNet, ConvNeXt, ViT) and RGB models "
             "you upload; each needs its weights once.",
    "digits": "8×8 digits are for the Digits models (ready offline).",
    "mnist": "28×28 digits are for the MNIST models (need the MNIST files).",
}


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
                                     "they work offline. " + SAMPLE_USERS.get(kind, ""))
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
        # Only a session's first run can be such a deep link, and it carries no widget event that a rerun would
        # drop. (AppTest resets the flag before every run: later runs must not rerun, or clicks get lost.)
        if not st.session_state.get("_navigation_checked"):
            st.session_state["_navigation_checked"] = True
            st.rerun()
    st.session_state["_navigation_checked"] = True


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
