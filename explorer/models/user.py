"""The user's own model: a TorchScript file, or a torchvision architecture plus a state_dict.

A state_dict is read from safetensors, or with ``torch.load(weights_only=True)``: a pickle that tries to run
code is refused. Every model is validated (one forward on the declared input shape, number of outputs).
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import torch

from explorer.digest import bytes_digest
from explorer.models.imagenet import IMAGENET_MEAN, IMAGENET_STD
from explorer.models.registry import ModelSpec, ModelUnavailable, register_user_spec
from explorer.models.wrapper import Classifier


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


_requests: OrderedDict[str, UserModelRequest] = OrderedDict()
_lock = threading.Lock()
_MAX_USER_MODELS = 16


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


def _is_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    n = int.from_bytes(data[:8], "little")
    return 0 < n < len(data) and data[8:9] == b"{"


def _read_state_dict(data: bytes) -> dict[str, torch.Tensor]:
    if _is_safetensors(data):
        from safetensors.torch import load as load_safetensors

        try:
            return load_safetensors(data)
        except Exception as exc:
            raise UserModelError(f"not a valid safetensors file ({exc.__class__.__name__})") from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for code-running pickles, RuntimeError for junk
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text or "Unpickl" in exc.__class__.__name__:
            raise UserModelError(
                "refused: the checkpoint contains Python objects that would run code when loaded; "
                "save a plain state_dict (or safetensors)"
            ) from None
        raise UserModelError(f"not a PyTorch checkpoint or safetensors file ({exc.__class__.__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserModelError("the checkpoint is not a state_dict (a mapping of names to tensors)")
    return state


def _build_net(req: UserModelRequest) -> torch.nn.Module:
    if req.arch is None:
        if not zipfile.is_zipfile(io.BytesIO(req.weights)):
            raise UserModelError("not a TorchScript file: save it with torch.jit.save (or pick an architecture)")
        try:
            net = torch.jit.load(io.BytesIO(req.weights), map_location="cpu")
        except Exception as exc:
            raise UserModelError(f"TorchScript file cannot be loaded ({exc.__class__.__name__})") from None
        net.eval()
        return net
    from torchvision.models import get_model, list_models

    if req.arch not in list_models():
        raise UserModelError(f"unknown torchvision architecture {req.arch!r}")
    state = _read_state_dict(req.weights)
    num_classes = None
    for key in ("fc.weight", "classifier.weight", "head.weight", "heads.head.weight"):
        if key in state:
            num_classes = state[key].shape[0]
    for key, value in state.items():
        if key.startswith("classifier.") and key.endswith(".weight") and value.dim() == 2:
            num_classes = value.shape[0]
    kwargs = {"num_classes": num_classes} if num_classes else {}
    try:
        net = get_model(req.arch, weights=None, **kwargs)
        net.load_state_dict(state)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise UserModelError(f"the weights do not fit {req.arch}: {first}") from None
    net.eval()
    return net


def _classifier(model_id: str, req: UserModelRequest, net: torch.nn.Module, class_names: tuple[str, ...]) -> Classifier:
    c = req.input_shape[0]
    mean = req.mean or (IMAGENET_MEAN if c == 3 else (0.0,))
    std = req.std or (IMAGENET_STD if c == 3 else (1.0,))
    return Classifier(net, model_id=model_id, class_names=class_names, input_shape=req.input_shape,
                      mean=mean, std=std)


def register_user_model(req: UserModelRequest) -> ModelSpec:
    """Validate a user model and add it to the registry; returns its spec (id ``user:<digest>``)."""
    if len(req.input_shape) != 3 or req.input_shape[0] not in (1, 3) or not all(4 <= s <= 1024 for s in req.input_shape[1:]):
        raise UserModelError("input shape must be C x H x W with C in {1, 3} and 4 <= H, W <= 1024")
    net = _build_net(req)
    model_id = f"user:{bytes_digest(req.weights)[:12]}"
    probe = _classifier(model_id, req, net, req.class_names or ("?",))
    try:
        with torch.inference_mode():
            out = probe(torch.zeros(1, *req.input_shape))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        raise UserModelError(f"the model fails on a {'x'.join(map(str, req.input_shape))} input: {first}") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        raise UserModelError("the model must return logits of shape N x K")
    k = out.shape[1]
    names = req.class_names or tuple(f"class {i}" for i in range(k))
    if len(names) != k:
        raise UserModelError(f"the model has {k} outputs but {len(names)} class names were given")
    spec = ModelSpec(id=model_id, name=f"Your model ({req.filename})", dataset="user", family="user",
                     input_shape=req.input_shape, class_names=names,
                     description=f"uploaded {'TorchScript' if req.arch is None else req.arch} model",
                     resize=req.resize)
    with _lock:
        _requests[model_id] = UserModelRequest(req.weights, req.filename, req.arch, names, req.input_shape,
                                               req.mean, req.std, req.resize)
        while len(_requests) > _MAX_USER_MODELS:
            _requests.popitem(last=False)
    register_user_spec(spec)
    return spec


def build_user(model_id: str) -> Classifier:
    with _lock:
        req = _requests.get(model_id)
    if req is None:
        raise ModelUnavailable(f"{model_id}: this uploaded model is no longer on the server; upload it again")
    return _classifier(model_id, req, _build_net(req), req.class_names or ())
