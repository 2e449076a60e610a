"""Helpers for the registry service tests (no tests here): a registry replica in-process with
our RPC client pointed at it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from k8stars.registry.main import RegistryRuntime
from k8stars.registry.service import RegistryService, ServiceOptions
from k8stars.registry.settings import RegistrySettings
from k8stars.tars.client import Communicator, ServantProxy
from k8stars.tars.idl.loader import framework

QUERY = framework().interface("tars.QueryF")
REGISTRY = framework().interface("tars.tarsregistry")
QUERY_OBJ = "tars.tarsregistry.QueryObj"
REGISTRY_OBJ = "tars.tarsregistry.Registry"


@dataclass
class Replica:
    """One registry (service + RPC server) and a client's proxies to it."""

    runtime: RegistryRuntime
    comm: Communicator
    query: ServantProxy
    registry: ServantProxy

    @property
    def service(self) -> RegistryService:
        assert self.runtime.service is not None
        return self.runtime.service

    async def active(self, servant: str) -> list[tuple[str, int]]:
        """(host, port) of the active endpoints QueryF returns, sorted."""
        return sorted((ep.host, ep.port) for ep in await self.query.findObjectById(servant))

    async def lists(self, servant: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """(active, inactive) of findObjectById4Any."""
        ret, active, inactive = await self.query.findObjectById4Any(servant)
        assert ret == 0
        return (sorted((e.host, e.port) for e in active),
                sorted((e.host, e.port) for e in inactive))  # fmt: skip


def settings(url: str, **kw: Any) -> RegistrySettings:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "advertise_host": "127.0.0.1",
        "query_port": 0,
        "registry_port": 0,
        "admin_port": 0,
        "metrics_port": 0,
        "db_url": url,
    }
    base.update(kw)
    return RegistrySettings(**base)


@asynccontextmanager
async def replica(url: str, options: ServiceOptions | None = None,
                  **kw: Any) -> AsyncIterator[Replica]:  # fmt: skip
    runtime = RegistryRuntime(settings(url, **kw), options or ServiceOptions())
    await runtime.start()
    comm = Communicator(sync_invoke_timeout=10000)
    try:
        yield Replica(
            runtime,
            comm,
            comm.proxy(QUERY, runtime.query_proxy),
            comm.proxy(REGISTRY, runtime.registry_proxy),
        )
    finally:
        await comm.close()
        await runtime.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0,
                     interval: float = 0.01) -> float:  # fmt: skip
    """Seconds until ``check()`` is true; AssertionError after ``timeout``."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def run(coro: Awaitable[None]) -> None:
    async def main() -> None:
        await coro

    asyncio.run(main())
