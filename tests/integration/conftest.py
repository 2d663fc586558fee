"""A whole vidgate on loopback: both simulators and the gateway, real HTTP between them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import msgspec
import pytest

from gateway.app import create_app
from gateway.cli import demo_settings
from gateway.demo import running_simulators
from providers.simkit import free_port, serve_in_thread


class Stack(msgspec.Struct):
    base: str
    sims: dict[str, str]

    def client(self, key: str = "sk-demo") -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def sim_jobs(self, provider: str) -> list[dict]:
        return httpx.get(f"{self.sims[provider]}/_sim/jobs").json()

    def set_faults(self, provider: str, **faults: object) -> None:
        httpx.post(f"{self.sims[provider]}/_sim/faults", json=faults).raise_for_status()

    def reset(self) -> None:
        for url in self.sims.values():
            httpx.post(f"{url}/_sim/reset").raise_for_status()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("vidgate")
    with running_simulators(job_seconds=0.6) as sims:
        port = free_port()
        settings = demo_settings(port=port, urls=sims, data_dir=str(data_dir), job_seconds=0.6)
        with serve_in_thread(create_app(settings), port=port) as base:
            yield Stack(base=base, sims=sims)


@pytest.fixture
def fresh(stack: Stack) -> Iterator[Stack]:
    stack.reset()
    yield stack
    stack.reset()
