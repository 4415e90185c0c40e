import numpy as np
import pytest

from explorer.attributions import alignment, sign_agreement, to_display


def test_to_display_reductions():
    a = np.zeros((3, 2, 2), np.float32)
    a[0, 0, 0], a[1, 0, 0], a[2, 0, 0] = 1.0, -3.0, 0.5
    assert to_display(a, "abs", "max")[0, 0] == 3.0
    assert to_display(a, "abs", "sum")[0, 0] == 4.5
    assert to_display(a, "signed", "sum")[0, 0] == -1.5
    assert to_display(a, "signed", "max")[0, 0] == -3.0  # the channel of largest magnitude, sign kept
    batch = np.stack([a, -a])
    assert to_display(batch, "signed", "max").shape == (2, 2, 2)
    assert to_display(batch, "signed", "max")[1, 0, 0] == 3.0
    with pytest.raises(ValueError):
        to_display(a, "log")
    with pytest.raises(ValueError):
        to_display(a, "abs", "mean")


def test_to_display_normalize_clips_outliers():
    m = np.linspace(-1, 1, 400, dtype=np.float32).reshape(1, 20, 20)
    m[0, 0, 0] = -100.0
    out = to_display(m, "signed", normalize=True)
    assert out.min() == -1.0 and out.max() <= 1.0 and out[19, 19] > 0.9
    assert to_display(np.abs(m), "abs", normalize=True).min() >= 0
    assert not np.isnan(to_display(np.zeros((1, 4, 4)), "abs", normalize=True)).any()


def test_alignment_is_pearson_of_magnitudes():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3, 8, 8))
    assert alignment(2 * s, s) == pytest.approx(1.0)
    assert alignment(-s, s) == pytest.approx(1.0)  # magnitudes: the sign does not matter
    mag = np.abs(s).max(0)
    expected = np.corrcoef(mag.ravel(), (mag ** 2).ravel())[0, 1]
    assert alignment(s * np.abs(s), s) == pytest.approx(expected)
    # a 3-channel perturbation against a 1-channel map (Grad-CAM, occlusion)
    assert alignment(s, mag[None]) == pytest.approx(1.0)
    assert np.isnan(alignment(np.full((3, 8, 8), 0.1), s))  # FGSM-like constant magnitude
    with pytest.raises(ValueError):
        alignment(s, np.ones((4, 4)))


def test_sign_agreement():
    g = np.array([1.0, -2.0, 3.0, 0.0])
    assert sign_agreement(0.1 * np.sign(g), g) == 1.0
    assert sign_agreement(-np.sign(g), g) == -1.0
    assert sign_agreement(np.array([1.0, 1.0, 0.0, 1.0]), g) == 0.0
    assert np.isnan(sign_agreement(np.zeros(4), g))
