"""Rooms in this process: the default for one server (several replicas need ``RedisRoomStore``)."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

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


@dataclass
class _Room:
    key_hash: str
    salt: str
    touched: float
    heartbeat: float
    version: int = 0
    view: ViewState | None = None
    question: Question | None = None
    questions: dict[str, Question] = field(default_factory=dict)
    answers: dict[str, dict[str, int]] = field(default_factory=dict)  # qid -> participant hash -> choice


class InProcessRoomStore(RoomStore):
    def __init__(self, presenter_timeout_s: float = PRESENTER_TIMEOUT_S, ttl_s: float = ROOM_TTL_S,
                 max_rooms: int = 1000) -> None:
        self.presenter_timeout_s = presenter_timeout_s
        self.ttl_s = ttl_s
        self.max_rooms = max_rooms
        self._rooms: dict[str, _Room] = {}
        self._lock = threading.Lock()

    def _expire_locked(self, now: float) -> None:
        for code in [c for c, r in self._rooms.items() if now - r.touched > self.ttl_s]:
            del self._rooms[code]

    def _get(self, code: str) -> tuple[str, _Room]:
        c = normalize_code(code)
        now = time.time()
        room = self._rooms.get(c)
        if room is None or now - room.touched > self.ttl_s:
            self._rooms.pop(c, None)
            raise RoomNotFound(c)
        return c, room

    def _presenter(self, code: str, key: str) -> tuple[str, _Room]:
        c, room = self._get(code)
        if not keys_match(key, room.key_hash):
            raise NotPresenter(c)
        room.touched = room.heartbeat = time.time()
        return c, room

    def create(self) -> Room:
        with self._lock:
            now = time.time()
            self._expire_locked(now)
            if len(self._rooms) >= self.max_rooms:
                raise RoomError(f"this server already holds {self.max_rooms} rooms; try again later")
            code = new_code()
            while code in self._rooms:
                code = new_code()
            key = new_key()
            self._rooms[code] = _Room(key_hash(key), secrets.token_hex(16), now, now)
            return Room(code, key)

    def set_view(self, code: str, key: str, view: ViewState) -> int:
        view.check()
        with self._lock:
            _, room = self._presenter(code, key)
            room.version += 1
            room.view = view
            return room.version

    def follow(self, code: str) -> Follow:
        with self._lock:
            c, room = self._get(code)
            since = max(0.0, time.time() - room.heartbeat)
            return Follow(c, room.version, room.view, since <= self.presenter_timeout_s, since, room.question)

    def heartbeat(self, code: str, key: str) -> None:
        with self._lock:
            self._presenter(code, key)

    def ask(self, code: str, key: str, question: Question) -> None:
        question.check()
        with self._lock:
            _, room = self._presenter(code, key)
            room.question = question
            room.questions[question.qid] = question
            room.answers.setdefault(question.qid, {})

    def close_question(self, code: str, key: str) -> None:
        with self._lock:
            _, room = self._presenter(code, key)
            room.question = None

    def answer(self, code: str, qid: str, participant: str, choice: int) -> None:
        with self._lock:
            c, room = self._get(code)
            q = room.question
            if q is None or q.qid != qid:
                raise RoomError("This question is closed: the presenter has moved on.")
            if not isinstance(choice, int) or not 0 <= choice < len(q.choices):
                raise RoomError(f"Pick one of the {len(q.choices)} answers.")
            if not participant:
                raise RoomError("An answer needs a participant token.")
            room.answers[qid][participant_hash(c, room.salt, participant)] = choice
            room.touched = time.time()

    def tally(self, code: str, key: str, qid: str) -> Tally:
        with self._lock:
            _, room = self._presenter(code, key)
            q = room.questions.get(qid)
            if q is None:
                raise RoomError(f"No question {qid!r} was asked in this room.")
            counts = [0] * len(q.choices)
            for choice in room.answers.get(qid, {}).values():
                counts[choice] += 1
            return Tally(qid, tuple(counts))

    def end(self, code: str, key: str) -> None:
        with self._lock:
            c, _ = self._presenter(code, key)
            del self._rooms[c]
