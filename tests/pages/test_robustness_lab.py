"""AppTest of the Robustness lab (small N): curves, matrix, checks and a numbers table equal to the CLI's."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import explorer.runs.store as store_mod
from explorer.evaluation.report import curve_rows
from explorer.runs import run
from explorer.runs.evaluate import EvaluateRequest, eps_grid

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
PAGE = "pages/robustness_lab.py"


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(store_mod, "_default", None)
    yield
    store_mod._default = None


def run_page(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page(PAGE)
    return at.run()


def test_page_shows_curves_matrix_checks_and_the_cli_numbers(fresh_store):
    at = run_page(models="digits-softmax,digits-mlp", attacks="fgsm,pgd", n="30")
    assert not at.exception, at.exception
    assert not at.error
    keys = {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    assert {"curves", "matrix"} <= keys
    tables = at.dataframe
    checks = tables[0].value
    assert set(checks["status"]) <= {"PASS", "WARN", "n/a"} and len(checks) == 2 * 8
    numbers = tables[1].value
    req = EvaluateRequest(models=("digits-softmax", "digits-mlp"), attacks=("fgsm", "pgd"), eps=eps_grid(0.35, 8),
                          dataset="digits", n=30, steps=10)
    rows = curve_rows(run(req))
    assert list(numbers["accuracy"]) == [r["accuracy"] for r in rows]
    assert list(numbers["ci_low"]) == [r["ci_low"] for r in rows]


def test_no_attack_chosen_is_a_warning(fresh_store):
    at = run_page(models="digits-softmax", n="10")
    at.multiselect(key="lab_attacks").set_value([]).run()
    assert not at.exception
    assert any("at least one model and one attack" in w.value for w in at.warning)


def test_an_eps_grid_over_the_cap_is_one_clear_error(fresh_store, monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_EPS_POINTS", "16")
    at = run_page(models="digits-softmax", attacks="fgsm", n="10")
    assert not at.exception and not at.error
    at.number_input(key="lab_points").set_value(17).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["the ε grid has 17 values; this server allows at most 16 "
                                           "(EXPLORER_MAX_EPS_POINTS)"]
    assert at.multiselect(key="lab_models_digits").value == ["digits-softmax"]  # nothing lost
    at.number_input(key="lab_points").set_value(16).run()
    assert not at.exception and not at.error


def test_the_first_look_is_replaced_by_the_whole_set(fresh_store):
    at = run_page(models="digits-softmax", attacks="fgsm", n="70")  # above the first look's 60 images
    assert not at.exception and not at.error
    keys = [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")]
    assert "quick_curves" not in keys and "curves" in keys
    assert not any("First look" in c.value for c in at.caption)
    assert any("N = 70" in c.value for c in at.caption)
