"""Executors: where the shards of a request run. In-process by default; Ray past one machine.

An executor maps a module-level function over a list of picklable items and returns the results in order.
Requests that split into shards (a dataset evaluation: one shard per model × attack × batch of samples) call
``executor.map``; single-image requests run in-process whatever the executor.

``progress(done, total)`` is called as shards finish; ``cancelled()`` is polled between shards and a
:class:`Cancelled` is raised when it returns True.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable


class Cancelled(Exception):
    """The caller cancelled a run between two shards."""


ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


@runtime_checkable
class Executor(Protocol):
    name: str

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, progress: ProgressFn | None = None,
            cancelled: CancelFn | None = None) -> list[Any]: ...


class LocalExecutor:
    """Runs every shard in this process, in order (the default)."""

    name = "local"

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, progress: ProgressFn | None = None,
            cancelled: CancelFn | None = None) -> list[Any]:
        out = []
        total = len(items)
        for i, item in enumerate(items):
            if cancelled is not None and cancelled():
                raise Cancelled(f"cancelled after {i} of {total} shards")
            out.append(fn(item))
            if progress is not None:
                progress(i + 1, total)
        return out


LOCAL = LocalExecutor()


def executor_name(name: str | None = None) -> str:
    """``name``, else ``EXPLORER_EXECUTOR``, else ``ray`` when ``RAY_ADDRESS`` is set, else ``local``."""
    if name:
        return name
    env = (os.environ.get("EXPLORER_EXECUTOR") or "").strip().lower()
    if env:
        return env
    return "ray" if (os.environ.get("RAY_ADDRESS") or "").strip() else "local"


def get_executor(name: str | None = None) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``); see :func:`executor_name` for the default."""
    n = executor_name(name)
    if n == "local":
        return LOCAL
    if n == "ray":
        from explorer.runs.ray_executor import RayExecutor  # ray is imported only when asked for

        return RayExecutor.shared()
    raise ValueError(f"unknown executor {n!r}: choose local or ray")
