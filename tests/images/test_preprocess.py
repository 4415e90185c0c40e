"""to_model_input: channels, resize / centre crop with antialiasing, polarity, the [0, 1] CHW contract."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.images import LoadedImage, load_sample, to_model_input
from explorer.images.core import make_loaded


def upload(pixels: np.ndarray) -> LoadedImage:
    return make_loaded(pixels, name="test.png", source="upload")


def test_contract_dtype_shape_range_and_fresh_array():
    img = load_sample("photo:chelsea")
    x = to_model_input(img, (3, 224, 224), resize=256)
    assert x.dtype == np.float32 and x.shape == (3, 224, 224) and x.flags.c_contiguous
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.05
    x[:] = 0  # writable, and the cached sample is untouched
    assert to_model_input(img, (3, 224, 224), resize=256).max() > 0


def test_rgb_to_luminance_and_gray_to_rgb():
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    x = to_model_input(upload(red), (1, 4, 4), invert="never")
    np.testing.assert_allclose(x, 0.299, atol=1e-6)
    gray = np.full((4, 4, 1), 51, np.uint8)
    x3 = to_model_input(upload(gray), (3, 4, 4))
    assert x3.shape == (3, 4, 4)
    np.testing.assert_allclose(x3, 0.2, atol=1e-6)


def test_same_size_is_not_resampled():
    a = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    x = to_model_input(upload(a), (3, 10, 12))
    assert np.array_equal(x, np.transpose(a, (2, 0, 1)).astype(np.float32) / np.float32(255))


def test_aspect_kept_and_centre_cropped():
    a = np.zeros((100, 200, 3), np.uint8)  # red | green (middle half) | blue
    a[:, :50] = (255, 0, 0)
    a[:, 50:150] = (0, 255, 0)
    a[:, 150:] = (0, 0, 255)
    for resize in (None, 50):
        x = to_model_input(upload(a), (3, 50, 50), resize=resize)
        assert x.shape == (3, 50, 50)
        # Only the green middle survives a square centre crop: nothing was squashed (the outermost
        # columns blend a little with the neighbours through the resampling filter).
        inner = x[:, :, 2:-2]
        np.testing.assert_allclose(inner[1], 1.0, atol=1e-5)
        np.testing.assert_allclose(inner[0], 0.0, atol=1e-5)
        np.testing.assert_allclose(inner[2], 0.0, atol=1e-5)
        assert x[1].mean() > 0.97


def test_resize_then_crop_like_torchvision():
    img = load_sample("photo:rocket")  # 427 x 640
    x = to_model_input(img, (3, 224, 224), resize=256)
    assert x.shape == (3, 224, 224)
    # A crop smaller than the target pads with zeros, as torchvision's CenterCrop does.
    small = to_model_input(upload(np.full((10, 10, 3), 255, np.uint8)), (3, 8, 8), resize=4)
    assert small[:, 2:6, 2:6].min() == pytest.approx(1.0) and small[:, 0, 0].max() == 0.0


def test_downscaling_is_antialiased():
    yy, xx = np.mgrid[:256, :256]
    checker = (((yy + xx) % 2) * 255).astype(np.uint8)[:, :, None]
    x = to_model_input(upload(checker), (1, 8, 8), invert="never")
    np.testing.assert_allclose(x, 0.5, atol=0.02)  # area average, not aliased 0/1 samples
    photo = to_model_input(load_sample("photo:astronaut"), (1, 8, 8), invert="never")
    assert photo.shape == (1, 8, 8) and 0.0 <= photo.min() and photo.max() <= 1.0


def test_upscaling_a_digit():
    x = to_model_input(load_sample("digits:3"), (1, 28, 28))
    assert x.shape == (1, 28, 28) and 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5


def ink_on_paper(dark_on_light: bool) -> np.ndarray:
    a = np.zeros((64, 64), np.uint8)
    a[16:48, 24:40] = 255  # a "1" stroke in the centre (columns 3-4 at 8 x 8)
    return (255 - a if dark_on_light else a)[:, :, None]


def test_auto_invert_makes_dark_ink_white_on_black():
    x = to_model_input(upload(ink_on_paper(True)), (1, 8, 8))
    assert x[0, 0, 0] < 0.05 and x[0, 4, 4] > 0.5  # paper -> black, ink -> white
    y = to_model_input(upload(ink_on_paper(False)), (1, 8, 8))
    np.testing.assert_allclose(x, y, atol=1e-6)  # already white on black: left alone


def test_invert_options():
    paper = upload(ink_on_paper(True))
    never = to_model_input(paper, (1, 8, 8), invert="never")
    always = to_model_input(paper, (1, 8, 8), invert="always")
    assert never[0, 0, 0] > 0.95
    np.testing.assert_allclose(always, 1.0 - never, atol=1e-6)
    # Three channels: "auto" never inverts (photos keep their colours).
    rgb = to_model_input(paper, (3, 8, 8))
    assert rgb[:, 0, 0].min() > 0.95
    digit = load_sample("digits:7")
    np.testing.assert_array_equal(to_model_input(digit, (1, 8, 8), invert="always"),
                                  np.float32(1.0) - digit.exact)
    with pytest.raises(ValueError, match="invert"):
        to_model_input(paper, (1, 8, 8), invert="sometimes")


def test_plain_arrays_accepted():
    gray2d = np.full((16, 16), 255, np.uint8)
    assert to_model_input(gray2d, (1, 8, 8), invert="never").min() == pytest.approx(1.0)
    floats = np.full((16, 16, 3), 0.25, np.float32)
    np.testing.assert_allclose(to_model_input(floats, (3, 8, 8)), 0.25, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 8, 8), (1, 0, 8), (8, 8)])
def test_bad_input_shapes_rejected(shape):
    with pytest.raises(ValueError, match="input_shape"):
        to_model_input(np.zeros((4, 4), np.uint8), shape)


def test_bad_image_arrays_rejected():
    with pytest.raises(ValueError, match="image"):
        to_model_input(np.zeros((4, 4, 4), np.uint8), (3, 4, 4))
    with pytest.raises(ValueError, match="dtype"):
        to_model_input(np.zeros((4, 4), np.int16), (1, 4, 4))
