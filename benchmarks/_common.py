"""Small helpers shared by the benchmark scripts: interleaved timing, aligned plain-text tables, test models."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_interleaved(fns: Sequence[Callable[[], object]], repeats: int, warmup: int = 1, rotate: bool = False
                      ) -> tuple[list[float], list[object]]:
    """Median seconds of each callable, run round-robin (A B A B ...) so that noise from other
    processes on a shared machine hits every variant alike. Returns (medians, last outputs).

    ``rotate``: start each round one callable later (A B C, B C A, C A B, ...), so that no variant always
    runs first or last in a round."""
    outs: list[object] = [None] * len(fns)
    for _ in range(warmup):
        for i, fn in enumerate(fns):
            outs[i] = fn()
    times: list[list[float]] = [[] for _ in fns]
    for r in range(max(1, repeats)):
        order = [(r + j) % len(fns) for j in range(len(fns))] if rotate else range(len(fns))
        for i in order:
            start = time.perf_counter()
            outs[i] = fns[i]()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times], outs


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A plain-text table with aligned columns; ``align`` is one character per column, 'l', 'c' or 'r'
    (default: the first column left, the others right)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(row: Sequence[str]) -> str:
        pad = {"l": str.ljust, "c": str.center, "r": str.rjust}
        return "  ".join(pad[a](c, w) for c, w, a in zip(row, widths, align)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def resnet18_random(channels_last: bool = True, seed: int = 0):
    """A randomly initialised torchvision ResNet-18 (seeded, global RNG untouched) in the explorer's wrapper."""
    import torch
    import torchvision

    from explorer.models.wrapper import Classifier

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torchvision.models.resnet18(weights=None)
    return Classifier(net, model_id="resnet18-random", class_names=[str(i) for i in range(1000)],
                      input_shape=(3, 224, 224), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                      channels_last=channels_last)
