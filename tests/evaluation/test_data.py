"""Image sets and bad input: empty or invalid sets, shapes that do not fit, grids over the caps."""

import numpy as np
import pytest

from explorer.evaluation.data import fits, load_set, make_set, register_set
from explorer.runs import LOCAL
from explorer.runs.evaluate import EvaluateRequest, TransferRequest, parse_eps_grid


def test_digits_is_the_held_out_split():
    from explorer.models.data import load_digits_split

    s = load_set("digits", 1000)
    assert len(s) == 360 and s.sample_ids[3] == "digits:3"
    assert np.array_equal(s.images, load_digits_split().x_test)


def test_make_set_rejects_bad_arrays():
    with pytest.raises(ValueError, match="empty"):
        make_set(np.zeros((0, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make_set(np.full((2, 1, 8, 8), 3.0, np.float32))
    with pytest.raises(ValueError, match="labels"):
        make_set(np.zeros((2, 1, 8, 8), np.float32), labels=[1])


def test_registered_set_runs_and_is_scored_against_predictions(fresh_store):
    x = load_set("digits", 12).images
    name = register_set(make_set(x, None, "uploads"))
    ev = EvaluateRequest(models=("digits-softmax",), attacks=("fgsm",), eps=(0.0, 0.2), dataset=name, n=12,
                         probe=False).execute(LOCAL)
    assert ev.clean_accuracy()[0] == 1.0 and ev.labels_are_predictions


def test_fits():
    assert fits("digits", (1, 8, 8)) is None
    assert "1x28x28" in fits("mnist", (1, 8, 8))
    assert "colour" in fits("photos", (1, 8, 8))


@pytest.mark.parametrize("kw, msg", [
    (dict(eps=tuple(np.linspace(0, 0.3, 80))), "at most"),
    (dict(eps=(0.1,)), "at least 2"),
    (dict(eps=(0.0, 2.0)), "between 0 and 1"),
    (dict(attacks=("cw",)), "no ε budget"),
    (dict(attacks=("nope",)), "unknown attack"),
    (dict(models=("nope",)), "unknown model"),
    (dict(n=10 ** 6), "cap"),
    (dict(dataset="elsewhere"), "unknown dataset"),
])
def test_validation_one_line(kw, msg):
    req = EvaluateRequest(**{"models": ("digits-cnn",), **kw})
    with pytest.raises(ValueError, match=msg) as err:
        req.validate()
    assert "\n" not in str(err.value)


def test_models_of_other_shapes_are_skipped_with_a_reason(fresh_store):
    ev = EvaluateRequest(models=("digits-softmax", "resnet18"), attacks=("fgsm",), eps=(0.0, 0.2), n=10,
                         probe=False).execute(LOCAL)
    assert ev.models == ("digits-softmax",)
    assert ev.skipped[0][0] == "resnet18" and "8x8" in ev.skipped[0][1]
    tr = TransferRequest(models=("digits-softmax", "digits-mlp", "resnet18"), attack="fgsm", eps=0.2,
                         n=10).execute(LOCAL)
    assert not tr.valid[2].any() and not tr.valid[:, 2].any() and tr.valid[:2, :2].all()
    assert any(s == "digits-softmax" and t == "resnet18" for s, t, _ in tr.skipped)


def test_no_model_fits():
    with pytest.raises(ValueError, match="no chosen model"):
        EvaluateRequest(models=("resnet18",), attacks=("fgsm",), eps=(0.0, 0.1), n=4).execute(LOCAL)


def test_parse_eps_grid():
    assert parse_eps_grid("0:0.3:4") == pytest.approx((0, 0.1, 0.2, 0.3))
    assert parse_eps_grid("0,4/255") == pytest.approx((0, 4 / 255))
    with pytest.raises(ValueError):
        parse_eps_grid("0:0.3:x")
