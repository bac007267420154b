"""A classroom on one server: N students open the app at once and start training.

    python benchmarks/load_classroom.py [--quick] [--check] [--students N] [--probes K]

One ``streamlit run app.py`` (the real server with its default settings and job queue).
The N students speak Streamlit's own websocket protocol, as the browser does (a
``rerun_script`` message per interaction, a fragment rerun per ``run_every`` tick), but
draw nothing: N real browsers would spend this machine's 2 cores on rendering and measure
Chromium rather than the server (tried: 20 Chromium pages opening Home at once took 57 s
p50 with nothing training).  Each student, staggered over the first 2 s:

1. opens Home                       -> time to first chart (from connecting to the chart message)
2. moves the noise slider           -> rerun latency (until the redrawn chart arrives)
3. goes to the playground           -> time to first chart; presses ▶ Play -> rerun latency
   (until the animation's first tick), lets it play a few seconds
4. goes to Decision boundaries      -> time to first chart; its default training starts by
   itself and runs to the end (or ``--train-cap`` seconds), ticking like a browser does

While all of them train, K new visitors open Home, one after another, in a real headless
Chromium: the time from asking for the page to its chart drawn on screen is the figure the
target is about.  Errors: exception elements, failed connections, steps that time out, and
JavaScript or console errors of the new visitors' pages.  The server's resident memory is
sampled every 0.5 s (psutil if installed, else /proc/PID/status).

Targets (N = 20 on 2 cores): zero errors; a new visitor's Home ≤ 3 s p95; server RSS < 4 GiB.
``--quick``: N = 3, 2 new visitors, short caps (a smoke test of about a minute).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from playwright.async_api import Browser, async_playwright
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from benchlib import Report, header  # noqa: E402
from screenshot import BASE_PATH_PROBE, CHROMIUM, CHROMIUM_ARGS, running_server  # noqa: E402

GIB = 2 ** 30
STEP_TIMEOUT = 180.0     # seconds one step of one student may take: a loaded classroom is slow, not broken
CHARTS = ("vega_lite_chart", "imgs")
FIGURES = ('[data-testid="stMain"] [data-testid="stVegaLiteChart"] svg, '
           '[data-testid="stMain"] [data-testid="stImage"] img')
FIGURE_DRAWN = f"""() => [...document.querySelectorAll('{FIGURES}')]
    .some(e => e.tagName === 'svg' ? e.getBoundingClientRect().height > 0 : e.complete && e.naturalWidth > 0)"""


@dataclass
class Stats:
    first_chart: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rerun: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    training: list[float] = field(default_factory=list)      # seconds until a toy run finished
    unfinished: int = 0                                      # toy runs still training at the cap
    new_visitor_home: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rss_peak: int = 0


def element(msg: ForwardMsg):
    """The element a delta message draws, or None."""
    if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
        return msg.delta.new_element
    return None


def is_chart(msg: ForwardMsg) -> bool:
    return (e := element(msg)) is not None and e.WhichOneof("type") in CHARTS


def run_finished(msg: ForwardMsg) -> bool:
    """A whole-page run ended (not a fragment's, not one cut short by a newer rerun)."""
    return msg.WhichOneof("type") == "script_finished" and \
        msg.script_finished == ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY


def progress_text(msg: ForwardMsg) -> str:
    e = element(msg)
    return e.progress.text if e is not None and e.WhichOneof("type") == "progress" else ""


class Tab:
    """One browser tab in Streamlit's websocket protocol: it sends what a browser would send
    (reruns with widget values, page changes, fragment ticks) and reads the messages, but draws nothing."""

    def __init__(self, url: str, stats: Stats, who: str):
        self.url, self.stats, self.who = url, stats, who
        self.pages: dict[str, str] = {}            # url path -> page script hash
        self.page_hash = ""
        self.widgets: dict[str, object] = {}       # label -> the latest widget element of that label
        self.ticks: dict[str, asyncio.Task] = {}   # fragment id -> its run_every timer
        self.waiters: list[tuple[Callable[[ForwardMsg], bool], asyncio.Future]] = []
        self.recent: deque[str] = deque(maxlen=8)  # the last messages received: explains a failed step

    async def open(self, path: str = "") -> float:
        """Connect and run ``path``; seconds until its first chart message arrives."""
        start = time.perf_counter()
        self.ws = await websockets.connect(self.url.replace("http", "ws", 1) + "/_stcore/stream",
                                           subprotocols=["streamlit"], max_size=None)
        self.reader = asyncio.create_task(self._read())
        chart, done = self.expect(is_chart), self.expect(run_finished)
        await self._send(page_name=path)
        await chart
        seconds = time.perf_counter() - start
        await done                                 # every widget of the page is known
        return seconds

    async def goto(self, path: str) -> float:
        """A click on the page in the sidebar; seconds until its first chart message."""
        self._stop_ticking()
        start = time.perf_counter()
        chart, done = self.expect(is_chart), self.expect(run_finished)
        self.page_hash = self.pages[path]
        await self._send(page_hash=self.page_hash)
        await chart
        seconds = time.perf_counter() - start
        await done
        return seconds

    async def interact(self, state: WidgetState, until: Callable[[ForwardMsg], bool]) -> float:
        """Send one widget change; seconds until a message satisfying ``until`` arrives."""
        start = time.perf_counter()
        arrived, done = self.expect(until), self.expect(run_finished)
        await self._send(page_hash=self.page_hash, widgets=[state])
        await arrived
        seconds = time.perf_counter() - start
        await done
        return seconds

    def expect(self, predicate: Callable[[ForwardMsg], bool]) -> asyncio.Future:
        """A future of the first message (from now on) that satisfies ``predicate``; fails after STEP_TIMEOUT."""
        future = asyncio.get_running_loop().create_future()
        self.waiters.append((predicate, future))
        waiting = asyncio.ensure_future(asyncio.wait_for(future, STEP_TIMEOUT))
        waiting.add_done_callback(lambda done: done.cancelled() or done.exception())   # failure seen by its awaiter
        return waiting

    async def close(self) -> None:
        self._stop_ticking()
        self.reader.cancel()
        await self.ws.close()

    async def _send(self, page_name: str = "", page_hash: str = "", widgets=(), fragment_id: str = "") -> None:
        msg = BackMsg()
        run = msg.rerun_script
        run.page_name, run.page_script_hash, run.fragment_id = page_name, page_hash, fragment_id
        run.is_auto_rerun = bool(fragment_id)
        run.widget_states.widgets.extend(widgets)
        await self.ws.send(msg.SerializeToString())

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            self._note(msg)
            for waiter in list(self.waiters):
                predicate, future = waiter
                if not future.done() and predicate(msg):
                    future.set_result(msg)
                    self.waiters.remove(waiter)

    def _note(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        self.recent.append(f"{time.perf_counter():.1f}:" + (
            element(msg).WhichOneof("type") if element(msg) is not None else
            f"{kind}={msg.script_finished}" if kind == "script_finished" else kind))
        if kind == "new_session" and not msg.metadata.run.fragment_ids:
            self._stop_ticking()                   # a whole-page run: the browser drops every timer too
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            self.page_hash = msg.navigation.page_script_hash
        elif kind == "auto_rerun" and msg.auto_rerun.fragment_id not in self.ticks:
            self.ticks[msg.auto_rerun.fragment_id] = asyncio.create_task(
                self._tick(msg.auto_rerun.fragment_id, msg.auto_rerun.interval))
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                if (timer := self.ticks.pop(fragment_id, None)) is not None:
                    timer.cancel()
        elif (e := element(msg)) is not None:
            widget = e.WhichOneof("type")
            if widget == "exception":
                self.stats.errors.append(f"{self.who}: exception {e.exception.type}: {e.exception.message[:200]}")
            elif widget in ("slider", "button"):
                self.widgets[getattr(e, widget).label] = getattr(e, widget)

    async def _tick(self, fragment_id: str, interval: float) -> None:
        """What the browser's setInterval does for a ``run_every`` fragment."""
        while True:
            await asyncio.sleep(interval)
            await self._send(page_hash=self.page_hash, fragment_id=fragment_id)

    def _stop_ticking(self) -> None:
        for timer in self.ticks.values():
            timer.cancel()
        self.ticks.clear()


def slider_to(widget, value: float) -> WidgetState:
    state = WidgetState(id=widget.id)
    state.double_array_value.data.append(value)
    return state


def click(widget) -> WidgetState:
    return WidgetState(id=widget.id, trigger_value=True)


async def student(i: int, url: str, stats: Stats, args, in_training: asyncio.Queue) -> None:
    who, step = f"student {i}", "connect"
    tab = Tab(url, stats, who)
    try:
        await asyncio.sleep(random.Random(i).uniform(0, 2))                 # a classroom, not a barrage
        step = "home"
        stats.first_chart["home"].append(await tab.open(""))
        step = "home slider"
        noise = tab.widgets["Gradient noise σ"]
        stats.rerun["home_slider"].append(await tab.interact(slider_to(noise, noise.value[0] + 0.5), is_chart))
        step = "playground"
        stats.first_chart["playground"].append(await tab.goto("playground"))
        step = "playground play"
        ticking = lambda msg: progress_text(msg).startswith("Step")      # noqa: E731
        stats.rerun["playground_play"].append(await tab.interact(click(tab.widgets["▶ Play"]), ticking))
        await asyncio.sleep(args.play_seconds)
        step = "toy"
        stats.first_chart["toy"].append(await tab.goto("toy"))
        started = time.perf_counter()
        finished = tab.expect(lambda msg: "· finished" in progress_text(msg))
        await in_training.put(i)
        step = "toy training"
        try:
            await asyncio.wait_for(finished, args.train_cap)
            stats.training.append(time.perf_counter() - started)
        except asyncio.TimeoutError:     # still training at the cap: slow under load, not an error
            stats.unfinished += 1
    except Exception as err:             # a step that failed or timed out is an error of this student
        stats.errors.append(f"{who}: {step}: {type(err).__name__} {str(err)[:200]} "
                            f"(at {time.perf_counter():.1f}; last received: {', '.join(tab.recent)})")
        await in_training.put(i)
    finally:
        if hasattr(tab, "ws"):
            await tab.close()


async def new_visitors(browser: Browser, url: str, stats: Stats, args, in_training: asyncio.Queue) -> None:
    """Newcomers open Home in a real browser, one after another, while the class trains."""
    for _ in range(args.students):
        await in_training.get()
    for k in range(args.probes):
        who = f"new visitor {k}"
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        page.on("console", lambda m, who=who: m.type == "error" and not BASE_PATH_PROBE.match(
            m.location.get("url", "")) and stats.errors.append(f"{who}: console: {m.text[:200]}"))
        page.on("pageerror", lambda e, who=who: stats.errors.append(f"{who}: page error: {str(e)[:200]}"))
        try:
            start = time.perf_counter()
            await page.goto(url)
            await page.wait_for_function(FIGURE_DRAWN, polling=100, timeout=STEP_TIMEOUT * 1000)
            stats.new_visitor_home.append(time.perf_counter() - start)
            if await page.locator('[data-testid="stException"]').count():
                stats.errors.append(f"{who}: an exception is shown")
        except Exception as err:
            stats.errors.append(f"{who}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
        finally:
            await context.close()
        await asyncio.sleep(1.0)


def rss_bytes(pid: int) -> int:
    try:
        import psutil
        return psutil.Process(pid).memory_info().rss
    except ImportError:
        status = Path(f"/proc/{pid}/status").read_text()
        return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))


async def sample_rss(pid: int, stats: Stats) -> None:
    while True:
        stats.rss_peak = max(stats.rss_peak, rss_bytes(pid))
        await asyncio.sleep(0.5)


async def classroom(args) -> tuple[Stats, float]:
    stats = Stats()
    with running_server(timeout=180) as server:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            warm = Tab(server.url, stats, "warm-up")
            warmup = await warm.open("")                 # imports and first compile: no student's cost
            await warm.close()
            sampler = asyncio.create_task(sample_rss(server.process.pid, stats))
            in_training: asyncio.Queue = asyncio.Queue()
            await asyncio.gather(new_visitors(browser, server.url, stats, args, in_training),
                                 *(student(i, server.url, stats, args, in_training) for i in range(args.students)))
            sampler.cancel()
            await browser.close()
        if server.process.poll() is not None:
            stats.errors.append(f"the server died:\n{server.output()[-2000:]}")
    return stats, warmup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 students, 2 new visitors, short caps")
    parser.add_argument("--check", action="store_true", help="exit 1 if any RATIO misses its target")
    parser.add_argument("--students", type=int, default=None, help="concurrent sessions (default 20, quick 3)")
    parser.add_argument("--probes", type=int, default=None, help="new visitors opening Home (default 10, quick 2)")
    parser.add_argument("--train-cap", type=float, default=None, help="seconds a toy run may train (default 240)")
    args = parser.parse_args()
    args.students = args.students or (3 if args.quick else 20)
    args.probes = args.probes or (2 if args.quick else 10)
    args.train_cap = args.train_cap or (60 if args.quick else 240)
    args.play_seconds = 2 if args.quick else 5

    header(f"load_classroom: {args.students} students (websocket protocol) + {args.probes} new visitors "
           f"(Chromium), one server, SEMA_MAX_JOBS={os.environ.get('SEMA_MAX_JOBS', 'default')}")
    start = time.perf_counter()
    stats, warmup = asyncio.run(classroom(args))
    report = Report()
    report.time("server_warmup_first_home", warmup)
    for kind, figures in (("first_chart", stats.first_chart), ("rerun", stats.rerun)):
        for what, values in figures.items():
            if values:                   # empty when every student failed that step (counted as errors)
                report.time(f"{kind}_{what}_p50", values)
                report.quantile(f"{kind}_{what}_p95", values, 0.95)
    if stats.training:
        report.time("toy_default_training_until_finished", stats.training)
    print(f"# toy runs finished: {len(stats.training)} of {args.students} within {args.train_cap:g} s "
          f"({stats.unfinished} still training at the cap)")
    report.time("whole_classroom_wall", time.perf_counter() - start)
    for error in stats.errors[:20]:
        print(f"# ERROR {error}")
    report.ratio("errors", len(stats.errors), 0)
    home = report.quantile("new_visitor_home_drawn_p95", stats.new_visitor_home, 0.95) \
        if stats.new_visitor_home else float("inf")
    report.ratio("new_visitor_home_p95_seconds", home, 3.0)
    report.ratio("server_rss_peak_gib", stats.rss_peak / GIB, 4.0)
    report.finish(args.check)


if __name__ == "__main__":
    main()
