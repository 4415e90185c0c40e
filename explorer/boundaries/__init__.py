"""Decision boundaries: a 2-D lab (toy data, a live-trained MLP, grids, point attacks, margins) and slices
through image space around a real image. Pure library (no streamlit); figures live in
``explorer.plots.boundaries``."""

from explorer.boundaries.grid import GridResult, evaluate_points, grid, marching_squares
from explorer.boundaries.points import Margins, PointAttack, attack_point, fgsm_point, margins, pgd_trajectory
from explorer.boundaries.slices import (
    PLANE_KINDS,
    Plane,
    Profile,
    Slice,
    SliceConfig,
    SliceResult,
    attack_markers,
    ball_section,
    compute_slice,
    evaluate_plane,
    fgsm_delta,
    linearity_profile,
    off_plane_fraction,
    pgd_delta,
    plane_directions,
    project_to_plane,
)
from explorer.boundaries.toy import (
    ACTIVATIONS,
    ADV_METHODS,
    BOUNDS,
    DATASETS,
    NORMS,
    AdvTrainConfig,
    MLPConfig,
    ToyData,
    ToyDataConfig,
    ToyMLP,
    TrainedMLP,
    describe_training,
    linear_model,
    make_dataset,
    train_mlp,
)

__all__ = [
    "ACTIVATIONS", "ADV_METHODS", "BOUNDS", "DATASETS", "NORMS", "PLANE_KINDS", "AdvTrainConfig", "GridResult",
    "MLPConfig", "Margins", "Plane", "PointAttack", "Profile", "Slice", "SliceConfig", "SliceResult", "ToyData", "ToyDataConfig", "ToyMLP",
    "TrainedMLP", "attack_markers", "attack_point", "ball_section", "compute_slice", "describe_training", "evaluate_plane", "evaluate_points", "fgsm_delta", "fgsm_point",
    "grid", "linear_model", "linearity_profile", "make_dataset", "margins", "marching_squares",
    "off_plane_fraction", "pgd_delta", "pgd_trajectory", "plane_directions", "project_to_plane", "train_mlp",
]
