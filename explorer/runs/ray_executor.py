"""The Ray executor: the shards of a request run as Ray tasks, on this machine or on a cluster.

* ``RAY_ADDRESS`` (or ``address=``) points at a running cluster (``ray start --head`` prints it); without it a
  local Ray instance is started with the machine's cores.
* Workers import *this* checkout of ``explorer`` (its root goes first on their ``PYTHONPATH``) and see the
  same ``EXPLORER_*`` settings, so they share the model weights and the result store on one machine.
* A worker process keeps its models in the process-wide ``explorer.inference`` model cache: it loads each
  model once, however many shards it runs.
* A task whose worker dies is retried (``max_retries``); results come back in order, progress is reported as
  tasks finish, and a cancel stops the tasks not yet finished.
* An address that does not answer raises :class:`RayUnavailable` quickly (one line) instead of hanging;
  :func:`executor_or_local` turns it into a fallback to the local executor with a one-line warning.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from explorer.runs.executor import LOCAL, CancelFn, Cancelled, Executor, ProgressFn

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_RETRIES = 3
CONNECT_TIMEOUT_S = 3.0


class RayUnavailable(RuntimeError):
    """Ray cannot be reached or started; the message is one line."""


def _probe_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast when ``host:port`` does not accept a TCP connection (``auto`` / ``local`` are not probed)."""
    addr = address.strip()
    if addr in ("auto", "local", ""):
        return
    for prefix in ("ray://", "http://", "https://"):
        if addr.startswith(prefix):
            addr = addr[len(prefix):]
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"RAY_ADDRESS={address!r} is not host:port (e.g. 127.0.0.1:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise RayUnavailable(f"the Ray cluster at {address} does not answer ({exc.__class__.__name__})") from None


def runtime_env() -> dict[str, Any]:
    """This checkout first on the workers' PYTHONPATH, and this process's EXPLORER_* settings."""
    env = {k: v for k, v in os.environ.items() if k.startswith("EXPLORER_")}
    paths = [str(REPO_ROOT)] + [p for p in (os.environ.get("PYTHONPATH") or "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return {"env_vars": env}


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


class RayExecutor:
    """Maps a function over items as Ray tasks (one CPU each), in order, with retries and cancel."""

    name = "ray"
    _shared: RayExecutor | None = None
    _lock = threading.Lock()

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 max_retries: int = MAX_RETRIES) -> None:
        # None: RAY_ADDRESS (else a local instance); "" forces a local instance
        self.address = (address if address is not None else (os.environ.get("RAY_ADDRESS") or "")).strip() or None
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self._remote = None

    @classmethod
    def shared(cls) -> RayExecutor:
        """One executor per process (Ray can be initialised once); raises :class:`RayUnavailable`."""
        with cls._lock:
            if cls._shared is None:
                ex = cls()
                ex.start()
                cls._shared = ex
            return cls._shared

    def start(self) -> None:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - ray is a normal requirement
            raise RayUnavailable("ray is not installed: pip install -r requirements.txt") from exc
        if not ray.is_initialized():
            if self.address:
                _probe_address(self.address)
            try:
                ray.init(address=self.address, num_cpus=None if self.address else self.num_cpus,
                         include_dashboard=False, runtime_env=runtime_env(), log_to_driver=False,
                         ignore_reinit_error=True)
            except Exception as exc:  # noqa: BLE001 - one line for the user
                raise RayUnavailable(f"Ray could not start: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
        self._remote = ray.remote(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False)(_call)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, progress: ProgressFn | None = None,
            cancelled: CancelFn | None = None) -> list[Any]:
        import ray

        if self._remote is None:
            self.start()
        if not items:
            return []
        fn_ref = ray.put(fn)
        refs = [self._remote.remote(fn_ref, item) for item in items]  # type: ignore[union-attr]
        index = {r.hex(): i for i, r in enumerate(refs)}
        out: list[Any] = [None] * len(refs)
        pending = list(refs)
        done_n = 0
        try:
            while pending:
                if cancelled is not None and cancelled():
                    raise Cancelled(f"cancelled after {done_n} of {len(refs)} shards")
                ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for r in ready:
                    out[index[r.hex()]] = ray.get(r)
                    done_n += 1
                    if progress is not None:
                        progress(done_n, len(refs))
        except BaseException:
            for r in pending:
                try:
                    ray.cancel(r)
                except Exception:  # noqa: BLE001 - best effort
                    pass
            raise
        return out


def executor_or_local(name: str | None = None) -> tuple[Executor, str | None]:
    """The executor asked for (or chosen by the environment), else the local one and a one-line warning."""
    from explorer.runs.executor import executor_name, get_executor

    n = executor_name(name)
    if n != "ray":
        return get_executor(n), None
    try:
        return get_executor("ray"), None
    except RayUnavailable as exc:
        return LOCAL, f"{exc}; running on this machine instead"
