"""Monte-Carlo noise averaging around any classifier, and randomized smoothing's certified prediction.

* :class:`NoiseAverage` (the plain average, "add noise about ten times and average"): the output is
  ``log( (1/n) Σ_i softmax(f(clip(x + σ·ε_i))) )``, ε_i ~ N(0, I). Its noise comes from ``seed``: by default the same
  draws on every call and for every image (a deterministic model: the same image always gets the same answer,
  whatever batch it comes in, so pages and caches are stable, and its class regions are an average of n shifted
  copies of the base model's); ``fresh=True`` draws new noise for every image on every call from a private
  generator (a *randomised* model for an evaluation; such an object is private to one evaluation, never shared).
* :func:`certify` (Cohen, Rosenfeld & Kolter 2019, "Certified adversarial robustness via randomized smoothing",
  CERTIFY): ``n0`` selection samples pick the top class ĉ; ``n`` estimation samples count it; the one-sided
  Clopper–Pearson lower bound p̲_A at level ``alpha`` gives the prediction ĉ with L2 radius ``σ·Φ⁻¹(p̲_A)`` when
  p̲_A > ½, else the smoothed classifier abstains (−1).
* :func:`certified_accuracy_curve`: the share of images certified correct at L2 radius ≥ r, for every r.

Clipping to [0, 1] is part of the base classifier here (``f(clip(·))`` is itself a classifier of the noisy
input), so Cohen et al.'s guarantee holds for it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explorer.models.wrapper import Classifier

ProgressFn = Callable[[float, str], None]


class NoiseAverage(nn.Module):
    """The plain Monte-Carlo average of a base classifier over ``n`` Gaussian copies (σ in [0, 1] pixel units)."""

    def __init__(self, base: nn.Module, n: int = 16, sigma: float = 0.25, seed: int = 0, fresh: bool = False,
                 chunk: int = 4096) -> None:
        super().__init__()
        if n < 1:
            raise ValueError("n must be at least 1")
        if sigma < 0:
            raise ValueError("σ must be >= 0")
        self.base = base
        self.n = int(n)
        self.sigma = float(sigma)
        self.seed = int(seed)
        self.fresh = bool(fresh)
        self.chunk = int(chunk)
        self._gen = torch.Generator().manual_seed(self.seed) if fresh else None

    def _generator(self) -> torch.Generator:
        return self._gen if self._gen is not None else torch.Generator().manual_seed(self.seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sigma == 0:
            return torch.log_softmax(self.base(x), dim=-1)
        gen = self._generator()
        b = x.shape[0]
        if self.fresh:  # a randomised model: independent draws for every image of every call
            noise = torch.randn((self.n, *x.shape), generator=gen)
        else:  # a deterministic model: the same n draws for every image, whatever the batch or its position in it
            noise = torch.randn((self.n, 1, *x.shape[1:]), generator=gen).expand(self.n, *x.shape)
        noise = noise.to(device=x.device, dtype=x.dtype)
        noisy = torch.clamp(x.unsqueeze(0) + self.sigma * noise, 0, 1).reshape(self.n * b, *x.shape[1:])
        per = max(1, self.chunk // max(1, b)) * b
        logp = torch.cat([torch.log_softmax(self.base(noisy[i: i + per]), dim=-1) for i in range(0, len(noisy), per)])
        logp = logp.reshape(self.n, b, -1)
        return torch.logsumexp(logp, dim=0) - float(np.log(self.n))


def noise_averaged(base: Classifier, n: int = 16, sigma: float = 0.25, seed: int = 0, fresh: bool = False,
                   model_id: str | None = None) -> Classifier:
    """A frozen Classifier computing :class:`NoiseAverage` around ``base`` ([0, 1] in, log-probabilities out)."""
    return Classifier(NoiseAverage(base, n, sigma, seed, fresh), model_id=model_id or f"{base.model_id}+noise",
                      class_names=base.class_names, input_shape=base.input_shape, mean=(0.0,), std=(1.0,))


def resampling(model: Classifier, seed: int) -> Classifier:
    """A private copy of a noise-averaged Classifier that draws fresh noise on every call (for EOT / evaluation)."""
    inner = model.net
    if not isinstance(inner, NoiseAverage):
        raise TypeError(f"{model.model_id} is not a noise-averaged model")
    return noise_averaged(inner.base, inner.n, inner.sigma, seed, fresh=True, model_id=f"{model.model_id}~fresh")


# --------------------------------------------------------------------------------------- certification
def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided (1 − alpha) Clopper–Pearson lower confidence bound of a binomial proportion k / n."""
    from scipy.stats import beta

    if k <= 0:
        return 0.0
    return float(beta.ppf(alpha, k, n - k + 1))


@dataclass(frozen=True)
class Certificate:
    """Per image: the smoothed prediction (−1 = abstain), its certified L2 radius (0 when abstaining), the lower
    bound p̲_A and the class counts of the estimation samples."""

    pred: np.ndarray
    radius: np.ndarray
    p_lower: np.ndarray
    counts: np.ndarray
    sigma: float
    n0: int
    n: int
    alpha: float


def sample_counts(base: nn.Module, x: torch.Tensor, sigma: float, num: int, gen: torch.Generator,
                  batch: int = 1000) -> np.ndarray:
    """Class counts of ``base`` over ``num`` noisy copies ``clip(x + σε)`` of one image (C x H x W)."""
    counts = None
    done = 0
    with torch.inference_mode():
        while done < num:
            k = min(batch, num - done)
            noise = torch.randn((k, *x.shape), generator=gen).to(x.device)
            logits = base(torch.clamp(x.unsqueeze(0) + sigma * noise, 0, 1))
            c = torch.bincount(logits.argmax(1), minlength=logits.shape[1]).cpu().numpy()
            counts = c if counts is None else counts + c
            done += k
    assert counts is not None
    return counts


def certify(base: nn.Module, x: np.ndarray | torch.Tensor, sigma: float, *, n0: int = 100, n: int = 1000,
            alpha: float = 0.001, seed: int = 0, batch: int = 1000, progress: ProgressFn | None = None) -> Certificate:
    """Cohen et al.'s CERTIFY for every image of ``x`` (N x C x H x W in [0, 1]); see the module docstring."""
    from scipy.stats import norm

    if sigma <= 0:
        raise ValueError("σ must be > 0 to certify")
    xt = torch.as_tensor(np.asarray(x, np.float32) if not isinstance(x, torch.Tensor) else x).float()
    if xt.dim() == 3:
        xt = xt[None]
    dev = next((b.device for b in base.buffers()), torch.device("cpu"))
    xt = xt.to(dev)
    gen = torch.Generator().manual_seed(seed)
    preds, radii, lows, all_counts = [], [], [], []
    for i in range(len(xt)):
        c0 = sample_counts(base, xt[i], sigma, n0, gen, batch)
        top = int(c0.argmax())
        counts = sample_counts(base, xt[i], sigma, n, gen, batch)
        p = clopper_pearson_lower(int(counts[top]), n, alpha)
        if p > 0.5:
            preds.append(top)
            radii.append(sigma * float(norm.ppf(p)))
        else:
            preds.append(-1)
            radii.append(0.0)
        lows.append(p)
        all_counts.append(counts)
        if progress:
            progress((i + 1) / len(xt), f"certify: {i + 1}/{len(xt)} images")
    return Certificate(np.array(preds, np.int64), np.array(radii, np.float64), np.array(lows, np.float64),
                       np.stack(all_counts), float(sigma), n0, n, float(alpha))


def certified_accuracy_curve(cert: Certificate, y: np.ndarray | Sequence[int],
                             radii: np.ndarray | Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(radii, certified accuracy): the share of images predicted correctly with certified radius ≥ r."""
    r = np.linspace(0.0, max(1e-9, float(cert.radius.max(initial=0.0))), 50) if radii is None else np.asarray(radii)
    correct = cert.pred == np.asarray(y)
    acc = np.array([float(np.mean(correct & (cert.radius >= ri))) for ri in r])
    return r.astype(np.float64), acc
