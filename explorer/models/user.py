"""The user's own model: a torchvision architecture plus a state_dict, or (where allowed) TorchScript.

What is accepted, and how (README "Security" has the user-facing version):

* **A state_dict + a named torchvision architecture** (the safe default, on in every profile). The file is
  read with safetensors or ``torch.load(weights_only=True)`` (a pickle that would run code is refused). The
  architecture's size is checked *before* the network is built: its known parameter count (torchvision's
  weights metadata), then the file's tensors against the architecture built on the ``meta`` device (which
  allocates nothing), so a 53 KB file declared as ``vit_h_14`` is refused in milliseconds. The class count is
  read from whichever tensors depend on it (Linear or conv heads such as SqueezeNet's).
* **TorchScript** is executable code: only with ``EXPLORER_ALLOW_TORCHSCRIPT=1`` (on in the local profile, off in
  the hosted one). The archive is inspected before ``torch.jit.load`` (``explorer.models.torchscript_guard``).
* Every model is then loaded and validated in a separate process under a time and a memory limit
  (``explorer.models.sandbox``): outputs follow the batch, are finite N x K logits, and have input gradients.
  Only an accepted file is loaded into the server.

Ownership: an accepted model has the id ``user:<digest>`` (sha256 of the file and of the declared
architecture, input shape, normalisation and class names). Each session owns the models it uploaded, at most
``EXPLORER_SESSION_MODELS`` of them (and ``EXPLORER_SESSION_UPLOAD_MB`` of files); uploading another evicts that
session's oldest, and ``forget_session`` drops a session's models when it ends. A model stays on the server
while at least one session owns it. **Sharing rule:** a link that names a ``user:`` model opens it only in a
session that owns it, i.e. that uploaded the same file with the same settings (which is instant: the digest is
already validated). Any other session gets ``LINK_NOTICE`` (``link_notice(session, model_id)``), whether or
not another session still has it.
"""

from __future__ import annotations

import io
import json
import threading
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, replace

import torch

from explorer.config import Settings, get_settings
from explorer.digest import bytes_digest
from explorer.models import sandbox, torchscript_guard
from explorer.models.imagenet import IMAGENET_MEAN, IMAGENET_STD
from explorer.models.registry import (
    ModelSpec,
    ModelUnavailable,
    register_user_spec,
    unregister_user_spec,
)
from explorer.models.wrapper import Classifier

#: the session of callers that name none (the command line, scripts, tests)
LOCAL_SESSION = "local"

LINK_NOTICE = ("this link names a model uploaded in another session; upload the same file (same architecture, "
               "input size and class names) to open it")

NOT_A_MODEL = "not a model file (neither safetensors, a PyTorch state_dict nor TorchScript)"


class UserModelError(ValueError):
    """A user model was refused; the message is one line saying why."""


@dataclass(frozen=True)
class UserModelRequest:
    """What the user handed in (no logic: see ``register_user_model``)."""

    weights: bytes
    filename: str
    arch: str | None = None  # None: TorchScript; else a torchvision.models name
    class_names: tuple[str, ...] | None = None
    input_shape: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, ...] | None = None  # None: ImageNet statistics for 3 channels, identity for 1
    std: tuple[float, ...] | None = None
    resize: int | None = None


def parse_class_names(text: str) -> tuple[str, ...]:
    """Class names from a JSON list, a JSON {index: name} object, or a text file with one name a line."""
    text = text.strip()
    if not text:
        raise UserModelError("the class-names file is empty")
    if text[0] in "[{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserModelError(f"class names: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(data, list):
            return tuple(str(v) for v in data)
        if isinstance(data, dict):
            try:
                items = sorted((int(k), v) for k, v in data.items())
            except ValueError:
                raise UserModelError("class names: JSON object keys must be class indices") from None
            if [k for k, _ in items] != list(range(len(items))):
                raise UserModelError("class names: JSON object keys must be 0..K-1 without gaps")
            return tuple(v if isinstance(v, str) else str(v[-1] if isinstance(v, list) else v) for _, v in items)
        raise UserModelError("class names: JSON must be a list or an object")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


# ------------------------------------------------------------------------------------------ reading files


def _is_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    n = int.from_bytes(data[:8], "little")
    return 0 < n < len(data) and data[8:9] == b"{"


def _zip_names(data: bytes) -> list[zipfile.ZipInfo] | None:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return None
    try:
        return zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return None


def _file_kind(data: bytes) -> str | None:
    """"safetensors", "torchscript", "checkpoint" (torch.save: zip or legacy pickle) or None (not a model)."""
    if _is_safetensors(data):
        return "safetensors"
    infos = _zip_names(data)
    if infos is not None:
        names = [i.filename for i in infos]
        if not any(n.endswith("/data.pkl") for n in names):
            return None
        return "torchscript" if any("/code/" in n for n in names) else "checkpoint"
    if data[:1] == b"\x80":  # a pickle protocol marker: torch.save's legacy format
        return "checkpoint"
    return None


def _unpacked_limit(settings: Settings) -> int:
    return 2 * settings.max_model_mb * 2**20 + 2**20


def _read_state_dict(data: bytes, settings: Settings) -> dict[str, torch.Tensor]:
    if _is_safetensors(data):
        from safetensors.torch import load as load_safetensors

        try:
            return load_safetensors(data)
        except Exception as exc:
            raise UserModelError(f"not a valid safetensors file ({sandbox.reason(exc)})") from None
    infos = _zip_names(data)
    if infos is not None and sum(i.file_size for i in infos) > _unpacked_limit(settings):
        raise UserModelError(f"refused: the checkpoint unpacks to more than {_unpacked_limit(settings) // 2**20} MB")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for code-running pickles and for junk
        text = str(exc)
        if "GLOBAL" in text or "Unsupported global" in text:
            raise UserModelError(
                "refused: the checkpoint contains Python objects that would run code when loaded; "
                "save a plain state_dict (or safetensors)"
            ) from None
        raise UserModelError(NOT_A_MODEL) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserModelError("the checkpoint is not a state_dict (a mapping of names to tensors)")
    return state


# ------------------------------------------------------------------------------------------ architectures


def classification_architectures() -> list[str]:
    """The torchvision image-classification architectures an upload may name."""
    import torchvision
    from torchvision.models import list_models

    return list_models(module=torchvision.models)


def _known_params(arch: str) -> int | None:
    """The architecture's parameter count at 1000 classes, from torchvision's weights metadata (no build)."""
    from torchvision.models import get_model_weights

    try:
        counts = [w.meta.get("num_params") for w in get_model_weights(arch)]
    except (ValueError, KeyError):
        return None
    counts = [c for c in counts if isinstance(c, int)]
    return min(counts) if counts else None


def _meta_shapes(arch: str, num_classes: int | None) -> tuple[dict[str, tuple[int, ...]], int] | None:
    """State-dict shapes and parameter count of ``arch`` built on the meta device (allocates nothing)."""
    from torchvision.models import get_model

    kwargs = {"num_classes": num_classes} if num_classes else {}
    try:
        with torch.device("meta"):
            net = get_model(arch, weights=None, **kwargs)
    except Exception:  # a few builders (RegNet) compute on tensors while building: checked in the sandbox
        return None
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    return shapes, sum(p.numel() for p in net.parameters())


def _num_classes_from_heads(state: dict[str, torch.Tensor], ref: dict[str, tuple[int, ...]]) -> int | None:
    """The class count: the size, in the file, of every dimension that is 1000 in the reference build and
    differs in the file (a Linear head's rows, SqueezeNet's 1x1 conv classifier, ViT's heads.head...)."""
    found = set()
    for key, shape in ref.items():
        got = state.get(key)
        if got is None or tuple(got.shape) == shape or got.dim() != len(shape):
            continue
        for want, have in zip(shape, got.shape):
            if want == 1000 and have != 1000:
                found.add(int(have))
    return found.pop() if len(found) == 1 else None


def _num_classes_fallback(state: dict[str, torch.Tensor]) -> int | None:
    num_classes = None
    for key in ("fc.weight", "classifier.weight", "head.weight", "heads.head.weight"):
        if key in state:
            num_classes = int(state[key].shape[0])
    for key, value in state.items():
        if key.startswith("classifier.") and key.endswith(".weight") and value.dim() in (2, 4):
            num_classes = int(value.shape[0])
    return num_classes


def _mismatch(arch: str, state: dict[str, torch.Tensor], ref: dict[str, tuple[int, ...]]) -> str | None:
    missing = [k for k in ref if k not in state]
    unexpected = [k for k in state if k not in ref]
    wrong = [f"{k} is {tuple(state[k].shape)}, {arch} needs {ref[k]}" for k in ref
             if k in state and tuple(state[k].shape) != ref[k]]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}"
                     f"{', ...' if len(unexpected) > 3 else ''})")
    if wrong:
        parts.append(f"{len(wrong)} of the wrong shape ({'; '.join(wrong[:2])}{'; ...' if len(wrong) > 2 else ''})")
    return "; ".join(parts) or None


def plan_architecture(arch: str, state: dict[str, torch.Tensor], settings: Settings) -> int | None:
    """Check a state_dict against ``arch`` without building it; returns the class count to build with.

    Refuses (``UserModelError``) an unknown or too large architecture and weights that do not fit it.
    """
    from torchvision.models import list_models

    if arch not in classification_architectures():
        if arch in list_models():
            raise UserModelError(f"{arch!r} is not an image classification architecture")
        raise UserModelError(f"unknown torchvision architecture {arch!r}")
    limit = settings.max_model_params_m * 1_000_000
    too_big = f"this server accepts up to {settings.max_model_params_m} M parameters (EXPLORER_MAX_MODEL_PARAMS_M)"
    known = _known_params(arch)
    if known is not None and known > 1.5 * limit:  # far above the cap whatever the class count: no build at all
        raise UserModelError(f"{arch} has {known / 1e6:.0f} M parameters; {too_big}")
    in_file = sum(t.numel() for t in state.values())
    if in_file > limit:
        raise UserModelError(f"the file holds {in_file / 1e6:.0f} M values; {too_big}")
    built = _meta_shapes(arch, None)
    if built is None:
        return _num_classes_fallback(state)
    ref, _ = built
    num_classes = _num_classes_from_heads(state, ref)
    if num_classes is not None:
        built = _meta_shapes(arch, num_classes)
        if built is None:
            return num_classes
        ref, _ = built
    problem = _mismatch(arch, state, ref)
    if problem:
        raise UserModelError(f"the weights do not fit {arch}: {problem}")
    if built[1] > limit:
        raise UserModelError(f"{arch} has {built[1] / 1e6:.0f} M parameters; {too_big}")
    return num_classes


# ------------------------------------------------------------------------------------------ validation


def _normalisation(req: UserModelRequest) -> tuple[tuple[float, ...], tuple[float, ...]]:
    c = req.input_shape[0]
    mean = req.mean or (IMAGENET_MEAN if c == 3 else (0.0,))
    std = req.std or (IMAGENET_STD if c == 3 else (1.0,))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _model_id(req: UserModelRequest) -> str:
    declared = json.dumps([req.arch, list(req.input_shape), req.class_names and list(req.class_names),
                           req.mean and list(req.mean), req.std and list(req.std), req.resize])
    return f"user:{bytes_digest(bytes_digest(req.weights).encode() + declared.encode())[:16]}"


_validated: OrderedDict[str, sandbox.SandboxResult] = OrderedDict()  # validation results by (file, job) digest


def _validate(req: UserModelRequest, settings: Settings) -> sandbox.SandboxResult:
    """Everything that can be decided without running the model, then the sandbox (once per file and job)."""
    shape = req.input_shape
    if len(shape) != 3 or shape[0] not in (1, 3) or not all(4 <= s <= 1024 for s in shape[1:]):
        raise UserModelError("input shape must be C x H x W with C in {1, 3} and 4 <= H, W <= 1024")
    mb = len(req.weights) / 2**20
    if mb > settings.max_model_mb:
        raise UserModelError(f"the file is {mb:.1f} MB; this server accepts model files up to "
                             f"{settings.max_model_mb} MB (EXPLORER_MAX_MODEL_MB)")
    if req.arch is not None and req.arch not in classification_architectures():
        plan_architecture(req.arch, {}, settings)  # raises: unknown, or not a classifier
    kind = _file_kind(req.weights)
    mean, std = _normalisation(req)
    if len(mean) not in (1, shape[0]) or len(std) not in (1, shape[0]):
        raise UserModelError(f"mean/std must have 1 or {shape[0]} values")
    common = dict(input_shape=tuple(shape), mean=mean, std=std, seconds=settings.validate_seconds,
                  memory_mb=settings.validate_memory_mb, max_params=settings.max_model_params_m * 1_000_000)
    if req.arch is None:
        if kind in ("safetensors", "checkpoint"):
            raise UserModelError("this file is a state_dict: name its torchvision architecture (e.g. resnet18)")
        if kind is None:
            raise UserModelError(NOT_A_MODEL)
        if not settings.allow_torchscript:
            raise UserModelError("TorchScript uploads are off on this server (EXPLORER_ALLOW_TORCHSCRIPT=0): "
                                 "TorchScript is code; upload a state_dict and name its architecture instead")
        try:
            torchscript_guard.inspect_archive(req.weights, _unpacked_limit(settings))
        except torchscript_guard.RefusedModel as exc:
            raise UserModelError(str(exc)) from None
        job = sandbox.SandboxJob(kind="torchscript", **common)
    else:
        if kind == "torchscript":
            raise UserModelError("this file is TorchScript: leave the architecture empty")
        if kind is None:
            raise UserModelError(NOT_A_MODEL)
        state = _read_state_dict(req.weights, settings)
        num_classes = plan_architecture(req.arch, state, settings)
        del state
        job = sandbox.SandboxJob(kind="state_dict", arch=req.arch, num_classes=num_classes, **common)
    key = bytes_digest(bytes_digest(req.weights).encode() + repr(job).encode())
    with _lock:
        if key in _validated:
            _validated.move_to_end(key)
            return _validated[key]
    try:
        result = sandbox.validate(job, req.weights)
    except sandbox.SandboxRefused as exc:
        raise UserModelError(str(exc)) from None
    with _lock:
        _validated[key] = result
        while len(_validated) > 256:
            _validated.popitem(last=False)
    return result


# ------------------------------------------------------------------------------------------ per-session store


@dataclass(frozen=True)
class _Entry:
    req: UserModelRequest  # with the class names resolved
    spec: ModelSpec
    num_classes: int


_models: dict[str, _Entry] = {}
_sessions: dict[str, OrderedDict[str, None]] = {}
_lock = threading.RLock()


def _release(model_id: str) -> None:
    """Drop a model that no session owns any more (registry, store, loaded copies)."""
    if any(model_id in owned for owned in _sessions.values()):
        return
    _models.pop(model_id, None)
    unregister_user_spec(model_id)
    from explorer.inference import model_cache

    model_cache().discard(model_id)


def _own(session: str, model_id: str, settings: Settings) -> None:
    owned = _sessions.setdefault(session, OrderedDict())
    owned[model_id] = None
    owned.move_to_end(model_id)
    cap_bytes = settings.session_upload_mb * 2**20

    def over() -> bool:
        size = sum(len(_models[m].req.weights) for m in owned if m in _models)
        return len(owned) > max(1, settings.session_models) or size > cap_bytes

    while len(owned) > 1 and over():
        oldest = next(iter(owned))
        del owned[oldest]
        _release(oldest)


def register_user_model(req: UserModelRequest, session: str = LOCAL_SESSION) -> ModelSpec:
    """Validate a user model and give it to ``session``; returns its spec (id ``user:<digest>``).

    Raises ``UserModelError`` (one line) when it is refused. The session keeps at most
    ``EXPLORER_SESSION_MODELS`` models: its oldest is evicted (and leaves the server if no other session owns it).
    """
    settings = get_settings()
    model_id = _model_id(req)
    with _lock:
        if model_id in _models:  # the same file with the same settings: already validated
            _own(session, model_id, settings)
            return _models[model_id].spec
    result = _validate(req, settings)
    k = result.num_classes
    names = req.class_names or tuple(f"class {i}" for i in range(k))
    if len(names) != k:
        raise UserModelError(f"the model has {k} outputs but {len(names)} class names were given")
    spec = ModelSpec(id=model_id, name=f"Your model ({req.filename})", dataset="user", family="user",
                     input_shape=req.input_shape, class_names=names,
                     description=f"uploaded {'TorchScript' if req.arch is None else req.arch} model",
                     resize=req.resize)
    with _lock:
        _models[model_id] = _Entry(replace(req, class_names=names), spec, k)
        register_user_spec(spec)
        _own(session, model_id, settings)
    return spec


def forget_session(session: str) -> int:
    """Drop a session's uploads (call it when the session ends or expires); returns how many it had."""
    with _lock:
        owned = _sessions.pop(session, OrderedDict())
        for model_id in owned:
            _release(model_id)
    return len(owned)


def session_models(session: str) -> tuple[str, ...]:
    """The ids of the models ``session`` owns, oldest first."""
    with _lock:
        return tuple(_sessions.get(session, ()))


def owns(session: str, model_id: str) -> bool:
    with _lock:
        return model_id in _sessions.get(session, ())


def link_notice(session: str, model_id: str) -> str | None:
    """None when ``session`` may open ``model_id`` (not an upload, or its own); else the one-line notice."""
    if not model_id.startswith("user:") or owns(session, model_id):
        return None
    return LINK_NOTICE


def sessions() -> int:
    """How many sessions hold uploads (for monitoring and tests)."""
    with _lock:
        return len(_sessions)


# ------------------------------------------------------------------------------------------ building


def _build_net(entry: _Entry) -> torch.nn.Module:
    """Build an accepted model in this process (it passed inspection and the sandbox)."""
    req = entry.req
    if req.arch is None:
        with warnings.catch_warnings():  # torch's "torch.jit.load is deprecated" would reach the server log
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=FutureWarning)
            net = torch.jit.load(io.BytesIO(req.weights), map_location="cpu")
    else:
        from torchvision.models import get_model

        state = _read_state_dict(req.weights, get_settings())
        net = get_model(req.arch, weights=None, num_classes=entry.num_classes)
        net.load_state_dict(state)
    net.eval()
    return net


def build_user(model_id: str) -> Classifier:
    with _lock:
        entry = _models.get(model_id)
    if entry is None:
        raise ModelUnavailable(f"{model_id}: this uploaded model is no longer on the server; upload it again")
    mean, std = _normalisation(entry.req)
    return Classifier(_build_net(entry), model_id=model_id, class_names=entry.spec.class_names,
                      input_shape=entry.req.input_shape, mean=mean, std=std)
