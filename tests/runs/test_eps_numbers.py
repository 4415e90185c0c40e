"""The ε a user sees agrees everywhere: defaults sit exactly on the slider's grid, and ε prints short and exact."""

from __future__ import annotations

import pytest

from explorer.attacks import AttackConfig
from explorer.models import list_specs
from explorer.runs import rules

CASES = [("fgsm", False, (1, 8, 8)), ("pgd", False, (1, 28, 28)), ("fgsm", True, (3, 224, 224)),
         ("pgd", True, (3, 224, 224)), ("pgd-l2", False, (1, 8, 8)), ("pgd-l2", True, (3, 224, 224))]


@pytest.mark.parametrize(("attack", "photo", "shape"), CASES)
def test_the_default_eps_is_a_grid_point_exactly(attack, photo, shape):
    grid = rules.eps_grid(attack, photo, shape)
    assert len(grid) == rules.GRID_POINTS
    assert all(a < b for a, b in zip(grid, grid[1:])), "the grid must stay strictly increasing"
    assert grid[0] == 0.0 and grid[-1] == rules.default_eps_max(attack, photo)
    assert rules.default_eps(attack, photo) in grid  # 0.15, 8/255 or 0.5, not 0.1508 or 7.87/255


def test_defaults_are_the_round_values_the_other_pages_use():
    assert rules.default_eps("fgsm", False) == 0.15
    assert rules.default_eps("fgsm", True) == 8 / 255
    assert rules.eps_text(rules.default_eps("fgsm", True), True) == "8/255"
    assert rules.eps_text(rules.default_eps("fgsm", False), False) == "0.15"


@pytest.mark.parametrize(("attack", "photo", "shape"), CASES)
def test_every_grid_value_prints_short_and_parses_back_exactly(attack, photo, shape):
    for eps in rules.eps_grid(attack, photo, shape) + rules.eps_grid(attack, photo, shape, n=17):
        text = rules.eps_flag(eps)
        assert len(text) <= 10, text
        assert rules.parse_eps(text) == eps, (text, eps)


def test_eps_flag_examples():
    assert rules.eps_flag(0.15) == "0.15"
    assert rules.eps_flag(8 / 255) == "8/255"
    assert rules.eps_flag(0.5) == "0.5"
    assert rules.eps_flag(0.1 + 0.2) == repr(0.1 + 0.2)  # no shorter exact form: the full value, never a wrong one


def test_the_reproduce_command_prints_eps_compactly():
    for eps, text in [(8 / 255, "--eps 8/255"), (0.15, "--eps 0.15"), (rules.eps_grid("fgsm", False, (1, 8, 8))[21],
                                                                           "--eps 0.16667")]:
        line = rules.cli_command("digits-cnn", "digits:0", rules.point_config(rules.sweep_config("fgsm", 0.5), eps))
        assert text in line.split(" --attack")[1], line


def test_model_names_spell_datasets_properly():
    names = [s.name for s in list_specs()]
    assert "MNIST CNN" in names and "MNIST MLP" in names and "Digits CNN" in names
    assert not any(n.startswith("Mnist") for n in names)


def test_attack_config_is_untouched_by_the_compact_grid():
    assert AttackConfig("fgsm", eps=0.15).eps == 0.15
