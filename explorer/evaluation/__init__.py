"""Dataset evaluation: robust accuracy over an image set, transfer matrices and honest-evaluation checks.

Pure library (no streamlit). The requests that run it on an executor, sharded and cached, live in
``explorer.runs.evaluate``; this package holds the arithmetic:

* :mod:`~explorer.evaluation.core`: a batch of samples attacked at every ε at once, flip ε by bisection;
* :mod:`~explorer.evaluation.stats`: Clopper–Pearson intervals;
* :mod:`~explorer.evaluation.data`: the image sets (digits, MNIST, photos, uploaded arrays);
* :mod:`~explorer.evaluation.results`: the result dataclasses (accuracy, worst case, flip-ε curves);
* :mod:`~explorer.evaluation.checks`: the eight checks that a robustness number is real;
* :mod:`~explorer.evaluation.report`: tables, CSV and JSON shared by the page and the CLI.
"""

from explorer.evaluation.core import AttackSettings, ShardResult, attack_rows, evaluate_batch
from explorer.evaluation.data import EvalSet, load_set, make_set, register_set
from explorer.evaluation.results import CheckRow, Evaluation, ModelProbe, TransferResult
from explorer.evaluation.stats import clopper_pearson

__all__ = [
    "AttackSettings", "CheckRow", "EvalSet", "Evaluation", "ModelProbe", "ShardResult", "TransferResult",
    "attack_rows", "clopper_pearson", "evaluate_batch", "load_set", "make_set", "register_set",
]
