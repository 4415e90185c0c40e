"""Attack Studio's ε scrubber: a small bidirectional Streamlit component (``st.components.v2``).

The frames of a whole sweep (``explorer.plots.scrub.scrub_frames``) travel to the browser once. Moving the slider
(mouse, keys ← → Home End, or a click on the chart) swaps the adversarial image, the perturbation, the
prediction card, the top-5 bars and the chart's marker in the browser, with no server round trip. When the
slider rests (``COMMIT_MS`` in ``assets/scrubber.js``) the grid index goes back to the server, which writes it
into the URL and computes what only it can (size metrics, 8-bit check, noise baseline).

The browser code and its styles are ``assets/scrubber.js`` and ``assets/scrubber.css``. Model- and user-supplied
text is set as text in the browser, never as markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

ASSETS = Path(__file__).resolve().parents[1] / "assets"
_COMPONENT = None


def _component():
    global _COMPONENT
    if _COMPONENT is None:
        _COMPONENT = st.components.v2.component(
            "adversarial_explorer.eps_scrubber", js=(ASSETS / "scrubber.js").read_text(encoding="utf-8"),
            css=(ASSETS / "scrubber.css").read_text(encoding="utf-8"), isolate_styles=False)
    return _COMPONENT


def _state_index(key: str) -> int | None:
    state = st.session_state.get(key)
    try:
        return None if state is None else int(state.get("index"))
    except (AttributeError, TypeError, ValueError):
        return None


HEAVY = ("frames", "orig", "chart", "direction")  # what a lite update leaves out


def _asked_for_frames(key: str) -> bool:
    state = st.session_state.get(key)
    try:
        return bool(state.get("need_frames"))
    except AttributeError:
        return False


def _noop() -> None:
    """The index's change callback: the rerun itself is what the page needs."""


def scrub(frames: dict[str, Any], *, key: str, index: int, cards: list[dict[str, str]],
          text: dict[str, str]) -> int:
    """Draw the scrubber and return the grid index the user rests on.

    ``frames``: ``explorer.caching.attacks.scrub_frames(...)``, whose ``id`` names everything they depend on
    (the browser rebuilds only when it changes); ``index``: the starting index (from the URL) the first time ``key`` is drawn;
    ``cards``: the three fixed cards (true class, clean prediction, flip ε) as ``{"label", "value", "note"}``
    plain text; ``text``: ``slider_label``, ``summary`` (the attack's one line), ``orig_caption``.
    """
    n = len(frames["eps"])
    index = min(max(int(index), 0), n - 1)
    current = _state_index(key)  # what the browser last committed (the browser keeps it: no jump back)
    shown = index if current is None else min(max(current, 0), n - 1)
    sent_key = f"_{key}_sent"
    asked = _asked_for_frames(key)
    # the frames travel once per sweep: a rerun after a slider commit sends only the index and the cards (the
    # browser keeps the frames by sweep id; one it lacks, after a reload of the element, asks for them again)
    lite = current is not None and st.session_state.get(sent_key) == frames["id"] and not asked
    body = {k: v for k, v in frames.items() if k not in HEAVY} if lite else frames
    data = {**body, "sweep": frames["id"], "index": shown, "cards": cards, "text": text, "lite": lite}
    st.session_state[sent_key] = frames["id"]
    result = _component()(key=key, data=data, default={"index": index}, on_index_change=_noop,
                          on_need_frames_change=_noop)
    try:
        chosen = int(result.index)
    except (AttributeError, TypeError, ValueError):
        chosen = index
    return min(max(chosen, 0), n - 1)
