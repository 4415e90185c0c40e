"""The job queue with real worker threads and real torch work."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from explorer.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING
from explorer.runs.store import DiskStore, MemoryStore, TieredStore

from tests.jobs.requests import EXECUTIONS, DigitsSweep, Light, Spin, open_gate, until, wait_started


def test_thirty_sessions_asking_one_digest_run_it_once_and_all_get_the_result(make_queue):
    q = make_queue(workers=2, session_jobs=1)
    req = DigitsSweep(sample=5)
    EXECUTIONS.pop(req.digest(), None)
    views = [None] * 30
    barrier = threading.Barrier(30)

    def ask(i: int) -> None:
        barrier.wait()
        q.submit(req, f"s{i}")
        views[i] = q.wait(req.digest(), timeout=60, session=f"s{i}")

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert EXECUTIONS[req.digest()] == 1
    assert all(v is not None and v.state == DONE for v in views)
    first = views[0].result
    for v in views[1:]:
        np.testing.assert_array_equal(v.result.pred, first.pred)
    assert q.stats["deduplicated"] + q.stats["from_store"] == 29
    # the sweep is real: the digit flips somewhere on the grid, and ε 0 keeps the clean label
    assert first.flip_eps is not None and 0 < first.flip_eps <= 0.5
    assert first.pred[-1] != first.pred[0]


def test_a_stored_result_answers_a_new_session_and_a_new_server_at_once(make_queue, tmp_path):
    disk = DiskStore(tmp_path / "results")
    q = make_queue(workers=1, store=TieredStore(MemoryStore(), disk))
    req = DigitsSweep(sample=7)
    EXECUTIONS.pop(req.digest(), None)
    q.submit(req, "alice")
    assert q.wait(req.digest(), timeout=60).state == DONE
    q.release(req.digest(), "alice")
    v = q.submit(req, "bob")
    assert v.state == DONE and v.result is not None
    # a reconnecting session on a restarted server (or another replica sharing the store)
    q2 = make_queue(workers=1, store=TieredStore(MemoryStore(), DiskStore(tmp_path / "results")))
    v2 = q2.submit(req, "alice-again")
    assert v2.state == DONE
    np.testing.assert_array_equal(v2.result.pred, v.result.pred)
    assert EXECUTIONS[req.digest()] == 1


def test_one_session_cannot_take_every_worker(make_queue):
    q = make_queue(workers=2, session_jobs=2)
    assert q.session_cap == 1
    a = [q.submit(Spin(key=f"a{i}"), "A") for i in range(3)]
    assert wait_started("a0")
    assert until(lambda: q.status(a[0].digest).state == RUNNING)
    # the second worker stays free for someone else
    assert q.status(a[1].digest).state == QUEUED
    b = q.submit(Spin(key="b0"), "B")
    assert wait_started("b0")
    assert q.status(b.digest).state == RUNNING
    assert q.status(a[1].digest).state == QUEUED
    open_gate("a0")
    assert until(lambda: q.status(a[1].digest).state == RUNNING)
    for k in ("a1", "a2", "b0"):
        open_gate(k)
    assert q.wait(a[2].digest, timeout=10).state == DONE


def test_queued_jobs_report_their_position_and_running_ones_their_progress(make_queue):
    q = make_queue(workers=1, session_jobs=1)
    first = q.submit(Spin(key="p0"), "s0")
    assert wait_started("p0")
    waiting = [q.submit(Spin(key=f"p{i}"), f"s{i}") for i in range(1, 4)]
    assert [q.status(v.digest).position for v in waiting] == [1, 2, 3]
    assert "number 2 in the queue" in q.status(waiting[1].digest).status_line()
    assert until(lambda: q.status(first.digest).progress > 0.05)
    running = q.status(first.digest)
    assert running.state == RUNNING and running.text.startswith("loop ")
    assert q.load().busy and q.load().queued == 3
    # nothing is lost: the queue holds every job and runs them in order
    for i in range(4):
        open_gate(f"p{i}")
    for v in waiting:
        assert q.wait(v.digest, timeout=10).state == DONE


def test_a_job_nobody_wants_is_cancelled_queued_or_running(make_queue):
    q = make_queue(workers=1)
    run = q.submit(Spin(key="c0"), "A")
    assert wait_started("c0")
    queued = q.submit(Spin(key="c1"), "B")
    q.release(queued.digest, "B")
    assert q.status(queued.digest) is None  # gone from the queue, never executed
    assert EXECUTIONS[queued.digest] == 0
    q.submit(Spin(key="c0"), "C")  # a second session wants the running job
    q.release(run.digest, "A")
    assert q.status(run.digest).state == RUNNING  # C still wants it
    q.end_session("C")  # C's tab closed
    assert until(lambda: q.status(run.digest) is None)
    assert q.stats["cancelled"] == 2
    # the worker carries on with the next job
    nxt = q.submit(Spin(key="c2"), "D")
    open_gate("c2")
    assert q.wait(nxt.digest, timeout=10).state == DONE


def test_a_failing_job_gives_one_line_and_the_worker_carries_on(make_queue):
    q = make_queue(workers=1)
    bad = q.submit(Spin(key="f0", fail=True), "A")
    good = q.submit(Spin(key="f1"), "B")
    open_gate("f0")
    open_gate("f1")
    v = q.wait(bad.digest, timeout=10, session="A")
    assert v.state == FAILED
    assert v.error == "the model exploded second line of detail"
    assert "\n" not in v.status_line()
    assert q.wait(good.digest, timeout=10).state == DONE
    # the session holding the failure sees it again until it lets go; then a new ask retries
    assert q.submit(Spin(key="f0", fail=True), "A").state == FAILED
    q.release(bad.digest, "A")
    assert q.submit(Spin(key="f0", fail=True), "A").state in (QUEUED, RUNNING, FAILED)


def test_light_requests_never_wait_behind_heavy_ones(make_queue):
    q = make_queue(workers=1)
    q.submit(Spin(key="h0"), "A")
    q.submit(Spin(key="h1"), "B")
    assert wait_started("h0")
    v = q.submit(Light(value=3), "C")
    assert v.state == DONE and v.result.loops == 3  # computed inline, on this thread, while the worker is busy
    assert q.stats["inline"] == 1


def test_a_new_request_in_the_same_slot_abandons_the_old_one(make_queue):
    q = make_queue(workers=1)
    q.submit(Spin(key="busy"), "X")
    assert wait_started("busy")
    old = q.submit(Spin(key="s-old"), "A", slot="studio.sweep")
    new = q.submit(Spin(key="s-new"), "A", slot="studio.sweep")
    assert q.status(old.digest) is None
    assert q.status(new.digest).position == 1


def test_a_job_wanted_again_while_stopping_is_not_lost(make_queue):
    q = make_queue(workers=1)
    v = q.submit(Spin(key="w0"), "A")
    assert wait_started("w0")
    q.release(v.digest, "A")
    q.submit(Spin(key="w0"), "B")  # asked again right away: it must still finish for B
    open_gate("w0")
    assert q.wait(v.digest, timeout=10, session="B").state == DONE


def test_invalid_request_is_refused_before_queueing(make_queue):
    q = make_queue(workers=1)
    with pytest.raises(ValueError, match="sample must be"):
        q.submit(DigitsSweep(sample=5000), "A")
    assert q.load().queued == 0 and q.load().running == 0


def test_two_heavy_jobs_run_at_once_on_two_workers(make_queue):
    q = make_queue(workers=2, session_jobs=1)
    a = q.submit(Spin(key="t0"), "A")
    b = q.submit(Spin(key="t1"), "B")
    assert wait_started("t0") and wait_started("t1")
    assert q.load().running == 2
    open_gate("t0")
    open_gate("t1")
    assert q.wait(a.digest, 10).state == DONE and q.wait(b.digest, 10).state == DONE
    assert q.status(a.digest, "A").state == DONE
    assert CANCELLED not in (q.status(a.digest).state,)


def _digits_sweep(steps: int = 200, seed: int = 0):
    from explorer.attacks import AttackConfig
    from explorer.images import load_sample, to_model_input
    from explorer.models import get_spec
    from explorer.runs.requests import SweepRequest

    img = load_sample("digits:3")
    x = to_model_input(img, get_spec("digits-cnn").input_shape)
    return SweepRequest("digits-cnn", "digits:3", int(img.label), AttackConfig("pgd", eps=0.3, steps=steps, seed=seed),
                        tuple(float(e) for e in np.linspace(0, 0.5, 64)), None, x)


def test_a_real_sweep_reports_progress_and_stops_when_nobody_wants_it(make_queue):
    """The run layer's own requests (not test doubles) feed the job's progress and stop within a batch."""
    q = make_queue(workers=1)
    v = q.submit(_digits_sweep(seed=11), "A")
    assert until(lambda: (q.status(v.digest) or v).progress > 0.0, timeout=30)
    running = q.status(v.digest)
    assert running.state == RUNNING and 0 < running.progress < 1
    q.release(v.digest, "A")
    assert until(lambda: q.status(v.digest) is None, timeout=30)
    assert q.stats["cancelled"] == 1 and q.stats["ran"] == 0  # stopped mid-sweep, not run to the end
    # the worker carries on: the same sweep asked again runs to the end
    again = q.submit(_digits_sweep(seed=11), "B")
    done = q.wait(again.digest, timeout=60, session="B")
    assert done.state == DONE and done.result.flip_eps is not None


def test_a_dataset_evaluation_reports_its_parts_and_stops_between_them(make_queue):
    import time as _time

    from explorer.runs.evaluate import EvaluateRequest

    q = make_queue(workers=1)
    req = EvaluateRequest(models=("digits-softmax",), attacks=("pgd",), n=360, shard_size=30, steps=50,
                          seed=int(_time.time()) % 100_000, probe=False)  # a fresh seed: no stored shards
    v = q.submit(req, "A", executor="local")
    assert until(lambda: (q.status(v.digest) or v).progress > 0.0, timeout=60)
    running = q.status(v.digest)
    assert running.state == RUNNING and " of 12 parts" in running.text
    q.release(v.digest, "A")
    assert until(lambda: q.status(v.digest) is None, timeout=60)
    assert q.stats["cancelled"] == 1 and q.stats["ran"] == 0
