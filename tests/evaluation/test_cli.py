"""``python -m explorer robustness`` / ``transfer`` print the same numbers as the library (and so the page)."""

import json

import numpy as np
import pytest

from explorer.cli import main
from explorer.evaluation.checks import run_checks
from explorer.evaluation.report import curve_rows, transfer_rows
from explorer.runs import run
from explorer.runs.evaluate import EvaluateRequest, TransferRequest, eps_grid, transfer_for

ARGS = ["robustness", "--models", "digits-softmax,digits-mlp", "--attacks", "fgsm,pgd", "--eps", "0:0.3:4",
        "--n", "30", "--steps", "3"]


def test_robustness_json_matches_the_request_the_page_builds(fresh_store, capsys, tmp_path):
    csv_path = tmp_path / "curves.csv"
    assert main(ARGS + ["--json", "--csv", str(csv_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    req = EvaluateRequest(models=("digits-softmax", "digits-mlp"), attacks=("fgsm", "pgd"), eps=eps_grid(0.3, 4),
                          dataset="digits", n=30, steps=3)
    ev = run(req)
    tr = run(transfer_for(req))
    assert doc["evaluation"]["curves"] == json.loads(json.dumps(curve_rows(ev)))
    assert doc["transfer"]["cells"] == json.loads(json.dumps(transfer_rows(tr), allow_nan=False))
    assert [c["status"] for c in doc["checks"]] == [c.status for c in run_checks(ev, tr)]
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("model,attack,eps,n") and len(lines) == 1 + 2 * 3 * 4  # 2 models x (2 + worst) x 4 ε


def test_robustness_tables(fresh_store, capsys):
    assert main(ARGS) == 0
    out = capsys.readouterr().out
    assert "Robust accuracy (%)" in out and "worst case" in out and "Transfer:" in out and "Checks" in out
    assert "Clopper-Pearson" in out


def test_transfer_command(fresh_store, capsys):
    assert main(["transfer", "--models", "digits-softmax,digits-mlp", "--attack", "fgsm", "--eps", "0.2",
                 "--n", "30", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    tr = run(TransferRequest(models=("digits-softmax", "digits-mlp"), attack="fgsm", eps=0.2, n=30))
    acc = tr.accuracy()
    got = {(c["source"], c["target"]): c["accuracy"] for c in doc["transfer"]["cells"]}
    assert got[("digits-softmax", "digits-mlp")] == pytest.approx(acc[0, 1])
    assert [c["white_box"] for c in doc["transfer"]["cells"]] == [True, False, False, True]


@pytest.mark.parametrize("args, msg", [
    (["robustness", "--models", "digits-cnn", "--eps", "0:0.3:500"], "at most"),
    (["robustness", "--models", "nope"], "unknown model"),
    (["transfer", "--models", "digits-cnn", "--eps", "abc"], "not a number"),
])
def test_bad_input_is_one_line(args, msg, capsys):
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0]


def test_apgd_ce_is_accepted_for_apgd(fresh_store, capsys):
    assert main(["robustness", "--models", "digits-softmax", "--attacks", "fgsm,apgd-ce", "--eps", "0:0.3:3",
                 "--n", "12", "--steps", "2", "--no-transfer", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {c["attack"] for c in doc["evaluation"]["curves"]} == {"fgsm", "apgd", "worst case"}
