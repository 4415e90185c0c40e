"""Prepare a lesson for a classroom without network: weights, datasets, and the results of its steps.

* Weights: every model a step names (its own and its offline fallback). Torchvision weights are downloaded (this
  needs the network once); built-in models are trained if their weights are missing (seeded, deterministic).
* Datasets: MNIST when a step uses an MNIST model, an ``mnist:`` image, or ``dataset = "mnist"``.
* Results: for each step whose page has registered a *request builder* (``register_request_builder``), the
  requests the page will make for that view are computed through the run layer and put in the result store by
  digest, so the page (through the job queue or its cache) answers at once. Pages without a builder are listed
  in the report: their results are computed on first view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from explorer.lessons.model import Lesson, resolve_step

RequestBuilder = Callable[[dict[str, str]], list[Any]]  # view parameters -> run-layer requests
_BUILDERS: dict[str, RequestBuilder] = {}
Progress = Callable[[float, str], None]


def register_request_builder(page: str, builder: RequestBuilder) -> None:
    """A page's requests for a view state (``{"model": ..., "eps": ...}`` as URL strings): the same requests the
    page submits when it shows that view, so that the digests match."""
    _BUILDERS[page] = builder


def request_builders() -> dict[str, RequestBuilder]:
    return dict(_BUILDERS)


@dataclass
class PrefetchReport:
    lesson: str
    models: dict[str, str] = field(default_factory=dict)  # model id -> "ready" or the one-line problem
    datasets: dict[str, str] = field(default_factory=dict)
    computed: int = 0  # results computed now
    cached: int = 0  # results already in the store
    failed: list[str] = field(default_factory=list)  # "step k: one line"
    no_builder: list[str] = field(default_factory=list)  # "step k (page)"

    @property
    def ok(self) -> bool:
        """Every step can run offline: one model per step (its own or the fallback) is ready, nothing failed."""
        return not self.failed and not any(v.startswith("missing") for v in self.datasets.values())


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


def _needs_mnist(params: dict[str, str]) -> bool:
    return (params.get("model", "").startswith("mnist") or params.get("image", "").startswith("mnist:")
            or params.get("dataset") == "mnist")


def _views(lesson: Lesson) -> list[tuple[int, dict[str, str]]]:
    """Every view the lesson can show: each step online, and its offline fallback."""
    out = []
    for k in range(1, len(lesson.steps) + 1):
        out.append((k, resolve_step(lesson, k, available=lambda m: True).params))
        offline = resolve_step(lesson, k, available=lambda m: False)
        if offline.note is not None:
            out.append((k, offline.params))
    return out


def prefetch_lesson(lesson: Lesson, progress: Progress | None = None, store: Any | None = None,
                    fetch_mnist: Callable[[], Any] | None = None) -> PrefetchReport:
    from explorer.models import get_spec
    from explorer.models import prefetch as prefetch_model
    from explorer.runs import run

    say = progress or (lambda f, t: None)
    report = PrefetchReport(lesson.name)
    views = _views(lesson)
    # weights
    models = list(dict.fromkeys(p["model"] for _, p in views if "model" in p))
    for i, m in enumerate(models):
        say(i / max(len(models), 1), f"{lesson.name}: model {m}")
        try:
            get_spec(m)
            prefetch_model(m)
            report.models[m] = "ready"
        except Exception as exc:  # noqa: BLE001 - offline, a download error: reported, the fallback may cover it
            report.models[m] = f"not available: {_one_line(exc)}"
    # datasets
    if any(_needs_mnist(p) for _, p in views):
        try:
            if fetch_mnist is not None:
                fetch_mnist()
            from explorer.models.data import find_mnist

            report.datasets["mnist"] = "ready" if find_mnist() is not None else "missing: MNIST was not found"
        except Exception as exc:  # noqa: BLE001
            report.datasets["mnist"] = f"missing: {_one_line(exc)}"
    # a step whose own model and fallback are both unavailable cannot run offline
    for k in range(1, len(lesson.steps) + 1):
        own = resolve_step(lesson, k, available=lambda m: True).params.get("model")
        alt = resolve_step(lesson, k, available=lambda m: False).params.get("model")
        if own and report.models.get(own) != "ready" and (alt is None or report.models.get(alt) != "ready"):
            report.failed.append(f"step {k}: no model for it is available ({own}: {report.models.get(own)})")
    # results
    if store is None:
        from explorer.runs.store import shared_default_store

        store = shared_default_store()
    for n, (k, params) in enumerate(views):
        page = lesson.steps[k - 1].page
        builder = _BUILDERS.get(page)
        if builder is None:
            note = f"step {k} ({page})"
            if note not in report.no_builder:
                report.no_builder.append(note)
            continue
        if params.get("model") and report.models.get(params["model"]) != "ready":
            continue  # the other view of this step (online or fallback) covers it
        say(n / max(len(views), 1), f"{lesson.name}: step {k} results")
        try:
            for req in builder(dict(params)):
                d = req.digest()
                if store.get(d) is not None:
                    report.cached += 1
                    continue
                store.put(d, run(req))
                report.computed += 1
        except Exception as exc:  # noqa: BLE001 - one line per step, the others carry on
            report.failed.append(f"step {k}: {_one_line(exc)}")
    say(1.0, f"{lesson.name}: done")
    return report
