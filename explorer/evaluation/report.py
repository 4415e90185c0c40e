"""The numbers of an evaluation as rows, text tables, CSV and JSON: the page and the CLI print the same."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Sequence

import numpy as np

from explorer.evaluation.results import CheckRow, Evaluation, TransferResult

WORST = "worst case"


def eps_label(eps: float, photo: bool = False) -> str:
    return f"{eps * 255:.3g}/255" if photo and eps > 0 else f"{eps:.4g}"


def curve_rows(ev: Evaluation) -> list[dict]:
    """One row per (model, attack or worst case, ε): accuracy with its 95% CP band, and the flip-ε curve."""
    acc = ev.accuracy()
    lo, hi = ev.interval(ev.correct())
    wacc = ev.worst_accuracy()
    wlo, whi = ev.interval(ev.worst_correct())
    facc = ev.flip_accuracy()
    wfacc = ev.worst_flip_accuracy()
    clean = ev.clean_accuracy()
    out = []
    for m, model in enumerate(ev.models):
        names = list(ev.attacks) + ([WORST] if len(ev.attacks) > 1 else [])
        for a, attack in enumerate(names):
            for k, e in enumerate(ev.eps):
                w = attack == WORST
                out.append({
                    "model": model, "attack": attack, "eps": float(e), "n": ev.n,
                    "clean_accuracy": float(clean[m]),
                    "accuracy": float(wacc[m, k] if w else acc[m, a, k]),
                    "ci_low": float(wlo[m, k] if w else lo[m, a, k]),
                    "ci_high": float(whi[m, k] if w else hi[m, a, k]),
                    "accuracy_from_flip_eps": float(wfacc[m, k] if w else facc[m, a, k]),
                })
    return out


def skipped_pairs(tr: TransferResult) -> list[str]:
    """The matrix's skipped pairs, one line per reason: a model that cannot run on the image set (its whole row
    and column), or a pair of models whose inputs differ (an adversarial of one cannot be fed to the other)."""
    lines: list[str] = []
    whole: dict[str, str] = {}
    for _s, _t, why in tr.skipped:
        if " cannot run on this image set: " in why:
            m, reason = why.split(" cannot run on this image set: ", 1)
            whole.setdefault(m, reason)
    for m, reason in whole.items():
        lines.append(f"{m} cannot run on this image set ({reason}): its row and column are blank")
    seen = set()
    for s, t, why in tr.skipped:
        if s in whole or t in whole or frozenset((s, t)) in seen:
            continue
        seen.add(frozenset((s, t)))
        shape_s, shape_t = _shapes(why)
        lines.append(f"{s} ↔ {t}: {shape_s} and {shape_t} inputs, so neither's adversarials can be fed to the other"
                     if shape_s else f"{s} → {t}: {why}")
    return lines


def _shapes(why: str) -> tuple[str, str]:
    """("1x8x8", "3x224x224") from a shape-mismatch reason ("a makes 1x8x8 images; b takes 3x224x224")."""
    if " makes " in why and " images; " in why and " takes " in why:
        a = why.split(" makes ", 1)[1].split(" images; ", 1)[0]
        b = why.rsplit(" takes ", 1)[1]
        return a, b
    return "", ""


def transfer_rows(tr: TransferResult) -> list[dict]:
    acc = tr.accuracy()
    lo, hi = tr.interval()
    reasons = {(s, t): why for s, t, why in tr.skipped}
    out = []
    for i, s in enumerate(tr.models):
        for j, t in enumerate(tr.models):
            ok = bool(tr.valid[i, j])
            out.append({
                "source": s, "target": t, "attack": tr.attack, "eps": tr.eps, "n": tr.n, "white_box": i == j,
                "accuracy": float(acc[i, j]) if ok else None, "ci_low": float(lo[i, j]) if ok else None,
                "ci_high": float(hi[i, j]) if ok else None, "skipped": reasons.get((s, t), ""),
            })
    return out


def check_dicts(checks: Sequence[CheckRow]) -> list[dict]:
    return [{"check": c.check, "model": c.model, "status": c.status, "message": c.message} for c in checks]


def to_csv(rows: Sequence[dict]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def to_json(ev: Evaluation | None, tr: TransferResult | None = None, checks: Sequence[CheckRow] = ()) -> str:
    doc: dict = {}
    if ev is not None:
        doc["evaluation"] = {
            "dataset": ev.dataset_label, "n": ev.n, "models": list(ev.models), "attacks": list(ev.attacks),
            "steps": ev.steps, "seed": ev.seed, "eps": [float(e) for e in ev.eps],
            "clean_accuracy": {m: float(v) for m, v in zip(ev.models, ev.clean_accuracy())},
            "skipped": [{"model": m, "reason": why} for m, why in ev.skipped],
            "curves": curve_rows(ev),
        }
    if tr is not None:
        doc["transfer"] = {"dataset": tr.dataset_label, "n": tr.n, "attack": tr.attack, "eps": tr.eps,
                           "steps": tr.steps, "models": list(tr.models), "cells": transfer_rows(tr)}
    if checks:
        doc["checks"] = check_dicts(checks)
    return json.dumps(doc, indent=2, allow_nan=False, default=_json_default)


def _json_default(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    raise TypeError(type(v).__name__)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v * 100:.1f}"


def curves_text(ev: Evaluation) -> str:
    """Accuracy (%) per model × attack (rows) and ε (columns), then the 95% bands."""
    photo = bool(ev.examples.ndim >= 5 and ev.examples.shape[4] == 3)
    rows = curve_rows(ev)
    keys = list(dict.fromkeys((r["model"], r["attack"]) for r in rows))
    header = ["model", "attack", "clean"] + [eps_label(e, photo) for e in ev.eps]
    acc_rows, band_rows = [], []
    for model, attack in keys:
        rs = [r for r in rows if r["model"] == model and r["attack"] == attack]
        acc_rows.append([model, attack, pct(rs[0]["clean_accuracy"])] + [pct(r["accuracy"]) for r in rs])
        band_rows.append([model, attack, ""] + [f"{pct(r['ci_low'])}-{pct(r['ci_high'])}" for r in rs])
    flip_rows = [[model, attack, ""] + [pct(r["accuracy_from_flip_eps"]) for r in rows
                                        if r["model"] == model and r["attack"] == attack] for model, attack in keys]
    out = [f"Robust accuracy (%) on {ev.dataset_label}, N = {ev.n}, steps = {ev.steps}, seed = {ev.seed}",
           _table(acc_rows, header), "", "95% Clopper-Pearson intervals (%)", _table(band_rows, header), "",
           "Accuracy read off each sample's flip ε (bisection), at the same ε (%)", _table(flip_rows, header)]
    if ev.skipped:
        out += ["", "Skipped: " + "; ".join(f"{m} ({why})" for m, why in ev.skipped)]
    return "\n".join(out)


def transfer_text(tr: TransferResult) -> str:
    acc = tr.accuracy()
    header = ["source \\ target"] + list(tr.models)
    rows = []
    for i, s in enumerate(tr.models):
        rows.append([s] + [("-" if not tr.valid[i, j] else pct(float(acc[i, j])) + ("*" if i == j else ""))
                           for j in range(len(tr.models))])
    out = [f"Transfer: accuracy (%) of each target (columns) on {tr.attack} adversarials made on each source (rows), "
           f"ε = {tr.eps:.4g}, N = {tr.n}; * white-box", _table(rows, header)]
    if tr.skipped:
        out += ["Skipped pairs:"] + [f"  {line}" for line in skipped_pairs(tr)]
    return "\n".join(out)


def checks_text(checks: Sequence[CheckRow]) -> str:
    return "Checks\n" + _table([[c.status.upper(), c.model, c.check, c.message] for c in checks],
                               ["status", "model", "check", "why"])


class Throughput:
    """Turns (shards done, shards total) into a fraction and "N images×ε/s, ETA" text."""

    def __init__(self, rows_total: int, clock=time.perf_counter) -> None:
        self.rows_total = max(int(rows_total), 1)
        self.clock = clock
        self.t0 = clock()

    def __call__(self, done: int, total: int) -> tuple[float, str]:
        frac = done / max(total, 1)
        elapsed = self.clock() - self.t0
        rows = frac * self.rows_total
        rate = rows / elapsed if elapsed > 0 else 0.0
        eta = (self.rows_total - rows) / rate if rate > 0 else float("nan")
        eta_text = "" if not math.isfinite(eta) or frac >= 1 else f", about {eta:.0f} s left"
        return frac, f"{done}/{total} shards, {rate:,.0f} images×ε per second{eta_text}"
