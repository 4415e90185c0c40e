"""Who uploaded what: per-session ownership of uploaded models, and their clean-up when a session ends.

Every browser tab is a Streamlit session. A model uploaded in the sidebar is registered with its session's id
(``explorer.models.user.register_user_model(..., session=<id>)``), recorded here as owned by that session, and
dropped (``explorer.models.user.forget_session(<id>)``) once the session has been gone for longer than
Streamlit keeps a disconnected session (``server.disconnectedSessionTTL``, 120 s by default). A background
sweeper thread (one per server process) checks every ``SWEEP_SECONDS``; every script run also sweeps, at most
once per ``SWEEP_SECONDS``.

Uploaded *images* live in the session's own ``st.session_state`` (``explorer.state``) and go with it.

The sharing rule (README, "Sharing links"): an upload is private to the session that made it. A link that
names another session's uploaded model or image opens the default instead, with a one-line notice; uploading
the same file again gives the same id, so the link then works. A model registered outside any session
(``session=None``: by code, a test, the CLI) has no owner and opens from any link.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import streamlit as st

SESSION_KEY = "_explorer_session_id"  # this session's own id (AppTest gives every session the same Streamlit id)
SWEEP_SECONDS = 30.0

_LOG = logging.getLogger(__name__)
_lock = threading.Lock()
_owner: dict[str, str] = {}  # model id -> session id
_last_alive: dict[str, float] = {}  # session id -> last time it was seen alive (monotonic seconds)
_streamlit_id: dict[str, str] = {}  # our session id -> Streamlit's session id (its liveness is asked by that)
_last_sweep = 0.0
_sweeper: threading.Thread | None = None


def current_id() -> str:
    """This session's id (random, kept in its ``st.session_state``), linked to Streamlit's session id on a
    server so the sweep can ask whether the session still exists."""
    sid = st.session_state.get(SESSION_KEY)
    if sid is None:
        sid = uuid.uuid4().hex[:16]
        st.session_state[SESSION_KEY] = sid
    with _lock:
        _last_alive[sid] = time.monotonic()
        if sid not in _streamlit_id and _runtime() is not None:
            from streamlit.runtime.scriptrunner import get_script_run_ctx

            ctx = get_script_run_ctx()
            if ctx is not None:
                _streamlit_id[sid] = ctx.session_id
    return sid


def _runtime():
    """Streamlit's runtime on a real server; None in AppTest (a mock) or a bare run."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return None
    runtime = Runtime.instance()
    return runtime if type(runtime) is Runtime else None


def claim(model_id: str, session_id: str) -> None:
    """Record that ``session_id`` uploaded ``model_id`` (the first uploader owns it)."""
    with _lock:
        _owner.setdefault(model_id, session_id)
        _last_alive[session_id] = time.monotonic()


def owner(model_id: str) -> str | None:
    """The session that uploaded ``model_id``; None when no session did (registered by code) or it is gone."""
    with _lock:
        return _owner.get(model_id)


def models_of(session_id: str) -> list[str]:
    with _lock:
        return [m for m, s in _owner.items() if s == session_id]


def register_user_model(req, session_id: str):
    """``explorer.models.user.register_user_model`` for a session, recorded as its owner.

    The per-session quota and eviction live in ``explorer.models.user``.
    """
    from explorer.models import user

    spec = user.register_user_model(req, session=session_id)
    claim(spec.id, session_id)
    return spec


def forget(session_id: str) -> list[str]:
    """Drop everything ``session_id`` uploaded (its models leave the server) and return the model ids."""
    from explorer.models import user

    with _lock:
        gone = [m for m, s in _owner.items() if s == session_id]
        for m in gone:
            del _owner[m]
        _last_alive.pop(session_id, None)
        _streamlit_id.pop(session_id, None)
    user.forget_session(session_id)
    if gone:
        _LOG.info("session %s ended: dropped its uploaded models %s", session_id, ", ".join(gone))
    return gone


def _ttl() -> float:
    try:
        from streamlit import config

        return float(config.get_option("server.disconnectedSessionTTL"))
    except Exception:  # noqa: BLE001 - an old Streamlit without the option
        return 120.0


def server_alive(session_id: str) -> bool | None:
    """Whether Streamlit's runtime has the session connected; None when that cannot be known (no runtime:
    AppTest or a bare run; a session never seen on a server)."""
    runtime = _runtime()
    with _lock:
        streamlit_id = _streamlit_id.get(session_id)
    if runtime is None or streamlit_id is None:
        return None
    return runtime.is_active_session(streamlit_id)


def sweep(alive: Callable[[str], bool | None] = server_alive, grace: float | None = None,
          now: float | None = None) -> list[str]:
    """Forget every session that ``alive`` says is gone and that was last seen alive over ``grace`` seconds
    ago (default: Streamlit's ``server.disconnectedSessionTTL``). Returns the sessions forgotten. Sessions
    whose liveness is unknown (``alive`` returns None) are kept."""
    grace = _ttl() if grace is None else grace
    now = time.monotonic() if now is None else now
    with _lock:
        known = set(_last_alive) | set(_owner.values())
    ended = []
    for sid in known:
        state = alive(sid)
        if state is None:
            continue
        with _lock:
            if state:
                _last_alive[sid] = now
                continue
            seen = _last_alive.setdefault(sid, now)
        if now - seen >= grace:
            ended.append(sid)
    for sid in ended:
        forget(sid)
    return ended


def maybe_sweep() -> None:
    """Sweep at most once per ``SWEEP_SECONDS`` (called on every script run), and make sure the background
    sweeper runs on a server."""
    global _last_sweep
    _start_sweeper()
    now = time.monotonic()
    with _lock:
        if now - _last_sweep < SWEEP_SECONDS:
            return
        _last_sweep = now
    try:
        sweep()
    except Exception:  # noqa: BLE001 - a clean-up must never break a page
        _LOG.exception("upload sweep failed")


def _start_sweeper() -> None:
    global _sweeper
    if _runtime() is None:
        return
    with _lock:
        if _sweeper is not None and _sweeper.is_alive():
            return

        def loop() -> None:
            while True:
                time.sleep(SWEEP_SECONDS)
                try:
                    if _runtime() is None:
                        return
                    sweep()
                except Exception:  # noqa: BLE001
                    _LOG.exception("upload sweep failed")

        _sweeper = threading.Thread(target=loop, name="explorer-upload-sweeper", daemon=True)
        _sweeper.start()
