"""Adversarial Explorer: `streamlit run streamlit_app.py`.

The entry point runs the page inside a guard: an uncaught error is logged on the server with an id, and the
visitor sees one line with that id (``client.showErrorDetails = "none"`` in .streamlit/config.toml keeps
Streamlit's own traceback box out of the browser as well). The page icon is a local file: nothing is fetched
from a font host.
"""

import logging
import sys
import threading
import uuid
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
LOG = logging.getLogger("explorer.app")
IMPORT_WARMUP = "explorer-import-warmup"
UMAP_WARMUP_DELAY_S = 8.0


def warm_imports_in_background() -> None:
    """Import torch in a daemon thread on a fresh server (once per process), while this script draws the page
    frame and the page's skeleton: every page needs torch (about 2 s to import here), and the first run no
    longer waits for it from the start. Only torch: explorer's own modules are imported by the pages, so the
    two threads never take Python's import locks in opposite orders."""
    if "torch" in sys.modules or any(t.name == IMPORT_WARMUP for t in threading.enumerate()):
        return

    def work() -> None:
        try:
            import torch  # noqa: F401
        except Exception:  # noqa: BLE001 - the page's own import reports the problem
            pass

    threading.Thread(target=work, name=IMPORT_WARMUP, daemon=True).start()


warm_imports_in_background()

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
