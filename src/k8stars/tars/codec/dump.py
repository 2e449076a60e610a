"""Schemaless reading: any TARS byte sequence as a tree of tagged values, for inspection."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ..errors import TarsDecodeError
from .reading import fail_truncated, read_count
from .wire import MAX_NESTING_DEPTH, MAX_STRING_LENGTH, WireType, wire_type_name

__all__ = ["TaggedValue", "dump"]

_FIXED = {WireType.BYTE: ">b", WireType.SHORT: ">h", WireType.INT: ">i", WireType.LONG: ">q",
          WireType.FLOAT: ">f", WireType.DOUBLE: ">d"}


@dataclass(frozen=True, slots=True)
class TaggedValue:
    """One field as found on the wire: tag, wire type and value (nested lists for structs)."""

    tag: int
    wire_type: str
    value: Any


def dump(data: bytes) -> list[TaggedValue]:
    """Read a bare field sequence without a schema; raises TarsDecodeError if malformed."""
    try:
        fields, _ = _read_fields(data, 0, 0, nested=False)
    except (IndexError, struct.error):
        fail_truncated("value cut short", None, len(data))
    return fields


def _read_head(data: bytes, pos: int) -> tuple[int, int, int]:
    b = data[pos]
    if b >= 0xF0:
        return data[pos + 1], b & 15, pos + 2
    return b >> 4, b & 15, pos + 1


def _read_fields(data: bytes, pos: int, depth: int, nested: bool) -> tuple[list[TaggedValue], int]:
    fields: list[TaggedValue] = []
    while pos < len(data):
        tag, typ, pos = _read_head(data, pos)
        if typ == WireType.STRUCT_END:
            return fields, pos
        value, pos = _read_value(data, pos, typ, depth)
        fields.append(TaggedValue(tag, wire_type_name(typ), value))
    if nested:
        fail_truncated("struct without STRUCT_END", None, pos)
    return fields, pos


def _read_value(data: bytes, pos: int, typ: int, depth: int) -> tuple[Any, int]:
    if typ in _FIXED:
        fmt = _FIXED[WireType(typ)]
        return struct.unpack_from(fmt, data, pos)[0], pos + struct.calcsize(fmt)
    if typ == WireType.ZERO_TAG:
        return 0, pos
    if depth >= MAX_NESTING_DEPTH and typ in (WireType.MAP, WireType.LIST, WireType.STRUCT_BEGIN):
        raise TarsDecodeError(f"nesting deeper than {MAX_NESTING_DEPTH}", offset=pos)
    if typ in (WireType.STRING1, WireType.STRING4, WireType.SIMPLE_LIST):
        if typ == WireType.STRING1:
            n, pos = data[pos], pos + 1
        elif typ == WireType.STRING4:
            n, pos = struct.unpack_from(">I", data, pos)[0], pos + 4
            if n > MAX_STRING_LENGTH:
                raise TarsDecodeError(f"string length {n} exceeds the maximum", offset=pos)
        else:
            if data[pos] != 0:
                raise TarsDecodeError("SimpleList without its BYTE head", offset=pos)
            n, pos = read_count(data, pos + 1)
        if n > len(data) - pos:
            fail_truncated(f"length {n} exceeds the {len(data) - pos} bytes left", None, pos)
        return bytes(data[pos:pos + n]), pos + n
    if typ in (WireType.MAP, WireType.LIST):
        n, pos = read_count(data, pos)
        items = 2 * n if typ == WireType.MAP else n
        if n < 0 or items > len(data) - pos:
            fail_truncated(f"count {n} exceeds the input", None, pos)
        values = []
        for _ in range(items):
            tag, item_type, pos = _read_head(data, pos)
            value, pos = _read_value(data, pos, item_type, depth + 1)
            values.append(TaggedValue(tag, wire_type_name(item_type), value))
        return values, pos
    if typ == WireType.STRUCT_BEGIN:
        return _read_fields(data, pos, depth + 1, nested=True)
    raise TarsDecodeError("invalid wire type", found=wire_type_name(typ), offset=pos)
