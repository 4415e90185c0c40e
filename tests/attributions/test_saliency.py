import numpy as np
import torch
from captum.attr import InputXGradient, Saliency

from explorer.attributions import gradient, gradient_x_input, saliency, signed_gradient
from tests.attributions.conftest import assert_untouched, images


def test_linear_model_gradient_is_the_weight_row(linear_model):
    x = images(3, (1, 8, 8))
    weight = linear_model.net.fc.weight.detach().numpy()
    g = gradient(linear_model, x, [2, 7, 7])
    for i, c in enumerate([2, 7, 7]):
        np.testing.assert_allclose(g[i], weight[c].reshape(1, 8, 8), rtol=0, atol=1e-7)
    row = weight[4].reshape(1, 8, 8)
    np.testing.assert_allclose(saliency(linear_model, x, 4), np.abs(np.broadcast_to(row, g.shape)))
    np.testing.assert_allclose(gradient_x_input(linear_model, x, 4), x.numpy() * weight[4].reshape(1, 8, 8), atol=1e-7)
    assert_untouched(linear_model)


def test_matches_captum(cnn):
    x = images(4, (3, 12, 12), seed=1)
    target = torch.tensor([0, 1, 2, 4])
    ours = signed_gradient(cnn, x, target)
    np.testing.assert_allclose(ours, Saliency(cnn).attribute(x.clone(), target=target, abs=False).numpy(), atol=1e-6)
    np.testing.assert_allclose(saliency(cnn, x, target), Saliency(cnn).attribute(x.clone(), target=target).numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(gradient_x_input(cnn, x, target),
                               InputXGradient(cnn).attribute(x.clone(), target=target).detach().numpy(), atol=1e-6)
    assert_untouched(cnn)


def test_works_inside_inference_mode_and_leaves_input_alone(cnn):
    x = images(2, (3, 12, 12))
    before = x.clone()
    expected = gradient(cnn, x, 1)
    with torch.inference_mode():
        inside = gradient(cnn, x, 1)
        inference_x = x.clone()
    np.testing.assert_array_equal(inside, expected)
    np.testing.assert_array_equal(gradient(cnn, inference_x, 1), expected)  # an inference tensor as input
    assert torch.equal(x, before) and x.grad is None and not x.requires_grad
    # a single C x H x W image and a numpy input
    np.testing.assert_allclose(gradient(cnn, x[0].numpy(), 1), expected[:1], rtol=1e-5, atol=1e-7)
