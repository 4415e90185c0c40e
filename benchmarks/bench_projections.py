"""Benchmark the embedding-projection pipeline and print a Markdown table.

    python benchmarks/bench_projections.py [--n-first 1000] [--n-map 2000] [--repeats 3] [--skip-cold] [--threads N]

``--threads N`` caps torch, OpenMP and BLAS threads (set before numpy/torch are imported, inherited by the
cold-start subprocesses). On a shared 2-core machine under load, 2 threads spin-wait for each other and run
10-50x slower than 1: compare runs only at the same thread count and load.

Rows:
* time to the first projection (PCA) for ~1,000 digits: features of clean + adversarial images, PCA, the
  k-NN / distance metrics (the adversarial images come from an inline FGSM, timed on its own row);
* UMAP and t-SNE for N = 2,000 (MNIST held-out images when present, else all 1,797 digits) in a warm process;
* UMAP's cold start in a fresh subprocess: with the user's numba cache, and with an empty one;
* feature-extraction throughput: the digits CNN, and a randomly initialised ResNet-18 (channels_last).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if "--threads" in sys.argv:  # before numpy / torch / sklearn start their thread pools
    _n = sys.argv[sys.argv.index("--threads") + 1]
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[_var] = _n
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
if "EXPLORER_MNIST_DIR" not in os.environ and SHARED_MNIST.is_dir():
    os.environ["EXPLORER_MNIST_DIR"] = str(SHARED_MNIST)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

ROWS: list[tuple[str, str, str]] = []


def row(what: str, value: str, note: str = "") -> None:
    ROWS.append((what, value, note))
    print(f"  {what}: {value} {note}", file=sys.stderr, flush=True)


def timed(fn, repeats: int = 1):
    """(median seconds, last result) over ``repeats`` runs."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def fgsm(model, x: np.ndarray, y: np.ndarray, eps: float, batch: int = 256) -> np.ndarray:
    out = []
    for i in range(0, len(x), batch):
        xt = torch.from_numpy(x[i: i + batch]).clone().requires_grad_(True)
        loss = F.cross_entropy(model(xt), torch.from_numpy(y[i: i + batch]), reduction="sum")
        (g,) = torch.autograd.grad(loss, xt)
        out.append((xt.detach() + eps * g.sign()).clamp(0, 1).numpy())
    return np.concatenate(out).astype(np.float32)


def bench_first_projection(n: int, repeats: int) -> None:
    from explorer.inference import predict_logits
    from explorer.models import load_model
    from explorer.projections import extract_features, layer_growth, load_images, project, summarize

    t, model = timed(lambda: load_model("digits-cnn", device="cpu"))
    row("load digits-cnn (first call)", f"{t * 1000:.0f} ms")
    t, data = timed(lambda: load_images("digits", model, n=n), repeats)
    row(f"load {len(data)} digits", f"{t * 1000:.0f} ms")
    t, adv = timed(lambda: fgsm(model, data.images, data.labels, 0.2), repeats)
    row(f"FGSM ε=0.2 on {len(data)} digits (inline, not part of this library)", f"{t * 1000:.0f} ms")

    def first():
        fc = extract_features(model, data.images, batch_size=256)
        fa = extract_features(model, adv, batch_size=256)
        p = project(fc, fa, "pca", seed=0)
        pred = predict_logits(model, adv, batch_size=256).argmax(1)
        s = summarize(fc, fa, data.labels, pred, p.clean_2d, p.adv_2d)
        return fc, fa, p, s

    # one untimed pass: torch/sklearn lazily initialise kernels on first use
    first()
    parts = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        fc = extract_features(model, data.images, batch_size=256)
        fa = extract_features(model, adv, batch_size=256)
        t1 = time.perf_counter()
        p = project(fc, fa, "pca", seed=0)
        t2 = time.perf_counter()
        pred = predict_logits(model, adv, batch_size=256).argmax(1)
        s = summarize(fc, fa, data.labels, pred, p.clean_2d, p.adv_2d)
        t3 = time.perf_counter()
        for k, v in (("features", t1 - t0), ("pca", t2 - t1), ("metrics", t3 - t2), ("total", t3 - t0)):
            parts.setdefault(k, []).append(v)
    med = {k: statistics.median(v) for k, v in parts.items()}
    row(f"  features, clean + adversarial ({len(data)} + {len(data)}, penultimate 128-d)", f"{med['features'] * 1000:.0f} ms")
    row("  PCA (fit on clean, transform adversarial)", f"{med['pca'] * 1000:.0f} ms")
    row("  metrics (k-NN agreement in features and map, nearest-clean distances)", f"{med['metrics'] * 1000:.0f} ms")
    row(f"**time to first projection, PCA, N={len(data)}** (features + PCA + metrics)", f"**{med['total'] * 1000:.0f} ms**")
    t, g = timed(lambda: layer_growth(model, data.images, adv, seed=0), repeats)
    row(f"layer growth, {len(g.layers)} layers, N={len(data)} (adversarial vs noise)", f"{t * 1000:.0f} ms",
        f"(last layer ×{g.ratio[-1]:.2f} noise)")
    row("k-NN agreement (k=10, features): adversarial with true class / with predicted class / clean baseline",
        f"{s.knn_features.true_class:.2f} / {s.knn_features.adv_class:.2f} / {s.knn_features.clean_baseline:.2f}")
    row("nearest-clean distance, median adversarial / median clean-clean", f"×{s.distances.ratio:.2f}")


def map_features(n: int):
    """Penultimate features of n clean images and their FGSM versions (MNIST CNN when MNIST is present)."""
    from explorer.inference import predict_logits
    from explorer.models import availability, load_model
    from explorer.models.data import find_mnist
    from explorer.projections import extract_features, load_images

    use_mnist = find_mnist() is not None and availability("mnist-cnn").loadable
    model = load_model("mnist-cnn" if use_mnist else "digits-cnn", device="cpu")
    data = load_images("mnist" if use_mnist else "digits", model, n=n)
    adv = fgsm(model, data.images, data.labels, 0.2 if use_mnist else 0.2)
    fc = extract_features(model, data.images, batch_size=256)
    fa = extract_features(model, adv, batch_size=256)
    pred = predict_logits(model, adv, batch_size=256).argmax(1)
    return model.model_id, data.labels, pred, fc, fa


def bench_maps(n: int, repeats: int) -> None:
    from explorer.projections import knn_agreement, project, wait_umap, warm_umap_in_background

    warm_umap_in_background()
    model_id, y, pred, fc, fa = map_features(n)
    t0 = time.perf_counter()
    wait_umap()
    row("UMAP warm-up left after loading data (background thread, this process)",
        f"{time.perf_counter() - t0:.1f} s")
    for method, params in (("pca", {}), ("umap", {}), ("tsne", {})):
        t, p = timed(lambda: project(fc, fa, method, seed=0, **params), repeats)
        k = knn_agreement(p.clean_2d, p.adv_2d, y, pred, k=10, space="map")
        joint = " (fitted on clean + adversarial)" if method == "tsne" else " (fit clean, transform adversarial)"
        row(f"{p.label}, N={len(fc)} + {len(fa)} {fc.shape[1]}-d {model_id} features{joint}", f"{t:.2f} s",
            f"(10-NN agreement in the map: clean {k.clean_baseline:.2f}, adversarial→predicted {k.adv_class:.2f})")


COLD = """
import time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
from explorer.projections.warm import import_umap
import_umap()
t1 = time.perf_counter()
from explorer.projections.warm import _warm, umap_error
_warm()
t2 = time.perf_counter()
import numpy as np
from explorer.projections import project
x = np.random.default_rng(0).standard_normal((1000, 128)).astype(np.float32)
project(x, x[:100], "umap", seed=0)
t3 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {t3 - t2:.2f} {umap_error()}")
"""


def bench_cold(empty_cache: bool) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryDirectory() as tmp:
        if empty_cache:
            env["NUMBA_CACHE_DIR"] = tmp
        out = subprocess.run([sys.executable, "-c", COLD], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=900)
    if out.returncode != 0:
        row("UMAP cold start", "failed", out.stderr.strip().splitlines()[-1] if out.stderr else "")
        return
    imp, warm, fit = out.stdout.split()[:3]
    which = "empty numba cache" if empty_cache else "user's numba cache"
    row(f"UMAP cold start, new process, {which}: `import umap` / warm-up fit / then N=1000 fit",
        f"{float(imp):.1f} s / {float(warm):.1f} s / {float(fit):.1f} s")


def bench_throughput(repeats: int) -> None:
    import torchvision

    from explorer.models import Classifier, load_model
    from explorer.models.imagenet import IMAGENET_MEAN, IMAGENET_STD
    from explorer.projections import extract_features

    model = load_model("digits-cnn", device="cpu")
    x = np.random.default_rng(0).random((2048, 1, 8, 8), dtype=np.float32)
    extract_features(model, x[:256], batch_size=256)
    t, _ = timed(lambda: extract_features(model, x, batch_size=256), repeats)
    row("feature extraction, digits-cnn penultimate, batch 256", f"{len(x) / t:,.0f} images/s")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torchvision.models.resnet18(weights=None)
    net.eval()
    resnet = Classifier(net, model_id="resnet18-random", class_names=[str(i) for i in range(1000)],
                        input_shape=(3, 224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD, channels_last=True)
    xi = np.random.default_rng(0).random((64, 3, 224, 224), dtype=np.float32)
    extract_features(resnet, xi[:8], batch_size=8)
    for layer in ("avgpool", "layer2"):
        t, f = timed(lambda: extract_features(resnet, xi, layer, batch_size=32), repeats)
        row(f"feature extraction, ResNet-18 (random weights, channels_last) {layer} → {f.shape[1]}-d, batch 32",
            f"{len(xi) / t:,.1f} images/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-first", type=int, default=1000)
    ap.add_argument("--n-map", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-cold", action="store_true", help="skip the fresh-process UMAP timings")
    ap.add_argument("--threads", type=int, default=None, help="cap torch / OpenMP / BLAS threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {load:.1f} at start", file=sys.stderr)
    if not args.skip_cold:  # first, while this process has not compiled anything yet (less contention)
        bench_cold(empty_cache=False)
        bench_cold(empty_cache=True)
    bench_first_projection(args.n_first, args.repeats)
    bench_throughput(args.repeats)
    bench_maps(args.n_map, max(1, args.repeats - 2))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs, "
          f"load average {load:.1f} at the end\n")
    print("| what | time | note |\n|---|---|---|")
    for what, value, note in ROWS:
        print(f"| {what} | {value} | {note} |")


if __name__ == "__main__":
    main()
