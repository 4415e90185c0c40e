"""AppTest of the shared state: the sidebar follows the user across pages (samples, uploads, uploaded models),
settings survive a detour through an unavailable model, every page's settings live in the URL, bad links get
one escaped line, and uploads belong to the session that made them."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer import sessions
from explorer.models.user import UserModelRequest, register_user_model
from explorer.urlstate import unescape_md

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
PAGES = ["pages/home.py", "pages/attack_studio.py", "pages/gradient_maps.py", "pages/boundaries.py",
         "pages/projections.py"]
LINK = "[Session expired - log in again](http://x.example)"
HTML = "<img src=x onerror=alert(1)>"
UNESCAPED_LINK = re.compile(r"(?<!\\)\]\(")  # "](" not preceded by a backslash: a Markdown link
UNESCAPED_TAG = re.compile(r"(?<!\\)<[a-zA-Z/]")  # an HTML tag


def app(page: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if page:
        at.switch_page(page)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def qp(at: AppTest) -> dict[str, str]:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def texts(at: AppTest) -> list[str]:
    """Every Markdown source the app rendered: warnings, errors, infos, captions, markdown, in sidebar and main."""
    out = []
    for kind in ("warning", "error", "info", "caption", "markdown", "success"):
        out += [e.value for e in at.get(kind)]
        out += [e.value for e in getattr(at.sidebar, kind)]
    return out


def assert_no_markup(at: AppTest, payload_bits=("Session expired", "onerror")) -> None:
    for t in texts(at):
        if any(b in t for b in payload_bits):
            assert not UNESCAPED_LINK.search(t), t
            assert not UNESCAPED_TAG.search(t), t


def png(side: int = 40, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def tiny_model(names: tuple[str, ...], seed: int = 0) -> UserModelRequest:
    torch.manual_seed(seed)  # noqa: test-only fixture weights, not library code
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, len(names)))
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buf)
    return UserModelRequest(buf.getvalue(), "tiny.pt", input_shape=(1, 8, 8), class_names=names)


# ------------------------------------------------------------------------------------ across pages
def test_model_and_image_follow_the_user_across_every_page_even_when_the_url_is_dropped():
    at = app()
    at.sidebar.selectbox(key="model_pick").set_value("digits-mlp").run()
    at.sidebar.selectbox(key="image_pick_digits").set_value("digits:3").run()
    assert qp(at)["model"] == "digits-mlp" and qp(at)["image"] == "digits:3"
    for page in PAGES[1:] + PAGES[:1]:
        at.query_params.clear()  # a click in the navigation drops the query string
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.sidebar.selectbox(key="model_pick").value == "digits-mlp", page
        assert at.sidebar.selectbox(key="image_pick_digits").value == "digits:3", page
        assert qp(at)["model"] == "digits-mlp" and qp(at)["image"] == "digits:3", page  # written back


def test_an_uploaded_image_follows_the_user_and_the_url_names_it():
    at = app()
    at.sidebar.file_uploader(key="upload").upload("my photo.png", png(), "image/png").run()
    assert not at.exception
    image = qp(at)["image"]
    assert re.fullmatch(r"upload:[0-9a-f]{12}", image)  # no longer the old sample
    for page in ("pages/attack_studio.py", "pages/home.py"):
        at.query_params.clear()
        at.switch_page(page).run()
        assert not at.exception
        assert qp(at)["image"] == image, page
        assert any("my photo" in unescape_md(c.value) for c in at.sidebar.caption), page
    # Picking a sample goes back to the sample, and the link says so.
    at.sidebar.selectbox(key="image_pick_digits").set_value("digits:3").run()
    assert qp(at)["image"] == "digits:3"


def test_settings_survive_a_detour_through_an_unavailable_model(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_MNIST_DIR", str(tmp_path))  # MNIST is "not on this machine"
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))  # and no trained MNIST weights either
    at = app("pages/attack_studio.py", steps="12", attack="bim")
    assert at.number_input(key="as_steps").value == 12
    at.sidebar.selectbox(key="model_pick").set_value("mnist-cnn").run()
    assert not at.exception and not at.error  # one clear card (no error box), the page stops
    assert any("is not ready on this machine" in m.value for m in at.markdown)
    assert [c.value for c in at.code if "prefetch mnist" in c.value]  # the command, once
    at.sidebar.selectbox(key="model_pick").set_value("digits-cnn").run()
    assert not at.exception and not at.error
    assert at.number_input(key="as_steps").value == 12 and at.selectbox(key="as_attack").value == "bim"
    assert qp(at)["steps"] == "12" and qp(at)["attack"] == "bim"


def test_adding_a_user_model_selects_it_without_a_session_state_warning():
    spec = register_user_model(tiny_model(tuple("abcdefghij")))
    at = app()
    at.session_state["user_models"] = [spec.id]
    at.session_state["_pending_model"] = spec.id  # what the upload form leaves for the next run
    at.run()
    assert not at.exception and not at.warning and not at.sidebar.warning
    assert at.sidebar.selectbox(key="model_pick").value == spec.id and qp(at)["model"] == spec.id


# ------------------------------------------------------------------------------------ bad links
@pytest.mark.parametrize("payload", [LINK, HTML, "**bold** :red[x] :material/home: $x^2$"])
def test_url_values_are_never_rendered_as_markup(payload):
    at = app("pages/attack_studio.py", attack=payload, model=payload, image=payload, steps=payload,
             target=payload, eps=payload)
    assert not at.exception
    shown = texts(at)
    assert sum(unescape_md(payload)[:10] in unescape_md(t) for t in shown) >= 4, shown  # each one is quoted
    assert_no_markup(at, payload_bits=("Session", "onerror", "bold"))
    for t in shown:
        if "bold" in t:
            for markup in (r"\*\*bold", r":red", r"\$x", r":material"):  # each one escaped with a backslash
                assert not re.search(r"(?<!\\)" + markup, t), (markup, t)


def test_bad_image_values_get_the_same_one_line_notice():
    for value in ("../../etc/passwd", "digits:99999", "photo:nope", "upload:0123456789ab"):
        at = app(image=value)
        assert not at.exception
        notes = [unescape_md(w.value) for w in at.sidebar.warning]
        assert len(notes) == 1 and value in notes[0], (value, notes)
        assert "\n" not in notes[0]
        assert qp(at)["image"] == "digits:0"  # the default sample, and the link says so


def test_a_huge_number_gets_one_clean_message():
    at = app("pages/attack_studio.py", steps="1" * 20_000, lab_n="9" * 5000)
    assert not at.exception
    msgs = [w.value for w in at.warning]
    steps = [m for m in msgs if m.startswith("steps")]
    assert len(steps) == 1 and "not a whole number" in steps[0] and "20,000 characters" in steps[0]
    assert all(len(m) < 300 and "limit" not in m and "int" not in m.split() for m in msgs), msgs


def test_bad_boundaries_and_gradient_values_are_escaped():
    at = app("pages/boundaries.py", lab_data=LINK, lab_n=HTML)
    assert not at.exception and len(at.warning) == 2
    assert_no_markup(at)
    at = app("pages/gradient_maps.py", map=LINK, sigma="nan", n_samples="1e999")
    assert not at.exception
    assert_no_markup(at)
    assert any("Unknown method" in w.value for w in at.warning)


def test_class_names_of_an_uploaded_model_are_escaped_on_every_page():
    names = (LINK, HTML, "**b**", "c", "d", "e", "f", "g", "h", "i")
    spec = register_user_model(tiny_model(names, seed=1))
    for page in ("pages/home.py", "pages/attack_studio.py", "pages/gradient_maps.py"):
        at = app(page, model=spec.id, image="digits:0")
        assert not at.exception, page
        assert_no_markup(at)
        assert not any("**b**" in t for t in texts(at)), page


# ------------------------------------------------------------------------------------ sharing rule
def test_a_link_to_another_sessions_upload_opens_the_default_with_a_notice():
    spec = register_user_model(tiny_model(tuple("abcdefghij"), seed=2), session="someone-else")
    try:
        at = app(model=spec.id)
        assert not at.exception
        assert any("another session" in w.value for w in at.sidebar.warning)
        assert at.sidebar.selectbox(key="model_pick").value == "digits-cnn"
        assert spec.id not in at.sidebar.selectbox(key="model_pick").options
        assert qp(at)["model"] == "digits-cnn"
    finally:
        sessions.forget("someone-else")


def test_an_ended_session_loses_its_models_and_a_live_one_keeps_them():
    from explorer.models import ModelUnavailable
    from explorer.models.user import build_user

    gone = sessions.register_user_model(tiny_model(tuple("abcdefghij"), seed=3), "closed-tab")
    kept = sessions.register_user_model(tiny_model(tuple("abcdefghij"), seed=4), "open-tab")
    alive = {"closed-tab": False, "open-tab": True}
    try:
        assert sessions.sweep(lambda sid: alive.get(sid), grace=0.0) == ["closed-tab"]
        assert sessions.owner(gone.id) is None and sessions.owner(kept.id) == "open-tab"
        with pytest.raises(ModelUnavailable):
            build_user(gone.id)
        assert build_user(kept.id).class_names == tuple("abcdefghij")
        # A session that just disconnected is kept for the grace period (it may reconnect).
        alive["open-tab"] = False
        assert sessions.sweep(lambda sid: alive.get(sid), grace=3600.0) == []
    finally:
        sessions.forget("open-tab")


# ------------------------------------------------------------------------------------ URL per page
def test_boundaries_controls_round_trip_through_the_url():
    at = app("pages/boundaries.py", lab_data="circles", lab_depth="3", lab_wd="1e-4", lab_adv="1")
    assert not at.exception and not at.warning
    assert at.selectbox(key="lab_data").value == "circles" and at.slider(key="lab_depth").value == 3
    assert at.select_slider(key="lab_wd").value == 1e-4 and at.toggle(key="lab_adv").value is True
    at.slider(key="lab_depth").set_value(2).run()  # back to its default: dropped from the URL
    q = qp(at)
    assert "lab_depth" not in q and q["lab_data"] == "circles" and q["lab_wd"] == "0.0001" and q["lab_adv"] == "1"


def test_gradient_map_method_and_options_are_in_the_url():
    at = app("pages/gradient_maps.py", map="smoothgrad", n_samples="10", sigma="0.2", opacity="0.5")
    assert not at.exception and not at.warning
    assert at.slider(key="gm_n_samples").value == 10 and at.slider(key="gm_sigma").value == pytest.approx(0.2)
    assert at.slider(key="gm_opacity").value == pytest.approx(0.5)
    at.slider(key="gm_n_samples").set_value(15).run()
    q = qp(at)
    assert q["map"] == "smoothgrad" and q["n_samples"] == "15" and q["sigma"] == "0.2" and q["opacity"] == "0.5"
    at.selectbox(key="gm_method").set_value("occlusion").run()
    q = qp(at)
    assert "n_samples" not in q and "sigma" not in q  # the other method's options leave the link


def test_projection_settings_are_in_the_url():
    at = app("pages/projections.py", n="50", segments="0", proj="pca")
    assert not at.exception
    assert at.number_input(key="pj_n_digits").value == 50 and at.toggle(key="pj_segments").value is False
    q = qp(at)
    assert q["n"] == "50" and q["segments"] == "0"
