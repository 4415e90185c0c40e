"""Streamlit glue for teaching: the lesson bar, ``hide=`` and following a presenter's room.

Called once per run from ``explorer.state.sidebar()`` (``teaching.on_every_page()``), so every page gets:

* the **lesson bar** while ``lesson=NAME&step=k`` is in the URL: previous / next, "step k of n", the step's text,
  its offline note, and its question with an anonymous answer (sent to the room when following one);
* ``hidden(control)``: whether the URL's ``hide=`` hides a control (TensorFlow Playground's ``hide=``);
* **following a room** (``room=CODE`` in the URL): before each page runs, ``follow_early`` (called by the entry
  point) opens the presenter's view if it moved; one watcher thread per server reads each followed room every
  ``WATCH_S`` (0.1 s) and reruns the sessions whose room moved, so idle followers cost nothing (without the
  runtime's sessions, e.g. in AppTest, the follower box polls every ``FOLLOW_POLL_S`` instead). "Break away" stops
  following, "Rejoin" goes back to the presenter's current view; a presenter who went silent leaves the view as
  it is, with a notice;
* **presenting**: a session that started a room (``pages/presenter.py``) pushes the view it is on, by a click or
  automatically on every page it opens, and keeps the room's heartbeat.

Room and lesson problems are one line, never a traceback.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import streamlit as st

from explorer.lessons import LessonError, load_lesson, resolve_step
from explorer.rooms import Question, RoomError, RoomNotFound, ViewState, normalize_code, room_store

FOLLOW_KEY = "_room_follow"  # session: {"code", "version", "away"}
PRESENT_KEY = "_room_present"  # session: {"code", "key", "auto", "pushed"}
ROOM_ERROR_KEY = "_room_error"  # session: a one-line problem with the room of the URL, shown in the sidebar
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
    sid = _session_id()
    if sid:
        room_watcher().unwatch(sid)
    if "room" in st.query_params:
        del st.query_params["room"]


def _apply(code: str, view: ViewState) -> None:
    open_view(view.page, dict(view.params, room=code))


WATCH_S = 0.1  # the room watcher's read of each followed room: one store read per room, not per follower
FOLLOW_POLL_S = 0.5  # without the runtime's sessions (AppTest): the follower box polls the room itself


def _rerun_session(sid: str) -> bool:
    """Rerun browser session ``sid`` as it stands (its last URL, page and widget values), the way Streamlit's
    own "run on save" does; False when the session is gone or this Streamlit lacks the internals."""
    try:
        from streamlit.proto.ClientState_pb2 import ClientState
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return False
        info = Runtime.instance()._session_mgr.get_active_session_info(sid)
        if info is None:
            return False
        session = info.session
        state = ClientState()
        state.CopyFrom(session._client_state)
        state.fragment_id = ""
        state.is_auto_rerun = False
        session._event_loop.call_soon_threadsafe(session.request_rerun, state)
        return True
    except Exception:  # noqa: BLE001 - a Streamlit internal moved: the follower box falls back to polling
        return False


def can_push() -> bool:
    """Whether this server can rerun a follower's session when its room moves (a real ``streamlit run``)."""
    try:
        from streamlit.runtime import Runtime

        return Runtime.exists() and hasattr(Runtime.instance(), "_session_mgr")
    except Exception:  # noqa: BLE001
        return False


class RoomWatcher:
    """One thread per server process that reads each followed room every ``WATCH_S`` seconds and reruns the
    sessions whose room moved (new view, presenter gone or back, room ended).

    Followers cost nothing while the teacher talks: no per-follower polling runs (thirty 0.5 s polls were 60
    script runs a second on a 2-core server). ``rerun`` is injectable for tests."""

    def __init__(self, rerun=_rerun_session, every: float = WATCH_S) -> None:
        self._rerun = rerun
        self._every = every
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[str, tuple]] = {}  # session id -> (room code, the room state it last saw)
        self._thread: threading.Thread | None = None

    def watch(self, sid: str, code: str, seen: tuple) -> None:
        with self._lock:
            self._seen[sid] = (code, seen)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="explorer-room-watcher", daemon=True)
                self._thread.start()

    def unwatch(self, sid: str) -> None:
        with self._lock:
            self._seen.pop(sid, None)

    def watching(self) -> int:
        with self._lock:
            return len(self._seen)

    def tick(self) -> int:
        """One pass: read each room once, rerun the sessions that saw something else. Returns the reruns."""
        with self._lock:
            items = dict(self._seen)
        states: dict[str, tuple] = {}
        for code in {c for c, _ in items.values()}:
            try:
                states[code] = room_state(room_store().follow(code))
            except RoomNotFound:
                states[code] = ("ended",)
            except Exception:  # noqa: BLE001 - the store is unreachable for a moment: try again next tick
                continue
        reruns = 0
        for sid, (code, seen) in items.items():
            now = states.get(code)
            if now is None or now == seen:
                continue
            with self._lock:
                if self._seen.get(sid) != (code, seen):
                    continue  # the session ran meanwhile and saw the new state itself
                self._seen[sid] = (code, now)
            if self._rerun(sid):
                reruns += 1
            else:
                self.unwatch(sid)  # the tab is gone
        return reruns

    def _loop(self) -> None:
        while True:
            time.sleep(self._every)
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the watcher must never die
                pass


def room_state(f) -> tuple:
    """What a follower's screen depends on: the view's version and whether the presenter is there."""
    return (f.version, bool(f.presenter_online))


_watcher: RoomWatcher | None = None
_watcher_lock = threading.Lock()


def room_watcher() -> RoomWatcher:
    global _watcher
    with _watcher_lock:
        if _watcher is None:
            _watcher = RoomWatcher()
        return _watcher


def _session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return None if ctx is None else str(ctx.session_id)


def follow_early() -> None:
    """Called by the entry point before the page runs: join the room of ``room=CODE``, and open the presenter's
    view when it moved since this session last saw it (``st.switch_page``: the page that was about to run does
    not). Registers the session with the room watcher, which reruns it when the room moves again."""
    code = st.query_params.get("room")
    present = st.session_state.get(PRESENT_KEY)
    if code and not present:
        follow = st.session_state.get(FOLLOW_KEY)
        if not follow or follow["code"] != "".join(code.split()).upper():
            try:
                join(code)
            except RoomError as exc:
                st.session_state[ROOM_ERROR_KEY] = " ".join(str(exc).split())
                return
    st.session_state.pop(ROOM_ERROR_KEY, None)
    _check_room(apply=True)


def _check_room(apply: bool) -> None:
    follow = st.session_state.get(FOLLOW_KEY)
    if not follow:
        return
    code = follow["code"]
    sid = _session_id()
    try:
        f = room_store().follow(code)
    except RoomNotFound:
        follow["ended"] = True
        if sid:
            room_watcher().unwatch(sid)
        return
    except RoomError:
        return
    follow["ended"] = False
    follow["online"] = bool(f.presenter_online)
    if follow.get("away"):
        if sid:
            room_watcher().unwatch(sid)
        return
    if sid and can_push():
        room_watcher().watch(sid, code, room_state(f))
    if apply and f.view is not None and f.version != follow["version"]:
        follow["version"] = f.version
        view_now = current_view()
        if view_now.page != f.view.page or view_now.params != f.view.params:
            _apply(code, f.view)


def _follow_box() -> None:
    follow = st.session_state.get(FOLLOW_KEY)
    if not follow:
        return
    code = follow["code"]
    if follow.get("ended"):
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
                try:
                    f = room_store().follow(code)
                except RoomError as exc:
                    st.error(" ".join(str(exc).split()))
                    return
                if f.view is not None:
                    follow["version"] = f.version
                    _apply(code, f.view)
                st.rerun(scope="app")
            return
        st.caption(f":material/cast: Following room **{code}**")
        if not follow.get("online", True):
            st.warning("The presenter disconnected: you keep your view.", icon=":material/cast_connected:")
        if st.button("Break away", key="room_break", icon=":material/explore:"):
            follow["away"] = True
            sid = _session_id()
            if sid:
                room_watcher().unwatch(sid)
            st.rerun(scope="app")


@st.fragment(run_every=FOLLOW_POLL_S)
def _follow_polling() -> None:
    """The follower box for a server that cannot push (no runtime sessions): it polls the room itself."""
    _check_room(apply=True)
    _follow_box()


def follow_room() -> None:
    """The follower's box in the sidebar (following, break away / rejoin, presenter gone, room ended), and the
    presenter's own box when this session leads a room."""
    error = st.session_state.pop(ROOM_ERROR_KEY, None)
    if error:
        st.sidebar.error(error, icon=":material/cast:")
    present = st.session_state.get(PRESENT_KEY)
    if st.session_state.get(FOLLOW_KEY) and not present:
        with st.sidebar:
            if can_push():
                _follow_box()
            else:
                _follow_polling()
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
