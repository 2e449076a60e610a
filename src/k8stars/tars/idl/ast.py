"""Syntax tree of a ``.tars`` file: frozen dataclasses produced by the parser.

Names are kept as written (unresolved); the resolver turns them into definitions. Every node
carries a :class:`Location` (excluded from equality) for error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Location

__all__ = [
    "BUILTIN_TYPE_NAMES",
    "NOWHERE",
    "BoolLiteral",
    "BuiltinTypeNode",
    "ConstDef",
    "Definition",
    "Document",
    "EnumDef",
    "EnumMember",
    "FieldDef",
    "FloatLiteral",
    "Include",
    "IntLiteral",
    "InterfaceDef",
    "KeyDef",
    "Literal",
    "Location",
    "MapTypeNode",
    "Module",
    "NameLiteral",
    "NamedTypeNode",
    "Operation",
    "Param",
    "StringLiteral",
    "StructDef",
    "TypeNode",
    "VectorTypeNode",
]

NOWHERE = Location("<unknown>", 0, 0)

#: Builtin type names as they appear in the IDL (``unsigned X`` with one space).
BUILTIN_TYPE_NAMES: frozenset[str] = frozenset(
    {
        "bool",
        "byte",
        "short",
        "int",
        "long",
        "float",
        "double",
        "string",
        "unsigned byte",
        "unsigned short",
        "unsigned int",
    }
)


# ---------------------------------------------------------------------------------------- types


@dataclass(frozen=True, slots=True)
class BuiltinTypeNode:
    """A builtin type such as ``int`` or ``unsigned short``."""

    name: str
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VectorTypeNode:
    """``vector<elem>``."""

    elem: TypeNode
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class MapTypeNode:
    """``map<key, value>``."""

    key: TypeNode
    value: TypeNode
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class NamedTypeNode:
    """A reference to a struct or enum: ``Name`` or ``Module::Name`` (``module`` set)."""

    name: str
    module: str | None = None
    loc: Location = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        return self.name if self.module is None else f"{self.module}::{self.name}"


TypeNode = BuiltinTypeNode | VectorTypeNode | MapTypeNode | NamedTypeNode

# ------------------------------------------------------------------------------------- literals


@dataclass(frozen=True, slots=True)
class IntLiteral:
    """An integer literal (decimal or hex, possibly negative)."""

    value: int
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class FloatLiteral:
    """A floating point literal."""

    value: float
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StringLiteral:
    """A string literal, escapes already decoded."""

    value: str
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BoolLiteral:
    """``true`` or ``false``."""

    value: bool
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class NameLiteral:
    """A (possibly ``::``-qualified) name used as a value, e.g. an enum member."""

    parts: tuple[str, ...]
    loc: Location = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        return "::".join(self.parts)


Literal = IntLiteral | FloatLiteral | StringLiteral | BoolLiteral | NameLiteral

# ---------------------------------------------------------------------------------- definitions


@dataclass(frozen=True, slots=True)
class FieldDef:
    """``tag require|optional type name [= default];``."""

    tag: int
    required: bool
    type: TypeNode
    name: str
    default: Literal | None = None
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StructDef:
    """``struct Name { fields };``; ``keys`` is filled from a ``key[Name, ...]`` of the module."""

    name: str
    fields: tuple[FieldDef, ...]
    keys: tuple[str, ...] = ()
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class EnumMember:
    """One enumerator; ``value`` is ``None`` for an implicit value."""

    name: str
    value: Literal | None = None
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class EnumDef:
    """``enum Name { A, B = 5, C = A };``."""

    name: str
    members: tuple[EnumMember, ...]
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ConstDef:
    """``const type name = value;``."""

    type: TypeNode
    name: str
    value: Literal
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class KeyDef:
    """``key[Struct, f1, f2];`` (no wire effect)."""

    struct: NamedTypeNode
    fields: tuple[str, ...]
    loc: Location = field(default=NOWHERE, compare=False, repr=False)
    field_locs: tuple[Location, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Param:
    """An operation parameter; ``tag`` is its 1-based position (in and out params alike)."""

    name: str
    type: TypeNode
    is_out: bool
    tag: int
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Operation:
    """``ret name(params);``; ``return_type`` is ``None`` for ``void``."""

    name: str
    return_type: TypeNode | None
    params: tuple[Param, ...]
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class InterfaceDef:
    """``interface Name { operations };``."""

    name: str
    operations: tuple[Operation, ...]
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


Definition = StructDef | EnumDef | ConstDef | KeyDef | InterfaceDef


@dataclass(frozen=True, slots=True)
class Module:
    """One ``module Name { ... };`` block (a module may be reopened several times)."""

    name: str
    definitions: tuple[Definition, ...]
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Include:
    """``#include "file"``; ``loc`` is the position of ``#``."""

    file: str
    loc: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed file."""

    path: str
    includes: tuple[Include, ...]
    modules: tuple[Module, ...]
