"""Foundation benchmark: cold start of the app, import cost of the home page, predict throughput.

    python benchmarks/bench_foundation.py [--quick] [--only start imports predict] [--compare CHECKOUT]

(a) start: seconds from launching ``streamlit run streamlit_app.py`` (a new server each time) to
    ``/_stcore/health`` answering ``ok``, to the home page's title visible in headless Chromium (its skeleton),
    to its prediction visible (its "Prediction" metric, or the clean image's caption in the layout with the
    live FGSM example), and to the page fully rendered (script finished, Plotly chart drawn); plus the same
    page opened by a second browser session on the already warm server. ``--compare CHECKOUT`` cold-starts
    another checkout too (e.g. main's, from ``git worktree add /tmp/main main``), alternating with this one
    in every round, and adds its column and the ratio.
(b) imports: what the home page imports, timed in a fresh interpreter, and which heavy modules got loaded,
    both after the imports and after a full run of the home page (AppTest, same fresh process).
    umap (and its numba / pynndescent), ray, and scikit-learn / scipy must not load there (pandas does, 0.2 s,
    with explorer.plots: see its docstring).
(c) predict: images/s of each available built-in model and of a random-weight ResNet-18, plain
    ``torch.no_grad()`` forward on contiguous NCHW against ``explorer.inference.predict_logits``
    (``torch.inference_mode()``, channels_last where the model uses it), run interleaved in one process.

Every number is a median over repetitions. Plain-text tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ROOT, format_table, resnet18_random, timed_interleaved  # noqa: E402

HEAVY = ["umap", "numba", "pynndescent", "captum", "foolbox", "ray", "sklearn", "sklearn.manifold", "scipy",
         "openTSNE", "torchvision"]
MUST_NOT_LOAD = {"umap", "numba", "pynndescent", "ray", "sklearn", "scipy"}
HOME_IMPORTS = "import streamlit, explorer.state, explorer.caching, explorer.plots.images, explorer.models"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def harness(root: Path = ROOT):
    """The browser test harness (server start/stop, readiness checks), loaded from ``root``'s
    tests/browser/conftest.py: its ``start_server`` runs ``streamlit run streamlit_app.py`` in ``root``."""
    spec = importlib.util.spec_from_file_location(f"browser_harness_{abs(hash(str(root)))}",
                                                  Path(root) / "tests" / "browser" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------------------------------- (a) start

def shown_prediction(page):
    """The home page's prediction of the clean image: a "Prediction" metric, or (the layout with the live
    FGSM example) the clean image's caption ``clean: “7” (100.0%)``."""
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Prediction", exact=True))
    caption = page.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"^\s*clean: “"))
    return metric.or_(caption).first


def page_title(page):
    """The home page's title: the first thing the page draws (its skeleton, where it has one)."""
    return page.get_by_role("heading", name="Adversarial Explorer").first


def model_picker(page):
    """The sidebar's model picker: drawn once the page's heavy imports (torch, the model registry) are done."""
    return page.get_by_test_id("stSidebar").get_by_role("combobox", name="Model", exact=True)


def first_seen(page, locators, timeout_s: float) -> list[float]:
    """perf_counter() when each locator was first seen visible, polled together every ~20 ms (so that the
    order in which a page draws them does not matter)."""
    seen: list[float | None] = [None] * len(locators)
    deadline = time.perf_counter() + timeout_s
    while None in seen:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not visible within {timeout_s:.0f} s: {[i for i, t in enumerate(seen) if t is None]}")
        for i, loc in enumerate(locators):
            if seen[i] is None and loc.is_visible():
                seen[i] = time.perf_counter()
        page.wait_for_timeout(20)
    return seen  # type: ignore[return-value]


START_KEYS = ("health", "ws", "title", "sidebar", "metric", "full", "warm")
START_ROWS = {
    "health": "streamlit run -> /_stcore/health ok",
    "ws": "streamlit run -> app loaded in Chromium (websocket open)",
    "title": "streamlit run -> page title visible (Chromium)",
    "sidebar": "streamlit run -> sidebar model picker visible",
    "metric": "streamlit run -> prediction visible (Chromium)",
    "full": "streamlit run -> page fully rendered (chart drawn)",
    "warm": "second session, warm server: open -> prediction visible",
}


def bench_start(reps: int, compare: Path | None = None) -> tuple[list[str], list[list[object]], str]:
    """Cold starts of this checkout (and, with ``compare``, of another checkout, e.g. main's, alternating
    which goes first in each round so that the machine's load hits both alike)."""
    roots = [ROOT] + ([Path(compare).resolve()] if compare else [])
    hs = [harness(r) for r in roots]
    reason = hs[0].missing_prerequisite()
    samples = [{k: [] for k in START_KEYS} for _ in roots]

    def one_cold(h, out: dict[str, list[float]], browser) -> None:
        port = h.free_port()
        t0 = time.perf_counter()
        proc, url = h.start_server(port)
        try:
            out["health"].append(h.wait_for_health(url, proc))
            if browser is None:
                return
            for key in ("metric", "warm"):
                context = browser.new_context(viewport=h.VIEWPORT)
                page = context.new_page()
                page.set_default_timeout(h.RENDER_TIMEOUT_MS)
                ws_open: list[float] = []
                page.on("websocket", lambda _ws, ws_open=ws_open: ws_open.append(time.perf_counter()))
                t_open = time.perf_counter()
                page.goto(url)
                t_title, t_sidebar, t_metric = first_seen(
                    page, [page_title(page), model_picker(page), shown_prediction(page)], h.RENDER_TIMEOUT_MS / 1000)
                page.wait_for_function(h._READY_JS)
                page.wait_for_function(h._CHARTS_JS)
                t_full = time.perf_counter()
                if key == "metric":
                    if ws_open:
                        out["ws"].append(ws_open[0] - t0)
                    out["title"].append(t_title - t0)
                    out["sidebar"].append(t_sidebar - t0)
                    out["metric"].append(t_metric - t0)
                    out["full"].append(t_full - t0)
                else:
                    out["warm"].append(t_metric - t_open)
                context.close()
        finally:
            h.stop_server(proc)

    def rounds(browser) -> None:
        for i in range(reps):
            order = list(range(len(roots)))[::(-1 if i % 2 else 1)]
            for j in order:
                log(f"  cold start {i + 1}/{reps}: {roots[j]}" + ("" if browser else " (health only)"))
                one_cold(hs[j], samples[j], browser)

    if reason:
        log(f"browser part skipped: {reason}")
        rounds(None)
    else:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = hs[0].launch_chromium(pw)  # launched once, outside the timed part
            try:
                rounds(browser)
            finally:
                browser.close()

    def med(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}"

    rows = []
    for key in START_KEYS:
        meds = [med(s[key]) for s in samples]
        row: list[object] = [START_ROWS[key], *(fmt(m) for m in meds)]
        if compare:
            row.append(f"x{meds[1] / meds[0]:.2f}" if meds[0] and meds[1] else "n/a")
        row.append(len(samples[0][key]))
        rows.append(row)
    headers = ["measure", "seconds"] + (["compared", "compared / this"] if compare else []) + ["runs"]
    note = "" if not reason else f"(browser rows skipped: {reason})"
    if compare:
        note = (f"this = {ROOT}, compared = {roots[1]}; alternating " + note).strip()
    return headers, rows, note


# ----------------------------------------------------------------------------------------- (b) imports

_IMPORT_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import streamlit
t1 = time.perf_counter()
{imports}
t2 = time.perf_counter()
heavy = {heavy!r}
after_imports = {{m: m in sys.modules for m in heavy}}
after_run = None
t_run = None
if {run_home!r}:
    from streamlit.testing.v1 import AppTest
    t3 = time.perf_counter()
    at = AppTest.from_file({app!r}, default_timeout=300).run()
    t_run = time.perf_counter() - t3
    assert not at.exception, [e.value for e in at.exception]
    after_run = {{m: m in sys.modules for m in heavy}}
print("RESULT" + json.dumps({{"streamlit": t1 - t0, "home": t2 - t0, "imports": after_imports,
                             "run": t_run, "after_run": after_run}}))
"""


def run_probe(run_home: bool) -> dict:
    code = _IMPORT_PROBE.format(imports=HOME_IMPORTS, heavy=HEAVY, run_home=run_home,
                                app=str(ROOT / "streamlit_app.py"))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def interpreter_start() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def importtime_top(n: int = 8) -> list[list[object]]:
    """The packages that cost most to import for the home page (``python -X importtime``: each root package's
    cumulative time where it was first imported, at any depth; nested packages count in their importer too)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", HOME_IMPORTS], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    top: dict[str, int] = {}
    for ln in out.stderr.splitlines():
        parts = ln.split("|")
        if not ln.startswith("import time:") or len(parts) != 3:
            continue
        name = parts[2].strip()
        if "." in name or name.startswith("_") or name == "explorer":
            continue
        try:
            top[name] = max(top.get(name, 0), int(parts[1]))
        except ValueError:
            continue
    ranked = sorted(top.items(), key=lambda kv: -kv[1])[:n]
    return [[name, f"{us / 1e6:.2f}"] for name, us in ranked]


def bench_imports(reps: int) -> tuple[list[list[object]], list[list[object]], list[list[object]], bool]:
    starts, st_times, home_times, run_times, probes = [], [], [], [], []
    for i in range(reps):
        log(f"  import probe {i + 1}/{reps}")
        starts.append(interpreter_start())
        p = run_probe(run_home=(i == 0))  # one full home-page run is enough for the module list
        probes.append(p)
        st_times.append(p["streamlit"])
        home_times.append(p["home"])
        if p["run"] is not None:
            run_times.append(p["run"])
    timing = [
        ["python -c pass (interpreter start)", f"{statistics.median(starts):.2f}", len(starts)],
        ["import streamlit", f"{statistics.median(st_times):.2f}", len(st_times)],
        ["home page imports (streamlit + explorer.*)", f"{statistics.median(home_times):.2f}", len(home_times)],
        ["first home-page run after those (AppTest, same process)", f"{statistics.median(run_times):.2f}",
         len(run_times)],
    ]
    first = probes[0]
    ok = True
    mods = []
    for m in HEAVY:
        imp, run = first["imports"][m], first["after_run"][m]
        bad = m in MUST_NOT_LOAD and (imp or run)
        ok &= not bad
        mods.append([m, "yes" if imp else "no", "yes" if run else "no",
                     ("must not load: VIOLATED" if bad else "must not load: ok") if m in MUST_NOT_LOAD else "-"])
    log("  -X importtime breakdown")
    return timing, mods, importtime_top(), ok


# ----------------------------------------------------------------------------------------- (c) predict

def nchw_copy(model):
    """The same weights in a plain contiguous-NCHW Classifier (the baseline never touches channels_last)."""
    import torch

    from explorer.models.wrapper import Classifier

    net = copy.deepcopy(model.net).to(memory_format=torch.contiguous_format)
    return Classifier(net, model_id=model.model_id, class_names=model.class_names, input_shape=model.input_shape,
                      mean=model.mean.flatten().tolist(), std=model.std.flatten().tolist(), channels_last=False)


def bench_predict(quick: bool, no_single_thread: bool = False) -> list[list[object]]:
    import numpy as np
    import torch

    from explorer.inference import predict_logits
    from explorer.models import Status, availability, load_model

    cases = []
    for model_id in ("digits-cnn", "digits-mlp", "mnist-cnn", "mnist-mlp"):
        status = availability(model_id).status
        if status == Status.AVAILABLE:
            cases.append((model_id, lambda m=model_id: load_model(m, "cpu"), 64, 4 if quick else 16,
                          3 if quick else 7))
        else:
            log(f"  {model_id}: {status.value}, skipped")
    if importlib.util.find_spec("torchvision") is not None:
        cases.append(("resnet18-random", lambda: resnet18_random(channels_last=True), 16, 1 if quick else 3,
                      2 if quick else 5))

    target_s = 0.3 if quick else 1.5
    default_threads = torch.get_num_threads()
    thread_counts = [default_threads] + ([1] if default_threads > 1 and not no_single_thread else [])
    rows = []
    for model_id, build, batch, n_batches, repeats in cases:
        model = build()  # the path the app uses: channels_last as the registry sets it
        base = nchw_copy(model)
        n = batch * n_batches
        x = torch.from_numpy(np.random.default_rng(0).random((n, *model.input_shape), dtype=np.float32))

        def plain(base=base, x=x, batch=batch):
            with torch.no_grad():
                return torch.cat([base(x[i: i + batch]) for i in range(0, len(x), batch)]).numpy()

        def fast(model=model, x=x, batch=batch):
            return predict_logits(model, x, batch_size=batch)

        for threads in thread_counts:
            torch.set_num_threads(threads)
            try:
                # Tiny models answer in a few ms: repeat until each variant ran ~target_s, so noise averages out.
                t_one = min(timed_interleaved([plain, fast], 1, warmup=1)[0])
                reps = max(repeats, min(300, math.ceil(target_s / max(t_one, 1e-6))))
                log(f"  {model_id}: {n} images, batch {batch}, {threads} thread(s), {reps} repeats")
                (t_plain, t_fast), (y_plain, y_fast) = timed_interleaved([plain, fast], reps, warmup=0)
            finally:
                torch.set_num_threads(default_threads)
            diff = float(np.abs(y_plain - y_fast).max())
            rows.append([model_id, batch, n, threads, "yes" if model.channels_last else "no", f"{n / t_plain:,.0f}",
                         f"{n / t_fast:,.0f}", f"x{t_plain / t_fast:.2f}", f"{diff:.1e}"])
    return rows


# ---------------------------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and images (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=["start", "imports", "predict"],
                        default=["start", "imports", "predict"], help="sections to run")
    parser.add_argument("--no-single-thread", action="store_true",
                        help="predict only with torch's default thread count (not also with 1 thread)")
    parser.add_argument("--cold-reps", type=int, default=None, help="cold server starts (default 3, quick 1)")
    parser.add_argument("--compare", type=Path, default=None, metavar="CHECKOUT",
                        help="(a) also cold-starts another checkout (e.g. `git worktree add /tmp/main main`), "
                             "alternating with this one, and prints both columns and their ratio")
    args = parser.parse_args()
    cold_reps = args.cold_reps or (1 if args.quick else 3)
    import_reps = 1 if args.quick else 3
    ok = True
    out = []

    if "start" in args.only:
        log("(a) cold start")
        headers, rows, note = bench_start(cold_reps, args.compare)
        out.append("(a) cold start, a new server each time (seconds, median)" + (f" {note}" if note else ""))
        out.append(format_table(headers, rows))
        out.append("")
    if "imports" in args.only:
        log("(b) imports")
        timing, mods, top, ok = bench_imports(import_reps)
        out.append("(b) what the home page needs, in a fresh interpreter (seconds, median)")
        out.append(format_table(["measure", "seconds", "runs"], timing))
        out.append("")
        out.append(format_table(["heavy module", "loaded by imports", "loaded after home run", "rule"], mods,
                                align="lccl"))
        out.append("")
        out.append("costliest packages imported for the home page "
                   "(python -X importtime, cumulative, inflated by tracing)")
        out.append(format_table(["module", "seconds"], top))
        out.append("")
    if "predict" in args.only:
        log("(c) predict throughput")
        import torch

        rows = bench_predict(args.quick, args.no_single_thread)
        out.append(f"(c) predict throughput, images/s (median), torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads, CPU, interleaved in one process")
        out.append(format_table(["model", "batch", "images", "threads", "channels_last", "no_grad NCHW",
                                 "inference_mode path", "speed-up", "max |dlogit|"], rows))
        out.append("")

    print(f"\nbench_foundation{' --quick' if args.quick else ''}: python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs\n")
    print("\n".join(out))
    if not ok:
        print("FAIL: a module that must not load on the home page was loaded", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
