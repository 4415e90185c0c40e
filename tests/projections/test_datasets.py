"""Image sets: digits in held-out-then-train order, seeded augmented photos, uploads, MNIST when present."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.models.data import find_mnist, load_digits_split
from explorer.projections import available_datasets, load_images, to_model_input

from .conftest import tiny_cnn


def test_digits_held_out_first(digits_model):
    s = load_images("digits", digits_model, n=400)
    split = load_digits_split()
    assert s.images.shape == (400, 1, 8, 8) and s.images.dtype == np.float32 and s.labels.dtype == np.int64
    np.testing.assert_array_equal(s.images[:360], split.x_test)
    np.testing.assert_array_equal(s.labels[360:], split.y_train[:40])
    assert s.sources[0] == "digits test #0" and s.sources[360] == "digits train #0"
    assert not s.labels_are_predictions and s.class_names[3] == "3"
    assert len(load_images("digits", digits_model, n=5000)) == 1797
    assert available_datasets(digits_model)[0] == "digits"


def test_photos_are_seeded_light_augmentations():
    model = tiny_cnn((3, 32, 32))
    a = load_images("photos", model, n=14, seed=5)
    b = load_images("photos", model, n=14, seed=5)
    c = load_images("photos", model, n=14, seed=6)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (14, 3, 32, 32) and 0 <= a.images.min() and a.images.max() <= 1
    np.testing.assert_array_equal(a.images[:6], c.images[:6])  # the un-augmented centre crops come first
    assert not np.array_equal(a.images[6:], c.images[6:])
    assert a.sources[0] == "chelsea" and "augmented" in a.sources[6] and a.labels_are_predictions
    assert a.labels.shape == (14,) and set(a.labels) <= set(range(4))
    assert "photos" in available_datasets(model) and "digits" not in available_datasets(model)
    with pytest.raises(ValueError):
        load_images("photos", tiny_cnn((1, 16, 16)), n=2)


def test_uploads_are_converted_to_the_model_input(digits_model):
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, 25:35] = 255
    grey = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    s = load_images("uploads", digits_model, uploads=[rgb, grey], upload_names=["bar.png", "ramp"])
    assert s.images.shape == (2, 1, 8, 8) and s.sources == ("bar.png", "ramp") and s.labels_are_predictions
    assert s.images[0, 0, :, 3:5].mean() > 0.8 and s.images[0, 0, :, 0].max() < 0.05
    x = to_model_input(grey, (3, 5, 5))
    assert x.shape == (3, 5, 5) and np.allclose(x[0], x[2])
    assert to_model_input(np.ones((3, 20, 20), np.float32), (1, 8, 8)).shape == (1, 8, 8)  # C x H x W input
    assert len(load_images("uploads", digits_model, uploads=[])) == 0
    with pytest.raises(ValueError, match="dataset"):
        load_images("cifar", digits_model)
    with pytest.raises(ValueError, match="expects"):
        load_images("digits", tiny_cnn((1, 16, 16)))


@pytest.mark.skipif(find_mnist() is None, reason="MNIST not found")
def test_mnist_when_present():
    model = tiny_cnn((1, 28, 28), classes=10)
    s = load_images("mnist", model, n=2100)
    assert s.images.shape == (2100, 1, 28, 28) and s.sources[2000] == "mnist train #0"
    assert "mnist" in available_datasets(model)
