"""Home: what the explorer is, and a live first example on the default offline model.

The page skeleton (title, introduction, the example's heading and a spinner) is drawn before anything heavy is
imported: on a fresh server the browser shows it while torch and the model load (benchmarks/bench_foundation.py,
section (a), measures the cold start).
"""

import streamlit as st

st.title("Adversarial Explorer")
st.markdown(
    "A tiny, carefully chosen change to an image can make a neural network see something else. "
    "Pick a model and an image in the sidebar, then **slide ε and watch the label flip**, see the gradients "
    "that explain *why*, the decision boundaries the attack crosses, and where adversarial images land in the "
    "model's feature space. Everything runs live, on any image, offline on the built-in models."
)
st.subheader("A live example: the Fast Gradient Sign Method")

with st.spinner("Loading the model and finding the smallest FGSM step that flips the label…"):
    # After the skeleton on purpose: these imports bring torch (about 2 s in a fresh server process).
    import numpy as np

    from explorer import caching, state, urlstate
    from explorer.attacks import AttackConfig, default_eps_grid
    from explorer.caching.attacks import eps_sweep
    from explorer.models import accuracy
    from explorer.plots.images import topk_bars, upscale

    sel = state.sidebar()
    model = caching.require_model(sel.model_id, sel.device, sel.image)
    probs = caching.probabilities(sel.model_id, sel.digest, sel.device, sel.x[None])[0]
    pred = int(probs.argmax())
    label = sel.label if sel.label is not None else pred
    grid = tuple(float(e) for e in default_eps_grid(sel.spec.is_photo_model))
    sw = eps_sweep(sel.model_id, sel.digest, label, AttackConfig("fgsm"), grid, sel.device, sel.x)

names = state.safe_names(sel.spec)  # escaped for captions and metrics; the plot takes the raw names
cols = st.columns([1, 1, 1, 1.3], gap="large")
fmt = (lambda e: f"{e * 255:.1f}/255") if sel.spec.is_photo_model else (lambda e: f"{e:.3f}")
if sw.flip_eps is not None and sw.direction is not None:
    flip = float(sw.flip_eps)
    # At the flip ε the image sits on the decision boundary (about 50/50). Show the first grid ε past it where
    # the model is confidently wrong (or the largest ε), so the picture teaches the point.
    wrong = np.flatnonzero(sw.flipped & (sw.probs.max(1) >= 0.9) & (sw.eps >= flip))
    eps = float(sw.eps[wrong[0]]) if len(wrong) else float(sw.eps[-1])
    adv = sw.image_at(sel.x, eps)
    adv_probs = caching.probabilities(sel.model_id, sw.image_digest_at(sel.x, eps), sel.device, adv[None])[0]
    adv_pred = int(adv_probs.argmax())
    delta = adv - sel.x
    with cols[0]:
        st.image(upscale(sel.x, 200), caption=f"clean: “{names[pred]}” ({probs[pred] * 100:.1f}%)", width=200)
    with cols[1]:
        st.image(upscale(0.5 + delta / (2 * max(eps, 1e-12)), 200),
                 caption=f"+ ε·sign(∇ₓL) at ε = {fmt(eps)} (grey = 0; shown ×{0.5 / eps:.1f})", width=200)
    with cols[2]:
        st.image(upscale(adv, 200), caption=f"= adversarial: “{names[adv_pred]}” ({adv_probs[adv_pred] * 100:.1f}%)",
                 width=200)
    with cols[3]:
        st.metric("Label flips at", f"ε = {fmt(flip)}", f"“{names[label]}” → “{names[int(sw.pred[sw.nearest(eps)])]}”",
                  delta_color="off", delta_arrow="off")
        st.caption(
            "One gradient of the loss with respect to the pixels, one step of size ε along its sign (the Fast "
            "Gradient Sign Method, Goodfellow et al., 2015). ε is the largest change of any pixel, in units of the "
            f"[0, 1] pixel range. At ε = {fmt(flip)} the image crosses the decision boundary; at ε = {fmt(eps)} "
            + ("the model is confidently wrong." if adv_probs[adv_pred] >= 0.9 else
               f"the model says “{names[adv_pred]}” with {adv_probs[adv_pred] * 100:.0f}% confidence.")
        )
else:
    with cols[0]:
        st.image(upscale(sel.x, 200), caption=f"clean: “{names[pred]}” ({probs[pred] * 100:.1f}%)", width=200)
    with cols[1]:
        st.info(f"FGSM does not flip this image up to ε = {fmt(grid[-1])}; try another image or Attack Studio's PGD.")

with st.expander("Clean prediction in detail", expanded=False):
    acc = accuracy(sel.model_id)
    st.plotly_chart(topk_bars(probs, sel.spec.class_names, 5, "Top-5 classes on the clean image", highlight=pred),
                    width="stretch", config={"displayModeBar": False})
    st.caption(f"{state.safe_name(sel.spec)}: {urlstate.escape_md(sel.spec.description)}"
               + (f"; held-out accuracy {acc * 100:.1f}%." if acc is not None else "."))

st.subheader("Where to go next")
links = st.columns(4, gap="medium")
for col, (page, label, icon, text) in zip(links, [
    ("pages/attack_studio.py", "Attack Studio", ":material/tune:",
     "Seven attacks, targeted or not: slide ε and watch the label flip, with the numbers that say why."),
    ("pages/gradient_maps.py", "Gradient maps", ":material/gradient:",
     "Pixel by pixel: where is the model sensitive, and did the attack push there?"),
    ("pages/boundaries.py", "Boundaries", ":material/scatter_plot:",
     "A 2-D lab where the whole input space is visible, and slices through the space around this image."),
    ("pages/projections.py", "Projections", ":material/bubble_chart:",
     "Where adversarial images land in the model's feature space: PCA, UMAP, t-SNE."),
]):
    with col:
        st.page_link(page, label=label, icon=icon)
        st.caption(text)
