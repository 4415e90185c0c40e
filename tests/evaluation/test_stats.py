import numpy as np
import pytest

from explorer.evaluation.stats import clopper_pearson


def test_known_values():
    # R: binom.test(7, 10)$conf.int = 0.3475471 0.9332605
    lo, hi = clopper_pearson(7, 10)
    assert lo == pytest.approx(0.3475471, abs=1e-6)
    assert hi == pytest.approx(0.9332605, abs=1e-6)


def test_edges_and_arrays():
    lo, hi = clopper_pearson(np.array([0, 10, 5]), 10)
    assert lo[0] == 0 and hi[1] == 1
    assert hi[0] == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-9)  # k = 0: 1 - (α/2)^(1/n)
    assert lo[2] < 0.5 < hi[2]
    lo, hi = clopper_pearson(0, 0)
    assert (lo, hi) == (0.0, 1.0)


def test_coverage_is_at_least_nominal():
    rng = np.random.default_rng(0)
    p, n = 0.9, 60
    k = rng.binomial(n, p, size=4000)
    lo, hi = clopper_pearson(k, n)
    assert ((lo <= p) & (p <= hi)).mean() >= 0.95


def test_bad_input():
    with pytest.raises(ValueError):
        clopper_pearson(11, 10)
