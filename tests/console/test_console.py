"""The console over plain HTTP against the demo stack: sessions, CSRF, tenants, blind
comparisons and their events, the vote, ranged playback, filters, admin-only detail."""

from __future__ import annotations

import re

import httpx
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.cli import demo_settings
from tests.console.conftest import ADMIN_KEY, DEMO_KEY, KEYS, OTHER_KEY, Session, Stack, csrf_of, wait_comparison

PROVIDERS = ["useapi", "powertokens", "modelark"]


def test_every_page_asks_for_a_session_first(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base, follow_redirects=False) as anonymous:
        for path in (
            "/console/",
            "/console/compare",
            "/console/jobs",
            "/console/stats",
            "/console/providers",
            "/console/comparisons/cmp_x",
            "/console/videos/video_x/content",
        ):
            response = anonymous.get(path)
            assert (response.status_code, response.headers.get("location")) == (303, "/console/sign-in"), path
        partial = anonymous.get("/console/jobs", headers={"HX-Request": "true"})  # htmx follows HX-Redirect instead
        assert partial.status_code == 204 and partial.headers["hx-redirect"] == "/console/sign-in"
        anonymous.cookies.set("vidgate_session", "v1.eyJ9.c2ln", path="/console")
        assert anonymous.get("/console/compare").status_code == 303  # a forged session is no session
        page = anonymous.get("/console/sign-in")
        assert page.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'")
        assert page.headers["cache-control"] == "no-store"


def test_a_wrong_key_is_refused_and_not_echoed(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base, follow_redirects=False) as client:
        token = csrf_of(client.get("/console/sign-in").text)
        refused = client.post("/console/sign-in", data={"key": "sk-not-a-real-key-42", "_csrf_token": token})
        assert refused.status_code == 401 and "not valid" in refused.text
        assert "sk-not-a-real-key-42" not in refused.text and "vidgate_session" not in refused.headers.get("set-cookie", "")


def test_posts_without_the_csrf_token_are_refused(stack: Stack, session: Session) -> None:
    comparison_id = session.compare(["useapi", "powertokens"])
    with httpx.Client(base_url=stack.base, follow_redirects=False) as fresh:
        fresh.get("/console/sign-in")
        assert fresh.post("/console/sign-in", data={"key": DEMO_KEY}).status_code == 403
    targets = {
        "/console/compare": {"prompt": "x", "providers": ["useapi"]},
        f"/console/comparisons/{comparison_id}/vote": {"winner": "tie"},
        "/console/sign-out": {},
    }
    for path, form in targets.items():
        for token in (None, "0" * 128, session.csrf[:-1] + ("0" if session.csrf[-1] != "0" else "1")):
            data = form if token is None else {**form, "_csrf_token": token}
            refused = session.http.post(path, data=data)
            assert refused.status_code == 403 and "CSRF" in refused.text, (path, token, refused.status_code)
        assert session.http.post(path, data=form, headers={"x-csrftoken": "f" * 128}).status_code == 403
    assert session.get("/console/compare").status_code == 200  # still signed in: the refused sign-out did nothing
    with stack.api() as api:
        assert api.get(f"/v1/comparisons/{comparison_id}").json()["vote"] is None
    wait_comparison(stack, comparison_id)


def test_a_blind_comparison_names_no_provider_until_the_vote(stack: Stack, session: Session) -> None:
    comparison_id = session.compare(PROVIDERS, blind=True)
    page = session.get(f"/console/comparisons/{comparison_id}")
    assert page.status_code == 200 and 'sse-connect="/console/comparisons/' in page.text
    events: list[tuple[str, str]] = []
    with session.http.stream("GET", f"/console/comparisons/{comparison_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name, data = "", []
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif not line and name:
                events.append((name, "\n".join(data)))
                name, data = "", []
    names = [n for n, _ in events]
    assert names[-2:] == ["ballot", "done"] and {n for n in names if n.startswith("card-")} == {"card-A", "card-B", "card-C"}
    final_cards = {n: d for n, d in events if n.startswith("card-")}
    assert all("status-completed" in html and "<video" in html for html in final_cards.values())
    done = session.get(f"/console/comparisons/{comparison_id}")
    for html in [*(d for _, d in events), done.text]:
        for provider in PROVIDERS:
            assert provider not in html, f"blind page names {provider}"
    assert 'name="winner" value="A"' in done.text

    not_htmx = session.post(f"/console/comparisons/{comparison_id}/vote", {"winner": "Z"})
    assert not_htmx.status_code == 303  # a plain form post goes back to the page; nothing was stored
    voted = session.post(f"/console/comparisons/{comparison_id}/vote", {"winner": "B"}, headers={"HX-Request": "true"})
    assert voted.status_code == 200 and voted.text.startswith('<section id="comparison"')
    revealed = dict(re.findall(r'data-label="([A-C])" data-provider="(\w+)"', voted.text))
    assert sorted(revealed.values()) == sorted(PROVIDERS)
    assert f"<strong>B · {revealed['B']}</strong>" in voted.text
    with stack.api() as api:
        assert api.get(f"/v1/comparisons/{comparison_id}").json()["vote"]["winner"] == revealed["B"]
    again = session.post(f"/console/comparisons/{comparison_id}/vote", {"winner": "A"}, headers={"HX-Request": "true"})
    assert again.status_code == 422 and "already has a different vote" in again.text


def test_a_second_tenant_sees_none_of_the_first_tenants_work(stack: Stack, session: Session) -> None:
    comparison_id = session.compare(["useapi", "powertokens"])
    done = wait_comparison(stack, comparison_id)
    assert session.post(f"/console/comparisons/{comparison_id}/vote", {"winner": "A"}).status_code == 303
    video_ids = [r["video_id"] for r in done["results"]]
    other = Session(stack, OTHER_KEY)
    try:
        assert other.get(f"/console/comparisons/{comparison_id}").status_code == 404
        assert other.get(f"/console/comparisons/{comparison_id}/events").status_code == 404
        assert other.post(f"/console/comparisons/{comparison_id}/vote", {"winner": "B"}, headers={"HX-Request": "true"}).status_code == 404
        for video_id in video_ids:
            assert other.get(f"/console/jobs/{video_id}").status_code == 404
            assert other.get(f"/console/videos/{video_id}/content").status_code == 404
        listing = other.get("/console/jobs").text
        assert not [v for v in video_ids if v in listing] and comparison_id not in listing
        stats = other.get("/console/stats?window=1h").text
        assert "No videos in this window" in stats
        assert other.get("/console/stats?window=1h&everyone=true").text == stats  # not an admin: the flag is ignored
        mine = session.get("/console/jobs").text
        assert all(v[:18] in mine for v in video_ids)
    finally:
        other.close()
    with stack.api() as api:
        assert api.get(f"/v1/comparisons/{comparison_id}").json()["vote"]["winner_label"] == "A"  # the other tenant's vote never landed


def test_videos_play_through_the_session_with_byte_ranges(stack: Stack, session: Session) -> None:
    comparison_id = session.compare(["powertokens", "modelark"])
    video_id = wait_comparison(stack, comparison_id)["results"][0]["video_id"]
    whole = session.get(f"/console/videos/{video_id}/content")
    assert whole.status_code == 200 and whole.content[4:8] == b"ftyp" and whole.headers["accept-ranges"] == "bytes"
    part = session.get(f"/console/videos/{video_id}/content", headers={"Range": "bytes=8-15"})
    assert part.status_code == 206 and part.content == whole.content[8:16]
    assert part.headers["content-range"] == f"bytes 8-15/{len(whole.content)}"
    thumbnail = session.get(f"/console/videos/{video_id}/content?variant=thumbnail")
    assert thumbnail.status_code in (200, 404)  # not every upstream returns one


def test_the_videos_page_filters_and_htmx_gets_the_table_alone(stack: Stack, session: Session) -> None:
    comparison_id = session.compare(["useapi", "powertokens"], prompt="filters")
    done = {r["provider"]: r["video_id"] for r in wait_comparison(stack, comparison_id)["results"]}
    page = session.get("/console/jobs", params={"provider": "useapi"})
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert done["useapi"][:18] in page.text and done["powertokens"][:18] not in page.text
    partial = session.get("/console/jobs", params={"provider": "powertokens", "status": "completed"}, headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="jobs">') and "<html" not in partial.text
    assert done["powertokens"][:18] in partial.text and done["useapi"][:18] not in partial.text
    by_rule = session.get("/console/jobs", params={"rule": "pin"}).text
    assert done["useapi"][:18] in by_rule
    assert "No videos match" in session.get("/console/jobs", params={"rule": "no-such-rule"}).text
    assert "No videos match" in session.get("/console/jobs", params={"arm": "b"}).text


def test_the_compare_form_reports_what_the_gateway_refused(stack: Stack, session: Session) -> None:
    nothing = session.post("/console/compare", {"prompt": "x"})
    assert nothing.status_code == 422 and "Pick at least one provider" in nothing.text
    too_short = session.post("/console/compare", {"prompt": "kept", "seconds": "2", "providers": ["useapi"]})
    assert too_short.status_code == 422 and "request.seconds" in too_short.text
    assert ">kept</textarea>" in too_short.text  # what was typed comes back


def test_account_detail_is_for_admin_keys_only(stack: Stack, session: Session) -> None:
    plain = session.get("/console/providers").text
    assert "CA:sim@example.com" not in plain and "admin keys only" in plain
    admin = Session(stack, ADMIN_KEY)
    try:
        page = admin.get("/console/providers").text
        assert "CA:sim@example.com" in page and 'class="list accounts"' in page
        assert 'name="everyone"' in admin.get("/console/stats").text
    finally:
        admin.close()


def test_sign_out_ends_the_session(stack: Stack) -> None:
    session = Session(stack, DEMO_KEY)
    out = session.post("/console/sign-out")
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    assert 'vidgate_session=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert session.get("/console/compare").status_code == 303
    session.close()


def test_no_key_reaches_a_log_line(stack: Stack) -> None:
    for key in KEYS:
        Session(stack, key).close()
    text = stack.log_text()
    assert "console" in text  # the console's requests were logged...
    assert not [key for key in KEYS if key in text]  # ...and no key with them


def test_the_console_can_be_turned_off(tmp_path) -> None:
    settings = demo_settings(
        port=1,
        urls={"useapi": "http://127.0.0.1:9", "powertokens": "http://127.0.0.1:9", "modelark": "http://127.0.0.1:9"},
        data_dir=str(tmp_path),
        job_seconds=1,
    )
    settings.console.enabled = False
    with TestClient(create_app(settings)) as client:
        assert client.get("/console/sign-in").status_code == 404
        assert client.get("/console/static/console.js").status_code == 404
