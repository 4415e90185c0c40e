import numpy as np
import pytest
import torch

from explorer.attributions import gradient, smoothgrad, smoothgrad_noise
from tests.attributions.conftest import assert_untouched, images


def test_sigma_zero_is_the_plain_gradient(cnn):
    x = images(3, (3, 12, 12))
    np.testing.assert_allclose(smoothgrad(cnn, x, [0, 1, 2], n_samples=8, sigma=0.0), gradient(cnn, x, [0, 1, 2]),
                               rtol=1e-5, atol=1e-6)


def test_batched_equals_one_backward_per_noisy_copy(cnn):
    x = images(2, (3, 12, 12), seed=3)
    targets = [3, 1]
    n, sigma, seed = 10, 0.2, 42
    batched = smoothgrad(cnn, x, targets, n_samples=n, sigma=sigma, seed=seed)
    noise = smoothgrad_noise(x, n, sigma, seed)
    loop = np.zeros_like(batched)
    for s in range(n):
        for i in range(len(x)):
            leaf = (x[i:i + 1] + noise[s, i:i + 1]).requires_grad_(True)
            (g,) = torch.autograd.grad(cnn(leaf)[0, targets[i]], leaf)
            loop[i] += g[0].numpy() / n
    np.testing.assert_allclose(batched, loop, rtol=1e-5, atol=1e-6)
    one_at_a_time = smoothgrad(cnn, x, targets, n_samples=n, sigma=sigma, seed=seed, batch_size=1)
    np.testing.assert_allclose(batched, one_at_a_time, rtol=1e-5, atol=1e-6)
    assert_untouched(cnn)


def test_noise_is_seeded_and_scaled_to_the_image_range(cnn):
    x = images(2, (3, 12, 12)) * 0.5  # range about 0.5
    a = smoothgrad(cnn, x, 0, n_samples=6, sigma=0.3, seed=5)
    np.testing.assert_array_equal(a, smoothgrad(cnn, x, 0, n_samples=6, sigma=0.3, seed=5))
    assert not np.allclose(a, smoothgrad(cnn, x, 0, n_samples=6, sigma=0.3, seed=6))
    noise = smoothgrad_noise(x, 4000, 0.3, 0)
    span = (x.reshape(2, -1).amax(1) - x.reshape(2, -1).amin(1)).numpy()
    np.testing.assert_allclose(noise.std(dim=(0, 2, 3, 4)).numpy(), 0.3 * span, rtol=0.01)


def test_linear_model_smoothgrad_is_the_weight_row(linear_model):
    weight = linear_model.net.fc.weight.detach().numpy()
    out = smoothgrad(linear_model, images(1, (1, 8, 8)), 6, n_samples=7, sigma=0.5)
    np.testing.assert_allclose(out[0], weight[6].reshape(1, 8, 8), atol=1e-6)


def test_progress_between_chunks(cnn):
    calls = []
    smoothgrad(cnn, images(1, (3, 12, 12)), 0, n_samples=10, batch_size=4, progress=lambda f, t: calls.append(f))
    assert calls == pytest.approx([0.4, 0.8, 1.0])


def test_rejects_bad_settings(cnn):
    with pytest.raises(ValueError):
        smoothgrad(cnn, images(1, (3, 12, 12)), 0, n_samples=0)
    with pytest.raises(ValueError):
        smoothgrad(cnn, images(1, (3, 12, 12)), 0, sigma=-1)


def test_matches_captum_noise_tunnel_with_the_same_noise(cnn):
    """Captum draws its noise from the global RNG: seeded with the image's seed (in a fork), it draws our noise."""
    from captum.attr import NoiseTunnel, Saliency

    from explorer.attributions._common import image_seed
    from explorer.attributions.smoothgrad import noise_scale

    x = images(1, (3, 12, 12), seed=2)
    ours = smoothgrad(cnn, x, 1, n_samples=7, sigma=0.2, seed=5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(image_seed(5, x[0]))
        theirs = NoiseTunnel(Saliency(cnn)).attribute(
            x.clone(), nt_type="smoothgrad", nt_samples=7, stdevs=float(noise_scale(x, 0.2).flatten()[0]), target=1,
            abs=False)  # Saliency's default abs=True would average |gradient| instead
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-5, atol=1e-7)


def test_noise_is_a_function_of_seed_and_image_not_batch_position(cnn):
    """Issue #10 item 6: the same image with the same seed gets the same map whatever else is in the batch."""
    x = images(3, (3, 12, 12), seed=4)
    together = smoothgrad(cnn, x, [0, 1, 2], n_samples=6, sigma=0.2, seed=7)
    for i in range(3):
        alone = smoothgrad(cnn, x[i:i + 1], i, n_samples=6, sigma=0.2, seed=7)
        np.testing.assert_allclose(together[i], alone[0], rtol=1e-5, atol=1e-6)
    reordered = smoothgrad(cnn, x.flip(0), [2, 1, 0], n_samples=6, sigma=0.2, seed=7)
    np.testing.assert_allclose(reordered[::-1], together, rtol=1e-5, atol=1e-6)
    noise = smoothgrad_noise(x, 5, 0.2, 7)
    np.testing.assert_array_equal(noise[:, 1:2].numpy(), smoothgrad_noise(x[1:2], 5, 0.2, 7).numpy())
