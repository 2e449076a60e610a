"""A lossless mapping between TARS values and JSON-compatible data.

Structs are objects keyed by field name, ``vector<byte>`` is a lowercase hex string, maps are
lists of ``[key, value]`` pairs (keys need not be strings), enums are ints, and non-finite
floats are the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``. ``long`` values are
ints, or decimal strings with ``long_as_str`` (for peers whose numbers are doubles); both
forms are accepted when reading.
"""

from __future__ import annotations

import math
from typing import Any

from .struct import Struct
from .types import (
    BOOL,
    BYTES,
    DOUBLE,
    FLOAT,
    LONG,
    STRING,
    Builtin,
    EnumType,
    MapType,
    StructType,
    TarsType,
    VectorType,
)

__all__ = ["PlainValueError", "from_plain", "struct_from_plain", "to_plain"]

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class PlainValueError(ValueError):
    """Plain data that does not fit the declared type; the message names the path."""


def to_plain(value: Any, t: TarsType, *, long_as_str: bool = False) -> Any:
    """Convert a value of declared type ``t`` to JSON-compatible data."""
    if isinstance(t, StructType):
        return {f.name: to_plain(getattr(value, f.name), f.type, long_as_str=long_as_str)
                for f in t.cls.__tars_fields__}
    if isinstance(t, VectorType):
        return [to_plain(v, t.elem, long_as_str=long_as_str) for v in value]
    if isinstance(t, MapType):
        return [[to_plain(k, t.key, long_as_str=long_as_str),
                 to_plain(v, t.value, long_as_str=long_as_str)] for k, v in value.items()]
    if isinstance(t, EnumType):
        return int(value)
    if t == BYTES:
        return bytes(value).hex()
    if t in (FLOAT, DOUBLE):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return float(value)
    if long_as_str and t == LONG:
        return str(value)
    return value


def from_plain(data: Any, t: TarsType, path: str = "value") -> Any:
    """Convert JSON-compatible data to a value of declared type ``t``."""
    if isinstance(t, StructType):
        return struct_from_plain(t.cls, data, path)
    if isinstance(t, VectorType):
        _expect(isinstance(data, list), path, "a list", data)
        return [from_plain(v, t.elem, f"{path}[{i}]") for i, v in enumerate(data)]
    if isinstance(t, MapType):
        _expect(isinstance(data, (list, dict)), path, "a list of [key, value] pairs", data)
        pairs = data.items() if isinstance(data, dict) else data
        result = {}
        for i, pair in enumerate(pairs):
            _expect(isinstance(pair, (list, tuple)) and len(pair) == 2, f"{path}[{i}]",
                    "a [key, value] pair", pair)
            result[from_plain(pair[0], t.key, f"{path}[{i}][0]")] = from_plain(
                pair[1], t.value, f"{path}[{i}][1]")
        return result
    if isinstance(t, EnumType):
        _expect(isinstance(data, int) and not isinstance(data, bool), path, "an int", data)
        return t.cls._value2member_map_.get(data, data)
    assert isinstance(t, Builtin)
    return _builtin_from_plain(data, t, path)


def _builtin_from_plain(data: Any, t: Builtin, path: str) -> Any:
    if t == BOOL:
        _expect(isinstance(data, bool), path, "true or false", data)
        return data
    if t == STRING:
        _expect(isinstance(data, str), path, "a string", data)
        return data
    if t == BYTES:
        _expect(isinstance(data, str), path, "a hex string", data)
        try:
            return bytes.fromhex(data)
        except ValueError:
            raise PlainValueError(f"{path}: {data!r} is not a hex string") from None
    if t in (FLOAT, DOUBLE):
        if isinstance(data, str) and data in _NON_FINITE:
            return _NON_FINITE[data]
        _expect(isinstance(data, (int, float)) and not isinstance(data, bool), path,
                "a number", data)
        return float(data)
    if isinstance(data, str) and t.width == 8:
        try:
            data = int(data)
        except ValueError:
            raise PlainValueError(f"{path}: {data!r} is not an integer") from None
    _expect(isinstance(data, int) and not isinstance(data, bool), path, "an integer", data)
    if not t.lo <= data <= t.hi:
        raise PlainValueError(f"{path}: {data} is out of range for {t.name}")
    return data


def struct_from_plain(cls: type[Struct], data: Any, path: str = "value") -> Struct:
    """Build a struct from an object keyed by field name; absent fields take defaults."""
    _expect(isinstance(data, dict), path, f"an object for {cls.__tars_name__}", data)
    fields = {f.name: f for f in cls.__tars_fields__}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise PlainValueError(f"{path}: {cls.__tars_name__} has no field {unknown[0]!r} "
                              f"(fields: {', '.join(fields)})")
    kwargs = {name: from_plain(v, fields[name].type, f"{path}.{name}") for name, v in data.items()}
    return cls(**kwargs)


def _expect(ok: bool, path: str, what: str, data: Any) -> None:
    if not ok:
        raise PlainValueError(f"{path}: expected {what}, got {data!r}")
