"""Presenter rooms: a teacher's view state that a class follows live, and anonymous answers to questions.

A room is a short code (``K7Q2MX``: 6 characters without look-alikes such as 0/O, 1/I/L). Creating one returns a
secret presenter key; only its holder can change the view, heartbeat, ask or close. Followers read the view with
a version number (poll cheaply: re-render only when the version moved) and learn whether the presenter is still
there (no heartbeat for ``presenter_timeout_s``: the followers keep their view and are told).

Question answers are anonymous: a participant is a random token its browser session keeps; the store keeps only
a salted hash of it (to count one answer per participant, the last one wins) and the tally.

Two implementations pass the same tests (``tests/rooms``): :class:`explorer.rooms.memory.InProcessRoomStore`
(the default, one server) and :class:`explorer.rooms.redis_store.RedisRoomStore` (replicas behind a load
balancer, ``EXPLORER_REDIS_URL``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
CODE_LENGTH = 6
ROOM_TTL_S = 12 * 3600  # an idle room expires after this long
PRESENTER_TIMEOUT_S = 10.0
MAX_CHOICES = 12
MAX_VIEW_BYTES = 16_000


class RoomError(ValueError):
    """A one-line problem with a room request (bad code, wrong key, bad answer)."""


class RoomNotFound(RoomError, LookupError):
    def __init__(self, code: str) -> None:
        super().__init__(f"There is no room with code {code!r}: check the code, or the room has ended "
                         "(rooms expire after 12 hours without activity).")
        self.code = code


class NotPresenter(RoomError, PermissionError):
    def __init__(self, code: str) -> None:
        super().__init__(f"Only the presenter of room {code} can do that (the presenter key does not match).")


@dataclass(frozen=True)
class ViewState:
    """What a follower shows: the page and every parameter of it (URL query strings)."""

    page: str
    params: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"page": self.page, "params": dict(sorted(self.params.items()))}, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> ViewState:
        d = json.loads(text)
        return ViewState(str(d["page"]), {str(k): str(v) for k, v in d.get("params", {}).items()})

    def check(self) -> None:
        if not isinstance(self.page, str) or not re.fullmatch(r"[a-z0-9_]*", self.page):
            raise RoomError(f"page must be a page's URL name (letters, digits, _), got {self.page!r}")
        if len(self.to_json()) > MAX_VIEW_BYTES:
            raise RoomError(f"a view state must stay under {MAX_VIEW_BYTES} bytes")


@dataclass(frozen=True)
class Question:
    """A question the presenter asked: ``qid`` names it (e.g. ``lesson:step``), ``choices`` are the answers."""

    qid: str
    prompt: str
    choices: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"qid": self.qid, "prompt": self.prompt, "choices": list(self.choices)})

    @staticmethod
    def from_json(text: str) -> Question:
        d = json.loads(text)
        return Question(str(d["qid"]), str(d["prompt"]), tuple(str(c) for c in d["choices"]))

    def check(self) -> None:
        if not self.qid or len(self.qid) > 200:
            raise RoomError("a question needs an id of 1 to 200 characters")
        if not 2 <= len(self.choices) <= MAX_CHOICES:
            raise RoomError(f"a question needs 2 to {MAX_CHOICES} choices, got {len(self.choices)}")


@dataclass(frozen=True)
class Room:
    """What the presenter gets back from ``create``: the code to share and the key to keep."""

    code: str
    presenter_key: str


@dataclass(frozen=True)
class Follow:
    """What a follower reads: the view and its version (0: nothing shown yet), whether the presenter is there,
    and the open question, if any."""

    code: str
    version: int
    view: ViewState | None
    presenter_online: bool
    seconds_since_heartbeat: float
    question: Question | None


@dataclass(frozen=True)
class Tally:
    qid: str
    counts: tuple[int, ...]  # one per choice

    @property
    def total(self) -> int:
        return sum(self.counts)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def new_key() -> str:
    return secrets.token_urlsafe(24)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keys_match(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(key), stored_hash)


def participant_hash(code: str, salt: str, participant: str) -> str:
    """An answer's owner, anonymised: a salted hash per room (the salt never leaves the store)."""
    return hashlib.sha256(f"{salt}:{code}:{participant}".encode()).hexdigest()[:32]


def normalize_code(code: Any) -> str:
    """A user-typed code: case and spaces forgiven; anything else in the wrong shape is not found."""
    text = "".join(str(code).split()).upper()
    if len(text) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in text):
        raise RoomNotFound(str(code).strip()[:20])
    return text


class RoomStore(ABC):
    """The interface both stores implement (see the module docstring)."""

    presenter_timeout_s: float

    @abstractmethod
    def create(self) -> Room:
        """A new room with a fresh short code; returns the code and the presenter key."""

    @abstractmethod
    def set_view(self, code: str, key: str, view: ViewState) -> int:
        """Presenter: show ``view`` to the room (counts as a heartbeat). Returns the new version."""

    @abstractmethod
    def follow(self, code: str) -> Follow:
        """Follower: the current view, its version, the presenter's presence and the open question."""

    @abstractmethod
    def heartbeat(self, code: str, key: str) -> None:
        """Presenter: still here (call every few seconds)."""

    @abstractmethod
    def ask(self, code: str, key: str, question: Question) -> None:
        """Presenter: open ``question`` (answers to an earlier question with the same id are kept)."""

    @abstractmethod
    def close_question(self, code: str, key: str) -> None:
        """Presenter: stop taking answers (the tally stays readable)."""

    @abstractmethod
    def answer(self, code: str, qid: str, participant: str, choice: int) -> None:
        """Follower: answer the open question ``qid`` (again: the new answer replaces the old one)."""

    @abstractmethod
    def tally(self, code: str, key: str, qid: str) -> Tally:
        """Presenter: how many participants chose each answer."""

    @abstractmethod
    def end(self, code: str, key: str) -> None:
        """Presenter: close the room (followers then get :class:`RoomNotFound`)."""

    def exists(self, code: str) -> bool:
        try:
            self.follow(code)
        except RoomNotFound:
            return False
        return True
