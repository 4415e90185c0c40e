"""Registry entries, the Classifier contract, built-in models and their training."""

import numpy as np
import pytest
import torch

from explorer.models import Classifier, Status, accuracy, availability, get_spec, list_specs, load_model
from explorer.models import builtin
from explorer.models.data import load_digits_split

REQUIRED_TORCHVISION = {"resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "vit_b_16"}


def test_registry_lists_builtin_and_torchvision_models():
    ids = {s.id for s in list_specs()}
    assert {"digits-cnn", "digits-mlp", "mnist-cnn", "mnist-mlp"} <= ids
    assert REQUIRED_TORCHVISION <= ids
    for s in list_specs():
        assert len(s.class_names) == (1000 if s.dataset == "imagenet" else 10)
        assert s.input_shape[0] in (1, 3)


def test_imagenet_class_names_come_from_weights_metadata():
    names = get_spec("resnet18").class_names
    assert names[0] == "tench" and names[281] == "tabby" and names[-1] == "toilet tissue"


def test_unknown_model_is_a_clear_key_error():
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        get_spec("nope")


@pytest.mark.parametrize("model_id", ["digits-cnn", "digits-mlp"])
def test_builtin_digits_models_are_available_offline_and_accurate(model_id):
    assert availability(model_id).status == Status.AVAILABLE
    acc = accuracy(model_id)
    assert acc is not None and acc >= (0.97 if model_id == "digits-cnn" else 0.95)
    # the recorded accuracy is the real one on the held-out split
    split = load_digits_split()
    model = load_model(model_id)
    with torch.inference_mode():
        pred = model(torch.from_numpy(split.x_test)).argmax(1).numpy()
    assert abs((pred == split.y_test).mean() - acc) < 1e-6


def test_classifier_contract_normalises_inside_and_is_frozen():
    model = load_model("digits-cnn")
    assert isinstance(model, Classifier)
    assert not model.training and all(not p.requires_grad for p in model.parameters())
    with pytest.raises(RuntimeError, match="frozen"):
        model.train()
    x = torch.rand(3, 1, 8, 8)
    r = builtin.RECIPES["digits-cnn"]
    with torch.inference_mode():
        expected = model.net((x - r.mean) / r.std)
        assert torch.allclose(model(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="expects N x 1 x 8 x 8"):
        model(torch.rand(1, 3, 8, 8))


def test_input_gradients_never_touch_shared_weights():
    from explorer.inference import input_gradient

    model = load_model("digits-cnn")
    split = load_digits_split()
    g = input_gradient(model, split.x_test[:4], split.y_test[:4])
    assert g.shape == (4, 1, 8, 8) and np.abs(g).sum() > 0
    assert all(p.grad is None for p in model.parameters()) and not model.training


def test_training_is_seeded_and_leaves_global_rng_alone():
    from dataclasses import replace

    short = replace(builtin.RECIPES["digits-cnn"].train, epochs=2)  # the full recipe is checked elsewhere
    state = torch.random.get_rng_state()
    a = builtin.train_builtin("digits-cnn", config=short)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = builtin.train_builtin("digits-cnn", config=short)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    c = builtin.train_builtin("digits-cnn", config=replace(short, seed=1))
    assert not torch.equal(a.state_dict["fc2.weight"], c.state_dict["fc2.weight"])


def test_training_caches_weights_in_the_configured_folder(tmp_path, monkeypatch):
    from explorer.models import registry

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(registry, "ASSETS_WEIGHTS", tmp_path / "no-assets")
    assert availability("digits-mlp").status == Status.NEEDS_TRAINING
    seen = []
    path = registry.train("digits-mlp", progress=lambda f, t: seen.append(f))
    assert path == tmp_path / "weights" / "digits-mlp.safetensors" and path.is_file()
    assert seen[-1] == 1.0 and availability("digits-mlp").status == Status.AVAILABLE
    assert accuracy("digits-mlp") >= 0.95


def test_mnist_models_unavailable_without_mnist(tmp_path, monkeypatch):
    from explorer.models import ModelUnavailable, registry
    from explorer.inference import ModelCache

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("EXPLORER_MNIST_DIR", raising=False)
    monkeypatch.setattr(registry, "ASSETS_WEIGHTS", tmp_path / "no-assets")
    av = availability("mnist-cnn")
    assert av.status == Status.UNAVAILABLE and "prefetch mnist" in av.fix
    with pytest.raises(ModelUnavailable, match="MNIST is not on this machine"):
        ModelCache(2).get("mnist-cnn")
