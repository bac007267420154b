"""A page URL opened first on a freshly started server (a student follows a shared link).

With a folder named ``pages/`` next to app.py, Streamlit's old multipage mode answers the
very first request for a page URL by running the page file alone, without app.py's
navigation; the pages therefore live in ``app_pages/``.  This test keeps it that way.
"""
import pytest

from harness import TIMEOUT_MS, browser, screenshot, visit  # noqa: F401
from screenshot import running_server, wait_until_idle

pytestmark = pytest.mark.e2e


def test_first_request_to_a_page_url_on_a_fresh_server_shows_the_app_navigation(browser):
    with running_server(timeout=180) as server, visit(browser, f"{server.url}/playground") as page:
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        screenshot(page, "fresh_server_playground")
        titles = page.locator('[data-testid="stSidebarNav"] [data-testid="stMarkdownContainer"]').all_inner_texts()
        assert "Optimizer playground" in titles and "Decision boundaries" in titles, (
            f"the sidebar shows {titles}, not app.py's page titles: the page ran without app.py")
        assert "Optimizer playground" in page.locator("h1").first.inner_text()
