"""Wire-level facts of the TARS encoding: type codes, heads and integer ranges."""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "MAX_NESTING_DEPTH",
    "MAX_STRING_LENGTH",
    "WireType",
    "head_bytes",
    "wire_type_name",
]

#: TarsCpp's TARS_MAX_STRING_LENGTH: longer strings are rejected on read and write.
MAX_STRING_LENGTH = 100 * 1024 * 1024
#: Nesting depth of structs and containers accepted when decoding unknown data.
MAX_NESTING_DEPTH = 64


class WireType(IntEnum):
    """The 4-bit type code in every field head."""

    BYTE = 0
    SHORT = 1
    INT = 2
    LONG = 3
    FLOAT = 4
    DOUBLE = 5
    STRING1 = 6
    STRING4 = 7
    MAP = 8
    LIST = 9
    STRUCT_BEGIN = 10
    STRUCT_END = 11
    ZERO_TAG = 12
    SIMPLE_LIST = 13


def wire_type_name(code: int) -> str:
    """Name of a wire type code, or ``invalid type N`` for 14 and 15."""
    try:
        return WireType(code).name
    except ValueError:
        return f"invalid type {code}"


def head_bytes(wire_type: int, tag: int) -> bytes:
    """The encoded head of a field: one byte for tags 0..14, two bytes for 15..255."""
    if not 0 <= tag <= 255:
        raise ValueError(f"tag {tag} is outside 0..255")
    if tag < 15:
        return bytes(((tag << 4) | wire_type,))
    return bytes((0xF0 | wire_type, tag))
