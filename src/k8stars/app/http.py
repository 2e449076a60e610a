"""A small asyncio HTTP/1.1 server for ``protocol=not_tars`` adapters (TarsGo's HttpObj).

::

    http = HttpApp()

    @http.get("/")
    async def index(request: Request) -> str:
        return "hello"

    @http.post("/items")
    def create(request: Request) -> tuple[int, dict[str, object]]:
        return 201, {"created": request.json()}

A handler is sync or async and takes the :class:`Request` (or no argument). It returns
``str`` (text/plain), ``bytes`` (application/octet-stream), a ``dict`` or ``list`` (JSON),
None (204), ``(status, body)``, ``(status, body, headers)`` or a :class:`Response`; raising
:class:`HttpError` answers its status. Any other exception is logged and answered 500; the
connection stays usable. Unknown paths get 404, a known path with another method 405 (with
``Allow``); HEAD is answered by the GET handler without the body. A path ending in ``/*`` is a
prefix route (the longest prefix wins; exact routes first).

:class:`HttpServer` serves an :class:`HttpApp` on one endpoint: HTTP/1.0 and 1.1, keep-alive
(HTTP/1.1 unless ``Connection: close``), ``Content-Length`` and chunked request bodies,
``Expect: 100-continue``, pipelined requests (answered in order). Limits: request head 64 KiB
(431), ``max_body`` (413), connections ``maxconns`` (refused), idle and read time the
endpoint's ``-t`` timeout. Sync handlers run on the event loop: they must not block.
Standard library only.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from k8stars.tars.endpoint import Endpoint, parse_endpoint
from k8stars.tars.server_config import Adapter

__all__ = [
    "DEFAULT_MAX_BODY",
    "MAX_HEAD_SIZE",
    "Handler",
    "HttpApp",
    "HttpError",
    "HttpServer",
    "Request",
    "Response",
]

log = logging.getLogger("k8stars.app.http")

#: Largest request line + headers (bytes); more is answered 431.
MAX_HEAD_SIZE = 64 * 1024
#: Most header lines in one request (more: 431).
MAX_HEADERS = 100
#: Default largest request body (bytes); more is answered 413.
DEFAULT_MAX_BODY = 10 * 1024 * 1024

_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NO_BODY_STATUS = frozenset({204, 304})
_CRLF = b"\r\n"
#: Response headers the server sets itself (a handler's values are ignored).
_FRAMEWORK_HEADERS = frozenset({"content-length", "connection", "transfer-encoding", "date",
                                "server"})

#: What a handler may return (see the module docstring).
Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)


class HttpError(Exception):
    """Raise in a handler to answer ``status`` with ``message`` as the text body."""

    def __init__(self, status: int, message: str = "",
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, message)
        self.status = int(status)
        self.message = message or _reason(self.status)
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        return f"{self.status} {self.message}"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


@dataclass(slots=True)
class Request:
    """One HTTP request. ``headers`` has lower-case names (repeated headers joined by ``, ``)."""

    method: str
    target: str
    path: str
    query_string: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    peer: tuple[str, int] | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header by name (case-insensitive)."""
        return self.headers.get(name.lower(), default)

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string parsed (``parse_qs``; blank values kept)."""
        return parse_qs(self.query_string, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded (undecodable bytes replaced)."""
        return self.body.decode(encoding, "replace")

    def json(self) -> Any:
        """The body parsed as JSON (HttpError 400 when it is not)."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(400, f"request body is not JSON: {exc}") from None

    @property
    def keep_alive(self) -> bool:
        """Whether the client wants the connection kept open after this request."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass(slots=True)
class Response:
    """A handler's answer. ``content_type`` None: text/plain for str, else octet-stream."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(value, ensure_ascii=False).encode(), {},
                   "application/json")

    def encoded(self) -> tuple[bytes, str]:
        """The body bytes and the content type."""
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        return bytes(self.body), self.content_type or "application/octet-stream"


def to_response(result: Any) -> Response:
    """What a handler returned, as a :class:`Response` (TypeError for anything else)."""
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(204)
    if isinstance(result, (str, bytes, bytearray)):
        return Response(200, bytes(result) if isinstance(result, bytearray) else result)
    if isinstance(result, (dict, list)):
        return Response.json(result)
    if isinstance(result, tuple) and len(result) in (2, 3) and isinstance(result[0], int):
        body = result[1]
        resp = (Response.json(body, result[0]) if isinstance(body, (dict, list))
                else Response(result[0], b"" if body is None else body))
        if len(result) == 3:
            resp.headers.update(result[2])
        return resp
    raise TypeError(f"a handler returned {type(result).__name__}; expected str, bytes, dict, "
                    "list, None, (status, body[, headers]) or Response")


def _takes_request(fn: Handler) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
               for p in params)


@dataclass(frozen=True, slots=True)
class _Route:
    handler: Handler
    takes_request: bool


class HttpApp:
    """Routes by path and method to handlers (see the module docstring)."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, _Route]] = {}
        self._prefix: dict[str, dict[str, _Route]] = {}

    def add_route(self, path: str, handler: Handler,
                  methods: Iterable[str] = ("GET",)) -> None:
        """Answer ``methods`` on ``path`` (``/x/*``: every path under ``/x/``) with ``handler``."""
        if not path.startswith("/"):
            raise ValueError(f"route {path!r} must start with '/'")
        table = self._exact
        if path.endswith("/*"):
            table, path = self._prefix, path[:-1]
        routes = table.setdefault(path, {})
        route = _Route(handler, _takes_request(handler))
        for method in methods:
            method = method.upper()
            if not method or not set(method) <= _TOKEN_CHARS:
                raise ValueError(f"bad method {method!r}")
            if method in routes:
                raise ValueError(f"{method} {path} is already routed")
            routes[method] = route

    def route(self, path: str, methods: Iterable[str] = ("GET",)) -> Callable[[H], H]:
        """Decorator form of :meth:`add_route`."""
        def decorate(fn: H) -> H:
            self.add_route(path, fn, methods)
            return fn
        return decorate

    def get(self, path: str) -> Callable[[H], H]:
        return self.route(path, ("GET",))

    def post(self, path: str) -> Callable[[H], H]:
        return self.route(path, ("POST",))

    def _routes(self, path: str) -> dict[str, _Route] | None:
        found = self._exact.get(path)
        if found is not None:
            return found
        best = ""
        for prefix in self._prefix:
            if path.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        return self._prefix[best] if best else None

    async def handle(self, request: Request) -> Response:
        """Route ``request`` and run its handler; never raises (except cancellation)."""
        routes = self._routes(request.path)
        if routes is None:
            return Response(404, f"no route for {request.path}\n")
        method = "GET" if request.method == "HEAD" and "HEAD" not in routes else request.method
        route = routes.get(method)
        if route is None:
            allowed = sorted(set(routes) | ({"HEAD"} if "GET" in routes else set()))
            return Response(405, f"{request.method} is not allowed on {request.path}\n",
                            {"Allow": ", ".join(allowed)})
        try:
            result = route.handler(request) if route.takes_request else route.handler()
            if inspect.isawaitable(result):
                result = await result
            return to_response(result)
        except HttpError as exc:
            return Response(exc.status, exc.message + "\n", exc.headers)
        except Exception as exc:
            log.error("%s %s: handler %s failed", request.method, request.target,
                      getattr(route.handler, "__qualname__", route.handler), exc_info=exc)
            return Response(500, "internal server error\n")


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.split(_CRLF)
    try:
        request_line = lines[0].decode("ascii")
    except UnicodeDecodeError:
        raise _BadRequest(400, "request line is not ASCII") from None
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise _BadRequest(400, f"bad request line {request_line[:100]!r}")
    method, target, version = parts
    if not set(method) <= _TOKEN_CHARS:
        raise _BadRequest(400, f"bad method {method[:20]!r}")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        if version.startswith("HTTP/"):
            raise _BadRequest(505, f"{version[:20]} is not supported")
        raise _BadRequest(400, f"bad request line {request_line[:100]!r}")
    headers: dict[str, str] = {}
    count = 0
    for raw in lines[1:]:
        if not raw:
            continue
        count += 1
        if count > MAX_HEADERS:
            raise _BadRequest(431, f"more than {MAX_HEADERS} header lines")
        line = raw.decode("latin-1")
        name, sep, value = line.partition(":")
        if not sep or not name or not set(name) <= _TOKEN_CHARS:
            raise _BadRequest(400, f"bad header line {line[:100]!r}")
        name = name.lower()
        value = value.strip(" \t")
        if name in headers:
            if name in ("content-length", "host", "transfer-encoding"):
                if headers[name] != value:
                    raise _BadRequest(400, f"conflicting {name} headers")
                continue
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
    return method, target, version, headers


class _Conn:
    __slots__ = ("busy", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.busy = False


class HttpServer:
    """Serves an :class:`HttpApp` on one endpoint (see the module docstring).

    ``idle_timeout`` (s, None: the endpoint's ``-t``, 0: none) closes a connection that sends
    nothing (between requests or mid-request) for that long.
    """

    def __init__(self, app: HttpApp, endpoint: Endpoint | str, *, name: str = "HttpAdapter",
                 maxconns: int = 200000, allow: Iterable[str] = (),
                 idle_timeout: float | None = None, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.endpoint = parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
        if self.endpoint.protocol != "tcp":
            raise ValueError(f"{name}: HTTP needs a tcp endpoint, not {self.endpoint.protocol}")
        self.name = name
        self.maxconns = maxconns
        self.allow = tuple(allow)
        self.idle_timeout = (self.endpoint.timeout / 1000 if idle_timeout is None
                             else idle_timeout) or None
        self.max_body = max_body
        self.stopping = False
        self._listener: asyncio.Server | None = None
        self._conns: dict[asyncio.Task[Any], _Conn] = {}
        self._stop_task: asyncio.Task[None] | None = None
        self._closed: asyncio.Event | None = None

    @classmethod
    def from_adapter(cls, app: HttpApp, adapter: Adapter, *,
                     max_body: int = DEFAULT_MAX_BODY) -> HttpServer:
        """A server for a ``protocol=not_tars`` adapter of the config file."""
        return cls(app, adapter.endpoint, name=adapter.name, maxconns=adapter.maxconns,
                   allow=adapter.allow, max_body=max_body)

    @property
    def connections(self) -> int:
        return len(self._conns)

    def url(self, path: str = "/") -> str:
        """``http://host:port/path`` of the bound endpoint."""
        return f"http://{self.endpoint.host}:{self.endpoint.port}{path}"

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (port 0 picks a free port: :attr:`endpoint` then holds the real one)."""
        if self._listener is not None:
            raise RuntimeError(f"{self.name} is already started")
        ep = self.endpoint
        self._closed = asyncio.Event()
        self._listener = await asyncio.start_server(
            self._serve_connection, ep.bind_host or ep.host, ep.port, limit=MAX_HEAD_SIZE,
            reuse_address=True, backlog=1024)
        port = self._listener.sockets[0].getsockname()[1]
        self.endpoint = replace(ep, port=port)
        log.info("%s: serving HTTP on %s", self.name, self.endpoint)

    def request_stop(self, deadline: float | None = 10.0) -> asyncio.Task[None]:
        """Start a graceful stop: no new connections, idle ones closed, requests in progress
        finish (answered with ``Connection: close``) for up to ``deadline`` seconds."""
        if self._listener is None:
            raise RuntimeError(f"{self.name} is not started")
        if self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self._stop(deadline))
        return self._stop_task

    async def stop(self, deadline: float | None = 10.0) -> None:
        if self._listener is None:
            return
        await asyncio.shield(self.request_stop(deadline))

    async def wait_closed(self) -> None:
        if self._closed is None:
            raise RuntimeError(f"{self.name} is not started")
        await self._closed.wait()

    async def _stop(self, deadline: float | None) -> None:
        assert self._listener is not None and self._closed is not None
        self.stopping = True
        self._listener.close()
        for conn in self._conns.values():
            if not conn.busy:
                conn.writer.close()
        tasks = list(self._conns)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=deadline)
            if pending:
                log.warning("%s: stop deadline of %s s passed: cancelling %d request(s)",
                            self.name, deadline, len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
        await self._listener.wait_closed()
        self._closed.set()
        log.info("%s: stopped", self.name)

    # -- one connection ------------------------------------------------------------------

    def _refuse(self, peer: tuple[str, int] | None) -> str | None:
        if self.stopping:
            return "stopping"
        if len(self._conns) >= self.maxconns:
            return f"maxconns {self.maxconns} reached"
        if self.allow:
            host = peer[0] if peer else ""
            if not any(rule == host or (rule.endswith("*") and host.startswith(rule[:-1]))
                       for rule in self.allow):
                return "not in allow list"
        return None

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = (str(peername[0]), int(peername[1])) if peername else None
        refused = self._refuse(peer)
        if refused is not None:
            log.warning("%s: refusing connection from %s: %s", self.name, peer, refused)
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        conn = self._conns[task] = _Conn(writer)
        try:
            await self._requests(reader, writer, conn, peer)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("%s: connection from %s lost: %s", self.name, peer, exc)
        finally:
            del self._conns[task]
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()

    async def _timed(self, aw: Awaitable[bytes]) -> bytes:
        if self.idle_timeout is None:
            return await aw
        return await asyncio.wait_for(aw, self.idle_timeout)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        conn: _Conn, peer: tuple[str, int] | None) -> None:
        while not self.stopping:
            conn.busy = False
            try:
                request = await self._read_request(reader, writer, conn, peer)
            except _BadRequest as exc:
                log.info("%s: bad request from %s: %s", self.name, peer, exc.message)
                writer.write(self._render(Response(exc.status, exc.message + "\n"),
                                          keep_alive=False, head_only=False))
                await writer.drain()
                return
            except asyncio.TimeoutError:
                return  # idle (or too slow): close quietly, as TARS adapters do
            if request is None:
                return
            started = time.monotonic()
            response = await self.app.handle(request)
            keep = request.keep_alive and not self.stopping
            try:
                data = self._render(response, keep_alive=keep,
                                    head_only=request.method == "HEAD",
                                    http10=request.version == "HTTP/1.0")
            except ValueError as exc:
                log.error("%s %s: bad response: %s", request.method, request.target, exc)
                response = Response(500, "internal server error\n")
                data = self._render(response, keep_alive=keep, head_only=False)
            writer.write(data)
            await writer.drain()
            log.debug("%s: %s %s -> %d (%.1f ms) from %s", self.name, request.method,
                      request.target, response.status, (time.monotonic() - started) * 1000,
                      peer)
            if not keep:
                return

    async def _read_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            conn: _Conn, peer: tuple[str, int] | None) -> Request | None:
        try:
            head = await self._timed(reader.readuntil(b"\r\n\r\n"))
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise _BadRequest(400, "incomplete request head") from None
            return None
        except asyncio.LimitOverrunError:
            raise _BadRequest(431, f"request head larger than {MAX_HEAD_SIZE} bytes") from None
        conn.busy = True
        head = head.lstrip(b"\r\n")  # robustness: empty lines before a request are ignored
        if not head.strip():
            raise _BadRequest(400, "empty request")
        method, target, version, headers = _parse_head(head[:-4])
        body = await self._read_body(reader, writer, version, headers)
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            path, query = parts.path or "/", parts.query
        elif target.startswith("/"):
            path, _, query = target.partition("?")
        elif target == "*" and method == "OPTIONS":
            path, query = "*", ""
        else:
            raise _BadRequest(400, f"bad request target {target[:100]!r}")
        path = unquote(path.partition("#")[0])
        return Request(method, target, path, query, version, headers, body, peer)

    async def _read_body(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         version: str, headers: dict[str, str]) -> bytes:
        encoding = headers.get("transfer-encoding")
        length_text = headers.get("content-length")
        if encoding is not None:
            if length_text is not None:
                raise _BadRequest(400, "both Transfer-Encoding and Content-Length")
            if encoding.lower() != "chunked":
                raise _BadRequest(501, f"Transfer-Encoding {encoding[:40]!r} is not supported")
            await self._continue(writer, version, headers)
            return await self._read_chunked(reader)
        if length_text is None:
            return b""
        if not length_text.isdigit():
            raise _BadRequest(400, f"bad Content-Length {length_text[:40]!r}")
        length = int(length_text)
        if length > self.max_body:
            raise _BadRequest(413, f"body of {length} bytes is larger than {self.max_body}")
        if length == 0:
            return b""
        await self._continue(writer, version, headers)
        return await self._timed(reader.readexactly(length))

    async def _continue(self, writer: asyncio.StreamWriter, version: str,
                        headers: dict[str, str]) -> None:
        if version == "HTTP/1.1" and headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                line = await self._timed(reader.readuntil(_CRLF))
            except asyncio.LimitOverrunError:
                raise _BadRequest(400, "chunk size line too long") from None
            size_text = line[:-2].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadRequest(400, f"bad chunk size {size_text[:20]!r}") from None
            if size < 0:
                raise _BadRequest(400, "negative chunk size")
            if size == 0:
                break
            total += size
            if total > self.max_body:
                raise _BadRequest(413, f"chunked body larger than {self.max_body} bytes")
            data = await self._timed(reader.readexactly(size + 2))
            if data[-2:] != _CRLF:
                raise _BadRequest(400, "chunk not followed by CRLF")
            chunks.append(data[:-2])
        while True:  # trailer section, ignored
            try:
                line = await self._timed(reader.readuntil(_CRLF))
            except asyncio.LimitOverrunError:
                raise _BadRequest(431, "trailer line too long") from None
            if line == _CRLF:
                return b"".join(chunks)

    def _render(self, response: Response, *, keep_alive: bool, head_only: bool,
                http10: bool = False) -> bytes:
        status = response.status
        if not 100 <= status <= 999:
            raise ValueError(f"status {status} is not a 3-digit code")
        body, content_type = response.encoded()
        lines = [f"HTTP/1.1 {status} {_reason(status)}", "Server: k8stars",
                 f"Date: {formatdate(usegmt=True)}"]
        extra = []
        for name, value in response.headers.items():
            if not name or not set(name) <= _TOKEN_CHARS or any(c in value for c in "\r\n\0"):
                raise ValueError(f"bad response header {name!r}: {value!r}")
            lower = name.lower()
            if lower == "content-type":
                content_type = value
            elif lower not in _FRAMEWORK_HEADERS:
                extra.append(f"{name}: {value}")
        if status in _NO_BODY_STATUS or status < 200:
            body = b""
        else:
            lines.append(f"Content-Type: {content_type}")
            lines.append(f"Content-Length: {len(body)}")
        lines.extend(extra)
        if not keep_alive:
            lines.append("Connection: close")
        elif http10:
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + body
