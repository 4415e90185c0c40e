"""explorer.caching.jobs in a real Streamlit script run (AppTest): status where the result will appear, the
result after the job finishes, a one-line failure, cancel."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import explorer.jobs as jobs_pkg
from tests.jobs.requests import open_gate, until, wait_started


def page(key: str, fail: bool = False):
    def script(key, fail):
        import streamlit as st

        from explorer.caching import jobs
        from tests.jobs.requests import Spin

        out = jobs.result(Spin(key=key, fail=fail), slot="demo", label="Spinning")
        if out is not None:
            st.markdown(f"result: {out.key} after {out.loops} loops")
        jobs.sidebar_load()

    return AppTest.from_function(script, kwargs={"key": key, "fail": fail}, default_timeout=30)


@pytest.fixture
def queue(make_queue, monkeypatch):
    q = make_queue(workers=1)
    monkeypatch.setattr(jobs_pkg, "_queue", q)
    return q


def texts(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown) + " " + " ".join(str(p.proto.text) for p in at.get("progress"))


def test_status_then_result(queue):
    at = page("g1").run()
    assert not at.exception
    assert wait_started("g1")
    at.run()
    assert "Spinning: Computing" in texts(at) and "result:" not in texts(at)
    open_gate("g1")
    assert until(lambda: queue.status(next(iter(queue._jobs)) if queue._jobs else "", None) is None
                 or all(j.state == "done" for j in queue._jobs.values()))
    at.run()
    assert "result: g1 after" in texts(at)


def test_position_and_server_load_while_waiting(queue):
    first = page("busy").run()
    assert wait_started("busy")
    at = page("g2").run()
    assert "number 1 in the queue" in texts(at)
    assert "Server busy: 1 of 1 workers computing, 1 waiting" in " ".join(c.value for c in at.sidebar.caption)
    open_gate("busy")
    open_gate("g2")
    del first


def test_a_failure_is_one_line_and_the_page_carries_on(queue):
    at = page("g3", fail=True).run()
    open_gate("g3")
    assert until(lambda: all(j.state == "failed" for j in queue._jobs.values()) and queue._jobs)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Spinning: the model exploded second line of detail"]
    assert any(b.label == "Try again" for b in at.button)


def test_cancel_releases_the_job(queue):
    at = page("g4").run()
    assert wait_started("g4")
    at.run()
    cancel = next(b for b in at.button if b.label == "Cancel")
    cancel.click().run()
    assert "cancelled" in " ".join(i.value for i in at.info)
    assert until(lambda: not queue._jobs)  # nobody else wanted it: stopped at its next cancellation point
    assert queue.stats["cancelled"] == 1
