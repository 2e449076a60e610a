"""Server settings read from a TARS config file (the one ``tarscli genconf`` writes).

``/tars/application/server`` gives the server keys, each of its sub-domains an adapter,
``/tars/application`` the set settings; ``/tars/application/client`` is kept raw for the
client's Communicator. Every bad or missing value raises
:class:`~k8stars.tars.config.ConfigError` naming the key path and the value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Literal

from .config import ConfigDomain, ConfigError, TarsConfig, load_config
from .endpoint import Endpoint, EndpointError, parse_endpoint
from .packet import DEFAULT_MAX_FRAME_SIZE, MIN_FRAME_SIZE

__all__ = ["Adapter", "ServerConfig", "parse_size"]

SERVER = "/tars/application/server"
APPLICATION = "/tars/application"
CLIENT = "/tars/application/client"

_SIZE_RE = re.compile(r"([0-9]+)\s*([KMG]?)B?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_INT_RE = re.compile(r"[+-]?[0-9]+")
_LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARN", "WARNING", "ERROR", "NONE"})


def parse_size(text: str) -> int:
    """``10M`` → 10485760: a byte count with an optional K/M/G (and B) suffix."""
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"bad size {text!r} (expected a number with an optional K, M or G)")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


@dataclass(frozen=True, slots=True)
class Adapter:
    """One listening endpoint and the servant it serves (a ``<...Adapter>`` block).

    ``queuecap`` bounds the calls in flight (more are answered -9), ``queuetimeout`` (ms,
    0 = off) the time a call may wait before dispatch (-6), ``maxconns`` the open
    connections. ``threads`` is accepted and ignored (calls run as asyncio tasks);
    ``allow`` lists client addresses (``10.0.0.7`` or a prefix ``10.0.*``), empty = any.
    """

    name: str
    endpoint: Endpoint
    servant: str
    protocol: Literal["tars", "not_tars"] = "tars"
    queuecap: int = 10000
    queuetimeout: int = 60000
    maxconns: int = 200000
    threads: int = 1
    allow: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not self.servant:
            raise ValueError("an adapter needs a name and a servant name")
        if self.protocol not in ("tars", "not_tars"):
            raise ValueError(f"adapter {self.name}: protocol {self.protocol!r} is not "
                             "'tars' or 'not_tars'")
        for key in ("queuecap", "maxconns"):
            if getattr(self, key) < 1:
                raise ValueError(f"adapter {self.name}: {key} must be at least 1")
        if self.queuetimeout < 0 or self.threads < 0:
            raise ValueError(f"adapter {self.name}: queuetimeout and threads must be >= 0")

    def allows(self, host: str) -> bool:
        """Whether a client at ``host`` may connect."""
        if not self.allow:
            return True
        for rule in self.allow:
            if rule == host or (rule.endswith("*") and host.startswith(rule[:-1])):
                return True
        return False


@dataclass(frozen=True)
class ServerConfig:
    """The settings of one server process (``/tars/application/server`` and friends).

    Times are in ms, sizes in bytes. ``client`` holds the raw ``<client>`` parameters and
    ``client_objects`` its sub-domains (per-object settings), for the Communicator.
    """

    app: str
    server: str
    localip: str = ""
    local: Endpoint | None = None
    node: str = ""
    node_name: str = ""
    logpath: str = ""
    log_level: str = "DEBUG"
    log_size: int = 100 * 1024 * 1024
    log_num: int = 10
    basepath: str = ""
    datapath: str = ""
    config: str = ""
    notify: str = ""
    log: str = ""
    deactivating_timeout: int = 3000
    gracedown_timeout: int = 60000
    max_packet_length: int = DEFAULT_MAX_FRAME_SIZE
    enableset: bool = False
    setdivision: str = ""
    adapters: tuple[Adapter, ...] = ()
    client: dict[str, str] = field(default_factory=dict)
    client_objects: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str = "<string>"

    @property
    def name(self) -> str:
        """``app.server``."""
        return f"{self.app}.{self.server}"

    def adapter_for(self, servant: str) -> Adapter | None:
        """The adapter serving ``servant``, or None."""
        return next((a for a in self.adapters if a.servant == servant), None)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ServerConfig:
        """Read a config file and build the settings."""
        return cls.from_tars_config(load_config(path))

    @classmethod
    def from_tars_config(cls, cfg: TarsConfig) -> ServerConfig:
        """Build the settings from a parsed config file."""
        return _Reader(cfg).server_config()


class _Reader:
    def __init__(self, cfg: TarsConfig) -> None:
        self.cfg = cfg

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: {message}", self.cfg.source)

    def text(self, domain: ConfigDomain, path: str, key: str, default: str = "",
             required: bool = False) -> str:
        value = domain.get(key)
        if value is None or (required and not value):
            if required:
                raise self.fail(f"{path}<{key}>", "missing required value")
            return default
        return value

    def integer(self, domain: ConfigDomain, path: str, key: str, default: int,
                minimum: int = 0) -> int:
        value = domain.get(key)
        if value is None or value == "":
            return default
        if not _INT_RE.fullmatch(value) or int(value) < minimum:
            raise self.fail(f"{path}<{key}>", f"expected an integer >= {minimum}, got {value!r}")
        return int(value)

    def size(self, domain: ConfigDomain, path: str, key: str, default: int) -> int:
        value = domain.get(key)
        if not value:
            return default
        try:
            return parse_size(value)
        except ValueError as exc:
            raise self.fail(f"{path}<{key}>", str(exc)) from None

    def endpoint(self, path: str, value: str) -> Endpoint:
        try:
            return parse_endpoint(value)
        except EndpointError as exc:
            raise self.fail(path, str(exc)) from None

    def adapter(self, domain: ConfigDomain) -> Adapter:
        path = f"{SERVER}/{domain.name}"
        endpoint = self.endpoint(f"{path}<endpoint>",
                                 self.text(domain, path, "endpoint", required=True))
        protocol = self.text(domain, path, "protocol", "tars") or "tars"
        if protocol not in ("tars", "not_tars"):
            raise self.fail(f"{path}<protocol>", f"expected 'tars' or 'not_tars', got {protocol!r}")
        allow = tuple(a for a in re.split(r"[,;\s]+", domain.get("allow", "")) if a)
        return Adapter(
            name=domain.name,
            endpoint=endpoint,
            servant=self.text(domain, path, "servant", required=True),
            protocol="tars" if protocol == "tars" else "not_tars",
            queuecap=self.integer(domain, path, "queuecap", 10000, minimum=1),
            queuetimeout=self.integer(domain, path, "queuetimeout", 60000),
            maxconns=self.integer(domain, path, "maxconns", 200000, minimum=1),
            threads=self.integer(domain, path, "threads", 1),
            allow=allow,
        )

    def server_config(self) -> ServerConfig:
        cfg = self.cfg
        server = cfg.domain(SERVER)
        if server is None:
            raise ConfigError(f"missing domain {SERVER}", cfg.source)
        app_domain = cfg.domain(APPLICATION)
        assert app_domain is not None
        local_text = server.get("local", "")
        level = self.text(server, SERVER, "logLevel", "DEBUG").upper()
        if level not in _LOG_LEVELS:
            raise self.fail(f"{SERVER}<logLevel>", f"unknown log level {level!r}")
        enableset = app_domain.get("enableset", "n").lower() == "y"
        setdivision = app_domain.get("setdivision", "")
        if enableset and len([p for p in setdivision.split(".") if p]) != 3:
            raise self.fail(f"{APPLICATION}<setdivision>",
                            f"expected name.area.group when enableset=Y, got {setdivision!r}")
        adapters = tuple(self.adapter(server.subdomain(n))  # type: ignore[arg-type]
                         for n in server.subdomains())
        seen: set[str] = set()
        for a in adapters:
            if a.servant in seen:
                raise self.fail(f"{SERVER}/{a.name}<servant>", f"{a.servant} is served twice")
            seen.add(a.servant)
        client = cfg.domain(CLIENT)
        max_packet = self.size(server, SERVER, "maxPackageLength", DEFAULT_MAX_FRAME_SIZE)
        if max_packet < MIN_FRAME_SIZE:
            raise self.fail(f"{SERVER}<maxPackageLength>", f"must be at least {MIN_FRAME_SIZE}")
        localip = server.get("localip", "")
        return ServerConfig(
            app=self.text(server, SERVER, "app", required=True),
            server=self.text(server, SERVER, "server", required=True),
            localip=localip,
            local=self.endpoint(f"{SERVER}<local>", local_text) if local_text else None,
            node=server.get("node", ""),
            node_name=server.get("node_name", server.get("nodename", localip)),
            logpath=server.get("logpath", ""),
            log_level=level,
            log_size=self.size(server, SERVER, "logsize", 100 * 1024 * 1024),
            log_num=self.integer(server, SERVER, "lognum", 10),
            basepath=server.get("basepath", ""),
            datapath=server.get("datapath", ""),
            config=server.get("config", ""),
            notify=server.get("notify", ""),
            log=server.get("log", ""),
            deactivating_timeout=self.integer(server, SERVER, "deactivating-timeout", 3000),
            gracedown_timeout=self.integer(server, SERVER, "gracedowntimeout", 60000),
            max_packet_length=max_packet,
            enableset=enableset,
            setdivision=setdivision,
            adapters=adapters,
            client=client.params() if client is not None else {},
            client_objects={n: client.subdomain(n).params()  # type: ignore[union-attr]
                            for n in client.subdomains()} if client is not None else {},
            source=cfg.source,
        )
