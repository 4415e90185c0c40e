"""2-D maps of clean and adversarial features: PCA, UMAP and t-SNE, deterministic for a seed.

* PCA and UMAP are fitted on the **clean** features only; the adversarial features are then transformed into
  that same map, so a clean point's position does not depend on the attack.
* t-SNE has no transform: it is fitted **jointly** on clean + adversarial features.
* Before UMAP / t-SNE, features wider than ``pca_dims`` are reduced by a PCA fitted on the clean features
  (the usual practice; it also makes them fast on 2 cores).
* UMAP on fewer than ``SMALL_DATA`` clean points gets exact Euclidean distances precomputed with BLAS
  (umap-learn's own small-data path computes them pair by pair from Python: ~15x slower at 2,000 points);
  above that, umap's approximate nearest neighbours (NN-descent).
* UMAP with a ``random_state`` runs single-threaded and is deterministic; its ``transform`` is seeded by
  ``transform_seed``. ``umap`` is imported lazily (it compiles numba code: see ``explorer.projections.warm``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

METHODS = ("pca", "umap", "tsne")
SMALL_DATA = 4096  # UMAP below this many clean points: exact neighbours from a precomputed distance matrix
METHOD_LABELS = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
DEFAULT_PARAMS: dict[str, dict[str, object]] = {
    "pca": {},
    "umap": {"n_neighbors": 15, "min_dist": 0.1, "pca_dims": 50},
    "tsne": {"perplexity": 30.0, "max_iter": 500, "pca_dims": 50},  # 1000: same 10-NN agreement, 1.5x the time
}


@dataclass(frozen=True, eq=False)
class Projection:
    """Clean and adversarial points in one 2-D map (row i of ``adv_2d`` is the twin of row i of ``clean_2d``
    when both sets come from the same images)."""

    clean_2d: np.ndarray
    adv_2d: np.ndarray
    method: str
    seconds: float
    params: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return METHOD_LABELS.get(self.method, self.method)

    @property
    def extent(self) -> float:
        """The larger side of the clean points' bounding box (a scale for "near" in this map)."""
        if len(self.clean_2d) == 0:
            return 0.0
        return float(np.max(self.clean_2d.max(0) - self.clean_2d.min(0)))


def _as_features(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name} features must be N x D, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} features contain NaN or infinity")
    return np.ascontiguousarray(a)


def _pre_reduce(clean: np.ndarray, adv: np.ndarray, dims: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA to ``dims`` fitted on clean (skipped when the features are already that narrow)."""
    if not dims or clean.shape[1] <= dims or len(clean) <= dims:
        return clean, adv
    from sklearn.decomposition import PCA

    pca = PCA(n_components=int(dims), random_state=seed).fit(clean)
    out_adv = pca.transform(adv).astype(np.float32) if len(adv) else np.zeros((0, int(dims)), np.float32)
    return pca.transform(clean).astype(np.float32), out_adv


def _pca(clean: np.ndarray, adv: np.ndarray, seed: int, **kw) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    if kw:
        raise TypeError(f"PCA takes no parameters, got {sorted(kw)}")
    d = clean.shape[1]
    k = min(2, d, len(clean))
    pca = PCA(n_components=k, random_state=seed).fit(clean)
    c = pca.transform(clean)
    a = pca.transform(adv) if len(adv) else np.zeros((0, k))
    if k < 2:  # one feature or one image: pad with a zero axis
        c = np.pad(c, ((0, 0), (0, 2 - k)))
        a = np.pad(a, ((0, 0), (0, 2 - k)))
    return c, a


def _umap(clean: np.ndarray, adv: np.ndarray, seed: int, n_neighbors: int = 15, min_dist: float = 0.1,
          pca_dims: int | None = 50, **kw) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import euclidean_distances

    from explorer.projections.warm import import_umap

    if len(clean) < 4:
        raise ValueError("UMAP needs at least 4 clean points")
    umap = import_umap()
    clean, adv = _pre_reduce(clean, adv, pca_dims, seed)
    common = dict(n_components=2, n_neighbors=int(min(n_neighbors, len(clean) - 1)), min_dist=min_dist,
                  random_state=seed, transform_seed=seed, verbose=False)
    if len(clean) < SMALL_DATA and "metric" not in kw:
        # umap's own small-data path calls a numba distance once per pair from Python (~30 s for 2,000
        # points on 2 cores): exact Euclidean distances from BLAS give the same neighbours in milliseconds.
        reducer = umap.UMAP(metric="precomputed", **common, **kw)
        c = reducer.fit_transform(euclidean_distances(clean, squared=False))
        a = reducer.transform(euclidean_distances(adv, clean)) if len(adv) else np.zeros((0, 2), np.float32)
        return c, a
    reducer = umap.UMAP(**common, **kw)
    c = reducer.fit_transform(clean)
    a = reducer.transform(adv) if len(adv) else np.zeros((0, 2), np.float32)
    return c, a


def _tsne(clean: np.ndarray, adv: np.ndarray, seed: int, perplexity: float = 30.0, max_iter: int = 500,
          pca_dims: int | None = 50, **kw) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.manifold import TSNE

    clean, adv = _pre_reduce(clean, adv, pca_dims, seed)
    both = np.concatenate([clean, adv]) if len(adv) else clean
    if len(both) < 5:
        raise ValueError("t-SNE needs at least 5 points")
    perp = float(min(perplexity, (len(both) - 1) / 3.0))
    tsne = TSNE(n_components=2, perplexity=perp, max_iter=int(max_iter), init="pca", learning_rate="auto",
                random_state=seed, **kw)
    emb = tsne.fit_transform(both)
    return emb[: len(clean)], emb[len(clean):]


_RUNNERS = {"pca": _pca, "umap": _umap, "tsne": _tsne}


def project(clean: np.ndarray, adv: np.ndarray | None = None, method: str = "pca", seed: int = 0,
            **params) -> Projection:
    """Map clean and adversarial features (N x D, M x D) to 2-D with ``method`` in ``METHODS``.

    Parameters by method (defaults in ``DEFAULT_PARAMS``): UMAP ``n_neighbors``, ``min_dist``, ``pca_dims``
    (and any other ``umap.UMAP`` keyword); t-SNE ``perplexity``, ``max_iter``, ``pca_dims`` (and any other
    ``sklearn.manifold.TSNE`` keyword). Same inputs and seed, same map.
    """
    method = method.lower().replace("-", "")
    if method not in _RUNNERS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    clean = _as_features(clean, "clean")
    if adv is None:
        adv = np.zeros((0, clean.shape[1]), np.float32)
    adv = _as_features(adv, "adversarial")
    if len(clean) == 0:
        raise ValueError("no clean features to fit a projection on")
    if adv.shape[1] != clean.shape[1]:
        raise ValueError(f"clean and adversarial features differ in width: {clean.shape[1]} vs {adv.shape[1]}")
    used = {**DEFAULT_PARAMS[method], **params}
    start = time.perf_counter()
    c, a = _RUNNERS[method](clean, adv, seed, **used)
    seconds = time.perf_counter() - start
    return Projection(np.asarray(c, np.float32), np.asarray(a, np.float32).reshape(-1, 2), method, seconds,
                      {"seed": seed, **used})


def expected_seconds(method: str, n_points: int) -> float:
    """A rough guide for the progress bar on a busy 2-core machine (t-SNE ~15 s, UMAP ~5 s at 2,000 points)."""
    if method == "tsne":
        return max(2.0, 7.5e-3 * n_points)
    if method == "umap":
        return max(1.0, 2.5e-3 * n_points)
    return 1.0
