"""Adversarial Explorer: `streamlit run streamlit_app.py`."""

import streamlit as st

st.set_page_config(page_title="Adversarial Explorer", page_icon=":material/blur_on:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/gradient_maps.py", title="Gradient maps", icon=":material/gradient:"),
    st.Page("pages/boundaries.py", title="Boundaries", icon=":material/scatter_plot:"),
]

st.navigation(PAGES).run()
