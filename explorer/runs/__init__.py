"""The run layer: every computation the app can make, as a typed, validated, digestible request.

No Streamlit here. Pages (through ``explorer.caching``), the CLI, benchmarks, workers and lessons all call
:func:`run`. See ``base.py`` for the request contract and ``executor.py`` for where shards run.
"""

from explorer.runs.base import Request, content_digest, run
from explorer.runs.executor import LOCAL, Cancelled, Executor, LocalExecutor, get_executor

__all__ = ["LOCAL", "Cancelled", "Executor", "LocalExecutor", "Request", "content_digest", "get_executor", "run"]
