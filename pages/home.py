"""Home: what the explorer is, and a live first example on the default offline model."""

import streamlit as st

from explorer import caching, state
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

probs = caching.probabilities(sel.model_id, sel.digest, sel.device, sel.x[None])[0]
pred = int(probs.argmax())
acc = accuracy(sel.model_id)

left, right = st.columns([1, 2], gap="large")
with left:
    st.image(upscale(sel.image.pixels if sel.spec.is_photo_model else sel.x, 256),
             caption=f"{sel.image.name}" + (f" — true label {sel.spec.class_names[sel.label]}"
                                           if sel.label is not None else ""), width=256)
with right:
    st.metric("Prediction", sel.spec.class_names[pred], f"{probs[pred] * 100:.1f}% confidence", delta_color="off")
    st.plotly_chart(topk_bars(probs, sel.spec.class_names, 5, "Top-5 classes", highlight=pred),
                    width="stretch", config={"displayModeBar": False})
    st.caption(f"{sel.spec.name}: {sel.spec.description}"
               + (f"; held-out accuracy {acc * 100:.1f}%." if acc is not None else "."))
