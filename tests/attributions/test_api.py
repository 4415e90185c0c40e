import dataclasses

import numpy as np
import pytest
import torch

from explorer.attributions import METHODS, AttributionConfig, attribute
from tests.attributions.conftest import assert_untouched, images, make_cnn


@pytest.fixture(scope="module")
def cnn_cl():
    return make_cnn(channels_last=True)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_shape_dtype_and_untouched_model(cnn_cl, method):
    x = images(2, (3, 12, 12), seed=11)
    cfg = AttributionConfig(n_samples=4, steps=8, window=4, stride=4)
    out = attribute(cnn_cl, x, [1, 3], method, cfg)
    channels = 3 if METHODS[method].per_channel else 1
    assert out.shape == (2, channels, 12, 12) and out.dtype == np.float32 and np.isfinite(out).all()
    if not METHODS[method].signed:
        assert out.min() >= 0
    # also from inside inference mode (a page's display code may be in it)
    with torch.inference_mode():
        again = attribute(cnn_cl, x, [1, 3], method, cfg)
    np.testing.assert_allclose(again, out, rtol=1e-5, atol=1e-6)
    assert_untouched(cnn_cl)


def test_method_argument_overrides_config_and_unknown_names(cnn_cl):
    x = images(1, (3, 12, 12))
    cfg = AttributionConfig(method="gradcam")
    np.testing.assert_array_equal(attribute(cnn_cl, x, 0, "saliency", cfg), attribute(cnn_cl, x, 0, config=
                                  AttributionConfig(method="saliency")))
    assert attribute(cnn_cl, x, 0, config=cfg).shape == (1, 1, 12, 12)
    with pytest.raises(ValueError, match="unknown attribution method"):
        attribute(cnn_cl, x, 0, "lrp")


def test_config_is_hashable_and_metadata_consistent():
    fields = {f.name for f in dataclasses.fields(AttributionConfig)}
    assert hash(AttributionConfig()) == hash(AttributionConfig())
    with pytest.raises(dataclasses.FrozenInstanceError):
        AttributionConfig().steps = 3  # type: ignore[misc]
    for name, info in METHODS.items():
        assert info.name == name and set(info.params) <= fields
        assert info.paper and info.url.startswith("https://") and info.implementation in ("ours", "captum")


@pytest.mark.parametrize("method", ["smoothgrad", "integrated_gradients", "occlusion"])
def test_progress_reaches_one(cnn_cl, method):
    calls = []
    attribute(cnn_cl, images(1, (3, 12, 12)), 0, method, AttributionConfig(n_samples=6, steps=6, batch_size=4),
              progress=lambda f, t: calls.append((f, t)))
    assert len(calls) >= 2 and calls[-1][0] == pytest.approx(1.0)
    assert all(0 <= f <= 1 and isinstance(t, str) for f, t in calls)
