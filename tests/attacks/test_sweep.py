"""ε sweeps: batched rows equal separate attacks, the flip ε is found and refined inside its grid interval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.attacks import AttackConfig, default_eps_grid, fgsm, sweep


def _first_flip(sw):
    order = np.argsort(sw.eps)
    return next(i for i in order if sw.flipped[i])


def test_default_grids():
    photo, digit = default_eps_grid(True), default_eps_grid(False)
    assert len(photo) == 64 and photo[0] == 0 and photo[-1] == pytest.approx(16 / 255)
    assert len(digit) == 64 and digit[-1] == pytest.approx(0.5)
    assert default_eps_grid(False, n=5, eps_max=0.2).tolist() == pytest.approx([0, 0.05, 0.1, 0.15, 0.2])
    with pytest.raises(ValueError):
        default_eps_grid(True, eps_max=2.0)


def test_fgsm_sweep_rows_are_the_separate_attacks(digits_model, digits):
    x, y = digits
    eps = default_eps_grid(False, n=32)
    sw = sweep(digits_model, x[:1], int(y[0]), AttackConfig(attack="fgsm"), eps, images_at="grid")
    sep = fgsm(digits_model, x[:1], int(y[0]), eps)
    assert torch.equal(torch.from_numpy(sw.images), sep.adversarial)
    for i in (0, 7, 31):
        assert torch.equal(torch.from_numpy(sw.images[i: i + 1]), fgsm(digits_model, x[:1], int(y[0]), eps[i]).adversarial)
    assert np.array_equal(sw.pred, sep.pred)
    assert np.allclose(sw.probs, sep.probs, atol=1e-6)
    assert np.allclose(sw.true_prob, sw.probs[:, int(y[0])])
    assert sw.direction.shape == (1, 8, 8)
    assert np.allclose(sw.linf, sep.linf) and np.allclose(sw.l2, sep.l2)


def test_fgsm_flip_eps_is_refined_inside_the_grid_interval(digits_model, digits):
    x, y = digits
    eps = default_eps_grid(False, n=32)
    checked = 0
    for i in range(6):
        label = int(y[i])
        sw = sweep(digits_model, x[i: i + 1], label, AttackConfig(attack="fgsm"), eps)
        if sw.flip_eps is None:
            continue
        checked += 1
        f = _first_flip(sw)
        lo, hi = sw.flip_bracket
        assert hi == eps[f] and lo == eps[f - 1] and not sw.flipped[f - 1]
        assert lo < sw.flip_eps <= hi
        assert sw.refine_evals > 0
        at = fgsm(digits_model, x[i: i + 1], label, sw.flip_eps)
        assert at.pred[0] != label  # the refined ε does flip
        assert sw.flip_class == sw.pred[f] and sw.flip_class != label
        assert np.allclose(sw.flip_prob, sw.probs[:, sw.flip_class])
    assert checked >= 3


def test_fgsm_flip_eps_reaches_1e4(digits_model, digits):
    x, y = digits
    eps = default_eps_grid(False, n=16)
    sw = sweep(digits_model, x[:1], int(y[0]), AttackConfig(attack="fgsm"), eps)
    assert sw.flip_eps is not None
    # some ε within 1e-4 below the refined flip ε does not flip (the refinement reached its tolerance)
    probes = np.linspace(max(sw.flip_eps - 1e-4, 0), sw.flip_eps, 11)[:-1]
    res = fgsm(digits_model, x[:1], int(y[0]), probes)
    assert np.any(res.pred == int(y[0]))


@pytest.mark.parametrize("attack", ["bim", "pgd", "pgd-l2", "mifgsm"])
def test_iterative_sweep_runs_all_eps_as_one_batch(digits_model, digits, attack):
    x, y = digits
    label = int(y[1])
    eps = np.linspace(0, 0.5, 8) if attack != "pgd-l2" else np.linspace(0, 3.0, 8)
    cfg = AttackConfig(attack=attack, steps=5, seed=2)
    sw = sweep(digits_model, x[1:2], label, cfg, eps, images_at=[eps[3], 0.123])
    assert sw.probs.shape == (8, 10) and sw.margin.shape == (8,)
    assert np.array_equal(sw.flipped, sw.pred != label)
    assert np.array_equal(sw.margin < 0, sw.flipped)
    assert sw.images.shape == (2, 1, 8, 8) and sw.images_eps.tolist() == [eps[3], 0.123]
    size = sw.l2 if attack == "pgd-l2" else sw.linf
    assert np.all(size <= eps * (1 + 1e-5) + 1e-6)
    assert sw.flip_eps is not None
    lo, hi = sw.flip_bracket
    f = _first_flip(sw)
    assert hi == eps[f] and lo < sw.flip_eps <= hi
    assert 0 < sw.refine_evals <= 8


def test_pgd_sweep_with_random_start_is_reproducible(digits_model, digits):
    x, y = digits
    cfg = AttackConfig(attack="pgd", steps=4, seed=5)
    eps = np.linspace(0, 0.4, 6)
    a = sweep(digits_model, x[2:3], int(y[2]), cfg, eps, images_at="grid")
    b = sweep(digits_model, x[2:3], int(y[2]), cfg, eps, images_at="grid")
    assert np.array_equal(a.images, b.images) and a.flip_eps == b.flip_eps


def test_targeted_sweep(digits_model, digits):
    x, y = digits
    label = int(y[0])
    target = (label + 4) % 10
    sw = sweep(digits_model, x[:1], label, AttackConfig(attack="pgd", steps=10, target=target),
               np.linspace(0, 0.5, 12))
    assert sw.flip_class == target and sw.target == target
    assert np.array_equal(sw.flipped, sw.pred == target)
    assert sw.flip_eps is not None and sw.flipped[-1]


def test_no_flip_and_clean_misclassified(digits_model, digits):
    x, y = digits
    sw = sweep(digits_model, x[:1], int(y[0]), AttackConfig(attack="fgsm"), [0.0, 1e-4, 2e-4])
    assert sw.flip_eps is None and sw.flip_bracket is None
    assert sw.flip_class != int(y[0])
    wrong = (int(y[0]) + 1) % 10  # call the clean image something it is not: it "flips" at ε = 0
    sw = sweep(digits_model, x[:1], wrong, AttackConfig(attack="fgsm"), [0.0, 0.1])
    assert sw.flip_eps == 0.0


def test_sweep_checks_its_input(digits_model, digits):
    x, y = digits
    with pytest.raises(ValueError, match="one image"):
        sweep(digits_model, x[:2], 0, AttackConfig(attack="fgsm"), [0.1])
    with pytest.raises(ValueError, match="sweep runs one of"):
        sweep(digits_model, x[:1], int(y[0]), AttackConfig(attack="deepfool"), [0.1])
    with pytest.raises(ValueError, match="between 0 and 1"):
        sweep(digits_model, x[:1], int(y[0]), AttackConfig(attack="fgsm"), [0.1, 1.5])
    with pytest.raises(ValueError, match="true class"):
        sweep(digits_model, x[:1], int(y[0]), AttackConfig(attack="fgsm", target=int(y[0])), [0.1])


def test_default_grid_follows_the_model(digits_model, digits):
    x, y = digits
    sw = sweep(digits_model, x[:1], int(y[0]), AttackConfig(attack="fgsm"))
    assert len(sw.eps) == 64 and sw.eps[-1] == pytest.approx(0.5)
    assert sw.nearest(0.26) == int(np.abs(sw.eps - 0.26).argmin())


def test_image_at_rebuilds_fgsm_and_returns_kept_iterative_images():
    import torch

    from explorer.attacks import AttackConfig, fgsm, sweep
    from explorer.models import load_model
    from explorer.models.data import load_digits_split

    model = load_model("digits-cnn")
    split = load_digits_split()
    x, y = split.x_test[0], int(split.y_test[0])
    sw = sweep(model, x[None], y, AttackConfig("fgsm"), [0.0, 0.05, 0.1], refine=False)
    direct = fgsm(model, torch.from_numpy(x[None]), y, 0.1).adversarial[0].numpy()
    assert np.array_equal(sw.image_at(x, 0.1), direct)
    pgd_sw = sweep(model, x[None], y, AttackConfig("pgd", eps=0.1, steps=3), [0.05, 0.1], refine=False, images_at="grid")
    assert np.array_equal(pgd_sw.image_at(x, 0.1), pgd_sw.images[1])
    with pytest.raises(ValueError, match="no image at"):
        pgd_sw.image_at(x, 0.07)
