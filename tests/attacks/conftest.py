"""Fixtures for the attack tests: the shipped digits CNN, a few held-out digits, a small seeded RGB model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.models.wrapper import Classifier


@pytest.fixture(scope="session")
def digits_model():
    from explorer.models import load_model

    return load_model("digits-cnn", "cpu")


@pytest.fixture(scope="session")
def digits():
    """32 held-out digits (x: 32 x 1 x 8 x 8 in [0, 1], y: int64), all classified correctly by digits-cnn."""
    from explorer.models.data import load_digits_split

    s = load_digits_split()
    return torch.from_numpy(s.x_test[:32].copy()), torch.from_numpy(s.y_test[:32].copy())


def make_rgb_model(seed: int = 0, channels_last: bool = True, size: int = 16) -> Classifier:
    """A small deterministic conv net (seeded, global RNG untouched) wrapped with mean/std inside."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(64, 10),
        )
    net.eval()
    return Classifier(net, model_id=f"rgb-test-{seed}", class_names=[f"c{i}" for i in range(10)],
                      input_shape=(3, size, size), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                      channels_last=channels_last)


@pytest.fixture(scope="session")
def rgb_model():
    return make_rgb_model()


@pytest.fixture(scope="session")
def rgb_batch():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 16, 16, generator=g)
    y = torch.randint(0, 10, (8,), generator=g)
    return x, y


@pytest.fixture(scope="session")
def make_rgb():
    """The factory (the tests import nothing from conftest: pytest runs with --import-mode=importlib)."""
    return make_rgb_model


def _assert_untouched(model) -> None:
    assert model.training is False
    assert all(p.grad is None for p in model.parameters())
    assert all(not p.requires_grad for p in model.parameters())


@pytest.fixture(scope="session")
def untouched():
    """``untouched(model)`` asserts the shared model is still frozen: eval mode, no .grad anywhere."""
    return _assert_untouched
