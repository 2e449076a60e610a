"""RPC packets, framing and TUP bodies, sans-IO.

A frame is a 4-byte big-endian length (counting itself) followed by a RequestPacket or
ResponsePacket. :class:`FrameDecoder` turns received bytes into frame bodies; it checks each
length prefix against the configured maximum before buffering the body, so its verdict never
depends on how the bytes were chunked.
"""

from __future__ import annotations

import struct
from enum import IntEnum, IntFlag
from functools import cache
from typing import Any

from .codec import BYTES, INT, SHORT, STRING, MapType, Struct, TarsType, field, make_struct
from .codec.struct import Field
from .codec.types import BYTE
from .errors import TarsDecodeError, TarsFrameError

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "MIN_FRAME_SIZE",
    "FrameDecoder",
    "MessageType",
    "PacketType",
    "RequestPacket",
    "ResponsePacket",
    "ReturnCode",
    "UniAttribute",
    "Version",
    "encode_frame",
]

#: Interoperable default (TarsGo and TarsJava refuse more).
DEFAULT_MAX_FRAME_SIZE = 10 * 1024 * 1024
#: The smallest length prefix accepted (TarsCpp's TARS_NET_MIN_PACKAGE_SIZE).
MIN_FRAME_SIZE = 5

_LENGTH = struct.Struct(">I")
_STRING_MAP = MapType(STRING, STRING)


class Version(IntEnum):
    """``iVersion``: how ``sBuffer`` is encoded."""

    TARS = 1
    TUP2 = 2
    TUP = 3
    XML = 4
    JSON = 5


class PacketType(IntEnum):
    """``cPacketType``."""

    NORMAL = 0
    ONEWAY = 1


class MessageType(IntFlag):
    """``iMessageType`` bit flags."""

    NULL = 0x00
    HASH = 0x01
    GRID = 0x02
    DYED = 0x04
    SAMPLE = 0x08
    ASYNC = 0x10
    SETNAME = 0x80
    TRACE = 0x100


class ReturnCode(IntEnum):
    """``iRet`` framework return codes."""

    SERVER_SUCCESS = 0
    SERVER_DECODE_ERR = -1
    SERVER_ENCODE_ERR = -2
    SERVER_NO_FUNC_ERR = -3
    SERVER_NO_SERVANT_ERR = -4
    SERVER_RESET_GRID = -5
    SERVER_QUEUE_TIMEOUT = -6
    INVOKE_TIMEOUT = -7
    PROXY_CONNECT_ERR = -8
    SERVER_OVERLOAD = -9
    ADAPTER_NULL = -10
    INVOKE_BY_INVALID_SET = -11
    CLIENT_DECODE_ERR = -12
    SEND_REQUEST_ERR = -13
    SERVER_UNKNOWN_ERR = -99


class RequestPacket(Struct, tars_name="tars.RequestPacket"):
    """A request (and the shape of a TUP response); all ten fields are always written."""

    iVersion: int = field(1, SHORT, required=True, default=1)
    cPacketType: int = field(2, BYTE, required=True)
    iMessageType: int = field(3, INT, required=True)
    iRequestId: int = field(4, INT, required=True)
    sServantName: str = field(5, STRING, required=True)
    sFuncName: str = field(6, STRING, required=True)
    sBuffer: bytes = field(7, BYTES, required=True)
    iTimeout: int = field(8, INT, required=True)
    context: dict[str, str] = field(9, _STRING_MAP, required=True)
    status: dict[str, str] = field(10, _STRING_MAP, required=True)


class ResponsePacket(Struct, tars_name="tars.ResponsePacket"):
    """A response; fields 1-7 are always written, 8 and 9 when not empty."""

    iVersion: int = field(1, SHORT, required=True, default=1)
    cPacketType: int = field(2, BYTE, required=True)
    iRequestId: int = field(3, INT, required=True)
    iMessageType: int = field(4, INT, required=True)
    iRet: int = field(5, INT, required=True)
    sBuffer: bytes = field(6, BYTES, required=True)
    status: dict[str, str] = field(7, _STRING_MAP, required=True)
    sResultDesc: str = field(8, STRING)
    context: dict[str, str] = field(9, _STRING_MAP)


def encode_frame(packet: Struct) -> bytes:
    """A packet with its 4-byte length prefix, ready to send."""
    out = bytearray(4)
    packet.tars_encode_into(out)
    _LENGTH.pack_into(out, 0, len(out))
    return bytes(out)


class FrameDecoder:
    """Incremental frame splitter: ``feed(bytes)`` returns the complete frame bodies.

    A bad length prefix raises :class:`TarsFrameError`; the decoder then stays broken
    (every later ``feed`` raises again), since the stream can no longer be resynchronised.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < MIN_FRAME_SIZE:
            raise ValueError(f"max_frame_size must be at least {MIN_FRAME_SIZE}")
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._error: TarsFrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes; return every frame body now complete, in order."""
        if self._error is not None:
            raise self._error
        buf = self._buffer
        buf += data
        frames: list[bytes] = []
        while len(buf) >= 4:
            total = _LENGTH.unpack_from(buf, 0)[0]
            if total < MIN_FRAME_SIZE or total > self.max_frame_size:
                self._error = TarsFrameError(
                    f"frame length {total} outside {MIN_FRAME_SIZE}..{self.max_frame_size}"
                )
                buf.clear()
                raise self._error
            if len(buf) < total:
                break
            frames.append(bytes(buf[4:total]))
            del buf[:total]
        return frames


@cache
def _single_value_struct(t: TarsType) -> type[Struct]:
    """A struct of one required field at tag 0: how TUP stores each value."""
    return make_struct("tup.Value", [Field(0, "value", t, required=True)])


class UniAttribute:
    """A TUP v3 body: named values, each encoded alone at tag 0, in a string → bytes map."""

    _BODY = make_struct("tup.UniAttribute", [Field(0, "data", MapType(STRING, BYTES),
                                                   required=True)])

    def __init__(self, data: dict[str, bytes] | None = None) -> None:
        self.data: dict[str, bytes] = dict(data or {})

    def put(self, name: str, t: TarsType, value: Any) -> None:
        """Store ``value`` of declared type ``t`` under ``name``."""
        holder = _single_value_struct(t)(value=value)  # type: ignore[call-arg]
        self.data[name] = holder.tars_encode()

    def get(self, name: str, t: TarsType, default: Any = None) -> Any:
        """Read the value stored under ``name`` as type ``t`` (``default`` when absent)."""
        raw = self.data.get(name)
        if raw is None:
            return default
        try:
            return _single_value_struct(t).tars_decode(raw).value  # type: ignore[attr-defined]
        except TarsDecodeError as exc:
            raise TarsDecodeError(f"TUP value {name!r}: {exc.reason}", tag=exc.tag,
                                  expected=exc.expected, found=exc.found,
                                  offset=exc.offset) from None

    def encode(self) -> bytes:
        """The ``sBuffer`` of a TUP packet."""
        return self._BODY(data=self.data).tars_encode()  # type: ignore[call-arg]

    @classmethod
    def decode(cls, body: bytes) -> UniAttribute:
        """Read the ``sBuffer`` of a TUP packet."""
        return cls(cls._BODY.tars_decode(body).data)  # type: ignore[attr-defined]
