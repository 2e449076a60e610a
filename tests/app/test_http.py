"""The HTTP/1.1 server of not_tars adapters: raw bytes over sockets, and the stdlib client."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, ClassVar

import pytest

from k8stars.app.http import (
    MAX_HEAD_SIZE,
    HttpApp,
    HttpError,
    HttpServer,
    Request,
    Response,
    to_response,
)

from .support import async_test


def demo_app() -> HttpApp:
    app = HttpApp()
    gate = asyncio.Event()
    app.gate = gate  # type: ignore[attr-defined]

    @app.get("/")
    def index() -> str:
        return "hello"

    @app.route("/echo", methods=("POST", "PUT"))
    async def echo(request: Request) -> tuple[int, bytes, dict[str, str]]:
        return 201, request.body, {"X-Method": request.method}

    @app.post("/json")
    def as_json(request: Request) -> dict[str, Any]:
        return {"got": request.json(), "q": request.arg("q")}

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("handler bug")

    @app.get("/bad-type")
    def bad_type() -> object:
        return object()

    @app.get("/teapot")
    def teapot() -> str:
        raise HttpError(418, "short and stout")

    @app.get("/empty")
    def empty() -> None:
        return None

    @app.get("/static/*")
    def static(request: Request) -> str:
        return f"file {request.path}"

    @app.get("/slow")
    async def slow() -> str:
        await gate.wait()
        return "finally"

    return app


@asynccontextmanager
async def serving(app: HttpApp | None = None, **kw: Any) -> AsyncIterator[HttpServer]:
    server = HttpServer(app or demo_app(), "tcp -h 127.0.0.1 -p 0 -t 30000", **kw)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(1)
        await Raw.close_all()


class Raw:
    """One client connection speaking raw HTTP (all closed by :meth:`close_all`)."""

    opened: ClassVar[list[Raw]] = []

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        Raw.opened.append(self)

    @classmethod
    async def open(cls, server: HttpServer) -> Raw:
        reader, writer = await asyncio.open_connection(server.endpoint.host,
                                                       server.endpoint.port)
        return cls(reader, writer)

    @classmethod
    async def close_all(cls) -> None:
        while cls.opened:
            await cls.opened.pop().close()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines[1:] if line)}
        length = int(headers.get("content-length", "0"))
        body = b"" if head_only else await self.reader.readexactly(length)
        return status, headers, body

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), 5) == b""

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


@async_test
async def test_keep_alive_and_pipelining() -> None:
    async with serving() as server:
        conn = await Raw.open(server)
        for _ in range(3):
            await conn.send(get("/"))
            status, headers, body = await conn.response()
            assert (status, body) == (200, b"hello")
            assert headers["content-type"] == "text/plain; charset=utf-8"
            assert "connection" not in headers
        assert server.connections == 1
        await conn.send(get("/") + get("/static/a/b.txt") + get("/empty"))   # pipelined
        assert (await conn.response())[2] == b"hello"
        assert (await conn.response())[2] == b"file /static/a/b.txt"
        status, headers, body = await conn.response()
        assert (status, body) == (204, b"") and "content-length" not in headers
        await conn.send(get("/", "Connection: close\r\n"))
        status, headers, _ = await conn.response()
        assert headers["connection"] == "close" and await conn.closed()
        await conn.close()


@async_test
async def test_http10_closes_unless_keep_alive() -> None:
    async with serving() as server:
        conn = await Raw.open(server)
        await conn.send(b"GET / HTTP/1.0\r\n\r\n")
        assert (await conn.response())[0] == 200 and await conn.closed()
        conn = await Raw.open(server)
        await conn.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        _, headers, _ = await conn.response()
        assert headers["connection"] == "keep-alive"
        await conn.send(b"GET / HTTP/1.0\r\n\r\n")
        assert (await conn.response())[0] == 200 and await conn.closed()


@async_test
async def test_errors_answer_without_dropping_the_connection() -> None:
    async with serving() as server:
        conn = await Raw.open(server)
        expected = [
            ("/nope", 404, b"no route for /nope\n"),
            ("/boom", 500, b"internal server error\n"),
            ("/bad-type", 500, b"internal server error\n"),
            ("/teapot", 418, b"short and stout\n"),
            ("/", 200, b"hello"),             # still the same connection
        ]
        for path, status, body in expected:
            await conn.send(get(path))
            assert (await conn.response())[::2] == (status, body), path
        await conn.send(b"DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = await conn.response()
        assert (status, headers["allow"]) == (405, "POST, PUT")
        await conn.send(b"HEAD / HTTP/1.1\r\n\r\n")
        status, headers, _ = await conn.response(head_only=True)
        assert (status, headers["content-length"]) == (200, "5")
        await conn.send(get("/"))               # no stray body was sent for HEAD
        assert (await conn.response())[2] == b"hello"
        await conn.close()


@async_test
async def test_bodies() -> None:
    async with serving(max_body=1000) as server:
        conn = await Raw.open(server)
        await conn.send(b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde")
        status, headers, body = await conn.response()
        assert (status, body, headers["x-method"]) == (201, b"abcde", "POST")
        await conn.send(b"PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n")
        assert (await conn.response())[2] == b"abcde"
        await conn.send(b'POST /json?q=1 HTTP/1.1\r\nContent-Length: 7\r\n\r\n{"a":1}')
        status, headers, body = await conn.response()
        assert headers["content-type"] == "application/json"
        assert json.loads(body) == {"got": {"a": 1}, "q": "1"}
        await conn.send(b"POST /json HTTP/1.1\r\nContent-Length: 3\r\n\r\nnot")
        assert (await conn.response())[0] == 400
        # Expect: 100-continue gets the interim answer before the body is sent
        await conn.send(b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert await conn.reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        await conn.send(b"ok")
        assert (await conn.response())[2] == b"ok"
        # too large: 413 and the connection is closed
        await conn.send(b"POST /echo HTTP/1.1\r\nContent-Length: 1001\r\n\r\n")
        status, headers, _ = await conn.response()
        assert (status, headers["connection"]) == (413, "close") and await conn.closed()


@pytest.mark.parametrize(("data", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET noslash HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nbad header\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"POST /echo HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
    (b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400),
    (b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_SIZE + b"\r\n\r\n", 431),
])
def test_malformed_requests(data: bytes, status: int) -> None:
    async def scenario() -> None:
        async with serving() as server:
            conn = await Raw.open(server)
            await conn.send(data)
            got, headers, _ = await conn.response()
            assert (got, headers["connection"]) == (status, "close")
            assert await conn.closed()

    async_test(scenario)()


@async_test
async def test_graceful_stop() -> None:
    app = demo_app()
    server = HttpServer(app, "tcp -h 127.0.0.1 -p 0 -t 30000")
    await server.start()
    busy, idle = await Raw.open(server), await Raw.open(server)
    await busy.send(get("/slow"))
    await idle.send(get("/"))
    await idle.response()
    await asyncio.sleep(0.05)
    stopping = server.request_stop(5)
    assert await idle.closed()                       # idle keep-alive connection: closed
    with pytest.raises(OSError):
        await Raw.open(server)                       # no new connections
    app.gate.set()  # type: ignore[attr-defined]
    status, headers, body = await busy.response()    # the request in progress finishes
    assert (status, body, headers["connection"]) == (200, b"finally", "close")
    await stopping
    assert server.connections == 0
    await Raw.close_all()


@async_test
async def test_stop_deadline_cancels_stuck_requests() -> None:
    server = HttpServer(demo_app(), "tcp -h 127.0.0.1 -p 0 -t 30000")
    await server.start()
    conn = await Raw.open(server)
    await conn.send(get("/slow"))
    await asyncio.sleep(0.05)
    await server.stop(0.1)
    assert await conn.closed() and server.connections == 0
    await Raw.close_all()


@async_test
async def test_idle_timeout_maxconns_and_allow() -> None:
    async with serving(idle_timeout=0.1) as server:
        conn = await Raw.open(server)
        assert await conn.closed()
    async with serving(maxconns=1) as server:
        first = await Raw.open(server)
        await first.send(get("/"))
        await first.response()
        second = await Raw.open(server)
        assert await second.closed()
        await first.close()
    async with serving(allow=("10.0.*",)) as server:
        conn = await Raw.open(server)
        assert await conn.closed()


def test_stdlib_client() -> None:
    """http.client (an independent implementation) against the server."""

    async def scenario() -> None:
        async with serving() as server:
            def calls() -> list[tuple[int, bytes]]:
                conn = http.client.HTTPConnection(server.endpoint.host, server.endpoint.port,
                                                  timeout=5)
                results = []
                for method, path, body in [("GET", "/", None), ("POST", "/echo", b"x" * 5000),
                                           ("GET", "/nope", None), ("GET", "/boom", None)]:
                    conn.request(method, path, body=body)
                    resp = conn.getresponse()
                    results.append((resp.status, resp.read()))
                conn.close()
                return results

            results = await asyncio.to_thread(calls)
            assert [s for s, _ in results] == [200, 201, 404, 500]
            assert results[1][1] == b"x" * 5000

    async_test(scenario)()


def test_to_response_and_routes() -> None:
    assert to_response("x") == Response(200, "x")
    assert to_response(b"x").encoded() == (b"x", "application/octet-stream")
    assert to_response((404, None)).status == 404
    assert to_response((200, {"a": 1})).encoded()[1] == "application/json"
    assert to_response((200, "x", {"X-A": "b"})).headers == {"X-A": "b"}
    with pytest.raises(TypeError):
        to_response(3.5)
    app = HttpApp()
    app.add_route("/a", lambda: "a")
    with pytest.raises(ValueError, match="already routed"):
        app.add_route("/a", lambda: "b")
    with pytest.raises(ValueError, match="must start with"):
        app.add_route("a", lambda: "b")
    assert re.search(r"\d", str(HttpError(404))) is not None
