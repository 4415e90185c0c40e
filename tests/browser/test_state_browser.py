"""Shared state in a real browser: the sidebar's pick follows the user through every page (the navigation drops
the query string; the pages write it back), a full link of each page reproduces its view in a fresh browser
context, URL values are never rendered as links, and the favicon is a local file."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NAV = ["Attack Studio", "Gradient maps", "Boundaries", "Projections", "Home"]


def query_of(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def sidebar_select(page, label: str) -> str:
    box = page.get_by_test_id("stSidebar").get_by_role("combobox", name=label, exact=True)
    box.wait_for()
    return box.input_value()


def choose(page, label: str, option: str, wait_for_app, where=None) -> None:
    (where or page.get_by_test_id("stSidebar")).get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app(page)


def slider_value(page, label: str) -> str:
    thumb = page.get_by_test_id("stSlider").filter(has_text=label).locator("input[type='range']").first
    thumb.wait_for(state="attached")
    return thumb.input_value()


def number_value(page, label: str) -> str:
    box = page.get_by_test_id("stMain").get_by_label(label, exact=True).first
    box.wait_for()
    return box.input_value()


def test_the_sidebar_pick_follows_the_user_through_every_page(open_app, wait_for_app, screenshot):
    page = open_app()
    choose(page, "Model", "Digits MLP", wait_for_app)
    image = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Image", exact=True)
    image.click()
    pick = page.get_by_role("option").filter(has_text="#3)").first
    name = pick.inner_text().strip()
    pick.click()
    wait_for_app(page)
    assert query_of(page)["model"] == "digits-mlp" and query_of(page)["image"] == "digits:3"
    for title in NAV:
        page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
        wait_for_app(page)
        assert sidebar_select(page, "Model") == "Digits MLP", title
        assert sidebar_select(page, "Image") == name, title
        query = query_of(page)
        assert query.get("model") == "digits-mlp" and query.get("image") == "digits:3", (title, page.url)
        screenshot(page, f"state-follows-{title.lower().replace(' ', '-')}")
    assert not page.js_errors, page.js_errors


# Each page's full link with non-default settings, and what the view must show when it is opened fresh.
LINKS = {
    "home": ("?model=digits-mlp&image=digits:3", {}),
    "attack_studio": ("attack_studio?model=digits-mlp&image=digits:3&attack=bim&steps=7", {"number:Steps": "7"}),
    "gradient_maps": ("gradient_maps?model=digits-mlp&image=digits:3&map=smoothgrad&n_samples=10&sigma=0.2",
                      {"slider:Samples n": "10", "slider:Noise σ": "0.2"}),
    "boundaries": ("boundaries?model=digits-mlp&image=digits:3&lab_data=circles&lab_depth=3",
                   {"slider:Hidden layers": "3", "select:Dataset": "circles"}),
    "projections": ("projections?model=digits-mlp&image=digits:3&n=50&segments=0", {"number:N": "50"}),
}


@pytest.mark.parametrize("name", list(LINKS))
def test_a_full_link_reproduces_the_view_in_a_fresh_browser(name, browser, app_server, wait_for_app, screenshot):
    link, expect = LINKS[name]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # a fresh browser: no session, no cookies
    try:
        page = context.new_page()
        page.set_default_timeout(90_000)
        page.goto(f"{app_server}/{link}")
        wait_for_app(page)
        assert sidebar_select(page, "Model") == "Digits MLP"
        assert "#3)" in sidebar_select(page, "Image")
        for what, value in expect.items():
            kind, label = what.split(":", 1)
            if kind == "slider":
                assert float(slider_value(page, label)) == pytest.approx(float(value)), what
            elif kind == "number":
                assert number_value(page, label) == value, what
            else:
                assert page.get_by_test_id("stMain").get_by_role("combobox", name=label, exact=True
                                                                  ).input_value() == value, what
        wanted = parse_qs(urlparse(link).query)
        query = query_of(page)
        for key, values in wanted.items():
            assert query.get(key) == values[0], (key, page.url)  # the link still says the same
        assert page.get_by_test_id("stAlert").filter(has_text="in the link").count() == 0
        screenshot(page, f"state-link-{name}")
    finally:
        context.close()


def test_url_values_are_not_rendered_as_links_and_the_favicon_is_local(open_app, screenshot):
    page = open_app("attack_studio?attack=[Session expired - log in again](http://x.example)"
                    "&steps=<b>9</b>&image=../../etc/passwd")
    alerts = page.get_by_test_id("stAlert")
    text = " ".join(alerts.all_inner_texts())
    assert "[Session expired - log in again](http://" in text  # shown as typed (cut to 40 characters)
    assert "<b>9</b>" in text and "../../etc/passwd" in text
    assert alerts.locator("a").count() == 0 and alerts.locator("b").count() == 0
    icons = page.locator("link[rel*='icon']")
    hrefs = [icons.nth(i).get_attribute("href") or "" for i in range(icons.count())]
    assert hrefs and all(not h.startswith("http") or h.startswith(page.url.split("/attack_studio")[0])
                         for h in hrefs), hrefs
    assert all("googleapis" not in h and "gstatic" not in h for h in hrefs)
    screenshot(page, "state-escaped-link-values")


TOUR = ["Attack Studio", "Gradient maps", "Boundaries", "Projections", "Robustness lab", "Lessons", "Presenter",
        "Home"]
# What a clean server log may hold: Streamlit's own start-up lines. Anything logged as a warning or an error,
# and any traceback, fails the tour.
BAD_LOG = re.compile(r"WARNING|ERROR|Traceback|Session State API|\w+Warning:")
PATHS = {"Home": "", "Attack Studio": "attack_studio", "Gradient maps": "gradient_maps", "Boundaries": "boundaries",
         "Projections": "projections", "Robustness lab": "robustness_lab", "Lessons": "lessons",
         "Presenter": "presenter"}
TITLES = {"Home": "Adversarial Explorer", "Boundaries": "Decision boundaries", "Presenter": "Presenter mode"}


def go_to(page, title: str, wait_for_app) -> None:
    """Click a page in the navigation and wait for that page (its path, its title, the run's end)."""
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.wait_for_url(lambda url: urlparse(url).path.strip("/") == PATHS[title])
    page.get_by_test_id("stMain").locator("h1").filter(has_text=TITLES.get(title, title)).first.wait_for()
    wait_for_app(page)


def server_log() -> Path:
    """The log of the session's ``app_server`` (tests/browser/conftest.py writes it there)."""
    return Path(os.environ.get("ARTIFACTS_DIR", ROOT / "artifacts" / "screenshots")) / "streamlit-server.log"


def tiny_torchscript() -> bytes:
    """A TorchScript classifier of 8×8 RGB images (10 classes): the smallest model the sidebar form takes."""
    import io

    import torch

    torch.manual_seed(0)  # noqa: test-only fixture weights
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buf)
    return buf.getvalue()


def test_a_tour_of_every_page_has_no_console_errors_and_no_server_warnings(browser, app_server, wait_for_app,
                                                                         screenshot):
    log = server_log()
    start = log.stat().st_size if log.exists() else 0
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    outside: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(90_000)
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        # blob: URLs are the page's own objects (their origin follows the prefix); data: URLs never leave
        page.on("request", lambda r: outside.append(r.url)
                if urlparse(r.url.removeprefix("blob:")).hostname not in ("127.0.0.1", "localhost")
                and not r.url.startswith("data:")
                else None)
        page.goto(f"{app_server}/")
        wait_for_app(page)
        for title in TOUR:
            go_to(page, title, wait_for_app)
            screenshot(page, f"tour-{title.lower().replace(' ', '-')}")
        # add a model of one's own: the picker takes it (once warned "set via the Session State API")
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text("Your own model", exact=True).click()
        form = sidebar.get_by_test_id("stForm")
        form.locator('input[type="file"]').first.set_input_files(
            {"name": "tiny.pt", "mimeType": "application/octet-stream", "buffer": tiny_torchscript()})
        size = form.get_by_label("Input size (px)", exact=True)
        size.fill("8")
        size.press("Tab")
        form.get_by_role("button", name="Add model").click()
        wait_for_app(page)
        assert "tiny.pt" in sidebar_select(page, "Model")
        assert query_of(page)["model"].startswith("user:")
        go_to(page, "Attack Studio", wait_for_app)
        assert "tiny.pt" in sidebar_select(page, "Model")
        screenshot(page, "tour-user-model")
    finally:
        context.close()
    assert not errors, errors
    assert not outside, outside  # offline-safe: no request leaves the server (favicon and fonts are local)
    text = log.read_bytes()[start:].decode(errors="replace") if log.exists() else ""
    bad = [line for line in text.splitlines() if BAD_LOG.search(line)]
    assert not bad, text[-3000:]
