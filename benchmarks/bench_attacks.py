"""Attack benchmarks: batched ε sweeps vs one call per ε, and throughput against torchattacks.

    python benchmarks/bench_attacks.py [--repeats 5] [--quick] [--threads N] [--device cpu]

Everything is timed in ONE run, variants interleaved round-robin (A B C A B C ...) so that noise from other
processes on a shared machine hits them alike; each figure is a median. Tables:

1. ε sweep of 32 values, one image, FGSM: ``sweep`` (one forward+backward, then batched inference-mode forwards)
   against 32 separate ``fgsm`` calls, and against the floor: a bare forward+backward plus the same batched
   forwards, written inline with no bookkeeping. With bisection on, the floor also gets the probe forwards.
   Digits CNN (1 x 8 x 8) and torchvision ResNet-18 with random weights (3 x 224 x 224, ImageNet mean/std in the
   wrapper), both ``channels_last``. Targets: ≥ 6x (digits), ≥ 3x (ResNet-18), within 1.2x of the floor.
2. PGD-10 ε sweep (32 values, digits; ``--full`` adds ResNet-18): one batched call vs 32 calls.
3. FGSM and PGD-10 (L∞, no random start) throughput on the same model and batch against torchattacks
   (``pip install torchattacks --no-deps``): ours with ``trace=False`` (the same work as torchattacks: the
   adversarial batch only) and with the default trace (adds the per-step record and a final classification).
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import format_table, resnet18_random, timed_interleaved  # noqa: E402
from explorer.attacks import AttackConfig, fgsm, pgd, sweep  # noqa: E402
from explorer.models.wrapper import Classifier  # noqa: E402


def ms(t: float) -> str:
    return f"{t * 1e3:.1f} ms" if t < 10 else f"{t:.1f} s"


def digits_cnn(device: torch.device) -> Classifier:
    from explorer.models import load_model

    return load_model("digits-cnn", str(device))


def sample_image(model: Classifier, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, int]:
    """A held-out digit for the digits CNN; a smooth random image for ResNet-18 (labelled as predicted)."""
    if model.input_shape == (1, 8, 8):
        from explorer.models.data import load_digits_split

        s = load_digits_split()
        return torch.from_numpy(s.x_test[:1].copy()).to(device), int(s.y_test[0])
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, 14, 14, generator=g)
    x = F.interpolate(small, size=model.input_shape[1:], mode="bilinear", align_corners=False).clamp(0, 1).to(device)
    with torch.inference_mode():
        y = int(model(x).argmax(1))
    return x, y


def floor_fn(model: Classifier, x: torch.Tensor, y: int, eps: np.ndarray, probes: Sequence[int] = ()):
    """One bare forward+backward, then the same batched forwards (and probe forwards) with nothing else."""
    yt = torch.tensor([y], device=x.device)
    e = torch.as_tensor(eps, dtype=torch.float32, device=x.device).view(-1, 1, 1, 1)
    pe = [torch.linspace(float(eps[0]), float(eps[-1]), k, device=x.device).view(-1, 1, 1, 1) for k in probes]

    def run():
        xg = x.clone().requires_grad_(True)
        g = torch.autograd.grad(F.cross_entropy(model(xg), yt, reduction="sum"), xg)[0].sign()
        with torch.inference_mode():
            model(torch.clamp(x + e * g, 0, 1)).argmax(1).cpu()
            for p in pe:
                model(torch.clamp(x + p * g, 0, 1)).argmax(1).cpu()
    return run


def probe_batches(model, x, y, eps) -> list[int]:
    """The probe batches the sweep's bisection evaluates for this image (recorded, replayed by the floor)."""
    import explorer.attacks.sweep  # noqa: F401  (the module: the package attribute is the function)

    mod = sys.modules["explorer.attacks.sweep"]
    seen: list[int] = []
    original = mod._refine

    def spy(evaluate, *args, **kwargs):
        def recording(e, keep):
            seen.append(len(e))
            return evaluate(e, keep)
        return original(recording, *args, **kwargs)

    mod._refine = spy
    try:
        sweep(model, x, y, AttackConfig(attack="fgsm"), eps)
    finally:
        mod._refine = original
    return seen


def sweep_table(models: dict[str, Classifier], device: torch.device, repeats: int) -> tuple[str, list[str]]:
    rows, verdicts = [], []
    for name, model in models.items():
        x, y = sample_image(model, device)
        top = 16 / 255 if model.input_shape[0] == 3 else 0.5
        eps = np.linspace(0, top, 32)
        cfg = AttackConfig(attack="fgsm")
        probes = probe_batches(model, x, y, eps)
        reps = repeats * (10 if model.input_shape[0] == 1 else 1)  # milliseconds: afford many more runs
        t_sep, t_sw, t_floor, t_swr, t_floorr = timed_interleaved([
            lambda: [fgsm(model, x, y, float(e)).pred for e in eps],
            lambda: sweep(model, x, y, cfg, eps, refine=False),
            floor_fn(model, x, y, eps),
            lambda: sweep(model, x, y, cfg, eps, refine=True),
            floor_fn(model, x, y, eps, probes),
        ], reps)[0]
        target = 6.0 if model.input_shape[0] == 1 else 3.0
        rows.append([name, "32 fgsm calls", ms(t_sep), "", ""])
        rows.append([name, "sweep (grid only)", ms(t_sw), f"{t_sep / t_sw:.1f}x", f"{t_sw / t_floor:.2f}x"])
        rows.append([name, "  floor: fwd+bwd + batched fwd", ms(t_floor), f"{t_sep / t_floor:.1f}x", "1.00x"])
        rows.append([name, f"sweep + bisection ({sum(probes)} probes)", ms(t_swr), f"{t_sep / t_swr:.1f}x",
                     f"{t_swr / t_floorr:.2f}x"])
        rows.append([name, "  floor + the same probe fwds", ms(t_floorr), f"{t_sep / t_floorr:.1f}x", "1.00x"])
        verdicts.append(f"{name}: sweep speedup {t_sep / t_sw:.1f}x (target >= {target:g}x): "
                        f"{'OK' if t_sep / t_sw >= target else 'MISSED'}; grid sweep {t_sw / t_floor:.2f}x floor, "
                        f"with bisection {t_swr / t_floorr:.2f}x its floor (target <= 1.2x): "
                        f"{'OK' if max(t_sw / t_floor, t_swr / t_floorr) <= 1.2 else 'MISSED'}")
    headers = ["model", "variant (32 eps, 1 image)", "median", "speedup vs calls", "vs floor"]
    return format_table(headers, rows), verdicts


def pgd_sweep_table(models: dict[str, Classifier], device: torch.device, repeats: int) -> str:
    rows = []
    for name, model in models.items():
        x, y = sample_image(model, device)
        top = 16 / 255 if model.input_shape[0] == 3 else 0.5
        eps = np.linspace(0, top, 32)
        cfg = AttackConfig(attack="pgd", steps=10, random_start=False)
        t_sep, t_sw = timed_interleaved([
            lambda: [pgd(model, x, y, float(e), steps=10, random_start=False).pred for e in eps],
            lambda: sweep(model, x, y, cfg, eps, refine=False),
        ], repeats, warmup=1 if model.input_shape[0] == 1 else 0)[0]
        rows.append([name, "32 pgd-10 calls", ms(t_sep), ""])
        rows.append([name, "pgd-10 sweep, one batch", ms(t_sw), f"{t_sep / t_sw:.1f}x"])
    return format_table(["model", "variant (32 eps, 1 image)", "median", "speedup"], rows)


def peer_table(models: dict[str, tuple[Classifier, int]], device: torch.device, repeats: int) -> tuple[str, list[str]]:
    try:
        import torchattacks
    except ImportError:
        return "torchattacks not installed (pip install torchattacks --no-deps): skipped", []
    rows, verdicts = [], []
    for name, (model, batch) in models.items():
        g = torch.Generator().manual_seed(1)
        x = torch.rand(batch, *model.input_shape, generator=g).to(device)
        if model.input_shape == (1, 8, 8):
            from explorer.models.data import load_digits_split

            s = load_digits_split()
            x = torch.from_numpy(s.x_test[:batch].copy()).to(device)
        with torch.inference_mode():
            y = model(x).argmax(1).clone()
        y = y.clone()
        ta_f = torchattacks.FGSM(model, eps=8 / 255)
        ta_p = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=10, random_start=False)
        assert torch.equal(ta_f(x, y), fgsm(model, x, y, 8 / 255).adversarial)
        for attack, ta, ours in [
            ("FGSM", ta_f, lambda tr: fgsm(model, x, y, 8 / 255, trace=tr)),
            ("PGD-10", ta_p, lambda tr: pgd(model, x, y, 8 / 255, steps=10, alpha=2 / 255, random_start=False,
                                            trace=tr)),
        ]:
            reps = repeats * (10 if model.input_shape[0] == 1 else 1)
            t_ta, t_ours, t_trace = timed_interleaved(
                [lambda: ta(x, y), lambda: ours(False), lambda: ours(True)], reps)[0]
            rows.append([name, attack, batch, f"{batch / t_ta:.1f}", f"{batch / t_ours:.1f}",
                         f"{t_ta / t_ours:.2f}x", f"{batch / t_trace:.1f}", f"{t_ta / t_trace:.2f}x"])
            verdicts.append(f"{name} {attack}: ours {t_ta / t_ours:.2f}x torchattacks' speed "
                            f"({'not slower' if t_ours <= t_ta * 1.02 else 'SLOWER'}; with trace {t_ta / t_trace:.2f}x)")
    head = ["model", "attack", "batch", "torchattacks img/s", "ours img/s", "ours vs ta",
            "ours+trace img/s", "ours+trace vs ta"]
    return format_table(head, rows), verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, no ResNet-18 PGD")
    ap.add_argument("--full", action="store_true", help="also the ResNet-18 PGD-10 sweep (slow on a CPU)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = 2 if args.quick else args.repeats
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, device {device}, "
          f"{torch.get_num_threads()} threads, medians of {repeats} interleaved runs "
          f"({10 * repeats} for the digits CNN)\n")
    digits, resnet = digits_cnn(device), resnet18_random(channels_last=True).to(device)

    print("1. FGSM eps sweep, 32 eps, one image")
    tab, verdicts = sweep_table({"digits-cnn": digits, "resnet18": resnet}, device, repeats)
    print(tab)
    print("\n".join(verdicts))

    print("\n2. PGD-10 eps sweep, 32 eps, one image")
    pmodels = {"digits-cnn": digits} | ({"resnet18": resnet} if args.full else {})
    print(pgd_sweep_table(pmodels, device, 1 if not args.full else max(1, repeats // 2)))

    print("\n3. Throughput against torchattacks (same model, same batch, L-inf eps 8/255, PGD alpha 2/255)")
    tab, verdicts = peer_table({"digits-cnn": (digits, 64), "resnet18": (resnet, 8)}, device, repeats)
    print(tab)
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
