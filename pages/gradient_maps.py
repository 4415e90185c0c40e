"""Gradient maps: where, pixel by pixel, the model is sensitive, on the clean image and on its adversarial twin."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st

from explorer import caching, state, urlstate
from explorer.attack_settings import AttackWidget
from explorer.runs import rules
from explorer.attacks import ATTACK_NAMES, MINIMAL_ATTACKS, AttackConfig, check_config
from explorer.attributions import (
    BASELINES,
    METHODS,
    AttributionConfig,
    alignment,
    candidate_layers,
    default_layer,
    sign_agreement,
    to_display,
)
from explorer.caching import attacks as attack_cache
from explorer.caching import attributions as attr_cache
from explorer.models import ModelUnavailable, Status, availability, get_spec
from explorer.plots.attributions import channel_figure, grid_figure, perturbation_figure
from explorer.urlstate import escape_md as esc

PLOT_CONFIG = {"displayModeBar": False}

# ---------------------------------------------------------------------------------------------- helpers


def short(name: str, n: int = 18) -> str:
    name = name.split(",")[0]
    return name if len(name) <= n else name[: n - 1] + "…"


def attack_controls(photo: bool, class_names: tuple[str, ...], input_shape: tuple[int, ...]) -> AttackConfig:
    """The expander with the shared attack settings (``explorer.attack_settings``): attack, ε, steps, every
    parameter of the attack, and the target; all of them live in the URL."""
    widget = AttackWidget("gm", photo=photo, input_shape=input_shape)
    url_target = state.shared_target(len(class_names))
    state.seed_widget("gm_target", -1 if url_target is None else url_target)
    with st.expander(f"Attack (shared with Attack Studio): {widget.summary()}", expanded=False):
        c1, c2, c3, c4 = st.columns([2, 3, 1.3, 2])
        picked = c4.selectbox("Target class", [-1, *range(len(class_names))], key="gm_target",
                              format_func=lambda t: "none (untargeted)" if t < 0 else f"{t}: {class_names[t]}")
        settings = widget.draw(c1, c2, c3)
        target = None if picked < 0 else int(picked)
        notes = {"deepfool": "DeepFool finds the smallest L2 perturbation that flips the label: ε is not used.",
                 "cw": "Carlini-Wagner minimises the L2 perturbation: ε is not used."}
        default_note = ("ε is the L2 radius of the whole perturbation, not a per-pixel bound."
                        if settings.norm == "l2" else
                        "ε bounds how far each pixel may move (L∞), in the image's [0, 1] units.")
        st.caption(notes.get(settings.attack, default_note)
                   + " These settings live in the URL (`attack`, `eps`, `steps`, `target` and the attack's own "
                     "parameters), shared with Attack Studio.")
    state.write_shared_attack(target=None if target is None else str(target))
    return settings.config(target)


IG_STEPS = (8, 16, 32, 64, 128, 256)
METHOD = urlstate.choice("map", "saliency", tuple(METHODS), what="a known method")
OPTIONS = {p.key: p for p in (
    urlstate.integer("n_samples", 25, 5, 100, step=5),
    urlstate.number("sigma", 0.15, 0.0, 0.5, step=0.01, what="a noise σ from 0 to 0.5 in steps of 0.01"),
    urlstate.choice("ig_steps", 64, IG_STEPS),
    urlstate.choice("baseline", "black", BASELINES),
    urlstate.number("opacity", 0.75, 0.0, 1.0, step=0.05, what="an opacity from 0 to 1 in steps of 0.05"),
)}


def method_controls(model, side: int) -> tuple[str, AttributionConfig, float]:
    """Method picker (URL key ``map``), the method's own parameters, and the maps' opacity: every one of them in
    the URL (explorer.urlstate) while it differs from its default."""
    names = list(METHODS)
    if "gm_method" not in st.session_state and urlstate.raw("map") not in (None, *METHODS):
        st.warning(f"Unknown method {urlstate.shown(urlstate.raw('map'))} in the link; showing saliency.")
        urlstate.forget("map")
    METHOD.seed("gm_method")
    for key, param in OPTIONS.items():
        param.seed(f"gm_{key}")
    cols = st.columns([2.2, 1.4, 1.4, 1.6])
    method = cols[0].selectbox("Attribution method", names, format_func=lambda m: METHODS[m].label, key="gm_method")
    info = METHODS[method]
    cfg = AttributionConfig(method=method)
    shown_opts: dict[urlstate.Param, object] = {METHOD: method}
    if "n_samples" in info.params:
        n = cols[1].slider("Samples n", 5, 100, step=5, key="gm_n_samples",
                           help="noisy copies averaged (cost: n backward passes per map)")
        sigma = cols[2].slider("Noise σ", 0.0, 0.5, step=0.01, key="gm_sigma",
                               help="noise standard deviation as a fraction of the image's range")
        cfg = replace(cfg, n_samples=int(n), sigma=float(sigma))
        shown_opts.update({OPTIONS["n_samples"]: int(n), OPTIONS["sigma"]: round(float(sigma), 4)})
    if "steps" in info.params:
        steps = cols[1].select_slider("Steps", IG_STEPS, key="gm_ig_steps",
                                      help="points on the path from the baseline to the image")
        baseline = cols[2].selectbox("Baseline", BASELINES, key="gm_baseline",
                                     help="black: all zeros; blurred: a Gaussian blur of the image; "
                                          "noise: uniform noise (seed 0)")
        cfg = replace(cfg, steps=int(steps), baseline=baseline)
        shown_opts.update({OPTIONS["ig_steps"]: int(steps), OPTIONS["baseline"]: baseline})
    if "layer" in info.params:
        try:
            layers, default = candidate_layers(model), default_layer(model)
        except ValueError:
            layers, default = [], None
        if layers:
            param = urlstate.choice("layer", default if default in layers else layers[0], layers,
                                    what="a layer of this model")
            param.seed(f"gm_layer_{model.model_id}", notify=False)
            layer = cols[1].selectbox("Layer", layers, key=f"gm_layer_{model.model_id}",
                                      help="a convolutional layer (or a block holding one) under model.net; "
                                           "later layers: more semantic, coarser")
            cfg = replace(cfg, layer=layer)
            shown_opts[param] = layer
    if "window" in info.params:
        top = max(1, side // 2)
        window_p = urlstate.integer("window", max(1, side // 8), 1, top)
        window_p.seed(f"gm_window_{side}", notify=False)
        window = cols[1].slider("Window (px)", 1, top, key=f"gm_window_{side}",
                                help="side of the hidden square, in the model's input pixels")
        stride_p = urlstate.integer("stride", max(1, window // 2), 1, window)
        if window > 1:
            stride_p.seed(f"gm_stride_{side}", notify=False)
            if st.session_state[f"gm_stride_{side}"] > window:
                st.session_state[f"gm_stride_{side}"] = window
            stride = cols[2].slider("Stride (px)", 1, window, key=f"gm_stride_{side}",
                                    help="step between window positions")
        else:
            stride = 1
            cols[2].caption("Stride: 1 px (a 1-pixel window visits every pixel)")
        cfg = replace(cfg, window=int(window), stride=int(min(stride, window)))
        shown_opts.update({window_p: int(window), stride_p: int(min(stride, window))})
    opacity = cols[3].slider("Map opacity", 0.0, 1.0, step=0.05, key="gm_opacity",
                             help="0: only the image, 1: only the map (near-zero values stay see-through)")
    shown_opts[OPTIONS["opacity"]] = round(float(opacity), 4)
    # Options of the other methods leave the URL: the link names only what this view uses.
    unused = {"n_samples", "sigma", "ig_steps", "baseline", "layer", "window", "stride"} - {p.key for p in shown_opts}
    urlstate.forget(*unused)
    urlstate.write(shown_opts)
    return method, cfg, float(opacity)


def tidy(fig):
    """No tick marks on image panels (the theme draws them even without labels)."""
    return fig.update_xaxes(ticks="", showline=False).update_yaxes(ticks="", showline=False)


def card(col, label: str, value: str, note: str) -> None:
    """A metric that wraps long class names (ImageNet) instead of cutting them off."""
    col.caption(label)
    col.markdown(f"#### {value}\n{note}")


def display(raw: np.ndarray, signed: bool, normalize: bool = False) -> np.ndarray:
    """One C x H x W map -> H x W: signed maps summed over channels, magnitudes the max over channels (Simonyan)."""
    return to_display(np.asarray(raw)[None], "signed" if signed else "abs", "sum" if signed else "max",
                      normalize=normalize)[0]


def compare_defaults(current: str, loadable: list[str]) -> list[str]:
    """The current model plus one cheap companion with the same input (the other digits model, ...).

    Only a built-in model whose weights are already here: a default never trains or downloads anything.
    """
    shape = get_spec(current).input_shape
    others = [m for m in loadable if m != current and get_spec(m).input_shape == shape
              and get_spec(m).family == "builtin" and availability(m).status == Status.AVAILABLE]
    return [current] + others[:1]


def scaled_config(cfg: AttributionConfig, side: int, other_side: int, same_model: bool) -> AttributionConfig:
    """The main model's settings for another model: its own default Grad-CAM layer, windows scaled to its size."""
    if same_model:
        return cfg
    out = replace(cfg, layer=None)
    if cfg.window is not None:
        w = max(1, min(other_side, round(cfg.window * other_side / side)))
        s = max(1, min(w, round((cfg.stride or 1) * other_side / side)))
        out = replace(out, window=w, stride=s)
    return out


# ---------------------------------------------------------------------------------------------- page

sel = state.sidebar()
model = caching.require_model(sel.model_id, sel.device, sel.image)
spec = sel.spec
names = spec.class_names
photo = spec.is_photo_model

st.title("Gradient maps")
st.markdown("Where, pixel by pixel, is the model sensitive, and did the attack push there? Maps of the **clean** "
            "image and of its **adversarial** twin, for the **true class** and for the class the label **flips "
            "to**, side by side.")

# ---- labels and the attack (shared with Attack Studio)
clean_probs = caching.probabilities(sel.model_id, sel.digest, sel.device, sel.x[None])[0]
clean_pred = int(clean_probs.argmax())
if sel.label is not None:
    y, y_source = int(sel.label), "the dataset's label for this sample"
else:
    y, y_source = clean_pred, "no dataset label for this image, so the model's prediction on the clean image"

config = attack_controls(photo, names, spec.input_shape)
try:
    check_config(config, len(names), y, input_shape=spec.input_shape)
except ValueError as exc:
    untargeted = replace(config, target=None)
    try:
        check_config(untargeted, len(names), y, input_shape=spec.input_shape)
        config, instead = untargeted, "running it untargeted instead"
    except ValueError:
        config = AttackConfig(attack="fgsm", eps=rules.default_eps("fgsm", photo))
        instead = f"showing untargeted FGSM at ε = {config.eps:.4g} instead"
    st.warning(f"{esc(exc)}; {instead}.")

try:
    with st.spinner(f"Running {ATTACK_NAMES[config.attack]} on {esc(spec.name)}…"):
        result = attack_cache.attack(sel.model_id, sel.digest, y, config, sel.device, sel.x)
except (ValueError, RuntimeError) as exc:
    st.error(f"The attack failed: {esc(exc)}")
    st.stop()
adv = result.adversarial
adv_probs = result.probs
adv_pred = int(adv_probs.argmax())
flipped = adv_pred != y
if flipped:
    flip = adv_pred
else:
    order = [int(i) for i in np.argsort(-adv_probs) if int(i) != y]
    flip = order[0]
adv_digest = result.adv_digest
delta = adv - sel.x

eps_label = "minimal" if config.attack in MINIMAL_ATTACKS else rules.eps_text(config.eps, photo, config.attack, 3)

m1, m2, m3, m4 = st.columns(4)
card(m1, "True class", esc(names[y]), f"{clean_probs[y] * 100:.1f}% on the clean image")
card(m2, "Clean prediction", esc(names[clean_pred]), f"{clean_probs[clean_pred] * 100:.1f}%")
card(m3, f"Adversarial ({ATTACK_NAMES[config.attack]}, ε {eps_label})", esc(names[adv_pred]),
     f"{adv_probs[adv_pred] * 100:.1f}%")
card(m4, "Flip class", esc(names[flip]), ":green[label flipped]" if flipped else ":orange[no flip: the runner-up]")
st.caption(f"True class: {y_source}. Flip class: "
           + ("the adversarial's top prediction." if flipped else
              "the attack did **not** flip the label at this ε, so the maps use the adversarial's runner-up class; "
              "raise ε in the Attack settings to see a flip.")
           + f" Perturbation: L∞ = {float(np.abs(delta).max()):.4f}, L2 = {float(np.sqrt((delta ** 2).sum())):.4f} "
             "(pixel units).")

# ---- method
st.subheader("Maps: clean vs adversarial, true class vs flip class")
method, attr_config, opacity = method_controls(model, max(sel.x.shape[1:]))
info = METHODS[method]
st.markdown(f"**{info.label}** — {info.summary} [{info.paper}]({info.url})")

maps_ok = True
try:
    # SmoothGrad / IG on a photo model is heavy: it runs as a queued job (its status box is drawn here)
    clean_maps = attr_cache.maps_or_job(sel.model_id, sel.digest, (y, flip), attr_config, sel.device, sel.x,
                                        f"{info.label}, clean image", slot="gradient_maps.clean")
    adv_maps = attr_cache.maps_or_job(sel.model_id, adv_digest, (y, flip), attr_config, sel.device, adv,
                                      f"{info.label}, adversarial image", slot="gradient_maps.adversarial")
    maps_ok = clean_maps is not None and adv_maps is not None
except ValueError as exc:
    st.warning(f"{info.label} cannot run on {esc(spec.name)}: {esc(exc)}")
    maps_ok = False

if maps_ok:
    raw = [clean_maps[0], clean_maps[1], adv_maps[0], adv_maps[1]]
    shown = [display(m, info.signed) for m in raw]
    pc, pa = clean_probs, adv_probs
    blank = np.zeros_like(shown[0])  # an all-zero map is see-through: the panel shows the image alone
    titles = [f"clean<br>image<br>{short(names[clean_pred])} ({pc[clean_pred] * 100:.0f}%)",
              f"clean<br>true class<br>{short(names[y])} ({pc[y] * 100:.0f}%)",
              f"clean<br>flip class<br>{short(names[flip])} ({pc[flip] * 100:.0f}%)",
              f"adversarial<br>image<br>{short(names[adv_pred])} ({pa[adv_pred] * 100:.0f}%)",
              f"adversarial<br>true class<br>{short(names[y])} ({pa[y] * 100:.0f}%)",
              f"adversarial<br>flip class<br>{short(names[flip])} ({pa[flip] * 100:.0f}%)"]
    fig = grid_figure([sel.x] * 3 + [adv] * 3, [blank, shown[0], shown[1], blank, shown[2], shown[3]], titles,
                      signed=info.signed, opacity=opacity, cols=3, colorbar_title=info.units, panel_height=300)
    st.plotly_chart(tidy(fig), width="stretch", config=PLOT_CONFIG, key="gm_grid")
    colours = ("Diverging colours centred on zero: **red** raises the class's score, **blue** lowers it, "
               "near-zero values are see-through." if info.signed else
               "Colours run from see-through (≈ 0) through red to pale yellow (largest).")
    st.markdown(f"**How to read it.** {info.reading} {colours} Rows: the clean image and the adversarial "
                "image (what the model sees after the attack); columns: the image, the map for the true class, "
                "the map for the flip class. All four maps share one colour scale "
                f"({info.units}; the bar stops at the 99.5th percentile), so brightness compares across "
                "panels. Percentages: the model's probability for that class on that image.")
    st.caption("Every map explains a class's **logit** (the score before softmax); occlusion measures "
               "probability. Maps are computed on the model's own input "
               f"({sel.x.shape[1]}×{sel.x.shape[2]} pixels) and cached by the image's sha256 digest.")

    if photo and info.per_channel:
        with st.expander("Per-channel view (R, G, B)"):
            panels = ["clean · true class", "clean · flip class", "adversarial · true class",
                      "adversarial · flip class"]
            which = st.radio("Map", panels, horizontal=True, key="gm_channel_panel")
            st.plotly_chart(tidy(channel_figure(raw[panels.index(which)], signed=info.signed)), width="stretch",
                            config=PLOT_CONFIG, key="gm_channels")
            st.caption("The raw attribution of each colour channel on one shared scale: where the model reacts "
                       "to one colour more than the others. The panels above reduce the channels to one value "
                       + ("per pixel by summing them." if info.signed else "per pixel by their maximum |value|."))
    elif photo:
        st.caption(f"{info.label} gives one map per pixel, not per colour channel: no per-channel view.")

    # ---- perturbation vs saliency
    st.subheader("Does the attack push where the gradient is large?")
    grads = attr_cache.maps(sel.model_id, sel.digest, (y, flip), AttributionConfig(method="signed_gradient"),
                            sel.device, sel.x, _label="gradients")
    is_fgsm = config.attack == "fgsm"
    corr = alignment(delta, raw[0])
    agree_true, agree_flip = sign_agreement(delta, grads[0]), sign_agreement(delta, grads[1])

    def fmt(v: float) -> str:
        return f"{v:+.2f}" if np.isfinite(v) else "undefined"

    k1, k2, k3 = st.columns(3)
    k1.metric("Correlation |δ| ~ |map|", "n/a for FGSM" if is_fgsm else fmt(corr),
              help="Pearson correlation over pixels between the perturbation's size and the map's size "
                   "(each the max over channels), for the clean image and the true class.")
    k2.metric("Sign agreement of δ with ∇ true class", fmt(agree_true),
              help=f"mean of sign(δ)·sign(∂ logit / ∂ pixel) of the true class ({esc(names[y])}) over the values "
                   "where both are non-zero: −1 means every changed pixel moved so as to lower the true class")
    k3.metric("Sign agreement of δ with ∇ flip class", fmt(agree_flip),
              help=f"the same with the flip class's ({esc(names[flip])}) gradient: +1 means every changed pixel "
                   "moved so as to raise it")

    signed_delta = display(delta, True, normalize=True)
    signed_grad = display(grads[0], True, normalize=True)
    sign_fig = grid_figure([None, None], [signed_delta, signed_grad],
                           ["perturbation<br>δ (signed)", f"∇ logit of<br>true class<br>{short(names[y])}"],
                           signed=True, cols=2, colorbar_title="relative (sign)", panel_height=300)
    if not is_fgsm:
        map_title = f"|{info.label}|" if info.signed else info.label
        st.plotly_chart(tidy(perturbation_figure(delta, shown[0], correlation=corr,
                                                 saliency_title=f"{map_title}, clean image, true class")),
                        width="stretch", config=PLOT_CONFIG, key="gm_perturbation")
        st.caption("Left: how far the attack moved each pixel (|δ|, max over channels, in [0, 1] pixel units). "
                   "Right: the map's magnitude for the true class on the clean image. A correlation near **+1**: "
                   "the attack spent its budget where the map is large; near **0**: no relation; negative: it "
                   "pushed hardest where the map is small.")
    c1, c2 = st.columns([3, 2], gap="large")
    with c1:
        st.plotly_chart(tidy(sign_fig), width="stretch", config=PLOT_CONFIG, key="gm_signs")
    with c2:
        if is_fgsm:
            st.markdown(
                "**FGSM moves every pixel by exactly ε**, up or down: δ = ε·sign(∇ loss), so |δ| is the same "
                "everywhere (except where clipping to [0, 1] stops a pixel) and a correlation between |δ| and "
                "|saliency| is undefined: the attack does not choose *where* to push, only *which way*.\n\n"
                "So compare **signs** instead. Left: the perturbation (red brightened, blue darkened); right: "
                "the true class's gradient (red: brightening raises the true class). An untargeted attack "
                "lowers the true class, so the two are mostly **opposite** (agreement near −1), and δ "
                "usually agrees with the flip class's gradient (> 0).")
        else:
            st.markdown(
                "**Which way did it push?** Left: the perturbation (red brightened, blue darkened, white "
                "untouched); right: the true class's gradient (red: brightening raises the true class). An "
                "untargeted attack lowers the true class, so its δ mostly **opposes** that gradient "
                "(agreement near −1) and **follows** the flip class's gradient (> 0). Iterative attacks "
                "re-aim at every step, so the agreement with the clean image's gradient is weaker than FGSM's.")
        st.caption("Both panels are scaled to their own 99th percentile (colour bar ±1): only the sign pattern "
                   "is compared. Channels are summed for RGB models.")

# ---- the same image on several models
st.subheader("The same image on several models")
specs = state.visible_specs(sel.model_id)  # built-in models and this session's uploads
loadable = [m for m in specs if availability(m).status in (Status.AVAILABLE, Status.NEEDS_TRAINING)]
missing = [s.name for m, s in specs.items() if m not in loadable]
compare = urlstate.members("models", compare_defaults(sel.model_id, loadable), loadable, most=4)
compare.seed("gm_models", notify=False)
chosen = st.multiselect("Models to compare (2 to 4)", loadable, format_func=lambda m: specs[m].name,
                        max_selections=4, key="gm_models",
                        help="Each model gets the image re-preprocessed to its own input (size, channels).")
urlstate.write({compare: chosen})
if missing:
    st.caption("Not loadable on this machine (see the sidebar for the fix): " + ", ".join(missing) + ".")
if len(chosen) < 2:
    st.info("Pick at least two models to compare their maps of the same image.")
else:
    side = max(sel.x.shape[1:])
    panels_img, panels_map, panels_title, notes = [], [], [], []
    for mid in chosen:
        mspec = specs[mid]
        try:
            caching.get_model(mid, sel.device)
        except (ModelUnavailable, ValueError) as exc:
            notes.append(f"{mspec.name}: skipped ({' '.join(str(exc).split())})")
            continue
        xm, dm = (sel.x, sel.digest) if mid == sel.model_id else caching.model_input(sel.image, mid)
        pm = caching.probabilities(mid, dm, sel.device, xm[None])[0]
        ym = y if mid == sel.model_id else (
            int(sel.label) if sel.label is not None and mspec.class_names == names else int(pm.argmax()))
        cfg_m = scaled_config(attr_config, side, max(xm.shape[1:]), mid == sel.model_id)
        try:
            mm = attr_cache.maps(mid, dm, ym, cfg_m, sel.device, xm, _label=f"{info.label} on {mspec.name}")
        except ValueError as exc:
            notes.append(f"{mspec.name}: skipped ({' '.join(str(exc).split())})")
            continue
        panels_img.append(xm)
        panels_map.append(display(mm[0], info.signed, normalize=True))
        panels_title.append(f"{mspec.name}<br>{short(mspec.class_names[ym])} ({pm[ym] * 100:.0f}%)")
    for note in notes:
        st.caption(note)
    if panels_map:
        st.plotly_chart(tidy(grid_figure(panels_img, panels_map, panels_title, signed=info.signed,
                                         opacity=opacity, cols=min(4, len(panels_map)),
                                         colorbar_title="relative (per model)", panel_height=260)),
                        width="stretch", config=PLOT_CONFIG, key="gm_models_grid")
        st.caption(f"{info.label} of the clean image for each model's true class (the dataset's label where the "
                   "model shares this model's classes, else its own prediction; the percentage is its "
                   "probability). Each map is scaled to its own 99th percentile, since gradients of different "
                   "models have different sizes: compare *where*, not *how much*. Models see the image at their "
                   "own input size.")

st.caption(f"Method: {info.label} — {info.paper}, {info.url}. Attacks and maps are cached per model, image "
           "digest and settings: moving the opacity slider never recomputes.")
