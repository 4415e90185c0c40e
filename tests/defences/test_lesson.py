"""The "defences" lesson: it loads, and every step's link opens its page without an error (offline, digits)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from explorer.lessons import list_lessons, resolve_step
from tests.queue_helpers import settle

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def test_the_defences_lesson_loads_and_every_step_opens():
    lesson = next(les for les in list_lessons() if les.name == "defences")
    assert len(lesson.steps) >= 4 and lesson.title == "Defences, evaluated honestly"
    pages = []
    for k in range(1, len(lesson.steps) + 1):
        step = resolve_step(lesson, k)
        assert step.note is None  # every model it names is available offline (digits)
        at = AppTest.from_file(APP, default_timeout=600)
        for key, value in {**step.params, "lesson": lesson.name, "step": str(k)}.items():
            at.query_params[key] = value
        at.switch_page(f"pages/{step.page}.py")
        settle(at.run())
        assert not at.exception, (k, at.exception)
        assert not at.error, (k, [e.value for e in at.error])
        assert any(f"step {k} of" in m.value for m in at.markdown), k  # the lesson bar, the lab page included
        pages.append(step.page)
        if step.page == "robustness_lab" and k > 1:  # a defended model is picked: its three columns are shown
            assert any("transfer from the baseline" in d.value.columns for d in at.dataframe), k
        if k == 3:  # the binarising front: the naive white-box attack fails, BPDA does not
            assert any("Hidden, not robust" in w.value for w in at.warning)
        if k == 4:  # PGD adversarial training: exact gradients, nothing hidden
            assert any("exact end-to-end gradients" in s.value for s in at.success)
    assert pages.count("robustness_lab") >= 3 and "boundaries" in pages
