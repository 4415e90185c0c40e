"""Small models with known structure for the attribution tests (weights from a forked, seeded RNG)."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from explorer.models import Classifier


def seeded(build, seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def make_linear(shape=(1, 8, 8), classes: int = 10) -> Classifier:
    """logits = W @ flatten(x) + b, mean 0 std 1: the input gradient of class c is exactly W[c]."""
    net = seeded(lambda: nn.Sequential(OrderedDict(flatten=nn.Flatten(),
                                                   fc=nn.Linear(int(torch.tensor(shape).prod()), classes))))
    return Classifier(net, model_id="test-linear", class_names=[str(i) for i in range(classes)],
                      input_shape=shape, mean=(0.0,), std=(1.0,))


def make_cnn(shape=(3, 12, 12), classes: int = 5, channels_last: bool = False) -> Classifier:
    """A small nonlinear CNN; conv2 outputs 8 x 8 (unpadded 3x3 convs on 12 x 12)."""
    c, h, w = shape

    def build():
        return nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(c, 8, 3), relu1=nn.ReLU(),
            conv2=nn.Conv2d(8, 16, 3), relu2=nn.ReLU(),
            pool=nn.MaxPool2d(2), flatten=nn.Flatten(),
            fc1=nn.Linear(16 * ((h - 4) // 2) * ((w - 4) // 2), 32), relu3=nn.Softplus(),
            fc2=nn.Linear(32, classes),
        ))

    return Classifier(seeded(build, 1), model_id="test-cnn", class_names=[str(i) for i in range(classes)],
                      input_shape=shape, mean=(0.5, 0.4, 0.3)[:c], std=(0.25, 0.2, 0.3)[:c],
                      channels_last=channels_last)


def images(n: int, shape, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def linear_model() -> Classifier:
    return make_linear()


@pytest.fixture(scope="module")
def cnn() -> Classifier:
    return make_cnn()


def assert_untouched(model: nn.Module) -> None:
    assert model.training is False
    assert all(not m.training for m in model.modules())
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
