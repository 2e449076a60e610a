"""Server dispatch over real sockets: results, out params, errors, ping, oneway, TUP, ordering."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from typing import Any

import pytest

from k8stars.tars.codec import INT, STRING, MapType, StructType, vector
from k8stars.tars.packet import RequestPacket, UniAttribute
from k8stars.tars.servant import Servant, current
from k8stars.tars.server import Server

from .test_server_support import (
    CALC,
    OBJ,
    CalcImp,
    Wire,
    adapter,
    args_body,
    async_test,
    call,
    eventually,
    interop_idl,
    request,
    result,
    serving,
)

AllTypes: Any = interop_idl().struct("Interop.AllTypes")
Inner: Any = interop_idl().struct("Interop.Inner")


def all_types() -> Any:
    return AllTypes(b=True, i8=-5, i16=300, i32=-70000, i64=2**40, f32=1.5, f64=-2.25, s="héllo",
                    blob=b"\x00\x01", ints=[1, -2], strs=["a", "b"], counts={"x": 1},
                    byId={7: Inner(id=7, label="seven")}, inner=Inner(id=1),
                    inners=[Inner(id=2), Inner(id=3, label="three")], u8=255, u16=65535,
                    u32=2**32 - 1, color=6, opt="o", nested=[[1, 2], []], tagged={"k": ["v"]})


@async_test
async def test_calls_return_results_and_out_params() -> None:
    async with serving() as (_, port):
        wire = await Wire.open(port)
        resp = await wire.call(call("add", a=2, b=40, request_id=11))
        assert (resp.iRet, resp.iRequestId, resp.iVersion, resp.cPacketType) == (0, 11, 1, 0)
        assert result("add", resp).tars_ret == 42  # type: ignore[attr-defined]
        resp = await wire.call(call("echo", s="x" * 4096))
        assert result("echo", resp).tars_ret == "x" * 4096  # type: ignore[attr-defined]
        div: Any = result("divide", await wire.call(call("divide", a=17, b=5)))
        assert (div.tars_ret, div.quotient, div.remainder) == (0, 3, 2)
        value = all_types()
        rt: Any = result("roundTrip", await wire.call(call("roundTrip", value=value)))
        assert rt.tars_ret == value and rt.inners == value.inners
        words: Any = result("countWords", await wire.call(call("countWords",
                                                               words=["a", "b", "a"])))
        assert words.tars_ret == {"a": 2, "b": 1}
        await wire.close()


@async_test
async def test_void_call_normal_and_oneway() -> None:
    imp = CalcImp()
    async with serving(imp) as (_, port):
        wire = await Wire.open(port)
        resp = await wire.call(call("touch", name="n1", request_id=5))
        assert (resp.iRet, resp.sBuffer, resp.iRequestId) == (0, b"", 5)
        await wire.send(request("touch", args_body("touch", name="n2"), oneway=True))
        await eventually(lambda: imp.touched == ["n1", "n2"])
        assert await wire.no_data()  # no answer to the oneway call
        await wire.close()


@async_test
async def test_error_codes() -> None:
    async with serving() as (_, port):
        wire = await Wire.open(port)
        resp = await wire.call(call("fail", message="boom"))
        assert (resp.iRet, resp.sResultDesc) == (-99, "ValueError: boom")
        resp = await wire.call(call("divide", a=1, b=0))  # TarsRpcError(code=7)
        assert (resp.iRet, resp.sResultDesc) == (7, "division by zero")
        resp = await wire.call(request("nosuch"))
        assert resp.iRet == -3 and "nosuch" in resp.sResultDesc
        resp = await wire.call(request("add", args_body("add", a=1, b=2), servant="Other.Obj"))
        assert resp.iRet == -4 and "Other.Obj" in resp.sResultDesc
        resp = await wire.call(request("add", b"\x16\x01x"))  # a string where an int goes
        assert resp.iRet == -1 and "add" in resp.sResultDesc
        resp = await wire.call(request("add", b""))  # required arguments missing
        assert resp.iRet == -1 and "required field missing" in resp.sResultDesc
        resp = await wire.call(request("add", args_body("add", a=1, b=2), version=5))
        assert (resp.iRet, resp.iVersion) == (-1, 5)
        # the connection survived every error
        assert result("add", await wire.call(call("add", a=1, b=1))).tars_ret == 2  # type: ignore[attr-defined]
        await wire.close()


@async_test
async def test_failure_is_logged_with_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async with serving() as (_, port):
        wire = await Wire.open(port)
        with caplog.at_level(logging.ERROR, "k8stars.tars.server"):
            await wire.call(call("fail", message="boom"))
        record = next(r for r in caplog.records if "boom" in r.getMessage())
        assert record.exc_info is not None and "fail" in record.getMessage()
        await wire.close()


@async_test
async def test_ping_normal_and_oneway_and_echoed_fields() -> None:
    async with serving() as (_, port):
        wire = await Wire.open(port)
        await wire.send(request("tars_ping", oneway=True, request_id=3))
        resp = await wire.call(request("tars_ping", request_id=-7, message_type=0x104))
        assert (resp.iRet, resp.sBuffer, resp.iRequestId, resp.iMessageType) == (0, b"", -7, 0x104)
        # ping is answered even for a body that no method could decode
        resp = await wire.call(request("tars_ping", b"\xff\xff", request_id=8))
        assert (resp.iRet, resp.iRequestId) == (0, 8)
        await wire.close()


@async_test
async def test_context_current_and_response_context() -> None:
    async with serving() as (_, port):
        wire = await Wire.open(port)
        resp = await wire.call(request("echo", args_body("echo", s="ctx"), context={"k": "v"}))
        assert result("echo", resp).tars_ret == f"{OBJ}.echo from 127.0.0.1"  # type: ignore[attr-defined]
        assert resp.context == {"seen": "v"}
        await wire.close()


@async_test
async def test_tup_call() -> None:
    async with serving() as (_, port):
        wire = await Wire.open(port)
        body = UniAttribute()
        body.put("a", INT, 17)
        body.put("b", INT, 5)
        await wire.send(request("divide", body.encode(), version=3, request_id=9))
        resp = RequestPacket.tars_decode(await wire.read_frame())
        assert (resp.iVersion, resp.iRequestId, resp.sFuncName) == (3, 9, "divide")
        out = UniAttribute.decode(resp.sBuffer)
        assert out.get("", INT) == 0 and out.get("tars_ret", INT) == 0
        assert (out.get("quotient", INT), out.get("remainder", INT)) == (3, 2)
        assert "STATUS_RESULT_CODE" not in resp.status

        words = UniAttribute()
        words.put("words", vector(STRING), ["a", "a"])
        await wire.send(request("countWords", words.encode(), version=3, request_id=10))
        out = UniAttribute.decode(RequestPacket.tars_decode(await wire.read_frame()).sBuffer)
        assert out.get("tars_ret", MapType(STRING, INT)) == {"a": 2}

        value = UniAttribute()
        value.put("value", StructType(AllTypes), all_types())
        await wire.send(request("roundTrip", value.encode(), version=3, request_id=12))
        out = UniAttribute.decode(RequestPacket.tars_decode(await wire.read_frame()).sBuffer)
        assert out.get("inners", vector(StructType(Inner))) == all_types().inners

        message = UniAttribute()
        message.put("message", STRING, "bad")
        await wire.send(request("fail", message.encode(), version=3, request_id=13))
        resp = RequestPacket.tars_decode(await wire.read_frame())
        assert resp.status["STATUS_RESULT_CODE"] == "-99"
        assert resp.status["STATUS_RESULT_DESC"] == "ValueError: bad"

        await wire.send(request("add", UniAttribute().encode(), version=3, request_id=14))
        resp = RequestPacket.tars_decode(await wire.read_frame())
        assert resp.status["STATUS_RESULT_CODE"] == "-1" and "'a'" in resp.status[
            "STATUS_RESULT_DESC"]
        await wire.close()


@async_test
async def test_responses_out_of_order_under_concurrency() -> None:
    imp = CalcImp()
    async with serving(imp) as (_, port):
        wire = await Wire.open(port)
        await wire.send(*(call("echo", s=f"wait:{i}", request_id=i) for i in (1, 2, 3)),
                        call("add", a=1, b=1, request_id=4))
        assert (await wire.response()).iRequestId == 4  # not held up by the slow ones
        await eventually(lambda: len(imp.started) == 3)
        order = []
        for key in ("3", "1", "2"):
            imp.release(key)
            order.append((await wire.response()).iRequestId)
        assert order == [3, 1, 2]
        await wire.close()


@async_test
async def test_many_concurrent_connections() -> None:
    async with serving() as (_, port):
        wires = [await Wire.open(port) for _ in range(20)]
        for i, wire in enumerate(wires):
            await wire.send(*(call("add", a=i, b=j, request_id=j + 1) for j in range(50)))
        for i, wire in enumerate(wires):
            got = sorted([result("add", await wire.response()).tars_ret  # type: ignore[attr-defined]
                          for _ in range(50)])
            assert got == [i + j for j in range(50)]
        for wire in wires:
            await wire.close()


@pytest.mark.parametrize("eager", [False, True])
@async_test
async def test_eager_and_task_modes_agree(eager: bool) -> None:
    seen: list[object] = []

    class Imp(CalcImp):
        async def add(self, a: int, b: int) -> int:
            seen.append(current().request_id)
            if a < 0:
                await asyncio.sleep(0)  # suspends: continues as a task
                seen.append(current().request_id)
                raise ValueError("negative")
            return a + b

    server = Server(eager=eager)
    server.add_servant(OBJ, Imp(), adapter())
    async with server:
        wire = await Wire.open(server.endpoint(OBJ).port)
        resp = await wire.call(call("add", a=1, b=2, request_id=1))
        assert result("add", resp).tars_ret == 3  # type: ignore[attr-defined]
        resp = await wire.call(call("add", a=-1, b=2, request_id=2))
        assert (resp.iRet, resp.sResultDesc) == (-99, "ValueError: negative")
        assert seen == [1, 2, 2]
        await wire.close()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")
@async_test
async def test_default_mode_keeps_tasks_semantics() -> None:
    class Imp(CalcImp):
        async def add(self, a: int, b: int) -> int:
            async with asyncio.timeout(1):  # type: ignore[attr-defined]  # needs a task at once
                return a + b

    async with serving(Imp()) as (_, port):
        wire = await Wire.open(port)
        assert result("add", await wire.call(call("add", a=1, b=2))).tars_ret == 3  # type: ignore[attr-defined]
        await wire.close()


@async_test
async def test_bad_result_shape_is_an_encode_error() -> None:
    class Imp(CalcImp):
        def divide(self, a: int, b: int) -> Any:
            return a // b  # should be (ret, quotient, remainder)

        async def echo(self, s: str) -> Any:
            return 5  # not a string

    async with serving(Imp()) as (_, port):
        wire = await Wire.open(port)
        resp = await wire.call(call("divide", a=4, b=2))
        assert resp.iRet == -2 and "tuple of 3" in resp.sResultDesc
        resp = await wire.call(call("echo", s="x"))
        assert resp.iRet == -2
        await wire.close()


@async_test
async def test_out_of_range_error_code_is_clamped() -> None:
    from k8stars.tars.errors import TarsRpcError

    class Imp(CalcImp):
        def fail(self, message: str) -> int:
            raise TarsRpcError(message, -1000)

    async with serving(Imp()) as (_, port):
        wire = await Wire.open(port)
        resp = await wire.call(call("fail", message="m"))
        assert (resp.iRet, resp.sResultDesc) == (-99, "m")
        await wire.close()


def test_servant_checks_methods_and_signatures() -> None:
    with pytest.raises(TypeError, match=r"does not implement Interop.Calc .*add.*touch"):
        class Partial(Servant, interface=CALC):
            def echo(self, s: str) -> str:
                return s

    with pytest.raises(TypeError, match=r"add.*cannot take the in-parameters \(a, b\)"):
        class WrongArity(CalcImp):
            async def add(self, a: int) -> int:  # type: ignore[override]
                return a

    class Abstract(Servant):  # no interface: allowed, cannot be served
        pass

    server = Server()
    with pytest.raises(TypeError, match="declares no interface"):
        server.add_servant(OBJ, Abstract(), adapter())
    assert set(CalcImp.tars_methods) == set(CALC.methods)
    assert CalcImp.tars_methods["add"].is_async and not CalcImp.tars_methods["divide"].is_async


def test_current_outside_a_call() -> None:
    with pytest.raises(RuntimeError, match="outside"):
        current()


def test_add_servant_validation() -> None:
    server = Server()
    server.add_servant(OBJ, CalcImp(), "tcp -h 127.0.0.1 -p 0")
    with pytest.raises(ValueError, match="already"):
        server.add_servant(OBJ, CalcImp(), "tcp -h 127.0.0.1 -p 0")
    with pytest.raises(ValueError, match="ssl"):
        server.add_servant("X.Y.Z", CalcImp(), "ssl -h 127.0.0.1 -p 0")
    with pytest.raises(ValueError, match="not_tars"):
        server.add_servant("X.Y.Z", CalcImp(), adapter("X.Y.Z", protocol="not_tars"))
    with pytest.raises(ValueError, match="serves"):
        server.add_servant("X.Y.W", CalcImp(), adapter("X.Y.Z"))
    assert server.proxy(OBJ) == f"{OBJ}@tcp -h 127.0.0.1 -p 0 -t 3000"


@async_test
async def test_sync_wrapper_returning_a_coroutine() -> None:
    def logged(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any) -> Any:
            return fn(*args)

        return wrapper

    class Imp(CalcImp):
        @logged
        async def add(self, a: int, b: int) -> int:
            await asyncio.sleep(0)
            return a * b

    assert not Imp.tars_methods["add"].is_async
    async with serving(Imp()) as (_, port):
        wire = await Wire.open(port)
        assert result("add", await wire.call(call("add", a=6, b=7))).tars_ret == 42  # type: ignore[attr-defined]
        await wire.close()
