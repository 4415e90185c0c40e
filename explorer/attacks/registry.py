"""The attack registry: every attack file declares one :class:`AttackSpec` (or two, one per norm) and registers it.

Everything the app knows about an attack comes from its spec: ``run_attack``'s dispatch, the sweep, the CLI's
choices and flags, the pages' pickers, explanations and parameter widgets, the URL keys, and the cache's cost
model. Adding an attack is one file under ``explorer/attacks/`` (plus its test)::

    SPEC = register(AttackSpec(name="myattack", label="My attack", kind="budget", norm="linf", ...,
                               params=(STEPS, Param("restarts", "Restarts", 1, low=1, high=10, kind="int")),
                               cost=lambda c: c.steps + 1, run=_run))

:func:`discover` imports every module of the ``explorer.attacks`` package (``pkgutil``), so the file needs no
import anywhere else.

A :class:`Param` maps a user-facing parameter (its ``name`` is also its URL key and CLI flag) to where its
value lives in :class:`~explorer.attacks.config.AttackConfig`: a common field (``field="steps"``) or the
generic ``AttackConfig.params`` tuple (``field=None``), validated against the spec's bounds.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from explorer.attacks.config import AttackConfig
    from explorer.attacks.result import AttackResult

BUDGET = "budget"
MINIMAL = "minimal"


@dataclass(frozen=True)
class Param:
    """One parameter of an attack, with its bounds and default.

    name: the URL key and the CLI flag (``--name``, dashes for underscores). field: the ``AttackConfig`` field
    that holds it (None: it lives in ``AttackConfig.params``). kind: ``float``, ``int``, ``bool`` or
    ``alpha`` (a step size: ``None`` means the attack's own rule; widgets show it as a fraction of ε).
    unit: shown beside the widget. cap_steps: the upper bound is the server's step cap (EXPLORER_MAX_STEPS).
    """

    name: str
    label: str
    default: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    kind: str = "float"
    unit: str = ""
    help: str = ""
    field: str | None = None
    cap_steps: bool = False
    aliases: tuple[str, ...] = ()  # older CLI flags that still work (e.g. --cw-c)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def bounds(self) -> tuple[float | None, float | None]:
        high = self.high
        if self.cap_steps:
            from explorer.attacks.config import max_steps_allowed

            high = max_steps_allowed()
        return self.low, high

    def check(self, value: Any) -> None:
        """A one-line ``ValueError`` when ``value`` is not a valid setting of this parameter."""
        if value is None:
            if self.kind == "alpha":
                return
            raise ValueError(f"{self.name} needs a value")
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be true or false, got {value!r}")
            return
        if self.kind == "int" and (isinstance(value, bool) or int(value) != value):
            raise ValueError(f"{self.name} must be a whole number, got {value!r}")
        v = float(value)
        if not v == v:
            raise ValueError(f"{self.name} must be a number, got {value!r}")
        low, high = self.bounds()
        if self.kind == "alpha":
            if not v > 0:
                raise ValueError(f"alpha must be positive, got {value}")
            return
        if self.cap_steps:
            from explorer.attacks.config import check_steps

            check_steps(int(v), name=self.name)
            return
        if low is not None and high is not None and not low <= v <= high:
            raise ValueError(f"{self.name} must be between {low:g} and {high:g}, got {v:g}")
        if low is not None and v < low:
            raise ValueError(f"{self.name} must be " + ("non-negative" if low == 0 else f"at least {low:g}")
                             + f", got {v:g}")
        if high is not None and v > high:
            raise ValueError(f"{self.name} must be at most {high:g}, got {v:g}")


@dataclass(frozen=True)
class AttackSpec:
    """Everything about one attack.

    kind: ``budget`` (ε bounds the perturbation; sweepable) or ``minimal`` (finds its own size; ε unused).
    norm: ``linf`` or ``l2`` (the norm ε is measured in, or the one a minimal attack keeps small).
    cost(config): forward passes per image of one call (the progress bars and the job queue's estimate).
    run(model, x, y, config, trace): the adapter that calls the attack function.
    rows(model, x, y, target, eps, config): a budget attack's batched adversarials, one row per ε (the sweep),
    as a tensor; None for ``direction`` attacks (one gradient, any ε is ``clip(x + ε·d)``: FGSM).
    alpha_fraction(steps): the default step as a fraction of ε (iterative budget attacks).
    seeded: the attack draws random numbers (its ``seed`` goes into the run record and the noise baseline).
    compare: the attack the Attack Studio overlays on the confidence chart, if any.
    check(config, max_steps): extra validation beyond the parameters' bounds.
    """

    name: str
    label: str
    kind: str
    norm: str
    paper: str
    url: str
    summary: str
    params: tuple[Param, ...]
    cost: Callable[[AttackConfig], float]
    run: Callable[..., AttackResult]
    rows: Callable[..., Any] | None = None
    direction: bool = False
    alpha_fraction: Callable[[int], float] | None = None
    seeded: bool = False
    compare: str | None = None
    check: Callable[[AttackConfig, int | None], None] | None = None
    order: float = 100.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def minimal(self) -> bool:
        return self.kind == MINIMAL

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def has(self, name: str) -> bool:
        return self.param(name) is not None


_SPECS: dict[str, AttackSpec] = {}
_lock = threading.RLock()
_discovered = False


def register(spec: AttackSpec) -> AttackSpec:
    """Add ``spec`` to the registry (called at import time by the attack's own module)."""
    if spec.kind not in (BUDGET, MINIMAL):
        raise ValueError(f"{spec.name}: kind must be {BUDGET!r} or {MINIMAL!r}")
    if spec.norm not in ("linf", "l2"):
        raise ValueError(f"{spec.name}: norm must be 'linf' or 'l2'")
    with _lock:
        _SPECS[spec.name] = spec
    return spec


def discover() -> None:
    """Import every module of ``explorer.attacks`` once, so each attack file registers its spec."""
    global _discovered
    if _discovered:
        return
    with _lock:
        if _discovered:
            return
        import explorer.attacks as package

        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"explorer.attacks.{info.name}")
        _discovered = True


def specs() -> tuple[AttackSpec, ...]:
    """Every registered attack, in display order."""
    discover()
    return tuple(sorted(_SPECS.values(), key=lambda s: (s.order, s.name)))


def names() -> tuple[str, ...]:
    return tuple(s.name for s in specs())


def get(name: str) -> AttackSpec:
    """The spec of attack ``name``; a one-line ``ValueError`` for an unknown name."""
    discover()
    spec = _SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown attack {name!r}: choose one of {', '.join(names())}")
    return spec


def budget_names() -> tuple[str, ...]:
    return tuple(s.name for s in specs() if not s.minimal)


def minimal_names() -> tuple[str, ...]:
    return tuple(s.name for s in specs() if s.minimal)


def labels() -> dict[str, str]:
    return {s.name: s.label for s in specs()}


# ------------------------------------------------------------------ parameters shared by several attack files


def steps_param(default: int = 10, help_text: str = "iterations", name: str = "steps",
                field_name: str = "steps", label: str = "Steps") -> Param:
    return Param(name, label, default, low=1, kind="int", help=help_text, field=field_name, cap_steps=True)


ALPHA = Param("alpha", "Step α", None, kind="alpha", unit="× ε", field="alpha",
              help="the step size (empty: the attack's own rule)")
SEED = Param("seed", "Seed", 0, low=0, high=2**31 - 1, kind="int", field="seed",
             help="the random start is drawn from torch.Generator().manual_seed(seed)")
RANDOM_START = Param("random_start", "Random start", True, kind="bool", field="random_start",
                     help="start from a uniformly random point in the ε-ball (Madry et al.)")
