"""Confidence intervals for accuracies: exact (Clopper–Pearson) binomial intervals."""

from __future__ import annotations

import numpy as np


def clopper_pearson(k: np.ndarray | int, n: np.ndarray | int, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The exact two-sided ``level`` interval for a binomial proportion k / n (Clopper & Pearson, 1934).

    lower = Beta(α/2; k, n − k + 1), upper = Beta(1 − α/2; k + 1, n − k), with lower = 0 at k = 0 and
    upper = 1 at k = n. Works elementwise on arrays; n = 0 gives the uninformative (0, 1).
    """
    from scipy.stats import beta

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    k = np.asarray(k, dtype=np.float64)
    n = np.broadcast_to(np.asarray(n, dtype=np.float64), k.shape)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("k must be between 0 and n")
    a = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, beta.ppf(a, k, n - k + 1), 0.0)
        hi = np.where(k < n, beta.ppf(1 - a, k + 1, n - k), 1.0)
    empty = n == 0
    lo = np.where(empty, 0.0, lo)
    hi = np.where(empty, 1.0, hi)
    return np.asarray(lo, np.float64), np.asarray(hi, np.float64)
