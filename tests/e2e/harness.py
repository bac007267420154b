"""What the browser tests share: one server and one headless Chromium per module, a page per
test that fails on any exception element or browser-console error, and "wait until it changed".

Test modules import the fixtures (``from harness import browser, server``) rather than
defining them in a conftest.py: ``tests/conftest.py`` is imported as ``conftest`` by
the other tests, and a second conftest.py here would take its place.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from screenshot import BASE_PATH_PROBE, CHROMIUM, CHROMIUM_ARGS, ROOT, Server, running_server

ARTIFACTS = ROOT / "artifacts" / "e2e"
EXCEPTION = '[data-testid="stException"]'
# url path -> the page's title in app.py's navigation
PAGES = {"": "Home", "playground": "Optimizer playground", "toy": "Decision boundaries",
         "images": "Image classification", "landscape": "Flatness vs sharpness",
         "theory": "Theory: noisy quadratic"}
TIMEOUT_MS = 120_000   # generous: a 2-core machine under load can take long to start a page


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """``streamlit run app.py`` for this module."""
    with running_server(timeout=180) as running:
        yield running


@contextlib.contextmanager
def visit(browser: Browser, url: str, width: int = 1400, height: int = 900) -> Iterator[Page]:
    """A page in a fresh browser context (a new Streamlit session) at ``url``.

    On leaving, it asserts that the page showed no exception element, raised no JavaScript
    error and logged no console error (other than Streamlit's base-path probe).
    """
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []

    def on_console(message) -> None:
        url = message.location.get("url", "")
        if message.type == "error" and not BASE_PATH_PROBE.match(url):
            errors.append(f"console: {message.text} at {url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: (errors.append(f"dialog opened: {dialog.message}"), dialog.dismiss()))
    try:
        page.goto(url)
        yield page
        exceptions = page.locator(EXCEPTION)
        assert exceptions.count() == 0, f"exception shown on {page.url}: {exceptions.first.inner_text()[:500]}"
        assert not errors, f"browser errors on {page.url}: {errors}"
    finally:
        context.close()


def screenshot(page: Page, name: str) -> None:
    """A full-page PNG in artifacts/e2e/ (kept by CI as a test artifact)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)          # no tooltip of the last button pressed over the picture
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def content(locator: Locator) -> str:
    """What a chart shows: the markup of its SVG, or the address of its image (new picture, new address)."""
    return locator.inner_html()


def wait_for_change(page: Page, selector: str, before: str, index: int = 0) -> str:
    """Wait until the ``index``-th element matching ``selector`` shows something else than ``before``."""
    page.wait_for_function(
        """([selector, index, before]) => {
            const element = document.querySelectorAll(selector)[index];
            return element !== undefined && element.innerHTML !== before;
        }""", arg=[selector, index, before], timeout=TIMEOUT_MS, polling=200)
    return page.locator(selector).nth(index).inner_html()


def wait_for_text(page: Page, selector: str, pattern: str) -> str:
    """Wait until some element matching ``selector`` has text matching the regular expression; that text.

    The text is the one seen when it matched, read in the same poll: reading it again afterwards raced
    with a rerun that replaced the element (a StopIteration in the full suite)."""
    handle = page.wait_for_function(
        """([selector, pattern]) => {
               const hit = [...document.querySelectorAll(selector)].find(e => new RegExp(pattern).test(e.innerText));
               return hit === undefined ? null : hit.innerText;
           }""",
        arg=[selector, pattern], timeout=TIMEOUT_MS, polling=200)
    text = handle.json_value()
    assert re.search(pattern, text), text
    return text


def slider(page: Page, label: str, root: str = "") -> Locator:
    """The keyboard-operable thumb of the (select) slider labelled ``label``."""
    return page.locator(f'{root} [data-testid="stSlider"]').filter(
        has=page.get_by_text(label, exact=True)).get_by_role("slider")


def nudge(thumb: Locator, key: str = "ArrowRight") -> None:
    """Move a slider one step with the keyboard, as a student with arrow keys would."""
    thumb.focus()
    thumb.press(key)
