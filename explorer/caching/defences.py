"""Cached results of the defences on the Robustness lab page: the three-way evaluation of a defended model and
the ensemble blog's stored reproduction.

The three-way evaluation is a run-layer request (:class:`explorer.runs.defences.ThreeWayRequest`): its ε shards
and its result are kept in the result store by digest, so a rerun or a second visitor gets it at once;
``st.cache_data`` adds the decoded object per digest on top.
"""

from __future__ import annotations

import streamlit as st

from explorer.caching import ProgressBar
from explorer.runs.defences import ThreeWayEvaluation, ThreeWayRequest


@st.cache_data(max_entries=32, show_spinner=False)
def _three_way(digest: str, executor_name: str | None, _request: ThreeWayRequest) -> ThreeWayEvaluation:
    from explorer.caching.lab import executor

    ex, _ = executor(executor_name)
    r = _request.resolved()
    bar = ProgressBar(f"Three-way evaluation of {r.model}: {r.n} images × {len(r.eps)} ε")
    try:
        return _request.execute(ex, progress=lambda done, total: bar(done / max(total, 1), f"ε {done}/{total}"))
    finally:
        bar.close()


def three_way(request: ThreeWayRequest, executor_name: str | None = None) -> ThreeWayEvaluation | None:
    """The three-way evaluation (validated first: a one-line ``ValueError`` on bad settings): a job on the
    server's queue, None while it waits or runs (its status box is drawn here meanwhile)."""
    from explorer.caching import jobs

    request.validate()
    r = request.resolved()
    return jobs.run_or_queue(
        request, slot=f"lab.three_way.{r.model}", executor=executor_name,
        label=f"Three-way evaluation of {r.model}: {r.n} images × {len(r.eps)} ε",
        inline=lambda: _three_way(request.digest(), executor_name, request))


def blog_result() -> tuple[dict | None, bool]:
    """The stored ``reproduce ensemble-blog`` result (full, else quick) and whether it is the quick one. Read from
    disk on every call (a small JSON file): a reproduction finished meanwhile shows up on the next rerun."""
    from explorer.defences.reproduce import load_result

    return load_result("ensemble-blog")


BLOG_COLUMNS = ("clean", "clean (blog)", "own FGSM", "own FGSM (blog)", "transfer", "transfer (blog)", "white-box",
                "adaptive")


def blog_rows(result: dict) -> list[dict]:
    """The stored blog table for display (``explorer.defences.reproduce.blog_display_rows``)."""
    from explorer.defences.reproduce import blog_display_rows

    return blog_display_rows(result)
