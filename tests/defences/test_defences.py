"""Defences: forward contracts, ensembles, noise averaging, certification, EOT and BPDA (constructed models)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from explorer.defences.ensemble import (
    StackedEnsemble,
    combine_logits,
    ensemble_classifier,
    loop_member_logits,
    mean_surrogate,
    with_backward,
)
from explorer.defences.evaluate import (
    HIDDEN_NOT_ROBUST,
    ThreeWayConfig,
    correct,
    eot_attack_batch,
    hidden_not_robust_check,
    three_way,
)
from explorer.defences.fronts import quantized, straight_through
from explorer.defences.noise import (
    certified_accuracy_curve,
    certify,
    clopper_pearson_lower,
    noise_averaged,
    resampling,
)
from explorer.defences.training import make_lenet
from explorer.models.wrapper import Classifier

SHAPE = (1, 8, 8)


def _net(seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make_lenet(8).eval()


def _clf(net: nn.Module, mid: str = "toy") -> Classifier:
    return Classifier(net, model_id=mid, class_names=[str(i) for i in range(10)], input_shape=SHAPE, mean=(0.3,),
                      std=(0.4,))


def _images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, *SHAPE), generator=torch.Generator().manual_seed(seed))


def _check_contract(model: Classifier, x: torch.Tensor) -> None:
    """[0, 1] N x C x H x W in, N x K finite logits out, frozen, input gradients without touching weights."""
    assert isinstance(model, Classifier)
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    with torch.inference_mode():
        out = model(x)
    assert out.shape == (len(x), 10) and torch.isfinite(out).all()
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xg), torch.zeros(len(x), dtype=torch.long)), xg)
    assert g.shape == x.shape
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(RuntimeError):
        model.train()
    with pytest.raises(ValueError):
        model(torch.rand(2, 1, 9, 9))


@pytest.mark.parametrize("combine", ["mean", "max", "vote"])
def test_ensemble_forward_contract(combine):
    model = ensemble_classifier([_net(i) for i in range(3)], combine, model_id=f"ens-{combine}",
                                class_names=[str(i) for i in range(10)], input_shape=SHAPE, mean=0.3, std=0.4)
    _check_contract(model, _images())


def test_noise_quantize_denoiser_forward_contract():
    base = _clf(_net(0))
    x = _images()
    _check_contract(noise_averaged(base, n=4, sigma=0.2), x)
    _check_contract(quantized(base, levels=2), x)
    from explorer.defences.fronts import denoised
    from explorer.defences.training import make_autoencoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ae = make_autoencoder(8)
    _check_contract(denoised(ae, base), x)


def test_registry_lists_defended_models_as_ordinary_models():
    from explorer.models import get_spec, list_specs

    ids = {s.id for s in list_specs()}
    for mid in ("mnist-lenet-pgd-at", "mnist-lenet-fast-at", "mnist-lenet-fgsm-at", "mnist-lenet-ens25-bootstrap-max",
                "mnist-lenet-ens50-uniform-vote", "digits-lenet-noise", "digits-lenet-denoised",
                "digits-lenet-binarized"):
        assert mid in ids
        assert get_spec(mid).family == "defence"
    assert get_spec("digits-lenet-pgd-at").input_shape == (1, 8, 8)


def test_mean_ensemble_of_identical_members_equals_single_member():
    net = _net(3)
    single = _clf(net)
    ens = ensemble_classifier([net, net, net, net], "mean", model_id="same", class_names=single.class_names,
                              input_shape=SHAPE, mean=0.3, std=0.4)
    x = _images(10)
    with torch.inference_mode():
        a = torch.softmax(single(x), 1)
        b = torch.softmax(ens(x), 1)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    for combine in ("max", "vote"):
        with torch.inference_mode():
            assert torch.equal(ens.net.with_combine(combine)(((x - 0.3) / 0.4)).argmax(1), a.argmax(1))


def test_stacked_forward_matches_a_loop_over_members():
    members = [_net(i) for i in range(5)]
    ens = StackedEnsemble(members)
    z = _images(7)
    with torch.inference_mode():
        torch.testing.assert_close(ens.member_logits(z), loop_member_logits(members, z), atol=1e-5, rtol=1e-5)


def test_max_and_vote_combinations_and_their_gradients():
    # three members, two classes: member logits chosen by hand
    ml = torch.tensor([[[2.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.5]]], requires_grad=True)  # M x N x K
    mx = combine_logits(ml, "max", "exact")
    torch.testing.assert_close(mx, torch.log_softmax(ml[0], -1))  # member 0 is the most confident
    vote = combine_logits(ml, "vote", "exact")
    assert vote.argmax(1).item() == 1  # two of three vote for class 1
    (g,) = torch.autograd.grad(vote[0, 1], ml)
    assert torch.count_nonzero(g) == 0  # the exact gradient of a vote is zero: gradient masking
    st = combine_logits(ml, "vote", "surrogate")
    torch.testing.assert_close(st, vote)  # same value...
    (g2,) = torch.autograd.grad(st[0, 1], ml)
    (g3,) = torch.autograd.grad(combine_logits(ml, "mean")[0, 1], ml)
    torch.testing.assert_close(g2, g3)  # ...the gradient of the mean ensemble


def test_noise_averaging_with_zero_sigma_equals_the_base_model():
    base = _clf(_net(1))
    avg = noise_averaged(base, n=7, sigma=0.0)
    x = _images(9)
    with torch.inference_mode():
        torch.testing.assert_close(torch.softmax(avg(x), 1), torch.softmax(base(x), 1))


def test_noise_averaging_is_seeded_and_fresh_noise_varies():
    base = _clf(_net(1))
    x = _images(4)
    a, b = noise_averaged(base, 8, 0.3, seed=5), noise_averaged(base, 8, 0.3, seed=5)
    with torch.inference_mode():
        assert torch.equal(a(x), b(x)) and torch.equal(a(x), a(x))
        fresh = resampling(a, seed=1)
        assert not torch.equal(fresh(x), fresh(x))


class _Threshold(nn.Module):
    """Class 1 when pixel (0, 0) is above ``t`` (a linear classifier on one pixel), else class 0."""

    def __init__(self, t: float) -> None:
        super().__init__()
        self.t = t

    def forward(self, x):
        s = (x[:, 0, 0, 0] - self.t) * 1e4
        return torch.stack([-s, s], 1)


def test_certified_radius_against_a_hand_computation():
    x = torch.full((1, 1, 2, 2), 0.5)
    # a constant classifier: every sample votes class 1, so p_lower = alpha^(1/n) in closed form
    const = _Threshold(-10.0)
    n, alpha, sigma = 1000, 0.001, 0.25
    cert = certify(const, x, sigma, n0=50, n=n, alpha=alpha, seed=0)
    p_hand = alpha ** (1.0 / n)
    assert cert.pred[0] == 1
    assert cert.p_lower[0] == pytest.approx(p_hand, rel=1e-9)
    assert cert.radius[0] == pytest.approx(sigma * norm.ppf(p_hand), rel=1e-6)
    # a threshold at 0.4 with σ = 0.25: the exact smoothed probability is Φ(0.1 / 0.25); the certificate uses the
    # observed count and must equal σ·Φ⁻¹(Clopper–Pearson lower bound) of it, below the exact radius 0.1
    thr = _Threshold(0.4)
    cert = certify(thr, x, sigma, n0=100, n=4000, alpha=alpha, seed=1)
    k = int(cert.counts[0, 1])
    assert cert.pred[0] == 1
    assert cert.radius[0] == pytest.approx(sigma * norm.ppf(clopper_pearson_lower(k, 4000, alpha)), rel=1e-9)
    assert 0.0 < cert.radius[0] < 0.1
    assert k / 4000 == pytest.approx(norm.cdf(0.1 / 0.25), abs=0.03)
    # far below the threshold the smoothed classifier predicts 0; near it (p_A ≈ ½) it abstains
    near = certify(_Threshold(0.5), x, sigma, n0=100, n=500, alpha=alpha, seed=2)
    assert near.pred[0] == -1 and near.radius[0] == 0.0
    radii, acc = certified_accuracy_curve(cert, [1], [0.0, 0.05, 0.2])
    assert acc.tolist() == [1.0, float(cert.radius[0] >= 0.05), 0.0]


class _RandomSwitch(nn.Module):
    """Each forward uses linear model A or B (a fair coin per call, from a private generator)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, seed: int) -> None:
        super().__init__()
        self.a, self.b = a, b
        self.gen = torch.Generator().manual_seed(seed)

    def logits_with(self, x, w):
        return x.flatten(1) @ w

    def forward(self, x):
        n = len(x)
        pick = torch.rand(n, generator=self.gen) < 0.5
        return torch.where(pick[:, None], self.logits_with(x, self.a), self.logits_with(x, self.b))


def test_eot_recovers_the_randomised_models_expected_gradient():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    x = torch.rand(1, 1, 2, 2, generator=g)
    y = torch.tensor([0])
    ce = torch.nn.functional.cross_entropy

    def grad_of(fn):
        xg = x.clone().requires_grad_(True)
        (gr,) = torch.autograd.grad(fn(xg), xg)
        return gr.flatten()

    lin = _RandomSwitch(a, b, 0)
    expected = 0.5 * (grad_of(lambda t: ce(lin.logits_with(t, a), y)) + grad_of(lambda t: ce(lin.logits_with(t, b), y)))
    model = _RandomSwitch(a, b, seed=3)
    k = 4000
    rep = x.expand(k, *x.shape[1:]).clone().requires_grad_(True)
    eot = torch.autograd.grad(ce(model(rep), y.repeat(k), reduction="sum") / k, rep)[0].sum(0).flatten()
    one = grad_of(lambda t: ce(model(t), y))  # a single draw: model A's or model B's gradient
    cos = lambda u, v: float(u @ v / (u.norm() * v.norm()))  # noqa: E731
    assert cos(eot, expected) > 0.999
    assert cos(one, expected) < cos(eot, expected)
    # and the explorer's EOT attack moves against a randomised noise-averaged model
    base = _clf(_net(2))
    xs, ys = _images(16, 4), torch.arange(16) % 10
    adv = eot_attack_batch(resampling(noise_averaged(base, 4, 0.1), 0), xs, ys, 0.3,
                           ThreeWayConfig(attack="pgd", steps=5, eot_samples=4), seed=0)
    assert float((adv - xs).abs().max()) <= 0.3 + 1e-6 and float((adv - xs).abs().max()) > 0.1


def _digits_model():
    from explorer.models import load_model

    return load_model("digits-cnn")


def test_bpda_attacks_a_quantising_front_that_plain_pgd_cannot():
    from explorer.attacks import pgd
    from explorer.models.data import load_digits_split

    split = load_digits_split()
    x = torch.from_numpy(split.x_test[:120])
    y = torch.from_numpy(split.y_test[:120])
    base = _digits_model()
    front = quantized(base, levels=2)  # binarise the pixels, then classify
    clean = correct(front, x, y).mean()
    assert clean > 0.8
    eps = 0.3
    plain = pgd(front, x, y, eps, steps=20, random_start=True, seed=0, trace=False).adversarial
    plain_acc = correct(front, plain, y).mean()
    assert plain_acc > clean - 0.1  # zero gradient: PGD never leaves its random start
    res = three_way(front, base, x, y, [eps], ThreeWayConfig(attack="pgd", steps=20))
    assert res.accuracy("white_box")[0] == pytest.approx(plain_acc, abs=0.05)
    assert res.adaptive_method.startswith("BPDA")
    assert res.accuracy("adaptive")[0] < plain_acc - 0.4  # BPDA (identity through the rounding) breaks it
    adv = pgd(straight_through(front, base), x, y, eps, steps=20, random_start=True, seed=0, trace=False).adversarial
    assert correct(front, adv, y).mean() < plain_acc - 0.4


def test_three_way_columns():
    from explorer.models.data import load_digits_split

    base = _digits_model()
    split = load_digits_split()
    x = torch.from_numpy(split.x_test[:60])
    y = torch.from_numpy(split.y_test[:60])
    res = three_way(noise_averaged(base, 4, 0.2), base, x, y, [0.1, 0.3],
                    ThreeWayConfig(attack="pgd", steps=5, eot_samples=2))
    assert res.transfer.shape == (2, 60) and res.clean.shape == (60,)
    assert res.adaptive_method == "EOT"
    assert np.all(res.adaptive <= res.white_box)  # the worst case per sample
    assert res.accuracy("adaptive")[1] <= res.accuracy("adaptive")[0] + 0.1
    d = res.to_dict()
    assert set(d) >= {"eps", "clean", "transfer", "white_box", "adaptive", "adaptive_method", "eot_samples"}
    same = three_way(base, base, x, y, [0.1], ThreeWayConfig(attack="fgsm"))
    np.testing.assert_array_equal(same.transfer, same.white_box)  # transfer from itself is the white-box attack
    assert same.adaptive_method.startswith("white-box")


def test_hidden_not_robust_check_on_constructed_results():
    from explorer.defences.evaluate import ThreeWayResult

    n = 100
    ok = lambda k: np.arange(n) < k  # noqa: E731
    hidden = ThreeWayResult(np.array([0.1, 0.3]), ok(98), np.stack([ok(95), ok(90)]), np.stack([ok(90), ok(85)]),
                            np.stack([ok(40), ok(5)]), "EOT", ThreeWayConfig())
    chk = hidden_not_robust_check(hidden, gap=0.2)
    assert chk.status == "warn" and "ε = 0.3" in chk.detail and "hidden, not robust" in chk.detail
    assert chk.explanation == HIDDEN_NOT_ROBUST and HIDDEN_NOT_ROBUST.count(". ") == 1  # two sentences
    honest = ThreeWayResult(np.array([0.3]), ok(98), ok(60)[None], ok(55)[None], ok(50)[None], "EOT", ThreeWayConfig())
    assert hidden_not_robust_check(honest, gap=0.2).status == "pass"
    # a masked gradient: the naive white-box attack fails, transfer and BPDA do not
    masked = ThreeWayResult(np.array([0.3]), ok(98), ok(25)[None], ok(92)[None], ok(23)[None], "BPDA",
                            ThreeWayConfig())
    chk = hidden_not_robust_check(masked, gap=0.2)
    assert chk.status == "warn" and "naive white-box 0.92" in chk.detail
    # exact gradients (nothing to adapt): a weak transfer is not a hidden gradient
    exact = ThreeWayResult(np.array([0.3]), ok(98), ok(41)[None], ok(19)[None], ok(19)[None],
                           "white-box (deterministic and differentiable: nothing to adapt)", ThreeWayConfig())
    chk = hidden_not_robust_check(exact, gap=0.2)
    assert chk.status == "pass" and "trust the white-box" in chk.detail


def test_ensemble_surrogate_views():
    model = ensemble_classifier([_net(i) for i in range(3)], "max", model_id="m", class_names=[str(i) for i in range(10)],
                                input_shape=SHAPE, mean=0.3, std=0.4)
    x = _images(5)
    ex = with_backward(model, "exact")
    mean = mean_surrogate(model)
    with torch.inference_mode():
        torch.testing.assert_close(ex(x), model(x))
        assert not torch.equal(mean(x), model(x))
    xg = x.clone().requires_grad_(True)
    (g1,) = torch.autograd.grad(model(xg)[:, 0].sum(), xg)
    (g2,) = torch.autograd.grad(mean(xg)[:, 0].sum(), xg)
    torch.testing.assert_close(g1, g2)  # the registry's max ensemble differentiates as the mean ensemble
