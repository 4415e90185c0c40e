"""Adversarial Explorer: `streamlit run streamlit_app.py`."""

from pathlib import Path

import streamlit as st

st.set_page_config(page_title="Adversarial Explorer", page_icon=":material/blur_on:", layout="wide")
# One small stylesheet for every page: columns that wrap at narrow widths, labels that wrap instead of "…".
st.html(Path(__file__).with_name("assets") / "style.css")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/attack_studio.py", title="Attack Studio", icon=":material/tune:"),
    st.Page("pages/gradient_maps.py", title="Gradient maps", icon=":material/gradient:"),
    st.Page("pages/boundaries.py", title="Boundaries", icon=":material/scatter_plot:"),
    st.Page("pages/projections.py", title="Projections", icon=":material/bubble_chart:"),
]

try:
    st.navigation(PAGES).run()
finally:
    # UMAP compiles numba code once per server process: warm it up in a low-priority background thread that
    # starts after the first page has rendered (idempotent: later reruns and sessions do nothing).
    from explorer.projections.warm import warm_umap_in_background

    warm_umap_in_background(delay=1.0)
