"""RedisStore: results shared through a real redis-server, without pickle; the queue answers from it."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.runs.store import MemoryStore, RedisStore, TieredStore, _Tolerant
from tests.rooms.redis_server import redis_server

from tests.jobs.requests import EXECUTIONS, DigitsSweep, SpinOut


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def test_round_trip_and_misses(redis_url):
    store = RedisStore(redis_url, prefix="t1:")
    out = SpinOut("k", 3)
    store.put("ab" * 32, out)
    assert store.get("ab" * 32) == out
    assert store.get("cd" * 32) is None
    store.client.set("t1:" + "ef" * 32, b"not an encoded result")
    assert store.get("ef" * 32) is None  # a foreign value is a miss, never unpickled
    with pytest.raises(ValueError, match="hex"):
        store.get("../x")
    with pytest.raises(TypeError, match="cannot store"):
        store.put("ab" * 32, object.__new__(type("Anon", (), {})))


def test_two_servers_share_one_computation(redis_url, make_queue):
    req = DigitsSweep(sample=11)
    EXECUTIONS.pop(req.digest(), None)
    q1 = make_queue(workers=1, store=TieredStore(MemoryStore(), RedisStore(redis_url, prefix="t2:")))
    q2 = make_queue(workers=1, store=TieredStore(MemoryStore(), RedisStore(redis_url, prefix="t2:")))
    q1.submit(req, "on-replica-1")
    a = q1.wait(req.digest(), timeout=60)
    b = q2.submit(req, "on-replica-2")
    assert b.state == "done"
    np.testing.assert_array_equal(a.result.pred, b.result.pred)
    assert EXECUTIONS[req.digest()] == 1


def test_an_unreachable_redis_is_a_miss_and_the_local_tiers_carry_on():
    dead = _Tolerant(RedisStore("redis://127.0.0.1:1/0"))
    store = TieredStore(MemoryStore(), dead)
    store.put("ab" * 32, SpinOut("k", 1))
    assert store.get("ab" * 32) == SpinOut("k", 1)
    assert dead.get("cd" * 32) is None
