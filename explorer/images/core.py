"""The image value every part of the explorer passes around, and the one error type for bad input.

A :class:`LoadedImage` keeps the *original* pixels for display (``H x W x C`` uint8, ``C`` is 3 for
colour and 1 for grayscale) plus, for dataset samples whose values are not exactly representable in
uint8, the exact float array a model was trained on (``exact``). It is immutable: its arrays are
read-only, so a cached sample can be shared by every session of the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from explorer.digest import array_digest

SOURCES = ("sample", "upload")


class ImageError(ValueError):
    """Input that is not a usable image. ``str(err)`` is one readable line for the user."""

    def __init__(self, message: str) -> None:
        # One line, whatever the caller passes: the app shows it as-is.
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """An image ready for display and for :func:`explorer.images.to_model_input`.

    Attributes:
        pixels: ``H x W x C`` uint8 (``C`` == 3 RGB or 1 grayscale), the original kept for display.
        name: what the user sees, e.g. ``"chelsea (scikit-image)"`` or the upload's file name.
        source: ``"sample"`` or ``"upload"``.
        sample_id: e.g. ``"photo:chelsea"``, ``"digits:17"``, ``"mnist:9123"``; ``None`` for uploads.
        label: the true class index for dataset samples (digits, MNIST), else ``None``.
        digest: sha256 of ``pixels`` (:func:`explorer.digest.array_digest`), the cache key.
        exact: optional ``C x H x W`` float32 in [0, 1], the exact values a dataset model saw.
            scikit-learn's digits take values ``k / 16``, which ``uint8 / 255`` cannot represent, so
            digits samples carry them here; :func:`to_model_input` starts from ``exact`` when present
            and returns it bit-identical when the model's input shape matches. ``None`` otherwise.

    Equality and hashing go by content (digest of ``pixels`` and ``exact``) and identity fields.
    """

    pixels: np.ndarray
    name: str
    source: str
    sample_id: str | None
    label: int | None
    digest: str
    exact: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        p = self.pixels
        if not isinstance(p, np.ndarray) or p.dtype != np.uint8 or p.ndim != 3 or p.shape[2] not in (1, 3):
            raise ValueError(f"pixels must be H x W x C uint8 with C in (1, 3), got "
                             f"{getattr(p, 'dtype', type(p).__name__)} {getattr(p, 'shape', '')}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.exact is not None:
            e = self.exact
            if e.dtype != np.float32 or e.ndim != 3 or e.shape[1:] != p.shape[:2] or e.shape[0] != p.shape[2]:
                raise ValueError(f"exact must be float32 C x H x W matching pixels {p.shape}, got "
                                 f"{e.dtype} {e.shape}")
        # Shared, cached values: make them read-only so no caller can change them in place.
        for arr in (self.pixels, self.exact):
            if arr is not None and arr.flags.writeable:
                arr.flags.writeable = False

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def is_grayscale(self) -> bool:
        return self.channels == 1

    def display_array(self) -> np.ndarray:
        """``H x W`` (grayscale) or ``H x W x 3`` uint8, the shape ``st.image`` and PIL expect."""
        return self.pixels[:, :, 0] if self.channels == 1 else self.pixels

    def _key(self) -> tuple:
        exact = None if self.exact is None else array_digest(self.exact)
        return (self.digest, exact, self.name, self.source, self.sample_id, self.label)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LoadedImage):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def make_loaded(pixels: np.ndarray, name: str, source: str, sample_id: str | None = None,
                label: int | None = None, exact: np.ndarray | None = None, copy: bool = True) -> LoadedImage:
    """Build a :class:`LoadedImage`, copying ``pixels`` into a contiguous array and computing its digest.

    ``copy=False`` keeps an array that is already contiguous uint8 and owned by nobody else (a freshly decoded
    upload): a 40-megapixel photo is not copied once more. The array is made read-only either way.
    """
    px = np.array(pixels, dtype=np.uint8, order="C", copy=True) if copy else \
        np.ascontiguousarray(pixels, dtype=np.uint8)
    if px.ndim == 2:
        px = px[:, :, None]
    ex = None if exact is None else np.array(exact, dtype=np.float32, order="C", copy=True)
    return LoadedImage(pixels=px, name=name, source=source, sample_id=sample_id, label=label,
                       digest=array_digest(px), exact=ex)
