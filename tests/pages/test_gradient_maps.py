"""AppTest of the Gradient maps page: clean vs adversarial maps, every method, URL state, bad input, several models,
and a torchvision model with fabricated weights."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.attacks import ATTACKS
from explorer.attributions import METHODS
from explorer.models.imagenet import save_random_checkpoint

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
PAGE = "pages/gradient_maps.py"
MAP_TITLES = ("clean · true class", "clean · flip class", "adversarial · true class", "adversarial · flip class")


def run_page(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page(PAGE)
    return at.run()


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly specs on the page by widget key (the element id ends with the key)."""
    out = {}
    for c in at.get("plotly_chart"):
        out[c.proto.id.rsplit("-", 1)[-1]] = json.loads(c.proto.spec)
    return out


def titles(spec: dict) -> list[str]:
    return [a["text"] for a in spec["layout"].get("annotations", [])]


def panel_name(title: str) -> str:
    """"adversarial<br>true class<br>7 (1%)" -> "adversarial · true class" (titles wrap over lines at narrow widths)."""
    return " · ".join(title.split("<br>")[:2])


def maps_panels(spec: dict) -> list[str]:
    """The titles of the panels that hold a map (the grid's image-only column excluded)."""
    return [t for t in titles(spec) if any(panel_name(t).startswith(m) for m in MAP_TITLES)]


def qp(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def test_default_digits_model_shows_clean_and_adversarial_maps_for_both_classes():
    at = run_page()
    assert not at.exception
    assert at.title[0].value == "Gradient maps"
    specs = charts(at)
    grid = specs["gm_grid"]
    assert maps_panels(grid) and [panel_name(t) for t in maps_panels(grid)] == list(MAP_TITLES)
    assert sum(1 for d in grid["data"] if d["type"] == "heatmap") == 6  # 4 maps + 2 see-through image panels
    assert "gm_signs" in specs  # the perturbation's signs next to the true class's gradient
    # the shared attack settings are written to the URL
    assert qp(at, "attack") == "fgsm" and float(qp(at, "eps")) == pytest.approx(0.15)
    assert qp(at, "map") is None  # the default method (saliency) is dropped from the link
    # FGSM: |δ| is uniform, so the page shows sign agreement instead of a correlation
    labels = {m.label: m.value for m in at.metric}
    assert labels["Correlation |δ| ~ |map|"] == "n/a for FGSM"
    assert float(labels["Sign agreement of δ with ∇ true class"]) < 0  # FGSM pushes against the true class


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_renders(method):
    at = run_page()
    at.selectbox(key="gm_method").set_value(method).run()
    assert not at.exception and not at.error
    assert qp(at, "map") == (None if method == "saliency" else method)  # the default is dropped from the link
    grid = charts(at)["gm_grid"]
    assert len(maps_panels(grid)) == 4
    assert any(METHODS[method].url in m.value for m in at.markdown)  # the paper is cited


def test_slow_method_twice_replays_from_the_cache_without_error():
    at = run_page(map="smoothgrad")
    assert not at.exception
    at.slider(key="gm_opacity").set_value(0.4).run()  # a cache hit replays the (emptied) progress bar
    assert not at.exception and len(maps_panels(charts(at)["gm_grid"])) == 4


def test_url_attack_and_eps_are_read_and_iterative_attacks_report_a_correlation():
    at = run_page(attack="pgd", eps="0.3", steps="5")
    assert not at.exception and not at.warning
    assert at.selectbox(key="gm_attack").value == "pgd"
    assert at.slider(key="gm_eps_small").value == pytest.approx(0.3)
    assert at.number_input(key="gm_steps").value == 5
    assert "PGD (L∞), ε = 0.3" in at.expander[0].label
    assert qp(at, "eps") == "0.3" and qp(at, "steps") == "5"
    corr = {m.label: m.value for m in at.metric}["Correlation |δ| ~ |map|"]
    assert -1.0 <= float(corr) <= 1.0
    assert "gm_perturbation" in charts(at)


def test_changing_eps_in_the_expander_writes_the_url():
    at = run_page()
    at.slider(key="gm_eps_small").set_value(0.25).run()
    assert not at.exception and float(qp(at, "eps")) == pytest.approx(0.25)
    at.selectbox(key="gm_attack").set_value("bim").run()
    assert not at.exception and qp(at, "attack") == "bim"


@pytest.mark.parametrize("params, text", [
    ({"eps": "2"}, "ε"), ({"eps": "nope"}, "ε"), ({"attack": "laser"}, "Unknown attack"),
    ({"steps": "0"}, "steps"), ({"target": "42"}, "target"), ({"map": "magic"}, "Unknown method"),
])
def test_bad_url_values_warn_and_fall_back(params, text):
    at = run_page(**params)
    assert not at.exception
    assert any(text in w.value for w in at.warning)
    assert len(maps_panels(charts(at)["gm_grid"])) == 4
    if "eps" in params:
        assert at.slider(key="gm_eps_small").value == pytest.approx(0.15)


def test_an_l2_radius_above_one_is_accepted_for_pgd_l2():
    """ε is checked against the attack's own bound: an L2 radius shared from Attack Studio may exceed 1."""
    at = run_page(attack="pgd-l2", eps="1.5", steps="5")
    assert not at.exception and not at.error and not at.warning
    assert at.slider(key="gm_eps_small").value == pytest.approx(1.5)
    assert qp(at, "eps") == "1.5"
    at = run_page(attack="pgd-l2", eps="9")  # beyond the 8x8 image's diagonal (8)
    assert any("outside [0, 8]" in w.value for w in at.warning)


def test_target_equal_to_the_true_label_warns_and_runs_untargeted():
    at = run_page()
    true = int(at.markdown[[m.value.startswith("#### ") for m in at.markdown].index(True)].value.split()[1])
    at = run_page(target=str(true))
    assert not at.exception
    assert any("true class" in w.value for w in at.warning)
    assert len(maps_panels(charts(at)["gm_grid"])) == 4


def test_targeted_attack_from_the_url():
    at = run_page(attack="pgd", eps="0.5", target="3")
    assert not at.exception and not at.warning
    assert at.selectbox(key="gm_target").value == 3


def test_two_models_side_by_side_and_gradcam_skips_the_mlp_with_a_note():
    at = run_page()
    assert at.multiselect(key="gm_models").value == ["digits-cnn", "digits-mlp"]
    grid = charts(at)["gm_models_grid"]
    assert [t.split("<br>")[0] for t in titles(grid)] == ["Digits CNN", "Digits MLP"]
    at.selectbox(key="gm_method").set_value("gradcam").run()
    assert not at.exception
    assert any("Digits MLP: skipped" in c.value for c in at.caption)
    assert "gm_models_grid" in charts(at)  # the CNN's map is still shown


def test_one_model_asks_for_a_second():
    at = run_page()
    at.multiselect(key="gm_models").set_value(["digits-cnn"]).run()
    assert not at.exception and any("at least two" in i.value for i in at.info)


def test_gradcam_on_an_mlp_is_a_message_not_a_crash():
    at = run_page(model="digits-mlp", map="gradcam")
    assert not at.exception
    assert any("Grad-CAM cannot run" in w.value for w in at.warning)


def test_torchvision_model_with_fabricated_weights_on_a_sample_photo(tmp_torch_home):
    save_random_checkpoint("resnet18")
    at = run_page(model="resnet18", image="photo:chelsea")
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="model_pick").value == "resnet18"
    assert at.slider(key="gm_eps_photo").value == pytest.approx(8.0)  # ε in k/255 for photos
    assert float(qp(at, "eps")) == pytest.approx(8 / 255, rel=1e-4)
    assert len(maps_panels(charts(at)["gm_grid"])) == 4
    assert any(e.label.startswith("Per-channel view") for e in at.expander)
    assert "gm_channels" in charts(at)
    at.selectbox(key="gm_method").set_value("gradcam").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="gm_layer_resnet18").value == "layer4"
    assert len(maps_panels(charts(at)["gm_grid"])) == 4


@pytest.mark.parametrize("attack", ATTACKS)
def test_every_shared_attack_runs(attack):
    at = run_page(attack=attack, eps="0.2", steps="5")
    assert not at.exception and not at.error and not at.warning
    assert at.selectbox(key="gm_attack").value == attack
    assert len(maps_panels(charts(at)["gm_grid"])) == 4
