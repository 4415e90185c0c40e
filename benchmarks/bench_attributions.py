"""Batched attribution methods against one backward pass per sample and against Captum, ratios in one run.

    python benchmarks/bench_attributions.py [--repeats 20] [--big-repeats 3] [--models digits-cnn resnet18-random]

SmoothGrad (n = 50) and Integrated Gradients (64 Gauss-Legendre steps) on one image of the digits CNN and of a
randomly initialised torchvision ResNet-18 (224 x 224). Columns: our batched implementation (auto chunk size),
the same code with ``batch_size=1`` (one forward/backward per noisy copy or path point), and Captum 0.9.0
(``NoiseTunnel(Saliency(abs=False))`` with ``nt_samples_batch_size``, ``IntegratedGradients`` with
``internal_batch_size``, both at our chunk size; Captum's global-RNG noise is seeded in a fork, which makes it
draw the same noise as ours). Medians of the timed runs after one warm-up, the variants timed in rotating order
each round. Last columns: max |difference| relative to the largest attribution.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import resnet18_random, timed_interleaved  # noqa: E402
from explorer.attributions import integrated_gradients, smoothgrad  # noqa: E402
from explorer.attributions._common import chunk_size  # noqa: E402
from explorer.attributions.smoothgrad import noise_scale  # noqa: E402
from explorer.models import Classifier, load_model  # noqa: E402

N_SAMPLES, SIGMA, STEPS, SEED = 50, 0.15, 64, 0


def sample_image(model: Classifier) -> torch.Tensor:
    if model.input_shape == (1, 8, 8):
        from explorer.models.data import load_digits_split

        return torch.from_numpy(load_digits_split().x_test[:1])
    from skimage import data
    from skimage.transform import resize

    cat = resize(data.chelsea(), (224, 224), anti_aliasing=True).astype(np.float32)
    return torch.from_numpy(cat).permute(2, 0, 1)[None].contiguous()


def captum_smoothgrad(model, x, target, chunk):
    from captum.attr import NoiseTunnel, Saliency

    std = float(noise_scale(x, SIGMA).flatten()[0])  # Captum's stdevs are absolute
    with torch.random.fork_rng(devices=[]):  # Captum draws noise from the global RNG
        torch.manual_seed(SEED)
        out = NoiseTunnel(Saliency(model)).attribute(
            x.clone(), nt_type="smoothgrad", nt_samples=N_SAMPLES, nt_samples_batch_size=chunk, stdevs=std,
            target=target, abs=False)  # Saliency's default abs=True would average |gradient|
    return out.detach().numpy()


def captum_ig(model, x, target, chunk):
    from captum.attr import IntegratedGradients

    out = IntegratedGradients(model).attribute(x.clone(), baselines=torch.zeros_like(x), target=target,
                                               n_steps=STEPS, method="gausslegendre", internal_batch_size=chunk)
    return out.detach().numpy()


def make_cases(model, x, target, chunk):
    """(name, ours batched, ours one sample per pass, Captum) for one model and image."""
    return [
        ("SmoothGrad n=50",
         lambda: smoothgrad(model, x, target, N_SAMPLES, SIGMA, SEED),
         lambda: smoothgrad(model, x, target, N_SAMPLES, SIGMA, SEED, batch_size=1),
         lambda: captum_smoothgrad(model, x, target, chunk)),
        ("IG 64 steps",
         lambda: integrated_gradients(model, x, target, STEPS),
         lambda: integrated_gradients(model, x, target, STEPS, batch_size=1),
         lambda: captum_ig(model, x, target, chunk)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per case on small models")
    parser.add_argument("--big-repeats", type=int, default=3, help="timed runs per case on ResNet-18")
    parser.add_argument("--models", nargs="+", default=["digits-cnn", "resnet18-random"])
    args = parser.parse_args()
    rows = []
    for model_id in args.models:
        model = resnet18_random() if model_id == "resnet18-random" else load_model(model_id, "cpu")
        x = sample_image(model)
        with torch.no_grad():
            target = int(model(x).argmax(1))
        chunk = chunk_size(x.shape[1:])
        repeats = args.big_repeats if model.input_shape[1] >= 64 else args.repeats
        cases = make_cases(model, x, target, chunk)
        for name, batched, loop, captum in cases:
            (t_b, t_l, t_c), (a_b, a_l, a_c) = timed_interleaved([batched, loop, captum], repeats, rotate=True)
            scale = float(np.abs(a_b).max())
            diff_loop = float(np.abs(a_b - a_l).max()) / scale
            diff_captum = float(np.abs(a_b - a_c).max()) / scale  # SmoothGrad: Captum, seeded alike, draws our noise
            rows.append((model_id, name, chunk, t_b, t_l, t_c, diff_loop, diff_captum))
            print(f"  {model_id} {name}: batched {t_b:.3f}s, loop {t_l:.3f}s, captum {t_c:.3f}s", file=sys.stderr)
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, CPU, medians\n")
    print("| model | method | chunk | ours batched | one backward per sample | Captum (same chunk) "
          "| loop / batched | Captum / batched | max rel. diff vs loop | vs Captum |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model_id, name, chunk, t_b, t_l, t_c, d_l, d_c in rows:
        print(f"| {model_id} | {name} | {chunk} | {t_b * 1000:.0f} ms | {t_l * 1000:.0f} ms | {t_c * 1000:.0f} ms "
              f"| ×{t_l / t_b:.2f} | ×{t_c / t_b:.2f} | {d_l:.1e} | {d_c:.1e} |")


if __name__ == "__main__":
    main()
