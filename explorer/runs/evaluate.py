"""Dataset evaluation and transfer requests: robust accuracy over a whole image set, on any executor.

    from explorer.runs import run
    from explorer.runs.evaluate import EvaluateRequest, TransferRequest

    ev = run(EvaluateRequest(models=("digits-cnn", "digits-softmax"), attacks=("fgsm", "pgd"),
                             eps=tuple(np.linspace(0, 0.35, 8)), dataset="digits", n=360))
    ev.accuracy()            # (models, attacks, ε) robust accuracy; ev.interval(ev.correct()) its 95% CP band
    tr = run(TransferRequest(models=("digits-cnn", "digits-mlp", "digits-softmax"), attack="pgd", eps=0.2))

The work is sharded by (model, attack, batch of samples); shards are module-level functions of plain data,
run by ``executor.map`` in-process or on Ray. Every finished shard is stored by its digest (memory and disk,
``explorer.runs.store.default_store``), so an interrupted run resumes where it stopped and a rerun — or
another visitor — gets the whole result at once. The result depends on the request only: the same seeds
give the same numbers on every executor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from explorer.evaluation.core import KEEP_EXAMPLES, KEEP_EXAMPLES_PHOTO, AttackSettings, ShardResult
from explorer.evaluation.data import BUILTIN_SETS, SET_LABELS, SET_PREFIX, EvalSet, fits, load_set
from explorer.evaluation.results import Evaluation, ModelProbe, TransferResult
from explorer.runs.base import Request, attack_passes, content_digest, shape_scale
from explorer.runs.executor import Executor
from explorer.runs.store import default_store, storable

MAX_MODELS = 8
MAX_ATTACKS = 6
PHOTO_SHARD = 8
DEFAULT_SHARD = 100

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


def default_attacks() -> tuple[str, ...]:
    """FGSM and PGD, plus APGD-CE where this build has it."""
    from explorer.attacks import ATTACKS

    return ("fgsm", "pgd") + (("apgd",) if "apgd" in ATTACKS else ())


def eps_grid(top: float, points: int) -> tuple[float, ...]:
    """``points`` evenly spaced ε from 0 to ``top`` (ends included): the grid the page and ``0:top:points`` give."""
    return tuple(float(v) for v in np.linspace(0.0, float(top), int(points)))


def parse_eps_grid(text: str) -> tuple[float, ...]:
    """``"0:0.3:8"`` (start:stop:count, ends included), or a comma list ``"0,2/255,4/255"``."""
    from explorer.runs.rules import parse_eps

    raw = text.strip()
    if raw.count(":") == 2:
        a, b, c = raw.split(":")
        try:
            count = int(c)
        except ValueError:
            raise ValueError(f"ε grid {raw!r}: the count after the second ':' must be a whole number") from None
        if count < 2:
            raise ValueError(f"ε grid {raw!r}: give at least 2 values")
        return tuple(float(v) for v in np.linspace(parse_eps(a), parse_eps(b), count))  # = eps_grid for a = 0
    values = [parse_eps(v) for v in raw.split(",") if v.strip()]
    if not values:
        raise ValueError("the ε grid is empty")
    return tuple(values)


def _rows_cap() -> int:
    from explorer.attacks.config import max_batch_allowed

    return int(max_batch_allowed())


def _dataset_label(dataset: str) -> str:
    return SET_LABELS.get(dataset, "your images" if dataset.startswith(SET_PREFIX) else dataset)


def _validate_common(models: tuple[str, ...], dataset: str, n: int, steps: int) -> None:
    from explorer.attacks.config import check_steps
    from explorer.config import get_settings
    from explorer.models import get_spec

    if not models:
        raise ValueError("choose at least one model")
    if len(set(models)) != len(models):
        raise ValueError("a model is listed twice")
    if len(models) > MAX_MODELS:
        raise ValueError(f"at most {MAX_MODELS} models at once, got {len(models)}")
    for m in models:
        try:
            get_spec(m)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
    if dataset not in BUILTIN_SETS and not dataset.startswith(SET_PREFIX):
        raise ValueError(f"unknown dataset {dataset!r}: choose digits, mnist, photos or an uploaded set")
    cap = get_settings().max_n
    if int(n) != n or n < 1:
        raise ValueError(f"N must be a whole number of at least 1, got {n}")
    if n > cap:
        raise ValueError(f"N = {n} is above this server's cap of {cap} samples (EXPLORER_MAX_N)")
    check_steps(steps)


def _model_shape(model_id: str) -> tuple[int, int, int]:
    from explorer.models import get_spec

    return tuple(get_spec(model_id).input_shape)  # type: ignore[return-value]


def _get_model(model_id: str, device: str | None):
    from explorer.inference import model_cache

    return model_cache().get(model_id, device)


# --------------------------------------------------------------------------------------------- shards


@dataclass(frozen=True)
class EvalShard:
    """One model × attack × batch of samples (plain data: an executor may send it to another process)."""

    digest: str
    model_id: str
    settings: AttackSettings
    eps: tuple[float, ...]
    x: np.ndarray
    y: np.ndarray | None  # None: score against the model's own clean prediction
    start: int
    rows: int
    refine_rounds: int
    refine_points: int
    keep: int
    device: str | None
    reuse: bool | None = None


def run_eval_shard(item: EvalShard) -> ShardResult:
    """Run one shard (or read it from the store): the function every executor maps."""
    from explorer.evaluation.core import evaluate_batch
    from explorer.inference import predict_logits

    store = default_store()
    hit = store.get(item.digest)
    if isinstance(hit, ShardResult):
        return hit
    model = _get_model(item.model_id, item.device)
    y = item.y if item.y is not None else predict_logits(model, item.x, batch_size=item.rows).argmax(1)
    res = evaluate_batch(model, item.x, np.asarray(y, np.int64), np.asarray(item.eps), item.settings,
                         rows=item.rows, start=item.start, refine_rounds=item.refine_rounds,
                         refine_points=item.refine_points, keep=item.keep, model_id=item.model_id,
                         reuse=item.reuse)
    store.put(item.digest, res)
    return res


@dataclass(frozen=True)
class ProbeShard:
    digest: str
    model_id: str
    x: np.ndarray
    y: np.ndarray | None
    attack: str | None
    steps: int
    steps_eps: float
    seed: int
    rows: int
    device: str | None
    alpha: float | None = None
    plain_eps: tuple[float, ...] = ()


def run_probe_shard(item: ProbeShard) -> ModelProbe:
    from explorer.evaluation.checks import probe_model
    from explorer.inference import predict_logits

    store = default_store()
    hit = store.get(item.digest)
    if isinstance(hit, ModelProbe):
        return hit
    model = _get_model(item.model_id, item.device)
    y = item.y if item.y is not None else predict_logits(model, item.x, batch_size=item.rows).argmax(1)
    res = probe_model(model, item.x, np.asarray(y, np.int64), model_id=item.model_id, attack=item.attack,
                      steps=item.steps, steps_eps=item.steps_eps, seed=item.seed, rows=item.rows,
                      alpha=item.alpha, plain_eps=item.plain_eps)
    store.put(item.digest, res)
    return res


def _map(executor: Executor, fn, items: list, progress: ProgressFn | None, cancelled: CancelFn | None,
         offset: int, total: int) -> list:
    """``executor.map`` with progress counted over the whole request (``offset`` shards already done)."""
    if not items:
        return []
    report = None if progress is None else (lambda done, _n: progress(offset + done, total))
    return executor.map(fn, items, progress=report, cancelled=cancelled)


# ------------------------------------------------------------------------------------------ evaluation



def _stored(store, digest: str, cls: type, progress: ProgressFn | None):
    """The stored result of ``digest`` when it is a ``cls`` (reported as done), else None."""
    hit = store.get(digest)
    if not isinstance(hit, cls):
        return None
    if progress is not None:
        progress(1, 1)
    return hit

@dataclass(frozen=True)
class EvaluateRequest(Request):
    """Robust accuracy of several models under several attacks over an ε grid on an image set.

    dataset: "digits" (360 held out), "mnist" (2,000 held out), "photos", or "set:<digest>" (see
    ``explorer.evaluation.data.register_set``); the first ``n`` images. steps / alpha: of the iterative attacks
    (alpha absolute; None: each attack's default fraction of ε). seed: random starts. shard_size: samples per
    shard (0: 100, photos 8). rows: rows per attack call (0: ``EXPLORER_MAX_BATCH``). refine_rounds /
    refine_points: bisection of each sample's flip ε (-1: FGSM 4 rounds of 7 probes, iterative 1 of 3).
    probe: run the per-model probes behind the honest-evaluation checks. probe_n: samples they use.
    reuse_smaller_eps: iterative attacks walk the grid from the smallest ε up and attack at each ε only the
    samples no smaller ε has fooled (an adversarial inside the ε_k-ball is inside every larger ball, so the sample
    counts as fooled there too: that is what a robust-accuracy curve measures); FGSM always runs every row.
    False: every (sample, ε) row is attacked on its own, and a curve may rise with ε. With reuse, the probes run
    the iterative attack row by row on their samples, so check 1 can still see a rising curve.
    """

    kind: ClassVar[str] = "evaluate"

    models: tuple[str, ...] = ("digits-cnn",)
    attacks: tuple[str, ...] = ("fgsm", "pgd")
    eps: tuple[float, ...] = tuple(float(v) for v in np.linspace(0, 0.35, 8))
    dataset: str = "digits"
    n: int = 360
    seed: int = 0
    steps: int = 10
    alpha: float | None = None
    shard_size: int = 0
    rows: int = 0
    refine_rounds: int = -1
    refine_points: int = -1
    probe: bool = True
    probe_n: int = 100
    device: str | None = None
    reuse_smaller_eps: bool = True

    def cost(self) -> float:
        """Forward passes of a 28 x 28 image's worth: every attack at every ε on every sample and model (an upper
        bound: reusing smaller-ε adversarials and the probes are not counted)."""
        r = self.resolved()
        top = max(r.eps) if r.eps else 0.0
        per = sum(attack_passes(a, top, r.steps) for a in r.attacks)
        return per * r.n * len(r.eps) * len(r.models) * shape_scale(_model_shape(r.models[0]))

    def resolved(self) -> EvaluateRequest:
        """Defaults filled in (what the digest covers)."""
        shard = self.shard_size or (PHOTO_SHARD if self.dataset == "photos" else DEFAULT_SHARD)
        return replace(self, shard_size=int(shard), rows=int(self.rows or _rows_cap()),
                       models=tuple(self.models), attacks=tuple(self.attacks),
                       eps=tuple(float(e) for e in self.eps))

    def digest(self) -> str:
        r = self.resolved()
        return content_digest(self.kind, replace(r, device=None))

    def validate(self) -> None:
        from explorer.attacks import ATTACKS
        from explorer.attacks.config import check_eps, eps_upper
        from explorer.config import get_settings

        _validate_common(tuple(self.models), self.dataset, self.n, self.steps)
        if not self.attacks:
            raise ValueError("choose at least one attack")
        if len(set(self.attacks)) != len(self.attacks) or len(self.attacks) > MAX_ATTACKS:
            raise ValueError(f"choose up to {MAX_ATTACKS} different attacks")
        for a in self.attacks:
            if a not in ATTACKS:
                raise ValueError(f"unknown attack {a!r}: choose from {', '.join(ATTACKS)}")
            if a in ("deepfool", "cw"):
                raise ValueError(f"{a} is a minimal-perturbation attack with no ε budget: it has no accuracy-vs-ε "
                                 "curve (choose FGSM, BIM, PGD, MI-FGSM or APGD-CE)")
        cap = get_settings().max_eps_points
        if len(self.eps) < 2:
            raise ValueError("the ε grid needs at least 2 values")
        if len(self.eps) > cap:
            raise ValueError(f"the ε grid has {len(self.eps)} values; this server allows at most {cap} "
                             "(EXPLORER_MAX_EPS_POINTS)")
        if len(set(float(e) for e in self.eps)) != len(self.eps):
            raise ValueError("the ε grid repeats a value")
        for a in self.attacks:
            shape = _model_shape(self.models[0])
            check_eps([float(e) for e in self.eps], "ε", upper=eps_upper(a, shape))
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        if self.shard_size < 0 or self.rows < 0 or self.probe_n < 1:
            raise ValueError("shard_size and rows must be 0 (automatic) or positive, probe_n at least 1")
        if self.refine_rounds > 20 or self.refine_points > 64:
            raise ValueError("refine_rounds must be at most 20 and refine_points at most 64")

    # the plan ---------------------------------------------------------------------------------------

    def _refine(self, attack: str) -> tuple[int, int]:
        from explorer.evaluation.core import default_refine

        rounds, points = default_refine(attack)
        return (rounds if self.refine_rounds < 0 else self.refine_rounds), (points if self.refine_points < 0 else self.refine_points)

    def plan(self) -> tuple[list[tuple[str, str]], dict[str, EvalSet], list[EvalShard]]:
        """(skipped models with reasons, the image set per model, the shards)."""
        r = self.resolved()
        skipped: list[tuple[str, str]] = []
        sets: dict[str, EvalSet] = {}
        by_shape: dict[tuple[int, ...], EvalSet] = {}
        for m in r.models:
            shape = _model_shape(m)
            why = fits(r.dataset, shape)
            if why is None and shape not in by_shape:
                s = load_set(r.dataset, r.n, r.seed, shape)
                if len(s) == 0:
                    raise ValueError("the image set is empty: give at least one valid image")
                if s.input_shape != tuple(shape):
                    why = (f"the image set is {'x'.join(map(str, s.input_shape))}; this model takes "
                           f"{'x'.join(map(str, shape))}")
                else:
                    by_shape[shape] = s
            if why is None:
                why = None if shape in by_shape else "the image set does not fit this model"
            if why is not None:
                skipped.append((m, why))
            else:
                sets[m] = by_shape[shape]
        shards: list[EvalShard] = []
        for m, s in sets.items():
            labels = None if s.labels_are_predictions else s.labels
            set_id = r.dataset if not s.labels_are_predictions or r.dataset != "photos" else f"photos-{s.input_shape}"
            keep = KEEP_EXAMPLES if s.input_shape[0] == 1 else KEEP_EXAMPLES_PHOTO
            for a in r.attacks:
                settings = AttackSettings(a, steps=r.steps, alpha=r.alpha, random_start=True, seed=r.seed)
                rounds, points = self._refine(a)
                for start in range(0, len(s), r.shard_size):
                    stop = min(len(s), start + r.shard_size)
                    digest = content_digest("evaluate-shard", {
                        "model": m, "settings": settings, "eps": r.eps, "set": set_id, "seed": r.seed,
                        "start": start, "stop": stop, "rows": r.rows, "refine": [rounds, points], "keep": keep,
                        "reuse": bool(r.reuse_smaller_eps and a != "fgsm")})
                    shards.append(EvalShard(digest, m, settings, r.eps, s.images[start:stop],
                                            None if labels is None else labels[start:stop], start, r.rows,
                                            rounds, points, keep, r.device,
                                            reuse=bool(r.reuse_smaller_eps and a != "fgsm")))
        return skipped, sets, shards

    def execute(self, executor: Executor, *, progress: ProgressFn | None = None,
                cancelled: CancelFn | None = None) -> Evaluation:
        from explorer.evaluation.checks import iterative_attack, steps_probe_eps

        r = self.resolved()
        digest = self.digest()
        store = default_store()
        hit = _stored(store, digest, Evaluation, progress)
        if hit is not None:
            return hit
        t0 = time.perf_counter()
        skipped, sets, shards = self.plan()
        if not sets:
            reasons = "; ".join(f"{m}: {why}" for m, why in skipped)
            raise ValueError(f"no chosen model can run on this image set ({reasons})")
        models = tuple(m for m in r.models if m in sets)
        n_probe = len(models) if r.probe else 0
        total = len(shards) + n_probe
        results = _map(executor, run_eval_shard, shards, progress, cancelled, 0, total)
        # assemble (M, A, E, N)
        first = sets[models[0]]
        n, e, a_n = len(first), len(r.eps), len(r.attacks)
        mi = {m: i for i, m in enumerate(models)}
        ai = {a: i for i, a in enumerate(r.attacks)}
        shape = first.input_shape
        keep = KEEP_EXAMPLES if shape[0] == 1 else KEEP_EXAMPLES_PHOTO
        pred = np.zeros((len(models), a_n, e, n), np.int64)
        clean = np.zeros((len(models), n), np.int64)
        flip = np.zeros((len(models), a_n, n))
        width = np.zeros((len(models), a_n, n))
        ex_idx = np.full((len(models), a_n, e, keep), -1, np.int64)
        ex_pred = np.full((len(models), a_n, e, keep), -1, np.int64)
        ex_img = np.zeros((len(models), a_n, e, keep, *shape), np.float32)
        ex_fill = np.zeros((len(models), a_n, e), np.int64)
        rows = 0
        for sh, res in zip(shards, results):
            m, a = mi[sh.model_id], ai[sh.settings.attack]
            sl = slice(sh.start, sh.start + len(sh.x))
            pred[m, a, :, sl] = res.pred
            clean[m, sl] = res.clean_pred
            flip[m, a, sl] = res.flip_eps
            width[m, a, sl] = res.flip_width
            rows += int(res.pred.size)
            if res.examples.shape[2:] == tuple(shape):
                for k in range(e):
                    for j in range(res.example_idx.shape[1]):
                        if res.example_idx[k, j] >= 0 and ex_fill[m, a, k] < keep:
                            f = ex_fill[m, a, k]
                            ex_idx[m, a, k, f] = res.example_idx[k, j]
                            ex_pred[m, a, k, f] = res.example_pred[k, j]
                            ex_img[m, a, k, f] = res.examples[k, j]
                            ex_fill[m, a, k] += 1
        labels = np.stack([clean[i] if sets[m].labels_are_predictions else sets[m].labels
                           for i, m in enumerate(models)]).astype(np.int64)
        probes: list[ModelProbe] = []
        if r.probe:
            it = iterative_attack(tuple(r.attacks))
            eps_arr = np.asarray(r.eps)
            items = []
            for i, m in enumerate(models):
                s = sets[m]
                k = min(r.probe_n, len(s))
                correct = (pred[i] == labels[i][None, None]) & (clean[i] == labels[i])[None, None]
                steps_eps = steps_probe_eps(correct[ai[it]].mean(-1), eps_arr) if it else 0.0
                plain_eps = tuple(r.eps) if it and r.reuse_smaller_eps else ()
                pd = content_digest("evaluate-probe", {"model": m, "set": r.dataset, "n": k, "seed": r.seed,
                                                        "attack": it or "", "steps": r.steps, "alpha": r.alpha,
                                                        "steps_eps": steps_eps, "rows": r.rows,
                                                        "plain_eps": list(plain_eps)})
                items.append(ProbeShard(pd, m, s.images[:k], None if s.labels_are_predictions else s.labels[:k],
                                        it, r.steps, steps_eps, r.seed, r.rows, r.device, r.alpha, plain_eps))
            probes = _map(executor, run_probe_shard, items, progress, cancelled, len(shards), total)
        ev = Evaluation(
            digest=digest, dataset=r.dataset, dataset_label=_dataset_label(r.dataset), models=models,
            attacks=tuple(r.attacks), steps=r.steps, seed=r.seed, eps=np.asarray(r.eps, np.float64), labels=labels,
            labels_are_predictions=first.labels_are_predictions, sources=first.sources,
            sample_ids=first.sample_ids, clean_pred=clean, pred=pred, flip_eps=flip, flip_width=width,
            example_idx=ex_idx, example_pred=ex_pred, examples=ex_img, probes=tuple(probes),
            skipped=tuple(skipped), seconds=time.perf_counter() - t0, attacked_rows=rows,
        )
        store.put(digest, ev)
        return ev

    def shard_digests(self) -> list[str]:
        return [s.digest for s in self.plan()[2]]


# --------------------------------------------------------------------------------------------- transfer


@storable
@dataclass(frozen=True)
class AdversarialBatch:
    """A source model's adversarials of one batch of samples (kept so every transfer run reuses them)."""

    model_id: str
    start: int
    images: np.ndarray
    labels: np.ndarray  # what the source attacked against
    seconds: float


@storable
@dataclass(frozen=True)
class TransferShard:
    source: str
    start: int
    clean_pred: np.ndarray  # (T, B), -1 for targets of another shape
    pred: np.ndarray  # (T, B)
    reused: bool


@dataclass(frozen=True)
class TransferItem:
    adv_digest: str
    source: str
    targets: tuple[str, ...]
    target_ok: tuple[bool, ...]
    settings: AttackSettings
    eps: float
    x: np.ndarray
    y: np.ndarray | None
    start: int
    rows: int
    device: str | None


def source_adversarials(item: TransferItem) -> tuple[AdversarialBatch, bool]:
    """The source's adversarials of this batch: from the store when any earlier run made them."""
    from explorer.evaluation.core import attack_rows
    from explorer.inference import predict_logits

    store = default_store()
    hit = store.get(item.adv_digest)
    if isinstance(hit, AdversarialBatch):
        return hit, True
    t0 = time.perf_counter()
    model = _get_model(item.source, item.device)
    y = item.y if item.y is not None else predict_logits(model, item.x, batch_size=item.rows).argmax(1)
    y = np.asarray(y, np.int64)
    _, imgs = attack_rows(model, item.x, y, np.full(len(item.x), item.eps), item.settings, rows=item.rows,
                          start=item.start, keep_images=True)
    batch = AdversarialBatch(item.source, item.start, imgs, y, time.perf_counter() - t0)
    store.put(item.adv_digest, batch)
    return batch, False


def run_transfer_shard(item: TransferItem) -> TransferShard:
    from explorer.inference import predict_logits

    adv, reused = source_adversarials(item)
    t, b = len(item.targets), len(item.x)
    clean = np.full((t, b), -1, np.int64)
    pred = np.full((t, b), -1, np.int64)
    for j, (target, ok) in enumerate(zip(item.targets, item.target_ok)):
        if not ok:
            continue
        model = _get_model(target, item.device)
        clean[j] = predict_logits(model, item.x, batch_size=item.rows).argmax(1)
        pred[j] = predict_logits(model, adv.images, batch_size=item.rows).argmax(1)
    return TransferShard(item.source, item.start, clean, pred, reused)


@dataclass(frozen=True)
class TransferRequest(Request):
    """A transfer matrix: ``attack`` at ``eps`` made white-box on each model (rows), evaluated on every model
    (columns) of the same input shape. The diagonal is the white-box attack."""

    kind: ClassVar[str] = "transfer"

    models: tuple[str, ...] = ("digits-cnn", "digits-mlp", "digits-softmax")
    attack: str = "pgd"
    eps: float = 0.2
    dataset: str = "digits"
    n: int = 360
    seed: int = 0
    steps: int = 10
    alpha: float | None = None
    shard_size: int = 0
    rows: int = 0
    device: str | None = None

    def cost(self) -> float:
        """Each model's white-box attack on ``n`` samples, and every model's forward on every source's batch."""
        r = self.resolved()
        m = len(r.models)
        return (attack_passes(r.attack, r.eps, r.steps) + m) * m * r.n * shape_scale(_model_shape(r.models[0]))

    def resolved(self) -> TransferRequest:
        shard = self.shard_size or (PHOTO_SHARD if self.dataset == "photos" else DEFAULT_SHARD)
        return replace(self, shard_size=int(shard), rows=int(self.rows or _rows_cap()), models=tuple(self.models),
                       eps=float(self.eps))

    def digest(self) -> str:
        return content_digest(self.kind, replace(self.resolved(), device=None))

    def validate(self) -> None:
        from explorer.attacks import ATTACKS
        from explorer.attacks.config import check_eps, eps_upper

        _validate_common(tuple(self.models), self.dataset, self.n, self.steps)
        if self.attack not in ATTACKS or self.attack in ("deepfool", "cw"):
            raise ValueError(f"unknown or unbudgeted attack {self.attack!r}: choose FGSM, BIM, PGD, MI-FGSM or APGD-CE")
        check_eps(float(self.eps), "ε", upper=eps_upper(self.attack, _model_shape(self.models[0])))
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")

    def execute(self, executor: Executor, *, progress: ProgressFn | None = None,
                cancelled: CancelFn | None = None) -> TransferResult:
        r = self.resolved()
        digest = self.digest()
        store = default_store()
        hit = _stored(store, digest, TransferResult, progress)
        if hit is not None:
            return hit
        t0 = time.perf_counter()
        models = r.models
        shapes = {m: _model_shape(m) for m in models}
        model_skip = {m: fits(r.dataset, shapes[m]) for m in models}
        sets: dict[tuple[int, ...], EvalSet] = {}
        for m in models:
            if model_skip[m] is None and shapes[m] not in sets:
                sets[shapes[m]] = load_set(r.dataset, r.n, r.seed, shapes[m])
            if model_skip[m] is None and sets[shapes[m]].input_shape != tuple(shapes[m]):
                # an uploaded set is converted once, to one model's input: other shapes cannot take it
                model_skip[m] = (f"the image set is {'x'.join(map(str, sets[shapes[m]].input_shape))}; this model "
                                 f"takes {'x'.join(map(str, shapes[m]))}")
        usable = [m for m in models if model_skip[m] is None]
        if not usable:
            raise ValueError("no chosen model can run on this image set (" +
                             "; ".join(f"{m}: {w}" for m, w in model_skip.items()) + ")")
        n = len(sets[shapes[usable[0]]])
        if n == 0:
            raise ValueError("the image set is empty: give at least one valid image")
        skipped: list[tuple[str, str, str]] = []
        for s in models:
            for t in models:
                if model_skip[s] is not None:
                    skipped.append((s, t, f"{s} cannot run on this image set: {model_skip[s]}"))
                elif model_skip[t] is not None:
                    skipped.append((s, t, f"{t} cannot run on this image set: {model_skip[t]}"))
                elif shapes[s] != shapes[t]:
                    skipped.append((s, t, f"{s} makes {'x'.join(map(str, shapes[s]))} images; {t} takes "
                                          f"{'x'.join(map(str, shapes[t]))}"))
        settings = AttackSettings(r.attack, steps=r.steps, alpha=r.alpha, random_start=True, seed=r.seed)
        items: list[TransferItem] = []
        for s in usable:
            data = sets[shapes[s]]
            ok = tuple(model_skip[t] is None and shapes[t] == shapes[s] for t in models)
            labels = None if data.labels_are_predictions else data.labels
            set_id = r.dataset if r.dataset != "photos" else f"photos-{data.input_shape}"
            for start in range(0, n, r.shard_size):
                stop = min(n, start + r.shard_size)
                ad = content_digest("adversarial-batch", {"model": s, "settings": settings, "eps": r.eps,
                                                          "set": set_id, "seed": r.seed, "start": start,
                                                          "stop": stop, "rows": r.rows})
                items.append(TransferItem(ad, s, models, ok, settings, r.eps, data.images[start:stop],
                                          None if labels is None else labels[start:stop], start, r.rows, r.device))
        results = _map(executor, run_transfer_shard, items, progress, cancelled, 0, len(items))
        k_ex = KEEP_EXAMPLES if shapes[usable[0]][0] == 1 else KEEP_EXAMPLES_PHOTO
        M = len(models)
        clean = np.full((M, n), -1, np.int64)
        pred = np.full((M, M, n), -1, np.int64)
        valid = np.zeros((M, M), bool)
        for it, res in zip(items, results):
            si = models.index(it.source)
            sl = slice(it.start, it.start + len(it.x))
            for j in range(M):
                if it.target_ok[j]:
                    valid[si, j] = True
                    pred[si, j, sl] = res.pred[j]
                    clean[j, sl] = res.clean_pred[j]
        # labels per target: true labels, or the target's own clean prediction
        labels = np.full((M, n), -2, np.int64)
        for j, t in enumerate(models):
            if model_skip[t] is None:
                d = sets[shapes[t]]
                labels[j] = clean[j] if d.labels_are_predictions else d.labels
        # failing examples per cell (the source's adversarial that fools the target)
        ex_shape = shapes[usable[0]]
        ex_idx = np.full((M, M, k_ex), -1, np.int64)
        ex_pred = np.full((M, M, k_ex), -1, np.int64)
        ex_img = np.zeros((M, M, k_ex, *ex_shape), np.float32)
        clean_ok = clean == labels
        for si, s in enumerate(models):
            for j in range(M):
                if not valid[si, j] or shapes[s] != ex_shape:
                    continue
                fooled = np.flatnonzero(clean_ok[j] & (pred[si, j] != labels[j]))[:k_ex]
                for f, idx in enumerate(fooled):
                    ex_idx[si, j, f] = idx
                    ex_pred[si, j, f] = pred[si, j, idx]
                    it = next(i for i in items if i.source == s and i.start <= idx < i.start + len(i.x))
                    adv, _ = source_adversarials(it)
                    ex_img[si, j, f] = adv.images[idx - it.start]
        first = sets[shapes[usable[0]]]
        res = TransferResult(
            digest=digest, dataset=r.dataset, dataset_label=_dataset_label(r.dataset), models=models,
            attack=r.attack, eps=float(r.eps), steps=r.steps, seed=r.seed, labels=labels,
            labels_are_predictions=first.labels_are_predictions, sample_ids=first.sample_ids, clean_pred=clean,
            pred=pred, valid=valid, skipped=tuple(skipped), example_idx=ex_idx, example_pred=ex_pred,
            examples=ex_img, seconds=time.perf_counter() - t0,
        )
        store.put(digest, res)
        return res


def transfer_for(req: EvaluateRequest, eps: float | None = None, attack: str | None = None) -> TransferRequest:
    """The transfer matrix the page and the CLI show beside an evaluation: its strongest iterative attack (else
    its first) at ``eps`` (default: the middle of the grid), same models, data, steps and seed."""
    from explorer.evaluation.checks import iterative_attack

    r = req.resolved()
    grid = sorted(r.eps)
    return TransferRequest(models=r.models, attack=attack or iterative_attack(r.attacks) or r.attacks[0],
                           eps=float(grid[len(grid) // 2] if eps is None else eps), dataset=r.dataset, n=r.n,
                           seed=r.seed, steps=r.steps, alpha=r.alpha, shard_size=r.shard_size, rows=r.rows,
                           device=r.device)


def compatible_models(models: tuple[str, ...]) -> bool:
    """True when at least two models share an input shape (a transfer matrix has off-diagonal cells)."""
    shapes = [_model_shape(m) for m in models]
    return len(shapes) != len(set(shapes))
