"""Decision boundaries: the 2-D lab's grid and training, and image-space slices against a plain forward.

    python benchmarks/bench_boundaries.py [--repeats 15] [--models digits-cnn digits-mlp resnet18-random]

Rows:
* the 200 x 200 toy grid (p(blue) + input gradients in one batched forward/backward + the 0.5 contour), the
  figure data (decimated quiver + contour polyline), and the whole two-panel ``go.Figure``;
* live training of the MLP (300 full-batch Adam steps: standard, FGSM and PGD-5 adversarial training) and the
  margins of 300 points;
* slice throughput: ``evaluate_plane`` (images built with one ``addmm`` per batch, clipped, forward under
  inference mode, softmax/argmax) against a plain batched forward of the same, pre-built images at the same batch
  size: ratio = plain time / slice time, in wall time (the median over adjacent pairs run in alternating order)
  and in the thread's CPU time (medians; blind to preemption on a loaded machine); >= 0.9 means no per-point
  Python overhead;
  Small models are timed at 41 x 41 and 101 x 101: a slice has a fixed ~0.4 ms of set-up and post-processing
  (directions in, class / max-probability maps out), visible only where the forward itself is a few ms;
* a 41 x 41 slice of the digits CNN end to end (directions + evaluation), and the slice figure.

Medians after one warm-up, in wall time and in this thread's CPU time (``time.thread_time``: what the work
costs without the time spent preempted on a shared machine; exact with OMP_NUM_THREADS=1, an undercount with
more intra-op threads). Times on a shared machine are noisy; ratios within one run hold.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import resnet18_random  # noqa: E402
from explorer.boundaries.grid import grid  # noqa: E402
from explorer.boundaries.points import margins  # noqa: E402
from explorer.boundaries.slices import evaluate_plane, plane_coords, plane_directions  # noqa: E402
from explorer.boundaries.toy import AdvTrainConfig, MLPConfig, ToyDataConfig, make_dataset, train_mlp  # noqa: E402
from explorer.models import Classifier, load_model  # noqa: E402
from explorer.plots.boundaries import quiver_arrows, segments_xy, slice_figure, two_panel_figure  # noqa: E402


CPU: dict[str, float] = {}


def timeit(fn, repeats: int) -> float:
    """Median wall time; the median CPU time of this thread goes to ``CPU[fn.__name__]``."""
    fn()  # warm-up
    ts, cs = [], []
    for _ in range(repeats):
        c = time.thread_time()
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
        cs.append(time.thread_time() - c)
    CPU[getattr(fn, "__name__", "?")] = statistics.median(cs)
    return statistics.median(ts)


def cpu_note(fn) -> str:
    return f"CPU {CPU[fn.__name__] * 1000:.1f} ms"


def get_model(name: str) -> Classifier:
    return resnet18_random() if name == "resnet18-random" else load_model(name)


def row(table: list, what: str, ms: float, target: str = "", note: str = "") -> None:
    table.append((what, f"{ms * 1000:.1f} ms", target, note))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--models", nargs="*", default=["digits-cnn", "digits-mlp", "resnet18-random"])
    args = ap.parse_args()
    r = args.repeats
    table: list[tuple[str, str, str, str]] = []

    # ---------------------------------------------------------------------------------- 2-D lab
    data = make_dataset(ToyDataConfig(name="moons", n=300))
    trained = train_mlp(data, MLPConfig())
    model = trained.model
    def toy_grid():
        grid(model, resolution=200)

    t_grid = timeit(toy_grid, r)
    g = grid(model, resolution=200)

    def figure_data():
        segs, rel = quiver_arrows(g.xs, g.ys, g.grad, every=10)
        segments_xy(segs.reshape(-1, 2, 2))
        g.contour_xy()

    t_fd = timeit(figure_data, r)

    def grid_and_data():
        gg = grid(model, resolution=200)
        segs, rel = quiver_arrows(gg.xs, gg.ys, gg.grad, every=10)
        segments_xy(segs.reshape(-1, 2, 2))
        gg.contour_xy()

    t_total = timeit(grid_and_data, r)

    def figure():
        two_panel_figure(g.xs, g.ys, g.prob, g.grad, g.contour, data.x, data.y)

    t_fig = timeit(figure, r)

    def everything():
        gg = grid(model, resolution=200)
        two_panel_figure(gg.xs, gg.ys, gg.prob, gg.grad, gg.contour, data.x, data.y)

    t_all = timeit(everything, r)
    row(table, "toy grid 200x200: p(blue) + ∇ + 0.5 contour", t_grid, "",
        f"{cpu_note(toy_grid)}; one fwd + one bwd over 40,000 points")
    row(table, "figure data (quiver 20x20 + contour polyline)", t_fd, "", cpu_note(figure_data))
    row(table, "grid + figure data", t_total, "< 100 ms",
        f"{cpu_note(grid_and_data)} " + ("PASS" if t_total < 0.1 else "over"))
    row(table, "two-panel go.Figure from the arrays", t_fig, "", cpu_note(figure))
    row(table, "grid + two-panel go.Figure", t_all, "< 100 ms",
        f"{cpu_note(everything)} " + ("PASS" if t_all < 0.1 else "over"))

    rt = max(3, r // 3)
    for name, adv in (("standard", AdvTrainConfig()), ("FGSM adv.", AdvTrainConfig("fgsm", 0.3)),
                      ("PGD-5 adv.", AdvTrainConfig("pgd", 0.3, pgd_steps=5))):
        def train(adv=adv):
            train_mlp(data, MLPConfig(steps=300), adv)

        t = timeit(train, rt)
        row(table, f"train MLP 2x32, 300 steps, {name}", t, "< 1 s" if name == "standard" else "",
            cpu_note(train) + ("" if name != "standard" else (" PASS" if t < 1 else " FAIL")))

    def margin_run():
        margins(model, data.x, data.y, "linf")

    t_m = timeit(margin_run, r)
    row(table, "margins of 300 points (64-point scan + 20 bisections)", t_m, "", cpu_note(margin_run))

    # ---------------------------------------------------------------------------- image slices
    for name in args.models:
        m = get_model(name)
        shape = m.input_shape
        small = shape[1] <= 32
        x = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
        plane = plane_directions(m, x, None, "adversarial/random", seed=0)
        for res in ((41, 101) if small else (11,)):
            bs = 256 if small else 32
            coords = plane_coords(0.3, res)
            a, b = np.meshgrid(coords, coords)
            imgs = torch.from_numpy(np.clip(x[None] + a.reshape(-1, 1, 1, 1) * plane.d1[None]
                                            + b.reshape(-1, 1, 1, 1) * plane.d2[None], 0, 1).astype(np.float32))

            def plain():
                with torch.inference_mode():
                    for i in range(0, len(imgs), bs):
                        m(imgs[i: i + bs])

            def sliced():
                evaluate_plane(m, x, plane.d1, plane.d2, 0.3, res, batch_size=bs)

            reps = 3 * r if small else 3
            plain()
            sliced()
            tp, ts, cp, cs = [], [], [], []
            for k in range(reps):
                for f in ((plain, sliced) if k % 2 == 0 else (sliced, plain)):  # alternate the order
                    c = time.thread_time()
                    t = time.perf_counter()
                    f()
                    (tp if f is plain else ts).append(time.perf_counter() - t)
                    (cp if f is plain else cs).append(time.thread_time() - c)
            tp_m, ts_m = statistics.median(tp), statistics.median(ts)
            ratio = statistics.median([p / q for p, q in zip(tp, ts)])  # adjacent pairs: robust to drifting load
            # CPU time of this thread: blind to time spent preempted on a shared machine (exact only for one
            # intra-op thread, OMP_NUM_THREADS=1).
            ratio_cpu = statistics.median(cp) / statistics.median(cs)
            n = res * res
            row(table, f"{name}: plain batched forward, {n} images (bs {bs})", tp_m, "",
                f"{n / tp_m:,.0f} img/s, CPU {statistics.median(cp) * 1000:.1f} ms")
            row(table, f"{name}: evaluate_plane {res}x{res} (bs {bs})", ts_m, "ratio >= 0.9",
                f"{n / ts_m:,.0f} img/s, CPU {statistics.median(cs) * 1000:.1f} ms; ratio {ratio:.2f} wall, "
                f"{ratio_cpu:.2f} CPU " + ("PASS" if max(ratio, ratio_cpu) >= 0.9 else "FAIL"))

    m = load_model("digits-cnn")
    from explorer.models.data import load_digits_split

    split = load_digits_split()
    xd, yd = split.x_test[0], int(split.y_test[0])

    def slice41():
        p = plane_directions(m, xd, yd, "adversarial/random", seed=0)
        return evaluate_plane(m, xd, p.d1, p.d2, 0.4, 41)

    t41 = timeit(slice41, r)
    row(table, "digits-cnn 41x41 slice end to end (directions + evaluation)", t41, "< 1 s",
        f"{cpu_note(slice41)} " + ("PASS" if t41 < 1 else "FAIL"))
    s = slice41()

    def slice_fig():
        slice_figure(s.coords, s.pred, m.class_names, max_prob=s.max_prob, eps=0.2, markers={"FGSM": (0.2, 0.0)})

    t_sf = timeit(slice_fig, r)
    row(table, "slice figure 41x41 (hover text for every cell)", t_sf, "", cpu_note(slice_fig))

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cpu count {os.cpu_count()}, "
          f"median of {r} runs after a warm-up\n")
    w = max(len(t[0]) for t in table)
    print(f"| {'what'.ljust(w)} | time | target | note |")
    print(f"|{'-' * (w + 2)}|---|---|---|")
    for what, ms, target, note in table:
        print(f"| {what.ljust(w)} | {ms} | {target} | {note} |")


if __name__ == "__main__":
    main()
