"""A classroom on one server: N students open the app at once and start training.

    python benchmarks/load_classroom.py [--quick] [--check] [--students N] [--probes K]

One ``streamlit run app.py`` (the real server with its default settings and job queue).
First one real headless Chromium goes through the students' steps and its websocket
messages are recorded.  Then N students replay exactly those messages concurrently over
Streamlit's websocket protocol (the same widget states, page changes and fragment ticks a
browser sends, at the browser's tick rate) but draw nothing: N real browsers would spend
this machine's 2 cores on rendering and measure Chromium rather than the server (tried:
20 Chromium pages opening Home at once took 57 s p50 with nothing training).  Each
student, staggered over the first 2 s:

1. opens Home                       -> time to first chart (from connecting to the chart message)
2. moves the noise slider           -> rerun latency (until the redrawn chart arrives)
3. goes to the playground           -> time to first chart; watches it play a few seconds (the
   animation runs in the browser, so playing sends the server nothing)
4. goes to Decision boundaries      -> time to first chart; its default training starts by
   itself and runs to the end (timed from asking for the page, at most ``--train-cap`` seconds),
   ticking like the browser did

While all of them train, K new visitors open Home, one after another, in a real headless
Chromium: the time from asking for the page to its chart drawn on screen is the figure the
target is about.  Before the class arrives, K/2 visitors open Home on the idle server: the same
figure without load, side by side in one run.  Each visitor's time is split into the app's
files loaded, the websocket open, the chart message received and the chart drawn.  Errors:
exception elements, failed connections, steps that time out, and JavaScript or console errors
of the browser pages.  The server's resident memory is
sampled every 0.5 s (psutil if installed, else /proc/PID/status), and with psutil the CPU seconds the
server process and the processes it started (the workers) used while the class trained are printed.

Each new visitor then opens the playground and presses ▶ Play: the time from the press to the
first animation frame is read from the player itself (``data-play-to-first-frame-ms``).

Two classes in one run, side by side: first today's set-up (``--baseline-students``, default 20,
``SEMA_ENGINE=inline``: every training in the server process), then the classroom server mode
(``--students``, default 40, ``SEMA_ENGINE=dask``: live trainings in Dask worker processes,
sema_demo/engine.py).  The targets are the classroom's (issue 16, on 2 cores): zero errors; a new
visitor's Home ≤ 3 s p95; Home slider redraw ≤ 1.5 s p95; playground Play → first frame ≤ 0.5 s
p95; every toy default training finished within 240 s; server + workers RSS ≤ 4 GiB.  The
baseline's figures are printed beside them (``today_…`` lines), not judged.
``--quick``: 2 + 3 students, 2 new visitors, short caps (a smoke test of a couple of minutes).
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
from playwright.async_api import Browser, Page, async_playwright
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from benchlib import Report, header, quantile  # noqa: E402
from screenshot import BASE_PATH_PROBE, CHROMIUM, CHROMIUM_ARGS, running_server  # noqa: E402

GIB = 2 ** 30
STEP_TIMEOUT = 180.0     # seconds one step of one student may take: a loaded classroom is slow, not broken
CHARTS = ("vega_lite_chart", "imgs", "bidi_component")   # bidi_component: the browser path player
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
    stalls: list[str] = field(default_factory=list)          # what each unfinished student saw last
    new_visitor_home: list[float] = field(default_factory=list)
    play_first_frame: list[float] = field(default_factory=list)   # new visitors: ▶ Play to the first frame
    idle_home: list[float] = field(default_factory=list)     # the same, before anyone else came
    phases: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))   # of new visitors
    idle_phases: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    rss_peak: int = 0
    server_problems: list[str] = field(default_factory=list)   # warning and error lines of the server's log
    messages: int = 0                                        # websocket messages the students received
    cpu: tuple[float, float] | None = None                   # CPU seconds the server, the workers used in class


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


@dataclass
class Recording:
    """What a real browser sent going through the students' steps."""

    steps: list[bytes]            # its rerun messages (page loads, widget changes), in order
    ticks: dict[str, bytes]       # fragment id -> its ``run_every`` rerun message


STEPS = ("open Home", "move the noise slider", "go to the playground", "go to Decision boundaries")
# The playground plays in the browser (sema_demo/ui/path_player): pressing Play sends the server nothing,
# so a student only watches it for --play-seconds.


async def record_browser(browser: Browser, url: str, stats: Stats) -> Recording:
    """Go through the steps once in Chromium and keep the websocket messages it sends."""
    sent: list[bytes] = []
    page = await new_page(browser, stats, "the recording browser")
    page.on("websocket", lambda ws: ws.on("framesent", lambda data: sent.append(data)))
    await page.goto(url)
    await page.wait_for_function(FIGURE_DRAWN, polling=100, timeout=STEP_TIMEOUT * 1000)
    await settle(page)
    thumb = page.locator('[data-testid="stSlider"]').filter(has=page.get_by_text("Gradient noise σ")).get_by_role("slider")
    await thumb.focus()
    await thumb.press("ArrowRight")
    await settle(page)
    nav = page.locator('[data-testid="stSidebarNav"]')
    await nav.get_by_role("link", name="Optimizer playground").click()
    await settle(page)
    await nav.get_by_role("link", name="Decision boundaries").click()
    await page.locator('[data-testid="stProgress"]').filter(has_text="training").wait_for(timeout=STEP_TIMEOUT * 1000)
    await page.wait_for_timeout(2000)                     # a few training ticks
    await page.context.close()
    recording = Recording([], {})
    for data in sent:
        msg = BackMsg()
        msg.ParseFromString(data)
        if msg.WhichOneof("type") != "rerun_script":
            continue
        # The browser lists the messages it has cached, and the server then sends only their hash;
        # a student that draws nothing has no cache, so it must not claim the recorder's.
        del msg.rerun_script.cached_message_hashes[:]
        data = msg.SerializeToString()
        if msg.rerun_script.is_auto_rerun:
            recording.ticks[msg.rerun_script.fragment_id] = data
        else:
            recording.steps.append(data)
    if len(recording.steps) != len(STEPS):
        raise RuntimeError(f"the browser sent {len(recording.steps)} reruns for the {len(STEPS)} steps {STEPS}")
    return recording


async def settle(page: Page) -> None:
    """Until the page's run has finished (the browser shows no running indicator for a while)."""
    await page.wait_for_function("""() => {
        const busy = document.querySelector('[data-testid="stStatusWidget"]');
        if (busy) { window.__quiet = null; return false; }
        window.__quiet = window.__quiet || Date.now();
        return Date.now() - window.__quiet > 1000;
    }""", polling=200, timeout=STEP_TIMEOUT * 1000)


class Tab:
    """One browser tab that replays a :class:`Recording` over Streamlit's websocket protocol:
    the same messages, fragment ticks at the same rate; it reads every answer but draws nothing."""

    def __init__(self, url: str, recording: Recording, stats: Stats, who: str):
        self.url, self.recording, self.stats, self.who = url, recording, stats, who
        self.ticks: dict[str, asyncio.Task] = {}   # fragment id -> its run_every timer
        self.waiters: list[tuple[Callable[[ForwardMsg], bool], asyncio.Future]] = []
        self.recent: deque[str] = deque(maxlen=24)  # the last messages both ways: explains a failed step
        self.progress: tuple[float, str] | None = None   # the last progress bar text, and when it came
        self.ticks_sent = 0

    async def connect(self) -> None:
        self.ws = await websockets.connect(self.url.replace("http", "ws", 1) + "/_stcore/stream",
                                           subprotocols=["streamlit"], max_size=None)
        self.reader = asyncio.create_task(self._read())

    async def step(self, k: int, until: Callable[[ForwardMsg], bool] = is_chart) -> float:
        """Send the browser's ``k``-th message; seconds until a message satisfying ``until``
        arrives.  Returns once the whole run has finished (every element has arrived)."""
        start = time.perf_counter()
        arrived, done = self.expect(until), self.expect(run_finished)
        await self._send(self.recording.steps[k], f"sent step {k}")
        await arrived
        seconds = time.perf_counter() - start
        await done
        return seconds

    def expect(self, predicate: Callable[[ForwardMsg], bool], timeout: float = STEP_TIMEOUT) -> asyncio.Future:
        """A future of the first message (from now on) that satisfies ``predicate``; fails after ``timeout`` s."""
        future = asyncio.get_running_loop().create_future()
        self.waiters.append((predicate, future))
        waiting = asyncio.ensure_future(asyncio.wait_for(future, timeout))
        waiting.add_done_callback(lambda done: done.cancelled() or done.exception())   # failure seen by its awaiter
        return waiting

    async def close(self) -> None:
        self._stop_ticking()
        self.reader.cancel()
        await self.ws.close()

    async def _send(self, data: bytes, what: str) -> None:
        self.recent.append(f"{time.perf_counter():.1f}:{what}")
        await self.ws.send(data)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = ForwardMsg()
                msg.ParseFromString(raw)
                self.stats.messages += 1
                self._note(msg)
                for waiter in list(self.waiters):
                    predicate, future = waiter
                    if not future.done() and predicate(msg):
                        future.set_result(msg)
                        self.waiters.remove(waiter)
        except websockets.ConnectionClosed:
            pass                               # seen by the step that waits (it names the close code)
        except Exception as err:               # a fault of this client, not of the server: say so
            self.stats.errors.append(f"{self.who}: the load client's reader failed: {type(err).__name__} {err}")

    def _note(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if text := progress_text(msg):
            self.progress = (time.perf_counter(), text)
        self.recent.append(f"{time.perf_counter():.1f}:" + (
            element(msg).WhichOneof("type") if element(msg) is not None else
            f"{kind}={msg.script_finished}" if kind == "script_finished" else kind))
        if kind == "new_session" and not msg.metadata.run.fragment_ids:
            self._stop_ticking()                   # a whole-page run: the browser drops every timer too
        elif kind == "auto_rerun" and msg.auto_rerun.fragment_id not in self.ticks:
            self.ticks[msg.auto_rerun.fragment_id] = asyncio.create_task(
                self._tick(msg.auto_rerun.fragment_id, msg.auto_rerun.interval))
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                if (timer := self.ticks.pop(fragment_id, None)) is not None:
                    timer.cancel()
        elif (e := element(msg)) is not None and e.WhichOneof("type") == "exception":
            self.stats.errors.append(f"{self.who}: exception {e.exception.type}: {e.exception.message[:200]}")

    async def _tick(self, fragment_id: str, interval: float) -> None:
        """What the browser's setInterval does for a ``run_every`` fragment."""
        if fragment_id not in self.recording.ticks:
            self.stats.errors.append(f"{self.who}: the recording has no tick of fragment {fragment_id}")
            return
        while True:
            await asyncio.sleep(interval)
            await self.ws.send(self.recording.ticks[fragment_id])    # not logged: 12 a second would drown the rest
            self.ticks_sent += 1

    def _stop_ticking(self) -> None:
        for timer in self.ticks.values():
            timer.cancel()
        self.ticks.clear()


async def student(i: int, url: str, recording: Recording, stats: Stats, args, in_training: asyncio.Queue) -> None:
    who, step = f"student {i}", "connect"
    tab = Tab(url, recording, stats, who)
    try:
        await asyncio.sleep(random.Random(i).uniform(0, 2))                 # a classroom, not a barrage
        step = STEPS[0]
        start = time.perf_counter()
        await tab.connect()
        connecting = time.perf_counter() - start
        stats.first_chart["home"].append(connecting + await tab.step(0))
        step = STEPS[1]
        stats.rerun["home_slider"].append(await tab.step(1))
        step = STEPS[2]
        stats.first_chart["playground"].append(await tab.step(2))
        await asyncio.sleep(args.play_seconds)                             # watching it play in the browser
        step = STEPS[3]
        # Expected before the page is asked for: under load the page's own run can wait in the job
        # queue past the training's end, and a "finished" that came during it was missed (it read as
        # a run still training at the cap).  The time counts from asking for the page.  (The
        # expectation's own timeout lies past the cap: a slow run is not cut short before the cap.)
        started = time.perf_counter()
        finished = tab.expect(lambda msg: "· finished" in progress_text(msg), timeout=args.train_cap + 60)
        stats.first_chart["toy"].append(await tab.step(3))
        await in_training.put(i)
        step = "train to the end"
        try:
            await asyncio.wait_for(finished, max(0.0, args.train_cap - (time.perf_counter() - started)))
            stats.training.append(time.perf_counter() - started)
        except asyncio.TimeoutError:     # still training at the cap: slow under load, not an error
            stats.unfinished += 1
            now = time.perf_counter()
            seen = f"{tab.progress[1]!r}, {now - tab.progress[0]:.0f} s before the cap" if tab.progress else "none"
            stats.stalls.append(f"{who}: last progress {seen}; {tab.ticks_sent} ticks sent, "
                                f"{len(tab.ticks)} fragment timers running; last messages: {', '.join(tab.recent)}")
    except Exception as err:             # a step that failed or timed out is an error of this student
        link = "no connection" if not hasattr(tab, "ws") else \
            f"connection closed ({tab.ws.close_code} {tab.ws.close_reason!r})" if tab.ws.close_code else "connected"
        stats.errors.append(f"{who}: {step}: {type(err).__name__} {str(err)[:200]} "
                            f"({link}; last messages: {', '.join(tab.recent)})")
        await in_training.put(i)
    finally:
        if hasattr(tab, "ws"):
            await tab.close()


async def new_page(browser: Browser, stats: Stats, who: str) -> Page:
    """A page in a fresh browser context (a new session) whose errors count in ``stats``."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(STEP_TIMEOUT * 1000)
    page = await context.new_page()

    def on_console(message) -> None:
        if message.type == "error" and not BASE_PATH_PROBE.match(message.location.get("url", "")):
            stats.errors.append(f"{who}: console: {message.text[:200]}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: stats.errors.append(f"{who}: page error: {str(error)[:200]}"))
    return page


async def open_home(browser: Browser, url: str, stats: Stats, who: str,
                    phases: dict[str, list[float]] | None = None) -> float:
    """Seconds from asking for Home in a fresh browser session to its chart drawn on screen.

    ``phases`` collects where the time went: the app's files loaded (``page load``), its
    websocket opened, the first chart message received, the chart drawn."""
    page = await new_page(browser, stats, who)
    marks: dict[str, float] = {}

    def on_frame(data: str | bytes) -> None:
        if "chart message" not in marks and isinstance(data, bytes) and _is_chart_frame(data):
            marks["chart message"] = time.perf_counter()

    def on_websocket(ws) -> None:
        marks.setdefault("websocket open", time.perf_counter())
        ws.on("framereceived", on_frame)

    page.on("websocket", on_websocket)
    try:
        start = time.perf_counter()
        await page.goto(url)
        marks["page load"] = time.perf_counter()
        await page.wait_for_function(FIGURE_DRAWN, polling=100)
        marks["chart drawn"] = time.perf_counter()
        if phases is not None:
            for what, at in marks.items():
                phases[what].append(at - start)
        if await page.locator('[data-testid="stException"]').count():
            stats.errors.append(f"{who}: an exception is shown")
        return marks["chart drawn"] - start
    finally:
        await page.context.close()


def _is_chart_frame(data: bytes) -> bool:
    msg = ForwardMsg()
    msg.ParseFromString(data)
    return is_chart(msg)


PLAYER = ".pp"     # the playground's path player (its shadow root is open to Playwright's CSS locators)


async def play_on_playground(browser: Browser, url: str, stats: Stats, who: str) -> float:
    """Seconds from pressing ▶ Play on the playground to the first frame, as the player measures them."""
    page = await new_page(browser, stats, who)
    try:
        await page.goto(f"{url}/playground")
        player = page.locator(PLAYER)
        await player.locator(".pp-rewind").click()
        await player.locator(".pp-play").click()
        await page.wait_for_function("""() => {
            const host = document.querySelector('[data-testid="stBidiComponentIsolated"]');
            const player = host && host.shadowRoot && host.shadowRoot.querySelector('.pp');
            return player && player.dataset.playToFirstFrameMs !== undefined;
        }""", polling=100)
        return float(await player.get_attribute("data-play-to-first-frame-ms")) / 1000
    finally:
        await page.context.close()


async def new_visitors(browser: Browser, url: str, stats: Stats, args, in_training: asyncio.Queue) -> None:
    """Newcomers open Home in a real browser, one after another, while the class trains, then press
    ▶ Play on the playground."""
    for _ in range(args.students):
        await in_training.get()
    for k in range(args.probes):
        try:
            stats.new_visitor_home.append(await open_home(browser, url, stats, f"new visitor {k}", stats.phases))
            stats.play_first_frame.append(await play_on_playground(browser, url, stats, f"new visitor {k}"))
        except Exception as err:
            stats.errors.append(f"new visitor {k}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
        await asyncio.sleep(1.0)


def _tree(pid: int):
    """psutil's processes of the server and of every process it started (the Dask workers), or None."""
    try:
        import psutil
    except ImportError:
        return None
    server = psutil.Process(pid)
    return psutil, [server, *server.children(recursive=True)]


def _summed(pid: int, read) -> tuple[float, float] | None:
    """``read(process)`` of the server, and summed over the processes it started (one just ended: 0);
    None without psutil."""
    tree = _tree(pid)
    if tree is None:
        return None
    psutil, processes = tree
    values = []
    for process in processes:
        try:
            values.append(read(process))
        except psutil.Error:          # a worker that just ended
            values.append(0.0)
    return values[0], sum(values[1:])


def rss_bytes(pid: int) -> int:
    """The resident memory of the server and of every process it started (the Dask workers)."""
    summed = _summed(pid, lambda process: process.memory_info().rss)
    if summed is None:
        status = Path(f"/proc/{pid}/status").read_text()
        return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(sum(summed))


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """CPU seconds (user + system) used so far by the server process and by the processes it started
    (the Dask workers); None without psutil."""
    return _summed(pid, lambda process: sum(process.cpu_times()[:2]))


async def sample_rss(pid: int, stats: Stats) -> None:
    while True:
        stats.rss_peak = max(stats.rss_peak, rss_bytes(pid))
        await asyncio.sleep(0.5)


async def classroom(args, engine: str, students: int) -> tuple[Stats, float]:
    stats = Stats()
    args.students = students
    with running_server(timeout=180, env={"SEMA_ENGINE": engine}) as server:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            warmup = await open_home(browser, server.url, stats, "warm-up")   # imports: no student's cost
            for k in range(args.probes // 2 or 1):                            # the baseline: an idle server
                stats.idle_home.append(await open_home(browser, server.url, stats, f"idle visitor {k}", stats.idle_phases))
            recording = await record_browser(browser, server.url, stats)
            sampler = asyncio.create_task(sample_rss(server.process.pid, stats))
            in_training: asyncio.Queue = asyncio.Queue()
            cpu_before = cpu_seconds(server.process.pid)
            await asyncio.gather(new_visitors(browser, server.url, stats, args, in_training),
                                 *(student(i, server.url, recording, stats, args, in_training)
                                   for i in range(args.students)))
            cpu_after = cpu_seconds(server.process.pid)
            if cpu_before and cpu_after:
                stats.cpu = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])
            sampler.cancel()
            await browser.close()
        if server.process.poll() is not None:
            stats.errors.append(f"the server died:\n{server.output()[-2000:]}")
        stats.server_problems = [line for line in server.output().splitlines()
                                 if any(word in line for word in ("WARNING", "ERROR", "Exception", "Error:"))]
    return stats, warmup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 + 3 students, 2 new visitors, short caps")
    parser.add_argument("--check", action="store_true", help="exit 1 if any RATIO misses its target")
    parser.add_argument("--students", type=int, default=None,
                        help="concurrent sessions in the classroom mode (default 40, quick 3)")
    parser.add_argument("--baseline-students", type=int, default=None,
                        help="sessions of today's in-process set-up, run first (default 20, quick 2; 0: skip)")
    parser.add_argument("--probes", type=int, default=None, help="new visitors opening Home (default 10, quick 2)")
    parser.add_argument("--train-cap", type=float, default=None, help="seconds a toy run may train (default 240)")
    args = parser.parse_args()
    classroom_students = args.students or (3 if args.quick else 40)
    baseline = args.baseline_students if args.baseline_students is not None else (2 if args.quick else 20)
    args.probes = args.probes or (2 if args.quick else 10)
    args.train_cap = args.train_cap or (60 if args.quick else 240)
    args.play_seconds = 2 if args.quick else 5

    header(f"load_classroom: {baseline} students in-process, then {classroom_students} with SEMA_ENGINE=dask "
           f"(websocket protocol) + {args.probes} new visitors (Chromium) each, one server, "
           f"SEMA_MAX_JOBS={os.environ.get('SEMA_MAX_JOBS', 'default')}")
    start = time.perf_counter()
    report = Report()
    if baseline:
        stats, warmup = asyncio.run(classroom(args, "inline", baseline))
        print(f"## today: {baseline} students, SEMA_ENGINE=inline (context, not judged)")
        figures(report, stats, warmup, baseline, args, "today_")
    stats, warmup = asyncio.run(classroom(args, "dask", classroom_students))
    print(f"## the classroom server mode: {classroom_students} students, SEMA_ENGINE=dask")
    home, slider, play, finished = figures(report, stats, warmup, classroom_students, args, "")
    report.time("whole_run_wall", time.perf_counter() - start)
    report.ratio("errors", len(stats.errors), 0)
    report.ratio("new_visitor_home_p95_seconds", home, 3.0)
    report.ratio("home_slider_redraw_p95_seconds", slider, 1.5)
    report.ratio("playground_play_to_first_frame_p95_seconds", play, 0.5)
    report.ratio("toy_trainings_finished_within_cap", finished, classroom_students, ">=")
    report.ratio("server_and_workers_rss_peak_gib", stats.rss_peak / GIB, 4.0)
    report.finish(args.check)


def figures(report: Report, stats: Stats, warmup: float, students: int, args, prefix: str):
    """Print one class's figures (``prefix`` names the set-up); returns the judged ones."""
    report.time(f"{prefix}server_warmup_first_home", warmup)
    for kind, measured in (("first_chart", stats.first_chart), ("rerun", stats.rerun)):
        for what, values in measured.items():
            if values:                   # empty when every student failed that step (counted as errors)
                report.time(f"{prefix}{kind}_{what}_p50", values)
                report.quantile(f"{prefix}{kind}_{what}_p95", values, 0.95)
    if stats.training:
        report.time(f"{prefix}toy_default_training_until_finished", stats.training)
        print(f"# {prefix or 'classroom: '}toy runs' training time: fastest {min(stats.training):.1f} s, "
              f"p95 {quantile(stats.training, 0.95):.1f} s, slowest {max(stats.training):.1f} s")
    print(f"# {prefix or 'classroom: '}toy runs finished: {len(stats.training)} of {students} within "
          f"{args.train_cap:g} s ({stats.unfinished} still training at the cap)")
    for stall in stats.stalls[:10]:
        print(f"# {prefix}STILL TRAINING {stall}")
    for error in stats.errors[:20]:
        print(f"# {prefix}ERROR {error}")
    for line in stats.server_problems[:10]:
        print(f"# {prefix}SERVER {line[:300]}")
    print(f"# {prefix}errors: {len(stats.errors)}; server + workers RSS peak {stats.rss_peak / GIB:.2f} GiB")
    print(f"# {prefix}websocket messages the server sent the students: {stats.messages:,} "
          f"({stats.messages / max(students, 1):,.0f} per student)")
    if stats.cpu:                                  # where the class's CPU went: the server every student shares
        report.time(f"{prefix}server_cpu_seconds_during_class", stats.cpu[0])
        report.time(f"{prefix}workers_cpu_seconds_during_class", stats.cpu[1])
        print(f"# {prefix}the server process used {stats.cpu[0]:.0f} CPU s while the class trained "
              f"({stats.cpu[0] / max(students, 1):.2f} s per student), the processes it started {stats.cpu[1]:.0f} s")
    for what, values in stats.phases.items():      # where a new visitor's time went, idle and under load
        report.time(f"{prefix}idle_server_home_{what.replace(' ', '_')}_p50", stats.idle_phases[what])
        report.time(f"{prefix}new_visitor_home_{what.replace(' ', '_')}_p50", values)
    home = report.quantile(f"{prefix}new_visitor_home_drawn_p95", stats.new_visitor_home, 0.95) \
        if stats.new_visitor_home else float("inf")
    idle = report.quantile(f"{prefix}idle_server_home_drawn_p95", stats.idle_home, 0.95)
    print(f"# {prefix}the same Home on the idle server, before the class came: p95 {idle:.2f} s "
          f"(under load: {home / idle:.2f} times that)")
    slider = stats.rerun.get("home_slider") or [float("inf")]
    play = report.quantile(f"{prefix}playground_play_to_first_frame_p95", stats.play_first_frame, 0.95) \
        if stats.play_first_frame else float("inf")
    slider_p95 = quantile(slider, 0.95)
    return home, slider_p95, play, len(stats.training)


if __name__ == "__main__":
    main()
