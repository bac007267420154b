"""The playground's path player in a real browser: it plays, scrubs and takes a new start.

The animation runs in the browser (a components-v2 element, sema_demo/ui/path_player):
while it plays the websocket must stay silent, and a click on the surface must come back
to Python as a new start whose paths the page sends at once.

    python -m pytest tests/e2e/test_playground_player.py -m e2e -s    (-s prints the figures)
"""
import re
import time

import pytest

from harness import TIMEOUT_MS, browser, screenshot, server, visit  # noqa: F401
from screenshot import wait_until_idle

pytestmark = pytest.mark.e2e

PLAYER = ".pp"                    # Playwright's CSS locators reach into the element's shadow root
# the same element for page.wait_for_function, which runs in the page and must open the shadow root
FIND_PLAYER = """() => {
    const host = document.querySelector('[data-testid="stBidiComponentIsolated"]');
    return host && host.shadowRoot && host.shadowRoot.querySelector('.pp');
}"""
PLAY_SECONDS = 3.0


def open_player(browser, server, frames: list | None = None):
    """A visit to the playground, waiting for the player's picture; ``frames`` collects websocket frames."""
    visiting = visit(browser, "about:blank")
    page = visiting.__enter__()
    if frames is not None:
        def watch(ws) -> None:
            ws.on("framesent", lambda payload: frames.append(("sent", time.monotonic())))
            ws.on("framereceived", lambda payload: frames.append(("received", time.monotonic())))
        page.on("websocket", watch)
    page.goto(f"{server.url}/playground")
    wait_until_idle(page, timeout_ms=TIMEOUT_MS)
    page.wait_for_function(f"""() => {{
        const player = ({FIND_PLAYER})();
        const image = player && player.querySelector('.pp-surface');
        return image && image.complete && image.naturalWidth > 0;
    }}""", timeout=TIMEOUT_MS)
    return visiting, page


def step(page) -> int:
    return int(page.locator(PLAYER).get_attribute("data-step"))


def drawing(page) -> str:
    """What the paths canvas shows now."""
    return page.locator(f"{PLAYER} .pp-paths").evaluate("canvas => canvas.toDataURL()")


def test_it_plays_in_the_browser_and_sends_no_message_per_frame(browser, server):
    frames: list = []
    visiting, page = open_player(browser, server, frames)
    try:
        assert step(page) == 1000                          # it opens on the finished run
        page.locator(f"{PLAYER} .pp-rewind").click()
        assert step(page) == 0
        page.wait_for_timeout(1000)                        # let the session settle
        before = len(frames)
        page.locator(f"{PLAYER} .pp-play").click()
        page.wait_for_timeout(PLAY_SECONDS * 1000)
        during = frames[before:]
        played = step(page)
        first_frame_ms = float(page.locator(PLAYER).get_attribute("data-play-to-first-frame-ms"))
        print(f"\n# Play -> first frame {first_frame_ms:.1f} ms; steps shown after {PLAY_SECONDS:g} s: {played}; "
              f"websocket frames while playing: {len(during)} ({len(frames)} in all)")
        assert 0 < played < 1000, "it moves at the live speed (≈ 200 steps/s), so it is still playing"
        assert page.locator(f"{PLAYER}.pp-playing").count() == 1
        assert during == [], f"websocket frames while playing: {during}"
        screenshot(page, "playground_player_playing")
        page.locator(f"{PLAYER} .pp-play").click()         # pause holds the frame
        held = step(page)
        page.wait_for_timeout(500)
        assert step(page) == held and page.locator(f"{PLAYER}.pp-playing").count() == 0
        page.locator(f"{PLAYER} .pp-speed").select_option("1000")   # faster: it plays to the end by itself
        page.locator(f"{PLAYER} .pp-play").click()
        page.wait_for_function(f"() => ({FIND_PLAYER})().dataset.step === '1000'", timeout=TIMEOUT_MS)
        page.wait_for_function(f"() => !({FIND_PLAYER})().classList.contains('pp-playing')", timeout=TIMEOUT_MS)
        page.wait_for_url(re.compile(r"pg_speed=1000"))    # the speed is part of the link
    finally:
        visiting.__exit__(None, None, None)


def test_the_scrubber_moves_the_frame(browser, server):
    visiting, page = open_player(browser, server)
    try:
        end = drawing(page)
        scrubber = page.locator(f"{PLAYER} .pp-scrub")
        scrubber.fill("250")
        assert step(page) == 250 and drawing(page) != end
        assert scrubber.get_attribute("aria-valuetext") == "step 250 of 1,000"
        # the frame's badge says the step the scrubber and the loss cursor show: one step, not 656 vs 640
        assert page.locator(PLAYER).get_attribute("data-label").startswith("step 250 / 1,000")
        assert page.locator(PLAYER).get_attribute("data-loss-cursor-step") == "250"
        assert "SEMA" in page.locator(PLAYER).get_attribute("data-loss-readout")
        scrubber.press("ArrowRight")                       # the keyboard moves it one step
        assert step(page) == 251
        screenshot(page, "playground_player_scrubbed")
    finally:
        visiting.__exit__(None, None, None)


def test_a_click_on_the_surface_sets_the_start_and_the_paths_change(browser, server):
    visiting, page = open_player(browser, server)
    try:
        player = page.locator(PLAYER)
        assert player.get_attribute("data-start") == "-2.4,2.6"
        before = drawing(page)
        canvas = page.locator(f"{PLAYER} .pp-paths")
        box = canvas.bounding_box()
        # a point right of the middle of the plot area (the axes span ~10-82 % across, ~5-77 % down)
        clicked = time.monotonic()
        canvas.click(position={"x": box["width"] * 0.6, "y": box["height"] * 0.45})
        page.wait_for_function(f"() => ({FIND_PLAYER})().dataset.start !== '-2.4,2.6'", timeout=TIMEOUT_MS)
        print(f"\n# click on the surface -> new paths in the browser: {time.monotonic() - clicked:.2f} s")
        x, y = map(float, player.get_attribute("data-start").split(","))
        assert 0 < x < 3 and -3 < y < 3 and (x, y) != (-2.4, 2.6)
        page.wait_for_url(re.compile(rf"x0={x:g}"))       # the start is part of the link
        start_input = page.locator('[data-testid="stSidebar"] [data-testid="stNumberInput"] input').first
        assert float(start_input.input_value()) == pytest.approx(x)
        page.wait_for_function(f"() => Number(({FIND_PLAYER})().dataset.step) > 0", timeout=TIMEOUT_MS)  # it replays
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        assert drawing(page) != before
        screenshot(page, "playground_player_new_start")
    finally:
        visiting.__exit__(None, None, None)
