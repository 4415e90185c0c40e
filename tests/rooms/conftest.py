from __future__ import annotations

import pytest

from tests.rooms.redis_server import redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["memory", "redis"])
def make_store(request):
    """Build a room store of each kind (same tests for both). ``make_store(presenter_timeout_s=...)``."""
    from explorer.rooms import InProcessRoomStore

    if request.param == "memory":
        return lambda **kw: InProcessRoomStore(**kw)
    url = request.getfixturevalue("redis_url")
    import uuid

    from explorer.rooms.redis_store import RedisRoomStore

    prefix = f"test:{uuid.uuid4().hex[:8]}:"  # each test its own key space
    return lambda **kw: RedisRoomStore(url, prefix=prefix, **kw)
