"""Endpoint lists of objects: fixed (direct proxies) or resolved through the registry.

A :class:`Locator` asks the registry's QueryF object for an object's active endpoints
(``findObjectByIdInSameGroup``, or ``findObjectByIdInSameSet`` with set routing), sending the
context ``{"node_name": ...}``. A :class:`RegistryEndpoints` keeps one object's list: the first
lookup is awaited by the first call, later ones run in the background when the list is due for
a refresh (checked on use, as TarsCpp does). A failed query, a non-zero ``ret`` or an empty
active list never replaces the last good list; the next query is then tried sooner (2 s after an
error, 30 s after more than three in a row, 10 s after an empty answer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .client_config import ClientConfig
from .endpoint import Endpoint, EndpointError
from .errors import TarsConnectError, TarsNoEndpointError, TarsRemoteError, TarsRpcError

if TYPE_CHECKING:
    from .client import ServantProxy

__all__ = ["EndpointSource", "Locator", "RegistryEndpoints", "StaticEndpoints"]

log = logging.getLogger("k8stars.tars.client")

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class EndpointSource:
    """The current endpoint list of one object; ``version`` changes whenever it does."""

    __slots__ = ("endpoints", "obj_name", "version")

    def __init__(self, obj_name: str, endpoints: tuple[Endpoint, ...] | None) -> None:
        self.obj_name = obj_name
        self.endpoints = endpoints
        self.version = 0

    def poll(self) -> bool:
        """True when a list is known (it may be empty); may start a background refresh."""
        return self.endpoints is not None

    async def wait(self) -> tuple[Endpoint, ...]:
        """The list, looking it up first if none is known yet."""
        assert self.endpoints is not None
        return self.endpoints


class StaticEndpoints(EndpointSource):
    """The endpoints written in a direct proxy string."""

    __slots__ = ()

    def __init__(self, obj_name: str, endpoints: tuple[Endpoint, ...]) -> None:
        super().__init__(obj_name, endpoints)


class Locator:
    """Resolves object names through the registry's QueryF object (``proxy``)."""

    def __init__(self, proxy: ServantProxy, config: ClientConfig, spawn: Spawn) -> None:
        self.proxy = proxy
        self.config = config
        self.spawn = spawn
        self.set_division = config.set_division
        self._context = {"node_name": config.context_node_name}
        self._timeout = config.sync_invoke_timeout / 1000
        self._by_set = proxy.method("findObjectByIdInSameSet")
        self._by_group = proxy.method("findObjectByIdInSameGroup")

    async def find(self, obj_name: str) -> tuple[Endpoint, ...]:
        """The active endpoints of ``obj_name``, sorted by host and port.

        Raises :class:`TarsRpcError` when the query fails and :class:`TarsRemoteError` when
        the registry answers a non-zero ``ret``.
        """
        if self.set_division is not None:
            ret, active, _ = await self._by_set(obj_name, self.set_division,
                                                _timeout=self._timeout, _context=self._context)
        else:
            ret, active, _ = await self._by_group(obj_name, _timeout=self._timeout,
                                                  _context=self._context)
        if ret != 0:
            raise TarsRemoteError(f"registry {self.proxy.obj_name} answered {ret} for {obj_name}",
                                  code=ret)
        endpoints = []
        for item in active:
            try:
                endpoints.append(Endpoint.from_endpointf(item))
            except (EndpointError, TypeError) as exc:
                log.warning("registry returned a bad endpoint for %s: %s", obj_name, exc)
        endpoints.sort(key=lambda ep: (ep.host, ep.port))
        return tuple(endpoints)


class RegistryEndpoints(EndpointSource):
    """An object's endpoints as the registry reports them, refreshed while in use.

    ``initial`` seeds the list (the locator's own configured endpoints); the first refresh
    then happens one interval after first use instead of at once.
    """

    __slots__ = ("_failures", "_interval", "_last_error", "_locator", "_loop", "_next",
                 "_task")

    def __init__(self, obj_name: str, locator: Locator,
                 initial: tuple[Endpoint, ...] | None = None) -> None:
        super().__init__(obj_name, initial)
        self._locator = locator
        self._interval = locator.config.refresh_endpoint_interval / 1000
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next = 0.0
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._last_error: TarsRpcError | None = None

    def poll(self) -> bool:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            if self.endpoints is not None:
                self._next = loop.time() + self._interval
        if self._task is None and loop.time() >= self._next:
            self._start()
        return self.endpoints is not None

    async def wait(self) -> tuple[Endpoint, ...]:
        if not self.poll() and self._task is None:
            self._start()  # no list yet: look it up now, not at the scheduled time
        task = self._task
        if self.endpoints is None and task is not None:
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.cancelled():
                    raise TarsConnectError(f"lookup of {self.obj_name} cancelled") from None
                raise
        if self.endpoints is None:
            error = self._last_error
            raise TarsNoEndpointError(f"cannot resolve {self.obj_name}: "
                                      f"{error.message if error else 'lookup cancelled'}")
        return self.endpoints

    async def refresh(self) -> tuple[Endpoint, ...] | None:
        """Query the registry now (or join the query in flight); the resulting list."""
        self.poll()
        if self._task is None:
            self._start()
        assert self._task is not None
        await asyncio.shield(self._task)
        return self.endpoints

    def _start(self) -> None:
        self._task = self._locator.spawn(self._query())

    async def _query(self) -> None:
        loop = asyncio.get_running_loop()
        config = self._locator.config
        try:
            found = await self._locator.find(self.obj_name)
        except Exception as exc:
            if isinstance(exc, TarsRpcError):
                error = exc
            else:
                log.exception("endpoint lookup of %s failed unexpectedly", self.obj_name)
                error = TarsRpcError(f"endpoint lookup failed: {exc!r}")
            self._failures += 1
            retry = (config.refresh_error_retry if self._failures <= 3
                     else config.refresh_error_backoff)
            self._next = loop.time() + retry / 1000
            self._last_error = error
            log.warning("endpoint lookup of %s failed (%s); %s, retry in %d ms", self.obj_name,
                        error, "keeping the last list" if self.endpoints is not None
                        else "no endpoints known", retry)
            return
        finally:
            self._task = None
        self._failures = 0
        if not found:
            self._next = loop.time() + config.refresh_empty_retry / 1000
            self._last_error = TarsNoEndpointError(
                f"the registry knows no active endpoint of {self.obj_name}")
            log.warning("registry returned no active endpoint for %s; %s", self.obj_name,
                        "keeping the last list" if self.endpoints is not None
                        else "no endpoints known")
            return
        self._next = loop.time() + self._interval
        self._last_error = None
        if found != self.endpoints:
            log.info("endpoints of %s: %s", self.obj_name,
                     ", ".join(str(ep) for ep in found))
            self.endpoints = found
            self.version += 1
