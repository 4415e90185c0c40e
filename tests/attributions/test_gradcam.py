import numpy as np
import pytest
import torch
import torchvision
from captum.attr import LayerGradCam

from explorer.attributions import attribute, candidate_layers, default_layer, gradcam
from explorer.models import Classifier
from tests.attributions.conftest import assert_untouched, images, make_cnn, seeded


def _no_hooks(model):
    return all(not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
               for m in model.modules())


def test_layer_shape_non_negative_and_matches_captum(cnn):
    x = images(3, (3, 12, 12), seed=1)
    target = torch.tensor([0, 2, 4])
    result = gradcam(cnn, x, target, layer="conv2")
    assert result.layer == "conv2"
    assert result.layer_map.shape == (3, 8, 8)  # conv2's spatial shape, not the input's
    assert result.upsampled.shape == (3, 1, 12, 12)
    assert result.layer_map.min() >= 0 and result.upsampled.min() >= 0
    assert result.layer_map.max() > 0
    theirs = LayerGradCam(cnn, cnn.net.conv2).attribute(x.clone(), target=target, relu_attributions=True)
    np.testing.assert_allclose(result.layer_map, theirs.detach().numpy()[:, 0], rtol=1e-4, atol=1e-6)
    assert _no_hooks(cnn)
    assert_untouched(cnn)


def test_hooks_removed_after_an_error(cnn):
    with pytest.raises(ValueError, match="N x K x h x w"):
        gradcam(cnn, images(1, (3, 12, 12)), 0, layer="fc1")
    with pytest.raises(ValueError, match="no layer"):
        gradcam(cnn, images(1, (3, 12, 12)), 0, layer="nope")
    assert _no_hooks(cnn)


def test_attribute_returns_upsampled_map_and_default_layer(cnn):
    assert default_layer(cnn) == "conv2"  # unknown id: the last Conv2d
    assert candidate_layers(cnn) == ["conv1", "conv2"]
    out = attribute(cnn, images(2, (3, 12, 12)), 1, "gradcam")
    assert out.shape == (2, 1, 12, 12) and out.dtype == np.float32


def test_resnet18_layer4_and_in_place_blocks():
    net = seeded(lambda: torchvision.models.resnet18(weights=None, num_classes=10))
    model = Classifier(net, model_id="resnet18-random", class_names=[str(i) for i in range(10)],
                       input_shape=(3, 96, 96), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                       channels_last=True)
    x = images(2, (3, 96, 96))
    result = gradcam(model, x, [1, 2], layer="layer4")
    assert result.layer_map.shape == (2, 3, 3) and result.upsampled.shape == (2, 1, 96, 96)
    assert result.layer_map.min() >= 0
    # bn2's output feeds an in-place residual add: the captured activation must stay usable
    inner = gradcam(model, x, [1, 2], layer="layer4.1.bn2")
    assert inner.layer_map.shape == (2, 3, 3) and np.isfinite(inner.layer_map).all()
    assert "layer4" in candidate_layers(model) and default_layer(model) == "layer4.1.conv2"
    assert _no_hooks(model)
    assert_untouched(model)


def test_registry_default_layer_for_builtin_cnn():
    model = make_cnn((1, 12, 12))
    model.model_id = "digits-cnn"  # the registry names conv2 for the built-in CNNs
    assert default_layer(model) == "conv2"


def test_hook_leaves_other_threads_forward_passes_alone():
    """While one session's Grad-CAM hook is registered, another thread's gradient on the shared model is exact."""
    import threading

    from torch import nn

    from explorer.attributions import gradient

    class Probe(nn.Module):
        """Identity; when armed, runs a saliency gradient on the same model in another thread mid-forward."""

        def __init__(self):
            super().__init__()
            self.armed, self.result = False, None

        def forward(self, z):
            if self.armed:
                self.armed = False
                worker = threading.Thread(target=lambda: setattr(self, "result", gradient(model, probe_x, 2)))
                worker.start()
                worker.join()
            return z

    model = make_cnn((1, 12, 12))
    probe = Probe()
    model.net.relu2 = nn.Sequential(nn.ReLU(), probe)
    probe_x = images(2, (1, 12, 12), seed=9)
    expected = gradient(model, probe_x, 2)
    probe.armed = True
    gradcam(model, images(1, (1, 12, 12)), 0, layer="conv2")
    assert probe.result is not None
    np.testing.assert_array_equal(probe.result, expected)
    assert _no_hooks(model)


def test_plain_module_follows_the_attacks_contract(cnn):
    """Issue #10 item 6: a plain nn.Module (no ``.net``) is accepted as the attacks accept it; its layers are
    named from the module itself. Only a model without any conv layer gets a (one-line) ValueError."""
    from collections import OrderedDict

    from torch import nn

    plain = cnn.net  # expects normalised input; any [0,1]-in, logits-out module will do
    x = images(2, (3, 12, 12), seed=5)
    wrapped = Classifier(plain, model_id="wrapped", class_names=[str(i) for i in range(5)], input_shape=(3, 12, 12),
                         mean=(0.0,), std=(1.0,))
    assert default_layer(plain) == "conv2" and candidate_layers(plain) == ["conv1", "conv2"]
    ours = gradcam(plain, x, [1, 3])
    np.testing.assert_allclose(ours.layer_map, gradcam(wrapped, x, [1, 3]).layer_map, rtol=1e-5, atol=1e-7)
    assert ours.layer == "conv2" and _no_hooks(plain)
    mlp = seeded(lambda: nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc=nn.Linear(3 * 12 * 12, 5))))
    with pytest.raises(ValueError, match="no Conv2d") as err:
        gradcam(mlp, x, 0)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="no layer"):
        gradcam(plain, x, 0, layer="nope")
