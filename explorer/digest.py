"""Content digests: the only way arrays key a cache (never hash raw arrays by sampling)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def array_digest(array: Any) -> str:
    """sha256 over dtype, shape and every byte of ``array`` (numpy array or torch tensor)."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    a = np.ascontiguousarray(array)
    h = hashlib.sha256()
    h.update(str(a.dtype).encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
