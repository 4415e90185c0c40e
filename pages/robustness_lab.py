"""Robustness lab: accuracy against ε over a whole test set, a transfer matrix, and checks that the number is real."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

import streamlit as st

from explorer import state
from explorer.attacks import ATTACK_NAMES, ATTACKS
from explorer.caching import defences as defcache
from explorer.caching import lab
from explorer.config import get_settings
from explorer.defences.evaluate import HIDDEN_NOT_ROBUST
from explorer.evaluation.checks import CHECKS, run_checks
from explorer.evaluation.data import FULL_SIZE, SET_LABELS
from explorer.evaluation.report import (
    WORST,
    check_dicts,
    curve_rows,
    eps_label,
    skipped_pairs,
    to_csv,
    to_json,
    transfer_rows,
)
from explorer.models import ModelUnavailable, availability, get_spec, list_specs
from explorer.models.data import find_mnist
from explorer.plots.images import upscale
from explorer.plots.defences import ensemble_vs_n_figure, three_way_figure
from explorer.plots.lab import accuracy_figure, transfer_figure
from explorer.runs.defences import MAX_EOT, ThreeWayRequest, is_evaluable_defence
from explorer.runs.evaluate import EvaluateRequest, default_attacks, eps_grid, transfer_for

QUICK_N = 60  # the first look at a large set: a small N within seconds, then the whole set
DEFAULT_MODELS = {"digits": ("digits-cnn", "digits-mlp", "digits-softmax"),
                  "mnist": ("mnist-cnn", "mnist-mlp", "mnist-softmax"),
                  "photos": ("resnet18", "mobilenet_v3_large"), "uploads": ()}
EPS_MAX = {"digits": 0.35, "mnist": 0.35, "photos": 8 / 255, "uploads": 0.35}
DEFAULT_N = {"digits": 360, "mnist": 500, "photos": 16, "uploads": 2000}
CURVE_ATTACKS = tuple(a for a in ATTACKS if a not in ("deepfool", "cw"))
PLOT_CONFIG = {"displayModeBar": False}

state.page_chrome()
st.title("Robustness lab")
st.markdown(
    "How robust is a model over a **whole test set**, at every ε, against the **strongest** of several attacks? "
    "Do adversarials made on one network fool another? Is the number real, or an artefact of a weak attack? "
    "Curves show robust accuracy (a sample counts only if the clean image is right and the attack fails) with "
    "95% Clopper–Pearson bands; the bold line is the worst case over the chosen attacks."
)

# ------------------------------------------------------------------------------------------------ inputs
datasets = ["digits"] + (["mnist"] if find_mnist() is not None else []) + ["photos", "uploads"]
wanted = state.query("dataset", "digits")
state.seed_widget("lab_dataset", wanted if wanted in datasets else "digits")
c1, c2, c3 = st.columns([1.2, 2.4, 1.6])
dataset = c1.selectbox("Images", datasets, key="lab_dataset",
                       format_func=lambda d: SET_LABELS.get(d, "your images (files or a zip)"),
                       help="Digits are always here (offline). MNIST when it is on this machine. Photos: the "
                            "sample photos for ImageNet models. Uploads: your own images, scored against each "
                            "model's clean prediction.")
state.set_query(dataset=dataset)


def _fits(spec) -> bool:
    shape = tuple(spec.input_shape)
    return {"digits": shape == (1, 8, 8), "mnist": shape == (1, 28, 28), "photos": shape[0] == 3}.get(dataset, True)


specs = [s for s in list_specs() if _fits(s) and availability(s.id).loadable]
ids = [s.id for s in specs]
names = {s.id: s.name for s in specs}
url_models = [m for m in (state.query("models") or "").split(",") if m in ids]
state.seed_widget(f"lab_models_{dataset}", url_models or [m for m in DEFAULT_MODELS[dataset] if m in ids] or ids[:1])
models = c2.multiselect("Models", ids, key=f"lab_models_{dataset}", format_func=lambda m: f"{names[m]} ({m})",
                        max_selections=8, help="Several at once; they must take the same input size.")
url_attacks = [a for a in (state.query("attacks") or "").split(",") if a in CURVE_ATTACKS]
state.seed_widget("lab_attacks", url_attacks or list(default_attacks()))
attacks = c3.multiselect("Attacks", CURVE_ATTACKS, key="lab_attacks", format_func=lambda a: ATTACK_NAMES.get(a, a),
                         help="Untargeted, L∞. A sample is robust in the worst case only if every attack fails.")
photo = dataset == "photos"
d1, d2, d3, d4, d5 = st.columns(5)
cap = get_settings().max_n
full = min(FULL_SIZE.get(dataset, DEFAULT_N[dataset]), cap)
url_n = state.query("n")
state.seed_widget(f"lab_n_{dataset}", min(int(url_n) if (url_n or "").isdigit() and int(url_n) >= 1 else
                                          DEFAULT_N[dataset], max(full, 1)))
n = int(d1.number_input("N (images)", 1, max(full, 1), key=f"lab_n_{dataset}",
                        help=f"The first N held-out images (at most {full} here)."))
if photo:
    top = d2.slider("ε max (k/255)", 1.0, 32.0, value=8.0, step=1.0, key="lab_top_photo") / 255
else:
    top = d2.slider("ε max", 0.05, 1.0, value=EPS_MAX[dataset], step=0.05, key="lab_top")
points = int(d3.number_input("ε points", 2, 10_000, value=8, key="lab_points",
                             help=f"The grid: evenly spaced from 0 to ε max (this server allows up to "
                                  f"{get_settings().max_eps_points})."))
steps = int(d4.number_input("Steps", 1, 200, value=10, key="lab_steps", help="of PGD, BIM, MI-FGSM, APGD-CE"))
seed = int(d5.number_input("Seed", 0, 10_000, value=0, key="lab_seed", help="random starts"))
state.set_query(models=",".join(models), attacks=",".join(attacks), n=str(n))

upload_set = None
if dataset == "uploads":
    files = st.file_uploader("Images or a zip of a folder", accept_multiple_files=True, key="lab_uploads",
                             type=["png", "jpg", "jpeg", "webp", "bmp", "gif", "zip"])
    if not files:
        st.info("Upload a few images (or a zip) to evaluate the chosen models on them.")
        st.stop()
    if not models:
        st.warning("Choose at least one model.")
        st.stop()
    upload_set, problems = lab.register_uploads([(f.name, f.getvalue()) for f in files], models[0])
    if problems:
        more = f"\n- … and {len(problems) - 10} more" if len(problems) > 10 else ""
        st.warning(f"{len(problems)} file(s) not used:\n" + "\n".join(f"- {p}" for p in problems[:10]) + more)
    if upload_set is None:
        st.error("No usable image in the upload: nothing to evaluate.")
        st.stop()
    st.caption(f"Your images are converted to {models[0]}'s input; chosen models that take another size are "
               "skipped (and say so).")

if not models or not attacks:
    st.warning("Choose at least one model and one attack.")
    st.stop()

ex_name = st.sidebar.radio("Run on", ["local", "ray"], key="lab_executor", horizontal=True,
                           help="local: this server's process. ray: a Ray cluster (RAY_ADDRESS) or a local Ray.")
_, warning = lab.executor(ex_name)
if warning:
    st.sidebar.warning(warning)

grid = eps_grid(top, points)
request = EvaluateRequest(models=tuple(models), attacks=tuple(attacks), eps=grid,
                          dataset=upload_set or dataset, n=n, seed=seed, steps=steps)
try:
    request.validate()
except ValueError as exc:
    st.error(str(exc))
    st.stop()

# ------------------------------------------------------------------------------------------------ results
curves_box = st.empty()  # the first look, cleared once the whole set is done
ev = None
try:
    if not lab.is_ready(request) and n > QUICK_N:
        quick = replace(request, n=QUICK_N, probe=False)  # the first look: curves only, the checks follow
        ev_quick = lab.evaluate(quick, ex_name)
        with curves_box.container():
            st.caption(f"First look on {QUICK_N} images; the whole set of {n} is being computed below…")
            st.plotly_chart(accuracy_figure(ev_quick, photo), width="stretch", config=PLOT_CONFIG, key="quick_curves")
    ev = lab.evaluate(request, ex_name)
except (ValueError, ModelUnavailable) as exc:
    st.error(str(exc).splitlines()[0])
    st.stop()
if ev is None:
    st.stop()  # queued or running: its status box is drawn above, and the page reruns when it is done
curves_box.empty()

for m, why in ev.skipped:
    st.warning(f"{m} was skipped: {why}.")
left, right = st.columns([3, 2])
with left:
    st.subheader("Accuracy against ε")
    event = st.plotly_chart(accuracy_figure(ev, photo), width="stretch", config=PLOT_CONFIG, key="curves",
                            on_select="rerun", selection_mode="points")
    clean = ", ".join(f"{m} {a * 100:.1f}%" for m, a in zip(ev.models, ev.clean_accuracy()))
    st.caption(f"{ev.dataset_label}, N = {ev.n}; clean accuracy: {clean}. Shaded: 95% Clopper–Pearson band. "
               "Iterative attacks count a sample fooled at a smaller ε as fooled at every larger ε (its adversarial "
               "lies inside every larger ε-ball: that is what robust accuracy at ε means), so their curves never "
               "rise. Dotted steps: the curve read off each sample's flip ε (bisection between grid points); where "
               "FGSM's leaves its markers, a larger ε failed on a sample a smaller ε fooled. Click a point for its "
               "failing images.")

# transfer matrix
with right:
    st.subheader("Transfer matrix")
    tr = None
    t_attack_default = transfer_for(request).attack
    ta, te = st.columns(2)
    t_attack = ta.selectbox("Attack", attacks, index=attacks.index(t_attack_default), key="lab_t_attack",
                            format_func=lambda a: ATTACK_NAMES.get(a, a))
    t_eps = te.select_slider("ε", options=list(grid), value=transfer_for(request).eps, key="lab_t_eps",
                             format_func=lambda e: eps_label(e, photo))
    try:
        tr = lab.transfer(transfer_for(request, eps=t_eps, attack=t_attack), ex_name)
    except (ValueError, ModelUnavailable) as exc:
        st.error(str(exc).splitlines()[0])
    if tr is not None:
        t_event = st.plotly_chart(transfer_figure(tr), width="stretch", config=PLOT_CONFIG, key="matrix",
                                  on_select="rerun", selection_mode="points")
        st.caption(f"Accuracy of each column's model on {ATTACK_NAMES.get(tr.attack, tr.attack)} adversarials made "
                   f"white-box on each row's model at ε = {eps_label(tr.eps, photo)} (◆ outlined: white-box). "
                   "Szegedy et al. (2014): adversarials transfer, and the shallow softmax model resists transfers "
                   "from deep ones. Click a cell for its failing images.")
        if tr.skipped:
            st.info("Blank cells are skipped pairs:\n" + "\n".join(f"- {line}" for line in skipped_pairs(tr)))
    else:
        t_event = None


# ------------------------------------------------------------------------------------------ failing images
def _studio_link(model: str, sample_id: str, attack: str, eps: float) -> str:
    q = {"model": model, "image": sample_id, "attack": attack, "eps": f"{eps:.6g}", "steps": str(steps)}
    return "attack_studio?" + urlencode(q, safe=":/")


def _show(items, model: str, link_model: str, eps: float, title: str, note: str = "") -> None:
    """Failing images ``(sample, adversarial class, image, attack)`` of ``model``; each links to Attack Studio
    with the model that made the adversarial (``link_model``), the image, the attack and ε."""
    st.markdown(f"**{title}**")
    if not items:
        st.caption("No failing image here: every image the model gets right survives this attack.")
        return
    cols = st.columns(min(len(items), 6))
    classes = get_spec(model).class_names
    for col, (idx, adv_cls, img, attack) in zip(cols, items):
        true = int(ev.labels[ev.model_index(model), idx]) if model in ev.models else -1
        col.image(upscale(img, 112), caption=f"#{idx}: {classes[true] if true >= 0 else '?'} → {classes[adv_cls]}"
                  + (f" · {ATTACK_NAMES.get(attack, attack)}" if len(ev.attacks) > 1 else ""), clamp=True)
        sid = ev.sample_ids[idx] if idx < len(ev.sample_ids) else ""
        if sid:
            col.markdown(f"[Open in Attack Studio]({_studio_link(link_model, sid, attack, eps)})")
    if note:
        st.caption(note)


picked = (event.selection.points if event and event.selection else []) if event else []
if picked and picked[0].get("customdata"):
    model, attack, k = picked[0]["customdata"][:3]
    k = int(k)
    items = (ev.failing_by_attack(model, k) if attack == "worst"
             else [(*it, attack) for it in ev.failing(model, attack, k)])
    _show(items, model, model, float(ev.eps[k]),
          f"{model} · {WORST if attack == 'worst' else attack} at ε = {eps_label(float(ev.eps[k]), photo)}: "
          "failing images", "An image fooled at a smaller ε of the grid counts at every larger ε (its adversarial "
          "lies inside every larger ε-ball); the link runs the attack at this ε.")
t_picked = (t_event.selection.points if t_event and t_event.selection else []) if t_event else []
if tr is not None and t_picked and t_picked[0].get("customdata"):
    s, t = t_picked[0]["customdata"][:2]
    if s in tr.models and t in tr.models:
        _show([(*it, tr.attack) for it in tr.failing(s, t)], t, s, tr.eps,
              f"{tr.attack} adversarials made on {s} that fool {t}",
              f"The links open {s} (the model the adversarial was made on) with the image, attack and ε.")

# ------------------------------------------------------------------------------------------------- checks
st.subheader("Is the number real?")
checks = run_checks(ev, tr)
icon = {"pass": "PASS", "warn": "WARN", "skip": "n/a"}
st.dataframe([{"status": icon[c["status"]], "model": c["model"], "check": CHECKS[c["check"]], "why": c["message"]}
              for c in check_dicts(checks)], hide_index=True, width="stretch")
st.caption("Athalye et al. (2018) found 7 of 9 defences relied on obfuscated gradients; these checks (after "
           "AutoAttack's flags) catch the usual signs. A warning means: do not trust the curve before fixing it.")

# ------------------------------------------------------------------------------------------------ numbers
with st.expander("Numbers (table, CSV, JSON)"):
    rows = curve_rows(ev)
    st.dataframe(rows, hide_index=True, width="stretch")
    b1, b2, b3 = st.columns(3)
    b1.download_button("Curves as CSV", to_csv(rows), "robustness_curves.csv", "text/csv", key="dl_csv")
    if tr is not None:
        b2.download_button("Transfer matrix as CSV", to_csv(transfer_rows(tr)), "transfer_matrix.csv", "text/csv",
                           key="dl_tcsv")
    b3.download_button("Everything as JSON", to_json(ev, tr, checks), "robustness.json", "application/json",
                       key="dl_json")
    st.caption(f"The CLI prints the same numbers: python -m explorer robustness --models {','.join(ev.models)} "
               f"--attacks {','.join(ev.attacks)} --eps 0:{top:.6g}:{points} --dataset {dataset} --n {n} "
               f"--steps {steps} --seed {seed}")


# ------------------------------------------------------------------------ defences, evaluated honestly
st.subheader("Defences, evaluated honestly")
st.markdown(
    "A defence is scored three ways on the same images at every ε: **transfer** (adversarials made on the "
    "undefended baseline, what the ensemble blog measured), **white-box** (the attack run end to end through "
    "the defence's own forward and backward) and **adaptive** (EOT over its randomness, BPDA straight through "
    "its non-differentiable steps; per image the worst case of white-box and these). Transfer is the number that "
    "looks impressive; **adaptive is the truth**."
)
defended = [m for m in models if is_evaluable_defence(m)]
if dataset not in ("digits", "mnist"):
    st.caption("The defended models take digits or MNIST images: choose those above to evaluate one.")
elif not defended:
    example = "mnist-lenet-ens25-bootstrap-max" if dataset == "mnist" else "digits-lenet-ens5-bootstrap-max"
    st.info(f"Add a defended model to *Models* above (e.g. {example}, or a PGD-trained "
            f"{dataset}-lenet-pgd-at) to see its transfer, white-box and adaptive columns here.")
else:
    eot = int(st.number_input("EOT samples (noise-averaged models)", 1, MAX_EOT, value=8, key="lab_eot",
                              help="Noise draws averaged per gradient step by the adaptive (EOT) attack."))
    for m in defended:
        tw_request = ThreeWayRequest(model=m, dataset=dataset, n=n, eps=grid, attack="pgd", steps=steps,
                                     eot_samples=eot, seed=seed)
        try:
            tw = defcache.three_way(tw_request, ex_name)
        except (ValueError, ModelUnavailable) as exc:
            st.error(str(exc).splitlines()[0])
            continue
        if tw is None:
            continue  # queued or running: its status box is drawn here
        st.markdown(f"**{names.get(m, m)}** ({m}) against its baseline {tw.baseline}: PGD-{tw.steps} (L∞, random "
                    f"start), N = {tw.n}; adaptive: {tw.adaptive_label()}.")
        tl, tr_ = st.columns([3, 2])
        with tl:
            st.plotly_chart(three_way_figure(tw.eps, tw.columns()), width="stretch", config=PLOT_CONFIG,
                            key=f"three_way_{m}")
        with tr_:
            st.dataframe(tw.rows(), hide_index=True, width="stretch")
        check = tw.check()
        if check.status == "warn":
            st.warning(f"**Hidden, not robust** — {check.detail}.")
        else:
            st.success(f"Survives the check: {check.detail}.")
    st.caption(HIDDEN_NOT_ROBUST)

# ------------------------------------------------------------------------------------- the ensemble blog
st.subheader("The ensemble blog, reproduced on MNIST")
blog, blog_quick = defcache.blog_result()
if blog is None:
    st.info("No reproduction is stored on this server yet. Produce it with `python -m explorer reproduce "
            "ensemble-blog` (trains the baseline, FGSM-trained model and 100 ensemble members on MNIST; "
            "`--quick` for a small version in minutes), then reload this page.")
else:
    st.caption(
        f"FGSM at ε = {blog['eps']} ([0, 1] pixels), trained on {blog['n_train']:,} MNIST images, evaluated on "
        f"{blog['n_eval']:,} held-out ones; wall time {blog['wall_seconds']:.0f} s."
        + (" **Quick run** (small N, few epochs): run without `--quick` for the real table." if blog_quick else "")
        + " Ours beside the blog's published figure in every column it reported; white-box and adaptive are "
          "what the blog did not measure.")
    st.dataframe(defcache.blog_rows(blog), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.2f") for c in defcache.BLOG_COLUMNS})
    st.plotly_chart(ensemble_vs_n_figure(blog["rows"]), width="stretch", config=PLOT_CONFIG, key="blog_vs_n")
    st.caption("Accuracy on FGSM adversarials against the number of members N (log axis). Green: transfer from "
               "the baseline (grey crosses: the blog's published transfer figures); orange: white-box through the "
               "ensemble; red: adaptive. Solid: mean of probabilities; dashed: max (the most confident member); "
               "circles: members trained on all the data; squares: on bootstrap samples. "
               + " ".join(blog.get("notes", [])))
