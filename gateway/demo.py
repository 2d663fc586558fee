"""`vidgate demo`: the gateway and both upstream simulators in one process.

Without `--once` it serves until interrupted and prints examples to paste. With
`--once` it runs one job per provider and input mode end to end through the
public API, prints a table, and exits 0 only if every job completed.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator

import httpx

from gateway.catalog import ModelCatalog
from gateway.cli import DEMO_KEY, demo_settings, http_server, listen, listen_or_say_why, run_server, temp_dir
from gateway.settings import Settings
from providers.base import MODES
from providers.registry import DESCRIPTORS, descriptor
from providers.simkit import SampleName, sample, serve_in_thread

HOST = "127.0.0.1"


def _data_url(name: SampleName, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(sample(name)).decode()}"


def _scenarios(settings: Settings) -> list[tuple[str, str, str, dict[str, object]]]:
    """One job per configured provider and per input mode it serves, read off its
    capability table: the default model where it serves the mode, else the first that does."""
    image = _data_url("image.png", "image/png")
    video = _data_url("video.mp4", "video/mp4")
    audio = _data_url("audio.wav", "audio/wav")
    catalog = ModelCatalog(settings.models, {name: descriptor(p.type) for name, p in settings.providers.items()})
    logical = sorted(catalog.model_names(), key=lambda m: (m != settings.jobs.default_model, m))
    rows: list[tuple[str, str, str, dict[str, object]]] = []
    for provider in settings.providers:
        for mode in MODES:
            found = next(
                ((m, s.caps) for m in logical for s in catalog.serving(m) if s.provider == provider and s.caps is not None and mode in s.caps.modes),
                None,
            )
            if found is None:
                continue
            model, caps = found
            seconds = 5 if 5 in caps.durations else min(caps.durations)
            if mode == "keyframes":
                body: dict[str, object] = {"keyframes": [{"image": image, "prompt": "a calm sea", "seconds": seconds}, {"image": image, "prompt": "a storm"}]}
            elif mode == "reference":
                refs = caps.reference
                references: dict[str, list[str]] = {"images": [image]}
                names = ["@image1"]
                if refs is None or refs.max_videos:
                    references["videos"], names = [video], [*names, "@video1"]
                if refs is None or refs.max_audios:
                    references["audios"], names = [audio], [*names, "@audio1"]
                body = {"prompt": f"{names[0]} dances like {' while '.join(names[1:]) or 'the wind'}", "references": references, "seconds": seconds}
            else:
                inputs: dict[str, dict[str, object]] = {
                    "text": {"prompt": "A lighthouse at dawn, waves rolling in"},
                    "first_frame": {"prompt": "The camera pushes in slowly", "input_reference": {"image_url": image}},
                    "first_last_frame": {"prompt": "Morph between the two frames", "first_frame": image, "last_frame": image},
                }
                body = {**inputs[mode], "seconds": seconds}
            rows.append((provider, mode, model, body))
    return rows


@contextlib.contextmanager
def running_simulators(job_seconds: float) -> Iterator[dict[str, str]]:
    """Every registered provider's simulator on loopback, by provider type."""
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(serve_in_thread(desc.load_simulator()(job_seconds=job_seconds))) for name, desc in DESCRIPTORS.items()}


def run_demo(*, port: int, once: bool, job_seconds: float | None) -> int:
    from gateway.app import create_app
    from gateway.logging import configure_logging

    job_seconds = job_seconds if job_seconds is not None else (1.0 if once else 5.0)
    if not once and not port_is_free(HOST, port):
        print(f"vidgate demo: {HOST}:{port} is already in use; choose another port with --port (e.g. vidgate demo --port {port + 1})", file=sys.stderr)
        return 2
    configure_logging(level="warning" if once else "info", cache_loggers=True)
    with temp_dir() as data_dir, running_simulators(job_seconds) as urls:  # the data goes when the demo stops
        if once:
            ephemeral = listen(HOST, 0)
            settings = demo_settings(port=ephemeral.getsockname()[1], urls=urls, data_dir=data_dir, job_seconds=job_seconds)
            with _serving_in_thread(create_app(settings), ephemeral, settings) as base:
                return _run_once(base, _scenarios(settings))
        sock = listen_or_say_why("vidgate demo", HOST, port, hint=f"choose another port with --port (e.g. vidgate demo --port {port + 1})")
        if sock is None:  # taken since the check above
            return 2
        settings = demo_settings(port=port, urls=urls, data_dir=data_dir, job_seconds=job_seconds)
        print(_banner(port, urls, data_dir), flush=True)
        run_server(create_app(settings), sock, settings.server)
    return 0


@contextlib.contextmanager
def _serving_in_thread(app: object, sock: socket.socket, settings: Settings) -> Iterator[str]:
    """`vidgate serve`'s server (`http_server`) on a background thread, for `--once` to drive."""
    server = http_server(app, settings.server)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="vidgate-demo", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the demo's vidgate did not start")
        time.sleep(0.01)
    try:
        yield settings.server.base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (as uvicorn binds: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _run_once(base: str, scenarios: list[tuple[str, str, str, dict[str, object]]], timeout: float = 90.0) -> int:
    rows = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {DEMO_KEY}"}, timeout=30) as client:
        jobs = []
        for provider, mode, model, extra in scenarios:
            body = {"model": model, "provider": provider, **extra}
            response = client.post("/v1/videos", json=body)
            if response.status_code != 200:
                rows.append((provider, mode, f"rejected {response.status_code}", "", response.json()["error"]["message"][:60]))
                continue
            jobs.append((provider, mode, response.json()["id"], time.monotonic()))
        deadline = time.monotonic() + timeout
        for provider, mode, video_id, _started in jobs:
            video = client.get(f"/v1/videos/{video_id}").json()
            while video["status"] in ("queued", "in_progress") and time.monotonic() < deadline:
                time.sleep(0.2)
                video = client.get(f"/v1/videos/{video_id}").json()
            detail = ""
            if video["status"] == "completed":
                content = client.get(f"/v1/videos/{video_id}/content")
                ok = content.status_code == 200 and content.content[4:8] == b"ftyp"
                detail = f"{len(content.content)} bytes of MP4" if ok else f"content HTTP {content.status_code}"
                if not ok:
                    video["status"] = "bad_content"
            elif video.get("error"):
                detail = video["error"]["message"][:60]
            rows.append((provider, mode, video["status"], video_id[:18] + "…", detail))
    widths = [max(len(str(r[i])) for r in [*rows, ("provider", "mode", "status", "id", "detail")]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format("provider", "mode", "status", "id", "detail"))
    for row in rows:
        print(line.format(*row))
    failed = [r for r in rows if r[2] != "completed"]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} jobs completed")
    return 1 if failed else 0


def _banner(port: int, urls: dict[str, str], data_dir: str) -> str:
    base = f"http://{HOST}:{port}"
    sims = "\n".join(f"  {name + ' simulator':<22}{url}" for name, url in urls.items())
    return f"""
vidgate demo on {base}   (key: {DEMO_KEY}; admin key for /metrics: sk-demo-admin)
data in {data_dir} (removed when the demo stops)
{sims}

Compare providers in the browser:
  {base}/console   (sign in with {DEMO_KEY})

Create a video:
  curl -f {base}/v1/videos -H "Authorization: Bearer {DEMO_KEY}" \\
       -H "Content-Type: application/json" \\
       -d '{{"model": "seedance-2.0", "prompt": "A paper boat on a rainy street", "seconds": 5}}'

With the openai SDK:
  from openai import OpenAI
  client = OpenAI(base_url="{base}/v1", api_key="{DEMO_KEY}")
  video = client.videos.create_and_poll(model="seedance-2.0", prompt="A paper boat on a rainy street",
                                        extra_body={{"ratio": "16:9", "provider": "{next(iter(urls))}"}})
  open("boat.mp4", "wb").write(client.videos.download_content(video.id).read())

API docs: {base}/schema   Metrics: {base}/metrics   Another port: vidgate demo --port 8001   Ctrl-C to stop.
"""
