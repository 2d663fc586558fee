"""Hot reload: a changed config file or SIGHUP swaps routes, models, keys and
providers in place. In-flight jobs keep going; an invalid file is rejected with
its errors logged and the running config kept."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import TYPE_CHECKING

import structlog

from gateway.auth import KeyRing
from gateway.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from gateway.service import VideoService

log = structlog.get_logger("vidgate.reload")

# Changing these needs a restart: they are bound when the process starts.
_RESTART_ONLY = ("server", "store", "outputs", "cluster")


def apply_settings(service: VideoService, new: Settings) -> list[str]:
    """Swap `new` in; returns the names of providers whose runtime was rebuilt."""
    old = service.settings
    for section in _RESTART_ONLY:
        if getattr(old, section) != getattr(new, section):
            log.warning("config.reload_needs_restart", section=section)
    runner = service.runner
    rebuilt = []
    for name, cfg in new.providers.items():
        current = runner.providers.get(name)
        if current is not None and old.providers.get(name) == cfg:
            continue
        assert service.build_runtime is not None, "the app sets build_runtime before any reload"
        fresh = service.build_runtime(name, cfg)
        if current is not None:  # jobs in flight keep their slots on the new pool
            for account, used in current.pool.in_use.items():
                if account in fresh.pool.in_use:
                    fresh.pool.in_use[account] = used
            fresh.health = current.health
        runner.providers[name] = fresh  # removed providers stay here until their jobs end
        rebuilt.append(name)
    service.providers = {name: runner.providers[name] for name in new.providers}
    service.keyring = KeyRing(new.keys)
    if service.webhooks is not None:
        service.webhooks.reconfigure(new.webhooks)
    service.settings = new
    return rebuilt


def reload_from(service: VideoService, path: str) -> bool:
    try:
        new = load_settings(path)
    except ConfigError as exc:
        log.error("config.reload_rejected", path=path, problems=exc.problems)
        return False
    rebuilt = apply_settings(service, new)
    log.info("config.reloaded", path=path, providers_rebuilt=rebuilt, routes=len(new.routes))
    return True


async def watch_config(service: VideoService, path: str, stop: asyncio.Event, interval: float = 0.5) -> None:
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
                reload_from(service, path)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGHUP)


def _stamp(path: str) -> tuple[float, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime, st.st_size)
