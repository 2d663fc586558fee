"""The docs UI at /schema works with the network off: the page and everything it loads
come from vidgate itself (issue 12)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import httpx
import pytest

from tests.integration.conftest import Stack


class _Refs(HTMLParser):
    """Every URL the page loads: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.scripts.append(data)


def test_the_docs_page_and_its_assets_name_no_other_host_and_are_served(stack: Stack) -> None:
    page = httpx.get(f"{stack.base}/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    refs = _Refs()
    refs.feed(page.text)
    assert refs.urls, "the page loads nothing?"
    assert not re.search(r"(?i)\b(https?:)?//[a-z0-9.-]+", page.text), "the page names another host"
    # the inline script fetches the document from here too
    assert any('url: "/schema/openapi.json"' in script for script in refs.scripts)
    assert httpx.get(f"{stack.base}/schema/openapi.json").status_code == 200
    kinds = {}
    for url in refs.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = httpx.get(f"{stack.base}{url}")
        assert asset.status_code == 200, url
        kinds[url.rsplit(".", 1)[-1]] = asset
    assert set(kinds) >= {"css", "js", "png"}
    css = kinds["css"].text
    assert "@import" not in css
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css), "the stylesheet loads from another host"


def test_the_docs_ui_renders_in_headless_chromium_with_the_network_off(stack: Stack) -> None:
    """Every request but loopback goes to a proxy that does not exist, so anything the page
    needed from elsewhere would fail; Swagger UI still renders the operations."""
    if shutil.which("chromium") is None:
        pytest.fail("chromium is missing: install Debian's chromium package (.ci/run does)", pytrace=False)
    dom = subprocess.run(
        [
            "chromium",
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=127.0.0.1",
            "--virtual-time-budget=10000",
            "--dump-dom",
            f"{stack.base}/schema",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    ).stdout
    assert "opblock" in dom  # Swagger UI's operation blocks
    for operation in ("/v1/videos/{video_id}/events", "/v1/comparisons", "/v1/files"):
        assert operation in dom
