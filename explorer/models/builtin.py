"""The explorer's own models, on scikit-learn's digits and on MNIST: a small CNN, an MLP, and the models a
transfer matrix needs (Szegedy et al., 2014): a softmax regression with no hidden layer, an autoencoder-based
classifier (encoder pretrained as an autoencoder, softmax on its code), the same CNN with another seed, and a
CNN of a different architecture.

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


def make_softmax(size: int) -> nn.Sequential:
    """Multinomial logistic regression: one linear layer on the pixels, no hidden layer."""
    return nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc=nn.Linear(size * size, 10)))


def ae_code_size(size: int) -> int:
    return 64 if size == 8 else 400  # Szegedy et al.'s AE400-10 on MNIST


def make_ae_encoder(size: int) -> nn.Sequential:
    """The autoencoder's encoder: one sigmoid layer (AE400 on MNIST, 64 units on 8x8 digits)."""
    return nn.Sequential(OrderedDict(
        flatten=nn.Flatten(), fc=nn.Linear(size * size, ae_code_size(size)), sigmoid=nn.Sigmoid(),
    ))


def make_ae(size: int) -> nn.Sequential:
    """The autoencoder-based classifier: the pretrained encoder, then a softmax classifier on its code."""
    return nn.Sequential(OrderedDict(encoder=make_ae_encoder(size), classifier=nn.Linear(ae_code_size(size), 10)))


def make_ae_decoder(size: int) -> nn.Sequential:
    """The decoder used only while pretraining the encoder (code -> normalised pixels)."""
    return nn.Sequential(OrderedDict(fc=nn.Linear(ae_code_size(size), size * size),
                                     unflatten=nn.Unflatten(1, (1, size, size))))


def make_cnn_wide(size: int) -> nn.Sequential:
    """A different CNN: 5x5 then 3x3 convolutions, 64 and 128 channels, a pool after each (no dense hidden
    layer on digits; 256 hidden units on MNIST)."""
    last = size // 4
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv1=nn.Conv2d(1, 64, 5, padding=2), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(64, 128, 3, padding=1), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2), flatten=nn.Flatten(),
    )
    if size == 8:
        layers["fc"] = nn.Linear(128 * last * last, 10)
    else:
        layers["fc1"] = nn.Linear(128 * last * last, 256)
        layers["relu3"] = nn.ReLU()
        layers["fc2"] = nn.Linear(256, 10)
    return nn.Sequential(layers)


_BUILDERS: dict[str, Callable[[int], nn.Sequential]] = {
    "cnn": make_cnn, "mlp": make_mlp, "softmax": make_softmax, "ae": make_ae, "cnn-wide": make_cnn_wide,
}


@dataclass(frozen=True)
class BuiltinRecipe:
    dataset: str  # "digits" | "mnist"
    arch: str  # "cnn" | "mlp" | "softmax" | "ae" | "cnn-wide"
    size: int
    mean: float
    std: float
    train: TrainConfig
    pretrain_epochs: int = 0  # "ae": epochs of autoencoder pretraining of the encoder

    def build(self) -> nn.Sequential:
        return _BUILDERS[self.arch](self.size)

    def load_split(self) -> Split:
        return load_digits_split() if self.dataset == "digits" else load_mnist_split()


RECIPES: dict[str, BuiltinRecipe] = {
    "digits-cnn": BuiltinRecipe("digits", "cnn", 8, 0.305, 0.405, TrainConfig(epochs=40, batch_size=64, lr=2e-3, shift=1)),
    "digits-mlp": BuiltinRecipe("digits", "mlp", 8, 0.305, 0.405, TrainConfig(epochs=60, batch_size=64, lr=1e-3, weight_decay=1e-4)),
    "mnist-cnn": BuiltinRecipe("mnist", "cnn", 28, 0.1307, 0.3081, TrainConfig(epochs=10, batch_size=64, lr=1e-3, shift=2)),
    "mnist-mlp": BuiltinRecipe("mnist", "mlp", 28, 0.1307, 0.3081, TrainConfig(epochs=15, batch_size=64, lr=1e-3, weight_decay=1e-5)),
    # the transfer-matrix family (Szegedy et al., 2014): shallow, autoencoder-based, another seed, another CNN
    "digits-softmax": BuiltinRecipe("digits", "softmax", 8, 0.305, 0.405, TrainConfig(epochs=60, batch_size=64, lr=5e-3, weight_decay=1e-4)),
    "digits-ae": BuiltinRecipe("digits", "ae", 8, 0.305, 0.405, TrainConfig(epochs=60, batch_size=64, lr=5e-3), pretrain_epochs=60),
    "digits-cnn-s1": BuiltinRecipe("digits", "cnn", 8, 0.305, 0.405, TrainConfig(epochs=40, batch_size=64, lr=2e-3, shift=1, seed=1)),
    "digits-cnn-wide": BuiltinRecipe("digits", "cnn-wide", 8, 0.305, 0.405, TrainConfig(epochs=30, batch_size=64, lr=2e-3, shift=1)),
    "mnist-softmax": BuiltinRecipe("mnist", "softmax", 28, 0.1307, 0.3081, TrainConfig(epochs=15, batch_size=64, lr=2e-3, weight_decay=1e-5)),
    "mnist-ae": BuiltinRecipe("mnist", "ae", 28, 0.1307, 0.3081, TrainConfig(epochs=15, batch_size=64, lr=3e-3), pretrain_epochs=10),
    "mnist-cnn-s1": BuiltinRecipe("mnist", "cnn", 28, 0.1307, 0.3081, TrainConfig(epochs=10, batch_size=64, lr=1e-3, shift=2, seed=1)),
    "mnist-cnn-wide": BuiltinRecipe("mnist", "cnn-wide", 28, 0.1307, 0.3081, TrainConfig(epochs=6, batch_size=64, lr=1e-3, shift=2)),
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


def _pretrain_autoencoder(encoder: nn.Module, recipe: BuiltinRecipe, x_all: torch.Tensor, cfg: TrainConfig,
                          gen: torch.Generator, model_id: str, progress: ProgressFn | None) -> None:
    """Train ``encoder`` with a throw-away decoder to reconstruct its (normalised) input: MSE, Adam, seeded.

    Called inside ``train_builtin``'s forked RNG, so the decoder's initialisation is seeded too."""
    decoder = make_ae_decoder(recipe.size)
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=cfg.lr)
    encoder.train()
    epochs = recipe.pretrain_epochs
    for epoch in range(epochs):
        order = torch.randperm(len(x_all), generator=gen)
        for i in range(0, len(order), cfg.batch_size):
            xb = x_all[order[i: i + cfg.batch_size]]
            loss = F.mse_loss(decoder(encoder(xb)), xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if progress:
            progress(0.5 * (epoch + 1) / epochs,
                     f"{model_id}: autoencoder epoch {epoch + 1}/{epochs}, reconstruction MSE {loss.item():.3f}")


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
        x_all = (torch.from_numpy(split.x_train) - recipe.mean) / recipe.std
        params = list(net.parameters())
        if recipe.arch == "ae":
            _pretrain_autoencoder(net.encoder, recipe, x_all, cfg, gen, model_id, progress)
            for p in net.encoder.parameters():
                p.requires_grad_(False)  # the classifier learns on the frozen code (Szegedy et al.'s AE400-10)
            params = list(net.classifier.parameters())
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=cfg.epochs * int(np.ceil(len(split.x_train) / cfg.batch_size))
        )
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
                done = (epoch + 1) / cfg.epochs
                progress(0.5 + 0.5 * done if recipe.arch == "ae" else done, f"{model_id}: epoch {epoch + 1}/{cfg.epochs}, loss {loss.item():.3f}")
        net.eval()
        for p in net.parameters():
            p.requires_grad_(True)
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
