"""Take screenshots of app pages in headless Chromium (a developer tool and a test helper).

    python tests/e2e/screenshot.py playground /tmp/playground.png [--wait 8] [--width 1400]

Starts ``streamlit run app.py`` on a free port, opens ``/<url_path>`` (empty for Home),
waits for the page to settle and saves a full-page PNG.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# Opened at /<page>, Streamlit's client first probes /<page>/_stcore/{health,host-config}, gets a
# 404 (which Chromium logs as a console error) and then uses the base path: harmless by design.
BASE_PATH_PROBE = re.compile(r"^https?://[^/]+/[\w-]+/_stcore/(health|host-config)$")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running ``streamlit run app.py``: its base URL, its process and its log file."""

    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_server(timeout: float = 60.0, env: dict | None = None) -> Iterator[Server]:
    """Run the app on a free loopback port; yields the :class:`Server`.

    Its output goes to a file, not a pipe: nobody reads a pipe while tests run, and a full
    one would block the server on its next log line.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless=true",
           f"--server.port={port}", "--server.address=127.0.0.1", "--browser.gatherUsageStats=false"]
    with tempfile.TemporaryDirectory(prefix="sema_server_") as folder:
        log = Path(folder) / "streamlit.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, **(env or {})})
        server = Server(f"http://127.0.0.1:{port}", proc, log)
        try:
            deadline = time.time() + timeout
            while True:
                try:
                    urllib.request.urlopen(server.url + "/_stcore/health", timeout=2)
                    break
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"streamlit did not start:\n{server.output()}") from None
                    time.sleep(0.3)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def streamlit_server(timeout: float = 60.0, env: dict | None = None) -> Iterator[str]:
    """Run the app on a free loopback port; yields its base URL."""
    with running_server(timeout, env) as server:
        yield server.url


def wait_until_idle(page, timeout_ms: int = 90_000, quiet_ms: int = 1500) -> None:
    """Wait until the app has drawn something and Streamlit has stopped running for ``quiet_ms``
    (no running indicator, no element left over from the previous run).

    The first run of a page can take a while to *start* (imports on a loaded machine), so
    "no running indicator" alone is not enough: the main block must also hold elements.
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        """([quiet]) => {
            const busy = document.querySelector('[data-testid="stStatusWidget"]')
                || document.querySelector('[data-testid="stMain"] [data-stale="true"]');   // not yet redrawn
            const drawn = document.querySelectorAll('[data-testid="stMain"] [data-testid="stElementContainer"]').length > 2;
            const now = Date.now();
            if (busy || !drawn) { window.__semaQuietSince = null; return false; }
            window.__semaQuietSince = window.__semaQuietSince || now;
            return now - window.__semaQuietSince >= quiet;
        }""", arg=[quiet_ms], timeout=timeout_ms, polling=250)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", help="url path of the page ('' or 'home' for Home), may include ?query")
    parser.add_argument("out", help="PNG file to write")
    parser.add_argument("--wait", type=float, default=3.0, help="extra seconds after the page is idle")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    path = "" if args.page in ("", "home") else args.page
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(f"{url}/{path}")
        wait_until_idle(page)
        page.wait_for_timeout(int(args.wait * 1000))
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
