"""Builder: turns a resolved IDL into Python types at run time.

Structs become :class:`~k8stars.tars.codec.Struct` classes with compiled coders, enums become
:class:`~enum.IntEnum` classes, and each interface operation gets an ``args`` struct (its in
parameters at their tags) and a ``result`` struct (the return value at tag 0, named
``tars_ret``, and the out parameters at their tags): what a server and a client need.
"""

from __future__ import annotations

import keyword
import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from types import SimpleNamespace
from typing import Any

from .. import codec
from ..codec.struct import RESERVED_NAMES
from .errors import IdlResolveError
from .resolver import (
    FRAMEWORK_DIR,
    BuiltinType,
    EnumRef,
    EnumValue,
    MapType,
    ResolvedIdl,
    ResolvedInterface,
    ResolvedStruct,
    StructRef,
    TarsType,
    VectorType,
    load_idl,
    load_idl_source,
)

__all__ = [
    "RETURN_FIELD",
    "Interface",
    "Method",
    "Param",
    "TarsIdl",
    "build",
    "framework",
    "load",
    "load_source",
]

#: Name of the return value in result structs (the name TUP and JSON bodies use too).
RETURN_FIELD = "tars_ret"

_BUILTINS: dict[str, codec.TarsType] = {
    "bool": codec.BOOL,
    "byte": codec.BYTE,
    "short": codec.SHORT,
    "int": codec.INT,
    "long": codec.LONG,
    "unsigned byte": codec.UBYTE,
    "unsigned short": codec.USHORT,
    "unsigned int": codec.UINT,
    "float": codec.FLOAT,
    "double": codec.DOUBLE,
    "string": codec.STRING,
}


def python_name(name: str) -> str:
    """The attribute name for an IDL name: Python keywords and reserved names get a ``_``."""
    return f"{name}_" if keyword.iskeyword(name) or name in RESERVED_NAMES else name


@dataclass(frozen=True, slots=True)
class Param:
    """One operation parameter: IDL name, attribute name, type, tag and direction."""

    name: str
    attr: str
    type: codec.TarsType
    tag: int
    is_out: bool


@dataclass(frozen=True, slots=True)
class Method:
    """One interface operation, with the structs that carry its arguments and results."""

    name: str
    params: tuple[Param, ...]
    return_type: codec.TarsType | None
    args: type[codec.Struct]
    result: type[codec.Struct]

    @property
    def in_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if not p.is_out)

    @property
    def out_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.is_out)


@dataclass(frozen=True, slots=True)
class Interface:
    """An IDL interface: its qualified name and methods by name."""

    qualified_name: str
    name: str
    methods: dict[str, Method]


class TarsIdl:
    """Python types built from an IDL, by qualified name and as ``idl.Module.Name``."""

    def __init__(self, resolved: ResolvedIdl) -> None:
        self.resolved = resolved
        self.enums: dict[str, type[IntEnum]] = {}
        self.structs: dict[str, type[codec.Struct]] = {}
        self.consts: dict[str, Any] = {}
        self.interfaces: dict[str, Interface] = {}
        self._modules: dict[str, SimpleNamespace] = {}

    def __getattr__(self, module: str) -> SimpleNamespace:
        try:
            return self.__dict__["_modules"][module]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(f"the IDL defines no module {module!r}") from None

    def _publish(self, qualified_name: str, value: Any) -> None:
        module, _, name = qualified_name.rpartition(".")
        setattr(self._modules.setdefault(module, SimpleNamespace()), name, value)

    def struct(self, qualified_name: str) -> type[codec.Struct]:
        """The struct class ``Module.Name``; raises KeyError naming the known ones."""
        return _lookup(self.structs, qualified_name, "struct")  # type: ignore[no-any-return]

    def enum(self, qualified_name: str) -> type[IntEnum]:
        """The enum class ``Module.Name``."""
        return _lookup(self.enums, qualified_name, "enum")  # type: ignore[no-any-return]

    def interface(self, qualified_name: str) -> Interface:
        """The interface ``Module.Name``."""
        return _lookup(self.interfaces, qualified_name, "interface")  # type: ignore[no-any-return]


def _lookup(table: dict[str, Any], name: str, kind: str) -> Any:
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table)) or "none"
        raise KeyError(f"no {kind} {name!r} in the IDL (known: {known})") from None


class _Builder:
    def __init__(self, resolved: ResolvedIdl) -> None:
        self.idl = TarsIdl(resolved)

    def codec_type(self, t: TarsType, where: str) -> codec.TarsType:
        if isinstance(t, BuiltinType):
            return _BUILTINS[t.name]
        if isinstance(t, VectorType):
            return codec.vector(self.codec_type(t.elem, where))
        if isinstance(t, MapType):
            return codec.MapType(self.codec_type(t.key, where), self.codec_type(t.value, where))
        if isinstance(t, EnumRef):
            return codec.EnumType(self.idl.enums[t.qualified_name])
        assert isinstance(t, StructRef)
        cls = self.idl.structs.get(t.qualified_name)
        if cls is None:
            raise IdlResolveError.at(
                self.idl.resolved.struct(t.qualified_name).loc,
                f"{where}: recursive struct {t.qualified_name} is not supported",
            )
        return codec.StructType(cls)

    def default(self, t: codec.TarsType, value: Any) -> Any:
        if value is None:
            return codec.MISSING
        if isinstance(value, EnumValue):
            return value.value
        if isinstance(t, codec.Builtin) and t in (codec.FLOAT, codec.DOUBLE):
            return float(value)
        return value

    def struct(self, s: ResolvedStruct) -> type[codec.Struct]:
        fields = []
        for f in s.fields:
            t = self.codec_type(f.type, f"{s.qualified_name}.{f.name}")
            fields.append(codec.Field(f.tag, python_name(f.name), t, f.required,
                                      self.default(t, f.default)))
        try:
            return codec.make_struct(s.qualified_name, fields)
        except (TypeError, ValueError) as exc:
            raise IdlResolveError.at(s.loc, str(exc)) from None

    def interface(self, i: ResolvedInterface) -> Interface:
        methods = {}
        for op in i.operations:
            where = f"{i.qualified_name}.{op.name}"
            params = tuple(Param(p.name, python_name(p.name), self.codec_type(p.type, where), p.tag,
                                 p.is_out) for p in op.params)
            ret = None if op.return_type is None else self.codec_type(op.return_type, where)
            args = codec.make_struct(f"{where}_args", [
                codec.Field(p.tag, p.attr, p.type, required=True) for p in params if not p.is_out
            ])
            outs = [codec.Field(p.tag, p.attr, p.type, required=True) for p in params if p.is_out]
            if ret is not None:
                outs.insert(0, codec.Field(0, RETURN_FIELD, ret, required=True))
            result = codec.make_struct(f"{where}_result", outs)
            methods[op.name] = Method(op.name, params, ret, args, result)
        return Interface(i.qualified_name, i.name, methods)

    def build(self) -> TarsIdl:
        idl, resolved = self.idl, self.idl.resolved
        for e in resolved.enums:
            enum_cls: type[IntEnum] = IntEnum(e.name, list(e.members))  # type: ignore[misc]
            idl.enums[e.qualified_name] = enum_cls
            idl._publish(e.qualified_name, idl.enums[e.qualified_name])
        for c in resolved.consts:
            value = c.value.value if isinstance(c.value, EnumValue) else c.value
            idl.consts[c.qualified_name] = value
            idl._publish(c.qualified_name, value)
        for s in resolved.structs:
            idl.structs[s.qualified_name] = self.struct(s)
            idl._publish(s.qualified_name, idl.structs[s.qualified_name])
        for i in resolved.interfaces:
            idl.interfaces[i.qualified_name] = self.interface(i)
            idl._publish(i.qualified_name, idl.interfaces[i.qualified_name])
        return idl


def build(resolved: ResolvedIdl) -> TarsIdl:
    """Build the Python types of an already resolved IDL."""
    return _Builder(resolved).build()


def load(path: str | os.PathLike[str], include_dirs: Sequence[str | os.PathLike[str]] = ()
         ) -> TarsIdl:
    """Parse, resolve and build a ``.tars`` file and its includes."""
    return build(load_idl(path, include_dirs))


def load_source(text: str, path: str = "<string>",
                include_dirs: Sequence[str | os.PathLike[str]] = ()) -> TarsIdl:
    """Like :func:`load` for IDL text held in memory."""
    return build(load_idl_source(text, path, include_dirs))


@cache
def framework() -> TarsIdl:
    """All bundled framework IDL files (EndpointF, QueryF, AdminF, NotifyF, ConfigF, NodeF and
    the K8STARS tarsregistry), built together so that they share one ``tars.EndpointF``."""
    includes = "".join(f'#include "{p.name}"\n' for p in sorted(FRAMEWORK_DIR.glob("*.tars")))
    return load_source(includes, "<framework>", [FRAMEWORK_DIR])
