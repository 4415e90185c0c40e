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
HELP: dict[str, str] = {}
HEAVY: set[str] = set()  # commands whose arguments come from the attack registry (importing torch)


class CLIError(Exception):
    """An error the CLI reports as one line."""


def command(name: str, help_text: str, heavy: bool = False):
    """Register a sub-command: the decorated function adds its arguments and returns a handler.

    ``heavy``: building its arguments imports torch (the attack registry): its parser is built only when that
    command is the one run, so ``python -m explorer --help`` never imports torch.
    """

    def wrap(fn: Callable[[argparse.ArgumentParser], Handler]):
        def add(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
            p = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
            p.set_defaults(_handler=fn(p))
            return p

        COMMANDS[name] = (add, fn)
        HELP[name] = help_text
        if heavy:
            HEAVY.add(name)
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


# ---------------------------------------------------------------------------------------------------------
# attack and sweep: thin callers of explorer.runs (the same requests and rules as the pages)
# ---------------------------------------------------------------------------------------------------------

def _add_params(p: argparse.ArgumentParser, sweep: bool) -> None:
    """One flag per parameter name of every registered attack (read from the registry: a new attack's
    parameters appear here without editing this file). Defaults are None: the chosen attack's own default."""
    from explorer.attacks import registry

    seen: dict[str, str] = {}
    for spec in registry.specs():
        if sweep and spec.minimal:
            continue
        for prm in spec.params:
            if prm.kind == "alpha" and sweep:
                continue
            if prm.name in seen:
                seen[prm.name] += f", {spec.name}"
                continue
            seen[prm.name] = spec.name
            flags = [prm.flag, *prm.aliases]
            text = prm.help.replace("%", "%%")  # argparse %-formats help strings ("0.02 = 2%" crashed --help)
            if prm.kind == "bool":
                p.add_argument(*flags, dest=prm.name, action=argparse.BooleanOptionalAction, default=None,
                               help=text)
            elif prm.kind == "alpha":
                p.add_argument(*flags, dest=prm.name, type=_eps_arg, default=None, help=text)
            else:
                p.add_argument(*flags, dest=prm.name, type=int if prm.kind == "int" else float, default=None,
                               help=f"{text} (default {prm.default})")


def _config_from_args(a: argparse.Namespace, config, sweep: bool = False):
    """``config`` with every parameter of its attack set from the flags given (others: the spec's default)."""
    from explorer.attacks import registry

    spec = registry.get(config.attack)
    values = {}
    for prm in spec.params:
        if prm.kind == "alpha" and sweep:
            continue
        v = getattr(a, prm.name, None)
        values[prm.name] = prm.default if v is None and prm.kind != "alpha" else v
        if v is None and prm.kind == "alpha":
            values[prm.name] = config.alpha
    return config.with_params(**values)

def _prepare(model_arg: str, image_arg: str):
    """(spec, model, image, x, clean probs, label, label source): the same path as the page's sidebar."""
    from explorer.digest import array_digest
    from explorer.images import to_model_input
    from explorer.inference import predict_proba
    from explorer.models import get_spec, load_model

    from explorer.runs.rules import RunInputs, choose_label

    spec = get_spec(model_arg)
    image = load_image_arg(image_arg)
    x = to_model_input(image, spec.input_shape, resize=spec.resize)
    model = load_model(model_arg)
    clean = predict_proba(model, x[None])[0]
    y, source = choose_label(image.label, clean)
    inputs = RunInputs(model_id=spec.id, image_name=image.name, image_id=image.sample_id or image_arg,
                       digest=array_digest(x), label=y, label_source=source)
    return spec, model, x, clean, inputs


def _eps_arg(text: str) -> float:
    from explorer.runs.rules import parse_eps

    try:
        return parse_eps(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _one_line_errors(p: argparse.ArgumentParser) -> None:
    """Usage errors of this sub-command as one line on stderr (exit 2), like every other CLI error."""

    def error(message: str):
        print(f"error: {p.prog.split()[-1]}: {' '.join(str(message).split())}", file=sys.stderr)
        sys.exit(2)

    p.error = error  # type: ignore[method-assign]


def _add_common(p: argparse.ArgumentParser) -> None:
    _one_line_errors(p)
    p.add_argument("--model", required=True, help="a model id (python -m explorer models)")
    p.add_argument("--image", required=True, help="an image file, or a sample id such as digits:0 or photo:chelsea")
    p.add_argument("--target", default=None, help="targeted attack: a class index or name (e.g. 23 or vulture)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _check_target(target: int | None, inputs: RunInputs, class_names: Sequence[str]) -> None:
    if target is not None and target == inputs.label:
        raise CLIError(f"target class {target} ({class_names[target]}) is the true class "
                       f"({inputs.label_source}): pick another class for a targeted attack")


@command("attack", "Attack one image and report the adversarial's prediction, its size and the 8-bit check.",
         heavy=True)
def _attack(p: argparse.ArgumentParser):
    from explorer.attacks import registry

    _add_common(p)
    p.add_argument("--attack", required=True, choices=registry.names())
    p.add_argument("--eps", type=_eps_arg, default=None,
                   help="the budget: 8/255 or 0.03 (L∞, pixel units); the L2 radius for L2 attacks "
                        "(default: explorer.runs.rules.default_eps for the model; unused by minimal attacks)")
    _add_params(p, sweep=False)
    p.add_argument("--out", default=None, help="save the adversarial as a PNG here")

    def run(a: argparse.Namespace) -> int:
        import numpy as np

        from explorer.attacks.config import AttackConfig
        from explorer.attacks.quantize import to_png_bytes
        from explorer.runs import AttackRequest, PointChecksRequest, rules, run
        from explorer.runs.rules import eps_text, parse_target, run_record

        spec, model, x, clean, inputs = _prepare(a.model, a.image)
        names = spec.class_names
        target = parse_target(a.target, names)
        _check_target(target, inputs, names)
        aspec = registry.get(a.attack)
        photo = rules.is_photo(spec)
        eps = 0.0 if aspec.minimal else (a.eps if a.eps is not None else rules.default_eps(a.attack, photo))
        config = _config_from_args(a, AttackConfig(attack=a.attack, eps=float(eps), target=target))
        out = run(AttackRequest(spec.id, inputs.digest, inputs.label, config, None, x))
        adv = out.adversarial
        adv_probs = out.probs
        checks = run(PointChecksRequest(spec.id, inputs.digest, out.adv_digest, inputs.label, target,
                                        rules.noise_seed(config), None, x, adv))
        metrics, eight, noise = checks.metrics, checks.eight_bit, checks.noise
        rec = run_record(inputs, config, names, clean, adv_probs, metrics, eight, noise, success=out.success)
        if a.out:
            Path(a.out).write_bytes(to_png_bytes(adv))
            rec["out"] = a.out
        if a.json:
            print(json.dumps(rec, indent=2))
            return 0
        lab = rec["labels"]
        fmt = lambda e: eps_text(e, photo, a.attack)  # noqa: E731
        budget = "minimal perturbation" if aspec.minimal else f"ε = {fmt(config.eps)}"
        print(f"{aspec.label} on {spec.name}, {inputs.image_name}, {budget}")
        print(f"true class: {lab['true']['name']} ({inputs.label_source}); clean prediction: "
              f"{lab['clean_prediction']['name']} ({clean[int(np.argmax(clean))] * 100:.2f}%)")
        goal = f" (target {lab['target']['name']})" if target is not None else ""
        print(f"adversarial: {lab['adversarial_prediction']['name']} ({adv_probs.max() * 100:.2f}%){goal} -> "
              + ("attack succeeded" if rec["success"] else "attack failed"))
        pt = rec["perturbation"]
        psnr = "inf" if pt["psnr_db"] is None else f"{pt['psnr_db']:.2f} dB"
        print(f"perturbation: L∞ {pt['linf']:.5f}, L2 {pt['l2']:.5f}, PSNR {psnr}, SSIM {pt['ssim']:.4f}")
        e8 = rec["eight_bit"]
        print(f"8-bit PNG: {e8['prediction']['name']} ({e8['probability'] * 100:.2f}%) -> "
              + ("the flip survives saving" if e8["survives"] else
                 ("the flip does NOT survive saving" if rec["success"] else "no flip to keep")))
        nb = rec["noise_baseline"]
        print(f"random ±{nb['linf']:.4g} noise ({nb['draws']} draws): label moved in "
              f"{nb['flip_rate'] * nb['draws']:.0f}/{nb['draws']}, mean p(true) {nb['mean_true_prob'] * 100:.1f}%")
        rows = [[r["name"], f"{r['probability'] * 100:.2f}%", f"{c['name']}", f"{c['probability'] * 100:.2f}%"]
                for r, c in zip(rec["probabilities"]["adversarial_top5"], rec["probabilities"]["clean_top5"])]
        print(_table(rows, ["adversarial", "prob", "clean", "prob"]))
        if a.out:
            print(f"saved {a.out}")
        return 0

    return run


@command("sweep", "Attack one image over a grid of ε: the flip ε and the confidence table.", heavy=True)
def _sweep(p: argparse.ArgumentParser):
    from explorer.attacks import registry
    from explorer.runs.rules import GRID_POINTS

    _add_common(p)
    p.add_argument("--attack", required=True, choices=registry.budget_names())
    p.add_argument("--eps-max", type=_eps_arg, default=None,
                   help="the grid's largest ε (default 16/255 photos, 0.5 digits; L2: 1 photos, 2 digits)")
    p.add_argument("--n", type=int, default=GRID_POINTS, help=f"grid points from 0 (default {GRID_POINTS})")
    p.add_argument("--alpha-frac", type=float, default=None,
                   help="step size as a fraction of each ε (default: 2.5/steps for PGD, 1/steps for BIM, MI-FGSM)")
    _add_params(p, sweep=True)

    def run(a: argparse.Namespace) -> int:
        from explorer.attacks.config import alpha_fraction
        from explorer.runs import SweepRequest, rules, run
        from explorer.runs.rules import eps_grid, eps_text, norm_name, parameters, parse_target, sweep_config

        spec, model, x, clean, inputs = _prepare(a.model, a.image)
        names = spec.class_names
        target = parse_target(a.target, names)
        _check_target(target, inputs, names)
        photo = rules.is_photo(spec)
        grid = eps_grid(a.attack, photo, spec.input_shape, a.eps_max, a.n)
        config = sweep_config(a.attack, grid[-1], alpha_frac=a.alpha_frac, target=target)
        config = _config_from_args(a, config, sweep=True)
        sw = run(SweepRequest(spec.id, inputs.digest, inputs.label, config, grid, None, x))
        params = parameters(config)
        params.pop("eps", None)
        params.update(eps_max=grid[-1], n=len(grid))
        if not registry.get(a.attack).direction:
            params.pop("alpha", None)
            params["alpha_frac"] = alpha_fraction(a.attack, config.steps, config.eps, config.alpha)
        if a.json:
            print(json.dumps({
                "model": inputs.model_id, "image": {"name": inputs.image_name, "id": inputs.image_id,
                                                    "digest": inputs.digest},
                "attack": a.attack, "parameters": params, "norm": norm_name(a.attack),
                "label": {"class": inputs.label, "name": names[inputs.label], "source": inputs.label_source},
                "target": target, "flip_eps": sw.flip_eps,
                "flip_bracket": None if sw.flip_bracket is None else list(sw.flip_bracket),
                "flip_class": None if sw.flip_class is None else {"class": sw.flip_class,
                                                                  "name": names[sw.flip_class]},
                "eps": sw.eps.tolist(), "pred": sw.pred.tolist(), "true_prob": sw.true_prob.tolist(),
                "flip_prob": sw.flip_prob.tolist(), "margin": sw.margin.tolist(),
                "flipped": sw.flipped.tolist(),
            }, indent=2))
            return 0
        fmt = lambda e: eps_text(e, photo, a.attack)  # noqa: E731
        goal = f"reaches {names[target]}" if target is not None else "changes"
        print(f"{registry.get(a.attack).label} on {spec.name}, {inputs.image_name}: true class {names[inputs.label]} "
              f"({inputs.label_source}), {len(grid)} ε from 0 to {fmt(grid[-1])}")
        if sw.flip_eps is None:
            print(f"flip ε: none (the label never {goal} up to ε = {fmt(grid[-1])})")
        else:
            print(f"flip ε: {sw.flip_eps:.6g} ({fmt(sw.flip_eps)}), where the label {goal}: "
                  f"{names[inputs.label]} -> {names[sw.flip_class]}")
        flip_name = names[sw.flip_class] if sw.flip_class is not None else "-"
        rows = [[f"{e:.5f}", fmt(e), names[int(sw.pred[i])], f"{sw.true_prob[i] * 100:.2f}%",
                 f"{sw.flip_prob[i] * 100:.2f}%", f"{sw.margin[i]:+.3f}", "yes" if sw.flipped[i] else ""]
                for i, e in enumerate(sw.eps)]
        print(_table(rows, ["eps", "eps (human)", "prediction", f"p({names[inputs.label]})", f"p({flip_name})",
                            "margin", "flipped"]))
        return 0

    return run



def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; a heavy command's arguments are added only when ``argv`` runs that command (``argv=None``:
    every command in full)."""
    parser = argparse.ArgumentParser(prog="python -m explorer", description="Adversarial Explorer command line")
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = next((a for a in argv if a in COMMANDS), None) if argv is not None else None
    for name, (add, _) in COMMANDS.items():
        if name in HEAVY and argv is not None and name != chosen:
            sub.add_parser(name, help=HELP[name], description=HELP[name])  # never parsed: another command runs
        else:
            add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _load_command_modules()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
    """Import modules that register more commands (lessons, lab, defences)."""
    import importlib

    for name in ("explorer.jobs_cli", "explorer.lab_cli", "explorer.defences.cli"):
        importlib.import_module(name)
