"""Is a robustness number real? Eight checks for gradient masking and weak attacks (Athalye et al., 2018;
Croce & Hein's AutoAttack flags), each a pass / warn row with a one-line explanation.

1. accuracy does not rise with ε;
2. accuracy is about 0% at a very large ε (an unbounded attack must succeed);
3. FGSM does not beat PGD;
4. a transfer attack does not beat the white-box attack on the same model;
5. doubling the steps or adding a random restart does not drop accuracy by more than 1 point;
6. the share of samples whose input gradient is exactly zero;
7. a randomised model (two identical forwards differ): use EOT;
8. the model outputs probabilities rather than logits.

Checks 1, 3 and 4 read the results; 2 and 5–8 need a probe of each model (:func:`probe_model`).
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.evaluation.core import AttackSettings, attack_rows
from explorer.evaluation.results import CheckRow, Evaluation, ModelProbe, TransferResult

CHECKS = {
    "monotone": "accuracy does not rise with ε",
    "large-eps": "≈0% at a very large ε",
    "fgsm-vs-pgd": "FGSM does not beat PGD",
    "transfer-vs-whitebox": "transfer does not beat white-box",
    "steps-restarts": "more steps / restarts change < 1 point",
    "zero-gradients": "input gradients are not zero",
    "randomised": "deterministic outputs",
    "probabilities": "outputs are logits",
}
#: a change larger than this (in accuracy, 0..1) counts: "more than 1 point"
POINT = 0.01
BIG_EPS = 1.0
ZERO_GRAD_WARN = 0.05
ITERATIVE_PREFERENCE = ("apgd", "pgd", "bim", "mifgsm")


def iterative_attack(attacks: tuple[str, ...]) -> str | None:
    """The strongest iterative L∞ attack among ``attacks`` (None if there is none)."""
    for a in ITERATIVE_PREFERENCE:
        if a in attacks:
            return a
    return None


def probe_model(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, *, model_id: str, attack: str | None,
                steps: int, steps_eps: float, seed: int, rows: int, big_eps: float = BIG_EPS,
                alpha: float | None = None, plain_eps: tuple[float, ...] = ()) -> ModelProbe:
    """Measure what checks 2 and 5–8 need on the samples ``x`` (labels ``y``); ``attack`` / ``steps`` / ``alpha``
    are the evaluated iterative attack's settings (the base of the steps / restart comparison). ``plain_eps``:
    the grid on which ``attack`` is also run row by row (no reuse), so check 1 can see a curve that rises."""
    from explorer.attacks._common import as_images, as_labels, classify, grad_mode
    from torch.nn import functional as F

    xt = as_images(model, x)
    yt = as_labels(y, len(xt), xt.device, getattr(model, "num_classes", None))
    with torch.inference_mode():
        a = model(xt)
        b = model(xt)
    max_diff = float((a - b).abs().max()) if len(a) else 0.0
    outs = a.float()
    probs = bool(len(outs)) and bool((outs >= 0).all() and (outs <= 1).all()
                                     and ((outs.sum(dim=1) - 1).abs() < 1e-3).all())
    zero = 0
    for i in range(0, len(xt), max(1, rows)):
        with grad_mode():
            xg = xt[i: i + rows].clone().requires_grad_(True)
            loss = F.cross_entropy(model(xg), yt[i: i + rows], reduction="sum")
            (g,) = torch.autograd.grad(loss, xg)
        zero += int((g.reshape(len(g), -1).abs().amax(dim=1) == 0).sum())
    clean_ok = classify(model, xt).argmax(1).cpu().numpy() == y

    def acc(settings: AttackSettings, eps: float, tag: int) -> np.ndarray:
        pred, _ = attack_rows(model, x, y, np.full(len(x), eps), settings, rows=rows, start=tag)
        return (pred == y) & clean_ok

    big_name = attack if attack in ("pgd", "apgd") else "pgd"
    big = acc(AttackSettings(big_name, steps=max(int(steps), 10), random_start=False, seed=seed), big_eps, 1)
    base = double = restart = np.zeros(0, bool)
    if attack is not None and steps_eps > 0:
        s0 = AttackSettings(attack, steps=int(steps), alpha=alpha, seed=seed)
        base = acc(s0, steps_eps, 2)
        double = acc(AttackSettings(attack, steps=2 * int(steps), alpha=alpha, seed=seed), steps_eps, 2)
        restart = base & acc(AttackSettings(attack, steps=int(steps), alpha=alpha, seed=seed + 1), steps_eps, 3)
    m = lambda v: float(v.mean()) if len(v) else float("nan")  # noqa: E731
    plain = tuple(float(e) for e in sorted(plain_eps) if e > 0) if attack is not None else ()
    plain_acc = tuple(m(acc(AttackSettings(attack, steps=int(steps), alpha=alpha, seed=seed), e, 4 + i))
                      for i, e in enumerate(plain))
    return ModelProbe(
        model_id=model_id, n=len(x), max_diff=max_diff, outputs_probabilities=probs,
        zero_grad_share=zero / max(len(x), 1), big_eps=float(big_eps), big_eps_attack=big_name,
        big_eps_acc=m(big), steps_attack=attack or "", steps=int(steps), steps_eps=float(steps_eps),
        acc_base=m(base), acc_double=m(double), acc_restart=m(restart), plain_eps=plain, plain_acc=plain_acc,
    )


def steps_probe_eps(ev_acc: np.ndarray, eps: np.ndarray) -> float:
    """The grid ε where an attack's accuracy (E,) is nearest 50% (most sensitive to a stronger attack)."""
    inside = eps > 0
    if not inside.any():
        return 0.0
    cand = np.flatnonzero(inside)
    return float(eps[cand[np.argmin(np.abs(ev_acc[cand] - 0.5))]])


def _pct(v: float) -> str:
    return f"{v * 100:.1f}%"


def run_checks(ev: Evaluation, transfer: TransferResult | None = None) -> list[CheckRow]:
    """Every check for every model of ``ev`` (check 4 needs ``transfer``)."""
    rows: list[CheckRow] = []
    acc = ev.accuracy()
    order = np.argsort(ev.eps, kind="stable")
    eps = ev.eps[order]
    probes = {p.model_id: p for p in ev.probes}
    n = max(ev.n, 1)
    slack = max(POINT, 1.0 / n)  # one sample is noise
    for m, model in enumerate(ev.models):
        # 1. monotone
        worst_rise, where = 0.0, ""
        for a, attack in enumerate(ev.attacks):
            curve = acc[m, a, order]
            rise = curve - np.minimum.accumulate(curve)
            k = int(rise.argmax())
            if rise[k] > worst_rise:
                worst_rise, where = float(rise[k]), f"{attack} at ε = {eps[k]:.4g}"
        p = probes.get(model)
        mono_slack = slack
        if p is not None and len(p.plain_acc) > 1:
            # iterative curves reuse smaller-ε adversarials (monotone by construction): the probe ran its
            # attack at every ε row by row on its samples, and that curve must not rise either
            curve = np.asarray(p.plain_acc)
            rise = curve - np.minimum.accumulate(curve)
            k = int(rise.argmax())
            probe_slack = max(POINT, 1.0 / max(p.n, 1))
            if rise[k] > probe_slack + 1e-9 and rise[k] - probe_slack > worst_rise - slack:
                worst_rise, where = float(rise[k]), (f"{p.steps_attack} run at each ε separately on {p.n} samples, "
                                                     f"at ε = {p.plain_eps[k]:.4g}")
                mono_slack = probe_slack
        if worst_rise > mono_slack + 1e-9:
            rows.append(CheckRow("monotone", "warn", model, f"accuracy rises by {_pct(worst_rise)} with ε ({where}): "
                                 "the attack is failing at larger ε, a sign of masked gradients or too few steps"))
        else:
            rows.append(CheckRow("monotone", "pass", model, "accuracy never rises with ε by more than a point"))
        # 2. large ε
        if p is None:
            rows.append(CheckRow("large-eps", "skip", model, "no probe of this model"))
        elif p.big_eps_acc > 0.02:
            rows.append(CheckRow("large-eps", "warn", model,
                                 f"{_pct(p.big_eps_acc)} accuracy under {p.big_eps_attack} at ε = {p.big_eps:g} (any "
                                 "image allowed): an unbounded attack must reach 0%, so gradients are not usable"))
        else:
            rows.append(CheckRow("large-eps", "pass", model,
                                 f"{_pct(p.big_eps_acc)} under {p.big_eps_attack} at ε = {p.big_eps:g}"))
        # 3. FGSM vs PGD
        if "fgsm" in ev.attacks and "pgd" in ev.attacks:
            d = acc[m, ev.attacks.index("pgd")] - acc[m, ev.attacks.index("fgsm")]
            k = int(d.argmax())
            if d[k] > slack + 1e-9:
                rows.append(CheckRow("fgsm-vs-pgd", "warn", model,
                                     f"FGSM beats PGD by {_pct(float(d[k]))} at ε = {ev.eps[k]:.4g}: PGD is not "
                                     "converging (more steps, or masked gradients)"))
            else:
                rows.append(CheckRow("fgsm-vs-pgd", "pass", model, "PGD is at least as strong as FGSM at every ε"))
        else:
            rows.append(CheckRow("fgsm-vs-pgd", "skip", model, "choose both FGSM and PGD to compare them"))
        # 4. transfer vs white-box
        rows.append(_transfer_check(model, transfer, slack))
        # 5. steps / restarts
        if p is None or not p.steps_attack:
            rows.append(CheckRow("steps-restarts", "skip", model, "needs an iterative attack (PGD, APGD-CE, BIM)"))
        else:
            drop = p.acc_base - min(p.acc_double, p.acc_restart)
            how = "doubling the steps" if p.acc_double <= p.acc_restart else "a random restart"
            msg = (f"{p.steps_attack} at ε = {p.steps_eps:.4g}: {_pct(p.acc_base)} with {p.steps} steps, "
                   f"{_pct(p.acc_double)} with {2 * p.steps}, {_pct(p.acc_restart)} with a restart")
            slack_p = max(POINT, 1.0 / max(p.n, 1))
            if drop > slack_p + 1e-9:
                rows.append(CheckRow("steps-restarts", "warn", model,
                                     f"{how} drops accuracy by {_pct(drop)} ({msg}): the attack has not converged"))
            else:
                rows.append(CheckRow("steps-restarts", "pass", model, msg))
        # 6. zero gradients
        if p is None:
            rows.append(CheckRow("zero-gradients", "skip", model, "no probe of this model"))
        elif p.zero_grad_share > ZERO_GRAD_WARN:
            rows.append(CheckRow("zero-gradients", "warn", model,
                                 f"{_pct(p.zero_grad_share)} of samples have an all-zero input gradient: gradient "
                                 "attacks are blind there (try BPDA / a transfer or score-based attack)"))
        else:
            rows.append(CheckRow("zero-gradients", "pass", model,
                                 f"{_pct(p.zero_grad_share)} of samples have an all-zero input gradient"))
        # 7. randomised
        if p is None:
            rows.append(CheckRow("randomised", "skip", model, "no probe of this model"))
        elif p.max_diff > 0:
            rows.append(CheckRow("randomised", "warn", model,
                                 f"two identical forwards differ (by up to {p.max_diff:.3g}): the model is "
                                 "randomised; attack the expectation over its randomness (EOT)"))
        else:
            rows.append(CheckRow("randomised", "pass", model, "two identical forwards give identical outputs"))
        # 8. probabilities
        if p is None:
            rows.append(CheckRow("probabilities", "skip", model, "no probe of this model"))
        elif p.outputs_probabilities:
            rows.append(CheckRow("probabilities", "warn", model,
                                 "the outputs are probabilities (in [0, 1], summing to 1), not logits: cross-entropy "
                                 "on them saturates; attack the logits (remove the softmax)"))
        else:
            rows.append(CheckRow("probabilities", "pass", model, "the outputs are logits"))
    return rows


def _transfer_check(model: str, t: TransferResult | None, slack: float) -> CheckRow:
    if t is None or model not in t.models:
        return CheckRow("transfer-vs-whitebox", "skip", model, "run a transfer matrix with this model to compare")
    j = t.models.index(model)
    acc = t.accuracy()
    white = acc[j, j]
    others = [(acc[i, j], t.models[i]) for i in range(len(t.models)) if i != j and t.valid[i, j]]
    if not others or not np.isfinite(white):
        return CheckRow("transfer-vs-whitebox", "skip", model, "no other model of the same input shape to transfer from")
    best, src = min(others)
    if white - best > slack + 1e-9:
        return CheckRow("transfer-vs-whitebox", "warn", model,
                        f"adversarials from {src} leave {_pct(best)} accuracy but its own white-box {t.attack} "
                        f"leaves {_pct(white)} (ε = {t.eps:.4g}): its gradients mislead the attack")
    return CheckRow("transfer-vs-whitebox", "pass", model,
                    f"white-box {_pct(white)} ≤ best transfer {_pct(best)} (from {src}, ε = {t.eps:.4g})")
