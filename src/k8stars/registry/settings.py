"""Settings of the ``tarsregistry`` command: command line, TARS config file and environment.

Precedence: command line, then the config file (``--config``), then the environment, then the
defaults. Every bad value raises :class:`SettingsError` naming the option (or variable) and the
accepted forms; ``main`` prints it on one line.

=====================  ============================  ======================  ======================
option                 config key                    environment             default
                       (domain ``/tars/registry``)
=====================  ============================  ======================  ======================
``--host``             ``host``                      ``POD_IP``              ``0.0.0.0``
``--advertise-host``   ``advertise-host``            ``POD_IP``              ``--host`` if it is an
                                                                             address, else the
                                                                             default route's
``--query-port``       ``query-port``                                        17890 (QueryObj)
``--registry-port``    ``registry-port``                                     17891 (Registry)
``--admin-host``       ``admin-host``                                        ``127.0.0.1``
``--admin-port``       ``admin-port``                                        17897 (0: no AdminObj)
``--metrics-host``     ``metrics-host``                                      ``--host``
``--metrics-port``     ``metrics-port``                                      9100 (0: no HTTP)
``--db``               ``db``                        ``DB_DSN``; else        ``sqlite:///
                                                     ``DB_HOST``,            tarsregistry.db``
                                                     ``DB_PORT`` (3306),     (in the working
                                                     ``DB_USER``,            directory)
                                                     ``DB_PASS``
``--log-level``        ``log-level``                                         ``INFO``
``--inactive-after``   ``inactive-after``                                    ``90s``
``--delete-after``     ``delete-after``                                      ``24h``
(none)                 ``token``                     ``TARS_REGISTRY_TOKEN`` (none: writes open)
=====================  ============================  ======================  ======================

Database URLs are SQLAlchemy URLs: ``mysql+pymysql://user:pass@host:3306/db_tars`` (``mysql://``
and ``mariadb://`` get the PyMySQL driver; without a database name ``db_tars`` is used) or
``sqlite:///path/to/file.db``. ``DB_DSN`` may also be a Go MySQL DSN as the original used
(``user:pass@tcp(host:3306)/db_tars?charset=utf8``). ``DB_HOST`` etc. are the upstream
ConfigMap variables (database ``db_tars``). Durations are Go style (``500ms``, ``90s``,
``1m30s``, ``24h``, ``1d``). Ports are 0..65535; 0 for the query or registry port picks a free
port. The token is not a command-line option, so it never shows in ``ps``.

A config file example::

    <tars>
      <registry>
        host = 0.0.0.0
        query-port = 17890
        db = mysql+pymysql://tars:secret@mysql.tars-system:3306/db_tars
        inactive-after = 90s
      </registry>
    </tars>
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..cli.settings import DURATION_FORMS, parse_duration
from ..tars.config import ConfigError, load_config
from ..tars.logs import parse_level

__all__ = [
    "DEFAULT_SQLITE",
    "RegistrySettings",
    "SettingsError",
    "database_url",
    "load_settings",
]

DEFAULT_SQLITE = "sqlite:///tarsregistry.db"
CONFIG_DOMAIN = "/tars/registry"

_GO_DSN = re.compile(
    r"(?P<user>[^:@/]*)(?::(?P<password>[^@]*))?@tcp\((?P<host>[^):]+)(?::(?P<port>\d+))?\)"
    r"/(?P<db>[^?]*)(?:\?.*)?"
)


class SettingsError(Exception):
    """A bad option, config value or environment variable (one line, for the user)."""


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    host: str = "0.0.0.0"
    advertise_host: str = ""  # resolved by main (default route) when empty
    query_port: int = 17890
    registry_port: int = 17891
    admin_host: str = "127.0.0.1"
    admin_port: int = 17897
    metrics_host: str = ""  # empty: same as host
    metrics_port: int = 9100
    db_url: str = DEFAULT_SQLITE
    log_level: str = "INFO"
    inactive_after_s: float = 90.0
    delete_after_s: float = 86400.0
    token: str = field(default="", repr=False)
    config_file: str = ""
    #: where each setting came from ("option", "config", "environment", "default")
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)

    def safe_db_url(self) -> str:
        """The database URL with the password hidden (for logs)."""
        try:
            return make_url(self.db_url).render_as_string(hide_password=True)
        except ArgumentError:  # pragma: no cover - validated on load
            return "<invalid>"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise SettingsError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="tarsregistry",
        description="The k8stars TARS registry: QueryF name service and the K8STARS "
        "registration interface, on db_tars (MySQL/MariaDB) or SQLite.",
        epilog="Environment: POD_IP, DB_DSN, DB_HOST, DB_PORT, DB_USER, DB_PASS, "
        "TARS_REGISTRY_TOKEN. Command line > config file > environment > defaults.",
    )
    p.add_argument("--config", metavar="FILE", help="TARS config file (domain /tars/registry)")
    p.add_argument("--host", help="listen address (default: POD_IP, else 0.0.0.0)")
    p.add_argument("--advertise-host", help="address published in t_registry_info "
                   "(default: POD_IP, else --host, else the default route's address)")
    p.add_argument("--query-port", help="QueryObj port (default 17890)")
    p.add_argument("--registry-port", help="Registry port (default 17891)")
    p.add_argument("--admin-host", help="AdminObj listen address (default 127.0.0.1)")
    p.add_argument("--admin-port", help="AdminObj port (default 17897, 0 disables)")
    p.add_argument("--metrics-host", help="HTTP listen address (default: --host)")
    p.add_argument("--metrics-port", help="HTTP port of /metrics, /sd and /healthz "
                   "(default 9100, 0 disables)")
    p.add_argument("--db", metavar="URL", help="database URL (default: DB_DSN, DB_HOST..., "
                   f"else {DEFAULT_SQLITE})")
    p.add_argument("--log-level", help="DEBUG, INFO, WARN, ERROR or NONE (default INFO)")
    p.add_argument("--inactive-after", metavar="DURATION",
                   help="no heartbeat this long: inactive (default 90s)")
    p.add_argument("--delete-after", metavar="DURATION",
                   help="no heartbeat this long: deleted (default 24h)")
    return p


_KEYS = {
    "host": "host",
    "advertise-host": "advertise_host",
    "query-port": "query_port",
    "registry-port": "registry_port",
    "admin-host": "admin_host",
    "admin-port": "admin_port",
    "metrics-host": "metrics_host",
    "metrics-port": "metrics_port",
    "db": "db",
    "log-level": "log_level",
    "inactive-after": "inactive_after",
    "delete-after": "delete_after",
    "token": "token",
}


def _read_config(path: str) -> dict[str, str]:
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        raise SettingsError(f"--config: {exc}") from None
    domain = cfg.domain(CONFIG_DOMAIN)
    if domain is None:
        raise SettingsError(f"--config {path}: no <tars><registry> domain")
    out: dict[str, str] = {}
    for key, value in domain.params().items():
        if key not in _KEYS:
            known = ", ".join(sorted(_KEYS))
            raise SettingsError(f"{path}: unknown key {key!r} in <registry> (known: {known})")
        out[_KEYS[key]] = value
    return out


def _go_dsn(text: str) -> str | None:
    m = _GO_DSN.fullmatch(text.strip())
    if m is None:
        return None
    url = URL.create(
        "mysql+pymysql",
        username=unquote(m["user"]) or None,
        password=unquote(m["password"]) if m["password"] is not None else None,
        host=m["host"],
        port=int(m["port"]) if m["port"] else 3306,
        database=m["db"] or "db_tars",
    )
    return url.render_as_string(hide_password=False)


def database_url(text: str, where: str) -> str:
    """A validated SQLAlchemy URL for the registry (``mysql://`` gets the PyMySQL driver)."""
    text = text.strip()
    go = _go_dsn(text) if "@tcp(" in text else None
    if go is not None:
        return go
    try:
        url = make_url(text)
    except ArgumentError:
        raise SettingsError(
            f"{where}: {_hide(text)!r} is not a database URL (expected "
            "mysql+pymysql://user:pass@host:3306/db_tars or sqlite:///path/file.db)"
        ) from None
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend in ("mysql", "mariadb"):
        if driver not in ("pymysql",):
            if "+" in url.drivername:
                raise SettingsError(f"{where}: driver {driver!r} is not supported (use "
                                    "mysql+pymysql://)")  # fmt: skip
            url = url.set(drivername="mysql+pymysql")
        if not url.host:
            raise SettingsError(f"{where}: {_hide(text)!r} has no host")
    elif backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise SettingsError(f"{where}: an in-memory SQLite database cannot be shared; give "
                                "a file: sqlite:///path/file.db")  # fmt: skip
    else:
        raise SettingsError(f"{where}: unsupported database {backend!r} (use MySQL/MariaDB "
                            "or SQLite)")  # fmt: skip
    return url.render_as_string(hide_password=False)


def _hide(text: str) -> str:
    try:
        return make_url(text).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r":[^:@/]*@", ":***@", text)


def _env_database(env: Mapping[str, str]) -> tuple[str, str] | None:
    dsn = env.get("DB_DSN", "").strip()
    if dsn:
        return database_url(dsn, "DB_DSN"), "environment"
    host = env.get("DB_HOST", "").strip()
    if not host:
        return None
    port_text = env.get("DB_PORT", "").strip() or "3306"
    port = _port(port_text, "DB_PORT")
    url = URL.create(
        "mysql+pymysql",
        username=env.get("DB_USER", "").strip() or "root",
        password=env.get("DB_PASS") or None,
        host=host,
        port=port or 3306,
        database="db_tars",
    )
    return url.render_as_string(hide_password=False), "environment"


def _port(text: str, where: str) -> int:
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise SettingsError(f"{where}: {text!r} is not a port number (0..65535)") from None
    if not 0 <= value <= 65535:
        raise SettingsError(f"{where}: {value} is out of range 0..65535")
    return value


def _duration(text: str, where: str) -> float:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise SettingsError(f"{where}: {text!r}: {exc} (expected {DURATION_FORMS})") from None
    if value <= 0:
        raise SettingsError(f"{where}: must be longer than 0")
    return value


def _host(text: str, where: str) -> str:
    value = text.strip()
    if not value or any(c.isspace() for c in value) or value.startswith("-"):
        raise SettingsError(f"{where}: {text!r} is not a host name or address")
    return value


def load_settings(argv: Sequence[str] | None, env: Mapping[str, str]) -> RegistrySettings:
    """Parse ``argv`` (without the program name) with ``env``; SettingsError on a mistake."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    config = _read_config(args.config) if args.config else {}
    origins: dict[str, str] = {}

    def pick(name: str, option: str, env_name: str | None = None) -> tuple[str, str] | None:
        value = getattr(args, name, None)
        if value is not None:
            return value, option
        if name in config:
            return config[name], f"{args.config}: {name.replace('_', '-')}"
        if env_name and env.get(env_name, "").strip():
            return env[env_name], env_name
        return None

    values: dict[str, Any] = {}
    for name, env_name, default in (
        ("host", "POD_IP", "0.0.0.0"),
        ("advertise_host", "POD_IP", ""),
        ("admin_host", None, "127.0.0.1"),
        ("metrics_host", None, ""),
    ):
        got = pick(name, f"--{name.replace('_', '-')}", env_name)
        if got is None:
            values[name] = default
            origins[name] = "default"
        else:
            values[name] = _host(got[0], got[1])
            origins[name] = got[1]
    if not values["advertise_host"] and values["host"] not in ("0.0.0.0", "::", "*"):
        values["advertise_host"] = values["host"]
    for name, default_port in (("query_port", 17890), ("registry_port", 17891),
                               ("admin_port", 17897), ("metrics_port", 9100)):  # fmt: skip
        got = pick(name, f"--{name.replace('_', '-')}")
        values[name] = default_port if got is None else _port(got[0], got[1])
        origins[name] = "default" if got is None else got[1]
    ports = [p for p in (values["query_port"], values["registry_port"]) if p]
    if len(set(ports)) != len(ports):
        raise SettingsError(f"--query-port and --registry-port are both {ports[0]}")

    got = pick("db", "--db")
    if got is not None:
        values["db_url"] = database_url(got[0], got[1])
        origins["db_url"] = got[1]
    else:
        found = _env_database(env)
        values["db_url"], origins["db_url"] = found if found else (DEFAULT_SQLITE, "default")

    got = pick("log_level", "--log-level")
    level = "INFO" if got is None else got[0].strip().upper()
    if got is not None:
        try:
            parse_level(level)
        except ValueError as exc:
            raise SettingsError(f"{got[1]}: {exc}") from None
    values["log_level"] = level

    for name, default_s in (("inactive_after", 90.0), ("delete_after", 86400.0)):
        got = pick(name, f"--{name.replace('_', '-')}")
        values[f"{name}_s"] = default_s if got is None else _duration(got[0], got[1])
    if values["inactive_after_s"] > values["delete_after_s"]:
        raise SettingsError(
            f"--inactive-after ({values['inactive_after_s']:g}s) must not be longer than "
            f"--delete-after ({values['delete_after_s']:g}s)"
        )

    got = pick("token", "token", "TARS_REGISTRY_TOKEN")
    token = "" if got is None else got[0].strip()
    if token and (len(token) > 256 or any(not 0x21 <= ord(c) <= 0x7E for c in token)):
        raise SettingsError(f"{got[1] if got else 'token'}: the token must be 1..256 printable "
                            "ASCII characters without spaces")  # fmt: skip
    values["token"] = token
    return RegistrySettings(config_file=args.config or "", origins=origins, **values)
