"""AppTest of the Lessons page and the lesson bar every page shows while ``lesson=`` is in the URL."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from explorer.lessons import list_lessons, resolve_step

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def qp(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def open_page(page: str, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page(page)
    return at.run()


def test_the_lessons_page_lists_every_lesson_with_a_link_per_step():
    at = open_page("pages/lessons.py")
    assert not at.exception and not at.error
    lessons = list_lessons()
    assert len(lessons) >= 4
    links = [link.proto for link in at.get("page_link")]
    for lesson in lessons:
        assert any(lesson.title == s.value for s in at.subheader)
        for k in range(1, len(lesson.steps) + 1):
            step = resolve_step(lesson, k)
            mine = [p for p in links if p.label.startswith(f"{k}. {step.step.title}")]
            assert mine, (lesson.name, k)
            assert f"lesson={lesson.name}" in mine[0].query_string and f"step={k}" in mine[0].query_string
            assert mine[0].page.endswith(f"{step.page}") or step.page in mine[0].page
    assert sum("presenter mode" in p.label for p in links) == len(lessons)


def test_the_lesson_bar_shows_the_step_and_next_opens_the_next_step():
    at = open_page("pages/boundaries.py", lesson="boundary-up-close", step="1", tab="2-D lab", lab_adv="0")
    assert not at.exception
    bar = [m.value for m in at.markdown if "step 1 of" in m.value]
    assert bar and "The boundary up close" in bar[0]
    assert at.button(key="lesson_prev").disabled and not at.button(key="lesson_next").disabled
    at.button(key="lesson_next").click().run()
    assert not at.exception
    assert qp(at, "step") == "2" and qp(at, "lesson") == "boundary-up-close"
    assert qp(at, "lab_adv") == "1"  # step 2's own parameter: adversarial training on
    at.switch_page("pages/boundaries.py").run()  # AppTest reruns its own page; a browser stays where it was sent
    assert any("step 2 of" in m.value for m in at.markdown)
    assert at.toggle(key="lab_adv").value is True


def test_a_question_gives_feedback_and_a_wrong_lesson_name_is_one_line():
    lesson = next(les for les in list_lessons() if any(s.question for s in les.steps))
    k = next(i for i, s in enumerate(lesson.steps, 1) if s.question)
    step = resolve_step(lesson, k)
    q = step.step.question
    at = open_page(f"pages/{step.page}.py", **step.params, lesson=lesson.name, step=str(k))
    wrong = (q.answer + 1) % len(q.choices)
    at.radio(key=f"lesson_q_{lesson.name}:{k}").set_value(wrong).run()
    assert at.error and at.error[0].value.startswith("Not quite.")
    at.radio(key=f"lesson_q_{lesson.name}:{k}").set_value(q.answer).run()
    assert at.success and at.success[0].value.startswith("Right.")

    bad = open_page("pages/home.py", lesson="no-such-lesson")
    assert not bad.exception
    assert [w.value for w in bad.warning if w.value.startswith("Lesson:")] == [
        "Lesson: no lesson 'no-such-lesson' (lessons: " + ", ".join(les.name for les in list_lessons()) + ")"]


def test_hidden_reads_the_links_hide_list():
    def app():
        import streamlit as st

        from explorer import teaching

        st.write(f"{teaching.hidden('attack')} {teaching.hidden('eps')} {teaching.hidden('steps')}")

    at = AppTest.from_function(app)
    at.query_params["hide"] = "attack, steps"
    at.run()
    assert at.markdown[0].value == "True False True"


def hidden_boxes(at: AppTest) -> set[str]:
    """The controls the page drew inside a hidden box (``explorer.teaching.slot``): ``ae-hide-<control>``."""
    out: set[str] = set()

    def walk(node):
        for c in getattr(node, "children", {}).values():
            block_id = str(getattr(getattr(c, "proto", None), "id", "") or "")
            if "-ae-hide-" in block_id:
                out.add(block_id.split("-ae-hide-", 1)[1])
            walk(c)
    walk(at.main)
    return out


def test_hide_in_a_link_hides_the_controls_but_keeps_their_values():
    at = open_page("pages/attack_studio.py", hide="attack,steps,target", attack="pgd", steps="7", target="3")
    assert not at.exception and not at.error
    assert hidden_boxes(at) == {"attack", "steps", "target", "target-class"}
    # the hidden widgets still hold the link's values, and the page computes with them
    assert at.selectbox(key="as_attack").value == "pgd" and at.number_input(key="as_steps").value == 7
    assert at.toggle(key="as_targeted").value is True and qp(at, "target") == "3"
    plain = open_page("pages/attack_studio.py", attack="pgd")
    assert hidden_boxes(plain) == set()


def test_hide_on_the_boundaries_page():
    at = open_page("pages/boundaries.py", tab="2-D lab", hide="lab_method,lab_norm", lab_method="fgsm")
    assert not at.exception and not at.error
    assert hidden_boxes(at) == {"lab_method", "lab_norm"}
    assert at.session_state["lab_method"] == "fgsm"
