"""Streamlit glue for the job queue (``explorer.jobs``): heavy results shown where they will appear.

In a page::

    from explorer.caching import jobs

    sw = jobs.result(request, slot="attack_studio.sweep", label="ε sweep")
    if sw is None:
        st.stop()          # a status box (queue position / progress / cancel) is drawn here meanwhile
    ... draw sw ...

or ``jobs.run_or_queue(request, slot=..., label=..., inline=lambda: cached_fn(...))``: light requests (cost under
``EXPLORER_JOB_THRESHOLD``) take the page's own cached path, heavy ones the queue.

and once per run, in the shared sidebar: ``jobs.sidebar_load()`` (a line about the server's load when it is busy).

* ``result`` submits on behalf of this browser session (deduplicated by request digest across sessions); a
  stored result returns at once; light requests run inline. While the job waits or runs, a fragment polls it every
  ``POLL_S`` seconds, shows the position or the progress, and reruns the page when the job is finished.
* ``slot`` names the place on the page: a new request in the same slot abandons the previous one (a setting moved
  while its old computation was still queued), so nobody waits for results they no longer want.
* The cancel button releases this session's interest (the job stops if nobody else wants it); a failure shows
  one line and a "Try again" button.
* Sessions that end (tab closed and ``server.disconnectedSessionTTL`` passed) lose their interest in their jobs:
  a reaper thread checks the Streamlit runtime's sessions every ``REAP_S`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from explorer.jobs import DONE, FAILED, JobQueue, JobView, job_queue
from explorer.runs.base import Request

T = TypeVar("T")
POLL_S = 0.5
REAP_S = 10.0
CANCELLED_KEY = "_jobs_cancelled"  # session: digests this session cancelled (not resubmitted by reruns)

_reaper_started = False
_reaper_lock = threading.Lock()


def session_id() -> str:
    """This browser session's id (stable across reruns; a new tab is a new session)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        if ctx is not None:
            return str(ctx.session_id)
    except Exception:  # noqa: BLE001 - outside a Streamlit run
        pass
    return "no-session"


def session_alive(sid: str) -> bool:
    """Whether the Streamlit runtime still holds ``sid`` (connected, or disconnected but within its TTL)."""
    try:
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return True
        rt = Runtime.instance()
        mgr = getattr(rt, "_session_mgr", None)
        if mgr is not None and hasattr(mgr, "get_session_info"):
            return mgr.get_session_info(sid) is not None
        return rt.is_active_session(sid)
    except Exception:  # noqa: BLE001 - never cancel work because the check itself failed
        return True


def _start_reaper(q: JobQueue) -> None:
    global _reaper_started
    with _reaper_lock:
        if _reaper_started:
            return
        _reaper_started = True

    def loop() -> None:
        while True:
            time.sleep(REAP_S)
            try:
                q.reap(session_alive)
            except Exception:  # noqa: BLE001 - the reaper must never die
                pass

    threading.Thread(target=loop, name="explorer-job-reaper", daemon=True).start()


def queue() -> JobQueue:
    q = job_queue()
    _start_reaper(q)
    return q


def submit(request: Request, slot: str | None = None, executor: str | None = None) -> JobView:
    """Submit for this session (``ValueError`` with one line for an invalid request)."""
    return queue().submit(request, session_id(), slot=slot, executor=executor)


def _cancelled() -> set[str]:
    return st.session_state.setdefault(CANCELLED_KEY, set())


@st.fragment(run_every=POLL_S)
def _status(digest: str, sid: str, label: str) -> None:
    view = queue().status(digest, sid)
    if view is None or view.finished:
        st.rerun(scope="app")
        return
    with st.container(border=True):
        if view.state == "queued":
            st.progress(0.0, text=f"{label}: {view.status_line()}. Your request is kept; it starts on its own.")
        else:
            st.progress(min(max(view.progress, 0.0), 1.0), text=f"{label}: {view.status_line()}")
        if st.button("Cancel", key=f"_job_cancel_{digest[:16]}", icon=":material/close:"):
            _cancelled().add(digest)
            queue().cancel(digest, sid)
            st.rerun(scope="app")


def result(request: Request, *, slot: str, label: str = "Computing", executor: str | None = None) -> Any | None:
    """The request's result, or None while it waits or runs (a status box is drawn here) or after it failed or
    was cancelled (one line and a button to run it again are drawn here). ``executor``: where its shards run
    (``local`` / ``ray``; default: the server's)."""
    try:
        digest = request.digest()
    except (TypeError, ValueError) as exc:
        st.error(f"{label}: {' '.join(str(exc).split())}")
        return None
    if digest in _cancelled():
        st.info(f"{label}: cancelled.")
        if st.button("Run it again", key=f"_job_again_{digest[:16]}", icon=":material/replay:"):
            _cancelled().discard(digest)
            st.rerun()
        return None
    try:
        view = submit(request, slot=slot, executor=executor)
    except ValueError as exc:
        st.error(f"{label}: {' '.join(str(exc).split())}")
        return None
    except RuntimeError as exc:  # the queue is shutting down
        st.error(f"{label}: {' '.join(str(exc).split())}")
        return None
    if view.state == DONE:
        return view.result
    if view.state == FAILED:
        st.error(f"{label}: {view.error}")
        if st.button("Try again", key=f"_job_retry_{digest[:16]}", icon=":material/replay:"):
            queue().release(digest, session_id())
            st.rerun()
        return None
    _status(digest, session_id(), label)
    return None


def run_or_queue(request: Request, *, slot: str, label: str, inline: Callable[[], T],
                 executor: str | None = None) -> T | None:
    """``inline()`` (the page's cached path, with its own progress bar) when the request is light; otherwise the
    queued job's result, or None while it waits or runs (its status box is drawn here) or after it failed."""
    try:
        heavy = queue().is_heavy(request)
    except (TypeError, ValueError, KeyError):
        heavy = False
    return result(request, slot=slot, label=label, executor=executor) if heavy else inline()


def load_line() -> str | None:
    """One line about the server's heavy-work load, or None when it is not busy."""
    load = queue().load()
    return load.line() if load.busy else None


def sidebar_load() -> None:
    line = load_line()
    if line:
        st.sidebar.caption(f":material/hourglass_top: {line}")


def end_this_session() -> None:
    """Drop this session's interest in every job (e.g. a "leave" button; the reaper does it on session end)."""
    queue().end_session(session_id())
