"""How a running request reports progress and notices that it was cancelled, without new arguments.

A worker runs ``request.execute(executor)`` inside a :class:`JobContext` held by a context variable. The request
(or any library function it calls, on the same thread) reports with :func:`report_progress` and polls
:func:`check_cancelled` at its cancellation points. Outside a job both are no-ops, so the same code runs
unchanged from the CLI, tests, or a page's inline path.

For requests that shard work through ``executor.map``, :func:`map_callbacks` gives the ``progress=`` and
``cancelled=`` arguments that feed the current job::

    def execute(self, executor):
        progress, cancelled = map_callbacks("evaluating")
        return executor.map(shard_fn, shards, progress=progress, cancelled=cancelled)
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from explorer.runs.executor import Cancelled


@dataclass
class JobContext:
    """The live progress of one running job (written by its worker thread, read by any session)."""

    progress: float = 0.0
    text: str = ""
    cancel_event: threading.Event = field(default_factory=threading.Event)
    on_change: Callable[[], None] | None = None

    def report(self, frac: float, text: str = "") -> None:
        frac = float(min(max(frac, 0.0), 1.0))
        self.progress = max(self.progress, frac) if frac < 1.0 else 1.0
        if text:
            self.text = text
        if self.on_change is not None:
            self.on_change()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar("explorer_job", default=None)


def current_job() -> JobContext | None:
    """The job this thread is running, or None outside the queue."""
    return _current.get()


@contextmanager
def job_context(ctx: JobContext):
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def report_progress(frac: float, text: str = "") -> None:
    """Report ``frac`` (0..1) done and an optional one-line ``text``; a no-op outside a job."""
    ctx = _current.get()
    if ctx is not None:
        ctx.report(frac, text)


def is_cancelled() -> bool:
    ctx = _current.get()
    return ctx is not None and ctx.cancelled


def check_cancelled() -> None:
    """A cancellation point: raises :class:`explorer.runs.Cancelled` when nobody wants this job any more."""
    if is_cancelled():
        raise Cancelled("cancelled: no session is waiting for this result any more")


def map_callbacks(text: str = "") -> tuple[Callable[[int, int], None], Callable[[], bool]]:
    """``(progress, cancelled)`` for ``Executor.map`` that report to the current job (no-ops outside one)."""

    def progress(done: int, total: int) -> None:
        report_progress(done / max(total, 1), f"{text} {done}/{total}".strip())

    return progress, is_cancelled
