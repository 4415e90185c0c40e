"""Cached results of the Projections page: image sets, adversarial batches, features, 2-D maps and metrics.

Every entry is keyed by digests and frozen settings, never by arrays (they travel as ``_underscored``
arguments, which Streamlit does not hash):

* image sets by (dataset name, model id, n, seed, device); uploads by the digests of the decoded files;
* the adversarial batch by (model id, image-set digest, ``AttackConfig``, device);
* features by (model id, images digest, layer, device): the clean and the adversarial images are two entries;
* projections by (clean features digest, adversarial features digest, method, seed);
* metrics by the feature digests (and the projection's for the map's k-NN agreement);
* layer growth by (model id, clean digest, adversarial digest, device).

Progress: slow steps report through a bar created *inside* the cached function on its first report and
emptied before it returns, so a cache hit replays nothing. t-SNE and UMAP fits have no progress callback:
they run in a worker thread while the bar shows the elapsed time against an estimate.

``read_uploads`` is :func:`explorer.images.uploads.read_uploads` (pure, no Streamlit), which checks every limit
before decoding: bad files come back with a one-line reason and the rest are used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

from explorer.attacks import AttackConfig
from explorer.caching import ProgressBar
from explorer.digest import array_digest
from explorer.images import LoadedImage
from explorer.images.uploads import IMAGE_EXTENSIONS, UPLOAD_TYPES  # noqa: F401 - the page's uploader types
from explorer.images.uploads import UploadLimits, to_model_batch  # noqa: F401 - UploadLimits re-exported
from explorer.images.uploads import read_uploads as _read_uploads
from explorer.inference import model_cache, predict_proba
from explorer.projections import (
    ImageSet,
    KnnAgreement,
    LayerGrowth,
    Projection,
    Summary,
    extract_features,
    knn_agreement,
    layer_growth,
    load_images,
    summarize,
)
from explorer.projections.datasets import sample_id_for  # noqa: F401 - re-exported for the page
from explorer.projections.project import METHOD_LABELS, expected_seconds
from explorer.runs import run
from explorer.runs.requests import DatasetAttackRequest, ProjectionRequest, attack_chunk

GROWTH_IMAGES = 256  # layer growth is a mean over images: the first 256 pin it down
KNN_K = 10


def _timed_progress(fn: Callable[[], object], label: str, expected_s: float, poll_s: float = 0.25):
    """Run ``fn`` in a worker thread; meanwhile a bar shows the elapsed time against ``expected_s`` (capped at
    95% until it returns). Exceptions are re-raised in the caller's thread."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the script thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="explorer-projection", daemon=True)
    start = time.perf_counter()
    worker.start()
    bar = ProgressBar(label)
    try:
        worker.join(min(poll_s * 4, 1.0))  # quick fits finish before any bar is drawn
        while worker.is_alive():
            elapsed = time.perf_counter() - start
            bar(min(0.95, elapsed / max(expected_s, 1e-3)), f"{elapsed:.0f} s (usually about {expected_s:.0f} s)")
            worker.join(poll_s)
    finally:
        bar.close()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


# ------------------------------------------------------------------------------------------------ images


@dataclass(frozen=True, eq=False)
class Images:
    """An image set with its cache key: ``digest`` covers the images and their labels."""

    data: ImageSet
    digest: str


def _with_digest(s: ImageSet) -> Images:
    return Images(s, array_digest(s.images) + ":" + array_digest(s.labels))


@st.cache_data(max_entries=16, show_spinner=False)
def dataset_images(name: str, model_id: str, n: int, seed: int, device: str | None) -> Images:
    """Up to ``n`` images of the dataset ``name`` (digits, MNIST, augmented photos) in the model's input.

    Raises ``ValueError`` / ``DatasetUnavailable`` (one line) when the set does not fit the model; errors are
    not cached.
    """
    model = model_cache().get(model_id, device)
    return _with_digest(load_images(name, model, n=int(n), seed=int(seed)))


# The page's uploads: the library's one validated path (every limit before decoding, zip checks, and the
# byte-bounded decoded cache shared by reruns and sessions, which is why it is not an st.cache_data entry). The
# Robustness lab reads its uploads through the same function (``explorer.images.uploads.read_model_inputs``).
read_uploads = _read_uploads


@st.cache_data(max_entries=8, show_spinner=False)
def uploaded_images(model_id: str, digests: tuple[str, ...], device: str | None,
                    _images: Sequence[LoadedImage]) -> Images:
    """Decoded uploads in the model's input (the sidebar's preprocessing), labelled by the model's clean
    prediction. Keyed by the decoded images' digests."""
    from explorer.models import get_spec

    model = model_cache().get(model_id, device)
    spec = get_spec(model_id)
    shape = tuple(model.input_shape)
    x = to_model_batch(_images, shape, resize=spec.resize)  # one preallocated array, no stacked copy
    labels = predict_proba(model, x).argmax(1).astype(np.int64) if len(x) else np.zeros(0, np.int64)
    names = tuple(im.name for im in _images)
    return _with_digest(ImageSet("uploads", x, labels, tuple(model.class_names), names,
                                 labels_are_predictions=True))


# ------------------------------------------------------------------------------------------- adversarial


@dataclass(frozen=True, eq=False)
class Adversarial:
    """The adversarial twins of an image set, and both sets' predictions."""

    images: np.ndarray  # float32 N x C x H x W in [0, 1]
    clean_probs: np.ndarray  # N x K
    adv_probs: np.ndarray  # N x K
    digest: str  # of ``images``

    @property
    def clean_pred(self) -> np.ndarray:
        return self.clean_probs.argmax(1)

    @property
    def adv_pred(self) -> np.ndarray:
        return self.adv_probs.argmax(1)


@st.cache_data(max_entries=16, show_spinner=False)
def clean_probabilities(model_id: str, images_digest: str, device: str | None, _images: np.ndarray) -> np.ndarray:
    """Class probabilities of the clean images (N x K float32); independent of the attack."""
    model = model_cache().get(model_id, device)
    if not len(_images):
        return np.zeros((0, model.num_classes), np.float32)
    return predict_proba(model, _images, batch_size=attack_chunk(model.input_shape)).astype(np.float32)


@st.cache_data(max_entries=8, show_spinner=False)
def adversarial_batch(model_id: str, images_digest: str, config: AttackConfig, device: str | None,
                      _images: np.ndarray, _labels: np.ndarray) -> Adversarial:
    """``config``'s attack on every image (labels: the set's labels), in chunks with a progress bar.

    The adversarial probabilities come from the attack's own final classification (no extra forward pass).
    """
    bar = ProgressBar(f"Attacking {len(_images)} images ({config.attack})")
    try:
        batch = run(DatasetAttackRequest(model_id, images_digest, config, device, _images, _labels), progress=bar)
    finally:
        bar.close()
    clean = clean_probabilities(model_id, images_digest, device, np.asarray(_images, np.float32))
    return Adversarial(batch.images, clean, batch.adv_probs, batch.digest)


# ---------------------------------------------------------------------------------------------- features


@dataclass(frozen=True, eq=False)
class Features:
    values: np.ndarray  # float32 N x D
    digest: str


@st.cache_data(max_entries=32, show_spinner=False)
def features(model_id: str, images_digest: str, layer: str, device: str | None, _images: np.ndarray,
             what: str = "images") -> Features:
    """Activations at ``layer`` for every image (N x D float32), with a progress bar over batches."""
    model = model_cache().get(model_id, device)
    batch = 256 if int(np.prod(model.input_shape)) <= 28 * 28 else 32
    bar = ProgressBar(f"Features of the {what}")
    try:
        f = extract_features(model, _images, layer, batch_size=batch,
                             progress=bar if len(_images) > batch else None)
    finally:
        bar.close()
    return Features(f, array_digest(f))


# ------------------------------------------------------------------------------------------- projections


def projection(clean_digest: str, adv_digest: str, method: str, seed: int, _clean: np.ndarray,
               _adv: np.ndarray) -> Projection:
    """The 2-D map; t-SNE and UMAP (seconds each) are jobs on the server's queue: a status box (queue position,
    cancel) stands here and the page stops until the map is ready (PCA, 0.03 s, runs inline)."""
    if method == "pca":
        return _projection(clean_digest, adv_digest, method, seed, _clean, _adv)
    from explorer.caching import jobs
    from explorer.runs.requests import ProjectionRequest

    proj = jobs.result(ProjectionRequest(clean_digest, adv_digest, method, seed, _clean, _adv),
                       slot="projections.map", label=f"{METHOD_LABELS.get(method, method)} of the features")
    return st.stop() if proj is None else proj


@st.cache_data(max_entries=32, show_spinner=False)
def _projection(clean_digest: str, adv_digest: str, method: str, seed: int, _clean: np.ndarray,
                _adv: np.ndarray) -> Projection:
    """The 2-D map of clean and adversarial features (PCA / UMAP fitted on clean, t-SNE jointly)."""
    request = ProjectionRequest(clean_digest, adv_digest, method, int(seed), _clean, _adv)
    if method == "pca":
        return run(request)
    n_points = len(_clean) + (len(_adv) if method == "tsne" else 0)
    return _timed_progress(lambda: run(request), f"{METHOD_LABELS.get(method, method)} on {n_points} points",
                           expected_seconds(method, n_points))


# ----------------------------------------------------------------------------------------------- metrics


@st.cache_data(max_entries=32, show_spinner=False)
def feature_metrics(clean_digest: str, adv_digest: str, images_digest: str, adv_images_digest: str,
                    _clean: np.ndarray, _adv: np.ndarray, _labels: np.ndarray, _adv_pred: np.ndarray,
                    k: int = KNN_K) -> Summary:
    """k-NN label agreement and nearest-clean distances in feature space (twins excluded)."""
    return summarize(_clean, _adv, _labels, _adv_pred, k=k)


@st.cache_data(max_entries=32, show_spinner=False)
def map_agreement(clean_digest: str, adv_digest: str, images_digest: str, adv_images_digest: str, method: str,
                  seed: int, _clean_2d: np.ndarray, _adv_2d: np.ndarray, _labels: np.ndarray,
                  _adv_pred: np.ndarray, k: int = KNN_K) -> KnnAgreement:
    """k-NN label agreement in the 2-D map (what the picture shows)."""
    return knn_agreement(_clean_2d, _adv_2d, _labels, _adv_pred, k=k, space="map")


@st.cache_data(max_entries=16, show_spinner=False)
def growth(model_id: str, images_digest: str, adv_digest: str, device: str | None, _images: np.ndarray,
           _adv: np.ndarray, max_images: int = GROWTH_IMAGES, seed: int = 0) -> LayerGrowth:
    """Relative activation change per layer, adversarial vs random sign noise of the same L∞ size, over the
    first ``max_images`` images."""
    model = model_cache().get(model_id, device)
    m = min(len(_images), int(max_images))
    bar = ProgressBar("Layer-by-layer growth")
    try:
        return layer_growth(model, _images[:m], _adv[:m], seed=seed, batch_size=64 if m and _images[0].size <= 784
                            else 8, progress=bar)
    finally:
        bar.close()
