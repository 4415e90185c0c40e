"""``python -m explorer reproduce ensemble-blog|madry [--quick] [--json FILE]``: the reproductions on real MNIST."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from explorer.cli import CLIError, Handler, _progress_printer, _table, command


def _f(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def blog_table(result: dict) -> str:
    """The reproduced table: ours next to the published figure in every column the blog reported."""
    rows = []
    for r in result["rows"]:
        rows.append([r["model"], _f(r.get("clean")), _f(r.get("clean_published")),
                     _f(r.get("own_fgsm")), _f(r.get("own_fgsm_published")),
                     _f(r.get("transfer")), _f(r.get("transfer_published")),
                     _f(r.get("white_box")), _f(r.get("adaptive"))])
    head = ["model", "clean", "(blog)", "own FGSM", "(blog)", "transfer", "(blog)", "white-box", "adaptive"]
    return _table(rows, head)


def madry_table(result: dict) -> str:
    p = result["published"]
    rows = [["clean", f"{result['clean']:.3f}", f"{p['clean']:.3f}"],
            ["PGD-40 (step 0.01, random start)", f"{result['pgd40']:.3f}", f"{p['robust']:.3f}"],
            [result["apgd_label"], f"{result['apgd_ce']:.3f}", f"{p['robust']:.3f}"],
            ["worst case of PGD-40 and APGD-CE", f"{result['worst_case']:.3f}", "-"]]
    return _table(rows, [f"{result['model']} on MNIST's held-out {result['n_eval']}, ε = {result['eps']}",
                         "ours", "Madry et al."])


@command("reproduce", "Reproduce a published defence result on real MNIST: ensemble-blog or madry.")
def _reproduce(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("experiment", choices=("ensemble-blog", "madry"))
    p.add_argument("--quick", action="store_true",
                   help="ensemble-blog: N = 3 / 5, one-epoch members, 500 images, trained in memory (minutes)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")

    def run(a: argparse.Namespace) -> int:
        from explorer.defences import reproduce
        from explorer.models.data import find_mnist

        if find_mnist() is None:
            raise CLIError("MNIST is not on this machine: set EXPLORER_MNIST_DIR (e.g. ../shared/data/mnist)")
        if a.experiment == "ensemble-blog":
            cfg = reproduce.QUICK if a.quick else reproduce.BlogConfig()
            result = reproduce.ensemble_blog(cfg, _progress_printer())
            print(f"\nEnsemble blog on MNIST: FGSM ε = {result['eps']}, trained on {result['n_train']}, "
                  f"evaluated on {result['n_eval']} held-out images{' (quick)' if a.quick else ''}")
            print(blog_table(result))
            for note in result["notes"]:
                print(f"* {note}")
            print(f"wall time {result['wall_seconds']:.0f} s (training {result['train_seconds']:.0f} s)")
        else:
            if a.quick:
                raise CLIError("--quick applies to ensemble-blog only")
            result = reproduce.madry_mnist(progress=_progress_printer())
            print()
            print(madry_table(result))
            print(f"training {result['train_seconds']:.0f} s; evaluation {result['eval_seconds']:.0f} s")
        if a.experiment == "ensemble-blog":
            stored = reproduce.save_result(result, quick=a.quick)
            print(f"Result stored for the Robustness lab page: {stored}")
        if a.json:
            Path(a.json).write_text(json.dumps(result, indent=2))
            print(f"JSON written to {a.json}")
        return 0

    return run
