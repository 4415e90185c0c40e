"""The common entry point: ``attribute(model, x, target, method, config)`` and the methods' metadata."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from explorer.attributions._common import ProgressFn, TargetLike
from explorer.attributions.gradcam import gradcam
from explorer.attributions.gradient_x_input import gradient_x_input
from explorer.attributions.integrated_gradients import integrated_gradients
from explorer.attributions.occlusion import occlusion
from explorer.attributions.saliency import saliency, signed_gradient
from explorer.attributions.smoothgrad import smoothgrad


@dataclass(frozen=True)
class AttributionConfig:
    """Settings of one attribution run (hashable: keys caches together with model id and image digest).

    Each method reads only the fields listed in ``METHODS[name].params``.
    """

    method: str = "saliency"
    n_samples: int = 25  # SmoothGrad: noisy copies
    sigma: float = 0.15  # SmoothGrad: noise std as a fraction of the image's range (x_max - x_min)
    steps: int = 64  # Integrated Gradients: quadrature points
    baseline: str = "black"  # Integrated Gradients: "black" | "blurred" | "noise"
    rule: str = "gausslegendre"  # Integrated Gradients: "gausslegendre" | "riemann_trapezoid"
    layer: str | None = None  # Grad-CAM: a name under model.net (None: the model's default layer)
    window: int | None = None  # Occlusion: square side in pixels (None: an eighth of the image side)
    stride: int | None = None  # Occlusion: step in pixels (None: half the window)
    fill_value: float = 0.0  # Occlusion: value of the occluding square, in [0, 1] image space
    occlusion_output: str = "prob"  # Occlusion: drop in "prob" (softmax) or "logit"
    seed: int = 0  # SmoothGrad noise, the "noise" baseline
    batch_size: int = 0  # copies per forward/backward pass (0: sized from the input)


@dataclass(frozen=True)
class MethodInfo:
    name: str
    label: str
    paper: str  # short citation
    url: str
    signed: bool  # True: show with a diverging colour map centred on zero
    per_channel: bool  # False: one map per image (N x 1 x H x W)
    implementation: str  # "ours" or "captum"
    params: tuple[str, ...]  # the AttributionConfig fields the method reads
    summary: str
    units: str = ""  # what the numbers on the method's colour bar are
    reading: str = ""  # how to read a map of this method (the pages' "How to read it")


_UNITS = {'saliency': '|∂ logit / ∂ pixel|', 'signed_gradient': '∂ logit / ∂ pixel', 'gradient_x_input': 'pixel × ∂ logit / ∂ pixel (logit)', 'smoothgrad': 'mean ∂ logit / ∂ pixel', 'integrated_gradients': 'contribution (logit)', 'gradcam': 'Grad-CAM (logit / activation)', 'occlusion': 'drop in probability'}
_READING = {'saliency': "Bright cells are pixels where a small change moves the class's logit the most (max over channels). It says *sensitive*, not *important*: a black background pixel can be bright.", 'signed_gradient': "Red: brightening the pixel raises the class's logit; blue: brightening lowers it. FGSM steps along the sign of this map (for the loss, i.e. against the true class).", 'gradient_x_input': "Gradient times the pixel's value: a first-order estimate of each pixel's contribution compared with a black image. Black pixels (value 0) get exactly 0.", 'smoothgrad': 'The gradient averaged over noisy copies: the same colours as the signed gradient, with less speckle. More samples: smoother and slower; larger σ: coarser.', 'integrated_gradients': "Each pixel's share of logit(image) − logit(baseline); red pixels push the class up, blue pull it down, and the whole map sums to that difference (completeness).", 'gradcam': "Where the chosen convolutional layer's features that support the class are active (ReLU: only positive evidence). Coarse: the layer's grid upsampled to the image.", 'occlusion': "How much the class's probability drops when a square around the pixel is hidden (red: hiding it hurts the class, blue: hiding it helps). Needs one forward pass per position."}
_METHODS: tuple[MethodInfo, ...] = (
    MethodInfo("saliency", "Saliency (|gradient|)", "Simonyan, Vedaldi & Zisserman 2014",
               "https://arxiv.org/abs/1312.6034", False, True, "ours", (),
               "Magnitude of the class score's gradient: which pixels a small change would move the most."),
    MethodInfo("signed_gradient", "Signed gradient", "Simonyan, Vedaldi & Zisserman 2014",
               "https://arxiv.org/abs/1312.6034", True, True, "ours", (),
               "The gradient with its sign: red raises the class score when brightened, blue lowers it."),
    MethodInfo("gradient_x_input", "Gradient x input", "Shrikumar et al. 2016",
               "https://arxiv.org/abs/1605.01713", True, True, "ours", (),
               "Gradient times pixel value: a first-order estimate of each pixel's contribution versus black."),
    MethodInfo("smoothgrad", "SmoothGrad", "Smilkov et al. 2017",
               "https://arxiv.org/abs/1706.03825", True, True, "ours", ("n_samples", "sigma", "seed", "batch_size"),
               "The gradient averaged over noisy copies of the image: less speckle, same sign convention."),
    MethodInfo("integrated_gradients", "Integrated Gradients", "Sundararajan, Taly & Yan 2017",
               "https://arxiv.org/abs/1703.01365", True, True, "ours",
               ("steps", "baseline", "rule", "seed", "batch_size"),
               "Gradients integrated along the path from a baseline image: they sum to f(x) - f(baseline)."),
    MethodInfo("gradcam", "Grad-CAM", "Selvaraju et al. 2017",
               "https://arxiv.org/abs/1610.02391", False, False, "ours", ("layer",),
               "Where a convolutional layer's features that support the class are active (coarse, upsampled)."),
    MethodInfo("occlusion", "Occlusion", "Zeiler & Fergus 2014",
               "https://arxiv.org/abs/1311.2901", True, False, "ours",
               ("window", "stride", "fill_value", "occlusion_output", "batch_size"),
               "How much the class score drops when a square around each pixel is hidden."),
)
METHODS: dict[str, MethodInfo] = {m.name: replace(m, units=_UNITS[m.name], reading=_READING[m.name]) for m in _METHODS}


def attribute(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    target: TargetLike,
    method: str | None = None,
    config: AttributionConfig | None = None,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Attribution maps of ``target`` (one class index, or one per image) for [0, 1] images ``x``.

    ``method`` (a key of ``METHODS``) overrides ``config.method``. Returns float32 numpy maps,
    N x C x H x W, or N x 1 x H x W for the methods with ``per_channel=False`` (Grad-CAM upsampled to the
    input; its layer-resolution map comes from ``gradcam()``). ``progress(frac, text)`` is called between
    chunks by SmoothGrad, Integrated Gradients and occlusion.
    """
    cfg = config or AttributionConfig()
    if method is not None and method != cfg.method:
        cfg = replace(cfg, method=method)
    name = cfg.method
    if name not in METHODS:
        raise ValueError(f"unknown attribution method {name!r} (choose from {', '.join(METHODS)})")
    if name == "saliency":
        return saliency(model, x, target)
    if name == "signed_gradient":
        return signed_gradient(model, x, target)
    if name == "gradient_x_input":
        return gradient_x_input(model, x, target)
    if name == "smoothgrad":
        return smoothgrad(model, x, target, n_samples=cfg.n_samples, sigma=cfg.sigma, seed=cfg.seed,
                          batch_size=cfg.batch_size, progress=progress)
    if name == "integrated_gradients":
        return integrated_gradients(model, x, target, steps=cfg.steps, baseline=cfg.baseline, rule=cfg.rule,
                                    seed=cfg.seed, batch_size=cfg.batch_size, progress=progress)
    if name == "gradcam":
        return gradcam(model, x, target, layer=cfg.layer).upsampled
    return occlusion(model, x, target, window=cfg.window, stride=cfg.stride, fill_value=cfg.fill_value,
                     output=cfg.occlusion_output, batch_size=cfg.batch_size, progress=progress)
