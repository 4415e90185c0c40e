"""AppTest of the Boundaries page: the 2-D lab and slices through image space."""

import base64
import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.boundaries import DATASETS
from explorer.images import load_sample, to_model_input
from explorer.models import get_spec, load_model
from explorer.models.imagenet import save_random_checkpoint
from tests.queue_helpers import settle

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
SLICES = "Slices through image space"


def open_page(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/boundaries.py")
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def figures(at: AppTest) -> list[go.Figure]:
    return [go.Figure(json.loads(c.proto.spec), skip_invalid=True) for c in at.get("plotly_chart")]


def array(value) -> np.ndarray:
    """A trace's numeric array: Plotly ships numpy arrays base64-encoded ({"dtype", "bdata", "shape"})."""
    if isinstance(value, dict) and "bdata" in value:
        a = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return a.reshape([int(k) for k in str(shape).split(",")]) if shape else a
    return np.asarray(value)


def names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data]


def trace(fig: go.Figure, name: str):
    return next(t for t in fig.data if t.name == name)


def title(fig: go.Figure) -> str:
    return fig.layout.title.text or ""


# ---------------------------------------------------------------------------------------------- 2-D lab
def test_first_load_shows_the_two_panel_figure_and_the_margins():
    at = open_page()
    assert not at.exception and not at.error and not at.warning
    lab, margins = figures(at)
    assert {"p(blue)", "boundary (p = 0.5)", "class 0 (red)", "class 1 (blue)", "∇ field"} <= set(names(lab))
    assert "picked point" not in names(lab)  # nothing attacked until a point is picked
    assert "two moons" in title(lab) and "standard training" in title(lab)
    assert [t.name for t in margins.data if t.type == "bar"] == [
        "standard training", "PGD adversarial training (L∞ ε = 0.3)"]
    assert any("do not apply here" in c.value for c in at.caption)  # the sidebar's pickers are for the slices


def test_every_dataset_and_adversarial_training_rerender():
    at = open_page(lab_steps="40")  # a short training keeps 6 datasets x 2 networks fast
    assert at.slider(key="lab_steps").value == 40
    for name, shown in zip(DATASETS, ("two moons", "circles", "XOR", "spirals", "Gaussian blobs", "bulge")):
        at.selectbox(key="lab_data").set_value(name).run()
        assert not at.exception and not at.error, name
        fig = figures(at)[0]
        assert shown in title(fig) and "boundary (p = 0.5)" in names(fig), name
        assert name == "moons" or at.query_params["lab_data"] in (name, [name])
    at.slider(key="lab_depth").set_value(0).run()  # logistic regression: a straight boundary
    assert not at.exception and "0 × 32" in title(figures(at)[0])
    at.toggle(key="lab_adv").set_value(True).run()
    assert not at.exception
    assert "PGD adversarial training (L∞ ε = 0.3)" in title(figures(at)[0])
    at.segmented_control(key="lab_method").set_value("fgsm").run()
    at.segmented_control(key="lab_norm").set_value("l2").run()
    assert not at.exception
    assert "FGSM adversarial training (L2 ε = 0.3)" in title(figures(at)[0])
    assert any("FGSM-trained" in m.label for m in at.metric)


def test_picking_a_point_by_index_draws_its_attack():
    at = open_page()
    at.number_input(key="lab_point").set_value(20).run()
    assert not at.exception
    fig = figures(at)[0]
    drawn = set(names(fig))
    assert {"picked point", "ε ball (L∞)", "PGD end"} <= drawn
    # Point 20 of the default moons sits 0.24 from the standard network's boundary: ε = 0.3 crosses it.
    assert "FGSM step → flips" in drawn and "PGD path → flips" in drawn
    assert array(trace(fig, "picked point").x)[0] == pytest.approx(-1.62, abs=0.01)
    assert any("Point 20 is **red**" in m.value and "crosses the boundary" in m.value for m in at.markdown)
    assert at.query_params["lab_point"] in ("20", ["20"])
    # The adversarially trained network holds the same point inside the same ball.
    at.toggle(key="lab_adv").set_value(True).run()
    drawn = set(names(figures(at)[0]))
    assert "FGSM step → holds" in drawn and "PGD path → holds" in drawn


def test_bad_lab_parameters_in_the_link_warn_and_fall_back():
    at = open_page(lab_data="nope", lab_n="many", lab_eps="0.33", lab_point="-4")
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "lab_data = 'nope'" in text and "lab_n = 'many'" in text and "lab_eps = '0.33'" in text
    assert "lab_point = '-4'" in text
    assert at.selectbox(key="lab_data").value == "moons" and at.slider(key="lab_n").value == 300
    assert "picked point" not in names(figures(at)[0])


# ----------------------------------------------------------------------------------------------- slices
def test_slice_centre_is_the_models_prediction_on_the_default_digit():
    at = open_page(tab=SLICES)
    assert not at.exception and not at.error and not at.warning
    sl, prof = figures(at)
    assert {"classes", "original", "FGSM", "ε ball"} <= set(names(sl))
    heat = trace(sl, "classes")
    xs, ys = array(heat.x), array(heat.y)
    res = len(xs)
    assert res == 41 and at.slider(key="slice_res").value == 41
    model = load_model("digits-cnn")
    x = to_model_input(load_sample("digits:0"), model.input_shape)
    with torch.inference_mode():
        pred = int(model(torch.from_numpy(x)[None]).argmax(1))
    centre = res // 2
    assert xs[centre] == 0 and ys[centre] == 0
    assert heat.text[centre][centre].split("<br>")[0] == model.class_names[pred]
    assert f"{model.class_names[pred]} (true)" in names(prof)  # the linearity profile, true class highlighted
    assert any("L∞ pixel units" in c.value for c in at.caption)


def test_other_planes_and_a_target_class():
    at = open_page(tab=SLICES, slice_res="21")
    at.selectbox(key="slice_plane").set_value("random/random").run()
    assert not at.exception and "random × random" in title(figures(at)[0])
    at.selectbox(key="slice_plane").set_value("gradient/target").run()
    assert not at.exception
    assert at.selectbox(key="slice_target").value is None  # runner-up by default
    at.selectbox(key="slice_target").set_value(3).run()
    assert not at.exception and not at.warning
    sl = figures(at)[0]
    assert "towards “3”" in sl.layout.xaxis.title.text
    assert at.query_params["slice_target"] in ("3", ["3"])


def test_bad_slice_parameters_in_the_link_warn_and_fall_back():
    at = open_page(tab=SLICES, slice_res="40", slice_eps="big", slice_plane="diagonal")
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "slice_res = '40'" in text and "odd" in text
    assert "slice_eps = 'big'" in text and "slice_plane = 'diagonal'" in text
    assert at.slider(key="slice_res").value == 41
    assert "classes" in names(figures(at)[0])


def test_torchvision_model_with_a_fabricated_checkpoint_renders_a_small_slice(tmp_torch_home):
    save_random_checkpoint("resnet18")
    at = open_page(model="resnet18", tab=SLICES, slice_res="11")
    assert not at.exception and not at.error
    assert at.slider(key="slice_eps_photo").value == 4.0  # photo models show ε in /255
    # a photo model's slice (11² images of 224 px) is heavy: a job on the server's queue, its status box first
    assert not figures(at) and "Slice of 11×11 images" in " ".join(str(p.proto.text) for p in at.get("progress"))
    settle(at)  # the slice, then the profile, each a job of its own
    assert not at.exception and not at.error
    sl, prof = figures(at)
    heat = trace(sl, "classes")
    xs = array(heat.x)
    assert len(xs) == 11 and array(heat.z).shape == (11, 11)
    assert np.isclose(xs[-1], 12.0, atol=1e-3)  # extent 12/255, drawn in 1/255 steps like the sliders
    assert "±12/255" in title(sl)
    assert set(names(sl)) & set(get_spec("resnet18").class_names)  # the legend names ImageNet classes
    assert "cross-entropy loss" in names(prof)


# ----------------------------------------------------------------------------------- defended models
def test_a_defended_model_is_sliced_and_noise_averaging_shows_its_speckles():
    at = open_page(tab=SLICES, model="digits-lenet-ens5-bootstrap-max", image="digits:1", slice_res="31",
                   slice_extent="0.5", slice_smooth="1", slice_sigma="0.25", slice_nsmooth="8")
    assert not at.exception, at.exception
    assert not at.error
    keys = [c.proto.id for c in at.get("plotly_chart")]
    assert any(k.endswith("slice_fig") for k in keys) and any(k.endswith("slice_smooth_fig") for k in keys)
    smooth = next(f for f in figures(at) if title(f).startswith("The same plane, noise-averaged: σ = 0.25, n = 8"))
    assert smooth.data
    metric = next(m for m in at.metric if m.label.startswith("Speckle cells"))
    assert "→" in metric.value and metric.value.count("%") == 2
    assert any("speckle cells" in c.value and "noise-averaged version" in c.value for c in at.caption)
    assert at.query_params.get("slice_smooth") in ("1", ["1"])
    at.toggle(key="slice_smooth").set_value(False).run()
    assert not at.exception
    assert not any(c.proto.id.endswith("slice_smooth_fig") for c in at.get("plotly_chart"))


def test_the_2d_lab_shows_the_noise_averaged_network():
    at = open_page(tab="2-D lab", lab_data="xor", lab_noise="0.3", lab_smooth="1", lab_sigma="0.2", lab_nsmooth="16")
    assert not at.exception, at.exception
    titles = [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]
    assert any("noise-averaged (σ = 0.2, n = 16)" in t for t in titles), titles
    assert any(c.value.startswith("**Noise averaging on:**") and "Speckles" in c.value for c in at.caption)


def test_speckle_fraction_counts_small_islands_and_smoothing_shrinks_them():
    from explorer.defences.boundaries import region_count, speckle_fraction

    p = np.zeros((10, 10), int)
    p[2, 2] = 1  # one isolated cell
    p[6:8, 6:8] = 2  # an island of 4 cells: a speckle at the default size
    p[:, 9] = 3  # a strip of 10 cells: a region
    assert speckle_fraction(p) == 5 / 100 and region_count(p) == 4
    assert speckle_fraction(p, max_cells=1) == 1 / 100
    assert speckle_fraction(np.zeros((5, 5), int)) == 0.0
