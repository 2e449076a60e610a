"""Hand-written readers shared by the generated decoders: counts, skipping, failures.

Everything works on ``bytes`` plus an offset; nothing here does I/O.
"""

from __future__ import annotations

import struct
from typing import NoReturn

from ..errors import TarsDecodeError
from .wire import MAX_NESTING_DEPTH, MAX_STRING_LENGTH, wire_type_name

__all__ = ["fail_mismatch", "fail_truncated", "read_count", "skip_value"]

_U_H = struct.Struct(">h").unpack_from
_U_I = struct.Struct(">i").unpack_from
_U_UI = struct.Struct(">I").unpack_from
_FIXED_SIZE = {0: 1, 1: 2, 2: 4, 3: 8, 4: 4, 5: 8, 11: 0, 12: 0}


def fail_mismatch(
    tag: int, expected: str, found: int, offset: int, struct_name: str | None = None
) -> NoReturn:
    """Raise the error for a wire type that the declared type does not accept."""
    raise TarsDecodeError(
        "type mismatch",
        tag=tag,
        expected=expected,
        found=wire_type_name(found),
        offset=offset,
        struct=struct_name,
    )


def fail_truncated(
    what: str, tag: int | None, offset: int, struct_name: str | None = None
) -> NoReturn:
    """Raise the error for input that ends before ``what`` is complete."""
    raise TarsDecodeError(
        f"truncated input: {what}", tag=tag if tag is not None and tag >= 0 else None,
        offset=offset, struct=struct_name,
    )


def read_count(data: bytes, pos: int) -> tuple[int, int]:
    """Read a container count or SimpleList length (an int at tag 0); return (n, new pos)."""
    b = data[pos]
    typ = b & 15
    if b >= 0xF0:
        tag = data[pos + 1]
        pos += 2
    else:
        tag = b >> 4
        pos += 1
    if tag != 0:
        raise TarsDecodeError("container length must have tag 0", tag=tag, offset=pos)
    if typ == 12:
        return 0, pos
    if typ == 0:
        n = data[pos]
        return (n - 256 if n > 127 else n), pos + 1
    if typ == 1:
        return _U_H(data, pos)[0], pos + 2
    if typ == 2:
        n = _U_I(data, pos)[0]
        if n < 0:
            raise TarsDecodeError(f"negative container length {n}", tag=0, offset=pos)
        return n, pos + 4
    fail_mismatch(0, "int (length)", typ, pos)


def _check_length(n: int, data: bytes, pos: int, what: str) -> None:
    if n < 0:
        raise TarsDecodeError(f"negative {what} {n}", offset=pos)
    if n > len(data) - pos:
        fail_truncated(f"{what} {n} exceeds the {len(data) - pos} bytes left", None, pos)


def skip_value(data: bytes, pos: int, typ: int, depth: int = 0) -> int:
    """Skip one value of wire type ``typ`` whose head was already read; return the new pos.

    Raises :class:`TarsDecodeError` on invalid types, impossible lengths or excessive nesting;
    IndexError/struct.error from a truncated input are left to the caller to translate.
    """
    size = _FIXED_SIZE.get(typ)
    if size is not None:
        if pos + size > len(data):
            fail_truncated(f"{wire_type_name(typ)} value", None, pos)
        return pos + size
    if typ == 6:
        n = data[pos]
        pos += 1
    elif typ == 7:
        n = _U_UI(data, pos)[0]
        pos += 4
        if n > MAX_STRING_LENGTH:
            raise TarsDecodeError(f"string length {n} exceeds the maximum", offset=pos)
    elif typ == 8 or typ == 9:
        if depth >= MAX_NESTING_DEPTH:
            raise TarsDecodeError(f"nesting deeper than {MAX_NESTING_DEPTH}", offset=pos)
        n, pos = read_count(data, pos)
        items = 2 * n if typ == 8 else n
        _check_length(items, data, pos, "container count")
        for _ in range(items):
            b = data[pos]
            pos += 2 if b >= 0xF0 else 1
            pos = skip_value(data, pos, b & 15, depth + 1)
        return pos
    elif typ == 13:
        if data[pos] != 0:
            fail_mismatch(0, "BYTE head inside SimpleList", data[pos] & 15, pos)
        n, pos = read_count(data, pos + 1)
    elif typ == 10:
        if depth >= MAX_NESTING_DEPTH:
            raise TarsDecodeError(f"nesting deeper than {MAX_NESTING_DEPTH}", offset=pos)
        while True:
            b = data[pos]
            pos += 2 if b >= 0xF0 else 1
            if b & 15 == 11:
                return pos
            pos = skip_value(data, pos, b & 15, depth + 1)
    else:
        raise TarsDecodeError("invalid wire type", found=wire_type_name(typ), offset=pos)
    _check_length(n, data, pos, "length")
    return pos + n
