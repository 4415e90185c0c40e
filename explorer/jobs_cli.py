"""``python -m explorer prefetch --lesson NAME|all``: weights, datasets and step results of lessons, for a
classroom without network. Extends the ``prefetch`` command of ``explorer.cli`` (its own arguments keep working:
``prefetch resnet18 --lesson linearity`` fetches both)."""

from __future__ import annotations

import argparse
import sys

from explorer.cli import COMMANDS, CLIError, Handler, _progress_printer, command, prefetch_mnist


def prefetch_lessons(names: list[str], out=sys.stdout) -> int:
    from explorer.lessons import lesson_names, load_lesson
    from explorer.lessons.prefetch import prefetch_lesson

    wanted = lesson_names() if names == ["all"] else names
    if not wanted:
        raise CLIError("no lessons found in lessons/")
    failed = 0
    for name in wanted:
        lesson = load_lesson(name)
        r = prefetch_lesson(lesson, progress=_progress_printer(), fetch_mnist=lambda: prefetch_mnist(lambda f, t: None))
        print(f"{lesson.name}: models {', '.join(f'{m} {s}' for m, s in r.models.items()) or 'none'}", file=out)
        for d, s in r.datasets.items():
            print(f"  dataset {d}: {s}", file=out)
        print(f"  results: {r.computed} computed, {r.cached} already stored", file=out)
        if r.no_builder:
            print(f"  computed on first view (no request builder registered): {', '.join(r.no_builder)}", file=out)
        for f in r.failed:
            print(f"  problem: {f}", file=out)
        if not r.ok:
            failed += 1
    return 1 if failed else 0


def _wrap_prefetch() -> None:
    if "prefetch" not in COMMANDS or getattr(COMMANDS["prefetch"][1], "_lessons", False):
        return
    _, original = COMMANDS["prefetch"]

    @command("prefetch", "Download weights and datasets ahead of time (for an offline or teaching machine); "
                         "--lesson NAME|all also prepares lessons.")
    def _prefetch(p: argparse.ArgumentParser) -> Handler:
        base = original(p)
        p.add_argument("--lesson", action="append", metavar="NAME|all",
                       help="prepare a lesson (weights, datasets, step results); 'all' for every lesson; repeatable")

        def run(a: argparse.Namespace) -> int:
            if not a.lesson:
                return base(a)
            rc = base(a) if a.models else 0
            return max(rc, prefetch_lessons(["all"] if "all" in a.lesson else a.lesson))

        return run

    _prefetch._lessons = True


_wrap_prefetch()
