"""The run layer: every computation the app can make, as a typed, validated, digestible request.

No Streamlit here. Pages (through ``explorer.caching``), the CLI, benchmarks, workers and lessons all call
:func:`run`. See ``base.py`` for the request contract, ``requests.py`` for every request (the dataset
evaluation: ``evaluate.py``), ``rules.py`` for the rules they share and ``executor.py`` for where shards run.
"""

from explorer.runs.base import Request, content_digest, run
from explorer.runs.executor import LOCAL, Cancelled, Executor, LocalExecutor, get_executor

_REQUESTS = ("AdversarialBatch", "AttackOutcome", "AttackRequest", "AttributionRequest", "DatasetAttackRequest",
             "PointChecks", "PointChecksRequest", "ProfileRequest", "ProjectionRequest", "SliceRequest",
             "SweepRequest")


def __getattr__(name: str):
    """The requests (they import torch) load on first use: ``from explorer.runs import AttackRequest``."""
    if name in _REQUESTS:
        from explorer.runs import requests

        return getattr(requests, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LOCAL", "Cancelled", "Executor", "LocalExecutor", "Request", "content_digest", "get_executor", "run",
           *_REQUESTS]
