"""Malformed input only ever raises the codec's own errors, with bounded work."""

from __future__ import annotations

import tracemalloc
from contextlib import suppress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8stars.tars.codec import (
    INT,
    MAX_NESTING_DEPTH,
    STRING,
    Field,
    MapType,
    Struct,
    StructType,
    field,
    make_struct,
    vector,
)
from k8stars.tars.errors import TarsDecodeError, TarsFrameError
from k8stars.tars.packet import FrameDecoder, RequestPacket, ResponsePacket, encode_frame

from .strategies import struct_and_value
from .test_properties import New, Optionals


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_errors(data: bytes) -> None:
    for cls in (New, Optionals, RequestPacket, ResponsePacket):
        with suppress(TarsDecodeError):
            cls.tars_decode(data)


@settings(max_examples=150, deadline=None)
@given(struct_and_value())
def test_every_truncation_raises_only_decode_errors(pair: tuple[type[Struct], Struct]) -> None:
    cls, value = pair
    data = value.tars_encode()
    for cut in range(len(data)):
        with suppress(TarsDecodeError):
            cls.tars_decode(data[:cut])


@settings(max_examples=200, deadline=None)
@given(struct_and_value(), st.data())
def test_corrupted_bytes_raise_only_decode_errors(pair: tuple[type[Struct], Struct],
                                                  data: st.DataObject) -> None:
    cls, value = pair
    encoded = bytearray(value.tars_encode())
    if not encoded:
        return
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] = data.draw(st.integers(0, 255))
    with suppress(TarsDecodeError):
        cls.tars_decode(bytes(encoded))


class Holder(Struct):
    items: list[int] = field(0, vector(INT), required=True)
    names: dict[str, str] = field(1, MapType(STRING, STRING))
    text: str = field(2, STRING)


@pytest.mark.parametrize("data", [
    bytes.fromhex("09 02 7f ff ff ff 00 01"),        # list count 2^31-1, 2 bytes present
    bytes.fromhex("09 02 ff ff ff ff"),              # negative count
    bytes.fromhex("09 00 05 00 01"),                 # count 5, one element
    bytes.fromhex("09 00 01 00 01 18 02 7f ff ff ff"),  # map count huge
    bytes.fromhex("09 00 01 00 01 27 7f ff ff ff 61"),  # STRING4 of 2 GiB
    bytes.fromhex("09 00 01 00 01 26 05 61"),        # STRING1 of 5, one byte present
])
def test_impossible_lengths_fail_before_allocating(data: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(TarsDecodeError):
            Holder.tars_decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_decode_error_carries_tag_types_and_offset() -> None:
    with pytest.raises(TarsDecodeError) as info:
        Holder.tars_decode(bytes.fromhex("06 01 61"))  # a string where the int vector is
    error = info.value
    found = (error.tag, error.expected, error.found, error.offset)
    assert found == (0, "vector<int>", "STRING1", 1)
    assert "tag 0" in str(error) and "STRING1" in str(error)


def test_missing_required_field_names_the_tag() -> None:
    with pytest.raises(TarsDecodeError, match="required field missing") as info:
        Holder.tars_decode(bytes.fromhex("16 00"))
    assert info.value.tag == 0


def test_deep_nesting_of_unknown_structs_is_refused() -> None:
    skipper = make_struct("Skipper", [Field(5, "x", INT)])
    deep = b"\x0a" * 10_000 + b"\x0b" * 10_000  # unknown tag-0 structs nested 10,000 deep
    with pytest.raises(TarsDecodeError, match="nesting deeper"):
        skipper.tars_decode(deep)
    shallow = b"\x0a" * (MAX_NESTING_DEPTH - 1) + b"\x0b" * (MAX_NESTING_DEPTH - 1)
    assert skipper.tars_decode(shallow) == skipper()


def test_nested_struct_without_end_is_truncated() -> None:
    outer = make_struct("O", [Field(0, "i", StructType(Holder), required=True)])
    with pytest.raises(TarsDecodeError, match="STRUCT_END"):
        outer.tars_decode(bytes.fromhex("0a 09 0c"))


def test_invalid_wire_type_is_reported() -> None:
    with pytest.raises(TarsDecodeError, match="invalid"):
        Holder.tars_decode(bytes.fromhex("09 0c 3e"))


# ---------------------------------------------------------------- frames


def _frames() -> bytes:
    return b"".join(encode_frame(RequestPacket(iRequestId=i, sServantName="A.B.C",
                                               sFuncName="f", sBuffer=b"x" * i))
                    for i in range(1, 6))


def test_frames_split_the_same_whatever_the_chunking() -> None:
    stream = _frames()
    whole = FrameDecoder().feed(stream)
    assert [RequestPacket.tars_decode(f).iRequestId for f in whole] == [1, 2, 3, 4, 5]
    decoder = FrameDecoder()
    byte_by_byte = [frame for i in range(len(stream)) for frame in decoder.feed(stream[i:i + 1])]
    assert byte_by_byte == whole
    assert decoder.buffered == 0


@pytest.mark.parametrize("prefix", [b"\x80\x00\x00\x00", b"\x00\x00\x00\x04", b"\x00\x00\x00\x00",
                                    b"\x00\xa0\x00\x01"])
def test_bad_length_prefix_is_refused_at_once_and_sticks(prefix: bytes) -> None:
    decoder = FrameDecoder()
    with pytest.raises(TarsFrameError):
        decoder.feed(prefix)
    with pytest.raises(TarsFrameError):
        decoder.feed(_frames())
    assert decoder.buffered == 0


def test_max_frame_size_is_configurable() -> None:
    frame = encode_frame(RequestPacket(iRequestId=1, sBuffer=b"y" * 1000))
    assert FrameDecoder(max_frame_size=len(frame)).feed(frame)
    with pytest.raises(TarsFrameError, match="outside"):
        FrameDecoder(max_frame_size=len(frame) - 1).feed(frame[:4])
