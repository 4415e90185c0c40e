"""Both room stores (in-process and a real redis-server) against the same behaviour."""

from __future__ import annotations

import threading
import time

import pytest

from explorer.rooms import NotPresenter, Question, RoomError, RoomNotFound, ViewState, normalize_code
from explorer.rooms.base import CODE_ALPHABET, CODE_LENGTH

VIEW = ViewState("attack_studio", {"model": "digits-cnn", "image": "digits:3", "attack": "fgsm", "eps": "0.15"})


def test_a_room_has_a_short_code_and_followers_see_the_presenters_view(make_store):
    store = make_store()
    room = store.create()
    assert len(room.code) == CODE_LENGTH and set(room.code) <= set(CODE_ALPHABET)
    f = store.follow(room.code)
    assert f.version == 0 and f.view is None and f.presenter_online
    v1 = store.set_view(room.code, room.presenter_key, VIEW)
    v2 = store.set_view(room.code, room.presenter_key, ViewState("boundaries", {"tab": "Slices through image space"}))
    assert v2 == v1 + 1
    f = store.follow(room.code.lower())  # a typed code: case is forgiven
    assert f.version == v2 and f.view.page == "boundaries" and f.view.params == {"tab": "Slices through image space"}
    other = store.create()
    assert other.code != room.code and store.follow(other.code).view is None


def test_only_the_presenter_changes_the_view(make_store):
    store = make_store()
    room = store.create()
    with pytest.raises(NotPresenter, match="Only the presenter"):
        store.set_view(room.code, "a-guess", VIEW)
    assert store.follow(room.code).version == 0


def test_an_unknown_code_is_a_clear_error(make_store):
    store = make_store()
    for code in ("ZZZZZZ", "abc", "", "K7Q2M0"):
        with pytest.raises(RoomNotFound, match="There is no room with code"):
            store.follow(code)
    room = store.create()
    store.end(room.code, room.presenter_key)
    with pytest.raises(RoomNotFound):
        store.follow(room.code)
    with pytest.raises(RoomNotFound):
        store.answer(room.code, "q", "p", 0)
    assert normalize_code(" k7q 2mx ") == "K7Q2MX"


def test_followers_are_told_when_the_presenter_goes_quiet_and_keep_the_view(make_store):
    store = make_store(presenter_timeout_s=0.3)
    room = store.create()
    store.set_view(room.code, room.presenter_key, VIEW)
    assert store.follow(room.code).presenter_online
    time.sleep(0.45)
    f = store.follow(room.code)
    assert not f.presenter_online and f.seconds_since_heartbeat >= 0.3
    assert f.view == VIEW  # the view stays
    store.heartbeat(room.code, room.presenter_key)
    assert store.follow(room.code).presenter_online


def test_answers_are_anonymous_one_per_participant_and_tallied(make_store):
    store = make_store()
    room = store.create()
    q = Question("linearity:3", "Which direction raises the loss fastest?", ("random", "FGSM", "both the same"))
    with pytest.raises(RoomError, match="closed"):
        store.answer(room.code, q.qid, "p0", 1)
    store.ask(room.code, room.presenter_key, q)
    assert store.follow(room.code).question == q
    threads = [threading.Thread(target=store.answer, args=(room.code, q.qid, f"p{i}", 1 if i % 3 else 0))
               for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.answer(room.code, q.qid, "p1", 2)  # p1 changes its mind: replaced, not added
    with pytest.raises(RoomError, match="Pick one of the 3"):
        store.answer(room.code, q.qid, "p2", 7)
    t = store.tally(room.code, room.presenter_key, q.qid)
    assert t.counts == (10, 19, 1) and t.total == 30
    with pytest.raises(NotPresenter):
        store.tally(room.code, "nope", q.qid)
    store.close_question(room.code, room.presenter_key)
    assert store.follow(room.code).question is None
    with pytest.raises(RoomError, match="closed"):
        store.answer(room.code, q.qid, "p40", 0)
    assert store.tally(room.code, room.presenter_key, q.qid).total == 30  # still readable


def test_bad_view_and_question_are_refused(make_store):
    store = make_store()
    room = store.create()
    with pytest.raises(RoomError, match="page"):
        store.set_view(room.code, room.presenter_key, ViewState("../etc", {}))
    with pytest.raises(RoomError, match="2 to"):
        store.ask(room.code, room.presenter_key, Question("q", "?", ("only",)))


def test_thirty_followers_see_a_new_view_within_a_second(make_store):
    store = make_store()
    room = store.create()
    seen: list[float] = []
    lock = threading.Lock()
    start = threading.Event()

    def follower():
        start.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            f = store.follow(room.code)
            if f.version >= 1:
                with lock:
                    seen.append(time.monotonic())
                return
            time.sleep(0.05)  # a follower polls every 50 ms

    threads = [threading.Thread(target=follower) for _ in range(30)]
    for t in threads:
        t.start()
    start.set()
    time.sleep(0.1)
    t0 = time.monotonic()
    store.set_view(room.code, room.presenter_key, VIEW)
    for t in threads:
        t.join()
    assert len(seen) == 30
    assert max(seen) - t0 < 1.0
