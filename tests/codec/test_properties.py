"""Round trips of random types, nestings and tags; optional-field rules; encode errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8stars.tars.codec import (
    BOOL,
    BYTE,
    BYTES,
    FLOAT,
    INT,
    LONG,
    SHORT,
    STRING,
    UBYTE,
    UINT,
    USHORT,
    EnumType,
    Field,
    MapType,
    Struct,
    StructType,
    field,
    make_struct,
    vector,
)
from k8stars.tars.errors import TarsEncodeError

from .strategies import Color, struct_and_value


@settings(max_examples=300, deadline=None)
@given(struct_and_value())
def test_random_structs_round_trip(pair: tuple[type[Struct], Struct]) -> None:
    cls, value = pair
    data = value.tars_encode()
    assert cls.tars_decode(data) == value
    # the same value nested inside another struct, followed by a sibling field
    outer = make_struct("Outer", [Field(3, "inner", StructType(cls), required=True),
                                  Field(200, "after", INT, required=True)])
    wrapped = outer(inner=value, after=-7)  # type: ignore[call-arg]
    assert outer.tars_decode(wrapped.tars_encode()) == wrapped


class Old(Struct):
    a: int = field(0, INT, required=True)
    c: str = field(5, STRING)


class New(Struct):
    a: int = field(0, INT, required=True)
    b: list[int] = field(1, vector(LONG))
    inner: Old = field(2, StructType(Old))
    c: str = field(5, STRING)
    d: dict[str, bytes] = field(9, MapType(STRING, BYTES))


@given(st.integers(-(2**31), 2**31 - 1), st.lists(st.integers(-(2**63), 2**63 - 1)),
       st.text(), st.dictionaries(st.text(max_size=5), st.binary(max_size=5), max_size=3))
def test_older_reader_skips_newer_fields(a: int, b: list[int], c: str,
                                         d: dict[str, bytes]) -> None:
    new = New(a=a, b=b, inner=Old(a=1, c="x"), c=c, d=d)
    old = Old.tars_decode(new.tars_encode())
    assert (old.a, old.c) == (a, c)


def test_unknown_tail_of_nested_struct_is_skipped() -> None:
    class NewInner(Struct, tars_name="Inner"):
        a: int = field(0, INT, required=True)
        extra: list[str] = field(7, vector(STRING))

    class OldInner(Struct, tars_name="Inner"):
        a: int = field(0, INT, required=True)

    class NewHolder(Struct):
        items: list[NewInner] = field(0, vector(StructType(NewInner)), required=True)
        z: int = field(1, INT, required=True)

    class OldHolder(Struct):
        items: list[OldInner] = field(0, vector(StructType(OldInner)), required=True)
        z: int = field(1, INT, required=True)

    data = NewHolder(items=[NewInner(a=1, extra=["p", "q"]), NewInner(a=2)], z=9).tars_encode()
    assert OldHolder.tars_decode(data) == OldHolder(items=[OldInner(a=1), OldInner(a=2)], z=9)


class Optionals(Struct):
    i: int = field(0, INT, default=7)
    s: str = field(1, STRING, default="dflt")
    flag: bool = field(2, BOOL)
    v: list[int] = field(3, vector(INT))
    m: dict[int, int] = field(4, MapType(INT, INT))
    inner: Old = field(5, StructType(Old))
    color: Color = field(6, EnumType(Color), default=Color.GREEN)
    blob: bytes = field(7, BYTES)
    f: float = field(8, FLOAT)


def test_tarscpp_optional_writing_rules() -> None:
    # defaults: only bool, struct and enum are written
    assert Optionals().tars_encode().hex(" ") == "2c 5a 0c 0b 60 05"
    written = Optionals(i=0, s="", flag=True, v=[1], m={1: 2}, blob=b"\x01", f=0.5).tars_encode()
    decoded = Optionals.tars_decode(written)
    assert (decoded.i, decoded.s, decoded.flag, decoded.v, decoded.m, decoded.blob, decoded.f) == (
        0, "", True, [1], {1: 2}, b"\x01", 0.5)


def test_absent_optionals_take_idl_defaults() -> None:
    decoded = Optionals.tars_decode(b"")
    assert decoded == Optionals()
    assert decoded.color is Color.GREEN and decoded.s == "dflt" and decoded.i == 7


def test_unknown_enum_value_is_kept_as_int() -> None:
    holder = make_struct("E", [Field(0, "c", INT, required=True)])
    reader = make_struct("E", [Field(0, "c", EnumType(Color), required=True)])
    assert reader.tars_decode(holder(c=42).tars_encode()).c == 42  # type: ignore[call-arg, attr-defined]


def test_vector_byte_accepts_a_list_of_bytes() -> None:
    as_list = make_struct("L", [Field(0, "v", vector(SHORT), required=True)])
    as_blob = make_struct("B", [Field(0, "v", vector(BYTE), required=True)])
    data = as_list(v=[1, -1, 0, 127]).tars_encode()  # type: ignore[call-arg]
    assert as_blob.tars_decode(data).v == b"\x01\xff\x00\x7f"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("t", "bad"), [
    (BYTE, 128), (SHORT, -32769), (INT, 2**31), (LONG, 2**63),
    (UBYTE, 256), (UBYTE, -1), (USHORT, 65536), (UINT, 2**32), (INT, "7"), (STRING, b"x"),
    (FLOAT, "x"), (vector(INT), 5), (BYTES, "text"),
])
def test_encode_errors_name_the_field(t: object, bad: object) -> None:
    cls = make_struct("Bad", [Field(3, "field_x", t, required=True)])  # type: ignore[arg-type]
    with pytest.raises(TarsEncodeError) as info:
        cls(field_x=bad).tars_encode()  # type: ignore[call-arg]
    assert str(info.value).startswith("field_x:")


def test_nested_encode_error_has_a_path() -> None:
    with pytest.raises(TarsEncodeError) as info:
        New(a=1, inner=Old(a=2**40)).tars_encode()
    assert info.value.path == ["inner", "a"]


def test_declaration_errors() -> None:
    with pytest.raises(ValueError, match="tag 256"):
        make_struct("X", [Field(256, "a", INT)])
    with pytest.raises(ValueError, match="used twice"):
        make_struct("X", [Field(1, "a", INT), Field(1, "b", INT)])
    with pytest.raises(ValueError, match="cannot be a field name"):
        make_struct("X", [Field(1, "class", INT)])


def test_struct_classes_cannot_be_subclassed() -> None:
    with pytest.raises(TypeError, match="cannot be subclassed"):
        class Child(Old):  # type: ignore[misc]
            extra: int = field(9, INT)
