"""The norm plug-ins: projection, normalised steps, random starts, sizes; per-row ε equals scalar ε."""

from __future__ import annotations

import pytest
import torch

from explorer.attacks.norms import L2_NORM, LINF, L2, Linf, get_norm


def _delta(seed=0, n=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 5, 5, generator=g) * 0.2


def test_linf_project_clips_every_pixel():
    d = _delta()
    p = LINF.project(d, 0.05)
    assert float(p.abs().max()) <= 0.05 + 1e-8  # float32(0.05) is a hair above 0.05
    inside = d.abs() <= 0.05
    assert torch.equal(p[inside], d[inside])


def test_per_row_eps_is_bit_identical_to_scalar_eps():
    d = _delta()
    eps = torch.tensor([0.01, 0.05, 0.1, 0.3])
    for norm in (LINF, L2_NORM):
        rows = norm.project(d, eps)
        for i, e in enumerate(eps.tolist()):
            assert torch.equal(rows[i: i + 1], norm.project(d[i: i + 1], e)), norm


def test_l2_project_rescales_only_outside_the_ball():
    d = _delta()
    p = L2_NORM.project(d, 0.5)
    assert torch.all(L2_NORM.size(p) <= 0.5 + 1e-6)
    small = d * 1e-3
    assert torch.equal(L2_NORM.project(small, 0.5), small)


def test_normalize_gives_unit_steps():
    g = _delta(1)
    assert torch.equal(LINF.normalize(g), g.sign())
    assert torch.allclose(L2_NORM.size(L2_NORM.normalize(g)), torch.ones(4), atol=1e-6)
    assert torch.all(torch.isfinite(L2_NORM.normalize(torch.zeros(2, 3, 4, 4))))


def test_random_samples_lie_in_the_unit_ball_and_follow_the_generator():
    for norm in (LINF, L2_NORM):
        a = norm.random((16, 3, 4, 4), torch.Generator().manual_seed(3))
        b = norm.random((16, 3, 4, 4), torch.Generator().manual_seed(3))
        c = norm.random((16, 3, 4, 4), torch.Generator().manual_seed(4))
        assert torch.equal(a, b) and not torch.equal(a, c)
        assert torch.all(norm.size(a) <= 1 + 1e-6)


def test_sizes_and_duals():
    d = torch.zeros(1, 1, 2, 2)
    d[0, 0, 0, 0], d[0, 0, 1, 1] = 0.3, -0.4
    assert LINF.size(d).item() == pytest.approx(0.4)
    assert L2_NORM.size(d).item() == pytest.approx(0.5)
    assert LINF.dual(d).item() == pytest.approx(0.7)
    assert L2_NORM.dual(d).item() == pytest.approx(0.5)


def test_get_norm():
    assert isinstance(get_norm("linf"), Linf) and isinstance(get_norm("L2"), L2)
    assert get_norm(LINF) is LINF and get_norm("inf") == LINF
    with pytest.raises(ValueError, match="unknown norm"):
        get_norm("l1")
