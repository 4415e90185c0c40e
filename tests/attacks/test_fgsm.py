"""FGSM: the plain formula, ε lists, targeted steps, the L2 variant, inference-mode inputs, a frozen model."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from explorer.attacks import fgsm


def _grad(model, x, cls):
    xg = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(xg), cls, reduction="sum")
    return torch.autograd.grad(loss, xg)[0]


def test_fgsm_equals_the_plain_formula(digits_model, digits, untouched):
    x, y = digits
    for eps in (0.0, 0.05, 0.2, 0.5):
        res = fgsm(digits_model, x, y, eps)
        expected = torch.clamp(x + eps * _grad(digits_model, x, y).sign(), 0, 1)
        assert torch.equal(res.adversarial, expected)
        assert res.adversarial.shape == x.shape and res.adversarial.dtype == torch.float32
    untouched(digits_model)


def test_targeted_fgsm_steps_down_the_target_loss(digits_model, digits):
    x, y = digits
    t = (y + 1) % 10
    res = fgsm(digits_model, x, y, 0.1, target=t)
    expected = torch.clamp(x - 0.1 * _grad(digits_model, x, t).sign(), 0, 1)
    assert torch.equal(res.adversarial, expected)
    with torch.no_grad():
        before = F.cross_entropy(digits_model(x), t, reduction="none")
    assert np.all(res.trace.loss[-1] < before.numpy())
    assert np.array_equal(res.target, t.numpy())


def test_eps_list_is_bit_identical_to_separate_calls(digits_model, digits):
    x, y = digits
    eps = [0.0, 0.01, 1 / 255, 0.1, 0.25, 0.5]
    batch = fgsm(digits_model, x[:1], int(y[0]), eps)
    assert batch.adversarial.shape == (len(eps), 1, 8, 8)
    assert np.allclose(batch.eps, eps)
    for i, e in enumerate(eps):
        single = fgsm(digits_model, x[:1], int(y[0]), e)
        assert torch.equal(batch.adversarial[i: i + 1], single.adversarial)
        assert batch.pred[i] == single.pred[0]


def test_one_eps_per_image(digits_model, digits):
    x, y = digits
    eps = np.linspace(0, 0.3, len(x))
    res = fgsm(digits_model, x, y, eps)
    assert np.all(res.linf <= eps.astype(np.float32) + 1e-7)


def test_result_fields_and_trace(digits_model, digits):
    x, y = digits
    res = fgsm(digits_model, x, y, 0.3)
    n = len(x)
    assert res.attack == "fgsm" and len(res) == n
    assert res.logits.shape == (n, 10) and res.probs.shape == (n, 10)
    assert np.allclose(res.probs.sum(1), 1, atol=1e-5)
    assert res.trace.steps == 1
    for arr in (res.trace.loss, res.trace.margin, res.trace.pred, res.trace.linf, res.trace.l2):
        assert arr.shape == (1, n)
    assert np.array_equal(res.trace.pred[-1], res.pred)
    assert np.array_equal(res.success, res.pred != y.numpy())
    assert np.array_equal(res.margin < 0, res.success)
    assert np.all(res.linf <= 0.3 + 1e-7)
    assert res.success.mean() > 0.5  # a standard digits CNN at ε = 0.3


def test_trace_off_returns_only_images(digits_model, digits):
    x, y = digits
    res = fgsm(digits_model, x, y, 0.1, trace=False)
    assert res.logits is None and res.trace is None and res.pred is None and res.linf is None
    assert torch.equal(res.adversarial, fgsm(digits_model, x, y, 0.1).adversarial)


def test_l2_fgsm_moves_by_eps_before_clipping(digits_model, digits):
    x, y = digits
    mid = torch.full_like(x, 0.5)  # no pixel near the [0, 1] bounds
    res = fgsm(digits_model, mid, y, 0.4, norm="l2")
    assert np.allclose(res.l2, 0.4, atol=1e-5)


def test_inputs_from_inference_mode_and_numpy(digits_model, digits):
    x, y = digits
    ref = fgsm(digits_model, x, y, 0.1).adversarial
    with torch.inference_mode():
        xi = x.clone()
        inside = fgsm(digits_model, xi, y, 0.1).adversarial  # called inside inference mode, too
    assert torch.equal(fgsm(digits_model, xi, y, 0.1).adversarial, ref)
    assert torch.equal(inside, ref)
    assert torch.equal(fgsm(digits_model, x.numpy(), y.numpy(), 0.1).adversarial, ref)
    assert torch.equal(fgsm(digits_model, x[0], int(y[0]), 0.1).adversarial, ref[:1])  # C x H x W


def test_the_callers_images_are_never_modified(digits_model, digits):
    from explorer.attacks import carlini_wagner, deepfool, mifgsm, pgd

    x, y = digits
    xs, arr = x[:4].clone(), x[:4].numpy().copy()
    before, arr_before = xs.clone(), arr.copy()
    fgsm(digits_model, xs, y[:4], 0.2)
    pgd(digits_model, xs, y[:4], 0.2, steps=3)
    mifgsm(digits_model, arr, y[:4].numpy(), 0.2, steps=3)
    deepfool(digits_model, xs, y[:4], steps=3)
    carlini_wagner(digits_model, arr, y[:4], steps=3, search_steps=1)
    assert torch.equal(xs, before) and np.array_equal(arr, arr_before)
    assert not xs.requires_grad and xs.grad is None
