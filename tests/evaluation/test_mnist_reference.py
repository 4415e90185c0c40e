"""Reference check on real MNIST (held-out 2,000): the standard CNN under PGD-40 (step 0.01) at ε = 0.3 is below
2%; FGSM accuracy falls monotonically; the softmax model resists the CNN's transferred adversarials better than the
CNN resists its own white-box attack (Szegedy et al., 2014). Trains mnist-cnn and mnist-softmax if needed."""

import numpy as np
import pytest

from explorer.runs import run
from explorer.runs.evaluate import EvaluateRequest, TransferRequest

pytestmark = pytest.mark.slow


@pytest.fixture
def results_only_store(tmp_path, monkeypatch):
    """Fresh results (no cached evaluation answers), but the usual weights cache (no retraining)."""
    import explorer.runs.store as store_mod

    monkeypatch.setattr(store_mod, "_default", store_mod.TieredStore(store_mod.MemoryStore(),
                                                                     store_mod.DiskStore(tmp_path / "results")))


def test_mnist_reference(results_only_store):
    from explorer.models import prefetch
    from explorer.models.data import find_mnist

    if find_mnist() is None:
        pytest.skip("MNIST not found (../shared/data/mnist or EXPLORER_MNIST_DIR)")

    prefetch("mnist-cnn")
    prefetch("mnist-softmax")
    tr = run(TransferRequest(models=("mnist-cnn", "mnist-softmax"), attack="pgd", eps=0.3, dataset="mnist", n=2000,
                             steps=40, alpha=0.01))
    acc = tr.accuracy()
    from explorer.evaluation.report import transfer_text

    print("\n" + transfer_text(tr))  # pytest -s shows the matrix (README, Robustness lab)
    assert acc[0, 0] < 0.02  # white-box PGD-40 on the CNN
    assert acc[0, 1] > acc[0, 0]  # the softmax model on the CNN's adversarials
    ev = run(EvaluateRequest(models=("mnist-cnn",), attacks=("fgsm",), eps=tuple(np.linspace(0, 0.3, 8)),
                             dataset="mnist", n=2000, probe=False))
    curve = ev.accuracy()[0, 0]
    assert np.all(np.diff(curve) <= 0) and curve[0] > 0.95
