"""The inference layer: device choice, batching, the shared model cache under concurrency, results cache."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from explorer.device import pick_device
from explorer.digest import array_digest
from explorer.inference import ModelCache, predict_logits, predict_proba
from explorer.models import load_model
from explorer.models.data import load_digits_split


def test_device_choice_and_override(monkeypatch):
    assert pick_device().type in {"cuda", "mps", "cpu"}
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available here"):
            pick_device("cuda")


def test_batched_predictions_match_one_big_forward():
    model = load_model("digits-cnn")
    x = load_digits_split().x_test[:70]
    a = predict_logits(model, x, batch_size=8)
    with torch.no_grad():
        b = model(torch.from_numpy(x)).numpy()
    assert np.allclose(a, b, atol=1e-5)
    p = predict_proba(model, x)
    assert np.allclose(p.sum(1), 1, atol=1e-5)


def test_model_cache_is_lru_and_loads_once():
    cache = ModelCache(max_models=1)
    a = cache.get("digits-cnn")
    assert cache.get("digits-cnn") is a
    cache.get("digits-mlp")
    assert len(cache) == 1 and ("digits-cnn", "cpu") not in cache
    assert cache.get("digits-cnn") is not a


def test_concurrent_sessions_share_one_model_and_get_right_answers():
    cache = ModelCache(max_models=2)
    split = load_digits_split()
    reference = predict_logits(load_model("digits-cnn"), split.x_test).argmax(1)

    def session(i):
        model = cache.get("digits-cnn" if i % 2 == 0 else "digits-mlp")
        rows = np.arange(i, len(split.x_test), 7)
        logits = predict_logits(model, split.x_test[rows], batch_size=16)
        return id(model), i % 2, rows, logits.argmax(1)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(session, range(24)))
    assert len({mid for mid, kind, *_ in results if kind == 0}) == 1  # one shared instance
    for _, kind, rows, pred in results:
        if kind == 0:
            assert np.array_equal(pred, reference[rows])
        else:
            assert (pred == split.y_test[rows]).mean() > 0.9


def test_digest_sees_every_pixel():
    a = np.random.default_rng(0).random((3, 512, 512), dtype=np.float32)
    b = a.copy()
    b[2, 511, 7] += 1e-3
    assert array_digest(a) != array_digest(b)
    assert array_digest(a) == array_digest(a.copy())
    assert array_digest(a) != array_digest(a.astype(np.float64))
    assert array_digest(a) == array_digest(torch.from_numpy(a))


def test_results_cache_is_keyed_by_digest_not_by_sampling(monkeypatch):
    from explorer import caching

    caching.probabilities.clear()
    x = load_digits_split().x_test[:1].copy()
    y = x.copy()
    y[0, 0, 3, 3] = 1.0 - y[0, 0, 3, 3]  # one pixel differs
    px = caching.probabilities("digits-cnn", array_digest(x), None, x)
    py = caching.probabilities("digits-cnn", array_digest(y), None, y)
    assert not np.array_equal(px, py)
    # the digest IS the key: the same digest returns the cached answer without recomputing
    calls = []
    monkeypatch.setattr(caching, "predict_proba", lambda *a, **k: calls.append(1))
    again = caching.probabilities("digits-cnn", array_digest(x), None, y)
    assert np.array_equal(again, px) and calls == []
