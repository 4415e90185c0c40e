"""UMAP: lazy import, deterministic with a seed, copies of clean points land near them; the warm-up API."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from explorer.projections import project, umap_error, umap_ready, wait_umap, warm_umap_in_background

ROOT = Path(__file__).resolve().parents[2]


def test_importing_projections_does_not_import_umap():
    code = textwrap.dedent("""
        import sys
        import explorer.projections, explorer.plots.projections
        bad = [m for m in ("umap", "numba", "pynndescent") if m in sys.modules]
        print("BAD", bad)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert "BAD []" in out.stdout


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    y = np.arange(150) % 3
    x = (rng.normal(0, 5, (3, 30))[y] + rng.normal(0, 1, (150, 30))).astype(np.float32)
    return x, y


@pytest.fixture(scope="module")
def umap_pair(features):
    x, _ = features
    return project(x, x.copy(), "umap", seed=0), project(x, x.copy(), "umap", seed=0)


def test_umap_deterministic_with_a_seed(umap_pair):
    a, b = umap_pair
    np.testing.assert_array_equal(a.clean_2d, b.clean_2d)
    np.testing.assert_array_equal(a.adv_2d, b.adv_2d)
    assert a.clean_2d.shape == a.adv_2d.shape == (150, 2) and a.method == "umap"


def test_umap_transform_puts_a_copy_near_its_clean_point(umap_pair, features):
    a, _ = umap_pair
    d = np.linalg.norm(a.adv_2d - a.clean_2d, axis=1)
    assert np.median(d) < 0.05 * a.extent and d.max() < 0.25 * a.extent
    # and in the same cluster: the nearest clean point of each transformed copy has its class
    _, y = features
    nearest = np.argmin(((a.adv_2d[:, None] - a.clean_2d[None]) ** 2).sum(-1), axis=1)
    assert (y[nearest] == y).mean() == 1.0


def test_warm_up_is_idempotent_and_finishes(umap_pair):
    t1 = warm_umap_in_background()
    t2 = warm_umap_in_background()
    assert t1 is t2 and t1.daemon
    assert wait_umap(timeout=300)
    assert umap_ready() and umap_error() is None
    assert os.environ.get("NUMBA_CACHE_DIR")


def test_umaps_uncached_jit_functions_get_a_disk_cache(umap_pair):
    """umap declares smooth_knn_dist & co. without cache=True: every new process recompiled them (~13 s)."""
    import umap.umap_

    from explorer.projections.warm import import_umap

    import_umap()
    assert type(umap.umap_.smooth_knn_dist._cache).__name__ != "NullCache"
    assert type(umap.umap_.compute_membership_strengths._cache).__name__ != "NullCache"
