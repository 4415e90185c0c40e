"""The contract every request of the run layer follows.

A request is a frozen dataclass that names *what* to compute (model id, image digest, settings), never *how*:

* ``validate()`` checks it once, in one place, and raises a one-line ``ValueError``;
* ``digest()`` is its stable content digest (kind + every field, canonical JSON) — the cache key everywhere
  (Streamlit caches, the on-disk result store, the job queue's deduplication);
* ``execute(executor)`` computes a plain result (numpy arrays, dataclasses of numpy; never tensors), cheap to
  pickle and to send to a worker.

Pages, the CLI, benchmarks, workers and lessons all go through :func:`run`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, ClassVar

from explorer.runs.executor import Executor, get_executor


def _canonical(value: Any) -> Any:
    """JSON-ready form of a request field: dataclasses as dicts, tuples as lists, floats exact (repr)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # fields marked ``metadata={"key": False}`` (the arrays a request carries, whose digests are fields)
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.metadata.get("key", True)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return repr(value) if not math.isfinite(value) else float.hex(value)
    if hasattr(value, "item"):  # numpy scalar
        return _canonical(value.item())
    raise TypeError(f"a request field must be plain data, got {type(value).__name__}")


def content_digest(kind: str, fields: Any) -> str:
    """sha256 of ``kind`` and the canonical JSON of ``fields``."""
    text = json.dumps({"kind": kind, "fields": _canonical(fields)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


REFERENCE_PIXELS = 28 * 28  # a request's cost is counted in forward passes of an image this size


def shape_scale(shape) -> float:
    """How many 28 x 28 images' worth of values an input of ``shape`` (C x H x W) holds (at least 1/16)."""
    size = 1
    for d in shape:
        size *= int(d)
    return max(1 / 16, size / REFERENCE_PIXELS)


def attack_passes(attack: str, eps: float, steps: int) -> float:
    """Forward passes of one single-image ``attack`` (its registry spec's cost model)."""
    from explorer.attacks import AttackConfig, registry

    return float(registry.get(attack).cost(AttackConfig(attack=attack, eps=float(eps), steps=int(steps))))


@dataclasses.dataclass(frozen=True)
class Request:
    """Base of every request (subclasses are frozen dataclasses and set ``kind``)."""

    kind: ClassVar[str] = "request"
    #: rough cost in "image forward passes"; the job queue sends requests above a threshold to workers
    heavy: ClassVar[bool] = True

    def validate(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def digest(self) -> str:
        return content_digest(self.kind, self)

    def execute(self, executor: Executor) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError


def run(request: Request, executor: Executor | str | None = None, progress: Any = None) -> Any:
    """Validate ``request`` and compute it on ``executor`` (default: in-process, or ``EXPLORER_EXECUTOR``).

    ``progress``: an optional callback the request reports to (``progress(frac, text)``; single-image requests
    that accept one say so in their docstring); requests without progress ignore it.
    """
    request.validate()
    ex = executor if isinstance(executor, Executor) else get_executor(executor)
    if progress is not None and getattr(request, "accepts_progress", False):
        return request.execute(ex, progress=progress)
    return request.execute(ex)
