"""Client settings: the ``<client>`` section of a TARS config file as a validated dataclass.

Keys read by :meth:`ClientConfig.from_tars_config` (TarsCpp names; defaults in brackets)::

    /tars/application/client<locator>                    [none: direct proxies only]
    /tars/application/client<sync-invoke-timeout>        [3000 ms]
    /tars/application/client<refresh-endpoint-interval>  [60000 ms]
    /tars/application/client<connect-timeout>           [3000 ms]
    /tars/application/client<enableset|setdivision>     falling back to /tars/application<...>
    /tars/application/server<node_name|nodename|localip> context ``node_name`` of registry queries
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from functools import cache

from .config import TarsConfig
from .packet import DEFAULT_MAX_FRAME_SIZE, MIN_FRAME_SIZE

__all__ = ["ClientConfig", "local_ip", "valid_set_division"]

log = logging.getLogger("k8stars.tars.client")

_CLIENT = "/tars/application/client"
_APPLICATION = "/tars/application"
_SERVER = "/tars/application/server"


@cache
def local_ip() -> str:
    """This host's outbound IPv4 address (no packet is sent), or ``127.0.0.1``."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("10.255.255.255", 1))
            return str(sock.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def valid_set_division(value: str) -> bool:
    """True for ``name.area.group`` with three non-empty parts, name and area not ``*``."""
    parts = value.split(".")
    return (len(parts) == 3 and all(parts) and parts[0] != "*" and parts[1] != "*"
            and not any(c.isspace() for c in value))


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Communicator settings. Times are milliseconds, like the config file keys.

    ``set_division`` non-None enables set routing (``findObjectByIdInSameSet`` and the
    SETNAME flag on calls). ``node_name`` None means the local IP. The retry and backoff
    fields are not read from config files; they follow TarsCpp and may be lowered in tests.
    """

    locator: str | None = None
    sync_invoke_timeout: int = 3000
    refresh_endpoint_interval: int = 60000
    connect_timeout: int = 3000
    node_name: str | None = None
    set_division: str | None = None
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    #: Next registry query after a failed one / after consecutive failures / an empty answer.
    refresh_error_retry: int = 2000
    refresh_error_backoff: int = 30000
    refresh_empty_retry: int = 10000
    #: Reconnect backoff of an endpoint that failed to connect: doubles from min to max.
    reconnect_backoff_min: int = 500
    reconnect_backoff_max: int = 30000

    def __post_init__(self) -> None:
        for name in ("sync_invoke_timeout", "refresh_endpoint_interval", "connect_timeout",
                     "refresh_error_retry", "refresh_error_backoff", "refresh_empty_retry",
                     "reconnect_backoff_min", "reconnect_backoff_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive number of ms, got {value!r}")
        if self.max_frame_size < MIN_FRAME_SIZE:
            raise ValueError(f"max_frame_size must be at least {MIN_FRAME_SIZE}")
        if self.locator is not None and "@" not in self.locator:
            raise ValueError(f'locator "{self.locator}" must be "Obj@endpoint[:endpoint...]"')
        if self.set_division is not None and not valid_set_division(self.set_division):
            raise ValueError(f'set division "{self.set_division}" is not "name.area.group"')

    @property
    def context_node_name(self) -> str:
        """The ``node_name`` sent in the context of registry queries."""
        return self.node_name or local_ip()

    @classmethod
    def from_tars_config(cls, cfg: TarsConfig) -> ClientConfig:
        """Read the client section (and set and node settings) of a parsed config file."""

        def client_or_app(key: str) -> str | None:
            return cfg.get(f"{_CLIENT}<{key}>") or cfg.get(f"{_APPLICATION}<{key}>")

        set_division = None
        if (client_or_app("enableset") or "").strip() in ("Y", "y"):
            division = (client_or_app("setdivision") or "").strip()
            if valid_set_division(division):
                set_division = division
            else:
                log.warning("%s: enableset is on but setdivision %r is not name.area.group; "
                            "set routing disabled", cfg.source, division)
        node_name = (cfg.get(f"{_SERVER}<node_name>") or cfg.get(f"{_SERVER}<nodename>")
                     or cfg.get(f"{_SERVER}<localip>") or None)
        defaults = cls()
        return cls(
            locator=cfg.get(f"{_CLIENT}<locator>") or None,
            sync_invoke_timeout=cfg.get_int(f"{_CLIENT}<sync-invoke-timeout>",
                                            defaults.sync_invoke_timeout),
            refresh_endpoint_interval=cfg.get_int(f"{_CLIENT}<refresh-endpoint-interval>",
                                                  defaults.refresh_endpoint_interval),
            connect_timeout=cfg.get_int(f"{_CLIENT}<connect-timeout>", defaults.connect_timeout),
            node_name=node_name,
            set_division=set_division,
        )
