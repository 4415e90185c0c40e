"""The ε slider in a real browser: time from a key press on the slider to the new adversarial label and image.

A fresh ``streamlit run`` of this checkout (or ``--root`` another one, e.g. an older commit to compare with),
headless Chromium through Playwright. For each case it opens Attack Studio on a deep link, waits until the
sweep is computed and cached, focuses the slider and presses → ``--moves`` times (median reported, default 20).
Each move is timed inside the page: from the ``keydown`` event to the first animation frame in which the
adversarial image *and* its caption differ from before the press (a MutationObserver on the page, so the
time includes the server round trip when there is one, and nothing of Playwright's own polling).
Between moves it waits until the app is idle again, so every move starts from the same state.

It also reports what one rerun costs on the wire: the bytes of WebSocket frames the browser received
between the press and the end of that rerun (the server's deltas: images, Plotly figures, text), and the
Plotly JSON the page sends per run (the sum of its figures' specs, from AppTest on the same page).

Run: python benchmarks/bench_browser_slider.py [--moves 20] [--root PATH] [--label NAME]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests" / "browser"))

from benchmarks._common import format_table  # noqa: E402

CASES = [("digits-cnn, FGSM", "?model=digits-cnn&image=digits:0&attack=fgsm"),
         ("digits-cnn, PGD-10", "?model=digits-cnn&image=digits:0&attack=pgd&steps=10"),
         ("mnist-cnn, PGD-10", "?model=mnist-cnn&image=mnist:8000&attack=pgd&steps=10")]
PHOTO_CASE = ("resnet18 (random weights), FGSM, cat photo", "?model=resnet18&image=photo:chelsea&attack=fgsm")

# the adversarial view: the client-side scrubber (data-testid="scrub-adv") or, in older builds, the third image
# of the main images row, whose caption starts with "adversarial:"
_ADV_STATE_JS = """
() => {
  const scrub = document.querySelector('[data-testid="scrub-adv"]');
  if (scrub) {  // the frame index it shows (an <img> of the frame, or a <canvas> the browser drew it on)
    const cap = scrub.querySelector('[data-testid="scrub-adv-caption"]');
    return cap ? [scrub.getAttribute('data-frame'), cap.textContent] : null;
  }
  for (const fig of document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"]')) {
    const cap = fig.querySelector('[data-testid="stImageCaption"]') || fig.parentElement;
    const img = fig.querySelector('img');
    if (img && cap && /^adversarial:/.test(cap.textContent.trim())) return [img.getAttribute('src'), cap.textContent];
  }
  return null;
}
"""

_ARM_JS = """
(advState) => {
  const state = eval(advState);
  const before = JSON.stringify(state());
  window.__move = {t0: null, t1: null};
  const onKey = () => { if (window.__move.t0 === null) window.__move.t0 = performance.now(); };
  document.addEventListener('keydown', onKey, {capture: true, once: true});
  const tick = () => {
    const now = JSON.stringify(state());
    if (window.__move.t0 !== null && now !== before && now !== 'null') {
      const img = document.querySelector('[data-testid="scrub-adv"] img');  // a frame image must have loaded
      if (!img || img.complete) { window.__move.t1 = performance.now(); return; }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
"""


def slider(page):
    scrub = page.locator('[data-testid="scrub-slider"]')
    if scrub.count():
        return scrub.first
    return page.get_by_test_id("stMain").get_by_role("slider").first


def run_case(browser, base: str, query: str, moves: int, wait_for_app) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(180_000)
    received: list[int] = []
    page.on("websocket", lambda ws: ws.on("framereceived",
                                          lambda payload: received.append(len(payload))))
    page.goto(f"{base}/attack_studio{query}")
    wait_for_app(page)
    slider(page).focus()
    page.keyboard.press("Home")
    wait_for_app(page)
    times, wire = [], []
    for _ in range(moves):
        wait_for_app(page, settle_ms=150)
        page.wait_for_timeout(100)
        slider(page).focus()
        page.evaluate(_ARM_JS, _ADV_STATE_JS)
        n0 = len(received)
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => window.__move.t1 !== null", timeout=60_000)
        times.append(page.evaluate("() => window.__move.t1 - window.__move.t0"))
        wait_for_app(page, settle_ms=700)  # the rerun this move started (if any) has finished
        wire.append(sum(received[n0:]))
    context.close()
    return {"median_ms": statistics.median(times), "p90_ms": sorted(times)[int(0.9 * (len(times) - 1))],
            "max_ms": max(times), "wire_kb": statistics.median(wire) / 1024}


def plotly_bytes(root: Path, query: str) -> int:
    """Plotly JSON per run of the page (sum of its figures' specs), from AppTest on the same checkout."""
    import subprocess

    code = ("import sys; from streamlit.testing.v1 import AppTest\n"
            "from urllib.parse import parse_qsl\n"
            f"at = AppTest.from_file('streamlit_app.py', default_timeout=600)\n"
            f"at.switch_page('pages/attack_studio.py')\n"
            f"for k, v in parse_qsl({query[1:]!r}): at.query_params[k] = v\n"
            "at.run()\n"
            "print(sum(len(e.proto.spec) for e in at.get('plotly_chart')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(root)}, timeout=900)
    try:
        return int(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=20)
    ap.add_argument("--root", type=Path, default=HERE.parent, help="the checkout to serve (default: this one)")
    ap.add_argument("--label", default=None, help="a name for this build in the table")
    ap.add_argument("--cases", default="all", help="comma-separated case numbers (1-based) or 'all'")
    ap.add_argument("--photo", action="store_true",
                    help="also ResNet-18 with random weights (a fabricated checkpoint in a temporary TORCH_HOME: "
                         "timing and payload only) on the cat photo")
    args = ap.parse_args()
    from conftest import launch_chromium, start_server, stop_server, wait_for_app, wait_for_health
    from playwright.sync_api import sync_playwright

    import conftest

    conftest.ROOT = args.root.resolve()  # start_server runs streamlit from conftest.ROOT
    picked = CASES if args.cases == "all" else [CASES[int(i) - 1] for i in args.cases.split(",") if i]
    if args.photo:
        import tempfile

        from explorer.models.imagenet import save_random_checkpoint

        os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="bench-slider-torch-")  # the server inherits it
        save_random_checkpoint("resnet18")
        picked = [*picked, PHOTO_CASE]
    proc, base = start_server(log_path=Path("/tmp/bench_browser_slider.log"))
    rows = []
    try:
        wait_for_health(base, proc, timeout=180)
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            for name, query in picked:
                t = time.perf_counter()
                r = run_case(browser, base, query, args.moves, wait_for_app)
                r["plotly_kb"] = plotly_bytes(args.root.resolve(), query) / 1024
                rows.append((args.label or args.root.name, name, f"{r['median_ms']:.0f}", f"{r['p90_ms']:.0f}",
                             f"{r['max_ms']:.0f}", f"{r['wire_kb']:.1f}", f"{r['plotly_kb']:.1f}"))
                print(f"  {name}: {r} ({time.perf_counter() - t:.0f} s)", flush=True)
            browser.close()
    finally:
        stop_server(proc)
    print(f"\nε slider in headless Chromium, {args.moves} moves of one grid step (→), fresh server; "
          f"{os.cpu_count()} cores")
    print(format_table(["build", "case", "median ms", "p90 ms", "max ms", "wire kB/move", "Plotly kB/run"], rows))


if __name__ == "__main__":
    main()
