"""Hostile files through the real sidebar upload widget (headless Chromium, live server): each gets its one-line
message, no traceback reaches the page, and the app keeps working (a sample image picked afterwards predicts)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

from tests.security.hostile import header_only_png, strip_png

pytestmark = pytest.mark.browser

HOSTILE = {
    "strip": ("strip.png", lambda: strip_png(20_000, 1), r"aspect ratio of 20,000:1.*EXPLORER_MAX_ASPECT"),
    "bomb": ("bomb.png", lambda: header_only_png(100_000, 100_000),
             r"decompression bomb.*EXPLORER_MAX_SOURCE_PIXELS"),
    "text": ("notes.png", lambda: b"name,score\nalice,3\nbob,5\n" * 40, r"is a text file; accepted formats"),
}


def sidebar_upload(page, name: str, data: bytes) -> None:
    uploader = page.get_by_test_id("stSidebar").get_by_test_id("stFileUploader").filter(has_text="upload an image")
    uploader.locator('input[type="file"]').set_input_files({"name": name, "mimeType": "image/png", "buffer": data})


def no_traceback(page) -> None:
    assert page.get_by_test_id("stException").count() == 0
    text = page.inner_text("body")
    assert "Traceback" not in text and 'File "/' not in text and "site-packages" not in text


def predicted_class(page) -> str:
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Prediction", exact=True))
    caption = page.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"^\s*clean: “"))
    found = metric.or_(caption).first
    found.wait_for()
    if metric.count():
        return metric.first.get_by_test_id("stMetricValue").inner_text().strip()
    return re.match(r"\s*clean: “(.+?)”", caption.first.inner_text()).group(1)


def expected_class(model_id: str, sample_id: str) -> str:
    from explorer.images import load_sample, to_model_input
    from explorer.inference import predict_proba
    from explorer.models import get_spec, load_model

    spec = get_spec(model_id)
    x = to_model_input(load_sample(sample_id), spec.input_shape, resize=spec.resize)
    return spec.class_names[int(predict_proba(load_model(model_id), x[None])[0].argmax())]


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_upload_gets_one_line_and_the_app_keeps_working(case, open_app, wait_for_app, screenshot):
    name, build, pattern = HOSTILE[case]
    page = open_app("?model=digits-cnn&image=digits:0")
    sidebar_upload(page, name, build())
    wait_for_app(page)
    alert = page.get_by_test_id("stSidebar").get_by_test_id("stAlert").filter(has_text=name)
    alert.wait_for()
    message = alert.inner_text().strip()
    assert re.search(pattern, message), message
    assert "\n" not in message, message
    no_traceback(page)
    screenshot(page, f"hostile-upload-{case}")

    # The page still works: the sample stays shown, another sample is picked and predicted, then a good upload
    # replaces the hostile one and is predicted.
    assert predicted_class(page) == expected_class("digits-cnn", "digits:0")
    page.get_by_test_id("stSidebar").get_by_role("combobox", name="Image", exact=True).click()
    page.get_by_role("option", name=re.compile(r"#5\)")).first.click()
    expect(page).to_have_url(re.compile(r"image=digits(:|%3A)5(&|$)"))
    wait_for_app(page)
    query = {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}
    assert query.get("image") == "digits:5"
    assert predicted_class(page) == expected_class("digits-cnn", "digits:5")
    good = sample_png("digits:3")
    sidebar_upload(page, "three.png", good)
    # The upload reaches the server before the rerun starts: wait for its effect, not just for an idle page.
    expect(page.get_by_test_id("stSidebar").get_by_test_id("stAlert").filter(has_text=name)).to_have_count(0)
    wait_for_app(page)
    assert predicted_class(page) == expected_upload_class("digits-cnn", good)
    no_traceback(page)
    assert not page.js_errors, page.js_errors


def sample_png(sample_id: str) -> bytes:
    """A gallery sample saved as a PNG file, 8x upscaled (what a visitor might upload)."""
    import io

    from PIL import Image

    from explorer.images import load_sample

    img = Image.fromarray(load_sample(sample_id).display_array()).resize((64, 64), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def expected_upload_class(model_id: str, data: bytes) -> str:
    from explorer.images import DecodedCache, decode_upload, to_model_input
    from explorer.inference import predict_proba
    from explorer.models import get_spec, load_model

    spec = get_spec(model_id)
    x = to_model_input(decode_upload(data, "three.png", cache=DecodedCache(0)), spec.input_shape, resize=spec.resize)
    return spec.class_names[int(predict_proba(load_model(model_id), x[None])[0].argmax())]
