"""The Robustness lab's uploads go through the library's one validated path (the one Projections uses), and a
matrix over models of different input shapes says which pairs it skips and why."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

import explorer.runs.store as store_mod
from explorer.evaluation.data import load_set
from explorer.evaluation.report import skipped_pairs, transfer_text
from explorer.images.uploads import UploadLimits, read_model_inputs, read_uploads, to_model_batch
from explorer.runs import LOCAL
from explorer.runs.evaluate import EvaluateRequest, TransferRequest


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(store_mod, "_default", None)
    yield
    store_mod._default = None


def png(value: int, side: int = 16) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((side, side), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def upload() -> list[tuple[str, bytes]]:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("set/a.png", png(40))
        z.writestr("set/b.png", b"not a png")
        z.writestr("../evil.png", png(90))
    return [("one.png", png(200)), ("broken.jpg", b"\xff\xd8\xff" + b"\x00" * 20), ("set.zip", archive.getvalue())]


def test_the_lab_reads_uploads_through_the_projections_path(fresh_store):
    from explorer.caching.lab import register_uploads
    from explorer.caching.projections import read_uploads as projections_read_uploads

    assert projections_read_uploads is read_uploads  # Projections' reader is the library's one function
    images, problems = read_uploads(upload(), input_shape=(1, 8, 8))
    name, lines = register_uploads(upload(), "digits-cnn")
    assert lines == [f"{n}: {why}" for n, why in problems] and len(lines) == 3  # broken.jpg, b.png, traversal
    assert any("evil.png" in line for line in lines)
    s = load_set(name, 100)
    assert s.sources == ("one.png", "set.zip/set/a.png") and s.labels_are_predictions
    assert np.array_equal(s.images, to_model_batch(images, (1, 8, 8)))  # the sidebar's conversion
    nothing, why = register_uploads([("broken.jpg", b"\xff\xd8\xff")], "digits-cnn")
    assert nothing is None and len(why) == 1 and "\n" not in why[0]


def test_model_inputs_count_against_the_decoded_limit():
    # 4 tiny PNGs are a few hundred bytes of pixels, but 4 x 3 x 224 x 224 float32 inputs are 2.4 MB
    files = [(f"{i}.png", png(10 * i)) for i in range(4)]
    small = dataclasses.replace(UploadLimits.from_settings(), max_decoded_mb=1)
    batch = read_model_inputs(files, (1, 8, 8), limits=small)
    assert batch.x.shape == (4, 1, 8, 8) and not batch.problems
    refused = read_model_inputs(files, (3, 224, 224), limits=small)
    assert refused.x.shape == (0, 3, 224, 224) and len(refused.problems) == 1
    assert "EXPLORER_MAX_DECODED_MB" in refused.problems[0][1]


def test_a_matrix_over_models_of_other_shapes_names_the_skipped_pairs(fresh_store):
    from explorer.caching.lab import register_uploads

    name, _ = register_uploads([(f"{i}.png", png(25 * i)) for i in range(6)], "digits-cnn")
    # the upload is converted to the digits models' 1x8x8: the MNIST CNN (1x28x28) cannot take it
    tr = TransferRequest(models=("digits-cnn", "digits-softmax", "mnist-softmax"), attack="fgsm", eps=0.2,
                         dataset=name, n=6).execute(LOCAL)
    assert tr.valid[:2, :2].all() and not tr.valid[2].any() and not tr.valid[:, 2].any()
    lines = skipped_pairs(tr)
    assert lines == ["mnist-softmax cannot run on this image set (the image set is 1x8x8; this model takes "
                     "1x28x28): its row and column are blank"]
    assert "mnist-softmax cannot run" in transfer_text(tr)
    ev = EvaluateRequest(models=("digits-cnn", "mnist-softmax"), attacks=("fgsm",), dataset=name, n=6,
                         probe=False).execute(LOCAL)
    assert ev.models == ("digits-cnn",) and ev.skipped[0][0] == "mnist-softmax"


def test_builtin_sets_say_which_pairs_of_shapes_are_skipped(fresh_store):
    tr = TransferRequest(models=("digits-cnn", "digits-softmax", "resnet18"), attack="fgsm", eps=0.2,
                         dataset="digits", n=5).execute(LOCAL)
    lines = skipped_pairs(tr)
    assert len(lines) == 1 and lines[0].startswith("resnet18 cannot run on this image set (digits are 1x8x8")
