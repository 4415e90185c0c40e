"""Every request the app's pages and the CLI make, in one place (the dataset evaluation lives in ``evaluate.py``).

Each request is a frozen dataclass: ids, digests and frozen settings are its key; the arrays it carries
(``x``, ``adv``, ``images``) are marked ``key=False`` (their sha256 digest is a field). ``validate()`` checks it
once, ``execute(executor, progress=None)`` computes a result of numpy arrays (or ``@storable`` dataclasses of
numpy): never a tensor.

==========================  =======================================================  ==========================
request                     what                                                     result
==========================  =======================================================  ==========================
:class:`AttackRequest`      one attack on one image                                  :class:`AttackOutcome`
:class:`SweepRequest`       a budget attack over an ε grid, flip ε refined           ``SweepResult``
:class:`PointChecksRequest` size, 8-bit check and noise baseline of one adversarial  :class:`PointChecks`
:class:`AttributionRequest` attribution maps of one image for some classes           ``np.ndarray`` T x C x H x W
:class:`SliceRequest`       a 2-D slice of image space through one image             ``Slice``
:class:`ProfileRequest`     loss along the adversarial and a random line (one image) ``Profile``
:class:`DatasetAttackRequest` one attack on every image of a set (Projections)       :class:`AdversarialBatch`
:class:`ProjectionRequest`  the 2-D map of clean and adversarial features            ``Projection``
==========================  =======================================================  ==========================
"""

from __future__ import annotations

import dataclasses

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import torch

from explorer.attacks import (
    AttackConfig,
    AttackTrace,
    EightBitCheck,
    ImageMetrics,
    NoiseBaseline,
    SweepResult,
    check_config,
    eight_bit_check,
    image_metrics,
    noise_baseline,
    registry,
    run_attack,
    sweep,
)
from explorer.digest import array_digest
from explorer.runs.base import Request, shape_scale
from explorer.runs.executor import Executor
from explorer.runs.rules import softmax
from explorer.runs.store import storable

for _cls in (AttackTrace, SweepResult, ImageMetrics, EightBitCheck, NoiseBaseline):
    storable(_cls)

NOISE_DRAWS = 8
ProgressFn = Callable[[float, str], None]


def _array(**kw) -> Any:
    """A request field holding an array: not part of the digest, not compared, not shown."""
    return field(compare=False, repr=False, metadata={"key": False}, **kw)


def _model(model_id: str, device: str | None):
    from explorer.inference import model_cache

    return model_cache().get(model_id, device)


class _Counting(torch.nn.Module):
    """A model behind a wrapper that reports how many images each forward pass takes (``count(rows)``).

    The shared model is never touched: this wrapper's own ``training`` flag is set, never ``.eval()``."""

    def __init__(self, model: torch.nn.Module, count: Callable[[int], None]) -> None:
        super().__init__()
        self.inner = model
        self.training = False
        object.__setattr__(self, "_count", count)
        for name in ("model_id", "num_classes", "input_shape", "class_names"):
            if hasattr(model, name):
                object.__setattr__(self, name, getattr(model, name))

    @property
    def device(self):
        from explorer.device import model_device

        return model_device(self.inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._count(int(x.shape[0]))
        return self.inner(x)


def counted(model: torch.nn.Module, total: float, progress: ProgressFn | None) -> torch.nn.Module:
    """``model`` reporting ``progress(done / total)`` (capped at 0.99: the total is an estimate)."""
    if progress is None:
        return model
    state = {"done": 0.0}
    total = max(float(total), 1.0)

    def count(rows: int) -> None:
        state["done"] += rows
        progress(min(state["done"] / total, 0.99), "")

    return _Counting(model, count)


def sweep_work(config: AttackConfig, n: int) -> float:
    """Images through the model in a sweep of ``n`` ε (an estimate from the attack's registry cost)."""
    spec = registry.get(config.attack)
    if spec.direction:
        return 1 + n + 16
    return (n + 8) * (spec.cost(config) - 1) + 1


def pixel_scale(x: np.ndarray | None) -> float:
    """How many 28 x 28 images' worth of values ``x`` (C x H x W) holds (at least 1/16)."""
    return 1 / 16 if x is None else shape_scale(np.asarray(x).shape)


def attack_work(config: AttackConfig) -> float:
    """Forward passes of one single-image attack (the spec's cost model)."""
    return float(registry.get(config.attack).cost(config))


# ------------------------------------------------------------------------------------------------ attack


@storable
@dataclass(frozen=True)
class AttackOutcome:
    """One attack on one image, all numpy: the adversarial (C x H x W float32) and its digest, its logits and
    probabilities (K,), the prediction, success, its L∞ / L2 size and the per-step trace (T x 1)."""

    attack: str
    adversarial: np.ndarray
    adv_digest: str
    logits: np.ndarray
    probs: np.ndarray
    pred: int
    success: bool
    linf: float
    l2: float
    eps: float
    trace: AttackTrace | None


@dataclass(frozen=True)
class AttackRequest(Request):
    """One attack (``config``) on one C x H x W image ``x`` of model ``model_id``, against ``label``."""

    kind: ClassVar[str] = "attack"
    accepts_progress: ClassVar[bool] = True
    model_id: str
    image_digest: str
    label: int
    config: AttackConfig
    device: str | None = None
    x: np.ndarray = _array(default=None)

    def validate(self) -> None:
        from explorer.models import get_spec

        spec = get_spec(self.model_id)
        if self.x is None or tuple(np.shape(self.x)) != tuple(spec.input_shape):
            raise ValueError(f"the image must be {'x'.join(map(str, spec.input_shape))} for {self.model_id}")
        check_config(self.config, len(spec.class_names), int(self.label), input_shape=spec.input_shape)

    def execute(self, executor: Executor, progress: ProgressFn | None = None) -> AttackOutcome:
        model = counted(_model(self.model_id, self.device), attack_work(self.config), progress)
        res = run_attack(model, np.asarray(self.x, np.float32)[None], int(self.label), self.config)
        adv = res.adversarial[0].detach().cpu().numpy().astype(np.float32)
        trace = None
        if res.trace is not None:
            t = res.trace
            trace = AttackTrace(t.loss.copy(), t.margin.copy(), t.pred.copy(), t.linf.copy(), t.l2.copy())
        return AttackOutcome(attack=res.attack, adversarial=adv, adv_digest=array_digest(adv),
                             logits=res.logits[0].astype(np.float32), probs=softmax(res.logits[0]),
                             pred=int(res.pred[0]), success=bool(res.success[0]), linf=float(res.linf[0]),
                             l2=float(res.l2[0]), eps=float(res.eps[0]), trace=trace)


# ------------------------------------------------------------------------------------------------- sweep


@dataclass(frozen=True)
class SweepRequest(Request):
    """A budget attack at every ε of ``grid`` on one image (``keep_images``: keep every grid adversarial;
    FGSM's are rebuilt from its direction)."""

    kind: ClassVar[str] = "sweep"
    accepts_progress: ClassVar[bool] = True
    model_id: str
    image_digest: str
    label: int
    config: AttackConfig
    grid: tuple[float, ...]
    device: str | None = None
    x: np.ndarray = _array(default=None)
    keep_images: bool = False

    def validate(self) -> None:
        from explorer.models import get_spec

        spec = get_spec(self.model_id)
        if registry.get(self.config.attack).minimal:
            raise ValueError(f"a sweep runs one of {', '.join(registry.budget_names())}, "
                             f"not {self.config.attack!r}")
        if len(self.grid) < 2:
            raise ValueError("a grid needs at least 2 values")
        check_config(self.config, len(spec.class_names), int(self.label), input_shape=spec.input_shape)

    def cost(self) -> float:
        """Forward passes of a 28 x 28 image's worth (the job queue queues what reaches its threshold)."""
        return sweep_work(self.config, len(self.grid)) * pixel_scale(self.x)

    def execute(self, executor: Executor, progress: ProgressFn | None = None) -> SweepResult:
        model = counted(_model(self.model_id, self.device), sweep_work(self.config, len(self.grid)), progress)
        return sweep(model, np.asarray(self.x, np.float32)[None], int(self.label), self.config, list(self.grid),
                     images_at="grid" if self.keep_images else None)


# ------------------------------------------------------------------------------------------ point checks


@storable
@dataclass(frozen=True)
class PointChecks:
    """What the pages show about one adversarial: its size, the 8-bit check and the random-noise baseline
    (``noise.images`` holds the first noisy draw only)."""

    metrics: ImageMetrics
    eight_bit: EightBitCheck
    noise: NoiseBaseline


@dataclass(frozen=True)
class PointChecksRequest(Request):
    """L∞ / L2 / PSNR / SSIM of ``adv`` against ``x``, its 8-bit check, and ``NOISE_DRAWS`` random ±ε
    perturbations of ``x`` with the same L∞ size."""

    kind: ClassVar[str] = "point-checks"
    heavy: ClassVar[bool] = False
    model_id: str
    image_digest: str
    adv_digest: str
    label: int
    target: int | None
    noise_seed: int
    device: str | None = None
    x: np.ndarray = _array(default=None)
    adv: np.ndarray = _array(default=None)

    def validate(self) -> None:
        if self.x is None or self.adv is None or np.shape(self.x) != np.shape(self.adv):
            raise ValueError("the image and its adversarial must have the same shape")

    def execute(self, executor: Executor) -> PointChecks:
        model = _model(self.model_id, self.device)
        x, adv = np.asarray(self.x, np.float32), np.asarray(self.adv, np.float32)
        metrics = image_metrics(x, adv)
        eight = eight_bit_check(model, adv[None], int(self.label), self.target)
        noise = noise_baseline(model, x[None], int(self.label), min(1.0, float(metrics.linf)),
                               seed=int(self.noise_seed), n=NOISE_DRAWS)
        return PointChecks(metrics=metrics, eight_bit=eight, noise=replace(noise, images=noise.images[:1]))


# ----------------------------------------------------------------------------------------- attributions


@dataclass(frozen=True)
class AttributionRequest(Request):
    """Attribution maps of one C x H x W image for each class of ``targets``: T x C' x H x W float32."""

    kind: ClassVar[str] = "attribution"
    accepts_progress: ClassVar[bool] = True
    model_id: str
    image_digest: str
    targets: tuple[int, ...]
    config: Any  # explorer.attributions.AttributionConfig
    device: str | None = None
    x: np.ndarray = _array(default=None)

    def validate(self) -> None:
        from explorer.attributions import METHODS

        if self.config.method not in METHODS:
            raise ValueError(f"unknown attribution method {self.config.method!r}: choose one of "
                             f"{', '.join(METHODS)}")
        if not self.targets:
            raise ValueError("give at least one class to explain")

    def cost(self) -> float:
        """Forward + backward passes (counted as 2 forwards) of a 28 x 28 image's worth, per target."""
        c = self.config
        passes = {"smoothgrad": c.n_samples, "integrated_gradients": c.steps, "ig": c.steps}.get(c.method, 1)
        if c.method == "occlusion":
            side = max(np.asarray(self.x).shape[-2:]) if self.x is not None else 8
            window = c.window or max(1, side // 8)
            stride = c.stride or max(1, window // 2)
            passes = (max(1, (side - window) // stride + 1)) ** 2
        return 2.0 * passes * len(self.targets) * pixel_scale(self.x)

    def execute(self, executor: Executor, progress: ProgressFn | None = None) -> np.ndarray:
        from explorer.attributions import attribute

        model = _model(self.model_id, self.device)
        batch = np.repeat(np.asarray(self.x, dtype=np.float32)[None], len(self.targets), axis=0)
        return attribute(model, batch, list(self.targets), self.config.method, self.config, progress=progress)


# ------------------------------------------------------------------------------------------------ slices


@dataclass(frozen=True)
class SliceRequest(Request):
    """A 2-D slice of image space through ``x`` (``explorer.boundaries.slices.SliceConfig``); its PGD marker is
    the cached single-image PGD at ``config.eps`` (an :class:`AttackRequest` with ``slice_pgd_config``), passed
    as ``adversarial`` (the perturbation is ``adversarial - x``) or directly as ``delta``."""

    kind: ClassVar[str] = "slice"
    accepts_progress: ClassVar[bool] = True
    model_id: str
    image_digest: str
    label: int
    config: Any  # explorer.boundaries.slices.SliceConfig
    device: str | None = None
    x: np.ndarray = _array(default=None)
    delta: np.ndarray | None = _array(default=None)
    adversarial: np.ndarray | None = _array(default=None)

    def validate(self) -> None:
        if self.x is None:
            raise ValueError("a slice needs an image")
        if self.delta is not None and self.adversarial is not None:
            raise ValueError("give a slice either its PGD adversarial or its perturbation, not both")

    def cost(self) -> float:
        """The plane's resolution² forwards, plus the PGD marker when it is computed here."""
        c = self.config
        marker = 0 if (self.delta is not None or self.adversarial is not None) else c.pgd_steps * 2
        return (int(c.resolution) ** 2 + marker) * pixel_scale(self.x)

    def execute(self, executor: Executor, progress: ProgressFn | None = None):
        from explorer.boundaries.slices import compute_slice

        delta = self.delta
        if self.adversarial is not None:
            delta = (np.asarray(self.adversarial, np.float32) - np.asarray(self.x, np.float32)).astype(np.float32)
        model = _model(self.model_id, self.device)
        return compute_slice(model, self.x, int(self.label), self.config, delta=delta, progress=progress)


def slice_pgd_config(eps: float, steps: int = 10) -> AttackConfig:
    """The PGD a slice draws: Attack Studio's PGD at this ε (default α, its seeded random start)."""
    return AttackConfig(attack="pgd", eps=float(eps), steps=int(steps))


@dataclass(frozen=True)
class ProfileRequest(Request):
    """Loss and logits along ``sign(∇ₓL)`` and a seeded random sign direction of the same length through ``x``
    (``explorer.boundaries.slices.linearity_profile``)."""

    kind: ClassVar[str] = "profile"
    accepts_progress: ClassVar[bool] = True
    model_id: str
    image_digest: str
    label: int
    extent: float = 0.25
    n: int = 81
    seed: int = 0
    clip: bool = True
    device: str | None = None
    x: np.ndarray = _array(default=None)

    def validate(self) -> None:
        if self.x is None:
            raise ValueError("a profile needs an image")
        if self.n < 2 or not self.extent > 0:
            raise ValueError("a profile needs at least 2 points and an extent above 0")

    def cost(self) -> float:
        """Two lines of ``n`` points and one gradient."""
        return (2 * int(self.n) + 2) * pixel_scale(self.x)

    def execute(self, executor: Executor, progress: ProgressFn | None = None):
        from explorer.boundaries.slices import linearity_profile

        model = _model(self.model_id, self.device)
        return linearity_profile(model, self.x, int(self.label), extent=float(self.extent), n=int(self.n),
                                 seed=int(self.seed), clip=bool(self.clip), progress=progress)


# ---------------------------------------------------------------------------------- dataset attack (sets)


@storable
@dataclass(frozen=True)
class AdversarialBatch:
    """The adversarial twins of an image set (N x C x H x W float32) with their digest and probabilities."""

    images: np.ndarray
    adv_probs: np.ndarray
    digest: str


def attack_chunk(input_shape) -> int:
    """Images per attack call: large for small inputs, small for 224 x 224 photos (memory of the backward)."""
    return 256 if int(np.prod(input_shape)) <= 28 * 28 else 16


@dataclass(frozen=True)
class DatasetAttackRequest(Request):
    """``config``'s attack on every image of a set (labels given), in chunks; the adversarial probabilities
    come from the attack's own final classification (no extra forward pass)."""

    kind: ClassVar[str] = "dataset-attack"
    accepts_progress: ClassVar[bool] = True
    model_id: str
    images_digest: str
    config: AttackConfig
    device: str | None = None
    images: np.ndarray = _array(default=None)
    labels: np.ndarray = _array(default=None)

    def validate(self) -> None:
        from explorer.models import get_spec

        spec = get_spec(self.model_id)
        check_config(self.config, len(spec.class_names), None, input_shape=spec.input_shape)
        if self.images is None or self.labels is None or len(self.images) != len(self.labels):
            raise ValueError("give one label per image")

    def execute(self, executor: Executor, progress: ProgressFn | None = None) -> AdversarialBatch:
        model = _model(self.model_id, self.device)
        x = np.asarray(self.images, np.float32)
        y = np.asarray(self.labels, np.int64)
        n = len(x)
        chunk = attack_chunk(model.input_shape)
        out = np.empty_like(x)
        probs = np.zeros((n, model.num_classes), np.float32)
        for i in range(0, n, chunk):
            res = run_attack(model, x[i: i + chunk], y[i: i + chunk], self.config, trace=True)
            out[i: i + chunk] = res.adversarial.detach().cpu().numpy()
            probs[i: i + chunk] = softmax(res.logits)
            done = min(n, i + chunk)
            if progress is not None and n > chunk:
                progress(done / n, f"{done}/{n} images")
        return AdversarialBatch(out, probs, array_digest(out))


@dataclass(frozen=True)
class ProjectionRequest(Request):
    """The 2-D map (PCA, t-SNE, UMAP) of clean and adversarial features (``explorer.projections.project``)."""

    kind: ClassVar[str] = "projection"
    clean_digest: str
    adv_digest: str
    method: str
    seed: int = 0
    clean: np.ndarray = _array(default=None)
    adv: np.ndarray = _array(default=None)

    def validate(self) -> None:
        from explorer.projections import METHODS

        if self.method not in METHODS:
            raise ValueError(f"unknown projection {self.method!r}: choose one of {', '.join(METHODS)}")

    def execute(self, executor: Executor):
        from explorer.projections import project

        return project(self.clean, self.adv, self.method, seed=self.seed)


def is_numpy_result(value: Any) -> bool:
    """True when ``value`` holds no tensor: numpy arrays, scalars, strings, None, dataclasses of those."""
    if isinstance(value, torch.Tensor):
        return False
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(is_numpy_result(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (list, tuple)):
        return all(is_numpy_result(v) for v in value)
    if isinstance(value, dict):
        return all(is_numpy_result(v) for v in value.values())
    return True


__all__ = [
    "AdversarialBatch", "AttackOutcome", "AttackRequest", "AttributionRequest", "DatasetAttackRequest",
    "PointChecks", "PointChecksRequest", "ProjectionRequest", "SliceRequest", "SweepRequest", "attack_chunk",
    "attack_work", "is_numpy_result", "slice_pgd_config", "sweep_work",
]

