"""Attack Studio: pick an attack, slide ε, watch the label flip, with the numbers that say why and by how much."""

from __future__ import annotations

import json
import math

import numpy as np
import streamlit as st

from explorer import caching, scrubber, state, teaching
from explorer.attack_settings import AttackWidget
from explorer.attacks import ATTACK_NAMES, check_config, registry
from explorer.attacks.config import max_steps_allowed
from explorer.runs import rules
from explorer.attacks.quantize import to_png_bytes
from explorer.caching import attacks as attack_cache
from explorer.plots.attacks import perturbation_image, short_name, trace_figure
from explorer.plots.images import topk_bars, upscale, upscaled_png_bytes
from explorer.urlstate import escape_md as esc

PLOT_CONFIG = {"displayModeBar": False}
IMG_SIDE = 280
# ---------------------------------------------------------------------------------------------- helpers


def shown(image: np.ndarray, side: int) -> np.ndarray:
    """Crisp nearest-neighbour pixels for small images (8x8, 28x28); photos as they are (the browser scales)."""
    return upscale(image, side if min(image.shape[-2:]) * 2 <= side else 1)


def one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def card(col, label: str, value: str, note: str) -> None:
    """A metric that wraps long class names (ImageNet) instead of cutting them off."""
    col.markdown(f":gray[{label}]\n#### {value}\n{note}")


# ---------------------------------------------------------------------------------------------- page

sel = state.sidebar()
model = caching.require_model(sel.model_id, sel.device, sel.image)
spec = sel.spec
names = spec.class_names
photo = rules.is_photo(spec)
kind = rules.kind_of(photo)
on_gpu = str(getattr(model, "device", "cpu")).startswith("cuda")

st.title("Attack Studio")
st.markdown("Pick an attack, **slide ε and watch the label flip**. ε is the attack's budget: how far it may "
            "move the pixels. Every ε on the slider was computed in one batched sweep, so the slider answers "
            "instantly; the numbers below say why the label flips, and by how much the image changed.")

clean_probs = caching.probabilities(sel.model_id, sel.digest, sel.device, sel.x[None])[0]
clean_pred = int(clean_probs.argmax())
y, y_source = rules.choose_label(sel.label, clean_probs)

# ---- controls ------------------------------------------------------------------------------------------
widget = AttackWidget("as", photo=photo, input_shape=spec.input_shape, mode="sweep")
url_target = state.shared_target(len(names))
state.seed_widget("as_targeted", url_target is not None)
default_target = names.index("vulture") if "vulture" in names else (y + 1) % len(names)
state.seed_widget(f"as_target_{kind}", url_target if url_target is not None else default_target)

with st.container(border=True):
    c1, c2, _ = st.columns([2.2, 1.1, 3.8], vertical_alignment="bottom")
    params_box = st.container()
    t1, t2, t3 = st.columns([1.1, 3, 2], vertical_alignment="bottom")
    settings = widget.draw(c1, t3, c2, params_box,
                           steps_help="Iterations of BIM, PGD, MI-FGSM, APGD and the PGD curve overlaid on FGSM's "
                                      f"chart; DeepFool's iteration cap. This server allows up to "
                                      f"{max_steps_allowed()} (EXPLORER_MAX_STEPS).")
    t1, t2 = teaching.slot(t1, "target"), teaching.slot(t2, "target", "class")  # a lesson may hide the target
    targeted = t1.toggle("Targeted", key="as_targeted",
                         help="Untargeted: any wrong label counts. Targeted: the attack must reach the class you pick.")
    picked = int(t2.selectbox("Target class (type to search)", range(len(names)), key=f"as_target_{kind}",
                              format_func=lambda i: f"{i}: {names[i]}", disabled=not targeted))
attack, steps, eps0, eps_max = settings.attack, settings.steps, settings.eps, settings.eps_max
norm, scale, minimal, aspec = settings.norm, settings.scale, settings.minimal, settings.spec

target = picked if targeted else None
if target is not None and target == y:
    st.warning(f"Target class {target} ({esc(names[target])}) is the true class: pick another class for a targeted "
               "attack; running untargeted instead.")
    target = None

fmt = lambda e: rules.eps_text(e, photo, attack)  # noqa: E731
eps_label = rules.eps_label(attack, photo)

# ---- compute: a cached sweep (gradient attacks) or one cached minimal attack ----------------------------
sw = other_sw = result = None
other = None if minimal else rules.comparison_attack(attack)
overlay = False
if other is not None:
    expensive = other != "fgsm" and photo and not on_gpu
    overlay = st.toggle(f"Overlay {ATTACK_NAMES[other]} on the confidence chart", value=not expensive,
                        key="as_overlay", help=f"A second sweep with {ATTACK_NAMES[other]} on the same grid"
                        + (" (tens of seconds for a photo model on a CPU; cached afterwards)." if expensive else "."))
grid: tuple[float, ...] = ()
try:
    if minimal:
        config = settings.minimal_config(target)
        check_config(config, len(names), y, input_shape=spec.input_shape)
        result = attack_cache.attack(sel.model_id, sel.digest, y, config, sel.device, sel.x)
        eps = eps0  # not used by a minimal attack; kept in the shared link for the other pages
        point = config
    else:
        grid = rules.eps_grid(attack, photo, spec.input_shape, eps_max)
        config = settings.sweep_config(target)
        check_config(config, len(names), y, input_shape=spec.input_shape)
        # a heavy sweep (a photo model) is a queued job shared by every session that asks for it: its status box
        # (queue position, progress, cancel) is drawn here, and the page continues once it is done
        sw = attack_cache.sweep_or_job(sel.model_id, sel.digest, y, config, grid, sel.device, sel.x,
                                       keep_images=not aspec.direction, slot="attack_studio.sweep")
except (ValueError, RuntimeError) as exc:
    st.error(f"The attack cannot run: {one_line(exc)}")
    st.stop()
if not minimal and sw is None:
    st.stop()
other_config = None
if overlay:
    other_config = rules.sweep_config(other, grid[-1], steps=steps,
                                      random_start=settings.values.get("random_start", True),
                                      seed=settings.values.get("seed", 0), target=target)
    try:
        other_sw = attack_cache.sweep_or_job(sel.model_id, sel.digest, y, other_config, grid, sel.device, sel.x,
                                             slot="attack_studio.overlay")
    except (ValueError, RuntimeError) as exc:
        other_sw = None
        st.warning(f"{ATTACK_NAMES[other]} could not run: {one_line(exc)}")
    if other_sw is None:
        other_config = None  # the chart shows the overlay once its job is done

# ---- the summary cards that do not move with ε ----------------------------------------------------------
where_clean = f"{clean_probs[y] * 100:.1f}% on the clean image · {y_source}"
fixed_cards = [
    {"label": "True class", "value": short_name(names[y], 28), "note": where_clean},
    {"label": "Clean prediction", "value": short_name(names[clean_pred], 28),
     "note": f"{clean_probs[clean_pred] * 100:.1f}%"},
]
crisp = "" if photo else ", shown with crisp nearest-neighbour pixels"
images_caption = (f"Left: the image the model sees (its own input, {sel.x.shape[1]}×{sel.x.shape[2]} pixels{crisp}). "
                  "Middle: what the attack added, scaled up so it is visible: mid-grey is no change, brighter pixels "
                  "were brightened, darker ones darkened. Right: the sum, clipped to [0, 1]. Near the flip ε a person "
                  "still sees the original; the model sees another class.")

# ---- the ε scrubber: every frame of the sweep is in the browser; it answers a slider move by itself ----------
if not minimal:
    frames = attack_cache.scrub_frames(sel.model_id, sel.digest, y, config, grid, sel.device, photo, other_config,
                                       sw, other_sw, sel.x, names)
    if sw.flip_eps is not None:
        flip_card = {"label": "Flip ε", "value": fmt(sw.flip_eps),
                     "note": f"{short_name(names[y])} → {short_name(names[sw.flip_class])} (refined by bisection)"}
    else:
        flip_card = {"label": "Flip ε", "value": "none", "note": f"no flip up to {fmt(grid[-1])}: widen the ε range"
                     + (" or try PGD" if attack == "fgsm" else "")}
    i = scrubber.scrub(frames, key=f"as_scrub_{scale}_{eps_max:.6g}", index=sw.nearest(eps0),
                       cards=[*fixed_cards, flip_card],
                       text={"slider_label": eps_label + " · drag, click the chart, or ← → Home End",
                             "summary": registry.get(attack).summary,
                             "orig_caption": f"original: “{short_name(names[clean_pred])}” "
                                             f"({clean_probs[clean_pred] * 100:.1f}%)"})
    eps = float(sw.eps[i])
    point = rules.point_config(config, eps)
    st.caption(images_caption + " Top five: the most likely classes, probability in %; red is the true class ("
               f"{esc(short_name(names[y]))}), watch its bar shrink as ε grows.")
    goal = f"the target {esc(short_name(names[sw.flip_class]))}" if target is not None else \
        f"the class it flips to ({esc(short_name(names[sw.flip_class if sw.flip_class is not None else y]))})"
    compare = ""
    if other_sw is not None:
        compare = (f" Dashed purple: the true class under {ATTACK_NAMES[other]} on the same grid; an iterative attack "
                   "usually needs a smaller ε than one FGSM step, because it re-aims after every step.")
    elif attack == "pgd-l2":
        compare = " No FGSM/PGD overlay here: their ε is an L∞ bound, not an L2 radius, so the axes would not match."
    st.caption(f"Chart: blue is the probability of the true class ({esc(short_name(names[y]))}); red the probability "
               f"of {goal}; dotted grey (right axis) the logit margin, positive while the attack has not succeeded. "
               "The label flips where the margin crosses zero (red dashed line, found on the grid and refined by "
               f"bisection); the green line is the slider's ε. Hover for the numbers, click to jump.{compare}")

# ---- shared URL state (read by Gradient maps) ----------------------------------------------------------
shared_eps = f"{eps:.6g}"
state.write_shared_attack(attack=attack, eps=shared_eps, steps=str(steps),
                          target=None if target is None else str(target))
st.session_state["as_last"] = (shared_eps, scale)

# ---- the adversarial at this ε ------------------------------------------------------------------------
if minimal:
    adv = result.adversarial
    adv_probs = result.probs
else:
    adv = sw.image_at(sel.x, eps)
    adv_probs = sw.probs[i]
adv_pred = int(np.argmax(adv_probs))
success = adv_pred == target if target is not None else adv_pred != y
delta = adv - sel.x
adv_digest = result.adv_digest if minimal else sw.image_digest_at(sel.x, eps)
checks = attack_cache.point_checks(sel.model_id, sel.digest, adv_digest, y, target, rules.noise_seed(point),
                                   sel.device, sel.x, adv)
m = checks.metrics

# ---- a minimal attack (no ε): its one result, drawn by the server ----------------------------------------
if minimal:
    found = (f"L2 = {m.l2:.4f}, L∞ = {m.linf:.4f}" + (f" ({m.linf * 255:.2f}/255)" if photo else ""))
    if success:
        st.info(f"{ATTACK_NAMES[attack]} {registry.get(attack).summary} It has no ε slider: the smallest "
                f"perturbation it found is {found}.")
    else:
        st.warning(f"{ATTACK_NAMES[attack]} {registry.get(attack).summary} It did **not** reach its goal ("
                   + ("the target class" if target is not None else "a different label")
                   + f") with these settings: the perturbation it ended with is {found}. Try "
                   + ("more Adam steps, a larger c" if attack == "cw" else "more steps, a larger overshoot") + ".")
    k1, k2, k3, k4 = st.columns(4)
    for col, c in zip((k1, k2), fixed_cards):
        card(col, c["label"], esc(c["value"]), esc(c["note"]))
    verdict = (f":red[reached the target {esc(short_name(names[target]))}]" if target is not None and success else
               ":orange[target not reached]" if target is not None else
               ":red[label flipped]" if success else ":green[still the true class]")
    card(k3, "Adversarial prediction", esc(short_name(names[adv_pred], 28)),
         f"{adv_probs[adv_pred] * 100:.1f}% at minimal perturbation · {verdict}")
    card(k4, "Smallest perturbation found" if success else "Perturbation (goal not reached)", f"L2 {m.l2:.3f}",
         f"L∞ {m.linf:.4f}" + (f" = {m.linf * 255:.1f}/255" if photo else "") + " · no ε budget")
    pert, amp = perturbation_image(delta)
    i1, i2, i3 = st.columns(3, gap="medium")
    i1.image(shown(sel.x, IMG_SIDE), width=IMG_SIDE,
             caption=f"original: “{esc(short_name(names[clean_pred]))}” ({clean_probs[clean_pred] * 100:.1f}%)")
    i2.image(shown(pert, IMG_SIDE), width=IMG_SIDE,
             caption=f"perturbation δ, amplified ×{amp:.1f} (grey = unchanged, max |δ| = {m.linf:.4f})")
    i3.image(shown(adv, IMG_SIDE), width=IMG_SIDE,
             caption=f"adversarial: “{esc(short_name(names[adv_pred]))}” ({adv_probs[adv_pred] * 100:.1f}%)")
    st.caption(images_caption)

    def bars(probs: np.ndarray, title: str):
        """Top-5 bars with room on the right for the percentages."""
        return topk_bars(probs, [short_name(n) for n in names], 5, title, highlight=y).update_xaxes(range=[0, 112])

    b1, b2 = st.columns(2, gap="large")
    b1.plotly_chart(bars(clean_probs, "Clean image:<br>top 5"), width="stretch", config=PLOT_CONFIG,
                    key="as_top_clean")
    b2.plotly_chart(bars(adv_probs, "Adversarial (minimal perturbation):<br>top 5"), width="stretch",
                    config=PLOT_CONFIG, key="as_top_adv")
    st.caption(f"The five most likely classes, probability in %. Red: the true class ({esc(short_name(names[y]))}).")

# ---- metrics ------------------------------------------------------------------------------------------
st.subheader("How big is the change?")
q1, q2, q3, q4 = st.columns(4)
q1.metric("L∞ (largest pixel change)", f"{m.linf * 255:.2f}/255" if photo else f"{m.linf:.4f}",
          help=f"max over pixels of |δ| = {m.linf:.5f} in [0, 1] pixel units"
               + (" (k/255: in steps of an 8-bit image)" if photo else ""))
q2.metric("L2 (length of δ)", f"{m.l2:.4f}", help="√(Σ δ²) over every pixel and channel, pixel units")
q3.metric("PSNR", "∞ dB" if math.isinf(m.psnr) else f"{m.psnr:.1f} dB",
          help="10·log10(1 / mean δ²): above about 35 dB a change is hard to see")
q4.metric("SSIM", f"{m.ssim:.4f}", help="structural similarity (1 = identical), Wang et al. 2004")
st.caption("L∞ is what an L∞ attack's ε bounds; L2 is what DeepFool, Carlini-Wagner and PGD (L2) keep small. "
           "PSNR and SSIM say how visible the change is: a high PSNR and an SSIM near 1 mean a person would "
           "hardly notice it.")

# ---- noise baseline and 8-bit check -------------------------------------------------------------------
n1, n2 = st.columns(2, gap="large")
nb, e8 = checks.noise, checks.eight_bit
with n1:
    st.markdown("**Random noise of the same size**")
    ni, nt = st.columns([1, 2.2])
    noisy = nb.images[0]
    ni.image(shown(noisy, 140), width=140,
             caption=f"noise: “{esc(short_name(names[int(nb.pred[0])]))}” ({nb.probs[0][int(nb.pred[0])] * 100:.1f}%)")
    moved = int(round(nb.flip_rate * len(nb.pred)))
    nt.markdown(f"Each pixel moved by ±{nb.eps:.4g} at random (the attack's L∞ size), {len(nb.pred)} draws: "
                f"the label moved in **{moved} of {len(nb.pred)}**; p({esc(short_name(names[y]))}) is "
                f"**{np.mean(nb.true_prob) * 100:.1f}%** on average, against **{adv_probs[y] * 100:.1f}%** after "
                "the attack.")
    st.caption("Same size, random direction: noise barely moves the label. It is the attack's *direction*, "
               "computed from the model's gradient, that fools it.")
with n2:
    st.markdown("**8-bit check: does the flip survive saving as a PNG?**")
    p8 = int(e8.pred_8bit[0])
    if not success:
        verdict8 = "there is no flip to keep at this ε."
    elif bool(e8.survives[0]):
        verdict8 = ":green[**the flip survives saving.**]"
    else:
        verdict8 = ":orange[**the flip does not survive saving**]: rounding to 8 bits undid it."
    st.markdown(f"Rounded to whole 1/255 steps (each pixel moves by at most {float(e8.max_change[0]):.4f}), the "
                f"adversarial is classified “**{esc(short_name(names[p8]))}**” ({e8.probs_8bit[0][p8] * 100:.1f}%): "
                f"{verdict8}")
    st.caption("An attack works in 32-bit floats; an image file stores 8 bits per channel. Perturbations that sit "
               "just past the decision boundary (DeepFool, Carlini-Wagner, ε right at the flip) can be undone "
               "by that rounding.")

# ---- per-step trace -----------------------------------------------------------------------------------
if attack != "fgsm":
    st.subheader("Step by step")
    try:
        run = result if minimal else attack_cache.attack(sel.model_id, sel.digest, y, point, sel.device, sel.x)
    except (ValueError, RuntimeError) as exc:
        run = None
        st.warning(f"The per-step trace could not be computed: {one_line(exc)}")
    if run is not None and run.trace is not None and run.trace.steps:
        loss_title = "CW objective ‖δ‖² + c·margin" if attack == "cw" else (
            "cross-entropy to the target" if target is not None else "cross-entropy of the true class")
        st.plotly_chart(trace_figure(run.trace.loss[:, 0], run.trace.margin[:, 0], loss_title), width="stretch",
                        config=PLOT_CONFIG, key="as_trace")
        where_run = "this run" if minimal else f"one run of {ATTACK_NAMES[attack]} at ε = {fmt(eps)}"
        extra = (" Carlini-Wagner restarts its optimisation for each value of c in its binary search, so the curve "
                 "has one segment per round." if attack == "cw" else "")
        st.caption(f"Each step of {where_run}: the loss the attack "
                   + ("descends" if target is not None else "climbs")
                   + " (left axis) and the logit margin (right axis, red), which crosses zero when the attack "
                   f"succeeds.{extra}")

# ---- downloads ----------------------------------------------------------------------------------------
st.subheader("Keep this result")
inputs = rules.RunInputs(model_id=sel.model_id, image_name=sel.image.name, image_id=sel.image.sample_id,
                         digest=sel.digest, label=y, label_source=y_source)
record = rules.run_record(inputs, point, names, clean_probs, adv_probs, m, e8, nb,
                          flip_eps=None if sw is None else sw.flip_eps, success=success)
stem = f"{sel.model_id}-{(sel.image.sample_id or 'upload').replace(':', '')}-{attack}" + \
    ("" if minimal else f"-eps{eps:.4g}")
small = min(adv.shape[1:]) < 224  # digits: the model's own 8x8 or 28x28 file, and a view to look at
d1, d2, d3 = st.columns([1, 1, 3])
# the files are made when a button is clicked (deferred: a slider move encodes nothing)
d1.download_button(f"Adversarial PNG ({adv.shape[2]}×{adv.shape[1]})" if small else "Adversarial PNG",
                   lambda a=adv: to_png_bytes(a), file_name=f"{stem}.png", mime="image/png",
                   key="as_png", icon=":material/download:", on_click="ignore",
                   help="The image at the model's own resolution: what the model saw.")
if small:
    d1.download_button("Upscaled view (PNG)", lambda a=adv: upscaled_png_bytes(a), file_name=f"{stem}-view.png",
                       mime="image/png", key="as_png_view", icon=":material/zoom_in:", on_click="ignore",
                       help="The same pixels enlarged (nearest neighbour, crisp squares) to look at or print; "
                            "not an input for the model.")
d2.download_button("Run record (JSON)", lambda r=record: json.dumps(r, indent=2), file_name=f"{stem}.json",
                   mime="application/json", key="as_json", icon=":material/data_object:", on_click="ignore")
d3.caption("The PNG is the 8-bit image of the check above. The JSON record holds the model, the image's "
           "sha256 digest, the attack and its parameters, the seed, the labels and the probabilities; the "
           "command below reproduces this result from the command line"
           + ("." if sel.image.sample_id else " (with your image file in place of IMAGE.png)."))
if sel.model_id.startswith("user:"):
    st.caption("**This command cannot rerun this result as it stands:** your uploaded model lives only in this "
               "browser session, and the command line loads the built-in and torchvision models by name. The "
               "record (JSON) keeps every setting and the model's name for your own notes.")
st.code(record["command"], language="bash", wrap_lines=True)
paper, url = registry.get(attack).paper, registry.get(attack).url
st.caption(f"{ATTACK_NAMES[attack]}: [{paper}]({url}). Sweeps and attacks are cached per model, image digest and "
           "settings: moving the ε slider never recomputes them.")
