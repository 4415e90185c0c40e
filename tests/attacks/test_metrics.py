"""Image metrics, the 8-bit check and the random-noise baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.attacks import (
    eight_bit_check,
    fgsm,
    image_metrics,
    l2,
    linf,
    noise_baseline,
    psnr,
    quantize,
    sign_noise,
    ssim,
    to_png_bytes,
    to_uint8,
)
from explorer.attacks.metrics import ssim_win_size
from explorer.attacks.quantize import from_png_bytes


def _img(c=3, h=16, w=16, seed=0):
    return np.random.default_rng(seed).random((c, h, w)).astype(np.float32)


def test_identical_images():
    a = _img()
    m = image_metrics(a, a.copy())
    assert m.linf == 0 and m.l2 == 0 and math.isinf(m.psnr) and m.ssim == 1.0


def test_sizes_and_psnr():
    a = np.zeros((1, 4, 4), np.float32)
    b = a.copy()
    b[0, 0, 0] = 0.5
    assert linf(a, b) == pytest.approx(0.5) and l2(a, b) == pytest.approx(0.5)
    assert psnr(a, b) == pytest.approx(10 * math.log10(1 / (0.25 / 16)))
    assert linf(torch.from_numpy(a)[None], torch.from_numpy(b)[None]) == pytest.approx(0.5)  # 1 x C x H x W


def test_ssim_on_digits_and_photos():
    assert ssim_win_size(8, 8) == 7 and ssim_win_size(224, 224) == 7
    assert ssim_win_size(6, 9) == 5 and ssim_win_size(4, 4) == 3
    for shape in ((1, 8, 8), (3, 32, 32), (1, 5, 5), (1, 4, 6)):
        a = _img(*shape)
        b = np.clip(a + 0.05 * _img(*shape, seed=1), 0, 1)
        s = ssim(a, b)
        assert -1 <= s < 1
        assert ssim(a, np.clip(a + 0.3 * _img(*shape, seed=2), 0, 1)) < s
    with pytest.raises(ValueError):
        ssim(_img(1, 2, 8), _img(1, 2, 8, seed=1))
    with pytest.raises(ValueError, match="differ in shape"):
        linf(_img(1, 8, 8), _img(1, 8, 9))


def test_quantize_matches_a_png_round_trip():
    for c in (1, 3):
        a = _img(c, 9, 7)
        a[0, 0, 0], a[0, 0, 1] = 0.0, 1.0
        q = quantize(a)
        assert q.dtype == np.float32 and np.abs(q - a).max() <= 0.5 / 255 + 1e-7
        assert np.array_equal(from_png_bytes(to_png_bytes(a)), q)
        assert np.array_equal(to_uint8(q), to_uint8(a))  # idempotent
    t = torch.from_numpy(_img())
    assert isinstance(quantize(t), torch.Tensor)
    assert to_uint8(np.array([-0.2, 0.5 / 255, 1.7])).tolist() == [0, 1, 255]


def test_eight_bit_check(digits_model, digits):
    x, y = digits
    res = fgsm(digits_model, x, y, 0.3)
    chk = eight_bit_check(digits_model, res.adversarial, y)
    assert np.array_equal(chk.pred_float, res.pred)
    assert np.array_equal(chk.success_float, res.success)
    assert np.all(chk.max_change <= 0.5 / 255 + 1e-7)
    assert chk.survives.mean() >= 0.9 * chk.success_float.mean()  # FGSM at 0.3 survives saving
    assert chk.probs_8bit.shape == (len(x), 10)


def test_noise_baseline_is_seeded_and_of_the_same_size(digits_model, digits):
    x, y = digits
    a = noise_baseline(digits_model, x[:1], int(y[0]), 0.1, seed=3, n=16)
    b = noise_baseline(digits_model, x[:1], int(y[0]), 0.1, seed=3, n=16)
    c = noise_baseline(digits_model, x[:1], int(y[0]), 0.1, seed=4, n=16)
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)
    assert np.all(a.linf <= 0.1 + 1e-7)
    interior = (x[0] > 0.1) & (x[0] < 0.9)  # pixels the clip leaves alone move by exactly ε
    moved = np.abs(a.images[:, interior.numpy()] - x[0].numpy()[interior.numpy()])
    assert np.allclose(moved, 0.1, atol=1e-6)
    assert a.flip_rate <= 0.25  # noise barely moves the label where FGSM of the same size flips it
    s = sign_noise((1000,), seed=0)
    assert set(s.unique().tolist()) == {-1.0, 1.0} and abs(float(s.mean())) < 0.1
