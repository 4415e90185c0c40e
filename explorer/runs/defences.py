"""Requests of the defences: the three-way evaluation of a defended model, and a noise-averaged image slice.

    from explorer.runs import run
    from explorer.runs.defences import ThreeWayRequest

    tw = run(ThreeWayRequest(model="digits-lenet-ens5-bootstrap-max", dataset="digits", n=200,
                             eps=(0.0, 0.1, 0.2, 0.3)))
    tw.accuracy("transfer"), tw.accuracy("white_box"), tw.accuracy("adaptive")
    tw.check()            # the hidden-not-robust check (explorer.defences.evaluate.hidden_not_robust_check)

The three-way evaluation is sharded by ε; each finished shard is kept in the result store by its digest, so an
interrupted run resumes and a rerun (or another visitor) gets the whole result at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from explorer.runs.base import Request, content_digest, shape_scale
from explorer.runs.executor import Executor
from explorer.runs.store import default_store, storable

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]

MAX_EOT = 64
COLUMNS = ("transfer", "white_box", "adaptive")
COLUMN_NAMES = {"transfer": "transfer from the baseline", "white_box": "white-box", "adaptive": "adaptive"}


def baseline_of(model_id: str) -> str:
    """The undefended baseline a defended model is compared with (the LeNet of its dataset)."""
    from explorer.defences import zoo

    entry = zoo.get_entry(model_id)
    return f"{entry.base.split('-')[0]}-lenet"


def is_evaluable_defence(model_id: str) -> bool:
    """A defended registry model other than the plain baseline itself."""
    from explorer.defences import zoo

    return zoo.is_defence(model_id) and zoo.get_entry(model_id).kind != "plain"


@storable
@dataclass(frozen=True)
class ThreeWayEvaluation:
    """Per-sample correctness of ``model`` on ``n`` images: ``clean`` (N,), and (E, N) for ``transfer`` (the
    baseline's adversarials), ``white_box``, ``adaptive`` and ``baseline_own`` (the baseline on its own)."""

    model: str
    baseline: str
    dataset: str
    eps: np.ndarray
    clean: np.ndarray
    transfer: np.ndarray
    white_box: np.ndarray
    adaptive: np.ndarray
    baseline_own: np.ndarray
    adaptive_method: str
    attack: str
    steps: int
    eot_samples: int
    notes: tuple[str, ...] = field(default=())

    @property
    def n(self) -> int:
        return int(self.clean.shape[0])

    def accuracy(self, which: str) -> np.ndarray:
        """Accuracy per ε of a column (``clean``: one value)."""
        return np.asarray(np.asarray(getattr(self, which), np.float64).mean(axis=-1), np.float64)

    def columns(self, with_baseline: bool = True) -> dict[str, np.ndarray]:
        """Accuracy per ε of the three columns (and of the baseline on its own adversarials)."""
        keys = COLUMNS + (("baseline_own",) if with_baseline else ())
        return {k: self.accuracy(k) for k in keys}

    def uses_eot(self) -> bool:
        return self.adaptive_method == "EOT"

    def adaptive_label(self) -> str:
        """What the adaptive column ran, with its EOT sample count where it used EOT."""
        return (f"EOT ({self.eot_samples} noise samples per gradient step)" if self.uses_eot()
                else self.adaptive_method)

    def check(self, gap: float = 0.2):
        """The hidden-not-robust check on this result (a ``DefenceCheck``)."""
        from explorer.defences.evaluate import hidden_not_robust_check

        return hidden_not_robust_check(self, gap)  # type: ignore[arg-type]

    def rows(self) -> list[dict]:
        """One row per ε: the three columns (and the baseline on its own adversarials), as fractions."""
        out = []
        for e, ep in enumerate(np.asarray(self.eps, np.float64)):
            out.append({"ε": round(float(ep), 4),
                        "baseline on its own": round(float(self.accuracy("baseline_own")[e]), 3),
                        "transfer from the baseline": round(float(self.accuracy("transfer")[e]), 3),
                        "white-box": round(float(self.accuracy("white_box")[e]), 3),
                        f"adaptive: {self.adaptive_label()}": round(float(self.accuracy("adaptive")[e]), 3)})
        return out


@storable
@dataclass(frozen=True)
class ThreeWayShard:
    """One ε of a three-way evaluation (plain data for any executor)."""

    digest: str
    model: str
    baseline: str
    dataset: str
    n: int
    eps: float
    index: int
    attack: str
    steps: int
    eot_samples: int
    seed: int
    device: str | None


@storable
@dataclass(frozen=True)
class ThreeWayShardResult:
    clean: np.ndarray
    transfer: np.ndarray
    white_box: np.ndarray
    adaptive: np.ndarray
    baseline_own: np.ndarray
    adaptive_method: str
    notes: tuple[str, ...]


def run_three_way_shard(item: ThreeWayShard) -> ThreeWayShardResult:
    """Run (or read from the store) one ε of a three-way evaluation."""
    store = default_store()
    hit = store.get(item.digest)
    if isinstance(hit, ThreeWayShardResult):
        return hit
    from explorer.defences.evaluate import ThreeWayConfig, three_way
    from explorer.evaluation.data import load_set
    from explorer.inference import model_cache

    cache = model_cache()
    defence, baseline = cache.get(item.model, item.device), cache.get(item.baseline, item.device)
    data = load_set(item.dataset, item.n)
    cfg = ThreeWayConfig(attack=item.attack, steps=item.steps, eot_samples=item.eot_samples,
                         seed=item.seed + 7919 * item.index)
    r = three_way(defence, baseline, data.images, data.labels, [item.eps], cfg)
    out = ThreeWayShardResult(r.clean, r.transfer[0], r.white_box[0], r.adaptive[0],
                              r.baseline_own[0] if r.baseline_own is not None else np.zeros_like(r.clean),
                              r.adaptive_method, tuple(r.notes))
    store.put(item.digest, out)
    return out


@dataclass(frozen=True)
class ThreeWayRequest(Request):
    """Transfer / white-box / adaptive accuracy of a defended model at every ε
    (:func:`explorer.defences.evaluate.three_way`).

    model: a defended registry model (``explorer.defences.zoo``); baseline: the undefended model whose
    adversarials are transferred (empty: the LeNet of the model's dataset). attack: ``pgd`` (L∞, random start,
    ``steps``) or ``fgsm``. eot_samples: noise draws averaged per gradient step of the EOT attack (noise-averaged
    models). dataset: ``digits`` or ``mnist``; the first ``n`` held-out images.
    """

    kind: ClassVar[str] = "three-way"
    model: str = "digits-lenet-ens5-bootstrap-max"
    baseline: str = ""
    dataset: str = "digits"
    n: int = 200
    eps: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3)
    attack: str = "pgd"
    steps: int = 10
    eot_samples: int = 8
    seed: int = 0
    device: str | None = None

    def resolved(self) -> ThreeWayRequest:
        return replace(self, baseline=self.baseline or (baseline_of(self.model) if is_evaluable_defence(self.model)
                                                        else ""),
                       eps=tuple(float(e) for e in self.eps), n=int(self.n), steps=int(self.steps),
                       eot_samples=int(self.eot_samples))

    def digest(self) -> str:
        return content_digest(self.kind, replace(self.resolved(), device=None))

    def validate(self) -> None:
        from explorer.attacks.config import check_steps
        from explorer.config import get_settings
        from explorer.models import availability, get_spec

        if not is_evaluable_defence(self.model):
            raise ValueError(f"{self.model} is not a defended model: the three-way evaluation compares a defence "
                             "with its undefended baseline")
        r = self.resolved()
        for m in (r.model, r.baseline):
            try:
                get_spec(m)
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
            av = availability(m)
            if not av.loadable:
                raise ValueError(f"{m} is not available here: {av.reason}. Run: {av.fix}")
        if tuple(get_spec(r.model).input_shape) != tuple(get_spec(r.baseline).input_shape):
            raise ValueError(f"{r.model} and {r.baseline} take different input shapes")
        want = {"digits": (1, 8, 8), "mnist": (1, 28, 28)}.get(r.dataset)
        if want is None:
            raise ValueError(f"the three-way evaluation runs on digits or mnist, not {r.dataset!r}")
        if tuple(get_spec(r.model).input_shape) != want:
            raise ValueError(f"{r.model} does not take {r.dataset} images")
        if r.attack not in ("pgd", "fgsm"):
            raise ValueError(f"the three-way evaluation uses fgsm or pgd, not {r.attack!r}")
        cap = get_settings().max_n
        if r.n < 1 or r.n > cap:
            raise ValueError(f"N must be from 1 to this server's cap of {cap} images, got {r.n}")
        if not r.eps:
            raise ValueError("give at least one ε")
        if any(not 0.0 <= e <= 1.0 for e in r.eps):
            raise ValueError("every ε must lie in [0, 1] (pixel units)")
        check_steps(r.steps)
        if not 1 <= r.eot_samples <= MAX_EOT:
            raise ValueError(f"EOT samples must be from 1 to {MAX_EOT}, got {r.eot_samples}")

    def shards(self) -> list[ThreeWayShard]:
        r = self.resolved()
        out = []
        for i, ep in enumerate(r.eps):
            fields = dict(model=r.model, baseline=r.baseline, dataset=r.dataset, n=r.n, eps=float(ep), index=i,
                          attack=r.attack, steps=r.steps, eot_samples=r.eot_samples, seed=r.seed)
            out.append(ThreeWayShard(content_digest("three-way-shard", fields), device=r.device, **fields))
        return out

    def execute(self, executor: Executor, *, progress: ProgressFn | None = None,
                cancelled: CancelFn | None = None) -> ThreeWayEvaluation:
        store = default_store()
        digest = self.digest()
        hit = store.get(digest)
        if isinstance(hit, ThreeWayEvaluation):
            return hit
        r = self.resolved()
        parts = executor.map(run_three_way_shard, self.shards(), progress=progress, cancelled=cancelled)
        first = parts[0]
        out = ThreeWayEvaluation(
            model=r.model, baseline=r.baseline, dataset=r.dataset, eps=np.asarray(r.eps, np.float64),
            clean=np.asarray(first.clean, bool), transfer=np.stack([p.transfer for p in parts]).astype(bool),
            white_box=np.stack([p.white_box for p in parts]).astype(bool),
            adaptive=np.stack([p.adaptive for p in parts]).astype(bool),
            baseline_own=np.stack([p.baseline_own for p in parts]).astype(bool),
            adaptive_method=first.adaptive_method, attack=r.attack, steps=r.steps if r.attack == "pgd" else 1,
            eot_samples=r.eot_samples, notes=first.notes)
        store.put(digest, out)
        return out


# ------------------------------------------------------------------------------------- smoothed slice
@storable
@dataclass(frozen=True)
class SmoothedSlice:
    """The noise-averaged model's classes on the plane of a slice, and the speckle fractions before / after."""

    pred: np.ndarray
    max_prob: np.ndarray
    sigma: float
    n_samples: int
    speckles_before: float
    speckles_after: float
    regions_before: int
    regions_after: int


def _array(default: Any = None) -> Any:
    return field(default=default, compare=False, repr=False, metadata={"key": False})


@dataclass(frozen=True)
class SmoothedSliceRequest(Request):
    """The noise-averaged version (``n_samples`` Gaussian copies of σ, seeded) of ``model_id`` on the plane
    (``d1``, ``d2``) of an image slice through ``x`` (digests name the arrays), with the fraction of speckle cells
    of the model's own class map ``base_pred`` and of the smoothed one."""

    kind: ClassVar[str] = "smoothed-slice"
    accepts_progress: ClassVar[bool] = True
    model_id: str
    image_digest: str
    plane_digest: str
    extent: float
    resolution: int
    clip: bool = True
    sigma: float = 0.25
    n_samples: int = 16
    seed: int = 0
    device: str | None = None
    x: np.ndarray = _array()
    d1: np.ndarray = _array()
    d2: np.ndarray = _array()
    base_pred: np.ndarray = _array()

    def validate(self) -> None:
        if self.x is None or self.d1 is None or self.d2 is None or self.base_pred is None:
            raise ValueError("a smoothed slice needs the image, the plane and the model's class map")
        if not 0.0 < float(self.sigma) <= 1.0:
            raise ValueError(f"σ must be in (0, 1], got {self.sigma}")
        if not 1 <= int(self.n_samples) <= 256:
            raise ValueError(f"n must be from 1 to 256, got {self.n_samples}")

    def cost(self) -> float:
        """``n_samples`` noisy forwards at every cell of the plane."""
        return int(self.resolution) ** 2 * int(self.n_samples) * shape_scale(np.asarray(self.x).shape)

    def execute(self, executor: Executor, progress: Any = None) -> SmoothedSlice:
        from explorer.boundaries.slices import evaluate_plane
        from explorer.defences.boundaries import region_count, speckle_fraction
        from explorer.defences.noise import noise_averaged
        from explorer.inference import model_cache

        model = model_cache().get(self.model_id, self.device)
        avg = noise_averaged(model, int(self.n_samples), float(self.sigma), int(self.seed))
        res = evaluate_plane(avg, self.x, self.d1, self.d2, float(self.extent), int(self.resolution),
                             clip=bool(self.clip), progress=progress)
        return SmoothedSlice(res.pred, res.max_prob, float(self.sigma), int(self.n_samples),
                             speckle_fraction(self.base_pred), speckle_fraction(res.pred),
                             region_count(self.base_pred), region_count(res.pred))
