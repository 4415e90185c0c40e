"""The home page in a real browser: live prediction, URL state, a bad link (headless Chromium, live server)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser


def expected(model_id: str, sample_id: str) -> tuple[str, str]:
    """(model display name, predicted class name) computed through the library, as the page should show them."""
    from explorer.images import load_sample, to_model_input
    from explorer.inference import predict_proba
    from explorer.models import get_spec, load_model

    spec = get_spec(model_id)
    x = to_model_input(load_sample(sample_id), spec.input_shape, resize=spec.resize)
    probs = predict_proba(load_model(model_id), x[None])[0]
    return spec.name, spec.class_names[int(probs.argmax())]


def sidebar_select(page, label: str) -> str:
    """The text a sidebar selectbox shows (Streamlit renders it as a combobox input named by its label)."""
    box = page.get_by_test_id("stSidebar").get_by_role("combobox", name=label, exact=True)
    box.wait_for()
    return box.input_value()


def prediction(page) -> str:
    """The predicted class of the clean image, as the home page shows it: a "Prediction" metric, or the clean
    image's caption ``clean: “7” (100.0%)`` (the layout with the live FGSM example)."""
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Prediction", exact=True))
    caption = page.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"^\s*clean: “"))
    found = metric.or_(caption).first
    found.wait_for()
    if metric.count():
        text = metric.first.inner_text()
        assert re.search(r"\d+(\.\d)?% confidence", text), text
        return metric.first.get_by_test_id("stMetricValue").inner_text().strip()
    text = caption.first.inner_text()
    match = re.match(r"\s*clean: “(.+?)” \((\d+(\.\d)?)%\)", text)
    assert match, f"unexpected caption {text!r}"
    return match.group(1)


def assert_image_loaded(page):
    img = page.get_by_test_id("stMain").locator('[data-testid="stImage"] img').first
    img.wait_for()
    assert img.evaluate("el => el.complete && el.naturalWidth > 0"), "the sample image did not load"


def query_of(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_home_shows_a_live_prediction_on_the_default_model(open_app, screenshot):
    page = open_app()
    defaults = query_of(page)  # the page writes its default model and image into the link
    assert defaults.get("model") == "digits-cnn" and defaults.get("image", "").startswith("digits:")
    model_name, label = expected("digits-cnn", defaults["image"])

    assert sidebar_select(page, "Model") == model_name
    assert_image_loaded(page)
    assert prediction(page) == label
    assert not page.js_errors, page.js_errors
    screenshot(page, "home-default")


def test_url_selects_model_and_image(open_app, screenshot):
    page = open_app("?model=digits-mlp&image=digits:3")
    model_name, label = expected("digits-mlp", "digits:3")

    assert model_name == "Digits MLP"
    assert sidebar_select(page, "Model") == "Digits MLP"
    assert "#3)" in sidebar_select(page, "Image")  # "digit N (digits test #3)"
    assert_image_loaded(page)
    assert prediction(page) == label
    assert query_of(page) == {"model": "digits-mlp", "image": "digits:3"}
    assert not page.js_errors, page.js_errors
    screenshot(page, "home-url-digits-mlp")


def test_unknown_model_in_url_warns_and_renders_the_default(open_app, screenshot):
    page = open_app("?model=nope")
    query = query_of(page)
    assert query.get("model") == "digits-cnn"  # the bad id is replaced in the link
    model_name, label = expected("digits-cnn", query["image"])

    warning = page.get_by_test_id("stSidebar").get_by_test_id("stAlert").filter(has_text="Unknown model")
    warning.wait_for()
    assert "nope" in warning.inner_text()
    assert sidebar_select(page, "Model") == model_name
    assert prediction(page) == label
    assert page.get_by_test_id("stException").count() == 0
    screenshot(page, "home-bad-model-url")


def test_picking_a_model_in_the_sidebar_reruns_and_updates_the_link(open_app, wait_for_app):
    page = open_app("?model=digits-cnn&image=digits:3")
    _, label = expected("digits-mlp", "digits:3")

    page.get_by_test_id("stSidebar").get_by_role("combobox", name="Model", exact=True).click()
    page.get_by_role("option", name="Digits MLP", exact=True).click()
    wait_for_app(page)

    assert sidebar_select(page, "Model") == "Digits MLP"
    assert prediction(page) == label
    assert query_of(page) == {"model": "digits-mlp", "image": "digits:3"}  # written by the rerun's script
    assert not page.js_errors, page.js_errors
