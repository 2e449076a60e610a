"""Declared TARS types: the closed set of descriptors that struct fields are built from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, TypeAlias, Union

if TYPE_CHECKING:
    from .struct import Struct

__all__ = [
    "BOOL",
    "BYTE",
    "BYTES",
    "DOUBLE",
    "FLOAT",
    "INT",
    "LONG",
    "SHORT",
    "STRING",
    "UBYTE",
    "UINT",
    "USHORT",
    "Builtin",
    "EnumType",
    "MapType",
    "StructType",
    "TarsType",
    "VectorType",
    "vector",
]


@dataclass(frozen=True, slots=True)
class Builtin:
    """A builtin type; ``lo``/``hi`` bound integer values, ``width`` is the widest wire form."""

    name: str
    lo: int = 0
    hi: int = 0
    width: int = 0

    def __repr__(self) -> str:
        return self.name


BOOL = Builtin("bool", 0, 1, 1)
BYTE = Builtin("byte", -(2**7), 2**7 - 1, 1)
SHORT = Builtin("short", -(2**15), 2**15 - 1, 2)
INT = Builtin("int", -(2**31), 2**31 - 1, 4)
LONG = Builtin("long", -(2**63), 2**63 - 1, 8)
# Unsigned types travel as the next wider signed type (TarsCpp/TarsGo widening rule).
UBYTE = Builtin("unsigned byte", 0, 2**8 - 1, 2)
USHORT = Builtin("unsigned short", 0, 2**16 - 1, 4)
UINT = Builtin("unsigned int", 0, 2**32 - 1, 8)
FLOAT = Builtin("float")
DOUBLE = Builtin("double")
STRING = Builtin("string")
#: ``vector<byte>``, written as a SimpleList and held as Python ``bytes``.
BYTES = Builtin("vector<byte>")

INTEGER_TYPES = frozenset({BOOL, BYTE, SHORT, INT, LONG, UBYTE, USHORT, UINT})


@dataclass(frozen=True, slots=True)
class VectorType:
    """``vector<T>`` for any T except signed byte (see :data:`BYTES`)."""

    elem: TarsType

    def __repr__(self) -> str:
        return f"vector<{self.elem!r}>"


@dataclass(frozen=True, slots=True)
class MapType:
    """``map<K, V>``, held as a Python dict."""

    key: TarsType
    value: TarsType

    def __repr__(self) -> str:
        return f"map<{self.key!r}, {self.value!r}>"


@dataclass(frozen=True, slots=True)
class StructType:
    """A nested struct."""

    cls: type[Struct]

    def __repr__(self) -> str:
        return str(self.cls.__tars_name__)


@dataclass(frozen=True, slots=True)
class EnumType:
    """An IDL enum, an :class:`~enum.IntEnum` on the Python side and an int32 on the wire."""

    cls: type[IntEnum]

    def __repr__(self) -> str:
        return self.cls.__qualname__


TarsType: TypeAlias = Union[Builtin, VectorType, MapType, StructType, EnumType]  # noqa: UP007


def vector(elem: TarsType) -> TarsType:
    """``vector<elem>``: a SimpleList (:data:`BYTES`) for signed bytes, a LIST otherwise."""
    return BYTES if elem == BYTE else VectorType(elem)
