"""User text in real Chromium: markdown in an uploaded CSV is shown as text and fetches nothing."""
from __future__ import annotations

import pytest

from harness import TIMEOUT_MS, browser, screenshot, server, visit  # noqa: F401  (fixtures)
from screenshot import wait_until_idle

pytestmark = pytest.mark.e2e

CELL, HEADER = "[x](https://evil.test/a)", "![i](http://evil.test/t.png)"   # within the 30 quoted characters
HOSTILE = {"cell": (CELL, f"x1,x2,label\n{CELL},2,0\n" + "1,2,1\n" * 20),
           "header": (HEADER, f"{HEADER},x2,label\n" + "1,2,1\n" * 20)}


def test_markdown_in_an_uploaded_csv_is_plain_text_with_no_link_and_no_fetch(browser, server, tmp_path):
    with visit(browser, f"{server.url}/toy?dataset=csv", height=1400) as page:
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        wait_until_idle(page, timeout_ms=TIMEOUT_MS)
        for where, (markdown, text) in HOSTILE.items():
            path = tmp_path / f"{where}.csv"
            path.write_text(text)
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
            alert = page.locator('[data-testid="stAlert"]').filter(has_text=markdown)
            alert.wait_for(timeout=TIMEOUT_MS)          # shown as written: the brackets are there
            wait_until_idle(page, timeout_ms=TIMEOUT_MS)
            assert "This CSV cannot be used" in alert.inner_text()
            assert alert.locator("a").count() == 0 and alert.locator("img").count() == 0, where
            screenshot(page, f"toy_csv_markdown_{where}")
        assert not [url for url in requests if "evil.test" in url], "the browser fetched a URL from the CSV"
