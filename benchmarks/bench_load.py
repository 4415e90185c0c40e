"""Load test: many concurrent sessions against a live ``streamlit run`` server on 127.0.0.1.

Clients are lightweight: they speak Streamlit's websocket protocol (``benchmarks/st_client.py``: protobuf BackMsg /
ForwardMsg on ``/_stcore/stream``), so they do not eat the server's cores. Phases (each bounded in count and time):

1. **baseline**: a fresh server, one user at a time: every deep link of the mix is opened alone and its Attack
   Studio answers (adversarial label and flip ε, read from the page's cards) are recorded, also after each slider
   position the load phase will use. The server is then stopped, so the load phase starts cold.
2. **load**: a fresh server; ``--sessions`` (30) clients open a mix of deep links at once (Attack Studio on digits and
   MNIST with different settings, Gradient maps, Boundaries slices, Projections with PCA); the Attack Studio
   sessions then move the ε slider ``--moves`` times (a widget-change BackMsg each). Reported: errors (exceptions,
   st.error, timeouts), wrong answers (labels / flip ε differing from the baseline), p50/p95 time to a visible result
   (the delta that carries the adversarial-prediction card, or the page's first chart) for new results (first
   session to open a link) and cached reruns (slider moves), and the server's RSS over time.
3. **heavy** (``--heavy``): one user's slider latency on an idle server, then again while 5 sessions run heavy
   projections (t-SNE of PGD adversarials, each different); the ratio is the target (≤ 2×).
4. **soak** (``--soak-s``): waves of sessions that open, move and leave for that long; RSS start/end.
5. **browsers** (``--browsers 10``): the same deep links in headless Chromium contexts (Playwright, Debian's
   chromium), time until the adversarial-prediction card is visible.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_load.py [--sessions 30] [--moves 3] [--heavy] [--soak-s 0]
[--browsers 0] [--max-s 1500]``. Only 127.0.0.1; the servers started here are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT)]
from st_client import Client, scrub_state  # noqa: E402

AS_MARK = r"<component [\w.]*eps_scrubber>"  # the scrubber: it holds the adversarial prediction
CHART_MARK = r"^<(plotly_chart|image)>$"
SLIDER_INDICES = (8, 20, 33, 47, 60)


@dataclass(frozen=True)
class Link:
    page: str
    query: str

    @property
    def marker(self) -> str:
        return AS_MARK if self.page == "attack_studio" else CHART_MARK

    def __str__(self) -> str:
        return f"{self.page}?{self.query}"


def link_mix(mnist: bool) -> list[Link]:
    links = [Link("attack_studio", f"model=digits-cnn&image=digits:{i}&attack=fgsm&eps=0.1") for i in (1, 2, 5, 9)]
    links += [Link("attack_studio", "model=digits-mlp&image=digits:7&attack=bim&eps=0.15&steps=10"),
              Link("attack_studio", "model=digits-cnn&image=digits:11&attack=pgd&eps=0.2&steps=10")]
    if mnist:
        links += [Link("attack_studio", "model=mnist-cnn&image=mnist:8001&attack=fgsm&eps=0.1"),
                  Link("attack_studio", "model=mnist-cnn&image=mnist:8003&attack=pgd&eps=0.1&steps=10")]
    links += [Link("gradient_maps", "model=digits-cnn&image=digits:4&map=saliency"),
              Link("boundaries", "model=digits-cnn&image=digits:6&tab=Slices+through+image+space"),
              Link("projections", "model=digits-cnn&dataset=digits&n=500&proj=pca&attack=fgsm&eps=0.15")]
    return links


# ------------------------------------------------------------------------------------------------ server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        e = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(self.port),
             "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("the server did not become healthy in 120 s")

    def rss_mb(self) -> float:
        """RSS of the server process and its children (MB), from /proc."""
        total = 0
        pids = [self.proc.pid]
        try:
            out = subprocess.run(["pgrep", "-g", str(os.getpgid(self.proc.pid))], capture_output=True, text=True)
            pids = [int(p) for p in out.stdout.split()] or pids
        except (OSError, ProcessLookupError):
            pass
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class RssSampler:
    def __init__(self, server: Server, every: float = 1.0) -> None:
        self.server, self.every = server, every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self.t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self.t0, self.server.rss_mb()))
            self._stop.wait(self.every)

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join(5)
        return self.samples


# ------------------------------------------------------------------------------------------------ sessions


@dataclass
class Answers:
    label: str | None
    flip: str | None


@dataclass
class SessionLog:
    link: Link
    open_s: float | None = None
    open_marker_s: float | None = None
    started: float = 0.0
    moves: list[float] = field(default_factory=list)  # marker times of slider moves
    move_full: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answers: dict[int, Answers] = field(default_factory=dict)  # -1: as opened; else slider index


async def one_session(port: int, link: Link, moves: list[int], t_start: float, pause: float = 0.3,
                      timeout: float = 600) -> SessionLog:
    log = SessionLog(link)
    c = Client(port)
    try:
        await c.connect()
        log.started = time.perf_counter() - t_start
        r = await c.open(link.page, link.query, marker=link.marker, timeout=timeout)
        log.open_s, log.open_marker_s = r.seconds, r.marker_s
        log.errors += r.errors
        if link.page == "attack_studio":
            log.answers[-1] = Answers(c.card("Adversarial prediction"), c.card("Flip ε"))
            slider = c.find_scrubber()
            for idx in moves:
                if slider is None:
                    log.errors.append("no ε scrubber on the page")
                    break
                await asyncio.sleep(pause)
                r = await c.set_widget(scrub_state(slider, idx), marker=AS_MARK, timeout=timeout)
                log.errors += r.errors
                if r.marker_s is not None:
                    log.moves.append(r.marker_s)
                log.move_full.append(r.seconds)
                log.answers[idx] = Answers(c.card("Adversarial prediction"), c.card("Flip ε"))
                slider = c.find_scrubber() or slider
    except Exception as exc:  # noqa: BLE001 - a broken session is an error of the run, not of the script
        log.errors.append(f"{exc.__class__.__name__}: {exc}")
    finally:
        await c.close()
    return log


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q / 100 * (len(v) - 1))))]


def fmt_s(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {pct(values, 50):6.2f} s  p95 {pct(values, 95):6.2f} s  (n = {len(values)})"


# ------------------------------------------------------------------------------------------------ phases


def baseline(links: list[Link]) -> dict[tuple[str, int], Answers]:
    srv = Server()
    try:
        out: dict[tuple[str, int], Answers] = {}

        async def go():
            for link in links:
                log = await one_session(srv.port, link, list(SLIDER_INDICES) if link.page == "attack_studio" else [],
                                        time.perf_counter(), pause=0.0)
                if log.errors:
                    print(f"  baseline {link}: {log.errors[:2]}")
                for k, a in log.answers.items():
                    out[(str(link), k)] = a

        asyncio.run(go())
        return out
    finally:
        srv.stop()


def load_phase(srv: Server, links: list[Link], sessions: int, n_moves: int) -> list[SessionLog]:
    plan = []
    for i in range(sessions):
        link = links[i % len(links)]
        moves = [SLIDER_INDICES[(i + j) % len(SLIDER_INDICES)] for j in range(n_moves)]
        plan.append((link, moves))

    async def go():
        t0 = time.perf_counter()
        return await asyncio.gather(*(one_session(srv.port, link, moves, t0) for link, moves in plan))

    return list(asyncio.run(go()))


def heavy_phase(srv: Server, moves: int = 8) -> tuple[list[float], list[float]]:
    link = Link("attack_studio", "model=digits-cnn&image=digits:21&attack=fgsm&eps=0.1")
    idx = [SLIDER_INDICES[i % len(SLIDER_INDICES)] for i in range(moves)]

    async def user():
        log = await one_session(srv.port, link, idx, time.perf_counter(), pause=0.5)
        return log.moves

    idle = asyncio.run(user())

    async def busy():
        heavy = [Link("projections", f"model=digits-cnn&dataset=digits&n=1000&proj=tsne&attack=pgd&eps={e}&steps=50")
                 for e in (0.11, 0.12, 0.13, 0.14, 0.16)]
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(one_session(srv.port, h, [], t0)) for h in heavy]
        await asyncio.sleep(3.0)  # the heavy runs are under way
        log = await one_session(srv.port, link, idx, time.perf_counter(), pause=0.5)
        for t in tasks:
            t.cancel()
        return log.moves

    return idle, asyncio.run(busy())


def soak_phase(srv: Server, links: list[Link], seconds: float, wave: int = 10) -> int:
    async def go():
        n = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            await asyncio.gather(*(one_session(srv.port, links[(n + i) % len(links)], [SLIDER_INDICES[i % 5]], t0)
                                   for i in range(wave)))
            n += wave
        return n

    return asyncio.run(go())


FOLLOW_VIEWS = [  # (page, params, a marker of that page's content)
    ("gradient_maps", {"model": "digits-cnn", "image": "digits:4", "attack": "fgsm", "eps": "0.1"}, r"^Gradient maps$"),
    ("attack_studio", {"model": "digits-cnn", "image": "digits:3", "attack": "fgsm", "eps": "0.2"}, AS_MARK),
    ("boundaries", {"model": "digits-cnn", "image": "digits:6"}, r"^Decision boundaries$"),
    ("attack_studio", {"model": "digits-mlp", "image": "digits:9", "attack": "pgd", "eps": "0.1"}, AS_MARK),
]


def follower_phase(followers: int, timeout: float = 120.0) -> tuple[list[float], int, list[str]]:
    """Presenter mode: ``followers`` sessions follow one room (a real redis-server as the shared room store, as
    with several replicas); the presenter pushes each view of FOLLOW_VIEWS and every follower's time from the
    push to that page's content on its screen is recorded. Returns (latencies, pushes, errors)."""
    import shutil
    import tempfile

    from explorer.rooms import ViewState
    from explorer.rooms.redis_store import RedisRoomStore

    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        return [], 0, ["redis-server is not installed: the follower phase needs it"]
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="bench-rooms-")
    redis_proc = subprocess.Popen([redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    time.sleep(0.5)
    srv = Server(env={"EXPLORER_REDIS_URL": url})
    latencies: list[float] = []
    errors: list[str] = []
    try:
        store = RedisRoomStore(url)
        room = store.create()
        first_page, first_params, first_mark = FOLLOW_VIEWS[-1]
        store.set_view(room.code, room.presenter_key, ViewState(first_page, first_params))

        async def go():
            clients = [Client(srv.port) for _ in range(followers)]
            for c in clients:
                await c.connect()
            opened = await asyncio.gather(*(c.open("", f"room={room.code}", marker=first_mark, timeout=timeout)
                                            for c in clients))
            errors.extend(e for r in opened for e in r.errors)
            for page, params, mark in FOLLOW_VIEWS:
                await asyncio.sleep(1.5)  # everyone idle on the previous view, polling
                store.heartbeat(room.code, room.presenter_key)
                t0 = time.perf_counter()
                store.set_view(room.code, room.presenter_key, ViewState(page, params))
                got = await asyncio.gather(*(c._read_run(t0, re.compile(mark), timeout) for c in clients))
                for r in got:
                    errors.extend(r.errors)
                    if r.marker_s is None:
                        errors.append(f"a follower never showed {page}")
                    else:
                        latencies.append(r.marker_s)
            for c in clients:
                await c.close()

        asyncio.run(go())
    finally:
        srv.stop()
        redis_proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    return latencies, len(FOLLOW_VIEWS), errors


def browser_phase(port: int, links: list[Link], contexts: int) -> tuple[list[float], int, dict[str, str]]:
    from playwright.sync_api import sync_playwright

    times, errors, labels = [], 0, {}
    as_links = [x for x in links if x.page == "attack_studio"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu",
                                                                                "--disable-dev-shm-usage"])
        pages = []
        for i in range(contexts):
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            pages.append((ctx.new_page(), as_links[i % len(as_links)]))
        t0 = time.perf_counter()
        for page, link in pages:
            page.goto(f"http://127.0.0.1:{port}/{link.page}?{link.query}", wait_until="commit")
        for page, link in pages:
            try:
                value = page.get_by_test_id("scrub-adv-card").locator(".ae-card-value")
                value.wait_for(timeout=600_000)
                times.append(time.perf_counter() - t0)
                labels[str(link)] = value.inner_text().strip()
                if page.locator("[data-testid='stException']").count():
                    errors += 1
            except Exception:  # noqa: BLE001
                errors += 1
        browser.close()
    return times, errors, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--moves", type=int, default=3)
    ap.add_argument("--heavy", action="store_true")
    ap.add_argument("--soak-s", type=float, default=0.0)
    ap.add_argument("--browsers", type=int, default=0)
    ap.add_argument("--only-browsers", action="store_true", help="baseline, then only the Chromium phase")
    ap.add_argument("--followers", type=int, default=0,
                    help="presenter mode: this many sessions follow one room (Redis), 4 views pushed")
    ap.add_argument("--only-followers", action="store_true", help="only the presenter-mode phase")
    ap.add_argument("--max-s", type=float, default=1500, help="hard limit for the whole run (seconds)")
    a = ap.parse_args()
    if a.sessions > 60 or a.browsers > 20 or a.soak_s > 1800 or a.followers > 60:
        sys.exit("bounded: at most 60 sessions, 20 browsers, 60 followers, 30 min of soak")
    threading.Timer(a.max_s, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    if a.followers:
        lat, pushes, ferr = follower_phase(a.followers)
        print(f"presenter mode: {a.followers} followers of one room (Redis store), {pushes} views pushed")
        print(f"  errors: {len(ferr)}" + "".join(f"\n    {e}" for e in ferr[:8]))
        print(f"  push -> the new page's content on each follower's screen: {fmt_s(lat)}; max "
              f"{max(lat) if lat else float('nan'):.2f} s; within 1 s: {sum(x <= 1.0 for x in lat)} of {len(lat)}")
        if a.only_followers:
            os._exit(0)
    from explorer.models import Status, availability

    mnist = availability("mnist-cnn").status == Status.AVAILABLE
    links = link_mix(mnist)
    print(f"{len(links)} deep links ({'with' if mnist else 'without'} MNIST), {a.sessions} sessions, "
          f"{a.moves} slider moves each on Attack Studio; {os.cpu_count()} cores")

    t = time.perf_counter()
    base = baseline(links)
    print(f"baseline (one user at a time, fresh server): {len(base)} answers in {time.perf_counter() - t:.0f} s")

    srv = Server()
    try:
        # warm the process (imports, the digits model) on a link outside the mix, so "new result" times measure
        # computing a result, not starting Python
        warm = asyncio.run(one_session(srv.port, Link("attack_studio", "model=digits-cnn&image=digits:0"), [],
                                       time.perf_counter()))
        print(f"warm-up (first page of a fresh server): {warm.open_s:.1f} s")
        if a.only_browsers:
            a.sessions = 0
        sampler = RssSampler(srv)
        t = time.perf_counter()
        logs = load_phase(srv, links, a.sessions, a.moves)
        wall = time.perf_counter() - t
        errors = [(str(lg.link), e) for lg in logs for e in lg.errors]
        wrong = []
        for lg in logs:
            for k, ans in lg.answers.items():
                ref = base.get((str(lg.link), k))
                if ref is not None and (ref.label, ref.flip) != (ans.label, ans.flip):
                    wrong.append((str(lg.link), k, ref, ans))
        first_by_link: dict[str, SessionLog] = {}
        for lg in sorted(logs, key=lambda x: x.started):
            first_by_link.setdefault(str(lg.link), lg)
        new = [lg.open_marker_s for lg in first_by_link.values() if lg.open_marker_s is not None]
        new_fgsm = [lg.open_marker_s for lg in first_by_link.values() if lg.open_marker_s is not None
                    and lg.link.page == "attack_studio" and "digits" in lg.link.query and "fgsm" in lg.link.query]
        opens = [lg.open_marker_s for lg in logs if lg.open_marker_s is not None]
        moves = [m for lg in logs for m in lg.moves]
        move_full = [m for lg in logs for m in lg.move_full]
        print(f"\nload: {a.sessions} concurrent sessions, {wall:.0f} s wall")
        print(f"  errors: {len(errors)}" + "".join(f"\n    {u}: {e}" for u, e in errors[:8]))
        print(f"  wrong answers: {len(wrong)} of {sum(len(lg.answers) for lg in logs)} compared"
              + "".join(f"\n    {u} [{k}]: baseline {r} vs {s}" for u, k, r, s in wrong[:8]))
        print(f"  time to a visible result, new result (first session per link): {fmt_s(new)}")
        print(f"    of which digits FGSM:                                         {fmt_s(new_fgsm)}")
        print(f"  time to a visible result, every first open:                      {fmt_s(opens)}")
        print(f"  cached rerun (ε slider move), to the updated card:               {fmt_s(moves)}")
        print(f"  cached rerun (ε slider move), to the end of the page's run:      {fmt_s(move_full)}")
        if a.soak_s > 0:
            n = soak_phase(srv, links, a.soak_s)
            print(f"\nsoak: {n} sessions in {a.soak_s:.0f} s")
        samples = sampler.stop()
        if samples:
            rss = [r for _, r in samples]
            step = max(1, len(samples) // 12)
            print(f"\nserver RSS (MB): start {rss[0]:.0f}, peak {max(rss):.0f}, end {rss[-1]:.0f}; over time: "
                  + ", ".join(f"{t:.0f}s {r:.0f}" for t, r in samples[::step]))
        if a.browsers:
            times, berr, labels = browser_phase(srv.port, links, a.browsers)
            bad = [(u, base[(u, -1)].label, lab) for u, lab in labels.items()
                   if base.get((u, -1)) and base[(u, -1)].label != lab]
            print(f"\nbrowsers: {a.browsers} Chromium contexts, time to the adversarial card {fmt_s(times)}; "
                  f"errors {berr}, wrong labels {len(bad)} of {len(labels)} links" + "".join(f"\n    {b}" for b in bad[:5]))
        if a.heavy:
            idle, busy = heavy_phase(srv)
            print(f"\nheavy: slider move on an idle server {fmt_s(idle)}")
            print(f"       while 5 heavy projections run {fmt_s(busy)}; p50 ratio "
                  f"{pct(busy, 50) / pct(idle, 50):.2f}×")
    finally:
        srv.stop()
    os._exit(0)


if __name__ == "__main__":
    main()
