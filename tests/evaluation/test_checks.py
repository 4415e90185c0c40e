"""Each honest-evaluation check passes on a plain model and warns on a model (or attack) constructed to trip it."""

from dataclasses import replace

import numpy as np
import pytest
from torch import nn

from explorer.evaluation.checks import run_checks
from explorer.runs import LOCAL
from explorer.runs.evaluate import EvaluateRequest, TransferRequest

from .conftest import Noisy, Quantise

EPS = tuple(float(v) for v in np.linspace(0, 0.35, 8))
BASE = dict(attacks=("fgsm", "pgd"), eps=EPS, dataset="digits", n=40, steps=5, probe_n=40, shard_size=40)


def statuses(rows, model):
    return {r.check: r.status for r in rows if r.model == model}


def evaluate(models, **kw):
    return EvaluateRequest(models=models, **{**BASE, **kw}).execute(LOCAL)


def test_plain_model_passes(fresh_store):
    ev = evaluate(("digits-mlp",))
    s = statuses(run_checks(ev), "digits-mlp")
    for check in ("monotone", "large-eps", "fgsm-vs-pgd", "zero-gradients", "randomised", "probabilities"):
        assert s[check] == "pass", check
    assert s["transfer-vs-whitebox"] == "skip"


def test_gradient_killing_front_trips_gradient_checks(fresh_store, constructed):
    constructed("t-quantised", front=Quantise())
    ev = evaluate(("t-quantised", "digits-mlp"))
    tr = TransferRequest(models=("t-quantised", "digits-mlp"), attack="pgd", eps=0.25, n=40, steps=5,
                         shard_size=40).execute(LOCAL)
    s = statuses(run_checks(ev, tr), "t-quantised")
    assert s["zero-gradients"] == "warn"
    assert s["large-eps"] == "warn"  # PGD cannot move without a gradient
    assert s["transfer-vs-whitebox"] == "warn"  # the MLP's adversarials fool it; its own attack does not
    assert statuses(run_checks(ev, tr), "digits-mlp")["transfer-vs-whitebox"] == "pass"


def test_randomised_model_is_detected(fresh_store, constructed):
    constructed("t-noisy", front=Noisy())
    ev = evaluate(("t-noisy",), attacks=("fgsm",))
    rows = run_checks(ev)
    assert statuses(rows, "t-noisy")["randomised"] == "warn"
    assert "EOT" in next(r.message for r in rows if r.check == "randomised")


def test_softmax_output_is_detected(fresh_store, constructed):
    constructed("t-softmax-out", back=nn.Softmax(dim=1))
    ev = evaluate(("t-softmax-out",), attacks=("fgsm",))
    assert statuses(run_checks(ev), "t-softmax-out")["probabilities"] == "warn"


def test_weak_pgd_trips_fgsm_and_steps_checks(fresh_store):
    # PGD with a tiny absolute step cannot leave the neighbourhood: FGSM beats it, and doubling steps helps
    ev = evaluate(("digits-mlp",), alpha=0.004, steps=8, n=100, probe_n=100, shard_size=100)
    s = statuses(run_checks(ev), "digits-mlp")
    assert s["fgsm-vs-pgd"] == "warn"
    assert s["steps-restarts"] == "warn"


def test_rising_accuracy_is_flagged(fresh_store):
    ev = evaluate(("digits-mlp",), attacks=("fgsm",))
    pred = ev.pred.copy()
    pred[0, 0, -1] = ev.labels[0]  # pretend the largest ε fools nothing: accuracy jumps back up
    rows = run_checks(replace(ev, pred=pred))
    assert statuses(rows, "digits-mlp")["monotone"] == "warn"


def test_reused_curve_cannot_rise_but_the_probe_sees_the_plain_one_rise(fresh_store):
    # one-step BIM (FGSM-like) on the digits CNN up to ε = 1: run ε by ε, some samples fooled at a small ε are not
    # at a larger one, so the plain curve rises; reusing smaller-ε adversarials makes the curve monotone, and the
    # probe (the attack run row by row on its samples) still reports the rise
    kw = dict(attacks=("bim",), steps=1, eps=tuple(float(v) for v in np.linspace(0, 1, 8)))
    plain = evaluate(("digits-cnn",), reuse_smaller_eps=False, **kw)
    fast = evaluate(("digits-cnn",), **kw)
    rise = lambda acc: float((acc - np.minimum.accumulate(acc)).max())  # noqa: E731
    assert rise(plain.accuracy()[0, 0]) > 0.025
    assert rise(fast.accuracy()[0, 0]) == 0
    assert np.all(fast.accuracy() <= plain.accuracy())
    assert statuses(run_checks(plain), "digits-cnn")["monotone"] == "warn"
    rows = run_checks(fast)
    assert statuses(rows, "digits-cnn")["monotone"] == "warn"
    assert "separately" in next(r.message for r in rows if r.check == "monotone")
