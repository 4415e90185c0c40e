"""The defended models of the registry: what each one is, how it is trained, where its weights live, how it is built.

Every entry becomes an ordinary registry model (family ``"defence"``): a frozen
:class:`explorer.models.Classifier` taking [0, 1] N x C x H x W images and returning logits, usable on every page.
Weights are safetensors in the explorer's weights folder with their metadata (training config, accuracies,
seconds, per-epoch history). Ensemble members are trained one by one with seeds ``seed + i``, so an ensemble
of N reuses the first N members of a larger one already trained (and a larger N trains only the missing members).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from explorer.config import get_settings
from explorer.defences import training
from explorer.defences.training import AdvTrainConfig, ProgressFn
from explorer.models import builtin
from explorer.models.data import DIGIT_CLASSES, find_mnist

KINDS: tuple[str, ...] = ("plain", "at", "ensemble", "noise", "denoiser", "quantize")
COMBINES: tuple[str, ...] = ("mean", "max", "vote")
SAMPLINGS: tuple[str, ...] = ("uniform", "bootstrap")
ENSEMBLE_SIZES: tuple[int, ...] = (5, 25, 50)
MNIST_EPS = 0.3
DIGITS_EPS = 0.3  # digits are in [0, 1] too (scikit-learn's 0..16 scaled by 1/16): the same ε as MNIST


@dataclass(frozen=True)
class DefenceEntry:
    """One defended model. ``base``: the built-in recipe giving data, image size and normalisation."""

    id: str
    name: str
    kind: str
    base: str
    description: str
    train: AdvTrainConfig | None = None  # plain / at / ensemble members
    wraps: str | None = None  # noise / denoiser / quantize: the registry model inside
    n_members: int = 0
    sampling: str = "uniform"
    combine: str = "mean"
    sigma: float = 0.0
    n_samples: int = 0
    levels: int = 0

    @property
    def dataset(self) -> str:
        return builtin.RECIPES[self.base].dataset

    @property
    def size(self) -> int:
        return builtin.RECIPES[self.base].size


def _at(base: str, method: str, eps: float, **kw) -> AdvTrainConfig:
    return AdvTrainConfig(method=method, eps=eps, **kw)


def member_config(base: str, sampling: str) -> AdvTrainConfig:
    """How every ensemble member is trained (member i: this config with ``seed = 1000 + i``). MNIST members get one
    epoch (about 97-98% each on the held-out 2,000): 100 members must train on a shared 2-core machine."""
    if builtin.RECIPES[base].dataset == "digits":
        return AdvTrainConfig(method="clean", arch="lenet", epochs=15, batch_size=64, lr=3e-3,
                              bootstrap=sampling == "bootstrap", seed=1000, check_n=0)
    return AdvTrainConfig(method="clean", arch="lenet", epochs=1, batch_size=64, lr=3e-3,
                          bootstrap=sampling == "bootstrap", seed=1000, check_n=0)


def _entries() -> tuple[DefenceEntry, ...]:
    out: list[DefenceEntry] = []
    for base, eps, big in (("mnist-cnn", MNIST_EPS, True), ("digits-cnn", DIGITS_EPS, False)):
        ds = "MNIST" if big else "Digits"
        ep = (lambda n_mnist, n_digits: n_mnist if big else n_digits)  # noqa: E731
        prefix = base.split("-")[0]
        plain = f"{prefix}-lenet"
        out.append(DefenceEntry(plain, f"{ds} LeNet CNN (undefended baseline)", "plain", base,
                                "LeNet-style CNN (2 conv 5x5 + pool, 100 hidden), standard training: the baseline "
                                "of the defences", AdvTrainConfig(method="clean", arch="lenet", epochs=ep(6, 30),
                                                                  lr=3e-3, check_n=0)))
        out.append(DefenceEntry(f"{prefix}-lenet-fgsm-at", f"{ds} LeNet, FGSM adversarial training", "at", base,
                                f"Goodfellow et al. 2015: loss ½·CE(x) + ½·CE(FGSM(x)), ε = {eps}",
                                _at(base, "fgsm", eps, arch="lenet", mix=0.5, epochs=ep(6, 30), lr=3e-3)))
        out.append(DefenceEntry(f"{prefix}-lenet-pgd-at", f"{ds} LeNet, PGD adversarial training (Madry)", "at", base,
                                f"Madry et al. 2018: loss on PGD-7 adversarials (random start, step 2.5ε/7), "
                                f"ε = {eps} ramped up over the first 30% of the epochs",
                                _at(base, "pgd", eps, arch="lenet", steps=7, epochs=ep(15, 40), lr=3e-3, eps_ramp=0.3,
                                    batch_size=100, check_n=256)))
        out.append(DefenceEntry(f"{prefix}-lenet-fast-at", f"{ds} LeNet, fast adversarial training (Wong)", "at", base,
                                f"Wong et al. 2020: FGSM from a uniform random start, α = 1.25ε, ε = {eps}; "
                                "catastrophic overfitting is watched (PGD accuracy on a check batch) and stops "
                                "training, keeping the best epoch",
                                _at(base, "fast", eps, arch="lenet", epochs=ep(10, 40), lr=3e-3, eps_ramp=0.2,
                                    batch_size=100, check_n=256, early_stop=True)))
        sizes = ENSEMBLE_SIZES if big else (5,)
        for n in sizes:
            for sampling in SAMPLINGS:
                for combine in COMBINES:
                    how = {"mean": "mean of probabilities", "max": "the most confident member",
                           "vote": "majority vote"}[combine]
                    out.append(DefenceEntry(
                        f"{prefix}-lenet-ens{n}-{sampling}-{combine}",
                        f"{ds} LeNet, {sampling} {combine}-ensemble ×{n}", "ensemble", base,
                        f"{n} LeNet CNNs trained on {'bootstrap samples of' if sampling == 'bootstrap' else 'all of'} "
                        f"the training set, combined by {how}",
                        member_config(base, sampling), n_members=n, sampling=sampling, combine=combine))
        out.append(DefenceEntry(f"{prefix}-lenet-noise", f"{ds} LeNet + Monte-Carlo noise averaging", "noise", base,
                                "the baseline LeNet averaged over 16 Gaussian copies of the input (σ = 0.25), "
                                "mean of probabilities", wraps=plain, sigma=0.25, n_samples=16))
        out.append(DefenceEntry(f"{prefix}-lenet-denoised", f"{ds} LeNet behind a denoising autoencoder", "denoiser",
                                base, "a convolutional denoising autoencoder (trained on noise σ = 0.3) in front of "
                                "the baseline LeNet", wraps=plain))
        out.append(DefenceEntry(f"{prefix}-lenet-binarized", f"{ds} LeNet behind input binarisation", "quantize", base,
                                "pixels rounded to {0, 1} before the baseline LeNet: zero gradient almost everywhere "
                                "(gradient masking; BPDA breaks it)", wraps=plain, levels=2))
    return tuple(out)


ENTRIES: tuple[DefenceEntry, ...] = _entries()
_BY_ID = {e.id: e for e in ENTRIES}


def get_entry(model_id: str) -> DefenceEntry:
    try:
        return _BY_ID[model_id]
    except KeyError:
        raise KeyError(f"unknown defended model {model_id!r}") from None


def is_defence(model_id: str) -> bool:
    return model_id in _BY_ID


# ----------------------------------------------------------------------------------------------- files
def weights_file(entry: DefenceEntry) -> Path:
    d = get_settings().weights_dir
    if entry.kind in ("plain", "at"):
        return d / f"{entry.id}.safetensors"
    if entry.kind == "ensemble":
        cfg = entry.train
        assert cfg is not None
        return d / f"{entry.base.split('-')[0]}-lenet-members-{entry.sampling}-e{cfg.epochs}-s{cfg.seed}.safetensors"
    if entry.kind == "denoiser":
        return d / f"{entry.base.split('-')[0]}-denoiser.safetensors"
    return weights_file(get_entry(entry.wraps)) if entry.wraps else d / f"{entry.id}.safetensors"


def read_metadata(path: Path) -> dict[str, str]:
    return builtin.read_metadata(path)


def members_trained(entry: DefenceEntry) -> int:
    path = weights_file(entry)
    return int(read_metadata(path).get("members", "0")) if path.is_file() else 0


def is_trained(entry: DefenceEntry) -> bool:
    if entry.kind == "ensemble":
        return members_trained(entry) >= entry.n_members
    if entry.kind in ("noise", "quantize"):
        return is_trained(get_entry(entry.wraps))  # type: ignore[arg-type]
    if entry.kind == "denoiser":
        return weights_file(entry).is_file() and is_trained(get_entry(entry.wraps))  # type: ignore[arg-type]
    return weights_file(entry).is_file()


def data_available(entry: DefenceEntry) -> bool:
    return entry.dataset != "mnist" or find_mnist() is not None


def _save(state: dict[str, torch.Tensor], meta: dict[str, str], path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)  # atomic


def _load(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


_train_lock = threading.Lock()


def train(model_id: str, progress: ProgressFn | None = None) -> Path:
    """Train (or complete) a defended model's weights and cache them; returns the weights file."""
    entry = get_entry(model_id)
    with _train_lock:
        if entry.kind in ("plain", "at"):
            assert entry.train is not None
            res = training.train_adversarial(entry.base, entry.train, progress, label=entry.id)
            path = weights_file(entry)
            _save(res.state_dict, training.metadata(res, model=entry.id, kind=entry.kind, arch=entry.train.arch), path)
            return path
        if entry.kind == "ensemble":
            return ensure_members(entry.base, entry.sampling, entry.n_members, progress, entry.train)
        if entry.kind == "denoiser":
            inner = get_entry(entry.wraps)  # type: ignore[arg-type]
        else:
            inner = get_entry(entry.wraps)  # type: ignore[arg-type]
    if not is_trained(inner):
        train(inner.id, progress)
    if entry.kind == "denoiser" and not weights_file(entry).is_file():
        cfg = training.AETrainConfig(epochs=5 if entry.dataset == "mnist" else 30)
        state, mse, secs = training.train_autoencoder(entry.base, cfg, progress)
        _save(state, {"mse": f"{mse:.6f}", "train_seconds": f"{secs:.2f}", "config": json.dumps(cfg.__dict__)},
              weights_file(entry))
    return weights_file(entry)


def ensure_members(base: str, sampling: str, n: int, progress: ProgressFn | None = None,
                   cfg: AdvTrainConfig | None = None) -> Path:
    """Make sure the members file for (base, sampling, cfg) holds at least ``n`` members (trains the missing ones)."""
    cfg = cfg or member_config(base, sampling)
    entry = DefenceEntry("_members", "", "ensemble", base, "", cfg, n_members=n, sampling=sampling)
    path = weights_file(entry)
    state: dict[str, torch.Tensor] = _load(path) if path.is_file() else {}
    meta = read_metadata(path) if path.is_file() else {}
    have = int(meta.get("members", "0"))
    accs = json.loads(meta.get("accuracies", "[]"))
    secs = json.loads(meta.get("seconds", "[]"))
    for i in range(have, n):
        def prog(frac: float, text: str, i=i) -> None:
            if progress:
                progress((i - have + frac) / (n - have), f"member {i + 1}/{n} ({sampling}): {text}")

        res = training.train_adversarial(base, replace(cfg, seed=cfg.seed + i), prog,
                                         label=f"{sampling} member {i + 1}/{n}")
        state.update({f"m{i}.{k}": v for k, v in res.state_dict.items()})
        accs.append(round(res.accuracy, 6))
        secs.append(round(res.seconds, 2))
        _save(state, {"members": str(i + 1), "accuracies": json.dumps(accs), "seconds": json.dumps(secs),
                      "config": json.dumps(cfg.__dict__), "train_seconds": f"{sum(secs):.2f}",
                      "accuracy": f"{sum(accs) / len(accs):.6f}"}, path)
    return path


def load_members(base: str, sampling: str, n: int, cfg: AdvTrainConfig | None = None) -> list[nn.Module]:
    """The first ``n`` trained members (eval mode) of a members file."""
    cfg = cfg or member_config(base, sampling)
    entry = DefenceEntry("_members", "", "ensemble", base, "", cfg, n_members=n, sampling=sampling)
    state = _load(weights_file(entry))
    nets = []
    for i in range(n):
        net = training.build_net(base, cfg.arch)
        net.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(f"m{i}.")})
        net.eval()
        nets.append(net)
    return nets


def load_net(entry: DefenceEntry) -> nn.Module:
    assert entry.train is not None
    net = training.build_net(entry.base, entry.train.arch)
    net.load_state_dict(_load(weights_file(entry)))
    net.eval()
    return net


def accuracy(model_id: str) -> float | None:
    entry = get_entry(model_id)
    if entry.kind in ("plain", "at") and weights_file(entry).is_file():
        return float(read_metadata(weights_file(entry))["accuracy"])
    return None


CLASS_NAMES = DIGIT_CLASSES


# ------------------------------------------------------------------------------------ registry side
def spec_fields(entry: DefenceEntry) -> dict:
    """The fields of the registry's ModelSpec for ``entry`` (family ``"defence"``)."""
    return dict(id=entry.id, name=entry.name, dataset=entry.dataset, family="defence",
                input_shape=(1, entry.size, entry.size), class_names=CLASS_NAMES, description=entry.description,
                gradcam_layer="conv2" if entry.kind in ("plain", "at") else None)


def availability(model_id: str) -> tuple[str, str, str]:
    """(status, reason, fix) with status one of "available", "needs training", "unavailable"."""
    entry = get_entry(model_id)
    if is_trained(entry):
        return "available", "", ""
    if not data_available(entry):
        return ("unavailable", "MNIST is not on this machine",
                "python -m explorer prefetch mnist  (or set EXPLORER_MNIST_DIR)")
    cost = {"ensemble": f"trains {entry.n_members - members_trained(entry)} members on this machine (minutes)",
            "at": "adversarial training on this machine (minutes)"}.get(entry.kind, "trains on this machine")
    return "needs training", cost, f"python -m explorer train {model_id}"


def build(model_id: str, progress: ProgressFn | None = None):
    """The frozen Classifier of a defended model (training it first when its weights are missing)."""
    from explorer.defences.ensemble import ensemble_classifier
    from explorer.defences.fronts import denoised, quantized
    from explorer.defences.noise import noise_averaged
    from explorer.models.wrapper import Classifier

    entry = get_entry(model_id)
    if not is_trained(entry):
        train(model_id, progress)
    recipe = builtin.RECIPES[entry.base]
    shape = (1, entry.size, entry.size)
    if entry.kind in ("plain", "at"):
        return Classifier(load_net(entry), model_id=entry.id, class_names=CLASS_NAMES, input_shape=shape,
                          mean=(recipe.mean,), std=(recipe.std,))
    if entry.kind == "ensemble":
        members = load_members(entry.base, entry.sampling, entry.n_members, entry.train)
        return ensemble_classifier(members, entry.combine, model_id=entry.id, class_names=CLASS_NAMES,
                                   input_shape=shape, mean=recipe.mean, std=recipe.std)
    inner = build(entry.wraps, progress)  # type: ignore[arg-type]
    if entry.kind == "noise":
        return noise_averaged(inner, entry.n_samples, entry.sigma, seed=0, model_id=entry.id)
    if entry.kind == "quantize":
        return quantized(inner, entry.levels, model_id=entry.id)
    ae = training.make_autoencoder(entry.size)
    ae.load_state_dict(_load(weights_file(entry)))
    return denoised(ae.eval(), inner, model_id=entry.id)
