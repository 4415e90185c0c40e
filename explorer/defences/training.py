"""Seeded training of defended models: FGSM-AT (Goodfellow et al. 2015), PGD-AT (Madry et al. 2018), fast-AT
(Wong et al. 2020) with catastrophic-overfitting detection, ensemble members (whole set or bootstrap), and a
denoising autoencoder front.

Everything reuses the built-in recipes of :mod:`explorer.models.builtin` (architecture, normalisation, data
split, random shifts). Randomness comes only from explicit seeds: a ``torch.Generator`` for batches, starts and
bootstrap draws, and a forked global RNG (``torch.random.fork_rng``) for initialisation and dropout, as
``builtin.train_builtin`` does. Adversarial examples are made with the network in eval mode (dropout off) and the
update runs in train mode; attacks work in [0, 1] pixel space with the recipe's normalisation inside.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.models import builtin
from explorer.models.data import Split

ProgressFn = Callable[[float, str], None]

METHODS: tuple[str, ...] = ("clean", "fgsm", "pgd", "fast")
ARCHS: tuple[str, ...] = ("recipe", "lenet")


def make_lenet(size: int) -> nn.Sequential:
    """A LeNet-style CNN: two 5x5 convolutions (16, 32 channels) each followed by a 2x2 max-pool, 100 hidden units.

    About a quarter of the arithmetic of the built-in MNIST CNN, so adversarial training (8 forward/backward
    passes per image for PGD-7) fits this 2-core machine; layer names follow the built-in CNN (Grad-CAM: conv2).
    """
    from collections import OrderedDict

    side = size // 4
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(1, 16, 5, padding=2), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(16, 32, 5, padding=2), relu2=nn.ReLU(), pool=nn.MaxPool2d(2), flatten=nn.Flatten(),
        fc1=nn.Linear(32 * side * side, 100), relu3=nn.ReLU(), fc2=nn.Linear(100, 10),
    ))


def build_net(base_id: str, arch: str) -> nn.Sequential:
    """The network of recipe ``base_id`` (``arch="recipe"``) or the LeNet-style CNN at the recipe's image size."""
    recipe = builtin.RECIPES[base_id]
    if arch == "recipe":
        return recipe.build()
    if arch == "lenet":
        return make_lenet(recipe.size)
    raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")


@dataclass(frozen=True)
class AdvTrainConfig:
    """How a defended model is trained (no logic here: see :func:`train_adversarial`).

    * ``method``: ``clean``; ``fgsm`` (Goodfellow: loss ``(1 − mix)·CE(x) + mix·CE(x_fgsm)``); ``pgd`` (Madry: loss
      on PGD-``steps`` adversarials from a random start, ``mix`` of clean loss); ``fast`` (Wong: one FGSM step of
      ``alpha`` (default 1.25·ε) from a uniform random start in the ε-ball, loss on it only).
    * ``eps``: L∞ budget in [0, 1] pixel units; ``eps_ramp``: fraction of the epochs over which ε grows linearly from
      0 (a curriculum that small networks need at ε = 0.3).
    * ``check_n`` training images (a fixed, seeded batch) are attacked with PGD-``check_steps`` after every epoch:
      the held-out-batch signal of catastrophic overfitting. With ``early_stop``, a drop of the PGD accuracy by more
      than ``co_drop`` below its best stops training and keeps the best epoch.
    """

    method: str = "clean"
    arch: str = "recipe"
    eps: float = 0.3
    steps: int = 10
    alpha: float | None = None
    mix: float = 0.0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    eps_ramp: float = 0.0
    shift: int = 0
    bootstrap: bool = False
    seed: int = 0
    check_n: int = 500
    check_steps: int = 10
    early_stop: bool = False
    co_drop: float = 0.2


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    eps: float
    loss: float
    check_clean: float  # accuracy on the fixed check batch (training images)
    check_pgd: float  # PGD accuracy at the full ε on the check batch (NaN when not measured)
    seconds: float


@dataclass(frozen=True)
class AdvTrainResult:
    state_dict: dict[str, torch.Tensor]
    config: AdvTrainConfig
    accuracy: float  # clean accuracy on the held-out split
    n_train: int
    n_test: int
    seconds: float
    history: tuple[EpochRecord, ...] = ()
    best_epoch: int = 0
    catastrophic_overfitting: bool = False
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def _normalised(net: nn.Module, mean: float, std: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: net((x - mean) / std)


def fgsm_examples(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, eps: float,
                  start: torch.Tensor | None = None, alpha: float | None = None) -> torch.Tensor:
    """One signed-gradient step of ``alpha`` (default ε) from ``x`` (or ``x + start``), projected and clipped."""
    x0 = x if start is None else torch.clamp(x + start, 0, 1)
    xg = x0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(f(xg), y, reduction="sum"), xg)
    step = eps if alpha is None else alpha
    adv = x0 + step * g.sign()
    return torch.clamp(x + torch.clamp(adv - x, -eps, eps), 0, 1).detach()


def pgd_examples(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
                 alpha: float | None, gen: torch.Generator) -> torch.Tensor:
    """L∞ PGD from a uniform random start (drawn from ``gen``): ``steps`` sign steps of ``alpha`` (2.5·ε/steps)."""
    from explorer.attacks import LINF
    from explorer.attacks._iterative import pgd_loop

    a = 2.5 * eps / steps if alpha is None else alpha
    start = torch.clamp(x + (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device) * eps, 0, 1)

    def grad(adv: torch.Tensor) -> torch.Tensor:
        xg = adv.clone().requires_grad_(True)
        return torch.autograd.grad(F.cross_entropy(f(xg), y, reduction="sum"), xg)[0]

    return pgd_loop(grad, x, start, eps, steps, a, LINF)


def _accuracy(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, bs: int = 500) -> float:
    with torch.inference_mode():
        return float(sum((f(x[i: i + bs]).argmax(1) == y[i: i + bs]).sum().item() for i in range(0, len(x), bs))
                     / max(1, len(x)))


def _pgd_accuracy(f, x, y, eps, steps, gen, bs: int = 250) -> float:
    ok = 0
    for i in range(0, len(x), bs):
        adv = pgd_examples(f, x[i: i + bs], y[i: i + bs], eps, steps, None, gen)
        with torch.inference_mode():
            ok += int((f(adv).argmax(1) == y[i: i + bs]).sum().item())
    return ok / max(1, len(x))


def epoch_eps(cfg: AdvTrainConfig, epoch: int) -> float:
    """ε used in ``epoch`` (0-based): linear ramp over the first ``eps_ramp`` of the epochs, then ``cfg.eps``."""
    ramp = int(round(cfg.eps_ramp * cfg.epochs))
    if ramp <= 0 or epoch >= ramp:
        return float(cfg.eps)
    return float(cfg.eps) * (epoch + 1) / (ramp + 1)


def train_batch(net: nn.Module, opt: torch.optim.Optimizer, f: Callable[[torch.Tensor], torch.Tensor],
                x: torch.Tensor, y: torch.Tensor, cfg: AdvTrainConfig, eps: float, gen: torch.Generator) -> float:
    """One optimiser step of ``cfg.method`` on a [0, 1] batch; returns the loss. (The benchmark times this.)"""
    if cfg.method != "clean" and eps > 0:
        net.eval()
        if cfg.method == "fgsm":
            adv = fgsm_examples(f, x, y, eps)
        elif cfg.method == "pgd":
            adv = pgd_examples(f, x, y, eps, cfg.steps, cfg.alpha, gen)
        else:  # fast: uniform start, one step of α = 1.25 ε
            start = ((torch.rand(x.shape, generator=gen) * 2 - 1) * eps).to(x.device)
            adv = fgsm_examples(f, x, y, eps, start=start, alpha=1.25 * eps if cfg.alpha is None else cfg.alpha)
        net.train()
        mix = cfg.mix if cfg.method != "fast" else 0.0
        loss = mix * F.cross_entropy(f(x), y) + (1 - mix) * F.cross_entropy(f(adv), y) if mix > 0 else \
            F.cross_entropy(f(adv), y)
    else:
        loss = F.cross_entropy(f(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def train_adversarial(base_id: str, cfg: AdvTrainConfig, progress: ProgressFn | None = None,
                      split: Split | None = None, label: str | None = None) -> AdvTrainResult:
    """Train the architecture of built-in recipe ``base_id`` (e.g. ``mnist-cnn``) with ``cfg``; deterministic for a
    seed on one machine. ``split`` defaults to the recipe's data (MNIST: first 8,000 / last 2,000)."""
    if cfg.method not in METHODS:
        raise ValueError(f"unknown training method {cfg.method!r} (known: {', '.join(METHODS)})")
    recipe = builtin.RECIPES[base_id]
    split = split or recipe.load_split()
    name = label or f"{base_id}/{cfg.method}"
    start_t = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    x_all = torch.from_numpy(split.x_train)
    y_all = torch.from_numpy(split.y_train)
    if cfg.bootstrap:
        idx = torch.randint(0, len(x_all), (len(x_all),), generator=torch.Generator().manual_seed(cfg.seed + 7919))
        x_all, y_all = x_all[idx], y_all[idx]
    check_gen_seed = cfg.seed + 104729
    check_idx = torch.randperm(len(split.x_train), generator=torch.Generator().manual_seed(check_gen_seed))
    check_idx = check_idx[: min(cfg.check_n, len(check_idx))]
    x_chk = torch.from_numpy(split.x_train)[check_idx]
    y_chk = torch.from_numpy(split.y_train)[check_idx]
    monitor = cfg.method in ("fgsm", "pgd", "fast") and cfg.check_n > 0
    history: list[EpochRecord] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_score, best_epoch, co, note, peak = -1.0, 0, False, "", -1.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = build_net(base_id, cfg.arch)
        f = _normalised(net, recipe.mean, recipe.std)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        per_epoch = int(np.ceil(len(x_all) / cfg.batch_size))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * per_epoch)
        for epoch in range(cfg.epochs):
            t0 = time.perf_counter()
            eps = epoch_eps(cfg, epoch)
            order = torch.randperm(len(x_all), generator=gen)
            net.train()
            loss = 0.0
            for b, i in enumerate(range(0, len(order), cfg.batch_size)):
                idx = order[i: i + cfg.batch_size]
                xb = x_all[idx] if cfg.shift == 0 else builtin._shift(x_all[idx], cfg.shift, gen)
                loss = train_batch(net, opt, f, xb, y_all[idx], cfg, eps, gen)
                sched.step()
                if progress and b % 10 == 0:
                    progress((epoch + b / per_epoch) / cfg.epochs,
                             f"{name}: epoch {epoch + 1}/{cfg.epochs}, ε {eps:.3f}, loss {loss:.3f}")
            net.eval()
            clean = _accuracy(f, x_chk, y_chk)
            robust = float("nan")
            if monitor:
                robust = _pgd_accuracy(f, x_chk, y_chk, cfg.eps, cfg.check_steps,
                                       torch.Generator().manual_seed(check_gen_seed + epoch))
            history.append(EpochRecord(epoch + 1, eps, loss, clean, robust, time.perf_counter() - t0))
            score = robust if monitor else clean
            ramped = eps >= cfg.eps
            if monitor and ramped and peak >= 0 and score < peak - cfg.co_drop and not co:
                co = True
                note = (f"catastrophic overfitting at epoch {epoch + 1}: PGD-{cfg.check_steps} accuracy on the check "
                        f"batch fell from {peak:.2f} to {score:.2f}")
                if progress:
                    progress((epoch + 1) / cfg.epochs, f"{name}: {note}")
                if cfg.early_stop:
                    note += f"; stopped early, kept epoch {best_epoch}"
                    break
            if ramped:
                peak = max(peak, score)
            if not cfg.early_stop or score >= best_score or not ramped:
                best_score, best_epoch = score, epoch + 1
                best_state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
            if progress:
                progress((epoch + 1) / cfg.epochs, f"{name}: epoch {epoch + 1}/{cfg.epochs} done"
                         + (f", check clean {clean:.3f}" if len(x_chk) else "")
                         + ("" if not monitor else f", PGD {robust:.3f}"))
        assert best_state is not None
        net.load_state_dict(best_state)
        net.eval()
    acc = builtin.evaluate(net, split.x_test, split.y_test, recipe.mean, recipe.std)
    return AdvTrainResult(best_state, cfg, acc, len(split.x_train), len(split.x_test), time.perf_counter() - start_t,
                          tuple(history), best_epoch, co, note)


def metadata(result: AdvTrainResult, **extra: str) -> dict[str, str]:
    """The safetensors metadata of a defended model: config, accuracy, seconds, history (all strings)."""
    import json

    meta = {
        "accuracy": f"{result.accuracy:.6f}", "n_train": str(result.n_train), "n_test": str(result.n_test),
        "train_seconds": f"{result.seconds:.2f}", "config": json.dumps(asdict(result.config)),
        "history": json.dumps([asdict(h) for h in result.history]), "best_epoch": str(result.best_epoch),
        "catastrophic_overfitting": str(result.catastrophic_overfitting).lower(), "note": result.note,
    }
    meta.update(extra)
    return meta


# ------------------------------------------------------------------------------------------ autoencoder
def make_autoencoder(size: int) -> nn.Sequential:
    """A small convolutional denoising autoencoder, [0, 1] image in, [0, 1] image out (sigmoid)."""
    from collections import OrderedDict

    if size == 8:
        return nn.Sequential(OrderedDict(
            enc=nn.Conv2d(1, 16, 3, padding=1), r1=nn.ReLU(), enc2=nn.Conv2d(16, 16, 3, padding=1), r2=nn.ReLU(),
            dec=nn.Conv2d(16, 1, 3, padding=1), out=nn.Sigmoid(),
        ))
    return nn.Sequential(OrderedDict(
        enc=nn.Conv2d(1, 16, 3, stride=2, padding=1), r1=nn.ReLU(),  # 14x14
        enc2=nn.Conv2d(16, 32, 3, stride=2, padding=1), r2=nn.ReLU(),  # 7x7
        dec=nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), r3=nn.ReLU(),  # 14x14
        dec2=nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1), out=nn.Sigmoid(),  # 28x28
    ))


@dataclass(frozen=True)
class AETrainConfig:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-3
    noise: float = 0.3  # Gaussian noise σ added to the input (clipped to [0, 1]); the target is the clean image
    seed: int = 0


def train_autoencoder(base_id: str, cfg: AETrainConfig, progress: ProgressFn | None = None,
                      split: Split | None = None) -> tuple[dict[str, torch.Tensor], float, float]:
    """Train a denoising autoencoder on the recipe's training images; returns (state_dict, held-out MSE, seconds)."""
    recipe = builtin.RECIPES[base_id]
    split = split or recipe.load_split()
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    x_all = torch.from_numpy(split.x_train)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        ae = make_autoencoder(recipe.size)
        opt = torch.optim.Adam(ae.parameters(), lr=cfg.lr)
        for epoch in range(cfg.epochs):
            order = torch.randperm(len(x_all), generator=gen)
            for i in range(0, len(order), cfg.batch_size):
                xb = x_all[order[i: i + cfg.batch_size]]
                noisy = torch.clamp(xb + cfg.noise * torch.randn(xb.shape, generator=gen), 0, 1)
                loss = F.mse_loss(ae(noisy), xb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if progress:
                progress((epoch + 1) / cfg.epochs, f"{base_id} denoiser: epoch {epoch + 1}/{cfg.epochs}, "
                         f"mse {loss.item():.4f}")
        ae.eval()
        with torch.inference_mode():
            xt = torch.from_numpy(split.x_test)
            mse = float(F.mse_loss(ae(xt), xt))
    return {k: v.detach().clone().contiguous() for k, v in ae.state_dict().items()}, mse, time.perf_counter() - t0
