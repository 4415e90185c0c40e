"""Peer equivalence: FGSM and PGD (L∞, no random start) are bit-identical to torchattacks and Foolbox.

Same model (a small seeded conv net wrapped in ``Classifier``, mean/std inside, channels_last), same float32
inputs in [0, 1], same labels, same ε / α / steps. The peers are test-only dependencies
(``pip install torchattacks --no-deps``; ``pip install foolbox==3.3.4``); each test skips cleanly without them.
torchattacks calls ``model.eval()`` (``train(False)``, allowed by the frozen Classifier); Foolbox never
changes the model's mode.
"""

from __future__ import annotations

import pytest
import torch

from explorer.attacks import fgsm, mifgsm, pgd


@pytest.fixture(scope="module")
def case(make_rgb, rgb_batch):
    return make_rgb(seed=0, channels_last=True), rgb_batch[0], rgb_batch[1]


@pytest.fixture(scope="module")
def digits_case(digits_model, digits):
    return digits_model, digits[0][:16], digits[1][:16]


@pytest.mark.parametrize("which", ["case", "digits_case"])
@pytest.mark.parametrize("eps", [2 / 255, 8 / 255, 0.1])
def test_fgsm_matches_torchattacks(request, which, eps, untouched):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = request.getfixturevalue(which)
    ours = fgsm(model, x, y, eps).adversarial
    theirs = torchattacks.FGSM(model, eps=eps)(x, y)
    assert torch.equal(ours, theirs)
    assert torch.equal(fgsm(model, x, y, eps, target=(y + 1) % 10).adversarial,
                       _ta_targeted(torchattacks.FGSM(model, eps=eps), x, (y + 1) % 10))
    untouched(model)


@pytest.mark.parametrize("which", ["case", "digits_case"])
@pytest.mark.parametrize("eps,alpha,steps", [(8 / 255, 2 / 255, 10), (0.1, 0.01, 7)])
def test_pgd_matches_torchattacks(request, which, eps, alpha, steps, untouched):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = request.getfixturevalue(which)
    ours = pgd(model, x, y, eps, steps=steps, alpha=alpha, random_start=False).adversarial
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y)
    assert torch.equal(ours, theirs)
    untouched(model)


@pytest.mark.parametrize("which", ["case", "digits_case"])
def test_mifgsm_matches_torchattacks(request, which):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = request.getfixturevalue(which)
    ours = mifgsm(model, x, y, 8 / 255, steps=10, alpha=2 / 255, decay=1.0).adversarial
    theirs = torchattacks.MIFGSM(model, eps=8 / 255, alpha=2 / 255, steps=10, decay=1.0)(x, y)
    assert torch.equal(ours, theirs)


def _ta_targeted(attack, x, target):
    attack.set_mode_targeted_by_label(quiet=True)
    return attack(x, target)


@pytest.mark.parametrize("which", ["case", "digits_case"])
@pytest.mark.parametrize("eps", [2 / 255, 8 / 255, 0.1])
def test_fgsm_matches_foolbox(request, which, eps, untouched):
    fb = pytest.importorskip("foolbox")
    model, x, y = request.getfixturevalue(which)
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    raw, clipped, _ = fb.attacks.FGSM()(fmodel, x, y, epsilons=eps)
    ours = fgsm(model, x, y, eps).adversarial
    assert torch.equal(ours, raw) and torch.equal(ours, clipped)
    untouched(model)


@pytest.mark.parametrize("which", ["case", "digits_case"])
@pytest.mark.parametrize("eps,alpha,steps", [(8 / 255, 2 / 255, 10), (0.1, 0.01, 7)])
def test_pgd_matches_foolbox(request, which, eps, alpha, steps, untouched):
    fb = pytest.importorskip("foolbox")
    model, x, y = request.getfixturevalue(which)
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    attack = fb.attacks.LinfPGD(abs_stepsize=alpha, steps=steps, random_start=False)
    raw, clipped, _ = attack(fmodel, x, y, epsilons=eps)
    ours = pgd(model, x, y, eps, steps=steps, alpha=alpha, random_start=False).adversarial
    assert torch.equal(ours, raw) and torch.equal(ours, clipped)
    untouched(model)


def test_targeted_pgd_matches_foolbox(case):
    fb = pytest.importorskip("foolbox")
    model, x, y = case
    t = (y + 1) % 10
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    raw, _, _ = fb.attacks.LinfPGD(abs_stepsize=2 / 255, steps=5, random_start=False)(
        fmodel, x, fb.criteria.TargetedMisclassification(t), epsilons=8 / 255)
    ours = pgd(model, x, y, 8 / 255, steps=5, alpha=2 / 255, random_start=False, target=t).adversarial
    assert torch.equal(ours, raw)
