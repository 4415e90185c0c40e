"""Every shipped lesson validates; bad lesson files fail at load with the file and step named; lesson links."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from explorer.lessons import (
    LessonError,
    app_pages,
    lesson_names,
    list_lessons,
    load_lesson,
    parse_hide,
    resolve_step,
    view_url,
)

SHIPPED = ("boundary-up-close", "defences", "feature-space", "linearity", "panda-vulture")


def test_every_shipped_lesson_is_valid():
    lessons = list_lessons()
    assert tuple(sorted(lesson.name for lesson in lessons)) == SHIPPED
    pages = app_pages()
    for lesson in lessons:
        assert len(lesson.steps) >= 3
        for step in lesson.steps:
            assert step.page in pages
            if step.question:
                assert 0 <= step.question.answer < len(step.question.choices)
                assert step.question.feedback


def test_the_photo_lesson_falls_back_to_digits_offline_with_a_note():
    lesson = load_lesson("panda-vulture")
    online = resolve_step(lesson, 3, available=lambda m: True)
    assert online.params["model"] == "resnet18" and online.params["target"] == "23" and online.note is None
    offline = resolve_step(lesson, 3, available=lambda m: m.startswith("digits"))
    assert offline.params["model"] == "digits-cnn" and offline.params["target"] == "3"
    assert "digit" in offline.note
    assert offline.params["attack"] == "pgd"  # the rest of the step is kept


def test_a_step_falls_back_when_its_image_is_missing_even_if_the_model_weights_were_kept():
    lesson = load_lesson("linearity")
    k = next(i for i in range(1, len(lesson.steps) + 1)
             if str(lesson.step(i).param_dict.get("image", "")).startswith("mnist"))
    kept = resolve_step(lesson, k, available=lambda m: True, image_available=lambda s: True)
    assert kept.params["image"].startswith("mnist") and kept.note is None
    gone = resolve_step(lesson, k, available=lambda m: True, image_available=lambda s: not s.startswith("mnist"))
    assert gone.params["image"].startswith("digits") and gone.params["model"].startswith("digits") and gone.note


def test_a_step_becomes_a_link_with_lesson_step_and_hide():
    lesson = load_lesson("panda-vulture")
    r = resolve_step(lesson, 1, available=lambda m: True)
    url = r.url()
    parts = urlsplit(url)
    assert parts.path == "attack_studio"
    q = parse_qs(parts.query)
    assert q["lesson"] == ["panda-vulture"] and q["step"] == ["1"] and q["model"] == ["resnet18"]
    assert q["hide"] == ["attack,steps,target"]
    assert parse_hide(q["hide"][0], "attack_studio") == ("attack", "steps", "target")
    assert parse_hide("eps,nonsense", "attack_studio") == ("eps",)
    assert view_url("home", {"model": "digits-cnn"}) == "?model=digits-cnn"  # the default page is the root
    assert view_url("boundaries", {"tab": "2-D lab"}, base="http://h:1/").startswith("http://h:1/boundaries?tab=2-D")
    with pytest.raises(LessonError, match="steps 1 to 4"):
        lesson.step(5)


def _write(tmp: Path, name: str, body: str) -> Path:
    p = tmp / f"{name}.toml"
    p.write_text(body)
    return p


GOOD_STEP = """
[[steps]]
title = "One"
text = "t"
page = "attack_studio"
params = { model = "digits-cnn", eps = "0.1" }
"""


@pytest.mark.parametrize("body, message", [
    ('title = "x"\n[[steps]]\ntitle = "Bad page"\ntext = "t"\npage = "nowhere"\n',
     r"bad\.toml, step 1 \(Bad page\): unknown page 'nowhere'"),
    ('title = "x"\n[[steps]]\ntitle = "Bad"\ntext = "t"\npage = "attack_studio"\nparams = { epsilon = "0.1" }\n',
     r"step 1 \(Bad\): unknown parameter 'epsilon' for page 'attack_studio' \(known: model, image, attack"),
    ('title = "x"\n' + GOOD_STEP + '[[steps]]\ntitle = "Two"\ntext = "t"\npage = "boundaries"\nparams = { map = "x" }\n',
     r"step 2 \(Two\): unknown parameter 'map' for page 'boundaries'"),
    ('title = "x"\n[[steps]]\ntitle = "M"\ntext = "t"\npage = "attack_studio"\nparams = { model = "gpt-9" }\n',
     r"step 1 \(M\): unknown model 'gpt-9'"),
    ('title = "x"\n[[steps]]\ntitle = "E"\ntext = "t"\npage = "attack_studio"\nparams = { eps = "lots" }\n',
     r"step 1 \(E\): eps = 'lots' is not a number"),
    ('title = "x"\n[[steps]]\ntitle = "H"\ntext = "t"\npage = "attack_studio"\nhide = ["lab_eps"]\n',
     r"cannot hide 'lab_eps' on page 'attack_studio'"),
    ('title = "x"\n[[steps]]\ntitle = "L"\ntext = "t"\npage = "attack_studio"\nparams = { step = "2" }\n',
     r"'step' is set by the lesson link itself"),
    ('title = "x"\n' + GOOD_STEP + '[steps.question]\nprompt = "?"\nchoices = ["a", "b"]\nanswer = 2\n',
     r"question.answer must be the index \(0 to 1\)"),
    ('title = "x"\n' + GOOD_STEP + '[steps.offline]\nparams = { target = "x" }\nnote = "n"\n',
     r"step 1 \(One\) \[offline\]: target = 'x' is not a whole number"),
    ('title = "x"\nsteps = []\n', r"at least one \[\[steps\]\]"),
    ('title = \n', r"not valid TOML"),
    ('title = "x"\ncolour = "red"\n' + GOOD_STEP, r"unknown field\(s\) colour"),
])
def test_a_bad_lesson_file_is_refused_naming_the_file_and_step(tmp_path, body, message):
    path = _write(tmp_path, "bad", body)
    with pytest.raises(LessonError, match=message) as info:
        load_lesson(path)
    assert str(path) in str(info.value) or "not valid TOML" not in message
    assert "\n" not in str(info.value)


def test_unknown_lesson_names_the_known_ones(tmp_path):
    with pytest.raises(LessonError, match="no lesson 'nope' \\(lessons: .*panda-vulture"):
        load_lesson("nope")
    with pytest.raises(LessonError, match="not a lesson name"):
        load_lesson("../etc/passwd")
    assert lesson_names(tmp_path) == []
