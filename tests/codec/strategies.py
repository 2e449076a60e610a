"""Hypothesis strategies for random TARS types, values and struct classes."""

from __future__ import annotations

import itertools
from enum import IntEnum
from typing import Any

from hypothesis import strategies as st

from k8stars.tars.codec import (
    BOOL,
    BYTE,
    BYTES,
    DOUBLE,
    FLOAT,
    INT,
    LONG,
    SHORT,
    STRING,
    UBYTE,
    UINT,
    USHORT,
    Builtin,
    EnumType,
    Field,
    MapType,
    Struct,
    StructType,
    TarsType,
    VectorType,
    make_struct,
)


class Color(IntEnum):
    RED = 0
    GREEN = 5
    BLUE = 6


SCALARS: list[TarsType] = [BOOL, BYTE, SHORT, INT, LONG, UBYTE, USHORT, UINT, FLOAT, DOUBLE,
                           STRING, BYTES, EnumType(Color)]
_names = itertools.count()


def value_of(t: TarsType) -> st.SearchStrategy[Any]:
    """Values of a declared type that survive a round trip unchanged."""
    if isinstance(t, Builtin):
        if t == BOOL:
            return st.booleans()
        if t == FLOAT:
            return st.floats(width=32, allow_nan=False)
        if t == DOUBLE:
            return st.floats(allow_nan=False)
        if t == STRING:
            return st.text(max_size=300)
        if t == BYTES:
            return st.binary(max_size=300)
        return st.integers(t.lo, t.hi)
    if isinstance(t, EnumType):
        return st.sampled_from(list(t.cls))
    if isinstance(t, VectorType):
        return st.lists(value_of(t.elem), max_size=4)
    if isinstance(t, MapType):
        return st.dictionaries(value_of(t.key), value_of(t.value), max_size=4)
    return struct_value(t.cls)


def struct_value(cls: type[Struct]) -> st.SearchStrategy[Struct]:
    kwargs = {f.name: value_of(f.type) for f in cls.__tars_fields__}
    return st.builds(cls, **kwargs)


_KEY_TYPES = [t for t in SCALARS if t not in (FLOAT, DOUBLE)]


def types(depth: int = 2) -> st.SearchStrategy[TarsType]:
    """Random declared types, nesting vectors, maps and structs up to ``depth``."""
    if depth == 0:
        return st.sampled_from(SCALARS)
    inner = types(depth - 1)
    return st.one_of(
        st.sampled_from(SCALARS),
        inner.map(lambda t: BYTES if t == BYTE else VectorType(t)),
        st.tuples(st.sampled_from(_KEY_TYPES), inner).map(lambda kv: MapType(*kv)),
        structs(depth - 1).map(StructType),
    )


def structs(depth: int = 2) -> st.SearchStrategy[type[Struct]]:
    """Random struct classes with unique tags in 0..255 and random require flags."""
    field_spec = st.tuples(st.integers(0, 255), types(depth), st.booleans())
    return st.lists(field_spec, max_size=6, unique_by=lambda spec: spec[0]).map(_build)


def _build(specs: list[tuple[int, TarsType, bool]]) -> type[Struct]:
    fields = [Field(tag, f"f{tag}", t, required) for tag, t, required in specs]
    return make_struct(f"Random{next(_names)}", fields)


def struct_and_value() -> st.SearchStrategy[tuple[type[Struct], Struct]]:
    return structs().flatmap(lambda cls: st.tuples(st.just(cls), struct_value(cls)))
