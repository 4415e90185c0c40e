"""Projections: where adversarial images land in the model's feature space, for a whole set of images at once."""

from __future__ import annotations

import math
import time
from urllib.parse import urlencode

import numpy as np
import streamlit as st

from explorer import caching, state, urlstate
from explorer.attack_settings import AttackWidget, link_params
from explorer.runs import rules
from explorer.attacks import ATTACK_NAMES, MINIMAL_ATTACKS, AttackConfig, check_config, to_png_bytes
from explorer.caching import projections as pcache
from explorer.config import get_settings
from explorer.models.data import DatasetUnavailable
from explorer.plots.images import upscale
from explorer.plots.projections import distance_figure, layer_growth_figure, mark_pair, projection_scatter
from explorer.projections import (
    DATASET_LABELS,
    DATASETS,
    METHOD_LABELS,
    METHODS,
    available_datasets,
    layer_names,
    umap_error,
    umap_ready,
    warm_umap_in_background,
)

PLOT_CONFIG = {"displayModeBar": True, "displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
DEFAULT_N = {"digits": 1000, "mnist": 1000, "photos": 64}
MAX_N = {"digits": 1797, "mnist": 5000, "photos": 200}
UMAP_EXPECTED_S = 20.0
WHY_UNAVAILABLE = {
    "digits": "it needs a model with 8x8 grey inputs (the built-in digits models)",
    "mnist": "it needs a model with 28x28 grey inputs and MNIST on this machine (`python -m explorer prefetch mnist`)",
    "photos": "it needs a colour (ImageNet) model",
}


# ---------------------------------------------------------------------------------------------- helpers
SEGMENTS = urlstate.flag("segments", True)


def eps_text(eps: float, photo: bool) -> str:
    return f"{eps * 255:.3g}/255" if photo else f"{eps:.3g}"


# ----------------------------------------------------------------------------------------------- inputs


def pick_dataset(model, model_id: str, model_name: str) -> str:
    available = available_datasets(model)
    default = next((d for d in ("mnist", "digits", "photos") if d in available), available[0])
    key = f"pj_dataset_{model_id}"
    if key not in st.session_state:
        wanted = state.query("dataset")
        if wanted is not None and wanted not in DATASETS:
            st.warning(f"Unknown dataset {urlstate.shown(wanted)} in the link; showing {DATASET_LABELS[default]} "
                       f"(choose from {', '.join(DATASETS)}).")
        elif wanted is not None and wanted not in available:
            st.warning(f"{DATASET_LABELS[wanted]} is not available for {model_name}: "
                       f"{WHY_UNAVAILABLE.get(wanted, 'it does not fit this model')}. "
                       f"Showing {DATASET_LABELS[default]}.")
        state.seed_widget(key, wanted if wanted in available else default)
    return st.selectbox("Images", available, format_func=DATASET_LABELS.get, key=key,
                        help="The set of images to project. Uploads: several image files or a zip of a folder.")


def pick_n(dataset: str) -> int | None:
    if dataset == "uploads":
        return None
    top = MAX_N[dataset]
    key = f"pj_n_{dataset}"
    urlstate.integer("n", min(DEFAULT_N[dataset], top), 10, top, what=f"a whole number of images from 10 to {top}"
                     ).seed(key)
    return int(st.number_input("N", 10, top, step=50 if top > 500 else 8, key=key,
                               help=f"How many images (at most {top} here). Digits and MNIST: the held-out "
                                    "images first, then training images."))


def pick_attack(cols, photo: bool, input_shape: tuple[int, ...]) -> AttackConfig:
    """The shared attack widget (``explorer.attack_settings``): untargeted, on every image; the attack's own
    parameters in a row below."""
    widget = AttackWidget("pj", photo=photo, input_shape=input_shape)
    settings = widget.draw(cols[0], cols[1], cols[2], st.container())
    return settings.config()


def pick_layer(model, model_id: str) -> str:
    choices = layer_names(model)
    names = list(choices.names)
    key = f"pj_layer_{model_id}"
    if key not in st.session_state:
        wanted = state.query("layer")
        if wanted is not None and wanted not in names:
            st.warning(f"Layer {urlstate.shown(wanted)} in the link is not a layer of this model; using the penultimate layer "
                       f"({choices.default}).")
        state.seed_widget(key, wanted if wanted in names else choices.default)
    return st.selectbox("Layer", names, key=key,
                        format_func=lambda n: f"{n} (penultimate)" if n == choices.default else n,
                        help="Whose activations are projected: early layers see pixels, late layers see classes.")


def pick_method() -> str:
    wanted = state.query("proj", "pca")
    if "pj_method" not in st.session_state and wanted not in METHODS:
        st.warning(f"Unknown projection {urlstate.shown(wanted)} in the link; showing PCA (choose from {', '.join(METHODS)}).")
    state.seed_widget("pj_method", wanted if wanted in METHODS else "pca")
    return st.radio("Projection", METHODS, format_func=METHOD_LABELS.get, key="pj_method", horizontal=True,
                    help="PCA: linear and instant. UMAP: keeps neighbourhoods, fitted on the clean images. "
                         "t-SNE: keeps neighbourhoods, fitted on clean and adversarial together (slowest).")


def uploaded_set(model_id: str, device: str | None, input_shape: tuple[int, int, int]):
    files = st.file_uploader("Images to project (several files, or one zip of a folder)", type=pcache.UPLOAD_TYPES,
                             accept_multiple_files=True, key="pj_uploads")
    if not files:
        st.info("Upload at least 5 images (PNG, JPEG, WebP, BMP, GIF), or a zip of a folder of them. Each image "
                "is labelled by the model's own prediction, since uploads carry no true label.")
        st.stop()
    total_mb = sum(f.size for f in files) / 2**20
    cap = get_settings().max_total_upload_mb
    if total_mb > cap:
        st.error(f"These {len(files)} files hold {total_mb:.1f} MB, over this server's {cap} MB for one upload "
                 "(EXPLORER_MAX_TOTAL_UPLOAD_MB): upload fewer or smaller files.")
        st.stop()
    decoded, problems = pcache.read_uploads([(f.name, f.getvalue()) for f in files], input_shape=input_shape)
    if problems:
        lines = "\n".join(f"- {urlstate.escape_md(name)}: {urlstate.escape_md(reason)}"
                          for name, reason in problems[:20])
        more = f"\n- … and {len(problems) - 20} more" if len(problems) > 20 else ""
        st.warning(f"{len(problems)} file(s) not used; the other {len(decoded)} are:\n{lines}{more}")
    if len(decoded) < 5:
        st.info(f"{len(decoded)} usable image(s): a projection needs at least 5.")
        st.stop()
    return pcache.uploaded_images(model_id, tuple(im.digest for im in decoded), device, decoded)


# ------------------------------------------------------------------------------------------------- UMAP


@st.fragment(run_every=1.5)
def umap_waiting() -> None:
    """Polls the background warm-up; reruns the page (now with UMAP) as soon as it is ready."""
    if umap_ready():
        st.session_state.pop("pj_umap_wait", None)
        st.rerun(scope="app")
    started = st.session_state.setdefault("pj_umap_wait", time.time())
    elapsed = time.time() - started
    st.progress(min(0.95, elapsed / UMAP_EXPECTED_S),
                text=f"UMAP is compiling in the background (first time per server, usually 5–20 s): "
                     f"{elapsed:.0f} s so far. Showing PCA meanwhile; the map switches to UMAP by itself.")


# --------------------------------------------------------------------------------------- selected point


def sample_link(model_id: str, sid: str | None, config: AttackConfig) -> str | None:
    if sid is None:
        return None
    query = {"model": model_id, "image": sid, **link_params(config)}
    return "attack_studio?" + urlencode(query, safe=":/")


def show_point(idx: int, data, adv, names, model_id: str, config: AttackConfig, photo: bool) -> None:
    s = data.data
    true = int(s.labels[idx])
    cp, ap = adv.clean_probs[idx], adv.adv_probs[idx]
    c_pred, a_pred = int(cp.argmax()), int(ap.argmax())
    side = 150
    names = tuple(urlstate.escape_md(n) for n in names)  # class names of an uploaded model are the visitor's
    st.markdown(f"**#{idx}** · {urlstate.escape_md(s.sources[idx])}")
    c1, c2 = st.columns(2)
    c1.image(upscale(s.images[idx], side), caption=f"clean: “{names[c_pred]}” ({cp[c_pred] * 100:.0f}%)",
             width="stretch")
    c2.image(upscale(adv.images[idx], side), caption=f"adversarial: “{names[a_pred]}” ({ap[a_pred] * 100:.0f}%)",
             width="stretch")
    linf = float(np.abs(adv.images[idx] - s.images[idx]).max())
    label_kind = "clean prediction (no true labels)" if s.labels_are_predictions else "true class"
    verdict = "flipped" if a_pred != true else "not flipped"
    st.caption(f"{label_kind}: “{names[true]}” · {verdict} · largest pixel change {eps_text(linf, photo)}")
    link = sample_link(model_id, pcache.sample_id_for(s.sources[idx]), config)
    if link is not None:
        st.markdown(f"[Open in Attack Studio ↗]({link})")
        st.caption("A shareable link: the model, this image and the attack settings.")
    else:
        why = ("training images are not in Attack Studio's gallery (it holds the held-out split, the first "
               "images of the set)") if s.name in ("digits", "mnist") else "this image is not in the shared gallery"
        st.caption(f"No Attack Studio link: {why}. Download it and upload it there:")
        st.download_button("Clean image (PNG)", to_png_bytes(s.images[idx]), file_name=f"image_{idx}.png",
                           mime="image/png", key="pj_download", on_click="ignore")


def picked_point(digest: str, n: int, flipped: np.ndarray) -> tuple[int | None, int | None]:
    """(the image picked in the map, an example when none is): a click is kept per image set in the session,
    because a redrawn figure (the picked pair is ringed) clears the chart's own selection."""
    new = selected_index(st.session_state.get("pj_map"), n)
    if new is not None:
        st.session_state["pj_picked"] = (digest, new)
    stored = st.session_state.get("pj_picked")
    picked = stored[1] if stored and stored[0] == digest and 0 <= stored[1] < n else None
    flips = np.flatnonzero(flipped)
    return picked, (int(flips[0]) if len(flips) else None)


def draw_order(trace) -> int:
    """Segments first, then every class's clean points, then the adversarial points (on top), then the legend."""
    if trace.mode == "lines":
        return 0
    custom = trace.customdata
    if custom is None or not len(custom):
        return 3
    return 2 if custom[0][1] == "adversarial" else 1


def selected_index(event, n: int) -> int | None:
    """The image index of the first picked point of the map's selection state (None when nothing is picked)."""
    try:
        points = event["selection"]["points"] if event is not None else []
    except (KeyError, TypeError, AttributeError):
        return None
    for p in points or []:
        custom = p.get("customdata") if isinstance(p, dict) else None
        try:
            i = int(custom[0]) if custom is not None else None
        except (TypeError, ValueError, IndexError):
            i = None
        if i is not None and 0 <= i < n:
            return i
    return None


# -------------------------------------------------------------------------------------------------- page

started = time.perf_counter()
sel = state.sidebar()
model = caching.require_model(sel.model_id, sel.device, sel.image)
photo = sel.spec.is_photo_model
names = tuple(model.class_names)

st.title("Projections")
st.markdown(
    "**Where adversarial images land in the model's feature space.** Every point is one image, seen the way the "
    "model sees it: its activations at one layer, squeezed into two dimensions. Circles are clean images "
    "coloured by their true class; crosses are their adversarial twins, in the *same* colour, joined to them by "
    "a grey line. To you each cross looks like its circle; if the attack works, the model has moved it out of "
    "its own cluster and next to the images of the class it now predicts."
)

with st.container(border=True):
    top = st.columns([1.5, 0.75, 1.3, 1.8, 0.75, 1.7])
    with top[0]:
        dataset = pick_dataset(model, sel.model_id, state.safe_name(sel.spec))
    with top[1]:
        n = pick_n(dataset)
    config = pick_attack(top[2:5], photo, tuple(model.input_shape))
    with top[5]:
        layer = pick_layer(model, sel.model_id)
    row = st.columns([1.7, 1.3, 3])
    with row[0]:
        method = pick_method()
    with row[1]:
        SEGMENTS.seed("pj_segments")
        segments = st.toggle("Segments", key="pj_segments",
                             help="a grey line from each clean image to its adversarial twin")
    if photo and dataset == "photos":
        row[2].caption(f"ImageNet models: at most {MAX_N['photos']} images (each is 224×224×3; attacking and "
                       "extracting features run a large network on every one). The sample photos are centre "
                       "crops first, then random crops, flips and colour jitter of them; labels are the model's "
                       "clean predictions.")
state.set_query(dataset=dataset, n=None if n is None else str(n), layer=layer, proj=method)
urlstate.write({SEGMENTS: bool(segments)})

try:
    check_config(config, len(names), None, input_shape=tuple(model.input_shape))
except ValueError as exc:
    st.error(f"Attack settings: {urlstate.escape_md(exc)}")
    st.stop()

try:
    if dataset == "uploads":
        images = uploaded_set(sel.model_id, sel.device, sel.spec.input_shape)
    else:
        images = pcache.dataset_images(dataset, sel.model_id, int(n), 0, sel.device)
except (ValueError, DatasetUnavailable) as exc:
    st.error(f"{DATASET_LABELS.get(dataset, dataset)}: {urlstate.escape_md(exc)}")
    st.stop()
data = images.data
if len(data) < 5:
    st.warning(f"Only {len(data)} images: a projection needs at least 5.")
    st.stop()

try:
    adv = pcache.adversarial_batch(sel.model_id, images.digest, config, sel.device, data.images, data.labels)
    f_clean = pcache.features(sel.model_id, images.digest, layer, sel.device, data.images, "clean images")
    f_adv = pcache.features(sel.model_id, adv.digest, layer, sel.device, adv.images, "adversarial images")
except ValueError as exc:
    st.error(urlstate.escape_md(exc))
    st.stop()

shown = method
if method == "umap":
    if umap_ready() and umap_error() is not None:
        st.warning(f"UMAP is unavailable on this server ({type(umap_error()).__name__}: {umap_error()}); "
                   "showing PCA.")
        shown = "pca"
    elif not umap_ready():
        warm_umap_in_background()  # idempotent; ends a delayed start
        umap_waiting()
        shown = "pca"
try:
    proj = pcache.projection(f_clean.digest, f_adv.digest, shown, 0, f_clean.values, f_adv.values)
except ValueError as exc:
    st.warning(f"{METHOD_LABELS[shown]} failed ({urlstate.escape_md(exc)}); showing PCA.")
    shown = "pca"
    proj = pcache.projection(f_clean.digest, f_adv.digest, "pca", 0, f_clean.values, f_adv.values)

labels = data.labels
adv_pred = adv.adv_pred
flipped = adv_pred != labels
label_word = "clean-predicted" if data.labels_are_predictions else "true"

map_col, side_col = st.columns([2.6, 1], gap="medium")
with map_col:
    fig = projection_scatter(proj.clean_2d, proj.adv_2d, labels, names, clean_pred=adv.clean_pred,
                             adv_pred=adv_pred, sources=data.sources, segments=segments, height=620,
                             axis_title="PC" if shown == "pca" else METHOD_LABELS[shown])
    fig.update_layout(dragmode="zoom", clickmode="event+select", margin=dict(l=10, r=10, t=44, b=10))
    alpha = float(np.clip(0.35 * math.sqrt(150 / len(data)), 0.08, 0.35))  # many segments: fainter lines
    fig.update_traces(line=dict(color=f"rgba(120, 120, 120, {alpha:.2f})"), selector=dict(mode="lines"))
    fig.data = sorted(fig.data, key=draw_order)  # crosses on top of every cluster, where they landed
    picked, example = picked_point(images.digest, len(data), flipped)
    shown_idx = picked if picked is not None else example
    if shown_idx is not None:
        mark_pair(fig, proj.clean_2d[shown_idx], proj.adv_2d[shown_idx])
    st.plotly_chart(fig, width="stretch", key="pj_map", on_select="rerun", selection_mode="points",
                    config=PLOT_CONFIG)
    st.session_state["_pj_map_seconds"] = time.perf_counter() - started  # script start to map (benchmarks)
    fit = {"pca": "fitted on the clean images; the adversarial ones are projected into the same axes",
           "umap": "fitted on the clean images; the adversarial ones are placed into that map (transform)",
           "tsne": "fitted on clean and adversarial images together (t-SNE has no transform)"}[shown]
    st.caption(
        f"{METHOD_LABELS[shown]} of the `{layer}` activations of {len(data)} {DATASET_LABELS[data.name]} "
        f"(● clean) and their {ATTACK_NAMES[config.attack]} twins (✕, "
        + (f"ε = {rules.eps_text(config.eps, photo, config.attack, 3)}" if config.attack not in MINIMAL_ATTACKS else "minimal L2")
        + f"), coloured by {label_word} class; {fit}. The axes have no units: only distances within the map "
        f"mean something. {flipped.mean() * 100:.0f}% of the labels flipped. Click a legend entry to hide a "
        f"class, drag to zoom, double-click to zoom out, click a point to see its image."
        + (" PCA keeps only the two directions of largest variance: clusters can overlap that are apart in the "
           "full feature space (the numbers below are computed there)." if shown == "pca" else "")
    )
with side_col:
    if picked is None:
        st.markdown("**Click a point** in the map to see that clean image and its adversarial twin here.")
        st.caption(f"Hover shows each point's index, {label_word} and predicted class."
                   + (" An example of a flipped image, ringed in the map:" if example is not None else ""))
    if shown_idx is not None:
        show_point(shown_idx, images, adv, names, sel.model_id, config, photo)
    if picked is not None:
        st.button("Clear the pick", key="pj_clear", on_click=lambda: st.session_state.pop("pj_picked", None))

# ------------------------------------------------------------------------------------------- the numbers
st.subheader("Do the numbers agree with the picture?")
summary = pcache.feature_metrics(f_clean.digest, f_adv.digest, images.digest, adv.digest, f_clean.values,
                                 f_adv.values, labels, adv_pred)
knn_map = pcache.map_agreement(f_clean.digest, f_adv.digest, images.digest, adv.digest, shown, 0, proj.clean_2d,
                               proj.adv_2d, labels, adv_pred)
kf, dist = summary.knn_features, summary.distances
k = kf.k


def pct(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{v * 100:.0f}%"


def flipped_mean(values: np.ndarray) -> float:
    return float(np.mean(values[flipped])) if flipped.any() else float("nan")


m = st.columns(5)
m[0].metric("Labels flipped", f"{flipped.mean() * 100:.0f}%", f"{int(flipped.sum())} of {len(flipped)} images",
            delta_color="off", delta_arrow="off",
            help="adversarial images whose prediction differs from the (true) label")
m[1].metric("Clean: same class", pct(kf.clean_baseline),
            help=f"each clean image's {k} nearest other clean images (features): the share with its own class. "
                 "The baseline: how clean the clusters are.")
m[2].metric("Flipped: old class", pct(flipped_mean(kf.per_point_true)),
            help=f"each flipped adversarial image's {k} nearest clean images (its own source excluded), in feature "
                 "space: the share that has the image's own class")
m[3].metric("Flipped: new class", pct(flipped_mean(kf.per_point_adv)),
            f"{pct(flipped_mean(knn_map.per_point_adv))} in the 2-D map", delta_color="off", delta_arrow="off",
            help=f"the share of those {k} neighbours that belong to the class the model now predicts "
                 f"(features; below: the same count in the {METHOD_LABELS[shown]} map)")
m[4].metric("Distance ratio", "n/a" if not np.isfinite(dist.ratio) else f"×{dist.ratio:.2f}",
            "adversarial ÷ clean", delta_color="off", delta_arrow="off",
            help="median distance from an adversarial feature to the nearest clean one, over the median distance "
                 "between a clean feature and its nearest clean neighbour (features)")
st.caption(
    f"**How to read these.** The three in the middle are shares of the {k} nearest *clean* neighbours, counted in "
    f"the model's feature space at `{layer}` (the 2-D map distorts distances; its own count is under “new class”). "
    f"Clean images sit among their own class ({pct(kf.clean_baseline)}). A flipped adversarial image whose "
    f"neighbours are mostly of the **new** class (here {pct(flipped_mean(kf.per_point_adv))}) sits among the clean "
    "images of the class it is predicted as: the model sees it as one of them, not as an odd version of its old "
    "class. Mostly **old** class would mean the attack crossed a decision boundary without leaving its cluster. "
    "The distance ratio compares how far adversarial images are from the nearest clean image with how far clean "
    "images are from each other: above ×1 they land off the data (the histogram below)."
)

c1, c2 = st.columns(2, gap="large")
with c1:
    st.markdown("**Distance to the nearest clean image** (features)")
    st.plotly_chart(distance_figure(dist), width="stretch",
                    key="pj_dist", config={"displayModeBar": False})
    st.caption(
        f"Blue: each clean image's distance to its nearest *other* clean image; red: each adversarial image's "
        f"distance to the nearest clean image that is not its own source (features at `{layer}`, Euclidean; dashed "
        f"lines: medians). Red to the right of blue (here ×{dist.ratio:.2f}) means adversarial images land where "
        "no clean image lives: in the low-probability pockets that Szegedy et al. (2014) proposed they exploit. "
        "Red on top of blue means they land among ordinary data: a detector looking for outliers would miss them."
    )
with c2:
    g = pcache.growth(sel.model_id, images.digest, adv.digest, sel.device, data.images, adv.images)
    st.markdown("**How the perturbation grows through the layers**")
    st.plotly_chart(layer_growth_figure(g),
                    width="stretch", key="pj_growth", config={"displayModeBar": False})
    m_used = min(len(data), pcache.GROWTH_IMAGES)
    a0, a1 = (float(g.adversarial[0]), float(g.adversarial[-1])) if len(g.layers) else (float("nan"),) * 2
    n0, n1 = (float(g.noise[0]), float(g.noise[-1])) if len(g.layers) else (float("nan"),) * 2
    st.caption(
        f"For each layer, ‖f(x′) − f(x)‖ / ‖f(x)‖: how much its activations change, relative to their size, when "
        f"the clean image x is replaced by its adversarial twin (red) or by random ±ε noise of the same L∞ size "
        f"(grey); mean over {m_used} images, layers in forward order. Here the adversarial change goes from "
        f"{a0:.2f} at the input to {a1:.2f} at the output, the noise from {n0:.2f} to {n1:.2f}. Red bars that "
        "grow while grey ones stay flat mean the network amplifies exactly the direction the attack chose and "
        "damps random ones: the instability of higher layers that Szegedy et al. (2014) pointed out. "
        + ("FGSM and sign noise have the same size at the input, so the first pair of bars starts level."
           if config.attack == "fgsm" else
           "Only the L∞ sizes match: the noise moves every pixel by ε, so it can start taller than the attack.")
    )
