"""Every step of every shipped lesson opens its page without an error or a warning (AppTest, as this machine
resolves the step: offline fallbacks where a model is not available)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.lessons import app_pages, list_lessons, resolve_step

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
STEPS = [(lesson, k) for lesson in list_lessons() for k in range(1, len(lesson.steps) + 1)]


@pytest.mark.parametrize("lesson, k", STEPS, ids=[f"{lesson.name}-{k}" for lesson, k in STEPS])
def test_a_lesson_step_renders_its_view(lesson, k):
    r = resolve_step(lesson, k)
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page(app_pages()[r.page])
    for key, value in r.params.items():
        at.query_params[key] = value
    at.query_params["lesson"] = lesson.name
    at.query_params["step"] = str(k)
    t = time.perf_counter()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    # a lab step on a hidden-not-robust defence shows the check's warning on purpose (the defences lesson)
    warnings = [w.value for w in at.warning if not w.value.startswith("**Hidden, not robust**")]
    assert not warnings, warnings
    # the view took the step's settings: the widgets that the URL seeds hold the step's values
    widget = {"model": "model_pick", "slice_plane": "slice_plane", "lab_data": "lab_data", "proj": "pj_method",
              "attack": {"attack_studio": "as_attack", "projections": "pj_attack", "gradient_maps": "gm_attack"}}
    for key, w in widget.items():
        w = w.get(r.page) if isinstance(w, dict) else w
        if key in r.params and w is not None:
            assert at.session_state[w] == r.params[key], key
    print(f"{lesson.name} step {k}: {time.perf_counter() - t:.1f} s")
