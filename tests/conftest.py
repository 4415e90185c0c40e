"""Shared fixtures: a private cache folder, MNIST from ../shared when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"

# Point the explorer at real MNIST for the whole run (read in place, never copied).
if "EXPLORER_MNIST_DIR" not in os.environ and SHARED_MNIST.is_dir():
    os.environ["EXPLORER_MNIST_DIR"] = str(SHARED_MNIST)


def mnist_present() -> bool:
    d = os.environ.get("EXPLORER_MNIST_DIR")
    return bool(d) and (Path(d) / "t10k-images-idx3-ubyte.gz").is_file()


needs_mnist = pytest.mark.skipif(not mnist_present(), reason="MNIST not found in ../shared/data/mnist")


@pytest.fixture
def tmp_torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME: torchvision models are 'needs download' unless a test writes a checkpoint
    (``explorer.models.imagenet.save_random_checkpoint``). Models loaded meanwhile leave the process-wide
    model cache afterwards, so later tests do not see weights that existed only in this folder."""
    from explorer.inference import model_cache

    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    yield home
    model_cache().clear()
