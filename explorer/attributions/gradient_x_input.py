"""Gradient x input.

Shrikumar, Greenside, Shcherbina & Kundaje (2016), "Not Just a Black Box: Learning Important Features Through
Propagating Activation Differences", https://arxiv.org/abs/1605.01713 : the gradient of the class score
times the input, a first-order estimate of each pixel's contribution relative to an all-zero (black) image.
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
def gradient_x_input(model: nn.Module, x: np.ndarray | torch.Tensor, target: TargetLike) -> np.ndarray:
    """``x * d logit[target] / d x`` in image space ([0, 1] pixels, before the model's normalisation).

    Signed, N x C x H x W float32. Equals Captum's ``InputXGradient`` on the same (image-space) model.
    """
    xb, targets = batch_and_targets(model, x, target)
    return to_numpy(xb * target_logit_grad(model, xb, targets))
