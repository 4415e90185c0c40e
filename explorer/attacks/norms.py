"""Threat models as small plug-ins shared by FGSM, BIM, PGD and MI-FGSM (and DeepFool's linearised step).

After Foolbox 3 (Rauber et al., 2017/2020), where the norm owns the four pieces of arithmetic that differ
between an L∞ and an L2 attack, and the attack loop owns everything else:

* ``normalize(g)``  the steepest-ascent direction of unit size (``sign(g)`` for L∞, ``g / ||g||₂`` for L2);
* ``project(delta, eps)``  the closest point of the ε-ball (clip for L∞, rescale for L2);
* ``random(shape, generator)``  a uniform sample of the unit ball (the attack scales it by ε);
* ``size(delta)``  the per-row norm, and ``dual(g)`` the dual norm (L1 for L∞, L2 for L2) used by DeepFool.

``eps`` may be a Python float or a per-row tensor of shape ``(N,)``: one batch can hold a whole ε sweep.
The arithmetic is written so that a per-row ε gives bit-identical rows to a scalar ε.
"""

from __future__ import annotations

import torch

_TINY = 1e-12


def _rows(eps: float | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """A scalar stays a scalar; a per-row tensor becomes N x 1 x 1 x 1 (broadcasts over C, H, W)."""
    if isinstance(eps, torch.Tensor):
        if eps.dim() == like.dim() and eps.dtype == like.dtype and eps.device == like.device:
            return eps  # already shaped (the attack loop prepares it once)
        return eps.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.dim() - 1)))
    return float(eps)


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


class Norm:
    """Base class of the norm plug-ins (see the module docstring for the contract)."""

    name: str = ""
    label: str = ""

    def size(self, delta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def dual(self, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def normalize(self, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def project(self, delta: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def random(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self).__name__)


class Linf(Norm):
    """The L∞ ball: every pixel moves by at most ε (Goodfellow et al., 2015; Madry et al., 2018)."""

    name = "linf"
    label = "L∞"

    def size(self, delta: torch.Tensor) -> torch.Tensor:
        return _flat(delta).abs().amax(dim=1)

    def dual(self, g: torch.Tensor) -> torch.Tensor:
        return _flat(g).abs().sum(dim=1)

    def normalize(self, g: torch.Tensor) -> torch.Tensor:
        return g.sign()

    def project(self, delta: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
        e = _rows(eps, delta)
        return torch.clamp(delta, min=-e, max=e)

    def random(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Uniform in [-1, 1] per pixel (drawn on the CPU, so a seed gives the same start on every device)."""
        return torch.rand(shape, generator=generator, dtype=torch.float32) * 2 - 1


class L2(Norm):
    """The L2 ball: the Euclidean length of the whole perturbation is at most ε (Madry et al., 2018)."""

    name = "l2"
    label = "L2"

    def size(self, delta: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(_flat(delta), ord=2, dim=1)

    def dual(self, g: torch.Tensor) -> torch.Tensor:
        return self.size(g)

    def normalize(self, g: torch.Tensor) -> torch.Tensor:
        n = self.size(g).clamp_min(_TINY)
        return g / n.reshape(-1, *([1] * (g.dim() - 1)))

    def project(self, delta: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
        n = self.size(delta).clamp_min(_TINY)
        e = torch.as_tensor(eps, dtype=delta.dtype, device=delta.device).reshape(-1)  # a tensor either way
        factor = torch.clamp(torch.div(e, n), max=1.0)
        return delta * factor.reshape(-1, *([1] * (delta.dim() - 1)))

    def random(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Uniform in the unit L2 ball: a Gaussian direction, radius U^(1/d) (d = pixels per row)."""
        d = 1
        for s in shape[1:]:
            d *= int(s)
        direction = torch.randn(shape, generator=generator, dtype=torch.float32)
        direction = direction / torch.linalg.vector_norm(_flat(direction), dim=1).clamp_min(_TINY).reshape(
            -1, *([1] * (len(shape) - 1)))
        radius = torch.rand((shape[0],), generator=generator, dtype=torch.float32) ** (1.0 / d)
        return direction * radius.reshape(-1, *([1] * (len(shape) - 1)))


LINF = Linf()
L2_NORM = L2()
NORMS: dict[str, Norm] = {"linf": LINF, "l2": L2_NORM}


def get_norm(norm: str | Norm) -> Norm:
    """A norm plug-in from its name (``"linf"``, ``"l2"``) or the plug-in itself."""
    if isinstance(norm, Norm):
        return norm
    key = str(norm).lower().replace("∞", "inf")
    if key in ("inf", "linf", "l_inf"):
        key = "linf"
    if key in ("2", "l2", "l_2"):
        key = "l2"
    if key not in NORMS:
        raise ValueError(f"unknown norm {norm!r}: use 'linf' or 'l2'")
    return NORMS[key]
