import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients

from explorer.attributions import integrated_gradients, make_baseline
from explorer.attributions.integrated_gradients import gaussian_blur, quadrature
from tests.attributions.conftest import assert_untouched, images, make_cnn


@pytest.fixture(scope="module")
def digits():
    """The built-in digits CNN (trains itself in seconds if needed) and four held-out digits with labels."""
    from explorer.models import load_model
    from explorer.models.data import load_digits_split

    split = load_digits_split()
    return load_model("digits-cnn", "cpu"), torch.from_numpy(split.x_test[:4]), split.y_test[:4]


@pytest.mark.parametrize("baseline", ["black", "blurred", "noise"])
@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_trapezoid"])
def test_completeness_at_256_steps(digits, baseline, rule):
    model, x, y = digits
    attr, delta = integrated_gradients(model, x, y, steps=256, baseline=baseline, rule=rule, seed=3,
                                       return_delta=True)
    base = make_baseline(x, baseline, seed=3)
    with torch.no_grad():
        expected = (model(x) - model(base)).double().numpy()[np.arange(4), y]
    total = attr.reshape(4, -1).sum(1).astype(np.float64)
    assert np.all(np.abs(expected) > 1.0)  # a real difference to check against
    np.testing.assert_allclose(total, expected, rtol=0.01)
    np.testing.assert_allclose(delta, total - expected, atol=1e-4)
    assert_untouched(model)


def test_linear_model_is_exact(linear_model):
    x = images(2, (1, 8, 8))
    weight = linear_model.net.fc.weight.detach().numpy()
    attr = integrated_gradients(linear_model, x, 5, steps=3, baseline="black")
    np.testing.assert_allclose(attr, x.numpy() * weight[5].reshape(1, 8, 8), atol=1e-6)


def test_matches_captum_gauss_legendre(cnn):
    x = images(3, (3, 12, 12), seed=2)
    target = torch.tensor([1, 0, 4])
    base = make_baseline(x, "blurred")
    ours = integrated_gradients(cnn, x, target, steps=32, baseline="blurred", batch_size=20)
    theirs = IntegratedGradients(cnn).attribute(x.clone(), baselines=base, target=target, n_steps=32,
                                                method="gausslegendre", internal_batch_size=20)
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_trapezoid_weights_sum_to_one_unlike_captums(cnn):
    """Captum's riemann_trapezoid weighs steps by 1/n (halved ends): its sum is (n-1)/n. Ours is n/(n-1) larger."""
    steps = 16
    alphas, weights = quadrature(steps, "riemann_trapezoid")
    assert weights.sum() == pytest.approx(1.0) and alphas[0] == 0 and alphas[-1] == 1
    x = images(2, (3, 12, 12), seed=4)
    ours = integrated_gradients(cnn, x, 3, steps=steps, rule="riemann_trapezoid")
    theirs = IntegratedGradients(cnn).attribute(x.clone(), target=3, n_steps=steps, method="riemann_trapezoid")
    np.testing.assert_allclose(ours, theirs.detach().numpy() * steps / (steps - 1), rtol=1e-4, atol=1e-6)


def test_chunking_does_not_change_the_result_and_reports_progress(cnn):
    x = images(2, (3, 12, 12), seed=5)
    calls = []
    a = integrated_gradients(cnn, x, [0, 1], steps=10, batch_size=7, progress=lambda f, t: calls.append((f, t)))
    b = integrated_gradients(cnn, x, [0, 1], steps=10, batch_size=1)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [round(f, 3) for f, _ in calls] == [0.35, 0.7, 1.0]
    assert "Integrated Gradients" in calls[-1][1]


def test_baselines():
    x = images(2, (3, 12, 12), seed=6)
    assert torch.equal(make_baseline(x, "black"), torch.zeros_like(x))
    noise = make_baseline(x, "noise", seed=9)
    assert torch.equal(noise, make_baseline(x, "noise", seed=9))
    assert not torch.equal(noise, make_baseline(x, "noise", seed=8))
    assert 0 <= float(noise.min()) and float(noise.max()) <= 1
    blurred = make_baseline(x, "blurred")
    assert blurred.shape == x.shape and float(blurred.std()) < float(x.std()) / 2
    flat = torch.full((1, 1, 9, 9), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)
    with pytest.raises(ValueError):
        make_baseline(x, "grey")


def test_explicit_baseline_image_and_single_channel():
    model = make_cnn((1, 12, 12))
    x = images(1, (1, 12, 12))
    base = np.full((1, 12, 12), 0.5, np.float32)
    attr, delta = integrated_gradients(model, x, 1, steps=128, baseline=base, return_delta=True)
    assert attr.shape == (1, 1, 12, 12) and abs(delta[0]) < 0.01 * abs(attr.sum()) + 1e-4


def test_noise_baseline_is_a_function_of_seed_and_image_not_batch_position(cnn):
    """Issue #10 item 6: the noise baseline of an image does not depend on the other images of the batch."""
    x = images(3, (3, 12, 12), seed=6)
    together = make_baseline(x, "noise", seed=4)
    for i in range(3):
        np.testing.assert_array_equal(together[i:i + 1].numpy(), make_baseline(x[i:i + 1], "noise", seed=4).numpy())
    attr = integrated_gradients(cnn, x, [0, 1, 2], steps=8, baseline="noise", seed=4)
    alone = integrated_gradients(cnn, x[2:], 2, steps=8, baseline="noise", seed=4)
    np.testing.assert_allclose(attr[2], alone[0], rtol=1e-5, atol=1e-6)
