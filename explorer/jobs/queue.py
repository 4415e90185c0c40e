"""A process-wide, bounded queue for heavy requests: deduplicated, fair, cancellable, with progress.

* **Workers**: ``workers`` threads (``EXPLORER_WORKERS``). Threads, not processes: torch releases the GIL in its
  kernels, the shared model cache is reused, and nothing is pickled (``benchmarks/bench_pool.py`` measures it).
  Each worker runs ``request.execute(executor)``; the executor is pluggable (``local``, or ``ray`` to send a
  request's shards to a cluster), so the threads only bound how many heavy requests are in flight.
* **Deduplication**: a job is keyed by its request digest. Thirty sessions asking the same digest share one job.
* **Results by digest**: a finished result goes into the result store (``explorer.runs.store``) and a later
  ``submit`` of the same digest is answered at once, for any session (and any replica sharing a Redis store).
* **Fairness**: a session's running jobs are capped at ``session_jobs`` (``EXPLORER_SESSION_JOBS``) and, with
  more than one worker, at ``workers - 1``: one session never holds every worker. Queued jobs start in arrival
  order among the sessions that are under their cap.
* **Interest and cancel**: a job lives while some session wants it. ``release`` (or ``end_session``, or a new
  request in the same ``slot``) drops a session's interest; a job nobody wants is removed from the queue, or, if
  running, cancelled at its next cancellation point (``explorer.jobs.context.check_cancelled``).
* **Failures**: a failing request marks its job failed with a one-line error; the worker carries on.
* **Light work never waits**: requests that are not heavy (``request.heavy`` false, or ``request.cost()`` under
  ``threshold``) run inline on the caller's thread and are stored like the rest.
* **Nothing is lost**: the queue never refuses a job; a waiting job reports its position.
"""

from __future__ import annotations

import inspect
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from explorer.jobs.context import JobContext, job_context
from explorer.runs.base import Request
from explorer.runs.executor import Cancelled, Executor, get_executor

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
TERMINAL = (DONE, FAILED, CANCELLED)
Session = Hashable


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text if len(text) <= 300 else text[:297] + "..."


@dataclass(frozen=True)
class JobView:
    """A snapshot of one job, as one session sees it.

    state: queued, running, done, failed or cancelled. position: 1 for the next job to start (queued only).
    progress: 0..1 and a one-line text, as reported by the request. error: the failure, one line.
    """

    digest: str
    kind: str
    state: str
    position: int | None = None
    progress: float = 0.0
    text: str = ""
    error: str | None = None
    result: Any = None
    sessions: int = 0
    waited_s: float = 0.0

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    def status_line(self) -> str:
        """One line for the place where the result will appear."""
        if self.state == QUEUED:
            return f"Waiting for a free worker: number {self.position} in the queue"
        if self.state == RUNNING:
            pct = f"{self.progress * 100:.0f}%"
            return f"Computing ({pct}){': ' + self.text if self.text else ''}"
        if self.state == FAILED:
            return f"This computation failed: {self.error}"
        if self.state == CANCELLED:
            return "This computation was cancelled."
        return "Done."


def _execute(request: Request, executor: Executor, ctx: JobContext) -> Any:
    """Run ``request`` on a worker, feeding its progress into ``ctx`` and stopping it when ``ctx`` is cancelled.

    Requests that shard through ``executor.map`` take ``progress(done, total)`` and ``cancelled()`` (checked
    between shards); single-image requests that accept a ``progress(frac, text)`` get one that also raises
    :class:`Cancelled` at each report (a report comes from inside the model's forward, so a sweep or a slice
    stops within one batch). Anything else runs to the end and reports only its finish."""
    params = inspect.signature(request.execute).parameters
    if "cancelled" in params:
        t0 = time.monotonic()

        def shards(done: int, total: int) -> None:
            left = (time.monotonic() - t0) / done * (total - done) if done else None
            eta = f", about {left:.0f} s left" if left is not None and done < total else ""
            ctx.report(done / max(total, 1), f"{done} of {total} parts{eta}")

        return request.execute(executor, progress=shards, cancelled=lambda: ctx.cancelled)
    if getattr(request, "accepts_progress", False) and "progress" in params:
        def report(frac: float, text: str = "") -> None:
            if ctx.cancelled:
                raise Cancelled("nobody wants this result any more")
            ctx.report(frac, text)

        return request.execute(executor, progress=report)
    return request.execute(executor)


@dataclass(frozen=True)
class Load:
    """The server's heavy-work load (for the sidebar)."""

    workers: int
    running: int
    queued: int
    sessions: int  # sessions with a job running or waiting

    @property
    def busy(self) -> bool:
        return self.queued > 0 or self.running >= self.workers

    def line(self) -> str:
        return (f"Server busy: {self.running} of {self.workers} workers computing, {self.queued} waiting "
                f"({self.sessions} sessions)")


@dataclass(eq=False)
class _Job:
    request: Request
    digest: str
    seq: int
    created: float
    sessions: list[Session] = field(default_factory=list)  # interested sessions; the first one is charged
    state: str = QUEUED
    ctx: JobContext = field(default_factory=JobContext)
    result: Any = None
    error: str | None = None
    done_event: threading.Event = field(default_factory=threading.Event)
    charged: Session | None = None  # the session whose cap this running job counts against
    started: float | None = None
    finished: float | None = None
    executor: Executor | None = None  # where its shards run (None: the queue's executor)


class JobQueue:
    """See the module docstring. Thread-safe; one per process (:func:`explorer.jobs.job_queue`)."""

    def __init__(self, workers: int = 2, session_jobs: int = 1, store: Any | None = None,
                 executor: Executor | str | None = None, threshold: float = 0.0, keep_results: int = 64,
                 name: str = "explorer-job") -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if session_jobs < 1:
            raise ValueError(f"session_jobs must be at least 1, got {session_jobs}")
        self.workers = int(workers)
        self.session_jobs = int(session_jobs)
        self.store = store
        self.executor = executor if isinstance(executor, Executor) else get_executor(executor)
        self.threshold = float(threshold)
        self._lock = threading.Condition()
        self._jobs: dict[str, _Job] = {}  # live jobs (queued, running, or finished and still held by a session)
        self._queued: list[_Job] = []  # in arrival order
        self._running: dict[Session, int] = {}
        self._slots: dict[tuple[Session, str], str] = {}  # (session, slot) -> digest
        self._recent: OrderedDict[str, Any] = OrderedDict()  # results the store could not hold
        self._keep = keep_results
        self._seq = itertools.count()
        self._closed = False
        self.stats = {"submitted": 0, "deduplicated": 0, "from_store": 0, "inline": 0, "ran": 0, "failed": 0,
                      "cancelled": 0}
        self._threads = [threading.Thread(target=self._worker, name=f"{name}-{i}", daemon=True)
                         for i in range(self.workers)]
        for t in self._threads:
            t.start()

    # ------------------------------------------------------------------------------------------- public
    @property
    def session_cap(self) -> int:
        """How many jobs one session may have running at once."""
        return max(1, min(self.session_jobs, self.workers - 1 if self.workers > 1 else 1))

    def is_heavy(self, request: Request) -> bool:
        cost = getattr(request, "cost", None)
        if callable(cost):
            return float(cost()) >= self.threshold
        return bool(getattr(request, "heavy", True))

    def submit(self, request: Request, session: Session, slot: str | None = None,
               executor: Executor | str | None = None) -> JobView:
        """Ask for ``request`` on behalf of ``session``; returns at once (light requests: once computed).

        ``executor``: where this job's shards run (``local``, ``ray`` or an executor; default: the queue's). It is
        not part of the digest: every executor gives the same result, so a job already asked for is joined.

        A stored result answers immediately (state done). Otherwise the session joins the job of that digest,
        creating it if needed. ``slot`` names the place on a page the result is for: a new digest in the same
        slot releases the session's previous one there (moving a setting abandons the old computation).
        Invalid requests raise ``ValueError`` (one line) before anything is queued.
        """
        request.validate()
        digest = request.digest()
        with self._lock:
            self._check_open()
            self.stats["submitted"] += 1
            if slot is not None:
                old = self._slots.get((session, slot))
                self._slots[(session, slot)] = digest
                if old is not None and old != digest:
                    self._release_locked(old, session)
            job = self._jobs.get(digest)
            if job is not None and job.state != CANCELLED:
                self._join_locked(job, session)
                return self._view(job, session)
        stored = self._stored(digest)
        if stored is not None:
            with self._lock:
                self.stats["from_store"] += 1
            return JobView(digest, request.kind, DONE, progress=1.0, result=stored)
        ex = executor if executor is None or isinstance(executor, Executor) else get_executor(executor)
        if not self.is_heavy(request):
            with self._lock:
                self.stats["inline"] += 1
            return self._run_inline(request, digest, ex)
        with self._lock:
            self._check_open()
            job = self._jobs.get(digest)  # another session may have created it meanwhile
            if job is not None and job.state != CANCELLED:
                self._join_locked(job, session)
                return self._view(job, session)
            job = _Job(request, digest, next(self._seq), time.monotonic(), [session], executor=ex)
            job.ctx.on_change = self._notify
            self._jobs[digest] = job
            self._queued.append(job)
            self._lock.notify_all()
            return self._view(job, session)

    def status(self, digest: str, session: Session | None = None) -> JobView | None:
        """The job of ``digest`` now, or a stored result as a done view, or None (never asked, or released)."""
        with self._lock:
            job = self._jobs.get(digest)
            if job is not None:
                return self._view(job, session)
        stored = self._stored(digest)
        if stored is not None:
            return JobView(digest, "", DONE, progress=1.0, result=stored)
        return None

    def wait(self, digest: str, timeout: float | None = None, session: Session | None = None) -> JobView | None:
        """Block until the job of ``digest`` is finished (or ``timeout``); returns its view."""
        with self._lock:
            job = self._jobs.get(digest)
        if job is not None:
            job.done_event.wait(timeout)
        return self.status(digest, session)

    def release(self, digest: str, session: Session) -> None:
        """``session`` no longer wants ``digest``: cancel it if nobody else does."""
        with self._lock:
            for key in [k for k, d in self._slots.items() if k[0] == session and d == digest]:
                del self._slots[key]
            self._release_locked(digest, session)

    def cancel(self, digest: str, session: Session) -> None:
        """The cancel button of one session: same as :meth:`release` (others who want it keep it)."""
        self.release(digest, session)

    def end_session(self, session: Session) -> int:
        """A session went away: drop all its interest. Returns how many jobs it still held."""
        with self._lock:
            for key in [k for k in self._slots if k[0] == session]:
                del self._slots[key]
            held = [j.digest for j in self._jobs.values() if session in j.sessions]
            for d in held:
                self._release_locked(d, session)
            return len(held)

    def sessions(self) -> set[Session]:
        with self._lock:
            return {s for j in self._jobs.values() for s in j.sessions}

    def reap(self, alive: Callable[[Session], bool]) -> int:
        """End every session for which ``alive(session)`` is false (called periodically by the Streamlit glue)."""
        gone = [s for s in self.sessions() if not alive(s)]
        for s in gone:
            self.end_session(s)
        return len(gone)

    def load(self) -> Load:
        with self._lock:
            running = sum(1 for j in self._jobs.values() if j.state == RUNNING)
            sessions = {s for j in self._jobs.values() if j.state in (QUEUED, RUNNING) for s in j.sessions}
            return Load(self.workers, running, len(self._queued), len(sessions))

    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers after cancelling every job (tests; a server never closes its queue)."""
        with self._lock:
            self._closed = True
            for job in list(self._jobs.values()):
                job.ctx.cancel_event.set()
                if job.state == QUEUED:
                    self._finish_locked(job, CANCELLED, error="the server is shutting down")
            self._queued.clear()
            self._lock.notify_all()
        for t in self._threads:
            t.join(timeout)

    # ------------------------------------------------------------------------------------------ internal
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the job queue is closed")

    def _notify(self) -> None:
        pass  # progress is read by polling; kept as a hook for push-style front ends

    def _stored(self, digest: str) -> Any | None:
        with self._lock:
            if digest in self._recent:
                self._recent.move_to_end(digest)
                return self._recent[digest]
        if self.store is None:
            return None
        try:
            return self.store.get(digest)
        except Exception:  # an unreachable shared store is a miss, never an error for the user
            return None

    def _remember(self, digest: str, result: Any) -> None:
        stored = False
        if self.store is not None:
            try:
                self.store.put(digest, result)
                stored = True
            except Exception:  # not storable (no @storable) or the store is down: keep it in memory
                stored = False
        if not stored:
            with self._lock:
                self._recent[digest] = result
                self._recent.move_to_end(digest)
                while len(self._recent) > self._keep:
                    self._recent.popitem(last=False)

    def _run_inline(self, request: Request, digest: str, executor: Executor | None = None) -> JobView:
        try:
            result = request.execute(executor or self.executor)
        except Exception as exc:  # noqa: BLE001 - the user gets one line, the caller carries on
            return JobView(digest, request.kind, FAILED, error=one_line(exc))
        self._remember(digest, result)
        return JobView(digest, request.kind, DONE, progress=1.0, result=result)

    def _view(self, job: _Job, session: Session | None) -> JobView:
        position = None
        if job.state == QUEUED:
            position = next((i + 1 for i, j in enumerate(self._queued) if j is job), None)
        now = job.finished if job.finished is not None else time.monotonic()
        return JobView(job.digest, job.request.kind, job.state, position=position,
                       progress=1.0 if job.state == DONE else job.ctx.progress, text=job.ctx.text, error=job.error,
                       result=job.result if job.state == DONE else None, sessions=len(job.sessions),
                       waited_s=now - job.created)

    def _join_locked(self, job: _Job, session: Session) -> None:
        if session not in job.sessions:
            job.sessions.append(session)
            self.stats["deduplicated"] += 1
        if job.state == RUNNING and job.ctx.cancelled and not self._closed:
            job.ctx.cancel_event.clear()  # wanted again before it stopped: let it run on

    def _release_locked(self, digest: str, session: Session) -> None:
        job = self._jobs.get(digest)
        if job is None or session not in job.sessions:
            return
        job.sessions.remove(session)
        if job.sessions:
            return
        if job.state == QUEUED:
            self._queued.remove(job)
            self._finish_locked(job, CANCELLED)
            self.stats["cancelled"] += 1
        elif job.state == RUNNING:
            job.ctx.cancel_event.set()  # the worker finishes it as cancelled at its next cancellation point
        else:
            del self._jobs[digest]  # finished and nobody holds it: the store keeps a done result
        self._lock.notify_all()

    def _finish_locked(self, job: _Job, state: str, result: Any = None, error: str | None = None) -> None:
        job.state, job.result, job.error = state, result, error
        job.finished = time.monotonic()
        self._uncharge_locked(job)
        if not job.sessions or state == CANCELLED:
            if self._jobs.get(job.digest) is job:
                del self._jobs[job.digest]
        job.done_event.set()
        self._lock.notify_all()

    def _uncharge_locked(self, job: _Job) -> None:
        if job.charged is not None:
            n = self._running.get(job.charged, 0) - 1
            if n > 0:
                self._running[job.charged] = n
            else:
                self._running.pop(job.charged, None)
            job.charged = None

    def _next_locked(self) -> _Job | None:
        cap = self.session_cap
        for job in self._queued:
            # charge the first interested session that is under its cap
            for s in job.sessions:
                if self._running.get(s, 0) < cap:
                    job.charged = s
                    self._queued.remove(job)
                    self._running[s] = self._running.get(s, 0) + 1
                    return job
        return None

    def _worker(self) -> None:
        while True:
            with self._lock:
                job = self._next_locked()
                while job is None:
                    if self._closed:
                        return
                    self._lock.wait(0.5)
                    job = self._next_locked()
                job.state = RUNNING
                job.started = time.monotonic()
            try:
                if job.ctx.cancelled:
                    raise Cancelled("cancelled before it started")
                with job_context(job.ctx):
                    result = _execute(job.request, job.executor or self.executor, job.ctx)
            except Cancelled:
                with self._lock:
                    if job.sessions and not self._closed:
                        # a session asked for it again while it was stopping: queue it again, first in line
                        self._uncharge_locked(job)
                        job.state, job.started = QUEUED, None
                        job.ctx.cancel_event.clear()
                        job.ctx.progress, job.ctx.text = 0.0, ""
                        self._queued.insert(0, job)
                        self._lock.notify_all()
                    else:
                        self.stats["cancelled"] += 1
                        self._finish_locked(job, CANCELLED)
                continue
            except Exception as exc:  # noqa: BLE001 - a failing request never takes a worker down
                with self._lock:
                    self.stats["failed"] += 1
                    self._finish_locked(job, FAILED, error=one_line(exc))
                continue
            self._remember(job.digest, result)
            with self._lock:
                self.stats["ran"] += 1
                if job.ctx.cancelled and not job.sessions:
                    self._finish_locked(job, CANCELLED)  # finished anyway: stored, nobody waits
                else:
                    self._finish_locked(job, DONE, result=result)
