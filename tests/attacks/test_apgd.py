"""APGD-CE (Croce & Hein, 2020) against torchattacks.APGD (3.5.1, loss="ce"): bit-identical on the images it fools.

Same model, same float32 inputs, same labels, ε, steps, ρ. The random start is the peer's own draw: either
passed explicitly (``start=``), or drawn by us from the same seed in the same order (torchattacks seeds the
global CPU RNG with ``manual_seed(seed)``; we draw from ``torch.Generator().manual_seed(seed)``, the same
stream). Where the attack fails, torchattacks returns the clean image and we return the highest-loss iterate,
so those rows are compared by success only. torchattacks reseeds the global RNG: each call here runs inside
``torch.random.fork_rng``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.attacks import AttackConfig, registry, run_attack, sweep
from explorer.attacks.apgd import apgd


def _theirs(torchattacks, model, x, y, **kw):
    with torch.random.fork_rng(devices=[]):
        return torchattacks.APGD(model, loss="ce", **kw)(x, y)


def _start(x, eps, norm, seed):
    """torchattacks' first start point, drawn from a seeded generator (the same stream as its manual_seed)."""
    g = torch.Generator().manual_seed(seed)
    if norm == "Linf":
        t = 2 * torch.rand(x.shape, generator=g) - 1
        return x + eps * torch.ones([x.shape[0], 1, 1, 1]) * t / t.reshape([t.shape[0], -1]).abs().max(
            dim=1, keepdim=True)[0].reshape([-1, 1, 1, 1])
    t = torch.randn(x.shape, generator=g)
    return x + eps * torch.ones([x.shape[0], 1, 1, 1]) * t / ((t ** 2).sum(dim=(1, 2, 3), keepdim=True).sqrt() + 1e-12)


def _compare(ours, theirs, x):
    """Every image is classified correctly at the start: the peer changed exactly the images it fooled."""
    fooled = ~torch.all((theirs == x).reshape(len(x), -1), dim=1)
    assert np.array_equal(ours.success, fooled.numpy()) and fooled.any()
    assert torch.equal(ours.adversarial[fooled], theirs[fooled].detach())
    return fooled


@pytest.mark.parametrize("norm, eps, steps", [("Linf", 0.25, 10), ("Linf", 0.15, 25), ("L2", 4.0, 12)])
def test_apgd_is_bit_identical_to_torchattacks_with_an_explicit_start(make_rgb, rgb_batch, norm, eps, steps,
                                                                      untouched):
    torchattacks = pytest.importorskip("torchattacks")
    model = make_rgb(seed=0, channels_last=True)
    x = rgb_batch[0]
    with torch.inference_mode():
        y = model(x).argmax(1).clone()  # labels the model gets right: every image is attacked
    theirs = _theirs(torchattacks, model, x, y, norm=norm, eps=eps, steps=steps, n_restarts=1, seed=3)
    ours = apgd(model, x, y, eps, steps=steps, norm=norm.lower(), start=_start(x, eps, norm, 3))
    _compare(ours, theirs, x)
    untouched(model)


@pytest.mark.parametrize("norm, eps", [("Linf", 0.1), ("L2", 1.0)])
def test_apgd_same_seed_same_draws_with_restarts_on_digits(digits_model, digits, norm, eps, untouched):
    """No explicit start: our draws follow the peer's order, restarts (on the images not fooled yet) included."""
    torchattacks = pytest.importorskip("torchattacks")
    x, y = digits[0][:16], digits[1][:16]
    theirs = _theirs(torchattacks, digits_model, x, y, norm=norm, eps=eps, steps=10, n_restarts=3, seed=5)
    ours = apgd(digits_model, x, y, eps, steps=10, norm=norm.lower(), restarts=3, seed=5)
    _compare(ours, theirs, x)
    untouched(digits_model)


def test_apgd_stays_in_the_ball_and_beats_its_start(digits_model, digits):
    x, y = digits[0][:16], digits[1][:16]
    res = apgd(digits_model, x, y, 0.1, steps=10)
    assert float((res.adversarial - x).abs().max()) <= 0.1 + 1e-6
    assert res.adversarial.min() >= 0 and res.adversarial.max() <= 1
    assert res.trace.steps == 10 and res.trace.loss.shape == (10, 16)
    l2 = apgd(digits_model, x, y, 0.5, steps=10, norm="l2")
    assert float(l2.l2.max()) <= 0.5 + 1e-5
    # more restarts never fool fewer images (restarts only retry the survivors)
    more = apgd(digits_model, x, y, 0.05, steps=5, restarts=3)
    assert more.success.sum() >= apgd(digits_model, x, y, 0.05, steps=5, restarts=1).success.sum()


def test_apgd_is_registered_and_runs_through_config_and_sweep(digits_model, digits):
    spec = registry.get("apgd")
    assert spec.paper.startswith("Croce") and spec.kind == "budget" and registry.get("apgd-l2").norm == "l2"
    assert {p.name for p in spec.params} >= {"steps", "restarts", "seed", "rho", "momentum"}
    x, y = digits[0][:1], int(digits[1][0])
    cfg = AttackConfig(attack="apgd", eps=0.2, steps=5).with_params(restarts=2)
    assert cfg.params == (("restarts", 2),) and cfg.value("rho") == 0.75
    res = run_attack(digits_model, x, y, cfg)
    direct = apgd(digits_model, x, y, 0.2, steps=5, restarts=2)
    assert torch.equal(res.adversarial, direct.adversarial)
    with pytest.raises(ValueError, match="restarts"):
        run_attack(digits_model, x, y, cfg.with_params(restarts=0))
    with pytest.raises(ValueError, match="no parameter"):
        run_attack(digits_model, x, y, AttackConfig(attack="apgd", params=(("laser", 1),)))
    grid = [0.0, 0.05, 0.1, 0.2]
    sw = sweep(digits_model, x, y, cfg, grid, images_at="grid", refine=False)
    for i in (1, 3):  # L∞: a sweep row equals a separate call at that ε (shared draws)
        single = apgd(digits_model, x, y, grid[i], steps=5, restarts=2)
        assert np.array_equal(sw.images[i], single.adversarial[0].numpy())
