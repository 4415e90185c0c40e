"""Home: what the explorer is, and a live first example on the default offline model."""

import numpy as np
import streamlit as st

from explorer import caching, state
from explorer.attacks import AttackConfig, default_eps_grid
from explorer.caching.attacks import eps_sweep
from explorer.digest import array_digest
from explorer.models import accuracy
from explorer.plots.images import topk_bars, upscale

sel = state.sidebar()
model = caching.require_model(sel.model_id, sel.device)

st.title("Adversarial Explorer")
st.markdown(
    "A tiny, carefully chosen change to an image can make a neural network see something else. "
    "Pick a model and an image in the sidebar, then **slide ε and watch the label flip**, see the gradients "
    "that explain *why*, the decision boundaries the attack crosses, and where adversarial images land in the "
    "model's feature space. Everything runs live, on any image, offline on the built-in models."
)

names = sel.spec.class_names
probs = caching.probabilities(sel.model_id, sel.digest, sel.device, sel.x[None])[0]
pred = int(probs.argmax())
label = sel.label if sel.label is not None else pred
grid = tuple(float(e) for e in default_eps_grid(sel.spec.is_photo_model))
with st.spinner("Finding the smallest FGSM step that flips the label…"):
    sw = eps_sweep(sel.model_id, sel.digest, label, AttackConfig("fgsm"), grid, sel.device, sel.x)

st.subheader("A live example: the Fast Gradient Sign Method")
cols = st.columns([1, 1, 1, 1.4], gap="medium")
fmt = (lambda e: f"{e * 255:.1f}/255") if sel.spec.is_photo_model else (lambda e: f"{e:.3f}")
with cols[0]:
    st.image(upscale(sel.x, 220), caption=f"clean: “{names[pred]}” ({probs[pred] * 100:.1f}%)", width=220)
if sw.flip_eps is not None and sw.direction is not None:
    eps = float(sw.flip_eps)
    adv = np.clip(sel.x + eps * sw.direction, 0.0, 1.0)
    adv_probs = caching.probabilities(sel.model_id, array_digest(adv), sel.device, adv[None])[0]
    adv_pred = int(adv_probs.argmax())
    delta = adv - sel.x
    with cols[1]:
        st.image(upscale(0.5 + delta / (2 * max(eps, 1e-12)), 220),
                 caption=f"perturbation ε·sign(∇ₓL), ε = {fmt(eps)} (grey = 0, scaled ×{0.5 / eps:.1f})", width=220)
    with cols[2]:
        st.image(upscale(adv, 220), caption=f"adversarial: “{names[adv_pred]}” ({adv_probs[adv_pred] * 100:.1f}%)",
                 width=220)
    with cols[3]:
        st.metric("Label flips at", f"ε = {fmt(eps)}", f"“{names[label]}” → “{names[adv_pred]}”", delta_color="off")
        st.caption(
            "One gradient of the loss with respect to the pixels, one step of size ε in the direction of its "
            "sign (Goodfellow et al., 2015). ε is the largest change of any pixel, in units of the [0, 1] pixel "
            "range. The model is confident on the clean image; after the step it is confident of something else."
        )
else:
    with cols[1]:
        st.info(f"FGSM does not flip this image up to ε = {fmt(grid[-1])}; try another image or Attack Studio's PGD.")

with st.expander("Clean prediction in detail", expanded=False):
    acc = accuracy(sel.model_id)
    st.plotly_chart(topk_bars(probs, names, 5, "Top-5 classes on the clean image", highlight=pred),
                    width="stretch", config={"displayModeBar": False})
    st.caption(f"{sel.spec.name}: {sel.spec.description}"
               + (f"; held-out accuracy {acc * 100:.1f}%." if acc is not None else "."))
