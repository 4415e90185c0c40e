"""Input fronts before a classifier, and the straight-through view used by BPDA.

* :class:`QuantizeFront`: round every pixel to ``levels`` grey levels, then classify. ``torch.round`` has a zero
  gradient almost everywhere, so plain gradient attacks see nothing (gradient masking). With ``bpda=True`` the
  rounding is replaced in the backward pass by the identity (Athalye et al. 2018's Backward Pass Differentiable
  Approximation): the forward is unchanged.
* :class:`DenoiserFront`: a (denoising) autoencoder in front of a classifier (Szegedy et al. noted that
  autoencoders resist better); differentiable end to end.
* :func:`straight_through`: a Classifier whose value is ``model``'s and whose gradient is ``surrogate``'s:
  ``surrogate(x) + (model(x) − surrogate(x)).detach()``. BPDA for any non-differentiable step.
"""

from __future__ import annotations

import torch
from torch import nn

from explorer.models.wrapper import Classifier


class QuantizeFront(nn.Module):
    """``base(round(x·(L−1)) / (L−1))`` with ``L = levels``; ``bpda=True``: identity gradient through the rounding."""

    def __init__(self, base: nn.Module, levels: int = 2, bpda: bool = False) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError("levels must be at least 2")
        self.base = base
        self.levels = int(levels)
        self.bpda = bool(bpda)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.round(x * (self.levels - 1)) / (self.levels - 1)
        return x + (q - x).detach() if self.bpda else q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(self.quantize(x))


class DenoiserFront(nn.Module):
    """``base(clip(autoencoder(x), 0, 1))``."""

    def __init__(self, autoencoder: nn.Module, base: nn.Module) -> None:
        super().__init__()
        self.autoencoder = autoencoder.eval()
        for p in self.autoencoder.parameters():
            p.requires_grad_(False)
        self.base = base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(torch.clamp(self.autoencoder(x), 0, 1))


class StraightThrough(nn.Module):
    """Value of ``model``, gradient of ``surrogate`` (both map the same inputs to logits)."""

    def __init__(self, model: nn.Module, surrogate: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.surrogate = surrogate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.surrogate(x)
        return s + (self.model(x) - s).detach()


def _wrap(inner: nn.Module, like: Classifier, model_id: str) -> Classifier:
    return Classifier(inner, model_id=model_id, class_names=like.class_names, input_shape=like.input_shape,
                      mean=(0.0,), std=(1.0,))


def quantized(base: Classifier, levels: int = 2, bpda: bool = False, model_id: str | None = None) -> Classifier:
    return _wrap(QuantizeFront(base, levels, bpda), base, model_id or f"{base.model_id}+q{levels}")


def denoised(autoencoder: nn.Module, base: Classifier, model_id: str | None = None) -> Classifier:
    return _wrap(DenoiserFront(autoencoder, base), base, model_id or f"{base.model_id}+denoiser")


def straight_through(model: Classifier, surrogate: nn.Module, model_id: str | None = None) -> Classifier:
    return _wrap(StraightThrough(model, surrogate), model, model_id or f"{model.model_id}~bpda")


def bpda_view(model: Classifier) -> Classifier | None:
    """The BPDA view of a defence with a non-differentiable front (None when there is none): quantisation gets
    the identity gradient; a denoiser gets the classifier's own gradient (the front treated as the identity)."""
    inner = model.net
    if isinstance(inner, QuantizeFront):
        return _wrap(QuantizeFront(inner.base, inner.levels, bpda=True), model, f"{model.model_id}~bpda")
    if isinstance(inner, DenoiserFront):
        return straight_through(model, inner.base)
    return None
