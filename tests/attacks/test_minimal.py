"""DeepFool and Carlini-Wagner: they flip the label with a small perturbation, and report its size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.attacks import carlini_wagner, deepfool, fgsm
from explorer.attacks._common import classify


def _half_way_keeps_label(model, x, adv, y) -> float:
    """Share of images still classified as y at half the perturbation (a minimal attack is near the boundary)."""
    half = x + 0.5 * (adv - x)
    return float((classify(model, half).argmax(1) == y).float().mean())


def test_deepfool_finds_a_small_flipping_perturbation(digits_model, digits, untouched):
    x, y = digits
    res = deepfool(digits_model, x, y, steps=50)
    assert res.attack == "deepfool"
    assert res.success.mean() >= 0.95
    assert np.array_equal(res.pred != y.numpy(), res.success)
    assert np.allclose(res.l2, torch.linalg.vector_norm((res.adversarial - x).flatten(1), dim=1).numpy(), atol=1e-5)
    assert _half_way_keeps_label(digits_model, x, res.adversarial, y) >= 0.8
    # smaller than what FGSM needs: the L2 of FGSM at ε = 0.3 (where most digits flip)
    big = fgsm(digits_model, x, y, 0.3)
    assert np.median(res.l2[res.success]) < np.median(big.l2)
    assert res.trace.steps <= 50 and res.trace.loss.shape[1] == len(x)
    untouched(digits_model)


def test_deepfool_linf_and_targeted(digits_model, digits):
    x, y = digits
    res = deepfool(digits_model, x, y, norm="linf", steps=50)
    assert res.success.mean() >= 0.9
    t = (y + 5) % 10
    tres = deepfool(digits_model, x[:16], y[:16], target=t[:16], steps=50)
    assert tres.success.mean() >= 0.8
    assert np.array_equal(tres.success, tres.pred == t[:16].numpy())


def test_carlini_wagner_finds_a_small_flipping_perturbation(digits_model, digits, untouched):
    x, y = digits[0][:12], digits[1][:12]
    res = carlini_wagner(digits_model, x, y, steps=60, lr=0.05, search_steps=2)
    assert res.attack == "cw"
    assert res.success.mean() >= 0.9
    assert float(res.adversarial.min()) >= 0 and float(res.adversarial.max()) <= 1
    assert _half_way_keeps_label(digits_model, x, res.adversarial, y) >= 0.8
    assert res.trace.steps == 120  # every iterate of both search rounds
    untouched(digits_model)


def test_carlini_wagner_targeted(digits_model, digits):
    x, y = digits[0][:8], digits[1][:8]
    t = (y + 1) % 10
    res = carlini_wagner(digits_model, x, y, steps=60, lr=0.05, search_steps=1, c=5.0, target=t)
    assert res.success.mean() >= 0.75
    assert np.array_equal(res.success, res.pred == t.numpy())


def test_minimal_attack_arguments_are_checked(digits_model, digits):
    x, y = digits
    with pytest.raises(ValueError, match="candidates"):
        deepfool(digits_model, x, y, candidates=1)
    with pytest.raises(ValueError, match="search_steps"):
        carlini_wagner(digits_model, x, y, search_steps=0)
