"""Plumbing shared by the attacks: input checks, per-row ε, the objective, margins, the trace recorder.

Rules kept here once, for every attack:

* the model is never mutated: gradients come from ``torch.autograd.grad(objective, x)`` on a fresh input;
* inputs are copied outside inference mode, so a tensor built under ``torch.inference_mode()`` can be attacked;
* the objective is a per-row cross-entropy **summed** over the batch, so each row's gradient does not depend
  on what else is in the batch (a sweep's rows are independent attacks);
* display forwards (the final classification) run under ``torch.inference_mode()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.nn import functional as F

from explorer.attacks.config import check_eps, check_target
from explorer.attacks.norms import L2_NORM, LINF
from explorer.attacks.result import AttackResult, AttackTrace
from explorer.device import model_device

EpsLike = float | Sequence[float] | np.ndarray | torch.Tensor
LabelLike = int | Sequence[int] | np.ndarray | torch.Tensor


@contextlib.contextmanager
def grad_mode() -> Iterator[None]:
    """Autograd on, even when the caller sits inside ``torch.inference_mode()`` or ``torch.no_grad()``."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def as_images(model: torch.nn.Module, x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A float32 N x C x H x W tensor on the model's device (C x H x W gets a batch axis), detached.

    It may share storage with the caller's array: the attacks only ever read it (every update is out of place).
    """
    with contextlib.ExitStack() as stack:
        if torch.is_inference_mode_enabled():
            stack.enter_context(torch.inference_mode(False))  # the copy must be a normal tensor
        t = torch.as_tensor(x)
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4:
            raise ValueError(f"images must be N x C x H x W (or C x H x W), got shape {tuple(t.shape)}")
        t = t.detach().to(device=model_device(model), dtype=torch.float32)  # may share the caller's storage: read only
        if t.is_inference():
            t = t.clone()  # a normal tensor, so that autograd can use it
    if t.numel():
        lo, hi = torch.aminmax(t)
        if not (float(lo) >= 0 and float(hi) <= 1):  # NaN fails both comparisons
            raise ValueError("images must hold values in [0, 1]")
    return t


def as_labels(y: LabelLike | None, n: int, device: torch.device, num_classes: int | None,
              name: str = "y") -> torch.Tensor | None:
    """Labels as an int64 tensor of length ``n`` (a single value is repeated)."""
    if y is None:
        return None
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool):  # the common cases, kept cheap
        if num_classes is not None and not 0 <= int(y) < num_classes:
            raise ValueError(f"{name} class {int(y)} is out of range: the model has classes 0 to {num_classes - 1}")
        return torch.full((n,), int(y), dtype=torch.long, device=device)
    with contextlib.ExitStack() as stack:
        if torch.is_inference_mode_enabled():
            stack.enter_context(torch.inference_mode(False))
        if isinstance(y, torch.Tensor):
            t = y.detach().reshape(-1).to(device=device, dtype=torch.long)
        else:
            t = torch.as_tensor(np.asarray(y).reshape(-1), dtype=torch.long, device=device)
        if t.numel() == 1 and n != 1:
            t = t.expand(n)
        if t.numel() != n:
            raise ValueError(f"{name} has {t.numel()} labels for {n} images")
        if num_classes is not None and t.numel():
            lo, hi = (int(v) for v in torch.aminmax(t))
            if lo < 0 or hi >= num_classes:
                bad = hi if hi >= num_classes else lo
                raise ValueError(f"{name} class {bad} is out of range: the model has classes 0 to {num_classes - 1}")
        return t.clone()


def eps_values(eps: EpsLike) -> np.ndarray:
    """ε as a 1-D float64 array (a scalar gives one value)."""
    if isinstance(eps, torch.Tensor):
        eps = eps.detach().cpu().numpy()
    a = np.asarray(eps, dtype=np.float64).reshape(-1)
    return a


def num_classes_of(model: torch.nn.Module) -> int | None:
    n = getattr(model, "num_classes", None)
    return int(n) if n is not None else None


class Prepared(NamedTuple):
    x: torch.Tensor  # N x C x H x W, one row per attack
    y: torch.Tensor  # (N,) int64
    target: torch.Tensor | None  # (N,) int64
    eps: np.ndarray  # (N,) float64
    expanded: bool  # True when one image was repeated for a list of ε


def l2_upper(x: np.ndarray | torch.Tensor) -> float:
    """The L2 diameter of the [0, 1] cube of one image: √(C·H·W)."""
    shape = tuple(x.shape)[-3:]
    return float(np.prod(shape)) ** 0.5


def prepare(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: LabelLike, eps: EpsLike | None,
            target: LabelLike | None, eps_upper: float = 1.0) -> Prepared:
    """Validated inputs with one row per attack.

    ``eps`` may be a scalar, one value per image, or a list of E values for a single image: the image is then
    repeated E times (one call answers a whole sweep).
    """
    xt = as_images(model, x)
    expanded = False
    k = num_classes_of(model)
    if eps is None:
        e = np.zeros(len(xt))
    else:
        e = eps_values(eps)
        check_eps(e.tolist(), "eps", upper=eps_upper)
        if len(e) == 1:
            e = np.repeat(e, len(xt))
        elif len(xt) == 1 and len(e) > 1:
            xt = xt.expand(len(e), *xt.shape[1:]).clone()
            expanded = True
        elif len(e) != len(xt):
            raise ValueError(f"eps has {len(e)} values for {len(xt)} images: give one, one per image, "
                             "or a list for a single image")
    yt = as_labels(y, len(xt), xt.device, k, "y")
    tt = as_labels(target, len(xt), xt.device, k, "target")
    if tt is not None:
        same = (tt == yt).nonzero()
        if len(same):
            check_target(int(tt[same[0, 0]]), int(yt[same[0, 0]]), k)
    return Prepared(xt, yt, tt, e, expanded)


def rows(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A per-row float32 tensor on ``like``'s device (the float32 rounding of each float64 value)."""
    return torch.as_tensor(np.asarray(values, dtype=np.float32), device=like.device)


def class_of_interest(y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    return y if target is None else target


def margin(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Positive while the attack has not succeeded (see ``explorer.attacks.result``)."""
    cls = class_of_interest(y, target)[:, None]
    own = logits.gather(1, cls).squeeze(1)
    other = logits.scatter(1, cls, float("-inf")).amax(dim=1)
    return own - other if target is None else other - own


def succeeded(pred: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    return pred != y if target is None else pred == target


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Per-row cross-entropy to the class of interest (the true class, or the target)."""
    return F.cross_entropy(logits, class_of_interest(y, target), reduction="none")


def ascent_objective(ce: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """The scalar each gradient step increases: Σ CE(y) untargeted, −Σ CE(target) targeted."""
    return ce.sum() if target is None else -ce.sum()


def summed_objective(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """``ascent_objective`` in one call when the per-row values are not needed (same gradient bits)."""
    total = F.cross_entropy(logits, class_of_interest(y, target), reduction="sum")
    return total if target is None else -total


class Recorder:
    """Collects per-step values on the device (no host syncs inside the loop) and stacks them at the end."""

    def __init__(self, enabled: bool, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> None:
        self.enabled = enabled
        self.x, self.y, self.target = x, y, target
        self._rows: list[tuple[torch.Tensor, ...]] = []

    def add(self, logits: torch.Tensor, adv: torch.Tensor, loss: torch.Tensor | None = None) -> None:
        if not self.enabled:
            return
        with torch.no_grad():
            lg = logits.detach()
            if loss is None:
                loss = cross_entropy(lg, self.y, self.target)
            delta = adv.detach() - self.x
            self._rows.append((loss.detach().float(), margin(lg, self.y, self.target), lg.argmax(dim=1),
                               LINF.size(delta), L2_NORM.size(delta)))

    def build(self) -> AttackTrace | None:
        if not self.enabled:
            return None
        if not self._rows:
            n = len(self.x)
            z = np.zeros((0, n), np.float32)
            return AttackTrace(z, z.copy(), np.zeros((0, n), np.int64), z.copy(), z.copy())
        cols = [torch.stack([r[i] for r in self._rows]).cpu().numpy() for i in range(5)]
        return AttackTrace(loss=cols[0].astype(np.float32), margin=cols[1].astype(np.float32),
                           pred=cols[2].astype(np.int64), linf=cols[3].astype(np.float32),
                           l2=cols[4].astype(np.float32))


def classify(model: torch.nn.Module, adv: torch.Tensor) -> torch.Tensor:
    """Logits of a batch under inference mode, returned as a normal (autograd-safe) tensor."""
    with torch.inference_mode():
        out = model(adv)
    return out.clone() if out.is_inference() else out


def finish(model: torch.nn.Module, attack: str, x: torch.Tensor, adv: torch.Tensor, y: torch.Tensor,
           target: torch.Tensor | None, eps: np.ndarray, recorder: Recorder, trace: bool,
           final_logits: torch.Tensor | None = None, record_final: bool = True) -> AttackResult:
    """Classify the final batch (unless ``trace=False``), close the trace, build the result."""
    adv = adv.detach()
    yn = y.cpu().numpy()
    tn = None if target is None else target.cpu().numpy()
    if not trace:  # the adversarial batch only: the same work as a peer library's attack call
        return AttackResult(attack=attack, adversarial=adv, eps=np.asarray(eps, np.float64), y=yn, target=tn)
    with torch.no_grad():
        linf, l2 = sizes(adv - x)
    logits = classify(model, adv) if final_logits is None else final_logits.detach()
    if record_final:
        recorder.add(logits, adv)
    with torch.no_grad():
        pred = logits.argmax(dim=1)
        m = margin(logits, y, target)
        ok = succeeded(pred, y, target)
    return AttackResult(
        attack=attack, adversarial=adv, eps=np.asarray(eps, np.float64), y=yn, target=tn, linf=linf, l2=l2,
        logits=logits.float().cpu().numpy(), pred=pred.cpu().numpy().astype(np.int64),
        success=ok.cpu().numpy(), margin=m.float().cpu().numpy(), trace=recorder.build(),
    )


def sizes(delta: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (L∞, L2) of a perturbation batch as float32 numpy arrays (one transfer)."""
    flat = delta.detach().reshape(len(delta), -1)
    both = torch.stack([flat.abs().amax(dim=1), torch.linalg.vector_norm(flat, dim=1)]).float().cpu().numpy()
    return both[0], both[1]


def generator_for(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """The explicit source of randomness: a given CPU generator, or a fresh one seeded with ``seed``."""
    if generator is not None:
        return generator
    return torch.Generator().manual_seed(0 if seed is None else int(seed))
