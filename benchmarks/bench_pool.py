"""Threads or processes for the job queue's workers? Same torch work, side by side, on this machine.

Work item: one PGD-10 ε sweep (32 ε, one MNIST image, ``explorer.attacks.sweep``) on the built-in mnist-cnn
(or digits-cnn where MNIST is absent), plus a ResNet-18-sized item (random weights: forward + backward w.r.t. the
input, batch 4, 224 px) to see a photo model's cost. Each configuration runs the same K items:

* serial, torch's default threads;
* a thread pool of 2 workers, torch intra-op threads 1 (what ``EXPLORER_TORCH_THREADS=1`` gives) and 2;
* a process pool of 2 workers (spawn), torch threads 1: cold (a fresh pool: interpreter + torch import + model
  load in each process, what a pool pays after every restart or per-job process) and warm (the same pool's
  second batch), results pickled back.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_pool.py [--items 8]``. Prints wall seconds and ratios to
the thread pool (threads=1), measured in one run (absolute numbers are noisy on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_MODEL = None


def _mnist_model_id() -> str:
    from explorer.models import Status, availability

    return "mnist-cnn" if availability("mnist-cnn").status == Status.AVAILABLE else "digits-cnn"


def _model(kind: str):
    global _MODEL
    if _MODEL is None or _MODEL[0] != kind:
        if kind == "resnet":
            import torch
            from torchvision.models import resnet18

            net = resnet18(weights=None)
            net.eval()
            for p in net.parameters():
                p.requires_grad_(False)
            _MODEL = (kind, net, torch)
        else:
            from explorer.models import load_model

            _MODEL = (kind, load_model(_mnist_model_id()), None)
    return _MODEL[1]


def work(item: tuple[str, int]) -> float:
    """One item of work; returns a number computed from the result (so nothing is optimised away)."""
    kind, seed = item
    import numpy as np
    import torch

    model = _model(kind)
    if kind == "resnet":
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(4, 3, 224, 224, generator=g).requires_grad_(True)
        loss = model(x).logsumexp(1).sum()
        (grad,) = torch.autograd.grad(loss, x)
        return float(grad.abs().mean())
    from explorer.attacks import AttackConfig, sweep

    rng = np.random.default_rng(seed)
    shape = model.input_shape
    x = rng.random(shape, dtype=np.float32)
    cfg = AttackConfig(attack="pgd", eps=0.3, steps=10, seed=seed)
    r = sweep(model, torch.from_numpy(x), 0, cfg, np.linspace(0, 0.3, 32), refine=False)
    return float(r.probs.sum())


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_threads(items, workers: int, threads: int) -> float:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        t = time.perf_counter()
        with cf.ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, items))
        return time.perf_counter() - t
    finally:
        torch.set_num_threads(before)


def run_serial(items) -> float:
    t = time.perf_counter()
    for it in items:
        work(it)
    return time.perf_counter() - t


def run_processes(items, workers: int) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    t = time.perf_counter()
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(1,)) as pool:
        list(pool.map(work, items))
        cold = time.perf_counter() - t
        t = time.perf_counter()
        list(pool.map(work, items))
        warm = time.perf_counter() - t
    return cold, warm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=8)
    a = ap.parse_args()
    import torch

    print(f"cores: {os.cpu_count()}, torch {torch.__version__}, default torch threads {torch.get_num_threads()}")
    for kind in ("mnist", "resnet"):
        items = [(kind, i) for i in range(a.items)]
        work(items[0])  # load the model and warm up in this process
        rows = []
        serial = run_serial(items)
        t1 = run_threads(items, 2, 1)
        t2 = run_threads(items, 2, 2)
        cold, warm = run_processes(items, 2)
        rows = [("serial, default threads", serial), ("2 threads, torch threads 1", t1),
                ("2 threads, torch threads 2", t2), ("2 processes (spawn), cold pool", cold),
                ("2 processes (spawn), warm pool", warm)]
        name = f"PGD-10 sweep of 32 ε on {_mnist_model_id()}" if kind == "mnist" else "ResNet-18 fwd+bwd, batch 4"
        print(f"\n{a.items} items of: {name}")
        print(f"{'configuration':34s} {'wall s':>8s} {'× 2 threads/1':>14s}")
        for label, s in rows:
            print(f"{label:34s} {s:8.2f} {s / t1:14.2f}")


if __name__ == "__main__":
    main()
