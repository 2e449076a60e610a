"""Calls of tarscli to the registry (``tars.tarsregistry.Registry``), to tars.tarsnotify and to
the service's AdminObj, shared by ``supervisor``, ``prestop`` and ``notify``.

:class:`RegistryClient` resolves ``tars.tarsregistry.Registry`` and
``tars.tarsnotify.NotifyObj`` through the locator of ``data/server_info.yaml`` (QueryF
``findObjectByIdInSameGroup``, the list refreshed every 10 s, as the original cached it) and
sends ``onStartup`` / ``keepAlive`` / ``onPrestop`` / ``registerMetrics`` with the pod
identity (``POD_NAME``, ``POD_UID``). Timeouts are short (connect 1 s, call 3 s) and no call
retries by itself: callers retry with a :class:`Backoff`. When ``TARS_REGISTRY_TOKEN`` is set
(the registry's shared write token) it is sent in the request context key
``tars_registry_token``.

Every failure is a :class:`~k8stars.tars.errors.TarsRpcError` (or a subclass);
:func:`describe` turns one into a short reason for a log line.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence
from typing import Any, Protocol

from k8stars.tars.client import Communicator, ServantProxy
from k8stars.tars.codec import Struct
from k8stars.tars.endpoint import EndpointError, parse_proxy
from k8stars.tars.errors import (
    TarsConnectError,
    TarsNoEndpointError,
    TarsRemoteError,
    TarsRpcError,
    TarsTimeoutError,
)
from k8stars.tars.idl.loader import framework

from .settings import CliError

__all__ = [
    "ADMIN_OBJ",
    "NOTIFY_OBJ",
    "REGISTRY_OBJ",
    "TOKEN_CONTEXT_KEY",
    "TOKEN_VARIABLE",
    "AdapterLike",
    "Backoff",
    "InfoLike",
    "RegistryClient",
    "admin_notify",
    "admin_shutdown",
    "describe",
]

#: The registry's K8STARS servant.
REGISTRY_OBJ = "tars.tarsregistry.Registry"
#: Where events ("[warn] server down", ...) are reported.
NOTIFY_OBJ = "tars.tarsnotify.NotifyObj"
#: The admin servant of every TARS server, on its ``local`` endpoint.
ADMIN_OBJ = "AdminObj"
#: Environment variable with the registry's shared write token (optional).
TOKEN_VARIABLE = "TARS_REGISTRY_TOKEN"
#: Request context key the registry reads the token from.
TOKEN_CONTEXT_KEY = "tars_registry_token"

#: Registry endpoints are looked up again this often (ms), like the original's 10 s cache.
REFRESH_MS = 10_000
CONNECT_TIMEOUT_MS = 1_000
CALL_TIMEOUT_MS = 3_000

_IDL = framework()
_REGISTRY = _IDL.interface("tars.tarsregistry")
_NOTIFY = _IDL.interface("tars.Notify")
_ADMIN = _IDL.interface("tars.AdminF")
_AdapterConf: Any = _IDL.struct("tars.AdapterConf")
_StartupReq: Any = _IDL.struct("tars.onStartupReq")
_KeepAliveReq: Any = _IDL.struct("tars.keepAliveReq")
_PrestopReq: Any = _IDL.struct("tars.onPrestopReq")
_MetricsReq: Any = _IDL.struct("tars.RegisterMetricsReq")
_ReportInfo: Any = _IDL.struct("tars.ReportInfo")
_REPORT = int(_IDL.enum("tars.ReportType")["REPORT"])
_NOTIFYERROR = int(_IDL.enum("tars.NOTIFYLEVEL")["NOTIFYERROR"])


class AdapterLike(Protocol):
    """What the registry calls need of an adapter (:class:`~k8stars.cli.meta.AdapterInfo`)."""

    @property
    def servant(self) -> str: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def protocol(self) -> str: ...
    @property
    def maxconns(self) -> int: ...
    @property
    def threads(self) -> int: ...
    @property
    def queuecap(self) -> int: ...
    @property
    def queuetimeout(self) -> int: ...


class InfoLike(Protocol):
    """What tarscli's runtime subcommands need of ``data/server_info.yaml``
    (:class:`~k8stars.cli.meta.ServerInfo`; the supervisor keeps a lighter copy)."""

    @property
    def application(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def set_id(self) -> str: ...
    @property
    def locator(self) -> str: ...
    @property
    def local(self) -> str: ...
    @property
    def node_name(self) -> str: ...
    @property
    def pod_name(self) -> str: ...
    @property
    def pod_uid(self) -> str: ...
    @property
    def full_name(self) -> str: ...
    @property
    def adapters(self) -> Sequence[AdapterLike]: ...


def describe(exc: BaseException) -> str:
    """A short reason for a failed call, for one log line."""
    if isinstance(exc, TarsNoEndpointError):
        return f"has no known endpoint ({exc.message})"
    if isinstance(exc, TarsTimeoutError):
        return f"timed out ({exc.message})"
    if isinstance(exc, TarsConnectError):
        return f"unreachable ({exc.message})"
    if isinstance(exc, TarsRemoteError):
        return f"refused: {exc.message} (code {exc.code})"
    if isinstance(exc, TarsRpcError):
        return f"{exc.message} (code {exc.code})"
    return f"{type(exc).__name__}: {exc}"


class Backoff:
    """Exponential backoff with jitter: ``initial`` doubling up to ``maximum`` seconds."""

    def __init__(self, initial: float = 1.0, maximum: float = 30.0, jitter: float = 0.2) -> None:
        self.initial = max(0.001, initial)
        self.maximum = max(self.initial, maximum)
        self.jitter = jitter
        self.failures = 0

    def next(self) -> float:
        """The delay before the next attempt; counts a failure."""
        base = min(self.maximum, self.initial * 2 ** min(self.failures, 30))
        self.failures += 1
        return float(base * (1 + random.uniform(-self.jitter, self.jitter)))

    def reset(self) -> None:
        self.failures = 0


def startup_request(info: InfoLike, *, state: str, disable_flow: bool, version: str) -> Struct:
    """The ``onStartupReq`` of a service: its adapters with their resolved endpoints."""
    adapters = [
        _AdapterConf(servant=a.servant, endpoint=a.endpoint, protocol=a.protocol,
                     maxConns=a.maxconns, threadNum=a.threads, queueCap=a.queuecap,
                     queueTimeout=a.queuetimeout)
        for a in info.adapters
    ]
    req: Struct = _StartupReq(nodeName=info.node_name, application=info.application,
                              server=info.server, setID=info.set_id, adapters=adapters,
                              disableFlow=disable_flow, State=state, Version=version,
                              podName=info.pod_name, podUid=info.pod_uid)
    return req


class RegistryClient:
    """The registry (and tars.tarsnotify) as seen from one service's pod.

    ``locator`` overrides ``info.locator`` (``TARS_LOCATOR``); a malformed or missing locator
    raises :class:`CliError` (exit status 2). ``token`` defaults to ``TARS_REGISTRY_TOKEN``.
    """

    def __init__(self, info: InfoLike, *, locator: str | None = None,
                 token: str | None = None, call_timeout_ms: int = CALL_TIMEOUT_MS) -> None:
        self.info = info
        self.locator = (locator or info.locator).strip()
        if not self.locator:
            raise CliError("no locator: set locator in _server_meta.yaml or TARS_LOCATOR")
        try:
            spec = parse_proxy(self.locator)
        except EndpointError as exc:
            raise CliError(f"locator {self.locator!r}: {exc}") from None
        if not spec.is_direct:
            raise CliError(f"locator {self.locator!r}: expected Obj@endpoint (the registry's "
                           "QueryObj with its address)")
        token = os.environ.get(TOKEN_VARIABLE, "") if token is None else token
        self._context = {TOKEN_CONTEXT_KEY: token} if token else None
        self._timeout = call_timeout_ms / 1000
        self.comm = Communicator(locator=self.locator, sync_invoke_timeout=call_timeout_ms,
                                 connect_timeout=CONNECT_TIMEOUT_MS,
                                 refresh_endpoint_interval=REFRESH_MS,
                                 node_name=info.node_name or None)
        self._registry: ServantProxy | None = None
        self._notify: ServantProxy | None = None

    @property
    def registry(self) -> ServantProxy:
        if self._registry is None:
            # every Registry call is an upsert of the pod's own state or a read: one lost with
            # a registry replica may be sent to another
            self._registry = self.comm.proxy(_REGISTRY, REGISTRY_OBJ, idempotent=True)
        return self._registry

    @property
    def notifier(self) -> ServantProxy:
        if self._notify is None:
            self._notify = self.comm.proxy(_NOTIFY, NOTIFY_OBJ)
        return self._notify

    async def on_startup(self, *, state: str, disable_flow: bool, version: str) -> None:
        """Register the service's adapters (an idempotent upsert) in ``state``."""
        req = startup_request(self.info, state=state, disable_flow=disable_flow,
                              version=version)
        await self.registry.onStartup(req, _timeout=self._timeout, _context=self._context)

    async def keep_alive(self, state: str) -> None:
        """Heartbeat with the service's state."""
        info = self.info
        req = _KeepAliveReq(nodeName=info.node_name, state=state,
                            application=info.application, server=info.server,
                            podName=info.pod_name, podUid=info.pod_uid)
        await self.registry.keepAlive(req, _timeout=self._timeout, _context=self._context)

    async def on_prestop(self) -> None:
        """Deregister the service (its adapters and server rows)."""
        info = self.info
        req = _PrestopReq(nodeName=info.node_name, application=info.application,
                          server=info.server)
        await self.registry.onPrestop(req, _timeout=self._timeout, _context=self._context)

    async def register_metrics(self, port: int) -> None:
        """Tell the registry where the service's Prometheus metrics are (``POD_IP:port``)."""
        info = self.info
        req = _MetricsReq(nodeName=info.node_name, application=info.application,
                          server=info.server, metricsPort=port)
        await self.registry.registerMetrics(req, _timeout=self._timeout, _context=self._context)

    async def report(self, message: str) -> None:
        """``Notify.reportNotifyInfo`` to tars.tarsnotify (REPORT, level NOTIFYERROR)."""
        info = self.info
        report = _ReportInfo(eType=_REPORT, sApp=info.application, sSet=info.set_id,
                             sContainer=info.pod_name, sServer=info.server, sMessage=message,
                             eLevel=_NOTIFYERROR, sNodeName=info.node_name)
        await self.notifier.reportNotifyInfo(report, _timeout=self._timeout)

    async def close(self) -> None:
        await self.comm.close()


def _admin_proxy(comm: Communicator, local: str) -> ServantProxy:
    return comm.proxy(_ADMIN, f"{ADMIN_OBJ}@{local}")


async def admin_notify(local: str, command: str, timeout: float) -> str:
    """``AdminObj.notify(command)`` on the ``local`` endpoint; the answer.

    Raises :class:`TarsRpcError` on failure and :class:`EndpointError` for a bad endpoint.
    """
    ms = max(1, round(timeout * 1000))
    async with Communicator(connect_timeout=ms, sync_invoke_timeout=ms) as comm:
        answer = await _admin_proxy(comm, local).notify(command, _timeout=timeout)
    return str(answer)


async def admin_shutdown(local: str, timeout: float) -> None:
    """``AdminObj.shutdown()`` on the ``local`` endpoint (raises like :func:`admin_notify`)."""
    ms = max(1, round(timeout * 1000))
    async with Communicator(connect_timeout=ms, sync_invoke_timeout=ms) as comm:
        await _admin_proxy(comm, local).shutdown(_timeout=timeout)


async def sleep_or(event: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``event`` is set; True if it was set."""
    if seconds <= 0:
        return event.is_set()
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True
