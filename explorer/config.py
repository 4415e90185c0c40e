"""Settings read from the environment. Configuration holds no logic beyond reading values.

``EXPLORER_PROFILE`` picks the defaults: ``local`` (a researcher's own machine) or ``hosted`` (a shared server
that strangers reach: TorchScript uploads off, tighter caps). Every field can still be set one by one with its
``EXPLORER_*`` variable, which wins over the profile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROFILES = ("local", "hosted")

#: the defaults of each profile: (local, hosted)
_DEFAULTS: dict[str, tuple[int, int]] = {
    "EXPLORER_MAX_STEPS": (200, 100),
    "EXPLORER_MAX_BATCH": (256, 128),
    "EXPLORER_MAX_MODELS": (4, 6),
    "EXPLORER_ALLOW_TORCHSCRIPT": (1, 0),
    "EXPLORER_MAX_UPLOAD_MB": (20, 20),  # one file (Streamlit's server.maxUploadSize also caps it)
    "EXPLORER_MAX_TOTAL_UPLOAD_MB": (200, 50),  # all files of one multi-file or zip upload together
    "EXPLORER_MAX_SOURCE_PIXELS": (40_000_000, 25_000_000),  # one decoded image
    "EXPLORER_MAX_SIDE": (20_000, 10_000),  # longest side of one decoded image
    "EXPLORER_MAX_ASPECT": (20, 20),  # longest / shortest side of an image that is resized for a model
    "EXPLORER_MAX_DECODED_MB": (400, 150),  # decoded pixels of one multi-file or zip upload, in MB (8-bit)
    "EXPLORER_MAX_ZIP_FILES": (2000, 500),  # members of one zip upload
    "EXPLORER_MAX_SET_IMAGES": (2000, 500),  # images kept from one image-set upload
    "EXPLORER_MAX_MODEL_MB": (200, 100),  # one uploaded model file
    "EXPLORER_MAX_MODEL_PARAMS_M": (150, 60),  # parameters (millions) of an uploaded model's architecture
    "EXPLORER_VALIDATE_SECONDS": (20, 10),  # wall time of an uploaded model's validation process
    "EXPLORER_VALIDATE_MEMORY_MB": (3000, 1500),  # address space of that process
    "EXPLORER_SESSION_MODELS": (4, 2),  # uploaded models one session keeps
    "EXPLORER_SESSION_UPLOAD_MB": (400, 150),  # memory one session's uploads may hold
    "EXPLORER_MAX_N": (2000, 500),  # samples of one dataset evaluation / projection
    "EXPLORER_MAX_EPS_POINTS": (64, 16),  # values of ε in one dataset evaluation's grid
    "EXPLORER_WORKERS": (2, 2),  # heavy-job workers of one server
    "EXPLORER_SESSION_JOBS": (2, 1),  # heavy jobs one session may have running at once
    # a request whose cost (forward passes of a 28 x 28 image's worth of pixels) reaches this runs as a queued job
    "EXPLORER_JOB_THRESHOLD": (5000, 2000),
    "EXPLORER_TORCH_THREADS": (0, 0),  # torch threads per process; 0: torch's default (local), cores / workers (hosted)
}


def profile() -> str:
    p = (os.environ.get("EXPLORER_PROFILE") or "local").strip().lower()
    if p not in PROFILES:
        raise ValueError(f"EXPLORER_PROFILE must be one of {', '.join(PROFILES)}, got {p!r}")
    return p


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "adversarial-explorer"


def _int(name: str, default: int | None = None) -> int:
    if default is None:
        default = _DEFAULTS[name][PROFILES.index(profile())]
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

    Every field comes from an ``EXPLORER_*`` environment variable (see README, "Configuration"); the
    profile (``EXPLORER_PROFILE=local|hosted``) sets the defaults.
    """

    profile: str
    cache_dir: Path
    mnist_dir: Path | None
    device: str | None
    max_steps: int
    max_batch: int
    max_models: int
    allow_torchscript: bool
    max_upload_mb: int
    max_total_upload_mb: int
    max_source_pixels: int
    max_side: int
    max_aspect: int
    max_decoded_mb: int
    max_zip_files: int
    max_set_images: int
    max_model_mb: int
    max_model_params_m: int
    validate_seconds: int
    validate_memory_mb: int
    session_models: int
    session_upload_mb: int
    max_n: int
    max_eps_points: int
    workers: int
    session_jobs: int
    job_threshold: int
    torch_threads: int
    redis_url: str | None = None  # EXPLORER_REDIS_URL: a shared result store and presenter rooms for replicas

    @property
    def weights_dir(self) -> Path:
        return self.cache_dir / "weights"

    @property
    def data_dir(self) -> Path:
        return self.cache_dir / "data"

    @property
    def hosted(self) -> bool:
        return self.profile == "hosted"


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; call it where needed)."""
    cache = os.environ.get("EXPLORER_CACHE_DIR")
    mnist = os.environ.get("EXPLORER_MNIST_DIR")
    return Settings(
        profile=profile(),
        cache_dir=Path(cache).expanduser() if cache else _default_cache_dir(),
        mnist_dir=Path(mnist).expanduser() if mnist else None,
        device=os.environ.get("EXPLORER_DEVICE") or None,
        max_steps=_int("EXPLORER_MAX_STEPS"),
        max_batch=_int("EXPLORER_MAX_BATCH"),
        max_models=_int("EXPLORER_MAX_MODELS"),
        allow_torchscript=bool(_int("EXPLORER_ALLOW_TORCHSCRIPT")),
        max_upload_mb=_int("EXPLORER_MAX_UPLOAD_MB"),
        max_total_upload_mb=_int("EXPLORER_MAX_TOTAL_UPLOAD_MB"),
        max_source_pixels=_int("EXPLORER_MAX_SOURCE_PIXELS"),
        max_side=_int("EXPLORER_MAX_SIDE"),
        max_aspect=_int("EXPLORER_MAX_ASPECT"),
        max_decoded_mb=_int("EXPLORER_MAX_DECODED_MB"),
        max_zip_files=_int("EXPLORER_MAX_ZIP_FILES"),
        max_set_images=_int("EXPLORER_MAX_SET_IMAGES"),
        max_model_mb=_int("EXPLORER_MAX_MODEL_MB"),
        max_model_params_m=_int("EXPLORER_MAX_MODEL_PARAMS_M"),
        validate_seconds=_int("EXPLORER_VALIDATE_SECONDS"),
        validate_memory_mb=_int("EXPLORER_VALIDATE_MEMORY_MB"),
        session_models=_int("EXPLORER_SESSION_MODELS"),
        session_upload_mb=_int("EXPLORER_SESSION_UPLOAD_MB"),
        max_n=_int("EXPLORER_MAX_N"),
        max_eps_points=_int("EXPLORER_MAX_EPS_POINTS"),
        workers=_int("EXPLORER_WORKERS"),
        session_jobs=_int("EXPLORER_SESSION_JOBS"),
        job_threshold=_int("EXPLORER_JOB_THRESHOLD"),
        torch_threads=_int("EXPLORER_TORCH_THREADS"),
        redis_url=(os.environ.get("EXPLORER_REDIS_URL") or "").strip() or None,
    )
