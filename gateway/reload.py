"""Hot reload: a changed config file or SIGHUP builds a new runtime and swaps it in.

In-flight jobs keep going: a provider whose config is unchanged keeps its client, a
removed one stays drivable for its jobs (`Runtime.retired`), slots and health are kept
by name. An invalid file is rejected with its errors logged and the running config kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import structlog

from gateway.jobs.slots import SlotBoard
from gateway.runtime import RuntimeHolder, UpstreamClients, build_runtime
from gateway.settings import ConfigError, Settings, load_settings
from gateway.webhooks import WebhookDispatcher

log = structlog.get_logger("vidgate.reload")

# Changing these needs a restart: they are bound when the process starts.
_RESTART_ONLY = ("server", "store", "outputs", "cluster", "metrics", "logging")


def apply_settings(holder: RuntimeHolder, clients: UpstreamClients, slots: SlotBoard, webhooks: WebhookDispatcher, new: Settings) -> list[str]:
    """Swap `new` in; returns the names of providers whose runtime was rebuilt."""
    old = holder.current
    for section in _RESTART_ONLY:
        if getattr(old.settings, section) != getattr(new, section):
            log.warning("config.reload_needs_restart", section=section)
    webhooks.reconfigure(new.webhooks)  # raises before anything is swapped if its secrets are unusable
    runtime = build_runtime(new, clients, previous=old)
    rebuilt = [name for name, p in runtime.providers.items() if old.providers.get(name) is not p]
    holder.swap(runtime)
    slots.configure({name: p.accounts for name, p in runtime.providers.items()})
    return rebuilt


def reload_from(holder: RuntimeHolder, clients: UpstreamClients, slots: SlotBoard, webhooks: WebhookDispatcher, path: str) -> bool:
    try:
        new = load_settings(path)
    except ConfigError as exc:
        log.error("config.reload_rejected", path=path, problems=exc.problems)
        return False
    rebuilt = apply_settings(holder, clients, slots, webhooks, new)
    log.info("config.reloaded", path=path, providers_rebuilt=rebuilt, routes=len(new.routes))
    return True


async def watch_config(
    holder: RuntimeHolder, clients: UpstreamClients, slots: SlotBoard, webhooks: WebhookDispatcher, path: str, stop: asyncio.Event, interval: float = 1.0
) -> None:
    """Reload when the file's mtime/size change or on SIGHUP, until `stop` is set."""
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread / no signals
        loop.add_signal_handler(signal.SIGHUP, wake.set)
    seen = _stamp(path)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=interval)
            stamp = _stamp(path)
            if wake.is_set() or stamp != seen:
                wake.clear()
                seen = stamp
                reload_from(holder, clients, slots, webhooks, path)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGHUP)


def _stamp(path: str) -> tuple[float, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime, st.st_size)
