"""The run layer's requests and the defects of issue #10 item 6 that they fix (each test failed before)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explorer.attacks import AttackConfig, pgd, run_attack, sweep
from explorer.models.wrapper import Classifier
from explorer.runs import AttackRequest, SweepRequest, rules, run
from explorer.runs.requests import is_numpy_result


@pytest.fixture(scope="module")
def digit():
    from explorer.digest import array_digest
    from explorer.images import load_sample, to_model_input
    from explorer.models import get_spec

    spec = get_spec("digits-cnn")
    image = load_sample("digits:0")
    x = to_model_input(image, spec.input_shape)
    return x, array_digest(x), int(image.label)


def test_point_config_at_eps_zero_with_an_explicit_alpha_runs_and_matches_the_row(digit):
    from explorer.models import load_model

    x, _, y = digit
    config = rules.sweep_config("pgd", 0.5, steps=5, alpha_frac=0.1)
    point = rules.point_config(config, 0.0)
    model = load_model("digits-cnn")
    res = run_attack(model, x[None], y, point)  # refused before: alpha = 0.0
    sw = sweep(model, x[None], y, config, [0.0, 0.25, 0.5], images_at="grid", refine=False)
    np.testing.assert_array_equal(res.adversarial[0].numpy(), sw.images[0])


def test_pgd_takes_an_explicit_start_point(digit):
    from explorer.models import load_model

    x, _, y = digit
    model = load_model("digits-cnn")
    start = np.clip(x + 0.05, 0, 1)[None].astype(np.float32)
    a = pgd(model, x[None], y, 0.1, steps=3, start=start)
    b = pgd(model, x[None], y, 0.1, steps=3, start=start, seed=99)  # the seed no longer matters
    assert torch.equal(a.adversarial, b.adversarial)
    c = pgd(model, x[None], y, 0.1, steps=3, seed=0)
    assert not torch.equal(a.adversarial, c.adversarial)


def test_default_eps_grid_is_chosen_by_declared_kind_not_channels():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    model = Classifier(net, model_id="three-channel-digits", class_names=[str(i) for i in range(10)],
                       input_shape=(3, 8, 8), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    sw = sweep(model, x, 0, AttackConfig("fgsm"), refine=False)
    assert sw.eps[-1] == pytest.approx(0.5)  # the digit grid; the photo grid would end at 16/255
    assert rules.model_kind(None, (3, 8, 8)) == "small" and rules.model_kind("resnet18") == "photo"
    assert rules.model_kind("digits-cnn") == "small"


def test_requests_return_numpy_only_and_have_stable_digests(digit):
    x, d, y = digit
    req = AttackRequest("digits-cnn", d, y, AttackConfig("pgd", eps=0.2, steps=5), None, x)
    out = run(req)
    assert is_numpy_result(out) and isinstance(out.adversarial, np.ndarray) and out.adversarial.shape == x.shape
    assert req.digest() == AttackRequest("digits-cnn", d, y, AttackConfig("pgd", eps=0.2, steps=5), None,
                                         x.copy()).digest()
    assert req.digest() != AttackRequest("digits-cnn", d, y, AttackConfig("pgd", eps=0.3, steps=5), None,
                                         x).digest()
    grid = rules.eps_grid("apgd", False, (1, 8, 8), n=8)
    sw = run(SweepRequest("digits-cnn", d, y, rules.sweep_config("apgd", grid[-1], steps=5), grid, None, x,
                          keep_images=True))
    assert is_numpy_result(sw) and sw.images.shape == (8, 1, 8, 8)
    with pytest.raises(ValueError, match="sweep runs one of"):
        run(SweepRequest("digits-cnn", d, y, AttackConfig("cw"), grid, None, x))


def test_the_store_round_trips_an_attack_outcome(digit, tmp_path):
    from explorer.runs.store import DiskStore

    x, d, y = digit
    req = AttackRequest("digits-cnn", d, y, AttackConfig("fgsm", eps=0.1), None, x)
    out = run(req)
    store = DiskStore(tmp_path)
    store.put(req.digest(), out)
    back = store.get(req.digest())
    np.testing.assert_array_equal(back.adversarial, out.adversarial)
    assert back.adv_digest == out.adv_digest and back.trace.loss.shape == out.trace.loss.shape


def test_pgd_l2_sweep_rows_match_single_calls_within_the_documented_tolerance(digit):
    """L2 steps divide by the gradient's norm, whose float32 rounding depends on the batch (L∞'s sign absorbs
    it): a sweep row equals a separate call to about 1e-7 (documented in explorer.attacks.pgd)."""
    from explorer.models import load_model

    x, _, y = digit
    model = load_model("digits-cnn")
    grid = [0.0, 0.5, 1.0, 2.0]
    config = rules.sweep_config("pgd-l2", 2.0, steps=5)
    sw = sweep(model, x[None], y, config, grid, images_at="grid", refine=False)
    for i, e in enumerate(grid):
        single = run_attack(model, x[None], y, rules.point_config(config, e)).adversarial[0].numpy()
        np.testing.assert_allclose(sw.images[i], single, rtol=0, atol=1e-5)


def test_slice_and_profile_requests_match_the_library(digit):
    """The Boundaries page's slice (its PGD marker given as the adversarial) and profile through the run layer."""
    from explorer.boundaries.slices import SliceConfig, compute_slice, linearity_profile
    from explorer.models import load_model
    from explorer.runs import ProfileRequest, SliceRequest
    from explorer.runs.requests import slice_pgd_config

    x, digest, y = digit
    model = load_model("digits-cnn")
    config = SliceConfig(kind="pgd/random", resolution=9, eps=0.2, pgd_steps=3)
    adv = run(AttackRequest("digits-cnn", digest, y, slice_pgd_config(0.2, 3), None, x)).adversarial
    ours = run(SliceRequest("digits-cnn", digest, y, config, None, x, adversarial=adv))
    theirs = compute_slice(model, x, y, config, delta=(adv - x).astype(np.float32))
    np.testing.assert_array_equal(ours.result.pred, theirs.result.pred)
    np.testing.assert_array_equal(ours.plane.d1, theirs.plane.d1)
    with pytest.raises(ValueError, match="not both"):
        run(SliceRequest("digits-cnn", digest, y, config, None, x, delta=adv - x, adversarial=adv))
    prof = run(ProfileRequest("digits-cnn", digest, y, 0.2, 9, 1, True, None, x))
    np.testing.assert_array_equal(prof.loss_adv, linearity_profile(model, x, y, extent=0.2, n=9, seed=1).loss_adv)
