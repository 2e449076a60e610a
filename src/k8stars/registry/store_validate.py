"""Errors of the registry store and validation of the K8STARS requests before anything is written.

Requests are read duck-typed (``getattr``), so the K8STARS structs built from
``tarsregistry.tars`` work, with or without the ``podName``/``podUid`` fields, and so does any
object with the same attributes. Every check names the request, the field and the limit; limits
are the ``db_tars`` column sizes (e.g. ``t_adapter_conf.application varchar(50)``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from types import SimpleNamespace

from ..tars.endpoint import EndpointError, parse_endpoint
from .schema import SERVER_STATES

__all__ = [
    "DEFAULT_METRICS_PORT",
    "MAX_ADAPTERS",
    "AdapterSpec",
    "Beat",
    "MetricsRegistration",
    "Prestop",
    "Startup",
    "StoreError",
    "StoreUnavailableError",
    "StoreValidationError",
    "parse_clean_before",
    "validate_keep_alive",
    "validate_metrics",
    "validate_metrics_filter",
    "validate_prestop",
    "validate_registry_info",
    "validate_startup",
]

#: Most adapters one onStartup may carry.
MAX_ADAPTERS = 64
#: registerMetrics with port 0 means this port (K8STARS ``consts.MetricsPort``).
DEFAULT_METRICS_PORT = 9325

# Column sizes that bound each field (the smallest column the value is written to).
_NODE_MAX = 50  # t_server_conf/t_adapter_conf.node_name, t_config_files.host
_APP_MAX = 50  # t_adapter_conf.application
_SERVER_MAX = 128  # t_server_conf.server_name; also "app.server" in t_config_files.server_name
_SERVANT_MAX = 100 - len("Adapter")  # t_adapter_conf.adapter_name = servant + "Adapter"
_ENDPOINT_MAX = 128
_PROTOCOL_MAX = 64
_VERSION_MAX = 128
_SET_MAX = (16, 16, 64)  # set_name, set_area, set_group
_POD_NAME_MAX = 253
_POD_UID_MAX = 64
_REGISTRY_MAX = 128  # t_registry_info locator_id, servant, endpoint, tars_version
_INT32_MAX = 2**31 - 1

_IDENT = re.compile(r"[A-Za-z0-9_\-]+")  # application, server: no dots (servant = app.server.obj)
_NODE = re.compile(r"[A-Za-z0-9_.:\-]+")  # IPv4, IPv6, host names
_SERVANT = re.compile(r"[A-Za-z0-9_.\-]+")
_SET_PART = re.compile(r"[A-Za-z0-9_\-*]+")
_PROTOCOL = re.compile(r"[A-Za-z0-9_\-]*")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces
_TEXT = re.compile(r"[\x20-\x7e]*")  # printable ASCII


class StoreError(Exception):
    """Base class of the store's errors."""


class StoreValidationError(StoreError, ValueError):
    """A request is invalid; nothing was written."""


class StoreUnavailableError(StoreError):
    """The database could not be reached or failed; nothing of the operation was written.

    The caller may keep the operation and retry it later.
    """


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """One validated adapter of an onStartup request."""

    servant: str
    endpoint: str
    protocol: str
    max_conns: int
    thread_num: int
    queue_cap: int
    queue_timeout: int

    @property
    def adapter_name(self) -> str:
        return self.servant + "Adapter"


@dataclass(frozen=True, slots=True)
class Startup:
    """A validated onStartup request."""

    node: str
    application: str
    server: str
    set_name: str
    set_area: str
    set_group: str
    adapters: tuple[AdapterSpec, ...]
    disable_flow: bool
    state: str
    version: str
    pod_name: str
    pod_uid: str

    @property
    def enable_set(self) -> str:
        return "Y" if self.set_name else "N"


@dataclass(frozen=True, slots=True)
class Beat:
    """A validated keepAlive request (``application``/``server`` empty for old clients)."""

    node: str
    state: str
    application: str = ""
    server: str = ""
    pod_name: str = ""
    pod_uid: str = ""


@dataclass(frozen=True, slots=True)
class Prestop:
    node: str
    application: str = ""
    server: str = ""


@dataclass(frozen=True, slots=True)
class MetricsRegistration:
    node: str
    application: str
    server: str
    port: int


def _fail(where: str, message: str) -> StoreValidationError:
    return StoreValidationError(f"{where}: {message}")


def _str(req: object, attr: str, where: str, default: str = "") -> str:
    value = getattr(req, attr, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _fail(f"{where}.{attr}", f"must be a string, got {type(value).__name__}")
    return value


def _int(req: object, attr: str, where: str, lo: int = 0, hi: int = _INT32_MAX) -> int:
    value = getattr(req, attr, 0)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(f"{where}.{attr}", f"must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise _fail(f"{where}.{attr}", f"{value} is out of range {lo}..{hi}")
    return value


def _check(
    value: str,
    field: str,
    maximum: int,
    pattern: re.Pattern[str],
    *,
    required: bool = True,
    what: str = "letters, digits, '_' and '-'",
) -> str:
    if not value:
        if required:
            raise _fail(field, "must not be empty")
        return value
    if len(value) > maximum:
        raise _fail(field, f"longer than {maximum} characters (got {len(value)})")
    if not pattern.fullmatch(value):
        raise _fail(field, f"{value!r} may only contain {what}")
    return value


def _node(req: object, where: str) -> str:
    return _check(
        _str(req, "nodeName", where),
        f"{where}.nodeName",
        _NODE_MAX,
        _NODE,
        what="letters, digits, '.', ':', '_' and '-'",
    )


def _app_server(req: object, where: str, *, required: bool) -> tuple[str, str]:
    app = _check(
        _str(req, "application", where), f"{where}.application", _APP_MAX, _IDENT, required=required
    )
    server = _check(
        _str(req, "server", where), f"{where}.server", _SERVER_MAX, _IDENT, required=required
    )
    if len(app) + 1 + len(server) > _SERVER_MAX:
        raise _fail(where, f"'{app}.{server}' is longer than {_SERVER_MAX} characters")
    return app, server


def _state(value: str, field: str, default: str) -> str:
    state = value.strip().lower() or default
    if state not in SERVER_STATES:
        raise _fail(field, f"unknown state {value!r} (expected one of {', '.join(SERVER_STATES)})")
    return state


def _pod(req: object, where: str) -> tuple[str, str]:
    name = _check(
        _str(req, "podName", where),
        f"{where}.podName",
        _POD_NAME_MAX,
        _SERVANT,
        required=False,
        what="letters, digits, '.', '_' and '-'",
    )
    uid = _check(
        _str(req, "podUid", where), f"{where}.podUid", _POD_UID_MAX, _IDENT, required=False
    )
    return name, uid


def _endpoint(value: str, field: str, maximum: int = _ENDPOINT_MAX) -> str:
    if not value.strip():
        raise _fail(field, "must not be empty")
    if len(value) > maximum:
        raise _fail(field, f"longer than {maximum} characters (got {len(value)})")
    if not _TEXT.fullmatch(value):
        raise _fail(field, "must be printable ASCII")
    try:
        parse_endpoint(value)
    except EndpointError as exc:
        raise _fail(field, str(exc)) from None
    return value


def _adapter(item: object, where: str) -> AdapterSpec:
    servant = _check(
        _str(item, "servant", where),
        f"{where}.servant",
        _SERVANT_MAX,
        _SERVANT,
        what="letters, digits, '.', '_' and '-'",
    )
    endpoint = _endpoint(_str(item, "endpoint", where), f"{where}.endpoint")
    protocol = _check(
        _str(item, "protocol", where), f"{where}.protocol", _PROTOCOL_MAX, _PROTOCOL, required=False
    )
    return AdapterSpec(
        servant=servant,
        endpoint=endpoint,
        protocol=protocol or "tars",
        max_conns=_int(item, "maxConns", where),
        thread_num=_int(item, "threadNum", where),
        queue_cap=_int(item, "queueCap", where),
        queue_timeout=_int(item, "queueTimeout", where),
    )


def validate_startup(req: object) -> Startup:
    """Check an ``onStartupReq``; raise :class:`StoreValidationError` naming the first problem."""
    where = "onStartupReq"
    node = _node(req, where)
    app, server = _app_server(req, where, required=True)
    set_id = _str(req, "setID", where)
    set_parts = ("", "", "")
    if set_id:
        parts = set_id.split(".")
        if len(parts) != 3:
            raise _fail(f"{where}.setID", f"{set_id!r} is not of the form name.area.group")
        for label, part, maximum in zip(("name", "area", "group"), parts, _SET_MAX, strict=True):
            what = "letters, digits, '_', '-' and '*'"
            _check(part, f"{where}.setID ({label})", maximum, _SET_PART, what=what)
        set_parts = (parts[0], parts[1], parts[2])
    raw_adapters = getattr(req, "adapters", None) or []
    if not isinstance(raw_adapters, (list, tuple)):
        raise _fail(f"{where}.adapters", "must be a list")
    if len(raw_adapters) > MAX_ADAPTERS:
        raise _fail(f"{where}.adapters", f"{len(raw_adapters)} adapters, at most {MAX_ADAPTERS}")
    adapters = tuple(_adapter(a, f"{where}.adapters[{i}]") for i, a in enumerate(raw_adapters))
    seen: set[str] = set()
    for adapter in adapters:
        if adapter.servant in seen:
            raise _fail(f"{where}.adapters", f"servant {adapter.servant!r} listed twice")
        seen.add(adapter.servant)
    disable_flow = getattr(req, "disableFlow", False)
    if not isinstance(disable_flow, bool):
        raise _fail(f"{where}.disableFlow", "must be a bool")
    state = _state(_str(req, "State", where), f"{where}.State", "active")
    version = _check(
        _str(req, "Version", where),
        f"{where}.Version",
        _VERSION_MAX,
        _TEXT,
        required=False,
        what="printable ASCII",
    )
    pod_name, pod_uid = _pod(req, where)
    return Startup(
        node=node,
        application=app,
        server=server,
        set_name=set_parts[0],
        set_area=set_parts[1],
        set_group=set_parts[2],
        adapters=adapters,
        disable_flow=disable_flow,
        state=state,
        version=version,
        pod_name=pod_name,
        pod_uid=pod_uid,
    )


def validate_keep_alive(req: object) -> Beat:
    """Check a ``keepAliveReq`` (empty state means active; app and server both or neither)."""
    where = "keepAliveReq"
    return _beat(
        _str(req, "nodeName", where),
        _str(req, "state", where),
        _str(req, "application", where),
        _str(req, "server", where),
        _str(req, "podName", where),
        _str(req, "podUid", where),
    )


@lru_cache(maxsize=65536)
def _beat(node: str, state: str, app: str, server: str, pod_name: str, pod_uid: str) -> Beat:
    # Cached: a fleet repeats the same heartbeats every interval.
    fields = SimpleNamespace(
        nodeName=node,
        application=app,
        server=server,
        podName=pod_name,
        podUid=pod_uid,
    )
    where = "keepAliveReq"
    node = _node(fields, where)
    app, server = _app_server(fields, where, required=False)
    if bool(app) != bool(server):
        raise _fail(where, "application and server must be given together")
    pod_name, pod_uid = _pod(fields, where)
    return Beat(node, _state(state, f"{where}.state", "active"), app, server, pod_name, pod_uid)


def validate_prestop(req: object) -> Prestop:
    """Check an ``onPrestopReq`` (app and server both, or neither for old clients)."""
    where = "onPrestopReq"
    node = _node(req, where)
    app, server = _app_server(req, where, required=False)
    if bool(app) != bool(server):
        raise _fail(where, "application and server must be given together")
    return Prestop(node, app, server)


def validate_metrics(req: object) -> MetricsRegistration:
    """Check a ``RegisterMetricsReq``; port 0 becomes :data:`DEFAULT_METRICS_PORT`."""
    where = "RegisterMetricsReq"
    node = _node(req, where)
    app, server = _app_server(req, where, required=True)
    port = _int(req, "metricsPort", where, 0, 65535) or DEFAULT_METRICS_PORT
    return MetricsRegistration(node, app, server, port)


def validate_metrics_filter(filter: Mapping[str, str] | None) -> dict[str, str]:
    """Keep the ``application``/``server``/``set`` keys of a getMetricsAdapters filter.

    Other keys are ignored (the original ignored the whole filter); empty values match all.
    """
    out: dict[str, str] = {}
    for key in ("application", "server", "set"):
        value = (filter or {}).get(key, "")
        if not isinstance(value, str):
            raise _fail(f"GetMetricsAdaptersReq.filter[{key!r}]", "must be a string")
        if len(value) > _SERVER_MAX:
            raise _fail(f"GetMetricsAdaptersReq.filter[{key!r}]", "too long")
        if value:
            out[key] = value
    return out


def validate_registry_info(locator_id: str, servant: str, endpoint: str, tars_version: str) -> None:
    where = "registry info"
    _check(locator_id, f"{where}.locator_id", _REGISTRY_MAX, _TOKEN, what="printable ASCII")
    what = "letters, digits, '.', '_' and '-'"
    _check(servant, f"{where}.servant", _REGISTRY_MAX, _SERVANT, what=what)
    _endpoint(endpoint, f"{where}.endpoint", _REGISTRY_MAX)
    _check(tars_version, f"{where}.tars_version", _REGISTRY_MAX, _TOKEN, what="printable ASCII")


def parse_clean_before(before: datetime | str | None) -> datetime | None:
    """The ``datetime`` argument of ``clean``: a datetime, ``"YYYY-MM-DD HH:MM:SS"`` or None."""
    if before is None or isinstance(before, datetime):
        return before
    if not isinstance(before, str):
        raise _fail("clean", f"datetime must be a string, got {type(before).__name__}")
    try:
        return datetime.fromisoformat(before.strip())
    except ValueError:
        raise _fail("clean", f"bad datetime {before!r} (expected YYYY-MM-DD HH:MM:SS)") from None
