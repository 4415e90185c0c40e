"""AppTest of the one attack-settings widget (``explorer.attack_settings``): for every registered attack, a URL
with non-default values of all its parameters reproduces them in the widgets, keeps them in the URL, and drops
defaults; bad values warn in one line; Attack Studio's ε range and a real page read the same keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.attacks import registry
from explorer.attacks.config import max_steps_allowed

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def widget_script(mode: str = "single", photo: bool = False) -> None:
    """A page holding only the widget (no model, no attack run): fast."""
    import streamlit as st

    from explorer.attack_settings import AttackWidget

    shape = (3, 224, 224) if st.session_state.get("photo") else (1, 8, 8)
    widget = AttackWidget("t", photo=bool(st.session_state.get("photo")), input_shape=shape,
                          mode=st.session_state.get("mode", "single"))
    st.session_state["summary"] = widget.summary()
    settings = widget.draw()
    st.session_state["settings"] = settings
    st.session_state["config"] = settings.config() if settings.eps_max is None else (
        settings.minimal_config() if settings.minimal else settings.sweep_config())


def run_widget(mode: str = "single", photo: bool = False, **params: str) -> AppTest:
    at = AppTest.from_function(widget_script, default_timeout=30)
    at.session_state["mode"] = mode
    at.session_state["photo"] = photo
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def other_value(p: registry.Param):
    """A valid value of ``p`` that is not its default (and its URL text)."""
    if p.kind == "bool":
        return (not p.default), "0" if p.default else "1"
    if p.kind == "alpha":
        return 0.2, "0.2"
    low, high = p.bounds()
    if p.kind == "int":
        value = int(p.default) + 1 if high is None or int(p.default) + 1 <= high else int(p.default) - 1
        if p.cap_steps:
            value = min(max_steps_allowed(), 7)
        return value, str(value)
    value = round((float(p.default) + float(high if high is not None else float(p.default) + 1.0)) / 2, 3)
    if value == p.default:
        value = round(float(p.default) + (p.step or 0.01), 3)
    return value, f"{value:.6g}"


def qp(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) and value else value or None


@pytest.mark.parametrize("attack", registry.names())
def test_a_url_with_non_default_parameters_reproduces_them_in_the_widgets(attack):
    spec = registry.get(attack)
    params = {p.name: other_value(p) for p in spec.params if p.name != "steps"}
    url = {name: text for name, (_, text) in params.items()}
    at = run_widget(attack=attack, eps="0.2", steps="5", **url)
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    assert at.selectbox(key="t_attack").value == attack
    if spec.has("steps"):
        assert at.number_input(key="t_steps").value == 5
    else:  # FGSM and Carlini-Wagner take no shared steps: no box, but the value is kept for the others
        assert "t_steps" not in [n.key for n in at.number_input]
        assert at.session_state["t_steps"] == 5 and qp(at, "steps") == "5"
    if not spec.minimal:
        assert at.slider(key="t_eps_small").value == pytest.approx(0.2)
    for name, (value, text) in params.items():
        widget_value = at.session_state[f"t_p_{attack}_{name}"]
        assert widget_value == pytest.approx(value) if not isinstance(value, bool) else widget_value is value, name
        assert qp(at, name) == text, name  # kept in the URL: not a default
    settings = at.session_state["settings"]
    assert dict(settings.values) == pytest.approx({n: v for n, (v, _) in params.items()})
    config = at.session_state["config"]
    for name, (value, _) in params.items():
        if name == "alpha":
            assert config.alpha == pytest.approx(0.2 * 0.2)  # a fraction of ε
        else:
            assert config.value(name) == pytest.approx(value), name
    from explorer.attack_settings import link_params

    link = link_params(config)
    for name, (_, text) in params.items():
        if not (name == "alpha" and spec.minimal):
            assert link[name] == text, name


def test_defaults_are_dropped_from_the_url_and_other_attacks_keys_removed():
    at = run_widget(attack="pgd", seed="0", random_start="1", restarts="3", momentum="0.9")
    assert not at.exception and not at.warning
    assert qp(at, "seed") is None and qp(at, "random_start") is None  # PGD's defaults
    assert qp(at, "restarts") is None and qp(at, "momentum") is None  # not PGD's parameters
    at.session_state["t_p_pgd_seed"] = 11
    at.run()
    assert qp(at, "seed") == "11"
    at.selectbox(key="t_attack").set_value("apgd").run()
    assert not at.exception and qp(at, "seed") == "11"  # a parameter APGD shares keeps its value
    assert at.session_state["t_p_apgd_seed"] == 11 and qp(at, "attack") == "apgd"


@pytest.mark.parametrize("params, text", [
    ({"attack": "apgd", "restarts": "0"}, "restarts"), ({"attack": "apgd", "rho": "abc"}, "not a number"),
    ({"attack": "pgd", "random_start": "maybe"}, "true/false"), ({"attack": "cw", "adam_steps": "2.5"}, "whole"),
    ({"attack": "bim", "alpha": "-1"}, "alpha"),
])
def test_bad_parameter_values_warn_in_one_line_and_use_the_default(params, text):
    at = run_widget(**params)
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(text in w and "\n" not in w for w in warnings), warnings
    name = next(k for k in params if k != "attack")
    assert qp(at, name) is None  # replaced by the default, which the URL drops


def test_units_follow_the_norm():
    at = run_widget(photo=True, attack="pgd", eps="8/255")
    assert not at.exception and at.slider(key="t_eps_photo").value == pytest.approx(8.0)  # k/255
    assert "k / 255" in at.slider(key="t_eps_photo").label and at.session_state["summary"] == "PGD (L∞), ε = 8/255"
    at = run_widget(photo=True, attack="pgd-l2", eps="1.5")
    assert not at.exception and at.slider(key="t_eps_photo_l2").value == pytest.approx(1.5)  # an L2 radius
    assert "L2 radius" in at.slider(key="t_eps_photo_l2").label
    assert at.session_state["config"].eps == pytest.approx(1.5)
    at = run_widget(attack="fgsm", eps="0.1")
    assert "pixel units" in at.slider(key="t_eps_small").label
    assert at.session_state["config"].eps == pytest.approx(0.1)


def test_sweep_mode_range_in_the_url():
    at = run_widget(mode="sweep", attack="pgd", range="1")
    assert not at.exception and not at.warning
    assert at.selectbox(key="t_range_small_linf").value == pytest.approx(1.0)
    assert at.session_state["config"].attack == "pgd" and qp(at, "range") == "1"
    at = run_widget(mode="sweep", attack="pgd", range="0.5")  # the default range for digits: dropped
    assert qp(at, "range") is None
    at = run_widget(mode="sweep", attack="pgd", range="0.3")
    assert any("ε range" in w.value for w in at.warning)


def test_attack_studio_reads_apgd_parameters_from_the_url():
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in {"attack": "apgd", "steps": "4", "restarts": "2", "rho": "0.5", "seed": "3"}.items():
        at.query_params[k] = v
    at.switch_page("pages/attack_studio.py")
    at.run()
    assert not at.exception and not at.error and not at.warning
    assert at.session_state["as_p_apgd_restarts"] == 2 and at.session_state["as_p_apgd_seed"] == 3
    assert at.session_state["as_p_apgd_rho"] == pytest.approx(0.5)
    assert qp(at, "restarts") == "2" and qp(at, "rho") == "0.5"
    command = at.code[0].value
    assert "--restarts 2" in command and "--rho 0.5" in command and "--seed 3" in command
