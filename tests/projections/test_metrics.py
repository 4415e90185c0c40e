"""k-NN agreement and nearest-clean distances on constructed cases, and on a real FGSM attack."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.projections import extract_features, knn_agreement, nearest_clean_distances, summarize


def clusters(n_per: int = 30, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per)
    centres = np.eye(3, d) * 100
    return centres[y] + rng.normal(0, 1, (len(y), d)), y


def test_adv_equal_to_clean():
    x, y = clusters()
    k = knn_agreement(x, x.copy(), y, adv_pred=y, k=5)
    assert k.true_class == 1.0 and k.adv_class == 1.0 and k.clean_baseline == 1.0 and k.space == "features"
    d = nearest_clean_distances(x, x.copy(), exclude_twin=False)
    assert d.median_adv == 0.0 and np.all(d.adv_to_clean == 0) and d.ratio == 0.0
    d = nearest_clean_distances(x, x.copy())  # twin excluded: exactly the clean-to-clean distances
    np.testing.assert_allclose(d.adv_to_clean, d.clean_to_clean)
    assert d.ratio == pytest.approx(1.0) and d.median_twin == 0.0


def test_adv_moved_into_another_cluster():
    x, y = clusters()
    centres = np.eye(3, 5) * 100
    target = (y + 1) % 3
    adv = x - centres[y] + centres[target]  # each point moved to the next class's cluster
    k = knn_agreement(x, adv, y, adv_pred=target, k=5)
    assert k.true_class == 0.0 and k.adv_class == 1.0
    assert k.per_point_true.shape == (90,)


def test_adv_far_away_gives_a_large_ratio():
    x, y = clusters()
    adv = x + 1000.0
    d = nearest_clean_distances(x, adv)
    assert d.ratio > 100 and d.median_clean < 5
    assert d.twin is not None and np.allclose(d.twin, 1000 * np.sqrt(5))


def test_duplicates_count_as_neighbours_but_self_does_not():
    x = np.array([[0.0], [0.0], [5.0], [9.0]])
    d = nearest_clean_distances(x, x + 0.5)
    np.testing.assert_allclose(d.clean_to_clean, [0, 0, 4, 4])
    np.testing.assert_allclose(d.adv_to_clean, [0.5, 0.5, 3.5, 4.5])  # own source (index i) never counts


def test_guards():
    x, y = clusters(4)
    with pytest.raises(ValueError, match="space"):
        knn_agreement(x, x, y, space="pixels")
    with pytest.raises(ValueError, match="same N"):
        knn_agreement(x, x[:3], y, adv_labels=y[:3])
    k = knn_agreement(x, x[:3], y, adv_labels=y[:3], exclude_twin=False, k=50)
    assert k.k == len(x) - 1 and np.isnan(k.adv_class)
    assert np.isnan(nearest_clean_distances(x[:1], x[:1]).ratio)


def test_fgsm_digits_move_off_and_across(digits_model, digits_batch):
    """eps 0.2 FGSM on the digits CNN: the adversarial features sit among the predicted (wrong) class and
    farther from the clean data than clean points are from each other."""
    from explorer.inference import predict_logits

    x, y, adv = digits_batch
    pred = predict_logits(digits_model, adv).argmax(1)
    assert (pred != y).mean() > 0.5
    fc, fa = extract_features(digits_model, x), extract_features(digits_model, adv)
    s = summarize(fc, fa, y, pred, clean_2d=fc[:, :2], adv_2d=fa[:, :2], k=10)
    assert s.knn_features.clean_baseline > 0.9
    assert s.knn_features.adv_class > s.knn_features.true_class
    assert s.distances.ratio > 1.0
    assert s.knn_map is not None and s.knn_map.space == "map"
