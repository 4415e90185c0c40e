"""The digits split read without scikit-learn equals scikit-learn's own (load_digits + stratified split)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.models.data import _digits_csv, load_digits_split


@pytest.mark.parametrize("seed", [0, 3])
def test_digits_split_is_exactly_scikit_learns(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    want = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    got = load_digits_split(seed)
    for w, g in zip(want, (got.x_train, got.x_test, got.y_train, got.y_test)):
        assert w.dtype == g.dtype and w.shape == g.shape
        np.testing.assert_array_equal(w, g)
    assert len(got.x_test) == 360 and got.y_test[0] == 7  # the app's default sample digits:0 is a 7


def test_digits_csv_found_in_the_installed_package():
    data = _digits_csv()
    assert data is not None and data.shape == (1797, 65)


def test_loading_the_digits_split_does_not_import_scikit_learn():
    code = ("import sys; from explorer.models.data import load_digits_split; s = load_digits_split(); "
            "print(sorted(m for m in ('sklearn', 'scipy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.stdout.strip().splitlines()[-1] == "[]"
