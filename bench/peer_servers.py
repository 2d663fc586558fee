"""The peers: LiteLLM's proxy and Portkey's gateway, installed into a throwaway folder and
started in front of the mock upstream, on loopback only.

    tools = Path("~/.cache/vidgate-bench").expanduser()
    install_litellm(tools); install_portkey(tools)            # once; later runs reuse them
    litellm = start_litellm(procs, tools, upstream=mock.url)    # Peer: .url, .headers, .proc

Pins, and why:
- LiteLLM `litellm[proxy]==1.106.2`, pip into its own venv (newer releases need a certifi
  the package mirror here may not have). One uvicorn worker, telemetry off, the model
  cost map read from the package (no remote fetch at start), a master key as auth.
  `openai/sora-2` is pointed at the mock, so LiteLLM's own video route does the work.
- Portkey `@portkey-ai/gateway` 1.15.x, npm into its own folder, with `@hono/node-server`
  held at 1.14.1 through npm `overrides`: 1.14.2 and later answer every passthrough with a
  500 "TypeError: immutable" (Portkey-AI/gateway#1389). Portkey has no video route; it
  forwards `/v1/videos*` blindly to `x-portkey-custom-host`. Its server listens on every
  interface and has no host option, so a preload script pins `listen()` to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from procs import BenchError, Proc, Processes, check_loopback_only, wait_http
from servers import UPSTREAM_SECRET, free_port

LITELLM_VERSION = "1.106.2"
PORTKEY_RANGE = "~1.15.2"
HONO_NODE_SERVER = "1.14.1"
LITELLM_KEY = "sk-litellm-bench"

PORTKEY_PACKAGE = {
    "name": "vidgate-bench-portkey",
    "private": True,
    "dependencies": {"@portkey-ai/gateway": PORTKEY_RANGE},
    "overrides": {"@hono/node-server": HONO_NODE_SERVER},
}

LOOPBACK_PRELOAD = """\
// Written by vidgate's bench/peer_servers.py. Portkey's start-server listens on every
// interface and takes no host option: pin every listen() of this process to 127.0.0.1.
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] !== null && typeof args[0] === "object") {
    args[0] = { ...args[0], host: "127.0.0.1" };  // listen({port, host, ...})
  } else if (typeof args[1] === "string" || args[1] === undefined || args[1] === null) {
    args[1] = "127.0.0.1";  // listen(port[, host][, backlog][, callback])
  } else {
    args.splice(1, 0, "127.0.0.1");  // listen(port, callback)
  }
  return listen.apply(this, args);
};
"""


@dataclass
class Peer:
    name: str
    proc: Proc
    url: str
    headers: dict[str, str]  # what a caller sends on every request
    version: str


def _run(argv: list[str], *, cwd: Path, what: str, timeout: float = 900) -> None:
    print(f"  installing {what} ...", file=sys.stderr, flush=True)
    log = cwd / "install.log"
    with log.open("a") as fh:
        done = subprocess.run(argv, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise BenchError(f"installing {what} failed ({done.returncode}); {log} ends:\n{tail}")


# ---------------------------------------------------------------------------
# LiteLLM
# ---------------------------------------------------------------------------


def install_litellm(tools: Path, *, force: bool = False) -> Path:
    """A venv holding LiteLLM's proxy; returns its `litellm` executable."""
    home = tools / "litellm"
    exe = home / "venv" / "bin" / "litellm"
    marker = home / f"installed-{LITELLM_VERSION}"
    if marker.exists() and exe.exists() and not force:
        return exe
    home.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", "--clear", str(home / "venv")], cwd=home, what="a venv for LiteLLM")
    pip = str(home / "venv" / "bin" / "pip")
    _run([pip, "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"], cwd=home, what=f"litellm[proxy]=={LITELLM_VERSION} (pip, about a minute)")
    marker.touch()
    return exe


def start_litellm(procs: Processes, tools: Path, *, upstream: str) -> Peer:
    exe = install_litellm(tools)
    port = free_port()
    config = tools / "litellm" / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: sora-2\n"
        "    litellm_params:\n"
        "      model: openai/sora-2\n"
        f"      api_base: {upstream}/v1\n"
        f"      api_key: {UPSTREAM_SECRET}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the cost map at start
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
    }
    argv = [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    proc = procs.start("litellm", argv, env=env, cwd=tools / "litellm")
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health/liveliness", proc=proc, timeout=120)
    check_loopback_only(port, "litellm")
    return Peer("litellm", proc, url, {"Authorization": f"Bearer {LITELLM_KEY}"}, LITELLM_VERSION)


# ---------------------------------------------------------------------------
# Portkey
# ---------------------------------------------------------------------------


def _package_version(folder: Path, package: str) -> str | None:
    try:
        return str(json.loads((folder / "node_modules" / package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def install_portkey(tools: Path, *, force: bool = False) -> Path:
    """A folder holding Portkey's gateway with the pinned node server; returns the folder."""
    home = tools / "portkey"
    wanted = json.dumps(PORTKEY_PACKAGE, indent=2) + "\n"
    package = home / "package.json"
    installed = package.exists() and package.read_text() == wanted and _package_version(home, "@portkey-ai/gateway") is not None
    if force or not installed:
        home.mkdir(parents=True, exist_ok=True)
        package.write_text(wanted)
        # --ignore-scripts: the gateway's postinstall is patch-package, and it ships no patches
        _run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=home, what=f"@portkey-ai/gateway@{PORTKEY_RANGE} (npm)")
    hono = _package_version(home, "@hono/node-server")
    if hono != HONO_NODE_SERVER:
        raise BenchError(f"{home}: @hono/node-server is {hono}, not {HONO_NODE_SERVER}; npm ignored the override (every passthrough would be a 500)")
    (home / "loopback.cjs").write_text(LOOPBACK_PRELOAD)
    return home


def start_portkey(procs: Processes, tools: Path, *, upstream: str) -> Peer:
    home = install_portkey(tools)
    port = free_port()
    argv = ["node", "--require", str(home / "loopback.cjs"), "node_modules/@portkey-ai/gateway/build/start-server.js", f"--port={port}", "--headless"]
    proc = procs.start("portkey", argv, env={**os.environ, "NODE_ENV": "production"}, cwd=home)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc=proc)
    check_loopback_only(port, "portkey")
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": f"{upstream}/v1", "Authorization": f"Bearer {UPSTREAM_SECRET}"}
    return Peer("portkey", proc, url, headers, _package_version(home, "@portkey-ai/gateway") or "?")
