"""Fixtures of the job tests (the test requests live in requests.py, importable by AppTest scripts too)."""

from __future__ import annotations

import pytest

from tests.jobs.requests import GATES, STARTED


@pytest.fixture
def gates():
    GATES.clear()
    STARTED.clear()
    yield GATES
    for g in list(GATES.values()):
        g.set()


@pytest.fixture
def make_queue(gates):
    from explorer.jobs import JobQueue
    from explorer.runs.store import MemoryStore

    made = []

    def make(workers: int = 2, session_jobs: int = 1, store=None, **kw):
        q = JobQueue(workers=workers, session_jobs=session_jobs,
                     store=MemoryStore() if store is None else store, **kw)
        made.append(q)
        return q

    yield make
    for g in list(GATES.values()):
        g.set()
    for q in made:
        q.close()
