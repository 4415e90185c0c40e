"""The batched evaluation equals separate attack calls; worst case and flip ε are consistent with the grid."""

import numpy as np
import pytest
import torch

from explorer.attacks import AttackConfig, run_attack
from explorer.evaluation.core import AttackSettings, attack_rows, evaluate_batch
from explorer.evaluation.data import load_set
from explorer.inference import model_cache

EPS = np.linspace(0, 0.35, 8)


@pytest.fixture(scope="module")
def digits():
    s = load_set("digits", 40)
    return s.images, s.labels


@pytest.fixture(scope="module")
def mlp():
    return model_cache().get("digits-mlp")


def separate(model, x, y, attack, eps, **kw):
    out = []
    for e in eps:
        res = run_attack(model, x, y, AttackConfig(attack=attack, eps=float(e), **kw), trace=True)
        out.append(res.pred)
    return np.stack(out)


def test_fgsm_grid_is_bit_identical_to_separate_calls(mlp, digits):
    x, y = digits
    res = evaluate_batch(mlp, x, y, EPS, AttackSettings("fgsm"), rows=64, keep=3)
    assert np.array_equal(res.pred, separate(mlp, x, y, "fgsm", EPS))
    # images kept for display are the real adversarials
    k = 5
    i = res.example_idx[k, 0]
    assert i >= 0
    adv = run_attack(mlp, x[i:i + 1], y[i:i + 1], AttackConfig("fgsm", eps=float(EPS[k]))).adversarial.numpy()[0]
    assert np.array_equal(res.examples[k, 0], adv)


def test_pgd_rows_equal_separate_calls_without_random_start(mlp, digits):
    x, y = digits
    s = AttackSettings("pgd", steps=5, random_start=False)
    res = evaluate_batch(mlp, x, y, EPS, s, rows=1000, refine_rounds=0, keep=0, reuse=False)
    assert np.array_equal(res.pred, separate(mlp, x, y, "pgd", EPS, steps=5, random_start=False))


def test_reuse_runs_each_row_as_a_plain_run_and_counts_smaller_eps_adversarials(digits):
    """A sample fooled at ε_k is fooled at every larger ε (its adversarial is inside every larger ball): the
    reused curve runs fewer rows, every row it does run equals the plain run's, the flip ε is the same, and
    accuracy differs only where the plain run was not monotone (then it is lower)."""
    x, y = digits
    cnn = model_cache().get("digits-cnn")
    eps = np.linspace(0, 1, 8)
    s = AttackSettings("pgd", steps=2, random_start=False)  # weak on purpose: its plain curve is not monotone
    plain = evaluate_batch(cnn, x, y, eps, s, rows=1000, keep=2, reuse=False)
    fast = evaluate_batch(cnn, x, y, eps, s, rows=1000, keep=2, reuse=True)
    sep = separate(cnn, x, y, "pgd", eps, steps=2, random_start=False)
    assert np.array_equal(plain.pred, sep)
    fooled = sep != y[None]
    right = plain.clean_pred == y
    first = np.where(fooled.any(0), fooled.argmax(0), len(eps))
    ran = (np.arange(len(eps))[:, None] <= first[None]) & right[None]
    assert np.array_equal(fast.pred[ran], sep[ran])  # rows that were run: exactly the plain run's answer
    for i in np.flatnonzero(right & (first < len(eps))):  # later rows: the witness found at the first ε
        assert np.all(fast.pred[first[i]:, i] == sep[first[i], i])
    acc_plain = ((plain.pred == y) & right).mean(1)
    acc_fast = ((fast.pred == y) & right).mean(1)
    assert np.all(np.diff(acc_fast) <= 0)
    assert np.all(acc_fast <= acc_plain)
    assert np.array_equal(acc_fast, np.minimum.accumulate(((fast.pred == y) & right).mean(1)))
    assert not np.all(np.diff(fooled[:, right].astype(int), axis=0) >= 0)  # the plain run is not monotone...
    assert np.any(acc_fast < acc_plain)  # ...and there the reused curve is lower
    assert np.array_equal(fast.flip_eps, plain.flip_eps) and np.array_equal(fast.flip_width, plain.flip_width)
    # kept examples really are adversarial within their ε
    for k in range(1, len(eps)):
        for j, i in enumerate(fast.example_idx[k]):
            if i >= 0:
                assert np.abs(fast.examples[k, j] - x[i]).max() <= eps[k] + 1e-6
                assert fast.example_pred[k, j] != y[i]


def test_chunking_does_not_change_results(mlp, digits):
    x, y = digits
    s = AttackSettings("pgd", steps=3, random_start=False)
    for reuse in (False, True):
        a = evaluate_batch(mlp, x, y, EPS, s, rows=37, keep=0, reuse=reuse)
        b = evaluate_batch(mlp, x, y, EPS, s, rows=1000, keep=0, reuse=reuse)
        assert np.array_equal(a.pred, b.pred)
        assert np.array_equal(a.flip_eps, b.flip_eps)


def test_flip_eps_matches_the_grid_and_is_refined(mlp, digits):
    x, y = digits
    res = evaluate_batch(mlp, x, y, EPS, AttackSettings("fgsm"), rows=256, keep=0)
    right = res.clean_pred == y
    fooled = res.pred != y[None]
    for i in np.flatnonzero(right):
        hits = np.flatnonzero(fooled[:, i])
        if len(hits):
            first = EPS[hits[0]]
            prev = EPS[hits[0] - 1]
            assert prev < res.flip_eps[i] <= first
            assert res.flip_width[i] < (first - prev) / 100  # 4 rounds of 7 probes: 8^4 times narrower
            # the refined flip ε really flips, and a hair below it does not (FGSM is exact)
            at = run_attack(mlp, x[i], int(y[i]), AttackConfig("fgsm", eps=float(res.flip_eps[i])))
            assert at.pred[0] != y[i]
            below = res.flip_eps[i] - res.flip_width[i]
            if below > prev:
                assert run_attack(mlp, x[i], int(y[i]), AttackConfig("fgsm", eps=float(below))).pred[0] == y[i]
        else:
            assert np.isinf(res.flip_eps[i])
    assert np.all(res.flip_eps[~right] == 0)


def test_attack_rows_per_row_eps(mlp, digits):
    x, y = digits
    eps = np.linspace(0, 0.3, len(x))
    pred, imgs = attack_rows(mlp, x, y, eps, AttackSettings("fgsm"), rows=16, keep_images=True)
    linf = np.abs(imgs - x).reshape(len(x), -1).max(1)
    assert np.all(linf <= eps + 1e-6)
    assert pred.shape == (len(x),)


def test_model_is_not_mutated(mlp, digits):
    x, y = digits
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    evaluate_batch(mlp, x[:8], y[:8], EPS, AttackSettings("pgd", steps=2), rows=64)
    assert all(torch.equal(before[k], v) for k, v in mlp.state_dict().items())
    assert all(p.grad is None for p in mlp.parameters())
