"""Adversarial Explorer: `streamlit run streamlit_app.py`.

The entry point runs the page inside a guard: an uncaught error is logged on the server with an id, and the
visitor sees one line with that id (``client.showErrorDetails = "none"`` in .streamlit/config.toml keeps
Streamlit's own traceback box out of the browser as well). The page icon is a local file: nothing is fetched
from a font host.
"""

import logging
import uuid
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
LOG = logging.getLogger("explorer.app")
UMAP_WARMUP_DELAY_S = 8.0  # seconds after the first page ran (see the end of this file)

st.set_page_config(page_title="Adversarial Explorer", page_icon=str(ROOT / "assets" / "favicon.png"),
                   layout="wide")
# One small stylesheet for every page: columns that wrap at narrow widths, labels that wrap instead of "…".
st.html(ROOT / "assets" / "style.css")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/attack_studio.py", title="Attack Studio", icon=":material/tune:"),
    st.Page("pages/gradient_maps.py", title="Gradient maps", icon=":material/gradient:"),
    st.Page("pages/boundaries.py", title="Boundaries", icon=":material/scatter_plot:"),
    st.Page("pages/projections.py", title="Projections", icon=":material/bubble_chart:"),
    st.Page("pages/robustness_lab.py", title="Robustness lab", icon=":material/monitoring:"),
    st.Page("pages/lessons.py", title="Lessons", icon=":material/school:"),
    st.Page("pages/presenter.py", title="Presenter", icon=":material/co_present:"),
]


def report(exc: BaseException, where: str) -> str:
    """Log an uncaught error with a short id (server side, with its traceback) and show the visitor one line."""
    error_id = uuid.uuid4().hex[:8]
    LOG.error("error %s on %s: %s", error_id, where, exc, exc_info=exc)
    st.error(f"Something went wrong on this page (error id {error_id}). The details are in the server's log; "
             "your settings are kept: change one, or pick another page.", icon=":material/error:")
    return error_id


page = st.navigation(PAGES)
try:
    # a follower of a presenter's room: open the presenter's view now if it moved (the page below does not run)
    from explorer.teaching import follow_early

    follow_early()
    page.run()
except Exception as exc:  # noqa: BLE001 - st.stop / st.rerun are BaseExceptions and pass through
    report(exc, page.title)
finally:
    # UMAP compiles numba code once per server process: warm it up in a low-priority background thread that
    # starts a while after the first page ran (idempotent: later reruns and sessions do nothing; the Projections
    # page starts it at once when it needs UMAP). Not sooner: its import holds the GIL in long stretches and,
    # on a busy machine, delayed the browser's fetches of the first page's images by a second or more.
    from explorer.projections.warm import warm_umap_in_background

    warm_umap_in_background(delay=UMAP_WARMUP_DELAY_S)
