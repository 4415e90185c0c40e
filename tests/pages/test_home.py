"""AppTest of the shell: home page, shared sidebar, URL state, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def run_app(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def test_home_shows_a_live_prediction_on_the_default_offline_model():
    at = run_app()
    assert not at.exception
    assert at.sidebar.selectbox(key="model_pick").value == "digits-cnn"
    assert at.title[0].value == "Adversarial Explorer"
    flip = at.metric[0]
    assert flip.label == "Label flips at" and flip.value.startswith("ε = ")
    assert "“7” → “" in flip.delta and "“7” → “7”" not in flip.delta  # the default digit is a 7, and it flips
    assert len(at.get("image")) == 3  # clean, perturbation, adversarial
    assert {link.label for link in at.get("page_link")} == {"Attack Studio", "Gradient maps", "Boundaries",
                                                             "Projections"}
    assert at.query_params["model"] == ["digits-cnn"] or at.query_params["model"] == "digits-cnn"


def test_url_selects_model_and_sample():
    at = run_app(model="digits-mlp", image="digits:3")
    assert not at.exception
    assert at.sidebar.selectbox(key="model_pick").value == "digits-mlp"
    assert at.sidebar.selectbox(key="image_pick_digits").value == "digits:3"


def test_unknown_model_in_url_warns_and_falls_back():
    at = run_app(model="nope")
    assert not at.exception
    assert any("Unknown model" in w.value for w in at.sidebar.warning)
    assert at.sidebar.selectbox(key="model_pick").value == "digits-cnn"


def test_switching_model_keeps_the_app_running():
    at = run_app()
    at.sidebar.selectbox(key="model_pick").set_value("digits-mlp").run()
    assert not at.exception and at.metric[0].label == "Label flips at"


def test_model_that_needs_download_gives_a_message_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    at = run_app(model="resnet18")
    assert not at.exception
    # one card: the command once (in a code block), the picked image still shown, no error box
    assert [c.value for c in at.code if "prefetch resnet18" in c.value] == ["python -m explorer prefetch resnet18"]
    assert not at.error and len(at.get("image")) >= 1


def test_download_button_offline_says_what_to_run(tmp_path, monkeypatch):
    import urllib.error

    from explorer.models import imagenet

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(imagenet.urllib.request, "urlopen", offline)
    at = run_app(model="resnet18")
    at.sidebar.button(key="download_resnet18").click().run()
    assert not at.exception
    assert any("not available offline" in e.value and "prefetch resnet18" in e.value for e in at.sidebar.error)


def test_user_model_opens_from_a_link_and_stays_out_of_other_lists():
    import io

    import torch

    from explorer.models.user import UserModelRequest, register_user_model

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buf)
    spec = register_user_model(UserModelRequest(buf.getvalue(), "tiny.pt", input_shape=(1, 8, 8),
                                                class_names=tuple("abcdefghij")))
    at = run_app(model=spec.id, image="digits:0")
    assert not at.exception and at.sidebar.selectbox(key="model_pick").value == spec.id
    other = run_app()  # a session that did not upload it and was not given the link
    assert spec.id not in other.sidebar.selectbox(key="model_pick").options


# Modules the home page must not import (each costs seconds on a cold server, and Home needs none of them):
# the Ray executor, UMAP and its numba/pynndescent, t-SNE, scikit-learn/scipy (the digits samples are read
# without them; pandas, 0.2 s, is imported with explorer.plots on purpose), the peer attack and attribution libraries, torchvision (ImageNet models load it when picked).
HOME_MUST_NOT_IMPORT = ("ray", "umap", "numba", "pynndescent", "sklearn", "sklearn.manifold", "scipy",
                        "openTSNE", "captum", "foolbox", "torchattacks", "art", "torchvision", "redis")

_PROBE = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=120).run()
print(json.dumps({"exceptions": [str(e.value) for e in at.exception], "title": [t.value for t in at.title],
                  "loaded": [m for m in sys.argv[2:] if m in sys.modules]}))
"""


def test_home_imports_nothing_heavy_in_a_fresh_process():
    """A fresh interpreter (the pytest process has imported everything by now) loads Home once in AppTest."""
    root = Path(APP).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _PROBE, APP, *HOME_MUST_NOT_IMPORT], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["exceptions"] and result["title"] == ["Adversarial Explorer"]
    assert result["loaded"] == [], f"Home imported {result['loaded']}: load them where they are used"
