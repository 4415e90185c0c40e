"""Boundary views of defences: the 2-D lab behind noise averaging, image slices of a noise-averaged model."""

from __future__ import annotations

import numpy as np
import torch

from explorer.boundaries.slices import SliceConfig
from explorer.boundaries.toy import MLPConfig, ToyDataConfig, make_dataset, train_mlp
from explorer.defences.boundaries import ToyNoiseAverage, defended_grid, defended_slice, speckles


def test_noise_averaged_toy_mlp_smooths_the_grid():
    data = make_dataset(ToyDataConfig("moons", n=200, noise=0.25, seed=0))
    model = train_mlp(data, MLPConfig(depth=3, width=64, steps=400, seed=0)).model
    plain = defended_grid(model, "none", resolution=61)
    smooth = defended_grid(model, "noise", n=64, sigma=0.4, resolution=61)
    # zero noise is the model itself
    torch.testing.assert_close(torch.softmax(ToyNoiseAverage(model, 4, 0.0)(torch.zeros(3, 2)), 1),
                               torch.softmax(model(torch.zeros(3, 2)), 1))
    # averaging makes the input gradient smaller on average (a smoother map) and the boundary no longer
    g_plain = np.linalg.norm(plain.grad, axis=-1).mean()
    g_smooth = np.linalg.norm(smooth.grad, axis=-1).mean()
    assert g_smooth < g_plain
    assert len(smooth.contour) <= len(plain.contour) + 5


def test_defended_slice_on_the_same_plane():
    from explorer.models import load_model
    from explorer.models.data import load_digits_split

    base = load_model("digits-cnn")
    x = load_digits_split().x_test[3]
    plain, smooth = defended_slice(base, x, None, SliceConfig(extent=0.6, resolution=21), n=16, sigma=0.25)
    assert plain.pred.shape == smooth.pred.shape == (21, 21)
    assert speckles(smooth.pred) <= speckles(plain.pred) + 2
    assert speckles(np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]])) == 1
