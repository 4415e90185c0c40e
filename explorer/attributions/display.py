"""Turning attribution maps into pictures and numbers: channel reduction, scaling, alignment with an attack."""

from __future__ import annotations

import numpy as np


def to_display(attr: np.ndarray, mode: str = "abs", reduce: str = "max", normalize: bool = False,
               percentile: float = 99.0) -> np.ndarray:
    """One H x W float32 map per image from C x H x W (or N x C x H x W -> N x H x W) attributions.

    ``mode="abs"``: magnitude, reduced over channels by ``"max"`` (Simonyan et al.) or ``"sum"``; >= 0.
    ``mode="signed"``: sign kept; ``"sum"`` adds the channels, ``"max"`` keeps the channel value of largest
    magnitude. With ``normalize``, maps are divided by the ``percentile`` of their magnitudes and clipped to
    [0, 1] (abs) or [-1, 1] (signed), per image, so one outlier pixel does not wash out the rest.
    """
    a = np.asarray(attr, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim not in (3, 4):
        raise ValueError(f"expected C x H x W or N x C x H x W maps, got shape {a.shape}")
    axis = a.ndim - 3
    if mode == "abs":
        mag = np.abs(a)
        out = mag.max(axis=axis) if reduce == "max" else mag.sum(axis=axis) if reduce == "sum" else None
    elif mode == "signed":
        if reduce == "sum":
            out = a.sum(axis=axis)
        elif reduce == "max":
            idx = np.expand_dims(np.abs(a).argmax(axis=axis), axis)
            out = np.take_along_axis(a, idx, axis=axis).squeeze(axis)
        else:
            out = None
    else:
        raise ValueError(f"mode must be 'abs' or 'signed', got {mode!r}")
    if out is None:
        raise ValueError(f"reduce must be 'max' or 'sum', got {reduce!r}")
    out = out.astype(np.float32)
    if normalize:
        flat = np.abs(out).reshape(-1, out.shape[-2] * out.shape[-1])
        scale = np.percentile(flat, percentile, axis=1)
        scale = np.where(scale > 0, scale, np.where(flat.max(1) > 0, flat.max(1), 1.0)).astype(np.float32)
        scale = scale.reshape(out.shape[:-2] + (1, 1))
        out = np.clip(out / scale, -1.0 if mode == "signed" else 0.0, 1.0).astype(np.float32)
    return out


def _pixel_magnitude(a: np.ndarray) -> np.ndarray:
    """|a| reduced to one value per pixel: max over channels for C x H x W, as is for H x W."""
    a = np.abs(np.asarray(a, dtype=np.float64))
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3:
        return a.max(axis=0)
    if a.ndim == 2:
        return a
    raise ValueError(f"expected one image's map (H x W or C x H x W), got shape {a.shape}")


def alignment(perturbation: np.ndarray, saliency: np.ndarray) -> float:
    """Does the attack push where the gradient is large? Pearson correlation over pixels of |δ| and |s|.

    Both maps are reduced to one magnitude per pixel (the max of |value| over channels), so a 3-channel
    perturbation can be set against a 1-channel map (Grad-CAM, occlusion). In [-1, 1]: near 1, the attack
    changed the image most where the map is largest; near 0, no relation. NaN when either map is constant
    (e.g. an FGSM perturbation where every pixel moved by exactly ε).
    """
    p, s = _pixel_magnitude(perturbation), _pixel_magnitude(saliency)
    if p.shape != s.shape:
        raise ValueError(f"maps differ in size: {p.shape} vs {s.shape}")
    if np.ptp(p) == 0 or np.ptp(s) == 0:
        return float("nan")
    p, s = p.ravel() - p.mean(), s.ravel() - s.mean()
    denom = np.sqrt((p * p).sum() * (s * s).sum())
    return float((p * s).sum() / denom) if denom > 0 else float("nan")


def sign_agreement(perturbation: np.ndarray, gradient: np.ndarray) -> float:
    """Mean of sign(δ)·sign(g) over the values where both are non-zero, in [-1, 1] (same shapes).

    The cosine between the sign patterns: +1 when every changed value moved along the gradient (raising
    that class's score, as an attack towards it would), -1 when all moved against it (as FGSM away from the
    true class does, for the true class's gradient). NaN when no value is non-zero in both.
    """
    p, g = np.asarray(perturbation, dtype=np.float64), np.asarray(gradient, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"shapes differ: {p.shape} vs {g.shape}")
    both = (p != 0) & (g != 0)
    if not both.any():
        return float("nan")
    return float((np.sign(p[both]) * np.sign(g[both])).mean())
