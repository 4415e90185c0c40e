"""The room watcher: one read per room per tick, and a rerun for exactly the sessions whose room moved (against
both room stores, Redis included)."""

from __future__ import annotations

import time

import pytest

import explorer.rooms as rooms
from explorer.rooms import ViewState
from explorer.teaching import RoomWatcher, room_state


@pytest.fixture
def store(make_store, monkeypatch):
    s = make_store(presenter_timeout_s=0.5)
    monkeypatch.setattr(rooms, "_store", s)
    return s


def test_only_the_sessions_of_a_room_that_moved_are_rerun_once(store):
    a, b = store.create(), store.create()
    reruns: list[str] = []
    w = RoomWatcher(rerun=lambda sid: reruns.append(sid) or True, every=3600)  # ticks driven by the test
    for i in range(30):
        w.watch(f"a{i}", a.code, room_state(store.follow(a.code)))
    w.watch("b0", b.code, room_state(store.follow(b.code)))
    assert w.tick() == 0 and not reruns  # nothing moved: idle followers cost nothing
    store.set_view(a.code, a.presenter_key, ViewState("boundaries", {"model": "digits-cnn"}))
    assert w.tick() == 30
    assert sorted(reruns) == sorted(f"a{i}" for i in range(30))
    assert w.tick() == 0  # each session is rerun once per move, not on every tick
    # a session that ran meanwhile and registered the new state is not rerun again
    store.set_view(a.code, a.presenter_key, ViewState("home", {}))
    w.watch("a0", a.code, room_state(store.follow(a.code)))
    reruns.clear()
    w.tick()
    assert "a0" not in reruns and len(reruns) == 29


def test_a_silent_presenter_an_ended_room_and_a_closed_tab(store):
    room = store.create()
    store.heartbeat(room.code, room.presenter_key)
    alive = {"s1": True, "s2": False}
    reruns: list[str] = []
    w = RoomWatcher(rerun=lambda sid: reruns.append(sid) or alive[sid], every=3600)
    for sid in alive:
        w.watch(sid, room.code, room_state(store.follow(room.code)))
    time.sleep(0.7)  # the presenter's heartbeat is older than the timeout: followers are told
    assert w.tick() == 1 and sorted(reruns) == ["s1", "s2"]
    assert w.watching() == 1  # s2's tab is gone: no longer watched
    store.end(room.code, room.presenter_key)
    reruns.clear()
    assert w.tick() == 1 and reruns == ["s1"]


def test_the_thread_reruns_a_follower_within_a_few_ticks(store):
    room = store.create()
    seen: list[float] = []
    w = RoomWatcher(rerun=lambda sid: seen.append(time.perf_counter()) or True, every=0.05)
    w.watch("s", room.code, room_state(store.follow(room.code)))
    t0 = time.perf_counter()
    store.set_view(room.code, room.presenter_key, ViewState("home", {}))
    end = t0 + 5
    while not seen and time.perf_counter() < end:
        time.sleep(0.01)
    assert seen and seen[0] - t0 < 1.0
