"""Settings read from the environment. Configuration holds no logic beyond reading values."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "adversarial-explorer"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Where things live and how far a (possibly hosted) server lets a user go.

    Every field comes from an ``EXPLORER_*`` environment variable (see README, "Configuration").
    """

    cache_dir: Path
    mnist_dir: Path | None
    device: str | None
    max_steps: int
    max_batch: int
    max_models: int

    @property
    def weights_dir(self) -> Path:
        return self.cache_dir / "weights"

    @property
    def data_dir(self) -> Path:
        return self.cache_dir / "data"


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; call it where needed)."""
    cache = os.environ.get("EXPLORER_CACHE_DIR")
    mnist = os.environ.get("EXPLORER_MNIST_DIR")
    return Settings(
        cache_dir=Path(cache).expanduser() if cache else _default_cache_dir(),
        mnist_dir=Path(mnist).expanduser() if mnist else None,
        device=os.environ.get("EXPLORER_DEVICE") or None,
        max_steps=_int("EXPLORER_MAX_STEPS", 200),
        max_batch=_int("EXPLORER_MAX_BATCH", 256),
        max_models=_int("EXPLORER_MAX_MODELS", 4),
    )
