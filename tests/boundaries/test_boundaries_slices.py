"""Slices through image space: directions, the centre cell, cell-by-cell agreement, the 1-D profile."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from explorer.boundaries.slices import (
    PLANE_KINDS,
    SliceConfig,
    compute_slice,
    ball_section,
    evaluate_plane,
    fgsm_delta,
    linearity_profile,
    loss_gradient,
    off_plane_fraction,
    pgd_delta,
    plane_coords,
    plane_directions,
    predict_class,
    project_to_plane,
    runner_up,
)
from explorer.models.wrapper import Classifier

CLASSES = tuple(f"class {i}" for i in range(10))


@pytest.fixture(scope="module")
def tiny():
    """A seeded tiny CNN on 1 x 8 x 8 images, wrapped (frozen) like every model of the explorer."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(1, 6, 3, padding=1), relu=nn.ReLU(), flatten=nn.Flatten(), fc=nn.Linear(6 * 64, 10),
        ))
    return Classifier(net, model_id="tiny", class_names=CLASSES, input_shape=(1, 8, 8), mean=(0.5,), std=(0.25,))


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).uniform(0.2, 0.8, (1, 8, 8)).astype(np.float32)


def logits_of(model, imgs):
    with torch.inference_mode():
        return model(torch.as_tensor(np.asarray(imgs, np.float32))).numpy()


@pytest.mark.parametrize("kind", PLANE_KINDS)
def test_centre_cell_is_the_prediction(tiny, image, kind):
    plane = plane_directions(tiny, image, None, kind, seed=1, eps=0.1, pgd_steps=3)
    res = evaluate_plane(tiny, image, plane.d1, plane.d2, extent=0.3, resolution=9, return_logits=True)
    assert res.pred.shape == (9, 9) and res.max_prob.shape == (9, 9) and res.logits.shape == (9, 9, 10)
    assert res.centre_pred == predict_class(tiny, image)
    np.testing.assert_allclose(res.logits[4, 4], logits_of(tiny, image[None])[0], atol=1e-5)
    assert plane.d1.shape == plane.d2.shape == image.shape
    assert abs(float(plane.d1.ravel().astype(np.float64) @ plane.d2.ravel())) < 1e-3 * np.linalg.norm(plane.d1) ** 2


def test_plane_equals_cell_by_cell_evaluation(tiny, image):
    plane = plane_directions(tiny, image, 2, "adversarial/random", seed=0)
    res = evaluate_plane(tiny, image, plane.d1, plane.d2, extent=0.9, resolution=7, batch_size=5,
                         return_logits=True)
    coords = plane_coords(0.9, 7)
    np.testing.assert_array_equal(res.coords, coords)
    cells = [(r, c) for r in range(7) for c in range(7)]
    imgs = np.stack([np.clip(image + coords[c] * plane.d1 + coords[r] * plane.d2, 0, 1) for r, c in cells])
    want = logits_of(tiny, imgs)
    got = np.stack([res.logits[r, c] for r, c in cells])
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_array_equal([res.pred[r, c] for r, c in cells], want.argmax(1))
    # The extent is large enough that clipping matters, and clip=False gives other images.
    raw = evaluate_plane(tiny, image, plane.d1, plane.d2, extent=0.9, resolution=7, return_logits=True, clip=False)
    assert not np.allclose(raw.logits, res.logits)


def test_batch_size_and_progress_do_not_change_results(tiny, image):
    plane = plane_directions(tiny, image, 0, "random/random", seed=4)
    calls = []
    a = evaluate_plane(tiny, image, plane.d1, plane.d2, 0.5, 11, batch_size=13, progress=lambda f, t: calls.append(f))
    b = evaluate_plane(tiny, image, plane.d1, plane.d2, 0.5, 11, batch_size=1000)
    np.testing.assert_array_equal(a.pred, b.pred)
    np.testing.assert_allclose(a.max_prob, b.max_prob, atol=1e-6)
    assert len(calls) == int(np.ceil(121 / 13)) and calls[-1] == 1.0 and calls == sorted(calls)


def test_even_resolution_is_refused(tiny, image):
    plane = plane_directions(tiny, image, 0, "random/random")
    with pytest.raises(ValueError, match="odd"):
        evaluate_plane(tiny, image, plane.d1, plane.d2, 0.2, 10)
    with pytest.raises(ValueError):
        plane_directions(tiny, image, 0, "sideways")


def test_adversarial_plane_geometry_and_fgsm_cell(tiny, image):
    label = 3
    plane = plane_directions(tiny, image, label, "adversarial/random", seed=7)
    g = loss_gradient(tiny, image, label)
    np.testing.assert_array_equal(plane.d1, np.sign(g))
    assert np.linalg.norm(plane.d2) == pytest.approx(np.linalg.norm(plane.d1), rel=1e-5)
    assert "L∞" in plane.axis1
    # Seeded: the same seed gives the same random direction, another seed another one.
    np.testing.assert_array_equal(plane.d2, plane_directions(tiny, image, label, "adversarial/random", seed=7).d2)
    assert not np.array_equal(plane.d2, plane_directions(tiny, image, label, "adversarial/random", seed=8).d2)
    # The cell at (eps, 0) is exactly the FGSM image, and the FGSM step lies in the plane at (eps, 0).
    eps = 0.15
    res = evaluate_plane(tiny, image, plane.d1, plane.d2, extent=eps, resolution=3, return_logits=True)
    fg = fgsm_delta(tiny, image, label, eps)
    np.testing.assert_allclose(res.logits[1, 2], logits_of(tiny, np.clip(image + fg, 0, 1)[None])[0], atol=1e-5)
    a, b = project_to_plane(fg, plane.d1, plane.d2)
    assert a == pytest.approx(eps, abs=1e-6) and b == pytest.approx(0.0, abs=1e-6)
    assert off_plane_fraction(fg, plane.d1, plane.d2) < 1e-6


def test_pgd_plane_uses_the_given_delta(tiny, image):
    label = 1
    delta = pgd_delta(tiny, image, label, eps=0.1, steps=5)
    assert np.abs(delta).max() <= 0.1 + 1e-6 and ((image + delta) >= -1e-6).all()
    plane = plane_directions(tiny, image, label, "pgd/random", delta=delta, seed=2)
    m = np.abs(delta).max()
    np.testing.assert_allclose(plane.d1, delta / m, rtol=1e-6)
    assert plane.delta is not None
    a, b = project_to_plane(delta, plane.d1, plane.d2)
    assert a == pytest.approx(m, rel=1e-5) and abs(b) < 1e-5
    # Without a delta a small PGD is run here: deterministic.
    p1 = plane_directions(tiny, image, label, "pgd/random", eps=0.1, pgd_steps=5)
    np.testing.assert_allclose(p1.d1, plane.d1, atol=1e-6)
    with pytest.raises(ValueError):
        plane_directions(tiny, image, label, "pgd/random", delta=np.zeros_like(image))


def test_gradient_target_plane(tiny, image):
    label = predict_class(tiny, image)
    plane = plane_directions(tiny, image, label, "gradient/target")
    assert plane.target == runner_up(tiny, image, label) != label
    d = np.sqrt(image.size)
    assert np.linalg.norm(plane.d1) == pytest.approx(d, rel=1e-5)
    assert np.linalg.norm(plane.d2) == pytest.approx(d, rel=1e-5)
    # d1 points down the target's loss: a small step lowers it.
    y = torch.tensor([plane.target])

    def target_loss(img):
        with torch.inference_mode():
            return float(F.cross_entropy(tiny(torch.from_numpy(img[None])), y))

    assert target_loss(image + 1e-3 * plane.d1) < target_loss(image)
    with pytest.raises(ValueError):
        plane_directions(tiny, image, label, "gradient/target", target=label)


def test_model_is_not_mutated_and_global_rng_untouched(tiny, image):
    torch_state = torch.get_rng_state().clone()
    np_state = np.random.get_state()[1].copy()
    for kind in PLANE_KINDS:
        p = plane_directions(tiny, image, 0, kind, seed=5, pgd_steps=2)
        evaluate_plane(tiny, image, p.d1, p.d2, 0.2, 5)
    linearity_profile(tiny, image, 0, extent=0.2, n=11)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert not tiny.training
    assert all(not p.requires_grad and p.grad is None for p in tiny.parameters())


def test_linearity_profile(tiny, image):
    label = predict_class(tiny, image)
    prof = linearity_profile(tiny, image, label, extent=0.1, n=21, seed=0)
    assert prof.t.shape == (21,) and prof.t[10] == 0.0
    assert prof.logits_adv.shape == prof.logits_rand.shape == (21, 10)
    base = logits_of(tiny, image[None])[0]
    np.testing.assert_allclose(prof.logits_adv[10], base, atol=1e-5)
    np.testing.assert_allclose(prof.logits_rand[10], base, atol=1e-5)
    ce = float(F.cross_entropy(torch.from_numpy(base[None]), torch.tensor([label])))
    assert prof.loss_adv[10] == pytest.approx(ce, abs=1e-5)
    # Along sign(∇L) the loss climbs faster than along a random direction of the same length.
    assert prof.loss_adv[-1] - prof.loss_adv[10] > prof.loss_rand[-1] - prof.loss_rand[10]
    assert prof.loss_adv[-1] > prof.loss_adv[10] > prof.loss_adv[0]


def test_ball_sections():
    d1 = np.zeros(8, np.float32)
    d2 = np.zeros(8, np.float32)
    d1[:4], d2[4:] = 1.0, -1.0  # ±1 on disjoint pixels: the L∞ section is the square [-eps, eps]²
    sq = ball_section(d1, d2, 0.2, "linf", n_angles=360)
    assert np.linalg.norm(sq, axis=1).max() == pytest.approx(0.2 * np.sqrt(2), rel=1e-3)  # corners at 45°
    assert np.abs(sq[:, 0]).max() == pytest.approx(0.2, rel=1e-5)
    e1, e2 = np.ones(8, np.float32), np.array([1, -1] * 4, np.float32)  # full ±1 vectors: a diamond
    di = ball_section(e1, e2, 0.2, "linf", n_angles=360)
    assert np.abs(di).sum(1).max() == pytest.approx(0.2, rel=1e-4)
    circ = ball_section(e1, e2, 0.2, "l2")
    np.testing.assert_allclose(np.linalg.norm(circ, axis=1), 0.2 / np.sqrt(8), rtol=1e-5)


def test_compute_slice_markers_and_config(tiny, image):
    cfg = SliceConfig(kind="adversarial/random", extent=0.2, resolution=11, eps=0.1, pgd_steps=4, seed=3)
    assert hash(cfg) == hash(SliceConfig(kind="adversarial/random", extent=0.2, resolution=11, eps=0.1,
                                         pgd_steps=4, seed=3))
    sl = compute_slice(tiny, image, None, cfg)
    assert sl.result.centre_pred == predict_class(tiny, image) == sl.plane.label
    assert sl.markers["FGSM"] == pytest.approx((0.1, 0.0), abs=1e-6) and sl.off_plane["FGSM"] < 1e-6
    assert 0.0 <= sl.off_plane["PGD"] <= 1.0
    assert sl.ball.shape[1] == 2 and np.abs(sl.ball[:, 0]).max() == pytest.approx(0.1, rel=1e-4)
    # On a PGD plane the PGD end point lies on the plane, on the first axis.
    delta = pgd_delta(tiny, image, sl.plane.label, 0.1, 4)
    pl = compute_slice(tiny, image, None, SliceConfig(kind="pgd/random", extent=0.2, resolution=11, eps=0.1),
                       delta=delta)
    assert pl.markers["PGD"][0] == pytest.approx(np.abs(delta).max(), rel=1e-5)
    assert pl.off_plane["PGD"] < 1e-5


@pytest.mark.slow
def test_digits_cnn_slice_centre_and_attack_end_points():
    from explorer.models import load_model
    from explorer.models.data import load_digits_split

    model = load_model("digits-cnn")
    split = load_digits_split()
    x, y = split.x_test[0], int(split.y_test[0])
    plane = plane_directions(model, x, y, "adversarial/random", seed=0)
    res = evaluate_plane(model, x, plane.d1, plane.d2, extent=0.4, resolution=41)
    assert res.pred.shape == (41, 41)
    assert res.centre_pred == predict_class(model, x)
    assert len(np.unique(res.pred)) >= 2  # the slice is wide enough to leave the class region


def test_accepts_an_image_made_under_inference_mode(tiny, image):
    with torch.inference_mode():
        xt = torch.from_numpy(image).clone()
    for kind in PLANE_KINDS:
        sl = compute_slice(tiny, xt, None, SliceConfig(kind=kind, extent=0.2, resolution=5, pgd_steps=2))
        assert sl.result.centre_pred == predict_class(tiny, image)
    assert linearity_profile(tiny, xt, None, n=5).t.shape == (5,)


def test_one_pgd_slices_and_toy_lab_run_the_attacks_library(tiny, image):
    """Issue #10 item 3: the slice's PGD is the attacks library's PGD (bit for bit), and the 2-D lab's PGD is
    the library's step on N x 2 points (no [0, 1] box)."""
    from explorer.attacks import pgd
    from explorer.attacks import pgd_path as library_pgd_path
    from explorer.boundaries.toy import linear_model, pgd_path

    label = int(logits_of(tiny, image[None]).argmax())
    delta = pgd_delta(tiny, image, label, 0.05, steps=5)
    ours = pgd(tiny, image[None], label, 0.05, steps=5, random_start=False, trace=False)
    np.testing.assert_array_equal(delta, (np.asarray(ours.adversarial[0]) - np.asarray(image)).astype(np.float32))
    model = linear_model((1.0, -2.0), 0.5)
    pts = torch.tensor([[3.0, -4.0], [-2.5, 1.0]])  # outside [0, 1]: no box clipping for points
    y = torch.tensor([1, 0])
    for norm in ("linf", "l2"):
        a = pgd_path(model, pts, y, 0.4, norm, steps=4)
        b = library_pgd_path(model, pts, y, 0.4, norm, steps=4)
        assert all(torch.equal(u, v) for u, v in zip(a, b)) and a[-1].min() < 0
