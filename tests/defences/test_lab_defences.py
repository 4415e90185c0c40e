"""The Robustness lab's defences section (AppTest, digits, offline) and the three-way request behind it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import explorer.runs.store as store_mod
from explorer.defences.evaluate import HIDDEN_NOT_ROBUST
from explorer.runs import run
from explorer.runs.defences import ThreeWayEvaluation, ThreeWayRequest
from tests.queue_helpers import settle

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
PAGE = "pages/robustness_lab.py"
ENS = "digits-lenet-ens5-bootstrap-max"


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    """An empty result store (its own cache folder) that still sees the trained weights."""
    from explorer.config import get_settings

    weights = get_settings().weights_dir
    weights.mkdir(parents=True, exist_ok=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    os.symlink(weights, cache / "weights")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(cache))
    monkeypatch.setattr(store_mod, "_default", None)
    yield cache
    store_mod._default = None


def run_page(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page(PAGE)
    return at.run()


def test_three_way_request_columns_and_resume(fresh_store):
    req = ThreeWayRequest(model="digits-lenet-binarized", dataset="digits", n=40, eps=(0.0, 0.3), steps=5)
    tw = run(req)
    assert isinstance(tw, ThreeWayEvaluation) and tw.baseline == "digits-lenet"
    assert tw.transfer.shape == (2, 40) and tw.clean.shape == (40,)
    assert np.all(tw.adaptive <= tw.white_box)  # the per-sample worst case
    assert tw.adaptive_method.startswith("BPDA")
    # the quantising front masks the gradient: the naive white-box attack fails, BPDA does not
    assert tw.accuracy("white_box")[1] > tw.accuracy("adaptive")[1] + 0.3
    assert tw.check().status == "warn"
    assert store_mod.default_store().get(req.digest()) is not None  # a rerun reads it back
    assert run(req).rows() == tw.rows()
    for bad, why in ((dict(model="digits-cnn"), "not a defended model"), (dict(dataset="mnist"), "does not take"),
                     (dict(eot_samples=0), "EOT samples"), (dict(eps=()), "at least one ε")):
        with pytest.raises(ValueError, match=why):
            ThreeWayRequest(**{"model": ENS, "dataset": "digits", "n": 10, **bad}).validate()


def test_lab_shows_three_columns_the_check_and_how_to_get_the_blog_table(fresh_store):
    at = settle(run_page(dataset="digits", models=f"digits-lenet,{ENS}", attacks="fgsm", n="40"))
    assert not at.exception, at.exception
    assert any(s.value == "Defences, evaluated honestly" for s in at.subheader)
    assert any(c.proto.id.endswith(f"three_way_{ENS}") for c in at.get("plotly_chart"))
    tables = [d.value for d in at.dataframe]
    tw = next(t for t in tables if "transfer from the baseline" in t.columns)
    assert {"white-box", "baseline on its own"} <= set(tw.columns)
    assert any(c.startswith("adaptive: BPDA") for c in tw.columns) and len(tw) == 8  # every ε of the page's grid
    assert any(HIDDEN_NOT_ROBUST == c.value for c in at.caption)
    assert at.success or at.warning  # the hidden-not-robust check's verdict
    assert any("python -m explorer reproduce ensemble-blog" in i.value for i in at.info)


def test_lab_reads_the_stored_blog_reproduction(fresh_store):
    from explorer.defences.reproduce import PUBLISHED_BLOG, load_result, save_result

    rows = [{"model": "baseline CNN", "clean": 0.97, "clean_published": 0.98, "own_fgsm": 0.02,
             "own_fgsm_published": 0.09}]
    for sampling in ("uniform", "bootstrap"):
        for combine in ("mean", "max"):
            for n in (5, 25):
                rows.append({"model": f"ensemble {sampling} {combine} ×{n}", "sampling": sampling,
                             "combine": combine, "n": n, "clean": 0.98, "transfer": 0.3 + n / 100,
                             "transfer_published": PUBLISHED_BLOG[(sampling, combine)][n], "white_box": 0.01,
                             "adaptive": 0.0})
    result = {"experiment": "ensemble-blog", "eps": 0.3, "n_train": 8000, "n_eval": 2000, "rows": rows,
              "wall_seconds": 1234.0, "notes": ["a note from the run"]}
    path = save_result(result, quick=True)
    assert path.parent == fresh_store / "results" / "reproductions"
    assert load_result("ensemble-blog") == (result, True)
    at = run_page(dataset="digits", models="digits-lenet", attacks="fgsm", n="20")
    assert not at.exception, at.exception
    blog = next(d.value for d in at.dataframe if "transfer (blog)" in d.value.columns)
    assert len(blog) == len(rows) and float(blog["transfer (blog)"].iloc[-1]) == 0.45
    keys = {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    assert "blog_vs_n" in keys
    assert any("Quick run" in c.value and "1234 s" in c.value for c in at.caption)
    path.write_text("{not json")  # a torn file reads as missing: the page says how to produce it
    assert load_result("ensemble-blog") == (None, False)
