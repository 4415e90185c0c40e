"""Slices through image space: a classifier evaluated on a plane (or a line) through an image.

Works with any model following the contract of ``explorer.models.wrapper.Classifier``: ``model(x)`` takes
float32 ``N x C x H x W`` images in [0, 1] and returns logits. The model is shared and frozen: this module
never calls ``.train()``/``.eval()``/``.zero_grad()`` on it, takes input gradients only with
``torch.autograd.grad``, and runs display forwards under ``torch.inference_mode()``.

Geometry
--------
A plane is ``x + a·d1 + b·d2`` for ``a, b`` in ``[-extent, extent]``; the grid has an odd ``resolution`` so
the centre cell is exactly ``x``. **Pixels are clipped to [0, 1]** (``clip=True``, the default) before the
forward, as every attack in the explorer does, so the cell at ``(ε, 0)`` on an adversarial plane is exactly
the FGSM image. Directions are scaled so that a coordinate means something:

* ``sign(∇ₓL)`` and random sign (Rademacher) vectors are left as ±1 vectors: ``a`` is an L∞ distance.
* a second direction is orthogonalised against the first and scaled to the first's L2 norm;
* gradient directions (``"gradient/target"``) are scaled to L2 norm ``√D``, like a sign vector: the
  coordinate is then the RMS change per pixel (L2 / √D).

Randomness comes only from ``seed`` (``np.random.default_rng``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.attacks.norms import get_norm
from explorer.attacks.pgd import pgd_path as attacks_pgd_path
from explorer.device import model_device

ProgressFn = Callable[[float, str], None]

PLANE_KINDS: tuple[str, ...] = ("adversarial/random", "pgd/random", "random/random", "gradient/target")


# --------------------------------------------------------------------------------------------- helpers
def _image(model: nn.Module, x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A float32 ``C x H x W`` tensor on the model's device (a leading batch axis of 1 is dropped)."""
    t = torch.as_tensor(x)
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3:
        raise ValueError(f"expected a C x H x W image, got shape {tuple(t.shape)}")
    return t.detach().to(device=model_device(model), dtype=torch.float32)


def _to_numpy(d: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(d, torch.Tensor):
        d = d.detach().cpu().numpy()
    return np.asarray(d, np.float32)


def predict_class(model: nn.Module, x: np.ndarray | torch.Tensor) -> int:
    """The model's predicted class for one image."""
    with torch.inference_mode():
        return int(model(_image(model, x)[None]).argmax(1).item())


def loss_gradient(model: nn.Module, x: np.ndarray | torch.Tensor, label: int) -> np.ndarray:
    """∇ₓ of the cross-entropy of class ``label`` at one image (``C x H x W``, float32).

    Where the loss saturates to an exactly zero gradient (an over-confident model in float32), falls back to
    the gradient of the logit margin ``max_{k≠label} z_k − z_label``, which points the same way.
    """
    xi = _image(model, x)[None].clone().requires_grad_(True)
    y = torch.tensor([int(label)], device=xi.device)
    logits = model(xi)
    (g,) = torch.autograd.grad(F.cross_entropy(logits, y), xi, retain_graph=True)
    if not torch.any(g != 0):
        others = logits.clone()
        others[:, int(label)] = -torch.inf
        (g,) = torch.autograd.grad(others.max() - logits[0, int(label)], xi)
    return g[0].detach().cpu().numpy().astype(np.float32)


def random_sign(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """A seeded Rademacher (±1) direction."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 2, size=shape) * 2 - 1).astype(np.float32)


def orthogonalise(d: np.ndarray, against: np.ndarray) -> np.ndarray:
    """``d`` minus its projection on ``against`` (float64 arithmetic, float32 result)."""
    d64 = d.astype(np.float64).ravel()
    a64 = against.astype(np.float64).ravel()
    aa = float(a64 @ a64)
    if aa > 0:
        d64 = d64 - (d64 @ a64) / aa * a64
    return d64.reshape(d.shape).astype(np.float32)


def rescale(d: np.ndarray, l2: float) -> np.ndarray:
    """``d`` scaled to L2 norm ``l2`` (a zero vector stays zero)."""
    n = float(np.linalg.norm(d.astype(np.float64)))
    return (d * (l2 / n)).astype(np.float32) if n > 0 else d.astype(np.float32)


def fgsm_delta(model: nn.Module, x: np.ndarray | torch.Tensor, label: int, eps: float) -> np.ndarray:
    """The FGSM step ``eps · sign(∇ₓL)`` before clipping (the image is ``clip(x + delta, 0, 1)``)."""
    return (float(eps) * np.sign(loss_gradient(model, x, label))).astype(np.float32)


def pgd_delta(model: nn.Module, x: np.ndarray | torch.Tensor, label: int, eps: float, steps: int = 10,
              step_size: float | None = None) -> np.ndarray:
    """A small L∞ PGD (no random start, ``x_adv`` clipped to [0, 1]); returns ``x_adv − x``.

    The explorer's attacks library supplies its own perturbation to ``plane_directions(delta=...)``; this is
    the same library's PGD step (``explorer.attacks.pgd_path``) for callers that pass none.
    """
    x0 = _image(model, x)[None]
    y = torch.tensor([int(label)], device=x0.device)
    cur = attacks_pgd_path(model, x0, y, float(eps), "linf", steps=int(steps), step_size=step_size,
                           bounds=(0.0, 1.0))[-1]
    return (cur - x0)[0].cpu().numpy().astype(np.float32)


# ---------------------------------------------------------------------------------------------- planes
@dataclass(frozen=True, eq=False)
class Plane:
    """Two directions through an image (``C x H x W`` float32 each) and their axis titles with units."""

    d1: np.ndarray
    d2: np.ndarray
    kind: str
    label: int  # the class whose loss defines the adversarial direction (true class, else the prediction)
    axis1: str
    axis2: str
    target: int | None = None
    delta: np.ndarray | None = None  # the PGD perturbation of a "pgd/random" plane


def _name(model: nn.Module, k: int) -> str:
    names = getattr(model, "class_names", None)
    return str(names[k]) if names is not None and 0 <= k < len(names) else str(k)


def runner_up(model: nn.Module, x: np.ndarray | torch.Tensor, label: int) -> int:
    """The highest-scoring class other than ``label``."""
    with torch.inference_mode():
        logits = model(_image(model, x)[None])[0].clone()
        logits[int(label)] = -torch.inf
        return int(logits.argmax().item())


def plane_directions(model: nn.Module, x: np.ndarray | torch.Tensor, y: int | None = None,
                     kind: str = "adversarial/random", *, seed: int = 0, delta: np.ndarray | None = None,
                     target: int | None = None, eps: float = 0.1, pgd_steps: int = 10) -> Plane:
    """Two directions spanning a slice through image ``x`` (true class ``y``; ``None`` = the prediction).

    * ``"adversarial/random"``: ``d1 = sign(∇ₓL)`` (the FGSM direction; a is in L∞ units), ``d2`` a seeded
      random sign vector orthogonalised against it, same L2 norm.
    * ``"pgd/random"``: ``d1 = δ / ||δ||∞`` for a PGD perturbation ``δ`` (pass ``delta`` from the attacks
      library; otherwise a small L∞ PGD of ``eps`` / ``pgd_steps`` is run here), ``d2`` random ⟂, same L2.
    * ``"random/random"``: two seeded random sign vectors, the second orthogonalised, same L2 norm.
    * ``"gradient/target"``: ``d1 = −∇ₓL(target)`` (towards ``target``, default the runner-up class) and
      ``d2 = ∇ₓL(y)`` (away from the true class) orthogonalised against it, both at L2 norm ``√D``.
    """
    if kind not in PLANE_KINDS:
        raise ValueError(f"unknown plane {kind!r} (known: {', '.join(PLANE_KINDS)})")
    xi = _image(model, x)
    shape = tuple(xi.shape)
    label = predict_class(model, xi) if y is None else int(y)
    sqrt_d = float(np.sqrt(np.prod(shape)))
    if kind == "adversarial/random":
        d1 = np.sign(loss_gradient(model, xi, label)).astype(np.float32)
        d2 = rescale(orthogonalise(random_sign(shape, seed), d1), float(np.linalg.norm(d1)))
        return Plane(d1, d2, kind, label, "ε along sign(∇ₓL), L∞ units",
                     "random sign direction ⟂, same L2 norm (≈ L∞ units)")
    if kind == "pgd/random":
        dl = pgd_delta(model, xi, label, eps, pgd_steps) if delta is None else _to_numpy(delta).reshape(shape)
        m = float(np.abs(dl).max())
        if m == 0:
            raise ValueError("the PGD perturbation is zero: nothing to slice along")
        d1 = (dl / m).astype(np.float32)
        d2 = rescale(orthogonalise(random_sign(shape, seed), d1), float(np.linalg.norm(d1)))
        return Plane(d1, d2, kind, label, "ε along the PGD perturbation δ/‖δ‖∞, L∞ units",
                     "random sign direction ⟂, same L2 norm as δ/‖δ‖∞", delta=dl)
    if kind == "random/random":
        d1 = random_sign(shape, seed)
        d2 = rescale(orthogonalise(random_sign(shape, seed + 1), d1), sqrt_d)
        return Plane(d1, d2, kind, label, "random sign direction 1, L∞ units",
                     "random sign direction 2 ⟂, same L2 norm (≈ L∞ units)")
    tgt = runner_up(model, xi, label) if target is None else int(target)
    if tgt == label:
        raise ValueError("the target class must differ from the true class")
    d1 = rescale(-loss_gradient(model, xi, tgt), sqrt_d)
    d2 = rescale(orthogonalise(loss_gradient(model, xi, label), d1), sqrt_d)
    return Plane(d1, d2, kind, label, f"towards “{_name(model, tgt)}”: −∇ₓL(target), RMS units (L2/√D)",
                 f"away from “{_name(model, label)}”: ∇ₓL(true) ⟂, RMS units (L2/√D)", target=tgt)


def project_to_plane(delta: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> tuple[float, float]:
    """Least-squares plane coordinates ``(a, b)`` of a perturbation: ``delta ≈ a·d1 + b·d2``."""
    A = np.stack([d1.ravel(), d2.ravel()], 1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(A, np.asarray(delta, np.float64).ravel(), rcond=None)
    return float(coef[0]), float(coef[1])


def off_plane_fraction(delta: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> float:
    """||delta − its projection on the plane||₂ / ||delta||₂: 0 for a perturbation inside the plane (an FGSM
    step on an adversarial plane, the PGD step on a "pgd/random" plane), near 1 for one almost orthogonal to it."""
    a, b = project_to_plane(delta, d1, d2)
    dl = np.asarray(delta, np.float64).ravel()
    n = float(np.linalg.norm(dl))
    if n == 0:
        return 0.0
    rest = dl - a * np.asarray(d1, np.float64).ravel() - b * np.asarray(d2, np.float64).ravel()
    return float(np.linalg.norm(rest) / n)


def ball_section(d1: np.ndarray, d2: np.ndarray, eps: float, norm: str = "linf", n_angles: int = 360,
                 chunk: int = 64) -> np.ndarray:
    """The cross-section of the ``eps`` ball with the plane, as a closed polygon ``(n_angles + 1) x 2``.

    For L∞ it is ``{(a, b): ||a·d1 + b·d2||∞ ≤ eps}``, traced by its radius along each angle: a convex
    polygon, e.g. a square of half-width eps when d1, d2 are ±1 on disjoint pixels, but a *diamond* with
    vertices at ``(±eps, 0)``, ``(0, ±eps)`` for two full ±1 vectors (some pixel has ``|d1ᵢ + d2ᵢ| = 2``): the
    FGSM end point is a vertex. For L2 and orthogonal directions it is an ellipse.
    """
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be linf or l2, got {norm!r}")
    th = np.linspace(0.0, 2 * np.pi, n_angles, endpoint=False)
    u = np.stack([np.cos(th), np.sin(th)], 1)  # (n, 2)
    a = torch.from_numpy(np.stack([d1.ravel(), d2.ravel()]).astype(np.float32))  # (2, D)
    radius = np.empty(n_angles)
    for i in range(0, n_angles, chunk):
        v = torch.from_numpy(u[i: i + chunk].astype(np.float32)) @ a  # (k, D): the direction in image space
        n = get_norm(norm).size(v)  # the attacks library's per-row norm
        radius[i: i + chunk] = eps / n.clamp_min(1e-12).double().numpy()
    pts = u * radius[:, None]
    return np.concatenate([pts, pts[:1]]).astype(np.float32)


# ---------------------------------------------------------------------------------------- evaluation
@dataclass(frozen=True, eq=False)
class SliceResult:
    """A classifier on a plane. Arrays are ``[row, col]`` = ``[b index (d2), a index (d1)]``.

    ``coords`` are the coordinates along both axes (centre exactly 0); ``pred`` the predicted class per cell;
    ``max_prob`` its softmax probability; ``logits`` (``R x R x K``) when asked for.
    """

    coords: np.ndarray
    pred: np.ndarray
    max_prob: np.ndarray
    logits: np.ndarray | None
    extent: float
    clip: bool

    @property
    def resolution(self) -> int:
        return len(self.coords)

    @property
    def centre(self) -> int:
        return len(self.coords) // 2

    @property
    def centre_pred(self) -> int:
        return int(self.pred[self.centre, self.centre])


def plane_coords(extent: float, resolution: int) -> np.ndarray:
    """``resolution`` (odd) coordinates in ``[-extent, extent]`` with the centre exactly 0."""
    if resolution < 1 or resolution % 2 == 0:
        raise ValueError(f"resolution must be odd (the centre cell is the image itself), got {resolution}")
    half = resolution // 2
    if half == 0:
        return np.zeros(1, np.float32)
    return (np.arange(-half, half + 1, dtype=np.float64) * (float(extent) / half)).astype(np.float32)


def _forward_rows(model: nn.Module, base: torch.Tensor, coef: torch.Tensor, dirs: torch.Tensor,
                  shape: tuple[int, ...], clip: bool, batch_size: int, progress: ProgressFn | None,
                  what: str, chunk_bytes: int = 64 << 20) -> torch.Tensor:
    """Logits of ``clip(base + coef @ dirs)`` for every row of ``coef``, in batches under inference mode.

    Images are built a chunk of whole batches at a time (one ``addmm`` and one ``clamp_`` per chunk of at most
    ``chunk_bytes``), then fed to the model batch by batch as views: no per-image Python work.
    """
    n = len(coef)
    bs = max(1, int(batch_size))
    per_image = int(np.prod(shape)) * 4
    chunk = max(1, chunk_bytes // max(1, per_image * bs)) * bs
    out: torch.Tensor | None = None
    with torch.inference_mode():
        for c0 in range(0, n, chunk):
            imgs = torch.addmm(base, coef[c0: c0 + chunk], dirs)  # exact: a zero coefficient row gives base
            if clip:
                imgs.clamp_(0.0, 1.0)
            imgs = imgs.view(-1, *shape)
            for i in range(0, len(imgs), bs):
                logits = model(imgs[i: i + bs])
                if out is None:
                    # One preallocated output: keeping every batch's logits alive instead fragments the heap
                    # and costs ~5% of a small model's forward.
                    out = torch.empty((n, logits.shape[1]), dtype=torch.float32, device=logits.device)
                out[c0 + i: c0 + i + len(logits)] = logits
                if progress is not None:
                    done = min(n, c0 + i + bs)
                    progress(done / n, f"{what}: {done}/{n} images")
    if out is None:
        raise ValueError("nothing to evaluate")
    return out


def evaluate_plane(model: nn.Module, x: np.ndarray | torch.Tensor, d1: np.ndarray, d2: np.ndarray,
                   extent: float, resolution: int = 41, batch_size: int = 256,
                   progress: ProgressFn | None = None, return_logits: bool = False,
                   clip: bool = True) -> SliceResult:
    """Classify every cell of the plane ``clip(x + a·d1 + b·d2, 0, 1)``, ``a, b ∈ [-extent, extent]``.

    Batched forwards under ``torch.inference_mode()`` (images built with one ``addmm`` per chunk of batches;
    no per-cell Python loop). ``resolution`` must be odd: the centre cell is exactly ``x``, so its class is
    the model's prediction on ``x``. ``progress(frac, text)`` is called after every batch.
    """
    xi = _image(model, x)
    shape = tuple(xi.shape)
    coords = plane_coords(extent, resolution)
    dev = xi.device
    a, b = np.meshgrid(coords, coords)  # a varies along columns (d1), b along rows (d2)
    coef = torch.from_numpy(np.stack([a.ravel(), b.ravel()], 1)).to(dev)
    dirs = torch.from_numpy(np.stack([_to_numpy(d1).ravel(), _to_numpy(d2).ravel()])).to(dev)
    logits = _forward_rows(model, xi.reshape(1, -1), coef, dirs, shape, clip, batch_size, progress, "slice")
    # max softmax probability = 1 / Σ exp(z − max z); reduced over the class axis laid out first (a CPU
    # softmax over a short last axis costs more than the forward of a small model).
    lt = logits.t().contiguous()
    zmax, pred = lt.max(0)
    pmax = 1.0 / torch.exp(lt - zmax).sum(0)
    r = resolution
    return SliceResult(
        coords, pred.reshape(r, r).cpu().numpy(), pmax.reshape(r, r).cpu().numpy(),
        logits.reshape(r, r, -1).cpu().numpy() if return_logits else None, float(extent), bool(clip),
    )


@dataclass(frozen=True, eq=False)
class Profile:
    """Loss and logits along the adversarial direction ``sign(∇ₓL)`` and along a random sign direction of
    the same length, at ``t`` (L∞ units) in ``[-extent, extent]`` (Goodfellow et al. 2015, fig. 4)."""

    t: np.ndarray
    loss_adv: np.ndarray
    logits_adv: np.ndarray
    loss_rand: np.ndarray
    logits_rand: np.ndarray
    label: int
    clip: bool


def linearity_profile(model: nn.Module, x: np.ndarray | torch.Tensor, y: int | None = None,
                      extent: float = 0.25, n: int = 81, seed: int = 0, clip: bool = True,
                      batch_size: int = 256, progress: ProgressFn | None = None) -> Profile:
    """The 1-D picture: loss and logits along ``sign(∇ₓL)`` vs a seeded random sign vector (same L2 norm).

    ``n`` points per line (odd: ``t = 0`` is exact); both lines go through one batched evaluation.
    """
    xi = _image(model, x)
    shape = tuple(xi.shape)
    label = predict_class(model, xi) if y is None else int(y)
    t = plane_coords(extent, n)
    d_adv = np.sign(loss_gradient(model, xi, label)).astype(np.float32)
    d_rand = rescale(random_sign(shape, seed), float(np.linalg.norm(d_adv)))
    dev = xi.device
    z = np.zeros_like(t)
    coef = torch.from_numpy(np.concatenate([np.stack([t, z], 1), np.stack([z, t], 1)])).to(dev)
    dirs = torch.from_numpy(np.stack([d_adv.ravel(), d_rand.ravel()])).to(dev)
    logits = _forward_rows(model, xi.reshape(1, -1), coef, dirs, shape, clip, batch_size, progress, "profile")
    yy = torch.full((len(logits),), label, dtype=torch.long, device=logits.device)
    loss = F.cross_entropy(logits, yy, reduction="none").cpu().numpy()
    lg = logits.cpu().numpy()
    return Profile(t, loss[:n], lg[:n], loss[n:], lg[n:], label, bool(clip))


# ----------------------------------------------------------------------------------------- one call
@dataclass(frozen=True)
class SliceConfig:
    """Everything that defines a slice besides the model and the image (hashable: a cache key).

    ``eps`` is the attack budget drawn on the slice (FGSM / PGD end points and the ε-ball section);
    ``pgd_steps`` the local PGD used when no perturbation is supplied; ``extent`` the half-width of the plane.
    """

    kind: str = "adversarial/random"
    extent: float = 0.3
    resolution: int = 41
    eps: float = 0.1
    pgd_steps: int = 10
    target: int | None = None
    seed: int = 0
    clip: bool = True


@dataclass(frozen=True, eq=False)
class Slice:
    """A computed slice: the plane, the grid of predictions, the attack end points in plane coordinates
    (``markers``, with the fraction of each perturbation that lies off the plane) and the ε-ball section."""

    plane: Plane
    result: SliceResult
    markers: dict[str, tuple[float, float]]
    off_plane: dict[str, float]
    ball: np.ndarray
    config: SliceConfig


def attack_markers(model: nn.Module, x: np.ndarray | torch.Tensor, plane: Plane, eps: float,
                   pgd: np.ndarray | None = None, pgd_steps: int = 10
                   ) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """Plane coordinates of the FGSM step ``eps·sign(∇ₓL)`` and of a PGD perturbation (given, the plane's own,
    or a local L∞ PGD of ``eps``), and the fraction of each that lies off the plane (0: exactly on it)."""
    fg = fgsm_delta(model, x, plane.label, eps)
    if pgd is None:
        pgd = plane.delta if plane.delta is not None else pgd_delta(model, x, plane.label, eps, pgd_steps)
    pg = _to_numpy(pgd).reshape(fg.shape)
    markers = {"FGSM": project_to_plane(fg, plane.d1, plane.d2), "PGD": project_to_plane(pg, plane.d1, plane.d2)}
    off = {"FGSM": off_plane_fraction(fg, plane.d1, plane.d2), "PGD": off_plane_fraction(pg, plane.d1, plane.d2)}
    return markers, off


def compute_slice(model: nn.Module, x: np.ndarray | torch.Tensor, y: int | None, config: SliceConfig = SliceConfig(),
                  *, delta: np.ndarray | None = None, batch_size: int = 256,
                  progress: ProgressFn | None = None) -> Slice:
    """Directions, evaluation, attack end points and the L∞ ε-ball section of one slice, from a config.

    ``delta``: a PGD perturbation from the attacks library (used by the "pgd/random" plane and as the PGD
    marker); without it a local L∞ PGD of ``config.eps`` is run.
    """
    plane = plane_directions(model, x, y, config.kind, seed=config.seed, delta=delta, target=config.target,
                             eps=config.eps, pgd_steps=config.pgd_steps)
    result = evaluate_plane(model, x, plane.d1, plane.d2, config.extent, config.resolution, batch_size, progress,
                            clip=config.clip)
    markers, off = attack_markers(model, x, plane, config.eps, delta, config.pgd_steps)
    return Slice(plane, result, markers, off, ball_section(plane.d1, plane.d2, config.eps, "linf"), config)
