"""The one attack-settings widget (Streamlit-aware, beside ``state.py``): Attack Studio, Gradient maps and
Projections draw their attack controls here.

* **Picker** from the attack registry (``explorer.attacks.registry``): every registered attack, APGD included.
* **Every parameter** of the chosen attack (its ``Param`` list) as a widget with the spec's bounds and help:
  steps, step α (× ε), random start, seed, momentum, restarts, ρ, overshoot, candidates, c, Adam steps, ...
* **ε with units right for the norm**: k/255 for L∞ on photos, pixel units (images in [0, 1]) for L∞ on
  digits, the L2 radius for L2 attacks. Attack Studio picks an **ε range** (the top of its swept grid) instead.
* **URL state through ``explorer.state.query`` / ``state.set_query``**: ``attack``, ``eps``, ``steps``
  (and the page's ``target``) are the shared keys of ``state.read_shared_attack`` / ``write_shared_attack``;
  every other parameter is a URL key of its own name (``alpha`` as a fraction of ε, ``seed``, ``momentum``,
  ``restarts``, ``rho``, ``c``, ``adam_steps``, ``overshoot``, ...), and Attack Studio's ε range is ``range``.
  A value equal to the attack's default is dropped from the URL; a bad value gets a one-line warning and the
  default. A session copy carries the values across page switches that drop the query.

Use::

    widget = AttackWidget("gm", photo=photo, input_shape=spec.input_shape)   # reads the URL, seeds widgets
    with st.expander(f"Attack: {widget.summary()}"):
        settings = widget.draw()                                            # draws; writes the URL back
    config = settings.config(target)                                        # an AttackConfig at settings.eps
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from explorer import state
from explorer.attacks import registry
from explorer.attacks.config import AttackConfig, alpha_fraction, max_steps_allowed
from explorer.attacks.registry import Param
from explorer.runs import rules

PARAMS_SESSION = "shared_attack_params"  # session copy of the per-parameter URL keys (URL strings by name)
RANGE_KEY = "range"  # Attack Studio's ε range in the URL
SHARED = ("steps",)  # parameters carried by the shared keys of explorer.state (not URL keys of their own)
PER_ROW = 4
ALPHA_MAX = 10.0  # the largest step α a widget accepts, as a fraction of ε


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _all_param_names() -> set[str]:
    return {p.name for s in registry.specs() for p in s.params} - set(SHARED)


def param_text(p: Param, value: Any) -> str | None:
    """A parameter's URL text (None: the default, dropped from the URL)."""
    if value is None or value == p.default:
        return None
    if p.kind == "bool":
        return "1" if value else "0"
    if p.kind == "int":
        return str(int(value))
    return f"{float(value):.6g}"


def parse_param(p: Param, raw: str) -> Any:
    """A parameter's value from its URL text; a one-line ``ValueError`` for anything out of its bounds."""
    text = str(raw).strip()
    if p.kind == "bool":
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{p.name} = {raw!r} is not true/false (1/0)")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{p.name} = {raw!r} is not a number") from None
    if p.kind == "alpha":
        if not 0 < number <= ALPHA_MAX:
            raise ValueError(f"alpha = {raw} must be a fraction of ε above 0 and at most {ALPHA_MAX:g}")
        return number
    if p.kind == "int":
        if number != int(number):
            raise ValueError(f"{p.name} = {raw!r} is not a whole number")
        number = int(number)
    p.check(number)
    return number


def link_params(config: AttackConfig) -> dict[str, str]:
    """The URL keys that reproduce ``config`` in the widget (a shareable link): ``attack``, ``eps``, ``steps``
    and every parameter of the attack that differs from its default (α as a fraction of ε)."""
    spec = registry.get(config.attack)
    out = {"attack": config.attack, "eps": f"{config.eps:.6g}", "steps": str(int(config.steps))}
    for p in spec.params:
        if p.name in SHARED:
            continue
        value = config.value(p.name)
        if p.kind == "alpha":
            value = None if value is None or not config.eps else float(value) / float(config.eps)
        text = param_text(p, value)
        if text is not None:
            out[p.name] = text
    if config.target is not None:
        out["target"] = str(config.target)
    return out


@dataclass(frozen=True)
class AttackSettings:
    """What the widget chose: the attack, its steps and every other parameter (``values``, by Param name; α as a
    fraction of ε, None for the attack's own rule), and ε (the single attack's budget, or Attack Studio's
    starting ε for its slider) with ``eps_max`` (Attack Studio's range; None elsewhere)."""

    attack: str
    steps: int
    values: Mapping[str, Any] = field(default_factory=dict)
    eps: float = 0.0
    eps_max: float | None = None
    photo: bool = False

    @property
    def spec(self) -> registry.AttackSpec:
        return registry.get(self.attack)

    @property
    def minimal(self) -> bool:
        return self.spec.minimal

    @property
    def norm(self) -> str:
        return self.spec.norm

    @property
    def scale(self) -> str:
        return f"{rules.kind_of(self.photo)}_{self.norm}"

    def _params(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k != "alpha"}

    def config(self, target: int | None = None) -> AttackConfig:
        """The single attack at ``eps`` (Gradient maps, Projections)."""
        frac = self.values.get("alpha")
        base = AttackConfig(attack=self.attack, eps=float(self.eps), steps=int(self.steps), target=target,
                            alpha=float(frac) * float(self.eps) if frac is not None and self.eps > 0 else None)
        return base.with_params(**self._params())

    def sweep_config(self, target: int | None = None) -> AttackConfig:
        """The sweep over a grid ending at ``eps_max`` (Attack Studio; ``rules.sweep_config``)."""
        return rules.sweep_config(self.attack, float(self.eps_max if self.eps_max is not None else self.eps),
                                  steps=int(self.steps), alpha_frac=self.values.get("alpha"), target=target,
                                  params=self._params())

    def minimal_config(self, target: int | None = None) -> AttackConfig:
        """A minimal-perturbation attack's settings (``rules.minimal_config``)."""
        return rules.minimal_config(self.attack, steps=int(self.steps), target=target, params=self._params())


class AttackWidget:
    """The attack controls of one page (widget keys ``{prefix}_attack``, ``{prefix}_steps``, ``{prefix}_eps_*``,
    ``{prefix}_range_*``, ``{prefix}_p_{attack}_{param}``).

    ``mode="single"``: an ε slider (Gradient maps, Projections); ``mode="sweep"``: an ε-range picker and the
    starting ε for the page's own slider (Attack Studio). Construction reads the URL (warning once per bad
    value) and seeds the widgets; :meth:`draw` draws them and writes the URL back.
    """

    def __init__(self, prefix: str, *, photo: bool, input_shape: Sequence[int], mode: str = "single") -> None:
        if mode not in ("single", "sweep"):
            raise ValueError("mode must be 'single' or 'sweep'")
        self.prefix, self.photo, self.input_shape, self.mode = prefix, bool(photo), tuple(input_shape), mode
        self.kind = rules.kind_of(self.photo)
        self.url_attack = state.shared_attack_name()
        state.seed_widget(self.key("attack"), self.url_attack)
        state.seed_widget(self.key("steps"), state.shared_steps())
        self.url_eps = state.shared_value("eps")
        if mode == "single":
            self._seed_single_eps()

    # ---- keys and state
    def key(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def param_key(self, attack: str, name: str) -> str:
        return f"{self.prefix}_p_{attack}_{name}"

    @property
    def attack(self) -> str:
        """The attack the picker holds (seeded from the URL before it is drawn)."""
        return st.session_state[self.key("attack")]

    def eps_key(self, attack: str) -> str:
        """ε's widget: k/255 for L∞ photos, the L2 radius for L2 photos, pixel units for digits (L∞ or L2)."""
        if not self.photo:
            return self.key("eps_small")
        return self.key("eps_photo_l2" if rules.norm_name(attack) == "l2" else "eps_photo")

    def _to_widget(self, attack: str, eps: float) -> float:
        if self.photo and rules.norm_name(attack) == "linf":
            return float(min(255.0, round(eps * 255 * 2) / 2))
        return float(round(eps, 4))

    def _from_widget(self, attack: str, value: float) -> float:
        return float(value) / 255 if self.photo and rules.norm_name(attack) == "linf" else float(value)

    def _seed_single_eps(self) -> None:
        attack = self.attack
        fallback = rules.default_eps(attack, self.photo)
        eps = state.shared_eps(self.url_eps, attack, self.input_shape, fallback, self.photo)
        last = st.session_state.get(self.key("kind"))
        if last not in (None, self.kind):
            eps = fallback  # the user switched between digit and photo models here: ε's scale changed
            st.session_state.pop(self.eps_key(attack), None)
        st.session_state[self.key("kind")] = self.kind
        state.seed_widget(self.eps_key(attack), self._to_widget(attack, eps))

    def _shared_param_text(self, name: str) -> str | None:
        value = state.query(name)
        if value is None:
            value = st.session_state.get(PARAMS_SESSION, {}).get(name)
        return value

    def _seed_params(self, spec: registry.AttackSpec) -> None:
        for p in spec.params:
            if p.name in SHARED:
                continue
            key = self.param_key(spec.name, p.name)
            if key in st.session_state:
                continue
            raw = self._shared_param_text(p.name)
            value = p.default
            if raw is not None:
                try:
                    value = parse_param(p, raw)
                except ValueError as exc:
                    shown = "the attack's own rule" if p.default is None else f"{p.default}"
                    st.warning(f"{_one_line(exc)} in the link; using {shown}.")
            if p.kind in ("int", "float") and value is not None:
                low, high = p.bounds()  # a default beyond this server's step cap (Adam steps) is capped
                value = min(value, high) if high is not None else value
                value = max(value, low) if low is not None else value
            st.session_state[key] = value

    def summary(self) -> str:
        """``"PGD (L∞), ε = 0.3"`` from the seeded state (before :meth:`draw`), for an expander's label."""
        attack = self.attack
        label = registry.get(attack).label
        if registry.get(attack).minimal:
            return f"{label}, minimal perturbation"
        value = st.session_state.get(self.eps_key(attack))
        if value is None:
            return label
        if self.photo and rules.norm_name(attack) == "linf":
            return f"{label}, ε = {value:g}/255"
        return f"{label}, ε = {value:g}" + (" (L2)" if rules.norm_name(attack) == "l2" else "")

    # ---- drawing
    def draw(self, attack_slot=None, eps_slot=None, steps_slot=None, params_slot=None, *,
             steps_help: str | None = None, eps_help: str | None = None) -> AttackSettings:
        """Draw the picker, ε (or the ε range), steps and the attack's parameters into the given containers
        (default: one row of three columns, and the parameters in rows of four below), and write the URL."""
        if attack_slot is None or eps_slot is None or steps_slot is None:
            attack_slot, eps_slot, steps_slot = st.columns([2, 3, 1.3])
        if params_slot is None:
            params_slot = st.container()
        from explorer.teaching import slot  # a lesson link's hide= (TensorFlow Playground's)

        attack_slot, steps_slot = slot(attack_slot, "attack"), slot(steps_slot, "steps")
        names = registry.names()
        labels = registry.labels()
        attack = attack_slot.selectbox(
            "Attack", names, format_func=labels.get, key=self.key("attack"),
            help="Budget attacks (FGSM … APGD) spend ε; DeepFool and Carlini-Wagner look for the smallest "
                 "perturbation that flips the label.")
        spec = registry.get(attack)
        steps_param = spec.param("steps")
        cap = max_steps_allowed()
        if self.uses_steps(spec):
            steps = int(steps_slot.number_input(
                "Steps", 1, cap, key=self.key("steps"),
                help=steps_help or (f"{steps_param.help or 'iterations'} (this server allows up to {cap}, "
                                    "EXPLORER_MAX_STEPS)" if steps_param is not None else
                                    f"iterations of the {registry.get(spec.compare).label} curve overlaid "
                                    f"on {spec.label}'s chart (up to {cap}, EXPLORER_MAX_STEPS)")))
        else:
            # not drawn (the attack takes no shared steps, e.g. Carlini-Wagner's are its "Adam steps"): the
            # session keeps the value (set through the Session State API, so Streamlit does not drop it with the
            # undrawn widget) for the attacks that use it, and the link keeps it too
            steps = int(st.session_state[self.key("steps")])
            st.session_state[self.key("steps")] = steps
        eps, eps_max = (self._draw_eps(eps_slot, attack, spec, eps_help) if self.mode == "single"
                        else self._draw_range(eps_slot, attack, spec))
        values = self._draw_params(params_slot, spec, steps)
        self._write(spec, values, eps if self.mode == "single" else None, steps, eps_max)
        return AttackSettings(attack=attack, steps=steps, values=values, eps=eps, eps_max=eps_max, photo=self.photo)

    def uses_steps(self, spec: registry.AttackSpec) -> bool:
        """True when the shared "Steps" box means something for ``spec``: the attack's own ``steps`` parameter
        (BIM, PGD, MI-FGSM, APGD, DeepFool's cap), or, on Attack Studio, the compared attack's curve (FGSM's
        PGD overlay). Other attacks do not show it."""
        return spec.param("steps") is not None or (self.mode == "sweep" and spec.compare is not None)

    def _draw_eps(self, slot, attack: str, spec: registry.AttackSpec, help_text: str | None) -> tuple[float, None]:
        key = self.eps_key(attack)
        if key not in st.session_state:  # first time this norm's slider is drawn: the attack's default ε
            st.session_state[key] = self._to_widget(attack, rules.default_eps(attack, self.photo))
        current = float(st.session_state[key])
        l2 = spec.norm == "l2"
        if self.photo and not l2:
            top = float(max(32, math.ceil(current)))
            label, step = "ε (k / 255, L∞ per pixel)", 0.5
            help_text = help_text or "the largest change of any pixel, in 1/255 steps"
        elif l2:
            top = float(max(1 if not self.photo else 4, math.ceil(current)))  # a radius may exceed 1
            label, step = "ε (L2 radius of the whole perturbation, pixel units)", 0.005 if not self.photo else 0.05
            help_text = help_text or "the Euclidean length of δ, images in [0, 1]"
        else:
            top = float(max(1, math.ceil(current)))
            label, step = "ε (pixel units, images in [0, 1])", 0.005
            help_text = help_text or "the largest change of any pixel (L∞)"
        value = slot.slider(label, 0.0, top, step=step, key=key, disabled=spec.minimal, help=help_text)
        return self._from_widget(attack, value), None

    def _starting_eps(self, attack: str, scale: str, top_choices: tuple[float, ...]) -> float:
        """The ε Attack Studio's slider starts at: the shared value (validated), or the default for this scale.

        Reset to the default when the page itself wrote it under another scale (digits vs photos, L∞ vs L2):
        the number would mean something else now."""
        fallback = rules.default_eps(attack, self.photo)
        last = st.session_state.get(self.key("last"))
        if last is not None and last[0] == self.url_eps and last[1] != scale:
            return fallback
        eps = state.shared_eps(self.url_eps, attack, self.input_shape, fallback, self.photo)
        if eps > top_choices[-1]:
            st.warning(f"ε = {rules.eps_text(eps, self.photo, attack)} is beyond this page's largest range "
                       f"({rules.eps_text(top_choices[-1], self.photo, attack)}); showing the largest ε instead.")
            return top_choices[-1]
        return eps

    def _draw_range(self, slot, attack: str, spec: registry.AttackSpec) -> tuple[float, float]:
        scale = f"{self.kind}_{spec.norm}"
        choices = rules.RANGE_CHOICES[(self.kind, spec.norm)]
        eps0 = self._starting_eps(attack, scale, choices)
        default = next((c for c in choices if c >= max(eps0, rules.default_eps_max(attack, self.photo))),
                       choices[-1])
        key = self.key(f"range_{scale}")
        if key not in st.session_state:
            wanted = default
            raw = state.query(RANGE_KEY)
            if raw is not None:
                try:
                    value = rules.parse_eps(raw)
                    wanted = next(c for c in choices if math.isclose(c, value, rel_tol=1e-4))
                except (ValueError, StopIteration):
                    st.warning(f"ε range = {raw!r} in the link is not one of "
                               f"{', '.join(rules.eps_text(c, self.photo, attack) for c in choices)}; "
                               f"using {rules.eps_text(default, self.photo, attack)}.")
            st.session_state[key] = wanted
        self._range_default = default
        eps_max = float(slot.selectbox("ε range (the slider's largest ε)", choices, key=key,
                                       format_func=lambda e: rules.eps_text(e, self.photo, attack),
                                       disabled=spec.minimal,
                                       help="A new range is a new sweep: 64 values of ε from 0 to this."))
        return eps0, eps_max

    def _draw_params(self, slot, spec: registry.AttackSpec, steps: int) -> dict[str, Any]:
        self._seed_params(spec)
        shown = [p for p in spec.params if p.name not in SHARED]
        values: dict[str, Any] = {}
        if not shown:
            return values
        cols = []
        for i, p in enumerate(shown):
            if i % PER_ROW == 0:
                cols = slot.columns(PER_ROW, vertical_alignment="bottom")
            values[p.name] = self._param_widget(cols[i % PER_ROW], spec, p, steps, values)
        return values

    def _param_widget(self, col, spec: registry.AttackSpec, p: Param, steps: int, so_far: dict[str, Any]) -> Any:
        key = self.param_key(spec.name, p.name)
        help_text = p.help or None
        if p.kind == "bool":
            return bool(col.toggle(p.label, key=key, help=help_text))
        if p.kind == "alpha":
            default_frac = alpha_fraction(spec.name, steps)
            value = col.number_input(f"{p.label} ({p.unit or '× ε'})", min_value=0.001, max_value=ALPHA_MAX,
                                     value=None, step=0.05, format="%.3f", key=key,
                                     placeholder=f"default {default_frac:.3g}",
                                     help=(help_text or "") + f" Each step moves α = (this) × ε; empty: the "
                                          f"attack's own rule ({default_frac:.3g} × ε at {steps} steps).")
            return None if value is None else float(value)
        low, high = p.bounds()
        disabled = p.name == "seed" and so_far.get("random_start") is False
        if p.kind == "int":
            return int(col.number_input(p.label, int(low) if low is not None else None,
                                        int(high) if high is not None else None, key=key, step=1,
                                        disabled=disabled, help=help_text))
        return float(col.number_input(p.label, float(low) if low is not None else None,
                                      float(high) if high is not None else None, key=key,
                                      step=float(p.step) if p.step else None, disabled=disabled, help=help_text))

    # ---- URL
    def _write(self, spec: registry.AttackSpec, values: Mapping[str, Any], eps: float | None, steps: int,
               eps_max: float | None) -> None:
        own = {p.name: p for p in spec.params if p.name not in SHARED}
        updates: dict[str, str | None] = {name: None for name in _all_param_names() if name not in own}
        for name, p in own.items():
            updates[name] = param_text(p, values.get(name))
        session = dict(st.session_state.get(PARAMS_SESSION, {}))
        for name, text in updates.items():
            if name in own:  # other attacks' values stay in the session copy for when they come back
                if text is None:
                    session.pop(name, None)
                else:
                    session[name] = text
        st.session_state[PARAMS_SESSION] = session
        if self.mode == "sweep":
            default = getattr(self, "_range_default", None)
            updates[RANGE_KEY] = (None if eps_max is None or spec.minimal or default is None
                                  or math.isclose(eps_max, default, rel_tol=1e-9) else f"{eps_max:.6g}")
        state.set_query(**updates)
        if self.mode == "single":
            state.write_shared_attack(attack=spec.name, eps=f"{eps:.6g}", steps=str(int(steps)))
