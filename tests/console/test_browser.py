"""The console in a real browser: headless Chromium (Debian's package, never a downloaded
build) driven by Playwright against the demo stack on loopback.

Sign in, compare every demo provider blind with a first frame uploaded from disk, watch the
cards complete over SSE, play the videos (and play, seek and pause them together), vote,
see the providers revealed and the win rate on the stats page. Every page is screenshotted
(into $VIDGATE_TEST_ARTIFACTS/console-screenshots when set, else the test's tmp_path; the
paths and page weights are printed in the run's output), every URL and HTML body the
browser saw is kept, and at the end none of them, nor any log line, holds the key.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api

from gateway.console.site import STATIC
from tests.console.conftest import BROWSER_KEY, IMAGE, Stack

CHROMIUM = os.environ.get("VIDGATE_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ASSETS = ("htmx.min.js", "htmx-sse.min.js", "console.js", "console.css")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)", pytrace=False)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield chromium
        chromium.close()


class Seen:
    """Everything the browser fetched: URLs, and the HTML it was sent."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.html: dict[str, str] = {}

    def response(self, response: Any) -> None:
        self.urls.append(response.url)
        if "text/html" in response.headers.get("content-type", "") or "text/event-stream" in response.headers.get("content-type", ""):
            try:
                self.html[response.url] = response.text()
            except Exception:  # an event stream still open, a redirect: no body to read
                pass


def shot(page: Any, artifacts: Path, name: str, shots: list[Path]) -> None:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    shots.append(path)


def videos_state(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(
        "Array.from(document.querySelectorAll('[data-sync] video')).map(v => ({t: v.currentTime, ready: v.readyState, paused: v.paused, d: v.duration}))"
    )


def test_compare_blind_in_a_browser_vote_and_see_the_win_rate(stack: Stack, browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    artifacts = Path(os.environ.get("VIDGATE_TEST_ARTIFACTS") or tmp_path) / "console-screenshots"
    artifacts.mkdir(parents=True, exist_ok=True)
    first_frame = tmp_path / "first-frame.png"  # uploaded from disk, as a person would
    shutil.copyfile(IMAGE, first_frame)
    shots: list[Path] = []
    seen = Seen()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("response", seen.response)
    weights: dict[str, int] = {}

    def weigh(name: str) -> None:
        weights[name] = len(page.content().encode())

    try:
        # -- sign in -----------------------------------------------------------------
        page.goto(f"{stack.base}/console/")
        assert page.url.endswith("/console/sign-in")
        shot(page, artifacts, "01-sign-in", shots)
        weigh("sign-in")
        page.fill("input[name=key]", BROWSER_KEY)
        page.click("button[type=submit]")
        page.wait_for_url("**/console/compare")
        cookies = {c["name"]: c for c in context.cookies()}
        session = cookies["vidgate_session"]
        assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/console"
        assert BROWSER_KEY not in session["value"]
        assert page.evaluate("document.cookie") == ""  # nothing a script could read
        shot(page, artifacts, "02-compare-form", shots)
        weigh("compare")

        # -- a blind comparison of every demo provider, with a first frame from disk -------
        providers = page.eval_on_selector_all("input[name=providers]", "els => els.map(e => e.value)")
        assert sorted(providers) == ["modelark", "powertokens", "useapi"]
        page.fill("textarea[name=prompt]", "A paper boat on a rainy street")
        page.fill("input[name=seconds]", "5")
        page.set_input_files("input[name=first_frame]", str(first_frame))
        page.check("input[name=blind]")
        page.click("form.compare button[type=submit]")
        page.wait_for_url("**/console/comparisons/cmp_*")
        comparison_id = page.url.rsplit("/", 1)[1]
        labels = ["A", "B", "C"]
        assert page.eval_on_selector_all(".card h2", "els => els.map(e => e.textContent.trim())") == labels
        shot(page, artifacts, "03-comparison-running", shots)

        # -- live progress over SSE until every card completed, then the videos play -------
        assert page.locator("#comparison[sse-connect]").count() == 1  # the jobs still run: the page listens
        page.wait_for_function("() => document.querySelectorAll('.card.status-completed').length === 3", timeout=30_000)
        page.wait_for_function("() => Array.from(document.querySelectorAll('[data-sync] video')).every(v => v.readyState >= 2)")
        assert page.eval_on_selector_all(".card", "els => els.filter(e => e.dataset.provider).length") == 0  # still blind
        blind_html = page.content()
        for name in providers:
            assert name not in blind_html, f"the blind page names {name}"

        page.click("[data-sync-action=play]")
        page.wait_for_function("() => Array.from(document.querySelectorAll('[data-sync] video')).every(v => !v.paused && v.currentTime > 0.2)")
        before = videos_state(page)
        samples = []
        for _ in range(4):
            page.wait_for_timeout(150)
            samples.append(videos_state(page))
        after = samples[-1]
        assert len(after) == 3 and all(v["ready"] >= 2 and not v["paused"] for v in after)
        assert all(a["t"] != b["t"] for a, b in zip(after, before, strict=True)), (before, after)  # time moves (they loop)
        # together: within a third of a second of each other (a loaded machine may stall one
        # decoder for a moment, so the best of a few looks; a spread near a whole loop is the
        # loop point falling between them)
        spreads = [max(v["t"] for v in s) - min(v["t"] for v in s) for s in samples]
        assert any(s < 0.35 or s > after[0]["d"] - 0.35 for s in spreads), samples

        page.click("[data-sync-action=pause]")
        page.eval_on_selector("[data-sync-seek]", "el => { el.value = '1.0'; el.dispatchEvent(new Event('input', {bubbles: true})) }")
        page.wait_for_function("() => Array.from(document.querySelectorAll('[data-sync] video')).every(v => v.paused && Math.abs(v.currentTime - 1.0) < 0.1)")
        shot(page, artifacts, "04-comparison-completed-blind", shots)
        weigh("comparison")

        # -- the vote: recorded, then the providers are revealed ----------------------------
        page.click("#ballot button[value=A]")
        page.wait_for_selector(".verdict")
        revealed = page.eval_on_selector_all(".card", "els => els.map(e => [e.dataset.label, e.dataset.provider])")
        assert [label for label, _ in revealed] == labels and sorted(p for _, p in revealed) == sorted(providers)
        winner = revealed[0][1]
        assert page.inner_text(".verdict") == f"Your vote: A · {winner}"
        assert "$" in page.inner_text("#card-A")  # cost in USD, shown once revealed
        with stack.api(BROWSER_KEY) as api:
            stored = api.get(f"/v1/comparisons/{comparison_id}").json()
        assert stored["vote"]["winner"] == winner and stored["vote"]["winner_label"] == "A"
        assert all(r["cost"]["usd_estimate"] > 0 for r in stored["results"])
        shot(page, artifacts, "05-comparison-voted", shots)

        # -- stats: win rate next to success rate, USD per second for every provider --------
        page.goto(f"{stack.base}/console/stats?window=1h")
        row = {name: page.inner_text(f"tr[data-group='{name}'] td.win-rate") for name in providers}
        assert row[winner] == "100%" and all(row[name] == "0%" for name in providers if name != winner), row
        per_second = {name: page.inner_text(f"tr[data-group='{name}'] td.usd-per-second") for name in providers}
        assert all(value.startswith("$") for value in per_second.values()), per_second
        assert page.locator("figure.chart svg").count() == 4
        shot(page, artifacts, "06-stats", shots)
        weigh("stats")

        # -- videos, one video, providers -------------------------------------------------
        page.goto(f"{stack.base}/console/jobs")
        assert page.locator("#jobs tbody tr").count() >= 3
        shot(page, artifacts, "07-videos", shots)
        weigh("videos")
        page.select_option("select[name=provider]", winner)  # htmx swaps the table in place
        page.wait_for_url(f"**/console/jobs?*provider={winner}*")
        page.wait_for_function(f"() => Array.from(document.querySelectorAll('#jobs tbody tr td:nth-child(4)')).every(td => td.textContent === '{winner}')")
        page.click("#jobs tbody tr a")
        page.wait_for_url("**/console/jobs/video_*")
        assert "Routing" in page.content() and "Attempts" in page.content()
        page.wait_for_function("() => document.querySelector('video').readyState >= 1")
        shot(page, artifacts, "08-video", shots)
        weigh("video")
        page.goto(f"{stack.base}/console/providers")
        assert page.locator("tr[data-provider]").count() == 3
        shot(page, artifacts, "09-providers", shots)
        weigh("providers")

        # -- sign out: the session is gone --------------------------------------------------
        page.click("form.who button")
        page.wait_for_url("**/console/sign-in")
        assert "vidgate_session" not in {c["name"] for c in context.cookies()}
        page.goto(f"{stack.base}/console/stats")
        assert page.url.endswith("/console/sign-in")
    finally:
        context.close()

    # -- the key never appeared in a URL, a page, an event or a log line ----------------------
    assert seen.urls and seen.html
    assert [url for url in seen.urls if url.endswith(f"/console/comparisons/{comparison_id}/events")], "no event stream was opened"
    assert not [url for url in seen.urls if BROWSER_KEY in url]
    assert not [url for url, html in seen.html.items() if BROWSER_KEY in html]
    assert BROWSER_KEY not in stack.log_text()

    assets = sum((STATIC / name).stat().st_size for name in ASSETS)
    elapsed = time.monotonic() - started
    report = [f"\nconsole screenshots ({len(shots)}) in {artifacts}:", *(f"  {path}" for path in shots)]
    report.append(f"console page weights (HTML + {assets} bytes of JS and CSS, the same files on every page):")
    report += [f"  {name:<10} {html:>6} + {assets} = {html + assets} bytes" for name, html in weights.items()]
    report.append(f"browser test took {elapsed:.1f}s")
    with capsys.disabled():  # shown in the run's output even when it passes
        print("\n".join(report))
