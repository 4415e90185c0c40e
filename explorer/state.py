"""Session and URL state: the shared sidebar (model, image, device) that every page reads.

The model and the image live in the URL (``?model=digits-cnn&image=digits:17``, ``image=upload:<digest12>``
for an uploaded image) so a view can be shared. Every page calls ``sidebar()``; the pickers keep the session's
model, image and upload across every page (their values are re-asserted before they are drawn), and write them
into the URL on every run. URL parameters go through ``explorer.urlstate`` (typed, validated, defaults dropped,
remembered for the session).

Uploads belong to the session that made them (``explorer.sessions``): a link naming another session's
uploaded image or model shows a one-line notice and the default instead (the sharing rule, README). Bad input
(a broken upload, an unknown id in a URL, an unavailable model) gets one clear, escaped message and never loses
the current selection.

The attack settings are shared by Attack Studio, Gradient maps and Projections through the URL keys
``attack``, ``eps``, ``steps`` and ``target``, with a session copy (``st.session_state["shared_attack"]``)
for page switches that drop the query: ``read_shared_attack`` (or its parts) reads and validates them,
``write_shared_attack`` writes them back.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

from explorer import sessions, urlstate
from explorer.runs.rules import eps_text, norm_name
from explorer.attacks.config import ATTACKS, check_steps, eps_upper
from explorer.config import get_settings
from explorer.device import available_devices
from explorer.digest import array_digest
from explorer.images import ImageError, LoadedImage, decode_upload, list_samples, load_sample, to_model_input
from explorer.models import DEFAULT_MODEL, ModelSpec, Status, availability, get_spec, list_specs
from explorer.urlstate import escape_md, shown

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
    """The URL's text for ``key``; without one, what this session last wrote for it; else ``default``.
    (Typed parameters: ``explorer.urlstate.Param.read``.)"""
    value = urlstate.raw(key)
    return value if value else default


def set_query(**values: str | None) -> None:
    """Write page state into the URL and this session's memory (None removes a key: its default);
    unchanged values are not rewritten."""
    urlstate.put(**values)


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
        st.warning(f"Unknown attack {shown(attack)} in the link; using FGSM (choose from {', '.join(ATTACKS)}).")
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
        eps = urlstate.parse_float(raw)
    except ValueError as exc:
        st.warning(f"ε = {shown(raw)} is {exc} (write 8/255 or 0.03); using ε = {eps_text(fallback, photo, attack)}.")
        return fallback
    if not 0.0 <= eps <= upper:
        st.warning(f"ε = {shown(raw)} is outside [0, {upper:g}] ({unit}); "
                   f"using ε = {eps_text(fallback, photo, attack)}.")
        return fallback
    return eps


def shared_steps() -> int:
    """The shared ``steps`` (1 to the server's cap, ``EXPLORER_MAX_STEPS``); else a warning and 10."""
    raw = shared_value("steps")
    if raw is None:
        return DEFAULT_STEPS
    try:
        steps = urlstate.parse_int(raw)
    except ValueError:
        st.warning(f"steps = {shown(raw)} is not a whole number; using {DEFAULT_STEPS} steps.")
        return DEFAULT_STEPS
    try:
        check_steps(steps)
    except ValueError as exc:
        st.warning(f"{escape_md(_one_line(exc))}; using {DEFAULT_STEPS} steps.")
        return DEFAULT_STEPS
    return steps


def shared_target(num_classes: int) -> int | None:
    """The shared ``target`` class index (0 to ``num_classes`` - 1); absent or invalid (warned): None."""
    raw = shared_value("target")
    if raw is None:
        return None
    try:
        target = urlstate.parse_int(raw)
        if not 0 <= target < num_classes:
            raise ValueError
    except ValueError:
        st.warning(f"target = {shown(raw)} in the link is not a class index from 0 to {num_classes - 1}; "
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
UPLOADS_KEY = "uploaded_images"  # {"upload:<digest12>": LoadedImage}: this session's uploaded images
UPLOAD_PREFIX = "upload:"
MODEL_PICK = "model_pick"


def safe_names(spec: ModelSpec) -> tuple[str, ...]:
    """The model's class names escaped for Markdown (captions, metrics, warnings); plots take the raw names."""
    return tuple(escape_md(n) for n in spec.class_names)


def safe_name(spec: ModelSpec) -> str:
    """The model's display name (an upload's carries its file name) escaped for Markdown."""
    return escape_md(spec.name)


def _other_session(model_id: str) -> bool:
    """True when ``model_id`` is an upload this session does not own (models registered by code open anywhere)."""
    from explorer.models import user

    if not model_id.startswith("user:") or user.owns(user.LOCAL_SESSION, model_id):
        return False
    return user.link_notice(sessions.current_id(), model_id) is not None


def _visible_specs(wanted: str | None) -> dict[str, ModelSpec]:
    """Built-in and torchvision models, this session's uploads, and a user model a link names when no other
    session owns it (the sharing rule)."""
    mine = set(st.session_state.get(USER_MODELS_KEY, ()))
    return {s.id: s for s in list_specs()
            if s.family != "user" or s.id in mine or (s.id == wanted and not _other_session(s.id))}


def visible_specs(current: str | None = None) -> dict[str, ModelSpec]:
    """The models this session may see: built-in and torchvision ones, its own uploads, and ``current``."""
    return _visible_specs(current)


def _download_now(spec: ModelSpec) -> None:
    """Fetch torchvision weights from this server (progress bar); offline, one line saying what to run."""
    from explorer.caching import get_model
    from explorer.models import ModelUnavailable

    try:
        get_model(spec.id, allow_download=True)
    except (ModelUnavailable, OSError) as exc:
        st.sidebar.error(escape_md(_one_line(exc)))
    else:
        st.rerun()


def _seed_model() -> None:
    """Give the model picker its value: after an upload, the new model; on a session's first run (or after a
    run that did not draw it), the link's model, checked, with a one-line notice when it cannot be shown."""
    pending = st.session_state.pop("_pending_model", None)
    if pending:
        st.session_state[MODEL_PICK] = pending
        return
    if MODEL_PICK in st.session_state:
        return
    wanted = urlstate.raw("model") or DEFAULT_MODEL
    specs = _visible_specs(wanted)
    if wanted not in specs:
        if wanted.startswith("user:") and _other_session(wanted):
            st.sidebar.warning(f"The link names a model uploaded in another session ({shown(wanted)}): uploads "
                               f"stay with the session that made them; upload the same file to open it. Showing "
                               f"{safe_name(get_spec(DEFAULT_MODEL))}.")
        else:
            st.sidebar.warning(f"Unknown model {shown(wanted)} in the link; showing "
                               f"{safe_name(get_spec(DEFAULT_MODEL))}.")
        wanted = DEFAULT_MODEL
    st.session_state[MODEL_PICK] = wanted


def _pick_model() -> str:
    _seed_model()
    specs = _visible_specs(st.session_state.get(MODEL_PICK))
    if st.session_state.get(MODEL_PICK) not in specs:  # e.g. this session's upload left the server
        st.session_state[MODEL_PICK] = DEFAULT_MODEL
    ids = sorted(specs, key=_group_rank)  # stable: the registry's order within each group
    model_id = st.sidebar.selectbox(
        "Model", ids, format_func=lambda i: _model_label(specs[i]), key=MODEL_PICK,
        help="Built-in digit models run offline. ImageNet models need their torchvision weights once.",
    )
    spec = specs[model_id]
    avail = availability(model_id)
    if avail.status == Status.NEEDS_DOWNLOAD:
        # one short line: the page's card says what to run (the full text is not repeated here)
        st.sidebar.caption(f"{safe_name(spec)} needs its weights once: see the page.")
        if st.sidebar.button(f"Download {safe_name(spec)} now", key=f"download_{model_id}",
                             icon=":material/download:"):
            _download_now(spec)
    elif avail.status == Status.UNAVAILABLE:
        st.sidebar.caption(f"{safe_name(spec)} is unavailable here: see the page.")
    _user_model_form()
    return model_id


def _torchscript_help() -> str:
    settings = get_settings()
    if settings.allow_torchscript:
        return ("TorchScript (torch.jit.save) is a program as well as weights: its code runs on this server. "
                "Upload only models you trust; a hosted server turns it off (EXPLORER_PROFILE=hosted).")
    return ("TorchScript is off on this server (EXPLORER_PROFILE=hosted, or EXPLORER_ALLOW_TORCHSCRIPT=0): a "
            "TorchScript file is a program, and its code would run on the server. Upload a state_dict "
            "(safetensors or torch.save) for a torchvision architecture instead.")


def _user_model_form() -> None:
    """Upload your own model: a torchvision architecture + state_dict (or TorchScript where allowed)."""
    from explorer.models.user import UserModelError, UserModelRequest, parse_class_names

    settings = get_settings()
    with st.sidebar.expander("Your own model", icon=":material/upload_file:"):
        if not settings.allow_torchscript:
            st.caption("TorchScript uploads are **off** on this server (hosted profile): a TorchScript file is "
                       "code that would run here. Upload weights (safetensors or a state_dict) for a "
                       "torchvision architecture.")
        with st.form("user_model_form", border=False):
            weights = st.file_uploader("Model file", type=["pt", "pth", "ts", "safetensors"],
                                       help="A state_dict (safetensors, or torch.save) for the architecture "
                                            "below; pickles that would run code are refused. "
                                            + _torchscript_help())
            arch = st.text_input("torchvision architecture" + (" (empty: TorchScript)"
                                                              if settings.allow_torchscript else ""),
                                 placeholder="e.g. resnet18",
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
            spec = sessions.register_user_model(UserModelRequest(
                weights.getvalue(), weights.name, arch=arch.strip() or None, class_names=class_names,
                input_shape=(int(channels), int(size), int(size))), sessions.current_id())
        except UserModelError as exc:
            st.error(f"{escape_md(weights.name)}: {escape_md(_one_line(exc))}")
            return
        mine = st.session_state.setdefault(USER_MODELS_KEY, [])
        if spec.id not in mine:
            mine.append(spec.id)
        # The picker is already drawn in this run: its new value is set before it is drawn in the next one.
        st.session_state["_pending_model"] = spec.id
        set_query(model=spec.id)
        st.rerun()


# ------------------------------------------------------------------------------------------- images
def _uploads() -> OrderedDict:
    return st.session_state.setdefault(UPLOADS_KEY, OrderedDict())


def upload_id(img: LoadedImage) -> str:
    """An uploaded image's id in links: ``upload:`` + the first 12 hex digits of its pixel digest."""
    return f"{UPLOAD_PREFIX}{img.digest[:12]}"


def _keep_upload(img: LoadedImage) -> str:
    """Keep an uploaded image in this session (newest last), within the session's quota
    (``EXPLORER_SESSION_UPLOAD_MB``); the oldest ones leave first."""
    store = _uploads()
    uid = upload_id(img)
    store.pop(uid, None)
    store[uid] = img
    cap = get_settings().session_upload_mb * 1024 * 1024
    while len(store) > 1 and sum(int(i.pixels.nbytes) for i in store.values()) > cap:
        store.popitem(last=False)
    return uid


def _uploaded_image() -> None:
    """The sidebar's image uploader: a new file is decoded once, kept in this session by its id, and becomes
    the image shown (``_image_upload``); removing the file goes back to the sample picker."""
    upload = st.sidebar.file_uploader("…or upload an image", type=["png", "jpg", "jpeg", "webp", "bmp", "gif"],
                                      key="upload", on_change=_upload_changed)
    known = st.session_state.get("upload_file")
    if upload is None or (known is not None and known[0] == upload.file_id):
        return
    st.session_state["upload_file"] = (upload.file_id, None)
    settings = get_settings()
    if upload.size > settings.max_upload_mb * 1024 * 1024:
        st.sidebar.error(f"{escape_md(upload.name)}: {upload.size / 2**20:.1f} MB is over this server's "
                         f"{settings.max_upload_mb} MB limit for one file (EXPLORER_MAX_UPLOAD_MB).")
        return
    try:
        img = decode_upload(upload.getvalue(), upload.name)  # limits + cache by digest
    except ImageError as exc:
        st.sidebar.error(f"{escape_md(upload.name)}: {escape_md(_one_line(exc))}")
        return
    uid = _keep_upload(img)
    st.session_state["upload_file"] = (upload.file_id, uid)
    st.session_state[IMAGE_UPLOAD] = uid


IMAGE_UPLOAD = "_image_upload"  # the id of the uploaded image shown, or None: the sample picker's image


def _upload_changed() -> None:
    """The visitor removed the file from the uploader: back to the sample picker. (A page drawn without the
    file, after a page switch, calls nothing: the upload stays the image shown.)"""
    if st.session_state.get("upload") is None:
        known = st.session_state.pop("upload_file", None)
        if known is not None and st.session_state.get(IMAGE_UPLOAD) == known[1]:
            st.session_state[IMAGE_UPLOAD] = None


def _sample_id_ok(sample_id: str, kind: str) -> tuple[str | None, str]:
    """(the sample id if it can be shown for ``kind``, else None; why not)."""
    try:
        img = load_sample(sample_id)
    except (KeyError, ValueError) as exc:
        return None, _one_line(exc).strip("'\"")
    if not img.sample_id or img.sample_id.split(":")[0] != kind:
        return None, f"this model takes {kind} samples"
    return img.sample_id, ""


def _chose_sample() -> None:
    st.session_state[IMAGE_UPLOAD] = None


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
    key = f"image_pick_{kind}"
    default = DEFAULT_IMAGE.get(kind) if DEFAULT_IMAGE.get(kind) in names else ids[0]
    linked = urlstate.from_link("image")  # an image= the link brought, not one this session wrote
    if linked and linked.startswith(UPLOAD_PREFIX):
        if linked in _uploads():
            st.session_state[IMAGE_UPLOAD] = linked
        else:
            st.sidebar.warning(f"The link names an uploaded image ({shown(linked)}) that this session does not "
                               "have: uploads stay with the session that made them; upload the same file to "
                               "open it. Showing a sample instead.")
        linked = None
    elif linked:
        ok, why = _sample_id_ok(linked, kind)
        if ok is None:
            st.sidebar.warning(f"image = {shown(linked)} in the link cannot be shown ({escape_md(why)}); "
                               f"using {escape_md(names[default])}.")
        else:
            st.session_state[key] = ok
            st.session_state[IMAGE_UPLOAD] = None
    if key not in st.session_state:  # first draw for this kind of model: the session's last sample if it fits
        last = urlstate.raw("image")
        st.session_state[key] = (_sample_id_ok(last, kind)[0] if last and not last.startswith(UPLOAD_PREFIX)
                                 else None) or default
    current = st.session_state[key]
    if current not in names:  # a valid sample outside the curated gallery, first in the list
        names = {current: load_sample(current).name, **names}
    sample_id = st.sidebar.selectbox("Image", list(names), format_func=lambda i: names[i], key=key,
                                     on_change=_chose_sample,
                                     help="Samples ship with installed packages: they work offline. "
                                     + SAMPLE_USERS.get(kind, ""))
    _uploaded_image()
    uid = st.session_state.get(IMAGE_UPLOAD)
    if uid is not None and uid in _uploads():
        st.sidebar.caption(f"Showing your upload {escape_md(_uploads()[uid].name)}; pick a sample above to "
                           "go back.")
        set_query(image=uid)
        return _uploads()[uid]
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


def _keep_widget_values() -> None:
    """Re-assert the pickers' values before they are drawn. Every page draws its own sidebar, so after a page
    switch the pickers are new widgets (new ids) and Streamlit would start them from their defaults; a value set
    through the Session State API carries over to the new widget."""
    for key in [MODEL_PICK, "device_pick", *(k for k in st.session_state if str(k).startswith("image_pick_"))]:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def _draw() -> Selection:
    _keep_widget_values()
    st.sidebar.markdown("### Model and image")
    model_id = _pick_model()
    set_query(model=model_id)
    spec = get_spec(model_id)
    image = _pick_image(spec)
    device = _pick_device()
    x = to_model_input(image, spec.input_shape, resize=spec.resize)
    _every_page()
    return Selection(model_id=model_id, spec=spec, image=image, x=x, digest=array_digest(x), device=device,
                     label=image.label)


def _every_page() -> None:
    from explorer import teaching
    from explorer.caching import jobs

    teaching.on_every_page()  # lesson bar, hide=, presenter rooms
    jobs.sidebar_load()  # one line about the server's heavy-work load, when it is busy


def page_chrome() -> None:
    """For pages without the model and image pickers (Robustness lab): the deep-link fix, the session sweep,
    the lesson bar and presenter rooms, and the server's load line, as :func:`sidebar` gives every other page."""
    ensure_navigation()
    sessions.maybe_sweep()
    _every_page()


def sidebar() -> Selection:
    """Render the shared pickers and return the current selection (same on every page). The pickers keep the
    session's values across pages and detours (``_keep_widget_values``, ``explorer.urlstate``'s memory), and
    write them into the URL on every run."""
    ensure_navigation()
    sessions.maybe_sweep()
    return _draw()
