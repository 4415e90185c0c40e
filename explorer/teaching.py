"""Streamlit glue for teaching: the lesson bar, ``hide=`` and following a presenter's room.

Called once per run from ``explorer.state.sidebar()`` (``teaching.on_every_page()``), so every page gets:

* the **lesson bar** while ``lesson=NAME&step=k`` is in the URL: previous / next, "step k of n", the step's text,
  its offline note, and its question with an anonymous answer (sent to the room when following one);
* ``hidden(control)``: whether the URL's ``hide=`` hides a control (TensorFlow Playground's ``hide=``);
* **following a room** (``room=CODE`` in the URL): a fragment polls the room store every ``FOLLOW_POLL_S`` (0.5 s) and switches the
  page and its parameters when the presenter's view version moves; "Break away" stops following, "Rejoin" goes
  back to the presenter's current view; a presenter who went silent leaves the view as it is, with a notice;
* **presenting**: a session that started a room (``pages/presenter.py``) pushes the view it is on, by a click or
  automatically on every page it opens, and keeps the room's heartbeat.

Room and lesson problems are one line, never a traceback.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import streamlit as st

from explorer.lessons import LessonError, load_lesson, resolve_step
from explorer.rooms import Question, RoomError, RoomNotFound, ViewState, normalize_code, room_store

FOLLOW_KEY = "_room_follow"  # session: {"code", "version", "away"}
PRESENT_KEY = "_room_present"  # session: {"code", "key", "auto", "pushed"}
PARTICIPANT_KEY = "_room_participant"  # session: this browser's anonymous answer token
LAST_VIEW_KEY = "_last_view"  # session: (page, params) of the last page outside the presenter page
NOT_FOLLOWED = ("presenter", "lessons")  # pages a room never pushes (the teacher's own controls)
LINK_KEYS = ("lesson", "step", "hide", "room")


# --------------------------------------------------------------------------------------------- the current view


def current_page() -> str:
    """The URL name of the page this run renders (``attack_studio``); ``home`` when unknown."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        pm = ctx.pages_manager if ctx is not None else None
        if pm is not None:
            info = pm.get_pages().get(pm.current_page_script_hash)
            if info and info.get("script_path"):
                return Path(str(info["script_path"])).stem
    except Exception:  # noqa: BLE001 - a Streamlit internal moved: the default page is a safe answer
        pass
    return "home"


def page_file(page: str) -> str:
    return f"pages/{page}.py"


def query_dict() -> dict[str, str]:
    return {k: st.query_params.get(k) or "" for k in st.query_params}


def current_view() -> ViewState:
    """This page and its URL parameters (lesson keys included, so a pushed step keeps its lesson bar)."""
    params = {k: v for k, v in query_dict().items() if k != "room"}
    return ViewState(current_page(), params)


def hidden(control: str) -> bool:
    """Whether the URL's ``hide=a,b`` hides ``control`` (named by the URL parameter it sets)."""
    raw = st.query_params.get("hide") or ""
    return control in {c.strip() for c in raw.split(",") if c.strip()}


def slot(parent, control: str, part: str = ""):
    """Where a page draws ``control``: ``parent`` itself, or, when the lesson link hides it (``hide=control``), a box
    inside ``parent`` that the stylesheet hides (``.st-key-ae-hide-*``). The widget is still drawn there, so it keeps
    the value the link gives it; the class only does not see it. ``part`` tells apart two boxes of one control."""
    if not hidden(control):
        return parent
    return parent.container(key=f"ae-hide-{control}{'-' + part if part else ''}")


def participant() -> str:
    return st.session_state.setdefault(PARTICIPANT_KEY, secrets.token_urlsafe(16))


# --------------------------------------------------------------------------------------------- the lesson bar


def _step_number(raw: str | None) -> int:
    try:
        return int(raw or "1")
    except ValueError:
        return 1


def _unbind_query_widgets() -> None:
    """Forget this run's ``bind="query-params"`` bindings: ``st.switch_page`` refuses to set a bound parameter,
    and the next page binds its own widgets again when it draws them."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        if ctx is None:
            return
        with ctx.session_state.query_params() as qp:
            for widget_id in list(getattr(qp, "_bindings_by_widget", {})):
                qp.unbind_widget(widget_id)
    except Exception:  # noqa: BLE001 - a Streamlit internal moved: switch_page then says what is wrong
        pass


def open_view(page: str, params: dict[str, str]) -> None:
    """Switch to ``page`` with exactly ``params``: widgets start again from the URL (their session values, which
    would otherwise win over the link, are dropped; this module's and the library's ``_`` keys are kept)."""
    for key in [k for k in st.session_state if not str(k).startswith("_")]:
        del st.session_state[key]
    if params.get("model"):
        st.session_state["_pending_model"] = params["model"]
    _unbind_query_widgets()
    st.switch_page(page_file(page), query_params=params)


def go_to_step(lesson: str, k: int) -> None:
    """Switch to step ``k`` of ``lesson`` (its page and every parameter), keeping a followed room."""
    step = resolve_step(load_lesson(lesson), k)
    params = dict(step.params, lesson=lesson, step=str(k))
    if step.step.hide:
        params["hide"] = ",".join(step.step.hide)
    follow = st.session_state.get(FOLLOW_KEY)
    if follow:
        params["room"] = follow["code"]
    open_view(step.page, params)


def lesson_bar() -> None:
    """The lesson bar at the top of the page while ``lesson=`` is in the URL (nothing otherwise)."""
    name = st.query_params.get("lesson")
    if not name:
        return
    try:
        lesson = load_lesson(name)
        k = min(max(_step_number(st.query_params.get("step")), 1), len(lesson.steps))
        step = resolve_step(lesson, k)
    except LessonError as exc:
        st.warning(f"Lesson: {' '.join(str(exc).split())}", icon=":material/school:")
        return
    n = len(lesson.steps)
    following = bool(st.session_state.get(FOLLOW_KEY)) and not st.session_state[FOLLOW_KEY].get("away")
    with st.container(border=True, key="lesson_bar"):
        left, mid, right = st.columns([1, 6, 1], vertical_alignment="center")
        if left.button("Previous", key="lesson_prev", icon=":material/arrow_back:", disabled=k <= 1 or following):
            go_to_step(lesson.name, k - 1)
        mid.markdown(f"**{lesson.title}** · step {k} of {n}: **{step.step.title}**")
        if right.button("Next", key="lesson_next", icon=":material/arrow_forward:", disabled=k >= n or following):
            go_to_step(lesson.name, k + 1)
        st.markdown(step.step.text)
        if step.note:
            st.info(step.note, icon=":material/wifi_off:")
        if step.step.highlight:
            st.caption("Look at: " + ", ".join(f"**{c}**" for c in step.step.highlight))
        q = step.step.question
        if q is not None:
            qid = f"{lesson.name}:{k}"
            choice = st.radio(q.prompt, range(len(q.choices)), format_func=lambda i: q.choices[i], index=None,
                              key=f"lesson_q_{qid}")
            if choice is not None:
                if choice == q.answer:
                    st.success(f"Right. {q.feedback}".strip())
                else:
                    st.error(f"Not quite. {q.feedback}".strip())
                _send_answer(qid, int(choice))


def _send_answer(qid: str, choice: int) -> None:
    """Anonymous: the room keeps a salted hash of this browser's token and the choice, nothing else."""
    follow = st.session_state.get(FOLLOW_KEY)
    if not follow:
        return
    try:
        f = room_store().follow(follow["code"])
        if f.question is not None and f.question.qid == qid:
            room_store().answer(follow["code"], qid, participant(), choice)
            st.caption("Your answer was sent to the room anonymously.")
    except RoomError:
        pass  # the room ended: the answer still shows its feedback here


# --------------------------------------------------------------------------------------------- following


def join(code: str) -> str:
    """Start following room ``code`` in this session (``RoomNotFound`` with one line if there is no such room)."""
    code = normalize_code(code)
    room_store().follow(code)
    st.session_state[FOLLOW_KEY] = {"code": code, "version": -1, "away": False}
    return code


def leave() -> None:
    st.session_state.pop(FOLLOW_KEY, None)
    if "room" in st.query_params:
        del st.query_params["room"]


def _apply(code: str, view: ViewState) -> None:
    open_view(view.page, dict(view.params, room=code))


FOLLOW_POLL_S = 0.5  # a follower's poll of the room: a pushed view shows within this plus one page run


@st.fragment(run_every=FOLLOW_POLL_S)
def _follow_fragment() -> None:
    follow = st.session_state.get(FOLLOW_KEY)
    if not follow:
        return
    code = follow["code"]
    try:
        f = room_store().follow(code)
    except RoomNotFound:
        st.warning(f"Room {code} has ended: you keep your view.", icon=":material/cast:")
        if st.button("Stop following", key="room_stop_ended"):
            leave()
            st.rerun(scope="app")
        return
    with st.container(border=True, key="room_box"):
        if follow.get("away"):
            st.caption(f":material/explore: Exploring on your own · room **{code}**")
            if st.button("Rejoin", key="room_rejoin", icon=":material/cast:", type="primary"):
                follow["away"] = False
                follow["version"] = -1
                if f.view is not None:
                    follow["version"] = f.version
                    _apply(code, f.view)
                st.rerun(scope="app")
            return
        st.caption(f":material/cast: Following room **{code}**")
        if not f.presenter_online:
            st.warning("The presenter disconnected: you keep your view.", icon=":material/cast_connected:")
        if st.button("Break away", key="room_break", icon=":material/explore:"):
            follow["away"] = True
            st.rerun(scope="app")
    if f.view is not None and f.version != follow["version"]:
        follow["version"] = f.version
        view_now = current_view()
        if view_now.page != f.view.page or view_now.params != f.view.params:
            _apply(code, f.view)


def follow_room() -> None:
    """Follow the room of ``room=CODE`` (or the one this session joined) live; present, if this session leads one."""
    code = st.query_params.get("room")
    present = st.session_state.get(PRESENT_KEY)
    if code and not present:
        follow = st.session_state.get(FOLLOW_KEY)
        if not follow or follow["code"] != "".join(code.split()).upper():
            try:
                join(code)
            except RoomError as exc:
                st.sidebar.error(" ".join(str(exc).split()), icon=":material/cast:")
                return
    if st.session_state.get(FOLLOW_KEY):
        with st.sidebar:
            _follow_fragment()
    if present:
        _presenter_sidebar(present)


# --------------------------------------------------------------------------------------------- presenting


def start_room() -> dict:
    room = room_store().create()
    st.session_state[PRESENT_KEY] = {"code": room.code, "key": room.presenter_key, "auto": True, "pushed": None}
    st.session_state.pop(FOLLOW_KEY, None)
    return st.session_state[PRESENT_KEY]


def push(present: dict, view: ViewState) -> int:
    version = room_store().set_view(present["code"], present["key"], view)
    present["pushed"] = view.to_json()
    return version


def last_view() -> ViewState | None:
    raw = st.session_state.get(LAST_VIEW_KEY)
    return ViewState.from_json(raw) if raw else None


def push_step(present: dict, lesson: str, k: int) -> ViewState:
    """Show step ``k`` of ``lesson`` to the room, and open its question if it has one."""
    step = resolve_step(load_lesson(lesson), k)
    params = dict(step.params, lesson=lesson, step=str(k))
    if step.step.hide:
        params["hide"] = ",".join(step.step.hide)
    view = ViewState(step.page, params)
    push(present, view)
    q = step.step.question
    if q is not None:
        room_store().ask(present["code"], present["key"], Question(f"{lesson}:{k}", q.prompt, q.choices))
    return view


@st.fragment(run_every=3)
def _heartbeat(code: str, key: str) -> None:
    try:
        room_store().heartbeat(code, key)
    except RoomError:
        pass


def _presenter_sidebar(present: dict) -> None:
    page = current_page()
    view = current_view()
    try:
        if page not in NOT_FOLLOWED:
            st.session_state[LAST_VIEW_KEY] = view.to_json()
            if present.get("auto") and present.get("pushed") != view.to_json():
                push(present, view)
        with st.sidebar:
            _heartbeat(present["code"], present["key"])
    except RoomError as exc:
        st.sidebar.error(" ".join(str(exc).split()))
        return
    with st.sidebar.container(border=True, key="presenter_box"):
        st.caption(f":material/co_present: Presenting room **{present['code']}**")
        present["auto"] = st.toggle("Class follows my view", value=present.get("auto", True), key="room_auto")
        if page not in NOT_FOLLOWED and st.button("Push this view", key="room_push", icon=":material/cast:"):
            push(present, view)
            st.toast("Pushed to the room.")


def on_every_page() -> None:
    """The one call from ``explorer.state.sidebar()``: follow/present a room, then the lesson bar."""
    follow_room()
    lesson_bar()


def go_to_view(code: str, view: ViewState) -> None:
    """Open the presenter's ``view`` now (used right after joining)."""
    follow = st.session_state.get(FOLLOW_KEY)
    if follow is not None:
        follow["version"] = room_store().follow(code).version
    _apply(code, view)
