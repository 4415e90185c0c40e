"""AppTest of presenter mode: a teacher's room, followers that follow pushed views, bad codes, a silent presenter.
Real room store (in-process), one AppTest session per browser."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import explorer.rooms as rooms
from explorer import teaching
from explorer.rooms import InProcessRoomStore, ViewState

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


@pytest.fixture(autouse=True)
def fresh_store(monkeypatch):
    """Each test its own real in-process room store (the process-wide one is swapped, not mocked)."""
    store = InProcessRoomStore(presenter_timeout_s=1.0)
    monkeypatch.setattr(rooms, "_store", store)
    return store


def qp(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def open_page(page: str, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page(page)
    return at.run()


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "warning", "error", "info", "success")
             for e in at.get(kind) if isinstance(getattr(e, "value", None), str)]
    return "\n".join(parts)


def start_room() -> tuple[AppTest, str, str]:
    teacher = open_page("pages/presenter.py")
    assert not teacher.exception
    teacher.button(key="room_start").click().run()
    assert not teacher.exception
    present = teacher.session_state[teaching.PRESENT_KEY]
    code = present["code"]
    assert len(code) == 6 and code.isalnum()
    assert any(m.value == code for m in teacher.metric)
    assert f"?room={code}" in teacher.get("code")[0].value
    return teacher, code, present["key"]


def test_a_follower_opens_the_view_the_teacher_pushes(fresh_store):
    teacher, code, key = start_room()
    # The teacher shows step 1 of the 2-D lab lesson: the follower lands on that page with every parameter.
    teacher.selectbox(key="pr_lesson").set_value("boundary-up-close").run()
    teacher.button(key="pr_show").click().run()
    assert not teacher.exception
    follow = fresh_store.follow(code)
    assert follow.view is not None and follow.view.page == "boundaries" and follow.version >= 1

    student = open_page("pages/home.py", room=code.lower())
    assert not student.exception, student.exception
    assert qp(student, "lesson") == "boundary-up-close" and qp(student, "step") == "1"
    assert student.title[0].value == "Decision boundaries" and qp(student, "room") == code
    assert student.selectbox(key="lab_data").value == "moons"
    assert f"Following room **{code}**" in texts(student)
    assert any(b.key == "lesson_next" for b in student.button)  # the lesson bar is on the followed page

    # The teacher moves on: the follower's next poll (here: its next run) switches to the new view.
    fresh_store.set_view(code, key, ViewState("home", {"model": "digits-mlp", "image": "digits:3"}))
    student.run()
    assert not student.exception
    assert qp(student, "model") == "digits-mlp" and qp(student, "image") == "digits:3"
    assert student.sidebar.selectbox(key="model_pick").value == "digits-mlp"


def test_break_away_keeps_the_students_view_and_rejoin_catches_up(fresh_store):
    teacher, code, key = start_room()
    fresh_store.set_view(code, key, ViewState("home", {"model": "digits-cnn", "image": "digits:1"}))
    student = open_page("pages/home.py", room=code)
    assert qp(student, "image") == "digits:1"
    student.button(key="room_break").click().run()
    fresh_store.set_view(code, key, ViewState("home", {"model": "digits-cnn", "image": "digits:5"}))
    student.run()
    assert qp(student, "image") == "digits:1" and "Exploring on your own" in texts(student)
    student.button(key="room_rejoin").click().run()
    assert not student.exception
    assert qp(student, "image") == "digits:5"


def test_an_unknown_room_code_is_one_clear_line():
    at = open_page("pages/presenter.py")
    at.text_input(key="room_code").set_value("ZZZZZZ").run()
    at.button(key="room_join").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "There is no room with code 'ZZZZZZ': check the code, or the room has ended (rooms expire after 12 "
        "hours without activity)."]
    link = open_page("pages/home.py", room="nope!")
    assert not link.exception and "There is no room with code" in link.sidebar.error[0].value


def test_a_silent_presenter_leaves_the_followers_view_with_a_notice(monkeypatch):
    store = InProcessRoomStore(presenter_timeout_s=3.0)
    monkeypatch.setattr(rooms, "_store", store)
    room = store.create()
    store.set_view(room.code, room.presenter_key, ViewState("home", {"image": "digits:2"}))
    student = open_page("pages/home.py", room=room.code)
    store.heartbeat(room.code, room.presenter_key)
    student.run()
    assert "presenter disconnected" not in texts(student)
    time.sleep(3.2)  # no heartbeat for longer than the store's presenter timeout
    student.run()
    assert not student.exception
    assert "The presenter disconnected: you keep your view." in texts(student)
    assert qp(student, "image") == "digits:2"


def test_the_teacher_sees_the_anonymous_answer_distribution(fresh_store):
    teacher, code, key = start_room()
    teacher.selectbox(key="pr_lesson").set_value("boundary-up-close").run()
    lesson = __import__("explorer.lessons", fromlist=["load_lesson"]).load_lesson("boundary-up-close")
    k = next(i for i, s in enumerate(lesson.steps, 1) if s.question is not None)
    teacher.number_input(key="pr_step").set_value(k).run()
    teacher.button(key="pr_show").click().run()
    question = lesson.steps[k - 1].question
    student = open_page("pages/home.py", room=code)
    assert not student.exception and student.title[0].value == "Decision boundaries"
    student.switch_page("pages/boundaries.py")  # AppTest reruns its own page; a browser stays where it was sent
    student.radio(key=f"lesson_q_boundary-up-close:{k}").set_value(question.answer).run()
    assert "sent to the room anonymously" in texts(student)
    teacher.run()
    assert "1 answer(s) so far" in texts(teacher)
    assert f"{question.choices[question.answer]} ✓: 1" in texts(teacher)
