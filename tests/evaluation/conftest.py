"""Fixtures for the evaluation tests: a private result store, and constructed models registered by id."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import explorer.runs.store as store_mod
from explorer.device import pick_device
from explorer.inference import model_cache
from explorer.models import get_spec
from explorer.models.registry import ModelSpec, _user_lock, _user_specs, register_user_spec
from explorer.models.wrapper import Classifier


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    """An empty result store (memory + a temporary disk folder) for this test."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(store_mod, "_default", None)
    yield store_mod.default_store()
    store_mod._default = None


class Quantise(nn.Module):
    """A gradient-killing front: rounds each pixel (zero gradient almost everywhere)."""

    def forward(self, x):
        return torch.round(x * 4) / 4


class Noisy(nn.Module):
    """A randomised front: Gaussian noise from its own generator (never the global RNG)."""

    def __init__(self, sigma: float = 0.05) -> None:
        super().__init__()
        self.sigma = sigma
        self.gen = torch.Generator().manual_seed(123)

    def forward(self, x):
        return x + self.sigma * torch.randn(x.shape, generator=self.gen).to(x.device)


@pytest.fixture
def constructed():
    """``install(model_id, front=None, back=None, base="digits-mlp")``: a digits model with a front and/or back
    module, registered under ``model_id`` (spec + the process-wide model cache); removed afterwards."""
    installed = []

    def install(model_id: str, front: nn.Module | None = None, back: nn.Module | None = None,
                base: str = "digits-mlp") -> Classifier:
        inner = model_cache().get(base)
        parts = ([front] if front is not None else []) + [inner] + ([back] if back is not None else [])
        net = nn.Sequential(*parts)
        spec = get_spec(base)
        clf = Classifier(net, model_id=model_id, class_names=spec.class_names, input_shape=spec.input_shape,
                         mean=(0.0,), std=(1.0,))
        register_user_spec(ModelSpec(id=model_id, name=model_id, dataset="digits", family="user",
                                     input_shape=spec.input_shape, class_names=spec.class_names,
                                     description="constructed for a test"))
        cache = model_cache()
        with cache._lock:
            cache._models[(model_id, str(pick_device(None)))] = clf
        installed.append(model_id)
        return clf

    yield install
    cache = model_cache()
    for mid in installed:
        with cache._lock:
            cache._models.pop((mid, str(pick_device(None))), None)
        with _user_lock:
            _user_specs.pop(mid, None)
