"""TARS endpoint strings, proxy strings and EndpointF conversion.

Endpoint grammar (TarsCpp ``TC_Endpoint::parse``)::

    endpoint := proto { WS option }
    proto    := "tcp" | "udp" | "ssl"
    option   := "-" letter [ WS argument ]   (argument = next token not starting with "-")

Proxy strings::

    proxy := objname [ "#" anything ]                  -> resolved through the locator
           | objname "@" endpoint { ":" endpoint }     -> direct (no registry)

Pure stdlib; the EndpointF codec struct is accepted duck-typed (:class:`EndpointFLike`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol, cast

__all__ = [
    "DEFAULT_TIMEOUT",
    "PROTOCOLS",
    "Endpoint",
    "EndpointError",
    "EndpointFLike",
    "ProxyError",
    "ProxySpec",
    "parse_endpoint",
    "parse_proxy",
]

Proto = Literal["tcp", "udp", "ssl"]

#: Known protocol keywords and their EndpointF ``istcp`` value.
PROTOCOLS: dict[str, int] = {"udp": 0, "tcp": 1, "ssl": 2}
_ISTCP_TO_PROTO: dict[int, Proto] = {0: "udp", 1: "tcp", 2: "ssl"}

#: Default ``-t`` value in milliseconds.
DEFAULT_TIMEOUT = 3000

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_WS = " \t\r\n\v\f"

# Numeric options: letter -> (Endpoint field, label used in error messages).
_NUMERIC_OPTIONS: dict[str, tuple[str, str]] = {
    "p": ("port", "port"),
    "t": ("timeout", "timeout"),
    "g": ("grid", "grid"),
    "q": ("qos", "qos"),
    "w": ("weight", "weight"),
    "v": ("weight_type", "weight type"),
    "e": ("auth_type", "auth type"),
}
# String options: letter -> Endpoint field.
_STRING_OPTIONS: dict[str, str] = {"h": "host", "s": "set_id", "b": "bind_host"}


class EndpointError(ValueError):
    """An endpoint string or endpoint value is invalid."""


class ProxyError(EndpointError):
    """A proxy string is invalid."""


class EndpointFLike(Protocol):
    """Read-only view of the TARS ``EndpointF`` struct (§4.1 attribute names)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def timeout(self) -> int: ...
    @property
    def istcp(self) -> int: ...
    @property
    def grid(self) -> int: ...
    @property
    def groupworkid(self) -> int: ...
    @property
    def grouprealid(self) -> int: ...
    @property
    def setId(self) -> str: ...
    @property
    def qos(self) -> int: ...
    @property
    def bakFlag(self) -> int: ...
    @property
    def weight(self) -> int: ...
    @property
    def weightType(self) -> int: ...
    @property
    def authType(self) -> int: ...
    @property
    def nodeName(self) -> str: ...


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise EndpointError(f"{name} {value} is out of range {lo}..{hi}")
    return value


def _check_token(name: str, value: object, *, required: bool) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        if required:
            raise EndpointError(f"{name} must not be empty")
        return value
    if any(c.isspace() for c in value):
        raise EndpointError(f'{name} "{value}" must not contain whitespace')
    if value.startswith("-"):
        raise EndpointError(f'{name} "{value}" must not start with "-"')
    return value


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One TARS endpoint (``tcp -h H -p P ...``), validated and normalized.

    Normalization: host ``*`` becomes ``0.0.0.0``; when ``weight_type != 0`` a weight of -1
    becomes 100 and weights are capped at 100. Raises :class:`EndpointError` on bad values
    and ``TypeError`` on wrongly typed ones.
    """

    protocol: Proto
    host: str
    port: int = 0
    timeout: int = DEFAULT_TIMEOUT
    grid: int = 0
    qos: int = 0
    weight: int = -1
    weight_type: int = 0
    auth_type: int = 0
    set_id: str = ""
    bind_host: str = ""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise EndpointError(f'unknown protocol "{self.protocol}" (expected tcp, udp or ssl)')
        _check_token("host", self.host, required=True)
        if self.host == "*":
            object.__setattr__(self, "host", "0.0.0.0")
        _check_int("port", self.port, 0, 65535)
        _check_int("timeout", self.timeout, 0, _INT32_MAX)
        _check_int("grid", self.grid, 0, _INT32_MAX)
        _check_int("qos", self.qos, 0, _INT32_MAX)
        _check_int("weight", self.weight, -1, _INT32_MAX)
        _check_int("weight type", self.weight_type, 0, _INT32_MAX)
        if _check_int("auth type", self.auth_type, _INT32_MIN, _INT32_MAX) not in (0, 1):
            raise EndpointError(f"auth type {self.auth_type} is not supported (expected 0 or 1)")
        _check_token("set id", self.set_id, required=False)
        _check_token("bind host", self.bind_host, required=False)
        if self.weight_type != 0:
            weight = 100 if self.weight == -1 else min(self.weight, 100)
            object.__setattr__(self, "weight", weight)

    @property
    def istcp(self) -> int:
        """EndpointF ``istcp``: udp 0, tcp 1, ssl 2."""
        return PROTOCOLS[self.protocol]

    def render(self) -> str:
        """Canonical TarsCpp string; ``-s`` is never rendered, ``-b`` only when set.

        ``parse_endpoint(e.render()) == e`` holds for endpoints with ``set_id == ""``,
        ``timeout != 0`` and ``weight == -1 or weight > 0``.
        """
        parts = [f"{self.protocol} -h {self.host} -p {self.port}"]
        if self.timeout != 0:
            parts.append(f" -t {self.timeout}")
        if self.grid != 0:
            parts.append(f" -g {self.grid}")
        if self.qos != 0:
            parts.append(f" -q {self.qos}")
        if self.weight > 0:
            parts.append(f" -w {self.weight}")
        if self.weight_type != 0:
            parts.append(f" -v {self.weight_type}")
        if self.auth_type != 0:
            parts.append(f" -e {self.auth_type}")
        if self.bind_host:
            parts.append(f" -b {self.bind_host}")
        return "".join(parts)

    def __str__(self) -> str:
        return self.render()

    @classmethod
    def from_endpointf(cls, obj: EndpointFLike) -> Endpoint:
        """Build from an EndpointF-like object (``nodeName`` and group fields are ignored)."""
        istcp = obj.istcp
        if istcp not in _ISTCP_TO_PROTO:
            raise EndpointError(f"istcp {istcp} is not 0 (udp), 1 (tcp) or 2 (ssl)")
        return cls(
            protocol=_ISTCP_TO_PROTO[istcp],
            host=obj.host,
            port=obj.port,
            timeout=obj.timeout,
            grid=obj.grid,
            qos=obj.qos,
            weight=obj.weight,
            weight_type=obj.weightType,
            auth_type=obj.authType,
            set_id=obj.setId,
        )

    def endpointf_fields(self, node_name: str = "") -> dict[str, object]:
        """Keyword arguments (EndpointF attribute names) to construct an EndpointF.

        ``groupworkid``, ``grouprealid`` and ``bakFlag`` are registry data and are left to
        the caller; ``bind_host`` has no EndpointF counterpart.
        """
        return {
            "host": self.host,
            "port": self.port,
            "timeout": self.timeout,
            "istcp": self.istcp,
            "grid": self.grid,
            "setId": self.set_id,
            "qos": self.qos,
            "weight": self.weight,
            "weightType": self.weight_type,
            "authType": self.auth_type,
            "nodeName": node_name,
        }


def _parse_number(label: str, token: str) -> int:
    if not _DIGITS.fullmatch(token):
        raise EndpointError(f'{label} "{token}" is not a number')
    value = int(token)
    if value > _INT32_MAX:
        raise EndpointError(f"{label} {value} is out of range 0..{_INT32_MAX}")
    return value


def parse_endpoint(text: str) -> Endpoint:
    """Parse one endpoint string, e.g. ``"tcp -h 10.0.0.1 -p 10015 -t 60000"``.

    Whitespace tolerant; later options override earlier ones; unknown options are ignored
    together with their argument (TarsCpp). Raises :class:`EndpointError` quoting ``text``.
    """
    if not isinstance(text, str):
        raise TypeError(f"endpoint must be a str, got {type(text).__name__}")
    try:
        return _parse_endpoint(text)
    except EndpointError as exc:
        raise EndpointError(f'bad endpoint "{text}": {exc}') from None


def _parse_endpoint(text: str) -> Endpoint:
    tokens = text.split()
    if not tokens:
        raise EndpointError("empty endpoint string")
    proto = tokens[0]
    if proto not in PROTOCOLS:
        raise EndpointError(f'unknown protocol "{proto}" (expected tcp, udp or ssl)')
    ints: dict[str, int] = {}
    strs: dict[str, str] = {}
    i = 1
    while i < len(tokens):
        option = tokens[i]
        i += 1
        if len(option) != 2 or option[0] != "-":
            raise EndpointError(f'expected an option such as "-h", got "{option}"')
        argument: str | None = None
        if i < len(tokens) and not tokens[i].startswith("-"):
            argument = tokens[i]
            i += 1
        letter = option[1]
        if letter not in _NUMERIC_OPTIONS and letter not in _STRING_OPTIONS:
            continue  # unknown option: ignored, its argument consumed (TarsCpp)
        if argument is None:
            raise EndpointError(f"option {option} needs a value")
        if letter in _STRING_OPTIONS:
            strs[_STRING_OPTIONS[letter]] = argument
        else:
            name, label = _NUMERIC_OPTIONS[letter]
            ints[name] = _parse_number(label, argument)
    if "host" not in strs:
        raise EndpointError("missing host (-h)")
    return Endpoint(
        protocol=cast(Proto, proto),
        host=strs["host"],
        port=ints.get("port", 0),
        timeout=ints.get("timeout", DEFAULT_TIMEOUT),
        grid=ints.get("grid", 0),
        qos=ints.get("qos", 0),
        weight=ints.get("weight", -1),
        weight_type=ints.get("weight_type", 0),
        auth_type=ints.get("auth_type", 0),
        set_id=strs.get("set_id", ""),
        bind_host=strs.get("bind_host", ""),
    )


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# ":" + optional whitespace, followed by a protocol keyword that ends a token.
_EP_SEPARATOR = re.compile(r":\s*(?=(?:tcp|udp|ssl)(?:\s|$))")


def _check_obj_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"object name must be a str, got {type(name).__name__}")
    if not name:
        raise ProxyError("empty object name")
    if any(c.isspace() or c in "@#" for c in name):
        raise ProxyError(f'object name "{name}" must not contain whitespace, "@" or "#"')
    return name


@dataclass(frozen=True, slots=True)
class ProxySpec:
    """A parsed proxy string: object name plus direct endpoints.

    An empty ``endpoints`` tuple means the object is resolved through the locator.
    """

    obj_name: str
    endpoints: tuple[Endpoint, ...] = ()

    def __post_init__(self) -> None:
        _check_obj_name(self.obj_name)
        endpoints = tuple(self.endpoints)
        for ep in endpoints:
            if not isinstance(ep, Endpoint):
                raise TypeError(f"endpoints must be Endpoint objects, got {type(ep).__name__}")
        object.__setattr__(self, "endpoints", endpoints)

    @property
    def is_direct(self) -> bool:
        """True when endpoints are given (no registry lookup)."""
        return bool(self.endpoints)

    def render(self) -> str:
        """``Obj@ep:ep`` for direct proxies, ``Obj`` otherwise."""
        if not self.endpoints:
            return self.obj_name
        return self.obj_name + "@" + ":".join(ep.render() for ep in self.endpoints)

    def __str__(self) -> str:
        return self.render()


def _trim_piece(piece: str) -> str:
    """Drop spaces and stray ``:`` around one endpoint piece of a proxy string."""
    tokens = piece.split()
    if tokens:
        tokens[0] = tokens[0].lstrip(":")
    # A trailing ":" may belong to an IPv6 host ("-h fe80::"); keep host arguments intact.
    if tokens and not (len(tokens) >= 2 and tokens[-2] in ("-h", "-b")):
        tokens[-1] = tokens[-1].rstrip(":")
    return " ".join(t for t in tokens if t)


def parse_proxy(text: str) -> ProxySpec:
    """Parse ``Obj``, ``Obj#tag``, ``scheme://Obj`` or ``Obj@ep:ep``.

    Endpoints are split on ``:`` followed by optional spaces and a protocol keyword, so
    IPv6 hosts survive. Raises :class:`ProxyError` quoting ``text``.
    """
    if not isinstance(text, str):
        raise TypeError(f"proxy must be a str, got {type(text).__name__}")
    try:
        return _parse_proxy(text)
    except EndpointError as exc:
        raise ProxyError(f'bad proxy "{text}": {exc}') from None


def _parse_proxy(text: str) -> ProxySpec:
    name, at, rest = text.partition("@")
    name = _SCHEME.sub("", name.strip()).partition("#")[0].strip()
    _check_obj_name(name)
    if not at:
        return ProxySpec(name)
    pieces = [_trim_piece(p) for p in _EP_SEPARATOR.split(rest)]
    endpoints = tuple(parse_endpoint(p) for p in pieces if p)
    if not endpoints:
        raise ProxyError('no endpoints after "@"')
    return ProxySpec(name, endpoints)
