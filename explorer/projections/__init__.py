"""Feature extraction, PCA / t-SNE / UMAP maps of clean vs adversarial features, and the metrics that test them.

Importing this package never imports umap (numba compilation): ``project(..., method="umap")`` does, and
``warm_umap_in_background()`` does it in a daemon thread.
"""

from explorer.projections.datasets import (
    DATASET_LABELS,
    DATASETS,
    ImageSet,
    available_datasets,
    load_images,
    to_model_input,
)
from explorer.projections.features import (
    LayerChoices,
    LayerGrowth,
    default_layer,
    extract_features,
    growth_layers,
    layer_growth,
    layer_names,
    matched_noise,
)
from explorer.projections.metrics import (
    KnnAgreement,
    NearestCleanDistances,
    Summary,
    knn_agreement,
    nearest_clean_distances,
    summarize,
)
from explorer.projections.project import METHOD_LABELS, METHODS, Projection, project
from explorer.projections.warm import umap_error, umap_ready, wait_umap, warm_umap_in_background

__all__ = [
    "DATASETS", "DATASET_LABELS", "ImageSet", "KnnAgreement", "LayerChoices", "LayerGrowth", "METHODS",
    "METHOD_LABELS", "NearestCleanDistances", "Projection", "Summary", "available_datasets", "default_layer",
    "extract_features", "growth_layers", "knn_agreement", "layer_growth", "layer_names", "load_images",
    "matched_noise", "nearest_clean_distances", "project", "summarize", "to_model_input", "umap_error",
    "umap_ready", "wait_umap", "warm_umap_in_background",
]
