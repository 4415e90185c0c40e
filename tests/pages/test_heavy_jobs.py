"""Heavy requests of the pages run as queued jobs (``explorer.caching.jobs.run_or_queue``): Attack Studio's sweep
and Gradient maps' attributions show a status box where the result will appear, then the result; light ones stay
on the page's own cached path. A queue with threshold 0 makes every request heavy (digits, so the test is fast)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import explorer.jobs as jobs_pkg
from explorer.jobs import JobQueue
from explorer.runs.requests import AttributionRequest, SweepRequest
from explorer.runs.store import MemoryStore

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


@pytest.fixture
def heavy_queue(monkeypatch):
    q = JobQueue(workers=1, session_jobs=1, store=MemoryStore(), threshold=0.0)
    monkeypatch.setattr(jobs_pkg, "_queue", q)
    yield q
    q.close()


def run_page(page: str, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page(page)
    return at.run()


def wait_idle(q: JobQueue, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(j.state in ("done", "failed", "cancelled") for j in list(q._jobs.values())):
            return
        time.sleep(0.05)
    raise TimeoutError("the queued jobs did not finish")


def progress_texts(at: AppTest) -> str:
    return " ".join(str(p.proto.text) for p in at.get("progress"))


def has_scrubber(at: AppTest) -> bool:
    def walk(node):
        return any(str(getattr(c, "key", "")).startswith("as_scrub_") or walk(c)
                   for c in getattr(node, "children", {}).values())
    return walk(at.main)


def test_a_heavy_sweep_is_a_job_whose_status_shows_where_the_slider_will_be(heavy_queue):
    at = run_page("pages/attack_studio.py", attack="pgd", steps="5")
    assert not at.exception
    assert heavy_queue.stats["submitted"] >= 1 and heavy_queue.stats["inline"] == 0
    kinds = {j.request.kind for j in heavy_queue._jobs.values()}
    assert kinds == {"sweep"}
    if not has_scrubber(at):  # still queued or running: its status, no slider yet
        assert "values of ε" in progress_texts(at)
    wait_idle(heavy_queue)
    at.run()
    wait_idle(heavy_queue)  # the FGSM overlay is a second job
    at.run()
    assert not at.exception and has_scrubber(at)
    # the same sweep asked again (another visitor) comes from the store, not a new job
    before = heavy_queue.stats["ran"]
    other = run_page("pages/attack_studio.py", attack="pgd", steps="5")
    assert has_scrubber(other) and heavy_queue.stats["ran"] == before


def test_light_requests_stay_inline_and_their_cost_scales_with_the_image():
    import numpy as np

    from explorer.attacks import AttackConfig
    from explorer.attributions import AttributionConfig
    from explorer.config import get_settings

    small, photo = np.zeros((1, 8, 8), np.float32), np.zeros((3, 224, 224), np.float32)
    grid = tuple(np.linspace(0, 0.5, 64))
    cfg = AttackConfig("pgd", eps=0.5, steps=10)
    threshold = get_settings().job_threshold
    assert SweepRequest("digits-cnn", "d", 7, cfg, grid, None, small).cost() < threshold  # inline
    assert SweepRequest("resnet18", "d", 7, cfg, grid, None, photo).cost() > threshold  # queued
    sg = AttributionConfig(method="smoothgrad", n_samples=50)
    assert AttributionRequest("digits-cnn", "d", (7, 3), sg, None, small).cost() < threshold
    assert AttributionRequest("resnet18", "d", (7, 3), sg, None, photo).cost() > threshold


def test_gradient_maps_attributions_go_through_the_queue(heavy_queue):
    at = run_page("pages/gradient_maps.py", map="smoothgrad", n_samples="10")
    assert not at.exception
    wait_idle(heavy_queue)
    at.run()
    wait_idle(heavy_queue)
    at.run()
    assert not at.exception
    assert "attribution" in {j.request.kind for j in heavy_queue._jobs.values()}
    keys = {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    assert "gm_grid" in keys


def test_image_slices_and_profiles_go_through_the_queue(heavy_queue):
    at = run_page("pages/boundaries.py", tab="Slices through image space", slice_res="11")
    assert not at.exception
    assert "Slice of 11×11 images" in progress_texts(at) or heavy_queue.stats["ran"] >= 1
    for _ in range(3):  # the slice, then the profile
        wait_idle(heavy_queue)
        at.run()
    assert not at.exception and not at.error
    assert {"slice", "profile"} <= {j.request.kind for j in heavy_queue._jobs.values()}
    assert len(at.get("plotly_chart")) >= 2


def test_lab_evaluations_and_transfer_matrices_go_through_the_queue(heavy_queue):
    at = run_page("pages/robustness_lab.py", models="digits-softmax,digits-mlp", attacks="fgsm", n="40")
    assert not at.exception
    assert "Attacking 40 images" in progress_texts(at) or heavy_queue.stats["ran"] >= 1
    for _ in range(3):  # the evaluation, then the transfer matrix
        wait_idle(heavy_queue)
        at.run()
    assert not at.exception and not at.error
    assert {"evaluate", "transfer"} <= {j.request.kind for j in heavy_queue._jobs.values()}
    keys = {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    assert {"curves", "matrix"} <= keys


def test_a_lab_evaluation_is_light_on_a_few_digits_and_heavy_on_the_whole_set():
    from explorer.config import get_settings
    from explorer.runs.evaluate import EvaluateRequest, TransferRequest

    threshold = get_settings().job_threshold
    three = ("digits-cnn", "digits-mlp", "digits-softmax")
    assert EvaluateRequest(models=three, n=60).cost() < threshold  # the lab's first look runs inline
    assert EvaluateRequest(models=three, n=360).cost() > threshold  # the whole held-out set is a job
    assert EvaluateRequest(models=("mnist-cnn",), dataset="mnist", n=2000).cost() > 20 * threshold
    assert TransferRequest(models=three, n=360).cost() < EvaluateRequest(models=three, n=360).cost()
