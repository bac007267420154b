"""The app in a real browser: every page opens cleanly, reacts to its controls, links work.

Headless Debian Chromium driven by Playwright against ``streamlit run app.py``; every test
uses a fresh browser context (a new Streamlit session) and fails on an exception element,
a JavaScript error or a console error.  Screenshots land in artifacts/e2e/.

    python -m pytest tests/e2e -m e2e
"""
import re
import time
from urllib.parse import parse_qs, urlparse

import pytest

from harness import (EXCEPTION, PAGES, TIMEOUT_MS, browser, content, nudge, screenshot,  # noqa: F401
                     server, slider, visit, wait_for_change, wait_for_text)
from screenshot import wait_until_idle
from sema_demo.ui.home import PARAMS as HOME_PARAMS

pytestmark = pytest.mark.e2e

CHART = '[data-testid="stVegaLiteChart"]'
PICTURE = '[data-testid="stImage"]'
PLAYER = '[data-testid="stBidiComponentIsolated"]'   # the playground's path player (a components-v2 element)
PROGRESS = '[data-testid="stProgress"]'
METRIC = '[data-testid="stMetric"]'
# Home's α slider: its default and the next choice (what one press of → moves it to).
HOME_ALPHA = HOME_PARAMS["home_alpha"].default
NEXT_ALPHA = HOME_PARAMS["home_alpha"].choices[list(HOME_PARAMS["home_alpha"].choices).index(HOME_ALPHA) + 1]
BOUNDARIES = ".bv"          # the toy page's boundary view (components v2; Playwright's CSS reaches its shadow root)
FIGURE = {"toy": BOUNDARIES, "images": CHART}   # what a training page redraws: decision panels, curves
# the share of a canvas's pixels that are not near-white: the heatmap was painted
PAINTED = """canvas => { const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0; for (let i = 0; i < d.length; i += 4) if (Math.min(d[i], d[i + 1], d[i + 2]) < 230) n++;
    return n / (d.length / 4); }"""


def current_page(page) -> str:
    """The title of the page the sidebar navigation marks as the current one."""
    return page.locator('[data-testid="stSidebarNav"] a[aria-current="page"] '
                        '[data-testid="stMarkdownContainer"]').inner_text().strip()


TRAINING = ("toy", "images")   # pages that start training as they open


def wait_until_drawn(page, path: str) -> None:
    """Idle for most pages; a training page keeps running, so there: its progress bar and a figure."""
    if path not in TRAINING:
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        return
    wait_for_text(page, PROGRESS, r"Epoch \d+ of \d+")
    page.locator(f'[data-testid="stMain"] {FIGURE[path]}').first.wait_for()


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_opens_with_its_title_and_a_chart_and_no_error(browser, server, path):
    with visit(browser, f"{server.url}/{path}") as page:
        wait_until_drawn(page, path)
        assert page.locator(EXCEPTION).count() == 0
        heading = page.locator("h1").first.inner_text()
        expected = "SEMA Lab" if path == "" else PAGES[path].split(":")[0]
        assert expected.lower() in heading.lower()
        # the page opens with a figure (a lazily loaded element may still be a placeholder when idle)
        page.locator(f"{CHART}, {PICTURE}, {PLAYER}").first.wait_for(timeout=TIMEOUT_MS)
        assert current_page(page) == PAGES[path]
        screenshot(page, f"open_{path or 'home'}")


def test_home_alpha_slider_redraws_the_walk_and_lands_in_the_url(browser, server):
    with visit(browser, server.url) as page:
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        before = content(page.locator(PICTURE).first)
        thumb = slider(page, "EMA momentum α (decay)")
        nudge(thumb)                                   # the default α -> the next choice
        wait_for_change(page, PICTURE, before)
        assert thumb.get_attribute("aria-valuetext").startswith(f"{NEXT_ALPHA:g}")
        page.wait_for_url(re.compile(rf"home_alpha={re.escape(str(NEXT_ALPHA))}"))
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        screenshot(page, f"home_alpha_{NEXT_ALPHA:g}")


@pytest.mark.parametrize("path", TRAINING)
def test_training_pages_play_trains_and_redraws_and_pause_holds(browser, server, path):
    with visit(browser, f"{server.url}/{path}") as page:
        wait_until_drawn(page, path)                     # it trains by itself as it opens
        page.get_by_role("button", name="⏮ Reset").click()
        wait_for_text(page, PROGRESS, r"Epoch 0 of \d+ · paused")
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        figure = f'[data-testid="stMain"] {FIGURE[path]}'
        before = content(page.locator(figure).first)
        draws = int(page.locator(BOUNDARIES).get_attribute("data-draws")) if path == "toy" else 0
        page.get_by_role("button", name="▶ Play").click()
        wait_for_text(page, PROGRESS, r"Epoch [1-9]\d* of \d+ · training")
        if path == "toy":           # the browser paints the panels from each tick's numbers: no picture is sent
            view = page.locator(BOUNDARIES)
            deadline = time.monotonic() + TIMEOUT_MS / 1000
            while int(view.get_attribute("data-draws")) <= draws + 1 and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            assert int(view.get_attribute("data-draws")) > draws + 1, "the panels are repainted while it trains"
            canvases = page.locator(f"{BOUNDARIES} .bv-wrap canvas")
            assert canvases.count() == 3 and page.locator(f"{figure} img").count() == 0
            assert min(canvases.nth(i).evaluate(PAINTED) for i in range(3)) > 0.5
        else:
            wait_for_change(page, figure, before)
        screenshot(page, f"{path}_training")
        page.get_by_role("button", name="⏸ Pause").click()
        paused = wait_for_text(page, PROGRESS, r"Epoch [1-9]\d* of \d+ · (paused|finished)")
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        assert page.locator(PROGRESS).inner_text() == paused, "a paused run stays where it was"
        screenshot(page, f"{path}_paused")


def test_landscape_clip_slider_redraws_the_slices(browser, server):
    with visit(browser, f"{server.url}/landscape") as page:
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)   # trains the quick default and measures it
        # Where one timed pass says measuring takes longer than AUTO_SECONDS (a loaded machine: the
        # whole suite in parallel), the page waits for a click with its estimate: press it, as a
        # student would.
        measure = page.get_by_role("button", name=re.compile(r"^📐 Measure this run"))
        if measure.count():
            measure.click()
            wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        before = content(page.locator(CHART).first)
        nudge(slider(page, "Colour/axis clip (loss)"))               # auto -> 0.5
        wait_for_change(page, CHART, before)
        page.wait_for_url(re.compile(r"clip=0\.5"))
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        screenshot(page, "landscape_clip_0.5")


def test_theory_learning_rate_slider_changes_the_numbers(browser, server):
    with visit(browser, f"{server.url}/theory") as page:
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        before = content(page.locator(METRIC).first)
        thumb = slider(page, "Learning rate η")
        nudge(thumb)                                   # 0.5 -> 0.75
        after = wait_for_change(page, METRIC, before)
        assert thumb.get_attribute("aria-valuetext") == "0.75" and after != before
        page.wait_for_url(re.compile(r"nqm_lr=0\.75"))
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        screenshot(page, "theory_lr_0.75")


def test_sidebar_navigation_moves_between_pages_in_one_session(browser, server):
    with visit(browser, server.url) as page:
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        nav = page.locator('[data-testid="stSidebarNav"]')
        for path in ("playground", "theory", ""):
            nav.get_by_role("link", name=PAGES[path]).click()
            page.wait_for_url(f"{server.url}/{path}")
            wait_until_idle(page, timeout_ms=TIMEOUT_MS)
            assert current_page(page) == PAGES[path]
            assert page.locator(EXCEPTION).count() == 0
        page.get_by_role("link", name="Theory", exact=True).click()        # Home's "Explore" cards
        page.wait_for_url(f"{server.url}/theory")
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        assert "noisy quadratic" in page.locator("h1").first.inner_text()


def test_a_shared_link_restores_the_same_controls(browser, server):
    query = "?nqm_lr=0.2&nqm_alpha=0.99&nqm_switch=100&nqm_beta=0.5"
    with visit(browser, f"{server.url}/theory{query}") as page:
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        assert slider(page, "Learning rate η").get_attribute("aria-valuetext") == "0.2"
        assert slider(page, "EMA momentum α (decay)").get_attribute("aria-valuetext").startswith("0.99 ")
        assert slider(page, "Switch every K steps (SEMA)").get_attribute("aria-valuetext") == "100"
        assert slider(page, "Momentum β (optimizer)").input_value() == "0.5"
        before = content(page.locator(METRIC).first)
        nudge(slider(page, "Dimension"), "ArrowLeft")                      # 100 -> 50, into the URL
        page.wait_for_url(re.compile(r"nqm_dim=50"))
        wait_for_change(page, METRIC, before)
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        shared = page.url
        metrics = page.locator(METRIC).all_inner_texts()
    assert parse_qs(urlparse(shared).query) == {"nqm_lr": ["0.2"], "nqm_alpha": ["0.99"], "nqm_switch": ["100"],
                                                "nqm_beta": ["0.5"], "nqm_dim": ["50"]}
    with visit(browser, shared) as page:                                    # a classmate opens the link
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        assert slider(page, "Dimension").get_attribute("aria-valuetext") == "50"
        assert page.locator(METRIC).all_inner_texts() == metrics          # the same numbers
        screenshot(page, "theory_shared_link")


def test_a_hostile_link_is_explained_and_never_runs_a_script(browser, server):
    query = "?home_alpha=%3Cscript%3Ealert(1)%3C/script%3E&home_epoch=1e9&home_noise=nan&bogus=1"
    with visit(browser, f"{server.url}/{query}") as page:      # visit() fails on any dialog
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        warning = page.locator('[data-testid="stAlert"]').filter(has_text="could not be used").inner_text()
        assert "could not be used" in warning and "home_epoch" in warning
        assert slider(page, "EMA momentum α (decay)").get_attribute("aria-valuetext").startswith(f"{HOME_ALPHA:g}")
        assert page.locator("script:has-text('alert(1)')").count() == 0
        screenshot(page, "home_hostile_link")


def test_two_tabs_of_one_browser_are_separate_sessions(browser, server):
    with visit(browser, f"{server.url}/theory") as first:
        wait_until_idle(first, timeout_ms=TIMEOUT_MS)
        second = first.context.new_page()                  # same browser, same cookies: a second tab
        second.goto(f"{server.url}/theory")
        wait_until_idle(second, timeout_ms=TIMEOUT_MS)
        numbers = second.locator(METRIC).all_inner_texts()
        before = content(first.locator(METRIC).first)
        nudge(slider(first, "Learning rate η"))               # 0.5 -> 0.75 in the first tab only
        wait_for_change(first, METRIC, before)
        wait_until_idle(first, timeout_ms=TIMEOUT_MS)
        second.bring_to_front()
        wait_until_idle(second, timeout_ms=TIMEOUT_MS)
        assert slider(second, "Learning rate η").get_attribute("aria-valuetext") == "0.5"
        assert second.locator(METRIC).all_inner_texts() == numbers
        assert second.locator(EXCEPTION).count() == 0
