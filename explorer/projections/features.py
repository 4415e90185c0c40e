"""Features of a frozen model at a named layer, and how far a perturbation travels through its layers.

* Layers are addressed by their names in ``model.net`` (in the model itself for a plain ``nn.Module``: the
  attacks' contract, ``layer_root``) (``"conv2"``, ``"layer4"``, ``"features.3"``); a name
  ending in ``":in"`` means the *input* of that module (a forward pre-hook), which is how the penultimate
  features of a network whose last Linear has no sibling before it (ViT's ``heads.head``) are reached.
* Hooks are registered for one call and always removed in ``finally``; the model is never mutated, never
  switched between train and eval, and feature extraction stops the forward pass at the requested layer.
* Everything runs under ``torch.inference_mode()`` in batches.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.device import model_device
from explorer.models.wrapper import Classifier, layer_root, model_name

ProgressFn = Callable[[float, str], None]

INPUT_SUFFIX = ":in"
MAX_LAYER_CHOICES = 40  # the selectable list stops descending into submodules past this many names
DEFAULT_MAX_FEATURES = 16_384  # "auto" reduction: larger activations are average-pooled to fit


class _Stop(Exception):
    """Raised inside a hook to end the forward pass once the wanted activation is captured."""


@dataclass(frozen=True)
class LayerChoices:
    """The selectable layers of a model, in forward order, and the default (penultimate) one."""

    names: tuple[str, ...]
    default: str

    @property
    def default_index(self) -> int:
        return self.names.index(self.default)


def _is_container(m: nn.Module) -> bool:
    return isinstance(m, (nn.ModuleList, nn.ModuleDict))


def _module(net: nn.Module, name: str) -> nn.Module:
    base = name[: -len(INPUT_SUFFIX)] if name.endswith(INPUT_SUFFIX) else name
    try:
        return net.get_submodule(base)
    except AttributeError as exc:
        raise ValueError(f"no layer named {base!r} in {type(net).__name__}") from exc


def _candidate_names(net: nn.Module) -> list[str]:
    """Named submodules, descending one level at a time while the list stays short."""
    named = [(n, m) for n, m in net.named_modules() if n and not _is_container(m)]
    chosen: list[str] = []
    for depth in range(1, 8):
        names = [n for n, _ in named if n.count(".") < depth]
        if len(names) > MAX_LAYER_CHOICES and chosen:
            break
        chosen = names
        if len(names) == len(named):
            break
    return chosen


def _last_linear(net: nn.Module) -> str | None:
    last = None
    for n, m in net.named_modules():
        if isinstance(m, nn.Linear):
            last = n
    return last


def _preceding_sibling(net: nn.Module, name: str) -> str | None:
    parent_name, _, child = name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    children = list(parent.named_children())
    keys = [k for k, _ in children]
    i = keys.index(child)
    if i == 0:
        return None
    return f"{parent_name}.{keys[i - 1]}" if parent_name else keys[i - 1]


_default_cache: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()


def default_layer(model: Classifier) -> str:
    """The penultimate layer: the input of the last ``nn.Linear`` of ``model.net`` (``layer_root``).

    Named by the module whose output *is* that input when one can be verified (``dropout`` for the built-in
    CNN, ``relu2`` for the MLP, ``avgpool`` for ResNets, ``classifier.2`` for MobileNetV3): one batch-of-two
    forward pass checks that the preceding sibling's flattened output equals the Linear's input. Otherwise
    the pseudo-layer ``"<linear>:in"``. Without any Linear layer, the last selectable layer.
    """
    net = layer_root(model)
    cached = _default_cache.get(model)
    if cached is not None:
        return cached
    linear = _last_linear(net)
    if linear is None:
        names = _candidate_names(net)
        if not names:
            raise ValueError(f"{model_name(model)} has no named layers to take features from")
        result = names[-1]
    else:
        result = f"{linear}{INPUT_SUFFIX}"
        sibling = _preceding_sibling(net, linear)
        input_shape = getattr(model, "input_shape", None)  # a plain module declares none: keep "<linear>:in"
        if sibling is not None and input_shape is not None:
            gen = torch.Generator().manual_seed(0)
            x = torch.rand((2, *input_shape), generator=gen).to(model_device(model))
            with torch.inference_mode():
                acts = _capture(model, x, [sibling, result])
            a, b = acts.get(sibling), acts.get(result)
            if a is not None and b is not None and a.numel() == b.numel() and torch.allclose(
                a.reshape(2, -1), b.reshape(2, -1), rtol=1e-5, atol=1e-6
            ):
                result = sibling
    _default_cache[model] = result
    return result


def layer_names(model: Classifier) -> LayerChoices:
    """Selectable layers of ``model.net`` (named modules, forward-registration order) and the default.

    Top-level children always; their submodules too while the list stays under ``MAX_LAYER_CHOICES``.
    The default (penultimate) layer is always in the list.
    """
    names = _candidate_names(layer_root(model))
    default = default_layer(model)
    if default not in names:
        names.append(default)
    return LayerChoices(tuple(names), default)


def _capture(model: Classifier, x: torch.Tensor, layers: Sequence[str], stop: bool = False) -> dict[str, torch.Tensor]:
    """Activations of ``layers`` for one batch (the last call of a module wins); ``stop`` ends the forward
    pass as soon as every layer has been seen.

    Hooks live on the shared model for the duration of one forward pass and act only in the thread that
    registered them, so a concurrent forward pass by another session is neither recorded nor interrupted.
    """
    net = layer_root(model)
    out: dict[str, torch.Tensor] = {}
    wanted = set(layers)
    handles = []
    owner = threading.get_ident()

    def _store(name: str, value) -> None:
        if threading.get_ident() != owner:
            return  # the model is shared: another session's forward pass on another thread is not ours
        if isinstance(value, (tuple, list)):
            value = value[0]
        if isinstance(value, torch.Tensor):
            out[name] = value
            if stop and wanted.issubset(out):
                raise _Stop

    try:
        for name in layers:
            module = _module(net, name)
            if name.endswith(INPUT_SUFFIX):
                handles.append(module.register_forward_pre_hook(
                    lambda _m, args, _n=name: _store(_n, args[0] if args else None)))
            else:
                handles.append(module.register_forward_hook(lambda _m, _a, output, _n=name: _store(_n, output)))
        try:
            model(x)
        except _Stop:
            pass
    finally:
        for h in handles:
            h.remove()
    return out


REDUCTIONS = ("auto", "flatten", "mean")


def _spatial_mean(act: torch.Tensor) -> torch.Tensor:
    if act.dim() == 4:  # N x C x H x W
        return act.mean(dim=(2, 3))
    if act.dim() == 3:  # N x tokens x D
        return act.mean(dim=1)
    return act.reshape(act.shape[0], -1)


def _reduce(act: torch.Tensor, reduce: str, max_features: int) -> torch.Tensor:
    """N x ... activation -> N x D (see ``extract_features`` for the reductions)."""
    n = act.shape[0]
    if reduce == "mean":
        return _spatial_mean(act)
    if reduce == "flatten" or act[0].numel() <= max_features:
        return act.reshape(n, -1)
    if act.dim() == 4:  # pool to the largest square grid that fits
        side = max(1, int(np.floor(np.sqrt(max_features / act.shape[1]))))
        return F.adaptive_avg_pool2d(act, min(side, act.shape[-2], act.shape[-1])).reshape(n, -1)
    if act.dim() == 3:
        return act.mean(dim=1)
    return act.reshape(n, -1)


def extract_features(model: Classifier, images: np.ndarray | torch.Tensor, layer: str | None = None,
                     batch_size: int = 64, progress: ProgressFn | None = None, reduce: str = "auto",
                     max_features: int = DEFAULT_MAX_FEATURES) -> np.ndarray:
    """Activations at ``layer`` (default: penultimate) for [0,1] N x C x H x W images, as float32 N x D.

    ``reduce``: ``"flatten"`` keeps every value; ``"mean"`` averages over spatial positions / tokens;
    ``"auto"`` (default) flattens when the activation has at most ``max_features`` values per image and
    otherwise average-pools a feature map to the largest square grid that fits (tokens are averaged), so that
    early layers of an ImageNet network do not need gigabytes for a thousand images.
    """
    from explorer.inference import as_tensor

    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    layer = layer or default_layer(model)
    _module(layer_root(model), layer)  # a clear error for an unknown name before any work
    x = as_tensor(images, model_device(model))
    n = len(x)
    chunks: list[np.ndarray] = []
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            acts = _capture(model, x[i: i + batch_size], [layer], stop=True)
            if layer not in acts:
                raise ValueError(f"layer {layer!r} did not run in the forward pass of {model_name(model)}")
            chunks.append(_reduce(acts[layer].float(), reduce, max_features).cpu().numpy())
            if progress:
                done = min(n, i + batch_size)
                progress(done / n, f"features at {layer}: {done}/{n} images")
    if not chunks:
        with torch.inference_mode():
            probe = _capture(model, torch.zeros((1, *x.shape[1:]), device=x.device), [layer], stop=True)
        d = _reduce(probe[layer].float(), reduce, max_features).shape[1]
        return np.zeros((0, d), np.float32)
    return np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)


# --- how a perturbation grows through the network -------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LayerGrowth:
    """Relative activation change per layer, ``||f_l(x') - f_l(x)|| / ||f_l(x)||``, averaged over images.

    ``layers[0]`` is ``"input"`` (the pixels). ``adversarial`` / ``noise`` are the means over images,
    ``*_per_image`` the N x L values (NaN where a clean activation is all zero).
    """

    layers: tuple[str, ...]
    adversarial: np.ndarray
    noise: np.ndarray
    adversarial_per_image: np.ndarray
    noise_per_image: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        """Adversarial over noise change, per layer (how much more the attack moves each layer)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.adversarial / self.noise


def growth_layers(model: Classifier, max_depth: int = 3) -> list[str]:
    """The chain of layers tracked by ``layer_growth``: the top-level children of ``model.net``, with every
    ``nn.Sequential`` among them expanded into its children (recursively, up to ``max_depth``)."""

    def walk(module: nn.Module, prefix: str, depth: int) -> list[str]:
        out = []
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if _is_container(child):
                continue
            if isinstance(child, nn.Sequential) and len(child) > 1 and depth < max_depth:
                out += walk(child, f"{full}.", depth + 1)
            else:
                out.append(full)
        return out

    return walk(layer_root(model), "", 1)


def matched_noise(x_clean: np.ndarray, x_adv: np.ndarray, seed: int = 0) -> np.ndarray:
    """Random-sign noise of the same per-image L∞ size as ``x_adv - x_clean``, clipped to [0, 1].

    Every pixel moves by ±ε (ε = that image's largest adversarial change), so the noise has the same L∞ norm
    as the attack and, for sign attacks such as FGSM, about the same L2 norm too.
    """
    x_clean = np.asarray(x_clean, np.float32)
    x_adv = np.asarray(x_adv, np.float32)
    if x_clean.shape != x_adv.shape:
        raise ValueError(f"clean {x_clean.shape} and adversarial {x_adv.shape} images differ in shape")
    eps = np.abs(x_adv - x_clean).reshape(len(x_clean), -1).max(1) if len(x_clean) else np.zeros(0, np.float32)
    rng = np.random.default_rng(seed)
    sign = rng.integers(0, 2, size=x_clean.shape).astype(np.float32) * 2 - 1
    return np.clip(x_clean + sign * eps.reshape(-1, *([1] * (x_clean.ndim - 1))), 0, 1).astype(np.float32)


def layer_growth(model: Classifier, x_clean: np.ndarray, x_adv: np.ndarray, x_noise: np.ndarray | None = None,
                 layers: Sequence[str] | None = None, batch_size: int = 32, seed: int = 0,
                 progress: ProgressFn | None = None) -> LayerGrowth:
    """How much the adversarial perturbation, and random noise of the same L∞ size, change each layer.

    After Szegedy et al. (2014), "Intriguing properties of neural networks": small input perturbations can
    grow through the layers. Per image and layer, ``||f_l(x') - f_l(x)|| / ||f_l(x)||``; then the mean over
    images. Clean, adversarial and noisy images go through the network as one concatenated batch (one
    forward pass per batch, with hooks on ``layers``, default ``growth_layers(model)``). ``x_noise`` defaults
    to ``matched_noise(x_clean, x_adv, seed)``.
    """
    from explorer.inference import as_tensor

    x_clean = np.asarray(x_clean, np.float32)
    x_adv = np.asarray(x_adv, np.float32)
    if x_noise is None:
        x_noise = matched_noise(x_clean, x_adv, seed)
    x_noise = np.asarray(x_noise, np.float32)
    if not (x_clean.shape == x_adv.shape == x_noise.shape):
        raise ValueError("clean, adversarial and noise images must have the same shape")
    names = list(layers) if layers is not None else growth_layers(model)
    for name in names:
        _module(layer_root(model), name)
    n = len(x_clean)
    adv_rel = np.full((n, len(names) + 1), np.nan)
    noise_rel = np.full((n, len(names) + 1), np.nan)
    seen: set[str] = set(names) if n == 0 else set()

    def rel(a: torch.Tensor, b: int) -> tuple[np.ndarray, np.ndarray]:
        a = a.float().reshape(a.shape[0], -1)
        clean, adv, noise = a[:b], a[b: 2 * b], a[2 * b:]
        norm = clean.norm(dim=1)
        ok = norm > 0
        safe = torch.where(ok, norm, torch.ones_like(norm))
        ra = torch.where(ok, (adv - clean).norm(dim=1) / safe, torch.full_like(norm, float("nan")))
        rn = torch.where(ok, (noise - clean).norm(dim=1) / safe, torch.full_like(norm, float("nan")))
        return ra.double().cpu().numpy(), rn.double().cpu().numpy()

    with torch.inference_mode():
        for i in range(0, n, batch_size):
            sl = slice(i, min(n, i + batch_size))
            b = sl.stop - sl.start
            x = as_tensor(np.concatenate([x_clean[sl], x_adv[sl], x_noise[sl]]), model_device(model))
            adv_rel[sl, 0], noise_rel[sl, 0] = rel(x, b)
            acts = _capture(model, x, names)
            seen.update(acts)
            for j, name in enumerate(names, start=1):
                if name in acts:
                    adv_rel[sl, j], noise_rel[sl, j] = rel(acts[name], b)
            del acts
            if progress:
                progress(sl.stop / n, f"layer growth: {sl.stop}/{n} images")
    keep = [0] + [j for j, name in enumerate(names, start=1) if name in seen]
    all_names = ["input", *names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a layer that is all zero for every image: NaN
        adv_mean = np.nanmean(adv_rel[:, keep], axis=0) if n else np.full(len(keep), np.nan)
        noise_mean = np.nanmean(noise_rel[:, keep], axis=0) if n else np.full(len(keep), np.nan)
    return LayerGrowth(tuple(all_names[j] for j in keep), adv_mean, noise_mean, adv_rel[:, keep], noise_rel[:, keep])
