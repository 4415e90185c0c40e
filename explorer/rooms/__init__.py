"""Presenter rooms (back end): see ``base.py`` for the interface; ``room_store()`` is the process-wide store —
Redis when ``EXPLORER_REDIS_URL`` is set (replicas), else in-process."""

from __future__ import annotations

import threading

from explorer.rooms.base import (
    CODE_LENGTH,
    Follow,
    NotPresenter,
    Question,
    Room,
    RoomError,
    RoomNotFound,
    RoomStore,
    Tally,
    ViewState,
    normalize_code,
)
from explorer.rooms.memory import InProcessRoomStore

__all__ = ["CODE_LENGTH", "Follow", "InProcessRoomStore", "NotPresenter", "Question", "Room", "RoomError",
           "RoomNotFound", "RoomStore", "Tally", "ViewState", "normalize_code", "room_store"]

_store: RoomStore | None = None
_lock = threading.Lock()


def room_store() -> RoomStore:
    global _store
    with _lock:
        if _store is None:
            from explorer.config import get_settings

            url = get_settings().redis_url
            if url:
                from explorer.rooms.redis_store import RedisRoomStore

                _store = RedisRoomStore(url)
            else:
                _store = InProcessRoomStore()
        return _store
