"""Robustness lab benchmark: robust-accuracy curves against Foolbox 3.3.4 and a torchattacks loop, Ray scaling,
and the Ray overhead on a tiny job, side by side in one run.

    EXPLORER_MNIST_DIR=../shared/data/mnist python benchmarks/bench_robustness.py [--n 2000] [--pgd40-n 2000]

1. Curve throughput (images × ε per second) on the MNIST CNN, N held-out images, 8 ε in [0, 0.3]: FGSM,
   PGD-10 (no random start, α = 2.5ε/10, identical arithmetic in the three) and APGD-CE (10 steps; ours against
   torchattacks' APGD, whose step-size schedule and checkpoints are its own, so its numbers may differ a little).
   Ours: FGSM takes one gradient per image for every ε; the iterative attacks walk the grid from the smallest ε
   up and attack at each ε, in one batch, only the samples no smaller ε has fooled (a sample fooled at ε_k is
   fooled at every larger ε: that is what the curve measures). "ours, every row" attacks all samples × ε
   (what the peers do); its curve may be higher where theirs is not monotone. Foolbox:
   ``attack(fmodel, x, y, epsilons=[...])``. torchattacks: a loop over ε. Accuracies are printed.
2. PGD-40 (step 0.01, ε = 0.3) on N MNIST images: the Ray executor with 2 workers against the local executor
   with 1 thread (workers warm: each has loaded the model). Scaling efficiency = T_local / (2 · T_ray).
3. The Ray path's overhead on a tiny job (20 digits, FGSM, 2 ε) against the local executor.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import format_table  # noqa: E402

EPS = np.linspace(0.0, 0.3, 8)


def fresh_store() -> None:
    import explorer.runs.store as store_mod

    os.environ["EXPLORER_RESULTS_TMP"] = tempfile.mkdtemp(prefix="bench-results-")
    store_mod._default = store_mod.TieredStore(store_mod.MemoryStore(),
                                               store_mod.DiskStore(Path(os.environ["EXPLORER_RESULTS_TMP"])))


def _ours(model, x, y, attack: str, steps: int, refine: bool, reuse: bool | None) -> np.ndarray:
    from explorer.evaluation.core import AttackSettings, evaluate_batch

    res = evaluate_batch(model, x, y, EPS, AttackSettings(attack, steps=steps, random_start=False), rows=256,
                         refine_rounds=None if refine else 0, keep=0, reuse=reuse)
    ok = res.clean_pred == y
    return ((res.pred == y[None]) & ok[None]).mean(axis=1)


def ours(model, x, y, attack: str, steps: int) -> np.ndarray:
    return _ours(model, x, y, attack, steps, False, None)


def ours_every_row(model, x, y, attack: str, steps: int) -> np.ndarray:
    return _ours(model, x, y, attack, steps, False, False)


def ours_refined(model, x, y, attack: str, steps: int) -> np.ndarray:
    return _ours(model, x, y, attack, steps, True, None)


def foolbox_curve(model, x, y, attack: str, steps: int) -> np.ndarray:
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    atk = fb.attacks.FGSM() if attack == "fgsm" else fb.attacks.LinfPGD(steps=steps, rel_stepsize=2.5 / steps,
                                                                           random_start=False)
    out = []
    for i in range(0, len(x), 256):
        _, _, success = atk(fmodel, xt[i:i + 256], yt[i:i + 256], epsilons=[float(e) for e in EPS])
        out.append(success.numpy())
    success = np.concatenate(out, axis=1)
    with torch.inference_mode():
        ok = (model(xt).argmax(1) == yt).numpy()
    return ((~success) & ok[None]).mean(axis=1)


def torchattacks_curve(model, x, y, attack: str, steps: int) -> np.ndarray:
    import torchattacks

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    with torch.inference_mode():
        ok = (model(xt).argmax(1) == yt).numpy()
    acc = []
    for e in EPS:
        if attack == "fgsm":
            atk = torchattacks.FGSM(model, eps=float(e))
        elif attack == "apgd":
            atk = torchattacks.APGD(model, norm="Linf", eps=float(e), steps=steps, n_restarts=1, loss="ce", seed=0)
        else:
            atk = torchattacks.PGD(model, eps=float(e), alpha=2.5 * float(e) / steps, steps=steps, random_start=False)
        right = []
        for i in range(0, len(x), 256):
            adv = atk(xt[i:i + 256], yt[i:i + 256])
            with torch.inference_mode():
                right.append((model(adv).argmax(1) == yt[i:i + 256]).numpy())
        acc.append((np.concatenate(right) & ok).mean())
    return np.array(acc)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def curves(n: int) -> None:
    from explorer.evaluation.data import load_set
    from explorer.inference import model_cache

    model = model_cache().get("mnist-cnn")
    s = load_set("mnist", n)
    x, y = s.images, s.labels
    rows = []
    for attack, steps, label in (("fgsm", 1, "FGSM"), ("pgd", 10, "PGD-10"), ("apgd", 10, "APGD-CE-10")):
        runs = [("ours (curve)", ours)]
        if attack != "fgsm":
            runs.append(("ours, every row", ours_every_row))
        runs.append(("ours (+ flip-ε bisection)", ours_refined))
        if attack != "apgd":
            runs.append(("Foolbox 3.3.4", foolbox_curve))
        runs.append(("torchattacks loop", torchattacks_curve))
        res = {name: timed(fn, model, x, y, attack, steps) for name, fn in runs}  # one after the other, same data
        peer = res["Foolbox 3.3.4"][0] if "Foolbox 3.3.4" in res else res["torchattacks loop"][0]
        for name, (sec, acc) in res.items():
            rows.append([label, name, f"{sec:.2f}", f"{len(x) * len(EPS) / sec:,.0f}",
                         f"{peer / sec:.2f}x", " ".join(f"{a * 100:.1f}" for a in acc)])
    print(f"\n1. Robust-accuracy curves, MNIST CNN, N = {len(x)}, 8 ε in [0, 0.3] "
          f"(torch threads: {torch.get_num_threads()})")
    print(format_table(["attack", "implementation", "seconds", "images×ε / s", "vs Foolbox (APGD: vs torchattacks)",
                        "accuracy % per ε"], rows, "llrrrl"))


def scaling(n: int) -> None:
    from explorer.runs import LOCAL
    from explorer.runs.evaluate import EvaluateRequest
    from explorer.runs.ray_executor import RayExecutor

    req = dict(models=("mnist-cnn",), attacks=("pgd",), eps=(0.0, 0.3), dataset="mnist", n=n, steps=40,
               alpha=0.01, probe=False, refine_rounds=0, shard_size=max(1, n // 8))
    ex = RayExecutor(address="", num_cpus=2)
    ex.start()
    # warm: every worker loads the model once (the process-wide model cache), then real shards
    fresh_store()
    EvaluateRequest(**{**req, "n": 16, "shard_size": 4, "seed": 99}).execute(ex)
    fresh_store()
    t_ray, ev_ray = timed(EvaluateRequest(**req).execute, ex)
    fresh_store()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t_local, ev_local = timed(EvaluateRequest(**req).execute, LOCAL)
    finally:
        torch.set_num_threads(threads)
    same = np.array_equal(ev_ray.pred, ev_local.pred)
    eff = t_local / (2 * t_ray)
    acc = ev_local.accuracy()[0, 0, 1] * 100
    print(f"\n2. PGD-40 (step 0.01, ε = 0.3, no flip-ε bisection) on {n} MNIST images, mnist-cnn "
          f"(accuracy {acc:.1f}%)")
    print(format_table(["executor", "seconds", "speed-up", "scaling efficiency", "same numbers"], [
        ["local, 1 thread", f"{t_local:.1f}", "1.00x", "", ""],
        ["Ray, 2 workers", f"{t_ray:.1f}", f"{t_local / t_ray:.2f}x", f"{eff:.2f}", "yes" if same else "NO"],
    ]))
    # 3. overhead on a tiny job
    tiny = dict(models=("digits-softmax",), attacks=("fgsm",), eps=(0.0, 0.2), n=20, probe=False)
    times = {"local": [], "ray": []}
    torch.set_num_threads(1)  # like a Ray worker: no thread oversubscription on a shared machine
    try:
        for i in range(3):
            for name, executor in (("local", LOCAL), ("ray", ex)):
                fresh_store()
                t, _ = timed(EvaluateRequest(**{**tiny, "seed": 1000 + 10 * i + (name == "ray")}).execute, executor)
                times[name].append(t)
    finally:
        torch.set_num_threads(threads)
    lm, rm = np.median(times["local"]), np.median(times["ray"])
    print("\n3. Ray overhead on a tiny job (20 digits, FGSM, 2 ε, 1 shard; warm Ray; local with 1 thread; median of 3)")
    print(format_table(["executor", "seconds", "overhead"], [["local", f"{lm:.3f}", ""],
                                                               ["Ray", f"{rm:.3f}", f"+{(rm - lm) * 1000:.0f} ms"]]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000, help="images of the curve benchmark")
    p.add_argument("--pgd40-n", type=int, default=2000, help="images of the Ray scaling benchmark")
    p.add_argument("--skip-curves", action="store_true")
    p.add_argument("--skip-ray", action="store_true")
    p.add_argument("--quick", action="store_true", help="500 images for the curves and the scaling run")
    a = p.parse_args()
    if a.quick:
        a.n, a.pgd40_n = min(a.n, 500), min(a.pgd40_n, 500)
    from explorer.models import prefetch

    prefetch("mnist-cnn")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (shared: ratios within this run hold)")
    if not a.skip_curves:
        curves(a.n)
    if not a.skip_ray:
        scaling(a.pgd40_n)


if __name__ == "__main__":
    main()
