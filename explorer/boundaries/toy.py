"""The 2-D lab: toy datasets, a small MLP trained live (optionally adversarially), and 2-D attack steps.

Conventions
-----------
* Two classes; class 1 is "blue", class 0 is "red". Points are float32 ``N x 2``, labels int64.
* Every dataset is standardised into the same fixed square: centred on its bounding box and scaled
  isotropically (geometry, and so L∞ / L2 distances, are preserved) so that every point lies in
  ``[-DATA_HALF_WIDTH, DATA_HALF_WIDTH]²``; the plots show ``BOUNDS`` (a little wider).
* Randomness only from explicit seeds: ``np.random.default_rng(seed)`` for data, and a forked torch RNG
  (``torch.random.fork_rng`` + ``manual_seed``) for the network's initialisation. Global RNG state is
  never touched.
* The trained model is a plain ``nn.Module`` (``ToyMLP``) returning 2 logits, put in eval mode with
  ``requires_grad=False`` parameters; take input gradients with ``torch.autograd.grad``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.attacks.norms import get_norm
from explorer.attacks.pgd import pgd_path as attacks_pgd_path

ProgressFn = Callable[[float, str], None]

DATASETS: tuple[str, ...] = ("moons", "circles", "xor", "spirals", "blobs", "bulge")
ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "elu", "selu")
ADV_METHODS: tuple[str, ...] = ("none", "fgsm", "pgd")
NORMS: tuple[str, ...] = ("linf", "l2")

DATA_HALF_WIDTH = 2.5
"""Every standardised dataset fits in ``[-2.5, 2.5]²``."""
BOUNDS: tuple[float, float, float, float] = (-3.0, 3.0, -3.0, 3.0)
"""The fixed plot range ``(x_min, x_max, y_min, y_max)`` of the 2-D lab."""
CLASS_NAMES: tuple[str, str] = ("red", "blue")


# --------------------------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class ToyDataConfig:
    """Which toy dataset to draw.

    ``noise`` is the standard deviation of the Gaussian jitter in the dataset's own units (before
    standardisation; the natural shapes have unit size). ``minority`` is the fraction of blue points in
    the imbalanced ``"bulge"`` dataset (the others are balanced).
    """

    name: str = "moons"
    n: int = 300
    noise: float = 0.15
    seed: int = 0
    minority: float = 0.2


@dataclass(frozen=True)
class MLPConfig:
    """The network and its full-batch Adam training. ``depth`` hidden layers of ``width`` units
    (``depth=0`` is logistic regression)."""

    depth: int = 2
    width: int = 32
    activation: str = "relu"
    weight_decay: float = 0.0
    lr: float = 0.01
    steps: int = 300
    seed: int = 0


@dataclass(frozen=True)
class AdvTrainConfig:
    """Adversarial training: ``method`` none / fgsm / pgd in the ``norm`` ball of radius ``eps``.

    The loss is ``(1 - mix) * CE(clean) + mix * CE(adversarial)``. PGD takes ``pgd_steps`` steps of
    ``pgd_step_size`` (default ``2.5 * eps / pgd_steps``), starting from the clean point (no random start).
    """

    method: str = "none"
    eps: float = 0.3
    norm: str = "linf"
    pgd_steps: int = 5
    pgd_step_size: float | None = None
    mix: float = 0.5


# -------------------------------------------------------------------------------------------- datasets
@dataclass(frozen=True, eq=False)
class ToyData:
    """Standardised points (float32 ``N x 2``), labels (int64, 1 = blue) and the config that drew them."""

    x: np.ndarray
    y: np.ndarray
    config: ToyDataConfig

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return BOUNDS


def _split(n: int, frac_blue: float) -> tuple[int, int]:
    n1 = int(round(n * frac_blue))
    n1 = min(max(n1, 1), n - 1)
    return n - n1, n1


def _moons(rng: np.random.Generator, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    t0 = rng.uniform(0.0, np.pi, n0)
    t1 = rng.uniform(0.0, np.pi, n1)
    a = np.stack([np.cos(t0), np.sin(t0)], 1)
    b = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], 1)
    return a, b


def _circles(rng: np.random.Generator, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    t0 = rng.uniform(0.0, 2 * np.pi, n0)
    t1 = rng.uniform(0.0, 2 * np.pi, n1)
    return np.stack([np.cos(t0), np.sin(t0)], 1), 0.5 * np.stack([np.cos(t1), np.sin(t1)], 1)


def _xor(rng: np.random.Generator, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    # Quadrants: blue where x*y > 0. Points keep a small gap to the axes so that noise 0 is separable.
    def draw(k: int, same_sign: bool) -> np.ndarray:
        mag = rng.uniform(0.1, 1.0, (k, 2))
        sx = rng.choice([-1.0, 1.0], k)
        sy = sx if same_sign else -sx
        return mag * np.stack([sx, sy], 1)

    return draw(n0, False), draw(n1, True)


def _spirals(rng: np.random.Generator, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    def arm(k: int, phase: float) -> np.ndarray:
        t = np.sqrt(rng.uniform(0.02, 1.0, k)) * 3.0 * np.pi  # ~1.5 turns, uniform density along the arm
        r = t / (3.0 * np.pi)
        return np.stack([r * np.cos(t + phase), r * np.sin(t + phase)], 1)

    return arm(n0, 0.0), arm(n1, np.pi)


def _blobs(rng: np.random.Generator, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    a = rng.normal(0.0, 0.35, (n0, 2)) + np.array([-0.9, -0.4])
    b = rng.normal(0.0, 0.35, (n1, 2)) + np.array([0.9, 0.4])
    return a, b


def _bulge(rng: np.random.Generator, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    # The red majority is a thick horseshoe that wraps around a blue "lollipop": a round head in the
    # middle and a stem that leaves through the horseshoe's opening, so blue bulges into red.
    t = rng.uniform(0.3 * np.pi, 1.7 * np.pi, n0)
    r = rng.uniform(0.95, 1.55, n0)
    a = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    head = rng.random(n1) < 0.65
    b = np.empty((n1, 2))
    b[head] = rng.normal(0.0, 0.28, (int(head.sum()), 2))
    k = int((~head).sum())
    b[~head] = np.stack([rng.uniform(0.3, 1.8, k), rng.normal(0.0, 0.1, k)], 1)
    return a, b


_DRAW = {"moons": _moons, "circles": _circles, "xor": _xor, "spirals": _spirals, "blobs": _blobs,
         "bulge": _bulge}


def standardise(x: np.ndarray, half_width: float = DATA_HALF_WIDTH) -> np.ndarray:
    """Centre on the bounding box and scale isotropically so every point lies in ``[-half_width, half_width]²``."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = x.min(0), x.max(0)
    centre = (lo + hi) / 2.0
    span = float(np.max(hi - lo)) / 2.0
    scale = half_width / span if span > 0 else 1.0
    return ((x - centre) * scale).astype(np.float32)


def make_dataset(config: ToyDataConfig) -> ToyData:
    """Draw a toy dataset (deterministic for its seed), standardised into the fixed plot square."""
    if config.name not in _DRAW:
        raise ValueError(f"unknown dataset {config.name!r} (known: {', '.join(DATASETS)})")
    if config.n < 4:
        raise ValueError("n must be at least 4")
    if config.noise < 0:
        raise ValueError("noise must be >= 0")
    rng = np.random.default_rng(config.seed)
    frac = config.minority if config.name == "bulge" else 0.5
    n0, n1 = _split(config.n, frac)
    a, b = _DRAW[config.name](rng, n0, n1)
    x = np.concatenate([a, b]) + rng.normal(0.0, 1.0, (n0 + n1, 2)) * config.noise
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    order = rng.permutation(n0 + n1)
    return ToyData(standardise(x[order]), y[order], config)


# ---------------------------------------------------------------------------------------------- model
_ACT: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "selu": nn.SELU}


class ToyMLP(nn.Module):
    """``depth`` hidden layers of ``width`` units, 2 inputs, 2 logits (index 1 = blue)."""

    def __init__(self, depth: int = 2, width: int = 32, activation: str = "relu") -> None:
        super().__init__()
        if activation not in _ACT:
            raise ValueError(f"unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})")
        if depth < 0 or width < 1:
            raise ValueError("depth must be >= 0 and width >= 1")
        layers: list[nn.Module] = []
        d_in = 2
        for _ in range(depth):
            layers += [nn.Linear(d_in, width), _ACT[activation]()]
            d_in = width
        layers.append(nn.Linear(d_in, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and ``requires_grad=False`` parameters (input gradients still work)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def linear_model(w: tuple[float, float], b: float) -> ToyMLP:
    """A frozen linear 2-D model with logits ``(0, w·x + b)``: p(blue) = sigmoid(w·x + b).

    Its boundary is the line ``w·x + b = 0`` and ``∇p = p (1 - p) w``: the analytic reference of the tests.
    """
    m = ToyMLP(depth=0)
    with torch.no_grad():
        m.net[0].weight.copy_(torch.tensor([[0.0, 0.0], [float(w[0]), float(w[1])]]))
        m.net[0].bias.copy_(torch.tensor([0.0, float(b)]))
    return freeze(m)


# ------------------------------------------------------------------------------------- 2-D attacks
# A 2-D point is a batch row of N x 2 inputs: the attacks library's PGD (``explorer.attacks.pgd_path``, the
# same step as every image attack) and norms (``explorer.attacks.norms``) run on it unchanged, without the
# [0, 1] box of images.


def attack_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent unit step of a norm, from ``explorer.attacks.norms``: ``sign(g)`` for L∞,
    ``g / ||g||₂`` for L2 (rows)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return get_norm(norm).normalize(grad)


def _loss_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    xg = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(xg), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, xg)
    return g


def pgd_path(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str = "linf",
             steps: int = 10, step_size: float | None = None) -> list[torch.Tensor]:
    """PGD iterates ``[x, x1, ..., x_steps]`` (rows are points), no random start, no box clipping:
    ``explorer.attacks.pgd_path``. ``steps=1`` with ``step_size=eps`` is FGSM (the fast gradient method for L2).
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return attacks_pgd_path(model, x, y, eps, norm, steps=steps, step_size=step_size, bounds=None)


def adversarial_points(model: nn.Module, x: torch.Tensor, y: torch.Tensor, adv: AdvTrainConfig) -> torch.Tensor:
    """The adversarial counterpart of ``x`` under ``adv`` (FGSM: one step of ``eps``; PGD: the last iterate)."""
    if adv.method == "fgsm":
        return pgd_path(model, x, y, adv.eps, adv.norm, steps=1, step_size=adv.eps)[-1]
    if adv.method == "pgd":
        return pgd_path(model, x, y, adv.eps, adv.norm, adv.pgd_steps, adv.pgd_step_size)[-1]
    raise ValueError(f"adversarial method must be fgsm or pgd, got {adv.method!r}")


def describe_training(adv: AdvTrainConfig) -> str:
    """How a network was trained, in words ("standard training", "PGD adversarial training (L∞ ε = 0.2)")."""
    if adv.method == "none":
        return "standard training"
    unit = "L∞" if adv.norm == "linf" else "L2"
    return f"{adv.method.upper()} adversarial training ({unit} ε = {adv.eps:g})"


# ------------------------------------------------------------------------------------------ training
@dataclass(frozen=True, eq=False)
class TrainedMLP:
    """A frozen trained ``ToyMLP`` and how it got there (per-step loss, training accuracy, seconds)."""

    model: ToyMLP
    mlp: MLPConfig
    adv: AdvTrainConfig
    losses: np.ndarray
    accuracy: float
    seconds: float


def _check(cfg: MLPConfig, adv: AdvTrainConfig) -> None:
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {cfg.activation!r} (known: {', '.join(ACTIVATIONS)})")
    if cfg.steps < 1 or cfg.lr <= 0 or cfg.weight_decay < 0:
        raise ValueError("steps must be >= 1, lr > 0 and weight_decay >= 0")
    if adv.method not in ADV_METHODS:
        raise ValueError(f"unknown adversarial training {adv.method!r} (known: {', '.join(ADV_METHODS)})")
    if adv.norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {adv.norm!r}")
    if adv.method != "none" and (adv.eps <= 0 or adv.pgd_steps < 1 or not 0.0 <= adv.mix <= 1.0):
        raise ValueError("adversarial training needs eps > 0, pgd_steps >= 1 and 0 <= mix <= 1")


def _adam(model: nn.Module, cfg: MLPConfig) -> torch.optim.Optimizer:
    # The fused CPU kernel is ~1.5x faster per step for these tiny parameter lists (torch >= 2.4).
    try:
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_mlp(data: ToyData | tuple[np.ndarray, np.ndarray], config: MLPConfig = MLPConfig(),
              adv: AdvTrainConfig = AdvTrainConfig(), progress: ProgressFn | None = None,
              progress_every: int = 25) -> TrainedMLP:
    """Train a ``ToyMLP`` full batch with Adam (decoupled from global RNG; deterministic for ``config.seed``).

    ``progress(frac, text)`` is called every ``progress_every`` steps and after the last one. With
    ``adv.method`` fgsm/pgd each step attacks the current network (input gradients only) and minimises
    ``(1 - mix) * CE(clean) + mix * CE(adversarial)``.
    """
    _check(config, adv)
    x_np, y_np = (data.x, data.y) if isinstance(data, ToyData) else data
    x = torch.as_tensor(np.asarray(x_np, np.float32))
    y = torch.as_tensor(np.asarray(y_np, np.int64))
    start = time.perf_counter()
    losses = np.empty(config.steps, np.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # inside the fork only: the initialisation
        model = ToyMLP(config.depth, config.width, config.activation)
    opt = _adam(model, config)
    model.train()
    every = max(1, int(progress_every))
    for step in range(config.steps):
        if adv.method == "none":
            loss = F.cross_entropy(model(x), y)
        else:
            x_adv = adversarial_points(model, x, y, adv)
            logits = model(torch.cat([x, x_adv]))
            n = len(x)
            loss = (1.0 - adv.mix) * F.cross_entropy(logits[:n], y) + adv.mix * F.cross_entropy(logits[n:], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses[step] = loss.detach()
        if progress is not None and ((step + 1) % every == 0 or step + 1 == config.steps):
            progress((step + 1) / config.steps, f"step {step + 1}/{config.steps}, loss {losses[step]:.3f}")
    freeze(model)
    with torch.inference_mode():
        acc = float((model(x).argmax(1) == y).float().mean())
    return TrainedMLP(model, config, adv, losses, acc, time.perf_counter() - start)
