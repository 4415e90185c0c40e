"""The explorer's own models: a small CNN and an MLP, on scikit-learn's digits and on MNIST.

Training is seeded and deterministic (the global RNG is forked, never reseeded), full precision on the CPU,
and the weights are saved as safetensors with their held-out accuracy in the file's metadata.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.models.data import Split, load_digits_split, load_mnist_split

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class TrainConfig:
    """How a built-in model is trained (no logic here: see ``train_builtin``)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    shift: int = 0  # random translation augmentation, in pixels
    seed: int = 0


def make_cnn(size: int) -> nn.Sequential:
    """Two 3x3 convolutions, a max-pool and two dense layers (layer names are stable: Grad-CAM uses conv2)."""
    if size == 8:
        return nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(1, 32, 3, padding=1), relu1=nn.ReLU(),
            conv2=nn.Conv2d(32, 64, 3, padding=1), relu2=nn.ReLU(),
            pool=nn.MaxPool2d(2), flatten=nn.Flatten(),
            fc1=nn.Linear(64 * 4 * 4, 128), relu3=nn.ReLU(), dropout=nn.Dropout(0.25),
            fc2=nn.Linear(128, 10),
        ))
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(1, 32, 3), relu1=nn.ReLU(),
        conv2=nn.Conv2d(32, 64, 3), relu2=nn.ReLU(),
        pool=nn.MaxPool2d(2), flatten=nn.Flatten(),
        fc1=nn.Linear(64 * 12 * 12, 128), relu3=nn.ReLU(), dropout=nn.Dropout(0.25),
        fc2=nn.Linear(128, 10),
    ))


def make_mlp(size: int) -> nn.Sequential:
    """Two hidden layers of 256 (digits) or 512 (MNIST) ReLU units."""
    hidden = 256 if size == 8 else 512
    return nn.Sequential(OrderedDict(
        flatten=nn.Flatten(),
        fc1=nn.Linear(size * size, hidden), relu1=nn.ReLU(),
        fc2=nn.Linear(hidden, hidden), relu2=nn.ReLU(),
        fc3=nn.Linear(hidden, 10),
    ))


@dataclass(frozen=True)
class BuiltinRecipe:
    dataset: str  # "digits" | "mnist"
    arch: str  # "cnn" | "mlp"
    size: int
    mean: float
    std: float
    train: TrainConfig

    def build(self) -> nn.Sequential:
        return make_cnn(self.size) if self.arch == "cnn" else make_mlp(self.size)

    def load_split(self) -> Split:
        return load_digits_split() if self.dataset == "digits" else load_mnist_split()


RECIPES: dict[str, BuiltinRecipe] = {
    "digits-cnn": BuiltinRecipe("digits", "cnn", 8, 0.305, 0.405, TrainConfig(epochs=40, batch_size=64, lr=2e-3, shift=1)),
    "digits-mlp": BuiltinRecipe("digits", "mlp", 8, 0.305, 0.405, TrainConfig(epochs=60, batch_size=64, lr=1e-3, weight_decay=1e-4)),
    "mnist-cnn": BuiltinRecipe("mnist", "cnn", 28, 0.1307, 0.3081, TrainConfig(epochs=10, batch_size=64, lr=1e-3, shift=2)),
    "mnist-mlp": BuiltinRecipe("mnist", "mlp", 28, 0.1307, 0.3081, TrainConfig(epochs=15, batch_size=64, lr=1e-3, weight_decay=1e-5)),
}


@dataclass(frozen=True)
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    accuracy: float
    n_train: int
    n_test: int
    seconds: float


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random integer translation of each image (zero fill), drawn from ``gen``."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    pad = F.pad(x, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = pad[i, :, dy[i]: dy[i] + h, dx[i]: dx[i] + w]
    return out


def evaluate(net: nn.Module, x: np.ndarray, y: np.ndarray, mean: float, std: float) -> float:
    with torch.inference_mode():
        logits = net((torch.from_numpy(x) - mean) / std)
    return float((logits.argmax(1).numpy() == y).mean())


def train_builtin(model_id: str, progress: ProgressFn | None = None, config: TrainConfig | None = None) -> TrainResult:
    """Train a built-in model from its recipe (or ``config``); deterministic for a given seed on one machine."""
    recipe = RECIPES[model_id]
    cfg = config or recipe.train
    split = recipe.load_split()
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # inside the fork only: initialisation and dropout
        net = recipe.build()
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=cfg.epochs * int(np.ceil(len(split.x_train) / cfg.batch_size))
        )
        x_all = (torch.from_numpy(split.x_train) - recipe.mean) / recipe.std
        x_raw = torch.from_numpy(split.x_train)
        y_all = torch.from_numpy(split.y_train)
        net.train()
        for epoch in range(cfg.epochs):
            order = torch.randperm(len(x_all), generator=gen)
            for i in range(0, len(order), cfg.batch_size):
                idx = order[i: i + cfg.batch_size]
                xb = x_all[idx] if cfg.shift == 0 else (_shift(x_raw[idx], cfg.shift, gen) - recipe.mean) / recipe.std
                loss = F.cross_entropy(net(xb), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            if progress:
                progress((epoch + 1) / cfg.epochs, f"{model_id}: epoch {epoch + 1}/{cfg.epochs}, loss {loss.item():.3f}")
        net.eval()
    acc = evaluate(net, split.x_test, split.y_test, recipe.mean, recipe.std)
    return TrainResult(
        {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()},
        acc, len(split.x_train), len(split.x_test), time.perf_counter() - start,
    )


def save_weights(result: TrainResult, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(result.state_dict, str(tmp), metadata={
        "accuracy": f"{result.accuracy:.6f}", "n_train": str(result.n_train),
        "n_test": str(result.n_test), "train_seconds": f"{result.seconds:.2f}",
    })
    tmp.replace(path)  # atomic: two sessions training at once never leave a half-written file


def read_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_weights(model_id: str, path: Path) -> nn.Sequential:
    from safetensors.torch import load_file

    net = RECIPES[model_id].build()
    net.load_state_dict(load_file(str(path)))
    net.eval()
    return net
