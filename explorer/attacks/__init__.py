"""Adversarial attacks on [0, 1] images: one method per file, norms as plug-ins, ε sweeps, image metrics.

Pure library (no streamlit)::

    from explorer.attacks import AttackConfig, run_attack, sweep, fgsm, pgd

    res = fgsm(model, x, y, eps=8 / 255)                   # AttackResult: .adversarial, .pred, .trace, ...
    res = pgd(model, x, y, eps=0.3, steps=40, alpha=0.01, target=3)
    res = run_attack(model, x, y, AttackConfig(attack="mifgsm", eps=0.1, steps=10))
    sw = sweep(model, x1, y, AttackConfig(attack="fgsm"))  # 64 ε, one gradient; sw.flip_eps

Attacks (each module's docstring cites its paper): :func:`fgsm` (Goodfellow et al., 2015), :func:`bim`
(Kurakin et al., 2016), :func:`pgd` L∞ / L2 (Madry et al., 2018), :func:`mifgsm` (Dong et al., 2018),
:func:`deepfool` (Moosavi-Dezfooli et al., 2016), :func:`carlini_wagner` (Carlini & Wagner, 2017).

The model is never mutated: gradients come from ``torch.autograd.grad`` on a fresh copy of the input, and
randomness only from an explicit seed.
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.attacks._common import LabelLike
from explorer.attacks.bim import bim
from explorer.attacks.config import (
    AttackConfig,
    alpha_fraction,
    check_config,
    default_alpha,
)
from explorer.attacks.cw import carlini_wagner
from explorer.attacks.deepfool import deepfool
from explorer.attacks.fgsm import fgsm
from explorer.attacks.metrics import ImageMetrics, image_metrics, l2, linf, psnr, ssim
from explorer.attacks.mifgsm import mifgsm
from explorer.attacks.noise import NoiseBaseline, noise_baseline, sign_noise
from explorer.attacks.norms import L2, L2_NORM, LINF, Linf, Norm, get_norm
from explorer.attacks.pgd import pgd, pgd_path
from explorer.attacks.quantize import EightBitCheck, eight_bit_check, quantize, to_png_bytes, to_uint8
from explorer.attacks.result import AttackResult, AttackTrace
from explorer.attacks.sweep import SweepResult, default_eps_grid, sweep
from explorer.attacks import registry  # noqa: E402  (after the attack modules: discovery finds the rest)
from explorer.attacks.registry import AttackSpec, Param

registry.discover()
ATTACKS: tuple[str, ...] = registry.names()
GRADIENT_ATTACKS: tuple[str, ...] = registry.budget_names()  # the ones a sweep runs
MINIMAL_ATTACKS: tuple[str, ...] = registry.minimal_names()  # minimal-perturbation: eps is not a budget
ATTACK_NAMES: dict[str, str] = registry.labels()


def _true_label(y: LabelLike) -> int | None:
    a = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y).reshape(-1)
    return int(a[0]) if a.size == 1 else None


def run_attack(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: LabelLike, config: AttackConfig,
               *, trace: bool = True) -> AttackResult:
    """Run the attack ``config`` describes (validated first: a one-line ``ValueError`` on bad settings).

    Args:
        model: a frozen classifier (``explorer.models.Classifier``): [0, 1] images in, logits out.
        x: N x C x H x W (or C x H x W) images in [0, 1].
        y: true labels (an int or one per image).
        config: the attack and its parameters (``config.target``: a targeted attack towards that class).
    """
    k = getattr(model, "num_classes", None)
    shape = tuple(torch.as_tensor(x).shape[1:]) if hasattr(x, "shape") and len(x.shape) > 1 else None
    if shape is not None and len(x.shape) == 3:
        shape = tuple(x.shape)
    check_config(config, k, _true_label(y), input_shape=shape)
    return registry.get(config.attack).run(model, x, y, config, trace=trace)


__all__ = [
    "ATTACKS", "ATTACK_NAMES", "GRADIENT_ATTACKS", "MINIMAL_ATTACKS", "L2", "L2_NORM", "LINF", "AttackConfig",
    "AttackResult", "AttackSpec", "AttackTrace", "Param", "EightBitCheck", "ImageMetrics", "Linf", "NoiseBaseline", "Norm", "SweepResult",
    "alpha_fraction", "bim", "carlini_wagner", "check_config", "default_alpha", "default_eps_grid", "deepfool",
    "eight_bit_check", "fgsm", "get_norm", "image_metrics", "l2", "linf", "mifgsm", "noise_baseline", "pgd",
    "pgd_path",    "psnr", "quantize", "run_attack", "sign_noise", "ssim", "sweep", "to_png_bytes", "to_uint8",
]
