"""Boundaries: a 2-D lab where the whole input space is visible, and 2-D slices through image space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from explorer import caching, state, teaching, urlstate
from explorer.attacks import AttackConfig
from explorer.boundaries import (
    ACTIVATIONS,
    DATASETS,
    PLANE_KINDS,
    AdvTrainConfig,
    MLPConfig,
    SliceConfig,
    ToyDataConfig,
)
from explorer.caching import attacks as attack_cache
from explorer.caching import boundaries as bcache
from explorer.defences.boundaries import SPECKLE_CELLS, grid_speckle_fraction
from explorer.plots.boundaries import (
    add_point_attack,
    margin_histograms,
    profile_figure,
    slice_figure,
    two_panel_figure,
)
from explorer.plots.images import upscale
from explorer.urlstate import escape_md as esc

PLOT_CONFIG = {"displayModeBar": False}
TABS = ("2-D lab", "Slices through image space")

DATASET_NAMES = {"moons": "two moons", "circles": "circles", "xor": "XOR", "spirals": "spirals",
                 "blobs": "Gaussian blobs", "bulge": "bulge (imbalanced)"}
NORM_NAMES = {"linf": "L∞", "l2": "L2"}
PLANE_NAMES = {
    "adversarial/random": "FGSM direction × random",
    "pgd/random": "PGD perturbation × random",
    "random/random": "random × random",
    "gradient/target": "towards a target × away from the true class",
}
ACT_NAMES = {"relu": "ReLU", "tanh": "tanh", "elu": "ELU", "selu": "SELU"}
WIDTHS = (2, 4, 8, 16, 32, 64, 128)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


# ------------------------------------------------------------------------------------ URL-backed widgets
# Every control of the page lives in the URL while it differs from its default (explorer.urlstate).
LAB = {p.key: p for p in (
    urlstate.choice("lab_data", "moons", DATASETS),
    urlstate.number("lab_noise", 0.15, 0.0, 0.5, what="a noise level from 0 to 0.5"),
    urlstate.integer("lab_n", 300, 50, 1000, step=50),
    urlstate.integer("lab_seed", 0, 0, 9999),
    urlstate.integer("lab_depth", 2, 0, 6, what="a depth from 0 to 6"),
    urlstate.choice("lab_width", 32, WIDTHS),
    urlstate.choice("lab_act", "relu", ACTIVATIONS),
    urlstate.choice("lab_wd", 0.0, WEIGHT_DECAYS),
    urlstate.integer("lab_steps", 300, 20, 1000, step=20),
    urlstate.flag("lab_adv", False),
    urlstate.choice("lab_method", "pgd", ("fgsm", "pgd"), what="fgsm or pgd"),
    urlstate.choice("lab_norm", "linf", ("linf", "l2"), what="linf or l2"),
    urlstate.number("lab_eps", 0.3, 0.05, 1.0, step=0.05, what="a multiple of 0.05 from 0.05 to 1"),
    urlstate.integer("lab_point", None, 0, what="a point index"),
    urlstate.flag("lab_smooth", False),
    urlstate.number("lab_sigma", 0.2, 0.05, 1.0, step=0.05, what="a σ from 0.05 to 1 (multiple of 0.05)"),
    urlstate.integer("lab_nsmooth", 32, 4, 128, what="a number of noise draws from 4 to 128"),
)}
SMOOTH = {p.key: p for p in (
    urlstate.flag("slice_smooth", False),
    urlstate.number("slice_sigma", 0.25, 0.05, 1.0, step=0.05, what="a σ from 0.05 to 1 (multiple of 0.05)"),
    urlstate.integer("slice_nsmooth", 16, 4, 64, what="a number of noise draws from 4 to 64"),
)}


def seed(key: str, spec: urlstate.Param, url_key: str | None = None, scale: float = 1.0) -> None:
    """Give widget ``key`` its starting value from the URL (or this session's last value) the first time it is
    drawn, and after its tab was closed (a widget that is not drawn loses its state)."""
    if url_key and url_key != spec.key:
        spec = urlstate.Param(url_key, spec.default, spec.parse, spec.what, spec.encode)
    spec.seed(key, scale)


def write_url(values: dict[str, Any], specs: dict[str, urlstate.Param]) -> None:
    urlstate.write({specs[k]: v for k, v in values.items()})


# ---------------------------------------------------------------------------------------------- 2-D lab
@dataclass(frozen=True)
class LabSettings:
    data: ToyDataConfig
    mlp: MLPConfig
    adv: AdvTrainConfig  # what the displayed network was trained with (method "none" when the toggle is off)
    robust: AdvTrainConfig  # the adversarial training the margin histogram compares against
    adv_on: bool
    norm: str
    eps: float
    smooth: bool = False
    sigma: float = 0.2
    n_smooth: int = 32


def lab_controls() -> LabSettings:
    for key, spec in LAB.items():
        if key != "lab_point":
            seed(key, spec)
    c1, c2, c3, c4 = st.columns([1.1, 1, 1, 1.2], gap="medium")
    with c1:
        st.markdown("**Data**")
        name = st.selectbox("Dataset", DATASETS, format_func=DATASET_NAMES.get, key="lab_data",
                            help="Six classic 2-D problems; every one is scaled into the same square.")
        noise = st.slider("Noise", 0.0, 0.5, step=0.01, key="lab_noise",
                          help="Standard deviation of the Gaussian jitter, in the shape's own units.")
        n = st.slider("Points", 50, 1000, step=50, key="lab_n")
        seed_ = st.number_input("Seed", 0, 9999, step=1, key="lab_seed")
    with c2:
        st.markdown("**Network**")
        depth = st.slider("Hidden layers", 0, 6, key="lab_depth", help="0 is logistic regression: a straight boundary.")
        width = st.select_slider("Units per layer", WIDTHS, key="lab_width")
        act = st.selectbox("Activation", ACTIVATIONS, key="lab_act",
                           format_func=ACT_NAMES.get)
    with c3:
        st.markdown("**Training**")
        wd = st.select_slider("Weight decay", WEIGHT_DECAYS, key="lab_wd", format_func=lambda w: f"{w:g}")
        steps = st.slider("Steps (full batch, Adam)", 20, 1000, step=20, key="lab_steps")
    with c4:
        st.markdown("**Adversary**")
        adv_on = st.toggle("Adversarial training", key="lab_adv",
                           help="Train on a mix of clean points and their attacked versions (Madry et al., 2018).")
        # a lesson link may hide these (hide=lab_method,lab_norm): explorer.teaching.slot
        method = teaching.slot(st, "lab_method").segmented_control(
            "Attack used in training", ("fgsm", "pgd"), format_func=str.upper, key="lab_method", required=True)
        norm = teaching.slot(st, "lab_norm").segmented_control(
            "Norm", ("linf", "l2"), format_func=NORM_NAMES.get, key="lab_norm", required=True,
            help="L∞: a square ball (each coordinate moves ≤ ε). L2: a round ball (Euclidean distance ≤ ε).")
        eps = st.slider("ε (training and the picked point's attack)", 0.05, 1.0, step=0.05, key="lab_eps",
                        help="Radius of the ball, in the units of the axes.")
        smooth = st.toggle("Noise averaging", key="lab_smooth",
                           help="Show the network behind Monte-Carlo noise averaging: the mean of its "
                           "probabilities over n fixed Gaussian copies of each point (σ in the axes' units).")
        if smooth:
            sigma = st.slider("σ (noise)", 0.05, 1.0, step=0.05, key="lab_sigma")
            n_smooth = st.slider("n (noise draws)", 4, 128, step=4, key="lab_nsmooth")
        else:
            sigma, n_smooth = st.session_state.get("lab_sigma", 0.2), st.session_state.get("lab_nsmooth", 32)
    method = method or "pgd"
    norm = norm or "linf"
    write_url({"lab_data": name, "lab_noise": float(noise), "lab_n": int(n), "lab_seed": int(seed_),
               "lab_depth": int(depth), "lab_width": int(width), "lab_act": act, "lab_wd": float(wd),
               "lab_steps": int(steps), "lab_adv": bool(adv_on), "lab_method": method, "lab_norm": norm,
               "lab_eps": float(eps), "lab_smooth": bool(smooth), "lab_sigma": round(float(sigma), 4),
               "lab_nsmooth": int(n_smooth)}, LAB)
    data = ToyDataConfig(name=name, n=int(n), noise=round(float(noise), 4), seed=int(seed_))
    mlp = MLPConfig(depth=int(depth), width=int(width), activation=act, weight_decay=float(wd), steps=int(steps))
    eps = round(float(eps), 4)
    robust = AdvTrainConfig(method, eps, norm)
    return LabSettings(data, mlp, robust if adv_on else AdvTrainConfig(), robust, bool(adv_on), norm, eps,
                       bool(smooth), round(float(sigma), 4), int(n_smooth))


def apply_click(points: np.ndarray) -> None:
    """A point clicked on the figure (last run's selection) becomes the picked index: the nearest training point."""
    event = st.session_state.get("lab_fig")
    try:
        picked = list(event["selection"]["points"]) if event else []
    except (KeyError, TypeError):
        picked = []
    picked = [p for p in picked if p.get("x") is not None and p.get("y") is not None]
    if not picked:
        st.session_state.pop("lab_click", None)  # deselected: clicking the same point again picks it again
        return
    signature = tuple((round(float(p["x"]), 5), round(float(p["y"]), 5)) for p in picked)
    if signature == st.session_state.get("lab_click"):
        return
    st.session_state["lab_click"] = signature
    xy = np.array(signature[0], np.float32)
    st.session_state["lab_point"] = int(np.argmin(((points - xy) ** 2).sum(1)))


def lab_tab() -> None:
    st.caption("This lab trains its own small network on 2-D points: the model and image pickers in the sidebar "
               "belong to the *Slices through image space* tab and do not apply here.")
    cfg = lab_controls()
    data_cfg, mlp_cfg, adv_cfg, norm, eps = cfg.data, cfg.mlp, cfg.adv, cfg.norm, cfg.eps
    try:
        data = bcache.dataset(data_cfg)
        net = bcache.trained(data_cfg, mlp_cfg, adv_cfg)
        g = bcache.lab_grid(data_cfg, mlp_cfg, adv_cfg)
        g_plain = g
        if cfg.smooth:
            g = bcache.smoothed_lab_grid(data_cfg, mlp_cfg, adv_cfg, cfg.sigma, cfg.n_smooth)
    except ValueError as exc:
        st.error(f"Cannot train with these settings: {esc(exc)}")
        return
    n = len(data.x)

    # The picked point: by index, or by clicking a training point on the figure.
    if "lab_point" not in st.session_state:
        seed("lab_point", LAB["lab_point"])
    apply_click(data.x)
    if st.session_state.get("lab_point") is not None and not 0 <= st.session_state["lab_point"] < n:
        st.session_state["lab_point"] = None
    pc1, pc2 = st.columns([1, 3], vertical_alignment="bottom")
    with pc1:
        index = st.number_input(f"Attack one point (index 0–{n - 1})", min_value=0, max_value=n - 1, step=1,
                                key="lab_point", placeholder="click a point, or type an index")
    with pc2:
        st.caption(f"Pick a training point by its index, or **click a point** in either panel. It is attacked "
                   f"inside its {NORM_NAMES[norm]} ball of radius ε = {eps:g}: one FGSM step (orange arrow) and a "
                   f"{bcache.POINT_PGD_STEPS}-step PGD path (purple), both against the network shown.")
    urlstate.write({LAB["lab_point"]: None if index is None else int(index)})

    # one part per line: a Plotly title cannot wrap by itself, and it must hold at 800 px
    title = (f"{DATASET_NAMES[data_cfg.name]} · {mlp_cfg.depth} × {mlp_cfg.width} "
             f"{ACT_NAMES[mlp_cfg.activation]}<br>{bcache.describe_training(adv_cfg)}<br>"
             f"training accuracy {net.accuracy * 100:.1f}%"
             + (f"<br>noise-averaged (σ = {cfg.sigma:g}, n = {cfg.n_smooth})" if cfg.smooth else ""))
    fig = two_panel_figure(g.xs, g.ys, g.prob, g.grad, g.contour, data.x, data.y, every=10, title=title, height=560)
    attack = None
    if index is not None:
        attack = bcache.point_attack(data_cfg, mlp_cfg, adv_cfg, int(index), eps, norm)
        add_point_attack(fig, attack.point, attack.fgsm, attack.pgd, eps, norm,
                         flips=(attack.fgsm_flips, attack.pgd_flips))
    # Clicking selects a point; keep every other point fully visible (Plotly dims unselected points).
    fig.update_traces(unselected=dict(marker=dict(opacity=1.0)), selector=dict(type="scatter"))
    fig.update_traces(marker=dict(size=12), selector=dict(name="picked point"))  # leave the FGSM arrow visible
    # The p(blue) colour bar sits between the panels: move the right panel's y axis to its right-hand side.
    fig.update_layout(legend=dict(orientation="h", y=-0.1, x=0.0), yaxis2=dict(side="right"))
    st.plotly_chart(fig, width="stretch", config=PLOT_CONFIG, key="lab_fig", on_select="rerun",
                    selection_mode="points")
    if attack is not None:
        colour = ("red", "blue")

        def verdict(flips: bool, pred: int) -> str:
            return f"**crosses the boundary** (now {colour[pred]})" if flips else f"stays {colour[pred]}"
        wrong = attack.pred_clean != attack.label
        st.markdown(
            f"Point {int(index)} is **{colour[attack.label]}** at ({attack.point[0]:.2f}, {attack.point[1]:.2f})"
            + (f" and already misclassified as {colour[attack.pred_clean]}" if wrong else "")
            + f". FGSM (one step of ε = {eps:g}) {verdict(attack.fgsm_flips, attack.pred_fgsm)}; "
            f"PGD ({bcache.POINT_PGD_STEPS} steps inside the ball) {verdict(attack.pgd_flips, attack.pred_pgd)}."
        )
    st.caption(
        "**Left:** the training points over the network's probability of *blue* (white = 0.5); the black line is "
        "the decision boundary p = 0.5. **Right:** the direction of ∇ₓ p(blue) on a grid of arrows (shade: "
        "magnitude; grey background: log₁₀|∇p|). Both axes are the raw input coordinates x₁, x₂. FGSM moves "
        "the point one step of ε along sign(∇ₓL) — the corner of the L∞ square the loss grows towards fastest "
        "if the network were linear (Goodfellow et al., 2015); PGD re-measures the gradient at every step and stays "
        "in the ball, so it follows a curved boundary that FGSM overshoots or misses. "
        "The arrows are large only in a thin band around the boundary: far from it the network is saturated."
    )
    if cfg.smooth:
        st.caption(
            f"**Noise averaging on:** the figure shows log(mean over {cfg.n_smooth} fixed Gaussian copies "
            f"(σ = {cfg.sigma:g}) of the network's probabilities), a smoothed classifier; the picked point's attack "
            f"and the margins below are still the plain network's. Speckles (class islands of at most "
            f"{SPECKLE_CELLS} grid cells): {grid_speckle_fraction(g_plain):.2%} of the grid without averaging, "
            f"{grid_speckle_fraction(g):.2%} with it."
        )

    # Margins: standard vs adversarially trained, same data and network.
    st.subheader("Margins: standard vs adversarial training")
    robust_cfg = cfg.robust
    try:
        std = bcache.lab_margins(data_cfg, mlp_cfg, AdvTrainConfig(), norm)
        bcache.trained(data_cfg, mlp_cfg, robust_cfg)
        rob = bcache.lab_margins(data_cfg, mlp_cfg, robust_cfg, norm)
    except ValueError as exc:
        st.error(f"Cannot compute the margins: {esc(exc)}")
        return
    hist = margin_histograms(std.distance, rob.distance, norm=norm, cap=bcache.MARGIN_CAP, eps=eps,
                             names=("standard training", bcache.describe_training(robust_cfg)))
    # panel titles on two lines, so they hold at 800 px (trace names stay one line)
    hist.for_each_annotation(lambda a: a.update(text=a.text.replace(" (", "<br>(")))
    hist.update_xaxes(title_text=f"margin: distance to the boundary ({NORM_NAMES[norm]})")
    st.plotly_chart(hist, width="stretch", config=PLOT_CONFIG, key="lab_margins")
    m1, m2, m3 = st.columns(3)
    m1.metric(f"Mean margin, standard ({NORM_NAMES[norm]})", f"{std.mean:.3f}")
    m2.metric(f"Mean margin, {robust_cfg.method.upper()}-trained", f"{rob.mean:.3f}", f"{rob.mean - std.mean:+.3f}")
    below_std = float(np.mean(std.distance < eps)) * 100
    below_rob = float(np.mean(rob.distance < eps)) * 100
    m3.metric(f"Within ε = {eps:g} of the boundary, {robust_cfg.method.upper()}-trained", f"{below_rob:.0f}%",
              f"{below_rob - below_std:+.0f} pts vs standard", delta_color="inverse")
    st.caption(
        f"The margin of a point is how far it can be pushed along its own attack direction (at the clean point, "
        f"{NORM_NAMES[norm]} units) before the network changes its mind; misclassified points count as 0 and "
        f"distances ≥ {bcache.MARGIN_CAP:g} are piled at the cap. Adversarial training (Madry et al., 2018) "
        f"minimises the loss at the worst point of every ε-ball, so it pushes the boundary out of the balls: "
        f"**watch the margin grow** — mass moves to the right of the red ε line. Switch *Adversarial training* on "
        f"above to see that network's boundary in the figure."
        + ("" if cfg.adv_on else " (The figure above shows the standard network.)")
    )


# ---------------------------------------------------------------------------------------------- slices
def slice_params(photo: bool) -> dict[str, urlstate.Param]:
    if photo:  # URL values are [0, 1] pixel units; the photo sliders show /255
        eps = urlstate.number("slice_eps", 4 / 255, 0.5 / 255, 32 / 255,
                              what="an ε from 0.5/255 to 32/255 (written in [0, 1])")
        ext = urlstate.number("slice_extent", 12 / 255, 1 / 255, 64 / 255,
                              what="an extent from 1/255 to 64/255 (written in [0, 1])")
        res = 21
    else:
        eps = urlstate.number("slice_eps", 0.1, 0.01, 0.5, what="an ε from 0.01 to 0.5")
        ext = urlstate.number("slice_extent", 0.3, 0.05, 1.0, what="an extent from 0.05 to 1")
        res = 41
    return {
        "slice_plane": urlstate.choice("slice_plane", "adversarial/random", PLANE_KINDS),
        "slice_res": urlstate.integer("slice_res", res, 11, 101, step=2, what="an odd whole number from 11 to 101"),
        "slice_eps": eps,
        "slice_extent": ext,
        "slice_target": urlstate.integer("slice_target", None, 0, what="a class index"),
    }


def slices_tab(sel: state.Selection) -> None:
    model = caching.require_model(sel.model_id, sel.device, sel.image)
    names = tuple(str(c) for c in sel.spec.class_names)
    photo = sel.spec.is_photo_model
    kind = "photo" if photo else "small"
    specs = slice_params(photo)
    if st.session_state.get("slice_kind") not in (None, kind):
        # Switched between a digit and a photo model: ε and extent change scale, start from that kind's defaults.
        for key in ("slice_eps", "slice_extent", "slice_res", "slice_target"):
            urlstate.forget(key)
    st.session_state["slice_kind"] = kind
    scale = 255.0 if photo else 1.0
    seed("slice_plane", specs["slice_plane"])
    seed("slice_res", specs["slice_res"])
    seed(f"slice_eps_{kind}", specs["slice_eps"], "slice_eps", scale)
    seed(f"slice_extent_{kind}", specs["slice_extent"], "slice_extent", scale)
    if "slice_target" not in st.session_state:
        seed("slice_target", specs["slice_target"])
        if st.session_state["slice_target"] is not None and st.session_state["slice_target"] >= len(names):
            st.warning(f"slice_target = {st.session_state['slice_target']} in the link is not a class of "
                       f"{esc(sel.spec.name)}; using the runner-up class.")
            st.session_state["slice_target"] = None

    probs = caching.probabilities(sel.model_id, sel.digest, sel.device, sel.x[None])[0]
    pred = int(probs.argmax())
    label = sel.label if sel.label is not None else pred

    c1, c2, c3, c4 = st.columns([1.6, 1, 1, 1], gap="medium")
    with c1:
        kind_ = st.selectbox("Plane", PLANE_KINDS, format_func=PLANE_NAMES.get, key="slice_plane",
                             help="Two directions through the image span the plane; the second is always made "
                             "orthogonal to the first.")
        target = None
        if kind_ == "gradient/target":
            options = [None] + [k for k in range(len(names)) if k != label]
            if st.session_state.get("slice_target") not in options:  # the true class, or another model's class
                st.session_state["slice_target"] = None
            target = teaching.slot(st, "slice_target").selectbox("Target class", options, key="slice_target",
                                  format_func=lambda k: "runner-up (automatic)" if k is None else (
                                      names[k] if names[k] == str(k) else f"{k}: {names[k]}"),
                                  help="Type to search the class names.")
    fmt = (lambda v: f"{v:g}/255") if photo else (lambda v: f"{v:g}")
    tick = " · ticks in 1/255" if photo else ""
    with c2:
        if photo:
            eps_d = st.slider("ε (in /255)", 0.5, 32.0, step=0.5, key=f"slice_eps_{kind}",
                              help="The attack budget: FGSM and PGD end points and the dashed ε box.")
        else:
            eps_d = st.slider("ε", 0.01, 0.5, step=0.01, key=f"slice_eps_{kind}",
                              help="The attack budget: FGSM and PGD end points and the dashed ε box.")
    with c3:
        if photo:
            ext_d = st.slider("Extent (in /255)", 1.0, 64.0, step=1.0, key=f"slice_extent_{kind}",
                              help="Half-width of the plane: each axis runs from −extent to +extent.")
        else:
            ext_d = st.slider("Extent", 0.05, 1.0, step=0.05, key=f"slice_extent_{kind}",
                              help="Half-width of the plane: each axis runs from −extent to +extent.")
    with c4:
        res = st.slider("Resolution (cells per side)", 11, 101, step=2, key="slice_res",
                        help="Odd, so the centre cell is the image itself. Each cell is one forward pass: "
                        "resolution² images." + (" Photo models start at 21 (441 images)." if photo else ""))
    eps = float(eps_d) / scale
    extent = float(ext_d) / scale
    write_url({"slice_plane": kind_, "slice_res": int(res), "slice_eps": eps, "slice_extent": extent,
               "slice_target": target}, specs)

    config = SliceConfig(kind=kind_, extent=round(extent, 6), resolution=int(res), eps=round(eps, 6),
                         pgd_steps=bcache.PGD_STEPS, target=target)
    try:
        sl = bcache.image_slice(sel.model_id, sel.digest, int(label), config, sel.device, sel.x)
    except ValueError as exc:
        st.warning(f"Cannot build this slice: {esc(exc)}")
        return
    if sl is None:
        return  # a heavy slice waits or runs on the server's queue: its status box is drawn above
    r = sl.result
    fg = attack_cache.attack(sel.model_id, sel.digest, int(label), AttackConfig("fgsm", eps=config.eps),
                             sel.device, sel.x)
    pg = attack_cache.attack(sel.model_id, sel.digest, int(label), bcache.pgd_config(config.eps), sel.device, sel.x)
    fg_pred, pg_pred = fg.pred, pg.pred
    off_pgd = sl.off_plane["PGD"]
    markers = {"FGSM": sl.markers["FGSM"],
               ("PGD" if off_pgd < 0.01 else "PGD (projected)"): sl.markers["PGD"]}
    units = "RMS" if kind_ == "gradient/target" else "L∞"
    title = f"{PLANE_NAMES[kind_]} · {res}×{res} cells · ±{fmt(round(ext_d, 3))} ({units})"
    # Photo models: coordinates drawn in 1/255 steps, like the sliders.
    shown = {k: (a * scale, b * scale) for k, (a, b) in markers.items()}
    fig = slice_figure(r.coords * scale, r.pred, names, max_prob=r.max_prob, axis1=sl.plane.axis1 + tick,
                       axis2=sl.plane.axis2 + tick, markers=shown, ball=sl.ball * scale, eps=config.eps * scale,
                       title=title, height=620)
    left, right = st.columns([3, 1], gap="medium")
    with left:
        st.plotly_chart(fig, width="stretch", config=PLOT_CONFIG, key="slice_fig")
    with right:
        def picture(img: np.ndarray, caption: str) -> None:
            big = upscale(img, 150)  # nearest neighbour for 8x8 / 28x28: show it at its own size, unblurred
            st.image(big, width=150 if photo else int(big.shape[1]), caption=caption)

        flip = lambda p: "flips" if p != label else "holds"  # noqa: E731
        at_eps = f"ε = {fmt(round(eps_d, 3))}"
        picture(sel.x, f"original (centre ☆): “{esc(names[pred])}” ({probs[pred] * 100:.0f}%)"
                + (f", true “{esc(names[label])}”" if sel.label is not None and label != pred else ""))
        picture(fg.adversarial,
                f"FGSM ✕, {at_eps}: “{esc(names[fg_pred])}” ({flip(fg_pred)})")
        picture(pg.adversarial,
                f"PGD-{bcache.PGD_STEPS} ◆, {at_eps}: “{esc(names[pg_pred])}” ({flip(pg_pred)})")
    st.caption(
        f"Each cell is one image x + a·d₁ + b·d₂ (pixels clipped to [0, 1]), coloured by the class the model "
        f"predicts for it; hover for the class and its probability. The star at the centre is the original image "
        f"(its cell is the model's own prediction, “{esc(names[r.centre_pred])}”). "
        + (f"Both axes are in L∞ pixel units: a = {fmt(round(eps_d, 3))} means every pixel moved by up to "
           f"{fmt(round(eps_d, 3))} of the [0, 1] pixel range. " if kind_ != "gradient/target" else
           "Gradient directions are not ±1 vectors, so here the axes are in RMS pixel units (L2 / √D). ")
        + "The dashed outline is the part of the L∞ ε-ball that lies in this plane: every point inside it is an "
        "image the attack may produce. The FGSM end point ✕ lies in the plane"
        + (" exactly" if sl.off_plane["FGSM"] < 0.01 else f" only partly ({sl.off_plane['FGSM'] * 100:.0f}% off it)")
        + (f"; the PGD end point ◆ is shown by its projection ({off_pgd * 100:.0f}% of the PGD perturbation points "
           f"out of the plane), so its true class is the one under its image on the right, not necessarily the "
           f"colour under the marker." if off_pgd >= 0.01 else "; so does the PGD end point ◆.")
    )

    smoothed_view(sel, config, sl, names, shown, scale, kind_, label, tick)

    st.subheader("Along one line: Goodfellow's linearity picture")
    n_profile = 41 if photo else 81
    try:
        prof = bcache.profile(sel.model_id, sel.digest, int(label), config.extent, n_profile, 0, True, sel.device,
                              sel.x)
    except ValueError as exc:
        st.warning(f"Cannot compute the profile: {esc(exc)}")
        return
    if prof is None:
        return  # queued: its status box is drawn above
    pfig = profile_figure(prof.t * scale, prof.loss_adv, prof.logits_adv, prof.loss_rand, prof.logits_rand, names,
                          prof.label, height=560)
    if photo:
        pfig.for_each_xaxis(lambda ax: ax.update(title_text=ax.title.text + tick) if ax.title.text else None)
    st.plotly_chart(pfig, width="stretch", config=PLOT_CONFIG, key="slice_profile")
    flip_adv, flip_rand = first_flip(prof.t, prof.logits_adv, pred), first_flip(prof.t, prof.logits_rand, pred)
    D = int(np.prod(sel.x.shape))

    def where(t: float | None) -> str:
        return f"not within ±{fmt(round(ext_d, 3))}" if t is None else f"at |t| = {fmt(round(t * scale, 3))}"

    st.caption(
        "Logits (top) and the cross-entropy loss of the true class (bottom) as the image moves by t along the "
        "adversarial direction sign(∇ₓL) (left) and along a random ±1 direction of exactly the same length "
        "(right); t is in L∞ pixel units, t = 0 is the original. Goodfellow et al. (2015) explain adversarial "
        "examples by *linearity*: along sign(∇ₓL) a tiny change of every pixel, each aligned with the gradient, "
        "adds up over all D pixel values (a logit z moves by about t·‖∇ₓz‖₁), while along a random ±1 "
        f"direction the changes mostly cancel (typically t·‖∇ₓz‖₂: up to √D times less; here D = {D:,}). "
        f"Here the prediction first changes {where(flip_adv)} along sign(∇ₓL) and {where(flip_rand)} along the "
        "random direction."
        + (" With so few pixel values a random direction is not much weaker; on MNIST or an ImageNet model "
           "(D = 784 or 150,528) the gap is far larger." if D < 500 else "")
    )


def smoothed_view(sel: state.Selection, config: SliceConfig, sl, names: tuple[str, ...], shown: dict,
                  scale: float, kind_: str, label: int, tick: str) -> None:
    """The picked model behind Monte-Carlo noise averaging on the same plane, and its speckles before / after."""
    for key, spec in SMOOTH.items():
        seed(key, spec)
    c1, c2, c3 = st.columns([1.4, 1, 1], vertical_alignment="bottom")
    on = c1.toggle("Show the noise-averaged model", key="slice_smooth",
                   help="The picked model behind Monte-Carlo noise averaging: the mean of its probabilities over n "
                   "fixed Gaussian copies of each image (σ in [0, 1] pixel units, pixels clipped to [0, 1]).")
    sigma = c2.slider("σ (noise)", 0.05, 1.0, step=0.05, key="slice_sigma", disabled=not on)
    n = c3.slider("n (noise draws)", 4, 64, step=4, key="slice_nsmooth", disabled=not on)
    write_url({"slice_smooth": bool(on), "slice_sigma": round(float(sigma), 4), "slice_nsmooth": int(n)}, SMOOTH)
    if not on:
        return
    try:
        sm = bcache.smoothed_slice(sel.model_id, sel.digest, int(label), config, sel.device, round(float(sigma), 4),
                                   int(n), sel.x, sl)
    except ValueError as exc:
        st.warning(f"Cannot smooth this slice: {esc(exc)}")
        return
    if sm is None:
        return  # queued: its status box is drawn above
    r = sl.result
    fig = slice_figure(r.coords * scale, sm.pred, names, max_prob=sm.max_prob, axis1=sl.plane.axis1 + tick,
                       axis2=sl.plane.axis2 + tick, markers=shown, ball=sl.ball * scale, eps=config.eps * scale,
                       title=f"The same plane, noise-averaged: σ = {sm.sigma:g}, n = {sm.n_samples}", height=620)
    st.plotly_chart(fig, width="stretch", config=PLOT_CONFIG, key="slice_smooth_fig")
    m1, m2 = st.columns(2)
    m1.metric("Speckle cells: model → noise-averaged", f"{sm.speckles_before:.2%} → {sm.speckles_after:.2%}")
    m2.metric("Class regions: model → noise-averaged", f"{sm.regions_before} → {sm.regions_after}")
    st.caption(
        f"The same cells as the slice above, classified by the noise-averaged model: each cell's image gets the same "
        f"{sm.n_samples} Gaussian copies (σ = {sm.sigma:g}), and their probabilities are averaged. Averaging blurs "
        f"the class map with a Gaussian of width σ, so thin slivers and isolated islands of another class "
        f"(*speckles*) melt into their surroundings. Measured here: speckle cells (class islands of at most "
        f"{SPECKLE_CELLS} cells) are {sm.speckles_before:.2%} of the plane for the model and {sm.speckles_after:.2%} "
        f"for its noise-averaged version; the plane splits into {sm.regions_before} and {sm.regions_after} "
        f"connected class regions. Smoother regions are not robustness: the attack markers are the plain model's, "
        "and the Robustness lab's adaptive (EOT) column shows what an attack on the average achieves."
    )


def first_flip(t: np.ndarray, logits: np.ndarray, pred: int) -> float | None:
    """The smallest |t| at which the prediction along a line differs from ``pred`` (None: never)."""
    changed = np.asarray(logits).argmax(1) != pred
    return float(np.abs(t[changed]).min()) if changed.any() else None


# ------------------------------------------------------------------------------------------------ page
sel = state.sidebar()

st.title("Decision boundaries")
st.markdown(
    "An adversarial example is a point pushed just across a decision boundary. **2-D lab:** train a small network "
    "on 2-D points where the whole input space is visible, attack a point and see adversarial training push the "
    "boundary away. **Slices:** the same picture around a real image — the classifier evaluated on a plane "
    "through the image, spanned by the attack's direction and a random one."
)
tab = st.query_params.get("tab")
if tab and tab not in TABS:
    urlstate.notice("tab", tab, f"one of {', '.join(urlstate.escape_md(t) for t in TABS)}", urlstate.escape_md(TABS[0]))
lab, slices = st.tabs(TABS, key="tab", bind="query-params")
if lab.open:
    with lab:
        lab_tab()
if slices.open:
    with slices:
        slices_tab(sel)
