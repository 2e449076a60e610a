"""Every byte example of the protocol reference encodes and decodes exactly."""

from __future__ import annotations

import pytest

from k8stars.tars.codec import (
    BOOL,
    DOUBLE,
    FLOAT,
    INT,
    LONG,
    STRING,
    UBYTE,
    UINT,
    USHORT,
    Field,
    MapType,
    Struct,
    StructType,
    field,
    make_struct,
    vector,
)
from k8stars.tars.packet import RequestPacket, ResponsePacket, encode_frame

# (type, value, tag, expected hex) from the reference's table of verified examples
SINGLE_VALUES = [
    (LONG, -1, 0, "00 ff"),
    (LONG, 128, 1, "11 00 80"),
    (LONG, -129, 2, "21 ff 7f"),
    (LONG, 32768, 3, "32 00 00 80 00"),
    (LONG, -32769, 4, "42 ff ff 7f ff"),
    (LONG, 2147483648, 5, "53 00 00 00 00 80 00 00 00"),
    (UINT, 4294967295, 6, "63 00 00 00 00 ff ff ff ff"),
    (UBYTE, 200, 7, "71 00 c8"),
    (USHORT, 65535, 8, "82 00 00 ff ff"),
    (BOOL, True, 9, "90 01"),
    (BOOL, False, 10, "ac"),
    (FLOAT, 1.5, 11, "b4 3f c0 00 00"),
    (DOUBLE, 0.0, 12, "c5 00 00 00 00 00 00 00 00"),
    (STRING, "", 13, "d6 00"),
    (INT, 5, 15, "f0 0f 05"),
    (INT, 7, 200, "f0 c8 07"),
    (STRING, "x" * 300, 1, "17 00 00 01 2c" + " 78" * 300),
    (vector(INT), [1, 2, 300], 0, "09 00 03 00 01 00 02 01 01 2c"),
    (MapType(INT, STRING), {1: "a"}, 1, "18 00 01 00 01 16 01 61"),
    (LONG, 0, 0, "0c"),
    (STRING, "y" * 255, 2, "26 ff" + " 79" * 255),
]


@pytest.mark.parametrize(("t", "value", "tag", "expected"), SINGLE_VALUES)
def test_single_value_bytes(t: object, value: object, tag: int, expected: str) -> None:
    cls = make_struct("Example", [Field(tag, "v", t, required=True)])  # type: ignore[arg-type]
    obj = cls(v=value)  # type: ignore[call-arg]
    data = obj.tars_encode()
    assert data == bytes.fromhex(expected)
    assert cls.tars_decode(data) == obj


class EndpointF(Struct, tars_name="tars.EndpointF"):
    host: str = field(0, STRING, required=True)
    port: int = field(1, INT, required=True)
    timeout: int = field(2, INT, required=True)
    istcp: int = field(3, INT, required=True)
    grid: int = field(4, INT, required=True)
    groupworkid: int = field(5, INT)
    grouprealid: int = field(6, INT)
    setId: str = field(7, STRING)
    qos: int = field(8, INT)
    bakFlag: int = field(9, INT)
    weight: int = field(11, INT)
    weightType: int = field(12, INT)
    authType: int = field(13, INT)
    nodeName: str = field(14, STRING)


class QueryArgs(Struct):
    id: str = field(1, STRING, required=True)


class QueryResult(Struct):
    ret: int = field(0, INT, required=True)
    activeEp: list[EndpointF] = field(2, vector(StructType(EndpointF)), required=True)
    inactiveEp: list[EndpointF] = field(3, vector(StructType(EndpointF)), required=True)


def _hex(text: str) -> bytes:
    """Hex with quoted ASCII strings, as written in the reference."""
    out = bytearray()
    for i, part in enumerate(text.split('"')):
        out += part.encode() if i % 2 else bytes.fromhex(part)
    return bytes(out)


REQUEST = _hex(
    '00 00 00 7d 10 01 2c 3c 40 01 56 1a "tars.tarsregistry.QueryObj"'
    '66 19 "findObjectByIdInSameGroup" 7d 00 00 1b 16 19 "Test.HelloServer.HelloObj"'
    '81 0b b8 98 00 01 06 09 "node_name" 16 08 "10.0.0.5" a8 0c'
)
RESPONSE = _hex(
    '00 00 00 3e 10 01 2c 30 01 4c 5c 6d 00 00 2d 0c 29 00 01 0a 06 08 "10.0.0.7"'
    '11 27 1f 22 00 00 ea 60 30 01 4c 50 ff 60 ff b0 ff e6 08 "10.0.0.7" 0b 39 0c 78 0c'
)


def test_find_object_request_frame() -> None:
    packet = RequestPacket(
        iRequestId=1, sServantName="tars.tarsregistry.QueryObj",
        sFuncName="findObjectByIdInSameGroup",
        sBuffer=QueryArgs(id="Test.HelloServer.HelloObj").tars_encode(),
        iTimeout=3000, context={"node_name": "10.0.0.5"},
    )
    assert encode_frame(packet) == REQUEST
    assert RequestPacket.tars_decode(REQUEST[4:]) == packet


def test_find_object_response_frame() -> None:
    endpoint = EndpointF(host="10.0.0.7", port=10015, timeout=60000, istcp=1,
                         groupworkid=-1, grouprealid=-1, weight=-1, nodeName="10.0.0.7")
    result = QueryResult(ret=0, activeEp=[endpoint], inactiveEp=[])
    packet = ResponsePacket(iRequestId=1, sBuffer=result.tars_encode())
    assert encode_frame(packet) == RESPONSE
    decoded = ResponsePacket.tars_decode(RESPONSE[4:])
    assert decoded == packet
    assert QueryResult.tars_decode(decoded.sBuffer) == result


def test_ping_and_reply_frames() -> None:
    ping = _hex('00 00 00 3a 10 01 2c 3c 40 07 56 19 "Test.HelloServer.HelloObj"'
                '66 09 "tars_ping" 7d 00 0c 81 13 88 98 0c a8 0c')
    reply = _hex("00 00 00 10 10 01 2c 30 07 4c 5c 6d 00 0c 78 0c")
    request = RequestPacket(iRequestId=7, sServantName="Test.HelloServer.HelloObj",
                            sFuncName="tars_ping", iTimeout=5000)
    assert encode_frame(request) == ping
    assert encode_frame(ResponsePacket(iRequestId=7)) == reply


def test_admin_notify_frames() -> None:
    request = _hex('00 00 00 3f 10 01 2c 3c 40 02 56 08 "AdminObj" 66 06 "notify"'
                   '7d 00 00 18 16 16 "tars.setloglevel DEBUG" 81 0b b8 98 0c a8 0c')
    reply = _hex('00 00 00 2e 10 01 2c 30 02 4c 5c 6d 00 00 1d 06 1b '
                 '"tars.setloglevel DEBUG succ" 78 0c')
    args = make_struct("notify_args", [Field(1, "command", STRING, required=True)])
    result = make_struct("notify_result", [Field(0, "ret", STRING, required=True)])
    packet = RequestPacket(iRequestId=2, sServantName="AdminObj", sFuncName="notify",
                           sBuffer=args(command="tars.setloglevel DEBUG").tars_encode(),  # type: ignore[call-arg]
                           iTimeout=3000)
    assert encode_frame(packet) == request
    response = ResponsePacket(
        iRequestId=2, sBuffer=result(ret="tars.setloglevel DEBUG succ").tars_encode()  # type: ignore[call-arg]
    )
    assert encode_frame(response) == reply


def test_tup_notify_body() -> None:
    from k8stars.tars.packet import UniAttribute

    body = _hex('08 00 01 06 07 "command" 1d 00 00 12 06 10 "tars.viewversion"')
    attr = UniAttribute()
    attr.put("command", STRING, "tars.viewversion")
    assert attr.encode() == body
    assert UniAttribute.decode(body).get("command", STRING) == "tars.viewversion"
