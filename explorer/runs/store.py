"""Results stored by request digest: in memory, on disk, or in a shared Redis for several replicas.

Results are encoded without pickle (never unpickle anything read back from disk or a network store): a
result is a dataclass from ``explorer.*`` (registered with :func:`storable`) whose fields are numpy arrays,
scalars, strings, None, tuples/lists/dicts of those, or other registered dataclasses. Arrays go into one
``.npz`` (``allow_pickle=False``), everything else into a JSON header.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

_TYPES: dict[str, type] = {}


def storable(cls: type) -> type:
    """Class decorator: allow this dataclass in the result store (by its qualified name)."""
    _TYPES[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def encode(obj: Any) -> bytes:
    arrays: dict[str, np.ndarray] = {}

    def enc(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                raise TypeError("object arrays cannot be stored")
            key = f"a{len(arrays)}"
            arrays[key] = v
            return {"__array__": key}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            name = f"{type(v).__module__}.{type(v).__qualname__}"
            if name not in _TYPES:
                raise TypeError(f"{name} is not registered with explorer.runs.store.storable")
            return {"__dataclass__": name, "fields": {f.name: enc(getattr(v, f.name)) for f in dataclasses.fields(v)}}
        if isinstance(v, tuple):
            return {"__tuple__": [enc(x) for x in v]}
        if isinstance(v, list):
            return [enc(x) for x in v]
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise TypeError("dict keys must be strings")
            return {"__dict__": {k: enc(x) for k, x in v.items()}}
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, float) and not np.isfinite(v):
            return {"__float__": repr(v)}
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise TypeError(f"cannot store a {type(v).__name__}")

    header = json.dumps(enc(obj)).encode()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    body = buf.getvalue()
    return len(header).to_bytes(8, "little") + header + body


def decode(data: bytes) -> Any:
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n].decode())
    with np.load(io.BytesIO(data[8 + n:]), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}

    def dec(v: Any) -> Any:
        if isinstance(v, list):
            return [dec(x) for x in v]
        if isinstance(v, dict):
            if "__array__" in v:
                return arrays[v["__array__"]]
            if "__tuple__" in v:
                return tuple(dec(x) for x in v["__tuple__"])
            if "__dict__" in v:
                return {k: dec(x) for k, x in v["__dict__"].items()}
            if "__float__" in v:
                return float(v["__float__"])
            if "__dataclass__" in v:
                cls = _TYPES.get(v["__dataclass__"])
                if cls is None:
                    raise ValueError(f"unknown stored type {v['__dataclass__']!r}")
                return cls(**{k: dec(x) for k, x in v["fields"].items()})
        return v

    return dec(header)


class ResultStore(Protocol):
    def get(self, digest: str) -> Any | None: ...

    def put(self, digest: str, result: Any) -> None: ...


class MemoryStore:
    """A bounded, thread-safe LRU of decoded results."""

    def __init__(self, entries: int = 256) -> None:
        self.entries = entries
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> Any | None:
        with self._lock:
            if digest in self._data:
                self._data.move_to_end(digest)
                return self._data[digest]
        return None

    def put(self, digest: str, result: Any) -> None:
        with self._lock:
            self._data[digest] = result
            self._data.move_to_end(digest)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)


class DiskStore:
    """One file per digest under ``root`` (written atomically; safe for several processes)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, digest: str) -> Path:
        if not digest or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError("a digest is lowercase hex")
        return self.root / digest[:2] / f"{digest}.res"

    def get(self, digest: str) -> Any | None:
        p = self._path(digest)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return decode(data)
        except Exception:  # a torn or foreign file: treat as a miss
            return None

    def put(self, digest: str, result: Any) -> None:
        p = self._path(digest)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(encode(result))
        os.replace(tmp, p)


class TieredStore:
    """Memory in front of a slower store (disk or Redis)."""

    def __init__(self, *stores: ResultStore) -> None:
        self.stores = stores

    def get(self, digest: str) -> Any | None:
        for i, s in enumerate(self.stores):
            r = s.get(digest)
            if r is not None:
                for faster in self.stores[:i]:
                    faster.put(digest, r)
                return r
        return None

    def put(self, digest: str, result: Any) -> None:
        for s in self.stores:
            s.put(digest, result)


_default: TieredStore | None = None
_default_lock = threading.Lock()


def default_store() -> TieredStore:
    """The process-wide store: memory, then ``<cache_dir>/results`` on disk."""
    global _default
    with _default_lock:
        if _default is None:
            from explorer.config import get_settings

            _default = TieredStore(MemoryStore(), DiskStore(get_settings().cache_dir / "results"))
        return _default


class RedisStore:
    """Results in a shared Redis (``EXPLORER_REDIS_URL``), so several replicas behind a load balancer compute a
    request once. Values are the same pickle-free encoding as on disk; keys are ``<prefix><digest>``.

    ``ttl_s`` (default 7 days) bounds how long an entry lives; ``max_bytes`` skips results too large to share
    (they stay in the local tiers). A Redis that cannot be reached is a miss on ``get`` and raises on ``put``
    (a ``TieredStore`` in front keeps the memory and disk tiers working either way: see ``shared_default_store``).
    """

    def __init__(self, url_or_client: Any, prefix: str = "explorer:result:", ttl_s: int | None = 7 * 24 * 3600,
                 max_bytes: int = 64 * 1024 * 1024) -> None:
        if isinstance(url_or_client, str):
            import redis

            self.client = redis.Redis.from_url(url_or_client, socket_timeout=5, socket_connect_timeout=5)
        else:
            self.client = url_or_client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes

    def _key(self, digest: str) -> str:
        if not digest or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError("a digest is lowercase hex")
        return self.prefix + digest

    def get(self, digest: str) -> Any | None:
        key = self._key(digest)
        try:
            data = self.client.get(key)
        except Exception:  # noqa: BLE001 - an unreachable shared store is a miss
            return None
        if data is None:
            return None
        try:
            return decode(data)
        except Exception:  # a torn or foreign value: a miss
            return None

    def put(self, digest: str, result: Any) -> None:
        data = encode(result)
        if len(data) > self.max_bytes:
            return
        self.client.set(self._key(digest), data, ex=self.ttl_s)


class _Tolerant:
    """A tier whose failures (network down) never reach the caller: ``put`` errors are ignored."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store

    def get(self, digest: str) -> Any | None:
        try:
            return self.store.get(digest)
        except Exception:  # noqa: BLE001
            return None

    def put(self, digest: str, result: Any) -> None:
        try:
            self.store.put(digest, result)
        except TypeError:
            raise  # not storable: the caller must know
        except Exception:  # noqa: BLE001 - the shared tier is down; local tiers have it
            pass


_shared: TieredStore | None = None


def shared_default_store() -> TieredStore:
    """:func:`default_store`, plus a shared Redis tier behind it when ``EXPLORER_REDIS_URL`` is set."""
    global _shared
    from explorer.config import get_settings

    url = get_settings().redis_url
    if not url:
        return default_store()
    with _default_lock:
        if _shared is None:
            _shared = TieredStore(MemoryStore(), DiskStore(get_settings().cache_dir / "results"),
                                  _Tolerant(RedisStore(url)))
        return _shared
