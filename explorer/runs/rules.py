"""The rules every caller shares (pages, CLI, benchmarks): one of each, no Streamlit.

* the model's ε scale (:func:`model_kind`: by its DECLARED dataset, never its channel count), the default ε
  (:func:`default_eps`: the only place ``8 / 255`` for photos is written), the ε grid (:func:`eps_grid`), the
  human units (:func:`eps_text`, :func:`eps_axis`);
* the label an attack works against (:func:`choose_label`), a target from a name (:func:`parse_target`);
* sweep / point / minimal settings (:func:`sweep_config`, :func:`point_config`, :func:`minimal_config`);
* the run record and the CLI line that reproduces it (:func:`run_record`, :func:`cli_command`);
* one softmax (:func:`softmax`).

Everything about a particular attack (its norm, parameters, defaults, paper) is read from its spec in
``explorer.attacks.registry``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from explorer.attacks import registry
from explorer.attacks.config import AttackConfig, alpha_fraction, eps_upper

GRID_POINTS = 64
PHOTO_LINF_DEFAULT = 8 / 255
SMALL_LINF_DEFAULT = 0.15
L2_DEFAULT = 0.5
PHOTO_LINF_MAX = 16 / 255
SMALL_LINF_MAX = 0.5
PHOTO_L2_MAX = 1.0
SMALL_L2_MAX = 2.0
# The ε range choices the pages offer (the top of the grid), in pixel units.
RANGE_CHOICES = {
    ("photo", "linf"): (4 / 255, 8 / 255, 16 / 255, 32 / 255, 64 / 255),
    ("small", "linf"): (0.1, 0.25, 0.5, 1.0),
    ("photo", "l2"): (0.25, 0.5, 1.0, 2.0, 4.0),
    ("small", "l2"): (0.5, 1.0, 2.0, 4.0, 8.0),
}
PHOTO_MIN_SIDE = 32  # a user model with inputs at least this large is on the photo scale (CIFAR, ImageNet)
DATASET_KIND = {"imagenet": "photo", "digits": "small", "mnist": "small"}


# ------------------------------------------------------------------------------------------ model kind


def model_kind(model: str | object | None, input_shape: Sequence[int] | None = None) -> str:
    """``"photo"`` or ``"small"``: the ε scale of a model, by what it DECLARES.

    ``model``: a model id, a ``ModelSpec`` or None. Built-in and torchvision models declare their dataset
    (ImageNet: photo; digits, MNIST: small). A user model may declare ``kind``; otherwise its declared input size
    decides (sides of at least ``PHOTO_MIN_SIDE`` px: photo). The channel count never decides: a 3-channel
    8 x 8 digits model is on the digit scale.
    """
    spec = model
    if isinstance(model, str):
        from explorer.models import get_spec

        try:
            spec = get_spec(model)
        except (KeyError, ValueError):
            spec = None
    if spec is not None:
        declared = getattr(spec, "kind", None)
        if declared in ("photo", "small"):
            return declared
        kind = DATASET_KIND.get(getattr(spec, "dataset", ""))
        if kind is not None:
            return kind
        input_shape = getattr(spec, "input_shape", input_shape)
    if input_shape is None or len(input_shape) < 3:
        return "small"
    return "photo" if min(int(s) for s in tuple(input_shape)[-2:]) >= PHOTO_MIN_SIDE else "small"


def is_photo(model: str | object | None, input_shape: Sequence[int] | None = None) -> bool:
    return model_kind(model, input_shape) == "photo"


def kind_of(photo: bool) -> str:
    return "photo" if photo else "small"


# ------------------------------------------------------------------------------------------------- ε


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
    """The norm ε is measured in (``"l2"`` or ``"linf"``), from the attack's spec."""
    return registry.get(attack).norm


def default_eps(attack: str, photo: bool) -> float:
    """THE default ε: an L2 radius of 0.5 for L2 attacks; L∞ 8/255 for photos, 0.15 for digits (past the flip
    of the default digit, so a new user sees one). An unknown name (a bad link) counts as L∞."""
    if attack in registry.names() and norm_name(attack) == "l2":
        return L2_DEFAULT
    return PHOTO_LINF_DEFAULT if photo else SMALL_LINF_DEFAULT


def default_eps_max(attack: str, photo: bool) -> float:
    """The top of the default grid: L∞ 16/255 (photos) or 0.5 (digits); L2 radius 1 (photos) or 2 (digits)."""
    if norm_name(attack) == "l2":
        return PHOTO_L2_MAX if photo else SMALL_L2_MAX
    return PHOTO_LINF_MAX if photo else SMALL_LINF_MAX


def range_choices(attack: str, photo: bool) -> tuple[float, ...]:
    return RANGE_CHOICES[(kind_of(photo), norm_name(attack))]


def eps_grid(attack: str, photo: bool, input_shape: Sequence[int], eps_max: float | None = None,
             n: int = GRID_POINTS) -> tuple[float, ...]:
    """``n`` evenly spaced ε from 0 to ``eps_max`` (default ``default_eps_max``), as a hashable tuple."""
    if int(n) != n or n < 2:
        raise ValueError(f"a grid needs at least 2 values, got n = {n}")
    if n > 1024:
        raise ValueError(f"n = {n} is too many grid points (at most 1024)")
    top = default_eps_max(attack, photo) if eps_max is None else float(eps_max)
    upper = eps_upper(attack, tuple(input_shape))
    if not (math.isfinite(top) and 0 < top <= upper):
        unit = "the L2 radius" if norm_name(attack) == "l2" else "pixel units"
        raise ValueError(f"the largest ε must be in (0, {upper:g}] ({unit}), got {top:g}")
    # Compact values (k/255 with k to 4 digits for L∞ photos, else 5 significant digits), the ends exact, and the
    # default ε itself on the grid (it replaces its nearest point, so the grid stays sorted and n long): a slider
    # over this grid starts at exactly 8/255 or 0.15, and every value prints short (see eps_flag).
    k255 = photo and norm_name(attack) == "linf"
    grid = [_compact(float(e), k255) for e in np.linspace(0.0, top, int(n))]
    grid[0], grid[-1] = 0.0, top
    default = default_eps(attack, photo)
    if 0 < default < top:
        i = int(np.abs(np.asarray(grid) - default).argmin())
        if 0 < i < len(grid) - 1:
            grid[i] = default
    return tuple(grid)


def _compact(eps: float, k255: bool) -> float:
    """``eps`` rounded to a value with a short exact text: k/255 with k to 4 significant digits, or 5 digits."""
    if k255:
        return float(f"{eps * 255:.4g}") / 255
    return float(f"{eps:.5g}")


def eps_flag(eps: float) -> str:
    """ε as a command-line value that parses back (``parse_eps``) to exactly ``eps``, as short as possible:
    ``0.15``, ``8/255``, ``4.825/255``; 17 digits only for a value that has no shorter exact form."""
    eps = float(eps)
    for digits in range(1, 7):
        text = f"{eps:.{digits}g}"
        if float(text) == eps:
            return text
    for digits in range(1, 7):
        k = f"{eps * 255:.{digits}g}"
        if float(k) / 255 == eps:
            return f"{k}/255"
    return repr(eps)


def eps_text(eps: float, photo: bool, attack: str = "fgsm", digits: int = 4) -> str:
    """THE ε formatter: ``8/255`` for photos (L∞), pixel units for digits, the radius for L2."""
    if norm_name(attack) == "l2":
        return f"{eps:.{digits}g} (L2)"
    if photo:
        k = eps * 255
        return f"{k:.0f}/255" if abs(k - round(k)) < 1e-9 else f"{k:.2f}/255"
    return f"{eps:.{digits}g}"


def eps_label(attack: str, photo: bool) -> str:
    """What ε means for this attack on this model (a widget label)."""
    if norm_name(attack) == "l2":
        return "ε: the L2 radius of the whole perturbation (pixel units, images in [0, 1])"
    if photo:
        return "ε in k/255: the most any pixel may change (L∞)"
    return "ε in pixel units: the most any pixel may change (L∞, images in [0, 1])"


def eps_axis(attack: str, photo: bool) -> tuple[float, str, str]:
    """(scale, axis title, tick suffix) of an ε axis: k/255 for L∞ photos, pixel units, or the L2 radius."""
    if photo and norm_name(attack) == "linf":
        return 255.0, "ε (k/255, L∞)", "/255"
    if norm_name(attack) == "l2":
        return 1.0, "ε (L2 radius, pixel units)", ""
    return 1.0, "ε (pixel units, L∞)", ""


# ---------------------------------------------------------------------------------------------- labels


def softmax(logits: np.ndarray) -> np.ndarray:
    """THE numpy softmax over the last axis (float64 inside, float32 out)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def choose_label(dataset_label: int | None, clean_probs: np.ndarray) -> tuple[int, str]:
    """THE label an attack works against, and where it comes from: the dataset's label for a dataset sample,
    else the model's clean prediction."""
    if dataset_label is not None:
        return int(dataset_label), "dataset label"
    return int(np.asarray(clean_probs).argmax()), "clean prediction"


def flip_class(probs: np.ndarray, y: int) -> tuple[int, bool]:
    """The class the label flipped to (top-1, when it is not ``y``) or else the runner-up; and whether it flipped."""
    p = np.asarray(probs)
    top = int(p.argmax())
    if top != int(y):
        return top, True
    order = [int(i) for i in np.argsort(-p, kind="stable") if int(i) != int(y)]
    return order[0], False


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
    """The attack overlaid on the confidence chart (its spec's ``compare``; None for PGD-L2: another norm)."""
    return registry.get(attack).compare


# -------------------------------------------------------------------------------------------- settings


def sweep_config(attack: str, eps_max: float, *, steps: int = 10, alpha_frac: float | None = None,
                 random_start: bool = True, seed: int = 0, decay: float = 1.0, target: int | None = None,
                 params: dict | None = None) -> AttackConfig:
    """The settings of a sweep over a grid that ends at ``eps_max`` (one cache entry on the page).

    The settings never depend on where the ε slider is. A sweep reads ``config.eps`` only to turn an explicit
    ``alpha`` into a fraction of ε: with ``alpha_frac`` each row's step is ``alpha_frac · ε`` and ``eps`` is the
    grid's top; without it ``eps`` and every unused field keep ``AttackConfig``'s defaults, so equal sweeps
    share one cache entry (the Home page's FGSM sweep is Attack Studio's default one). ``params``: values of
    the attack's own parameters (by name) beyond the common ones.
    """
    spec = registry.get(attack)
    if spec.minimal:
        raise ValueError(f"a sweep runs one of {', '.join(registry.budget_names())}, not {attack!r}")
    has = spec.has
    explicit = alpha_frac is not None and has("alpha")
    config = AttackConfig(
        attack=attack, eps=float(eps_max) if explicit else AttackConfig.eps,
        steps=int(steps) if has("steps") else 10,
        alpha=float(alpha_frac) * float(eps_max) if explicit else None,
        random_start=bool(random_start) if has("random_start") else True,
        seed=int(seed) if has("seed") else 0,
        decay=float(decay) if spec.param("momentum") is not None and spec.param("momentum").field == "decay"
        else 1.0, target=target,
    )
    if params:
        config = config.with_params(**params)
    return config


def point_config(config: AttackConfig, eps: float) -> AttackConfig:
    """The single attack at one grid ε that reproduces that row of a sweep with ``config``.

    An explicit α is a fraction of ε in a sweep; at ε = 0 the row's step is 0, which a single call refuses:
    there the step is left to the attack's rule (α = None, also 0 at ε = 0), which gives the same row.
    """
    if config.alpha is None or float(eps) == 0.0:
        return replace(config, eps=float(eps), alpha=None)
    return replace(config, eps=float(eps), alpha=float(eps) * (float(config.alpha) / float(config.eps)))


def step_alpha(config: AttackConfig) -> float:
    """The absolute step size an iterative attack with ``config`` takes (ε for FGSM, 0 for minimal attacks)."""
    spec = registry.get(config.attack)
    if spec.minimal:
        return 0.0
    if config.alpha is not None:
        return float(config.alpha)
    return float(config.eps) * alpha_fraction(config.attack, config.steps)


def minimal_config(attack: str, *, steps: int = 50, overshoot: float = 0.02, cw_c: float = 1.0,
                   cw_steps: int = 100, target: int | None = None, params: dict | None = None) -> AttackConfig:
    """Minimal-perturbation settings (ε is not a budget for them: kept at 0)."""
    spec = registry.get(attack)
    if not spec.minimal:
        raise ValueError(f"{attack!r} is not a minimal-perturbation attack ({', '.join(registry.minimal_names())})")
    if attack == "deepfool":
        config = AttackConfig(attack="deepfool", eps=0.0, steps=int(steps), overshoot=float(overshoot),
                              target=target)
    elif attack == "cw":
        config = AttackConfig(attack="cw", eps=0.0, cw_c=float(cw_c), cw_steps=int(cw_steps), target=target)
    else:
        config = AttackConfig(attack=attack, eps=0.0, target=target)
    if params:
        config = config.with_params(**params)
    return config


def parameters(config: AttackConfig) -> dict:
    """The parameters that matter for ``config.attack`` (the JSON record's ``parameters``), by name."""
    spec = registry.get(config.attack)
    out: dict = {}
    if not spec.minimal:
        out.update(eps=config.eps, norm=spec.norm)
    out["target"] = config.target
    for p in spec.params:
        out[p.name] = step_alpha(config) if p.kind == "alpha" else config.value(p.name)
    return out


def _flag_value(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def cli_command(model_id: str, image: str, config: AttackConfig, out: str | None = None) -> str:
    """The ``python -m explorer attack ...`` line that reproduces ``config`` on ``image`` (every parameter of
    the attack is written out, so the line holds even if a default changes)."""
    c = config
    spec = registry.get(c.attack)
    parts = ["python -m explorer attack", f"--model {model_id}", f"--image {image}", f"--attack {c.attack}"]
    if not spec.minimal:
        parts.append(f"--eps {eps_flag(c.eps)}")
    for p in spec.params:
        v = c.value(p.name)
        if p.kind == "alpha":
            if v is not None:
                parts.append(f"--alpha {v!r}")
        elif p.kind == "bool":
            if v != p.default:
                parts.append(("--" if v else "--no-") + p.name.replace("_", "-"))
        else:
            parts.append(f"{p.flag} {_flag_value(v)}")
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
    """THE JSON record of one run: model, image digest, attack, parameters, seed, labels, probabilities, ...

    ``metrics``: ``explorer.attacks.ImageMetrics``; ``eight_bit``: ``EightBitCheck`` (one image);
    ``noise``: ``NoiseBaseline``. The page's download and ``python -m explorer attack --json`` both write it.
    """
    spec = registry.get(config.attack)
    y = int(inputs.label)
    t = config.target
    clean_pred, adv_pred = int(np.argmax(clean_probs)), int(np.argmax(adv_probs))
    if success is None:
        success = adv_pred == t if t is not None else adv_pred != y
    rec: dict = {
        "model": inputs.model_id,
        "image": {"name": inputs.image_name, "id": inputs.image_id, "digest": inputs.digest},
        "attack": config.attack,
        "attack_name": spec.label,
        "parameters": parameters(config),
        "seed": config.value("seed") if spec.seeded and spec.has("seed") else None,
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


def noise_seed(config: AttackConfig) -> int:
    """The seed of the random-noise baseline next to a run: the attack's own seed where it has one, else 0."""
    spec = registry.get(config.attack)
    return int(config.value("seed")) if spec.has("seed") else 0
