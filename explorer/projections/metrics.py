"""Numbers that test what a projection suggests.

* **k-NN label agreement**: do the k nearest *clean* neighbours of an adversarial point share its true class
  (it still sits among its own kind) or the class the model now predicts (it moved into another class's
  region)? Computed in the feature space (the honest one: 2-D maps distort neighbourhoods) and in the 2-D map
  (what the picture shows). The adversarial point's own clean twin is excluded by default, so the numbers
  compare with the clean baseline (each clean point among the *other* clean points).
* **Distance to the nearest clean feature** of each adversarial feature, against the clean-to-clean
  nearest-neighbour distances (self excluded): the "adversarial examples live in low-probability regions"
  claim predicts a ratio of medians above 1.
* **Layer growth** (Szegedy et al. 2014) lives in ``features.layer_growth`` and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.projections.features import LayerGrowth, layer_growth, matched_noise  # noqa: F401 - re-export

SPACES = ("features", "map")


def _neighbours(ref: np.ndarray, query: np.ndarray, k: int,
                exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the ``k`` nearest rows of ``ref`` for each row of ``query``, leaving out
    ``ref[exclude[i]]`` for query row i (by index, so exact duplicates still count as neighbours)."""
    from sklearn.neighbors import NearestNeighbors

    ref = np.asarray(ref, np.float64)
    query = np.asarray(query, np.float64)
    extra = 1 if exclude is not None else 0
    kk = min(len(ref), k + extra)
    nn = NearestNeighbors(n_neighbors=kk, algorithm="brute" if ref.shape[1] > 15 else "auto").fit(ref)
    dist, idx = nn.kneighbors(query)
    if exclude is None:
        return dist[:, :k], idx[:, :k]
    keep = idx != np.asarray(exclude).reshape(-1, 1)
    # rows where the excluded index was not among the kk found: drop the farthest instead
    missing = keep.all(axis=1)
    keep[missing, -1] = False
    out_d = dist[keep].reshape(len(query), kk - 1)
    out_i = idx[keep].reshape(len(query), kk - 1)
    return out_d[:, :k], out_i[:, :k]


def _twins(clean: np.ndarray, adv: np.ndarray, exclude_twin: bool) -> np.ndarray | None:
    if not exclude_twin:
        return None
    if len(clean) != len(adv):
        raise ValueError("exclude_twin needs one adversarial point per clean point (same N)")
    return np.arange(len(adv))


@dataclass(frozen=True, eq=False)
class KnnAgreement:
    """Mean fraction of the k nearest clean neighbours that share a label (NaN where undefined)."""

    k: int
    space: str  # "features" | "map"
    true_class: float  # adversarial points: neighbours sharing the image's true class
    adv_class: float  # adversarial points: neighbours sharing the class predicted for the adversarial image
    clean_baseline: float  # clean points among the other clean points: neighbours sharing the true class
    per_point_true: np.ndarray
    per_point_adv: np.ndarray


def knn_agreement(clean: np.ndarray, adv: np.ndarray, labels: np.ndarray, adv_pred: np.ndarray | None = None,
                  k: int = 10, space: str = "features", exclude_twin: bool = True,
                  adv_labels: np.ndarray | None = None) -> KnnAgreement:
    """k-NN label agreement of adversarial points with their clean neighbours.

    ``clean`` / ``adv``: N x D points (features, or the 2-D map: say which with ``space``). ``labels``: the
    clean images' true classes (also the adversarial twins' unless ``adv_labels`` is given). ``adv_pred``:
    the model's prediction on each adversarial image. ``exclude_twin`` leaves out adversarial point i's own
    clean image i (needs equal N).
    """
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    clean = np.asarray(clean)
    adv = np.asarray(adv)
    labels = np.asarray(labels)
    adv_labels = labels if adv_labels is None else np.asarray(adv_labels)
    if len(labels) != len(clean) or len(adv_labels) != len(adv):
        raise ValueError("one label per point is needed")
    if len(clean) < 2 or len(adv) == 0:
        nan = float("nan")
        return KnnAgreement(k, space, nan, nan, nan, np.full(len(adv), np.nan), np.full(len(adv), np.nan))
    k = int(max(1, min(k, len(clean) - 1)))
    _, idx = _neighbours(clean, adv, k, _twins(clean, adv, exclude_twin))
    neighbour_labels = labels[idx]
    per_true = (neighbour_labels == adv_labels.reshape(-1, 1)).mean(1)
    if adv_pred is not None:
        per_adv = (neighbour_labels == np.asarray(adv_pred).reshape(-1, 1)).mean(1)
    else:
        per_adv = np.full(len(adv), np.nan)
    _, cidx = _neighbours(clean, clean, k, np.arange(len(clean)))
    baseline = float((labels[cidx] == labels.reshape(-1, 1)).mean())
    return KnnAgreement(k, space, float(per_true.mean()),
                        float(per_adv.mean()) if adv_pred is not None else float("nan"),
                        baseline, per_true, per_adv)


@dataclass(frozen=True, eq=False)
class NearestCleanDistances:
    """Nearest-clean distances of adversarial features against clean-to-clean nearest-neighbour distances."""

    adv_to_clean: np.ndarray  # per adversarial point: distance to the nearest clean point (twin excluded?)
    clean_to_clean: np.ndarray  # per clean point: distance to the nearest *other* clean point
    twin: np.ndarray | None  # per pair: ||adv_i - clean_i|| (None when N differ)
    exclude_twin: bool

    @property
    def median_adv(self) -> float:
        return float(np.median(self.adv_to_clean)) if len(self.adv_to_clean) else float("nan")

    @property
    def median_clean(self) -> float:
        return float(np.median(self.clean_to_clean)) if len(self.clean_to_clean) else float("nan")

    @property
    def median_twin(self) -> float:
        return float(np.median(self.twin)) if self.twin is not None and len(self.twin) else float("nan")

    @property
    def ratio(self) -> float:
        """Median adversarial-to-clean over median clean-to-clean distance (> 1: off the data)."""
        mc = self.median_clean
        if not np.isfinite(mc):
            return float("nan")
        if mc == 0:
            return float("inf") if self.median_adv > 0 else 1.0
        return self.median_adv / mc


def nearest_clean_distances(clean: np.ndarray, adv: np.ndarray, exclude_twin: bool = True) -> NearestCleanDistances:
    """Euclidean distance from each adversarial point to the nearest clean point, and clean-to-clean.

    With ``exclude_twin`` (default) adversarial point i ignores clean point i, its own source image: the
    question is whether it lands where *other* data lives, exactly as clean points are measured against the
    other clean points. ``twin`` keeps the distance to the source for reference.
    """
    clean = np.asarray(clean, np.float64)
    adv = np.asarray(adv, np.float64)
    twin = np.linalg.norm(adv - clean, axis=1) if len(adv) == len(clean) else None
    if len(clean) < 2:
        return NearestCleanDistances(np.full(len(adv), np.nan), np.full(len(clean), np.nan), twin, exclude_twin)
    d_adv, _ = _neighbours(clean, adv, 1, _twins(clean, adv, exclude_twin)) if len(adv) else (np.zeros((0, 1)), None)
    d_clean, _ = _neighbours(clean, clean, 1, np.arange(len(clean)))
    return NearestCleanDistances(d_adv[:, 0], d_clean[:, 0], twin, exclude_twin)


@dataclass(frozen=True, eq=False)
class Summary:
    """Everything the page reports below the map."""

    knn_features: KnnAgreement
    knn_map: KnnAgreement | None
    distances: NearestCleanDistances


def summarize(clean_features: np.ndarray, adv_features: np.ndarray, labels: np.ndarray,
              adv_pred: np.ndarray | None = None, clean_2d: np.ndarray | None = None,
              adv_2d: np.ndarray | None = None, k: int = 10, exclude_twin: bool = True) -> Summary:
    """k-NN agreement in feature space (and in the 2-D map when given) and nearest-clean distances (features)."""
    knn_f = knn_agreement(clean_features, adv_features, labels, adv_pred, k, "features", exclude_twin)
    knn_m = None
    if clean_2d is not None and adv_2d is not None:
        knn_m = knn_agreement(clean_2d, adv_2d, labels, adv_pred, k, "map", exclude_twin)
    return Summary(knn_f, knn_m, nearest_clean_distances(clean_features, adv_features, exclude_twin))
