"""The pages a lesson may show and the URL parameters each page reads (what a lesson step may set, highlight or
hide). Kept in step with ``pages/*.py`` and ``explorer/state.py`` by ``tests/lessons/test_params.py``, which
reads the page sources: a page that starts reading a new URL key must declare it here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: read by the shared sidebar on every page (explorer/state.py)
SIDEBAR = ("model", "image")
#: set by a lesson link itself, never by a step's parameters
LESSON_KEYS = ("lesson", "step", "hide")
#: the attack settings shared by Attack Studio, Gradient maps and Projections (explorer/state.py)
SHARED_ATTACK = ("attack", "eps", "steps", "target")

LAB = ("lab_data", "lab_noise", "lab_n", "lab_seed", "lab_depth", "lab_width", "lab_act", "lab_wd", "lab_steps",
       "lab_adv", "lab_method", "lab_norm", "lab_eps", "lab_point", "lab_smooth", "lab_sigma", "lab_nsmooth")
SLICE = ("slice_plane", "slice_res", "slice_eps", "slice_extent", "slice_target", "slice_smooth", "slice_sigma",
         "slice_nsmooth")

#: page URL name -> the page's own URL parameters (besides SIDEBAR)
PAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "home": (),
    "attack_studio": SHARED_ATTACK,
    "gradient_maps": (*SHARED_ATTACK, "map"),
    "boundaries": ("tab", *LAB, *SLICE),
    "projections": ("dataset", "n", "layer", "proj", "attack", "eps", "steps"),
    "robustness_lab": ("dataset", "models", "attacks", "n"),
    "lessons": (),
    "presenter": (),
}

#: the values of the Boundaries page's tab parameter (``st.tabs(..., key="tab", bind="query-params")``)
BOUNDARY_TABS = ("2-D lab", "Slices through image space")


def app_pages(entry: Path | None = None) -> dict[str, str]:
    """The pages ``streamlit_app.py`` lists: URL name -> file (``attack_studio`` -> ``pages/attack_studio.py``).
    The default page (``default=True``) is reached at the app's root URL."""
    text = (entry or ROOT / "streamlit_app.py").read_text()
    pages = {}
    for m in re.finditer(r"st\.Page\(\s*[\"']([^\"']+\.py)[\"']([^)]*)\)", text):
        path, rest = m.group(1), m.group(2)
        url = re.search(r"url_path\s*=\s*[\"']([^\"']*)[\"']", rest)
        name = url.group(1) if url else Path(path).stem
        pages[name] = path
    return pages


def default_page(entry: Path | None = None) -> str | None:
    text = (entry or ROOT / "streamlit_app.py").read_text()
    for m in re.finditer(r"st\.Page\(\s*[\"']([^\"']+\.py)[\"']([^)]*)\)", text):
        if re.search(r"default\s*=\s*True", m.group(2)):
            return Path(m.group(1)).stem
    return None


def known_params(page: str) -> tuple[str, ...]:
    return (*SIDEBAR, *PAGE_PARAMS.get(page, ()))


def controls(page: str) -> tuple[str, ...]:
    """What a step may highlight or hide: the control that sets each URL parameter, named by it."""
    return known_params(page)
