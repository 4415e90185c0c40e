"""Offline (no torchvision weights, no MNIST): every model the picker lists that cannot load here keeps the page
on Attack Studio, Gradient maps, Boundaries (slices) and Projections: the picked image and ONE card with the
command to run, no error boxes, and the user's other settings kept; picking a ready model brings the page back."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.models import availability, get_spec, list_specs

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
SLICES = "Slices through image space"

PAGES = [
    ("pages/attack_studio.py", {}),
    ("pages/gradient_maps.py", {}),
    ("pages/boundaries.py", {"tab": SLICES, "slice_res": "11"}),
    ("pages/projections.py", {"n": "150"}),
]
SETTINGS = {"attack": "pgd", "steps": "7", "eps": "0.2", "alpha": "0.5"}  # the user's other settings, in the link


def qp(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def texts(at: AppTest) -> list[str]:
    """Every text on the page and in the sidebar."""
    return ([c.value for c in at.code] + [m.value for m in at.markdown] + [c.value for c in at.caption]
            + [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info])


def image_captions(at: AppTest) -> list[str]:
    return [img.caption for el in at.main.get("image") for img in el.proto.imgs]


@pytest.fixture
def offline(tmp_torch_home, tmp_path, monkeypatch):
    """No torchvision weights (an empty TORCH_HOME) and no MNIST: the ImageNet models need a download and the
    MNIST models (and MNIST defences) are unavailable."""
    monkeypatch.setenv("EXPLORER_MNIST_DIR", str(tmp_path / "no-mnist"))
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))  # no trained MNIST weights either
    return tmp_torch_home


def not_ready() -> list[str]:
    return [s.id for s in list_specs(include_user=False) if not availability(s.id).loadable]


def test_offline_there_are_models_to_check(offline):
    ids = not_ready()
    assert {"resnet18", "resnet50", "vit_b_16"} <= set(ids)
    assert any(get_spec(i).dataset == "mnist" for i in ids)


@pytest.mark.parametrize("page, params", PAGES, ids=[p.split("/")[1][:-3] for p, _ in PAGES])
def test_offline_every_model_choice_shows_the_image_and_one_card(offline, page, params):
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in {"model": "digits-cnn", "image": "digits:3", **SETTINGS, **params}.items():
        at.query_params[k] = v
    at.switch_page(page).run()
    assert not at.exception and not at.error and not at.warning
    kept = {k: qp(at, k) for k in at.query_params if k not in ("model", "image")}  # what the page wrote
    assert {k: kept.get(k) for k in ("attack", "steps")} == {"attack": "pgd", "steps": "7"}

    picked_photo = False
    for model_id in not_ready():
        at.sidebar.selectbox(key="model_pick").set_value(model_id).run()
        if not picked_photo and get_spec(model_id).dataset == "imagenet":
            # another photo picked while the model is not ready: the card shows it, and it stays picked
            at.sidebar.selectbox(key="image_pick_photo").set_value("photo:coffee").run()
            picked_photo = True
        name = get_spec(model_id).name
        fix = availability(model_id).fix
        assert not at.exception, (page, model_id)
        assert not at.error and not at.warning and not at.info, (page, model_id)  # no repeated messages
        cards = [m.value for m in at.main.markdown if "is not ready on this machine" in m.value]
        assert cards == [f"#### {name} is not ready on this machine"], (page, model_id, cards)
        assert sum(fix in t for t in texts(at)) == 1, (page, model_id, texts(at))  # the command, once
        assert [c.value for c in at.main.code] == [fix]
        captions = image_captions(at)
        assert len(captions) == 1 and captions[0].endswith("(picked; shown as loaded)"), captions
        if get_spec(model_id).dataset == "imagenet":
            assert captions[0].startswith("coffee"), captions
            assert qp(at, "image") == "photo:coffee"
        assert qp(at, "model") == model_id
        now = {k: qp(at, k) for k in at.query_params if k not in ("model", "image")}
        assert now == kept, (page, model_id)  # the other settings stay in the link

    # a ready model brings the page back, with the digit and the settings the user had
    at.sidebar.selectbox(key="model_pick").set_value("digits-cnn").run()
    assert not at.exception and not at.error
    assert not [m for m in at.markdown if "is not ready on this machine" in m.value]
    assert qp(at, "image") == "digits:3" and qp(at, "attack") == "pgd" and qp(at, "steps") == "7"
    if page != "pages/boundaries.py":
        prefix = {"pages/attack_studio.py": "as", "pages/gradient_maps.py": "gm", "pages/projections.py": "pj"}[page]
        assert at.selectbox(key=f"{prefix}_attack").value == "pgd"
        assert at.number_input(key=f"{prefix}_steps").value == 7
