"""PCA and t-SNE maps: deterministic for a seed; PCA maps an unperturbed copy exactly onto its clean point."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.projections import METHODS, project


def blobs(n: int = 150, d: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = rng.normal(0, 6, (3, d))
    return (centres[y] + rng.normal(0, 1, (n, d))).astype(np.float32), y


def test_pca_is_fitted_on_clean_and_maps_copies_exactly():
    x, _ = blobs()
    far = x + 50.0
    p = project(x, x.copy(), "pca", seed=0)
    np.testing.assert_allclose(p.adv_2d, p.clean_2d, atol=1e-5)
    q = project(x, far, "pca", seed=0)
    np.testing.assert_array_equal(q.clean_2d, p.clean_2d)  # the adversarial set never moves the clean map
    assert p.clean_2d.shape == (150, 2) and p.adv_2d.dtype == np.float32 and p.method == "pca" and p.seconds >= 0


def test_pca_deterministic_and_handles_edge_shapes():
    x, _ = blobs()
    a, b = project(x, x[:7], "pca", seed=3), project(x, x[:7], "pca", seed=3)
    np.testing.assert_array_equal(a.clean_2d, b.clean_2d)
    np.testing.assert_array_equal(a.adv_2d, b.adv_2d)
    assert project(x, None, "pca").adv_2d.shape == (0, 2)
    assert project(x[:, :1], x[:3, :1], "pca").clean_2d.shape == (150, 2)  # one feature: padded


def test_tsne_deterministic_with_a_seed_and_fitted_jointly():
    x, y = blobs(120)
    adv = x + np.random.default_rng(1).normal(0, 0.1, x.shape).astype(np.float32)
    a = project(x, adv, "tsne", seed=7, max_iter=250)
    b = project(x, adv, "tsne", seed=7, max_iter=250)
    np.testing.assert_array_equal(a.clean_2d, b.clean_2d)
    np.testing.assert_array_equal(a.adv_2d, b.adv_2d)
    assert a.adv_2d.shape == (120, 2) and a.params["perplexity"] == 30.0 and a.params["seed"] == 7
    # a slightly perturbed copy lands next to its twin: much closer than the map's extent
    assert np.median(np.linalg.norm(a.adv_2d - a.clean_2d, axis=1)) < 0.1 * a.extent


def test_bad_inputs():
    x, _ = blobs(20)
    with pytest.raises(ValueError, match="method"):
        project(x, x, "isomap")
    with pytest.raises(ValueError, match="width"):
        project(x, x[:, :5], "pca")
    with pytest.raises(ValueError, match="NaN"):
        project(np.full((5, 3), np.nan), None, "pca")
    with pytest.raises(ValueError, match="no clean"):
        project(x[:0], None, "pca")
    assert METHODS == ("pca", "umap", "tsne")
    assert project(x, x, "t-SNE", max_iter=250).method == "tsne"
