"""Generates the encoder and decoder of a struct type as Python source, compiled once.

The generated functions inline every field: heads are constants, integer narrowing is a chain
of comparisons, containers are plain loops. Nothing is interpreted per field per call.

Encoder: ``enc(obj, out: bytearray) -> None`` appends the bare field sequence.
Decoder: ``dec(data: bytes, pos: int, depth: int, nested: bool) -> (obj, pos)`` reads fields
until a STRUCT_END head (consumed) or, when not nested, the end of the input.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from ..errors import TarsDecodeError, TarsEncodeError
from .reading import fail_mismatch, fail_truncated, read_count, skip_value
from .types import (
    BOOL,
    BYTE,
    BYTES,
    DOUBLE,
    FLOAT,
    INT,
    INTEGER_TYPES,
    STRING,
    Builtin,
    EnumType,
    MapType,
    StructType,
    TarsType,
    VectorType,
)
from .wire import MAX_STRING_LENGTH, WireType, head_bytes

if TYPE_CHECKING:
    from .struct import Field, Struct

__all__ = ["compile_struct"]

Encoder = Callable[[Any, bytearray], None]
Decoder = Callable[[bytes, int, int, bool], tuple[Any, int]]

_W = WireType
_INT_STEPS = ((1, _W.BYTE, "b"), (2, _W.SHORT, "h"), (4, _W.INT, "i"), (8, _W.LONG, "q"))
_INT_LIMITS = {1: (-(2**7), 2**7 - 1), 2: (-(2**15), 2**15 - 1), 4: (-(2**31), 2**31 - 1)}


def _range_error(value: object, type_name: str) -> TarsEncodeError:
    return TarsEncodeError(f"{value!r} is out of range for {type_name}")


def _describe(exc: BaseException) -> str:
    return f"cannot encode: {exc}" if str(exc) else f"cannot encode: {type(exc).__name__}"


class _Namespace:
    """Globals of the generated code: packers, unpackers and nested coders, deduplicated."""

    def __init__(self) -> None:
        self.globals: dict[str, Any] = {
            "TarsDecodeError": TarsDecodeError,
            "TarsEncodeError": TarsEncodeError,
            "StructError": struct.error,
            "fail_mismatch": fail_mismatch,
            "fail_truncated": fail_truncated,
            "read_count": read_count,
            "skip_value": skip_value,
            "range_error": _range_error,
            "describe": _describe,
            "MAX_STRING_LENGTH": MAX_STRING_LENGTH,
        }
        self._ids: dict[int, str] = {}

    def packer(self, fmt: str) -> str:
        name = f"P_{fmt}"
        if name not in self.globals:
            self.globals[name] = struct.Struct(">" + fmt).pack
        return name

    def unpacker(self, fmt: str) -> str:
        name = f"U_{fmt}"
        if name not in self.globals:
            self.globals[name] = struct.Struct(">" + fmt).unpack_from
        return name

    def ref(self, prefix: str, obj: object) -> str:
        key = id(obj)
        if key not in self._ids:
            name = f"{prefix}{len(self._ids)}"
            self._ids[key] = name
            self.globals[name] = obj
        return self._ids[key]


class _Source:
    """Lines of generated code with indentation and fresh local names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.indent = 0
        self._counter = 0

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def fresh(self, stem: str) -> str:
        self._counter += 1
        return f"{stem}{self._counter}"

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _head_call(ns: _Namespace, wire: int, tag: int, fmt: str, value: str) -> str:
    """Expression packing a head and a value in one call."""
    if tag < 15:
        return f"{ns.packer('B' + fmt)}({(tag << 4) | wire}, {value})"
    return f"{ns.packer('BB' + fmt)}({0xF0 | wire}, {tag}, {value})"


# ---------------------------------------------------------------- encoding


def _emit_int_write(src: _Source, ns: _Namespace, t: Builtin, tag: int, v: str) -> None:
    if t.lo == 0 and t.hi > 0:  # unsigned: check the declared range, then narrow as signed
        src.line(f"if not 0 <= {v} <= {t.hi}: raise range_error({v}, {t.name!r})")
    src.line(f"if {v} == 0:")
    src.line(f"    out += {head_bytes(_W.ZERO_TAG, tag)!r}")
    for width, wire, fmt in _INT_STEPS:
        if width > t.width:
            break
        call = _head_call(ns, wire, tag, fmt, v)
        if width == 8:
            src.line(f"else: out += {call}")
        else:
            lo, hi = _INT_LIMITS[width]
            src.line(f"elif {lo} <= {v} <= {hi}: out += {call}")
    if t.width < 8:
        src.line(f"else: raise range_error({v}, {t.name!r})")


def _emit_write(src: _Source, ns: _Namespace, t: TarsType, tag: int, v: str) -> None:
    """Emit code that writes the value held in local ``v`` at ``tag``."""
    if isinstance(t, EnumType):
        _emit_int_write(src, ns, INT, tag, v)
    elif isinstance(t, Builtin):
        _emit_builtin_write(src, ns, t, tag, v)
    elif isinstance(t, VectorType):
        n, e = src.fresh("n"), src.fresh("e")
        src.line(f"out += {head_bytes(_W.LIST, tag)!r}")
        src.line(f"{n} = len({v})")
        _emit_int_write(src, ns, INT, 0, n)
        src.line(f"for {e} in {v}:")
        src.indent += 1
        _emit_write(src, ns, t.elem, 0, e)
        src.indent -= 1
    elif isinstance(t, MapType):
        n, k, x = src.fresh("n"), src.fresh("k"), src.fresh("x")
        src.line(f"out += {head_bytes(_W.MAP, tag)!r}")
        src.line(f"{n} = len({v})")
        _emit_int_write(src, ns, INT, 0, n)
        src.line(f"for {k}, {x} in {v}.items():")
        src.indent += 1
        _emit_write(src, ns, t.key, 0, k)
        _emit_write(src, ns, t.value, 1, x)
        src.indent -= 1
    else:
        enc = ns.ref("E", t.cls.__tars_enc__)
        src.line(f"out += {head_bytes(_W.STRUCT_BEGIN, tag)!r}")
        src.line(f"{enc}({v}, out)")
        src.line("out += b'\\x0b'")


def _emit_builtin_write(src: _Source, ns: _Namespace, t: Builtin, tag: int, v: str) -> None:
    if t == BOOL:
        true, false = head_bytes(_W.BYTE, tag) + b"\x01", head_bytes(_W.ZERO_TAG, tag)
        src.line(f"out += {true!r} if {v} else {false!r}")
    elif t in INTEGER_TYPES:
        _emit_int_write(src, ns, t, tag, v)
    elif t == FLOAT:
        src.line(f"out += {_head_call(ns, _W.FLOAT, tag, 'f', v)}")
    elif t == DOUBLE:
        src.line(f"out += {_head_call(ns, _W.DOUBLE, tag, 'd', v)}")
    elif t == STRING:
        b, n = src.fresh("b"), src.fresh("n")
        src.line(f"{b} = {v}.encode('utf-8', 'surrogateescape')")
        src.line(f"{n} = len({b})")
        src.line(f"if {n} <= 255: out += {_head_call(ns, _W.STRING1, tag, 'B', n)}")
        src.line(f"elif {n} <= MAX_STRING_LENGTH: out += {_head_call(ns, _W.STRING4, tag, 'I', n)}")
        src.line(f"else: raise TarsEncodeError(f'string of {{{n}}} bytes exceeds the maximum')")
        src.line(f"out += {b}")
    elif t == BYTES:
        n = src.fresh("n")
        simple_list_head = head_bytes(_W.SIMPLE_LIST, tag) + b"\x00"
        src.line(f"out += {simple_list_head!r}")
        src.line(f"{n} = len({v})")
        _emit_int_write(src, ns, INT, 0, n)
        src.line(f"out += {v}")
    else:  # pragma: no cover - the set of builtins is closed
        raise AssertionError(t)


def _skip_condition(f: Field, v: str) -> str | None:
    """TarsCpp's rule for optional fields: the condition under which the field is written."""
    t = f.type
    if f.required or t == BOOL or isinstance(t, (StructType, EnumType)):
        return None
    if isinstance(t, (VectorType, MapType)) or t == BYTES:
        return v
    return f"{v} != {f.default!r}"


def _build_encoder(fields: tuple[Field, ...], ns: _Namespace) -> str:
    """The encoder; ``f`` names the field being written, for the path of an encode error."""
    src = _Source()
    src.line("def enc(obj, out):")
    src.indent += 1
    src.line("try:")
    src.indent += 1
    for f in fields:
        src.line(f"f = {f.name!r}")
        src.line(f"v = obj.{f.name}")
        cond = _skip_condition(f, "v")
        if cond is not None:
            src.line(f"if {cond}:")
            src.indent += 1
        _emit_write(src, ns, f.type, f.tag, "v")
        if cond is not None:
            src.indent -= 1
    if not fields:
        src.line("pass")
    src.indent -= 1
    # every statement that can raise comes after the first ``f = ...``
    src.line("except TarsEncodeError as exc:")
    src.line("    exc.path.insert(0, f)")
    src.line("    raise")
    src.line("except (TypeError, ValueError, AttributeError, OverflowError, StructError) as exc:")
    src.line("    raise TarsEncodeError(describe(exc), [f]) from None")
    return src.text()


# ---------------------------------------------------------------- decoding


def _emit_head(src: _Source) -> None:
    """Read a head into locals ``typ`` and ``tg``."""
    src.line("b = data[pos]")
    src.line("typ = b & 15")
    src.line("if b >= 240:")
    src.line("    tg = data[pos + 1]")
    src.line("    pos += 2")
    src.line("else:")
    src.line("    tg = b >> 4")
    src.line("    pos += 1")


def _mismatch(expected: str) -> str:
    return f"fail_mismatch(ftag, {expected!r}, typ, pos, NAME)"


def _emit_int_read(src: _Source, ns: _Namespace, t: Builtin, x: str) -> None:
    src.line(f"if typ == 12: {x} = 0")
    src.line("elif typ == 0:")
    src.line(f"    {x} = data[pos]")
    src.line("    pos += 1")
    src.line(f"    if {x} > 127: {x} -= 256")
    for width, wire, fmt in _INT_STEPS[1:]:
        if width > t.width:
            break
        src.line(f"elif typ == {int(wire)}:")
        src.line(f"    {x} = {ns.unpacker(fmt)}(data, pos)[0]")
        src.line(f"    pos += {width}")
    src.line(f"else: {_mismatch(t.name)}")
    if t.lo == 0 and t.hi > 0:
        src.line(f"{x} &= {t.hi}")


def _emit_count(src: _Source, n: str, per_item: int = 1) -> None:
    src.line(f"{n}, pos = read_count(data, pos)")
    bound = "end - pos" if per_item == 1 else f"(end - pos) // {per_item}"
    src.line(f"if {n} > {bound} or {n} < 0:")
    src.line(f"    fail_truncated(f'count {{{n}}} exceeds the input', ftag, pos, NAME)")


def _emit_read(src: _Source, ns: _Namespace, t: TarsType, x: str) -> None:
    """Emit code reading a value whose head is in ``typ`` into local ``x``."""
    if isinstance(t, EnumType):
        _emit_int_read(src, ns, INT, x)
        members = ns.ref("M", t.cls._value2member_map_)
        src.line(f"{x} = {members}.get({x}, {x})")
    elif isinstance(t, Builtin):
        _emit_builtin_read(src, ns, t, x)
    elif isinstance(t, VectorType):
        n, ap = src.fresh("n"), src.fresh("ap")
        src.line(f"if typ != 9: {_mismatch(repr(t))}")
        _emit_count(src, n)
        src.line(f"{x} = []")
        src.line(f"{ap} = {x}.append")
        src.line(f"for _ in range({n}):")
        src.indent += 1
        _emit_head(src)
        src.line(f"if tg != 0: {_mismatch('element with tag 0')}")
        e = src.fresh("e")
        _emit_read(src, ns, t.elem, e)
        src.line(f"{ap}({e})")
        src.indent -= 1
    elif isinstance(t, MapType):
        n, k, val = src.fresh("n"), src.fresh("k"), src.fresh("v")
        src.line(f"if typ != 8: {_mismatch(repr(t))}")
        _emit_count(src, n, 2)
        src.line(f"{x} = {{}}")
        src.line(f"for _ in range({n}):")
        src.indent += 1
        _emit_head(src)
        src.line(f"if tg != 0: {_mismatch('map key with tag 0')}")
        _emit_read(src, ns, t.key, k)
        _emit_head(src)
        src.line(f"if tg != 1: {_mismatch('map value with tag 1')}")
        _emit_read(src, ns, t.value, val)
        src.line(f"{x}[{k}] = {val}")
        src.indent -= 1
    else:
        dec = ns.ref("D", t.cls.__tars_dec__)
        src.line(f"if typ != 10: {_mismatch(repr(t))}")
        src.line(f"{x}, pos = {dec}(data, pos, depth + 1, True)")


def _emit_builtin_read(src: _Source, ns: _Namespace, t: Builtin, x: str) -> None:
    if t == BOOL:
        src.line(f"if typ == 12: {x} = False")
        src.line("elif typ == 0:")
        src.line(f"    {x} = data[pos] != 0")
        src.line("    pos += 1")
        src.line(f"else: {_mismatch('bool')}")
    elif t in INTEGER_TYPES:
        _emit_int_read(src, ns, t, x)
    elif t in (FLOAT, DOUBLE):
        src.line(f"if typ == 12: {x} = 0.0")
        src.line("elif typ == 4:")
        src.line(f"    {x} = {ns.unpacker('f')}(data, pos)[0]")
        src.line("    pos += 4")
        if t == DOUBLE:
            src.line("elif typ == 5:")
            src.line(f"    {x} = {ns.unpacker('d')}(data, pos)[0]")
            src.line("    pos += 8")
        src.line(f"else: {_mismatch(t.name)}")
    elif t == STRING:
        n = src.fresh("n")
        src.line("if typ == 6:")
        src.line(f"    {n} = data[pos]")
        src.line("    pos += 1")
        src.line("elif typ == 7:")
        src.line(f"    {n} = {ns.unpacker('I')}(data, pos)[0]")
        src.line("    pos += 4")
        src.line(f"else: {_mismatch('string')}")
        src.line(f"if {n} > end - pos:")
        src.line(f"    fail_truncated(f'string of {{{n}}} bytes', ftag, pos, NAME)")
        src.line(f"{x} = str(data[pos:pos + {n}], 'utf-8', 'surrogateescape')")
        src.line(f"pos += {n}")
    elif t == BYTES:
        n = src.fresh("n")
        src.line("if typ == 13:")
        src.line("    if data[pos] != 0: fail_mismatch(ftag, 'BYTE head in SimpleList', "
                 "data[pos] & 15, pos, NAME)")
        src.line("    pos += 1")
        src.indent += 1
        _emit_count(src, n)
        src.indent -= 1
        src.line(f"    {x} = data[pos:pos + {n}]")
        src.line(f"    pos += {n}")
        src.line("elif typ == 9:")  # a LIST of BYTE is accepted for vector<byte>
        src.indent += 1
        _emit_count(src, n)
        src.line(f"{x} = bytearray()")
        src.line(f"for _ in range({n}):")
        src.indent += 1
        _emit_head(src)
        e = src.fresh("e")
        _emit_int_read(src, ns, BYTE, e)
        src.line(f"{x}.append({e} & 255)")
        src.indent -= 1
        src.line(f"{x} = bytes({x})")
        src.indent -= 1
        src.line(f"else: {_mismatch('vector<byte>')}")
    else:  # pragma: no cover
        raise AssertionError(t)


def _fresh_default(f: Field, ns: _Namespace) -> str | None:
    """Expression building a fresh mutable default, or None when the default is immutable."""
    t = f.type
    if isinstance(t, VectorType):
        return "[]"
    if isinstance(t, MapType):
        return "{}"
    if isinstance(t, StructType):
        return f"{ns.ref('C', t.cls)}()"
    return None


def _emit_peek(src: _Source) -> None:
    """Look at the next head without consuming it: ``tg`` (256 = STRUCT_END, 257 = end of
    input), ``typ`` and the head length ``hl``."""
    src.line("if pos < end:")
    src.line("    b = data[pos]")
    src.line("    typ = b & 15")
    src.line("    if b >= 240:")
    src.line("        tg = data[pos + 1]")
    src.line("        hl = 2")
    src.line("    else:")
    src.line("        tg = b >> 4")
    src.line("        hl = 1")
    src.line("    if typ == 11: tg = 256")
    src.line("else: tg = 257")


def _emit_skip_below(src: _Source, tag: int) -> None:
    src.line(f"while tg < {tag}:")
    src.indent += 1
    src.line("pos = skip_value(data, pos + hl, typ, depth)")
    _emit_peek(src)
    src.indent -= 1


def _build_decoder(cls: type[Struct], fields: tuple[Field, ...], ns: _Namespace) -> str:
    """Forward-only decoding as TarsCpp does: fields are looked for in ascending tag order,
    lower unknown tags are skipped, a higher tag means the field is absent."""
    src = _Source()
    src.line("def dec(data, pos, depth, nested):")
    src.indent += 1
    src.line("end = len(data)")
    src.line("ftag = -1")
    src.line("try:")
    src.indent += 1
    _emit_peek(src)
    for i, f in enumerate(fields):
        src.line(f"ftag = {f.tag}")
        _emit_skip_below(src, f.tag)
        src.line(f"if tg == {f.tag}:")
        src.indent += 1
        src.line("pos += hl")
        _emit_read(src, ns, f.type, f"f{i}")
        _emit_peek(src)
        src.indent -= 1
        if f.required:
            src.line("else: raise TarsDecodeError('required field missing', "
                     f"tag={f.tag}, offset=pos, struct=NAME)")
        else:
            fresh = _fresh_default(f, ns)
            src.line(f"else: f{i} = {fresh or ns.ref('V', f.default)}")
    src.line("ftag = -1")
    _emit_skip_below(src, 256)
    src.line("if tg == 256: pos += hl")
    src.line("elif nested: fail_truncated('struct without STRUCT_END', None, pos, NAME)")
    src.indent -= 1
    src.line("except (IndexError, StructError):")
    src.line("    fail_truncated('value cut short', ftag, pos, NAME)")
    src.line("o = new(C)")
    for i, f in enumerate(fields):
        src.line(f"o.{f.name} = f{i}")
    src.line("return o, pos")
    return src.text()


# ---------------------------------------------------------------- class methods


def _build_init(fields: tuple[Field, ...], ns: _Namespace) -> str:
    src = _Source()
    params = []
    for _i, f in enumerate(fields):
        params.append(f"{f.name}=MISSING" if _fresh_default(f, ns) else
                      f"{f.name}={ns.ref('V', f.default)}")
    star = "*, " if params else ""
    src.line(f"def __init__(self, {star}{', '.join(params)}):")
    src.indent += 1
    for f in fields:
        fresh = _fresh_default(f, ns)
        if fresh:
            src.line(f"self.{f.name} = {fresh} if {f.name} is MISSING else {f.name}")
        else:
            src.line(f"self.{f.name} = {f.name}")
    if not fields:
        src.line("pass")
    return src.text()


def _build_eq_repr(cls: type[Struct], fields: tuple[Field, ...]) -> str:
    src = _Source()
    names = [f.name for f in fields]
    mine = "".join(f"self.{n}, " for n in names)
    theirs = "".join(f"other.{n}, " for n in names)
    src.line("def __eq__(self, other):")
    src.line("    if other.__class__ is not self.__class__: return NotImplemented")
    src.line(f"    return ({mine}) == ({theirs})")
    parts = ", ".join(f"{n}={{self.{n}!r}}" for n in names)
    src.line("def __repr__(self):")
    src.line(f"    return f'{cls.__name__}({parts})'")
    return src.text()


def compile_struct(cls: type[Struct], missing: object) -> dict[str, Any]:
    """Compile ``cls``'s codec and dunder methods; return them by attribute name."""
    fields = cls.__tars_fields__
    ns = _Namespace()
    ns.globals.update(NAME=cls.__tars_name__, C=cls, new=object.__new__, MISSING=missing)
    source = "\n".join((
        _build_encoder(fields, ns),
        _build_decoder(cls, fields, ns),
        _build_init(fields, ns),
        _build_eq_repr(cls, fields),
    ))
    code = compile(source, f"<tars codec {cls.__tars_name__}>", "exec")
    exec(code, ns.globals)
    result = {name: ns.globals[name] for name in ("enc", "dec", "__init__", "__eq__", "__repr__")}
    result["__tars_source__"] = source
    return result


def enum_default(cls: type[IntEnum]) -> IntEnum:
    """Default value of an enum field without an explicit default: its first member."""
    return next(iter(cls))
