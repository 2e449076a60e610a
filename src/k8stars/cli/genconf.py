"""``tarscli genconf``: ``_server_meta.yaml`` + environment → the server's TARS config file and
``data/server_info.yaml``.

Writes ``$TARS_PATH/conf/<TARS_BUILD_SERVER or server>.conf`` in the TARS config format (the
layout of TarsCpp/TarsGo/TarsNode servers, built with :mod:`k8stars.tars.config`), then lays
the ``TARS_MERGE_CONF`` file over it (its values win), then writes
``$TARS_PATH/data/server_info.yaml`` from the *final* config, so what the other subcommands
check and register is what the server listens on.

Placeholders, in every text value of ``_server_meta.yaml``:

* ``${local_ip}``: ``POD_IP``, else the source address of the default route (found with a UDP
  ``connect``, which sends nothing);
* ``${namespace}``: ``TARS_NAMESPACE`` (default ``tars-system``);
* ``${random_port}`` (endpoints only): the first free port in
  [TARS_RAND_PORT_MIN, TARS_RAND_PORT_MAX], distinct per endpoint, checked by binding on the
  endpoint's host (see :mod:`k8stars.cli.ports`). Fixed ports of the other endpoints are never
  handed out. Adapters are served first, in file order, then ``local``.

An unknown ``${...}`` is an error. The merge file is taken literally (no placeholders).
"""

from __future__ import annotations

import os
import re
import socket
import sys
from dataclasses import dataclass, replace
from typing import Any

from k8stars.tars.config import (
    ConfigDomain,
    ConfigError,
    TarsConfig,
    load_config,
    merge,
    render,
)
from k8stars.tars.endpoint import EndpointError, parse_endpoint, parse_proxy

from .meta import (
    META_KEYS,
    AdapterInfo,
    MetaError,
    ServerInfo,
    ServerMeta,
    info_path,
    load_meta,
    meta_path,
    resolve_meta,
    write_atomic,
    write_server_info,
)
from .ports import PortAllocator
from .settings import CliError, Settings

__all__ = [
    "PLACEHOLDERS",
    "GenconfResult",
    "build_config",
    "conf_path",
    "detect_local_ip",
    "expand_meta",
    "generate",
    "main",
    "server_info_from_config",
]

#: The placeholders genconf knows.
PLACEHOLDERS = ("local_ip", "random_port", "namespace")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_RANDOM_PORT = "${random_port}"
_ROUTE_PROBE = ("192.0.2.1", 9)  # TEST-NET-1: only a routing decision, nothing is sent

SERVER_DOMAIN = "/tars/application/server"
CLIENT_DOMAIN = "/tars/application/client"
APP_DOMAIN = "/tars/application"


@dataclass(frozen=True)
class GenconfResult:
    """What :func:`generate` wrote."""

    conf_path: str
    info_path: str
    info: ServerInfo
    config: TarsConfig
    meta: ServerMeta
    warnings: tuple[str, ...] = ()


def detect_local_ip() -> str:
    """The source address of the default route (IPv4); raises :class:`CliError` without one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(_ROUTE_PROBE)
            address = str(sock.getsockname()[0])
    except OSError as exc:
        raise CliError(f"POD_IP is not set and there is no default route to take the local "
                       f"address from ({exc.strerror}); set POD_IP") from None
    if address in ("", "0.0.0.0"):
        raise CliError("POD_IP is not set and the local address is unknown; set POD_IP")
    return address


def conf_path(tars_path: str, build_server: str) -> str:
    """``$TARS_PATH/conf/<build_server>.conf``."""
    return os.path.join(tars_path, "conf", f"{build_server}.conf")


class _Expander:
    """Substitutes the placeholders; ``origin`` and ``what`` name the value in errors."""

    def __init__(self, local_ip: str, namespace: str, allocator: PortAllocator) -> None:
        self.values = {"local_ip": local_ip, "namespace": namespace}
        self.allocator = allocator

    def text(self, value: str, origin: str, what: str, *, endpoint: bool = False) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "random_port":
                if not endpoint:
                    raise MetaError(f"{origin}: {what}: ${{random_port}} can only be used in an "
                                    "endpoint")
                return match.group(0)
            if name not in self.values:
                known = ", ".join(f"${{{p}}}" for p in PLACEHOLDERS)
                raise MetaError(f"{origin}: {what}: unknown placeholder {match.group(0)} "
                                f"(known: {known})")
            return self.values[name]

        return _PLACEHOLDER.sub(one, value).strip()

    def endpoint(self, value: str, origin: str, what: str) -> str:
        text = self.text(value, origin, what, endpoint=True)
        if _RANDOM_PORT in text:
            tokens = text.split()
            protocol = tokens[0] if tokens else ""
            host = _option(tokens, "-h")
            if host is None or _RANDOM_PORT in host:
                raise MetaError(f"{origin}: {what} {value!r}: ${{random_port}} needs the host "
                                "(-h HOST) to find a free port on")
            port = self.allocator.allocate("0.0.0.0" if host == "*" else host, protocol,
                                           purpose=what)
            text = text.replace(_RANDOM_PORT, str(port))
        _check_endpoint(text, origin, what)
        return text

    def reserve_fixed(self, value: str, origin: str, what: str) -> None:
        """Keep the port of an endpoint without ``${random_port}`` out of the allocation."""
        text = self.text(value, origin, what, endpoint=True)
        if text and _RANDOM_PORT not in text:
            port = _check_endpoint(text, origin, what)
            if port:
                self.allocator.reserve(port)


def _option(tokens: list[str], flag: str) -> str | None:
    for index, token in enumerate(tokens[:-1]):
        if token == flag:
            return tokens[index + 1]
    return None


def _check_endpoint(text: str, origin: str, what: str) -> int:
    try:
        return parse_endpoint(text).port
    except EndpointError as exc:
        raise MetaError(f"{origin}: {what}: {exc}") from None


def _adapter_origin(meta: ServerMeta, line: int) -> str:
    return f"{meta.source}:{line}" if line else meta.origin("adapters")


def expand_meta(meta: ServerMeta, local_ip: str, namespace: str,
                allocator: PortAllocator) -> ServerMeta:
    """``meta`` with every placeholder substituted and every endpoint checked."""
    expander = _Expander(local_ip, namespace, allocator)
    changes: dict[str, Any] = {}
    for key, (attr, kind) in META_KEYS.items():
        if kind == "str" and key != "local":
            changes[attr] = expander.text(getattr(meta, attr), meta.origin(key), key)
    # fixed ports first, so that no ${random_port} takes one of them
    for adapter in meta.adapters:
        expander.reserve_fixed(adapter.endpoint, _adapter_origin(meta, adapter.line),
                               f"adapter {adapter.object} endpoint")
    local_what = "local (AdminObj) endpoint"
    if meta.local:
        expander.reserve_fixed(meta.local, meta.origin("local"), local_what)
    adapters = []
    for adapter in meta.adapters:
        origin = _adapter_origin(meta, adapter.line)
        what = f"adapter {adapter.object} endpoint"
        adapters.append(replace(adapter, endpoint=expander.endpoint(adapter.endpoint, origin,
                                                                   what)))
    changes["adapters"] = tuple(adapters)
    if meta.local:
        changes["local"] = expander.endpoint(meta.local, meta.origin("local"), local_what)
    locator = changes["locator"]
    if locator:
        try:
            parse_proxy(locator)
        except EndpointError as exc:
            raise MetaError(f"{meta.origin('locator')}: locator: {exc}") from None
    return replace(meta, **changes)


def build_config(meta: ServerMeta, *, local_ip: str, tars_path: str,
                 source: str = "<generated>") -> TarsConfig:
    """The TARS config of an expanded ``meta`` (the layout of the original's template)."""
    application, server = meta.application, meta.server
    full = f"{application}.{server}"
    cfg = TarsConfig(source)
    cfg.root.add_comment(f" Generated by tarscli genconf from {meta.source}: edits are lost.")
    app = cfg.root.add_domain("tars").add_domain("application")
    app.set("enableset", "Y" if meta.set_id else "N")
    app.set("setdivision", meta.set_id or "NULL")
    _set_all(app.add_domain("client"), [
        ("locator", meta.locator),
        ("sync-invoke-timeout", meta.sync_invoke_timeout),
        ("async-invoke-timeout", meta.async_invoke_timeout),
        ("refresh-endpoint-interval", meta.refresh_endpoint_interval),
        ("stat", meta.stat_obj),
        ("property", meta.property_obj),
        ("report-interval", meta.report_interval),
        ("sample-rate", meta.sample_rate),
        ("max-sample-count", meta.max_sample_count),
        ("asyncthread", meta.async_thread_num),
        ("modulename", full),
    ])
    base = os.path.abspath(tars_path)
    srv = app.add_domain("server")
    _set_all(srv, [
        ("app", application),
        ("server", server),
        ("localip", local_ip),
        ("local", meta.local),
        ("node_name", local_ip),
        ("basepath", os.path.join(base, "bin") + "/"),
        ("datapath", os.path.join(base, "data") + "/"),
        ("logpath", os.path.join(base, "log") + "/"),
        ("logLevel", meta.log_level),
        ("logsize", meta.log_size),
        ("lognum", meta.log_num),
        ("config", meta.config_obj),
        ("notify", meta.notify_obj),
        ("log", meta.log_obj),
        ("deactivating-timeout", meta.deactivating_timeout),
    ])
    for adapter in meta.adapters:
        servant = f"{full}.{adapter.object}"
        block = srv.add_domain(f"{servant}Adapter")
        _set_all(block, [
            ("allow", ""),
            ("servant", servant),
            ("endpoint", adapter.endpoint),
            ("handlegroup", f"{servant}Adapter"),
            ("maxconns", adapter.maxconns),
            ("protocol", adapter.protocol),
            ("queuecap", adapter.queuecap),
            ("queuetimeout", adapter.queuetimeout),
            ("threads", adapter.threads),
        ])
    return cfg


def _set_all(domain: ConfigDomain, items: list[tuple[str, object]]) -> None:
    for key, value in items:
        domain.set(key, str(value).strip())


def server_info_from_config(cfg: TarsConfig, *, where: str, build_server: str, local_ip: str,
                            settings: Settings, conf_file: str) -> ServerInfo:
    """Read the resolved settings back from the final config (after the merge)."""
    srv = cfg.domain(SERVER_DOMAIN)
    app = cfg.domain(APP_DOMAIN)
    client = cfg.domain(CLIENT_DOMAIN)
    if srv is None or app is None:
        raise MetaError(f"{where}: <tars><application><server> is missing")
    adapters = []
    for name in srv.subdomains():
        block = srv.subdomain(name)
        assert block is not None
        path = f"{SERVER_DOMAIN}/{name}"
        servant = block.get("servant", "")
        endpoint = block.get("endpoint", "")
        if not servant:
            raise MetaError(f"{where}: {path}: servant is missing")
        if "${" in endpoint:
            raise MetaError(f"{where}: {path}<endpoint>: placeholders are not expanded in "
                            f"TARS_MERGE_CONF: {endpoint!r}")
        _check_endpoint(endpoint, where, f"{path}<endpoint>")
        adapters.append(AdapterInfo(
            name=name,
            servant=servant,
            endpoint=endpoint,
            protocol=block.get("protocol", "tars"),
            maxconns=_int(cfg, f"{path}<maxconns>", 200000, where),
            queuecap=_int(cfg, f"{path}<queuecap>", 10000, where),
            queuetimeout=_int(cfg, f"{path}<queuetimeout>", 60000, where),
            threads=_int(cfg, f"{path}<threads>", 5, where),
        ))
    local = srv.get("local", "")
    if local:
        _check_endpoint(local, where, f"{SERVER_DOMAIN}<local>")
    enabled = app.get("enableset", "n").strip().lower() == "y"
    set_id = app.get("setdivision", "") if enabled else ""
    pod_ip = settings.pod_ip or ""
    return ServerInfo(
        application=srv.get("app", ""),
        server=srv.get("server", ""),
        build_server=build_server,
        set_id=set_id,
        locator=client.get("locator", "") if client is not None else "",
        local=local,
        local_ip=srv.get("localip", local_ip),
        node_name=srv.get("node_name", local_ip),
        namespace=settings.namespace,
        pod_ip=pod_ip,
        pod_name=settings.pod_name,
        pod_uid=settings.pod_uid,
        server_version=settings.server_version,
        tars_path=os.path.abspath(settings.tars_path),
        conf_path=conf_file,
        adapters=tuple(adapters),
    )


def _int(cfg: TarsConfig, path: str, default: int, where: str) -> int:
    try:
        return cfg.get_int(path, default)
    except ConfigError as exc:
        raise MetaError(f"{where}: {exc.message}") from None


def generate(settings: Settings | None = None, *, local_ip: str | None = None,
             allocator: PortAllocator | None = None) -> GenconfResult:
    """Run genconf: read, resolve, write both files; return what was written.

    Raises :class:`CliError` subclasses for every user mistake (their message names the file
    and line or the variable).
    """
    settings = settings or Settings()
    settings.check("genconf")
    tars_path = settings.tars_path
    meta = resolve_meta(load_meta(meta_path(tars_path)), settings)
    ip = local_ip or settings.pod_ip or detect_local_ip()
    if allocator is None:
        allocator = PortAllocator(settings.rand_port_min, settings.rand_port_max)
    expanded = expand_meta(meta, ip, settings.namespace, allocator)

    build_server = (settings.build_server or meta.server).strip()
    origin = "TARS_BUILD_SERVER" if settings.build_server else meta.origin("server")
    if not build_server or "/" in build_server or build_server.startswith("."):
        raise MetaError(f"{origin}: {build_server!r} cannot name a config file")
    conf_file = conf_path(os.path.abspath(tars_path), build_server)

    cfg = build_config(expanded, local_ip=ip, tars_path=tars_path, source=conf_file)
    where = conf_file
    merge_file = settings.merge_conf
    if merge_file:
        try:
            override = load_config(merge_file)
        except ConfigError as exc:
            raise CliError(f"TARS_MERGE_CONF: {exc}") from None
        cfg = merge(cfg, override)
        where = f"{conf_file} (after TARS_MERGE_CONF {merge_file})"

    info = server_info_from_config(cfg, where=where, build_server=build_server, local_ip=ip,
                                   settings=settings, conf_file=conf_file)
    upstream = {"conf": expanded.yaml_dict(), "local_ip": ip,
                "tars_path": os.path.abspath(tars_path)}
    write_atomic(conf_file, render(cfg))
    info_file = info_path(tars_path)
    write_server_info(info, info_file, upstream)
    return GenconfResult(conf_path=conf_file, info_path=info_file, info=info, config=cfg,
                         meta=expanded, warnings=meta.warnings)


def main(args: list[str]) -> int:
    """Entry point of ``tarscli genconf`` (no arguments)."""
    if args:
        raise CliError(f"takes no arguments, got {' '.join(args)!r}")
    result = generate()
    for warning in result.warnings:
        sys.stderr.write(f"tarscli genconf: warning: {warning}\n")
    info = result.info
    sys.stdout.write(f"tarscli genconf: wrote {result.conf_path} and {result.info_path} "
                     f"({info.full_name}, {len(info.adapters)} adapter(s), "
                     f"local {info.local or '-'})\n")
    return 0
