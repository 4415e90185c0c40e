"""Layer lists, feature extraction (shapes, batch invariance, hooks removed) and layer growth."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from explorer.models import Classifier
from explorer.projections import (
    default_layer,
    extract_features,
    growth_layers,
    layer_growth,
    layer_names,
    matched_noise,
)

from .conftest import seeded, tiny_cnn


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_digits_cnn_layers_and_default(digits_model):
    choices = layer_names(digits_model)
    assert choices.names == ("conv1", "relu1", "conv2", "relu2", "pool", "flatten", "fc1", "relu3", "dropout", "fc2")
    assert choices.default == "dropout"  # the input of fc2, the last Linear (= relu3's output in eval mode)
    assert choices.names[choices.default_index] == "dropout"


def test_default_is_input_of_last_linear_without_sibling():
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Tanh())
            self.heads = nn.Sequential(OrderedDict(head=nn.Linear(6, 3)))

        def forward(self, z):
            return self.heads(self.body(z) * 2)  # not the output of any module

    model = Classifier(seeded(Head), model_id="head", class_names="abc", input_shape=(3, 2, 2), mean=(0,), std=(1,))
    assert default_layer(model) == "heads.head:in"
    x = np.random.default_rng(0).random((5, 3, 2, 2), dtype=np.float32)
    feats = extract_features(model, x)
    with torch.inference_mode():
        expected = model.net.body(torch.from_numpy(x)) * 2
    np.testing.assert_allclose(feats, expected.numpy(), rtol=1e-6)
    assert "heads.head:in" in layer_names(model).names


def test_feature_shapes_per_layer(digits_model, digits_batch):
    x = digits_batch[0][:20]
    dims = {"conv1": 32 * 64, "relu2": 64 * 64, "pool": 64 * 16, "flatten": 1024, "fc1": 128, "dropout": 128,
            "fc2": 10}
    for layer, d in dims.items():
        f = extract_features(digits_model, x, layer)
        assert f.shape == (20, d) and f.dtype == np.float32
    np.testing.assert_allclose(extract_features(digits_model, x, "fc2"),
                               digits_model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    assert extract_features(digits_model, x, "conv2", reduce="mean").shape == (20, 64)
    pooled = extract_features(digits_model, x, "conv2", max_features=256)  # 64 x 8 x 8 -> 64 x 2 x 2
    assert pooled.shape == (20, 256)
    assert extract_features(digits_model, x[:0], "fc1").shape == (0, 128)


def test_batch_invariance_progress_and_no_leftover_hooks(digits_model, digits_batch):
    x = digits_batch[0][:37]
    calls = []
    a = extract_features(digits_model, x, "relu3", batch_size=5, progress=lambda f, m: calls.append(f))
    b = extract_features(digits_model, x, "relu3", batch_size=64)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # float32 batching differences only
    assert calls[-1] == 1.0 and len(calls) == 8
    assert _hooks(digits_model) == 0
    assert not digits_model.training and not digits_model.net.training


def test_hooks_removed_after_errors(digits_model):
    with pytest.raises(ValueError, match="no layer named"):
        extract_features(digits_model, np.zeros((2, 1, 8, 8), np.float32), "nope")
    with pytest.raises(ValueError):
        extract_features(digits_model, np.zeros((2, 1, 9, 9), np.float32), "fc1")  # wrong input shape
    assert _hooks(digits_model) == 0


def test_growth_layers_expand_sequential_children():
    model = tiny_cnn()
    assert growth_layers(model) == ["conv1", "relu1", "pool", "flatten", "fc1", "relu2", "fc2"]

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
            self.fc = nn.Linear(2 * 4 * 4, 2)

        def forward(self, z):
            return self.fc(self.features(z).flatten(1))

    outer = Classifier(seeded(Outer), model_id="o", class_names="ab", input_shape=(1, 6, 6), mean=(0,), std=(1,))
    assert growth_layers(outer) == ["features.0", "features.1", "fc"]


def _scaled_identity(d: int = 16) -> Classifier:
    """flatten -> 3 * identity -> identity: every layer is linear, so relative changes equal the input's."""
    lin = nn.Linear(d, d, bias=False)
    with torch.no_grad():
        lin.weight.copy_(3 * torch.eye(d))
    net = nn.Sequential(OrderedDict(flatten=nn.Flatten(), scale=lin, same=nn.Identity()))
    return Classifier(net, model_id="identity", class_names=[str(i) for i in range(d)], input_shape=(1, 4, 4),
                      mean=(0,), std=(1,))


def test_layer_growth_on_an_identity_like_net():
    model = _scaled_identity()
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, (12, 1, 4, 4)).astype(np.float32)
    adv = (x + 0.1).astype(np.float32)  # inside [0, 1]: no clipping
    noise = matched_noise(x, adv, seed=3)
    np.testing.assert_allclose(np.abs(noise - x).max(axis=(1, 2, 3)), 0.1, rtol=1e-5)  # same L∞ size
    g = layer_growth(model, x, adv, noise, batch_size=5)
    assert g.layers == ("input", "flatten", "scale", "same")
    expected = np.mean(np.linalg.norm((adv - x).reshape(12, -1), axis=1) / np.linalg.norm(x.reshape(12, -1), axis=1))
    np.testing.assert_allclose(g.adversarial, expected, rtol=1e-5)
    np.testing.assert_allclose(g.noise, g.noise[0], rtol=1e-5)  # noise does not grow either
    assert g.adversarial_per_image.shape == (12, 4)
    zero = layer_growth(model, x, x, x)
    np.testing.assert_allclose(zero.adversarial, 0, atol=0)
    assert _hooks(model) == 0


def test_layer_growth_default_noise_is_seeded_and_adversarial_grows_more(digits_model, digits_batch):
    x, _, adv = digits_batch
    a = layer_growth(digits_model, x[:40], adv[:40], seed=1)
    b = layer_growth(digits_model, x[:40], adv[:40], seed=1)
    np.testing.assert_array_equal(a.noise, b.noise)
    assert a.layers[0] == "input" and a.layers[-1] == "fc2"
    # Szegedy et al.: the attack's change grows through the layers much more than same-size random noise
    assert a.ratio[-1] > 1.5 * a.ratio[0]


def test_hooks_ignore_other_threads_forward_passes(digits_model, digits_batch):
    """A shared model: while one thread extracts features (hooks that stop the forward pass early),
    another thread's full forward passes must neither be interrupted nor recorded."""
    import threading

    x = digits_batch[0][:50]
    with torch.inference_mode():
        expected = digits_model(torch.from_numpy(x)).numpy()
    errors, stop = [], threading.Event()

    def other():
        while not stop.is_set():
            try:
                with torch.inference_mode():
                    out = digits_model(torch.from_numpy(x)).numpy()
            except Exception as exc:  # noqa: BLE001 - an interrupted forward pass is the failure we look for
                errors.append(repr(exc))
                return
            if not np.allclose(out, expected, atol=1e-5):
                errors.append("wrong logits")

    worker = threading.Thread(target=other)
    worker.start()
    try:
        ref = extract_features(digits_model, x, "conv1", batch_size=50)
        for _ in range(20):
            np.testing.assert_allclose(extract_features(digits_model, x, "conv1", batch_size=7), ref, atol=1e-5)
    finally:
        stop.set()
        worker.join()
    assert not errors and _hooks(digits_model) == 0


def test_plain_module_follows_the_attacks_contract():
    """Issue #10 item 6: extract_features, layer_names and layer_growth accept a plain nn.Module (no ``.net``),
    naming layers from the module itself, and give the same features as the wrapped module."""
    wrapped = tiny_cnn()
    plain = wrapped.net
    unit = Classifier(plain, model_id="unit", class_names="abcd", input_shape=(3, 16, 16), mean=(0,), std=(1,))
    x = np.random.default_rng(1).random((6, 3, 16, 16), dtype=np.float32)
    # without a declared input shape the penultimate layer cannot be probed: it is named "<last linear>:in"
    assert default_layer(plain) == "fc2:in" and default_layer(unit) == "relu2"
    assert layer_names(plain).names == (*layer_names(unit).names, "fc2:in")
    np.testing.assert_allclose(extract_features(plain, x), extract_features(unit, x), rtol=1e-6)
    np.testing.assert_allclose(extract_features(plain, x, "relu1", reduce="mean"),
                               extract_features(unit, x, "relu1", reduce="mean"), rtol=1e-6)
    assert extract_features(plain, x[:0], "fc1").shape == (0, 12)
    growth = layer_growth(plain, x, np.clip(x + 0.05, 0, 1))
    assert growth.layers[0] == "input" and "conv1" in growth.layers
    with pytest.raises(ValueError, match="no layer named"):
        extract_features(plain, x, "nope")
    assert _hooks(plain) == 0
