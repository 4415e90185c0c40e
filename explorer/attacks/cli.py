"""``python -m explorer attack`` and ``python -m explorer sweep``, and the input rules they share with Attack Studio.

    python -m explorer attack --model digits-cnn --image digits:0 --attack pgd --eps 0.1 --steps 10 --json
    python -m explorer sweep --model resnet18 --image photo:chelsea --attack fgsm --eps-max 16/255 --n 64

The page (``pages/attack_studio.py``) and the CLI give the same numbers for the same inputs because both go
through the functions of the first section: the same preprocessing (``explorer.images.to_model_input``), the
same label (the dataset's label for a dataset sample, else the model's clean prediction), the same ε grid, the
same sweep settings, and the same JSON record. This module imports no streamlit.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.attacks.config import (
    ATTACK_NAMES,
    ATTACKS,
    GRADIENT_ATTACKS,
    MINIMAL_ATTACKS,
    AttackConfig,
    alpha_fraction,
    eps_upper,
)
from explorer.cli import CLIError, _table, command, load_image_arg

# ---------------------------------------------------------------------------------------------------------
# Shared with Attack Studio: inputs, grids, settings and the record of a run
# ---------------------------------------------------------------------------------------------------------

GRID_POINTS = 64
PHOTO_LINF_MAX = 16 / 255
SMALL_LINF_MAX = 0.5
PHOTO_L2_MAX = 1.0
SMALL_L2_MAX = 2.0
# The ε range choices the page offers (the top of the grid), in pixel units.
RANGE_CHOICES = {
    ("photo", "linf"): (4 / 255, 8 / 255, 16 / 255, 32 / 255, 64 / 255),
    ("small", "linf"): (0.1, 0.25, 0.5, 1.0),
    ("photo", "l2"): (0.25, 0.5, 1.0, 2.0, 4.0),
    ("small", "l2"): (0.5, 1.0, 2.0, 4.0, 8.0),
}


def parse_eps(text: str | float) -> float:
    """``"8/255"``, ``"0.03"``, ``"3e-2"`` -> float; a one-line ``ValueError`` for anything else."""
    raw = str(text).strip()
    try:
        if "/" in raw:
            num, den = raw.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(raw)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"ε = {raw!r} is not a number (write 8/255 or 0.03)") from None
    if not math.isfinite(value):
        raise ValueError(f"ε = {raw!r} is not a finite number")
    return value


def norm_name(attack: str) -> str:
    """The norm ε is measured in: ``"l2"`` for PGD (L2), else ``"linf"``."""
    return "l2" if attack == "pgd-l2" else "linf"


def kind_of(is_photo: bool) -> str:
    return "photo" if is_photo else "small"


def default_eps_max(attack: str, is_photo: bool) -> float:
    """The top of the default grid: L∞ 16/255 (photos) or 0.5 (digits); L2 radius 1 (photos) or 2 (digits)."""
    if norm_name(attack) == "l2":
        return PHOTO_L2_MAX if is_photo else SMALL_L2_MAX
    return PHOTO_LINF_MAX if is_photo else SMALL_LINF_MAX


def eps_grid(attack: str, is_photo: bool, input_shape: Sequence[int], eps_max: float | None = None,
             n: int = GRID_POINTS) -> tuple[float, ...]:
    """``n`` evenly spaced ε from 0 to ``eps_max`` (default ``default_eps_max``), as a hashable tuple.

    For L∞ attacks this is ``explorer.attacks.default_eps_grid``; PGD (L2) gets the same spacing in L2 radius.
    """
    if int(n) != n or n < 2:
        raise ValueError(f"a grid needs at least 2 values, got n = {n}")
    if n > 1024:
        raise ValueError(f"n = {n} is too many grid points (at most 1024)")
    top = default_eps_max(attack, is_photo) if eps_max is None else float(eps_max)
    upper = eps_upper(attack, tuple(input_shape))
    if not (math.isfinite(top) and 0 < top <= upper):
        unit = "the L2 radius" if norm_name(attack) == "l2" else "pixel units"
        raise ValueError(f"the largest ε must be in (0, {upper:g}] ({unit}), got {top:g}")
    return tuple(float(e) for e in np.linspace(0.0, top, int(n)))


def eps_text(eps: float, is_photo: bool, attack: str = "fgsm", digits: int = 4) -> str:
    """ε in human units: ``8/255`` for photos (L∞), pixel units for digits, the radius for L2."""
    if norm_name(attack) == "l2":
        return f"{eps:.{digits}g} (L2)"
    if is_photo:
        k = eps * 255
        return f"{k:.0f}/255" if abs(k - round(k)) < 1e-9 else f"{k:.2f}/255"
    return f"{eps:.{digits}g}"


def choose_label(dataset_label: int | None, clean_probs: np.ndarray) -> tuple[int, str]:
    """The label an attack works against, and where it comes from (the page and the CLI agree on it)."""
    if dataset_label is not None:
        return int(dataset_label), "dataset label"
    return int(np.asarray(clean_probs).argmax()), "clean prediction"


def parse_target(text: str | int | None, class_names: Sequence[str]) -> int | None:
    """A class index (``"23"``) or name (``"vulture"``, case-insensitive; a unique prefix also works)."""
    if text is None or str(text).strip() == "":
        return None
    raw = str(text).strip()
    k = len(class_names)
    if raw.lstrip("-").isdigit():
        t = int(raw)
        if not 0 <= t < k:
            raise ValueError(f"target class {t} is out of range: the model has classes 0 to {k - 1}")
        return t
    low = raw.lower()
    exact = [i for i, n in enumerate(class_names) if n.lower() == low]
    if exact:
        return exact[0]
    starts = [i for i, n in enumerate(class_names) if n.lower().startswith(low)]
    if len(starts) == 1:
        return starts[0]
    if starts:
        shown = ", ".join(repr(class_names[i]) for i in starts[:5])
        raise ValueError(f"target {raw!r} matches several classes ({shown}{', ...' if len(starts) > 5 else ''})")
    raise ValueError(f"target {raw!r} is not a class index or name of this model")


def comparison_attack(attack: str) -> str | None:
    """The other attack of {FGSM, PGD} overlaid on the confidence chart (None for PGD-L2: a different norm)."""
    if attack == "fgsm":
        return "pgd"
    if attack in ("pgd", "bim", "mifgsm"):
        return "fgsm"
    return None


def sweep_config(attack: str, eps_max: float, *, steps: int = 10, alpha_frac: float | None = None,
                 random_start: bool = True, seed: int = 0, decay: float = 1.0,
                 target: int | None = None) -> AttackConfig:
    """The settings of a sweep over a grid that ends at ``eps_max`` (one cache entry on the page).

    The settings never depend on where the ε slider is. A sweep reads ``config.eps`` only to turn an explicit
    ``alpha`` into a fraction of ε: with ``alpha_frac`` each row's step is ``alpha_frac · ε`` and ``eps`` is the
    grid's top; without it (the attack's default fraction, ``alpha_fraction``) ``eps`` and every unused field
    keep ``AttackConfig``'s defaults, so equal sweeps share one cache entry (the Home page's FGSM sweep is
    Attack Studio's default one).
    """
    if attack not in GRADIENT_ATTACKS:
        raise ValueError(f"a sweep runs one of {', '.join(GRADIENT_ATTACKS)}, not {attack!r}")
    iterative = attack != "fgsm"
    explicit = alpha_frac is not None and iterative
    return AttackConfig(
        attack=attack, eps=float(eps_max) if explicit else AttackConfig.eps, steps=int(steps) if iterative else 10,
        alpha=float(alpha_frac) * float(eps_max) if explicit else None,
        random_start=bool(random_start) if attack in ("pgd", "pgd-l2") else True,
        seed=int(seed) if attack in ("pgd", "pgd-l2") else 0,
        decay=float(decay) if attack == "mifgsm" else 1.0, target=target,
    )


def point_config(config: AttackConfig, eps: float) -> AttackConfig:
    """The single attack at one grid ε that reproduces that row of a sweep with ``config``."""
    from dataclasses import replace

    alpha = None if config.alpha is None else float(eps) * (float(config.alpha) / float(config.eps))
    return replace(config, eps=float(eps), alpha=alpha)


def step_alpha(config: AttackConfig) -> float:
    """The absolute step size an iterative attack with ``config`` takes (ε for FGSM, 0 for minimal attacks)."""
    if config.attack in MINIMAL_ATTACKS:
        return 0.0
    if config.alpha is not None:
        return float(config.alpha)
    return float(config.eps) * alpha_fraction(config.attack, config.steps)


def minimal_config(attack: str, *, steps: int = 50, overshoot: float = 0.02, cw_c: float = 1.0,
                   cw_steps: int = 100, target: int | None = None) -> AttackConfig:
    """DeepFool / Carlini-Wagner settings (ε is not a budget for them: kept at 0)."""
    if attack not in MINIMAL_ATTACKS:
        raise ValueError(f"{attack!r} is not a minimal-perturbation attack ({', '.join(MINIMAL_ATTACKS)})")
    if attack == "deepfool":
        return AttackConfig(attack="deepfool", eps=0.0, steps=int(steps), overshoot=float(overshoot), target=target)
    return AttackConfig(attack="cw", eps=0.0, cw_c=float(cw_c), cw_steps=int(cw_steps), target=target)


def parameters(config: AttackConfig) -> dict:
    """The parameters that matter for ``config.attack`` (the JSON record's ``parameters``)."""
    c = config
    if c.attack == "deepfool":
        return {"steps": c.steps, "overshoot": c.overshoot, "candidates": c.candidates, "target": c.target}
    if c.attack == "cw":
        return {"c": c.cw_c, "steps": c.cw_steps, "lr": c.cw_lr, "kappa": c.cw_kappa,
                "search_steps": c.cw_search_steps, "target": c.target}
    out: dict = {"eps": c.eps, "norm": norm_name(c.attack), "target": c.target}
    if c.attack != "fgsm":
        out.update(steps=c.steps, alpha=step_alpha(c))
    if c.attack in ("pgd", "pgd-l2"):
        out.update(random_start=c.random_start, seed=c.seed)
    if c.attack == "mifgsm":
        out.update(decay=c.decay)
    return out


def cli_command(model_id: str, image: str, config: AttackConfig, out: str | None = None) -> str:
    """The ``python -m explorer attack ...`` line that reproduces ``config`` on ``image``."""
    c = config
    parts = ["python -m explorer attack", f"--model {model_id}", f"--image {image}", f"--attack {c.attack}"]
    if c.attack in MINIMAL_ATTACKS:
        parts.append(f"--steps {c.steps if c.attack == 'deepfool' else c.cw_steps}")
        if c.attack == "cw":
            parts.append(f"--cw-c {c.cw_c!r}")
        else:
            parts.append(f"--overshoot {c.overshoot!r}")
    else:
        parts.append(f"--eps {c.eps!r}")
        if c.attack != "fgsm":
            parts.append(f"--steps {c.steps}")
            if c.alpha is not None:
                parts.append(f"--alpha {c.alpha!r}")
        if c.attack in ("pgd", "pgd-l2"):
            parts.append(f"--seed {c.seed}")
            if not c.random_start:
                parts.append("--no-random-start")
        if c.attack == "mifgsm" and c.decay != 1.0:
            parts.append(f"--momentum {c.decay!r}")
    if c.target is not None:
        parts.append(f"--target {c.target}")
    if out:
        parts.append(f"--out {out}")
    return " ".join(parts)


def top_k(probs: np.ndarray, class_names: Sequence[str], k: int = 5) -> list[dict]:
    p = np.asarray(probs, np.float64)
    return [{"class": int(i), "name": class_names[int(i)], "probability": float(p[i])}
            for i in np.argsort(-p)[:k]]


@dataclass(frozen=True)
class RunInputs:
    """Everything that identifies an attack run (the head of its JSON record)."""

    model_id: str
    image_name: str
    image_id: str | None  # sample id, or the file path given to the CLI; None for an upload
    digest: str  # sha256 of the model's input (explorer.digest.array_digest)
    label: int
    label_source: str


def run_record(inputs: RunInputs, config: AttackConfig, class_names: Sequence[str], clean_probs: np.ndarray,
               adv_probs: np.ndarray, metrics, eight_bit=None, noise=None, flip_eps: float | None = None,
               success: bool | None = None) -> dict:
    """The JSON record of one run: model, image digest, attack, parameters, seed, labels, probabilities, ...

    ``metrics``: ``explorer.attacks.ImageMetrics``; ``eight_bit``: ``EightBitCheck`` (one image);
    ``noise``: ``NoiseBaseline``. The page's download and ``python -m explorer attack --json`` both write it.
    """
    y = int(inputs.label)
    t = config.target
    clean_pred, adv_pred = int(np.argmax(clean_probs)), int(np.argmax(adv_probs))
    if success is None:
        success = adv_pred == t if t is not None else adv_pred != y
    rec: dict = {
        "model": inputs.model_id,
        "image": {"name": inputs.image_name, "id": inputs.image_id, "digest": inputs.digest},
        "attack": config.attack,
        "attack_name": ATTACK_NAMES[config.attack],
        "parameters": parameters(config),
        "seed": config.seed if config.attack in ("pgd", "pgd-l2") else None,
        "labels": {
            "true": {"class": y, "name": class_names[y], "source": inputs.label_source},
            "target": None if t is None else {"class": int(t), "name": class_names[int(t)]},
            "clean_prediction": {"class": clean_pred, "name": class_names[clean_pred]},
            "adversarial_prediction": {"class": adv_pred, "name": class_names[adv_pred]},
        },
        "success": bool(success),
        "probabilities": {
            "clean_true_class": float(clean_probs[y]),
            "adversarial_true_class": float(adv_probs[y]),
            "clean_top5": top_k(clean_probs, class_names),
            "adversarial_top5": top_k(adv_probs, class_names),
        },
        "perturbation": {"linf": float(metrics.linf), "l2": float(metrics.l2),
                         "psnr_db": None if math.isinf(metrics.psnr) else float(metrics.psnr),
                         "ssim": float(metrics.ssim)},
    }
    if t is not None:
        rec["probabilities"]["adversarial_target"] = float(adv_probs[int(t)])
    if flip_eps is not None:
        rec["flip_eps"] = float(flip_eps)
    if eight_bit is not None:
        p8 = int(eight_bit.pred_8bit[0])
        rec["eight_bit"] = {"prediction": {"class": p8, "name": class_names[p8]},
                            "probability": float(eight_bit.probs_8bit[0][p8]),
                            "survives": bool(eight_bit.survives[0]),
                            "max_rounding_change": float(eight_bit.max_change[0])}
    if noise is not None:
        rec["noise_baseline"] = {"linf": float(noise.eps), "draws": int(len(noise.pred)),
                                 "flip_rate": float(noise.flip_rate),
                                 "mean_true_prob": float(np.mean(noise.true_prob)),
                                 "first_prediction": {"class": int(noise.pred[0]),
                                                      "name": class_names[int(noise.pred[0])]}}
    rec["command"] = cli_command(inputs.model_id, inputs.image_id or "IMAGE.png", config)
    return rec


# ---------------------------------------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------------------------------------


def _prepare(model_arg: str, image_arg: str):
    """(spec, model, image, x, clean probs, label, label source): the same path as the page's sidebar."""
    from explorer.digest import array_digest
    from explorer.images import to_model_input
    from explorer.inference import predict_proba
    from explorer.models import get_spec, load_model

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


@command("attack", "Attack one image and report the adversarial's prediction, its size and the 8-bit check.")
def _attack(p: argparse.ArgumentParser):
    _add_common(p)
    p.add_argument("--attack", required=True, choices=ATTACKS)
    p.add_argument("--eps", type=_eps_arg, default=None,
                   help="the budget: 8/255 or 0.03 (L∞, pixel units); the L2 radius for pgd-l2 "
                        "(default 8/255 for photos, 0.15 for digits; unused by deepfool and cw)")
    p.add_argument("--steps", type=int, default=None,
                   help="iterations (BIM, PGD, MI-FGSM: default 10; DeepFool: default 50; CW: default 100)")
    p.add_argument("--alpha", type=_eps_arg, default=None, help="step size (default: the attack's own rule)")
    p.add_argument("--seed", type=int, default=0, help="PGD's random start seed")
    p.add_argument("--no-random-start", action="store_true", help="PGD: start from the image itself")
    p.add_argument("--momentum", type=float, default=1.0, help="MI-FGSM's decay μ")
    p.add_argument("--overshoot", type=float, default=0.02, help="DeepFool's overshoot")
    p.add_argument("--cw-c", type=float, default=1.0, help="Carlini-Wagner's trade-off constant c")
    p.add_argument("--out", default=None, help="save the adversarial as a PNG here")

    def run(a: argparse.Namespace) -> int:
        from explorer.attacks import check_config, eight_bit_check, image_metrics, noise_baseline, run_attack
        from explorer.attacks.quantize import to_png_bytes

        spec, model, x, clean, inputs = _prepare(a.model, a.image)
        names = spec.class_names
        target = parse_target(a.target, names)
        _check_target(target, inputs, names)
        if a.attack in MINIMAL_ATTACKS:
            steps = a.steps if a.steps is not None else (50 if a.attack == "deepfool" else 100)
            config = minimal_config(a.attack, steps=steps, overshoot=a.overshoot, cw_c=a.cw_c, cw_steps=steps,
                                    target=target)
        else:
            eps = a.eps if a.eps is not None else (8 / 255 if spec.is_photo_model else 0.15)
            config = AttackConfig(attack=a.attack, eps=float(eps), steps=a.steps if a.steps is not None else 10,
                                  alpha=a.alpha, random_start=not a.no_random_start, seed=a.seed,
                                  decay=a.momentum, target=target)
        check_config(config, len(names), inputs.label, input_shape=spec.input_shape)
        res = run_attack(model, x[None], inputs.label, config)
        adv = res.adversarial[0].detach().cpu().numpy()
        adv_probs = res.probs[0]
        metrics = image_metrics(x, adv)
        eight = eight_bit_check(model, adv[None], inputs.label, target)
        noise = noise_baseline(model, x[None], inputs.label, min(1.0, metrics.linf), seed=config.seed)
        rec = run_record(inputs, config, names, clean, adv_probs, metrics, eight, noise,
                         success=bool(res.success[0]))
        if a.out:
            Path(a.out).write_bytes(to_png_bytes(adv))
            rec["out"] = a.out
        if a.json:
            print(json.dumps(rec, indent=2))
            return 0
        lab = rec["labels"]
        fmt = lambda e: eps_text(e, spec.is_photo_model, a.attack)  # noqa: E731
        budget = "minimal perturbation" if a.attack in MINIMAL_ATTACKS else f"ε = {fmt(config.eps)}"
        print(f"{ATTACK_NAMES[a.attack]} on {spec.name}, {inputs.image_name}, {budget}")
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


@command("sweep", "Attack one image over a grid of ε: the flip ε and the confidence table.")
def _sweep(p: argparse.ArgumentParser):
    _add_common(p)
    p.add_argument("--attack", required=True, choices=GRADIENT_ATTACKS)
    p.add_argument("--eps-max", type=_eps_arg, default=None,
                   help="the grid's largest ε (default 16/255 photos, 0.5 digits; L2: 1 photos, 2 digits)")
    p.add_argument("--n", type=int, default=GRID_POINTS, help=f"grid points from 0 (default {GRID_POINTS})")
    p.add_argument("--steps", type=int, default=10, help="iterations of BIM, PGD, MI-FGSM")
    p.add_argument("--alpha-frac", type=float, default=None,
                   help="step size as a fraction of each ε (default: 2.5/steps for PGD, 1/steps for BIM, MI-FGSM)")
    p.add_argument("--seed", type=int, default=0, help="PGD's random start seed")
    p.add_argument("--no-random-start", action="store_true")
    p.add_argument("--momentum", type=float, default=1.0, help="MI-FGSM's decay μ")

    def run(a: argparse.Namespace) -> int:
        from explorer.attacks import sweep

        spec, model, x, clean, inputs = _prepare(a.model, a.image)
        names = spec.class_names
        target = parse_target(a.target, names)
        _check_target(target, inputs, names)
        grid = eps_grid(a.attack, spec.is_photo_model, spec.input_shape, a.eps_max, a.n)
        config = sweep_config(a.attack, grid[-1], steps=a.steps, alpha_frac=a.alpha_frac,
                              random_start=not a.no_random_start, seed=a.seed, decay=a.momentum, target=target)
        sw = sweep(model, x[None], inputs.label, config, list(grid))
        params = parameters(config)
        params.pop("eps", None)
        params.update(eps_max=grid[-1], n=len(grid))
        if a.attack != "fgsm":
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
        fmt = lambda e: eps_text(e, spec.is_photo_model, a.attack)  # noqa: E731
        goal = f"reaches {names[target]}" if target is not None else "changes"
        print(f"{ATTACK_NAMES[a.attack]} on {spec.name}, {inputs.image_name}: true class {names[inputs.label]} "
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


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - convenience
    from explorer.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
