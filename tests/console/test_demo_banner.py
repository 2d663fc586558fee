"""`vidgate demo` tells you where the console is, and the console is there."""

from __future__ import annotations

from pathlib import Path

import httpx

from providers.simkit import free_port
from tests.integration.processes import running, wait_for


def test_the_demo_banner_prints_the_console_url_and_it_serves(tmp_path: Path) -> None:
    port = free_port()
    with running("vidgate demo", ["demo", "--port", str(port)], tmp_path / "demo.log") as demo:
        url = f"http://127.0.0.1:{port}/console"
        wait_for("the console URL in the banner", lambda: f"{url}   (sign in with sk-demo)" in demo.output(), [demo])
        page = wait_for("the console", lambda: (r := httpx.get(f"{url}/sign-in", timeout=2)).status_code == 200 and r, [demo])
        assert "Sign in" in page.text
        assert httpx.get(f"{url}/compare", timeout=2, follow_redirects=False).headers["location"] == "/console/sign-in"
