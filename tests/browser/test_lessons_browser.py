"""A lesson in a real browser with the network off: every request that does not go to the local server is blocked
(Playwright route) and recorded; none may be attempted (fonts, scripts, telemetry included). Also drives the
Lessons and Presenter pages and saves screenshots."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from explorer.lessons import load_lesson, resolve_step

pytestmark = pytest.mark.browser


def offline(page) -> list[str]:
    """Block and record every request whose host is not 127.0.0.1 (what a classroom without network sees)."""
    attempted: list[str] = []

    def route(r):
        if urlparse(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            attempted.append(r.request.url)
            r.abort()

    page.context.route("**/*", route)
    return attempted


def test_a_lesson_step_link_runs_offline_and_nothing_leaves_the_machine(app_server, page, wait_for_app,
                                                                       screenshot):
    attempted = offline(page)
    step = resolve_step(load_lesson("boundary-up-close"), 1)
    page.goto(f"{app_server}/{step.url()}")
    wait_for_app(page)
    bar = page.locator(".st-key-lesson_bar")
    bar.wait_for()
    assert "step 1 of 4" in bar.inner_text()
    page.locator(".st-key-lesson_next button").click()
    page.wait_for_url(lambda url: "step=2" in url)
    page.locator(".st-key-lesson_bar").get_by_text("step 2 of 4", exact=False).wait_for()
    wait_for_app(page)
    screenshot(page, "lesson_step", full_page=False)

    page.goto(f"{app_server}/lessons")
    wait_for_app(page, charts=False)
    assert page.get_by_text("The boundary up close").first.is_visible()
    screenshot(page, "lessons", full_page=False)

    page.goto(f"{app_server}/presenter")
    wait_for_app(page, charts=False)
    page.get_by_role("button", name="Start a room").click()
    page.locator(".st-key-room_card").wait_for()
    wait_for_app(page, charts=False)
    page.get_by_role("button", name="Show this step to the class").click()
    wait_for_app(page, charts=False)
    screenshot(page, "presenter", full_page=False)
    assert page.locator(".st-key-room_card").inner_text().count("?room=") == 1
    assert not page.js_errors
    assert attempted == [], f"requests off the machine were attempted: {attempted}"


def test_a_student_follows_the_teachers_pushed_step_live(app_server, browser, page, wait_for_app):
    """Two real browser sessions: the student's page moves when the teacher shows a step, and again at the next
    step (the server pushes it: the room watcher reruns the student's session)."""
    page.goto(f"{app_server}/presenter")
    wait_for_app(page, charts=False)
    page.get_by_role("button", name="Start a room").click()
    page.locator(".st-key-room_card").wait_for()
    wait_for_app(page, charts=False)
    code = page.get_by_test_id("stMetricValue").first.inner_text().strip()
    student = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    try:
        student.goto(f"{app_server}/?room={code}")
        student.get_by_text(f"Following room {code}").wait_for(timeout=90_000)
        wait_for_app(student, charts=False)
        page.get_by_role("button", name="Show this step to the class").click()
        student.wait_for_url(lambda url: "/boundaries" in url and "lesson=boundary-up-close" in url, timeout=30_000)
        student.locator(".st-key-lesson_bar").get_by_text("step 1 of 4", exact=False).wait_for(timeout=60_000)
        assert f"room={code}" in student.url
        # the next step follows too
        wait_for_app(page, charts=False)
        page.get_by_label("Step", exact=True).fill("2")
        page.get_by_label("Step", exact=True).press("Enter")
        wait_for_app(page, charts=False)
        page.get_by_role("button", name="Show this step to the class").click()
        student.locator(".st-key-lesson_bar").get_by_text("step 2 of 4", exact=False).wait_for(timeout=60_000)
    finally:
        student.context.close()


def test_a_step_hides_the_controls_it_names(app_server, page, wait_for_app, screenshot):
    step = resolve_step(load_lesson("linearity"), 1)  # hide = ["steps", "target"] on Attack Studio
    page.goto(f"{app_server}/{step.url()}")
    wait_for_app(page)
    main = page.get_by_test_id("stMain")
    assert main.get_by_role("combobox", name="Attack", exact=True).is_visible()
    assert not main.get_by_label("Steps", exact=True).is_visible()
    assert not main.get_by_text("Targeted", exact=True).is_visible()
    assert page.get_by_test_id("scrub-slider").is_visible()  # the step's own control stays
    screenshot(page, "lesson_hide", full_page=False)
