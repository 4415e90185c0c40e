"""Attack Studio in a real browser: a deep link as a fresh server's first request, pick a sample, move the ε slider
past the flip with the keyboard, and see the adversarial label change (headless Chromium, live server)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser

SAMPLE = "digits:5"


def harness(config):
    """The browser harness (tests/browser/conftest.py) as pytest loaded it."""
    path = Path(__file__).with_name("conftest.py").resolve()
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == path:
            return plugin
    raise RuntimeError("tests/browser/conftest.py is not loaded")


@pytest.fixture(scope="module")
def fresh_server(request):
    """A server of this module's own, so that its very first request is the deep link below."""
    h = harness(request.config)
    if h.missing_prerequisite():
        pytest.skip(h.missing_prerequisite())
    log_path = h.artifacts_dir() / "streamlit-server-attack-studio.log"
    proc, base_url = h.start_server(log_path=log_path)
    try:
        try:
            h.wait_for_health(base_url, proc)
        except (RuntimeError, TimeoutError) as exc:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
            pytest.fail(f"{exc}\n--- server log tail ---\n{tail}", pytrace=False)
        yield base_url
    finally:
        h.stop_server(proc)


def expected_flip(model_id: str, sample_id: str) -> tuple[str, str, str]:
    """(sample name, true class name, class at the grid's largest ε) through the library, as the page computes them."""
    from explorer.attacks import sweep
    from explorer.runs import rules
    from explorer.images import load_sample, to_model_input
    from explorer.models import get_spec, load_model

    spec = get_spec(model_id)
    image = load_sample(sample_id)
    x = to_model_input(image, spec.input_shape, resize=spec.resize)
    grid = rules.eps_grid("fgsm", False, spec.input_shape)
    sw = sweep(load_model(model_id), x[None], image.label, rules.sweep_config("fgsm", grid[-1]), list(grid))
    assert sw.flip_eps is not None, "the sample must flip within the default range"
    return image.name, spec.class_names[image.label], spec.class_names[int(sw.pred[-1])]


def adversarial_label(page) -> str:
    card = page.get_by_test_id("scrub-adv-card")
    card.wait_for()
    return card.locator(".ae-card-value").inner_text().strip()


def wait_for_eps_in_url(page, eps: float) -> None:
    """The slider's value reaches the server (and the URL) once it rests: wait for that rerun."""
    page.wait_for_function("(e) => Math.abs(Number(new URL(location.href).searchParams.get('eps')) - e) < 1e-4",
                           arg=eps, timeout=60_000)


def nav_labels(page) -> list[str]:
    nav = page.get_by_test_id("stSidebarNav")
    nav.wait_for()
    # each link's text is "<material icon name>\n\n<title>"
    return [t.strip().splitlines()[-1].strip() for t in nav.get_by_test_id("stSidebarNavLink").all_inner_texts()]


def query_of(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_deep_link_pick_a_sample_and_slide_past_the_flip(fresh_server, page, wait_for_app, screenshot):
    sent: list[int] = []  # messages the browser sends to the server (a slider move must send none)
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(len(payload))))
    # the very first request of this server: a deep link straight to the page
    page.goto(f"{fresh_server}/attack_studio")
    wait_for_app(page)
    assert page.get_by_role("heading", name="Attack Studio").first.is_visible()
    labels = nav_labels(page)
    assert "Home" in labels and "Attack Studio" in labels, labels  # our st.navigation, not the pages/ folder
    assert urlparse(page.url).path.rstrip("/").endswith("attack_studio")
    screenshot(page, "attack-studio-deep-link")

    # pick a sample in the sidebar
    name, true_name, far_name = expected_flip("digits-cnn", SAMPLE)
    page.get_by_test_id("stSidebar").get_by_role("combobox", name="Image", exact=True).click()
    page.get_by_role("option", name=name, exact=True).click()
    wait_for_app(page)
    assert query_of(page).get("image") == SAMPLE

    thumb = page.get_by_test_id("scrub-slider")
    thumb.focus()
    page.keyboard.press("Home")  # ε = 0: the adversarial is the image itself
    assert adversarial_label(page) == true_name
    wait_for_eps_in_url(page, 0.0)
    wait_for_app(page)
    screenshot(page, "attack-studio-eps-zero")

    thumb.focus()
    n_sent = len(sent)
    page.keyboard.press("End")  # the largest ε of the grid: past the flip, answered in the browser
    assert adversarial_label(page) == far_name != true_name
    assert page.get_by_test_id("scrub-eps").inner_text() == "ε = 0.5"
    assert len(sent) == n_sent, "the slider move went to the server before the page answered it"
    wait_for_eps_in_url(page, 0.5)  # then, resting, it reaches the server and the share link
    wait_for_app(page)
    assert adversarial_label(page) == far_name  # the rerun did not move the slider back
    caption = page.get_by_test_id("scrub-grid-caption")
    assert "0.5" in caption.inner_text()
    marker = page.locator('[data-testid="scrub-chart"] [data-role="marker"]')
    assert float(marker.get_attribute("x1")) > 700  # the chart's current-ε line sits at the right end
    assert not page.js_errors, page.js_errors
    screenshot(page, "attack-studio-past-the-flip")

    # the downloads are made on click: the PNG is the 8-bit adversarial, the JSON record names the same label
    with page.expect_download() as png_download:
        page.get_by_role("button", name="Adversarial PNG").click()
    png = Path(png_download.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from explorer.attacks.quantize import from_png_bytes

    assert from_png_bytes(png).shape == (1, 8, 8)
    # the frame the browser drew (FGSM: clip(x + ε·sign) from the original and the sign map) is the server's
    # adversarial to within one 8-bit level
    drawn = page.evaluate("""() => {
        const c = document.querySelector('[data-testid="scrub-adv"] canvas');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).filter((_, k) => k % 4 === 0);
    }""")
    import numpy as np

    server = np.rint(from_png_bytes(png)[0] * 255).astype(int).reshape(-1)
    assert len(drawn) == 64 and np.abs(np.asarray(drawn) - server).max() <= 1
    with page.expect_download() as json_download:
        page.get_by_role("button", name="Run record (JSON)").click()
    record = json.loads(Path(json_download.value.path()).read_text())
    assert record["labels"]["adversarial_prediction"]["name"] == far_name
    assert record["image"]["id"] == SAMPLE and record["parameters"]["eps"] == pytest.approx(0.5)

    page.get_by_test_id("scrub-slider").focus()
    page.keyboard.press("ArrowLeft")  # one grid step back: still computed, still an answer
    wait_for_eps_in_url(page, 0.5 - 0.5 / 63)
    wait_for_app(page)
    assert float(query_of(page)["eps"]) == pytest.approx(0.5 - 0.5 / 63, rel=1e-4)
