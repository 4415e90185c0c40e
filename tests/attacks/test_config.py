"""AttackConfig, its validation (one-line ValueErrors) and the run_attack dispatcher."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from explorer.attacks import ATTACKS, AttackConfig, AttackResult, check_config, default_alpha, run_attack


def _error(fn) -> str:
    with pytest.raises(ValueError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg and msg
    return msg


def test_config_is_a_frozen_hashable_value():
    c = AttackConfig(attack="pgd", eps=0.1, steps=20, seed=3)
    assert hash(c) == hash(AttackConfig(attack="pgd", eps=0.1, steps=20, seed=3))
    assert {c: 1}[AttackConfig(attack="pgd", eps=0.1, steps=20, seed=3)] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.eps = 0.2  # type: ignore[misc]


def test_default_alpha():
    assert default_alpha("pgd", 0.3, 10) == pytest.approx(0.075)
    assert default_alpha("bim", 0.3, 10) == pytest.approx(0.03)
    assert default_alpha("mifgsm", 0.3, 10) == pytest.approx(0.03)
    assert default_alpha("fgsm", 0.3, 1) == pytest.approx(0.3)


def test_bad_settings_are_one_line_value_errors(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_STEPS", "50")
    assert "between 0 and 1" in _error(lambda: check_config(AttackConfig(eps=-0.01), 10))
    assert "between 0 and 1" in _error(lambda: check_config(AttackConfig(eps=1.5), 10))
    assert "at least 1" in _error(lambda: check_config(AttackConfig(attack="pgd", steps=0), 10))
    assert "cap of 50" in _error(lambda: check_config(AttackConfig(attack="pgd", steps=51), 10))
    assert "cap of 50" in _error(lambda: check_config(AttackConfig(attack="cw", cw_steps=51), 10))
    assert "true class" in _error(lambda: check_config(AttackConfig(target=3), 10, true_label=3))
    assert "out of range" in _error(lambda: check_config(AttackConfig(target=10), 10, true_label=3))
    assert "out of range" in _error(lambda: check_config(AttackConfig(target=-1), 10))
    assert "unknown attack" in _error(lambda: check_config(AttackConfig(attack="jsma"), 10))
    assert "alpha" in _error(lambda: check_config(AttackConfig(attack="pgd", alpha=0.0), 10))
    check_config(AttackConfig(attack="pgd", steps=50, target=4), 10, true_label=3)
    check_config(AttackConfig(attack="pgd-l2", eps=2.0), 10, input_shape=(1, 8, 8))  # L2 radius up to √64
    assert "between 0 and 8" in _error(lambda: check_config(AttackConfig(attack="pgd-l2", eps=9.0), 10,
                                                             input_shape=(1, 8, 8)))


def test_run_attack_validates_against_the_model(digits_model, digits):
    x, y = digits
    label = int(y[0])
    assert "true class" in _error(lambda: run_attack(digits_model, x[:1], label, AttackConfig(target=label)))
    assert "out of range" in _error(lambda: run_attack(digits_model, x[:1], label, AttackConfig(target=12)))
    assert "out of range" in _error(lambda: run_attack(digits_model, x[:1], 11, AttackConfig()))
    assert "true class" in _error(lambda: run_attack(digits_model, x[:4], y[:4], AttackConfig(target=int(y[2]))))
    assert "[0, 1]" in _error(lambda: run_attack(digits_model, x[:1] * 2 + 0.5, label, AttackConfig()))


@pytest.mark.parametrize("attack", ATTACKS)
def test_run_attack_dispatches_every_attack(digits_model, digits, attack, untouched):
    x, y = digits[0][:6], digits[1][:6]
    from explorer.attacks import registry

    cfg = AttackConfig(attack=attack, eps=2.0 if registry.get(attack).norm == "l2" and not registry.get(attack).minimal else 0.3, steps=10, cw_steps=30,
                       cw_search_steps=1, cw_lr=0.05)
    res = run_attack(digits_model, x, y, cfg)
    assert isinstance(res, AttackResult) and res.attack == attack
    assert res.adversarial.shape == x.shape
    assert res.success.mean() >= 0.5
    t = (y + 2) % 10
    tres = run_attack(digits_model, x[:1], y[:1], dataclasses.replace(cfg, target=int(t[0])))
    assert np.array_equal(tres.target, t[:1].numpy())
    untouched(digits_model)
