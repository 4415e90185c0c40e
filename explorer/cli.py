"""Command line: ``python -m explorer {models,train,prefetch,predict,...}``.

Errors print one line on stderr and exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Callable[[argparse._SubParsersAction], argparse.ArgumentParser], Handler]] = {}


class CLIError(Exception):
    """An error the CLI reports as one line."""


def command(name: str, help_text: str):
    """Register a sub-command: the decorated function adds its arguments and returns a handler."""

    def wrap(fn: Callable[[argparse.ArgumentParser], Handler]):
        def add(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
            p = sub.add_parser(name, help=help_text, description=help_text)
            p.set_defaults(_handler=fn(p))
            return p

        COMMANDS[name] = (add, fn)
        return fn

    return wrap


def _progress_printer(stream=sys.stderr):
    last = {"text": ""}

    def progress(frac: float, text: str) -> None:
        if text != last["text"]:
            print(f"\r[{frac * 100:5.1f}%] {text}".ljust(80), end="", file=stream, flush=True)
            last["text"] = text
            if frac >= 1.0:
                print(file=stream)

    return progress


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


@command("models", "List every model with its dataset, availability and held-out accuracy.")
def _models(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("--json", action="store_true", help="machine-readable output")

    def run(a: argparse.Namespace) -> int:
        from explorer.models import accuracy, availability, list_specs

        rows = []
        for s in list_specs():
            av = availability(s.id)
            acc = accuracy(s.id)
            rows.append({"id": s.id, "name": s.name, "dataset": s.dataset, "input": "x".join(map(str, s.input_shape)),
                         "availability": av.status.value, "fix": av.fix,
                         "accuracy": None if acc is None else round(acc, 4)})
        if a.json:
            print(json.dumps(rows, indent=2))
        else:
            print(_table([[r["id"], r["dataset"], r["input"], r["availability"],
                           "-" if r["accuracy"] is None else f"{r['accuracy'] * 100:.1f}%",
                           r["fix"] if r["availability"] != "available" else ""] for r in rows],
                         ["id", "dataset", "input", "availability", "accuracy", "to make available"]))
        return 0

    return run


@command("train", "Train a built-in model (seeded, deterministic) and cache its weights.")
def _train(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("model", help="a built-in model id, e.g. digits-cnn or mnist-cnn")

    def run(a: argparse.Namespace) -> int:
        from explorer.models import accuracy, train

        path = train(a.model, progress=_progress_printer())
        print(f"{a.model}: held-out accuracy {accuracy(a.model) * 100:.2f}%, weights at {path}")
        return 0

    return run


@command("prefetch", "Download weights and datasets ahead of time (for an offline or teaching machine).")
def _prefetch(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("models", nargs="*", help="model ids and/or 'mnist' (default: every torchvision model + MNIST)")

    def run(a: argparse.Namespace) -> int:
        from explorer.models import get_spec, list_specs, prefetch

        targets = a.models or ["mnist"] + [s.id for s in list_specs(include_user=False) if s.family == "torchvision"]
        failed = 0
        for t in targets:
            try:
                if t == "mnist":
                    path = prefetch_mnist(_progress_printer())
                else:
                    get_spec(t)
                    path = prefetch(t, progress=_progress_printer())
                print(f"{t}: ready at {path}")
            except (OSError, RuntimeError) as exc:
                failed += 1
                print(f"{t}: not available offline ({exc.__class__.__name__}: {exc}); run this online", file=sys.stderr)
        return 1 if failed else 0

    return run


def prefetch_mnist(progress) -> Path:
    """Download MNIST with torchvision into the explorer's data cache (the app's MNIST folder)."""
    from explorer.config import get_settings
    from explorer.models.data import find_mnist

    found = find_mnist()
    if found is not None:
        return found
    from torchvision.datasets import MNIST

    root = get_settings().data_dir
    progress(0.0, "MNIST: downloading with torchvision")
    MNIST(str(root), train=False, download=True)
    progress(1.0, "MNIST: done")
    return root


@command("predict", "Classify an image file.")
def _predict(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("--model", required=True)
    p.add_argument("--image", required=True, help="an image file, or a sample id such as digits:8 or photo:chelsea")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--json", action="store_true")

    def run(a: argparse.Namespace) -> int:
        from explorer.inference import predict_proba
        from explorer.models import get_spec, load_model

        spec = get_spec(a.model)
        image = load_image_arg(a.image)
        from explorer.images import to_model_input

        x = to_model_input(image, spec.input_shape, resize=spec.resize)
        probs = predict_proba(load_model(a.model), x[None])[0]
        top = probs.argsort()[::-1][: max(1, a.top)]
        rows = [{"class": int(i), "name": spec.class_names[i], "probability": float(probs[i])} for i in top]
        if a.json:
            print(json.dumps({"model": a.model, "image": image.name, "digest": image.digest, "top": rows}, indent=2))
        else:
            print(_table([[r["name"], f"{r['probability'] * 100:.2f}%"] for r in rows], ["class", "probability"]))
        return 0

    return run


def load_image_arg(arg: str):
    """An image from a path, or a sample id (``digits:8``, ``photo:chelsea``)."""
    from explorer.images import decode_image, load_sample

    path = Path(arg)
    if path.is_file():
        return decode_image(path.read_bytes(), path.name)
    if ":" in arg:
        return load_sample(arg)
    raise CLIError(f"{arg}: no such file (or sample id like digits:8 / photo:chelsea)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description="Adversarial Explorer command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _load_command_modules()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args._handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, no traceback: CLIError, ImageError, ModelUnavailable, KeyError, ...
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {msg}".splitlines()[0], file=sys.stderr)
        return 1


def _load_command_modules() -> None:
    """Import modules that register more commands (attack, sweep, ...) if they exist."""
    import importlib

    for name in ("explorer.attacks.cli", "explorer.defences.cli"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
