"""The Robustness lab in a real browser: click a curve's point and a matrix cell, see their failing images, and
follow a link to Attack Studio that carries the model, the image, the attack and ε (headless Chromium)."""

from __future__ import annotations

from urllib.parse import parse_qs, urljoin, urlparse

import pytest

pytestmark = pytest.mark.browser

LAB = "/robustness_lab?models=digits-cnn,digits-mlp,digits-softmax&attacks=fgsm,pgd&n=40"


def plot_area(chart):
    """The bounding box of a Plotly chart's plotting area (its drag layer)."""
    box = chart.locator(".nsewdrag").first.bounding_box()
    assert box, "the chart has no plotting area"
    return box


def studio_links(page) -> list[str]:
    links = page.get_by_test_id("stMain").locator('a[href*="attack_studio?"]')
    links.first.wait_for()
    return [links.nth(i).get_attribute("href") for i in range(links.count())]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_click_a_point_and_a_cell_then_open_attack_studio(app_server, page, wait_for_app, screenshot):
    page.goto(app_server + LAB)
    wait_for_app(page)
    curves = page.get_by_test_id("stPlotlyChart").filter(has=page.locator(".scatterlayer")).first
    curves.scroll_into_view_if_needed()
    # the bold worst-case marker of the first model at the 4th ε (accuracy well below 100%): a point element
    # of the trace drawn with the widest line; click at its centre (Plotly picks points from the mouse position)
    points = curves.locator(".scatterlayer .trace").filter(has=page.locator("path.point"))
    target = None
    for i in range(points.count()):
        width = points.nth(i).locator("path.js-line").first.evaluate("el => getComputedStyle(el).strokeWidth")
        if float(width.rstrip("px")) > 4:
            target = points.nth(i).locator("path.point").nth(3)
            break
    assert target is not None, "no bold worst-case curve"
    box = target.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("failing images").first.wait_for()
    wait_for_app(page)
    page.get_by_text("failing images").first.scroll_into_view_if_needed()
    screenshot(page, "robustness_lab_point_clicked")
    links = studio_links(page)
    q = query(links[0])
    assert q["model"] == "digits-cnn" and q["attack"] in ("fgsm", "pgd") and q["image"].startswith("digits:")
    assert 0 < float(q["eps"]) <= 0.35

    # a matrix cell: source digits-cnn (row 0) -> target digits-softmax (column 2)
    matrix = page.get_by_test_id("stPlotlyChart").filter(has=page.locator(".heatmaplayer")).first
    matrix.scroll_into_view_if_needed()
    area = plot_area(matrix)
    page.mouse.click(area["x"] + area["width"] * 2.5 / 3, area["y"] + area["height"] * 0.5 / 3)
    title = page.get_by_text("adversarials made on digits-cnn that fool digits-softmax")
    title.wait_for()
    wait_for_app(page)
    title.scroll_into_view_if_needed()
    screenshot(page, "robustness_lab_cell_clicked")
    cell_links = [h for h in studio_links(page) if h not in links]
    assert cell_links, "the cell's failing images have no Attack Studio link"
    cq = query(cell_links[0])
    assert cq["model"] == "digits-cnn" and cq["attack"] == "pgd" and cq["image"].startswith("digits:")

    # the link opens Attack Studio on that model, image, attack and ε
    page.goto(urljoin(page.url, cell_links[0]))
    wait_for_app(page)
    screenshot(page, "robustness_lab_link_in_studio")
    opened = query(page.url)
    assert opened["model"] == "digits-cnn" and opened["image"] == cq["image"] and opened["attack"] == "pgd"
    # Attack Studio sweeps 64 values of ε over its range (0.5 here) and snaps a linked ε to the nearest of them
    assert abs(float(opened["eps"]) - float(cq["eps"])) <= 0.5 / 63 / 2 + 1e-9
    assert not page.js_errors, page.js_errors
