"""The C accelerator against the pure-Python reference: same bytes, same objects, same errors.

Every test builds both coders of a class side by side (``accel.coders``), whether or not the
accelerator is switched on for the run (``K8STARS_PURE_PYTHON``), and compares outcomes:
returned values (with exact types, float bits and positions), or raised errors (class,
``str()``, reason/tag/expected/found/offset/struct or reason/path) and the bytes left in ``out``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import struct
import subprocess
import sys
import tracemalloc
import weakref
from collections.abc import Callable
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8stars.tars.codec import (
    BOOL,
    BYTE,
    BYTES,
    DOUBLE,
    FLOAT,
    INT,
    LONG,
    MAX_NESTING_DEPTH,
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
    TarsType,
    VectorType,
    accel,
    field,
    make_struct,
    vector,
)
from k8stars.tars.errors import TarsDecodeError, TarsEncodeError
from k8stars.tars.packet import RequestPacket, ResponsePacket

from .strategies import Color, struct_and_value, structs, value_of
from .test_examples import RESPONSE, SINGLE_VALUES, EndpointF, QueryResult
from .test_malformed import Holder
from .test_properties import New, Old, Optionals

pytest.importorskip("k8stars.tars.codec._speedups", reason="the C accelerator is not built")

IMPLS = ["pure", "accel"]


# ---------------------------------------------------------------- comparing outcomes


def build(cls: Any, **fields: Any) -> Any:
    """``cls(**fields)``; optional fields may be left out (which the type checker cannot see)."""
    return cls(**fields)


def shape(x: Any) -> Any:
    """``x`` with its exact types made comparable (float bits, enum or int, bytes or not)."""
    if isinstance(x, Struct):
        return (type(x), tuple(shape(getattr(x, f.name, "<unset>")) for f in x.__tars_fields__))
    if isinstance(x, (list, tuple)):
        return (type(x), tuple(shape(item) for item in x))
    if isinstance(x, dict):
        return (dict, tuple((shape(k), shape(v)) for k, v in x.items()))
    if isinstance(x, float):
        return (float, struct.pack(">d", x))
    return (type(x), x)


def error_of(exc: BaseException) -> tuple[Any, ...]:
    if isinstance(exc, TarsDecodeError):
        attrs: tuple[Any, ...] = (exc.reason, exc.tag, exc.expected, exc.found, exc.offset,
                                  exc.struct)
    elif isinstance(exc, TarsEncodeError):
        attrs = (exc.reason, tuple(exc.path))
    else:
        attrs = exc.args
    return ("raised", type(exc), str(exc), attrs)


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:
        return error_of(exc)
    return ("returned", shape(result))


def same_decode(cls: type[Struct], data: Any, pos: int = 0, depth: int = 0,
                nested: bool = False) -> tuple[Any, ...]:
    both = accel.coders(cls)
    pure = outcome(both.pure_dec, data, pos, depth, nested)
    fast = outcome(both.accel_dec, data, pos, depth, nested)
    assert fast == pure
    return pure


def same_encode(obj: Any, cls: type[Struct] | None = None,
                prefix: bytes = b"") -> tuple[tuple[Any, ...], bytes]:
    both = accel.coders(cls or type(obj))
    pure_out, fast_out = bytearray(prefix), bytearray(prefix)
    pure = outcome(both.pure_enc, obj, pure_out)
    fast = outcome(both.accel_enc, obj, fast_out)
    assert fast == pure
    assert fast_out == pure_out  # also the partial output before an error
    return pure, bytes(pure_out)


# ---------------------------------------------------------------- types used below


class Inner(Struct, tars_name="Interop.Inner"):
    id: int = field(0, INT, required=True)
    label: str = field(1, STRING, default="inner")


class AllTypes(Struct, tars_name="Interop.AllTypes"):
    b: bool = field(0, BOOL, required=True)
    i8: int = field(1, BYTE, required=True)
    i16: int = field(2, SHORT, required=True)
    i32: int = field(3, INT, required=True)
    i64: int = field(4, LONG, required=True)
    f32: float = field(5, FLOAT, required=True)
    f64: float = field(6, DOUBLE, required=True)
    s: str = field(7, STRING, required=True)
    blob: bytes = field(8, BYTES, required=True)
    ints: list[int] = field(9, vector(INT), required=True)
    strs: list[str] = field(10, vector(STRING), required=True)
    counts: dict[str, int] = field(11, MapType(STRING, INT), required=True)
    byId: dict[int, Inner] = field(12, MapType(INT, StructType(Inner)), required=True)
    inner: Inner = field(13, StructType(Inner), required=True)
    inners: list[Inner] = field(14, vector(StructType(Inner)), required=True)
    u8: int = field(15, UBYTE)
    u16: int = field(16, USHORT)
    u32: int = field(17, UINT)
    color: Color = field(18, EnumType(Color), default=Color.GREEN)
    opt: str = field(19, STRING, default="dflt")
    nested: list[list[int]] = field(20, vector(vector(LONG)))
    tagged: dict[str, list[str]] = field(200, MapType(STRING, vector(STRING)))


def all_types() -> AllTypes:
    return AllTypes(
        b=True, i8=-100, i16=-30000, i32=2_000_000_000, i64=1234567890123456789,
        f32=1234.5677490234375, f64=-2.718281828459045, s="Grüße aus 東京 🚀",
        blob=bytes(range(64)), ints=[0, 1, -1, 127, -128, 128, 32768, -2**31, 2**31 - 1],
        strs=["", "a", "x" * 300], counts={"alpha": 1, "beta": -2, "gamma": 70000},
        byId={1: Inner(id=1, label="one"), -5: build(Inner, id=-5)}, inner=Inner(id=77, label="in"),
        inners=[Inner(id=0, label=""), Inner(id=-2**31, label="min")], u8=200, u16=65535,
        u32=2**32 - 1, color=Color.BLUE, opt="not the default",
        nested=[[0, -1, 2**31], [-2**63, 2**63 - 1], []], tagged={"k": ["v", ""], "e": []},
    )


def query_result() -> QueryResult:
    endpoints = [build(EndpointF, host=f"10.0.0.{i}", port=10015 + i, timeout=60000, istcp=1,
                       groupworkid=-1, grouprealid=-1, weight=-1, nodeName=f"10.0.0.{i}")
                 for i in range(10)]
    return QueryResult(ret=0, activeEp=endpoints, inactiveEp=[])


FIXED_CLASSES: list[type[Struct]] = [New, Old, Optionals, Holder, RequestPacket, ResponsePacket,
                                     EndpointF, QueryResult, AllTypes, Inner]


# ---------------------------------------------------------------- installation


def test_accelerated_follows_the_environment_switch() -> None:
    forced = os.environ.get(accel.PURE_ENV, "").strip() not in ("", "0")
    assert accel.AVAILABLE
    assert accel.ACCELERATED is not forced
    coder = EndpointF.__dict__["__tars_enc__"].__func__
    if accel.ACCELERATED:
        assert coder == accel.coders(EndpointF).accel_enc
    else:
        assert coder.__name__ == "enc" and hasattr(coder, "__code__")
    assert "def enc(obj, out):" in EndpointF.__tars_source__  # type: ignore[attr-defined]


@pytest.mark.parametrize(("value", "accelerated"), [("1", False), ("yes", False), ("0", True),
                                                    ("", True), (None, True)])
def test_environment_switch_in_a_fresh_interpreter(value: str | None, accelerated: bool) -> None:
    env = dict(os.environ)
    env.pop(accel.PURE_ENV, None)
    if value is not None:
        env[accel.PURE_ENV] = value
    code = ("from k8stars.tars.codec import accel, INT, Field, make_struct\n"
            "C = make_struct('C', [Field(0, 'a', INT)])\n"
            "print(accel.ACCELERATED, type(C.__dict__['__tars_dec__'].__func__).__name__)")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)
    kind = "builtin_function_or_method" if accelerated else "function"
    assert result.stdout.split() == [str(accelerated), kind]


def test_unsupported_default_keeps_the_pure_coders() -> None:
    # the generated code compares with `v != nan`, a NameError: no plan is built, class works
    cls = make_struct("NanDefault", [Field(0, "x", DOUBLE, default=float("nan"))])
    assert cls.__dict__["__tars_enc__"].__func__.__name__ == "enc"
    with pytest.raises(ValueError, match="cannot be accelerated"):
        accel.coders(cls)
    assert accel.install(cls) is False
    with pytest.raises(NameError):
        cls().tars_encode()


def test_coders_of_dynamic_classes_are_collected() -> None:
    cls = make_struct("Transient", [Field(0, "a", INT), Field(1, "b", StructType(Old))])
    accel.coders(cls)
    ref = weakref.ref(cls)
    del cls
    gc.collect()
    assert ref() is None


# ---------------------------------------------------------------- reference examples


def _impl_coders(cls: type[Struct], impl: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    both = accel.coders(cls)
    return (both.pure_enc, both.pure_dec) if impl == "pure" else (both.accel_enc, both.accel_dec)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("t", "value", "tag", "expected"), SINGLE_VALUES)
def test_reference_bytes(impl: str, t: TarsType, value: Any, tag: int, expected: str) -> None:
    cls = make_struct("Example", [Field(tag, "v", t, required=True)])
    enc, dec = _impl_coders(cls, impl)
    obj = cls(v=value)  # type: ignore[call-arg]
    out = bytearray()
    enc(obj, out)
    assert bytes(out) == bytes.fromhex(expected)
    decoded, end = dec(bytes(out), 0, 0, False)
    assert decoded == obj and end == len(out)


@pytest.mark.parametrize("impl", IMPLS)
def test_reference_response_body(impl: str) -> None:
    packet_enc, packet_dec = _impl_coders(ResponsePacket, impl)
    result_enc, result_dec = _impl_coders(QueryResult, impl)
    packet, end = packet_dec(RESPONSE[4:], 0, 0, False)
    assert end == len(RESPONSE) - 4
    result, _ = result_dec(packet.sBuffer, 0, 0, False)
    endpoint = build(EndpointF, host="10.0.0.7", port=10015, timeout=60000, istcp=1,
                     groupworkid=-1, grouprealid=-1, weight=-1, nodeName="10.0.0.7")
    assert result == QueryResult(ret=0, activeEp=[endpoint], inactiveEp=[])
    out = bytearray()
    result_enc(result, out)
    assert bytes(out) == packet.sBuffer
    frame = bytearray()
    packet_enc(packet, frame)
    assert bytes(frame) == RESPONSE[4:]


@pytest.mark.parametrize("impl", IMPLS)
def test_tarscpp_optional_rules(impl: str) -> None:
    enc, dec = _impl_coders(Optionals, impl)
    out = bytearray()
    enc(build(Optionals), out)
    assert out.hex(" ") == "2c 5a 0c 0b 60 05"
    decoded, _ = dec(b"", 0, 0, False)
    assert decoded == build(Optionals) and decoded.color is Color.GREEN


def test_benchmark_bodies() -> None:
    for value in (query_result(), all_types()):
        result, data = same_encode(value)
        assert result == ("returned", shape(None))
        assert same_decode(type(value), data) == ("returned", shape((value, len(data))))


# ---------------------------------------------------------------- random types and values


@settings(max_examples=400, deadline=None)
@given(struct_and_value())
def test_random_values_encode_and_decode_identically(
        pair: tuple[type[Struct], Struct]) -> None:
    cls, value = pair
    _, data = same_encode(value, prefix=b"\x99")
    same_decode(cls, data[1:])
    # nested: after a prefix, closed by STRUCT_END, at some depth
    same_decode(cls, b"\x01\x02" + data[1:] + b"\x0b\x00", pos=2, depth=3, nested=True)
    outer = make_struct("Outer", [Field(3, "inner", StructType(cls), required=True),
                                  Field(200, "after", INT, required=True)])
    _, wrapped = same_encode(outer(inner=value, after=-7))  # type: ignore[call-arg]
    same_decode(outer, wrapped)


@settings(max_examples=150, deadline=None)
@given(struct_and_value())
def test_every_truncation_fails_identically(pair: tuple[type[Struct], Struct]) -> None:
    cls, value = pair
    data = value.tars_encode()
    for cut in range(len(data)):
        same_decode(cls, data[:cut])
        same_decode(cls, data[:cut], nested=True)


@settings(max_examples=400, deadline=None)
@given(struct_and_value(), st.data())
def test_corrupted_bytes_fail_identically(pair: tuple[type[Struct], Struct],
                                          data: st.DataObject) -> None:
    cls, value = pair
    encoded = bytearray(value.tars_encode())
    if not encoded:
        return
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
    same_decode(cls, bytes(encoded))
    same_decode(cls, bytes(encoded), nested=True)


@settings(max_examples=300, deadline=None)
@given(structs(), st.binary(max_size=300))
def test_random_bytes_for_random_types(cls: type[Struct], data: bytes) -> None:
    same_decode(cls, data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIXED_CLASSES), st.binary(max_size=200), st.integers(0, 70))
def test_random_bytes_for_fixed_types(cls: type[Struct], data: bytes, depth: int) -> None:
    same_decode(cls, data)
    same_decode(cls, data, depth=depth, nested=True)


# a grammar of plausible heads makes random bytes reach deeper than uniform noise
_HEADS = st.tuples(st.integers(0, 15), st.sampled_from([0, 1, 2, 3, 14, 15, 16, 200]))
_CHUNK = st.one_of(
    _HEADS.map(lambda h: bytes([(h[1] << 4) | h[0]]) if h[1] < 15 else bytes([0xF0 | h[0], h[1]])),
    st.binary(min_size=1, max_size=4),
    st.sampled_from([b"\x0c", b"\x00\x05", b"\x0b", b"\x0a", b"\x09\x00\x02", b"\x08\x00\x01",
                     b"\xfb\x10", b"\xfb\x00", b"\xfa\x20", b"\xfc\x00",
                     b"\x0d\x00\x00\x03", b"\x06\x03abc", b"\x07\x00\x00\x00\x02"]),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(structs(), st.sampled_from(FIXED_CLASSES)), st.lists(_CHUNK, max_size=30))
def test_head_grammar_bytes(cls: type[Struct], chunks: list[bytes]) -> None:
    same_decode(cls, b"".join(chunks))


# ---------------------------------------------------------------- encode errors


_WILD = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.integers(), st.integers(-(2**70), 2**70),
    st.floats(),
    st.floats(width=32), st.text(max_size=4), st.binary(max_size=4),
    st.lists(st.integers(-300, 300), max_size=3), st.tuples(st.integers(-3, 3)),
    st.dictionaries(st.integers(-3, 3), st.integers(-3, 3), max_size=2),
    st.sampled_from([*Color, bytearray(b"ab"), memoryview(b"cd"), "\udc80x", "\ud800",
                     float("nan"), float("inf"), -0.0, 3.5e38, 2**63, -(2**63) - 1, {1, 2},
                     build(Old, a=1), object()]),
)


def wild_of(t: TarsType) -> st.SearchStrategy[Any]:
    """Values of ``t``, mixed with values of every wrong kind, also inside containers."""
    inner: st.SearchStrategy[Any]
    if isinstance(t, VectorType):
        inner = st.one_of(st.lists(wild_of(t.elem), max_size=3), st.tuples(wild_of(t.elem)))
    elif isinstance(t, MapType):
        inner = st.dictionaries(st.one_of(value_of(t.key), st.integers(), st.text(max_size=2)),
                                wild_of(t.value), max_size=2)
    elif isinstance(t, StructType):
        inner = st.builds(t.cls, **{f.name: wild_of(f.type) for f in t.cls.__tars_fields__})
    else:
        inner = value_of(t)
    return st.one_of(value_of(t), inner, _WILD)


@settings(max_examples=500, deadline=None)
@given(structs().flatmap(lambda cls: st.tuples(
    st.just(cls), st.builds(cls, **{f.name: wild_of(f.type) for f in cls.__tars_fields__}))))
def test_wild_values_encode_identically(pair: tuple[type[Struct], Struct]) -> None:
    _, value = pair
    same_encode(value, prefix=b"pre")


class WeirdInt(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


class AlwaysDifferent(int):
    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


class TextSub(str):
    pass


def _short_id(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too long for str()
        return "huge"
    return text if len(text) <= 30 else text[:27] + "..."


@pytest.mark.parametrize(("t", "value"), [
    (BYTE, 128), (SHORT, -32769), (INT, 2**31), (LONG, 2**63), (LONG, -(2**63) - 1),
    (UBYTE, 256), (UBYTE, -1), (USHORT, 65536), (UINT, 2**32), (UINT, -(2**70)), (INT, 10**5000),
    (INT, "7"), (INT, 7.0), (INT, 0.0), (INT, None), (INT, True), (INT, Color.BLUE),
    (INT, WeirdInt(5)), (BYTE, WeirdInt(500)), (INT, AlwaysDifferent(0)),
    (EnumType(Color), 2**40), (EnumType(Color), 42), (EnumType(Color), "RED"),
    (BOOL, 0), (BOOL, 2), (BOOL, -1), (BOOL, 0.0), (BOOL, "x"), (BOOL, None), (BOOL, []),
    (FLOAT, "x"), (FLOAT, 1), (FLOAT, 1e39), (FLOAT, 3.4028235677973366e38),
    (FLOAT, 3.4028235e38), (FLOAT, -1e300),
    (FLOAT, float("nan")), (FLOAT, float("-inf")), (DOUBLE, 1), (DOUBLE, float("nan")),
    (STRING, b"x"), (STRING, "\udcff\udc80"), (STRING, "\ud800"), (STRING, TextSub("sub")),
    (STRING, 5), (BYTES, "text"), (BYTES, memoryview(b"ab")), (BYTES, [1, 2]),
    (BYTES, bytearray(b"\x00\x01")), (vector(INT), 5), (vector(INT), [1, 2**40]),
    (vector(INT), (1, 2)), (vector(INT), {1, 2}), (vector(INT), "ab"), (vector(INT), [None]),
    (MapType(INT, STRING), {1: 2}), (MapType(INT, STRING), [(1, "a")]),
    (MapType(STRING, INT), {"a": 2**31}), (StructType(Old), build(Old, a=2**40)),
    (StructType(Old), build(New, a=1)), (StructType(Old), 7),
    (vector(StructType(Old)), [build(Old), 1]),
], ids=_short_id)
def test_encode_errors_and_odd_values(t: TarsType, value: Any) -> None:
    for required in (True, False):
        cls = make_struct("Odd", [Field(0, "first", INT, required=True),
                                  Field(3, "field_x", t, required=required),
                                  Field(4, "last", STRING, required=True)])
        same_encode(cls(first=300, field_x=value, last="z"), prefix=b"ab")  # type: ignore[call-arg]


def test_nested_encode_error_paths() -> None:
    result, _ = same_encode(build(New, a=1, inner=build(Old, a=2**40)))
    assert result[3] == (f"{2**40} is out of range for int", ("inner", "a"))
    deep = make_struct("Deep", [Field(1, "items", vector(StructType(New)), required=True)])
    value = build(deep, items=[build(New, a=1), build(New, a=2, d={"k": "not bytes"})])
    result, _ = same_encode(value)
    assert result[3][1] == ("items", "d")
    same_encode(build(deep, items=[build(New, a=1), build(New, a=2**31)]))


def test_unset_slots_and_foreign_objects() -> None:
    same_encode(object.__new__(EndpointF))
    half = object.__new__(Old)
    half.a = 1
    same_encode(half)
    same_encode(build(New, a=1), cls=Old)  # another class: the pure code reads its attributes
    same_encode(5, cls=Old)


def test_odd_calls_behave_as_the_pure_coders() -> None:
    both: Any = accel.coders(Old)
    data = Old(a=5, c="x").tars_encode()
    for dec in (both.pure_dec, both.accel_dec):
        assert dec(data=data, pos=0, depth=0, nested=False)[0] == Old(a=5, c="x")
    out = bytearray()
    both.accel_enc(obj=build(Old, a=1), out=out)
    assert bytes(out) == build(Old, a=1).tars_encode()
    for args in [(), (build(Old),), (build(Old), bytearray(), 1)]:
        assert outcome(both.accel_enc, *args) == outcome(both.pure_enc, *args)
    assert outcome(both.accel_dec, data) == outcome(both.pure_dec, data)
    pure_list: list[Any] = []
    fast_list: list[Any] = []
    one = build(Old, a=1)
    assert outcome(both.accel_enc, one, fast_list) == outcome(both.pure_enc, one, pure_list)
    assert fast_list == pure_list
    for odd in (bytearray(data), memoryview(data)):  # a bytearray or view is read by pure code
        same_decode(Old, odd)
    for pos, depth, nested in [(1, 0, False), (len(data), 0, True), (len(data) + 3, 0, False),
                               (-1, 0, False), (0, -5, False), (0, 2**70, True), (0, 0, 2)]:
        same_decode(Old, data, pos, depth, nested)  # type: ignore[arg-type]
    same_decode(Old, data, 0, 0, "yes")  # type: ignore[arg-type]


# ---------------------------------------------------------------- bounds


def test_deep_nesting_is_bounded_on_both() -> None:
    skipper = make_struct("Skipper", [Field(5, "x", INT)])
    for deep in (b"\x0a" * 10_000 + b"\x0b" * 10_000, b"\x09\x00\x01" * 10_000,
                 b"\x08\x00\x01\x0a" * 5_000):
        result = same_decode(skipper, deep)
        assert result[0] == "raised" and "nesting deeper" in result[2]
    for depth in (MAX_NESTING_DEPTH - 1, MAX_NESTING_DEPTH):
        shallow = b"\x0a" * depth + b"\x0b" * depth
        same_decode(skipper, shallow)
        same_decode(skipper, shallow, depth=1)


@pytest.mark.parametrize("data", [
    bytes.fromhex("09 02 7f ff ff ff 00 01"),
    bytes.fromhex("09 02 ff ff ff ff"),
    bytes.fromhex("09 00 05 00 01"),
    bytes.fromhex("09 00 01 00 01 18 02 7f ff ff ff"),
    bytes.fromhex("09 00 01 00 01 27 7f ff ff ff 61"),
    bytes.fromhex("09 00 01 00 01 26 05 61"),
    bytes.fromhex("09 00 ff"),                        # negative count (BYTE form)
    bytes.fromhex("09 01 80 00"),                     # negative count (SHORT form)
    bytes.fromhex("09 0c 39 02 7f ff ff ff"),         # an unknown list, huge count
    bytes.fromhex("09 0c 38 02 7f ff ff ff"),         # an unknown map, huge count
    bytes.fromhex("09 0c 3d 00 02 7f ff ff ff"),      # an unknown SimpleList, huge length
    bytes.fromhex("09 0c f7 03 ff ff ff ff"),         # an unknown STRING4 of 4 GiB
])
def test_impossible_lengths_fail_identically_before_allocating(data: bytes) -> None:
    accel_dec = accel.coders(Holder).accel_dec
    tracemalloc.start()
    try:
        with pytest.raises(TarsDecodeError):
            accel_dec(data, 0, 0, False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000
    same_decode(Holder, data)


@pytest.mark.parametrize("data", [
    bytes.fromhex("0a fb"),          # a skipped struct ends in a cut 2-byte STRUCT_END head
    bytes.fromhex("0b ff ff"),       # STRUCT_END at top level: trailing bytes are ignored
    bytes.fromhex("f0"), bytes.fromhex("fc"), bytes.fromhex("0c f5"),
    bytes.fromhex("0c 1d 01"), bytes.fromhex("0c 1d 00 f0"), bytes.fromhex("0c 1d 00 f2 00 ff"),
    bytes.fromhex("0c 1d 00 00 fe"), bytes.fromhex("0c 1d 00 01 80 00"),
    bytes.fromhex("0c 19 00 02 00 01 f1 00"), bytes.fromhex("0c 19 00 01 10 05"),
    bytes.fromhex("0c 18 00 01 00 01 0c"), bytes.fromhex("0c 18 00 01 1c 1c"),
    bytes.fromhex("0c 26 02 c3"), bytes.fromhex("0c 2e"), bytes.fromhex("0c 2f"),
    bytes.fromhex("0c fb 07 01"), bytes.fromhex("fb"), bytes.fromhex("0a 0c fb 00 0b"),
    bytes.fromhex("f7 05 06 40 00 01"), bytes.fromhex("f7 05 06 40 00 00"),  # MAX_STRING_LENGTH
    bytes.fromhex("0c 1d 00 02 00 ff"), bytes.fromhex("0c 39 00 02 0c fc 07"),
    bytes.fromhex("4a 0a 0a f0 09 0b 0b 0b"), bytes.fromhex("48 00 01 0c 1a 0b"),
])
def test_edge_inputs(data: bytes) -> None:
    edge = make_struct("Edge", [Field(0, "a", INT), Field(1, "b", vector(BYTE)),
                                Field(2, "c", STRING), Field(3, "m", MapType(INT, INT))])
    same_decode(edge, data)
    same_decode(edge, data, nested=True)
    same_decode(make_struct("Late", [Field(9, "z", INT)]), data)


def test_map_with_unhashable_keys_is_refused_at_declaration() -> None:
    # such keys could never be decoded into a dict, by either implementation
    with pytest.raises(ValueError, match="map keys of type vector<int> are not supported"):
        make_struct("Maps", [Field(0, "m", MapType(vector(INT), INT), required=True)])


# ---------------------------------------------------------------- leaks


def _exercise(n: int) -> None:
    both = accel.coders(AllTypes)
    good = all_types().tars_encode()
    for i in range(n):
        out = bytearray()
        both.accel_enc(all_types(), out)
        both.accel_dec(good, 0, 0, False)
        for bad in (good[: i % len(good)], good[:40] + b"\xff" + good[41:]):
            with contextlib.suppress(TarsDecodeError):
                both.accel_dec(bad, 0, 0, False)
        broken = all_types()
        broken.inners[1].id = 2**40 if i % 2 else "x"  # type: ignore[assignment]
        with contextlib.suppress(TarsEncodeError):
            both.accel_enc(broken, bytearray())


def test_no_memory_or_reference_leaks() -> None:
    sentinel = "".join(["unique-", "default"])  # a fresh, uninterned object
    holder = make_struct("Sentinel", [Field(0, "s", STRING, default=sentinel),
                                      Field(1, "c", EnumType(Color)), Field(2, "x", INT)])
    both = accel.coders(holder)
    refs = sys.getrefcount(sentinel), sys.getrefcount(Color.RED)
    for data in (b"", b"\x0c", b"\x22\x00", b"\x20\x05\x2c"):
        for _ in range(1000):
            with contextlib.suppress(TarsDecodeError):
                both.accel_dec(data, 0, 0, False)
            both.accel_enc(holder(), bytearray())
    assert (sys.getrefcount(sentinel), sys.getrefcount(Color.RED)) == refs
    _exercise(200)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _exercise(2000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 50_000


class Small(IntEnum):
    A = 1


def test_enum_members_and_unknown_values() -> None:
    holder = make_struct("Enums", [Field(0, "c", EnumType(Small), required=True),
                                   Field(1, "v", vector(EnumType(Small)), required=True)])
    result = same_decode(holder, bytes.fromhex("00 01 19 00 02 00 01 00 07"))
    assert result[0] == "returned"
    decoded, _ = accel.coders(holder).accel_dec(bytes.fromhex("00 01 19 00 02 00 01 00 07"),
                                                0, 0, False)
    assert decoded.c is Small.A and decoded.v == [Small.A, 7] and type(decoded.v[1]) is int


def test_fresh_defaults_are_not_shared() -> None:
    dec = accel.coders(Optionals).accel_dec
    first, _ = dec(b"", 0, 0, False)
    second, _ = dec(b"", 0, 0, False)
    assert first.v is not second.v and first.m is not second.m
    assert first.inner is not second.inner and first.inner == build(Old)
