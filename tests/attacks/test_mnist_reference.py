"""Reference check on real data: a standardly trained MNIST CNN against FGSM and PGD.

The MNIST CNN (``load_model("mnist-cnn")``) is trained by the explorer on the first 8,000 images of MNIST's
test split (``../shared/data/mnist`` via ``EXPLORER_MNIST_DIR``, set in tests/conftest.py) and evaluated here on
the last 2,000. Published bands: PyTorch's FGSM tutorial, a small MNIST net at ε = 0.3: 9-16% accuracy;
Madry et al. (2018): a standardly trained net under PGD-40 (step 0.01) at ε = 0.3: about 0%.

* FGSM, all 2,000 held-out images: accuracy decreases monotonically over ε ∈ {0, .05, .1, .15, .2, .25, .3}
  and is below 20% at ε = 0.3.
* PGD-40, step 0.01, ε = 0.3, no random start: below 2%, evaluated on the FIRST 500 of the 2,000 held-out
  images only, to keep the CI time sane on 2 CPU cores.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.attacks import fgsm, pgd
from explorer.attacks.fgsm import fgsm_direction, fgsm_step
from explorer.attacks.norms import LINF

pytestmark = pytest.mark.slow

EPS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def mnist():
    from explorer.models import load_model
    from explorer.models.data import find_mnist, load_mnist_split

    if find_mnist() is None:
        pytest.skip("MNIST not found (../shared/data/mnist or EXPLORER_MNIST_DIR)")
    split = load_mnist_split()
    model = load_model("mnist-cnn", "cpu")
    return model, torch.from_numpy(split.x_test), torch.from_numpy(split.y_test)


def _fgsm_accuracies(model, x, y) -> list[float]:
    """FGSM's gradient does not depend on ε: one gradient per image, then a forward per ε."""
    correct = np.zeros(len(EPS))
    for i in range(0, len(x), 500):
        xb, yb = x[i: i + 500], y[i: i + 500]
        direction, _ = fgsm_direction(model, xb, yb, None, LINF)
        for j, e in enumerate(EPS):
            with torch.inference_mode():
                pred = model(fgsm_step(xb, direction, np.full(len(xb), e))).argmax(1)
            correct[j] += int((pred == yb).sum())
    return (correct / len(x)).tolist()


def test_fgsm_accuracy_falls_monotonically_below_20_percent(mnist, untouched):
    model, x, y = mnist
    assert len(x) == 2000
    acc = _fgsm_accuracies(model, x, y)
    check = fgsm(model, x[:500], y[:500], EPS[-1])  # the verb agrees with the shortcut above
    with torch.inference_mode():
        direction, _ = fgsm_direction(model, x[:500], y[:500], None, LINF)
        assert torch.equal(check.adversarial, fgsm_step(x[:500], direction, np.full(500, EPS[-1])))
    print("FGSM accuracy by eps:", dict(zip(EPS, np.round(acc, 4))))
    assert acc[0] > 0.95
    assert all(a > b for a, b in zip(acc, acc[1:])), acc
    assert acc[-1] < 0.20
    untouched(model)


def test_pgd40_accuracy_below_2_percent(mnist):
    model, x, y = mnist
    res = pgd(model, x[:500], y[:500], 0.3, steps=40, alpha=0.01, random_start=False)
    acc = float((res.pred == y[:500].numpy()).mean())
    print("PGD-40 accuracy at eps 0.3 (first 500):", acc)
    assert acc < 0.02
