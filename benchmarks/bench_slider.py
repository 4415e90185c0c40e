"""Attack Studio's server rerun when the ε slider rests on a new value, with the sweep cached (AppTest).

The slider itself answers in the browser (``explorer.scrubber``; ``bench_browser_slider.py`` times that): this is
the rerun that follows once it rests, which writes the share link and computes the size metrics, 8-bit check and
noise baseline at that ε.

    python benchmarks/bench_slider.py [--moves 10] [--photo]

For each case: the first run (cold: the sweeps are computed), a rerun with nothing changed, then ``--moves``
slider moves to grid ε never shown before (each one computes that ε's 8-bit check and noise baseline, and for
iterative attacks a single traced attack at that ε) and the same moves again (everything cached). Each figure
is the median of ``at.run()`` over the moves. The sweep must not run during the moves (counted). Target: under
150 ms for the default model (digits CNN, FGSM). ``--photo`` adds ResNet-18 with random weights (a fabricated
checkpoint in a temporary TORCH_HOME: timing only) on the cat photo.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import format_table  # noqa: E402

APP = str(ROOT / "streamlit_app.py")
PAGE = "pages/attack_studio.py"
TARGET_MS = 150.0


def timed_run(at) -> float:
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return elapsed


def scrubber(at):
    """The ε scrubber element of the page (a ``st.components.v2`` component)."""
    def walk(node):
        for c in getattr(node, "children", {}).values():
            if str(getattr(c, "key", "")).startswith("as_scrub_"):
                return c
            found = walk(c)
            if found is not None:
                return found
        return None
    found = walk(at.main)
    if found is None:
        raise RuntimeError("no ε scrubber on the page")
    return found


def scrubber_key(at) -> str:
    return scrubber(at).key


def bench_case(name: str, params: dict[str, str], grid: tuple[float, ...], moves: int) -> list[str]:
    from streamlit.testing.v1 import AppTest

    from explorer.runs import requests as run_requests  # the cached sweep runs a SweepRequest, which calls sweep

    calls = []
    real = run_requests.sweep

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    run_requests.sweep = counting
    try:
        at = AppTest.from_file(APP, default_timeout=600)
        for k, v in params.items():
            at.query_params[k] = v
        at.switch_page(PAGE)
        first = timed_run(at)
        rerun = statistics.median(timed_run(at) for _ in range(3))
        swept = len(calls)
        key = scrubber_key(at)
        start = json.loads(scrubber(at).proto.json)["index"]
        # spread the moves over the grid, skipping the starting ε
        picks = [int(round(i * (len(grid) - 1) / moves)) for i in range(moves + 1)]
        picks = [i for i in dict.fromkeys(picks) if i != start][:moves]
        fresh, again = [], []
        for times in (fresh, again):
            for i in picks:
                at.session_state[key] = {"index": i}  # what the browser sends when the slider rests
                times.append(timed_run(at))
        during = len(calls) - swept
    finally:
        run_requests.sweep = real
    med_new, med_again = statistics.median(fresh) * 1e3, statistics.median(again) * 1e3
    ok = " / ".join("yes" if t < TARGET_MS else "no" for t in (med_again, med_new))
    return [name, f"{first:.2f} s", f"{rerun * 1e3:.0f} ms", f"{med_new:.0f} ms", f"{med_again:.0f} ms",
            f"{len(picks)}", str(during), ok]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moves", type=int, default=10)
    ap.add_argument("--photo", action="store_true", help="also ResNet-18 (random weights) on photo:chelsea")
    args = ap.parse_args()

    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    import torch

    from explorer.runs import rules
    from explorer.models.imagenet import save_random_checkpoint

    digits_grid = rules.eps_grid("fgsm", False, (1, 8, 8))
    cases = [
        ("digits-cnn · FGSM (default)", {}, digits_grid),
        ("digits-cnn · PGD-10", {"attack": "pgd"}, digits_grid),
        ("digits-cnn · PGD-L2-10", {"attack": "pgd-l2"}, rules.eps_grid("pgd-l2", False, (1, 8, 8))),
    ]
    tmp = None
    if args.photo:
        tmp = tempfile.TemporaryDirectory()
        os.environ["TORCH_HOME"] = tmp.name
        save_random_checkpoint("resnet18")
        cases.append(("resnet18 (random) · FGSM", {"model": "resnet18", "image": "photo:chelsea"},
                      rules.eps_grid("fgsm", True, (3, 224, 224))))
    rows = [bench_case(name, params, grid, args.moves) for name, params, grid in cases]
    print(f"Attack Studio: the server rerun once the ε slider rests (AppTest at.run(), medians; {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__})")
    print(format_table(["case", "first run", "rerun", "move: new ε", "move: seen ε", "moves", "sweeps in moves",
                        f"< {TARGET_MS:.0f} ms (seen / new)"], rows))
    print("first run: cold, computes the sweeps; new ε: that ε's checks (8-bit check and noise baseline: 10 forward "
          "passes, metrics) and, for iterative attacks, one traced attack; seen ε: all cached. The target is for the "
          "default model.")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
