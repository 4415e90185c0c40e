"""Rooms in a shared Redis, for several replicas behind a load balancer (``EXPLORER_REDIS_URL``).

Keys (``prefix`` default ``explorer:room:``), all expiring ``ttl_s`` after the room's last activity:
``<prefix><code>`` a hash (presenter key hash, salt, heartbeat, version, view, open question),
``<prefix><code>:q`` the questions asked (qid -> JSON), ``<prefix><code>:a:<qid>`` the answers (participant
hash -> choice). Times are the replicas' clocks (keep them NTP-synchronised: the presence check is seconds).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from explorer.rooms.base import (
    PRESENTER_TIMEOUT_S,
    ROOM_TTL_S,
    Follow,
    NotPresenter,
    Question,
    Room,
    RoomError,
    RoomNotFound,
    RoomStore,
    Tally,
    ViewState,
    key_hash,
    keys_match,
    new_code,
    new_key,
    normalize_code,
    participant_hash,
)


class RedisRoomStore(RoomStore):
    def __init__(self, url_or_client: Any, prefix: str = "explorer:room:",
                 presenter_timeout_s: float = PRESENTER_TIMEOUT_S, ttl_s: int = ROOM_TTL_S) -> None:
        if isinstance(url_or_client, str):
            import redis

            self.r = redis.Redis.from_url(url_or_client, socket_timeout=5, socket_connect_timeout=5,
                                          decode_responses=True)
        else:
            self.r = url_or_client
        self.prefix = prefix
        self.presenter_timeout_s = presenter_timeout_s
        self.ttl_s = int(ttl_s)

    # ------------------------------------------------------------------------------------------ helpers
    def _k(self, code: str, *parts: str) -> str:
        return ":".join([self.prefix + code, *parts])

    @staticmethod
    def _s(v: Any) -> str | None:
        if v is None:
            return None
        return v.decode() if isinstance(v, bytes) else str(v)

    def _touch(self, pipe, code: str, qids: list[str] | None = None) -> None:
        pipe.expire(self._k(code), self.ttl_s)
        pipe.expire(self._k(code, "q"), self.ttl_s)
        for qid in qids or ():
            pipe.expire(self._k(code, "a", qid), self.ttl_s)

    def _room(self, code: str) -> tuple[str, dict[str, str]]:
        c = normalize_code(code)
        raw = self.r.hgetall(self._k(c))
        if not raw:
            raise RoomNotFound(c)
        return c, {self._s(k): self._s(v) for k, v in raw.items()}

    def _presenter(self, code: str, key: str) -> tuple[str, dict[str, str]]:
        c, room = self._room(code)
        if not keys_match(key, room.get("key_hash", "")):
            raise NotPresenter(c)
        return c, room

    def _qids(self, code: str) -> list[str]:
        return [self._s(q) for q in self.r.hkeys(self._k(code, "q"))]

    # ------------------------------------------------------------------------------------------ the API
    def create(self) -> Room:
        key = new_key()
        now = repr(time.time())
        for _ in range(20):
            code = new_code()
            if self.r.hsetnx(self._k(code), "key_hash", key_hash(key)):
                pipe = self.r.pipeline(transaction=True)
                pipe.hset(self._k(code), mapping={"salt": secrets.token_hex(16), "heartbeat": now, "version": 0})
                pipe.expire(self._k(code), self.ttl_s)
                pipe.execute()
                return Room(code, key)
        raise RoomError("could not find a free room code; try again")

    def set_view(self, code: str, key: str, view: ViewState) -> int:
        view.check()
        c, _ = self._presenter(code, key)
        pipe = self.r.pipeline(transaction=True)
        pipe.hincrby(self._k(c), "version", 1)
        pipe.hset(self._k(c), mapping={"view": view.to_json(), "heartbeat": repr(time.time())})
        self._touch(pipe, c)
        return int(pipe.execute()[0])

    def follow(self, code: str) -> Follow:
        c, room = self._room(code)
        since = max(0.0, time.time() - float(room.get("heartbeat", 0.0)))
        view = ViewState.from_json(room["view"]) if room.get("view") else None
        question = Question.from_json(room["question"]) if room.get("question") else None
        return Follow(c, int(room.get("version", 0)), view, since <= self.presenter_timeout_s, since, question)

    def heartbeat(self, code: str, key: str) -> None:
        c, _ = self._presenter(code, key)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._k(c), "heartbeat", repr(time.time()))
        self._touch(pipe, c, self._qids(c))
        pipe.execute()

    def ask(self, code: str, key: str, question: Question) -> None:
        question.check()
        c, _ = self._presenter(code, key)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._k(c), mapping={"question": question.to_json(), "heartbeat": repr(time.time())})
        pipe.hset(self._k(c, "q"), question.qid, question.to_json())
        self._touch(pipe, c)
        pipe.execute()

    def close_question(self, code: str, key: str) -> None:
        c, _ = self._presenter(code, key)
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(self._k(c), "question")
        pipe.hset(self._k(c), "heartbeat", repr(time.time()))
        pipe.execute()

    def answer(self, code: str, qid: str, participant: str, choice: int) -> None:
        c, room = self._room(code)
        q = Question.from_json(room["question"]) if room.get("question") else None
        if q is None or q.qid != qid:
            raise RoomError("This question is closed: the presenter has moved on.")
        if not isinstance(choice, int) or not 0 <= choice < len(q.choices):
            raise RoomError(f"Pick one of the {len(q.choices)} answers.")
        if not participant:
            raise RoomError("An answer needs a participant token.")
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._k(c, "a", qid), participant_hash(c, room["salt"], participant), choice)
        pipe.expire(self._k(c, "a", qid), self.ttl_s)
        pipe.execute()

    def tally(self, code: str, key: str, qid: str) -> Tally:
        c, _ = self._presenter(code, key)
        raw = self.r.hget(self._k(c, "q"), qid)
        if raw is None:
            raise RoomError(f"No question {qid!r} was asked in this room.")
        q = Question.from_json(self._s(raw))
        counts = [0] * len(q.choices)
        for v in self.r.hvals(self._k(c, "a", qid)):
            i = int(self._s(v))
            if 0 <= i < len(counts):
                counts[i] += 1
        return Tally(qid, tuple(counts))

    def end(self, code: str, key: str) -> None:
        c, _ = self._presenter(code, key)
        keys = [self._k(c), self._k(c, "q"), *(self._k(c, "a", q) for q in self._qids(c))]
        self.r.delete(*keys)
