"""Small models and images for the projection tests: the built-in digits CNN and tiny seeded networks."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from explorer.models import Classifier


def seeded(build, seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def tiny_cnn(shape=(3, 16, 16), classes: int = 4, seed: int = 1) -> Classifier:
    c, h, w = shape

    def build():
        return nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(c, 6, 3, padding=1), relu1=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(4),
            flatten=nn.Flatten(), fc1=nn.Linear(6 * 16, 12), relu2=nn.ReLU(), fc2=nn.Linear(12, classes),
        ))

    return Classifier(seeded(build, seed), model_id="tiny-cnn", class_names=[f"c{i}" for i in range(classes)],
                      input_shape=shape, mean=(0.5,) * c, std=(0.25,) * c)


def fgsm(model: Classifier, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
    """x + eps * sign(grad of the cross-entropy), clipped to [0, 1] (the attacks library is not used here)."""
    xt = torch.from_numpy(x).clone().requires_grad_(True)
    loss = F.cross_entropy(model(xt), torch.from_numpy(y), reduction="sum")
    (g,) = torch.autograd.grad(loss, xt)
    return (xt.detach() + eps * g.sign()).clamp(0, 1).numpy().astype(np.float32)


@pytest.fixture(scope="session")
def digits_model() -> Classifier:
    from explorer.models import load_model

    return load_model("digits-cnn", device="cpu")


@pytest.fixture(scope="session")
def digits_batch(digits_model):
    """150 held-out digits, their labels and FGSM (eps 0.2) versions."""
    from explorer.projections.datasets import digits_images

    s = digits_images(150)
    return s.images, s.labels, fgsm(digits_model, s.images, s.labels, 0.2)
