"""The 2-D lab's data and training: shapes, seeds, determinism, progress, adversarial training's margin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.boundaries.points import margins
from explorer.boundaries.toy import (
    ACTIVATIONS,
    BOUNDS,
    DATA_HALF_WIDTH,
    DATASETS,
    AdvTrainConfig,
    MLPConfig,
    ToyDataConfig,
    make_dataset,
    train_mlp,
)


@pytest.mark.parametrize("name", DATASETS)
def test_datasets_shapes_range_and_seed(name):
    cfg = ToyDataConfig(name=name, n=120, noise=0.1, seed=3)
    d = make_dataset(cfg)
    assert d.x.shape == (120, 2) and d.x.dtype == np.float32
    assert d.y.shape == (120,) and d.y.dtype == np.int64
    assert set(np.unique(d.y)) == {0, 1}
    assert np.abs(d.x).max() <= DATA_HALF_WIDTH + 1e-5
    lo, hi = BOUNDS[0], BOUNDS[1]
    assert lo < d.x.min() and d.x.max() < hi
    again = make_dataset(cfg)
    np.testing.assert_array_equal(d.x, again.x)
    np.testing.assert_array_equal(d.y, again.y)
    other = make_dataset(ToyDataConfig(name=name, n=120, noise=0.1, seed=4))
    assert not np.array_equal(d.x, other.x)


def test_bulge_is_imbalanced_and_others_balanced():
    bulge = make_dataset(ToyDataConfig(name="bulge", n=500, minority=0.2))
    assert bulge.y.mean() == pytest.approx(0.2, abs=0.01)
    moons = make_dataset(ToyDataConfig(name="moons", n=500))
    assert moons.y.mean() == pytest.approx(0.5, abs=0.01)


def test_noise_zero_and_bad_configs():
    d = make_dataset(ToyDataConfig(name="circles", n=200, noise=0.0))
    r = np.linalg.norm(d.x - d.x.mean(0), axis=1)
    # Two clean rings: the blue (inner) radius is half the red one.
    assert np.median(r[d.y == 1]) / np.median(r[d.y == 0]) == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError):
        make_dataset(ToyDataConfig(name="nope"))
    with pytest.raises(ValueError):
        train_mlp(d, MLPConfig(activation="gelu"))
    with pytest.raises(ValueError):
        train_mlp(d, MLPConfig(steps=5), AdvTrainConfig(method="cw"))


def test_global_rng_untouched():
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state().clone()
    d = make_dataset(ToyDataConfig(seed=11))
    train_mlp(d, MLPConfig(steps=5, seed=7), AdvTrainConfig("pgd", 0.2, pgd_steps=2))
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_training_is_deterministic_and_frozen():
    d = make_dataset(ToyDataConfig(n=150))
    cfg = MLPConfig(depth=2, width=16, steps=60, seed=5)
    a, b = train_mlp(d, cfg), train_mlp(d, cfg)
    np.testing.assert_array_equal(a.losses, b.losses)
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    c = train_mlp(d, MLPConfig(depth=2, width=16, steps=60, seed=6))
    assert not np.array_equal(a.losses, c.losses)
    assert not a.model.training
    assert all(not p.requires_grad for p in a.model.parameters())
    out = a.model(torch.zeros(3, 2))
    assert out.shape == (3, 2)


def test_two_moons_learned_fast_with_progress():
    d = make_dataset(ToyDataConfig(n=300, noise=0.1))
    calls = []
    r = train_mlp(d, MLPConfig(steps=300), progress=lambda f, t: calls.append((f, t)), progress_every=50)
    assert r.accuracy > 0.97
    assert r.losses[-1] < r.losses[0]
    fracs = [f for f, _ in calls]
    assert len(calls) == 6 and fracs == sorted(fracs) and fracs[-1] == 1.0
    assert "step 300/300" in calls[-1][1]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_trains(activation):
    d = make_dataset(ToyDataConfig(name="blobs", n=100))
    r = train_mlp(d, MLPConfig(depth=1, width=8, activation=activation, steps=40, weight_decay=1e-3))
    assert r.accuracy > 0.9


@pytest.mark.parametrize("adv", [AdvTrainConfig("fgsm", 0.3), AdvTrainConfig("pgd", 0.3, pgd_steps=5),
                                 AdvTrainConfig("pgd", 0.3, norm="l2", pgd_steps=5)])
def test_adversarial_training_increases_mean_margin_on_two_moons(adv):
    d = make_dataset(ToyDataConfig(name="moons", n=200, noise=0.15, seed=0))
    cfg = MLPConfig(steps=200, seed=0)
    std = train_mlp(d, cfg)
    rob = train_mlp(d, cfg, adv)
    assert rob.accuracy > 0.9
    m_std = margins(std.model, d.x, d.y, norm=adv.norm, cap=2.0)
    m_rob = margins(rob.model, d.x, d.y, norm=adv.norm, cap=2.0)
    assert m_rob.mean > 1.2 * m_std.mean
    # Fewer training points sit within eps of the boundary.
    assert np.mean(m_rob.distance < adv.eps) < np.mean(m_std.distance < adv.eps)
