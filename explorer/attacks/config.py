"""Attack settings: one frozen, hashable dataclass (a cache key), and the checks that live beside it.

``AttackConfig`` holds values only. ``check_config`` validates it against a model (one-line ``ValueError``),
``default_alpha`` / ``alpha_fraction`` say what ``alpha=None`` means for each attack.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from explorer.config import get_settings

ATTACKS: tuple[str, ...] = ("fgsm", "bim", "pgd", "pgd-l2", "mifgsm", "deepfool", "cw")
GRADIENT_ATTACKS: tuple[str, ...] = ("fgsm", "bim", "pgd", "pgd-l2", "mifgsm")  # the ones a sweep runs
MINIMAL_ATTACKS: tuple[str, ...] = ("deepfool", "cw")  # minimal-perturbation: eps is not a budget
ATTACK_NAMES: dict[str, str] = {
    "fgsm": "FGSM", "bim": "BIM / I-FGSM", "pgd": "PGD (L∞)", "pgd-l2": "PGD (L2)", "mifgsm": "MI-FGSM",
    "deepfool": "DeepFool (L2)", "cw": "Carlini-Wagner (L2)",
}
MAX_CW_SEARCH_STEPS = 10
MAX_CANDIDATES = 100


@dataclass(frozen=True)
class AttackConfig:
    """Everything that determines an attack's output besides the model and the image.

    attack: one of ``ATTACKS``. eps: the budget (L∞ in [0, 1] pixel units; the L2 radius for ``pgd-l2``).
    steps: iterations of BIM / PGD / MI-FGSM, the iteration cap of DeepFool. alpha: the step size
    (``None``: ``default_alpha``). random_start and seed: PGD's uniform start in the ε-ball, drawn from
    ``torch.Generator().manual_seed(seed)``. decay: MI-FGSM's momentum μ. target: a class index for a
    targeted attack, ``None`` for untargeted. overshoot, candidates: DeepFool. cw_*: Carlini-Wagner's
    trade-off constant c, Adam learning rate, steps per search, confidence κ and binary-search steps.
    """

    attack: str = "fgsm"
    eps: float = 8 / 255
    steps: int = 10
    alpha: float | None = None
    random_start: bool = True
    seed: int = 0
    decay: float = 1.0
    target: int | None = None
    overshoot: float = 0.02
    candidates: int = 10
    cw_c: float = 1.0
    cw_lr: float = 0.01
    cw_steps: int = 100
    cw_kappa: float = 0.0
    cw_search_steps: int = 3


def default_alpha(attack: str, eps: float, steps: int) -> float:
    """The step size used when ``alpha`` is None.

    PGD (L∞ and L2): 2.5·ε/steps (Madry et al., 2018). BIM and MI-FGSM: ε/steps, so the last step can just
    reach the boundary (Kurakin et al., 2016; Dong et al., 2018). FGSM: ε (one step).
    """
    return eps * alpha_fraction(attack, steps)


def alpha_fraction(attack: str, steps: int, eps: float | None = None, alpha: float | None = None) -> float:
    """α as a fraction of ε: a sweep gives each row ``alpha_fraction · eps_row``.

    With an explicit ``alpha`` (and ``eps > 0``) the fraction is ``alpha / eps``.
    """
    if alpha is not None and eps:
        return float(alpha) / float(eps)
    if attack in ("pgd", "pgd-l2"):
        return 2.5 / max(int(steps), 1)
    if attack == "fgsm":
        return 1.0
    return 1.0 / max(int(steps), 1)


_DEFAULTS: dict[str, int] = {}


def _setting(env: str, field: str) -> int:
    """A server cap from ``explorer.config.get_settings``; the default (variable unset) is read once."""
    if (os.environ.get(env) or "").strip():
        return int(getattr(get_settings(), field))
    if field not in _DEFAULTS:
        _DEFAULTS[field] = int(getattr(get_settings(), field))
    return _DEFAULTS[field]


def max_steps_allowed() -> int:
    """The hosted-demo cap on iterations (``EXPLORER_MAX_STEPS``, default 200)."""
    return _setting("EXPLORER_MAX_STEPS", "max_steps")


def max_batch_allowed() -> int:
    """Rows per forward pass (``EXPLORER_MAX_BATCH``, default 256)."""
    return _setting("EXPLORER_MAX_BATCH", "max_batch")


def check_eps(eps: float | Sequence[float], name: str = "eps", upper: float = 1.0) -> None:
    """ε must be finite and in [0, upper] (a single value or each value of a list)."""
    values = [eps] if isinstance(eps, (int, float)) else list(eps)
    if not values:
        raise ValueError(f"{name}: give at least one value")
    for v in values:
        f = float(v)
        if not (f == f) or f < 0 or f > upper:  # NaN fails f == f
            raise ValueError(f"{name} must be between 0 and {upper:g}, got {f:g}")


def check_steps(steps: int, cap: int | None = None, name: str = "steps") -> None:
    cap = max_steps_allowed() if cap is None else cap
    if int(steps) != steps or steps < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {steps}")
    if steps > cap:
        raise ValueError(f"{name} = {steps} is above this server's cap of {cap} (EXPLORER_MAX_STEPS)")


def check_target(target: int | None, true_label: int | None, num_classes: int | None) -> None:
    if target is None:
        return
    if int(target) != target:
        raise ValueError(f"target must be a class index, got {target!r}")
    if num_classes is not None and not 0 <= int(target) < num_classes:
        raise ValueError(f"target class {target} is out of range: the model has classes 0 to {num_classes - 1}")
    if true_label is not None and int(target) == int(true_label):
        raise ValueError(f"target class {target} is the true class: pick another class for a targeted attack")


def eps_upper(attack: str, input_shape: Sequence[int] | None = None) -> float:
    """The largest meaningful ε: 1 for L∞ (the whole pixel range); for L2 the cube's diagonal √(C·H·W)."""
    if attack != "pgd-l2":
        return 1.0
    if input_shape is None:
        return 1e3
    size = 1
    for s in input_shape:
        size *= int(s)
    return float(size) ** 0.5


def check_config(config: AttackConfig, num_classes: int | None = None, true_label: int | None = None,
                 max_steps: int | None = None, input_shape: Sequence[int] | None = None) -> None:
    """Raise a one-line ``ValueError`` for settings no attack should run with."""
    c = config
    if c.attack not in ATTACKS:
        raise ValueError(f"unknown attack {c.attack!r}: choose one of {', '.join(ATTACKS)}")
    check_eps(c.eps, "eps", upper=eps_upper(c.attack, input_shape))
    cap = max_steps  # None: check_steps reads the server's cap (only for attacks that have steps)
    if c.attack == "cw":
        check_steps(c.cw_steps, cap, "cw_steps")
        if not 1 <= c.cw_search_steps <= MAX_CW_SEARCH_STEPS:
            raise ValueError(f"cw_search_steps must be between 1 and {MAX_CW_SEARCH_STEPS}, got {c.cw_search_steps}")
        if not c.cw_c > 0 or not c.cw_lr > 0 or c.cw_kappa < 0:
            raise ValueError("cw_c and cw_lr must be positive and cw_kappa non-negative")
    elif c.attack != "fgsm":
        check_steps(c.steps, cap)
    if c.alpha is not None and not c.alpha > 0:
        raise ValueError(f"alpha must be positive, got {c.alpha}")
    if c.decay < 0:
        raise ValueError(f"decay must be non-negative, got {c.decay}")
    if c.attack == "deepfool":
        if not 2 <= c.candidates <= MAX_CANDIDATES:
            raise ValueError(f"candidates must be between 2 and {MAX_CANDIDATES}, got {c.candidates}")
        if c.overshoot < 0:
            raise ValueError(f"overshoot must be non-negative, got {c.overshoot}")
    check_target(c.target, true_label, num_classes)
