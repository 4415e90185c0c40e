"""Device choice: CUDA > MPS > CPU, with an override."""

from __future__ import annotations

import itertools

import torch

from explorer.config import get_settings


def available_devices() -> list[str]:
    """Devices this process can use, best first."""
    out = []
    if torch.cuda.is_available():
        out.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    out.append("cpu")
    return out


def pick_device(override: str | None = None) -> torch.device:
    """The device to run on: ``override``, else ``EXPLORER_DEVICE``, else the best available.

    An override naming a device this machine lacks raises ``ValueError`` with a one-line reason.
    """
    wanted = override or get_settings().device
    if wanted and wanted != "auto":
        kind = wanted.split(":")[0]
        if kind not in available_devices():
            raise ValueError(
                f"device {wanted!r} is not available here (available: {', '.join(available_devices())})"
            )
        return torch.device(wanted)
    return torch.device(available_devices()[0])


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model runs: its ``device`` attribute (``Classifier.device``), else the device of its first
    parameter or buffer, else the CPU (a model without tensors)."""
    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    for t in itertools.chain(model.parameters(), model.buffers()):
        return t.device
    return torch.device("cpu")
