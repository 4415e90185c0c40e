"""The MNIST CNN trained by the project on the genuine MNIST test split (8k train / 2k held out)."""

import hashlib
from pathlib import Path

import pytest

from explorer.models import accuracy, availability, Status
from explorer.models.data import find_mnist, load_mnist_arrays, load_mnist_split

pytestmark = pytest.mark.skipif(find_mnist() is None, reason="MNIST not found (../shared/data/mnist)")


def test_mnist_is_read_in_place_with_original_checksums():
    folder = find_mnist()
    md5 = hashlib.md5((Path(folder) / "t10k-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    assert md5 == "9fb629c4189551a2d022fa330f9573f3"
    images, labels = load_mnist_arrays()
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    split = load_mnist_split()
    assert split.x_train.shape == (8000, 1, 28, 28) and split.x_test.shape == (2000, 1, 28, 28)
    assert 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0


@pytest.mark.slow
def test_mnist_cnn_reaches_98_percent_on_held_out_2k():
    from explorer.models import load_model

    load_model("mnist-cnn")  # trains (seeded) on the first 8k if the weights are not cached
    assert availability("mnist-cnn").status == Status.AVAILABLE
    assert accuracy("mnist-cnn") >= 0.98
