import numpy as np
import pytest
import torch
from captum.attr import Occlusion
from torch import nn

from explorer.attributions import occlusion
from explorer.attributions.occlusion import positions
from explorer.models import Classifier
from tests.attributions.conftest import assert_untouched, images

K = (5, 2)  # the decisive pixel (row, column)


class OnePixel(nn.Module):
    """logit 0 = 10 * x[K], logit 1 = 0: only pixel K matters."""

    def forward(self, z):
        return torch.stack([10 * z[:, 0, K[0], K[1]], torch.zeros(len(z))], dim=1)


@pytest.fixture(scope="module")
def one_pixel():
    return Classifier(OnePixel(), model_id="one-pixel", class_names=["a", "b"], input_shape=(1, 8, 8),
                      mean=(0.0,), std=(1.0,))


@pytest.mark.parametrize("output", ["logit", "prob"])
def test_finds_the_single_decisive_pixel(one_pixel, output):
    x = torch.full((1, 1, 8, 8), 0.8)
    attr = occlusion(one_pixel, x, 0, window=1, stride=1, output=output)
    assert attr.shape == (1, 1, 8, 8)
    assert np.unravel_index(attr[0, 0].argmax(), (8, 8)) == K
    assert np.count_nonzero(attr) == 1
    if output == "logit":
        assert attr[0, 0][K] == pytest.approx(8.0)  # 10 * 0.8 - 10 * 0
    else:
        assert attr[0, 0][K] == pytest.approx(1 / (1 + np.exp(-8.0)) - 0.5, rel=1e-5)


def test_larger_windows_average_over_covering_windows(one_pixel):
    x = torch.full((1, 1, 8, 8), 0.5)
    attr = occlusion(one_pixel, x, 0, window=2, stride=1, output="logit")[0, 0]
    # every window covering K drops the logit by 5; pixels are credited the mean drop of their windows
    assert attr[K] == pytest.approx(5.0)
    assert attr.max() == pytest.approx(5.0)
    assert attr[0, 7] == 0 and attr[K[0] - 1, K[1] - 1] > 0


def test_matches_captum_where_the_stride_divides(cnn):
    x = images(2, (3, 12, 12), seed=3)
    target = torch.tensor([1, 3])
    ours = occlusion(cnn, x, target, window=4, stride=2, fill_value=0.5, output="logit", batch_size=5)
    theirs = Occlusion(cnn).attribute(x.clone(), sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2),
                                      baselines=0.5, target=target, perturbations_per_eval=8)
    np.testing.assert_allclose(ours[:, 0], theirs.numpy()[:, 0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(theirs.numpy()[:, 0], theirs.numpy()[:, 2], atol=1e-6)  # same on every channel
    assert_untouched(cnn)


def test_windows_reach_the_edges_and_progress(cnn):
    assert positions(12, 5, 3) == [0, 3, 6, 7]
    assert positions(8, 8, 1) == [0]
    with pytest.raises(ValueError):
        positions(4, 5, 1)
    calls = []
    attr = occlusion(cnn, images(2, (3, 12, 12)), 0, window=5, stride=3, batch_size=10,
                     progress=lambda f, t: calls.append(f))
    assert np.isfinite(attr).all() and attr.shape == (2, 1, 12, 12)
    assert calls[-1] == pytest.approx(1.0) and calls == sorted(calls) and len(calls) == 4  # 16 windows x 2 images
