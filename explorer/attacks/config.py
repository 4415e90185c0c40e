"""Attack settings: one frozen, hashable dataclass (a cache key), and the checks that live beside it.

``AttackConfig`` holds values only. ``check_config`` validates it against a model (one-line ``ValueError``),
``default_alpha`` / ``alpha_fraction`` say what ``alpha=None`` means for each attack.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from explorer.config import get_settings

MAX_CW_SEARCH_STEPS = 10
MAX_CANDIDATES = 100


def __getattr__(name: str):
    """``ATTACKS``, ``GRADIENT_ATTACKS`` (the budget attacks a sweep runs), ``MINIMAL_ATTACKS`` and
    ``ATTACK_NAMES`` are read from the registry (``explorer.attacks.registry``), never listed by hand."""
    from explorer.attacks import registry

    if name == "ATTACKS":
        return registry.names()
    if name == "GRADIENT_ATTACKS":
        return registry.budget_names()
    if name == "MINIMAL_ATTACKS":
        return registry.minimal_names()
    if name == "ATTACK_NAMES":
        return registry.labels()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class AttackConfig:
    """Everything that determines an attack's output besides the model and the image.

    attack: one of ``ATTACKS``. eps: the budget (L∞ in [0, 1] pixel units; the L2 radius for ``pgd-l2``).
    steps: iterations of BIM / PGD / MI-FGSM, the iteration cap of DeepFool. alpha: the step size
    (``None``: ``default_alpha``). random_start and seed: PGD's uniform start in the ε-ball, drawn from
    ``torch.Generator().manual_seed(seed)``. decay: MI-FGSM's momentum μ. target: a class index for a
    targeted attack, ``None`` for untargeted. overshoot, candidates: DeepFool. cw_*: Carlini-Wagner's
    trade-off constant c, Adam learning rate, steps per search, confidence κ and binary-search steps.
    params: the parameters of attacks that have no field here, as sorted ``(name, value)`` pairs, validated
    against the attack's ``Param`` list (``explorer.attacks.registry``): a new attack never edits this class.
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
    params: tuple[tuple[str, Any], ...] = ()

    def value(self, name: str) -> Any:
        """The value of the parameter ``name`` of this config's attack: its field, its ``params`` entry, or
        the spec's default."""
        from explorer.attacks import registry

        spec = registry.get(self.attack)
        p = spec.param(name)
        if p is not None and p.field is not None:
            return getattr(self, p.field)
        for k, v in self.params:
            if k == name:
                return v
        if p is None:
            raise KeyError(f"{self.attack} has no parameter {name!r}")
        return p.default

    def with_params(self, **values: Any) -> AttackConfig:
        """A copy with parameters set by name (fields or ``params`` entries; values equal to the spec's default
        are dropped from ``params`` so equal settings have one digest)."""
        from dataclasses import replace

        from explorer.attacks import registry

        spec = registry.get(self.attack)
        fields: dict[str, Any] = {}
        extra = dict(self.params)
        for name, v in values.items():
            p = spec.param(name)
            if p is None:
                raise ValueError(f"{spec.label} has no parameter {name!r}")
            if p.field is not None:
                fields[p.field] = v
            elif v == p.default:
                extra.pop(name, None)
            else:
                extra[name] = v
        return replace(self, params=tuple(sorted(extra.items())), **fields)


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
    from explorer.attacks import registry

    if alpha is not None and eps:
        return float(alpha) / float(eps)
    spec = registry.get(attack)
    if spec.alpha_fraction is not None:
        return float(spec.alpha_fraction(max(int(steps), 1)))
    if spec.direction:
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
    from explorer.attacks import registry

    if registry.get(attack).norm != "l2" or registry.get(attack).minimal:
        return 1.0
    if input_shape is None:
        return 1e3
    size = 1
    for s in input_shape:
        size *= int(s)
    return float(size) ** 0.5


def check_config(config: AttackConfig, num_classes: int | None = None, true_label: int | None = None,
                 max_steps: int | None = None, input_shape: Sequence[int] | None = None) -> None:
    """Raise a one-line ``ValueError`` for settings no attack should run with.

    Generic over the registry: ε against the attack's norm, every ``Param`` against its bounds (step counts
    against the server's cap), unknown ``params`` refused, then the spec's own ``check`` and the target.
    """
    from explorer.attacks import registry

    c = config
    spec = registry.get(c.attack)  # "unknown attack ..."
    check_eps(c.eps, "eps", upper=eps_upper(c.attack, input_shape))
    known = {p.name for p in spec.params if p.field is None}
    for name, _ in c.params:
        if name not in known:
            raise ValueError(f"{spec.label} has no parameter {name!r}"
                             + (f" (its parameters: {', '.join(p.name for p in spec.params)})" if spec.params else ""))
    for p in spec.params:
        v = c.value(p.name)
        if p.cap_steps:
            check_steps(v, max_steps, p.field or p.name)
        else:
            p.check(v)
    if c.alpha is not None and not c.alpha > 0:
        raise ValueError(f"alpha must be positive, got {c.alpha}")
    if spec.check is not None:
        spec.check(c, max_steps)
    check_target(c.target, true_label, num_classes)
