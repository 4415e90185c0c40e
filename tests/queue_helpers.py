"""AppTest and the job queue: a heavy request shows its status box first; the browser's status fragment would
rerun the page when the job is done, AppTest does not, so tests wait for the queue and rerun."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest


def wait_for_jobs(timeout: float = 300.0) -> None:
    """Until the server's queue has nothing waiting or running."""
    from explorer.jobs import job_queue

    q = job_queue()
    end = time.monotonic() + timeout
    while time.monotonic() < end and not all(j.finished is not None for j in list(q._jobs.values())):
        time.sleep(0.05)


def settle(at: AppTest, rounds: int = 4) -> AppTest:
    """Rerun ``at`` until no job of the queue is waiting or running after a run (a page may ask for one heavy
    result after another)."""
    from explorer.jobs import job_queue

    for _ in range(rounds):
        if all(j.finished is not None for j in list(job_queue()._jobs.values())):
            break
        wait_for_jobs()
        at.run()
    return at
