"""Struct types: declared in Python or built from an IDL at run time, compiled once.

Declaring a struct by hand::

    class Inner(Struct, tars_name="Demo.Inner"):
        id: int = field(0, INT, required=True)
        label: str = field(1, STRING, default="inner")

``Inner(id=5).tars_encode()`` gives the bare field sequence; ``Inner.tars_decode(data)`` reads it.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from typing_extensions import dataclass_transform

from .accel import install as _accelerate
from .compiler import compile_struct, enum_default
from .types import (
    BOOL,
    BYTES,
    DOUBLE,
    FLOAT,
    INTEGER_TYPES,
    STRING,
    Builtin,
    EnumType,
    MapType,
    StructType,
    TarsType,
    VectorType,
)

__all__ = ["MISSING", "Field", "Struct", "StructMeta", "field", "make_struct", "type_default"]

S = TypeVar("S", bound="Struct")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
RESERVED_NAMES = frozenset({"tars_encode", "tars_decode", "tars_encode_into"})


@dataclass(frozen=True, slots=True)
class Field:
    """One struct field: tag, attribute name, declared type, require flag and default."""

    tag: int
    name: str
    type: TarsType
    required: bool = False
    default: Any = MISSING


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    tag: int
    type: TarsType
    required: bool
    default: Any


def field(tag: int, type: TarsType, *, required: bool = False, default: Any = MISSING) -> Any:
    """Declare a field of a hand-written :class:`Struct` (the name comes from the attribute)."""
    return _FieldSpec(tag, type, required, default)


def type_default(t: TarsType) -> Any:
    """The implicit default of a type: false, 0, 0.0, "", b"", or MISSING for mutable ones."""
    if t == BOOL:
        return False
    if t in INTEGER_TYPES:
        return 0
    if t in (FLOAT, DOUBLE):
        return 0.0
    if t == STRING:
        return ""
    if t == BYTES:
        return b""
    if isinstance(t, EnumType):
        return enum_default(t.cls)
    return MISSING  # vectors, maps and structs get a fresh empty value each time


def _check_default(f: Field) -> Field:
    t = f.type
    if f.default is MISSING:
        return Field(f.tag, f.name, t, f.required, type_default(t))
    if isinstance(t, (VectorType, MapType, StructType)):
        raise TypeError(f"field {f.name}: {t!r} fields cannot have a default value")
    if isinstance(t, EnumType):
        return Field(f.tag, f.name, t, f.required, t.cls(f.default))
    return f


def _validate(name: str, fields: list[Field]) -> tuple[Field, ...]:
    seen_tags: set[int] = set()
    seen_names: set[str] = set()
    for f in fields:
        if not 0 <= f.tag <= 255:
            raise ValueError(f"{name}.{f.name}: tag {f.tag} is outside 0..255")
        if f.tag in seen_tags:
            raise ValueError(f"{name}.{f.name}: tag {f.tag} is used twice")
        if f.name in seen_names:
            raise ValueError(f"{name}: field name {f.name!r} is used twice")
        if not f.name.isidentifier() or keyword.iskeyword(f.name) or f.name in RESERVED_NAMES:
            raise ValueError(f"{name}: {f.name!r} cannot be a field name")
        if isinstance(f.type, Builtin) and f.type.name not in _BUILTIN_NAMES:
            raise ValueError(f"{name}.{f.name}: unknown builtin type {f.type!r}")
        _check_map_keys(f.type, f"{name}.{f.name}")
        seen_tags.add(f.tag)
        seen_names.add(f.name)
    return tuple(sorted((_check_default(f) for f in fields), key=lambda f: f.tag))


def _check_map_keys(t: TarsType, where: str) -> None:
    """Map keys become dict keys: only builtins and enums are hashable values."""
    if isinstance(t, MapType):
        if not isinstance(t.key, (Builtin, EnumType)):
            raise ValueError(f"{where}: map keys of type {t.key!r} are not supported "
                             "(use a builtin or enum key)")
        _check_map_keys(t.value, where)
    elif isinstance(t, VectorType):
        _check_map_keys(t.elem, where)


_BUILTIN_NAMES = frozenset(
    {"bool", "byte", "short", "int", "long", "unsigned byte", "unsigned short",
     "unsigned int", "float", "double", "string", "vector<byte>"}
)


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
class StructMeta(type):
    """Metaclass turning field declarations into ``__slots__`` and a compiled codec."""

    def __new__(
        mcs,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        *,
        tars_name: str | None = None,
        fields: list[Field] | None = None,
    ) -> StructMeta:
        declared = list(fields or [])
        for attr, value in list(namespace.items()):
            if isinstance(value, _FieldSpec):
                del namespace[attr]
                declared.append(Field(value.tag, attr, value.type, value.required, value.default))
        is_base = namespace.get("__module__") == __name__ and name == "Struct"
        if any(getattr(b, "__tars_fields__", None) is not None for b in bases):
            raise TypeError(f"{name}: a struct class cannot be subclassed; declare a new struct")
        ordered = () if is_base else _validate(tars_name or name, declared)
        namespace["__slots__"] = tuple(f.name for f in ordered)
        cls = super().__new__(mcs, name, bases, namespace)
        if is_base:
            return cls
        cls.__tars_name__ = tars_name or name  # type: ignore[attr-defined]
        cls.__tars_fields__ = ordered  # type: ignore[attr-defined]
        compiled = compile_struct(cls, MISSING)  # type: ignore[arg-type]
        cls.__tars_enc__ = staticmethod(compiled["enc"])  # type: ignore[attr-defined]
        cls.__tars_dec__ = staticmethod(compiled["dec"])  # type: ignore[attr-defined]
        cls.__tars_source__ = compiled["__tars_source__"]  # type: ignore[attr-defined]
        for method in ("__init__", "__eq__", "__repr__"):
            compiled[method].__qualname__ = f"{name}.{method}"
            setattr(cls, method, compiled[method])
        _accelerate(cls)  # C coders if the optional extension is built and enabled
        return cls


class Struct(metaclass=StructMeta):
    """Base class of every TARS struct. Instances are mutable and compare by value."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]
    __tars_name__: ClassVar[str]
    __tars_fields__: ClassVar[tuple[Field, ...]]
    __tars_enc__: ClassVar[Callable[[Any, bytearray], None]]
    __tars_dec__: ClassVar[Callable[[bytes, int, int, bool], tuple[Any, int]]]

    def tars_encode(self) -> bytes:
        """The struct's fields as a bare sequence (the form of packet and parameter bodies)."""
        out = bytearray()
        type(self).__tars_enc__(self, out)
        return bytes(out)

    def tars_encode_into(self, out: bytearray) -> None:
        """Append the bare field sequence to ``out``."""
        type(self).__tars_enc__(self, out)

    @classmethod
    def tars_decode(cls: type[S], data: bytes | bytearray | memoryview) -> S:
        """Read a bare field sequence; raises ``TarsDecodeError`` on malformed input."""
        if type(data) is not bytes:
            data = bytes(data)
        obj, _ = cls.__tars_dec__(data, 0, 0, False)
        return obj  # type: ignore[no-any-return]

    @classmethod
    def tars_decode_nested(cls: type[S], data: bytes, pos: int) -> tuple[S, int]:
        """Read a struct body that ends with STRUCT_END, starting at ``pos``."""
        obj, end = cls.__tars_dec__(data, pos, 0, True)
        return obj, end


def make_struct(tars_name: str, fields: list[Field], module: str | None = None) -> type[Struct]:
    """Build a struct class at run time (as the IDL loader does)."""
    short = tars_name.rsplit(".", 1)[-1]
    namespace: dict[str, Any] = {"__module__": module or "k8stars.tars.idl.generated",
                                 "__qualname__": short}
    cls = StructMeta(short, (Struct,), namespace, tars_name=tars_name, fields=fields)
    return cls  # type: ignore[return-value]

