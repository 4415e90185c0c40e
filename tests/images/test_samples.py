"""The offline gallery: every listed sample loads with the right shape and label; ids are validated."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from explorer.digest import array_digest
from explorer.images import (DEFAULT_SAMPLE, LoadedImage, Sample, SampleNotFound, list_samples, load_sample,
                             to_model_input)
from explorer.models import data as datasets


def mnist_or_skip():
    if datasets.find_mnist() is None:
        pytest.skip("MNIST not found (set EXPLORER_MNIST_DIR, tests use ../shared/data/mnist)")


def test_list_samples_kinds_and_unique_ids():
    samples = list_samples()
    assert all(isinstance(s, Sample) and s.kind in ("photo", "digits", "mnist") for s in samples)
    ids = [s.id for s in samples]
    assert len(ids) == len(set(ids))
    assert [s.kind for s in samples] == sorted((s.kind for s in samples), key=["photo", "digits", "mnist"].index)
    for kind in ("photo", "digits", "mnist"):
        assert list_samples(kind) == [s for s in samples if s.kind == kind]
    with pytest.raises(ValueError, match="unknown sample kind"):
        list_samples("cats")


def test_photos_ship_with_installed_packages():
    ids = {s.id for s in list_samples("photo")}
    expected = {"photo:chelsea", "photo:coffee", "photo:astronaut", "photo:rocket", "photo:china", "photo:flower"}
    assert expected <= ids
    assert ("photo:grace_hopper" in ids) == (importlib.util.find_spec("matplotlib") is not None)
    for s in list_samples("photo"):
        img = load_sample(s.id)
        assert isinstance(img, LoadedImage)
        assert img.pixels.dtype == np.uint8 and img.pixels.ndim == 3 and img.pixels.shape[2] == 3
        assert min(img.pixels.shape[:2]) >= 256
        assert (img.source, img.sample_id, img.label, img.name) == ("sample", s.id, None, s.name)
        assert img.digest == array_digest(img.pixels)
        assert img.pixels.std() > 10  # a real picture, not a blank
    assert load_sample("photo:chelsea").name == "chelsea (scikit-image)"
    assert load_sample("photo:chelsea").pixels.shape == (300, 451, 3)


def test_digits_gallery_two_per_class_from_the_test_split():
    split = datasets.load_digits_split()
    samples = list_samples("digits")
    assert len(samples) == 20
    assert sorted(s.label for s in samples) == sorted(list(range(10)) * 2)
    for s in samples:
        i = int(s.id.split(":")[1])
        img = load_sample(s.id)
        assert img.pixels.shape == (8, 8, 1) and img.pixels.dtype == np.uint8
        assert img.label == s.label == int(split.y_test[i])
        np.testing.assert_array_equal(img.pixels[..., 0], np.rint(split.x_test[i, 0] * 255).astype(np.uint8))


def test_default_sample_is_a_curated_digit():
    assert DEFAULT_SAMPLE.startswith("digits:")
    assert DEFAULT_SAMPLE in {s.id for s in list_samples("digits")}
    img = load_sample(DEFAULT_SAMPLE)
    assert img.sample_id == DEFAULT_SAMPLE and img.label is not None


def test_every_digits_test_image_reaches_the_model_exactly():
    split = datasets.load_digits_split()
    for i in range(len(split.x_test)):
        img = load_sample(f"digits:{i}")
        x = to_model_input(img, (1, 8, 8))
        assert x.dtype == np.float32 and x.shape == (1, 8, 8)
        assert np.array_equal(x, split.x_test[i]), i  # bit-identical, auto-invert never flips a sample
        assert img.label == int(split.y_test[i])
    # Replicated for a 3-channel model, still exact per channel.
    x3 = to_model_input(load_sample("digits:123"), (3, 8, 8))
    assert all(np.array_equal(x3[c], split.x_test[123, 0]) for c in range(3))


def test_any_valid_index_loads_and_ids_are_canonical():
    img = load_sample("digits:123")
    assert img.sample_id == "digits:123"
    assert load_sample("digits:0123").sample_id == "digits:123"
    n = len(datasets.load_digits_split().x_test)
    assert load_sample(f"digits:{n - 1}").pixels.shape == (8, 8, 1)


def test_samples_are_cached_and_read_only():
    a = load_sample("digits:5")
    assert load_sample("digits:5") is a
    assert load_sample("photo:coffee") is load_sample("photo:coffee")
    with pytest.raises(ValueError):
        a.pixels[0, 0, 0] = 1
    with pytest.raises(ValueError):
        a.exact[0, 0, 0] = 1.0


@pytest.mark.parametrize("bad,fragment", [
    ("nonsense", "expected 'photo:<name>'"),
    ("cats:1", "expected 'photo:<name>'"),
    ("digits:", "expected 'photo:<name>'"),
    ("digits:-1", "expected 'photo:<name>'"),
    ("digits:abc", "must be an index"),
    ("digits:360", "index must be 0..359"),
    ("digits:99999999", "index must be 0..359"),
    ("photo:nope", "photos are chelsea"),
])
def test_unknown_ids_raise_a_clear_key_error(bad, fragment):
    with pytest.raises(KeyError) as info:
        load_sample(bad)
    assert isinstance(info.value, SampleNotFound)
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg and not msg.startswith('"')


def test_mnist_absent_is_empty_and_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_MNIST_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    assert list_samples("mnist") == []
    with pytest.raises(SampleNotFound, match="MNIST is not on this machine"):
        load_sample("mnist:9000")


def test_mnist_gallery_held_out_two_per_class():
    mnist_or_skip()
    images, labels = datasets.load_mnist_arrays()
    samples = list_samples("mnist")
    assert len(samples) == 20
    assert sorted(s.label for s in samples) == sorted(list(range(10)) * 2)
    for s in samples:
        i = int(s.id.split(":")[1])
        assert i >= datasets.MNIST_TRAIN_COUNT
        img = load_sample(s.id)
        assert img.pixels.shape == (28, 28, 1) and img.label == s.label == int(labels[i])
        np.testing.assert_array_equal(img.pixels[..., 0], images[i])


def test_mnist_sample_reaches_the_model_exactly():
    mnist_or_skip()
    split = datasets.load_mnist_split()
    for i in (8000, 9123, 9999):
        x = to_model_input(load_sample(f"mnist:{i}"), (1, 28, 28))
        assert np.array_equal(x, split.x_test[i - datasets.MNIST_TRAIN_COUNT])
    assert load_sample("mnist:5").pixels.shape == (28, 28, 1)  # any valid index loads
    with pytest.raises(SampleNotFound, match="0..9999"):
        load_sample("mnist:10000")
