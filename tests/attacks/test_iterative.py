"""BIM, PGD (L∞ / L2) and MI-FGSM: ε-ball and [0, 1], targeted runs, seeded random starts, traces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.attacks import bim, mifgsm, pgd
from explorer.attacks.norms import L2_NORM, LINF


@pytest.mark.parametrize("norm,eps", [("linf", [0.05, 0.1, 0.3]), ("l2", [0.25, 0.5, 1.5])])
def test_pgd_stays_in_the_ball_and_the_box(digits_model, digits, norm, eps):
    x, y = digits
    size = LINF if norm == "linf" else L2_NORM
    for e in eps:
        res = pgd(digits_model, x, y, e, steps=10, norm=norm, random_start=True, seed=1)
        adv = res.adversarial
        assert float(adv.min()) >= 0 and float(adv.max()) <= 1
        assert torch.all(size.size(adv - x) <= e * (1 + 1e-5) + 1e-6)
        trace_size = res.trace.linf if norm == "linf" else res.trace.l2
        assert np.all(trace_size <= e * (1 + 1e-5) + 1e-6)
    assert pgd(digits_model, x, y, 0.3, norm=norm).attack == ("pgd" if norm == "linf" else "pgd-l2")


@pytest.mark.parametrize("attack", [bim, mifgsm])
def test_bim_and_mifgsm_stay_in_the_ball(digits_model, digits, attack):
    x, y = digits
    res = attack(digits_model, x, y, 0.1, steps=8)
    assert float(res.adversarial.min()) >= 0 and float(res.adversarial.max()) <= 1
    assert np.all(res.linf <= 0.1 + 1e-7)
    assert res.trace.loss.shape == (8, len(x))


@pytest.mark.parametrize("attack", ["bim", "pgd", "pgd-l2", "mifgsm"])
def test_targeted_attacks_reach_the_target(digits_model, digits, attack, untouched):
    x, y = digits
    t = (y + 3) % 10
    if attack == "pgd-l2":
        res = pgd(digits_model, x, y, 3.0, steps=20, norm="l2", target=t)
    else:
        fn = {"bim": bim, "pgd": pgd, "mifgsm": mifgsm}[attack]
        res = fn(digits_model, x, y, 0.4, steps=20, target=t)
    assert res.success.mean() >= 0.9
    assert np.array_equal(res.success, res.pred == t.numpy())
    assert np.array_equal(res.margin < 0, res.success)
    assert np.median(res.trace.loss[-1]) < np.median(res.trace.loss[0])  # CE to the target goes down
    untouched(digits_model)


def test_untargeted_pgd_fools_a_standard_model(digits_model, digits):
    x, y = digits
    res = pgd(digits_model, x, y, 0.3, steps=20)
    assert res.success.mean() >= 0.95
    assert np.median(res.trace.loss[-1]) > np.median(res.trace.loss[0])


def test_random_start_is_reproducible_and_seeded(digits_model, digits):
    x, y = digits
    state = torch.get_rng_state()
    a = pgd(digits_model, x, y, 0.1, steps=3, seed=7).adversarial
    b = pgd(digits_model, x, y, 0.1, steps=3, seed=7).adversarial
    c = pgd(digits_model, x, y, 0.1, steps=3, seed=8).adversarial
    d = pgd(digits_model, x, y, 0.1, steps=3, generator=torch.Generator().manual_seed(7)).adversarial
    assert torch.equal(a, b) and torch.equal(a, d)
    assert not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never touched
    plain = pgd(digits_model, x, y, 0.1, steps=3, random_start=False).adversarial
    assert torch.equal(plain, pgd(digits_model, x, y, 0.1, steps=3, random_start=False, seed=9).adversarial)


def test_trace_describes_each_step(digits_model, digits):
    x, y = digits
    res = pgd(digits_model, x, y, 0.2, steps=6, random_start=False)
    tr = res.trace
    assert tr.steps == 6
    for arr in (tr.loss, tr.margin, tr.pred, tr.linf, tr.l2):
        assert arr.shape == (6, len(x))
    assert tr.pred.dtype == np.int64
    assert np.array_equal(tr.pred[-1], res.pred)
    assert np.allclose(tr.margin[-1], res.margin)
    assert np.allclose(tr.linf[-1], res.linf) and np.allclose(tr.l2[-1], res.l2)
    # with α = 2.5ε/steps and no random start, the first step moves every pixel by α (before clipping)
    assert np.all(tr.linf[0] <= 2.5 * 0.2 / 6 + 1e-6)


def test_eps_list_runs_one_batch(digits_model, digits):
    x, y = digits
    eps = [0.0, 0.05, 0.1, 0.2]
    res = pgd(digits_model, x[:1], y[:1], eps, steps=5, seed=3)
    assert res.adversarial.shape == (4, 1, 8, 8)
    assert np.all(res.linf <= np.asarray(eps, np.float32) + 1e-7)
    assert torch.equal(res.adversarial[0], x[0])  # ε = 0 leaves the image alone


def test_explicit_alpha_and_caps(digits_model, digits, monkeypatch):
    x, y = digits
    res = bim(digits_model, x, y, 0.3, steps=2, alpha=0.01)
    assert np.all(res.linf <= 0.02 + 1e-6)
    with pytest.raises(ValueError, match="alpha"):
        bim(digits_model, x, y, 0.1, alpha=-1.0)
    monkeypatch.setenv("EXPLORER_MAX_STEPS", "5")
    with pytest.raises(ValueError, match="cap of 5"):
        pgd(digits_model, x, y, 0.1, steps=6)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_per_row_eps_path_gives_the_scalar_path_bits(digits_model, digits, norm):
    """A batch with one ε per row takes the tensor path; the other rows match the one-ε (scalar) call."""
    x, y = digits
    e = 0.1 if norm == "linf" else 0.8
    scalar = pgd(digits_model, x, y, e, steps=5, norm=norm, seed=4).adversarial
    eps = np.full(len(x), e)
    eps[0] = e / 2  # row 0 differs, so the whole batch runs with per-row tensors
    per_row = pgd(digits_model, x, y, eps, steps=5, norm=norm, seed=4).adversarial
    assert torch.equal(per_row[1:], scalar[1:])
    assert not torch.equal(per_row[0], scalar[0])
