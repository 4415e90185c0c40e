"""Grad-CAM on a named convolutional layer of ``model.net`` (of the model itself for a plain ``nn.Module``).

Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra (2017), "Grad-CAM: Visual Explanations from Deep Networks
via Gradient-based Localization", ICCV, https://arxiv.org/abs/1610.02391 :
``L = ReLU(sum_k alpha_k A^k)`` with ``alpha_k = mean_{i,j} d y^c / d A^k_ij``, where ``A`` is the layer's
activation and ``y^c`` the class score before softmax.

Ours rather than Captum's ``LayerGradCam``: it needs no hooks that outlive the call (one forward hook,
removed in ``finally``; the gradient is ``torch.autograd.grad`` with respect to the captured activation, no
backward hooks), applies the paper's ReLU by default (Captum's ``relu_attributions`` defaults to False) and
upsamples bilinearly (Captum's ``interpolate`` defaults to nearest). Its layer maps match Captum's with
``relu_attributions=True``, which the tests check.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.attributions._common import (
    TargetLike,
    autograd_enabled,
    batch_and_targets,
    grad_mode,
    to_numpy,
)
from explorer.models.wrapper import layer_root, model_name


@dataclass(frozen=True)
class GradCamResult:
    layer: str
    layer_map: np.ndarray  # N x h x w: the map at the layer's own resolution (non-negative)
    upsampled: np.ndarray  # N x 1 x H x W: bilinearly resized to the input


def candidate_layers(model: nn.Module) -> list[str]:
    """Names under ``layer_root(model)`` that make sense for Grad-CAM: every Conv2d, and top-level blocks
    holding one."""
    net = layer_root(model)
    convs = [name for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    blocks = [name for name, m in net.named_children()
              if not isinstance(m, nn.Conv2d) and any(isinstance(s, nn.Conv2d) for s in m.modules())]
    return blocks + convs


def default_layer(model: nn.Module) -> str:
    """The registry's ``gradcam_layer`` for the model, else the last Conv2d of ``layer_root(model)``."""
    try:
        from explorer.models import get_spec

        model_id = getattr(model, "model_id", "")
        layer = get_spec(model_id).gradcam_layer if model_id else None
        if layer:
            return layer
    except KeyError:
        pass
    convs = [name for name, m in layer_root(model).named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{model_name(model)} has no Conv2d layer: Grad-CAM needs one")
    return convs[-1]


@autograd_enabled
def gradcam(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    target: TargetLike,
    layer: str | None = None,
    relu: bool = True,
) -> GradCamResult:
    """Grad-CAM (Selvaraju et al. 2017) of the target logit on ``layer_root(model).get_submodule(layer)``.

    One forward pass (a forward hook swaps the layer's output for a detached leaf that requires grad, so
    the backward stops at the layer) and one ``torch.autograd.grad`` of the summed target logits with
    respect to that activation. The hook lives only for this call and acts only on the calling thread's
    forward passes, so other sessions using the shared model meanwhile are unaffected.
    ``layer`` defaults to ``default_layer(model)``.
    """
    name = layer or default_layer(model)
    try:
        module = layer_root(model).get_submodule(name)
    except AttributeError as exc:
        raise ValueError(f"no layer {name!r} in {model_name(model)}") from exc
    xb, targets = batch_and_targets(model, x, target)
    captured: list[torch.Tensor] = []
    owner = threading.get_ident()

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if threading.get_ident() != owner:
            return None  # another session's forward on the shared model while ours runs: leave it alone
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise ValueError(f"layer {name!r} must output an N x K x h x w tensor for Grad-CAM")
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf.clone()  # a non-leaf copy: in-place ops downstream (ReLU(inplace), +=) stay legal

    handle = module.register_forward_hook(hook)
    try:
        with grad_mode():
            logits = model(xb)
            if len(captured) != 1:
                raise ValueError(f"layer {name!r} ran {len(captured)} times in one forward; pick another layer")
            activation = captured[0]
            (grads,) = torch.autograd.grad(logits.gather(1, targets.view(-1, 1)).sum(), activation)
    finally:
        handle.remove()
    with torch.no_grad():
        alpha = grads.mean(dim=(2, 3), keepdim=True)
        cam = (alpha * activation.detach()).sum(1, keepdim=True)
        if relu:
            cam = F.relu(cam)
        up = F.interpolate(cam, size=tuple(xb.shape[-2:]), mode="bilinear", align_corners=False)
        if relu:
            up = up.clamp_min(0)
    return GradCamResult(layer=name, layer_map=to_numpy(cam[:, 0]), upsampled=to_numpy(up))
