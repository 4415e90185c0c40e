"""Model registry and the Classifier wrapper ([0,1] NCHW in, logits out, normalisation inside)."""

from explorer.models.registry import (
    DEFAULT_MODEL,
    Availability,
    ModelSpec,
    ModelUnavailable,
    Status,
    accuracy,
    availability,
    get_spec,
    list_specs,
    prefetch,
    train,
)
from explorer.models.wrapper import Classifier


def load_model(model_id: str, device: str | None = None) -> Classifier:
    """Load a model by id through the process-wide cache (see ``explorer.inference.ModelCache``)."""
    from explorer.inference import model_cache

    return model_cache().get(model_id, device)


__all__ = [
    "DEFAULT_MODEL", "Availability", "Classifier", "ModelSpec", "ModelUnavailable", "Status", "accuracy",
    "availability", "get_spec", "list_specs", "load_model", "prefetch", "train",
]
