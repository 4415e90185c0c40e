"""Heavy work off the script thread: a process-wide job queue (see ``queue.py``) and how requests report
progress and notice cancellation (``context.py``). No Streamlit here; the page glue is
``explorer.caching.jobs``.

    from explorer.jobs import job_queue
    view = job_queue().submit(request, session_id, slot="attack_studio.sweep")
    view.state, view.position, view.progress, view.text, view.result
"""

from __future__ import annotations

import os
import threading

from explorer.jobs.context import (
    JobContext,
    check_cancelled,
    current_job,
    is_cancelled,
    map_callbacks,
    report_progress,
)
from explorer.jobs.queue import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobQueue, JobView, Load

__all__ = ["CANCELLED", "DONE", "FAILED", "QUEUED", "RUNNING", "JobContext", "JobQueue", "JobView", "Load",
           "check_cancelled", "configure_torch_threads", "current_job", "is_cancelled", "job_queue",
           "map_callbacks", "report_progress", "torch_threads"]

_queue: JobQueue | None = None
_lock = threading.Lock()


def torch_threads(settings=None) -> int | None:
    """The torch thread count this server should use: ``EXPLORER_TORCH_THREADS``; 0 means torch's default
    locally and ``max(1, cores // workers)`` in the hosted profile (None: leave torch alone)."""
    from explorer.config import get_settings

    s = settings or get_settings()
    if s.torch_threads > 0:
        return s.torch_threads
    if s.hosted:
        return max(1, (os.cpu_count() or 1) // max(1, s.workers))
    return None


def configure_torch_threads(settings=None) -> int:
    """Apply :func:`torch_threads` once per process (torch's thread count is process-wide). Returns it."""
    import torch

    n = torch_threads(settings)
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def job_queue() -> JobQueue:
    """The process-wide queue: ``EXPLORER_WORKERS`` worker threads, ``EXPLORER_SESSION_JOBS`` per session, results
    in the shared store (memory, disk, and Redis when ``EXPLORER_REDIS_URL`` is set), shards on
    ``EXPLORER_EXECUTOR`` (local or ray)."""
    global _queue
    with _lock:
        if _queue is None:
            from explorer.config import get_settings
            from explorer.runs.store import shared_default_store

            s = get_settings()
            configure_torch_threads(s)
            _queue = JobQueue(workers=s.workers, session_jobs=s.session_jobs, store=shared_default_store(),
                              threshold=s.job_threshold)
        return _queue
