"""Warm UMAP once per process, in the background.

``import umap`` compiles numba code (~15-20 s with an empty numba cache, ~3 s once cached), and the first
``fit`` in every new process recompiled ~13 s more, because umap declares some hot jitted functions without
``cache=True``. ``import_umap()`` turns numba's disk cache on for those too, so from the second process on
the first fit costs well under a second. ``warm_umap_in_background()`` pays what is left in a daemon thread
when the server starts, so that the page can show PCA at once and UMAP shortly after. It is idempotent and
thread-safe.
"""

from __future__ import annotations

import os
import threading
import warnings
import time
from pathlib import Path

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_start_now = threading.Event()  # ends a delayed warm-up's wait
_error: BaseException | None = None
_seconds: float | None = None


def numba_cache_dir() -> Path:
    """Set ``NUMBA_CACHE_DIR`` to ``<cache_dir>/numba`` unless already set; returns the folder in use.

    Must run before numba is first imported to take effect (numba reads its configuration at import).
    """
    current = os.environ.get("NUMBA_CACHE_DIR")
    if current:
        return Path(current)
    from explorer.config import get_settings

    folder = get_settings().cache_dir / "numba"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return folder  # unwritable: numba falls back to not caching
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    return folder


_caching_lock = threading.Lock()
_caching_done = False


def _cache_umap_jit_functions() -> int:
    """Turn on numba's on-disk cache for umap's jitted functions that were declared without ``cache=True``.

    umap-learn leaves a few hot functions uncached (``smooth_knn_dist``, ``compute_membership_strengths``,
    ``fast_knn_indices``, the single-epoch layout optimiser...), so every new process recompiled them on its
    first fit (~13 s idle, ~45 s on a busy 2-core machine). ``Dispatcher.enable_caching()`` is what
    ``cache=True`` does; numba keys the cache on the source file, so upgrading umap invalidates it.
    Returns how many functions were switched (0 on any failure: caching is only an optimisation).
    """
    global _caching_done
    with _caching_lock:
        if _caching_done:
            return 0
        _caching_done = True
        try:
            import sys

            from numba.core.registry import CPUDispatcher

            count = 0
            for name, module in list(sys.modules.items()):
                if module is None or not (name == "umap" or name.startswith("umap.")):
                    continue
                for value in list(vars(module).values()):
                    if isinstance(value, CPUDispatcher) and type(value._cache).__name__ == "NullCache":
                        value.enable_caching()
                        count += 1
            return count
        except Exception:  # noqa: BLE001 - never let an optimisation break UMAP
            return 0


def import_umap():
    """``import umap`` with the numba cache folder set first (imports are serialised by Python's lock), and
    on-disk caching turned on for umap's uncached jitted functions (see ``_cache_umap_jit_functions``)."""
    numba_cache_dir()
    import umap

    _cache_umap_jit_functions()

    # umap warns on every seeded fit that it runs single-threaded: that is the point (deterministic maps)
    warnings.filterwarnings("ignore", message=r"n_jobs value .* overridden", category=UserWarning)
    # project() transforms with a precomputed distance matrix on purpose
    warnings.filterwarnings("ignore", message=r"Transforming new data with precomputed metric", category=UserWarning)
    warnings.filterwarnings("ignore", message=r"using precomputed metric; inverse_transform", category=UserWarning)

    return umap


WARM_NICE = 10  # the warm-up thread's niceness (Linux): the first page a user opens keeps the CPU


def lower_thread_priority(nice: int = WARM_NICE) -> bool:
    """Raise the calling thread's niceness to ``nice`` (Linux: a thread id is a process id to
    ``setpriority``); True when it worked. Elsewhere, or without permission, nothing happens."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), int(nice))
        return True
    except (AttributeError, OSError, ValueError):
        return False


def _warm(delay: float = 0.0) -> None:
    global _error, _seconds
    lower_thread_priority()
    if delay > 0:
        _start_now.wait(delay)  # let the first page render first (a page that needs UMAP ends the wait)
    start = time.perf_counter()
    try:
        import numpy as np

        import_umap()
        from explorer.projections.project import project

        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 8)).astype(np.float32)
        project(x, x[:8] + np.float32(0.01), "umap", seed=0)  # the very code path of the page, on tiny data
    except BaseException as exc:  # noqa: BLE001 - reported through umap_error(), never raised in a thread
        _error = exc
    finally:
        _seconds = time.perf_counter() - start
        _done.set()


def warm_umap_in_background(delay: float = 0.0) -> threading.Thread:
    """Start (once per process) a daemon thread that imports umap and fits a tiny UMAP; returns the thread.

    The thread runs at a lower OS priority (``WARM_NICE``) and, with ``delay`` seconds, waits that long
    first, so that the page being opened when the server starts is not slowed down. A later call with
    ``delay=0`` (a page that needs UMAP now) ends such a wait early. Idempotent and thread-safe.
    """
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_warm, args=(float(delay),), name="explorer-umap-warmup",
                                       daemon=True)
            _thread.start()
        if delay <= 0:
            _start_now.set()
        return _thread


def umap_ready() -> bool:
    """True once the warm-up has finished (successfully or not: see ``umap_error``)."""
    return _done.is_set()


def wait_umap(timeout: float | None = None) -> bool:
    """Wait for the warm-up (starting it if needed); True when it finished within ``timeout`` seconds."""
    warm_umap_in_background()
    return _done.wait(timeout)


def umap_error() -> BaseException | None:
    """The exception the warm-up raised, if any (e.g. umap-learn not installed)."""
    return _error


def warm_seconds() -> float | None:
    """How long the warm-up took in this process (None until it has finished)."""
    return _seconds
