"""Cached results of the Robustness lab: dataset evaluations and transfer matrices.

The run layer already keeps every result (and every finished shard) in the result store by request digest, in
memory and on disk, so a rerun or a second visitor gets it at once; ``st.cache_data`` adds the decoded
object per digest on top. Light runs (a first look on a few images) draw a progress bar with images×ε per second
and an ETA here; heavy ones are jobs on the server's queue, deduplicated across visitors, with their position,
progress, ETA and a cancel button where the result will appear. Changing a setting or closing the tab stops a
job nobody else wants between two shards, and the shards already finished are kept (the next run resumes).
"""

from __future__ import annotations

import streamlit as st

from explorer.caching import ProgressBar
from explorer.evaluation.report import Throughput
from explorer.evaluation.results import Evaluation, TransferResult
from explorer.runs.evaluate import EvaluateRequest, TransferRequest
from explorer.runs.store import default_store


def executor(name: str | None = None):
    """(executor, warning or None): Ray when asked for and reachable, else local with a one-line warning."""
    from explorer.runs.ray_executor import executor_or_local

    return executor_or_local(name)


def is_ready(request: EvaluateRequest | TransferRequest) -> bool:
    """True when the result is already stored (no work to show progress for)."""
    return default_store().get(request.digest()) is not None


def _with_bar(request, label: str, rows: int, executor_name: str | None):
    ex, _ = executor(executor_name)
    bar = ProgressBar(label)
    tp = Throughput(rows)
    try:
        def progress(done: int, total: int) -> None:
            frac, text = tp(done, total)
            bar(frac, text)

        request.validate()
        return request.execute(ex, progress=progress)
    finally:
        bar.close()


@st.cache_data(max_entries=32, show_spinner=False)
def _evaluate(digest: str, executor_name: str | None, _request: EvaluateRequest) -> Evaluation:
    r = _request.resolved()
    rows = len(r.models) * len(r.attacks) * len(r.eps) * r.n
    return _with_bar(_request, f"Attacking {r.n} images × {len(r.eps)} ε × {len(r.models)} models × "
                               f"{len(r.attacks)} attacks", rows, executor_name)


@st.cache_data(max_entries=32, show_spinner=False)
def _transfer(digest: str, executor_name: str | None, _request: TransferRequest) -> TransferResult:
    r = _request.resolved()
    return _with_bar(_request, f"Transfer matrix: {r.attack} at ε = {r.eps:.4g} on {len(r.models)} models",
                     len(r.models) * r.n, executor_name)


def evaluate(request: EvaluateRequest, executor_name: str | None = None) -> Evaluation | None:
    """The evaluation (validated first: a one-line ``ValueError`` on bad settings). A light one (a first look
    on a few images) runs here with a progress bar; a heavy one is a job on the server's queue
    (``explorer.caching.jobs``): None while it waits or runs, and its status box (position, progress, ETA,
    cancel) is drawn here meanwhile."""
    from explorer.caching import jobs

    request.validate()
    r = request.resolved()
    return jobs.run_or_queue(
        request, slot="lab.evaluate", executor=executor_name,
        label=f"Attacking {r.n} images × {len(r.eps)} ε × {len(r.models)} models × {len(r.attacks)} attacks",
        inline=lambda: _evaluate(request.digest(), executor_name, request))


def transfer(request: TransferRequest, executor_name: str | None = None) -> TransferResult | None:
    """The transfer matrix, like :func:`evaluate` (None while its job waits or runs)."""
    from explorer.caching import jobs

    request.validate()
    r = request.resolved()
    return jobs.run_or_queue(
        request, slot="lab.transfer", executor=executor_name,
        label=f"Transfer matrix: {r.attack} at ε = {r.eps:.4g} on {len(r.models)} models",
        inline=lambda: _transfer(request.digest(), executor_name, request))


def register_uploads(files: list[tuple[str, bytes]], model_id: str) -> tuple[str | None, list[str]]:
    """Read uploaded files / zips the way the Projections page does (:func:`explorer.images.uploads.read_uploads`:
    every limit, zip checks, the decoded cache), convert the good images to ``model_id``'s input (the sidebar's
    conversion) and keep them as an image set; returns (dataset name for a request or None, one line per file
    that was not used)."""
    from explorer.evaluation.data import make_set, register_set
    from explorer.images.uploads import read_model_inputs
    from explorer.models import get_spec

    spec = get_spec(model_id)
    batch = read_model_inputs(files, tuple(spec.input_shape), resize=spec.resize)
    problems = [f"{name}: {why}" for name, why in batch.problems]
    if not batch.images:
        return None, problems or ["no image in the upload"]
    return register_set(make_set(batch.x, None, "uploads", batch.names)), problems
