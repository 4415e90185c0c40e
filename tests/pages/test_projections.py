"""AppTest of the Projections page (small N), and its upload validation and Attack Studio links tested directly."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer.models.imagenet import save_random_checkpoint

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
PAGE = "pages/projections.py"
N = "150"


def run_page(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in {"n": N, **params}.items():
        at.query_params[k] = v
    at.switch_page(PAGE)
    return at.run()


def qp(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly specs on the page by widget key (the element id ends with the key)."""
    return {c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def map_axis(at: AppTest) -> str:
    return charts(at)["pj_map"]["layout"]["xaxis"]["title"]["text"]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def png(side: int = 12, value: int = 200) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((side, side), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------- page


def test_default_digits_render_with_pca_metrics_and_a_link():
    at = run_page()
    assert not at.exception and not at.error and not at.warning
    assert at.title[0].value == "Projections"
    specs = charts(at)
    assert {"pj_map", "pj_dist", "pj_growth"} <= set(specs)
    assert map_axis(at) == "PC 1"
    points = [d for d in specs["pj_map"]["data"] if d.get("mode") == "markers" and d.get("customdata")]
    assert sum(len(d["customdata"]) for d in points) == 2 * int(N)  # every clean image and its adversarial twin
    m = metrics(at)
    assert set(m) == {"Labels flipped", "Clean: same class", "Flipped: old class", "Flipped: new class",
                      "Distance ratio"}
    assert m["Labels flipped"].endswith("%") and m["Distance ratio"].startswith("×")
    # the page's settings and the shared attack settings are in the URL
    assert qp(at, "dataset") == "digits" and qp(at, "n") == N and qp(at, "proj") == "pca"
    assert qp(at, "layer") == "dropout" and qp(at, "attack") == "fgsm" and float(qp(at, "eps")) == pytest.approx(0.15)
    # the example point (a held-out digit) links to Attack Studio with the model, the image and the attack
    links = [md.value for md in at.markdown if "attack_studio?" in md.value]
    assert links and "model=digits-cnn" in links[0] and "image=digits:" in links[0] and "attack=fgsm" in links[0]
    assert any("How to read these" in c.value for c in at.caption)


def test_url_attack_and_eps_are_shared_with_the_other_pages():
    at = run_page(attack="bim", eps="0.2", steps="3")
    assert not at.exception and not at.warning
    assert at.selectbox(key="pj_attack").value == "bim"
    assert at.slider(key="pj_eps_small").value == pytest.approx(0.2)
    assert at.number_input(key="pj_steps").value == 3
    at.slider(key="pj_eps_small").set_value(0.1).run()
    assert not at.exception and float(qp(at, "eps")) == pytest.approx(0.1)


def until_job_done(at: AppTest, timeout: float = 120.0) -> AppTest:
    """t-SNE and UMAP are jobs on the server's queue: rerun (what the status box's fragment does) until done."""
    import time

    deadline = time.monotonic() + timeout
    while any("of the features" in p.proto.text for p in at.get("progress")) and time.monotonic() < deadline:
        time.sleep(0.3)
        at.run()
    return at


def test_switching_to_tsne_renders():
    at = run_page(n="60")  # t-SNE is the slow one (a few seconds for 2 x 150 points on an idle machine)
    at.radio(key="pj_method").set_value("tsne").run()
    assert not at.exception and not at.error
    box = [p.proto.text for p in at.get("progress")]  # a job on the queue: its status box stands in for the map
    assert any(t.startswith("t-SNE of the features") for t in box) and "pj_map" not in charts(at)
    until_job_done(at)
    assert not at.exception and not at.error
    assert map_axis(at) == "t-SNE 1" and qp(at, "proj") == "tsne"
    assert "Flipped: new class" in metrics(at)


def test_umap_while_compiling_shows_pca_and_the_compiling_state(monkeypatch):
    import explorer.projections as projections

    monkeypatch.setattr(projections, "umap_ready", lambda: False)
    monkeypatch.setattr(projections, "warm_umap_in_background", lambda delay=0.0: None)
    at = run_page(proj="umap")
    assert not at.exception and not at.error
    assert at.radio(key="pj_method").value == "umap"
    assert map_axis(at) == "PC 1"  # PCA at once
    texts = [p.proto.text for p in at.get("progress")]
    assert any("UMAP is compiling in the background" in t for t in texts)


def test_umap_renders_when_warm_or_shows_the_compiling_state():
    from explorer.projections import umap_ready, wait_umap

    wait_umap(60)  # starts the warm-up in this process if needed; a cold numba cache may take longer
    at = until_job_done(run_page(proj="umap"))
    assert not at.exception and not at.error
    if umap_ready():
        assert map_axis(at) == "UMAP 1"
    else:
        assert map_axis(at) == "PC 1"
        assert any("UMAP is compiling" in p.proto.text for p in at.get("progress"))


def test_changing_the_layer_changes_the_features():
    at = run_page()
    before = metrics(at)["Distance ratio"]
    assert at.selectbox(key="pj_layer_digits-cnn").value == "dropout"
    at.selectbox(key="pj_layer_digits-cnn").set_value("conv1").run()
    assert not at.exception and not at.error
    assert qp(at, "layer") == "conv1"
    assert any("`conv1` activations" in c.value for c in at.caption)
    assert metrics(at)["Distance ratio"] != before  # other features, other distances
    growth = charts(at)["pj_growth"]
    assert growth["data"][0]["x"][0] == "input"  # the growth chart does not depend on the chosen layer


def test_layer_from_the_url_and_an_unknown_layer():
    at = run_page(layer="fc1")
    assert not at.exception and at.selectbox(key="pj_layer_digits-cnn").value == "fc1"
    at = run_page(layer="nope")
    assert not at.exception
    assert any("not a layer of this model" in w.value for w in at.warning)
    assert at.selectbox(key="pj_layer_digits-cnn").value == "dropout"


@pytest.mark.parametrize("dataset", ["photos", "mnist"])
def test_a_dataset_that_does_not_fit_the_model_gives_a_message(dataset):
    at = run_page(dataset=dataset)
    assert not at.exception and not at.error
    assert any("is not available for" in w.value for w in at.warning)
    assert at.selectbox(key="pj_dataset_digits-cnn").value == "digits"
    assert "pj_map" in charts(at)


def test_mnist_model_projects_mnist_with_links_to_the_mnist_gallery():
    from explorer.models.data import find_mnist

    if find_mnist() is None:
        pytest.skip("MNIST is not on this machine")
    at = run_page(model="mnist-cnn")
    assert not at.exception and not at.error
    assert at.selectbox(key="pj_dataset_mnist-cnn").value == "mnist" and qp(at, "dataset") == "mnist"
    links = [md.value for md in at.markdown if "attack_studio?" in md.value]
    assert links and "model=mnist-cnn" in links[0] and "image=mnist:8" in links[0]  # held-out: 8000 and up


def test_unknown_dataset_and_bad_n_in_the_url_warn_and_fall_back():
    at = run_page(dataset="cifar", n="99999")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "Unknown dataset" in warnings and "n = '99999'" in warnings
    assert at.number_input(key="pj_n_digits").value == 1000


def test_uploads_without_files_ask_for_images():
    at = run_page(dataset="uploads")
    assert not at.exception and not at.error
    assert any("Upload at least 5 images" in i.value for i in at.info)


def test_bad_attack_settings_are_one_line_errors():
    at = run_page(attack="pgd-l2", eps="0.5")
    assert not at.exception  # an L2 radius of 0.5 is valid: the page renders
    assert "pj_map" in charts(at)
    at = run_page(attack="rubbish")
    assert not at.exception and any("Unknown attack" in w.value for w in at.warning)


def test_an_l2_radius_above_one_from_attack_studio_is_accepted():
    at = run_page(attack="pgd-l2", eps="1.5")
    assert not at.exception and not at.warning
    assert at.slider(key="pj_eps_small").value == pytest.approx(1.5)
    assert qp(at, "eps") == "1.5"


def test_torchvision_model_with_fabricated_weights_projects_augmented_photos(tmp_torch_home):
    save_random_checkpoint("resnet18")
    at = run_page(model="resnet18", image="photo:chelsea", n="16")
    assert not at.exception and not at.error
    assert at.selectbox(key="pj_dataset_resnet18").value == "photos"
    assert at.slider(key="pj_eps_photo").value == pytest.approx(8.0)  # ε in k/255 for photos
    assert at.selectbox(key="pj_layer_resnet18").value == "avgpool"
    assert "pj_map" in charts(at) and "pj_growth" in charts(at)
    assert any("at most 200 images" in c.value for c in at.caption)
    assert any(b.proto.label == "Clean image (PNG)" for b in at.get("download_button"))  # photos have no link


# ------------------------------------------------------------------------------ uploads and links, directly


def test_read_uploads_reports_bad_files_and_uses_the_rest():
    from explorer.caching.projections import read_uploads

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("digits/a.png", png(value=10))
        z.writestr("digits/b.png", b"not a png at all")
        z.writestr("digits/notes.txt", b"hello")
        z.writestr("digits/.DS_Store", b"junk")
        z.writestr("__MACOSX/digits/._a.png", b"junk")
        z.writestr("digits/sub/", b"")
        z.writestr("digits/sub/c.png", png(value=20))
    files = [("one.png", png()), ("broken.jpg", b"\xff\xd8\xff" + b"\x00" * 20), ("empty.png", b""),
             ("folder.zip", archive.getvalue()), ("bad.zip", b"PK\x03\x04 truncated")]
    images, problems = read_uploads(files)
    assert [im.name for im in images] == ["one.png", "folder.zip/digits/a.png", "folder.zip/digits/sub/c.png"]
    reasons = dict(problems)
    assert set(reasons) == {"broken.jpg", "empty.png", "folder.zip/digits/b.png", "folder.zip/digits/notes.txt",
                            "bad.zip"}
    assert "empty" in reasons["empty.png"] and "not a readable zip" in reasons["bad.zip"]
    assert "not an image file" in reasons["folder.zip/digits/notes.txt"]
    assert all("\n" not in r for r in reasons.values())  # one line each


def test_read_uploads_caps_the_number_of_images():
    from explorer.caching.projections import read_uploads

    images, problems = read_uploads([(f"{i}.png", png()) for i in range(5)], max_images=3)
    assert len(images) == 3 and [n for n, _ in problems] == ["3.png", "4.png"]


def test_attack_studio_links_name_exactly_the_projected_image():
    from explorer.caching.projections import sample_id_for
    from explorer.images import load_sample, to_model_input
    from explorer.models.data import find_mnist
    from explorer.projections.datasets import digits_images, mnist_images

    digits = digits_images(None)
    held_out = [i for i, s in enumerate(digits.sources) if sample_id_for(s) is not None]
    assert held_out == list(range(len(held_out))) and 300 < len(held_out) < len(digits)  # the test split first
    for i in (0, 17, held_out[-1]):
        img = load_sample(sample_id_for(digits.sources[i]))
        assert np.array_equal(to_model_input(img, (1, 8, 8)), digits.images[i])
        assert img.label == digits.labels[i]
    assert sample_id_for(digits.sources[held_out[-1] + 1]) is None  # a training digit: no gallery id
    assert sample_id_for("chelsea (augmented 1)") is None and sample_id_for("upload.png") is None
    if find_mnist() is None:
        pytest.skip("MNIST is not on this machine")
    mnist = mnist_images(None)
    for i in (0, 1999, 2000, len(mnist) - 1):
        img = load_sample(sample_id_for(mnist.sources[i]))
        assert np.array_equal(to_model_input(img, (1, 28, 28)), mnist.images[i])
        assert img.label == mnist.labels[i]


def test_uploaded_images_are_converted_like_the_sidebar_and_labelled_by_prediction():
    from explorer.caching.projections import read_uploads, uploaded_images
    from explorer.inference import model_cache

    images, _ = read_uploads([(f"{i}.png", png(value=30 * i)) for i in range(6)])
    s = uploaded_images("digits-cnn", tuple(im.digest for im in images), None, images)
    assert s.data.images.shape == (6, 1, 8, 8) and s.data.labels_are_predictions
    assert s.data.sources == tuple(f"{i}.png" for i in range(6))
    model = model_cache().get("digits-cnn")
    with torch.inference_mode():
        pred = model(torch.from_numpy(s.data.images)).argmax(1).numpy()
    assert np.array_equal(pred, s.data.labels)


def test_warm_up_thread_runs_at_a_lower_priority():
    import os
    import sys

    from explorer.projections.warm import lower_thread_priority

    out = {}

    def probe():
        before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        out["ok"] = lower_thread_priority(before + 5)
        out["after"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        out["before"] = before

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread priorities are a Linux feature")
    assert out["ok"] and out["after"] == min(19, out["before"] + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == out["before"]  # only that thread
