"""The one model interface of the explorer: [0,1] NCHW images in, logits out, normalisation inside.

After Foolbox's idea that the model wrapper owns bounds and preprocessing, so attacks and attributions
work in image space and never see normalised tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Classifier(nn.Module):
    """A frozen image classifier: takes float images in [0, 1], N x C x H x W, returns logits.

    The wrapper normalises with its own ``mean`` / ``std``, is in eval mode, and its parameters do not
    require gradients, so input gradients (``torch.autograd.grad(loss, x)``) never touch shared weights.
    It may be shared by every session of a server: ``train(True)`` is refused.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        model_id: str,
        class_names: Sequence[str],
        input_shape: tuple[int, int, int],
        mean: Sequence[float],
        std: Sequence[float],
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        channels = input_shape[0]
        if len(mean) not in (1, channels) or len(std) not in (1, channels):
            raise ValueError(f"mean/std must have 1 or {channels} values")
        self.net = net
        self.model_id = model_id
        self.class_names = tuple(str(c) for c in class_names)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.channels_last = bool(channels_last)
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))
        nn.Module.train(self, False)
        for p in self.parameters():
            p.requires_grad_(False)
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def train(self, mode: bool = True) -> Classifier:  # noqa: D401 - nn.Module API
        """Refuse train mode: a shared model must never flip (a race between sessions)."""
        if mode:
            raise RuntimeError("Classifier is frozen in eval mode; train the inner network before wrapping")
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{self.model_id} expects N x {' x '.join(map(str, self.input_shape))} images, got {tuple(x.shape)}"
            )
        z = (x - self.mean) / self.std
        if self.channels_last:
            z = z.contiguous(memory_format=torch.channels_last)
        return self.net(z)


def layer_root(model: nn.Module) -> nn.Module:
    """The module whose submodule names address a model's layers: ``model.net`` for a ``Classifier`` (or any
    wrapper holding its network as ``.net``), else the model itself.

    The attacks accept any ``nn.Module`` that maps [0, 1] images to logits; Grad-CAM and feature extraction
    follow the same contract by naming layers from here.
    """
    net = getattr(model, "net", None)
    return net if isinstance(net, nn.Module) else model


def model_name(model: nn.Module) -> str:
    """A model's id for messages: ``model_id`` if it has one, else its class name."""
    return str(getattr(model, "model_id", "") or type(model).__name__)

