"""Vanilla gradient saliency and the signed gradient.

Simonyan, Vedaldi & Zisserman (2014), "Deep Inside Convolutional Networks: Visualising Image Classification
Models and Saliency Maps", ICLR workshop, https://arxiv.org/abs/1312.6034 : the saliency of a pixel is the
magnitude of the derivative of the class score (the logit, before softmax) with respect to it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from explorer.attributions._common import (
    TargetLike,
    autograd_enabled,
    batch_and_targets,
    target_logit_grad,
    to_numpy,
)


@autograd_enabled
def gradient(model: nn.Module, x: np.ndarray | torch.Tensor, target: TargetLike) -> np.ndarray:
    """The raw input gradient ``d logit[target] / d x`` (N x C x H x W float32, signed), one batched backward."""
    xb, targets = batch_and_targets(model, x, target)
    return to_numpy(target_logit_grad(model, xb, targets))


def signed_gradient(model: nn.Module, x: np.ndarray | torch.Tensor, target: TargetLike) -> np.ndarray:
    """The signed gradient of the target logit (Simonyan et al. 2014 before taking the magnitude).

    Positive where brightening a pixel raises the class score. Its sign, ``sign(-d loss / d x)`` up to the
    softmax coupling, is the direction FGSM steps in, so this is the map to set beside an attack's perturbation.
    Equals Captum's ``Saliency(model).attribute(x, target, abs=False)``.
    """
    return gradient(model, x, target)


def saliency(model: nn.Module, x: np.ndarray | torch.Tensor, target: TargetLike) -> np.ndarray:
    """Vanilla gradient saliency, Simonyan et al. 2014: ``|d logit[target] / d x|`` per pixel and channel.

    The paper reduces over colour channels with a max (``to_display(..., reduce="max")``); the raw
    per-channel magnitudes are returned here. Equals Captum's ``Saliency`` with its default ``abs=True``.
    """
    return np.abs(gradient(model, x, target))
