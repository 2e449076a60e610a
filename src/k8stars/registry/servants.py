"""The registry's servants: QueryF (``tars.tarsregistry.QueryObj``), the K8STARS interface
(``tars.tarsregistry.Registry``) and its AdminObj commands.

:class:`QueryImp` answers from the in-memory index: the six open-source QueryF methods with the
native semantics (client host = request context ``node_name``, else the peer IP); the hot ones
return the index's cached encoded answer as a :class:`~k8stars.tars.servant.RawResult`, so a
lookup costs no encoding. ``findObjectNodeName``, ``registerChange``, ``registerQuery`` and
``getLocker`` are enterprise methods: they answer -1, as the open-source registry does.

:class:`RegistryImp` implements ``onStartup``, ``onPrestop``, ``keepAlive``, ``registerMetrics``
and ``getMetricsAdapters``. Errors are answered with these return codes (``iRet``) and a
description naming the field and the limit:

======  =====================  ==========================================================
code    name                   meaning
======  =====================  ==========================================================
1001    ``INVALID_ARGUMENT``   the request is invalid (empty or over-long names, unknown
                               state, unparsable endpoint, too many adapters, ...); nothing
                               was written or queued
1002    ``UNAUTHORIZED``       a token is configured and the request context key
                               ``tars_registry_token`` is missing or wrong (writes only)
1003    ``UNAVAILABLE``        the database is down and the request cannot be kept (queue
                               full, the registry is stopping, or getMetricsAdapters has no
                               earlier answer to serve); retry later
======  =====================  ==========================================================

While the database is down, writes are accepted and queued (answered 0); the response context
then carries ``tars_registry_queued=1``.

AdminObj commands (:func:`install_admin_commands`): ``clean [dryRun] [datetime]`` as in the
original (``dryRun`` ``n`` turns the dry run off; ``datetime`` ``YYYY-MM-DD HH:MM:SS``, default
now − 24 h) and ``tars.registrystatus`` (degraded flag, instances by state, pending writes, last
poll).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from enum import IntEnum
from typing import Any, TypeVar

from ..tars.admin import AdminServant
from ..tars.errors import TarsRpcError
from ..tars.idl.loader import framework
from ..tars.servant import RawResult, Servant, current
from .index import RegistryIndex
from .metrics import CallStats
from .service import RegistryService
from .store_validate import StoreUnavailableError, StoreValidationError

__all__ = [
    "QUERY_OBJ",
    "REGISTRY_OBJ",
    "TOKEN_CONTEXT_KEY",
    "QueryImp",
    "RegistryError",
    "RegistryImp",
    "install_admin_commands",
]

log = logging.getLogger("k8stars.registry.servants")

T = TypeVar("T")

QUERY_OBJ = "tars.tarsregistry.QueryObj"
REGISTRY_OBJ = "tars.tarsregistry.Registry"
#: Request context key carrying the shared token (``TARS_REGISTRY_TOKEN``).
TOKEN_CONTEXT_KEY = "tars_registry_token"
#: Response context key set when a write was queued because the database is down.
QUEUED_CONTEXT_KEY = "tars_registry_queued"

_IDL = framework()
QUERY_F = _IDL.interface("tars.QueryF")
TARS_REGISTRY = _IDL.interface("tars.tarsregistry")
MetricsAdapterInfo: Any = _IDL.struct("tars.MetricsAdapterInfo")

_perf = time.perf_counter


class RegistryError(IntEnum):
    """Return codes of :class:`RegistryImp` (see the module docstring)."""

    INVALID_ARGUMENT = 1001
    UNAUTHORIZED = 1002
    UNAVAILABLE = 1003


def _client_host() -> str:
    cur = current()
    context = cur.request.context
    if context:
        node = context.get("node_name")
        if node:
            return node
    return cur.host


class QueryImp(Servant, interface=QUERY_F):
    """QueryF from the index (see the module docstring)."""

    def __init__(self, index: RegistryIndex, stats: CallStats | None = None,
                 servant: str = QUERY_OBJ) -> None:  # fmt: skip
        self.index = index
        self._stats = stats
        self._servant = servant

    def _done(self, method: str, started: float) -> None:
        stats = self._stats
        if stats is not None:
            stats.observe(self._servant, method, "ok", _perf() - started)

    def findObjectById(self, id: str) -> RawResult:
        started = _perf()
        body = self.index.encoded_by_id(id)
        self._done("findObjectById", started)
        return RawResult(body)

    def findObjectById4Any(self, id: str) -> RawResult:
        started = _perf()
        body = self.index.encoded_4_any(id)
        self._done("findObjectById4Any", started)
        return RawResult(body)

    def findObjectById4All(self, id: str) -> RawResult:
        started = _perf()
        body = self.index.encoded_4_all(id, _client_host())
        self._done("findObjectById4All", started)
        return RawResult(body)

    def findObjectByIdInSameGroup(self, id: str) -> RawResult:
        started = _perf()
        body = self.index.encoded_same_group(id, _client_host())
        self._done("findObjectByIdInSameGroup", started)
        return RawResult(body)

    def findObjectByIdInSameStation(self, id: str, sStation: str) -> RawResult:
        started = _perf()
        body = self.index.encoded_same_station(id, sStation, _client_host())
        self._done("findObjectByIdInSameStation", started)
        return RawResult(body)

    def findObjectByIdInSameSet(self, id: str, setId: str) -> RawResult:
        started = _perf()
        body = self.index.encoded_same_set(id, setId, _client_host())
        self._done("findObjectByIdInSameSet", started)
        return RawResult(body)

    # enterprise methods: -1, as the open-source QueryImp

    def findObjectNodeName(self, id: str) -> tuple[int, list[str]]:
        self._done("findObjectNodeName", _perf())
        return -1, []

    def registerChange(self, timestamp: dict[str, str], name: str) -> int:
        self._done("registerChange", _perf())
        return -1

    def registerQuery(self, id: str, name: str) -> int:
        self._done("registerQuery", _perf())
        return -1

    def getLocker(self, req: Any) -> int:
        self._done("getLocker", _perf())
        return -1


class RegistryImp(Servant, interface=TARS_REGISTRY):
    """The K8STARS registration interface over a :class:`RegistryService`.

    ``token``: when non-empty, writes must carry it in the request context key
    ``tars_registry_token``; ``getMetricsAdapters`` stays open.
    """

    def __init__(self, service: RegistryService, *, token: str = "",
                 stats: CallStats | None = None, servant: str = REGISTRY_OBJ) -> None:  # fmt: skip
        self.service = service
        self._token = token.encode() if token else b""
        self._stats = stats
        self._servant = servant

    # -- helpers ----------------------------------------------------------------------------

    def _check_token(self, method: str) -> None:
        if not self._token:
            return
        given = current().request.context.get(TOKEN_CONTEXT_KEY, "")
        if not hmac.compare_digest(given.encode(), self._token):
            what = "missing" if not given else "wrong"
            raise TarsRpcError(
                f"{method}: refused: the registry token is {what} (send it in the request "
                f"context key {TOKEN_CONTEXT_KEY!r})",
                int(RegistryError.UNAUTHORIZED),
            )

    def _record(self, method: str, result: str, started: float) -> None:
        if self._stats is not None:
            self._stats.observe(self._servant, method, result, _perf() - started)

    def _error(self, method: str, exc: Exception) -> TarsRpcError:
        if isinstance(exc, TarsRpcError):
            return exc
        if isinstance(exc, StoreValidationError):
            return TarsRpcError(f"{method}: invalid request: {exc}",
                                int(RegistryError.INVALID_ARGUMENT))  # fmt: skip
        return TarsRpcError(f"{method}: {exc}", int(RegistryError.UNAVAILABLE))

    def _sync(self, method: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` with the token check and error mapping; records the call unless ``fn``
        returns an awaitable (the caller records it when done)."""
        started = _perf()
        try:
            self._check_token(method)
            result = fn()
        except (TarsRpcError, StoreValidationError, StoreUnavailableError) as exc:
            err = self._error(method, exc)
            self._record(method, str(err.code), started)
            raise err from None
        if result is None:
            self._record(method, "ok", started)
        return result

    async def _write(self, method: str, fn: Callable[[], Awaitable[bool]]) -> None:
        started = _perf()
        try:
            self._check_token(method)
            written = await fn()
        except (TarsRpcError, StoreValidationError, StoreUnavailableError) as exc:
            err = self._error(method, exc)
            self._record(method, str(err.code), started)
            log.info("%s refused (%d): %s", method, err.code, err.message)
            raise err from None
        if not written:
            current().response_context[QUEUED_CONTEXT_KEY] = "1"
        self._record(method, "ok", started)

    # -- tarsregistry ------------------------------------------------------------------------

    async def onStartup(self, req: Any) -> None:
        await self._write("onStartup", lambda: self.service.on_startup(req))

    async def onPrestop(self, req: Any) -> None:
        await self._write("onPrestop", lambda: self.service.on_prestop(req))

    def keepAlive(self, req: Any) -> Coroutine[Any, Any, None] | None:
        # Plain heartbeats are answered inline; a state change waits for its write.
        started = _perf()
        pending = self._sync("keepAlive", lambda: self.service.keep_alive(req))
        if pending is None:
            return None
        return self._finish_write("keepAlive", pending, started)

    async def _finish_write(self, method: str, pending: Awaitable[bool], started: float
                            ) -> None:  # fmt: skip
        if not await pending:
            current().response_context[QUEUED_CONTEXT_KEY] = "1"
        self._record(method, "ok", started)

    async def registerMetrics(self, req: Any) -> None:
        await self._write("registerMetrics", lambda: self.service.register_metrics(req))

    async def getMetricsAdapters(self, req: Any) -> list[Any]:
        method = "getMetricsAdapters"
        started = _perf()
        try:
            groups = await self.service.get_metrics_adapters(getattr(req, "filter", None) or {})
        except (StoreValidationError, StoreUnavailableError) as exc:
            err = self._error(method, exc)
            self._record(method, str(err.code), started)
            raise err from None
        self._record(method, "ok", started)
        return [MetricsAdapterInfo(targets=targets, labels=labels) for targets, labels in groups]


# -- AdminObj ------------------------------------------------------------------------------------


def parse_clean_command(command: str) -> tuple[bool, str | None]:
    """``clean [dryRun] [datetime]`` → (dry_run, datetime text or None).

    As the original: the first word is the dry-run flag, ``n`` turns it off (anything else
    keeps it on); the rest is the datetime (``YYYY-MM-DD HH:MM:SS``).
    """
    words = command.split()[1:]
    dry_run = not (words and words[0].lower() == "n")
    rest = " ".join(words[1:])
    return dry_run, rest or None


def install_admin_commands(admin: AdminServant, service: RegistryService) -> None:
    """Add ``clean`` and ``tars.registrystatus`` to a server's AdminObj."""

    async def clean(command: str) -> str:
        dry_run, when = parse_clean_command(command)
        try:
            report = await service.clean(when, dry_run)
        except StoreValidationError as exc:
            return f"clean failed: {exc}"
        except StoreUnavailableError as exc:
            return f"clean failed: {exc}"
        return report.render()

    def status(command: str) -> str:
        return service.status().render()

    admin.register_command(
        "clean", clean,
        "clean [dryRun] [datetime]: list (and with dryRun 'n' delete) servers, adapters, "
        "host configs and nodes inactive since before datetime (default now - 24h)",
    )  # fmt: skip
    admin.register_command(
        "tars.registrystatus", status,
        "registry status: degraded, instances by state, pending writes, last poll",
    )  # fmt: skip
