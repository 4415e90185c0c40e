"""``python -m explorer robustness`` and ``python -m explorer transfer``: the Robustness lab's numbers in a terminal.

    python -m explorer robustness --models digits-cnn,digits-mlp,digits-softmax --attacks fgsm,pgd \\
        --eps 0:0.35:8 --dataset digits --n 360 [--executor local|ray] [--json | --csv FILE]
    python -m explorer transfer --models digits-cnn,digits-softmax --attack pgd --eps 0.2

Both build the same requests as the page (``explorer.runs.evaluate``), so they print the same numbers; the
result store means a run the page already made prints at once (and the reverse).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from explorer.cli import CLIError, Handler, command


#: the issue's and the papers' names for registered attacks
ATTACK_ALIASES = {"apgd-ce": "apgd"}


def _attack(name: str) -> str:
    return ATTACK_ALIASES.get(name.strip().lower(), name.strip())


def _list(text: str, what: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in text.split(",") if v.strip())
    if not items:
        raise CLIError(f"--{what}: give at least one, comma-separated")
    return items


def _executor(name: str | None):
    from explorer.runs import get_executor
    from explorer.runs.ray_executor import RayUnavailable

    try:
        return get_executor(name)
    except RayUnavailable as exc:
        raise CLIError(f"{exc} (start one with `ray start --head`, or run with --executor local)") from None


def _progress(label: str, rows: int):
    from explorer.evaluation.report import Throughput

    tp = Throughput(rows)
    tty = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        frac, text = tp(done, total)
        line = f"[{frac * 100:5.1f}%] {label}: {text}"
        if tty:
            print("\r" + line.ljust(100), end="" if frac < 1 else "\n", file=sys.stderr, flush=True)
        elif done == total or done % max(1, total // 10) == 0:
            print(line, file=sys.stderr, flush=True)

    return report


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", required=True, help="comma-separated model ids (python -m explorer models)")
    p.add_argument("--dataset", default="digits", help="digits (360 held out), mnist (2,000 held out) or photos")
    p.add_argument("--n", type=int, default=None, help="samples (default: the whole held-out set, photos 16)")
    p.add_argument("--steps", type=int, default=10, help="iterations of the iterative attacks")
    p.add_argument("--alpha", default=None, help="absolute step size (default: each attack's fraction of ε)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts")
    p.add_argument("--executor", choices=("local", "ray"), default=None,
                   help="where shards run (default: EXPLORER_EXECUTOR, ray when RAY_ADDRESS is set, else local)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--csv", metavar="FILE", default=None, help="also write the numbers as CSV to FILE")


def _n(a: argparse.Namespace) -> int:
    from explorer.config import get_settings
    from explorer.evaluation.data import FULL_SIZE

    return int(a.n) if a.n is not None else min(FULL_SIZE.get(a.dataset, 16), get_settings().max_n)


def _alpha(a: argparse.Namespace) -> float | None:
    from explorer.runs.rules import parse_eps

    return None if a.alpha is None else parse_eps(a.alpha)


def _write_csv(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}", file=sys.stderr)


def _run(req, executor, label: str, rows: int):
    from explorer.runs import run

    req.validate()
    return req.execute(executor, progress=_progress(label, rows)) if executor is not None else run(req)


@command("robustness", "Robust accuracy of models under attacks over an ε grid on a dataset, with 95% bands, "
                       "the worst case over attacks, a transfer matrix and the honest-evaluation checks.")
def _robustness(p: argparse.ArgumentParser) -> Handler:
    _common(p)
    p.add_argument("--attacks", default=None, help="comma-separated (default: fgsm,pgd,apgd; apgd-ce is accepted for apgd)")
    p.add_argument("--eps", default="0:0.35:8", help="start:stop:count (ends included) or a list, e.g. 0,2/255,4/255")
    p.add_argument("--transfer-eps", default=None, help="ε of the transfer matrix (default: the middle of the grid)")
    p.add_argument("--no-transfer", action="store_true", help="skip the transfer matrix (and its check)")

    def run(a: argparse.Namespace) -> int:
        from explorer.runs.rules import parse_eps
        from explorer.evaluation.checks import run_checks
        from explorer.evaluation.report import checks_text, curve_rows, curves_text, to_csv, to_json, transfer_text
        from explorer.runs.evaluate import EvaluateRequest, compatible_models, default_attacks, parse_eps_grid, \
            transfer_for

        models = _list(a.models, "models")
        attacks = tuple(_attack(v) for v in _list(a.attacks, "attacks")) if a.attacks else default_attacks()
        req = EvaluateRequest(models=models, attacks=attacks, eps=parse_eps_grid(a.eps), dataset=a.dataset,
                              n=_n(a), seed=a.seed, steps=a.steps, alpha=_alpha(a))
        req.validate()
        ex = _executor(a.executor)
        r = req.resolved()
        ev = _run(req, ex, "robustness", len(models) * len(attacks) * len(r.eps) * r.n)
        tr = None
        if not a.no_transfer and compatible_models(ev.models):
            treq = transfer_for(replace(req, models=ev.models),
                                None if a.transfer_eps is None else parse_eps(a.transfer_eps))
            tr = _run(treq, ex, "transfer", len(ev.models) * r.n)
        checks = run_checks(ev, tr)
        if a.csv:
            _write_csv(a.csv, to_csv(curve_rows(ev)))
        if a.json:
            print(to_json(ev, tr, checks))
        else:
            print(curves_text(ev))
            if tr is not None:
                print()
                print(transfer_text(tr))
            print()
            print(checks_text(checks))
            print(f"\n{ev.attacked_rows:,} images×ε evaluated in {ev.seconds:.1f} s on the {ex.name} executor"
                  if ev.seconds else "")
        return 0

    return run


@command("transfer", "A transfer matrix: adversarials made white-box on each model (rows) at one ε, "
                     "evaluated on every model (columns).")
def _transfer(p: argparse.ArgumentParser) -> Handler:
    _common(p)
    p.add_argument("--attack", default="pgd", help="the attack that makes the adversarials (default pgd)")
    p.add_argument("--eps", default="0.2", help="the budget, e.g. 0.2 or 8/255")

    def run(a: argparse.Namespace) -> int:
        from explorer.runs.rules import parse_eps
        from explorer.evaluation.report import to_csv, to_json, transfer_rows, transfer_text
        from explorer.runs.evaluate import TransferRequest

        models = _list(a.models, "models")
        req = TransferRequest(models=models, attack=_attack(a.attack), eps=parse_eps(a.eps), dataset=a.dataset, n=_n(a),
                              seed=a.seed, steps=a.steps, alpha=_alpha(a))
        req.validate()
        ex = _executor(a.executor)
        tr = _run(req, ex, "transfer", len(models) * req.resolved().n)
        if a.csv:
            _write_csv(a.csv, to_csv(transfer_rows(tr)))
        print(to_json(None, tr) if a.json else transfer_text(tr))
        return 0

    return run
